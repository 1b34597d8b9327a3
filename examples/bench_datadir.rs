//! Data-dir streaming benchmark helpers: builds a Kafka data directory of order events and serves it over a loopback Kubernetes exec API.
//!
//! Usage:
//!   bench_datadir generate DIR RECORDS VALUE_BYTES PARTITIONS [FIXTURE_DATADIR]
//!   bench_datadir serve DIR
//!
//! `generate` writes a Kafka (3.x, KRaft) data directory into DIR: topic `bench-orders` with
//! PARTITIONS partitions holding the same RECORDS records `bench_baseline fill` produces (key,
//! JSON value padded to VALUE_BYTES, one `trace-id` header; round-robin over the partitions) as
//! uncompressed RecordBatch v2 log segments (16 KiB batches, the Java producer's default
//! `batch.size`) with their offset and time indexes, `partition.metadata`,
//! `leader-epoch-checkpoint` and the broker's offset checkpoint files. When FIXTURE_DATADIR (a
//! real broker's data directory) is given, its files (`meta.properties`, the KRaft metadata log,
//! `__consumer_offsets`, ...) are copied in first and its checkpoints extended; else a
//! `meta.properties` is written. Prints `RESULT mode=generate records=N bytes=B files=F`
//! (B: key + value bytes).
//!
//! `serve` starts the loopback Kubernetes API of the integration tests (`tests/it/mock_k8s.rs`:
//! pod `messaging/kafka-0`, exec over `v5.channel.k8s.io`, the command run for real on this
//! machine with its stdout sent back as channel-1 frames), writes DIR/kubeconfig pointing at it,
//! prints `READY URL` and serves until killed. `kafkasnap datadir backup --path SOME_DIR` with
//! `KUBECONFIG=DIR/kubeconfig` then streams a real local `tar cf - -C SOME_DIR .`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[path = "support/order_events.rs"]
mod order_events;
use order_events::{splitmix, OrderEvents};

#[path = "../tests/it/mock_k8s.rs"]
#[allow(dead_code)]
mod mock_k8s;

/// `mock_k8s::tree` refers to the test harness; the bench never lists trees.
mod harness {
    pub fn files_under(_: &std::path::Path) -> Vec<std::path::PathBuf> {
        unreachable!("bench_datadir does not list directory trees")
    }
}

type AnyResult<T> = Result<T, Box<dyn std::error::Error>>;

const USAGE: &str = "usage:\n  bench_datadir generate DIR RECORDS VALUE_BYTES PARTITIONS [FIXTURE_DATADIR]\n  bench_datadir serve DIR";
const TOPIC: &str = "bench-orders";
/// Records go into a batch until it holds this many bytes (the Java producer's `batch.size`).
const BATCH_BYTES: usize = 16 * 1024;
/// Kafka's `log.segment.bytes` default: a segment rolls past this size.
const SEGMENT_BYTES: usize = 1 << 30;
/// Kafka's `log.index.interval.bytes` default: bytes between two offset-index entries.
const INDEX_INTERVAL_BYTES: usize = 4096;
/// The first record's timestamp (2026-11-25T00:00:00Z, ms); one record per millisecond.
const BASE_TIMESTAMP_MS: i64 = 1_795_564_800_000;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("generate") if (5..=6).contains(&args.len()) => generate(
            Path::new(&args[1]),
            &args[2],
            &args[3],
            &args[4],
            args.get(5).map(Path::new),
        ),
        Some("serve") if args.len() == 2 => serve(Path::new(&args[1])),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("bench_datadir: {error}");
            ExitCode::FAILURE
        }
    }
}

// ---------------------------------------------------------------------------------------------
// serve
// ---------------------------------------------------------------------------------------------

fn serve(dir: &Path) -> AnyResult<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        std::fs::create_dir_all(dir)?;
        // The volume is only used for helper-pod paths; `live` backups tar their own --path.
        let cluster = mock_k8s::MockCluster::start(Some(1), dir, mock_k8s::ExecBehavior::Run).await;
        cluster.kubeconfig(dir);
        println!("READY {}", cluster.url);
        std::io::stdout().flush()?;
        std::future::pending::<()>().await;
        Ok(())
    })
}

// ---------------------------------------------------------------------------------------------
// generate
// ---------------------------------------------------------------------------------------------

