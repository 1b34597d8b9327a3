//! Restores into a fresh broker: exact records, configs, partition counts, translated group
//! offsets; refusal on existing topics; --topic-map, --until, --dry-run.

use crate::fixture::{
    filled_source, path_str, CUSTOMERS, GROUP, ORDERS, ORDERS_PARTITIONS, ORDERS_PER_PARTITION,
};
use crate::harness::{
    committed_offsets, contents, kafkasnap, kafkasnap_ok, read_all, stderr_of, topic_names, Broker,
    TestRecord,
};

#[test]
fn restore_into_a_fresh_cluster_is_exact() {
    let source = filled_source();
    let target = Broker::start("target");
    let dir = tempfile::tempdir().unwrap();
    crate::harness::backup_to(
        &source.broker.bootstrap,
        dir.path(),
        &["--segment-bytes", "100000"],
    );
    let out = kafkasnap_ok(
        &[
            "restore",
            "-b",
            &target.bootstrap,
            "--from",
            path_str(dir.path()),
            "--output",
            "json",
        ],
        &[],
    );
    let summary: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(summary["groups_committed"], 1, "{out}");

    let restored = read_all(&target.bootstrap, ORDERS, ORDERS_PARTITIONS);
    assert_eq!(
        contents(&restored),
        contents(&source.orders),
        "restored {ORDERS} differs"
    );
    let restored_customers = read_all(&target.bootstrap, CUSTOMERS, 2);
    assert_eq!(contents(&restored_customers), contents(&source.customers));

    // Configs that were set on the source are set on the target.
    let configs = describe_configs(&target.bootstrap, CUSTOMERS);
    assert!(
        configs.contains(&("cleanup.policy".to_string(), "compact".to_string())),
        "{configs:?}"
    );
    assert!(
        configs.contains(&("retention.ms".to_string(), "86400000".to_string())),
        "{configs:?}"
    );

    // The group resumes at the same record on the target as on the source.
    let on_target = committed_offsets(&target.bootstrap, GROUP, ORDERS, ORDERS_PARTITIONS);
    for (partition, offset) in &source.committed {
        let translated = on_target[*partition as usize].expect("group offset restored");
        let source_records = &source.orders[*partition as usize];
        let target_records = &restored[*partition as usize];
        let next_on_source = source_records.iter().position(|r| r.offset >= *offset);
        let next_on_target = target_records.iter().position(|r| r.offset >= translated);
        assert_eq!(
            next_on_source, next_on_target,
            "partition {partition}: committed {offset} became {translated}"
        );
    }

    // A second restore into the same topics refuses, naming the topic, and writes nothing.
    let again = kafkasnap(
        &[
            "restore",
            "-b",
            &target.bootstrap,
            "--from",
            path_str(dir.path()),
        ],
        &[],
    );
    assert!(!again.status.success());
    assert!(
        stderr_of(&again).contains("already exists"),
        "{}",
        stderr_of(&again)
    );
    assert_eq!(
        read_all(&target.bootstrap, ORDERS, ORDERS_PARTITIONS)
            .iter()
            .map(Vec::len)
            .sum::<usize>(),
        ORDERS_PER_PARTITION * 3
    );
}

fn describe_configs(bootstrap: &str, topic: &str) -> Vec<(String, String)> {
    use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
    let admin: AdminClient<rdkafka::client::DefaultClientContext> =
        crate::harness::client(bootstrap).create().unwrap();
    let results = crate::harness::block_on(
        admin.describe_configs([&ResourceSpecifier::Topic(topic)], &AdminOptions::new()),
    )
    .unwrap();
    let resource = results.into_iter().next().unwrap().unwrap();
    resource
        .entries
        .into_iter()
        .filter_map(|e| Some((e.name, e.value?)))
        .collect()
}

