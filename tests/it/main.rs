//! Integration tests: kafkasnap against real tansu brokers and a real S3 server.

mod backup;
mod datadir;
mod encryption;
mod errors;
mod fixture;
mod harness;
mod incremental;
mod k8s_exec;
mod manifests;
mod metrics;
mod prune;
mod restore;
mod restore_datadir;
mod shard;
mod signals;
mod verify;
