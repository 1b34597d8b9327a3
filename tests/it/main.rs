//! Integration tests: kafkasnap against real tansu brokers, a real S3 server and storage
//! emulators (moto, fake-gcs-server, Azurite).

mod backup;
mod conventions;
mod datadir;
mod datadir_encryption;
mod encryption;
mod errors;
mod faults;
mod fixture;
mod fuzz_regressions;
mod harness;
mod incremental;
mod k8s_exec;
mod k8s_helper;
mod k8s_restore;
mod k8s_stopped;
mod location_safety;
mod manifest_seal;
mod manifests;
mod metrics;
mod mock_k8s;
mod output_text;
mod prune;
mod refusals;
mod restore;
mod restore_datadir;
mod resume;
mod selectors;
mod shard;
mod signals;
mod stops;
mod stores;
mod stores_harness;
mod structure;
mod untrusted_listings;
mod verify;
