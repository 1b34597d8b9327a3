//! The manifest: the one JSON object that says what a backup holds. Written last; its
//! presence is what makes a backup exist.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::{ArchiveError, BackupId, Compression, Encryption};

/// The manifest format version this code writes for a manifest that lists every segment.
/// Version 2 added the seal of encrypted manifests (`manifest.seal`); version 1 manifests are
/// still read. Delta manifests are version 3 ([`super::DELTA_FORMAT_VERSION`]).
pub const FORMAT_VERSION: u64 = 2;
/// The oldest manifest format version this code reads.
pub(crate) const OLDEST_FORMAT_VERSION: u64 = 1;
/// From this version on, an encrypted backup's manifest must carry a seal.
pub(crate) const SEALED_FROM_FORMAT_VERSION: u64 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ArchiveKind {
    /// Records and metadata read through the Kafka protocol.
    Logical,
}

impl std::fmt::Display for ArchiveKind {
    /// As in the manifest (`logical`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ArchiveKind::Logical => "logical",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format_version: u64,
    pub kind: ArchiveKind,
    pub backup_id: BackupId,
    /// The backup whose segments this one builds on (incremental backups); `None` for a full backup.
    #[serde(default)]
    pub parent: Option<BackupId>,
    pub started_at: String,
    pub finished_at: String,
    pub tool_version: String,
    pub source: SourceCluster,
    pub compression: Compression,
    pub compression_level: i32,
    pub segment_bytes: u64,
    /// Set when every segment object is encrypted (after compression); absent otherwise.
    /// A reader that ignores it fails on the first segment (no zstd/gzip frame, no segment
    /// magic), so it never hands out a record it could not read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<Encryption>,
    pub topics: Vec<TopicBackup>,
    pub groups: Vec<GroupOffsets>,
    pub totals: Totals,
    /// Things the operator should know that did not stop the backup.
    #[serde(default)]
    pub warnings: Vec<String>,
    /// Set when the backup was taken by several shards; absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sharding: Option<Sharding>,
    /// Set on a delta manifest (format version 3): its partitions list only the segments it
    /// stored, after the parent's ones this says it keeps. Readers fold it away
    /// ([`super::fold_delta`]) before anything else sees the manifest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delta: Option<super::DeltaListing>,
    /// How many delta manifests lead from the nearest complete listing to this backup, this
    /// one included (0: its manifest lists every segment). Not stored: taken from `delta`.
    #[serde(skip)]
    pub chain_depth: u64,
}

/// What the writer of a new logical backup knows of it; [`Manifest::assemble`] adds the rest.
#[derive(Debug, Clone)]
pub(crate) struct ManifestParts {
    pub(crate) backup_id: BackupId,
    pub(crate) parent: Option<BackupId>,
    pub(crate) started_at: SystemTime,
    pub(crate) finished_at: SystemTime,
    pub(crate) source: SourceCluster,
    pub(crate) compression: Compression,
    pub(crate) compression_level: i32,
    pub(crate) segment_bytes: u64,
    pub(crate) encryption: Option<Encryption>,
    pub(crate) topics: Vec<TopicBackup>,
    pub(crate) groups: Vec<GroupOffsets>,
    pub(crate) warnings: Vec<String>,
}

impl Manifest {
    /// A new logical backup's manifest at this code's format version: totals summed from
    /// its topics, each group's offsets in manifest order, times in RFC 3339 (milliseconds).
    pub(crate) fn assemble(parts: ManifestParts) -> Manifest {
        let ManifestParts {
            backup_id,
            parent,
            started_at,
            finished_at,
            source,
            compression,
            compression_level,
            segment_bytes,
            encryption,
            topics,
            mut groups,
            warnings,
        } = parts;
        groups.iter_mut().for_each(GroupOffsets::sort_offsets);
        Manifest {
            format_version: FORMAT_VERSION,
            kind: ArchiveKind::Logical,
            backup_id,
            parent,
            started_at: humantime::format_rfc3339_millis(started_at).to_string(),
            finished_at: humantime::format_rfc3339_millis(finished_at).to_string(),
            tool_version: env!("CARGO_PKG_VERSION").to_string(),
            source,
            compression,
            compression_level,
            segment_bytes,
            encryption,
            totals: Totals::of(&topics),
            topics,
            groups,
            warnings,
            sharding: None,
            delta: None,
            chain_depth: 0,
        }
    }
}

