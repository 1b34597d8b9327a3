//! A logical backup: snapshot the cluster's metadata, read every selected partition up to
//! the end captured at the start, write compressed segments, and publish the manifest last.
//!
//! Pipeline: one reader thread fills a [`SegmentBuilder`] per partition; full segments go
//! through a bounded channel to compression (blocking pool) and upload (async), a few at a
//! time. Memory is bounded by segment size x (parallelism + in-flight uploads), whatever
//! the topic sizes.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinSet;

use crate::archive::ShardSpec;
use crate::archive::{
    ArchiveError, BackupId, Compression, EncryptionKey, Manifest, ManifestParts, PartitionBackup,
    SealedSegment, SegmentRef, SourceCluster, TopicBackup, TopicConfig,
};
use crate::kafka::{
    self, ClientSettings, ConsumedRecord, KafkaError, PartitionOutcome, PartitionTask, ReadOptions,
    RecordSink, SinkError,
};
use crate::progress::Progress;
use crate::read::{open_backup, publish_manifest};
use crate::selection::TopicSelection;
use crate::store::{Location, LocationLock, LockKind};
use crate::write::{SegmentBuffers, SegmentCutter, SegmentWriter};
use crate::Error;
use chain::{
    check_parent_key, continue_from, probe_live_logs, probe_requests, unusable_as_parent, Carried,
};

mod chain;
mod publish;
pub mod shard;
mod shard_run;

use publish::check_before_publishing;
pub(crate) use shard_run::ShardSummary;
use shard_run::{store_part_and_merge, ShardWait};

/// What to back up and how.
#[derive(Debug, Clone)]
pub struct BackupOptions {
    pub client: ClientSettings,
    pub selection: TopicSelection,
    pub compression: Compression,
    /// The codec's level, from [`Compression::level`]; another is refused before any work.
    pub level: i32,
    /// A segment is closed once its raw bytes reach this.
    pub segment_bytes: usize,
    pub parallelism: usize,
    pub stall_timeout: Duration,
    /// Continue from the newest complete backup at the location (store only new records).
    pub incremental: bool,
    /// Back up only this shard's partitions, as one part of a sharded run.
    pub shard: Option<ShardSpec>,
    /// With `shard`: how long to wait, once the part is stored, for the run to be published
    /// (by whichever shard finishes last; this one merges if it finds every part stored).
    pub wait_for_run: Duration,
    /// Encrypt every segment object with this key (after compression).
    pub encryption_key: Option<EncryptionKey>,
    /// Set to stop (Ctrl-C): the backup then fails and publishes nothing.
    pub cancel: Arc<AtomicBool>,
}

/// What a finished backup reports.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BackupSummary {
    pub backup_id: String,
    pub location: String,
    pub topics: u64,
    pub partitions: u64,
    pub(crate) segments: u64,
    /// Records the backup holds (carried from the parent included).
    pub records: u64,
    /// Records read from the cluster by this run.
    pub records_read: u64,
    /// Segments this run stored (the rest are carried from the parent).
    pub new_segments: u64,
    /// Bytes this run stored in them.
    pub new_stored_bytes: u64,
    /// The backup this one continues (incremental backups).
    pub parent: Option<String>,
    /// For one shard of a sharded run: which shard, and where the run stands.
    pub shard: Option<ShardSummary>,
    pub raw_bytes: u64,
    pub stored_bytes: u64,
    pub groups: usize,
    pub duration_seconds: f64,
    pub warnings: Vec<String>,
}

