//! The source data set most tests start from: topics with every fidelity case, a compacted
//! topic with configs, and a consumer group with committed offsets.

use std::path::Path;

use kafkasnap::archive::{BackupSelector, Manifest, TimestampType};
use kafkasnap::read::{open_backup, read_segment};
use kafkasnap::store::Location;

use crate::harness::{
    commit_offsets, create_topic, fidelity_record, produce, read_all, Broker, TestRecord,
};

pub const ORDERS: &str = "order.created";
pub const ORDERS_PARTITIONS: i32 = 3;
pub const ORDERS_PER_PARTITION: usize = 7_000;
pub const CUSTOMERS: &str = "user.registered";
pub const GROUP: &str = "billing";

/// A broker filled with the data set; `source` is what an independent consumer reads back.
pub struct Source {
    pub broker: Broker,
    pub orders: Vec<Vec<TestRecord>>,
    pub customers: Vec<Vec<TestRecord>>,
    /// (partition, committed offset) of GROUP on ORDERS.
    pub committed: Vec<(i32, i64)>,
}

pub fn filled_source() -> Source {
    let broker = Broker::start("source");
    create_topic(&broker.bootstrap, ORDERS, ORDERS_PARTITIONS, &[]);
    create_topic(
        &broker.bootstrap,
        CUSTOMERS,
        2,
        &[("cleanup.policy", "compact"), ("retention.ms", "86400000")],
    );
    let orders: Vec<TestRecord> = (0..ORDERS_PER_PARTITION)
        .flat_map(|i| {
            (0..ORDERS_PARTITIONS)
                .map(move |p| fidelity_record(p, i * ORDERS_PARTITIONS as usize + p as usize))
        })
        .collect();
    produce(&broker.bootstrap, ORDERS, &orders);
    let customers: Vec<TestRecord> = (0..400)
        .map(|i| fidelity_record((i % 2) as i32, 100_000 + i))
        .collect();
    produce(&broker.bootstrap, CUSTOMERS, &customers);
    let committed = vec![(0, 1_000), (1, 0), (2, ORDERS_PER_PARTITION as i64)];
    commit_offsets(&broker.bootstrap, GROUP, ORDERS, &committed);

    let read_orders = read_all(&broker.bootstrap, ORDERS, ORDERS_PARTITIONS);
    for (partition, records) in read_orders.iter().enumerate() {
        let produced: Vec<_> = orders
            .iter()
            .filter(|r| r.partition == partition as i32)
            .map(TestRecord::content)
            .collect();
        let read: Vec<_> = records.iter().map(TestRecord::content).collect();
        assert_eq!(
            read, produced,
            "the broker did not store partition {partition} as produced"
        );
    }
    let read_customers = read_all(&broker.bootstrap, CUSTOMERS, 2);
    Source {
        broker,
        orders: read_orders,
        customers: read_customers,
        committed,
    }
}

/// Reads a backup back through the library: its manifest and every record of `topic`.
pub async fn read_backup(location: &str, topic: &str) -> (Manifest, Vec<Vec<TestRecord>>) {
    let location = Location::open(location, false).unwrap();
    read_backup_at(&location, topic).await
}

pub async fn read_backup_at(location: &Location, topic: &str) -> (Manifest, Vec<Vec<TestRecord>>) {
    let manifest = open_backup(location, &BackupSelector::Latest, None)
        .await
        .unwrap();
    let entry = manifest
        .topic(topic)
        .unwrap_or_else(|| panic!("{topic} not in backup"));
    let mut partitions = Vec::new();
    for partition in &entry.partitions {
        let mut records = Vec::new();
        for segment in &partition.segments {
            let decoded = read_segment(location, segment, None).await.unwrap();
            for record in decoded.iter() {
                let record = record.unwrap();
                assert_eq!(record.timestamp_type, TimestampType::CreateTime);
                records.push(TestRecord {
                    partition: partition.partition,
                    offset: record.offset,
                    timestamp: record.timestamp,
                    key: record.key.map(<[u8]>::to_vec),
                    value: record.value.map(<[u8]>::to_vec),
                    headers: record
                        .headers
                        .iter()
                        .map(|h| {
                            (
                                String::from_utf8(h.name.to_vec()).unwrap(),
                                h.value.map(<[u8]>::to_vec),
                            )
                        })
                        .collect(),
                });
            }
        }
        partitions.push(records);
    }
    (manifest, partitions)
}

pub fn path_str(path: &Path) -> &str {
    path.to_str().unwrap()
}
