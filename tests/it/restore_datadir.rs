//! restore --from-datadir: real Kafka data directories (../shared/fixtures) restored into tansu
//! hold the same records, topics and translated group offsets.

use std::path::{Path, PathBuf};

use kafkasnap::datadir::{LogEntry, LogReader};

use crate::harness::{committed_offsets, kafkasnap_ok, read_all, topic_names, Broker, TestRecord};

fn fixture(name: &str) -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/fixtures/kafka-bytes")
        .join(name);
    if dir.is_dir() {
        return Some(dir);
    }
    assert!(
        std::env::var("CI").is_err(),
        "fixture {} is missing: CI must have ../shared beside the checkout",
        dir.display()
    );
    eprintln!(
        "SKIPPED: fixture {} is missing (run beside ../shared to test this)",
        dir.display()
    );
    None
}

/// The partition's records as Kafka's own files hold them (control batches left out).
fn records_on_disk(partition_dir: &Path, partition: i32) -> Vec<TestRecord> {
    if !partition_dir.exists() {
        return Vec::new(); // a topic the metadata knows whose partition lives elsewhere
    }
    let mut logs: Vec<PathBuf> = std::fs::read_dir(partition_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    logs.sort();
    let mut records = Vec::new();
    for log in logs {
        for entry in LogReader::new(std::fs::File::open(log).unwrap()) {
            let LogEntry::Batch(batch) = entry.unwrap() else {
                continue;
            };
            assert!(batch.crc_ok());
            if batch.header.is_control() {
                continue;
            }
            for r in batch.records().unwrap() {
                records.push(TestRecord {
                    partition,
                    offset: r.offset,
                    timestamp: r.timestamp,
                    key: r.key,
                    value: r.value,
                    headers: r.headers.into_iter().map(|h| (h.key, h.value)).collect(),
                });
            }
        }
    }
    records
}

fn restore_and_compare(
    name: &str,
    topics: &[(&str, i32, &[usize])],
    group: Option<(&str, &str, &[i64])>,
) {
    let Some(dir) = fixture(name) else { return };
    let target = Broker::start("from-datadir");
    kafkasnap_ok(
        &[
            "restore",
            "-b",
            &target.bootstrap,
            "--from-datadir",
            dir.to_str().unwrap(),
        ],
        &[],
    );
    for (topic, partitions, counts) in topics {
        assert!(
            topic_names(&target.bootstrap).contains(&topic.to_string()),
            "{topic} not created"
        );
        let restored = read_all(&target.bootstrap, topic, *partitions);
        for (partition, records) in restored.iter().enumerate() {
            assert_eq!(records.len(), counts[partition], "{topic}/{partition}");
            let partition_dir = dir.join(format!("{topic}-{partition}"));
            let on_disk: Vec<_> = records_on_disk(&partition_dir, partition as i32);
            let expected: Vec<_> = on_disk.iter().map(TestRecord::content).collect();
            assert_eq!(
                records.iter().map(TestRecord::content).collect::<Vec<_>>(),
                expected,
                "{topic}/{partition}"
            );
        }
    }
    if let Some((group, topic, expected)) = group {
        let committed = committed_offsets(&target.bootstrap, group, topic, expected.len() as i32);
        let committed: Vec<i64> = committed
            .into_iter()
            .map(|o| o.expect("group offset restored"))
            .collect();
        assert_eq!(committed, expected, "group {group} on {topic}");
    }
}

#[test]
fn a_kraft_data_directory_restores_into_tansu() {
    restore_and_compare(
        "ldi-poc-kraft-3.7-datadir",
        &[
            ("TestTopicPatient", 1, &[3]),
            ("Retry.TestTopicPatient", 1, &[0]),
            ("subscription.matching.SHR_PROD.persistence", 1, &[0]),
        ],
        Some(("DEVSmileCDR", "TestTopicPatient", &[3])),
    );
}

#[test]
fn zookeeper_data_directories_restore_into_tansu() {
    restore_and_compare(
        "volodymyrzee-zk-2.x-datadir",
        &[("first_topic", 3, &[11, 12, 18]), ("new_topic", 1, &[2])],
        Some(("my-firstd-application", "first_topic", &[11, 12, 18])),
    );
    restore_and_compare("kaipasubhash-zk-datadir", &[("subhash", 1, &[3])], None);
}
