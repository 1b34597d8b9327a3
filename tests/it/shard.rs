//! Sharded backups: two shards of one run make one backup that restores exactly (records,
//! group offsets); until the last shard stores its part nothing is published; a shard rerun
//! after publication changes nothing; prune keeps the parts a kept backup reads from.

use crate::harness::{
    backup_to, commit_offsets, committed_offsets, contents, create_topic, fidelity_record,
    kafkasnap, kafkasnap_ok, produce, read_all, stderr_of, Broker, TestRecord,
};

fn shard(source: &Broker, to: &str, spec: &str) -> serde_json::Value {
    let extra = [
        "--shard",
        spec,
        "--shard-run",
        "nightly-1",
        "--output",
        "json",
    ];
    let out = backup_to(&source.bootstrap, std::path::Path::new(to), &extra);
    serde_json::from_str(out.trim()).unwrap()
}

#[test]
fn two_shards_make_one_backup_that_restores_exactly() {
    let source = Broker::start("shards");
    create_topic(&source.bootstrap, "orders", 4, &[("retention.ms", "-1")]);
    create_topic(&source.bootstrap, "payments", 1, &[]);
    let orders: Vec<TestRecord> = (0..2_000)
        .map(|i| fidelity_record(i as i32 % 4, i))
        .collect();
    let payments: Vec<TestRecord> = (0..300).map(|i| fidelity_record(0, 10_000 + i)).collect();
    produce(&source.bootstrap, "orders", &orders);
    produce(&source.bootstrap, "payments", &payments);
    let group_offsets = [(0, 100), (1, 0), (2, 500), (3, 17)];
    commit_offsets(&source.bootstrap, "billing", "orders", &group_offsets);
    let dir = tempfile::tempdir().unwrap();
    let to = dir.path().to_str().unwrap();

    // Shard 1 alone: its part is stored, nothing is published.
    let second = shard(&source, to, "1/2");
    assert_eq!(second["shard"]["published"], false, "{second}");
    assert_eq!(second["shard"]["waiting_for"], serde_json::json!([0]));
    let listing = kafkasnap_ok(&["ls", to], &[]);
    assert!(
        listing.contains("INCOMPLETE  (shard 1/2 of run nightly-1"),
        "{listing}"
    );
    assert!(!listing.contains("  complete  "), "{listing}");
    let target = Broker::start("shards-target");
    let refused = kafkasnap(&["restore", "-b", &target.bootstrap, "--from", to], &[]);
    assert!(!refused.status.success(), "a half run must not restore");
    assert!(
        stderr_of(&refused).contains("no complete backup"),
        "{}",
        stderr_of(&refused)
    );

    // Shard 0: the run is complete and published as one backup.
    let first = shard(&source, to, "0/2");
    assert_eq!(first["shard"]["published"], true, "{first}");
    let backup_id = first["backup_id"].as_str().unwrap().to_string();
    let read = first["records_read"].as_u64().unwrap() + second["records_read"].as_u64().unwrap();
    assert_eq!(read, (orders.len() + payments.len()) as u64);
    assert!(
        first["records_read"].as_u64().unwrap() > 0 && second["records_read"].as_u64().unwrap() > 0,
        "both shards have a share: {first} {second}"
    );

    // A shard rerun after publication stores an unused part; the published backup stays.
    let rerun = shard(&source, to, "1/2");
    assert_eq!(rerun["backup_id"], backup_id.as_str(), "{rerun}");
    let listing = kafkasnap_ok(&["ls", to], &[]);
    assert_eq!(listing.matches("  complete  ").count(), 1, "{listing}");

    kafkasnap_ok(&["verify", to, "--backup", &backup_id], &[]);
    kafkasnap_ok(&["restore", "-b", &target.bootstrap, "--from", to], &[]);
    assert_eq!(
        contents(&read_all(&target.bootstrap, "orders", 4)),
        contents(&read_all(&source.bootstrap, "orders", 4))
    );
    assert_eq!(
        contents(&read_all(&target.bootstrap, "payments", 1)),
        contents(&read_all(&source.bootstrap, "payments", 1))
    );
    let restored = committed_offsets(&target.bootstrap, "billing", "orders", 4);
    let expected: Vec<Option<i64>> = group_offsets.iter().map(|&(_, o)| Some(o)).collect();
    assert_eq!(restored, expected);

    // The run is published under the smaller of the two part ids; the other is listed as a part.
    let parts = [
        first["shard"]["part_id"].as_str().unwrap(),
        second["shard"]["part_id"].as_str().unwrap(),
    ];
    let own = parts
        .iter()
        .position(|part| *part == backup_id)
        .unwrap_or_else(|| panic!("{backup_id} is neither part id {parts:?}"));
    let (other_index, other_id) = (1 - own, parts[1 - own]);
    assert!(backup_id.as_str() < other_id, "{backup_id} vs {other_id}");
    let listing = kafkasnap_ok(&["ls", to], &[]);
    assert!(
        listing.contains(&format!(
            "{other_id}  part  (shard {other_index}/2 of run nightly-1: its records are in backup {backup_id})"
        )),
        "{listing}"
    );
    assert!(
        listing.contains("unused part (shard 1/2 of run nightly-1"),
        "{listing}"
    );

    // Keeping one backup keeps both parts it reads from; the unused part goes.
    kafkasnap_ok(&["prune", to, "--keep-last", "1", "--grace", "0s"], &[]);
    kafkasnap_ok(&["verify", to, "--backup", &backup_id], &[]);
    let listing = kafkasnap_ok(&["ls", to], &[]);
    assert_eq!(
        listing.lines().count(),
        2,
        "the backup and its other part: {listing}"
    );
    assert!(!listing.contains("unused"), "{listing}");
}
