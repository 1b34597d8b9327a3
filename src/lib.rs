//! kafkasnap: back up an Apache Kafka cluster and restore it, exactly.
//!
//! The data flows one way: `kafka` reads records and metadata, `archive` frames them,
//! `store` puts them somewhere; `backup`, `restore` and `verify` wire those together, and
//! `drill` restores into a scratch cluster and checks the result with them.
//! The library never prints; the binary's `commands` do.

pub mod archive;
pub mod backup;
pub mod datadir;
pub mod drill;
mod error;
pub mod follow;
pub mod k8s;
pub mod kafka;
pub mod metrics;
pub mod physical;
pub mod progress;
pub mod read;
pub mod restore;
pub mod retention;
pub mod selection;
pub mod store;
mod topic_map;
pub mod verify;
mod write;

pub use error::{BackupKind, Error};
