//! Restoring a logical backup: plan (which topics, created how, which records, which group
//! offsets), check the archive, create topics, replay records through an idempotent
//! producer partition by partition, then commit group offsets translated to the new offsets.
//!
//! Offset translation: a committed offset `O` on a source partition maps to the new offset
//! of the first restored record whose original offset is `>= O`, or to the partition's new
//! end when there is none. A consumer resuming from the translated offset reads exactly the
//! records it had not read on the source.
//!
//! A restore that stops part-way (Ctrl-C, a target that acknowledges nothing for the stall
//! timeout, a failure) says what the target holds from it ([`outcome`]).

mod outcome;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use outcome::{check_stop, flush, unless_cancelled, Stage, StallWatch};
pub use outcome::{RestoreStop, TopicWritten, WritePhase, Written};

use crate::archive::{
    CommittedOffset, ContentHasher, Encryption, EncryptionKey, Manifest, PartitionBackup, RecordRef,
};
use crate::catalog::{check_segments, decode_fetched, key_for_backup, read_segment, SegmentCheck};
use crate::kafka::{self, ClientSettings, KafkaError, RecordWriter, TopicToCreate};
use crate::progress::Progress;
use crate::selection::TopicSelection;
use crate::store::Location;
use crate::topic_map::TopicMap;
use crate::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IfExists {
    Fail,
    Skip,
    Append,
}

