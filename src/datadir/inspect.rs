//! The inspector: takes the files of a data directory one by one, in any order, and builds
//! the report (partition statistics, index checks, metadata replay, group offsets, problems).
//!
//! Files are recognised by name: root files (`meta.properties`, the checkpoint files) by
//! their name alone, partition files by their parent directory `<topic>-<partition>`.

use std::collections::BTreeMap;
use std::io::{self, Read};

use super::batch::Record;
use super::batch::RecordBatch;
use super::consumer_offsets::GroupOffsets;
use super::files::{parse_checkpoint, parse_partition_metadata, parse_properties, CheckpointEntry};
use super::metadata_log::{parse_record, topic_id_string, MetadataLog};
use super::partition_state::PartitionState;
use super::report::{
    Feature, GroupOffset, MetadataMode, Problem, ProblemKind, Report, TopicReport, Totals,
};
use super::segment::{
    check_offset_index, check_time_index, parse_segment_name, scan_log, RecordFeed, SegmentFile,
    SegmentScan,
};

const METADATA_TOPIC: &str = "__cluster_metadata";
const OFFSETS_TOPIC: &str = "__consumer_offsets";
const CLEAN_SHUTDOWN: &str = ".kafka_cleanshutdown";
const CHECKPOINTS: [&str; 4] = [
    "recovery-point-offset-checkpoint",
    "replication-offset-checkpoint",
    "log-start-offset-checkpoint",
    "cleaner-offset-checkpoint",
];
/// Largest small file (properties, checkpoint, index) read into memory. Kafka's default
/// index size is 10 MiB.
const SMALL_FILE_LIMIT: u64 = 64 * 1024 * 1024;
/// Largest total of index files held while they wait for their `.log` (a tar stream may
/// list a segment's indexes before its log, or a log never): far above a real partition's,
/// whose rolled segments' indexes are a few MiB each.
const PENDING_INDEX_LIMIT: u64 = 1024 * 1024 * 1024;

pub(super) fn is_root_file(name: &str) -> bool {
    name == "meta.properties" || name == CLEAN_SHUTDOWN || CHECKPOINTS.contains(&name)
}

/// `orders-3` -> ("orders", 3). Directories being deleted or moved (`orders-3.<id>-delete`,
/// `-future`, `-stray`) do not match.
pub(crate) fn parse_partition_dir(name: &str) -> Option<(&str, i32)> {
    let (topic, partition) = name.rsplit_once('-')?;
    if topic.is_empty() || partition.is_empty() || !partition.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((topic, partition.parse().ok()?))
}

#[derive(Debug, Default)]
pub(super) struct Inspector {
    properties: Option<BTreeMap<String, String>>,
    clean_shutdown: bool,
    checkpoints: BTreeMap<&'static str, Vec<CheckpointEntry>>,
    partitions: BTreeMap<(String, i32), PartitionState>,
    metadata: MetadataLog,
    has_metadata_log: bool,
    offsets: GroupOffsets,
    problems: Vec<Problem>,
    /// Bytes of index files held until their segment's `.log` is scanned.
    pending_index_bytes: u64,
    /// A file of a Kafka data directory was seen.
    pub(super) found_kafka: bool,
}

fn read_small(reader: &mut dyn Read, name: &str) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    reader.take(SMALL_FILE_LIMIT + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > SMALL_FILE_LIMIT {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{name} is larger than {SMALL_FILE_LIMIT} bytes, too large for its kind"),
        ));
    }
    Ok(bytes)
}

impl Inspector {
    fn problem(&mut self, file: &str, position: Option<u64>, kind: ProblemKind, detail: String) {
        self.problems.push(Problem {
            file: file.to_string(),
            position,
            kind,
            detail,
        });
    }

