//! Incremental backups: a chain of three, with new records and a new topic, restores exactly
//! the cluster as it was at each backup; prune keeps the chain a kept backup needs (by
//! `--keep-last` and by `--keep-within`, as for a follower's checkpoints).

use crate::fixture::{path_str, read_backup};
use crate::harness::{
    backup_to, contents, create_topic, fidelity_record, kafkasnap_ok, produce, read_all,
    restore_from, Broker, TestRecord,
};

fn batch(partitions: i32, from: usize, count: usize) -> Vec<TestRecord> {
    (from..from + count)
        .map(|i| fidelity_record((i % partitions as usize) as i32, i))
        .collect()
}

/// `backup --incremental` of `source` into `to`, with `extra` arguments; what it printed.
fn incremental_backup(source: &Broker, to: &str, extra: &[&str]) -> String {
    let args = [
        "backup",
        "-b",
        &source.bootstrap,
        "--to",
        to,
        "--incremental",
    ];
    kafkasnap_ok(&[&args[..], extra].concat(), &[])
}

fn backup(source: &Broker, to: &str) -> serde_json::Value {
    serde_json::from_str(&incremental_backup(source, to, &["--output", "json"])).unwrap()
}

#[test]
fn an_incremental_chain_restores_each_point_exactly() {
    let source = Broker::start("chain");
    let dir = tempfile::tempdir().unwrap();
    let to = path_str(dir.path());
    create_topic(&source.bootstrap, "orders", 2, &[]);
    produce(&source.bootstrap, "orders", &batch(2, 0, 1_000));
    let first = backup(&source, to);
    assert!(
        first["parent"].is_null(),
        "the first backup of a location is full: {first}"
    );
    let at_first = read_all(&source.bootstrap, "orders", 2);

    produce(&source.bootstrap, "orders", &batch(2, 1_000, 500));
    create_topic(&source.bootstrap, "payments", 1, &[]);
    produce(&source.bootstrap, "payments", &batch(1, 5_000, 300));
    let second = backup(&source, to);
    assert_eq!(second["parent"], first["backup_id"]);
    assert_eq!(
        second["records_read"], 800,
        "only new records are read: {second}"
    );
    assert_eq!(second["records"], 1_800);
    let at_second = (
        read_all(&source.bootstrap, "orders", 2),
        read_all(&source.bootstrap, "payments", 1),
    );

    produce(&source.bootstrap, "orders", &batch(2, 1_500, 200));
    let third = backup(&source, to);
    assert_eq!(third["parent"], second["backup_id"]);
    assert_eq!(third["records_read"], 200);
    let at_third = read_all(&source.bootstrap, "orders", 2);

    // The newest manifest carries its parents' segments: the newest backup reads back whole.
    let (manifest, orders) = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(read_backup(to, "orders"));
    assert_eq!(orders, at_third);
    let first_id = first["backup_id"].as_str().unwrap();
    let segments: Vec<&str> = manifest
        .segments()
        .map(|(_, _, s)| s.key.as_str())
        .collect();
    assert!(
        segments.iter().any(|k| k.contains(first_id)),
        "{segments:?}"
    );

    for (summary, orders, payments) in [
        (&first, &at_first, None),
        (&second, &at_second.0, Some(&at_second.1)),
        (&third, &at_third, Some(&at_second.1)),
    ] {
        let id = summary["backup_id"].as_str().unwrap();
        kafkasnap_ok(&["verify", to, "--backup", id], &[]);
        let target = Broker::start("chain-target");
        kafkasnap_ok(
            &[
                "restore",
                "-b",
                &target.bootstrap,
                "--from",
                to,
                "--backup",
                id,
            ],
            &[],
        );
        assert_eq!(
            contents(&read_all(&target.bootstrap, "orders", 2)),
            contents(orders),
            "orders at {id}"
        );
        let names = crate::harness::topic_names(&target.bootstrap);
        match payments {
            Some(payments) => assert_eq!(
                contents(&read_all(&target.bootstrap, "payments", 1)),
                contents(payments)
            ),
            None => assert!(
                !names.contains(&"payments".to_string()),
                "payments did not exist at {id}"
            ),
        }
    }

    // What each run stored itself, beside the chain's totals: in the summary and in ls.
    for summary in [&first, &second, &third] {
        let (new, all) = (&summary["new_stored_bytes"], &summary["stored_bytes"]);
        assert!(new.as_u64().unwrap() > 0, "{summary}");
        match summary["parent"].is_null() {
            true => assert_eq!(new, all, "a full backup stores all it holds: {summary}"),
            false => assert!(new.as_u64() < all.as_u64(), "{summary}"),
        }
    }
    let listed: Vec<serde_json::Value> =
        serde_json::from_str(&kafkasnap_ok(&["ls", to, "-o", "json"], &[])).unwrap();
    for summary in [&first, &second, &third] {
        let entry = listed
            .iter()
            .find(|e| e["backup_id"] == summary["backup_id"])
            .unwrap();
        for (listed_as, summed_as) in [
            ("new_segments", "new_segments"),
            ("new_stored_bytes", "new_stored_bytes"),
            ("stored_bytes", "stored_bytes"),
        ] {
            assert_eq!(entry[listed_as], summary[summed_as], "{listed_as}: {entry}");
        }
        assert!(entry["new_segments"].as_u64() <= entry["segments"].as_u64());
    }
    let third_entry = listed
        .iter()
        .find(|e| e["backup_id"] == third["backup_id"])
        .unwrap();
    assert_eq!(third_entry["new_records"], 200, "{third_entry}");
    let table = kafkasnap_ok(&["ls", to], &[]);
    assert!(
        table
            .lines()
            .next()
            .unwrap()
            .contains("STORED  NEW STORED  PARENT"),
        "{table}"
    );
    produce(&source.bootstrap, "orders", &batch(2, 1_700, 10));
    let text = incremental_backup(&source, to, &[]);
    assert!(
        text.contains(&format!(
            "  incremental on {}: this run read 10 records, stored ",
            third["backup_id"].as_str().unwrap()
        )) && text.contains(" in 2 new segments (the totals above are the whole chain's)"),
        "{text}"
    );

    // Keeping only the newest backup keeps the parents it is built on.
    kafkasnap_ok(&["prune", to, "--keep-last", "1"], &[]);
    let listing = kafkasnap_ok(&["ls", to], &[]);
    for summary in [&first, &second, &third] {
        assert!(
            listing.contains(summary["backup_id"].as_str().unwrap()),
            "{listing}"
        );
    }
}

