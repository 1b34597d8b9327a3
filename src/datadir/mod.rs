//! Kafka's on-disk format, read offline without a broker: log segments and their indexes,
//! checkpoint files, the KRaft metadata log and `__consumer_offsets`, from a data directory
//! or a tar stream of one.
//!
//! Nothing here trusts a length it has not seen the bytes for, and damage is reported (file
//! and byte position) rather than skipped or fatal: a bad CRC is corruption, a cut-short
//! last segment is truncation, legacy message sets are counted.

mod batch;
mod codec;
mod consumer_offsets;
mod extract;
mod files;
mod inspect;
mod metadata_log;
mod partition_state;
mod report;
mod segment;
mod tar_guard;
mod walk;
mod wire;

use std::path::PathBuf;

pub use batch::{ControlRecord, LogEntry, LogReader, RecordBatch};
pub use codec::Codec;
pub use extract::extract_archive;
pub(crate) use extract::hostile_entry;
pub(crate) use files::parse_properties;
pub(crate) use inspect::parse_partition_dir;
pub use report::{MetadataMode, PartitionReport, ProblemKind, Report};
pub(crate) use segment::{parse_segment_name, SegmentFile};
#[cfg(test)]
pub(crate) use tar_guard::build::oversized_pax as oversized_pax_tar;
pub(crate) use tar_guard::{
    entry_data_size, padded as padded_to_blocks, pax_size, TarGuard, TarLimitError,
    TAR_EXTENSION_LIMIT,
};
pub use walk::{inspect_path, inspect_tar_stream};

/// Why a data directory could not be inspected at all. Damage inside it is not an error:
/// it is listed in the report's `problems`.
#[derive(Debug, thiserror::Error)]
pub enum DatadirError {
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{} is neither a directory nor a tar archive (.tar, .tar.gz/.tgz, .tar.zst)",
        path.display()
    )]
    NotADataDir { path: PathBuf },
    #[error(
        "{source_name} holds no Kafka data directory: no meta.properties, no checkpoint files \
         and no <topic>-<partition> directories"
    )]
    NoKafkaFiles { source_name: String },
    #[error(
        "unpacking {entry} ({entry_bytes} bytes, after {unpacked_bytes} bytes unpacked) would \
         leave less than {reserve_bytes} bytes or too few files free in {} ({available_bytes} \
         bytes free): the tarball is larger than the scratch disk, or a compression bomb; point \
         TMPDIR at a disk with room for the unpacked data directory, or unpack it yourself and \
         give the directory to --from-datadir",
        into.display()
    )]
    ScratchFull {
        into: PathBuf,
        entry: String,
        entry_bytes: u64,
        unpacked_bytes: u64,
        available_bytes: u64,
        reserve_bytes: u64,
    },
    #[error("reading the tar stream failed at {entry}: {source}")]
    Tar {
        entry: String,
        #[source]
        source: std::io::Error,
    },
}
