//! Stopping, failing and secrets: SIGTERM (a CronJob being stopped) ends a backup with exit 130,
//! a lost broker fails it after the stall timeout, neither publishes anything; planted
//! credentials never reach output, logs or the archive.

use std::time::{Duration, Instant};

use crate::fixture::path_str;
use crate::harness::{
    backup_in_flight, create_topic, files_under, fill_bulk, has_manifest, kafkasnap, produce,
    stderr_of, Broker,
};

#[test]
fn sigterm_stops_a_backup_cleanly_and_publishes_nothing() {
    let broker = Broker::start("sigterm");
    fill_bulk(&broker, "bulk", 2, 150_000);
    let dir = tempfile::tempdir().unwrap();
    let child = backup_in_flight(&broker, dir.path(), &["--parallelism", "1"]);
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let output = child.wait_with_output().unwrap();
    crate::harness::assert_no_debug_text(&["backup"], &output);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("interrupted; nothing was published"),
        "{stderr}"
    );
    assert!(!has_manifest(dir.path()), "a manifest was published");
}

#[test]
fn planted_credentials_never_leave_the_process() {
    const SECRET: &str = "PLANTED-s3cr3t-4242";
    let broker = Broker::start("secrets");
    create_topic(&broker.bootstrap, "t", 1, &[]);
    produce(
        &broker.bootstrap,
        "t",
        &[crate::harness::fidelity_record(0, 5)],
    );
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("client.properties");
    std::fs::write(
        &config,
        format!("sasl.username=backup\nsasl.password={SECRET}\n"),
    )
    .unwrap();
    let to = dir.path().join("archive");
    let to = path_str(&to);
    let runs = [
        kafkasnap(
            &[
                "backup",
                "-b",
                &broker.bootstrap,
                "--to",
                to,
                "-X",
                &format!("ssl.key.password={SECRET}"),
                "--config",
                path_str(&config),
                "--log-level",
                "debug",
                "--output",
                "json",
            ],
            &[],
        ),
        kafkasnap(
            &[
                "backup",
                "-b",
                "127.0.0.1:1",
                "--to",
                to,
                "--timeout",
                "2s",
                "-X",
                &format!("sasl.password={SECRET}"),
            ],
            &[],
        ),
        kafkasnap(
            &[
                "restore",
                "-b",
                &broker.bootstrap,
                "--from",
                to,
                "--dry-run",
                "--config",
                path_str(&config),
            ],
            &[],
        ),
        kafkasnap(
            &[
                "backup",
                "-b",
                &broker.bootstrap,
                "--to",
                &format!("s3://user:{SECRET}@bucket/x?sig={SECRET}"),
            ],
            &[],
        ),
    ];
    for output in &runs {
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            stderr_of(output)
        );
        assert!(!all.contains(SECRET), "the secret leaked:\n{all}");
    }
    assert!(runs[0].status.success(), "{}", stderr_of(&runs[0]));
    assert!(!runs[1].status.success() && !runs[3].status.success());
    for file in files_under(std::path::Path::new(to)) {
        let bytes = std::fs::read(&file).unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(SECRET),
            "the secret is in {}",
            file.display()
        );
    }
}

#[test]
fn a_broker_lost_mid_backup_fails_it_in_bounded_time_and_publishes_nothing() {
    let mut broker = Broker::start("lost");
    fill_bulk(&broker, "bulk", 1, 150_000);
    let dir = tempfile::tempdir().unwrap();
    let child = backup_in_flight(&broker, dir.path(), &["--stall-timeout", "3s"]);
    broker.kill();
    let stopped = Instant::now();
    let output = child.wait_with_output().unwrap();
    crate::harness::assert_no_debug_text(&["backup"], &output);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("bulk/0 made no progress"), "{stderr}");
    assert!(
        stopped.elapsed() < Duration::from_secs(30),
        "took {:?}",
        stopped.elapsed()
    );
    assert!(!has_manifest(dir.path()), "a manifest was published");
}