#[test]
fn topic_map_until_and_dry_run_do_what_they_say() {
    let source = filled_source();
    let target = Broker::start("mapped");
    let dir = tempfile::tempdir().unwrap();
    crate::harness::backup_to(&source.broker.bootstrap, dir.path(), &[]);
    let before = topic_names(&target.bootstrap);

    let plan = kafkasnap_ok(
        &[
            "restore",
            "-b",
            &target.bootstrap,
            "--from",
            path_str(dir.path()),
            "--dry-run",
            "--topic-map",
            "order.created=orders.copy",
        ],
        &[],
    );
    assert!(
        plan.contains("orders.copy") && plan.contains("nothing was changed"),
        "{plan}"
    );
    assert_eq!(
        topic_names(&target.bootstrap),
        before,
        "--dry-run changed the cluster"
    );

    // Median timestamp: only records at or before it come back, under the new name.
    let mut timestamps: Vec<i64> = source
        .orders
        .iter()
        .flatten()
        .map(|r| r.timestamp)
        .collect();
    timestamps.sort_unstable();
    let until = timestamps[timestamps.len() / 2];
    kafkasnap_ok(
        &[
            "restore",
            "-b",
            &target.bootstrap,
            "--from",
            path_str(dir.path()),
            "--include",
            "order\\.created",
            "--topic-map",
            "order.created=orders.copy",
            "--until",
            &until.to_string(),
        ],
        &[],
    );
    let names = topic_names(&target.bootstrap);
    assert!(
        names.contains(&"orders.copy".to_string()) && !names.contains(&ORDERS.to_string()),
        "{names:?}"
    );
    assert!(
        !names.contains(&CUSTOMERS.to_string()),
        "--include must leave {CUSTOMERS} out: {names:?}"
    );
    let restored = read_all(&target.bootstrap, "orders.copy", ORDERS_PARTITIONS);
    let expected: Vec<Vec<TestRecord>> = source
        .orders
        .iter()
        .map(|p| p.iter().filter(|r| r.timestamp <= until).cloned().collect())
        .collect();
    assert_eq!(contents(&restored), contents(&expected));
    assert!(
        expected.iter().map(Vec::len).sum::<usize>()
            < source.orders.iter().map(Vec::len).sum::<usize>()
    );
}

#[test]
fn group_offsets_translate_across_offset_gaps() {
    use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
    let source = Broker::start("gaps");
    crate::harness::create_topic(&source.bootstrap, "payments", 1, &[]);
    // Transactions leave gaps: each commit or abort marker takes an offset no consumer sees.
    let producer: ThreadedProducer<rdkafka::producer::DefaultProducerContext> =
        crate::harness::client(&source.bootstrap)
            .set("transactional.id", "gaps-test")
            .create()
            .unwrap();
    let timeout = std::time::Duration::from_secs(30);
    producer.init_transactions(timeout).unwrap();
    for (batch, commit) in [(0, true), (1, false), (2, true), (3, true)] {
        producer.begin_transaction().unwrap();
        for i in 0..3 {
            let value = format!("batch {batch} record {i}");
            producer
                .send(
                    BaseRecord::<[u8], [u8]>::to("payments")
                        .partition(0)
                        .payload(value.as_bytes()),
                )
                .map_err(|(e, _)| e)
                .unwrap();
        }
        if commit {
            producer.commit_transaction(timeout).unwrap();
        } else {
            producer.abort_transaction(timeout).unwrap();
        }
    }
    let on_source = read_all(&source.bootstrap, "payments", 1).remove(0);
    let offsets: Vec<i64> = on_source.iter().map(|r| r.offset).collect();
    let gap = (0..*offsets.last().unwrap())
        .find(|o| !offsets.contains(o))
        .expect("transactions left no gap");
    let end = offsets.last().unwrap() + 1;
    let record_after_gap = *offsets.iter().find(|o| **o > gap).unwrap();
    let committed = [
        ("at-gap", gap),
        ("at-record", record_after_gap),
        ("at-end", end),
        ("at-start", 0),
    ];
    for (group, offset) in committed {
        crate::harness::commit_offsets(&source.bootstrap, group, "payments", &[(0, offset)]);
    }

    let dir = tempfile::tempdir().unwrap();
    crate::harness::backup_to(&source.bootstrap, dir.path(), &[]);
    let target = Broker::start("gaps-target");
    kafkasnap_ok(
        &[
            "restore",
            "-b",
            &target.bootstrap,
            "--from",
            path_str(dir.path()),
        ],
        &[],
    );
    let on_target = read_all(&target.bootstrap, "payments", 1).remove(0);
    assert_eq!(
        contents(std::slice::from_ref(&on_target)),
        contents(std::slice::from_ref(&on_source))
    );
    for (group, offset) in committed {
        let translated =
            committed_offsets(&target.bootstrap, group, "payments", 1)[0].expect("offset restored");
        let unread_on_source: Vec<_> = on_source
            .iter()
            .filter(|r| r.offset >= offset)
            .map(TestRecord::content)
            .collect();
        let unread_on_target: Vec<_> = on_target
            .iter()
            .filter(|r| r.offset >= translated)
            .map(TestRecord::content)
            .collect();
        assert_eq!(
            unread_on_target, unread_on_source,
            "group {group}: committed {offset} became {translated}"
        );
    }
}

