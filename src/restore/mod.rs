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
//!
//! Files: `plan` (what a restore would do, and the archive check before it), `resume`
//! (continuing an interrupted restore), `replay` (writing records), `offsets` (translating
//! group offsets), `outcome` (how a restore that stops says what it wrote).

mod offsets;
mod outcome;
mod plan;
mod replay;
mod resume;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use crate::error::Created;
pub(crate) use crate::error::{RestoreStop, TopicWritten, WritePhase, Written};
use offsets::translate_groups;
pub(crate) use outcome::unless_cancelled;
use outcome::{check_stop, flush, Stage, StallWatch};
pub(crate) use plan::archive_problems;
pub use plan::{check_archive, plan_restore};
use replay::{in_window, replay, ReplayResults};
use resume::{append_start_ends, check_resume_points, resume_points};

use crate::archive::{
    CommittedOffset, ContentHasher, Encryption, EncryptionKey, Manifest, PartitionBackup, RecordRef,
};
use crate::kafka::{self, ClientSettings, KafkaError, RecordWriter, TopicToCreate};
use crate::progress::{human_time, Progress};
use crate::read::{
    check_segments, decode_fetched, fetch_segment, key_for_backup, read_segment, ObjectProblem,
    SegmentCheck,
};
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
    /// What the restored consumer groups are called in the target.
    pub group_names: GroupNames,
    pub parallelism: usize,
    /// Continue an interrupted restore: target topics that exist are continued (after
    /// checking that they hold exactly the backup's first records), the others created.
    pub resume: bool,
    /// The key of an encrypted backup (checked against the manifest's key id).
    pub encryption_key: Option<EncryptionKey>,
    /// Fail when records wait and the target acknowledges none of them for this long.
    pub stall_timeout: Duration,
    /// Set on Ctrl-C / SIGTERM: every phase stops within a fraction of a second, except that
    /// a topic-creation request or a group commit in flight is answered first (within the
    /// request timeout), so what the run created is known.
    pub cancel: Arc<AtomicBool>,
}

/// What a restored consumer group is called in the target. Its committed offsets are
/// translated either way (see the module docs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum GroupNames {
    /// Each group under its own name (`restore`).
    #[default]
    Same,
    /// Each group under this prefix followed by its own name (`drill`): the target's own
    /// groups are never touched.
    Prefixed(String),
}

impl GroupNames {
    /// The name backup group `group` gets in the target.
    pub fn target(&self, group: &str) -> String {
        match self {
            GroupNames::Same => group.to_string(),
            GroupNames::Prefixed(prefix) => format!("{prefix}{group}"),
        }
    }
}

impl RestoreOptions {
    /// The checks that need nothing but the options: options that contradict each other.
    /// [`plan_restore`] makes them too; a caller makes them first to refuse before reading.
    pub fn check(&self) -> Result<(), Error> {
        if self.resume && self.if_exists != IfExists::Fail {
            return Err(Error::InvalidOptions(
                "--resume continues the topics an interrupted restore created; it cannot be combined with --if-exists skip or append".into(),
            ));
        }
        if let (Some(from), Some(until)) = (self.from_time, self.until) {
            if from > until {
                return Err(Error::InvalidOptions(format!(
                    "--from-time {} is after --until {}: no record could be restored; give a window whose start is at or before its end",
                    human_time(from),
                    human_time(until)
                )));
            }
        }
        Ok(())
    }
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
    /// The topics created and the groups committed to (a drill deletes exactly these).
    #[serde(skip)]
    pub created: Created,
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
                created: stage.created.clone(),
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
    progress.records_expected.store(
        jobs.iter().map(|j| j.partition.records).sum(),
        Ordering::Relaxed,
    );
    progress.bytes_expected.store(
        jobs.iter().map(|j| j.partition.raw_bytes).sum(),
        Ordering::Relaxed,
    );
    // Last: a total of partitions tells the reporter the plan is complete.
    progress
        .partitions_total
        .store(jobs.len() as u64, Ordering::Relaxed);

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
        // Awaited even when interrupted (one request, answered within the request timeout):
        // its answer says which topics this run created, the only ones a drill deletes.
        let answer = kafka::create_topics(&options.client, &to_create).await;
        stage.created.topics = answer.created;
        if let Some(refused) = answer.refused {
            return Err(refused.into());
        }
        unless_cancelled(cancel, kafka::wait_for_topics(&options.client, &to_create)).await??;
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
            if cancel.load(Ordering::Relaxed) {
                return Err(RestoreStop::Interrupted);
            }
            let client = options.client.clone();
            let group = options.group_names.target(&group);
            let named = group.clone();
            // Awaited even when interrupted (within the request timeout): a drill deletes
            // only the groups this run committed offsets for.
            tokio::task::spawn_blocking(move || {
                kafka::commit_group_offsets(&client, &named, &offsets)
            })
            .await
            .expect("commits do not panic")?;
            stage.created.groups.push(group);
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
