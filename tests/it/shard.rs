//! Sharded backups: two shards of one run make one backup that restores exactly (records,
//! group offsets); until the last shard stores its part nothing is published; a shard rerun
//! after publication changes nothing; prune keeps the parts a kept backup reads from.

use crate::harness::{
    commit_offsets, committed_offsets, contents, create_topic, fidelity_record, kafkasnap,
    kafkasnap_ok, produce, read_all, stderr_of, Broker, TestRecord,
};

/// Runs shard `spec` of run nightly-1 (with `extra` flags); returns its exit code and summary.
fn shard_with(
    source: &Broker,
    to: &str,
    spec: &str,
    extra: &[&str],
) -> (Option<i32>, serde_json::Value) {
    let mut args = vec![
        "backup",
        "-b",
        &source.bootstrap,
        "--to",
        to,
        "--shard",
        spec,
        "--shard-run",
        "nightly-1",
        "--output",
        "json",
    ];
    args.extend_from_slice(extra);
    let out = kafkasnap(&args, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|err| panic!("{err}: {stdout} {}", stderr_of(&out)));
    (out.status.code(), summary)
}

/// A shard that stores its part and leaves the run waiting exits 4; the last one publishes (0).
fn shard(source: &Broker, to: &str, spec: &str) -> serde_json::Value {
    let (code, summary) = shard_with(source, to, spec, &[]);
    let expected = if summary["shard"]["published"] == true {
        0
    } else {
        4
    };
    assert_eq!(code, Some(expected), "{summary}");
    summary
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

    // The run name reused (a rerun after publication) starts the next run of that name: the
    // part waits for that run's shard 0, and is not reported as the published backup.
    // (Backup ids have second resolution: a part whose id is not after the run's finish
    // counts as a late retry of that run.)
    std::thread::sleep(std::time::Duration::from_millis(1_100));
    let rerun = shard(&source, to, "1/2");
    assert_eq!(rerun["shard"]["published"], false, "{rerun}");
    assert_eq!(rerun["backup_id"], rerun["shard"]["part_id"], "{rerun}");
    assert_ne!(rerun["backup_id"], backup_id.as_str(), "{rerun}");
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
            "{other_id}  part        (shard {other_index}/2 of run nightly-1: its records are in backup {backup_id})"
        )),
        "{listing}"
    );
    let rerun_part = rerun["shard"]["part_id"].as_str().unwrap();
    assert!(
        listing.contains(&format!(
            "{rerun_part}  INCOMPLETE  (shard 1/2 of run nightly-1: the other shards have not all stored their parts)"
        )),
        "{listing}"
    );

    // That run's shard 0 publishes it as a second backup of the same records.
    let next = shard(&source, to, "0/2");
    assert_eq!(next["shard"]["published"], true, "{next}");
    let next_id = next["backup_id"].as_str().unwrap().to_string();
    assert!(
        next_id != backup_id && next_id.as_str() == rerun_part,
        "{next}"
    );
    let shown = kafkasnap_ok(&["show", to, "--backup", &next_id, "--output", "json"], &[]);
    let shown: serde_json::Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(
        shown["totals"]["records"],
        (orders.len() + payments.len()) as u64,
        "{shown}"
    );
    let listing = kafkasnap_ok(&["ls", to], &[]);
    assert_eq!(listing.matches("  complete  ").count(), 2, "{listing}");

    // Keeping one backup keeps both parts it reads from; the older run goes.
    kafkasnap_ok(&["prune", to, "--keep-last", "1", "--grace", "0s"], &[]);
    kafkasnap_ok(&["verify", to, "--backup", &next_id], &[]);
    let listing = kafkasnap_ok(&["ls", to], &[]);
    assert_eq!(
        listing.lines().count(),
        3,
        "a header, the backup and its other part: {listing}"
    );
    assert!(!listing.contains(&backup_id), "{listing}");
}

/// With --wait-for-run, a shard that finds the run waiting waits for the other shards; alone,
/// it gives up after that long with exit 4 and its part still stored for the run.
#[test]
fn a_waiting_shard_waits_for_the_run_or_exits_4() {
    let source = Broker::start("shards-wait");
    create_topic(&source.bootstrap, "orders", 4, &[]);
    let orders: Vec<TestRecord> = (0..400).map(|i| fidelity_record(i as i32 % 4, i)).collect();
    produce(&source.bootstrap, "orders", &orders);
    let dir = tempfile::tempdir().unwrap();
    let to = dir.path().to_str().unwrap();

    let started = std::time::Instant::now();
    let (code, alone) = shard_with(&source, to, "1/2", &["--wait-for-run", "3s"]);
    assert_eq!(code, Some(4), "{alone}");
    assert_eq!(
        alone["shard"]["waiting_for"],
        serde_json::json!([0]),
        "{alone}"
    );
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(3),
        "it waited"
    );

    // Both shards at once: each waits until the run is published, and both report it.
    let (a, b) = std::thread::scope(|scope| {
        let a = scope.spawn(|| shard_with(&source, to, "0/2", &["--wait-for-run", "2m"]));
        let b = scope.spawn(|| shard_with(&source, to, "1/2", &["--wait-for-run", "2m"]));
        (a.join().unwrap(), b.join().unwrap())
    });
    for (code, summary) in [&a, &b] {
        assert_eq!(*code, Some(0), "{summary}");
        assert_eq!(summary["shard"]["published"], true, "{summary}");
    }
    assert_eq!(a.1["backup_id"], b.1["backup_id"]);
    let shown = kafkasnap_ok(&["show", to, "--output", "json"], &[]);
    let shown: serde_json::Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(shown["totals"]["records"], 400, "{shown}");
}