#[test]
fn if_exists_skip_and_append_and_skip_groups() {
    let source = filled_source();
    let dir = tempfile::tempdir().unwrap();
    crate::harness::backup_to(
        &source.broker.bootstrap,
        dir.path(),
        &["--include", "order\\.created"],
    );
    let target = Broker::start("exists");
    let from = path_str(dir.path());
    kafkasnap_ok(
        &[
            "restore",
            "-b",
            &target.bootstrap,
            "--from",
            from,
            "--skip-groups",
        ],
        &[],
    );
    assert_eq!(
        committed_offsets(&target.bootstrap, GROUP, ORDERS, ORDERS_PARTITIONS),
        vec![None; 3],
        "--skip-groups committed offsets"
    );

    let skipped = kafkasnap_ok(
        &[
            "restore",
            "-b",
            &target.bootstrap,
            "--from",
            from,
            "--if-exists",
            "skip",
            "--output",
            "json",
        ],
        &[],
    );
    let skipped: serde_json::Value = serde_json::from_str(&skipped).unwrap();
    assert_eq!(skipped["records_written"], 0, "{skipped}");
    assert_eq!(
        read_all(&target.bootstrap, ORDERS, ORDERS_PARTITIONS)
            .iter()
            .map(Vec::len)
            .sum::<usize>(),
        ORDERS_PER_PARTITION * 3
    );

    let append = ["restore", "-b", &target.bootstrap, "--from", from];
    let append = [&append[..], &["--if-exists", "append"]].concat();
    // The plan, the log and the summary say that the group offsets move too.
    let plan = kafkasnap_ok(&[&append[..], &["--dry-run"]].concat(), &[]);
    assert!(
        plan.contains(&format!("  append to topic {ORDERS}: 3 partitions,"))
            && plan.contains(&format!("  commit translated offsets of consumer group {GROUP} (on the topics appended to too: this replaces the group's committed offsets there)")),
        "{plan}"
    );
    let output = kafkasnap(&append, &[]);
    let (summary, log) = (String::from_utf8_lossy(&output.stdout), stderr_of(&output));
    assert!(output.status.success(), "{log}");
    assert!(
        summary.contains("1 topic (1 appended to: it already exists, --if-exists append)")
            && summary.contains("1 group (its committed offsets on the topics appended to now point at the restored records)"),
        "{summary}"
    );
    assert!(
        log.contains(&format!("--if-exists append: restoring after the records already in {ORDERS}; the committed offsets of groups {GROUP} there are set to where the restored records land")),
        "{log}"
    );
    let appended = read_all(&target.bootstrap, ORDERS, ORDERS_PARTITIONS);
    for (partition, records) in appended.iter().enumerate() {
        let once = contents(std::slice::from_ref(&source.orders[partition])).remove(0);
        let twice: Vec<_> = once.iter().chain(once.iter()).cloned().collect();
        assert_eq!(
            records.iter().map(TestRecord::content).collect::<Vec<_>>(),
            twice,
            "partition {partition}"
        );
    }
    // Appended records get the group offsets translated into the second copy.
    let on_target = committed_offsets(&target.bootstrap, GROUP, ORDERS, ORDERS_PARTITIONS);
    for (partition, offset) in &source.committed {
        let translated = on_target[*partition as usize].unwrap();
        let records = &appended[*partition as usize];
        let expected = records[ORDERS_PER_PARTITION..].iter().find(|r| {
            r.offset - records[ORDERS_PER_PARTITION].offset
                >= *offset - source.orders[*partition as usize][0].offset
        });
        assert_eq!(
            Some(translated),
            expected
                .map(|r| r.offset)
                .or(Some(records.last().unwrap().offset + 1)),
            "partition {partition}"
        );
    }
}