/// After a DR restore (offsets collapsed) or a topic re-created and refilled, a partition's
/// offsets no longer continue the parent's log: an incremental backup that carried on from
/// the parent's end would silently miss every record below it. Both brokers share a cluster
/// id, as a cluster seeded with a fixed CLUSTER_ID does, so only the log itself can tell.
#[test]
fn an_incremental_after_the_log_was_replaced_backs_it_up_in_full() {
    let before = Broker::start("replaced");
    let dir = tempfile::tempdir().unwrap();
    let to = path_str(dir.path());
    create_topic(&before.bootstrap, "orders", 2, &[]);
    produce(&before.bootstrap, "orders", &batch(2, 0, 400));
    create_topic(&before.bootstrap, "events", 1, &[]);
    produce(&before.bootstrap, "events", &batch(1, 0, 300));
    let first = backup(&before, to);

    // The same topics, other records: orders refilled past the old end, events shorter.
    let after = Broker::start("replaced");
    create_topic(&after.bootstrap, "orders", 2, &[]);
    produce(&after.bootstrap, "orders", &batch(2, 10_000, 600));
    create_topic(&after.bootstrap, "events", 1, &[]);
    produce(&after.bootstrap, "events", &batch(1, 20_000, 100));
    let second = backup(&after, to);
    assert_eq!(second["parent"], first["backup_id"]);
    assert_eq!(second["records_read"], 700, "all read again: {second}");
    assert_eq!(second["records"], 700, "{second}");
    let warnings: Vec<&str> = second["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    for partition in ["orders/0", "orders/1", "events/0"] {
        assert!(
            warnings
                .iter()
                .any(|w| w.starts_with(partition) && w.contains("backed up in full")),
            "{partition}: {warnings:?}"
        );
    }
    let target = Broker::start("replaced-target");
    kafkasnap_ok(&["restore", "-b", &target.bootstrap, "--from", to], &[]);
    assert_eq!(
        contents(&read_all(&target.bootstrap, "orders", 2)),
        contents(&read_all(&after.bootstrap, "orders", 2))
    );
    assert_eq!(
        contents(&read_all(&target.bootstrap, "events", 1)),
        contents(&read_all(&after.bootstrap, "events", 1))
    );

    // The replaced log, grown: continued as usual, with no warning.
    produce(&after.bootstrap, "orders", &batch(2, 10_600, 50));
    let third = backup(&after, to);
    assert_eq!(third["parent"], second["backup_id"]);
    assert_eq!(third["records_read"], 50, "{third}");
    assert_eq!(third["warnings"], serde_json::json!([]), "{third}");
}

