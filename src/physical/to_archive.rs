//! Turns a Kafka data directory into a logical archive (segments + manifest) at a location, so
//! that `restore --from-datadir` replays it through exactly the same path as a logical backup:
//! same plan, checks, topic creation, record replay and group-offset translation.
//!
//! What is taken: every non-internal partition directory's log segments in offset order;
//! control batches are dropped, and so are the records of aborted transactions and of
//! transactions still open at the end of the log (a consumer reading committed data would
//! never see them). Topics, partition counts and configs come from the inspection report
//! (the KRaft metadata log, or partition directories in ZooKeeper mode); committed group
//! offsets from `__consumer_offsets`.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::archive::{
    BackupId, CommittedOffset, Compression, GroupOffsets, HeaderRef, Manifest, ManifestParts,
    PartitionBackup, SealedSegment, SegmentRef, SourceCluster, TimestampType, TopicBackup,
    TopicConfig,
};
use crate::datadir::{
    inspect_path, parse_partition_dir, parse_segment_name, ControlRecord, DatadirError, LogEntry,
    LogReader, RecordBatch, Report, SegmentFile,
};
use crate::store::Location;
use crate::write::{SegmentBuffers, SegmentCutter, SegmentWriter};
use crate::Error;

/// Segments of the converted archive close at this many raw bytes.
const SEGMENT_BYTES: usize = 16 * 1024 * 1024;
/// Fast compression: the archive is temporary.
const COMPRESSION: Compression = Compression::Zstd;
const LEVEL: i32 = 1;

/// Converts the data directory at `dir` into a published archive at `location` (blocking:
/// call it from a blocking thread inside a tokio runtime). Refuses a directory in which
/// `datadir inspect` finds corruption.
pub fn archive_datadir(dir: &Path, location: &Location) -> Result<Manifest, Error> {
    let started_at = SystemTime::now();
    let report = inspect_path(dir)?;
    if report.has_corruption() {
        let problems: Vec<String> = report
            .problems
            .iter()
            .map(|p| format!("  {}: {}", p.file, p.detail))
            .collect();
        return Err(Error::InvalidRequest(format!(
            "{} holds corrupt log data; run `kafkasnap datadir inspect {}` for details:\n{}",
            dir.display(),
            dir.display(),
            problems.join("\n")
        )));
    }
    let backup_id = BackupId::new(started_at);
    let runtime = tokio::runtime::Handle::current();
    let writer = SegmentWriter {
        location: location.clone(),
        backup_id: backup_id.clone(),
        compression: COMPRESSION,
        level: LEVEL,
        encryption_key: None,
        // One partition at a time, each segment stored before the next is cut.
        buffers: SegmentBuffers::new(SEGMENT_BYTES, 1),
    };
    let mut partitions = BTreeMap::new();
    for (topic, partition, partition_dir) in partition_dirs(dir)? {
        let segments = copy_partition(&partition_dir, &topic, partition, &writer, &runtime)?;
        partitions.insert((topic, partition), partition_summary(partition, segments));
    }
    let topics = topic_backups(&report, partitions);
    let groups = group_offsets(&report, &topics);
    let manifest = Manifest::assemble(ManifestParts {
        backup_id: backup_id.clone(),
        parent: None,
        started_at,
        finished_at: SystemTime::now(),
        source: SourceCluster {
            bootstrap_servers: format!("datadir:{}", dir.display()),
            cluster_id: report.cluster_id.clone(),
            brokers: Vec::new(),
        },
        compression: COMPRESSION,
        compression_level: LEVEL,
        segment_bytes: SEGMENT_BYTES as u64,
        encryption: None,
        topics,
        groups,
        warnings: report
            .problems
            .iter()
            .map(|p| format!("{}: {}", p.file, p.detail))
            .collect(),
    });
    runtime.block_on(location.publish_manifest(&backup_id, manifest.to_json()))?;
    Ok(manifest)
}

