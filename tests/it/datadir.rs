//! `datadir inspect` and the on-disk parser against real Kafka bytes written by Apache Kafka
//! and by Kafka clients (`../shared/fixtures/kafka-bytes`, see its README). Expected values
//! were worked out from the bytes with an independent decoder (kafka-python's
//! `DefaultRecordBatch`), not with kafkasnap.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use kafkasnap::datadir::{
    inspect_path, inspect_tar_stream, Codec, ControlRecord, LogEntry, LogReader, ProblemKind,
    RecordBatch, Report,
};

/// The fixture folder, or None (with a loud message) outside CI when it is missing.
fn fixtures() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/kafka-bytes");
    if dir.is_dir() {
        return Some(dir);
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("fixture folder {} is missing (CI=true)", dir.display());
    }
    eprintln!(
        "\n!!!!! SKIPPED: the Kafka byte fixtures are not at {} — this test did NOT run !!!!!\n",
        dir.display()
    );
    None
}

/// Every entry of a log file.
fn entries(path: &Path) -> Vec<LogEntry> {
    let file = fs::File::open(path).unwrap();
    LogReader::new(std::io::BufReader::new(file))
        .map(Result::unwrap)
        .collect()
}

fn batches(path: &Path) -> Vec<RecordBatch> {
    entries(path)
        .into_iter()
        .filter_map(|e| match e {
            LogEntry::Batch(b) => Some(b),
            _ => None,
        })
        .collect()
}

/// A data dir in a temp folder holding one fixture log as `<dir>/00000000000000000000.log`.
fn data_dir_with(log: &Path, dir: &str) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    fs::create_dir(root.path().join(dir)).unwrap();
    fs::copy(log, root.path().join(dir).join("00000000000000000000.log")).unwrap();
    root
}

fn partition<'a>(
    report: &'a Report,
    topic: &str,
    partition: i32,
) -> &'a kafkasnap::datadir::PartitionReport {
    report
        .partitions
        .iter()
        .find(|p| p.topic == topic && p.partition == partition)
        .unwrap_or_else(|| panic!("no partition {topic}-{partition} in {report:#?}"))
}

fn kafkasnap(args: &[&str]) -> std::process::Output {
    let output = Command::new(env!("CARGO_BIN_EXE_kafkasnap"))
        .args(args)
        .env("KAFKASNAP_LOG_LEVEL", "warn")
        .output()
        .unwrap();
    crate::harness::assert_no_debug_text(args, &output);
    output
}