#[test]
fn large_records_up_to_the_topic_limit_survive() {
    let source = Broker::start("large");
    crate::harness::create_topic(
        &source.bootstrap,
        "blobs",
        1,
        &[("max.message.bytes", "8388608")],
    );
    let big: Vec<u8> = (0..3 * 1024 * 1024).map(|i| (i * 31 % 251) as u8).collect();
    let records: Vec<TestRecord> = (0..3)
        .map(|i| TestRecord {
            partition: 0,
            offset: -1,
            timestamp: 1_600_000_000_000 + i,
            key: Some(vec![i as u8]),
            value: Some(big.clone()),
            headers: vec![],
        })
        .collect();
    crate::harness::produce(&source.bootstrap, "blobs", &records);
    let dir = tempfile::tempdir().unwrap();
    crate::harness::backup_to(
        &source.bootstrap,
        dir.path(),
        &["--segment-bytes", "1048576"],
    );
    let target = Broker::start("large-target");
    kafkasnap_ok(
        &[
            "restore",
            "-b",
            &target.bootstrap,
            "--from",
            path_str(dir.path()),
        ],
        &[],
    );
    let restored = read_all(&target.bootstrap, "blobs", 1).remove(0);
    assert_eq!(restored.len(), 3);
    assert!(restored
        .iter()
        .all(|r| r.value.as_deref() == Some(big.as_slice())));
}

#[test]
fn lz4_and_fast_zstd_segments_restore_exactly() {
    let source = filled_source();
    for (name, codec_args, suffix) in [
        ("lz4", &["--compression", "lz4"][..], ".kseg.lz4"),
        (
            "zstd-fast",
            &["--compression", "zstd", "--level", "-5"][..],
            ".kseg.zst",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut args = vec!["--segment-bytes", "100000"];
        args.extend_from_slice(codec_args);
        crate::harness::backup_to(&source.broker.bootstrap, dir.path(), &args);
        let segments: Vec<_> = crate::harness::files_under(dir.path())
            .into_iter()
            .filter(|f| f.to_string_lossy().contains(".kseg"))
            .collect();
        assert!(segments.len() > 3, "{name}: {segments:?}");
        assert!(
            segments
                .iter()
                .all(|f| f.to_string_lossy().ends_with(suffix)),
            "{name}: {segments:?}"
        );
        kafkasnap_ok(&["verify", path_str(dir.path())], &[]);
        let target = Broker::start(name);
        crate::harness::restore_from(&target.bootstrap, path_str(dir.path()), &[]);
        let restored = read_all(&target.bootstrap, ORDERS, ORDERS_PARTITIONS);
        assert_eq!(
            contents(&restored),
            contents(&source.orders),
            "{name}: restored {ORDERS} differs"
        );
    }
}
