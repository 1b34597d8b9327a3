//! Surviving faults: a broker killed and restarted mid-backup, the object store going away
//! mid-upload and before a restore, and a table of bad inputs, each named, never a panic.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::fixture::path_str;
use crate::harness::{
    assert_no_debug_text, backup_in_flight, backup_in_flight_to, create_topic, fidelity_record,
    files_under, fill_bulk, has_manifest, kafkasnap, kafkasnap_command, kafkasnap_ok, produce,
    stderr_of, topic_names, Broker, S3Server, TestRecord, S3_SECRET,
};

/// The `records` total a published backup's manifest reports (`show --output json`).
fn manifest_records(location: &str, env: &[(&str, String)]) -> u64 {
    let shown = kafkasnap_ok(&["show", location, "--output", "json"], env);
    let json: serde_json::Value = serde_json::from_str(&shown).unwrap();
    json["totals"]["records"]
        .as_u64()
        .unwrap_or_else(|| panic!("no totals.records in {shown}"))
}

/// Waits for `child` with a deadline, so a hung run fails the test instead of hanging it.
pub(crate) fn wait_bounded(
    mut child: std::process::Child,
    limit: Duration,
) -> std::process::Output {
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            let output = child.wait_with_output().unwrap();
            panic!(
                "still running after {limit:?}; stderr:\n{}",
                stderr_of(&output)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().unwrap();
    assert_no_debug_text(&["(a run waited for)"], &output);
    output
}

#[test]
fn a_broker_killed_mid_backup_and_restarted_loses_no_record() {
    let s3 = S3Server::start("unused");
    let mut broker = Broker::start_persistent("faults-restart", &s3, "tansu");
    const PARTITIONS: i32 = 3;
    const RECORDS: usize = 6_000;
    create_topic(&broker.bootstrap, "orders", PARTITIONS, &[]);
    let records: Vec<TestRecord> = (0..RECORDS)
        .map(|i| fidelity_record((i % PARTITIONS as usize) as i32, i))
        .collect();
    produce(&broker.bootstrap, "orders", &records);

    let dir = tempfile::tempdir().unwrap();
    let to = path_str(dir.path());
    let child = backup_in_flight(
        &broker,
        dir.path(),
        &["--stall-timeout", "30s", "--parallelism", "1"],
    );
    broker.kill();
    std::thread::sleep(Duration::from_secs(2));
    broker.restart();
    let output = wait_bounded(child, Duration::from_secs(90));
    let stderr = stderr_of(&output);
    assert!(!stderr.contains("panicked"), "{stderr}");
    // The broker came back within the stall timeout: the backup must ride through the
    // outage (librdkafka reconnects) and hold every record, exactly.
    assert!(
        output.status.success(),
        "the backup did not survive a 2 s broker restart:\n{stderr}"
    );
    assert!(
        stderr.contains("Broker transport failure"),
        "the broker went away after the backup had finished?\n{stderr}"
    );
    assert_eq!(manifest_records(to, &[]), RECORDS as u64, "{stderr}");
    let verified = kafkasnap_ok(&["verify", to, "--against", &broker.bootstrap], &[]);
    assert!(
        verified.contains("0 differ") && verified.contains("OK"),
        "{verified}"
    );

    // The broker is down when a backup starts and comes back 2 s later: the cluster
    // snapshot waits for it (up to --timeout) instead of failing on the first attempt.
    broker.kill();
    let again = tempfile::tempdir().unwrap();
    let child = kafkasnap_command(&["backup", "-b", &broker.bootstrap, "--to"])
        .arg(path_str(again.path()))
        .args(["--output", "json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    broker.restart();
    let output = wait_bounded(child, Duration::from_secs(60));
    assert!(output.status.success(), "{}", stderr_of(&output));
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(summary["records"], RECORDS as u64, "{summary}");
    kafkasnap_ok(
        &[
            "verify",
            path_str(again.path()),
            "--against",
            &broker.bootstrap,
        ],
        &[],
    );
}

#[test]
fn an_object_store_lost_mid_upload_fails_cleanly_and_a_rerun_succeeds() {
    let broker = Broker::start("faults-s3");
    fill_bulk(&broker, "bulk", 2, 40_000);
    let mut s3 = S3Server::start("bucket");
    let env = s3.env();
    let to = "s3://bucket/nightly";
    let prefix = s3.root.path().join("bucket/nightly");
    let child = backup_in_flight_to(
        &broker,
        to,
        &env,
        &prefix,
        &["--parallelism", "1", "--store-retry-timeout", "3s"],
    );
    s3.stop();
    let stopped = Instant::now();
    let output = wait_bounded(child, Duration::from_secs(60));
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stopped.elapsed() < Duration::from_secs(30),
        "took {:?} to give up",
        stopped.elapsed()
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        stderr.contains("cannot write") && stderr.contains(to),
        "the message does not name the location:\n{stderr}"
    );
    assert!(
        stderr.contains(s3.endpoint.trim_start_matches("http://")),
        "the message does not name the endpoint:\n{stderr}"
    );
    assert!(!stderr.contains(S3_SECRET), "the secret leaked:\n{stderr}");
    assert!(!has_manifest(&prefix), "a manifest was published");
    let leftovers = backup_dirs(&prefix);
    assert_eq!(leftovers.len(), 1, "{leftovers:?}");

    s3.restart();
    let summary = kafkasnap_ok(&["backup", "-b", &broker.bootstrap, "--to", to], &env);
    assert!(summary.contains("40000 records"), "{summary}");
    let verified = kafkasnap_ok(&["verify", to, "--against", &broker.bootstrap], &env);
    assert!(
        verified.contains("0 differ") && verified.contains("OK"),
        "{verified}"
    );
    kafkasnap_ok(&["prune", to, "--grace", "0s", "--keep-last", "1"], &env);
    let left = &leftovers[0];
    assert!(
        !left.exists() || files_under(left).is_empty(),
        "prune left {:?}",
        files_under(left)
    );
    assert_eq!(backup_dirs(&prefix).len(), 1);
    assert!(has_manifest(&prefix));

    // A 2 s outage is a blip, not a failure: uploads retry (default --store-retry-timeout)
    // and the backup completes, exactly.
    let blip = "s3://bucket/blip";
    let child = backup_in_flight_to(
        &broker,
        blip,
        &env,
        &s3.root.path().join("bucket/blip"),
        &["--parallelism", "1"],
    );
    s3.stop();
    std::thread::sleep(Duration::from_secs(2));
    s3.restart();
    let output = wait_bounded(child, Duration::from_secs(90));
    let stderr = stderr_of(&output);
    assert!(
        output.status.success(),
        "a 2 s S3 outage failed the backup:\n{stderr}"
    );
    assert!(
        stderr.contains("Connect"),
        "the outage was not seen:\n{stderr}"
    );
    assert_eq!(manifest_records(blip, &env), 40_000);
    kafkasnap_ok(&["verify", blip, "--against", &broker.bootstrap], &env);
}

#[test]
fn a_restore_without_its_object_store_fails_cleanly_and_creates_nothing() {
    let source = Broker::start("faults-restore-source");
    create_topic(&source.bootstrap, "orders", 2, &[]);
    let records: Vec<TestRecord> = (0..300).map(|i| fidelity_record(i as i32 % 2, i)).collect();
    produce(&source.bootstrap, "orders", &records);
    let mut s3 = S3Server::start("bucket");
    let env = s3.env();
    let from = "s3://bucket/restore-me";
    kafkasnap_ok(&["backup", "-b", &source.bootstrap, "--to", from], &env);

    let target = Broker::start("faults-restore-target");
    s3.stop();
    let started = Instant::now();
    let args = [
        "restore",
        "-b",
        &target.bootstrap,
        "--from",
        from,
        "--store-retry-timeout",
        "2s",
    ];
    let output = kafkasnap(&args, &env);
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(30), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        stderr.contains("cannot list") && stderr.contains(from) && stderr.contains("refused"),
        "{stderr}"
    );
    assert!(!stderr.contains(S3_SECRET), "the secret leaked:\n{stderr}");
    assert!(
        !topic_names(&target.bootstrap).contains(&"orders".to_string()),
        "a topic was created without the archive"
    );

    // Back again: the same command restores everything.
    s3.restart();
    kafkasnap_ok(&args, &env);
    let verified = kafkasnap_ok(&["verify", from, "--against", &target.bootstrap], &env);
    assert!(
        verified.contains("0 differ") && verified.contains("OK"),
        "{verified}"
    );
}

/// One bad input: the command line, its environment, and what must come out.
struct Row {
    what: &'static str,
    args: Vec<String>,
    env: Vec<(&'static str, String)>,
    expected: String,
    code: i32,
}

fn row(what: &'static str, args: &[&str], expected: &str, code: i32) -> Row {
    Row {
        what,
        args: args.iter().map(|a| a.to_string()).collect(),
        env: Vec::new(),
        expected: expected.into(),
        code,
    }
}

fn copy_dir(from: &Path, to: &Path) {
    for file in files_under(from) {
        let target = to.join(file.strip_prefix(from).unwrap());
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(&file, target).unwrap();
    }
}

const DATADIR_ID: &str = "20240101T000000Z-d47a01";

/// Puts a (listed, never read) data-dir backup at `dir`.
fn plant_datadir_backup(dir: &Path) {
    let at = dir.join("datadir").join(DATADIR_ID);
    std::fs::create_dir_all(&at).unwrap();
    std::fs::write(at.join("data.tar.zst"), b"not read").unwrap();
    std::fs::write(at.join("manifest.json"), b"{}").unwrap();
}

#[test]
fn bad_inputs_are_named_never_panics() {
    let broker = Broker::start("faults-inputs");
    create_topic(&broker.bootstrap, "t", 2, &[]);
    let records: Vec<TestRecord> = (0..200).map(|i| fidelity_record(i as i32 % 2, i)).collect();
    produce(&broker.bootstrap, "t", &records);
    let base = tempfile::tempdir().unwrap();
    crate::harness::backup_to(&broker.bootstrap, base.path(), &["--segment-bytes", "4096"]);
    let id = crate::harness::only_backup_id(base.path());

    // Each damaged location is a copy of the base backup with one thing done to it.
    let mut keep = Vec::new();
    let mut damaged = |change: &dyn Fn(&Path) -> String| -> (String, String) {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(base.path(), dir.path());
        let named = change(dir.path());
        let location = path_str(dir.path()).to_string();
        keep.push(dir);
        (location, named)
    };
    let segment_of = |dir: &Path| -> (std::path::PathBuf, String) {
        let file = files_under(dir)
            .into_iter()
            .find(|f| f.to_string_lossy().contains(".kseg"))
            .unwrap();
        let key = file
            .strip_prefix(dir)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        (file, key)
    };
    let (truncated, truncated_key) = damaged(&|dir| {
        let (file, key) = segment_of(dir);
        let bytes = std::fs::read(&file).unwrap();
        std::fs::write(&file, &bytes[..bytes.len() / 2]).unwrap();
        key
    });
    let (flipped, flipped_key) = damaged(&|dir| {
        let (file, key) = segment_of(dir);
        let mut bytes = std::fs::read(&file).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x40;
        std::fs::write(&file, bytes).unwrap();
        key
    });
    let (missing, missing_key) = damaged(&|dir| {
        let (file, key) = segment_of(dir);
        std::fs::remove_file(file).unwrap();
        key
    });
    let manifest_of = |dir: &Path| dir.join("backups").join(&id).join("manifest.json");
    let (garbage, _) = damaged(&|dir| {
        std::fs::write(manifest_of(dir), b"{\"format_version\": 1, \"topics\": [").unwrap();
        String::new()
    });
    let (future, _) = damaged(&|dir| {
        let path = manifest_of(dir);
        let mut manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        manifest["format_version"] = 7.into();
        std::fs::write(&path, manifest.to_string()).unwrap();
        String::new()
    });
    let (with_datadir, _) = damaged(&|dir| {
        plant_datadir_backup(dir);
        String::new()
    });
    let datadir_only = tempfile::tempdir().unwrap();
    plant_datadir_backup(datadir_only.path());
    let datadir_only = path_str(datadir_only.path()).to_string();
    let b = broker.bootstrap.as_str();
    let base_loc = path_str(base.path());

    let s3 = S3Server::start("bucket");
    let mut no_credentials = s3.env();
    no_credentials.retain(|(k, _)| !k.starts_with("AWS_ACCESS") && !k.starts_with("AWS_SECRET"));
    // Without keys, kafkasnap refuses an s3:// location (refusals.rs) unless an instance
    // metadata endpoint is named; this one is on loopback and answers nothing.
    no_credentials.push((
        "AWS_METADATA_ENDPOINT",
        format!("http://127.0.0.1:{}", crate::harness::free_port()),
    ));

    let rows = vec![
        row(
            "truncated segment, verify",
            &["verify", &truncated],
            &truncated_key,
            3,
        ),
        row(
            "truncated segment, restore",
            &[
                "restore",
                "-b",
                b,
                "--from",
                &truncated,
                "--topic-map",
                "t=t2",
                "--dry-run",
            ],
            &truncated_key,
            1,
        ),
        row(
            "flipped byte, cat",
            &["cat", &flipped, "--topic", "t"],
            &flipped_key,
            1,
        ),
        row(
            "missing segment, verify",
            &["verify", &missing],
            &missing_key,
            3,
        ),
        row(
            "missing segment, restore",
            &[
                "restore",
                "-b",
                b,
                "--from",
                &missing,
                "--topic-map",
                "t=t2",
                "--dry-run",
            ],
            &missing_key,
            1,
        ),
        row(
            "garbage manifest, show",
            &["show", &garbage],
            "manifest.json",
            1,
        ),
        row(
            "unknown format_version, restore",
            &["restore", "-b", b, "--from", &future, "--dry-run"],
            "format_version 7",
            1,
        ),
        row(
            "unknown scheme, ls",
            &["ls", "gopher://host/x"],
            "unknown scheme \"gopher\"",
            2,
        ),
        Row {
            env: no_credentials,
            ..row(
                "S3 credentials from an unreachable metadata endpoint, ls",
                &["ls", "s3://bucket/x", "--store-retry-timeout", "1s"],
                "cannot list s3://bucket/x",
                1,
            )
        },
        row(
            "unknown topic in --topic-map, verify",
            &["verify", base_loc, "--against", b, "--topic-map", "nope=x"],
            "--topic-map names topic \"nope\"",
            2,
        ),
        row(
            "invalid regex, restore --exclude",
            &[
                "restore",
                "-b",
                b,
                "--from",
                base_loc,
                "--exclude",
                "[",
                "--dry-run",
            ],
            "invalid regular expression \"[\"",
            2,
        ),
        row(
            "invalid time, --from-time",
            &[
                "restore",
                "-b",
                b,
                "--from",
                base_loc,
                "--from-time",
                "yesterday-ish",
            ],
            "RFC 3339",
            2,
        ),
        row(
            "conflicting --shard and --shards",
            &[
                "backup",
                "-b",
                b,
                "--to",
                base_loc,
                "--shard",
                "0/2",
                "--shards",
                "2",
                "--shard-run",
                "r",
            ],
            "cannot be used with",
            2,
        ),
        row(
            "conflicting --from and --from-datadir",
            &[
                "restore",
                "-b",
                b,
                "--from",
                base_loc,
                "--from-datadir",
                base_loc,
            ],
            "cannot be used with",
            2,
        ),
        row(
            "restore --from a data-dir-only location",
            &["restore", "-b", b, "--from", &datadir_only, "--dry-run"],
            "only data-dir backups",
            1,
        ),
        row(
            "restore --backup naming a data-dir backup",
            &[
                "restore",
                "-b",
                b,
                "--from",
                &with_datadir,
                "--backup",
                DATADIR_ID,
                "--dry-run",
            ],
            "is a data-dir backup, not a logical one",
            1,
        ),
        row(
            "backup --stall-timeout 0s",
            &["backup", "-b", b, "--to", base_loc, "--stall-timeout", "0s"],
            "must be more than 0s",
            2,
        ),
        row(
            "verify --against --timeout 0s",
            &["verify", base_loc, "--against", b, "--timeout", "0s"],
            "must be more than 0s",
            2,
        ),
        row(
            "prune without a rule",
            &["prune", base_loc],
            "no retention rule",
            2,
        ),
        row(
            "prune --keep-last 0",
            &["prune", base_loc, "--keep-last", "0"],
            "no retention rule",
            2,
        ),
        Row {
            env: vec![("KAFKASNAP_KEY_FILE", String::new())],
            ..row(
                "an empty KAFKASNAP_KEY_FILE is no key",
                &["verify", base_loc],
                "0 problems",
                0,
            )
        },
    ];
    let mut failures = Vec::new();
    for row in &rows {
        let args: Vec<&str> = row.args.iter().map(String::as_str).collect();
        let output = kafkasnap(&args, &row.env);
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            stderr_of(&output)
        );
        if output.status.code() != Some(row.code)
            || !all.contains(&row.expected)
            || all.contains("panicked")
        {
            failures.push(format!(
                "{}: expected exit {} and {:?}, got {:?}:\n{all}",
                row.what,
                row.code,
                row.expected,
                output.status.code()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert_eq!(
        topic_names(b),
        vec!["t".to_string()],
        "a bad input created a topic"
    );
}

/// The backup directories (one per backup id) below a location's directory on disk.
fn backup_dirs(location_dir: &Path) -> Vec<std::path::PathBuf> {
    let backups = location_dir.join("backups");
    let mut dirs: Vec<_> = std::fs::read_dir(&backups)
        .map(|entries| entries.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    dirs.retain(|d| !files_under(d).is_empty());
    dirs.sort();
    dirs
}
