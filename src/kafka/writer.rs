//! Writing into a cluster: creating topics, and an idempotent producer that replays archived
//! records (same partition, key, value, headers, timestamp) and reports where each marked
//! record landed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError as RdKafkaError;
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;

use super::snapshot::metadata_consumer;
use super::{ClientSettings, KafkaError};
use crate::archive::{RecordRef, TimestampType};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TopicToCreate {
    pub(crate) name: String,
    pub(crate) partitions: i32,
    pub(crate) replication_factor: i32,
    pub(crate) configs: Vec<(String, String)>,
}

/// What a topic-creation request did: the topics the cluster created, and the first it
/// refused (or the request's own failure). A topic that already existed is a refusal, never
/// counted as created: a restore drill deletes exactly what it created.
#[derive(Debug, Default)]
pub(crate) struct TopicsCreated {
    pub(crate) created: Vec<String>,
    pub(crate) refused: Option<KafkaError>,
}

/// Asks the cluster to create `topics` (one request, answered within the request timeout).
/// Call [`wait_for_topics`] next.
pub(crate) async fn create_topics(
    settings: &ClientSettings,
    topics: &[TopicToCreate],
) -> TopicsCreated {
    if topics.is_empty() {
        return TopicsCreated::default();
    }
    let admin: AdminClient<DefaultClientContext> = match settings.config(&[], &[]).create() {
        Ok(admin) => admin,
        Err(source) => {
            return TopicsCreated {
                created: Vec::new(),
                refused: Some(KafkaError::BadSetting { source }),
            }
        }
    };
    let new_topics: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|t| {
            let mut new = NewTopic::new(
                &t.name,
                t.partitions,
                TopicReplication::Fixed(t.replication_factor),
            );
            for (key, value) in &t.configs {
                new = new.set(key, value);
            }
            new
        })
        .collect();
    let options = AdminOptions::new()
        .operation_timeout(Some(settings.request_timeout))
        .request_timeout(Some(settings.request_timeout));
    match admin.create_topics(&new_topics, &options).await {
        Ok(results) => sort_created(results),
        Err(err) => TopicsCreated {
            created: Vec::new(),
            refused: Some(KafkaError::client("creating topics")(err)),
        },
    }
}

/// Sorts the broker's answer per topic into created and the first refusal.
fn sort_created(results: Vec<Result<String, (String, RDKafkaErrorCode)>>) -> TopicsCreated {
    let mut outcome = TopicsCreated::default();
    for result in results {
        match result {
            Ok(topic) => outcome.created.push(topic),
            Err((topic, code)) => {
                outcome.refused.get_or_insert(KafkaError::Broker {
                    action: "creating topic".into(),
                    resource: topic,
                    code,
                });
            }
        }
    }
    outcome
}

/// Waits until the cluster's metadata shows all the partitions of `topics`.
pub(crate) async fn wait_for_topics(
    settings: &ClientSettings,
    topics: &[TopicToCreate],
) -> Result<(), KafkaError> {
    if topics.is_empty() {
        return Ok(());
    }
    let settings = settings.clone();
    let wanted: Vec<(String, usize)> = topics
        .iter()
        .map(|t| (t.name.clone(), t.partitions as usize))
        .collect();
    tokio::task::spawn_blocking(move || wait_for_partitions(&settings, &wanted))
        .await
        .expect("metadata wait does not panic")
}

