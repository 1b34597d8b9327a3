//! What commands print for people: no Rust debug text (enum names; `Some(..)` and `None`
//! the harness checks in every command's output),
//! times as RFC 3339, and counts whose nouns agree ("1 segment", "kept 1 backup").

use crate::fixture::path_str;
use crate::harness::{
    commit_offsets, create_topic, fidelity_record, kafkasnap, produce, stderr_of, Broker,
};

/// Runs kafkasnap, which must exit 0; returns what it printed on stdout and stderr.
fn printed(args: &[&str]) -> String {
    let output = kafkasnap(args, &[]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        stderr_of(&output)
    );
    assert!(output.status.success(), "{args:?}: {text}");
    text
}

fn assert_readable(args: &[&str], text: &str) {
    // `Some(` and `None` the harness checks in every command's output.
    for debug in ["(epoch ms)", "Logical", "Create topic", "Skip topic"] {
        assert!(!text.contains(debug), "{args:?} printed {debug:?}:\n{text}");
    }
    // A 1 that starts a word: not the end of a number, a `key=1` field or an id such as
    // `20261206T233226Z-9844b1` (a log line goes on `b1 topics=1`).
    let one_of_many = regex::Regex::new(
        r"(^|[\s(\[])1 (topic|partition|segment|record|group|problem|backup|object|file|warning|batche)s\b",
    )
    .unwrap();
    assert!(
        !one_of_many.is_match(text),
        "{args:?} printed a plural after 1:\n{text}"
    );
}

#[test]
fn commands_print_no_debug_text_and_counts_agree() {
    let broker = Broker::start("plainoutput");
    create_topic(&broker.bootstrap, "orders", 1, &[]);
    let record = fidelity_record(0, 4);
    produce(&broker.bootstrap, "orders", std::slice::from_ref(&record));
    commit_offsets(&broker.bootstrap, "billing", "orders", &[(0, 1)]);
    let dir = tempfile::tempdir().unwrap();
    let to = path_str(dir.path());
    let b = broker.bootstrap.as_str();

    let mut seen = Vec::new();
    let mut run = |args: &[&str]| -> String {
        let text = printed(args);
        assert_readable(args, &text);
        seen.push(text.clone());
        text
    };
    let backup = run(&["backup", "-b", b, "--to", to]);
    assert!(
        backup.contains("1 topic, 1 partition, 1 record,") && backup.contains(", 1 group,"),
        "{backup}"
    );
    run(&["backup", "-b", b, "--to", to]);
    run(&["ls", to]);
    let shown = run(&["show", to, "--backup", "latest"]);
    assert!(
        shown.contains("(logical backup, format version ")
            && shown.contains("1 topic, 1 partition, 1 segment, 1 record,"),
        "{shown}"
    );
    let stamp = kafkasnap::progress::human_time(record.timestamp);
    assert!(
        shown.contains(&format!("timestamps {stamp} .. {stamp}")),
        "{shown}"
    );
    let plan = run(&[
        "restore",
        "-b",
        b,
        "--from",
        to,
        "--topic-map",
        "orders=orders-copy",
        "--from-time",
        "2017-01-01T00:00:00Z",
        "--until",
        "1600000000000",
        "--dry-run",
    ]);
    assert!(
        plan.contains("  create topic orders-copy (from orders): 1 partition, replication factor 1, 1 record,")
            && plan.contains("only records with timestamps from 2017-01-01T00:00:00Z to 2020-09-13T12:26:40Z (both included)"),
        "{plan}"
    );
    let skipped = run(&["restore", "-b", b, "--from", to, "--if-exists", "skip"]);
    assert!(
        skipped.contains("1 topic (1 skipped: it already exists, --if-exists skip), 0 records"),
        "{skipped}"
    );
    let verified = run(&["verify", to]);
    assert!(
        verified.contains(": 1 object, 1 record checked, 0 problems"),
        "{verified}"
    );
    let pruned = run(&["prune", to, "--keep-last", "1", "--dry-run"]);
    assert!(
        pruned.contains("dry run: kept 1 backup; would remove 1 backup ("),
        "{pruned}"
    );
    assert_eq!(seen.len(), 8);
}