fn generate(
    dir: &Path,
    records: &str,
    value_bytes: &str,
    partitions: &str,
    fixture: Option<&Path>,
) -> AnyResult<()> {
    let records: u64 = records.parse()?;
    let value_bytes: usize = value_bytes.parse()?;
    let partitions: u64 = partitions.parse()?;
    if partitions == 0 {
        return Err("PARTITIONS must be at least 1".into());
    }
    std::fs::create_dir_all(dir)?;
    let mut files = 0u64;
    match fixture {
        Some(fixture) => files += copy_tree(fixture, dir)?,
        None => {
            std::fs::write(
                dir.join("meta.properties"),
                "#\n#Wed Nov 25 00:00:00 UTC 2026\nnode.id=1\ndirectory.id=YmVuY2gtZGlyLWlkLTAwMQ\n\
                 version=1\ncluster.id=YmVuY2gtY2x1c3Rlci0wMQ\n",
            )?;
            files += 1;
        }
    }

    let mut ends: Vec<(usize, i64)> = Vec::new(); // (partition, log end offset)
    let mut logs: Vec<PartitionLog> = (0..partitions).map(|_| PartitionLog::default()).collect();
    let mut generator = OrderEvents::new(value_bytes);
    let (mut key, mut value) = (String::new(), String::new());
    let mut kv_bytes = 0u64;
    for n in 0..records {
        generator.next(n, &mut key, &mut value);
        kv_bytes += (key.len() + value.len()) as u64;
        let trace = format!("{:016x}", splitmix(n ^ 0x5eed));
        let log = &mut logs[(n % partitions) as usize];
        log.add(
            BASE_TIMESTAMP_MS + n as i64,
            key.as_bytes(),
            value.as_bytes(),
            trace.as_bytes(),
        );
    }
    for (partition, mut log) in logs.into_iter().enumerate() {
        log.seal();
        let pdir = dir.join(format!("{TOPIC}-{partition}"));
        std::fs::create_dir_all(&pdir)?;
        for segment in &log.segments {
            let name = format!("{:020}", segment.base_offset);
            std::fs::write(pdir.join(format!("{name}.log")), &segment.log)?;
            std::fs::write(pdir.join(format!("{name}.index")), &segment.index)?;
            std::fs::write(pdir.join(format!("{name}.timeindex")), &segment.timeindex)?;
            files += 3;
        }
        std::fs::write(pdir.join("leader-epoch-checkpoint"), "0\n1\n0 0\n")?;
        let topic_id = base64_uuid(splitmix(0x70_71c) ^ partition as u64);
        std::fs::write(
            pdir.join("partition.metadata"),
            format!("version: 0\ntopic_id: {topic_id}\n"),
        )?;
        files += 2;
        ends.push((partition, log.next_offset));
    }
    // Kafka's checkpoint files, extended with the new partitions (the fixture's entries kept).
    for (name, offset_of) in [
        ("recovery-point-offset-checkpoint", true),
        ("replication-offset-checkpoint", true),
        ("log-start-offset-checkpoint", false),
    ] {
        let path = dir.join(name);
        let mut lines = checkpoint_lines(&path)?;
        lines.extend(ends.iter().map(|(partition, end)| {
            format!("{TOPIC} {partition} {}", if offset_of { *end } else { 0 })
        }));
        write_checkpoint(&path, &lines)?;
    }
    let cleaner = dir.join("cleaner-offset-checkpoint");
    if !cleaner.exists() {
        write_checkpoint(&cleaner, &[])?;
    }
    println!(
        "RESULT mode=generate records={records} bytes={kv_bytes} files={files} fixture={}",
        if fixture.is_some() { "yes" } else { "no" }
    );
    Ok(())
}

/// One partition's segments being written.
#[derive(Default)]
struct PartitionLog {
    segments: Vec<Segment>,
    /// Records of the open batch (each already framed), its first offset and timestamp.
    pending: Vec<Vec<u8>>,
    pending_bytes: usize,
    batch_base_offset: i64,
    batch_base_ts: i64,
    next_offset: i64,
}

#[derive(Default)]
struct Segment {
    base_offset: i64,
    log: Vec<u8>,
    index: Vec<u8>,
    timeindex: Vec<u8>,
    bytes_since_index: usize,
    max_ts: i64,
}

impl PartitionLog {
    fn add(&mut self, ts: i64, key: &[u8], value: &[u8], trace: &[u8]) {
        if self.pending.is_empty() {
            self.batch_base_offset = self.next_offset;
            self.batch_base_ts = ts;
        }
        let delta = (self.next_offset - self.batch_base_offset) as i32;
        let record = encode_record(delta, ts - self.batch_base_ts, key, value, trace);
        self.pending_bytes += record.len();
        self.pending.push(record);
        self.next_offset += 1;
        if self.pending_bytes >= BATCH_BYTES {
            self.flush_batch();
        }
    }

    fn seal(&mut self) {
        if !self.pending.is_empty() {
            self.flush_batch();
        }
    }