fn wait_for_partitions(
    settings: &ClientSettings,
    wanted: &[(String, usize)],
) -> Result<(), KafkaError> {
    let consumer = metadata_consumer(settings)?;
    let deadline = Instant::now() + settings.request_timeout;
    loop {
        let metadata = consumer
            .fetch_metadata(None, settings.request_timeout)
            .map_err(KafkaError::client("reading metadata"))?;
        let missing = wanted.iter().find(|(name, count)| {
            !metadata
                .topics()
                .iter()
                .any(|t| t.name() == name && t.error().is_none() && t.partitions().len() == *count)
        });
        match missing {
            None => return Ok(()),
            Some((name, _)) if Instant::now() >= deadline => {
                return Err(KafkaError::Broker {
                    action: "waiting for a created topic to appear in metadata".into(),
                    resource: name.clone(),
                    code: RDKafkaErrorCode::UnknownTopicOrPartition,
                })
            }
            Some(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// Collects delivery reports: the first failure, where marked records landed, and per
/// partition the last written offset and how many records were acknowledged.
#[derive(Default)]
pub(crate) struct DeliveryTracker {
    failure: Mutex<Option<String>>,
    marked: Mutex<HashMap<usize, i64>>,
    partitions: Mutex<HashMap<String, HashMap<i32, Delivered>>>,
    queued: AtomicU64,
    delivered: AtomicU64,
    failed: AtomicU64,
}

/// What the cluster acknowledged on one partition.
#[derive(Debug, Clone, Copy)]
struct Delivered {
    last_offset: i64,
    records: u64,
}

impl ClientContext for DeliveryTracker {}

impl ProducerContext for DeliveryTracker {
    /// 0 for an ordinary record; `n > 0` marks a record whose new offset is wanted.
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, marker: usize) {
        match result {
            Ok(message) => {
                let offset = message.offset();
                if marker != 0 {
                    self.marked
                        .lock()
                        .expect("tracker lock")
                        .insert(marker, offset);
                }
                let mut all = self.partitions.lock().expect("tracker lock");
                let partitions = match all.get_mut(message.topic()) {
                    Some(p) => p,
                    None => all.entry(message.topic().to_string()).or_default(),
                };
                let slot = partitions.entry(message.partition()).or_insert(Delivered {
                    last_offset: offset,
                    records: 0,
                });
                slot.last_offset = slot.last_offset.max(offset);
                slot.records += 1;
                // Counted last, under the lock: whoever sees the count sees the partition's.
                self.delivered.fetch_add(1, Ordering::Relaxed);
            }
            Err((err, message)) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                let mut failure = self.failure.lock().expect("tracker lock");
                failure.get_or_insert_with(|| {
                    format!(
                        "writing to {}/{} failed: {err}",
                        message.topic(),
                        message.partition()
                    )
                });
            }
        }
    }
}

impl DeliveryTracker {
    pub(crate) fn failure(&self) -> Option<String> {
        self.failure.lock().expect("tracker lock").clone()
    }

    /// Records the cluster acknowledged.
    pub(crate) fn delivered(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed)
    }

    /// Delivery reports received, good or failed: each one is progress.
    pub(crate) fn reports(&self) -> u64 {
        self.delivered() + self.failed.load(Ordering::Relaxed)
    }

    /// Records queued whose delivery report has not come yet.
    pub(crate) fn in_flight(&self) -> u64 {
        self.queued
            .load(Ordering::Relaxed)
            .saturating_sub(self.reports())
    }

    /// Records the cluster acknowledged on `topic` (all its partitions).
    pub(crate) fn delivered_to(&self, topic: &str) -> u64 {
        self.partitions
            .lock()
            .expect("tracker lock")
            .get(topic)
            .map_or(0, |p| p.values().map(|d| d.records).sum())
    }

    /// Where the record sent with `marker` landed, once delivered.
    pub(crate) fn marked_offset(&self, marker: usize) -> Option<i64> {
        self.marked
            .lock()
            .expect("tracker lock")
            .get(&marker)
            .copied()
    }

    /// The highest offset delivered to `topic`/`partition`.
    pub(crate) fn last_offset(&self, topic: &str, partition: i32) -> Option<i64> {
        self.partitions
            .lock()
            .expect("tracker lock")
            .get(topic)?
            .get(&partition)
            .map(|d| d.last_offset)
    }
}

/// An idempotent producer (no duplicates on retry, order kept per partition). Share it
/// between threads by reference.
pub struct RecordWriter {
    producer: ThreadedProducer<DeliveryTracker>,
}

impl RecordWriter {
    /// Creates the producer and brings up its broker connection (blocking, up to the request
    /// timeout). An idempotent producer cannot send before it holds a producer id, and
    /// librdkafka asks for one on a 500 ms timer that only succeeds once a connection to a
    /// broker the metadata named is up; without this early connection the first records
    /// wait about a second. Create the writer before other slow preparation (the archive
    /// check) so that wait overlaps it.
    pub(crate) fn connect(settings: &ClientSettings) -> Result<RecordWriter, KafkaError> {
        let writer = Self::new(settings)?;
        writer
            .producer
            .client()
            .fetch_metadata(None, settings.request_timeout)
            .map_err(KafkaError::client("connecting the producer"))?;
        Ok(writer)
    }

    fn new(settings: &ClientSettings) -> Result<RecordWriter, KafkaError> {
        let producer = settings
            .config(
                &[
                    ("linger.ms", "20"),
                    ("batch.size", "1048576"),
                    ("batch.num.messages", "100000"),
                    // The queue must hold one largest record (a record larger than
                    // it would wait forever), so it is as large as message.max.bytes;
                    // the count bounds memory for small records (200,000 queued
                    // 260-byte records took restore's peak RSS to 276 MiB, 50,000 to
                    // 180 MiB, no slower).
                    ("queue.buffering.max.kbytes", "65536"),
                    ("queue.buffering.max.messages", "50000"),
                    ("message.max.bytes", "67108864"),
                ],
                &[("enable.idempotence", "true"), ("acks", "all")],
            )
            .create_with_context(DeliveryTracker::default())
            .map_err(|source| KafkaError::BadSetting { source })?;
        Ok(RecordWriter { producer })
    }

    pub(crate) fn tracker(&self) -> &DeliveryTracker {
        self.producer.context()
    }

    /// Queues one record for `topic`/`partition`, waiting while the local queue is full
    /// unless `give_up` says to stop waiting ([`KafkaError::Interrupted`]).
    pub(crate) fn send(
        &self,
        topic: &str,
        partition: i32,
        record: &RecordRef<'_>,
        marker: usize,
        give_up: &dyn Fn() -> bool,
    ) -> Result<(), KafkaError> {
        let mut headers = OwnedHeaders::new_with_capacity(record.headers.len());
        for header in &record.headers {
            let name = std::str::from_utf8(header.name).map_err(|_| KafkaError::Broker {
                action: "restoring a record".into(),
                resource: format!("{topic}/{partition} offset {} (header name is not UTF-8; Kafka clients cannot write it)", record.offset),
                code: RDKafkaErrorCode::InvalidRecord,
            })?;
            headers = headers.insert(Header {
                key: name,
                value: header.value,
            });
        }
        let mut message = BaseRecord::<[u8], [u8], usize>::with_opaque_to(topic, marker)
            .partition(partition)
            .headers(headers);
        if let Some(key) = record.key {
            message = message.key(key);
        }
        if let Some(value) = record.value {
            message = message.payload(value);
        }
        if record.timestamp_type != TimestampType::NotAvailable && record.timestamp >= 0 {
            message = message.timestamp(record.timestamp);
        }
        loop {
            match self.producer.send(message) {
                Ok(()) => {
                    self.tracker().queued.fetch_add(1, Ordering::Relaxed);
                    return Ok(());
                }
                Err((RdKafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                    if give_up() {
                        return Err(KafkaError::Interrupted);
                    }
                    message = returned;
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err((err, _)) => {
                    return Err(KafkaError::Client {
                        action: format!("producing to {topic}/{partition}"),
                        source: err,
                    })
                }
            }
        }
    }

    /// Waits until every queued record is delivered or failed.
    pub(crate) fn flush(&self, timeout: Duration) -> Result<(), KafkaError> {
        self.producer
            .flush(timeout)
            .map_err(KafkaError::client("flushing the producer"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_topic_that_already_existed_is_refused_not_created() {
        let outcome = sort_created(vec![
            Ok("p.a".into()),
            Err(("p.b".into(), RDKafkaErrorCode::TopicAlreadyExists)),
            Ok("p.c".into()),
        ]);
        assert_eq!(outcome.created, ["p.a", "p.c"]);
        match outcome.refused {
            Some(KafkaError::Broker { resource, code, .. }) => {
                assert_eq!(resource, "p.b");
                assert_eq!(code, RDKafkaErrorCode::TopicAlreadyExists);
            }
            other => panic!("expected the refusal of p.b, got {other:?}"),
        }
    }
}
