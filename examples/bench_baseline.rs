//! Benchmark baseline: a tuned bare rdkafka producer (`fill`) and consumer (`consume`), the ceilings kafkasnap is measured against.
//!
//! Usage:
//!   bench_baseline fill BOOTSTRAP TOPIC PARTITIONS RECORDS VALUE_BYTES
//!   bench_baseline consume BOOTSTRAP TOPIC PARTITIONS
//!   bench_baseline dump RECORDS VALUE_BYTES FILE
//!
//! `fill` creates TOPIC and produces RECORDS reproducible order-event JSON records (key, one
//! header, value padded to VALUE_BYTES with word-like text), round-robin over the partitions.
//! `consume` reads every partition of TOPIC from offset 0 to end-of-partition.
//! `dump` writes the records `fill` would produce to FILE as `key<TAB>value` lines, the input
//! of kcat's produce baseline (`kcat -P -K '\t' -l FILE`; kcat sends no per-record header).
//! BENCH_PRODUCER_CONFIG / BENCH_CONSUMER_CONFIG (`key=value,key=value`) override client settings.
//! Both print one machine-readable line last:
//!   RESULT mode=fill|consume records=N bytes=B seconds=S
//! where B counts key + value bytes only (the same accounting as `kafkasnap restore`'s
//! `bytes_written`; `kafkasnap backup`'s `raw_bytes` also counts its framing and headers).

use std::collections::HashSet;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{Offset, TopicPartitionList};

#[path = "support/order_events.rs"]
mod order_events;
use order_events::{splitmix, OrderEvents};

type AnyResult<T> = Result<T, Box<dyn std::error::Error>>;

const USAGE: &str = "usage:\n  bench_baseline fill BOOTSTRAP TOPIC PARTITIONS RECORDS VALUE_BYTES\n  bench_baseline consume BOOTSTRAP TOPIC PARTITIONS\n  bench_baseline dump RECORDS VALUE_BYTES FILE";

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("fill") if args.len() == 6 => {
            fill(&args[1], &args[2], &args[3], &args[4], &args[5]).await
        }
        Some("consume") if args.len() == 4 => consume(&args[1], &args[2], &args[3]),
        Some("dump") if args.len() == 4 => dump(&args[1], &args[2], &args[3]),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("bench_baseline: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Applies `KEY=VALUE,KEY=VALUE` librdkafka overrides from environment variable `var`
/// (for trying other client settings without editing this file).
fn apply_overrides(config: &mut ClientConfig, var: &str) {
    for pair in std::env::var(var)
        .unwrap_or_default()
        .split(',')
        .filter(|p| !p.is_empty())
    {
        if let Some((key, value)) = pair.split_once('=') {
            config.set(key.trim(), value.trim());
        }
    }
}

/// Prints the human line and the machine-readable `RESULT` line.
fn report(mode: &str, records: u64, bytes: u64, seconds: f64) {
    let mb = bytes as f64 / 1e6;
    eprintln!(
        "{mode}: {records} records, {mb:.1} MB key+value in {seconds:.3}s = {:.0} records/s, {:.1} MB/s",
        records as f64 / seconds,
        mb / seconds
    );
    println!("RESULT mode={mode} records={records} bytes={bytes} seconds={seconds:.6}");
}

// ---------------------------------------------------------------------------------------------
// fill: the bare produce ceiling
// ---------------------------------------------------------------------------------------------

/// Counts delivery failures (and remembers the first) so a lossy fill cannot report success.
#[derive(Default)]
struct CountingContext {
    failed: AtomicU64,
    first_error: std::sync::Mutex<Option<String>>,
}

impl ClientContext for CountingContext {}

impl ProducerContext for CountingContext {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((error, _)) = result {
            self.failed.fetch_add(1, Ordering::Relaxed);
            self.first_error
                .lock()
                .unwrap()
                .get_or_insert_with(|| error.to_string());
        }
    }
}

