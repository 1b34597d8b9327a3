//! Naming a backup with `--backup`: `latest`, a unique start of an id, and the refusals of
//! an ambiguous, unknown or malformed one, for logical and data-dir backups alike; `ls`'s
//! header row and an incremental backup's parent in `ls` and `show`.

use crate::fixture::path_str;
use crate::harness::{
    create_topic, fidelity_record, kafkasnap, kafkasnap_ok, produce, stderr_of, Broker, TestRecord,
};

fn records(from: usize, count: usize) -> Vec<TestRecord> {
    (from..from + count)
        .map(|i| fidelity_record(0, i))
        .collect()
}

fn backup_id(source: &Broker, to: &str, extra: &[&str]) -> (String, serde_json::Value) {
    let args = [&["--output", "json"], extra].concat();
    let printed = crate::harness::backup_to(&source.bootstrap, std::path::Path::new(to), &args);
    let summary: serde_json::Value = serde_json::from_str(&printed).unwrap();
    (summary["backup_id"].as_str().unwrap().to_string(), summary)
}

/// The characters two ids share at their start.
fn common_prefix(a: &str, b: &str) -> String {
    a.chars()
        .zip(b.chars())
        .take_while(|(x, y)| x == y)
        .map(|(x, _)| x)
        .collect()
}

