//! The backup's read-and-store pipeline: one reader thread fills a segment cutter per
//! partition; full segments go through a bounded channel to compression (blocking pool) and
//! upload (async), a few at a time.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinSet;

use super::BackupOptions;
use crate::archive::{BackupId, SealedSegment, SegmentRef};
use crate::kafka::{
    self, ConsumedRecord, KafkaError, PartitionOutcome, PartitionTask, ReadOptions, RecordSink,
    SinkError,
};
use crate::progress::Progress;
use crate::store::Location;
use crate::write::{SegmentBuffers, SegmentCutter};
use crate::Error;

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

pub(super) type StoredSegments = BTreeMap<usize, Vec<SegmentRef>>;

/// Runs the reader and the compress+upload pipeline; returns each task's segments and outcome.
pub(super) async fn read_and_store(
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
        finish_early: options.finish_early.clone(),
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
    let writer = super::segment_writer(location, backup_id, options, buffers);
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
