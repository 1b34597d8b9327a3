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

use crate::archive::ShardSpec;
use crate::archive::{
    ArchiveError, BackupId, Compression, EncryptionKey, Manifest, ManifestParts, PartitionBackup,
    SourceCluster, TopicBackup, TopicConfig,
};
use crate::kafka::{
    self, ClientSettings, FinishEarly, KafkaError, PartitionOutcome, PartitionTask,
};
use crate::progress::Progress;
use crate::read::open_backup;
use crate::selection::TopicSelection;
use crate::store::{Location, LocationLock, LockKind};
use crate::write::{SegmentBuffers, SegmentWriter};
use crate::Error;
use chain::{
    check_parent_key, continue_from, probe_live_logs, probe_requests, unusable_as_parent, Carried,
};

mod chain;
mod compact;
mod pipeline;
mod publish;
pub mod shard;
mod shard_run;

use pipeline::{read_and_store, StoredSegments};
use publish::{publish, PublishAs};
pub(crate) use shard_run::ShardSummary;

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
    /// Write the manifest as a delta of its parent (a follower's checkpoint, format version
    /// 3) while the chain of deltas stays shorter than this; `None`: list every segment.
    pub delta_chain_limit: Option<u64>,
    /// End the read where it stands once this is due, and publish what was read (a
    /// follower's checkpoint); `None`: read every partition to the end captured at the start.
    pub finish_early: Option<FinishEarly>,
}

/// What a finished backup reports.
#[derive(Debug, Clone, Default, serde::Serialize)]
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
    /// Raw bytes of the segments this run wrote (the chain's are `raw_bytes`).
    #[serde(skip)]
    pub raw_bytes_read: u64,
    /// Where each partition's read ended and the end it aimed for (a follower's lag).
    #[serde(skip)]
    pub positions: Vec<PartitionPosition>,
    /// Offsets retention deleted from the cluster after the parent and before this backup
    /// read them (named in `warnings`).
    #[serde(skip)]
    pub offsets_lost_to_retention: u64,
    /// Whether the manifest was written as a delta of its parent.
    #[serde(skip)]
    pub delta: bool,
}

/// One partition of a finished backup: every record below `end_offset` is in it;
/// `high_watermark` is the end the read aimed for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionPosition {
    pub topic: String,
    pub partition: i32,
    pub end_offset: i64,
    pub high_watermark: i64,
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
    let parent_depth = parent.as_ref().map(|p| p.chain_depth);
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
    let offsets_lost_to_retention = carried.iter().flatten().map(|c| c.gap).sum();
    let positions = tasks
        .iter()
        .enumerate()
        .map(|(index, task)| PartitionPosition {
            topic: task.topic.clone(),
            partition: task.partition,
            end_offset: outcomes[&index].end_offset,
            high_watermark: outcomes[&index].high_watermark,
        })
        .collect();
    let raw_bytes_read = segments.values().flatten().map(|s| s.raw_bytes).sum();
    let mut topics = assemble_topics(&selected, configs, &tasks, segments, &outcomes, carried);
    let parent_id = parent.as_ref().map(|p| p.backup_id.clone());
    let delta_depth = match (&options.delta_chain_limit, &parent_depth) {
        // A reader refuses a delta whose parent's id is not smaller than its own (a clock
        // that stepped back): list every segment then.
        _ if parent_id.as_ref().is_some_and(|p| *p >= backup_id) => None,
        (Some(limit), Some(depth)) if depth + 1 < *limit => Some(depth + 1),
        _ => None,
    };
    if options.delta_chain_limit.is_some() && delta_depth.is_none() && parent.is_some() {
        // A follower's checkpoint that lists every segment: its small ones merged first.
        let buffers = SegmentBuffers::new(options.segment_bytes, 1);
        let writer = segment_writer(location, &backup_id, &options, buffers);
        let key = options.encryption_key.as_ref();
        let done = compact::compact_small_segments(
            &writer,
            &mut topics,
            options.segment_bytes as u64,
            key,
        )
        .await?;
        if done.segments_read > 0 {
            tracing::info!(
                segments_read = done.segments_read,
                segments_written = done.segments_written,
                "small segments of earlier checkpoints merged"
            );
        }
    }
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
    let groups_count = manifest.groups.len();
    let own = crate::store::own_segments(&manifest);
    if options.cancel.load(Ordering::Relaxed) {
        return Err(Error::Interrupted);
    }
    lock.check_held("the backup was not published").await?;
    let publish_as = match (&options.shard, delta_depth) {
        (Some(spec), _) => PublishAs::ShardPart {
            spec,
            wait_for_run: options.wait_for_run,
            cancel: &options.cancel,
        },
        (None, Some(depth)) => PublishAs::Delta { depth },
        (None, None) => PublishAs::Complete,
    };
    let delta = matches!(publish_as, PublishAs::Delta { .. });
    let (published_id, shard) = publish(
        location,
        manifest,
        options.encryption_key.as_ref(),
        publish_as,
    )
    .await?;
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
        parent: parent_id.as_ref().map(ToString::to_string),
        shard,
        raw_bytes: totals.raw_bytes,
        stored_bytes: totals.stored_bytes,
        groups: groups_count,
        duration_seconds: 0.0,
        warnings,
        raw_bytes_read,
        positions,
        offsets_lost_to_retention,
        delta,
    })
}

/// The writer of `backup_id`'s segments, with the backup's codec, level and key.
fn segment_writer(
    location: &Location,
    backup_id: &BackupId,
    options: &BackupOptions,
    buffers: SegmentBuffers,
) -> SegmentWriter {
    SegmentWriter {
        location: location.clone(),
        backup_id: backup_id.clone(),
        compression: options.compression,
        level: options.level,
        encryption_key: options.encryption_key.clone(),
        buffers,
    }
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, KafkaError> + Send + 'static,
) -> Result<T, Error> {
    Ok(tokio::task::spawn_blocking(work)
        .await
        .expect("Kafka client calls do not panic")?)
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
