//! What keeps a shared location safe: prune deletes only what is inside the location (never
//! through a symbolic link), and never what a live backup, restore or verify holds a lock on;
//! a backup checks its objects before it publishes.

use std::os::unix::fs::symlink;

use kafkasnap::store::Location;

use crate::faults::wait_bounded;
use crate::fixture::path_str;
use crate::harness::{
    backup_in_flight, backup_in_flight_to, files_under, fill_bulk, kafkasnap, kafkasnap_ok,
    stderr_of, Broker, S3Server,
};
use crate::prune::{backup_dirs, utc, write_backup};

/// A directory outside the location with files that must survive any prune.
fn precious_outside() -> tempfile::TempDir {
    let outside = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(outside.path().join("t/0")).unwrap();
    std::fs::write(
        outside.path().join("t/0/00000000000000000000.kseg.zst"),
        b"mine",
    )
    .unwrap();
    std::fs::write(outside.path().join("notes.txt"), b"also mine").unwrap();
    outside
}

fn assert_untouched(outside: &std::path::Path) {
    assert_eq!(
        std::fs::read(outside.join("t/0/00000000000000000000.kseg.zst")).unwrap(),
        b"mine"
    );
    assert_eq!(
        std::fs::read(outside.join("notes.txt")).unwrap(),
        b"also mine"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn prune_never_deletes_through_a_symbolic_link() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let location = Location::open(path_str(root), true).unwrap();
    let old = write_backup(&location, utc("2025-03-01T02:00:00Z"), None, true).await;
    let leftover = write_backup(&location, utc("2025-03-02T02:00:00Z"), None, false).await;
    let newest = write_backup(&location, utc("2025-03-03T02:00:00Z"), None, true).await;

    // A published backup's segments/ holds a link to a directory outside; an unpublished
    // leftover holds one too, and a link to a single file.
    let outside_a = precious_outside();
    let outside_b = precious_outside();
    let old_dir = root.join("backups").join(old.backup_id.as_str());
    symlink(outside_a.path(), old_dir.join("segments/elsewhere")).unwrap();
    let leftover_dir = root.join("backups").join(leftover.backup_id.as_str());
    symlink(outside_b.path(), leftover_dir.join("linked")).unwrap();
    symlink(
        outside_b.path().join("notes.txt"),
        leftover_dir.join("notes"),
    )
    .unwrap();

    let out = kafkasnap_ok(&prune_to_newest(path_str(root)), &[]);
    let summary: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(backup_dirs(root), vec![newest.backup_id.to_string()]);
    assert_untouched(outside_a.path());
    assert_untouched(outside_b.path());
    // The links count as the location's objects (size 0); what is behind them does not.
    let removed = summary["removed"].as_array().unwrap();
    let objects: u64 = removed.iter().map(|r| r["objects"].as_u64().unwrap()).sum();
    assert_eq!(objects, 2 + 1 + 1 + 2, "{summary}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backup_directory_that_is_a_link_loses_only_the_link() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let location = Location::open(path_str(root), true).unwrap();
    let newest = write_backup(&location, utc("2025-03-03T02:00:00Z"), None, true).await;
    let outside = precious_outside();
    let linked_id = "20250301T020000Z-00beef";
    symlink(outside.path(), root.join("backups").join(linked_id)).unwrap();

    let output = kafkasnap(
        &["prune", path_str(root), "--keep-last", "1", "--grace", "0s"],
        &[],
    );
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert_eq!(backup_dirs(root), vec![newest.backup_id.to_string()]);
    assert_untouched(outside.path());
}

/// Prunes `to` with `--keep-last 1 --grace 0s` over and over while `child` (a backup into
/// it) runs; returns the backup's output and every prune's JSON summary.
fn prune_while_running(
    child: std::process::Child,
    to: &str,
    env: &[(&str, String)],
) -> (std::process::Output, Vec<serde_json::Value>) {
    let mut child = child;
    let mut summaries = Vec::new();
    let started = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(120),
            "backup hangs"
        );
        let output = kafkasnap(&prune_to_newest(to), env);
        assert!(output.status.success(), "{}", stderr_of(&output));
        summaries.push(serde_json::from_slice(&output.stdout).unwrap());
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    (
        wait_bounded(child, std::time::Duration::from_secs(5)),
        summaries,
    )
}

/// The outcome the location must show after a prune raced a backup that succeeded: exactly
/// one complete backup, and `verify` passes.
fn assert_published_backups_verify(to: &str, env: &[(&str, String)]) {
    let listed: serde_json::Value =
        serde_json::from_str(&kafkasnap_ok(&["ls", to, "--output", "json"], env)).unwrap();
    let complete: Vec<&serde_json::Value> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["complete"] == true)
        .collect();
    assert_eq!(complete.len(), 1, "{listed}");
    let output = kafkasnap(&["verify", to], env);
    assert!(
        output.status.success(),
        "a published backup does not verify:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        stderr_of(&output)
    );
}

