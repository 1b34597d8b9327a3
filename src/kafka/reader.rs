//! Reads whole partitions, from a start offset to the end offset captured when reading
//! began, `parallelism` partitions at a time, through one consumer. Records go to a
//! [`RecordSink`]; the reader never buffers them itself.
//!
//! End offsets: ListOffsets("latest") gives the end on Apache Kafka but under-reports it on
//! some brokers (tansu: last batch's base offset + 1). The high watermark in the first Fetch
//! response is right everywhere, so a partition's end is the larger of the two, fixed when
//! its first record arrives. A partition is done when a record at `end - 1` arrives, or the
//! consumer reports end-of-partition at or past `end`, or (read_committed stopped short by
//! trailing transaction markers or an open transaction) it sat at end-of-partition for
//! `eof_grace` with the consumer idle (an empty poll since: time spent delivering other
//! partitions' records, or waiting on the sink, is not a sign of the end). librdkafka's
//! end-of-partition event names only a partition number, so it is matched to one topic's
//! partition by the consumer's positions (see [`end_of_partition`]).

use std::collections::VecDeque;
use std::ffi::CString;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::bindings as rdsys;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError as RdKafkaError;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{Offset, Timestamp, TopicPartitionList};

pub(crate) use super::headers::MessageHeaders;
use super::{ClientSettings, KafkaError};
use crate::archive::TimestampType;

/// One partition to read.
#[derive(Debug, Clone)]
pub(crate) struct PartitionTask {
    pub(crate) topic: String,
    pub(crate) partition: i32,
    pub(crate) start_offset: i64,
    /// The end ListOffsets reported; the reader may raise it (see module docs).
    pub(crate) listed_end: i64,
}

/// How a partition's read ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PartitionOutcome {
    /// Every record below this offset that the broker served was delivered to the sink.
    pub(crate) end_offset: i64,
    /// The end captured when reading began.
    pub(crate) high_watermark: i64,
    /// Set when the read stopped short of `high_watermark` (open transaction, markers).
    pub(crate) note: Option<String>,
}

/// One consumed record, borrowed from the consumer.
pub(crate) struct ConsumedRecord<'a> {
    pub(crate) offset: i64,
    pub(crate) timestamp: i64,
    pub(crate) timestamp_type: TimestampType,
    pub(crate) key: Option<&'a [u8]>,
    pub(crate) value: Option<&'a [u8]>,
    pub(crate) headers: MessageHeaders<'a>,
}

/// Why a sink refused a record (the pipeline behind it failed or was cancelled).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SinkError(pub String);

/// Where the reader delivers records; `task` indexes the tasks given to [`read_partitions`].
pub(crate) trait RecordSink {
    fn record(&mut self, task: usize, record: ConsumedRecord<'_>) -> Result<(), SinkError>;
    fn partition_done(&mut self, task: usize, outcome: PartitionOutcome) -> Result<(), SinkError>;
}

#[derive(Debug, Clone)]
pub(crate) struct ReadOptions {
    pub(crate) parallelism: usize,
    /// A partition that delivers nothing for this long fails the read.
    pub(crate) stall_timeout: Duration,
    /// How long to sit at end-of-partition below the captured end before finishing.
    pub(crate) eof_grace: Duration,
    /// Set from outside to stop reading (Ctrl-C, a failed upload).
    pub(crate) cancel: Arc<AtomicBool>,
    /// Ends the read early but cleanly (a follower's checkpoint).
    pub(crate) finish_early: Option<FinishEarly>,
}

/// When a read ends where it stands rather than at the captured ends: once `now` is set (a
/// follower asked to stop) or `at` has passed (its checkpoint is due). Every partition being
/// read then finishes after the last record it delivered, and every partition not started
/// yet finishes at its start offset, so what was read can be published and the next read
/// continues from there. Checked with the timers (not per record).
#[derive(Debug, Clone)]
pub struct FinishEarly {
    pub now: Arc<AtomicBool>,
    pub at: Instant,
}

impl FinishEarly {
    fn due(&self) -> bool {
        self.now.load(Ordering::Relaxed) || Instant::now() >= self.at
    }
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            parallelism: 4,
            stall_timeout: Duration::from_secs(120),
            eof_grace: Duration::from_secs(2),
            cancel: Arc::new(AtomicBool::new(false)),
            finish_early: None,
        }
    }
}

