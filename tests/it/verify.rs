//! verify: a damaged object is named and blocks restore; --against proves a restore complete
//! and catches a missing record.

use crate::fixture::{filled_source, path_str, ORDERS};
use crate::harness::{kafkasnap, kafkasnap_ok, stderr_of, topic_names, Broker};

#[test]
fn a_flipped_byte_fails_verify_and_blocks_restore() {
    let source = filled_source();
    let dir = tempfile::tempdir().unwrap();
    crate::harness::backup_to(&source.broker.bootstrap, dir.path(), &[]);
    let clean = kafkasnap_ok(&["verify", path_str(dir.path())], &[]);
    assert!(clean.contains("OK"), "{clean}");

    let victim = crate::harness::files_under(dir.path())
        .into_iter()
        .filter(|p| p.to_string_lossy().contains(".kseg"))
        .collect::<Vec<_>>()
        .into_iter()
        .find(|p| p.to_string_lossy().contains(ORDERS))
        .unwrap();
    let mut bytes = std::fs::read(&victim).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&victim, bytes).unwrap();
    let name = victim.file_name().unwrap().to_string_lossy().into_owned();

    let verify = kafkasnap(&["verify", path_str(dir.path())], &[]);
    assert_eq!(verify.status.code(), Some(3));
    let report = String::from_utf8_lossy(&verify.stdout);
    assert!(
        report.contains(&name) && report.contains("checksum"),
        "{report}"
    );

    let target = Broker::start("untouched");
    let before = topic_names(&target.bootstrap);
    let restore = kafkasnap(
        &[
            "restore",
            "-b",
            &target.bootstrap,
            "--from",
            path_str(dir.path()),
        ],
        &[],
    );
    assert!(!restore.status.success());
    assert!(
        stderr_of(&restore).contains(&name),
        "{}",
        stderr_of(&restore)
    );
    assert_eq!(
        topic_names(&target.bootstrap),
        before,
        "restore created topics from a damaged archive"
    );
}

#[test]
fn verify_against_proves_a_restore_and_catches_a_missing_record() {
    let source = filled_source();
    let dir = tempfile::tempdir().unwrap();
    crate::harness::backup_to(&source.broker.bootstrap, dir.path(), &[]);

    let complete = Broker::start("complete");
    kafkasnap_ok(
        &[
            "restore",
            "-b",
            &complete.bootstrap,
            "--from",
            path_str(dir.path()),
        ],
        &[],
    );
    let ok = kafkasnap_ok(
        &[
            "verify",
            path_str(dir.path()),
            "--against",
            &complete.bootstrap,
        ],
        &[],
    );
    assert!(ok.contains("0 differ") && ok.contains("OK"), "{ok}");

    // Leave out exactly the earliest record of the whole backup.
    let earliest = source
        .orders
        .iter()
        .chain(&source.customers)
        .flatten()
        .map(|r| r.timestamp)
        .min()
        .unwrap();
    let short = Broker::start("short");
    kafkasnap_ok(
        &[
            "restore",
            "-b",
            &short.bootstrap,
            "--from",
            path_str(dir.path()),
            "--from-time",
            &(earliest + 1).to_string(),
        ],
        &[],
    );
    let diff = kafkasnap(
        &[
            "verify",
            path_str(dir.path()),
            "--against",
            &short.bootstrap,
            "--output",
            "json",
        ],
        &[],
    );
    assert_eq!(diff.status.code(), Some(3), "{}", stderr_of(&diff));
    let report: serde_json::Value = serde_json::from_slice(&diff.stdout).unwrap();
    let differing: Vec<&serde_json::Value> = report["comparison"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["matches"] == false)
        .collect();
    assert_eq!(differing.len(), 1, "{report}");
    assert_eq!(
        differing[0]["live_records"].as_u64().unwrap() + 1,
        differing[0]["backup_records"].as_u64().unwrap()
    );
}
