//! kafkasnap: back up an Apache Kafka cluster and restore it, exactly.
//!
//! The data flows one way: `kafka` reads records and metadata, `archive` frames them,
//! `store` puts them somewhere; `backup`, `restore` and `verify` wire those together.

pub mod archive;
pub mod store;