struct ActivePartition {
    task: usize,
    end: i64,
    end_fixed: bool,
    next_offset: i64,
    at_eof_since: Option<Instant>,
    /// A poll came back empty since `at_eof_since` was set: the consumer had nothing queued,
    /// so the wait at end-of-partition is not just time spent on other partitions' records.
    idle_since_eof: bool,
    last_progress: Instant,
    /// Set per record, folded into `last_progress` by the timer check (no clock read per record).
    progressed: bool,
}

/// Timers are checked after this many records, and whenever a poll comes back empty.
const RECORDS_BETWEEN_TIMER_CHECKS: u32 = 4096;

/// Reads every task's partition completely (blocking; run it on its own thread).
pub(crate) fn read_partitions<S: RecordSink>(
    settings: &ClientSettings,
    tasks: &[PartitionTask],
    options: &ReadOptions,
    sink: &mut S,
) -> Result<(), KafkaError> {
    let consumer: BaseConsumer = settings
        .config(
            &[
                // Needed for assign(); the reader never joins the group or commits.
                ("group.id", "kafkasnap-reader"),
                ("isolation.level", "read_committed"),
                ("auto.offset.reset", "earliest"),
                ("max.partition.fetch.bytes", "8388608"),
                ("fetch.max.bytes", "67108864"),
                ("queued.max.messages.kbytes", "32768"),
                ("fetch.wait.max.ms", "100"),
            ],
            &[
                ("enable.partition.eof", "true"),
                ("enable.auto.commit", "false"),
                ("enable.auto.offset.store", "false"),
            ],
        )
        .create()
        .map_err(|source| KafkaError::BadSetting { source })?;
    let mut order: Vec<usize> = (0..tasks.len()).collect();
    if options.finish_early.is_some() {
        // A read that may end early starts with the partitions furthest behind, so none is
        // left unread round after round.
        order.sort_by_key(|&t| std::cmp::Reverse(tasks[t].listed_end - tasks[t].start_offset));
    }
    let mut pending: VecDeque<usize> = order.into();
    let mut active: Vec<ActivePartition> = Vec::new();
    let parallelism = options.parallelism.max(1);
    let mut records_since_check = 0u32;

    loop {
        while active.len() < parallelism {
            let Some(task) = pending.pop_front() else {
                break;
            };
            let t = &tasks[task];
            if t.listed_end <= t.start_offset {
                let outcome = PartitionOutcome {
                    end_offset: t.start_offset,
                    high_watermark: t.listed_end.max(t.start_offset),
                    note: None,
                };
                sink.partition_done(task, outcome)?;
                continue;
            }
            consumer
                .incremental_assign(&single(t, Offset::Offset(t.start_offset))?)
                .map_err(KafkaError::client(format!(
                    "assigning {}/{}",
                    t.topic, t.partition
                )))?;
            active.push(ActivePartition {
                task,
                end: t.listed_end,
                end_fixed: false,
                next_offset: t.start_offset,
                at_eof_since: None,
                idle_since_eof: false,
                last_progress: Instant::now(),
                progressed: false,
            });
        }
        if active.is_empty() {
            return Ok(());
        }
        if options.cancel.load(Ordering::Relaxed) {
            return Err(KafkaError::Interrupted);
        }
        let mut check_now = true;
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => {
                records_since_check += 1;
                check_now = records_since_check >= RECORDS_BETWEEN_TIMER_CHECKS;
                let Some(index) = find(&active, tasks, message.topic(), message.partition()) else {
                    continue;
                };
                let finished = deliver(&consumer, &mut active[index], tasks, &message, sink)?;
                if finished {
                    let done = active.swap_remove(index);
                    finish(&consumer, tasks, done, None, sink)?;
                }
            }
            Some(Err(RdKafkaError::PartitionEOF(partition))) => {
                let positions = consumer
                    .position()
                    .map_err(KafkaError::client("reading consumer positions"))?;
                end_of_partition(&consumer, tasks, &mut active, &positions, partition, sink)?;
            }
            Some(Err(err)) => {
                tracing::warn!(error = %err, "consumer reported an error; librdkafka retries");
            }
            None => {
                for entry in active.iter_mut().filter(|a| a.at_eof_since.is_some()) {
                    entry.idle_since_eof = true;
                }
            }
        }
        if check_now {
            records_since_check = 0;
            check_timers(&consumer, tasks, &mut active, options, sink)?;
            if options.finish_early.as_ref().is_some_and(FinishEarly::due) {
                return finish_where_they_stand(&consumer, tasks, active, pending, sink);
            }
        }
    }
}