/// Runs one backup into `location`. On any error nothing is published: the data objects
/// written so far have no manifest and do not count as a backup.
///
/// The run holds a shared location lock naming its own id (and its parent's, once chosen)
/// from before its first object to after its manifest, so a concurrent prune keeps both;
/// and right before publishing it checks that every object the manifest names is there.
pub async fn run_backup(
    location: &Location,
    options: BackupOptions,
    progress: Arc<Progress>,
) -> Result<BackupSummary, Error> {
    if options.level != options.compression.default_level() {
        options.compression.level(Some(options.level))?;
    }
    let clock = Instant::now();
    let started_at = SystemTime::now();
    let backup_id = BackupId::new(started_at);
    let lock = LocationLock::shared(
        location,
        LockKind::Backup,
        [backup_id.clone()],
        [],
        &options.cancel,
    )
    .await?;
    let result = backup_under_lock(location, options, progress, &lock, backup_id, started_at).await;
    lock.release().await;
    let mut summary = result?;
    summary.duration_seconds = clock.elapsed().as_secs_f64();
    Ok(summary)
}

async fn backup_under_lock(
    location: &Location,
    options: BackupOptions,
    progress: Arc<Progress>,
    lock: &LocationLock,
    backup_id: BackupId,
    started_at: SystemTime,
) -> Result<BackupSummary, Error> {
    let client = options.client.clone();

    let cluster = blocking({
        let client = client.clone();
        move || kafka::describe_cluster(&client)
    })
    .await?;
    let selected: Vec<kafka::TopicInfo> = cluster
        .topics
        .iter()
        .filter(|t| options.selection.matches(&t.name, t.internal))
        .cloned()
        .collect();
    if selected.is_empty() {
        return Err(Error::NoTopicsMatch {
            selection: options.selection.describe(),
            available: cluster
                .topics
                .iter()
                .filter(|t| !t.internal)
                .map(|t| t.name.clone())
                .collect(),
        });
    }
    let names: Vec<String> = selected.iter().map(|t| t.name.clone()).collect();
    let configs = kafka::describe_topic_configs(&client, &names).await?;

    // End offsets and committed group offsets, captured together at the start.
    let (mut tasks, groups) = blocking({
        let client = client.clone();
        let selected = selected.clone();
        let shard = options.shard.clone();
        move || -> Result<_, KafkaError> {
            let consumer = kafka::metadata_consumer(&client)?;
            let mut tasks = Vec::new();
            for topic in &selected {
                for &partition in &topic.partitions {
                    if shard
                        .as_ref()
                        .is_some_and(|s| !s.owns(&topic.name, partition))
                    {
                        continue;
                    }
                    let (low, high) =
                        kafka::partition_bounds(&consumer, &client, &topic.name, partition)?;
                    tasks.push(PartitionTask {
                        topic: topic.name.clone(),
                        partition,
                        start_offset: low,
                        listed_end: high,
                    });
                }
            }
            let partitions: Vec<(String, i32)> = tasks
                .iter()
                .map(|t| (t.topic.clone(), t.partition))
                .collect();
            let groups = kafka::read_group_offsets(&client, &partitions)?;
            Ok((tasks, groups))
        }
    })
    .await?;
    let mut warnings = Vec::new();
    let parent = if options.incremental {
        match open_backup(
            location,
            &crate::archive::BackupSelector::Latest,
            options.encryption_key.as_ref(),
        )
        .await
        {
            Ok(parent) => match unusable_as_parent(&parent, cluster.cluster_id.as_deref()) {
                Some(why) => {
                    let warning =
                        format!("took a full backup instead of an incremental one: {why}");
                    tracing::warn!("{warning}");
                    warnings.push(warning);
                    None
                }
                None => Some(parent),
            },
            // Encrypted but unsealed (format version 1): never trusted as a parent.
            Err(Error::ManifestDamaged {
                backup_id,
                source: ArchiveError::Unsealed { version },
                ..
            }) => {
                let warning = format!(
                    "took a full backup instead of an incremental one: {}",
                    chain::unsealed_parent(&backup_id, version)
                );
                tracing::warn!("{warning}");
                warnings.push(warning);
                None
            }
            Err(Error::NoBackups { .. } | Error::OnlyDatadirBackups { .. }) => {
                tracing::info!("no earlier backup at this location: taking a full backup");
                None
            }
            Err(err) => return Err(err),
        }
    } else {
        None
    };
    if let Some(parent) = &parent {
        check_parent_key(parent, options.encryption_key.as_ref())?;
        lock.protect(parent.backup_id.clone()).await?;
    }
    let carried = match &parent {
        Some(parent) => {
            let requests = probe_requests(parent, &tasks);
            let probes = blocking({
                let client = client.clone();
                let (timeout, cancel) = (options.stall_timeout, Arc::clone(&options.cancel));
                move || probe_live_logs(&client, &requests, timeout, &cancel)
            })
            .await?;
            continue_from(
                location,
                parent,
                options.encryption_key.as_ref(),
                &probes,
                &mut tasks,
                &mut warnings,
            )
            .await?
        }
        None => vec![None; tasks.len()],
    };
    let expected: i64 = tasks
        .iter()
        .map(|t| (t.listed_end - t.start_offset).max(0))
        .sum();
    progress
        .records_expected
        .store(expected as u64, Ordering::Relaxed);
    // Last: a total of partitions tells the reporter the plan is complete.
    progress
        .partitions_total
        .store(tasks.len() as u64, Ordering::Relaxed);
    tracing::info!(backup_id = %backup_id, topics = selected.len(), partitions = tasks.len(), groups = groups.len(), "backup started");
    if let Some(key) = &options.encryption_key {
        tracing::info!(key_id = key.id(), "segments are encrypted with aes-256-gcm");
    }

    let (segments, outcomes) = read_and_store(
        location,
        &backup_id,
        &options,
        tasks.clone(),
        Arc::clone(&progress),
    )
    .await?;

    warnings.extend(outcomes.values().filter_map(|o| o.note.clone()));
    let topics = assemble_topics(&selected, configs, &tasks, segments, &outcomes, carried);
    for topic in &selected {
        if topic.replication_factor == 0 {
            warnings.push(format!(
                "topic {}: the cluster reported no replicas",
                topic.name
            ));
        }
    }
    let manifest = Manifest::assemble(ManifestParts {
        backup_id: backup_id.clone(),
        parent: parent.map(|p| p.backup_id),
        started_at,
        finished_at: SystemTime::now(),
        source: SourceCluster {
            bootstrap_servers: client.bootstrap_servers.clone(),
            cluster_id: cluster.cluster_id.clone(),
            brokers: cluster.brokers.clone(),
        },
        compression: options.compression,
        compression_level: options.level,
        segment_bytes: options.segment_bytes as u64,
        encryption: options.encryption_key.as_ref().map(EncryptionKey::describe),
        topics,
        groups,
        warnings: warnings.clone(),
    });
    let totals = manifest.totals.clone();
    let own = crate::store::own_segments(&manifest);
    if options.cancel.load(Ordering::Relaxed) {
        return Err(Error::Interrupted);
    }
    lock.check_held("the backup was not published").await?;
    check_before_publishing(location, &manifest).await?;
    let (published_id, shard) = match &options.shard {
        None => {
            publish_manifest(location, &manifest, options.encryption_key.as_ref()).await?;
            tracing::info!(backup_id = %backup_id, records = totals.records, "backup published");
            (backup_id.clone(), None)
        }
        Some(spec) => {
            let key = options.encryption_key.as_ref();
            let waiting = ShardWait {
                up_to: options.wait_for_run,
                cancel: &options.cancel,
            };
            store_part_and_merge(location, spec, manifest.clone(), key, waiting).await?
        }
    };
    Ok(BackupSummary {
        backup_id: published_id.to_string(),
        location: location.display().to_string(),
        topics: totals.topics,
        partitions: totals.partitions,
        segments: totals.segments,
        records: totals.records,
        records_read: progress.records.load(Ordering::Relaxed),
        new_segments: own.segments,
        new_stored_bytes: own.stored_bytes,
        parent: manifest.parent.as_ref().map(ToString::to_string),
        shard,
        raw_bytes: totals.raw_bytes,
        stored_bytes: totals.stored_bytes,
        groups: manifest.groups.len(),
        duration_seconds: 0.0,
        warnings,
    })
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, KafkaError> + Send + 'static,
) -> Result<T, Error> {
    Ok(tokio::task::spawn_blocking(work)
        .await
        .expect("Kafka client calls do not panic")?)
}