/// Runs `args`, which must fail with `code`; returns its stderr.
fn refused(args: &[&str], code: i32) -> String {
    let output = kafkasnap(args, &[]);
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(code), "{args:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

fn shown_id(to: &str, selector: &str) -> serde_json::Value {
    let shown = kafkasnap_ok(&["show", to, "--backup", selector, "--output", "json"], &[]);
    serde_json::from_str(&shown).unwrap()
}

#[test]
fn backups_are_named_by_latest_or_a_unique_start_of_their_id() {
    let source = Broker::start("selectors");
    let dir = tempfile::tempdir().unwrap();
    let to = path_str(dir.path());
    create_topic(&source.bootstrap, "orders", 1, &[]);
    produce(&source.bootstrap, "orders", &records(0, 10));
    let (older, _) = backup_id(&source, to, &[]);
    produce(&source.bootstrap, "orders", &records(10, 5));
    // Ids carry the second a backup began: a second apart, the older one's second alone
    // names it.
    std::thread::sleep(std::time::Duration::from_millis(1_100));
    let (newer, summary) = backup_id(&source, to, &["--incremental"]);
    assert_eq!(summary["parent"], older.as_str(), "{summary}");
    assert!(older < newer, "{older} {newer}");

    // latest, and the default, are the newer backup.
    let latest = shown_id(to, "latest");
    assert_eq!(latest["backup_id"], newer.as_str());
    assert_eq!(latest["parent"], older.as_str());
    let default: serde_json::Value =
        serde_json::from_str(&kafkasnap_ok(&["show", to, "--output", "json"], &[])).unwrap();
    assert_eq!(default["backup_id"], newer.as_str());
    let text = kafkasnap_ok(&["show", to, "--backup", "latest"], &[]);
    assert!(
        text.contains(&format!("builds on parent backup {older}")),
        "{text}"
    );

    // A unique start of the older id selects it, for show, cat, verify and restore.
    let prefix = &older[..15];
    assert_eq!(shown_id(to, prefix)["backup_id"], older.as_str());
    assert_eq!(shown_id(to, &older)["backup_id"], older.as_str());
    let lines = |selector: &str| {
        let out = kafkasnap_ok(&["cat", to, "--topic", "orders", "--backup", selector], &[]);
        out.lines().count()
    };
    assert_eq!(lines(prefix), 10);
    assert_eq!(lines("latest"), 15);
    let verified = kafkasnap_ok(&["verify", to, "--backup", prefix, "--output", "json"], &[]);
    let verified: serde_json::Value = serde_json::from_str(&verified).unwrap();
    assert!(verified.to_string().contains(&older), "{verified}");
    let target = Broker::start("selectors-target");
    crate::harness::restore_from(&target.bootstrap, to, &["--backup", prefix]);
    let restored = crate::harness::read_all(&target.bootstrap, "orders", 1);
    assert_eq!(restored[0].len(), 10, "the older backup's records");

    // A start both ids share is refused (exit 2), naming both and what to do.
    let shared = common_prefix(&older, &newer);
    assert!(shared.len() >= 8, "{older} {newer}");
    for command in [&["show", to][..], &["cat", to, "--topic", "orders"][..]] {
        let mut args = command.to_vec();
        args.extend(["--backup", &shared]);
        let stderr = refused(&args, 2);
        assert!(
            stderr.contains(&older) && stderr.contains(&newer),
            "{stderr}"
        );
        assert!(
            stderr.contains("ambiguous") && stderr.contains("more characters"),
            "{stderr}"
        );
    }
    let stderr = refused(
        &[
            "restore",
            "-b",
            &target.bootstrap,
            "--from",
            to,
            "--backup",
            &shared,
            "--if-exists",
            "append",
        ],
        2,
    );
    assert!(
        stderr.contains(&older) && stderr.contains(&newer),
        "{stderr}"
    );
    assert_eq!(
        crate::harness::read_all(&target.bootstrap, "orders", 1)[0].len(),
        10,
        "an ambiguous --backup writes nothing"
    );

    // A start no id has: exit 1, pointing at ls; text that cannot start an id: exit 2.
    let stderr = refused(&["show", to, "--backup", "2001"], 1);
    assert!(
        stderr.contains("has an id starting with 2001")
            && stderr.contains(&format!("kafkasnap ls {to}")),
        "{stderr}"
    );
    let stderr = refused(&["verify", to, "--backup", "nope"], 2);
    assert!(stderr.contains("is not a backup id"), "{stderr}");

    // ls: a header row, then newest first with each incremental backup's parent.
    let listing = kafkasnap_ok(&["ls", to], &[]);
    let rows: Vec<&str> = listing.lines().collect();
    assert_eq!(rows.len(), 3, "{listing}");
    for column in [
        "ID", "STATUS", "STARTED", "TOPICS", "RECORDS", "STORED", "PARENT",
    ] {
        assert!(rows[0].contains(column), "{listing}");
    }
    assert!(rows[0].starts_with("ID "), "{listing}");
    assert!(
        rows[1].starts_with(&newer) && rows[1].contains("  complete  "),
        "{listing}"
    );
    assert!(rows[1].ends_with(&older), "the parent: {listing}");
    assert!(
        rows[2].starts_with(&older) && rows[2].ends_with(" -"),
        "a full backup has no parent: {listing}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&kafkasnap_ok(&["ls", to, "--output", "json"], &[])).unwrap();
    assert_eq!(json[0]["backup_id"], newer.as_str());
    assert_eq!(json[0]["parent"], older.as_str());
    assert!(json[1]["parent"].is_null(), "{json}");
}

#[test]
fn data_dir_backups_are_named_the_same_way() {
    let volume = tempfile::tempdir().unwrap();
    std::fs::write(volume.path().join("meta.properties"), "node.id=1\n").unwrap();
    let tar = crate::k8s_restore::tar_of(volume.path());
    let backups = tempfile::tempdir().unwrap();
    let (first, second) = crate::harness::block_on(async {
        let first = crate::k8s_restore::publish(backups.path(), &tar).await;
        tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
        let second = crate::k8s_restore::publish(backups.path(), &tar).await;
        (first.backup_id.to_string(), second.backup_id.to_string())
    });
    let to = path_str(backups.path());
    let verified =
        |selector: &str| kafkasnap_ok(&["datadir", "verify", to, "--backup", selector], &[]);
    assert!(
        verified("latest").contains(&second),
        "{}",
        verified("latest")
    );
    assert!(
        verified(&first[..15]).contains(&first),
        "{}",
        verified(&first[..15])
    );

    let shared = common_prefix(&first, &second);
    let stderr = refused(&["datadir", "verify", to, "--backup", &shared], 2);
    assert!(
        stderr.contains(&first) && stderr.contains(&second) && stderr.contains("data-dir backups"),
        "{stderr}"
    );
    let stderr = refused(&["datadir", "verify", to, "--backup", "2001"], 1);
    assert!(
        stderr.contains(&format!("kafkasnap datadir ls {to}")),
        "{stderr}"
    );
    // Named by the start of its id where a logical backup is expected, it is said to be a
    // data-dir backup.
    let stderr = refused(&["show", to, "--backup", &first[..15]], 1);
    assert!(
        stderr.contains(&format!("backup {first} at {to} is a data-dir backup")),
        "{stderr}"
    );
}