#[test]
fn datadir_every_codec_vector_decodes_to_its_record_count() {
    let Some(fixtures) = fixtures() else { return };
    // (file, codec, batches, data records)
    let cases: &[(&str, Codec, usize, usize)] = &[
        (
            "rskafka-librdkafka-captures/nocompression.batch.bin",
            Codec::None,
            1,
            1,
        ),
        (
            "rskafka-librdkafka-captures/gzip.batch.bin",
            Codec::Gzip,
            1,
            1,
        ),
        (
            "rskafka-librdkafka-captures/lz4.batch.bin",
            Codec::Lz4,
            1,
            1,
        ),
        (
            "rskafka-librdkafka-captures/snappy_raw_librdkafka.batch.bin",
            Codec::Snappy,
            1,
            1,
        ),
        (
            "rskafka-librdkafka-captures/snappy_xerial_java.batch.bin",
            Codec::Snappy,
            1,
            2,
        ),
        (
            "rskafka-librdkafka-captures/zstd.batch.bin",
            Codec::Zstd,
            1,
            1,
        ),
        (
            "rskafka-librdkafka-captures/null_key_iox_headers.batch.bin",
            Codec::None,
            1,
            1,
        ),
        (
            "sarama-test-vectors/uncompressed.batch.bin",
            Codec::None,
            1,
            1,
        ),
        ("sarama-test-vectors/gzip.batch.bin", Codec::Gzip, 1, 1),
        ("sarama-test-vectors/lz4.batch.bin", Codec::Lz4, 1, 1),
        (
            "sarama-test-vectors/snappy_xerial.batch.bin",
            Codec::Snappy,
            1,
            1,
        ),
        (
            "sarama-test-vectors/fetch_one_record.batch.bin",
            Codec::None,
            1,
            1,
        ),
        (
            "sarama-test-vectors/empty_batch.batch.bin",
            Codec::None,
            1,
            0,
        ),
        (
            "sarama-test-vectors/fetch_v11_empty_batch_with_producer_fields.batch.bin",
            Codec::None,
            1,
            0,
        ),
        ("tansu-test-vectors/lorem_gzip.batch.bin", Codec::Gzip, 1, 1),
        ("tansu-test-vectors/lorem_lz4.batch.bin", Codec::Lz4, 1, 1),
        (
            "tansu-test-vectors/lorem_snappy.batch.bin",
            Codec::Snappy,
            1,
            1,
        ),
        ("tansu-test-vectors/lorem_zstd.batch.bin", Codec::Zstd, 1, 1),
        (
            "tansu-test-vectors/xtdb_java_snappy_batch_of_100.batch.bin",
            Codec::Snappy,
            1,
            1,
        ),
        (
            "kafka-python-test-vectors/record_batch_data_v2.bin",
            Codec::None,
            4,
            5,
        ),
        (
            "kafka-go-broker-fetch-captures/v2-v2.records.bin",
            Codec::None,
            2,
            4,
        ),
        (
            "kafka-go-broker-fetch-captures/v2c-v2c.records.bin",
            Codec::Gzip,
            2,
            4,
        ),
        (
            "codecrafters-tester-cluster-metadata/jamestjw-kafka-gleam/00000000000000000000.log",
            Codec::None,
            2,
            4,
        ),
    ];
    for (file, codec, want_batches, want_records) in cases {
        let found = batches(&fixtures.join(file));
        assert_eq!(found.len(), *want_batches, "{file}: batches");
        let mut records = 0;
        for batch in &found {
            assert!(
                batch.crc_ok(),
                "{file}: CRC of batch at byte {}",
                batch.position
            );
            assert_eq!(batch.header.codec(), Ok(*codec), "{file}: codec");
            let decoded = batch.records().unwrap_or_else(|e| panic!("{file}: {e}"));
            assert_eq!(decoded.len() as i32, batch.header.record_count, "{file}");
            records += decoded.len();
        }
        assert_eq!(records, *want_records, "{file}: records");
    }

    // Field-level checks on two of them.
    let headers =
        batches(&fixtures.join("rskafka-librdkafka-captures/null_key_iox_headers.batch.bin"));
    let record = &headers[0].records().unwrap()[0];
    assert_eq!(record.key, None);
    assert_eq!(record.value.as_ref().map(Vec::len), Some(103));
    let names: Vec<&str> = record.headers.iter().map(|h| h.key.as_str()).collect();
    assert_eq!(names, vec!["content-type", "iox-namespace"]);
    assert_eq!(record.headers[0].value.as_ref().map(Vec::len), Some(82));

    let python = batches(&fixtures.join("kafka-python-test-vectors/record_batch_data_v2.bin"));
    let bases: Vec<i64> = python.iter().map(|b| b.header.base_offset).collect();
    assert_eq!(
        bases,
        vec![0, 1, 3, 0],
        "the last batch's base offset goes backwards"
    );
    let offsets: Vec<i64> = python[1]
        .records()
        .unwrap()
        .iter()
        .map(|r| r.offset)
        .collect();
    assert_eq!(offsets, vec![1, 2]);
}