enum Job {
    Segment {
        task: usize,
        sealed: SealedSegment,
    },
    Done {
        task: usize,
        outcome: PartitionOutcome,
    },
}

/// Feeds records into per-partition segment cutters and hands full segments on.
struct SegmentingSink {
    cutters: Vec<SegmentCutter>,
    jobs: mpsc::Sender<Job>,
    progress: Arc<Progress>,
}

impl SegmentingSink {
    fn send(&self, job: Job) -> Result<(), SinkError> {
        self.jobs
            .blocking_send(job)
            .map_err(|_| SinkError("the upload pipeline stopped".into()))
    }
}

impl RecordSink for SegmentingSink {
    fn record(&mut self, task: usize, record: ConsumedRecord<'_>) -> Result<(), SinkError> {
        let (added, sealed) = self.cutters[task].push(|segment| {
            segment.push(
                record.offset,
                record.timestamp,
                record.timestamp_type,
                record.key,
                record.value,
                record.headers,
            )
        });
        self.progress.add_record(added as u64);
        match sealed {
            Some(sealed) => self.send(Job::Segment { task, sealed }),
            None => Ok(()),
        }
    }

    fn partition_done(&mut self, task: usize, outcome: PartitionOutcome) -> Result<(), SinkError> {
        if let Some(sealed) = self.cutters[task].finish() {
            self.send(Job::Segment { task, sealed })?;
        }
        self.progress
            .partitions_done
            .fetch_add(1, Ordering::Relaxed);
        self.send(Job::Done { task, outcome })
    }
}

