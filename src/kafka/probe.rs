//! Probes partitions at one offset each: the first record the broker holds at or after it (its
//! offset and content digest) and the partition's high watermark. An incremental backup uses
//! it to check that a partition still continues its parent's log before reading on from there.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError as RdKafkaError;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{Offset, Timestamp, TopicPartitionList};

use super::reader::fetched_high_watermark;
use super::{ClientSettings, KafkaError, MessageHeaders};
use crate::archive::{record_digest, RecordRef, TimestampType};

/// One partition to probe at `offset` (at or above its log start).
#[derive(Debug, Clone)]
pub(crate) struct ProbeRequest {
    pub(crate) topic: String,
    pub(crate) partition: i32,
    pub(crate) offset: i64,
}

/// What the broker holds at a probed offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProbeResult {
    /// The partition's high watermark as the Fetch response gave it.
    pub(crate) high_watermark: i64,
    /// The first record at or after the offset: its offset and [`record_digest`]; `None`
    /// when the log ends at or before the offset.
    pub(crate) record: Option<(i64, String)>,
}

/// Probes every request through one consumer (blocking). Fails when a partition gives no
/// answer within `timeout`, or `cancel` is set.
pub(crate) fn probe_partitions(
    settings: &ClientSettings,
    requests: &[ProbeRequest],
    timeout: Duration,
    cancel: &AtomicBool,
) -> Result<Vec<ProbeResult>, KafkaError> {
    let mut results: Vec<Option<ProbeResult>> = vec![None; requests.len()];
    if requests.is_empty() {
        return Ok(Vec::new());
    }
    let consumer: BaseConsumer = settings
        .config(
            &[
                ("group.id", "kafkasnap-probe"),
                // Any record still at the offset counts, committed or not: the parent read it.
                ("isolation.level", "read_uncommitted"),
                // An offset past the end resets to the end: end-of-partition, no record.
                ("auto.offset.reset", "latest"),
                ("max.partition.fetch.bytes", "1048576"),
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
    let mut assignment = TopicPartitionList::with_capacity(requests.len());
    for request in requests {
        assignment
            .add_partition_offset(
                &request.topic,
                request.partition,
                Offset::Offset(request.offset),
            )
            .map_err(KafkaError::client(format!(
                "preparing {}/{}",
                request.topic, request.partition
            )))?;
    }
    consumer
        .assign(&assignment)
        .map_err(KafkaError::client("assigning the partitions to probe"))?;
    let started = Instant::now();
    let mut open = requests.len();
    while open > 0 {
        if cancel.load(Ordering::Relaxed) {
            return Err(KafkaError::Interrupted);
        }
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => {
                let found = requests
                    .iter()
                    .position(|r| r.partition == message.partition() && r.topic == message.topic());
                if let Some(index) = found.filter(|&i| results[i].is_none()) {
                    results[index] = Some(found_record(&consumer, &requests[index], &message));
                    open -= 1;
                }
            }
            Some(Err(RdKafkaError::PartitionEOF(_))) | None => {}
            Some(Err(err)) => {
                tracing::debug!(error = %err, "consumer reported an error while probing; librdkafka retries");
            }
        }
        // At end-of-partition (or between polls) a partition whose fetched high watermark is
        // at or below the offset holds nothing there. librdkafka's end-of-partition event
        // names only a partition number, so every open request is checked by its watermark.
        for (index, request) in requests.iter().enumerate() {
            if results[index].is_some() {
                continue;
            }
            let high = fetched_high_watermark(&consumer, &request.topic, request.partition);
            if let Some(high) = high.filter(|&high| high <= request.offset) {
                results[index] = Some(ProbeResult {
                    high_watermark: high,
                    record: None,
                });
                open -= 1;
            }
        }
        if open > 0 && started.elapsed() >= timeout {
            let request = requests
                .iter()
                .zip(&results)
                .find_map(|(request, result)| result.is_none().then_some(request))
                .expect("an open request");
            return Err(KafkaError::Stalled {
                topic: request.topic.clone(),
                partition: request.partition,
                offset: request.offset,
                end: fetched_high_watermark(&consumer, &request.topic, request.partition)
                    .unwrap_or(-1),
                waited: timeout,
            });
        }
    }
    Ok(results.into_iter().map(|r| r.expect("resolved")).collect())
}

fn found_record(
    consumer: &BaseConsumer,
    request: &ProbeRequest,
    message: &BorrowedMessage<'_>,
) -> ProbeResult {
    let timestamp = match message.timestamp() {
        Timestamp::NotAvailable => -1,
        Timestamp::CreateTime(ts) | Timestamp::LogAppendTime(ts) => ts,
    };
    let record = RecordRef {
        offset: message.offset(),
        timestamp,
        timestamp_type: TimestampType::CreateTime,
        key: message.key(),
        value: message.payload(),
        headers: MessageHeaders::of(message).collect(),
    };
    let high_watermark = fetched_high_watermark(consumer, &request.topic, request.partition)
        .unwrap_or(message.offset() + 1)
        .max(message.offset() + 1);
    ProbeResult {
        high_watermark,
        record: Some((message.offset(), record_digest(&record))),
    }
}
