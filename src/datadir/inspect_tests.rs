//! Tests of the data-dir inspector: partitions, checkpoints and the problems it names.

use super::super::batch::build;
use super::*;

#[test]
fn partition_dirs_parse() {
    assert_eq!(parse_partition_dir("orders-3"), Some(("orders", 3)));
    assert_eq!(parse_partition_dir("my-topic-12"), Some(("my-topic", 12)));
    assert_eq!(parse_partition_dir("orders-3.8a1b2c-delete"), None);
    assert_eq!(parse_partition_dir("orders"), None);
    assert_eq!(parse_partition_dir("-1"), None);
}

fn add(inspector: &mut Inspector, parent: Option<&str>, name: &str, bytes: &[u8]) {
    inspector.add_file(parent, name, &mut &bytes[..]).unwrap();
}

#[test]
fn a_truncated_older_segment_is_corruption_but_a_truncated_last_one_is_not() {
    let mut cut = build::simple(0, 2);
    cut.truncate(cut.len() - 3);
    let mut inspector = Inspector::default();
    add(
        &mut inspector,
        Some("t-0"),
        "00000000000000000000.log",
        &cut,
    );
    add(
        &mut inspector,
        Some("t-0"),
        "00000000000000000010.log",
        &build::simple(10, 1),
    );
    add(
        &mut inspector,
        Some("t-1"),
        "00000000000000000000.log",
        &cut,
    );
    let report = inspector.finish();
    assert_eq!(report.partitions[0].corrupt_batches, 1);
    assert!(!report.partitions[0].truncated);
    assert_eq!(report.partitions[1].corrupt_batches, 0);
    assert!(report.partitions[1].truncated);
    assert!(report.has_corruption());
    let kinds: Vec<_> = report
        .problems
        .iter()
        .map(|p| (p.file.as_str(), p.kind))
        .collect();
    assert!(kinds.contains(&("t-0/00000000000000000000.log", ProblemKind::Corrupt)));
    assert!(kinds.contains(&("t-1/00000000000000000000.log", ProblemKind::Truncated)));
}

#[test]
fn indexes_are_checked_whichever_comes_first() {
    let log = build::simple(5, 2);
    let good = [1u32.to_be_bytes(), 0u32.to_be_bytes()].concat();
    let bad = [0u32.to_be_bytes(), 3u32.to_be_bytes()].concat();
    for index_first in [true, false] {
        let mut inspector = Inspector::default();
        if index_first {
            add(
                &mut inspector,
                Some("t-0"),
                "00000000000000000005.index",
                &bad,
            );
        }
        add(
            &mut inspector,
            Some("t-0"),
            "00000000000000000005.log",
            &log,
        );
        if !index_first {
            add(
                &mut inspector,
                Some("t-0"),
                "00000000000000000005.index",
                &bad,
            );
        }
        add(
            &mut inspector,
            Some("t-1"),
            "00000000000000000005.log",
            &log,
        );
        add(
            &mut inspector,
            Some("t-1"),
            "00000000000000000005.index",
            &good,
        );
        let report = inspector.finish();
        assert_eq!(report.partitions[0].index_problems.len(), 1, "{report:?}");
        assert!(report.partitions[1].index_problems.is_empty());
        assert!(!report.has_corruption());
    }
}

#[test]
fn index_files_waiting_for_their_log_are_bounded_and_released_when_it_comes() {
    let mut inspector = Inspector::default();
    let index = vec![0u8; 80];
    add(
        &mut inspector,
        Some("t-0"),
        "00000000000000000000.index",
        &index,
    );
    add(
        &mut inspector,
        Some("t-0"),
        "00000000000000000000.timeindex",
        &index,
    );
    assert_eq!(inspector.pending_index_bytes, 160);
    add(
        &mut inspector,
        Some("t-0"),
        "00000000000000000000.log",
        &build::simple(0, 2),
    );
    assert_eq!(inspector.pending_index_bytes, 0);

    // Index files whose logs never come: refused once they pass the bound.
    inspector.pending_index_bytes = PENDING_INDEX_LIMIT - 50;
    let err = inspector
        .add_file(Some("t-1"), "00000000000000000000.index", &mut &index[..])
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    assert!(err.to_string().contains("wait for .log files"), "{err}");
}
