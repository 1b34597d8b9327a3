//! What a location's writer (or a wrong clock) can make of a listing, refused or passed over:
//! a manifest dated in the future (prune's keep rules and the "newest backup" choice ignore
//! it), a plaintext manifest read with a key (refused: its `encryption` may have been
//! stripped), and an unpublished backup whose id is dated long ago while its objects are
//! fresh (prune ages it by the store's last-modified times, so it is kept).

use std::time::{Duration, SystemTime};

use kafkasnap::store::Location;

use crate::encryption::write_key;
use crate::fixture::path_str;
use crate::harness::{kafkasnap, kafkasnap_ok, stderr_of};
use crate::prune::{ids_of, write_backup};

const DAY: Duration = Duration::from_secs(86_400);

#[tokio::test(flavor = "multi_thread")]
async fn a_future_dated_manifest_counts_for_no_rule_and_is_not_taken_for_the_newest() {
    let dir = tempfile::tempdir().unwrap();
    let url = path_str(dir.path());
    let location = Location::open(url, true).unwrap();
    let now = SystemTime::now();
    let older = write_backup(&location, now - 2 * DAY, None, true).await;
    let newest = write_backup(&location, now - DAY, None, true).await;
    // Planted by someone with write access, dated a month ahead.
    let planted = write_backup(&location, now + 30 * DAY, None, true).await;

    let shown: serde_json::Value =
        serde_json::from_str(&kafkasnap_ok(&["show", url, "--output", "json"], &[])).unwrap();
    assert_eq!(shown["backup_id"], newest.backup_id.as_str());

    let args = [
        "prune",
        url,
        "--keep-last",
        "1",
        "--dry-run",
        "--output",
        "json",
    ];
    let plan: serde_json::Value = serde_json::from_str(&kafkasnap_ok(&args, &[])).unwrap();
    // Left alone: kept, counting for no rule (keep-last 1 still keeps the genuine newest).
    assert_eq!(
        ids_of(&plan["kept"]),
        vec![planted.backup_id.to_string(), newest.backup_id.to_string()]
    );
    assert!(plan["kept"][0]["reasons"]
        .to_string()
        .contains("left alone"));
    assert_eq!(ids_of(&plan["removed"]), vec![older.backup_id.to_string()]);
    let warnings = plan["warnings"].to_string();
    assert!(
        warnings.contains(planted.backup_id.as_str()) && warnings.contains("in the future"),
        "{warnings}"
    );

    // Named explicitly, it is still readable.
    let named = ["show", url, "--backup", planted.backup_id.as_str()];
    kafkasnap_ok(&named, &[]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plaintext_backup_read_with_a_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let url = path_str(&store);
    let location = Location::open(url, true).unwrap();
    let backup = write_backup(&location, SystemTime::now() - DAY, None, true).await;
    let (key, _) = write_key(dir.path(), "key");
    let key = path_str(&key);

    kafkasnap_ok(&["cat", url, "--topic", "orders"], &[]);
    for args in [
        vec!["cat", url, "--topic", "orders", "--key-file", key],
        vec!["verify", url, "--key-file", key],
    ] {
        let output = kafkasnap(&args, &[]);
        let stderr = stderr_of(&output);
        assert!(!output.status.success(), "{args:?} succeeded: {stderr}");
        assert!(
            stderr.contains(&format!("backup {} is not encrypted", backup.backup_id))
                && stderr.contains("run without --key-file"),
            "{args:?}: {stderr}"
        );
        assert!(output.stdout.is_empty(), "{args:?} printed records");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unpublished_backup_is_aged_by_when_its_objects_were_written_not_by_its_id() {
    let dir = tempfile::tempdir().unwrap();
    let url = path_str(dir.path());
    let location = Location::open(url, true).unwrap();
    let now = SystemTime::now();
    let published = write_backup(&location, now - 3 * DAY, None, true).await;
    // Its id says two days ago (a writer with a slow clock), its objects were written now.
    let running = write_backup(&location, now - 2 * DAY, None, false).await;
    let args = [
        "prune",
        url,
        "--keep-last",
        "1",
        "--grace",
        "1h",
        "--output",
        "json",
    ];
    let plan: serde_json::Value = serde_json::from_str(&kafkasnap_ok(&args, &[])).unwrap();
    assert_eq!(
        ids_of(&plan["kept"]),
        vec![
            running.backup_id.to_string(),
            published.backup_id.to_string()
        ]
    );
    assert!(ids_of(&plan["removed"]).is_empty(), "{plan}");
    let prefix = dir.path().join("backups").join(running.backup_id.as_str());
    assert!(prefix.exists());

    // Once the store says its objects are two days old, it is a crashed leftover.
    crate::prune::backdate(dir.path(), "backups", &running.backup_id, now - 2 * DAY);
    let plan: serde_json::Value = serde_json::from_str(&kafkasnap_ok(&args, &[])).unwrap();
    assert_eq!(
        ids_of(&plan["removed"]),
        vec![running.backup_id.to_string()]
    );
    assert!(!prefix.exists());
}