/// How a sharded backup was taken: the run's name, the shard count, and the backup id under
/// which each shard (by index) stored its segments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sharding {
    pub(crate) run: String,
    pub(crate) count: u32,
    pub parts: Vec<BackupId>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceCluster {
    /// As given by the user; credentials are never part of it.
    pub bootstrap_servers: String,
    pub cluster_id: Option<String>,
    pub brokers: Vec<BrokerInfo>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BrokerInfo {
    pub(crate) id: i32,
    pub(crate) host: String,
    pub(crate) port: i32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopicBackup {
    pub name: String,
    pub internal: bool,
    pub partition_count: i32,
    pub replication_factor: i32,
    pub configs: Vec<TopicConfig>,
    pub partitions: Vec<PartitionBackup>,
}

/// A topic config entry exactly as the broker described it. Sensitive values are never stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopicConfig {
    pub name: String,
    pub value: Option<String>,
    /// `dynamic_topic`, `dynamic_broker`, `dynamic_default_broker`, `static_broker`, `default`, `unknown`.
    pub source: String,
    pub(crate) is_default: bool,
    pub is_sensitive: bool,
    pub(crate) is_read_only: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartitionBackup {
    pub partition: i32,
    /// The first offset the backup asked for (the log start offset when it began).
    pub start_offset: i64,
    /// Where the next backup of this partition continues: every record below it that the
    /// broker served is in this backup (offsets missing in between were gaps in the log).
    pub end_offset: i64,
    /// The high watermark captured when the backup began.
    pub high_watermark: i64,
    pub records: u64,
    pub raw_bytes: u64,
    pub stored_bytes: u64,
    pub first_timestamp: Option<i64>,
    pub last_timestamp: Option<i64>,
    pub segments: Vec<SegmentRef>,
}

impl PartitionBackup {
    /// A partition's entry over `segments` (in offset order), its records, bytes and
    /// timestamps summed from them.
    pub(crate) fn over_segments(
        partition: i32,
        start_offset: i64,
        end_offset: i64,
        high_watermark: i64,
        segments: Vec<SegmentRef>,
    ) -> PartitionBackup {
        PartitionBackup {
            partition,
            start_offset,
            end_offset,
            high_watermark,
            records: segments.iter().map(|s| s.records).sum(),
            raw_bytes: segments.iter().map(|s| s.raw_bytes).sum(),
            stored_bytes: segments.iter().map(|s| s.stored_bytes).sum(),
            first_timestamp: segments.first().and_then(|s| s.first_timestamp),
            last_timestamp: segments.last().and_then(|s| s.last_timestamp),
            segments,
        }
    }

    /// Whether the record at `offset` is part of this backup. A carried (incremental) segment
    /// may begin below `start_offset`: those records were deleted from the cluster before
    /// this backup was taken, so restore, verify and cat leave them out (docs/FORMAT.md).
    pub fn holds(&self, offset: i64) -> bool {
        offset >= self.start_offset
    }
}

/// One stored segment object. `key` is relative to the backup location's root, so a later
/// (incremental) manifest can point at a parent's segment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentRef {
    pub key: String,
    pub compression: Compression,
    pub first_offset: i64,
    pub last_offset: i64,
    pub records: u64,
    pub raw_bytes: u64,
    pub stored_bytes: u64,
    pub sha256: String,
    pub first_timestamp: Option<i64>,
    pub last_timestamp: Option<i64>,
    pub min_timestamp: Option<i64>,
    pub max_timestamp: Option<i64>,
    /// [`record_digest`](super::record_digest) of the record at `last_offset`: lets an
    /// incremental backup check that the cluster still holds it there. Absent from manifests
    /// written before the field was added: an incremental backup then reads the segment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_record_sha256: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupOffsets {
    pub group: String,
    pub offsets: Vec<CommittedOffset>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommittedOffset {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    #[serde(default)]
    pub(crate) metadata: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    pub topics: u64,
    pub partitions: u64,
    pub segments: u64,
    pub records: u64,
    pub raw_bytes: u64,
    pub stored_bytes: u64,
}

/// Parses a manifest of version `supported`, checking `format_version` before anything else so
/// that a newer archive gets "unsupported version", not a confusing field error.
pub(crate) fn parse_versioned<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    oldest: u64,
    newest: u64,
) -> Result<T, ArchiveError> {
    #[derive(Deserialize)]
    struct VersionOnly {
        format_version: Option<serde_json::Value>,
    }
    let probe: VersionOnly =
        serde_json::from_slice(bytes).map_err(|source| ArchiveError::ManifestJson { source })?;
    match probe
        .format_version
        .as_ref()
        .and_then(serde_json::Value::as_u64)
    {
        None => return Err(ArchiveError::MissingVersion),
        Some(found) if !(oldest..=newest).contains(&found) => {
            return Err(ArchiveError::UnsupportedVersion {
                found,
                oldest,
                newest,
            })
        }
        Some(_) => {}
    }
    serde_json::from_slice(bytes).map_err(|source| ArchiveError::ManifestJson { source })
}

impl Manifest {
    /// Parses manifest bytes, checking `format_version` before anything else so that a
    /// newer archive gets "unsupported version", not a confusing field error.
    pub fn from_json(bytes: &[u8]) -> Result<Manifest, ArchiveError> {
        let mut manifest: Manifest =
            parse_versioned(bytes, OLDEST_FORMAT_VERSION, super::DELTA_FORMAT_VERSION)?;
        manifest.chain_depth = manifest.delta.as_ref().map_or(0, |d| d.depth);
        let delta_version = manifest.format_version >= super::DELTA_FORMAT_VERSION;
        if manifest.delta.is_some() != delta_version {
            return Err(ArchiveError::Delta {
                backup_id: manifest.backup_id.to_string(),
                problem: format!(
                    "format version {} {} a delta listing (version {} manifests, and only they, are deltas)",
                    manifest.format_version,
                    if manifest.delta.is_some() { "with" } else { "without" },
                    super::DELTA_FORMAT_VERSION
                ),
            });
        }
        Ok(manifest)
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("a manifest always serializes")
    }

    pub fn topic(&self, name: &str) -> Option<&TopicBackup> {
        self.topics.iter().find(|t| t.name == name)
    }

    /// Every segment with its topic and partition, in manifest order.
    pub fn segments(&self) -> impl Iterator<Item = (&TopicBackup, &PartitionBackup, &SegmentRef)> {
        self.topics.iter().flat_map(|t| {
            t.partitions
                .iter()
                .flat_map(move |p| p.segments.iter().map(move |s| (t, p, s)))
        })
    }
}

impl GroupOffsets {
    /// Puts the offsets in manifest order: by topic, then partition.
    pub(crate) fn sort_offsets(&mut self) {
        self.offsets
            .sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    }
}

impl Totals {
    /// Sums the per-partition figures of `topics`.
    pub fn of(topics: &[TopicBackup]) -> Totals {
        let mut totals = Totals {
            topics: topics.len() as u64,
            ..Totals::default()
        };
        for partition in topics.iter().flat_map(|t| &t.partitions) {
            totals.partitions += 1;
            totals.segments += partition.segments.len() as u64;
            totals.records += partition.records;
            totals.raw_bytes += partition.raw_bytes;
            totals.stored_bytes += partition.stored_bytes;
        }
        totals
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minimal() -> Manifest {
        Manifest {
            format_version: FORMAT_VERSION,
            kind: ArchiveKind::Logical,
            backup_id: BackupId::parse("20261125T145443Z-3f9a1c").unwrap(),
            parent: None,
            started_at: "2026-11-25T14:54:43Z".into(),
            finished_at: "2026-11-25T14:54:50Z".into(),
            tool_version: "0.1.0".into(),
            source: SourceCluster {
                bootstrap_servers: "127.0.0.1:9092".into(),
                cluster_id: None,
                brokers: vec![],
            },
            compression: Compression::Zstd,
            compression_level: 3,
            segment_bytes: 1 << 24,
            encryption: None,
            topics: vec![],
            groups: vec![],
            totals: Totals::default(),
            warnings: vec![],
            sharding: None,
            delta: None,
            chain_depth: 0,
        }
    }

    #[test]
    fn round_trips_through_json() {
        let manifest = minimal();
        assert_eq!(Manifest::from_json(&manifest.to_json()).unwrap(), manifest);
    }

    #[test]
    fn encryption_is_written_only_when_set_and_round_trips() {
        let plain = minimal();
        let json: serde_json::Value = serde_json::from_slice(&plain.to_json()).unwrap();
        assert!(json.get("encryption").is_none(), "{json}");

        let mut encrypted = minimal();
        encrypted.encryption = Some(super::super::Encryption {
            cipher: super::super::encryption::Cipher::Aes256Gcm,
            key_id: "0123456789abcdef".into(),
        });
        let json: serde_json::Value = serde_json::from_slice(&encrypted.to_json()).unwrap();
        assert_eq!(
            json["encryption"],
            serde_json::json!({"cipher": "aes-256-gcm", "key_id": "0123456789abcdef"})
        );
        assert_eq!(
            Manifest::from_json(&encrypted.to_json()).unwrap(),
            encrypted
        );
    }

    #[test]
    fn unknown_version_is_refused_by_name() {
        let mut json: serde_json::Value = serde_json::from_slice(&minimal().to_json()).unwrap();
        json["format_version"] = 4.into();
        json["topics"] = "a shape version 3 never had".into();
        let err = Manifest::from_json(json.to_string().as_bytes()).unwrap_err();
        assert!(
            matches!(err, ArchiveError::UnsupportedVersion { found: 4, .. }),
            "{err}"
        );
        // Version 3 is the delta manifest: one without a delta listing is refused too.
        json["format_version"] = 3.into();
        json["topics"] = serde_json::json!([]);
        let err = Manifest::from_json(json.to_string().as_bytes()).unwrap_err();
        assert!(
            err.to_string()
                .contains("format version 3 without a delta listing"),
            "{err}"
        );
    }

    #[test]
    fn version_1_manifests_are_still_read() {
        let mut json: serde_json::Value = serde_json::from_slice(&minimal().to_json()).unwrap();
        json["format_version"] = 1.into();
        let read = Manifest::from_json(json.to_string().as_bytes()).unwrap();
        assert_eq!(read.format_version, 1);
        json["format_version"] = 0.into();
        assert!(Manifest::from_json(json.to_string().as_bytes()).is_err());
    }

    #[test]
    fn garbage_and_versionless_json_are_refused() {
        assert!(matches!(
            Manifest::from_json(b"{nope"),
            Err(ArchiveError::ManifestJson { .. })
        ));
        assert!(matches!(
            Manifest::from_json(b"{\"kind\":\"logical\"}"),
            Err(ArchiveError::MissingVersion)
        ));
    }
}
