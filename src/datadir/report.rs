//! What `datadir inspect` found, as one serializable report: cluster identity, topics,
//! per-partition log statistics, committed group offsets, features, and every problem with
//! its file and byte position.

use std::collections::BTreeMap;

use serde::Serialize;

use super::codec::Codec;

/// How the cluster kept its metadata, as the data directory shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MetadataMode {
    /// A `__cluster_metadata-0` log is present: topics come from it.
    Kraft,
    /// No metadata log: topics are inferred from partition directories.
    Zookeeper,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub cluster_id: Option<String>,
    /// `node.id` (KRaft) or `broker.id` (ZooKeeper mode) from meta.properties.
    pub node_id: Option<i32>,
    pub metadata_mode: MetadataMode,
    /// The broker shut down cleanly (`.kafka_cleanshutdown` present).
    pub clean_shutdown: bool,
    pub topics: Vec<TopicReport>,
    pub partitions: Vec<PartitionReport>,
    pub groups: Vec<GroupOffset>,
    pub features: Vec<Feature>,
    pub problems: Vec<Problem>,
    pub totals: Totals,
}

impl Report {
    /// Corrupt batches or bad CRCs were found (a truncated active segment is not corruption).
    pub fn has_corruption(&self) -> bool {
        self.problems.iter().any(|p| p.kind == ProblemKind::Corrupt)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TopicReport {
    pub name: String,
    /// Kafka's printed form (URL-safe base64), when known.
    pub id: Option<String>,
    /// Partition count: from the metadata log in KRaft mode; in ZooKeeper mode the number of
    /// this topic's partition directories on this broker (a lower bound).
    pub partitions: u32,
    /// Replica count of the lowest-numbered partition as its PartitionRecord created it
    /// (KRaft mode only; later reassignments in PartitionChangeRecords are not applied).
    pub replication_factor: Option<u32>,
    /// Topic configs set on the cluster (KRaft mode; ZooKeeper keeps them in ZooKeeper).
    pub configs: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartitionReport {
    pub topic: String,
    pub partition: i32,
    /// From `partition.metadata`, when present.
    pub topic_id: Option<String>,
    pub segments: u32,
    /// Magic-2 batches that decoded (control batches included).
    pub batches: u64,
    /// Data records (control records not included).
    pub records: u64,
    pub control_batches: u64,
    pub commit_markers: u64,
    pub abort_markers: u64,
    /// Offset and timestamp of the lowest- and highest-offset data record.
    pub first_offset: Option<i64>,
    pub last_offset: Option<i64>,
    pub first_timestamp: Option<i64>,
    pub last_timestamp: Option<i64>,
    pub codecs: Vec<Codec>,
    pub corrupt_batches: u64,
    /// The last segment ends inside a batch (normal for an active segment after a crash).
    pub truncated: bool,
    /// Legacy magic 0/1 entries (counted, not decoded).
    pub legacy_message_sets: u64,
    pub index_problems: Vec<String>,
    /// From the data dir's checkpoint files, when listed there.
    pub(crate) log_start_offset: Option<i64>,
    pub high_watermark: Option<i64>,
    pub(crate) recovery_point: Option<i64>,
    pub(crate) bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupOffset {
    pub group: String,
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub(crate) leader_epoch: Option<i32>,
    pub(crate) metadata: Option<String>,
    pub(crate) commit_timestamp: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Feature {
    pub name: String,
    pub level: i16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// A bad CRC, an undecodable batch, broken framing, or a cut-short segment that is not
    /// the last one. Makes `datadir inspect` exit with 3.
    Corrupt,
    /// The last segment of a partition ends inside a batch.
    Truncated,
    /// A segment ends in zero bytes (preallocated, never written).
    PreallocatedTail,
    /// Legacy magic 0/1 message sets: counted, not decoded.
    LegacyFormat,
    /// An `.index` / `.timeindex` entry that does not match the log (Kafka rebuilds indexes).
    Index,
    /// A record in a sound batch of `__cluster_metadata` or `__consumer_offsets` that does
    /// not decode.
    UndecodableRecord,
    /// A small file (meta.properties, a checkpoint, partition.metadata) that does not parse.
    BadFile,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Problem {
    /// Path relative to the data directory, e.g. `orders-0/00000000000000000000.log`.
    pub file: String,
    pub position: Option<u64>,
    pub kind: ProblemKind,
    pub detail: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    pub partitions: u64,
    pub segments: u64,
    pub batches: u64,
    pub records: u64,
    pub corrupt_batches: u64,
    pub(crate) truncated_partitions: u64,
    pub(crate) legacy_message_sets: u64,
    pub(crate) index_problems: u64,
    pub bytes: u64,
}
