//! Continuous backup (`backup --follow`) against a real broker while a producer writes: a
//! follower killed mid-run and started again loses and duplicates nothing, picks up a topic
//! created while it runs, serves lag that falls to 0, publishes a last checkpoint on SIGTERM
//! and exits 0; a second follower is refused; a long chain of delta checkpoints keeps each
//! manifest small and restores exactly; the same over S3.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::fixture::path_str;
use crate::harness::{
    commit_offsets, committed_offsets, contents, create_topic, fidelity_record, free_port,
    kafkasnap, kafkasnap_ok, produce, read_all, restore_from, stderr_of, Broker, S3Server,
    TestRecord,
};

/// Starts `kafkasnap backup --follow` of `bootstrap` into `to` with `extra` flags.
fn start_follower(bootstrap: &str, to: &str, env: &[(&str, String)], extra: &[&str]) -> Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kafkasnap"));
    command
        .args([
            "backup",
            "-b",
            bootstrap,
            "--to",
            to,
            "--follow",
            "--no-progress",
        ])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, value) in env {
        command.env(key, value);
    }
    command.spawn().expect("start the follower")
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// The body of `GET path` on 127.0.0.1:`port`, with its status code.
pub(crate) fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let code = response.get(9..12)?.parse().ok()?;
    let body = response.split_once("\r\n\r\n")?.1.to_string();
    Some((code, body))
}

/// `ls -o json` of `to`: the complete backups' (id, records), oldest first.
fn complete_backups(to: &str, env: &[(&str, String)]) -> Vec<(String, u64)> {
    let out = kafkasnap_ok(&["ls", to, "-o", "json"], env);
    let entries: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    let mut complete: Vec<(String, u64)> = entries
        .iter()
        .filter(|e| e["complete"] == true)
        .map(|e| {
            (
                e["backup_id"].as_str().unwrap().to_string(),
                e["records"].as_u64().unwrap(),
            )
        })
        .collect();
    complete.sort();
    complete
}