#[test]
fn datadir_control_batches_and_transaction_markers() {
    let Some(fixtures) = fixtures() else { return };
    let txn = batches(&fixtures.join("tansu-test-vectors/txn_data_then_commit_marker.log"));
    assert_eq!(txn.len(), 2);
    assert!(txn[0].header.is_transactional() && !txn[0].header.is_control());
    assert!(txn[1].header.is_control());
    let marker = &txn[1].records().unwrap()[0];
    assert_eq!(ControlRecord::parse(marker).unwrap(), ControlRecord::Commit);

    let empty_control =
        batches(&fixtures.join("sarama-test-vectors/control_batch_empty.batch.bin"));
    assert!(empty_control[0].header.is_control());
    assert!(empty_control[0].records().unwrap().is_empty());

    let root = data_dir_with(
        &fixtures.join("tansu-test-vectors/txn_data_then_commit_marker.log"),
        "txn-0",
    );
    let report = inspect_path(root.path()).unwrap();
    let p = partition(&report, "txn", 0);
    assert_eq!(
        (p.batches, p.records, p.control_batches, p.commit_markers),
        (2, 1, 1, 1)
    );
    assert_eq!((p.first_offset, p.last_offset), (Some(0), Some(0)));
    assert!(report.problems.is_empty(), "{:?}", report.problems);
}

#[test]
fn datadir_legacy_message_sets_are_counted_not_fatal() {
    let Some(fixtures) = fixtures() else { return };
    let log = fixtures
        .join("kafka-go-broker-fetch-captures/v1-v1c-v2-v2c-v2b-v2b-v2b-v2bc-v1b-v1bc.records.bin");
    let root = data_dir_with(&log, "mixed-0");
    let report = inspect_path(root.path()).unwrap();
    let p = partition(&report, "mixed", 0);
    assert_eq!((p.batches, p.records, p.legacy_message_sets), (8, 12, 7));
    assert_eq!(p.codecs, vec![Codec::None, Codec::Gzip]);
    assert_eq!((p.first_offset, p.last_offset), (Some(4), Some(15)));
    assert_eq!(p.corrupt_batches, 0);
    let legacy: Vec<Option<u64>> = report
        .problems
        .iter()
        .filter(|p| p.kind == ProblemKind::LegacyFormat)
        .map(|p| p.position)
        .collect();
    assert_eq!(legacy, vec![Some(0), Some(1375)]);
    assert!(!report.has_corruption());
}

