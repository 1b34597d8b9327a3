//! Integration tests: kafkasnap against real tansu brokers and a real S3 server.

mod backup;
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
mod manifests;
mod metrics;
mod mock_k8s;
mod prune;
mod restore;
mod restore_datadir;
mod resume;
mod shard;
mod signals;
mod stops;
mod verify;
