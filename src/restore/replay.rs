//! Replaying records: every partition's segments through the producer, a few partitions
//! at a time, with the time window and the record bookkeeping offset translation needs.

use super::*;

/// What replaying found, per (source topic, partition).
pub(super) type ReplayResults = HashMap<(String, i32), PartitionResult>;

/// Replays all partitions, `parallelism` at a time, each on a blocking thread that
/// prefetches its next segment while producing the current one.
pub(super) async fn replay(
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

pub(super) struct ReplayContext<'a> {
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

pub(super) fn in_window(record: &RecordRef<'_>, (from, until): (Option<i64>, Option<i64>)) -> bool {
    from.is_none_or(|from| record.timestamp >= from)
        && until.is_none_or(|until| record.timestamp <= until)
}

pub(super) fn replay_partition(
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
        let (location, entry) = (context.location.clone(), segments[index].clone());
        context
            .runtime
            .spawn(async move { fetch_segment(&location, &entry).await })
    };
    let mut next = (!segments.is_empty()).then(|| fetch(0));
    // Each segment is decoded into the memory of the one before.
    let mut spare = Vec::new();
    for index in 0..segments.len() {
        let stored = context
            .runtime
            .block_on(next.take().expect("a fetch is always queued"))
            .expect("segment downloads do not panic")?;
        if index + 1 < segments.len() {
            next = Some(fetch(index + 1));
        }
        let records = decode_fetched(
            &stored,
            &segments[index],
            context.encryption_key,
            std::mem::take(&mut spare),
        )?;
        drop(stored);
        for record in records.iter() {
            let record = record.map_err(|source| Error::Archive {
                key: segments[index].key.clone(),
                source,
            })?;
            if !job.partition.holds(record.offset) {
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
            context.progress.add_record(record.raw_len() as u64);
            result.written += 1;
            result.bytes += size as u64;
        }
        spare = records.into_buffer();
        if context.stopping() {
            return Err(Error::Interrupted);
        }
        if let Some(failure) = context.writer.tracker().failure() {
            return Err(Error::Delivery(failure));
        }
    }
    Ok(result)
}