#[test]
fn datadir_bad_crc_vector_is_corruption_with_file_and_position() {
    let Some(fixtures) = fixtures() else { return };
    let log = fixtures.join("kafka-python-test-vectors/control_batch_data_v2.bin");
    let found = batches(&log);
    assert_eq!(found.len(), 1);
    assert!(
        !found[0].crc_ok(),
        "the fixture's CRC is deliberately wrong"
    );

    let root = data_dir_with(&log, "ctl-0");
    let report = inspect_path(root.path()).unwrap();
    let p = partition(&report, "ctl", 0);
    assert_eq!((p.corrupt_batches, p.batches, p.records), (1, 0, 0));
    assert!(report.has_corruption());
    let problem = report
        .problems
        .iter()
        .find(|p| p.kind == ProblemKind::Corrupt)
        .expect("a corruption problem");
    assert_eq!(problem.file, "ctl-0/00000000000000000000.log");
    assert_eq!(problem.position, Some(0));
    assert!(problem.detail.contains("CRC"), "{}", problem.detail);

    let out = kafkasnap(&["datadir", "inspect", root.path().to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("CORRUPT: ctl-0/00000000000000000000.log at byte 0"),
        "{text}"
    );
}

#[test]
fn datadir_truncated_vector_is_truncation_not_corruption() {
    let Some(fixtures) = fixtures() else { return };
    let log = fixtures.join("sarama-test-vectors/partial_truncated_batch.bin");
    match entries(&log).as_slice() {
        [LogEntry::Truncated {
            position: 0,
            claimed: 82,
            available: 64,
        }] => {}
        other => panic!("expected one truncated entry, got {other:?}"),
    }
    let root = data_dir_with(&log, "cut-0");
    let report = inspect_path(root.path()).unwrap();
    let p = partition(&report, "cut", 0);
    assert!(p.truncated);
    assert_eq!(p.corrupt_batches, 0);
    assert!(!report.has_corruption());
    let problem = &report.problems[0];
    assert_eq!(problem.kind, ProblemKind::Truncated);
    assert_eq!(problem.file, "cut-0/00000000000000000000.log");
    assert_eq!(problem.position, Some(0));

    let out = kafkasnap(&["datadir", "inspect", root.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "a truncated tail alone exits 0");
}

#[test]
fn datadir_metadata_logs_from_another_writer_decode() {
    let Some(fixtures) = fixtures() else { return };
    let cases = [
        ("jamestjw-kafka-gleam", "saz", "AAAAAAAAQACAAAAAAAAAkQ", 2),
        (
            "thanhliemtu-codecrafters-kafka-go",
            "pear",
            "caWaUYloT4uTfkgwxx7Hmg",
            1,
        ),
    ];
    for (dir, topic, id, partitions) in cases {
        let log = fixtures.join(format!(
            "codecrafters-tester-cluster-metadata/{dir}/00000000000000000000.log"
        ));
        let root = data_dir_with(&log, "__cluster_metadata-0");
        let report = inspect_path(root.path()).unwrap();
        assert_eq!(report.topics.len(), 1, "{dir}");
        assert_eq!(report.topics[0].name, topic);
        assert_eq!(report.topics[0].id.as_deref(), Some(id));
        assert_eq!(report.topics[0].partitions, partitions);
        assert_eq!(report.features[0].name, "metadata.version");
        assert_eq!(report.features[0].level, 20);
        assert!(report.problems.is_empty(), "{:?}", report.problems);
    }
}

#[test]
fn datadir_zookeeper_dirs_inspect_cleanly() {
    let Some(fixtures) = fixtures() else { return };
    let report = inspect_path(&fixtures.join("volodymyrzee-zk-2.x-datadir")).unwrap();
    assert_eq!(report.cluster_id.as_deref(), Some("lRaQCIBoRh2xRKLuP9CAQg"));
    assert_eq!(report.node_id, Some(0));
    assert!(report.clean_shutdown);
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    let topics: Vec<(&str, u32)> = report
        .topics
        .iter()
        .map(|t| (t.name.as_str(), t.partitions))
        .collect();
    assert_eq!(
        topics,
        vec![
            ("__consumer_offsets", 2),
            ("first_topic", 3),
            ("new_topic", 1)
        ]
    );
    // (topic, partition, batches, records, first..last offset, first..last timestamp)
    let expected = [
        (
            "__consumer_offsets",
            17,
            3,
            3,
            0,
            2,
            1587577981573,
            1587578346673,
        ),
        (
            "__consumer_offsets",
            32,
            18,
            50,
            0,
            49,
            1587582484106,
            1587582561582,
        ),
        (
            "first_topic",
            0,
            10,
            11,
            0,
            10,
            1587576892921,
            1587581573101,
        ),
        (
            "first_topic",
            1,
            12,
            12,
            0,
            11,
            1587576714376,
            1587581563957,
        ),
        (
            "first_topic",
            2,
            16,
            18,
            0,
            17,
            1587576707958,
            1587581556685,
        ),
        ("new_topic", 0, 2, 2, 0, 1, 1587577031689, 1587577060776),
    ];
    assert_eq!(report.partitions.len(), expected.len());
    for (topic, n, batches, records, first, last, first_ts, last_ts) in expected {
        let p = partition(&report, topic, n);
        assert_eq!(
            (
                p.segments,
                p.batches,
                p.records,
                p.first_offset,
                p.last_offset,
                p.first_timestamp,
                p.last_timestamp
            ),
            (
                1,
                batches,
                records,
                Some(first),
                Some(last),
                Some(first_ts),
                Some(last_ts)
            ),
            "{topic}-{n}"
        );
        assert_eq!(p.codecs, vec![Codec::None]);
        assert_eq!(p.high_watermark, Some(last + 1), "{topic}-{n} checkpoint");
    }
    let groups: Vec<(&str, &str, i32, i64)> = report
        .groups
        .iter()
        .map(|g| (g.group.as_str(), g.topic.as_str(), g.partition, g.offset))
        .collect();
    assert_eq!(
        groups,
        vec![
            ("my-firstd-application", "first_topic", 0, 11),
            ("my-firstd-application", "first_topic", 1, 12),
            ("my-firstd-application", "first_topic", 2, 18),
        ]
    );

    let report = inspect_path(&fixtures.join("kaipasubhash-zk-datadir")).unwrap();
    assert_eq!(
        report.cluster_id, None,
        "this meta.properties has no cluster.id"
    );
    assert_eq!(report.node_id, Some(0));
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    let summary: Vec<(&str, i32, u64, u64)> = report
        .partitions
        .iter()
        .map(|p| (p.topic.as_str(), p.partition, p.batches, p.records))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("__consumer_offsets", 2, 3, 3),
            ("__consumer_offsets", 26, 8, 8),
            ("subhash", 0, 3, 3)
        ]
    );
    let groups: Vec<(&str, &str, i32, i64)> = report
        .groups
        .iter()
        .map(|g| (g.group.as_str(), g.topic.as_str(), g.partition, g.offset))
        .collect();
    assert_eq!(
        groups,
        vec![
            ("console-consumer-23934", "TestTopic", 0, 0),
            ("console-consumer-70224", "TestTopic", 0, 0),
        ]
    );
}

