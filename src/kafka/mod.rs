//! Everything that talks to Kafka through rdkafka: client settings, the metadata, config and
//! group-offset snapshot, the partition reader and prober, topic creation and the restoring
//! producer, and deleting topics and groups (a drill's clean-up).

mod client;
mod configs;
mod delete;
mod groups;
mod headers;
mod live_hash;
mod probe;
mod reader;
mod snapshot;
mod writer;

pub use client::{parse_properties_file, ClientSettings};
pub(crate) use configs::explicitly_set_configs;
pub(crate) use delete::{delete_groups, delete_topics, Deleted};
pub(crate) use groups::{commit_group_offsets, committed_offsets, group_names, read_group_offsets};
pub(crate) use live_hash::hash_live_partitions;
pub(crate) use probe::{probe_partitions, ProbeRequest, ProbeResult};
pub use reader::FinishEarly;
pub(crate) use reader::{
    read_partitions, ConsumedRecord, MessageHeaders, PartitionOutcome, PartitionTask, ReadOptions,
    RecordSink, SinkError,
};
pub(crate) use snapshot::{
    describe_cluster, describe_topic_configs, metadata_consumer, partition_bounds, TopicInfo,
};
pub(crate) use writer::{create_topics, wait_for_topics, RecordWriter, TopicToCreate};

use std::time::Duration;

/// What can go wrong talking to Kafka. Each variant names what it was doing and on what.
#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    #[error("cannot reach Kafka at {servers} within {timeout:?}: {source}; check the address (-b) and the network, and pass -X security.protocol=... if the cluster needs TLS or SASL")]
    Unreachable {
        servers: String,
        timeout: Duration,
        #[source]
        source: rdkafka::error::KafkaError,
    },
    #[error("invalid client setting: {source}; check -X and --config values")]
    BadSetting {
        #[source]
        source: rdkafka::error::KafkaError,
    },
    #[error("{action} failed: {source}")]
    Client {
        action: String,
        #[source]
        source: rdkafka::error::KafkaError,
    },
    #[error("{action} failed for {resource}: {code}")]
    Broker {
        action: String,
        resource: String,
        code: rdkafka::types::RDKafkaErrorCode,
    },
    #[error("partition {topic}/{partition} made no progress for {waited:?} at offset {offset} (end offset {end}); is the partition's leader available?")]
    Stalled {
        topic: String,
        partition: i32,
        offset: i64,
        end: i64,
        waited: Duration,
    },
    #[error("stopped: {0}")]
    Sink(#[from] SinkError),
    #[error("cannot read client config file {path}: {source}")]
    ConfigFile {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("client config file {path} line {line}: expected key=value, found {text:?}")]
    ConfigFileSyntax {
        path: String,
        line: usize,
        text: String,
    },
    #[error("interrupted")]
    Interrupted,
}

impl KafkaError {
    pub(crate) fn client(
        action: impl Into<String>,
    ) -> impl FnOnce(rdkafka::error::KafkaError) -> KafkaError {
        let action = action.into();
        move |source| KafkaError::Client { action, source }
    }
}
