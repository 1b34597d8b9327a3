//! Integration tests: kafkasnap against real tansu brokers and a real S3 server.

mod backup;
mod datadir;
mod encryption;
mod errors;
mod faults;
mod fixture;
mod fuzz_regressions;
mod harness;
mod incremental;
mod k8s_exec;
mod k8s_restore;
mod k8s_stopped;
mod manifests;
mod metrics;
mod mock_k8s;
mod prune;
mod refusals;
mod restore;
mod restore_datadir;
mod resume;
mod shard;
mod signals;
mod verify;
