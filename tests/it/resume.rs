//! `restore --resume`: a restore killed mid-way continues without duplicating or skipping a
//! record and with group offsets still translated right; a target that holds anything but the
//! backup's first records is refused; a plain rerun points at --resume.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};

use crate::harness::{
    backup_to, client, commit_offsets, committed_offsets, create_topic, fidelity_record, fill_bulk,
    kafkasnap, kafkasnap_ok, produce, read_all, stderr_of, Broker,
};

pub(crate) const TOPIC: &str = "bulk";
pub(crate) const PARTITIONS: i32 = 2;
pub(crate) const RECORDS: usize = 160_000;

/// ListOffsets ends (tansu may under-report these: used only to see progress).
pub(crate) fn end_offsets(bootstrap: &str) -> Vec<i64> {
    end_offsets_of(bootstrap, TOPIC, PARTITIONS)
}

/// [`end_offsets`] of any topic.
pub(crate) fn end_offsets_of(bootstrap: &str, topic: &str, partitions: i32) -> Vec<i64> {
    let consumer: BaseConsumer = client(bootstrap).create().unwrap();
    (0..partitions)
        .map(|p| {
            consumer
                .fetch_watermarks(topic, p, Duration::from_secs(10))
                .map_or(0, |(_, high)| high)
        })
        .collect()
}

#[test]
fn a_killed_restore_resumes_exactly() {
    let source = Broker::start("resume-source");
    fill_bulk(&source, TOPIC, PARTITIONS, RECORDS);
    // One offset early in partition 0 (restored before the kill), others not yet restored.
    let offsets = [(0, 10), (1, 70_000)];
    commit_offsets(&source.bootstrap, "readers", TOPIC, &offsets);
    let dir = tempfile::tempdir().unwrap();
    let location = dir.path().to_str().unwrap();
    backup_to(&source.bootstrap, dir.path(), &[]);

    let target = Broker::start("resume-target");
    let mut restore = Command::new(env!("CARGO_BIN_EXE_kafkasnap"))
        .args(["restore", "-b", &target.bootstrap, "--from", location])
        .args(["--parallelism", "1", "--no-progress"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while end_offsets(&target.bootstrap).iter().sum::<i64>() < 20_000 {
        assert!(Instant::now() < deadline, "the restore never got going");
        assert!(
            restore.try_wait().unwrap().is_none(),
            "the restore finished before it could be killed"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    restore.kill().unwrap();
    restore.wait().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    // Counted by reading them (an independent consumer), not from the offsets.
    let at_kill = read_all(&target.bootstrap, TOPIC, PARTITIONS)
        .iter()
        .map(Vec::len)
        .sum::<usize>() as i64;
    assert!(
        at_kill > 0 && at_kill < RECORDS as i64,
        "killed mid-way: {at_kill} of {RECORDS}"
    );

    let plain = kafkasnap(
        &["restore", "-b", &target.bootstrap, "--from", location],
        &[],
    );
    assert!(!plain.status.success());
    assert!(
        stderr_of(&plain).contains("--resume"),
        "{}",
        stderr_of(&plain)
    );

    let out = kafkasnap_ok(
        &[
            "restore",
            "-b",
            &target.bootstrap,
            "--from",
            location,
            "--resume",
            "--output",
            "json",
        ],
        &[],
    );
    let summary: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(summary["records_resumed"], at_kill, "{summary}");
    assert_eq!(
        summary["records_written"],
        RECORDS as i64 - at_kill,
        "{summary}"
    );
    // Same records in the same order, none twice, none missing.
    kafkasnap_ok(&["verify", location, "--against", &target.bootstrap], &[]);
    let expected: Vec<Option<i64>> = offsets.iter().map(|&(_, o)| Some(o)).collect();
    assert_eq!(
        committed_offsets(&target.bootstrap, "readers", TOPIC, PARTITIONS),
        expected
    );
}

#[test]
fn resume_refuses_a_topic_holding_other_records() {
    let source = Broker::start("resume-foreign-source");
    create_topic(&source.bootstrap, TOPIC, PARTITIONS, &[]);
    let records: Vec<_> = (0..200)
        .map(|i| fidelity_record(i % PARTITIONS, i as usize))
        .collect();
    produce(&source.bootstrap, TOPIC, &records);
    let dir = tempfile::tempdir().unwrap();
    let location = dir.path().to_str().unwrap();
    backup_to(&source.bootstrap, dir.path(), &[]);

    let target = Broker::start("resume-foreign-target");
    create_topic(&target.bootstrap, TOPIC, PARTITIONS, &[]);
    let other: Vec<_> = (0..5).map(|i| fidelity_record(0, 9_000 + i)).collect();
    produce(&target.bootstrap, TOPIC, &other);
    let before = read_all(&target.bootstrap, TOPIC, PARTITIONS);
    let refused = kafkasnap(
        &[
            "restore",
            "-b",
            &target.bootstrap,
            "--from",
            location,
            "--resume",
        ],
        &[],
    );
    assert!(!refused.status.success());
    let message = stderr_of(&refused);
    assert!(
        message.contains(&format!(
            "{TOPIC}/0 holds 5 records that are not the first 5"
        )),
        "{message}"
    );
    // Every record the target holds, read back (ListOffsets under-reports on tansu).
    assert_eq!(
        read_all(&target.bootstrap, TOPIC, PARTITIONS),
        before,
        "nothing was written"
    );
}