#[derive(Debug, Clone)]
pub struct RestoreOptions {
    pub client: ClientSettings,
    pub selection: TopicSelection,
    /// Source topic -> target topic.
    pub topic_map: Vec<(String, String)>,
    /// Only records with `from_time <= timestamp <= until` (epoch ms).
    pub from_time: Option<i64>,
    pub until: Option<i64>,
    pub if_exists: IfExists,
    pub skip_groups: bool,
    pub parallelism: usize,
    /// Continue an interrupted restore: target topics that exist are continued (after
    /// checking that they hold exactly the backup's first records), the others created.
    pub resume: bool,
    /// The key of an encrypted backup (checked against the manifest's key id).
    pub encryption_key: Option<EncryptionKey>,
    /// Fail when records wait and the target acknowledges none of them for this long.
    pub stall_timeout: Duration,
    /// Set on Ctrl-C / SIGTERM: every phase stops within a fraction of a second.
    pub cancel: Arc<AtomicBool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TopicAction {
    Create,
    Append,
    Skip,
    /// Continue an interrupted restore into this (existing) topic.
    Resume,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct PlannedTopic {
    pub source: String,
    pub target: String,
    pub action: TopicAction,
    pub partitions: i32,
    pub replication_factor: i32,
    pub configs: Vec<(String, String)>,
    /// Records and raw bytes in the backup (before any time window).
    pub records: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct RestorePlan {
    pub backup_id: String,
    pub target: String,
    pub topics: Vec<PlannedTopic>,
    pub groups: Vec<String>,
    pub from_time: Option<i64>,
    pub until: Option<i64>,
    /// How the backup's segments are encrypted (the key given matches); `None` if they are not.
    pub encryption: Option<Encryption>,
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct RestoreSummary {
    pub plan: RestorePlan,
    pub records_written: u64,
    pub bytes_written: u64,
    pub records_filtered: u64,
    /// Records an interrupted restore had already written (checked, not written again).
    pub records_resumed: u64,
    pub groups_committed: usize,
    pub duration_seconds: f64,
}

/// Works out what a restore would do, checking the request against the backup (its key
/// first) and the target cluster. Changes nothing.
pub async fn plan_restore(
    manifest: &Manifest,
    options: &RestoreOptions,
) -> Result<RestorePlan, Error> {
    key_for_backup(manifest, options.encryption_key.as_ref())?;
    let topic_map = TopicMap::check(manifest, &options.topic_map, |topic| {
        !topic.internal && options.selection.matches(&topic.name, topic.internal)
    })?;
    if options.resume && options.if_exists != IfExists::Fail {
        return Err(Error::InvalidRequest(
            "--resume continues the topics an interrupted restore created; it cannot be combined with --if-exists skip or append".into(),
        ));
    }
    if let (Some(from), Some(until)) = (options.from_time, options.until) {
        if from > until {
            return Err(Error::InvalidRequest(format!(
                "--from-time ({from}) is after --until ({until})"
            )));
        }
    }
    let client = options.client.clone();
    let described = tokio::task::spawn_blocking(move || -> Result<_, KafkaError> {
        let cluster = kafka::describe_cluster(&client)?;
        Ok((
            cluster
                .topics
                .into_iter()
                .map(|t| (t.name, t.partitions.len() as i32))
                .collect::<HashMap<String, i32>>(),
            cluster.brokers.len() as i32,
        ))
    });
    let (existing, brokers) = unless_cancelled(&options.cancel, described)
        .await
        .map_err(|_| Written::stopped_before_writing(options.resume))?
        .expect("metadata reads do not panic")?;

    let mut warnings = Vec::new();
    let mut topics = Vec::new();
    for topic in &manifest.topics {
        if !options.selection.matches(&topic.name, topic.internal) {
            continue;
        }
        if topic.internal {
            warnings.push(format!(
                "internal topic {} is not restored: Kafka manages it",
                topic.name
            ));
            continue;
        }
        let target = topic_map.target(&topic.name).to_string();
        let action = match (existing.get(&target), options.if_exists) {
            (None, _) => TopicAction::Create,
            (Some(&partitions), _) if options.resume => {
                if partitions != topic.partition_count {
                    return Err(Error::InvalidRequest(format!(
                        "--resume: target topic {target} has {partitions} partitions, backup topic {} has {}; it was not created by a restore of this backup",
                        topic.name, topic.partition_count
                    )));
                }
                TopicAction::Resume
            }
            (Some(_), IfExists::Fail) => return Err(Error::TopicExists { topic: target }),
            (Some(_), IfExists::Skip) => TopicAction::Skip,
            (Some(_), IfExists::Append) => TopicAction::Append,
        };
        let mut replication_factor = topic.replication_factor.max(1);
        if replication_factor > brokers.max(1) {
            warnings.push(format!(
                "topic {target}: replication factor {replication_factor} capped at {} (the target's broker count)",
                brokers.max(1)
            ));
            replication_factor = brokers.max(1);
        }
        for config in topic
            .configs
            .iter()
            .filter(|c| c.is_sensitive && c.source == "dynamic_topic")
        {
            warnings.push(format!(
                "topic {target}: sensitive config {} was set on the source but its value is never stored; set it again by hand",
                config.name
            ));
        }
        topics.push(PlannedTopic {
            source: topic.name.clone(),
            target,
            action,
            partitions: topic.partition_count,
            replication_factor,
            configs: kafka::explicitly_set_configs(&topic.configs),
            records: topic.partitions.iter().map(|p| p.records).sum(),
            bytes: topic.partitions.iter().map(|p| p.raw_bytes).sum(),
        });
    }
    if topics.is_empty() {
        return Err(Error::NoTopicsMatch {
            selection: options.selection.describe(),
            available: manifest.topics.iter().map(|t| t.name.clone()).collect(),
        });
    }
    let restored: Vec<&str> = topics
        .iter()
        .filter(|t| t.action != TopicAction::Skip)
        .map(|t| t.source.as_str())
        .collect();
    let groups = if options.skip_groups {
        Vec::new()
    } else {
        manifest
            .groups
            .iter()
            .filter(|g| {
                g.offsets
                    .iter()
                    .any(|o| restored.contains(&o.topic.as_str()))
            })
            .map(|g| g.group.clone())
            .collect()
    };
    Ok(RestorePlan {
        backup_id: manifest.backup_id.to_string(),
        target: options.client.bootstrap_servers.clone(),
        topics,
        groups,
        from_time: options.from_time,
        until: options.until,
        encryption: manifest.encryption.clone(),
        warnings,
    })
}

/// Checks every object the plan will read (presence, size, checksum); refuses with the full
/// list of problems before anything is written.
pub async fn check_archive(
    location: &Location,
    manifest: &Manifest,
    plan: &RestorePlan,
    parallelism: usize,
) -> Result<(), Error> {
    let segments = plan
        .topics
        .iter()
        .filter(|t| t.action != TopicAction::Skip)
        .filter_map(|t| manifest.topic(&t.source))
        .flat_map(|t| t.partitions.iter().flat_map(|p| p.segments.iter()));
    let problems = check_segments(location, segments, SegmentCheck::Stored, parallelism).await;
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::ArchiveDamaged {
            problems: problems
                .into_iter()
                .map(|p| format!("  {}: {}", p.key, p.problem))
                .collect(),
        })
    }
}

/// One partition to replay and the committed offsets that need translating on it.
struct PartitionJob {
    source_topic: String,
    target_topic: String,
    partition: PartitionBackup,
    /// Sorted, distinct committed offsets of any group on this partition.
    wanted: Vec<i64>,
    /// Set when an interrupted restore already wrote this partition's first records.
    resume: Option<ResumePoint>,
}

/// How far an interrupted restore got on one target partition: its first `records` eligible
/// records are there (offsets `0..records`), with this content hash.
#[derive(Debug, Clone)]
struct ResumePoint {
    records: u64,
    live_hash: String,
}

/// What replaying one partition found out.
#[derive(Default)]
struct PartitionResult {
    /// committed offset -> marker of the record it maps to
    markers: BTreeMap<i64, usize>,
    /// committed offset -> target offset, for records an interrupted restore already wrote
    resumed_offsets: BTreeMap<i64, i64>,
    resumed: u64,
    written: u64,
    bytes: u64,
    filtered: u64,
}

/// The producer a restore writes with, connected. Make it before [`check_archive`]: the
/// producer's start-up wait (see [`RecordWriter::connect`]) then overlaps the check.
pub async fn connect_writer(options: &RestoreOptions) -> Result<Arc<RecordWriter>, Error> {
    let client = options.client.clone();
    let connecting = tokio::task::spawn_blocking(move || RecordWriter::connect(&client));
    let writer = unless_cancelled(&options.cancel, connecting)
        .await
        .map_err(|_| Written::stopped_before_writing(options.resume))?
        .expect("connecting does not panic")?;
    Ok(Arc::new(writer))
}

/// Executes `plan` (see the module docs) with `writer` from [`connect_writer`]. Call
/// [`check_archive`] first. Once anything may have been written, every error is an
/// [`Error::RestoreIncomplete`] saying what the target holds.
pub async fn run_restore(
    location: &Location,
    manifest: &Manifest,
    plan: RestorePlan,
    options: &RestoreOptions,
    writer: Arc<RecordWriter>,
    progress: Arc<Progress>,
) -> Result<RestoreSummary, Error> {
    let clock = Instant::now();
    let mut stage = Stage::default();
    let written = write_plan(
        location, manifest, &plan, options, &writer, progress, &mut stage,
    )
    .await;
    match written {
        Ok(results) => {
            let results: Vec<&PartitionResult> = results.values().collect();
            Ok(RestoreSummary {
                records_written: results.iter().map(|r| r.written).sum(),
                bytes_written: results.iter().map(|r| r.bytes).sum(),
                records_filtered: results.iter().map(|r| r.filtered).sum(),
                records_resumed: results.iter().map(|r| r.resumed).sum(),
                groups_committed: stage.groups_committed,
                duration_seconds: clock.elapsed().as_secs_f64(),
                plan,
            })
        }
        // Refusals before anything was written keep their own message.
        Err(RestoreStop::Failed(err)) if stage.phase.is_none() => Err(*err),
        Err(why) => Err(Error::RestoreIncomplete {
            written: stage.written(&plan, options.resume, &writer),
            why,
        }),
    }
}

async fn write_plan(
    location: &Location,
    manifest: &Manifest,
    plan: &RestorePlan,
    options: &RestoreOptions,
    writer: &Arc<RecordWriter>,
    progress: Arc<Progress>,
    stage: &mut Stage,
) -> Result<ReplayResults, RestoreStop> {
    let cancel = &options.cancel;
    let to_create: Vec<TopicToCreate> = plan
        .topics
        .iter()
        .filter(|t| t.action == TopicAction::Create)
        .map(|t| TopicToCreate {
            name: t.target.clone(),
            partitions: t.partitions,
            replication_factor: t.replication_factor,
            configs: t.configs.clone(),
        })
        .collect();
    let resume_points = unless_cancelled(cancel, resume_points(&options.client, plan)).await??;
    for ((topic, _), point) in &resume_points {
        *stage.resumed.entry(topic.clone()).or_default() += point.records;
    }

    let committed = committed_by_partition(manifest, plan);
    let mut jobs = Vec::new();
    for topic in plan.topics.iter().filter(|t| t.action != TopicAction::Skip) {
        let source = manifest
            .topic(&topic.source)
            .expect("planned topics are in the manifest");
        for partition in &source.partitions {
            let mut wanted: Vec<i64> = committed
                .get(&(topic.source.clone(), partition.partition))
                .map(|offsets| offsets.iter().map(|o| o.offset).collect())
                .unwrap_or_default();
            wanted.sort_unstable();
            wanted.dedup();
            jobs.push(PartitionJob {
                source_topic: topic.source.clone(),
                target_topic: topic.target.clone(),
                partition: partition.clone(),
                wanted,
                resume: resume_points
                    .get(&(topic.target.clone(), partition.partition))
                    .cloned(),
            });
        }
    }
    progress
        .partitions_total
        .store(jobs.len() as u64, Ordering::Relaxed);
    progress.records_expected.store(
        jobs.iter().map(|j| j.partition.records).sum(),
        Ordering::Relaxed,
    );

    // Ends of appended-to and resumed partitions before we write (new topics start at 0).
    let mut start_ends =
        unless_cancelled(cancel, append_start_ends(&options.client, plan)).await??;
    for ((topic, partition), point) in &resume_points {
        start_ends.insert((topic.clone(), *partition), point.records as i64);
    }

    // Checked again: `run_restore` may be given options that `plan_restore` never saw.
    let encryption_key = match manifest.encryption {
        None => None,
        Some(_) => key_for_backup(manifest, options.encryption_key.as_ref())?,
    };
    let window = (options.from_time, options.until);
    unless_cancelled(
        cancel,
        check_resume_points(location, encryption_key.as_ref(), &jobs, window),
    )
    .await??;
    if !to_create.is_empty() {
        stage.phase = Some(WritePhase::CreatingTopics);
        unless_cancelled(cancel, kafka::create_topics(&options.client, &to_create)).await??;
    }
    stage.phase = Some(WritePhase::Records);
    let mut watch = StallWatch::new(options.stall_timeout, Instant::now());
    let results = replay(
        location,
        encryption_key,
        jobs,
        Arc::clone(writer),
        options,
        progress,
        &mut watch,
    )
    .await?;
    flush(writer, cancel, &mut watch).await?;
    if let Some(failure) = writer.tracker().failure() {
        return Err(Error::Delivery(failure).into());
    }

    stage.phase = Some(WritePhase::Groups);
    if !options.skip_groups {
        let translated = translate_groups(manifest, plan, &results, writer, &start_ends);
        stage.groups_total = translated.len();
        for (group, offsets) in translated {
            let client = options.client.clone();
            let commit = tokio::task::spawn_blocking(move || {
                kafka::commit_group_offsets(&client, &group, &offsets)
            });
            unless_cancelled(cancel, commit)
                .await?
                .expect("commits do not panic")?;
            stage.groups_committed += 1;
        }
    }
    Ok(results)
}

type CommittedByPartition = HashMap<(String, i32), Vec<CommittedOffset>>;

fn committed_by_partition(manifest: &Manifest, plan: &RestorePlan) -> CommittedByPartition {
    let mut by_partition: CommittedByPartition = HashMap::new();
    for group in manifest
        .groups
        .iter()
        .filter(|g| plan.groups.contains(&g.group))
    {
        for offset in &group.offsets {
            by_partition
                .entry((offset.topic.clone(), offset.partition))
                .or_default()
                .push(offset.clone());
        }
    }
    by_partition
}

/// For each partition of a topic being resumed: how many records the interrupted restore
/// wrote, and their content hash (read back from the target, checked during replay).
async fn resume_points(
    client: &ClientSettings,
    plan: &RestorePlan,
) -> Result<HashMap<(String, i32), ResumePoint>, Error> {
    let resumed: Vec<(String, i32)> = plan
        .topics
        .iter()
        .filter(|t| t.action == TopicAction::Resume)
        .flat_map(|t| (0..t.partitions).map(move |p| (t.target.clone(), p)))
        .collect();
    if resumed.is_empty() {
        return Ok(HashMap::new());
    }
    let reader = client.clone();
    let hashed = tokio::task::spawn_blocking(move || {
        let client = reader;
        let wanted: Vec<(usize, String, i32)> = resumed
            .iter()
            .enumerate()
            .map(|(i, (topic, partition))| (i, topic.clone(), *partition))
            .collect();
        crate::verify::hash_live_partitions(&client, &wanted).map(|hashes| (resumed, hashes))
    })
    .await
    .expect("live reads do not panic")?;
    let (resumed, hashes) = hashed;
    let mut points = HashMap::new();
    for (index, (records, live_hash)) in hashes {
        let (topic, partition) = resumed[index].clone();
        let (log_start, _) = live_bounds(client.clone(), &topic, partition).await?;
        if log_start != 0 {
            return Err(Error::InvalidRequest(format!(
                "--resume: {topic}/{partition} starts at offset {log_start}, not 0: records were deleted from it, so it cannot be checked against the backup; delete the topic and restore it again"
            )));
        }
        points.insert((topic, partition), ResumePoint { records, live_hash });
    }
    Ok(points)
}

/// Before anything is written: every resumed partition must hold exactly the first records
/// this restore would write there (same contents, same order), else the resume is refused.
async fn check_resume_points(
    location: &Location,
    encryption_key: Option<&EncryptionKey>,
    jobs: &[PartitionJob],
    window: (Option<i64>, Option<i64>),
) -> Result<(), Error> {
    for job in jobs {
        let Some(point) = job.resume.as_ref().filter(|p| p.records > 0) else {
            continue;
        };
        let mut hasher = ContentHasher::new();
        'segments: for segment in &job.partition.segments {
            let records = read_segment(location, segment, encryption_key).await?;
            for record in records.iter() {
                let record = record.map_err(|source| Error::Archive {
                    key: segment.key.clone(),
                    source,
                })?;
                if record.offset < job.partition.start_offset || !in_window(&record, window) {
                    continue;
                }
                hasher.add(&record);
                if hasher.records() == point.records {
                    break 'segments;
                }
            }
        }
        let (records, hash) = hasher.finish();
        if records != point.records || hash != point.live_hash {
            return Err(Error::InvalidRequest(format!(
                "--resume: {}/{} holds {} records that are not the first {} records this restore writes there (backup topic {}), so it was not written by an interrupted restore of this backup with these options; nothing was written. Delete the topic, or restore it under another name with --topic-map",
                job.target_topic, job.partition.partition, point.records, point.records, job.source_topic
            )));
        }
    }
    Ok(())
}

async fn live_bounds(
    client: ClientSettings,
    topic: &str,
    partition: i32,
) -> Result<(i64, i64), Error> {
    let topic = topic.to_string();
    Ok(tokio::task::spawn_blocking(move || {
        let consumer = kafka::metadata_consumer(&client)?;
        kafka::partition_bounds(&consumer, &client, &topic, partition)
    })
    .await
    .expect("offset reads do not panic")?)
}

async fn append_start_ends(
    client: &ClientSettings,
    plan: &RestorePlan,
) -> Result<HashMap<(String, i32), i64>, Error> {
    let appended: Vec<(String, i32)> = plan
        .topics
        .iter()
        .filter(|t| t.action == TopicAction::Append)
        .flat_map(|t| (0..t.partitions).map(move |p| (t.target.clone(), p)))
        .collect();
    if appended.is_empty() {
        return Ok(HashMap::new());
    }
    let client = client.clone();
    let ends = tokio::task::spawn_blocking(move || -> Result<_, KafkaError> {
        let consumer = kafka::metadata_consumer(&client)?;
        let mut ends = HashMap::new();
        for (topic, partition) in appended {
            let (_, high) = kafka::partition_bounds(&consumer, &client, &topic, partition)?;
            ends.insert((topic, partition), high);
        }
        Ok(ends)
    })
    .await
    .expect("offset reads do not panic")?;
    Ok(ends)
}

/// What replaying found, per (source topic, partition).
type ReplayResults = HashMap<(String, i32), PartitionResult>;

/// Replays all partitions, `parallelism` at a time, each on a blocking thread that
/// prefetches its next segment while producing the current one.
async fn replay(
    location: &Location,
    encryption_key: Option<EncryptionKey>,
    jobs: Vec<PartitionJob>,
    writer: Arc<RecordWriter>,
    options: &RestoreOptions,
    progress: Arc<Progress>,
    watch: &mut StallWatch,
) -> Result<ReplayResults, RestoreStop> {
    // Set to stop every worker: on Ctrl-C, a stall, or one worker's failure.
    let halt = Arc::new(AtomicBool::new(false));
    let next_marker = Arc::new(AtomicUsize::new(1));
    let queue = Arc::new(std::sync::Mutex::new(
        (0..jobs.len()).collect::<std::collections::VecDeque<usize>>(),
    ));
    let jobs = Arc::new(jobs);
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..options.parallelism.max(1).min(jobs.len().max(1)) {
        let (queue, jobs, writer, progress) = (
            Arc::clone(&queue),
            Arc::clone(&jobs),
            Arc::clone(&writer),
            Arc::clone(&progress),
        );
        let (location, next_marker, cancel, halt) = (
            location.clone(),
            Arc::clone(&next_marker),
            Arc::clone(&options.cancel),
            Arc::clone(&halt),
        );
        let window = (options.from_time, options.until);
        let encryption_key = encryption_key.clone();
        let runtime = tokio::runtime::Handle::current();
        workers.spawn_blocking(move || -> Result<ReplayResults, Error> {
            let mut done = ReplayResults::new();
            loop {
                if cancel.load(Ordering::Relaxed) || halt.load(Ordering::Relaxed) {
                    return Err(Error::Interrupted);
                }
                let Some(index) = queue.lock().expect("queue lock").pop_front() else {
                    return Ok(done);
                };
                let context = ReplayContext {
                    location: &location,
                    writer: &writer,
                    progress: &progress,
                    next_marker: &next_marker,
                    cancel: &cancel,
                    halt: &halt,
                    window,
                    encryption_key: encryption_key.as_ref(),
                    runtime: &runtime,
                };
                let job = &jobs[index];
                let source = (job.source_topic.clone(), job.partition.partition);
                done.insert(source, replay_partition(job, &context)?);
                progress.partitions_done.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    let mut results = ReplayResults::new();
    let (mut failure, mut stop, mut stopped) = (None, None, false);
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tokio::select! {
            joined = workers.join_next() => match joined.map(|j| j.expect("replay workers do not panic")) {
                None => break,
                Some(Ok(done)) => results.extend(done),
                // A worker that saw `halt` or `cancel`; the reason is recorded below.
                Some(Err(Error::Interrupted)) => stopped = true,
                Some(Err(err)) => {
                    halt.store(true, Ordering::Relaxed);
                    failure.get_or_insert(err);
                }
            },
            _ = tick.tick(), if stop.is_none() => {
                if let Err(why) = check_stop(&options.cancel, watch, &writer) {
                    halt.store(true, Ordering::Relaxed);
                    stop = Some(why);
                }
            }
        }
    }
    match (failure, stop) {
        (Some(err), _) => Err(err.into()),
        (None, Some(why)) => Err(why),
        (None, None) if stopped => Err(RestoreStop::Interrupted),
        (None, None) => Ok(results),
    }
}

struct ReplayContext<'a> {
    location: &'a Location,
    writer: &'a RecordWriter,
    progress: &'a Progress,
    next_marker: &'a AtomicUsize,
    cancel: &'a AtomicBool,
    halt: &'a AtomicBool,
    window: (Option<i64>, Option<i64>),
    encryption_key: Option<&'a EncryptionKey>,
    runtime: &'a tokio::runtime::Handle,
}

impl ReplayContext<'_> {
    fn stopping(&self) -> bool {
        self.cancel.load(Ordering::Relaxed) || self.halt.load(Ordering::Relaxed)
    }
}

fn in_window(record: &RecordRef<'_>, (from, until): (Option<i64>, Option<i64>)) -> bool {
    from.is_none_or(|from| record.timestamp >= from)
        && until.is_none_or(|until| record.timestamp <= until)
}

fn replay_partition(
    job: &PartitionJob,
    context: &ReplayContext<'_>,
) -> Result<PartitionResult, Error> {
    let mut result = PartitionResult::default();
    let mut wanted = job.wanted.iter().peekable();
    // Records an interrupted restore wrote (checked before replay began): not written again.
    let already = job.resume.as_ref().map_or(0, |r| r.records);
    let segments = &job.partition.segments;
    // The next segment's (compressed) bytes download while this one is replayed; decoding
    // happens here, so at most one decoded segment per worker is in memory.
    let fetch = |index: usize| {
        let (location, key) = (context.location.clone(), segments[index].key.clone());
        context
            .runtime
            .spawn(async move { location.get(&key).await })
    };
    let mut next = (!segments.is_empty()).then(|| fetch(0));
    for index in 0..segments.len() {
        let stored = context
            .runtime
            .block_on(next.take().expect("a fetch is always queued"))
            .expect("segment downloads do not panic")?;
        if index + 1 < segments.len() {
            next = Some(fetch(index + 1));
        }
        let records = decode_fetched(&stored, &segments[index], context.encryption_key)?;
        drop(stored);
        for record in records.iter() {
            let record = record.map_err(|source| Error::Archive {
                key: segments[index].key.clone(),
                source,
            })?;
            if record.offset < job.partition.start_offset {
                continue; // deleted from the cluster before this backup (carried segment)
            }
            if !in_window(&record, context.window) {
                result.filtered += 1;
                continue;
            }
            if result.resumed < already {
                let target_offset = result.resumed as i64;
                while let Some(&&offset) = wanted.peek() {
                    if offset > record.offset {
                        break;
                    }
                    result.resumed_offsets.insert(offset, target_offset);
                    wanted.next();
                }
                result.resumed += 1;
                continue;
            }
            let mut marker = 0;
            while let Some(&&offset) = wanted.peek() {
                if offset > record.offset {
                    break;
                }
                if marker == 0 {
                    marker = context.next_marker.fetch_add(1, Ordering::Relaxed);
                }
                result.markers.insert(offset, marker);
                wanted.next();
            }
            let give_up = || context.stopping();
            context
                .writer
                .send(
                    &job.target_topic,
                    job.partition.partition,
                    &record,
                    marker,
                    &give_up,
                )
                .map_err(|err| match err {
                    KafkaError::Interrupted => Error::Interrupted,
                    err => err.into(),
                })?;
            let size = record.key.map_or(0, <[u8]>::len) + record.value.map_or(0, <[u8]>::len);
            context.progress.add_record(size as u64);
            result.written += 1;
            result.bytes += size as u64;
        }
        if context.stopping() {
            return Err(Error::Interrupted);
        }
        if let Some(failure) = context.writer.tracker().failure() {
            return Err(Error::Delivery(failure));
        }
    }
    Ok(result)
}

/// Each group's committed offsets on restored partitions, translated to target offsets
/// and target topic names.
fn translate_groups(
    manifest: &Manifest,
    plan: &RestorePlan,
    results: &ReplayResults,
    writer: &RecordWriter,
    start_ends: &HashMap<(String, i32), i64>,
) -> Vec<(String, Vec<CommittedOffset>)> {
    let mut translated = Vec::new();
    for group in manifest
        .groups
        .iter()
        .filter(|g| plan.groups.contains(&g.group))
    {
        let mut offsets = Vec::new();
        for committed in &group.offsets {
            let Some(topic) = plan
                .topics
                .iter()
                .find(|t| t.source == committed.topic && t.action != TopicAction::Skip)
            else {
                continue;
            };
            let Some(result) = results.get(&(committed.topic.clone(), committed.partition)) else {
                continue;
            };
            let new_offset = match result.markers.get(&committed.offset) {
                Some(&marker) => writer.tracker().marked_offset(marker),
                None => result.resumed_offsets.get(&committed.offset).copied(),
            };
            let end = writer
                .tracker()
                .last_offset(&topic.target, committed.partition)
                .map(|last| last + 1)
                .or_else(|| {
                    start_ends
                        .get(&(topic.target.clone(), committed.partition))
                        .copied()
                })
                .unwrap_or(0);
            offsets.push(CommittedOffset {
                topic: topic.target.clone(),
                partition: committed.partition,
                offset: new_offset.unwrap_or(end),
                metadata: committed.metadata.clone(),
            });
        }
        if !offsets.is_empty() {
            translated.push((group.group.clone(), offsets));
        }
    }
    translated
}