/// Ends the read early ([`FinishEarly`]): each active partition after the last record it
/// delivered, each pending one at its start offset (nothing read).
fn finish_where_they_stand<S: RecordSink>(
    consumer: &BaseConsumer,
    tasks: &[PartitionTask],
    active: Vec<ActivePartition>,
    pending: VecDeque<usize>,
    sink: &mut S,
) -> Result<(), KafkaError> {
    tracing::debug!(
        reading = active.len(),
        not_started = pending.len(),
        "read ended early"
    );
    for entry in active {
        let t = &tasks[entry.task];
        unassign(consumer, t)?;
        let outcome = PartitionOutcome {
            end_offset: entry.next_offset,
            high_watermark: entry.end,
            note: None,
        };
        sink.partition_done(entry.task, outcome)?;
    }
    for task in pending {
        let t = &tasks[task];
        let outcome = PartitionOutcome {
            end_offset: t.start_offset,
            high_watermark: t.listed_end.max(t.start_offset),
            note: None,
        };
        sink.partition_done(task, outcome)?;
    }
    Ok(())
}

/// Applies one end-of-partition event. librdkafka names only the partition number, and
/// one event stands for one topic's partition: of the active partitions with that number,
/// those the consumer's position shows at or past their end are done; otherwise, if none
/// is, exactly one is marked at end-of-partition, the one closest to its end (the others
/// still have records to deliver, or will report their own end-of-partition).
fn end_of_partition<S: RecordSink>(
    consumer: &BaseConsumer,
    tasks: &[PartitionTask],
    active: &mut Vec<ActivePartition>,
    positions: &TopicPartitionList,
    partition: i32,
    sink: &mut S,
) -> Result<(), KafkaError> {
    let mut finished_one = false;
    let mut index = 0;
    while index < active.len() {
        let entry = &mut active[index];
        let t = &tasks[entry.task];
        if t.partition == partition {
            let position = position_of(positions, &t.topic, partition).unwrap_or(entry.next_offset);
            entry.next_offset = entry.next_offset.max(position);
            if entry.next_offset >= entry.end {
                let done = active.swap_remove(index);
                finish(consumer, tasks, done, None, sink)?;
                finished_one = true;
                continue;
            }
        }
        index += 1;
    }
    if finished_one {
        return Ok(());
    }
    let closest = active
        .iter_mut()
        .filter(|a| tasks[a.task].partition == partition)
        .min_by_key(|a| a.end - a.next_offset);
    if let Some(entry) = closest {
        let t = &tasks[entry.task];
        tracing::debug!(topic = %t.topic, partition, offset = entry.next_offset, end = entry.end, "at end-of-partition below the captured end");
        if entry.at_eof_since.is_none() {
            entry.at_eof_since = Some(Instant::now());
            entry.idle_since_eof = false;
        }
    }
    Ok(())
}

/// Stops fetching `task`'s partition.
fn unassign(consumer: &BaseConsumer, task: &PartitionTask) -> Result<(), KafkaError> {
    consumer
        .incremental_unassign(&single(task, Offset::Invalid)?)
        .map_err(KafkaError::client(format!(
            "unassigning {}/{}",
            task.topic, task.partition
        )))
}

fn single(task: &PartitionTask, offset: Offset) -> Result<TopicPartitionList, KafkaError> {
    let mut list = TopicPartitionList::with_capacity(1);
    list.add_partition_offset(&task.topic, task.partition, offset)
        .map_err(KafkaError::client(format!(
            "preparing {}/{}",
            task.topic, task.partition
        )))?;
    Ok(list)
}

fn find(
    active: &[ActivePartition],
    tasks: &[PartitionTask],
    topic: &str,
    partition: i32,
) -> Option<usize> {
    active
        .iter()
        .position(|a| tasks[a.task].partition == partition && tasks[a.task].topic == topic)
}