#[test]
fn datadir_kraft_dir_inspects_cleanly() {
    let Some(fixtures) = fixtures() else { return };
    let report = inspect_path(&fixtures.join("ldi-poc-kraft-3.7-datadir")).unwrap();
    assert_eq!(report.cluster_id.as_deref(), Some("q1w2e3r4t5y6u7i8o9p0"));
    assert_eq!(report.node_id, Some(1));
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    let topics: Vec<(&str, Option<&str>, u32)> = report
        .topics
        .iter()
        .map(|t| (t.name.as_str(), t.id.as_deref(), t.partitions))
        .collect();
    assert_eq!(
        topics,
        vec![
            ("Retry.TestTopicPatient", Some("_g4of-T3Rq-jr09kDxtjFA"), 1),
            ("TestTopicPatient", Some("B3_HiNPgSQ6oxG9ZZ6ED5A"), 1),
            ("__consumer_offsets", Some("gSnfpEbtQfSDpxM2lhEn9A"), 50),
            (
                "batch2.work.notification.SHR_PROD.persistence",
                Some("306J_pu4Tiybgh3rvq-3HQ"),
                1
            ),
            (
                "subscription.matching.SHR_PROD.persistence",
                Some("shr_LbhQRi20mLSqvU22rA"),
                1
            ),
        ]
    );
    let offsets_topic = &report.topics[2];
    assert_eq!(offsets_topic.configs["cleanup.policy"], "compact");
    assert_eq!(offsets_topic.configs["compression.type"], "producer");
    assert_eq!(offsets_topic.configs["segment.bytes"], "104857600");
    assert_eq!(report.features.len(), 1);
    assert_eq!(
        (report.features[0].name.as_str(), report.features[0].level),
        ("metadata.version", 19)
    );

    // Topic ids from the metadata log agree with each partition.metadata.
    for p in &report.partitions {
        if p.topic == "__cluster_metadata" {
            assert_eq!(p.topic_id.as_deref(), Some("AAAAAAAAAAAAAAAAAAAAAQ"));
            continue;
        }
        let topic = report.topics.iter().find(|t| t.name == p.topic).unwrap();
        assert_eq!(p.topic_id, topic.id, "{}", p.topic);
    }

    let data = partition(&report, "TestTopicPatient", 0);
    assert_eq!(
        (
            data.batches,
            data.records,
            data.first_offset,
            data.last_offset
        ),
        (3, 3, Some(0), Some(2))
    );
    assert_eq!(
        (data.first_timestamp, data.last_timestamp),
        (Some(1769792698283), Some(1769793578165))
    );
    assert_eq!(data.high_watermark, Some(3));
    let empty = partition(&report, "Retry.TestTopicPatient", 0);
    assert_eq!(
        (empty.segments, empty.batches, empty.first_offset),
        (1, 0, None)
    );
    let metadata = partition(&report, "__cluster_metadata", 0);
    assert_eq!(
        (metadata.batches, metadata.records, metadata.control_batches),
        (4814, 4928, 1)
    );
    assert_eq!(
        (metadata.first_offset, metadata.last_offset),
        (Some(1), Some(4928))
    );
    let offsets = partition(&report, "__consumer_offsets", 6);
    assert_eq!(
        (offsets.batches, offsets.records, offsets.last_offset),
        (13, 13, Some(12))
    );
    assert!(
        offsets.index_problems.is_empty(),
        "its .index and .timeindex match the log"
    );

    let groups: Vec<(&str, &str, i64)> = report
        .groups
        .iter()
        .map(|g| (g.group.as_str(), g.topic.as_str(), g.offset))
        .collect();
    assert_eq!(
        groups,
        vec![
            ("DEVSmileCDR", "Retry.TestTopicPatient", 0),
            ("DEVSmileCDR", "TestTopicPatient", 3),
            (
                "DEVSmileCDR",
                "batch2.work.notification.SHR_PROD.persistence",
                0
            ),
            (
                "DEVSmileCDR",
                "subscription.matching.SHR_PROD.persistence",
                0
            ),
        ]
    );
}