async fn fill(
    bootstrap: &str,
    topic: &str,
    partitions: &str,
    records: &str,
    value_bytes: &str,
) -> AnyResult<()> {
    let partitions: i32 = partitions.parse()?;
    let records: u64 = records.parse()?;
    let value_bytes: usize = value_bytes.parse()?;
    create_topic(bootstrap, topic, partitions).await?;

    let mut config = ClientConfig::new();
    config
        .set("client.id", "bench-baseline-fill")
        .set("acks", "all")
        .set("compression.type", "none")
        .set("linger.ms", "20")
        .set("batch.size", "1048576")
        .set("batch.num.messages", "100000")
        .set("queue.buffering.max.kbytes", "262144")
        .set("queue.buffering.max.messages", "1000000")
        .set("message.max.bytes", "67108864");
    apply_overrides(&mut config, "BENCH_PRODUCER_CONFIG");
    let producer: BaseProducer<CountingContext> = config
        .set("bootstrap.servers", bootstrap)
        .create_with_context(CountingContext::default())?;

    // Generate the whole data set before the clock starts, so the figure is the client and
    // broker alone (generating ~1 KiB of JSON costs about as much as producing it). This holds
    // the data set in memory: RECORDS x (VALUE_BYTES + ~32) bytes.
    let data = DataSet::generate(records, value_bytes);
    let total_bytes = data.key_value_bytes();
    let clock = Instant::now();
    for index in 0..records {
        let (key, value, trace) = data.record(index as usize);
        let headers = OwnedHeaders::new_with_capacity(1).insert(Header {
            key: "trace-id",
            value: Some(trace),
        });
        let mut record = BaseRecord::to(topic)
            .partition((index % partitions as u64) as i32)
            .key(key)
            .payload(value)
            .headers(headers);
        // The local queue is bounded: on QueueFull, serve delivery reports and try again.
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    producer.poll(Duration::from_millis(5));
                }
                Err((error, _)) => return Err(format!("produce record {index}: {error}").into()),
            }
        }
        if index % 1024 == 0 {
            producer.poll(Duration::ZERO);
        }
    }
    producer.flush(Duration::from_secs(300))?;
    let seconds = clock.elapsed().as_secs_f64();
    let failed = producer.context().failed.load(Ordering::Relaxed);
    if failed > 0 {
        let first = producer
            .context()
            .first_error
            .lock()
            .unwrap()
            .clone()
            .unwrap_or_default();
        return Err(
            format!("{failed} of {records} records failed delivery (first: {first})").into(),
        );
    }
    report("fill", records, total_bytes, seconds);
    Ok(())
}

/// Writes the data set `fill` produces as `key<TAB>value` lines (no tab or newline occurs in
/// the generated keys and values; checked, so kcat cannot split a record wrongly).
fn dump(records: &str, value_bytes: &str, path: &str) -> AnyResult<()> {
    use std::io::Write;
    let records: u64 = records.parse()?;
    let data = DataSet::generate(records, value_bytes.parse()?);
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    for index in 0..records as usize {
        let (key, value, _) = data.record(index);
        if key.contains(&b'\t') || [key, value].iter().any(|b| b.contains(&b'\n')) {
            return Err(format!("record {index} holds a tab or newline").into());
        }
        out.write_all(key)?;
        out.write_all(b"\t")?;
        out.write_all(value)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    eprintln!(
        "dump: {records} records, {} B key+value to {path}",
        data.key_value_bytes()
    );
    Ok(())
}

async fn create_topic(bootstrap: &str, topic: &str, partitions: i32) -> AnyResult<()> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()?;
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results = admin
        .create_topics(
            &[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))],
            &options,
        )
        .await?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => return Err(format!("create topic {name}: {code}").into()),
        }
    }
    Ok(())
}

/// All records of a fill, generated up front: one buffer of `key | value | trace-id` runs.
struct DataSet {
    bytes: Vec<u8>,
    /// Per record: start in `bytes`, key length, value length (the trace id is 16 bytes).
    index: Vec<(usize, u32, u32)>,
}