type StoredSegments = BTreeMap<usize, Vec<SegmentRef>>;

/// Runs the reader and the compress+upload pipeline; returns each task's segments and outcome.
async fn read_and_store(
    location: &Location,
    backup_id: &BackupId,
    options: &BackupOptions,
    tasks: Vec<PartitionTask>,
    progress: Arc<Progress>,
) -> Result<(StoredSegments, BTreeMap<usize, PartitionOutcome>), Error> {
    let (jobs_tx, mut jobs_rx) = mpsc::channel::<Job>(1);
    let read_options = ReadOptions {
        parallelism: options.parallelism,
        stall_timeout: options.stall_timeout,
        cancel: Arc::clone(&options.cancel),
        ..ReadOptions::default()
    };
    let reader_tasks = tasks.clone();
    let client = options.client.clone();
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let upload_slots = cores.min(options.parallelism.max(1));
    let uploads = Arc::new(Semaphore::new(upload_slots));
    // Enough free buffers for every partition being read and every segment being stored.
    let buffers = SegmentBuffers::new(options.segment_bytes, options.parallelism + upload_slots);
    let mut sink = SegmentingSink {
        cutters: (0..tasks.len())
            .map(|_| SegmentCutter::new(&buffers))
            .collect(),
        jobs: jobs_tx,
        progress,
    };
    let writer = SegmentWriter {
        location: location.clone(),
        backup_id: backup_id.clone(),
        compression: options.compression,
        level: options.level,
        encryption_key: options.encryption_key.clone(),
        buffers,
    };
    let reader = tokio::task::spawn_blocking(move || {
        kafka::read_partitions(&client, &reader_tasks, &read_options, &mut sink)
    });

    let mut in_flight: JoinSet<Result<(usize, SegmentRef), Error>> = JoinSet::new();
    let mut segments: StoredSegments = BTreeMap::new();
    let mut outcomes = BTreeMap::new();
    let mut failure: Option<Error> = None;

    while let Some(job) = jobs_rx.recv().await {
        match job {
            Job::Done { task, outcome } => {
                outcomes.insert(task, outcome);
            }
            Job::Segment { .. } if failure.is_some() => {}
            Job::Segment { task, sealed } => {
                let permit = Arc::clone(&uploads)
                    .acquire_owned()
                    .await
                    .expect("semaphore never closes");
                let (writer, topic, partition) = (
                    writer.clone(),
                    tasks[task].topic.clone(),
                    tasks[task].partition,
                );
                in_flight.spawn(async move {
                    let entry = writer.store(topic, partition, sealed).await?;
                    drop(permit);
                    Ok((task, entry))
                });
            }
        }
        while let Some(done) = in_flight.try_join_next() {
            if let Err(err) = collect(done, &mut segments) {
                failure.get_or_insert(err);
                options.cancel.store(true, Ordering::Relaxed);
                jobs_rx.close();
            }
        }
    }
    while let Some(done) = in_flight.join_next().await {
        if let Err(err) = collect(done, &mut segments) {
            failure.get_or_insert(err);
        }
    }
    let read_result = reader.await.expect("the reader does not panic");
    if let Some(err) = failure {
        return Err(err);
    }
    match read_result {
        Err(KafkaError::Interrupted) => return Err(Error::Interrupted),
        Err(err) => return Err(err.into()),
        Ok(()) => {}
    }
    Ok((segments, outcomes))
}