/// A follower's location in small: a chain of incremental backups (as checkpoints are) beside an
/// older full backup of its own. `prune --keep-within 1s` keeps the newest by the rule and its
/// whole chain as parents, removes only the unrelated backup, and the newest still verifies and
/// restores exactly.
#[test]
fn prune_keep_within_keeps_the_newest_incremental_and_its_chain() {
    let source = Broker::start("within");
    let dir = tempfile::tempdir().unwrap();
    let to = path_str(dir.path());
    create_topic(&source.bootstrap, "orders", 2, &[]);
    // Each backup starts over a second after the one before ended, so that the ids' times (to
    // the second) are a second or more apart and a 1 s window holds the newest only.
    let next_second = || std::thread::sleep(std::time::Duration::from_millis(1_100));
    let full = |n: usize| {
        produce(&source.bootstrap, "orders", &batch(2, n * 1_000, 300));
        let out = backup_to(&source.bootstrap, dir.path(), &["--output", "json"]);
        serde_json::from_str::<serde_json::Value>(&out).unwrap()
    };
    let unrelated = full(0);
    next_second();
    let base = full(1);
    assert!(base["parent"].is_null(), "{base}");
    let mut chain = vec![base];
    for n in 2..4 {
        next_second();
        produce(&source.bootstrap, "orders", &batch(2, n * 1_000, 200));
        let checkpoint = backup(&source, to);
        assert_eq!(checkpoint["parent"], chain.last().unwrap()["backup_id"]);
        chain.push(checkpoint);
    }
    let id_of = |summary: &serde_json::Value| summary["backup_id"].as_str().unwrap().to_string();

    let pruned = kafkasnap_ok(
        &[
            "prune",
            to,
            "--keep-within",
            "1s",
            "--grace",
            "0s",
            "--output",
            "json",
        ],
        &[],
    );
    let pruned: serde_json::Value = serde_json::from_str(&pruned).unwrap();
    let reasons: Vec<(String, Vec<String>)> = pruned["kept"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let id = e["backup_id"].as_str().unwrap().to_string();
            (id, serde_json::from_value(e["reasons"].clone()).unwrap())
        })
        .collect();
    let newest_first: Vec<String> = chain.iter().rev().map(id_of).collect();
    let kept: Vec<&String> = reasons.iter().map(|(id, _)| id).collect();
    assert_eq!(kept, newest_first.iter().collect::<Vec<_>>(), "{pruned}");
    assert_eq!(reasons[0].1, ["within 1s of the newest"], "{pruned}");
    for pair in reasons.windows(2) {
        let (child, (parent, why)) = (&pair[0].0, &pair[1]);
        assert!(
            why.contains(&format!("segments used by {child}")),
            "{parent}: {why:?}"
        );
        assert!(!why.iter().any(|r| r.starts_with("within")), "{why:?}");
    }
    let removed = pruned["removed"].as_array().unwrap();
    assert_eq!(removed.len(), 1, "{pruned}");
    assert_eq!(removed[0]["backup_id"], unrelated["backup_id"]);
    assert_eq!(removed[0]["reasons"][0], "no keep rule matches");
    let listing = kafkasnap_ok(&["ls", to], &[]);
    assert!(!listing.contains(&id_of(&unrelated)), "{listing}");

    // The newest (`latest`) reads its whole chain: every object checked, every record back.
    let verified = kafkasnap_ok(&["verify", to], &[]);
    assert!(verified.contains("OK"), "{verified}");
    let target = Broker::start("within-target");
    restore_from(&target.bootstrap, to, &[]);
    assert_eq!(
        read_all(&target.bootstrap, "orders", 2),
        read_all(&source.bootstrap, "orders", 2),
        "records, offsets included"
    );
}