fn wait_until(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `batches` batches of `per_batch` fidelity records to `topic` (2 partitions), one batch
/// every `pause`, on a thread; returns what was produced, per partition in order.
fn produce_steadily(
    bootstrap: &str,
    topic: &'static str,
    batches: usize,
    per_batch: usize,
    pause: Duration,
) -> std::thread::JoinHandle<Vec<TestRecord>> {
    let bootstrap = bootstrap.to_string();
    std::thread::spawn(move || {
        let mut all = Vec::new();
        for batch in 0..batches {
            let records: Vec<TestRecord> = (0..per_batch)
                .map(|i| {
                    let n = batch * per_batch + i;
                    fidelity_record((n % 2) as i32, n)
                })
                .collect();
            produce(&bootstrap, topic, &records);
            all.extend(records);
            std::thread::sleep(pause);
        }
        all
    })
}

fn by_partition(records: &[TestRecord], partitions: i32) -> Vec<Vec<TestRecord>> {
    (0..partitions)
        .map(|p| {
            records
                .iter()
                .filter(|r| r.partition == p)
                .cloned()
                .collect()
        })
        .collect()
}

/// SIGTERM: the follower must publish its last checkpoint and exit 0. Its output.
fn stop_follower(follower: Child) -> std::process::Output {
    signal(&follower, "TERM");
    let output = follower.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    output
}

/// Restores the newest backup at `to` (reached with `env`, restored with `extra` flags) into
/// a fresh broker `name`, and checks that `topic` (2 partitions) holds exactly `produced`.
fn assert_latest_restores(
    name: &str,
    to: &str,
    env: &[(&str, String)],
    extra: &[&str],
    topic: &str,
    produced: &[TestRecord],
) {
    let target = Broker::start(name);
    let mut args = vec!["restore", "-b", &target.bootstrap, "--from", to];
    args.extend(["--backup", "latest"]);
    args.extend_from_slice(extra);
    kafkasnap_ok(&args, env);
    assert_eq!(
        contents(&read_all(&target.bootstrap, topic, 2)),
        contents(&by_partition(produced, 2))
    );
}

fn manifest_versions(dir: &Path) -> Vec<u64> {
    let mut versions = Vec::new();
    for entry in std::fs::read_dir(dir.join("backups")).unwrap() {
        let manifest = entry.unwrap().path().join("manifest.json");
        if let Ok(bytes) = std::fs::read(&manifest) {
            let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            versions.push(json["format_version"].as_u64().unwrap());
        }
    }
    versions
}

#[test]
fn a_killed_follower_restarted_loses_and_duplicates_nothing() {
    let source = Broker::start("follow-src");
    create_topic(&source.bootstrap, "orders", 2, &[("retention.ms", "-1")]);
    commit_offsets(&source.bootstrap, "billing", "orders", &[(0, 3), (1, 5)]);
    let dir = tempfile::tempdir().unwrap();
    let to = path_str(dir.path()).to_string();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let follow_flags = [
        "--checkpoint-interval",
        "1s",
        "--full-every",
        "3",
        "--metrics-listen",
        &listen,
    ];
    let producer = produce_steadily(
        &source.bootstrap,
        "orders",
        30,
        40,
        Duration::from_millis(150),
    );

    // The first follower publishes a few checkpoints and is killed without warning.
    let mut first = start_follower(&source.bootstrap, &to, &[], &follow_flags);
    wait_until("three checkpoints", Duration::from_secs(60), || {
        complete_backups(&to, &[]).len() >= 3
    });
    first.kill().unwrap();
    first.wait().unwrap();

    // A topic created while no follower runs, and one created while the next one runs.
    create_topic(&source.bootstrap, "early", 1, &[]);
    produce(&source.bootstrap, "early", &[fidelity_record(0, 1)]);
    let second = start_follower(&source.bootstrap, &to, &[], &follow_flags);
    wait_until("the metrics endpoint", Duration::from_secs(30), || {
        http_get(port, "/healthz").is_some_and(|(code, _)| code == 200)
    });
    let late: Vec<TestRecord> = (0..25).map(|i| fidelity_record(0, 1000 + i)).collect();
    create_topic(&source.bootstrap, "late", 1, &[]);
    produce(&source.bootstrap, "late", &late);

    // A second follower on the same location is refused while this one runs.
    let refused = kafkasnap(
        &["backup", "-b", &source.bootstrap, "--to", &to, "--follow"],
        &[],
    );
    assert_eq!(refused.status.code(), Some(1), "{}", stderr_of(&refused));
    assert!(
        stderr_of(&refused).contains("another follower (backup --follow) is running"),
        "{}",
        stderr_of(&refused)
    );

    let produced = producer.join().unwrap();
    let stopped_producing = Instant::now();
    let expected_total = (produced.len() + 1 + late.len()) as u64;
    wait_until(
        "a checkpoint holding every record",
        Duration::from_secs(15),
        || complete_backups(&to, &[]).last().unwrap().1 == expected_total,
    );
    let caught_up_after = stopped_producing.elapsed();
    assert!(
        caught_up_after < Duration::from_secs(1 + 5),
        "the checkpoint holding every record came {caught_up_after:?} after the producer stopped"
    );
    let (code, metrics) = http_get(port, "/metrics").unwrap();
    assert_eq!(code, 200);
    for topic in ["orders", "early", "late"] {
        assert!(
            metrics.contains(&format!(
                "kafkasnap_follow_partition_lag_records{{topic=\"{topic}\",partition=\"0\"}} 0\n"
            )),
            "{topic} not caught up:\n{metrics}"
        );
    }
    assert!(
        metrics.contains("kafkasnap_follow_recovery_point_age_seconds "),
        "{metrics}"
    );

    // SIGTERM: a last checkpoint, exit 0, well inside a pod's 30 s.
    let asked = Instant::now();
    signal(&second, "TERM");
    let output = second.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(
        asked.elapsed() < Duration::from_secs(20),
        "{:?}",
        asked.elapsed()
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("stopped following:"), "{stdout}");
    assert!(!stderr.contains("ERROR"), "{stderr}");
    let versions = manifest_versions(dir.path());
    assert!(
        versions.contains(&2) && versions.contains(&3),
        "{versions:?}"
    );

    // The newest checkpoint restores exactly: every record once, in order, and the offsets.
    kafkasnap_ok(&["verify", &to, "--backup", "latest"], &[]);
    let target = Broker::start("follow-dst");
    restore_from(&target.bootstrap, &to, &["--backup", "latest"]);
    let expected = by_partition(&produced, 2);
    let restored = read_all(&target.bootstrap, "orders", 2);
    assert_eq!(contents(&restored), contents(&expected));
    assert_eq!(
        contents(&read_all(&target.bootstrap, "late", 1)),
        contents(&[late])
    );
    assert_eq!(read_all(&target.bootstrap, "early", 1)[0].len(), 1);
    assert_eq!(
        committed_offsets(&target.bootstrap, "billing", "orders", 2),
        vec![Some(3), Some(5)]
    );
}

#[test]
fn a_hundred_delta_checkpoints_stay_small_and_restore_exactly() {
    let source = Broker::start("follow-long");
    create_topic(&source.bootstrap, "ticks", 2, &[]);
    let dir = tempfile::tempdir().unwrap();
    let to = path_str(dir.path()).to_string();
    let producer = produce_steadily(
        &source.bootstrap,
        "ticks",
        60,
        4,
        Duration::from_millis(200),
    );
    let follower = start_follower(
        &source.bootstrap,
        &to,
        &[],
        &["--checkpoint-interval", "100ms", "--full-every", "1000"],
    );
    wait_until("100 checkpoints", Duration::from_secs(240), || {
        complete_backups(&to, &[]).len() >= 100
    });
    let produced = producer.join().unwrap();
    wait_until("every record checkpointed", Duration::from_secs(15), || {
        complete_backups(&to, &[]).last().unwrap().1 == produced.len() as u64
    });
    stop_follower(follower);

    // Only the first lists every segment. A delta lists only what it stored (at most one
    // segment per partition), so the last ones are no larger than the first few, however
    // many came before them (a few bytes for longer numbers), and all stay small.
    let backups = complete_backups(&to, &[]);
    let sizes: Vec<u64> = backups
        .iter()
        .map(|(id, _)| {
            std::fs::metadata(dir.path().join("backups").join(id).join("manifest.json"))
                .unwrap()
                .len()
        })
        .collect();
    assert_eq!(
        manifest_versions(dir.path())
            .iter()
            .filter(|&&v| v == 2)
            .count(),
        1
    );
    let early = *sizes[1..11].iter().max().unwrap();
    let late = *sizes[sizes.len() - 50..].iter().max().unwrap();
    assert!(
        late <= early + 100,
        "early deltas up to {early} bytes, late ones {late}: {sizes:?}"
    );
    assert!(late < 4096, "{sizes:?}");
    let segments_listed = |id: &str| {
        let bytes =
            std::fs::read(dir.path().join("backups").join(id).join("manifest.json")).unwrap();
        let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        json["totals"]["segments"].as_u64().unwrap()
    };
    let newest = &backups.last().unwrap().0;
    assert!(
        segments_listed(newest) > 60,
        "the newest checkpoint's chain holds {} segments",
        segments_listed(newest)
    );

    assert_latest_restores("follow-long-dst", &to, &[], &[], "ticks", &produced);
}

#[test]
fn a_follower_over_s3_stops_on_sigterm_with_a_last_checkpoint() {
    let s3 = S3Server::start("follow");
    let env = s3.env();
    let source = Broker::start("follow-s3");
    create_topic(&source.bootstrap, "orders", 2, &[]);
    let to = "s3://follow/continuous";
    let producer = produce_steadily(
        &source.bootstrap,
        "orders",
        10,
        30,
        Duration::from_millis(100),
    );
    let follower = start_follower(
        &source.bootstrap,
        to,
        &env,
        &["--checkpoint-interval", "500ms", "--full-every", "4"],
    );
    let produced = producer.join().unwrap();
    wait_until("two checkpoints", Duration::from_secs(60), || {
        complete_backups(to, &env).len() >= 2
    });
    stop_follower(follower);
    let backups = complete_backups(to, &env);
    assert_eq!(
        backups.last().unwrap().1,
        produced.len() as u64,
        "{backups:?}"
    );
    kafkasnap_ok(&["verify", to, "--backup", "latest"], &env);
    assert_latest_restores("follow-s3-dst", to, &env, &[], "orders", &produced);
}

#[test]
fn prune_frees_checkpoints_no_kept_one_needs() {
    let source = Broker::start("follow-prune");
    create_topic(&source.bootstrap, "orders", 2, &[]);
    let records: Vec<TestRecord> = (0..40)
        .map(|i| fidelity_record(i % 2, i as usize))
        .collect();
    produce(&source.bootstrap, "orders", &records);
    let dir = tempfile::tempdir().unwrap();
    let to = path_str(dir.path()).to_string();
    let follower = start_follower(
        &source.bootstrap,
        &to,
        &[],
        &["--checkpoint-interval", "200ms", "--full-every", "4"],
    );
    wait_until("twelve checkpoints", Duration::from_secs(60), || {
        complete_backups(&to, &[]).len() >= 12
    });
    stop_follower(follower);
    let before = complete_backups(&to, &[]);

    // Keeping the newest keeps the deltas back to the last complete listing, and the first
    // checkpoint (it holds every segment); the idle checkpoints in between go.
    let out = kafkasnap_ok(
        &[
            "prune",
            &to,
            "--keep-last",
            "1",
            "--grace",
            "0s",
            "-o",
            "json",
        ],
        &[],
    );
    let after = complete_backups(&to, &[]);
    assert!(after.len() < before.len(), "nothing was pruned: {out}");
    assert!(after.len() <= 1 + 3 + 1, "{after:?}\n{out}");
    assert_eq!(
        after[0], before[0],
        "the checkpoint holding the segments went"
    );
    assert_eq!(after.last(), before.last());
    kafkasnap_ok(&["verify", &to, "--backup", "latest"], &[]);
    assert_latest_restores("follow-prune-dst", &to, &[], &[], "orders", &records);
}

#[test]
fn checkpoints_that_list_every_segment_merge_the_small_ones() {
    let source = Broker::start("follow-compact");
    create_topic(&source.bootstrap, "ticks", 2, &[]);
    let dir = tempfile::tempdir().unwrap();
    let to = path_str(dir.path()).to_string();
    let producer = produce_steadily(
        &source.bootstrap,
        "ticks",
        40,
        4,
        Duration::from_millis(100),
    );
    let follower = start_follower(
        &source.bootstrap,
        &to,
        &[],
        &["--checkpoint-interval", "100ms", "--full-every", "5"],
    );
    let produced = producer.join().unwrap();
    wait_until("every record checkpointed", Duration::from_secs(30), || {
        complete_backups(&to, &[]).last().unwrap().1 == produced.len() as u64
    });
    stop_follower(follower);

    // Every manifest that lists every segment lists a few per partition (the merged run, and
    // what it stored itself), not one per checkpoint before it.
    let mut complete_listings = 0;
    for (id, _) in complete_backups(&to, &[]) {
        let path = dir.path().join("backups").join(&id).join("manifest.json");
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        if json["format_version"] != 2 {
            continue;
        }
        complete_listings += 1;
        for partition in json["topics"][0]["partitions"].as_array().unwrap() {
            let segments = partition["segments"].as_array().unwrap().len();
            assert!(segments <= 3, "{id}: {segments} segments in one partition");
        }
    }
    assert!(complete_listings >= 3, "{complete_listings}");

    // Pruned to the newest, the merged segments are what it reads: restore is exact.
    kafkasnap_ok(&["prune", &to, "--keep-last", "1", "--grace", "0s"], &[]);
    kafkasnap_ok(&["verify", &to, "--backup", "latest"], &[]);
    assert_latest_restores("follow-compact-dst", &to, &[], &[], "ticks", &produced);
}

#[test]
fn a_follower_rides_out_a_broker_outage_counting_the_failed_checkpoints() {
    let s3 = S3Server::start("unused");
    let mut broker = Broker::start_persistent("follow-outage", &s3, "tansu");
    create_topic(&broker.bootstrap, "orders", 2, &[]);
    let first: Vec<TestRecord> = (0..50)
        .map(|i| fidelity_record(i % 2, i as usize))
        .collect();
    produce(&broker.bootstrap, "orders", &first);
    let dir = tempfile::tempdir().unwrap();
    let to = path_str(dir.path()).to_string();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let follower = start_follower(
        &broker.bootstrap,
        &to,
        &[],
        &[
            "--checkpoint-interval",
            "500ms",
            "--metrics-listen",
            &listen,
            "--timeout",
            "3s",
            "--stall-timeout",
            "3s",
        ],
    );
    wait_until("a first checkpoint", Duration::from_secs(30), || {
        !complete_backups(&to, &[]).is_empty()
    });

    // The broker goes away: checkpoints fail, are counted, and the follower keeps running.
    broker.kill();
    wait_until(
        "a failed checkpoint counted",
        Duration::from_secs(60),
        || {
            http_get(port, "/metrics")
                .is_some_and(|(_, m)| !m.contains("kafkasnap_follow_failures_total 0\n"))
        },
    );
    broker.restart();
    let second: Vec<TestRecord> = (50..80)
        .map(|i| fidelity_record(i % 2, i as usize))
        .collect();
    produce(&broker.bootstrap, "orders", &second);
    wait_until(
        "a checkpoint after the outage",
        Duration::from_secs(60),
        || complete_backups(&to, &[]).last().unwrap().1 == 80,
    );
    let output = stop_follower(follower);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("checkpoint failed; trying again"),
        "{stderr}"
    );

    let all: Vec<TestRecord> = first.into_iter().chain(second).collect();
    assert_latest_restores("follow-outage-dst", &to, &[], &[], "orders", &all);
}