    /// One file: `parent` is its directory's name (None for the data dir itself).
    pub(super) fn add_file(
        &mut self,
        parent: Option<&str>,
        name: &str,
        reader: &mut dyn Read,
    ) -> io::Result<()> {
        if is_root_file(name) {
            self.found_kafka = true;
            return self.add_root_file(name, reader);
        }
        let Some(dir) = parent else {
            return Ok(());
        };
        let Some((topic, partition)) = parse_partition_dir(dir) else {
            return Ok(());
        };
        let segment = parse_segment_name(name);
        if name != "partition.metadata" && segment.is_none() {
            return Ok(());
        }
        let key = (topic.to_string(), partition);
        let file = format!("{dir}/{name}");
        self.found_kafka = true;
        self.partitions
            .entry(key.clone())
            .or_insert_with(|| PartitionState {
                dir: dir.to_string(),
                ..PartitionState::default()
            });
        let Some((base, kind)) = segment else {
            let text = String::from_utf8_lossy(&read_small(reader, &file)?).into_owned();
            match parse_partition_metadata(&text) {
                Ok(id) => self.partition(&key).topic_id = Some(id),
                Err(err) => self.problem(&file, None, ProblemKind::BadFile, err.to_string()),
            }
            return Ok(());
        };
        match kind {
            SegmentFile::Log => {
                let scan = self.scan(&key, &file, None, reader)?;
                self.partition(&key).segments.entry(base).or_default().scan = Some(scan);
                self.check_indexes(&key, base);
            }
            SegmentFile::Snapshot if topic == METADATA_TOPIC => {
                self.scan(&key, &file, Some(base), reader)?;
            }
            SegmentFile::Snapshot => {}
            SegmentFile::OffsetIndex | SegmentFile::TimeIndex => {
                let bytes = read_small(reader, &file)?;
                self.hold_index(&key, base, kind, bytes, &file)?;
                self.check_indexes(&key, base);
            }
        }
        Ok(())
    }

    fn partition(&mut self, key: &(String, i32)) -> &mut PartitionState {
        self.partitions
            .get_mut(key)
            .expect("partition registered before use")
    }

    fn add_root_file(&mut self, name: &str, reader: &mut dyn Read) -> io::Result<()> {
        let bytes = read_small(reader, name)?;
        let text = String::from_utf8_lossy(&bytes);
        if name == CLEAN_SHUTDOWN {
            self.clean_shutdown = true;
        } else if name == "meta.properties" {
            self.properties = Some(parse_properties(&text));
        } else if let Some(kind) = CHECKPOINTS.iter().find(|c| **c == name) {
            match parse_checkpoint(&text) {
                Ok(entries) => {
                    self.checkpoints.insert(kind, entries);
                }
                Err(err) => self.problem(name, None, ProblemKind::BadFile, err.to_string()),
            }
        }
        Ok(())
    }

    /// Scans a log (or, with `snapshot_end`, a metadata snapshot), feeding the records of
    /// `__cluster_metadata` and `__consumer_offsets` to their decoders.
    fn scan(
        &mut self,
        key: &(String, i32),
        file: &str,
        snapshot_end: Option<i64>,
        reader: &mut dyn Read,
    ) -> io::Result<SegmentScan> {
        let topic = key.0.as_str();
        let mut undecodable: Vec<(u64, String)> = Vec::new();
        let scan = {
            let metadata = &mut self.metadata;
            let offsets = &mut self.offsets;
            let on_record = |batch: &RecordBatch, record: &Record| {
                if batch.header.is_control() {
                    return;
                }
                {
                    let result = match topic {
                        METADATA_TOPIC => {
                            let value = record.value.as_deref().unwrap_or_default();
                            parse_record(value).map(|decoded| match snapshot_end {
                                Some(end) => {
                                    metadata.add_snapshot_record(end, record.offset, decoded)
                                }
                                None => metadata.add_log_record(record.offset, decoded),
                            })
                        }
                        OFFSETS_TOPIC => offsets
                            .add(
                                record.offset,
                                record.key.as_deref(),
                                record.value.as_deref(),
                            )
                            .map(|_| ()),
                        _ => Ok(()),
                    };
                    if let Err(err) = result {
                        undecodable.push((
                            batch.position,
                            format!("record at offset {}: {err}", record.offset),
                        ));
                    }
                }
            };
            // Metadata and group offsets are state built from records: only whole batches.
            let feed = match topic {
                METADATA_TOPIC | OFFSETS_TOPIC => RecordFeed::WholeBatches,
                _ => RecordFeed::Streamed,
            };
            scan_log(reader, feed, on_record)?
        };
        if topic == METADATA_TOPIC && snapshot_end.is_none() {
            self.has_metadata_log = true;
        }
        for (position, detail) in undecodable {
            self.problem(file, Some(position), ProblemKind::UndecodableRecord, detail);
        }
        self.scan_problems(file, &scan);
        Ok(scan)
    }

