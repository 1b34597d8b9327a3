//! Backups against a real broker: every field kept, metadata captured, S3 destination, and
//! a backup killed before its manifest does not exist.

use kafkasnap::store::Location;

use crate::fixture::{
    filled_source, path_str, read_backup, read_backup_at, CUSTOMERS, GROUP, ORDERS,
    ORDERS_PARTITIONS,
};
use crate::harness::{kafkasnap, kafkasnap_ok, Broker, S3Server};

#[tokio::test(flavor = "multi_thread")]
async fn backup_keeps_every_record_field_and_the_cluster_metadata() {
    let source = filled_source();
    let dir = tempfile::tempdir().unwrap();
    // Small segments so partitions span several segment objects.
    let out = crate::harness::backup_to(
        &source.broker.bootstrap,
        dir.path(),
        &["--segment-bytes", "65536", "--output", "json"],
    );
    let summary: serde_json::Value = serde_json::from_str(&out).unwrap();
    let expected_records = source
        .orders
        .iter()
        .chain(&source.customers)
        .map(Vec::len)
        .sum::<usize>();
    assert_eq!(summary["records"], expected_records as u64, "{out}");

    let (manifest, orders) = read_backup(path_str(dir.path()), ORDERS).await;
    assert_eq!(
        orders, source.orders,
        "records of {ORDERS} differ from the broker's (offsets included)"
    );
    let (_, customers) = read_backup(path_str(dir.path()), CUSTOMERS).await;
    assert_eq!(customers, source.customers);

    let topic = manifest.topic(ORDERS).unwrap();
    assert_eq!(topic.partition_count, ORDERS_PARTITIONS);
    assert_eq!(topic.replication_factor, 1);
    for (partition, records) in topic.partitions.iter().zip(&source.orders) {
        assert!(
            partition.segments.len() > 1,
            "expected several segments in partition {}",
            partition.partition
        );
        assert_eq!(partition.records, records.len() as u64);
        assert_eq!(partition.start_offset, records[0].offset);
        assert_eq!(partition.end_offset, records.last().unwrap().offset + 1);
        assert_eq!(partition.first_timestamp, Some(records[0].timestamp));
    }
    let compacted = manifest.topic(CUSTOMERS).unwrap();
    let policy = compacted
        .configs
        .iter()
        .find(|c| c.name == "cleanup.policy")
        .expect("cleanup.policy captured");
    assert_eq!(policy.value.as_deref(), Some("compact"));
    let group = manifest
        .groups
        .iter()
        .find(|g| g.group == GROUP)
        .expect("group captured");
    let captured: Vec<(i32, i64)> = group
        .offsets
        .iter()
        .filter(|o| o.topic == ORDERS)
        .map(|o| (o.partition, o.offset))
        .collect();
    assert_eq!(captured, source.committed);
    assert_eq!(manifest.source.cluster_id.as_deref(), Some("source"));
    assert!(
        manifest.topics.iter().all(|t| !t.name.starts_with("__")),
        "internal topics are excluded by default"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn backup_to_s3_reads_back_identically() {
    let source = filled_source();
    let s3 = S3Server::start("backups");
    kafkasnap_ok(
        &[
            "backup",
            "-b",
            &source.broker.bootstrap,
            "--to",
            "s3://backups/nightly/kafka",
            "--include",
            "order\\..*",
        ],
        &s3.env(),
    );
    let store = object_store::aws::AmazonS3Builder::new()
        .with_endpoint(&s3.endpoint)
        .with_allow_http(true)
        .with_bucket_name("backups")
        .with_access_key_id(crate::harness::S3_KEY)
        .with_secret_access_key(crate::harness::S3_SECRET)
        .with_region("us-east-1")
        .build()
        .unwrap();
    let store = object_store::prefix::PrefixStore::new(store, "nightly/kafka");
    let location = Location::from_store(std::sync::Arc::new(store), "test s3");
    let (manifest, orders) = read_backup_at(&location, ORDERS).await;
    assert_eq!(orders, source.orders);
    assert!(
        manifest.topic(CUSTOMERS).is_none(),
        "--include must leave {CUSTOMERS} out"
    );
    // The objects really are in the server's bucket.
    let bucket_files = walk_names(&s3.root.path().join("backups/nightly/kafka/backups"));
    assert!(
        bucket_files.iter().any(|f| f.ends_with("manifest.json")),
        "{bucket_files:?}"
    );
}

#[test]
fn a_backup_killed_before_its_manifest_does_not_exist() {
    let broker = Broker::start("big");
    crate::harness::fill_bulk(&broker, "bulk", 1, 150_000);
    let dir = tempfile::tempdir().unwrap();
    // Kill it as soon as it has written its first data object.
    let mut child = crate::harness::backup_in_flight(&broker, dir.path(), &[]);
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        !crate::harness::has_manifest(dir.path()),
        "a manifest exists after the kill"
    );

    let listing = kafkasnap_ok(&["ls", path_str(dir.path())], &[]);
    assert!(listing.contains("INCOMPLETE"), "{listing}");
    let restore = kafkasnap(
        &[
            "restore",
            "-b",
            &broker.bootstrap,
            "--from",
            path_str(dir.path()),
        ],
        &[],
    );
    assert!(!restore.status.success());
    assert!(
        crate::harness::stderr_of(&restore).contains("no complete backup"),
        "{}",
        crate::harness::stderr_of(&restore)
    );
    let crashed = crate::harness::only_backup_id(dir.path());

    // The next run is complete and exact; prune (past the grace period) removes the leftovers.
    let summary: serde_json::Value = serde_json::from_str(
        crate::harness::backup_to(&broker.bootstrap, dir.path(), &["--output", "json"]).trim(),
    )
    .unwrap();
    assert_eq!(summary["records"], 150_000, "{summary}");
    kafkasnap_ok(
        &[
            "verify",
            path_str(dir.path()),
            "--against",
            &broker.bootstrap,
        ],
        &[],
    );
    kafkasnap_ok(
        &[
            "prune",
            path_str(dir.path()),
            "--keep-last",
            "1",
            "--grace",
            "0s",
        ],
        &[],
    );
    assert!(
        !dir.path().join("backups").join(&crashed).exists(),
        "the crashed backup's objects are gone"
    );
    let listing = kafkasnap_ok(&["ls", path_str(dir.path())], &[]);
    assert!(!listing.contains("INCOMPLETE"), "{listing}");
    assert!(
        listing.contains(summary["backup_id"].as_str().unwrap()),
        "{listing}"
    );
}

fn walk_names(dir: &std::path::Path) -> Vec<String> {
    crate::harness::files_under(dir)
        .iter()
        .map(|p| p.display().to_string())
        .collect()
}

/// Random bytes: incompressible, so a slow codec level makes the upload pipeline the bottleneck.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

fn produce_in_a_transaction(bootstrap: &str, topic: &str, partitions: i32) {
    use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
    let producer: ThreadedProducer<rdkafka::producer::DefaultProducerContext> =
        crate::harness::client(bootstrap)
            .set("transactional.id", format!("{topic}-writer"))
            .create()
            .unwrap();
    let timeout = std::time::Duration::from_secs(30);
    producer.init_transactions(timeout).unwrap();
    producer.begin_transaction().unwrap();
    for partition in 0..partitions {
        producer
            .send(
                BaseRecord::<[u8], [u8]>::to(topic)
                    .partition(partition)
                    .payload(b"in a transaction"),
            )
            .map_err(|(e, _)| e)
            .unwrap();
    }
    producer.commit_transaction(timeout).unwrap();
}

/// End-of-partition is decided per topic and partition: a small topic reaching the end of its
/// partition 0 must not end a large topic's partition 0 while the reader waits on uploads.
#[tokio::test(flavor = "multi_thread")]
async fn end_of_one_topics_partition_never_ends_another_topics_partition_short() {
    use crate::harness::{create_topic, produce, TestRecord};
    let broker = Broker::start("eof-per-topic");
    create_topic(&broker.bootstrap, "small", 2, &[]);
    create_topic(&broker.bootstrap, "large", 2, &[]);
    let record = |partition: i32, i: usize, len: usize| TestRecord {
        partition,
        offset: -1,
        timestamp: 1_600_000_000_000 + i as i64,
        key: None,
        value: Some(noise(len, i as u64 + 1)),
        headers: vec![],
    };
    let large: Vec<TestRecord> = (0..120_000).map(|i| record(i as i32 % 2, i, 200)).collect();
    produce(&broker.bootstrap, "large", &large);
    // A committed transaction ends each of small's partitions with a marker: no record at
    // `end - 1`, so the reader learns small's end from end-of-partition.
    produce_in_a_transaction(&broker.bootstrap, "small", 2);

    let dir = tempfile::tempdir().unwrap();
    let out = kafkasnap(
        &[
            "backup",
            "-b",
            &broker.bootstrap,
            "--to",
            path_str(dir.path()),
            "--parallelism",
            "4",
            "--compression",
            "zstd",
            "--level",
            "22",
            "--segment-bytes",
            "1048576",
            "--output",
            "json",
            "--log-level",
            "kafkasnap=debug",
        ],
        &[],
    );
    let log = crate::harness::stderr_of(&out);
    assert!(out.status.success(), "{log}");
    let misjudged: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("end-of-partition below") && l.contains("topic=large"))
        .collect();
    assert!(
        misjudged.is_empty(),
        "small's end-of-partition was applied to large: {misjudged:?}"
    );
    let out = String::from_utf8(out.stdout).unwrap();
    let summary: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(summary["records"], 120_002, "{out}");
    let (manifest, stored) = read_backup(path_str(dir.path()), "large").await;
    assert!(manifest.warnings.is_empty(), "{:?}", manifest.warnings);
    for (partition, records) in stored.iter().enumerate() {
        let values: Vec<&[u8]> = records.iter().filter_map(|r| r.value.as_deref()).collect();
        let produced: Vec<&[u8]> = large
            .iter()
            .filter(|r| r.partition == partition as i32)
            .filter_map(|r| r.value.as_deref())
            .collect();
        assert_eq!(values.len(), produced.len(), "large/{partition}");
        assert!(values == produced, "large/{partition}: values differ");
    }
}