#[test]
fn an_encrypted_follower_seals_every_checkpoint_and_a_forged_delta_is_refused() {
    let source = Broker::start("follow-sealed");
    create_topic(&source.bootstrap, "orders", 2, &[]);
    let dir = tempfile::tempdir().unwrap();
    let keys = tempfile::tempdir().unwrap();
    let (key_file, _) = crate::encryption::write_key(keys.path(), "follow.key");
    let key_file = path_str(&key_file).to_string();
    let to = path_str(dir.path()).to_string();
    let producer = produce_steadily(
        &source.bootstrap,
        "orders",
        12,
        10,
        Duration::from_millis(100),
    );
    let follower = start_follower(
        &source.bootstrap,
        &to,
        &[],
        &[
            "--checkpoint-interval",
            "200ms",
            "--full-every",
            "50",
            "--key-file",
            &key_file,
        ],
    );
    let produced = producer.join().unwrap();
    wait_until("every record checkpointed", Duration::from_secs(30), || {
        complete_backups(&to, &[]).last().unwrap().1 == produced.len() as u64
    });
    stop_follower(follower);
    let backups = complete_backups(&to, &[]);
    assert!(backups.len() >= 3, "{backups:?}");
    for (id, _) in &backups {
        assert!(
            dir.path()
                .join("backups")
                .join(id)
                .join("manifest.seal")
                .exists(),
            "{id} has no seal"
        );
    }
    let key_flags = ["--key-file", key_file.as_str()];
    assert_latest_restores(
        "follow-sealed-dst",
        &to,
        &[],
        &key_flags,
        "orders",
        &produced,
    );

    // A delta in the middle of the chain, altered by whoever can write to the bucket: the
    // newest checkpoint, which folds it, is refused under the key.
    let middle = &backups[backups.len() / 2].0;
    let manifest = dir
        .path()
        .join("backups")
        .join(middle)
        .join("manifest.json");
    let mut json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&manifest).unwrap()).unwrap();
    assert_eq!(json["format_version"], 3, "{middle} is not a delta");
    json["warnings"] = serde_json::json!(["forged"]);
    std::fs::write(&manifest, serde_json::to_vec_pretty(&json).unwrap()).unwrap();
    let refused = kafkasnap(
        &["verify", &to, "--backup", "latest", "--key-file", &key_file],
        &[],
    );
    assert_ne!(refused.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&refused.stdout);
    let stderr = stderr_of(&refused);
    assert!(
        stdout.contains(middle.as_str()) || stderr.contains(middle.as_str()),
        "the forged {middle} is not named:\n{stdout}\n{stderr}"
    );
}