fn io_error(path: &Path, source: std::io::Error) -> Error {
    Error::Datadir(DatadirError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Every `<topic>-<partition>` directory of a non-internal topic, sorted.
fn partition_dirs(dir: &Path) -> Result<Vec<(String, i32, PathBuf)>, Error> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| io_error(dir, e))? {
        let entry = entry.map_err(|e| io_error(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !entry.path().is_dir() {
            continue;
        }
        if let Some((topic, partition)) = parse_partition_dir(&name) {
            if !topic.starts_with("__") {
                found.push((topic.to_string(), partition, entry.path()));
            }
        }
    }
    found.sort();
    Ok(found)
}

/// The partition's `.log` segment files in offset order.
fn log_files(partition_dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let mut logs = Vec::new();
    for entry in std::fs::read_dir(partition_dir).map_err(|e| io_error(partition_dir, e))? {
        let entry = entry.map_err(|e| io_error(partition_dir, e))?;
        if let Some((base, SegmentFile::Log)) =
            parse_segment_name(&entry.file_name().to_string_lossy())
        {
            logs.push((base, entry.path()));
        }
    }
    logs.sort();
    Ok(logs.into_iter().map(|(_, path)| path).collect())
}

/// Calls `visit` with every CRC-valid magic-2 batch of the partition, in offset order.
fn for_each_batch(
    logs: &[PathBuf],
    mut visit: impl FnMut(&RecordBatch) -> Result<(), Error>,
) -> Result<(), Error> {
    for log in logs {
        let file = File::open(log).map_err(|e| io_error(log, e))?;
        for entry in LogReader::new(BufReader::with_capacity(1 << 20, file)) {
            if let LogEntry::Batch(batch) = entry.map_err(|e| io_error(log, e))? {
                if batch.crc_ok() {
                    visit(&batch)?;
                }
            }
        }
    }
    Ok(())
}

/// What to do about a batch that passed inspection and then failed to decode.
const CHANGED_HINT: &str = "the data directory changed while it was read, or is damaged: run `kafkasnap datadir inspect` on it";

/// Offset ranges, per producer id, of transactions that were aborted or never finished.
type Excluded = HashMap<i64, Vec<(i64, i64)>>;

fn excluded_transactions(partition_dir: &str, logs: &[PathBuf]) -> Result<Excluded, Error> {
    let mut open: HashMap<i64, i64> = HashMap::new();
    let mut excluded: Excluded = HashMap::new();
    for_each_batch(logs, |batch| {
        let header = &batch.header;
        if !header.is_transactional() {
            return Ok(());
        }
        if !header.is_control() {
            open.entry(header.producer_id).or_insert(header.base_offset);
            return Ok(());
        }
        let producer = header.producer_id;
        batch
            .for_each_record(|record| match ControlRecord::parse(&record) {
                Ok(ControlRecord::Abort) => {
                    if let Some(start) = open.remove(&producer) {
                        excluded
                            .entry(producer)
                            .or_default()
                            .push((start, record.offset));
                    }
                }
                Ok(ControlRecord::Commit) => {
                    open.remove(&producer);
                }
                _ => {}
            })
            .map_err(|e| {
                Error::InvalidRequest(format!(
                    "{partition_dir}: control batch at offset {} does not decode: {e}; {CHANGED_HINT}",
                    header.base_offset
                ))
            })?;
        Ok(())
    })?;
    for (producer, start) in open {
        excluded
            .entry(producer)
            .or_default()
            .push((start, i64::MAX));
    }
    Ok(excluded)
}

fn copy_partition(
    partition_dir: &Path,
    topic: &str,
    partition: i32,
    writer: &SegmentWriter,
    runtime: &tokio::runtime::Handle,
) -> Result<Vec<SegmentRef>, Error> {
    let logs = log_files(partition_dir)?;
    let excluded = excluded_transactions(&format!("{topic}-{partition}"), &logs)?;
    let mut segments = Vec::new();
    let mut cutter = SegmentCutter::new(&writer.buffers);
    let mut store = |sealed: Option<SealedSegment>| -> Result<(), Error> {
        if let Some(sealed) = sealed {
            let (key, stored) = writer.prepare(topic, partition, sealed)?;
            segments.push(runtime.block_on(writer.put(key, stored))?);
        }
        Ok(())
    };
    for_each_batch(&logs, |batch| {
        let header = &batch.header;
        let in_excluded = |offset: i64| {
            excluded.get(&header.producer_id).is_some_and(|ranges| {
                ranges
                    .iter()
                    .any(|(from, to)| (*from..=*to).contains(&offset))
            })
        };
        if header.is_control() || (header.is_transactional() && in_excluded(header.base_offset)) {
            return Ok(());
        }
        let timestamp_type = if header.log_append_time() {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        };
        // Streamed record by record into segments (a small batch can expand to millions of
        // records), sealing a segment whenever it is full, even inside a batch.
        let mut stored = Ok(());
        let decoded = batch.for_each_record(|record| {
            if stored.is_err() {
                return;
            }
            // `record.timestamp` is already the batch's max timestamp under LogAppendTime.
            let headers = record.headers.iter().map(|h| HeaderRef {
                name: h.key.as_bytes(),
                value: h.value.as_deref(),
            });
            let (_, sealed) = cutter.push(|segment| {
                segment.push(
                    record.offset,
                    record.timestamp,
                    timestamp_type,
                    record.key.as_deref(),
                    record.value.as_deref(),
                    headers,
                )
            });
            stored = store(sealed);
        });
        decoded.map_err(|e| {
            Error::InvalidRequest(format!(
                "{topic}-{partition}: batch at offset {} does not decode: {e}; {CHANGED_HINT}",
                header.base_offset
            ))
        })?;
        stored?;
        Ok(())
    })?;
    store(cutter.finish())?;
    Ok(segments)
}

fn partition_summary(partition: i32, segments: Vec<SegmentRef>) -> PartitionBackup {
    let start = segments.first().map_or(0, |s| s.first_offset);
    let end = segments.last().map_or(0, |s| s.last_offset + 1);
    PartitionBackup::over_segments(partition, start, end, end, segments)
}

/// Every non-internal topic the metadata describes (created even when none of its partitions
/// has a directory here) and every topic with partition directories; partition counts and
/// configs from the report.
fn topic_backups(
    report: &Report,
    partitions: BTreeMap<(String, i32), PartitionBackup>,
) -> Vec<TopicBackup> {
    let mut by_topic: BTreeMap<String, Vec<PartitionBackup>> = BTreeMap::new();
    for topic in report.topics.iter().filter(|t| !t.name.starts_with("__")) {
        by_topic.entry(topic.name.clone()).or_default();
    }
    for ((topic, _), partition) in partitions {
        by_topic.entry(topic).or_default().push(partition);
    }
    by_topic
        .into_iter()
        .map(|(name, on_disk)| {
            let described = report.topics.iter().find(|t| t.name == name);
            let highest_on_disk = on_disk.iter().map(|p| p.partition + 1).max().unwrap_or(1);
            let configs =
                described
                    .map(|t| &t.configs)
                    .into_iter()
                    .flatten()
                    .map(|(key, value)| TopicConfig {
                        name: key.clone(),
                        value: Some(value.clone()),
                        source: "datadir".into(),
                        is_default: false,
                        is_sensitive: false,
                        is_read_only: false,
                    });
            TopicBackup {
                internal: false,
                partition_count: described
                    .map_or(0, |t| t.partitions as i32)
                    .max(highest_on_disk),
                replication_factor: described
                    .and_then(|t| t.replication_factor)
                    .map_or(1, |rf| rf as i32),
                configs: configs.collect(),
                partitions: on_disk,
                name,
            }
        })
        .collect()
}

fn group_offsets(report: &Report, topics: &[TopicBackup]) -> Vec<GroupOffsets> {
    let mut groups: BTreeMap<String, Vec<CommittedOffset>> = BTreeMap::new();
    for committed in &report.groups {
        if topics.iter().any(|t| t.name == committed.topic) {
            groups
                .entry(committed.group.clone())
                .or_default()
                .push(CommittedOffset {
                    topic: committed.topic.clone(),
                    partition: committed.partition,
                    offset: committed.offset,
                    metadata: committed.metadata.clone().filter(|m| !m.is_empty()),
                });
        }
    }
    groups
        .into_iter()
        .map(|(group, offsets)| GroupOffsets { group, offsets })
        .collect()
}