    fn scan_problems(&mut self, file: &str, scan: &SegmentScan) {
        for damage in &scan.corrupt {
            self.problem(
                file,
                Some(damage.position),
                ProblemKind::Corrupt,
                damage.detail.clone(),
            );
        }
        if let Some(damage) = &scan.truncated {
            self.problem(
                file,
                Some(damage.position),
                ProblemKind::Truncated,
                damage.detail.clone(),
            );
        }
        if let Some((position, len)) = scan.zero_tail {
            self.problem(
                file,
                Some(position),
                ProblemKind::PreallocatedTail,
                format!("the last {len} bytes are zeros (preallocated, never written)"),
            );
        }
        for run in &scan.legacy {
            let magics: Vec<String> = run.magics.iter().map(i8::to_string).collect();
            self.problem(
                file,
                Some(run.position),
                ProblemKind::LegacyFormat,
                format!(
                    "{} legacy message set entr{} (magic {}) in bytes {}..{}: counted, not decoded",
                    run.count,
                    if run.count == 1 { "y" } else { "ies" },
                    magics.join("/"),
                    run.position,
                    run.end
                ),
            );
        }
    }

    /// Checks whichever indexes of a segment have arrived, once its log has been scanned.
    /// Keeps an index file until its segment's log is scanned, within [`PENDING_INDEX_LIMIT`].
    fn hold_index(
        &mut self,
        key: &(String, i32),
        base: i64,
        kind: SegmentFile,
        bytes: Vec<u8>,
        file: &str,
    ) -> io::Result<()> {
        let held = bytes.len() as u64;
        if self.pending_index_bytes + held > PENDING_INDEX_LIMIT {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{file}: more than {PENDING_INDEX_LIMIT} bytes of index files wait for .log files that have not come; this is not how a data directory's tar lists its files (inspect the directory itself, or extract the archive first)"
                ),
            ));
        }
        let segment = self.partition(key).segments.entry(base).or_default();
        let slot = match kind {
            SegmentFile::OffsetIndex => &mut segment.offset_index,
            _ => &mut segment.time_index,
        };
        let replaced = slot.replace(bytes).map_or(0, |old| old.len() as u64);
        self.pending_index_bytes = self.pending_index_bytes + held - replaced;
        Ok(())
    }

    fn check_indexes(&mut self, key: &(String, i32), base: i64) {
        let partition = self.partition(key);
        let dir = partition.dir.clone();
        let Some(segment) = partition.segments.get_mut(&base) else {
            return;
        };
        let Some(scan) = &segment.scan else {
            return;
        };
        let mut found = Vec::new();
        let released = [&segment.offset_index, &segment.time_index]
            .iter()
            .filter_map(|index| index.as_ref())
            .map(|bytes| bytes.len() as u64)
            .sum::<u64>();
        if let Some(bytes) = segment.offset_index.take() {
            found.extend(
                check_offset_index(&bytes, base, &scan.boundaries, scan.size)
                    .into_iter()
                    .map(|p| format!("{dir}/{base:020}.index: {p}")),
            );
        }
        if let Some(bytes) = segment.time_index.take() {
            found.extend(
                check_time_index(&bytes, base, &scan.boundaries)
                    .into_iter()
                    .map(|p| format!("{dir}/{base:020}.timeindex: {p}")),
            );
        }
        partition.index_problems.extend(found);
        self.pending_index_bytes -= released;
    }

    /// Every file of a partition directory has been seen: batch boundaries can go.
    pub(super) fn release(&mut self, dir: &str) {
        let Some((topic, partition)) = parse_partition_dir(dir) else {
            return;
        };
        if let Some(state) = self.partitions.get_mut(&(topic.to_string(), partition)) {
            for segment in state.segments.values_mut() {
                if let Some(scan) = &mut segment.scan {
                    scan.boundaries = Vec::new();
                }
            }
        }
    }

    pub(super) fn finish(mut self) -> Report {
        let properties = self.properties.take().unwrap_or_default();
        let cluster_id = properties.get("cluster.id").cloned();
        let node_id = properties
            .get("node.id")
            .or_else(|| properties.get("broker.id"))
            .and_then(|id| id.parse().ok());
        let checkpoint = |kind: &str| -> BTreeMap<(String, i32), i64> {
            self.checkpoints
                .get(kind)
                .into_iter()
                .flatten()
                .map(|e| ((e.topic.clone(), e.partition), e.offset))
                .collect()
        };
        let high_watermarks = checkpoint("replication-offset-checkpoint");
        let log_starts = checkpoint("log-start-offset-checkpoint");
        let recovery_points = checkpoint("recovery-point-offset-checkpoint");

        let mut partitions = Vec::new();
        let mut late_problems = Vec::new();
        let mut totals = Totals::default();
        for ((topic, partition), state) in std::mem::take(&mut self.partitions) {
            let key = (topic, partition);
            let checkpoints = [&log_starts, &high_watermarks, &recovery_points]
                .map(|offsets| offsets.get(&key).copied());
            let report = state.report(key.0, key.1, checkpoints, &mut late_problems);
            totals.partitions += 1;
            totals.segments += u64::from(report.segments);
            totals.batches += report.batches;
            totals.records += report.records;
            totals.corrupt_batches += report.corrupt_batches;
            totals.truncated_partitions += u64::from(report.truncated);
            totals.legacy_message_sets += report.legacy_message_sets;
            totals.index_problems += report.index_problems.len() as u64;
            totals.bytes += report.bytes;
            for problem in &report.index_problems {
                let (file, detail) = problem.split_once(": ").unwrap_or(("", problem));
                late_problems.push(Problem {
                    file: file.to_string(),
                    position: None,
                    kind: ProblemKind::Index,
                    detail: detail.to_string(),
                });
            }
            partitions.push(report);
        }
        self.problems.extend(late_problems);
        self.problems.sort();

        let (metadata_mode, topics, features) = if self.has_metadata_log {
            let image = std::mem::take(&mut self.metadata).replay();
            let topics = image
                .topics
                .values()
                .map(|t| TopicReport {
                    name: t.name.clone(),
                    id: Some(topic_id_string(&t.id)),
                    partitions: t.partitions.len() as u32,
                    replication_factor: t
                        .partitions
                        .values()
                        .next()
                        .map(|p| p.replicas.len() as u32),
                    configs: t.configs.clone(),
                })
                .collect();
            let features = image
                .features
                .iter()
                .map(|(name, level)| Feature {
                    name: name.clone(),
                    level: *level,
                })
                .collect();
            (MetadataMode::Kraft, topics, features)
        } else {
            let mut by_name: BTreeMap<&str, TopicReport> = BTreeMap::new();
            for p in &partitions {
                let topic = by_name.entry(&p.topic).or_insert_with(|| TopicReport {
                    name: p.topic.clone(),
                    id: None,
                    partitions: 0,
                    replication_factor: None,
                    configs: BTreeMap::new(),
                });
                topic.partitions += 1;
                if topic.id.is_none() {
                    topic.id = p.topic_id.clone();
                }
            }
            (
                MetadataMode::Zookeeper,
                by_name.into_values().collect(),
                Vec::new(),
            )
        };
        let mut topics: Vec<TopicReport> = topics;
        topics.sort_by(|a, b| a.name.cmp(&b.name));

        let groups = self
            .offsets
            .committed()
            .map(|(group, topic, partition, commit)| GroupOffset {
                group: group.to_string(),
                topic: topic.to_string(),
                partition,
                offset: commit.offset,
                leader_epoch: commit.leader_epoch,
                metadata: commit.metadata.clone(),
                commit_timestamp: commit.commit_timestamp,
            })
            .collect();

        Report {
            cluster_id,
            node_id,
            metadata_mode,
            clean_shutdown: self.clean_shutdown,
            topics,
            partitions,
            groups,
            features,
            problems: self.problems,
            totals,
        }
    }
}

#[cfg(test)]
#[path = "inspect_tests.rs"]
mod tests;
