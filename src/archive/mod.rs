//! The backup archive format: manifest, record segments, checksums, backup ids (pure: no Kafka, no I/O policy).
//!
//! Everything here is specified in `docs/FORMAT.md`; change both together.

mod backup_id;
mod check;
mod compression;
mod content_hash;
mod datadir_manifest;
mod delta;
mod encryption;
mod manifest;
mod manifest_seal;
mod record;
mod segment;
mod shard_spec;
mod stream_encryption;

pub(crate) use backup_id::CLOCK_SKEW_ALLOWANCE;
pub use backup_id::{BackupId, BackupSelector, BadBackupSelector};
pub(crate) use check::{check_manifest, StructureProblem, MAX_MANIFEST_BYTES};
pub(crate) use compression::BadLevel;
pub use compression::Compression;
pub(crate) use content_hash::{record_digest, ContentHasher};
pub use datadir_manifest::{
    DatadirArchive, DatadirKind, DatadirManifest, DatadirMode, DatadirSource,
    DATADIR_FORMAT_VERSION,
};
pub(crate) use datadir_manifest::{DatadirFile, DATADIR_SEALED_FROM_FORMAT_VERSION};
pub use delta::{fold_delta, CarriedSegments, DeltaListing, DELTA_FORMAT_VERSION, MAX_DELTA_DEPTH};
pub use encryption::EncryptionKey;
pub(crate) use encryption::{Encryption, KeyFit};
pub(crate) use manifest::parse_versioned;
pub use manifest::{
    ArchiveKind, Manifest, PartitionBackup, SegmentRef, SourceCluster, TopicBackup, Totals,
    FORMAT_VERSION,
};
pub(crate) use manifest::{
    BrokerInfo, CommittedOffset, GroupOffsets, ManifestParts, Sharding, TopicConfig,
    SEALED_FROM_FORMAT_VERSION,
};
pub(crate) use manifest_seal::{
    check_datadir_manifest_seal, check_shard_part_seal, seal_shard_part,
};
pub use manifest_seal::{check_manifest_seal, seal_datadir_manifest, seal_manifest};
pub use record::{HeaderRef, RecordRef, TimestampType};
pub(crate) use segment::{
    check_stored, decode_segment_into, SealedSegment, SegmentRecords, StoredSegment,
};
pub use segment::{decode_segment, SegmentBuilder};
pub(crate) use shard_spec::ShardError;
pub use shard_spec::ShardSpec;
pub use stream_encryption::{sealed_stream_len, StreamSealer, STREAM_MAGIC};
pub(crate) use stream_encryption::{DecryptingReader, StreamOpener};

/// What can be wrong with archive bytes or a manifest.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("manifest is not valid JSON for format version {FORMAT_VERSION}: {source}")]
    ManifestJson {
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "manifest has format_version {found}, but this kafkasnap reads only versions {oldest} to {newest}; \
         use a kafkasnap release that supports format {found}"
    )]
    UnsupportedVersion {
        found: u64,
        oldest: u64,
        newest: u64,
    },
    #[error("backup {backup_id} is a checkpoint that lists only what it added to its parent, and {problem}")]
    Delta { backup_id: String, problem: String },
    #[error("manifest is structurally unsound:\n{}", .0.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n"))]
    Structure(Vec<StructureProblem>),
    #[error("manifest is {size} bytes, above the largest accepted ({MAX_MANIFEST_BYTES})")]
    ManifestTooLarge { size: u64 },
    #[error("manifest has no numeric format_version field: this is not a kafkasnap manifest")]
    MissingVersion,
    #[error("the manifest of an encrypted backup of format version {version} has no seal (manifest.seal): it was removed, or the manifest was not written by kafkasnap")]
    SealMissing { version: u64 },
    #[error("the manifest of this encrypted backup is format version {version}, written before manifests were sealed: whoever can write to the location could have altered it, or rewritten a sealed manifest as version {version} and removed its seal; if you trust everyone who can write there, read it with --allow-unsealed (KAFKASNAP_ALLOW_UNSEALED=true)")]
    Unsealed { version: u64 },
    #[error("its seal (manifest.seal) cannot be read: {what}")]
    SealUnreadable { what: String },
    #[error("its seal does not match the manifest: the manifest was altered after it was written, moved from another backup id, or sealed with another key")]
    SealMismatch,
    #[error("segment is corrupt at byte {position}: {what}")]
    CorruptSegment { position: usize, what: String },
    #[error("segment checksum mismatch: manifest says sha256 {expected}, object has {actual}")]
    ChecksumMismatch { expected: String, actual: String },
    #[error("segment size mismatch: manifest says {expected} bytes, object has {actual}")]
    SizeMismatch { expected: u64, actual: u64 },
    #[error("segment does not decompress as {compression}: {source}")]
    Decompress {
        compression: Compression,
        #[source]
        source: std::io::Error,
    },
    #[error("segment compression with {compression} failed: {source}")]
    Compress {
        compression: Compression,
        #[source]
        source: std::io::Error,
    },
    #[error("unknown compression {0:?}: expected zstd, gzip or none")]
    UnknownCompression(String),
    #[error("object does not start with a KSNAPEN magic (KSNAPEN2, or KSNAPEN1 of kafkasnap 0.1), but the backup is encrypted")]
    NotEncrypted,
    #[error("object does not decrypt with this key: its bytes were altered, or it is not the object stored under this key")]
    DecryptionFailed,
    #[error("object does not start with a KSNAPES magic (KSNAPES2, or KSNAPES1 of kafkasnap 0.1) of an encrypted stream, but the backup is encrypted")]
    NotEncryptedStream,
    #[error("encrypted stream ends at byte {position} without its last chunk: the object was cut short or chunks were dropped")]
    StreamTruncated { position: u64 },
    #[error("chunk {chunk} (at byte {position}) of the encrypted stream does not decrypt with this key: its bytes were altered, chunks were reordered, dropped or appended, or it is not the object stored under this key")]
    StreamChunkFailed { chunk: u32, position: u64 },
    #[error("an encrypted stream holds at most 2^32 chunks (4 PiB)")]
    StreamTooLong,
    #[error("encrypting {len} bytes failed (AES-GCM takes at most 64 GiB per object)")]
    EncryptionFailed { len: usize },
    #[error("the system's random number generator failed, so no nonce could be made: {source}")]
    NoRandomness {
        #[source]
        source: getrandom::Error,
    },
}

impl ArchiveError {
    /// Whether this says a manifest's seal is missing, unreadable or does not check (the
    /// manifest itself parsed): it is not authenticated.
    pub(crate) fn is_about_the_seal(&self) -> bool {
        matches!(
            self,
            ArchiveError::SealMissing { .. }
                | ArchiveError::Unsealed { .. }
                | ArchiveError::SealUnreadable { .. }
                | ArchiveError::SealMismatch
        )
    }
}
