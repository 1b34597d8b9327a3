//! Bad input and unreachable services: a clear message naming the problem, a non-zero exit,
//! nothing published.

use crate::fixture::path_str;
use crate::harness::{create_topic, free_port, kafkasnap, stderr_of, Broker};

fn fails_with(args: &[&str], expected: &str) {
    let output = kafkasnap(args, &[]);
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
    assert!(
        stderr.contains(expected),
        "{args:?}: expected {expected:?} in:\n{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn unreachable_brokers_fail_in_bounded_time_naming_the_servers() {
    let dir = tempfile::tempdir().unwrap();
    let servers = format!("127.0.0.1:{}", free_port());
    let started = std::time::Instant::now();
    fails_with(
        &[
            "backup",
            "-b",
            &servers,
            "--to",
            path_str(dir.path()),
            "--timeout",
            "3s",
        ],
        &format!("cannot reach Kafka at {servers}"),
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    assert!(
        !dir.path().join("backups").exists(),
        "nothing may be written"
    );
    // A destination the failed backup created is not left behind, empty.
    let new = dir.path().join("nightly");
    fails_with(
        &[
            "backup",
            "-b",
            &servers,
            "--to",
            path_str(&new),
            "--timeout",
            "2s",
        ],
        "cannot reach Kafka",
    );
    assert!(!new.exists(), "an empty {} was left behind", new.display());
}

#[test]
fn bad_selections_locations_and_ids_are_named() {
    let broker = Broker::start("errors");
    create_topic(&broker.bootstrap, "present", 1, &[]);
    let dir = tempfile::tempdir().unwrap();
    let to = path_str(dir.path());
    fails_with(
        &[
            "backup",
            "-b",
            &broker.bootstrap,
            "--to",
            to,
            "--include",
            "absent.*",
        ],
        "no topic matches the selection (--include absent.*); topics present: present",
    );
    fails_with(&["ls", "/nonexistent/kafkasnap/dir"], "no such directory");
    fails_with(
        &["restore", "-b", &broker.bootstrap, "--from", to],
        "no complete backup",
    );
    let not_an_id = kafkasnap(&["show", to, "--backup", "../etc"], &[]);
    assert_eq!(
        not_an_id.status.code(),
        Some(2),
        "{}",
        stderr_of(&not_an_id)
    );
    assert!(stderr_of(&not_an_id).contains("is not a backup id"));
    fails_with(
        &["show", to, "--backup", "20261125T145443Z-abcdef"],
        "backup 20261125T145443Z-abcdef not found",
    );

    crate::harness::kafkasnap_ok(&["backup", "-b", &broker.bootstrap, "--to", to], &[]);
    let logical = crate::harness::only_backup_id(dir.path());
    // The data-dir commands say the location holds logical backups, and which.
    let only_logical = format!(
        "no data-dir backup at {}, only logical backups (the newest is {logical}",
        std::fs::canonicalize(dir.path()).unwrap().display()
    );
    fails_with(&["datadir", "verify", to], &only_logical);
    fails_with(&["datadir", "restore", "--from", to], &only_logical);
    fails_with(
        &["datadir", "verify", to, "--backup", &logical[..12]],
        &format!("backup {logical} at"),
    );
    fails_with(
        &["datadir", "verify", to, "--backup", &logical],
        "is a logical backup, not a data-dir one. Restore a logical backup into a running cluster with `kafkasnap restore --from LOCATION",
    );
    let unknown = kafkasnap(
        &[
            "restore",
            "-b",
            &broker.bootstrap,
            "--from",
            to,
            "--topic-map",
            "nope=x",
            "--dry-run",
        ],
        &[],
    );
    assert_eq!(unknown.status.code(), Some(2), "{}", stderr_of(&unknown));
    assert!(stderr_of(&unknown).contains("--topic-map names topic \"nope\""));
    let bad_time = kafkasnap(
        &[
            "restore",
            "-b",
            &broker.bootstrap,
            "--from",
            to,
            "--until",
            "yesterday",
        ],
        &[],
    );
    assert_eq!(bad_time.status.code(), Some(2), "{}", stderr_of(&bad_time));
    assert!(stderr_of(&bad_time).contains("RFC 3339"));
}

#[test]
fn an_unknown_format_version_is_refused_by_name() {
    let broker = Broker::start("version");
    create_topic(&broker.bootstrap, "t", 1, &[]);
    let dir = tempfile::tempdir().unwrap();
    crate::harness::backup_to(&broker.bootstrap, dir.path(), &[]);
    let id = crate::harness::only_backup_id(dir.path());
    let manifest_path = dir.path().join("backups").join(&id).join("manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
    manifest["format_version"] = 99.into();
    std::fs::write(&manifest_path, manifest.to_string()).unwrap();
    fails_with(&["verify", path_str(dir.path())], "format_version 99");
}

#[test]
fn unwritable_destinations_and_bad_credentials_publish_nothing() {
    let broker = Broker::start("dest");
    create_topic(&broker.bootstrap, "t", 1, &[]);
    crate::harness::produce(
        &broker.bootstrap,
        "t",
        &[crate::harness::fidelity_record(0, 3)],
    );
    let file = tempfile::NamedTempFile::new().unwrap();
    let under_a_file = format!("{}/backups", file.path().display());
    fails_with(
        &["backup", "-b", &broker.bootstrap, "--to", &under_a_file],
        "cannot create local backup directory",
    );

    let s3 = crate::harness::S3Server::start("bucket");
    let mut env = s3.env();
    env.retain(|(k, _)| *k != "AWS_SECRET_ACCESS_KEY");
    env.push(("AWS_SECRET_ACCESS_KEY", "wrong-secret".into()));
    let output = kafkasnap(
        &["backup", "-b", &broker.bootstrap, "--to", "s3://bucket/x"],
        &env,
    );
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot write") && stderr.contains("s3://bucket/x"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("wrong-secret"),
        "the secret leaked: {stderr}"
    );
    assert!(
        !s3.root.path().join("bucket/x").exists()
            || !crate::harness::files_under(&s3.root.path().join("bucket/x"))
                .iter()
                .any(|p| p.ends_with("manifest.json"))
    );
}