fn collect(
    done: Result<Result<(usize, SegmentRef), Error>, tokio::task::JoinError>,
    segments: &mut StoredSegments,
) -> Result<(), Error> {
    let (task, entry) = done.expect("upload tasks do not panic")?;
    segments.entry(task).or_default().push(entry);
    Ok(())
}

fn assemble_topics(
    selected: &[kafka::TopicInfo],
    configs: Vec<Vec<TopicConfig>>,
    tasks: &[PartitionTask],
    mut segments: StoredSegments,
    outcomes: &BTreeMap<usize, PartitionOutcome>,
    carried: Vec<Option<Carried>>,
) -> Vec<TopicBackup> {
    let mut topics: Vec<TopicBackup> = selected
        .iter()
        .zip(configs)
        .map(|(info, configs)| TopicBackup {
            name: info.name.clone(),
            internal: info.internal,
            partition_count: info.partitions.len() as i32,
            replication_factor: info.replication_factor,
            configs,
            partitions: Vec::new(),
        })
        .collect();
    for ((index, task), carried) in tasks.iter().enumerate().zip(carried) {
        let mut new = segments.remove(&index).unwrap_or_default();
        new.sort_by_key(|s| s.first_offset);
        let outcome = &outcomes[&index];
        let partition = match carried {
            // Carried segments may begin below the log start: the records and first timestamp
            // the parent counted for what is still live are taken from it.
            Some(c) => {
                let new_records: u64 = new.iter().map(|s| s.records).sum();
                let first_timestamp = c
                    .first_timestamp
                    .or_else(|| new.first().and_then(|s| s.first_timestamp));
                let all = c.segments.into_iter().chain(new).collect();
                PartitionBackup {
                    records: c.records + new_records,
                    first_timestamp,
                    ..PartitionBackup::over_segments(
                        task.partition,
                        c.log_start,
                        outcome.end_offset,
                        outcome.high_watermark,
                        all,
                    )
                }
            }
            None => PartitionBackup::over_segments(
                task.partition,
                task.start_offset,
                outcome.end_offset,
                outcome.high_watermark,
                new,
            ),
        };
        let topic = topics
            .iter_mut()
            .find(|t| t.name == task.topic)
            .expect("every task belongs to a selected topic");
        topic.partitions.push(partition);
    }
    topics
}