fn position_of(positions: &TopicPartitionList, topic: &str, partition: i32) -> Option<i64> {
    match positions.find_partition(topic, partition)?.offset() {
        Offset::Offset(offset) => Some(offset),
        _ => None,
    }
}

/// The high watermark from the latest Fetch response (cached by librdkafka; no request).
pub(super) fn fetched_high_watermark(
    consumer: &BaseConsumer,
    topic: &str,
    partition: i32,
) -> Option<i64> {
    let topic = CString::new(topic).ok()?;
    let (mut low, mut high) = (-1i64, -1i64);
    // SAFETY: valid client pointer and NUL-terminated topic; librdkafka only writes the two i64s.
    let err = unsafe {
        rdsys::rd_kafka_get_watermark_offsets(
            consumer.client().native_ptr(),
            topic.as_ptr(),
            partition,
            &mut low,
            &mut high,
        )
    };
    (err == rdsys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR && high >= 0).then_some(high)
}

/// Hands one message to the sink; true when it completes its partition.
fn deliver<S: RecordSink>(
    consumer: &BaseConsumer,
    entry: &mut ActivePartition,
    tasks: &[PartitionTask],
    message: &BorrowedMessage<'_>,
    sink: &mut S,
) -> Result<bool, KafkaError> {
    let t = &tasks[entry.task];
    if !entry.end_fixed {
        if let Some(high) = fetched_high_watermark(consumer, &t.topic, t.partition) {
            entry.end = entry.end.max(high);
        }
        entry.end_fixed = true;
    }
    let offset = message.offset();
    if offset >= entry.end {
        return Ok(true); // written after the backup began: the next backup's
    }
    let (timestamp, timestamp_type) = match message.timestamp() {
        Timestamp::NotAvailable => (-1, TimestampType::NotAvailable),
        Timestamp::CreateTime(ts) => (ts, TimestampType::CreateTime),
        Timestamp::LogAppendTime(ts) => (ts, TimestampType::LogAppendTime),
    };
    let record = ConsumedRecord {
        offset,
        timestamp,
        timestamp_type,
        key: message.key(),
        value: message.payload(),
        headers: MessageHeaders::of(message),
    };
    sink.record(entry.task, record)?;
    entry.next_offset = offset + 1;
    entry.at_eof_since = None;
    entry.idle_since_eof = false;
    entry.progressed = true;
    Ok(offset >= entry.end - 1)
}

fn finish<S: RecordSink>(
    consumer: &BaseConsumer,
    tasks: &[PartitionTask],
    done: ActivePartition,
    note: Option<String>,
    sink: &mut S,
) -> Result<(), KafkaError> {
    let t = &tasks[done.task];
    unassign(consumer, t)?;
    let end_offset = if note.is_some() {
        done.next_offset
    } else {
        done.end.max(done.next_offset)
    };
    sink.partition_done(
        done.task,
        PartitionOutcome {
            end_offset,
            high_watermark: done.end,
            note,
        },
    )?;
    Ok(())
}

fn check_timers<S: RecordSink>(
    consumer: &BaseConsumer,
    tasks: &[PartitionTask],
    active: &mut Vec<ActivePartition>,
    options: &ReadOptions,
    sink: &mut S,
) -> Result<(), KafkaError> {
    let now = Instant::now();
    let mut index = 0;
    while index < active.len() {
        if std::mem::take(&mut active[index].progressed) {
            active[index].last_progress = now;
        }
        let entry = &active[index];
        let t = &tasks[entry.task];
        if entry.idle_since_eof
            && entry
                .at_eof_since
                .is_some_and(|since| now - since >= options.eof_grace)
        {
            let note = format!(
                "{}/{}: read stopped at offset {} below the captured end {} (transaction markers at the end of the log, or an open transaction whose records are not committed yet)",
                t.topic, t.partition, entry.next_offset, entry.end
            );
            let done = active.swap_remove(index);
            finish(consumer, tasks, done, Some(note), sink)?;
            continue;
        }
        if entry.at_eof_since.is_none() && now - entry.last_progress >= options.stall_timeout {
            return Err(KafkaError::Stalled {
                topic: t.topic.clone(),
                partition: t.partition,
                offset: entry.next_offset,
                end: entry.end,
                waited: options.stall_timeout,
            });
        }
        index += 1;
    }
    Ok(())
}