impl DataSet {
    const TRACE_LEN: usize = 16;

    fn generate(records: u64, value_bytes: usize) -> Self {
        let mut generator = OrderEvents::new(value_bytes);
        let (mut key, mut value) = (String::new(), String::new());
        let mut bytes = Vec::with_capacity(records as usize * (value_bytes + 16 + Self::TRACE_LEN));
        let mut index = Vec::with_capacity(records as usize);
        for n in 0..records {
            generator.next(n, &mut key, &mut value);
            index.push((bytes.len(), key.len() as u32, value.len() as u32));
            bytes.extend_from_slice(key.as_bytes());
            bytes.extend_from_slice(value.as_bytes());
            bytes.extend_from_slice(format!("{:016x}", splitmix(n ^ 0x5eed)).as_bytes());
        }
        Self { bytes, index }
    }

    /// Record `n`'s key, value and trace-id header value.
    fn record(&self, n: usize) -> (&[u8], &[u8], &[u8]) {
        let (start, key_len, value_len) = self.index[n];
        let (key_end, value_end) = (
            start + key_len as usize,
            start + (key_len + value_len) as usize,
        );
        (
            &self.bytes[start..key_end],
            &self.bytes[key_end..value_end],
            &self.bytes[value_end..value_end + Self::TRACE_LEN],
        )
    }

    fn key_value_bytes(&self) -> u64 {
        self.index
            .iter()
            .map(|&(_, k, v)| u64::from(k) + u64::from(v))
            .sum()
    }
}

// ---------------------------------------------------------------------------------------------
// consume: the bare consume ceiling
// ---------------------------------------------------------------------------------------------

fn consume(bootstrap: &str, topic: &str, partitions: &str) -> AnyResult<()> {
    let partitions: i32 = partitions.parse()?;
    let mut config = ClientConfig::new();
    config
        .set("client.id", "bench-baseline-consume")
        .set("group.id", "bench-baseline")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "true")
        .set("auto.offset.reset", "earliest")
        .set("fetch.max.bytes", "67108864")
        .set("max.partition.fetch.bytes", "8388608")
        .set("queued.max.messages.kbytes", "32768")
        .set("fetch.wait.max.ms", "100");
    apply_overrides(&mut config, "BENCH_CONSUMER_CONFIG");
    let consumer: BaseConsumer = config.set("bootstrap.servers", bootstrap).create()?;

    let clock = Instant::now();
    let mut assignment = TopicPartitionList::new();
    for partition in 0..partitions {
        assignment.add_partition_offset(topic, partition, Offset::Offset(0))?;
    }
    consumer.assign(&assignment)?;

    let mut at_eof: HashSet<i32> = HashSet::new();
    let (mut records, mut bytes, mut header_bytes) = (0u64, 0u64, 0u64);
    let mut last_progress = Instant::now();
    while at_eof.len() < partitions as usize {
        match consumer.poll(Duration::from_millis(500)) {
            None => {
                if last_progress.elapsed() > Duration::from_secs(60) {
                    return Err(format!("no progress for 60s after {records} records").into());
                }
            }
            Some(Ok(message)) => {
                // Touch what a backup tool has to copy: key, value and headers.
                records += 1;
                bytes += (message.key_len() + message.payload_len()) as u64;
                if let Some(headers) = message.headers() {
                    for header in headers.iter() {
                        header_bytes +=
                            (header.key.len() + header.value.map_or(0, <[u8]>::len)) as u64;
                    }
                }
                at_eof.remove(&message.partition());
                last_progress = Instant::now();
            }
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                at_eof.insert(partition);
                last_progress = Instant::now();
            }
            Some(Err(error)) => return Err(format!("consume: {error}").into()),
        }
    }
    let seconds = clock.elapsed().as_secs_f64();
    eprintln!("consume: {header_bytes} header bytes (not counted in bytes=)");
    report("consume", records, bytes, seconds);
    Ok(())
}
