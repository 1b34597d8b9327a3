//! Progress without a terminal (a CronJob's log): even a short backup and restore print a
//! first line saying what is to be done and a last line saying what was, and no rate line
//! while nothing has been planned yet.

use std::process::{Command, Stdio};

use crate::harness::{create_topic, fidelity_record, produce, stderr_of, Broker, TestRecord};

/// Runs kafkasnap with progress shown (stderr is a pipe, so as log lines).
fn with_progress(args: &[&str]) -> (String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_kafkasnap"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run kafkasnap");
    crate::harness::assert_no_debug_text(args, &output);
    let stderr = stderr_of(&output);
    assert!(output.status.success(), "{args:?}: {stderr}");
    (String::from_utf8(output.stdout).unwrap(), stderr)
}

fn assert_first_and_last_lines(verb: &str, stderr: &str, records: usize) {
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains(&format!("{verb}: ")))
        .collect();
    let first = lines
        .first()
        .unwrap_or_else(|| panic!("no {verb} line:\n{stderr}"));
    let last = lines.last().unwrap();
    // The count is an estimate from offsets (tansu under-reports a backup's: DESIGN.md).
    assert!(
        first.contains(" records in 2 partitions") && first.contains("to go"),
        "{stderr}"
    );
    assert!(
        last.contains(&format!("{verb}: {records} records, "))
            && last.contains("partitions 2/2 done"),
        "{stderr}"
    );
    assert!(
        !stderr.contains(" 0 B/s") && !stderr.contains("(0 B/s)"),
        "{stderr}"
    );
}

#[test]
fn short_runs_log_a_first_and_a_last_progress_line() {
    let source = Broker::start("progress-lines");
    create_topic(&source.bootstrap, "orders", 2, &[]);
    let records: Vec<TestRecord> = (0..40)
        .map(|i| fidelity_record(i % 2, i as usize))
        .collect();
    produce(&source.bootstrap, "orders", &records);
    let dir = tempfile::tempdir().unwrap();
    let to = dir.path().to_str().unwrap();

    let (_, stderr) = with_progress(&["backup", "-b", &source.bootstrap, "--to", to]);
    assert_first_and_last_lines("backup", &stderr, 40);

    let target = Broker::start("progress-lines-target");
    let (_, stderr) = with_progress(&["restore", "-b", &target.bootstrap, "--from", to]);
    assert_first_and_last_lines("restore", &stderr, 40);
    // A restore knows its records and bytes up front: the first line names them.
    assert!(
        stderr.contains("restore: 40 records in 2 partitions (") && stderr.contains(" KiB) to go"),
        "{stderr}"
    );
}
