//! The content hash of live partitions: each read in full and hashed the way
//! [`ContentHasher`] hashes a backup's records, for `verify --against` and `restore --resume`.

use std::collections::BTreeMap;

use super::{
    metadata_consumer, partition_bounds, read_partitions, ClientSettings, ConsumedRecord,
    KafkaError, PartitionOutcome, PartitionTask, ReadOptions, RecordSink, SinkError,
};
use crate::archive::{ContentHasher, RecordRef, TimestampType};

struct HashingSink {
    hashers: Vec<ContentHasher>,
}

impl RecordSink for HashingSink {
    fn record(&mut self, task: usize, record: ConsumedRecord<'_>) -> Result<(), SinkError> {
        let view = RecordRef {
            offset: record.offset,
            timestamp: record.timestamp,
            timestamp_type: TimestampType::CreateTime,
            key: record.key,
            value: record.value,
            headers: record.headers.collect(),
        };
        self.hashers[task].add(&view);
        Ok(())
    }

    fn partition_done(
        &mut self,
        _task: usize,
        _outcome: PartitionOutcome,
    ) -> Result<(), SinkError> {
        Ok(())
    }
}

/// Reads the given live partitions (`(index, topic, partition)`) in full; returns index ->
/// (records, content hash), the hash as [`ContentHasher`] computes it over a backup's records.
pub(crate) fn hash_live_partitions(
    client: &ClientSettings,
    wanted: &[(usize, String, i32)],
) -> Result<BTreeMap<usize, (u64, String)>, KafkaError> {
    let consumer = metadata_consumer(client)?;
    let mut tasks = Vec::with_capacity(wanted.len());
    for (_, topic, partition) in wanted {
        let (low, high) = partition_bounds(&consumer, client, topic, *partition)?;
        tasks.push(PartitionTask {
            topic: topic.clone(),
            partition: *partition,
            start_offset: low,
            listed_end: high,
        });
    }
    let mut sink = HashingSink {
        hashers: vec![ContentHasher::new(); tasks.len()],
    };
    read_partitions(
        client,
        &tasks,
        &ReadOptions {
            parallelism: 8,
            ..ReadOptions::default()
        },
        &mut sink,
    )?;
    Ok(wanted
        .iter()
        .zip(sink.hashers)
        .map(|((index, _, _), hasher)| (*index, hasher.finish()))
        .collect())
}
