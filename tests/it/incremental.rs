//! Incremental backups: a chain of three, with new records and a new topic, restores exactly
//! the cluster as it was at each backup; prune keeps the chain a kept backup needs.

use crate::fixture::{path_str, read_backup};
use crate::harness::{
    contents, create_topic, fidelity_record, kafkasnap_ok, produce, read_all, Broker, TestRecord,
};

fn batch(partitions: i32, from: usize, count: usize) -> Vec<TestRecord> {
    (from..from + count)
        .map(|i| fidelity_record((i % partitions as usize) as i32, i))
        .collect()
}

fn backup(source: &Broker, to: &str) -> serde_json::Value {
    let out = kafkasnap_ok(
        &[
            "backup",
            "-b",
            &source.bootstrap,
            "--to",
            to,
            "--incremental",
            "--output",
            "json",
        ],
        &[],
    );
    serde_json::from_str(&out).unwrap()
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
