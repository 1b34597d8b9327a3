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

/// The (key, records) of every segment of `topic` in the manifest of the only backup in `dir`.
fn segments_of(dir: &std::path::Path, topic: &str) -> Vec<(String, u64)> {
    let id = crate::harness::only_backup_id(dir);
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.join("backups").join(id).join("manifest.json")).unwrap(),
    )
    .unwrap();
    manifest["topics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["name"] == topic)
        .flat_map(|t| t["partitions"].as_array().unwrap())
        .flat_map(|p| p["segments"].as_array().unwrap())
        .map(|s| {
            (
                s["key"].as_str().unwrap().to_string(),
                s["records"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn verify_counts_only_the_records_it_decoded() {
    let source = filled_source();
    let dir = tempfile::tempdir().unwrap();
    crate::harness::backup_to(
        &source.broker.bootstrap,
        dir.path(),
        &["--segment-bytes", "65536"],
    );
    let total: u64 = source
        .orders
        .iter()
        .chain(&source.customers)
        .map(|p| p.len() as u64)
        .sum();
    let clean = kafkasnap_ok(&["verify", path_str(dir.path())], &[]);
    assert!(
        clean.contains(&format!(", {total} records checked, 0 problems")),
        "{clean}"
    );

    let segments = segments_of(dir.path(), ORDERS);
    assert!(segments.len() >= 3, "{segments:?}");
    let (deleted, truncated) = (&segments[0], &segments[segments.len() - 1]);
    std::fs::remove_file(dir.path().join(&deleted.0)).unwrap();
    let truncated_path = dir.path().join(&truncated.0);
    let bytes = std::fs::read(&truncated_path).unwrap();
    std::fs::write(&truncated_path, &bytes[..bytes.len() / 2]).unwrap();

    let verify = kafkasnap(&["verify", path_str(dir.path()), "--output", "json"], &[]);
    assert_eq!(verify.status.code(), Some(3), "{}", stderr_of(&verify));
    let report: serde_json::Value = serde_json::from_slice(&verify.stdout).unwrap();
    let checked = total - deleted.1 - truncated.1;
    assert_eq!(report["archive"]["records"], checked, "{report}");
    assert_eq!(report["archive"]["records_in_manifest"], total, "{report}");
    assert_eq!(report["archive"]["records_decoded"], false, "{report}");
    assert_eq!(
        report["archive"]["problems"].as_array().unwrap().len(),
        2,
        "{report}"
    );

    let text = kafkasnap(&["verify", path_str(dir.path())], &[]);
    assert_eq!(text.status.code(), Some(3));
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains(&format!("{checked} of {total} records checked (the others are in objects that failed), 2 problems")),
        "{text}"
    );
}

#[test]
fn a_damaged_manifest_is_a_damaged_backup_for_verify_and_ls() {
    let broker = Broker::start("damaged");
    crate::harness::create_topic(&broker.bootstrap, "t", 1, &[]);
    crate::harness::produce(
        &broker.bootstrap,
        "t",
        &[crate::harness::fidelity_record(0, 1)],
    );
    let dir = tempfile::tempdir().unwrap();
    let to = path_str(dir.path());
    crate::harness::backup_to(&broker.bootstrap, dir.path(), &[]);
    let id = crate::harness::only_backup_id(dir.path());
    let manifest_path = dir.path().join("backups").join(&id).join("manifest.json");
    let bytes = std::fs::read(&manifest_path).unwrap();
    std::fs::write(&manifest_path, &bytes[..bytes.len() / 2]).unwrap();

    let verify = kafkasnap(&["verify", to], &[]);
    let stdout = String::from_utf8_lossy(&verify.stdout);
    assert_eq!(
        verify.status.code(),
        Some(3),
        "{stdout}{}",
        stderr_of(&verify)
    );
    assert!(
        stdout.contains(&format!("backup {id}: its manifest is damaged"))
            && stdout.contains(&format!(
                "BAD backups/{id}/manifest.json: manifest is not valid JSON"
            ))
            && stdout.contains("FAILED"),
        "{stdout}"
    );
    let verify = kafkasnap(&["verify", to, "--backup", &id, "--output", "json"], &[]);
    assert_eq!(verify.status.code(), Some(3));
    let report: serde_json::Value = serde_json::from_slice(&verify.stdout).unwrap();
    assert_eq!(report["ok"], false);
    assert_eq!(report["archive"]["manifest_damaged"], true);
    assert_eq!(report["archive"]["backup_id"], id.as_str());

    let listed: serde_json::Value =
        serde_json::from_str(&kafkasnap_ok(&["ls", to, "--output", "json"], &[])).unwrap();
    assert_eq!(listed[0]["backup_id"], id.as_str());
    assert_eq!(listed[0]["complete"], false, "{listed}");
    assert_eq!(listed[0]["damaged"], true, "{listed}");
    let text = kafkasnap_ok(&["ls", to], &[]);
    assert!(text.starts_with("ID "), "a header row first: {text}");
    assert!(
        text.lines()
            .nth(1)
            .unwrap()
            .starts_with(&format!("{id}  DAMAGED  ")),
        "{text}"
    );

    // A manifest of a format this kafkasnap does not read is not damage: verify fails (1).
    let mut manifest: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    manifest["format_version"] = 99.into();
    std::fs::write(&manifest_path, manifest.to_string()).unwrap();
    let newer = kafkasnap(&["verify", to], &[]);
    assert_eq!(newer.status.code(), Some(1));
    let text = kafkasnap_ok(&["ls", to], &[]);
    assert!(
        text.lines()
            .nth(1)
            .unwrap()
            .starts_with(&format!("{id}  UNREADABLE  ")),
        "{text}"
    );
}

/// After restoring one topic of a two-topic backup, `verify --against` with `--include` that
/// topic (or `--exclude` the other) compares only it and passes; without, it fails naming the
/// topic the cluster lacks. A selection that leaves nothing to compare is refused (exit 2).
#[test]
fn verify_against_a_partial_restore_compares_the_selected_topics() {
    use crate::harness::{create_topic, fidelity_record, produce, restore_from};
    let source = Broker::start("verify-partial-source");
    for (topic, partitions) in [("orders", 2), ("payments", 1)] {
        create_topic(&source.bootstrap, topic, partitions, &[]);
        let records: Vec<_> = (0..40)
            .map(|i| fidelity_record(i % partitions, i as usize))
            .collect();
        produce(&source.bootstrap, topic, &records);
    }
    let dir = tempfile::tempdir().unwrap();
    let from = path_str(dir.path());
    crate::harness::backup_to(&source.bootstrap, dir.path(), &[]);
    let target = Broker::start("verify-partial-target");
    restore_from(&target.bootstrap, from, &["--include", "orders"]);

    let against = [
        "verify",
        from,
        "--against",
        &target.bootstrap,
        "--timeout",
        "20s",
    ];
    let selected = kafkasnap_ok(&[&against[..], &["--include", "ord.*"]].concat(), &[]);
    assert!(
        selected.contains("compared 2 partitions of the topics --include ord.* selects with the cluster: 0 differ")
            && selected.trim_end().ends_with("OK"),
        "{selected}"
    );
    let excluded: serde_json::Value = serde_json::from_str(&kafkasnap_ok(
        &[&against[..], &["--exclude", "payments", "-o", "json"]].concat(),
        &[],
    ))
    .unwrap();
    assert_eq!(excluded["ok"], true, "{excluded}");
    let compared: Vec<&str> = excluded["comparison"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["topic"].as_str().unwrap())
        .collect();
    assert_eq!(compared, ["orders", "orders"], "{excluded}");

    let whole = kafkasnap(&against, &[]);
    let printed = String::from_utf8_lossy(&whole.stdout);
    assert_eq!(
        whole.status.code(),
        Some(3),
        "{printed}{}",
        stderr_of(&whole)
    );
    assert!(
        printed.contains("DIFF payments/0: backup 40 records, cluster -: topic payments does not exist in the cluster")
            && printed.contains("FAILED"),
        "{printed}"
    );

    let nothing = kafkasnap(&[&against[..], &["--include", "refunds"]].concat(), &[]);
    assert_eq!(nothing.status.code(), Some(2), "{}", stderr_of(&nothing));
    assert!(
        stderr_of(&nothing).contains("--include refunds select no topic of backup")
            && stderr_of(&nothing).contains("it holds: orders, payments"),
        "{}",
        stderr_of(&nothing)
    );
    // Without --against the whole backup is checked: a selection there is refused.
    let alone = kafkasnap(&["verify", from, "--include", "orders"], &[]);
    assert_eq!(alone.status.code(), Some(2), "{}", stderr_of(&alone));
    assert!(
        stderr_of(&alone).contains("--against"),
        "{}",
        stderr_of(&alone)
    );
}