    fn flush_batch(&mut self) {
        let last_delta = (self.pending.len() - 1) as i32;
        let batch = encode_batch(
            self.batch_base_offset,
            self.batch_base_ts,
            &self.pending,
            last_delta,
        );
        let last_offset = self.batch_base_offset + i64::from(last_delta);
        let max_ts = self.batch_base_ts + i64::from(last_delta); // one record per ms
        self.pending.clear();
        self.pending_bytes = 0;
        if self
            .segments
            .last()
            .is_none_or(|s| s.log.len() + batch.len() > SEGMENT_BYTES)
        {
            self.segments.push(Segment {
                base_offset: self.batch_base_offset,
                max_ts: i64::MIN,
                ..Segment::default()
            });
        }
        let segment = self.segments.last_mut().expect("just pushed");
        let position = segment.log.len() as u32;
        let relative = (last_offset - segment.base_offset) as u32;
        // Like Kafka's LogSegment.append: an index entry once INDEX_INTERVAL_BYTES have
        // accumulated, pointing at the batch's last offset and start position.
        if segment.bytes_since_index > INDEX_INTERVAL_BYTES {
            segment.index.extend_from_slice(&relative.to_be_bytes());
            segment.index.extend_from_slice(&position.to_be_bytes());
            if max_ts > segment.max_ts {
                segment.timeindex.extend_from_slice(&max_ts.to_be_bytes());
                segment.timeindex.extend_from_slice(&relative.to_be_bytes());
                segment.max_ts = max_ts;
            }
            segment.bytes_since_index = 0;
        }
        segment.bytes_since_index += batch.len();
        segment.log.extend_from_slice(&batch);
    }
}

fn varint(out: &mut Vec<u8>, value: i64) {
    let mut v = ((value << 1) ^ (value >> 63)) as u64; // zigzag
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn length_prefixed(out: &mut Vec<u8>, bytes: &[u8]) {
    varint(out, bytes.len() as i64);
    out.extend_from_slice(bytes);
}

/// A v2 record with one `trace-id` header, length-prefixed.
fn encode_record(
    offset_delta: i32,
    ts_delta: i64,
    key: &[u8],
    value: &[u8],
    trace: &[u8],
) -> Vec<u8> {
    let mut body = Vec::with_capacity(key.len() + value.len() + trace.len() + 24);
    body.push(0); // attributes
    varint(&mut body, ts_delta);
    varint(&mut body, i64::from(offset_delta));
    length_prefixed(&mut body, key);
    length_prefixed(&mut body, value);
    varint(&mut body, 1); // headers
    length_prefixed(&mut body, b"trace-id");
    length_prefixed(&mut body, trace);
    let mut out = Vec::with_capacity(body.len() + 3);
    varint(&mut out, body.len() as i64);
    out.extend_from_slice(&body);
    out
}

/// An uncompressed RecordBatch v2 (CreateTime, no producer id) with a correct CRC-32C.
fn encode_batch(base_offset: i64, base_ts: i64, records: &[Vec<u8>], last_delta: i32) -> Vec<u8> {
    let size: usize = records.iter().map(Vec::len).sum();
    let mut b = Vec::with_capacity(61 + size);
    b.extend_from_slice(&base_offset.to_be_bytes());
    b.extend_from_slice(&0i32.to_be_bytes()); // batch length, patched
    b.extend_from_slice(&0i32.to_be_bytes()); // partition leader epoch
    b.push(2); // magic
    b.extend_from_slice(&0u32.to_be_bytes()); // crc, patched
    b.extend_from_slice(&0i16.to_be_bytes()); // attributes
    b.extend_from_slice(&last_delta.to_be_bytes());
    b.extend_from_slice(&base_ts.to_be_bytes());
    b.extend_from_slice(&(base_ts + i64::from(last_delta)).to_be_bytes());
    b.extend_from_slice(&(-1i64).to_be_bytes()); // producer id
    b.extend_from_slice(&(-1i16).to_be_bytes()); // producer epoch
    b.extend_from_slice(&(-1i32).to_be_bytes()); // base sequence
    b.extend_from_slice(&(records.len() as i32).to_be_bytes());
    for r in records {
        b.extend_from_slice(r);
    }
    let length = (b.len() - 12) as i32;
    b[8..12].copy_from_slice(&length.to_be_bytes());
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b
}

/// A Kafka topic id as `partition.metadata` writes it (URL-safe base64, no padding).
fn base64_uuid(seed: u64) -> String {
    use base64::Engine;
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&splitmix(seed).to_be_bytes());
    id[8..].copy_from_slice(&splitmix(seed ^ 1).to_be_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id)
}

/// Copies a directory tree (files made writable: the fixtures are read-only); returns the
/// number of files.
fn copy_tree(from: &Path, to: &Path) -> AnyResult<u64> {
    let mut files = 0;
    std::fs::create_dir_all(to)?;
    let mut entries: Vec<PathBuf> = std::fs::read_dir(from)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    entries.sort();
    for path in entries {
        let target = to.join(path.file_name().expect("a directory entry has a name"));
        if path.is_dir() {
            files += copy_tree(&path, &target)?;
        } else {
            std::fs::write(&target, std::fs::read(&path)?)?;
            files += 1;
        }
    }
    Ok(files)
}

/// The entries of an offset checkpoint file (`0`, count, then `topic partition offset`).
fn checkpoint_lines(path: &Path) -> AnyResult<Vec<String>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text
            .lines()
            .skip(2)
            .filter(|l| !l.trim().is_empty())
            .map(str::to_string)
            .collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e.into()),
    }
}

fn write_checkpoint(path: &Path, lines: &[String]) -> AnyResult<()> {
    let mut text = format!("0\n{}\n", lines.len());
    for line in lines {
        text.push_str(line);
        text.push('\n');
    }
    std::fs::write(path, text)?;
    Ok(())
}
