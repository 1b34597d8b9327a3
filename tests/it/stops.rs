//! Stopping in any phase: Ctrl-C / SIGTERM while a command waits on a broker that accepts
//! connections and never answers ends it with exit 130 within seconds; a restore into a
//! broker that freezes fails after `--stall-timeout`, and an interrupted one exits 130, both
//! saying what the target holds and that `--resume` continues (which it then does, exactly).

use std::net::TcpListener;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::harness::{
    assert_no_debug_text, backup_to, contents, create_topic, fidelity_record, fill_bulk,
    has_manifest, kafkasnap_command, kafkasnap_ok, produce, read_all, Broker,
};
use crate::resume::{end_offsets, PARTITIONS, RECORDS, TOPIC};

/// A loopback listener that accepts every connection and never sends a byte.
struct SilentBroker {
    address: String,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SilentBroker {
    fn start() -> SilentBroker {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut held = Vec::new();
            while !stopping.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((socket, _)) => held.push(socket),
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        SilentBroker {
            address,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for SilentBroker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

pub(crate) fn spawn(args: &[&str]) -> Child {
    kafkasnap_command(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start kafkasnap")
}

pub(crate) fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{name} {pid}");
}

/// Waits for `child` at most `limit` (killing it and failing the test after that).
pub(crate) fn wait_at_most(mut child: Child, limit: Duration, what: &str) -> Output {
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() >= deadline {
            let _ = child.kill();
            let output = child.wait_with_output().unwrap();
            panic!(
                "{what} still ran {limit:?} later; stderr:\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let output = child.wait_with_output().unwrap();
    assert_no_debug_text(&[what], &output);
    output
}

/// Runs `args`, sends `signal` 1 s after the start, and checks it ends with 130 within 3 s.
fn stops_on_signal(args: &[&str], signal_name: &str) -> String {
    let child = spawn(args);
    std::thread::sleep(Duration::from_secs(1));
    signal(child.id(), signal_name);
    let signalled = Instant::now();
    let output = wait_at_most(child, Duration::from_secs(3), &format!("{args:?}"));
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(
        output.status.code(),
        Some(130),
        "{args:?} after SIG{signal_name}:\n{stderr}"
    );
    assert!(
        signalled.elapsed() < Duration::from_secs(3),
        "took {:?}",
        signalled.elapsed()
    );
    stderr
}

#[test]
fn a_signal_stops_every_command_waiting_on_a_silent_broker() {
    let broker = Broker::start("stops-silent");
    create_topic(&broker.bootstrap, "t", 1, &[]);
    produce(&broker.bootstrap, "t", &[fidelity_record(0, 5)]);
    let dir = tempfile::tempdir().unwrap();
    let location = dir.path().join("archive");
    let location = location.to_str().unwrap();
    backup_to(&broker.bootstrap, std::path::Path::new(location), &[]);
    let silent = SilentBroker::start();
    let other = dir.path().join("other");

    for name in ["INT", "TERM"] {
        let stderr = stops_on_signal(
            &[
                "backup",
                "-b",
                &silent.address,
                "--to",
                other.to_str().unwrap(),
            ],
            name,
        );
        assert!(
            stderr.contains("interrupted; nothing was published"),
            "{stderr}"
        );
        assert!(!has_manifest(&other), "a manifest was published");
        // Cut off inside a blocking call, it still removed its location lock.
        assert_no_locks(&other);
    }
    let stderr = stops_on_signal(
        &["restore", "-b", &silent.address, "--from", location],
        "INT",
    );
    assert!(
        stderr.contains(
            "error: restore interrupted; nothing was written to the target; run the same command again to restore"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("publish"), "{stderr}");
    let stderr = stops_on_signal(&["verify", location, "--against", &silent.address], "INT");
    assert!(
        stderr.contains("error: interrupted; verify did not finish, so it gave no verdict"),
        "{stderr}"
    );
    assert_no_locks(std::path::Path::new(location));
}

/// The run took a lock at `location` (its `locks/` exists) and removed it.
fn assert_no_locks(location: &std::path::Path) {
    assert!(location.join("locks").is_dir(), "no lock was ever taken");
    let locks: Vec<_> = crate::harness::files_under(&location.join("locks"))
        .into_iter()
        .filter(|f| f.extension().is_some_and(|e| e == "json"))
        .collect();
    assert!(locks.is_empty(), "locks left behind: {locks:?}");
}

/// A restore of `location` into `target` with `extra` flags, returned once the target holds
/// at least 20,000 records (and before it finished).
fn restore_in_flight(target: &Broker, location: &str, extra: &[&str]) -> Child {
    let mut args = vec!["restore", "-b", &target.bootstrap, "--from", location];
    args.extend_from_slice(&["--parallelism", "1"]);
    args.extend_from_slice(extra);
    let mut child = spawn(&args);
    let deadline = Instant::now() + Duration::from_secs(120);
    while end_offsets(&target.bootstrap).iter().sum::<i64>() < 20_000 {
        assert!(Instant::now() < deadline, "the restore never got going");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the restore finished before it could be stopped"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child
}

/// Sends SIGCONT to a SIGSTOPped process when dropped, also when the test fails.
struct Frozen(u32);

impl Frozen {
    fn freeze(pid: u32) -> Frozen {
        signal(pid, "STOP");
        Frozen(pid)
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-CONT", &self.0.to_string()])
            .status();
    }
}

/// The number after `the target acknowledged ` in a restore's error.
fn acknowledged(stderr: &str) -> usize {
    let (_, rest) = stderr
        .split_once("the target acknowledged ")
        .unwrap_or_else(|| panic!("no count of acknowledged records in:\n{stderr}"));
    rest.split(' ').next().unwrap().parse().unwrap()
}

#[test]
fn a_restore_into_a_frozen_broker_fails_after_the_stall_timeout_and_resumes_exactly() {
    let source = Broker::start("stall-source");
    fill_bulk(&source, TOPIC, PARTITIONS, RECORDS);
    let dir = tempfile::tempdir().unwrap();
    let location = dir.path().to_str().unwrap();
    backup_to(&source.bootstrap, dir.path(), &[]);

    let target = Broker::start("stall-target");
    let restore = restore_in_flight(&target, location, &["--stall-timeout", "3s"]);
    let frozen = Frozen::freeze(target.pid());
    let froze = Instant::now();
    let output = wait_at_most(restore, Duration::from_secs(15), "a stalled restore");
    let took = froze.elapsed();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert!(
        stderr.contains("error: restore stalled: ")
            && stderr.contains(
                " records sent to the target got no acknowledgement for 3s (--stall-timeout)"
            ),
        "{stderr}"
    );
    assert!(
        stderr.contains("rerun the same command with --resume to continue"),
        "{stderr}"
    );
    assert!(!stderr.contains("nothing was published"), "{stderr}");
    let reported = acknowledged(&stderr);
    assert!(reported > 0 && reported < RECORDS, "{reported}: {stderr}");
    assert!(
        stderr.contains(&format!("({TOPIC}: {reported} of {RECORDS})")),
        "{stderr}"
    );

    drop(frozen);
    // Whatever the frozen broker had received is written once it runs again.
    std::thread::sleep(Duration::from_secs(1));
    let held: usize = read_all(&target.bootstrap, TOPIC, PARTITIONS)
        .iter()
        .map(Vec::len)
        .sum();
    assert!(held >= reported, "held {held}, reported {reported}");
    kafkasnap_ok(
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
    let restored = read_all(&target.bootstrap, TOPIC, PARTITIONS);
    let original = read_all(&source.bootstrap, TOPIC, PARTITIONS);
    assert_eq!(contents(&restored), contents(&original));
}

#[test]
fn an_interrupted_restore_says_what_it_wrote_and_how_to_continue() {
    let source = Broker::start("interrupt-source");
    fill_bulk(&source, TOPIC, PARTITIONS, RECORDS);
    let dir = tempfile::tempdir().unwrap();
    let location = dir.path().to_str().unwrap();
    backup_to(&source.bootstrap, dir.path(), &[]);

    let target = Broker::start("interrupt-target");
    let restore = restore_in_flight(&target, location, &[]);
    signal(restore.id(), "INT");
    let signalled = Instant::now();
    let output = wait_at_most(restore, Duration::from_secs(3), "an interrupted restore");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    assert!(signalled.elapsed() < Duration::from_secs(3));
    assert!(
        stderr.contains("error: restore interrupted; the target acknowledged "),
        "{stderr}"
    );
    assert!(
        stderr.contains("rerun the same command with --resume to continue"),
        "{stderr}"
    );
    assert!(!stderr.contains("nothing was published"), "{stderr}");
    let reported = acknowledged(&stderr);
    std::thread::sleep(Duration::from_millis(500));
    let held: usize = read_all(&target.bootstrap, TOPIC, PARTITIONS)
        .iter()
        .map(Vec::len)
        .sum();
    assert!(
        reported >= 20_000 && reported <= held && held < RECORDS,
        "reported {reported}, held {held}: {stderr}"
    );
}

#[test]
fn a_zero_stall_timeout_is_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let location = dir.path().to_str().unwrap();
    for (args, env) in [
        (vec!["--stall-timeout", "0s"], vec![]),
        (vec![], vec![("KAFKASNAP_STALL_TIMEOUT", "0s".to_string())]),
    ] {
        let mut all = vec!["restore", "-b", "127.0.0.1:1", "--from", location];
        all.extend(args);
        let output = crate::harness::kafkasnap(&all, &env);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.starts_with("error: invalid value '0s' for '--stall-timeout <STALL_TIMEOUT>': must be more than 0s"),
            "{stderr}"
        );
    }
}