/// Every prune that ran while the backup did kept it, saying why.
fn assert_kept_as_in_use(summaries: &[serde_json::Value]) {
    assert!(!summaries.is_empty());
    for summary in summaries {
        assert!(
            summary["removed"].as_array().unwrap().is_empty(),
            "{summary}"
        );
        let kept = summary["kept"].as_array().unwrap();
        // A prune that ran after the backup published sees it as complete (kept, last 1).
        assert!(
            kept_one_in_use(summary) || kept.iter().any(|k| k["complete"] == true),
            "{summary}"
        );
    }
}

/// `prune TO --keep-last 1 --grace 0s --output json`: keeps only the newest (and its
/// chain), with no grace for unpublished leftovers.
pub(crate) fn prune_to_newest(to: &str) -> [&str; 8] {
    [
        "prune",
        to,
        "--keep-last",
        "1",
        "--grace",
        "0s",
        "--output",
        "json",
    ]
}

/// Whether a prune's JSON summary kept some backup because a running backup holds it.
pub(crate) fn kept_one_in_use(summary: &serde_json::Value) -> bool {
    summary["kept"].as_array().unwrap().iter().any(|k| {
        k["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r.as_str().unwrap().contains("in use by a running backup"))
    })
}

#[test]
fn a_prune_during_a_backup_never_leaves_a_broken_published_backup() {
    let broker = Broker::start("race-local");
    fill_bulk(&broker, "bulk", 2, 20_000);
    let dir = tempfile::tempdir().unwrap();
    let to = path_str(dir.path());
    let child = backup_in_flight(&broker, dir.path(), &["--parallelism", "1"]);
    let (backup, summaries) = prune_while_running(child, to, &[]);
    assert!(backup.status.success(), "{}", stderr_of(&backup));
    assert_kept_as_in_use(&summaries);
    assert_published_backups_verify(to, &[]);
    assert!(
        !files_under(&dir.path().join("locks"))
            .iter()
            .any(|f| f.extension().is_some_and(|e| e == "json")),
        "every run removed its lock"
    );
}

#[test]
fn a_prune_during_a_backup_to_s3_never_leaves_a_broken_published_backup() {
    let broker = Broker::start("race-s3");
    fill_bulk(&broker, "bulk", 2, 20_000);
    let s3 = S3Server::start("bucket");
    let env = s3.env();
    let to = "s3://bucket/nightly";
    let prefix = s3.root.path().join("bucket/nightly");
    let child = backup_in_flight_to(&broker, to, &env, &prefix, &["--parallelism", "1"]);
    let (backup, summaries) = prune_while_running(child, to, &env);
    assert!(backup.status.success(), "{}", stderr_of(&backup));
    assert_kept_as_in_use(&summaries);
    assert_published_backups_verify(to, &env);
}