#[test]
fn datadir_a_damaged_index_is_reported() {
    let Some(fixtures) = fixtures() else { return };
    let source = fixtures.join("ldi-poc-kraft-3.7-datadir/__consumer_offsets-6");
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("__consumer_offsets-6");
    fs::create_dir(&dir).unwrap();
    for name in ["00000000000000000000.log", "00000000000000000000.timeindex"] {
        fs::copy(source.join(name), dir.join(name)).unwrap();
    }
    // Entry 1 of the real index says offset 7 is at byte 9571; move it one byte.
    let mut index = fs::read(source.join("00000000000000000000.index")).unwrap();
    index[15] += 1;
    fs::write(dir.join("00000000000000000000.index"), index).unwrap();
    let report = inspect_path(root.path()).unwrap();
    let p = partition(&report, "__consumer_offsets", 6);
    assert_eq!(p.index_problems.len(), 1, "{:?}", p.index_problems);
    assert!(
        p.index_problems[0].contains("byte 9572"),
        "{}",
        p.index_problems[0]
    );
    assert!(report.problems.iter().any(|p| p.kind == ProblemKind::Index));
    assert!(
        !report.has_corruption(),
        "Kafka rebuilds indexes: not data corruption"
    );
}

#[test]
fn datadir_cli_json_for_the_kraft_dir_has_the_report_fields() {
    let Some(fixtures) = fixtures() else { return };
    let dir = fixtures.join("ldi-poc-kraft-3.7-datadir");
    let out = kafkasnap(&[
        "datadir",
        "inspect",
        dir.to_str().unwrap(),
        "--output",
        "json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["cluster_id"], "q1w2e3r4t5y6u7i8o9p0");
    assert_eq!(json["node_id"], 1);
    for field in ["topics", "partitions", "groups", "features", "problems"] {
        assert!(json[field].is_array(), "{field} missing in {json}");
    }
    for field in ["name", "id", "partitions", "configs"] {
        assert!(
            json["topics"][0].get(field).is_some(),
            "topic field {field}"
        );
    }
    for field in [
        "topic",
        "partition",
        "segments",
        "batches",
        "records",
        "first_offset",
        "last_offset",
        "first_timestamp",
        "last_timestamp",
        "codecs",
        "corrupt_batches",
        "truncated",
        "legacy_message_sets",
        "index_problems",
    ] {
        assert!(
            json["partitions"][0].get(field).is_some(),
            "partition field {field}"
        );
    }
    for field in ["group", "topic", "partition", "offset"] {
        assert!(
            json["groups"][0].get(field).is_some(),
            "group field {field}"
        );
    }
    assert_eq!(json["features"][0]["name"], "metadata.version");
    assert_eq!(json["features"][0]["level"], 19);
    assert_eq!(json["topics"].as_array().unwrap().len(), 5);
}

/// Writes `dir` into a tar under `prefix`, as `tar c` of a mounted volume would.
fn tar_of(dir: &Path, prefix: &str) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    builder.append_dir_all(prefix, dir).unwrap();
    builder.into_inner().unwrap()
}

#[test]
fn datadir_tar_archives_read_the_same_as_the_directory() {
    let Some(fixtures) = fixtures() else { return };
    let out = tempfile::tempdir().unwrap();
    for name in ["ldi-poc-kraft-3.7-datadir", "volodymyrzee-zk-2.x-datadir"] {
        let dir = fixtures.join(name);
        let from_dir = inspect_path(&dir).unwrap();
        let tar = tar_of(&dir, "var/lib/kafka/data");

        let plain = out.path().join(format!("{name}.tar"));
        fs::write(&plain, &tar).unwrap();
        let gz = out.path().join(format!("{name}.tar.gz"));
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut encoder, &tar).unwrap();
        fs::write(&gz, encoder.finish().unwrap()).unwrap();
        let zst = out.path().join(format!("{name}.tar.zst"));
        fs::write(&zst, zstd::bulk::compress(&tar, 3).unwrap()).unwrap();

        for archive in [&plain, &gz, &zst] {
            let from_tar = inspect_path(archive).unwrap();
            assert_eq!(
                from_tar,
                from_dir,
                "{} differs from the directory",
                archive.display()
            );
        }
        let streamed = inspect_tar_stream(&tar[..]).unwrap();
        assert_eq!(streamed, from_dir, "{name}: streamed tar differs");

        let out = kafkasnap(&[
            "datadir",
            "inspect",
            gz.to_str().unwrap(),
            "--output",
            "json",
        ]);
        assert_eq!(out.status.code(), Some(0));
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(json, serde_json::to_value(&from_dir).unwrap());
    }
}

#[test]
fn datadir_not_a_data_dir_is_a_clear_error() {
    let empty = tempfile::tempdir().unwrap();
    let err = inspect_path(empty.path()).unwrap_err();
    assert!(
        err.to_string().contains("holds no Kafka data directory"),
        "{err}"
    );
    let file = empty.path().join("notes.txt");
    fs::write(&file, "hello").unwrap();
    let out = kafkasnap(&["datadir", "inspect", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("neither a directory nor a tar archive"));
}

#[test]
fn datadir_inspect_prints_the_json_shape_docs_cli_json_describes() {
    let Some(fixtures) = fixtures() else { return };
    let log = fixtures.join("kafka-python-test-vectors/control_batch_data_v2.bin");
    let root = data_dir_with(&log, "ctl-0");
    let out = kafkasnap(&[
        "datadir",
        "inspect",
        root.path().to_str().unwrap(),
        "-o",
        "json",
    ]);
    // Corruption found: exit 3, with the report on stdout all the same.
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let shapes = crate::json_shapes::documented_shapes();
    crate::json_shapes::assert_shape(&shapes, "datadir inspect", &report);
    assert_eq!(report["problems"].as_array().unwrap().len(), 1, "{report}");
}
