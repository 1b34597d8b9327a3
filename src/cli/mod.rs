//! Command-line definitions (clap). Every flag also reads from `KAFKASNAP_<FLAG>`; the
//! repeatable lists (`--include`, `--exclude`, `--topic-map`) read theirs, comma-separated,
//! here after parsing, so a comma on the command line stays part of the value.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

mod env_lists;

#[derive(Debug, Parser)]
#[command(
    name = "kafkasnap",
    version,
    about = "Back up an Apache Kafka cluster and restore it, exactly."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Output format of the final result.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "text",
        env = "KAFKASNAP_OUTPUT"
    )]
    pub output: OutputFormat,
    /// No progress bar or progress log lines.
    #[arg(long, global = true, env = "KAFKASNAP_NO_PROGRESS")]
    pub no_progress: bool,
    /// Log filter: off, error, warn, info, debug or trace, or tracing directives
    /// (target=level, comma-separated, e.g. info,kafkasnap=debug).
    #[arg(
        long,
        global = true,
        default_value = "info",
        value_parser = parse_log_filter,
        env = "KAFKASNAP_LOG_LEVEL"
    )]
    pub log_level: String,
    /// How long a failing object-store request (S3, GCS, Azure) is retried before the
    /// command fails: connection errors, 5xx, timeouts. Ride out a blip; fail, clearly, on an outage.
    #[arg(
        long,
        global = true,
        default_value = "3m",
        value_parser = humantime::parse_duration,
        env = "KAFKASNAP_STORE_RETRY_TIMEOUT"
    )]
    pub store_retry_timeout: std::time::Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Back up topics, configs, consumer-group offsets and records to a location.
    Backup(BackupArgs),
    /// Restore a backup into a cluster.
    Restore(RestoreArgs),
    /// Re-read and check every object of a backup; optionally compare it with a live cluster.
    Verify(VerifyArgs),
    /// List the backups at a location, newest first.
    Ls(LsArgs),
    /// Show what one backup holds.
    Show(ShowArgs),
    /// Print a backup's records as JSON lines.
    Cat(CatArgs),
    /// Work with a Kafka broker's data directory (its log.dirs) directly.
    Datadir(DatadirArgs),
    /// Delete the backups a retention policy does not keep (and old unpublished leftovers).
    Prune(PruneArgs),
}

/// How to reach a Kafka cluster.
#[derive(Debug, Clone, Args)]
pub struct ClientArgs {
    /// Bootstrap servers, e.g. kafka.messaging.svc.cluster.local:9092.
    #[arg(
        short = 'b',
        long = "bootstrap-servers",
        visible_alias = "bootstrap",
        env = "KAFKASNAP_BOOTSTRAP_SERVERS"
    )]
    pub bootstrap_servers: String,
    /// librdkafka property key=value (repeatable), e.g. -X security.protocol=SASL_SSL.
    #[arg(short = 'X', value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub properties: Vec<(String, String)>,
    /// File of librdkafka properties (key=value lines); -X wins over it.
    #[arg(long = "config", value_name = "FILE", env = "KAFKASNAP_CONFIG")]
    pub config_file: Option<PathBuf>,
    /// How long to wait for the cluster to answer a request, e.g. 30s.
    #[arg(long, default_value = "30s", value_parser = parse_timeout, env = "KAFKASNAP_TIMEOUT")]
    pub timeout: std::time::Duration,
}

/// Which topics.
#[derive(Debug, Clone, Args)]
pub struct SelectionArgs {
    /// Only topics whose whole name matches this regex (repeatable). When not given, read
    /// from KAFKASNAP_INCLUDE (regexes separated by commas).
    #[arg(long, value_name = "REGEX")]
    pub include: Vec<String>,
    /// Leave out topics whose whole name matches this regex (repeatable). When not given,
    /// read from KAFKASNAP_EXCLUDE (regexes separated by commas).
    #[arg(long, value_name = "REGEX")]
    pub exclude: Vec<String>,
    /// Also cover internal topics (names starting with `__`).
    #[arg(long, env = "KAFKASNAP_INCLUDE_INTERNAL")]
    pub include_internal: bool,
}

/// The key of an encrypted backup.
#[derive(Debug, Clone, Args)]
pub struct KeyArgs {
    /// Key file for client-side encryption (AES-256-GCM): 32 random bytes, or 64 hex digits,
    /// or 44 base64 characters; make one with `head -c 32 /dev/urandom > backup.key`. backup
    /// encrypts every segment with it, datadir backup its archive; restore, verify, cat and
    /// datadir verify/restore decrypt with it. Keep it apart from the backups: without it an
    /// encrypted backup cannot be restored.
    #[arg(long = "key-file", value_name = "FILE", env = "KAFKASNAP_KEY_FILE")]
    pub key_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct BackupArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Where to write: a directory, file://, s3://bucket/prefix, gs://, az://, memory://.
    #[arg(long, env = "KAFKASNAP_TO")]
    pub to: String,
    #[command(flatten)]
    pub selection: SelectionArgs,
    /// Segment compression.
    #[arg(long, default_value = "zstd", value_parser = ["zstd", "gzip", "none"], env = "KAFKASNAP_COMPRESSION")]
    pub compression: String,
    /// Compression level (zstd 1-22, default 3; gzip 0-9, default 6; none takes none).
    #[arg(long, env = "KAFKASNAP_LEVEL")]
    pub level: Option<i32>,
    /// Close a segment once it holds this many raw bytes.
    #[arg(long, default_value = "16777216", value_parser = clap::value_parser!(u64).range(1024..=1_073_741_824), env = "KAFKASNAP_SEGMENT_BYTES")]
    pub segment_bytes: u64,
    /// Partitions read at the same time.
    #[arg(long, default_value = "4", value_parser = clap::value_parser!(u16).range(1..=256), env = "KAFKASNAP_PARALLELISM")]
    pub parallelism: u16,
    /// Push run metrics to this Prometheus Pushgateway (e.g. http://pushgateway:9091).
    #[arg(long, value_name = "URL", env = "KAFKASNAP_PUSHGATEWAY")]
    pub pushgateway: Option<String>,
    /// Store only what is new since the newest complete backup at --to (its manifest names
    /// that backup as parent); a full backup when there is none.
    #[arg(long, env = "KAFKASNAP_INCREMENTAL")]
    pub incremental: bool,
    /// Fail if a partition delivers nothing for this long, e.g. 2m.
    #[arg(long, default_value = "2m", value_parser = parse_timeout, env = "KAFKASNAP_STALL_TIMEOUT")]
    pub stall_timeout: std::time::Duration,
    /// Back up only shard INDEX of COUNT (e.g. 0/2): a fixed share of the partitions. The
    /// backup is published, as one backup, by the last shard of the run to finish.
    #[arg(
        long,
        value_name = "INDEX/COUNT",
        env = "KAFKASNAP_SHARD",
        requires = "shard_run",
        conflicts_with = "shards"
    )]
    pub shard: Option<String>,
    /// Back up shard $JOB_COMPLETION_INDEX of COUNT (in a Kubernetes Indexed Job).
    #[arg(
        long,
        value_name = "COUNT",
        env = "KAFKASNAP_SHARDS",
        requires = "shard_run"
    )]
    pub shards: Option<u32>,
    /// The name every shard of one run shares (an Indexed Job's name). A name may be reused
    /// once its run is published: a shard begun after that starts the next run.
    #[arg(long, value_name = "NAME", env = "KAFKASNAP_SHARD_RUN")]
    pub shard_run: Option<String>,
    /// Once this shard's part is stored, wait up to this long (e.g. 30m) for the other shards,
    /// so the shard exits 0 only when the run is published; exit 4 when it still is not.
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = humantime::parse_duration, env = "KAFKASNAP_WAIT_FOR_RUN")]
    pub wait_for_run: std::time::Duration,
    #[command(flatten)]
    pub key: KeyArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum IfExists {
    /// Stop before writing anything.
    Fail,
    /// Leave the existing topic alone and restore nothing into it.
    Skip,
    /// Add the backup's records after the existing ones.
    Append,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// The backup location.
    #[arg(long, env = "KAFKASNAP_FROM", required_unless_present = "from_datadir")]
    pub from: Option<String>,
    /// Restore from a Kafka data directory, a .tar/.tar.gz/.tar.zst of one, or the data-dir
    /// backups at a location (`datadir backup --to`: a path or URL; --backup picks one, else
    /// the newest), instead of a logical backup: topics, configs, records and group offsets
    /// are read from the broker's files.
    #[arg(
        long,
        value_name = "DIR_OR_LOCATION",
        env = "KAFKASNAP_FROM_DATADIR",
        conflicts_with = "from"
    )]
    pub from_datadir: Option<String>,
    /// Backup id; the newest complete backup when not given.
    #[arg(long, env = "KAFKASNAP_BACKUP")]
    pub backup: Option<String>,
    #[command(flatten)]
    pub selection: SelectionArgs,
    /// Restore topic OLD as NEW (repeatable). When not given, read from KAFKASNAP_TOPIC_MAP
    /// (OLD=NEW pairs separated by commas).
    #[arg(long, value_name = "OLD=NEW", value_parser = parse_key_value)]
    pub topic_map: Vec<(String, String)>,
    /// Only records with a timestamp at or after this (RFC 3339 or epoch milliseconds).
    #[arg(long, value_parser = parse_time, env = "KAFKASNAP_FROM_TIME")]
    pub from_time: Option<i64>,
    /// Only records with a timestamp at or before this (RFC 3339 or epoch milliseconds).
    #[arg(long, value_parser = parse_time, env = "KAFKASNAP_UNTIL")]
    pub until: Option<i64>,
    /// What to do when a target topic already exists.
    #[arg(long, value_enum, default_value = "fail", env = "KAFKASNAP_IF_EXISTS")]
    pub if_exists: IfExists,
    /// Do not restore consumer-group offsets.
    #[arg(long, env = "KAFKASNAP_SKIP_GROUPS")]
    pub skip_groups: bool,
    /// Print the plan and change nothing.
    #[arg(long, env = "KAFKASNAP_DRY_RUN")]
    pub dry_run: bool,
    /// Partitions written at the same time.
    #[arg(long, default_value = "4", value_parser = clap::value_parser!(u16).range(1..=256), env = "KAFKASNAP_PARALLELISM")]
    pub parallelism: u16,
    /// Continue an interrupted restore (same command otherwise): each existing target
    /// partition is checked to hold exactly the backup's first records, then the rest follow.
    #[arg(long, env = "KAFKASNAP_RESUME")]
    pub resume: bool,
    /// Fail if records wait and the target acknowledges none of them for this long, e.g. 2m
    /// (a frozen or unreachable broker); what was written is reported, --resume continues.
    #[arg(long, default_value = "2m", value_parser = parse_timeout, env = "KAFKASNAP_STALL_TIMEOUT")]
    pub stall_timeout: std::time::Duration,
    #[command(flatten)]
    pub key: KeyArgs,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The backup location.
    #[arg(env = "KAFKASNAP_LOCATION")]
    pub location: String,
    /// Backup id; the newest complete backup when not given.
    #[arg(long, env = "KAFKASNAP_BACKUP")]
    pub backup: Option<String>,
    /// Also compare the backup with this live cluster (bootstrap servers).
    #[arg(long, value_name = "BOOTSTRAP", env = "KAFKASNAP_AGAINST")]
    pub against: Option<String>,
    /// Compare topic OLD in the backup with topic NEW in the cluster (repeatable). When not
    /// given, read from KAFKASNAP_TOPIC_MAP (OLD=NEW pairs separated by commas).
    #[arg(long, value_name = "OLD=NEW", value_parser = parse_key_value)]
    pub topic_map: Vec<(String, String)>,
    /// librdkafka property key=value for --against (repeatable).
    #[arg(short = 'X', value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub properties: Vec<(String, String)>,
    /// File of librdkafka properties for --against.
    #[arg(long = "config", value_name = "FILE", env = "KAFKASNAP_CONFIG")]
    pub config_file: Option<PathBuf>,
    /// With --against: how long to wait for the cluster to answer a request, e.g. 30s.
    #[arg(long, default_value = "30s", value_parser = parse_timeout, env = "KAFKASNAP_TIMEOUT")]
    pub timeout: std::time::Duration,
    /// Without it, an encrypted backup's objects are checked by size and SHA-256 only.
    #[command(flatten)]
    pub key: KeyArgs,
}

#[derive(Debug, Args)]
pub struct LsArgs {
    /// The backup location.
    #[arg(env = "KAFKASNAP_LOCATION")]
    pub location: String,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// The backup location.
    #[arg(env = "KAFKASNAP_LOCATION")]
    pub location: String,
    /// Keep the N newest complete backups.
    #[arg(long, value_name = "N", env = "KAFKASNAP_KEEP_LAST")]
    pub keep_last: Option<u32>,
    /// For each of the last N UTC days with complete backups, keep that day's newest.
    #[arg(long, value_name = "N", env = "KAFKASNAP_KEEP_DAILY")]
    pub keep_daily: Option<u32>,
    /// For each of the last N ISO weeks (UTC) with complete backups, keep that week's newest.
    #[arg(long, value_name = "N", env = "KAFKASNAP_KEEP_WEEKLY")]
    pub keep_weekly: Option<u32>,
    /// Unpublished backups (crashed, or still running) are deleted only when last written (their
    /// newest object, by the store's clock) longer ago than this.
    #[arg(long, default_value = "24h", value_parser = humantime::parse_duration, env = "KAFKASNAP_GRACE")]
    pub grace: std::time::Duration,
    /// Report what would be kept and removed; delete nothing.
    #[arg(long, env = "KAFKASNAP_DRY_RUN")]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The backup location.
    #[arg(env = "KAFKASNAP_LOCATION")]
    pub location: String,
    /// Backup id; the newest complete backup when not given.
    #[arg(long, env = "KAFKASNAP_BACKUP")]
    pub backup: Option<String>,
}

#[derive(Debug, Args)]
pub struct CatArgs {
    /// The backup location.
    #[arg(env = "KAFKASNAP_LOCATION")]
    pub location: String,
    /// Backup id; the newest complete backup when not given.
    #[arg(long, env = "KAFKASNAP_BACKUP")]
    pub backup: Option<String>,
    /// The topic to print.
    #[arg(long, env = "KAFKASNAP_TOPIC")]
    pub topic: String,
    /// Only this partition.
    #[arg(long, env = "KAFKASNAP_PARTITION")]
    pub partition: Option<i32>,
    #[command(flatten)]
    pub key: KeyArgs,
}

#[derive(Debug, Args)]
pub struct DatadirArgs {
    #[command(subcommand)]
    pub command: DatadirCommand,
}

#[derive(Debug, Subcommand)]
pub enum DatadirCommand {
    /// Read a data directory, or a tar archive of one, offline (no broker) and report its
    /// topics, partitions, group offsets and any corruption. Exit code 3 if corruption is found.
    Inspect(DatadirInspectArgs),
    /// Back up a broker's data directory: `tar` through the Kubernetes exec API, compressed,
    /// checksummed and uploaded as it streams (no temporary file). `--mode live` (default) runs
    /// it in the running broker's pod; `--mode stopped` scales the StatefulSet to 0, reads the
    /// PVC from a read-only helper pod and scales back (a consistent copy, with downtime).
    /// Reaches the cluster like kubectl: $KUBECONFIG, ~/.kube/config, or in-cluster.
    Backup(Box<DatadirBackupArgs>),
    /// Write a data-dir backup into a broker's (empty) PVC while no broker runs on it: the
    /// archive is checked first (checksum, entries, meta.properties cluster.id), then unpacked
    /// by `tar x` in a helper pod fed over the exec API. Scale the StatefulSet up afterwards.
    Restore(Box<DatadirRestoreArgs>),
    /// List the data-dir backups at a location, newest first.
    Ls(LsArgs),
    /// Re-read a data-dir backup's archive and check its size and SHA-256 against its manifest
    /// (and, encrypted, decrypt every chunk: needs --key-file). Exit code 3 if it does not match.
    Verify(DatadirVerifyArgs),
}

#[derive(Debug, Args)]
pub struct DatadirBackupArgs {
    /// Namespace of the broker's pod.
    #[arg(long, default_value = "messaging", env = "KAFKASNAP_NAMESPACE")]
    pub namespace: String,
    /// The broker's pod.
    #[arg(long, default_value = "kafka-0", env = "KAFKASNAP_POD")]
    pub pod: String,
    /// The container in the pod that mounts the data directory.
    #[arg(long, default_value = "kafka", env = "KAFKASNAP_CONTAINER")]
    pub container: String,
    /// The data directory inside the container (the broker's log.dirs).
    #[arg(long, default_value = "/var/lib/kafka/data", env = "KAFKASNAP_PATH")]
    pub path: String,
    /// Where to write: a directory, file://, s3://bucket/prefix, gs://, az://, memory://.
    #[arg(long, env = "KAFKASNAP_TO")]
    pub to: String,
    /// Archive compression: zstd or gzip.
    #[arg(long, default_value = "zstd", value_parser = ["zstd", "gzip"], env = "KAFKASNAP_COMPRESSION")]
    pub compression: String,
    /// live: tar in the running broker's container. stopped: scale the StatefulSet to 0,
    /// tar the PVC in a read-only helper pod, scale back to the original replica count.
    #[arg(long, value_enum, default_value = "live", env = "KAFKASNAP_MODE")]
    pub mode: DatadirBackupMode,
    /// Fail when no byte comes through the exec stream for this long.
    #[arg(long, default_value = "2m", value_parser = parse_timeout, env = "KAFKASNAP_STALL_TIMEOUT")]
    pub stall_timeout: std::time::Duration,
    #[command(flatten)]
    pub helper: HelperPodArgs,
    #[command(flatten)]
    pub key: KeyArgs,
}

#[derive(Debug, Args)]
pub struct DatadirVerifyArgs {
    /// The backup location.
    #[arg(env = "KAFKASNAP_LOCATION")]
    pub location: String,
    /// Data-dir backup id; the newest complete one when not given.
    #[arg(long, env = "KAFKASNAP_BACKUP")]
    pub backup: Option<String>,
    #[command(flatten)]
    pub key: KeyArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DatadirBackupMode {
    Live,
    Stopped,
}

/// The StatefulSet, PVC and helper pod of `datadir backup --mode stopped` and `datadir restore`.
#[derive(Debug, Args)]
pub struct HelperPodArgs {
    /// The broker's StatefulSet.
    #[arg(long, default_value = "kafka", env = "KAFKASNAP_STATEFULSET")]
    pub statefulset: String,
    /// The broker's data PVC.
    #[arg(long, default_value = "kafka-data-kafka-0", env = "KAFKASNAP_PVC")]
    pub pvc: String,
    /// Image of the helper pod that mounts the PVC; needs sh, sleep and tar.
    #[arg(long, default_value = "busybox:1.36", env = "KAFKASNAP_HELPER_IMAGE")]
    pub helper_image: String,
    /// User and group id of the helper pod (non-root); for a restore, the broker's own
    /// (the apache/kafka image runs as 1000), as the files it writes belong to it.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(i64).range(1..), env = "KAFKASNAP_HELPER_UID")]
    pub helper_uid: i64,
    /// The helper pod ends on its own after this long, even if kafkasnap is killed.
    #[arg(long, default_value = "2h", value_parser = humantime::parse_duration, env = "KAFKASNAP_HELPER_LIFETIME")]
    pub helper_lifetime: std::time::Duration,
    /// How long to wait for the broker pod to go and for the helper pod to run.
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration, env = "KAFKASNAP_WAIT_TIMEOUT")]
    pub wait_timeout: std::time::Duration,
}

#[derive(Debug, Args)]
pub struct DatadirRestoreArgs {
    /// The backup location.
    #[arg(long, env = "KAFKASNAP_FROM")]
    pub from: String,
    /// Data-dir backup id, or `latest` (the newest complete one; the default).
    #[arg(long, env = "KAFKASNAP_BACKUP")]
    pub backup: Option<String>,
    /// Namespace of the broker and its PVC.
    #[arg(long, default_value = "messaging", env = "KAFKASNAP_NAMESPACE")]
    pub namespace: String,
    /// The broker pod that mounts the PVC; it must not be running.
    #[arg(long, default_value = "kafka-0", env = "KAFKASNAP_POD")]
    pub pod: String,
    /// The target cluster's id (the StatefulSet's CLUSTER_ID); every meta.properties in the
    /// archive must hold it.
    #[arg(
        long,
        env = "KAFKASNAP_CLUSTER_ID",
        conflicts_with = "rewrite_cluster_id"
    )]
    pub cluster_id: Option<String>,
    /// Write this cluster.id into every meta.properties as the archive is restored.
    #[arg(long, value_name = "ID", env = "KAFKASNAP_REWRITE_CLUSTER_ID")]
    pub rewrite_cluster_id: Option<String>,
    /// Write even when a pod uses the PVC or the StatefulSet is not scaled to 0.
    #[arg(long, env = "KAFKASNAP_FORCE")]
    pub force: bool,
    /// Fail when the exec stream takes no byte for this long.
    #[arg(long, default_value = "2m", value_parser = parse_timeout, env = "KAFKASNAP_STALL_TIMEOUT")]
    pub stall_timeout: std::time::Duration,
    #[command(flatten)]
    pub helper: HelperPodArgs,
    #[command(flatten)]
    pub key: KeyArgs,
}

#[derive(Debug, Args)]
pub struct DatadirInspectArgs {
    /// A Kafka data directory, or a .tar / .tar.gz / .tgz / .tar.zst archive of one.
    #[arg(env = "KAFKASNAP_DATADIR")]
    pub path: PathBuf,
}

/// `--log-level`: level names, or `target=level` directives, comma-separated. tracing would
/// read any other word as a target's name and so log nothing at all.
fn parse_log_filter(text: &str) -> Result<String, String> {
    const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];
    for directive in text.split(',').map(str::trim) {
        if !directive.contains('=') && !LEVELS.contains(&directive.to_ascii_lowercase().as_str()) {
            return Err(format!(
                "{directive:?} is not a log level: use off, error, warn, info, debug or trace, or target=level directives (e.g. info,kafkasnap=debug)"
            ));
        }
    }
    tracing_subscriber::EnvFilter::try_new(text).map_err(|err| err.to_string())?;
    Ok(text.to_string())
}

fn parse_key_value(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_string(), value.to_string()))
        }
        _ => Err("expected KEY=VALUE".to_string()),
    }
}

/// A timeout that must be more than zero (`0s` would fail at the first wait).
fn parse_timeout(text: &str) -> Result<std::time::Duration, String> {
    match humantime::parse_duration(text) {
        Ok(duration) if duration.is_zero() => Err(
            "must be more than 0s: it is how long to wait before failing (e.g. 30s, 2m)"
                .to_string(),
        ),
        Ok(duration) => Ok(duration),
        Err(err) => Err(err.to_string()),
    }
}

/// RFC 3339 (`2026-11-25T14:00:00Z`, `2026-11-25T15:00:00+01:00`) or epoch milliseconds,
/// to epoch milliseconds.
pub fn parse_time(text: &str) -> Result<i64, String> {
    if let Ok(millis) = text.parse::<i64>() {
        return Ok(millis);
    }
    // humantime reads only `Z`; a numeric offset is applied here.
    let (base, offset_ms) = match split_utc_offset(text) {
        Some((base, offset_ms)) => (format!("{base}Z"), offset_ms),
        None => (text.to_string(), 0),
    };
    let time = humantime::parse_rfc3339_weak(&base).map_err(|_| {
        format!("{text:?} is not a time: use RFC 3339 (2026-11-25T14:00:00Z) or epoch milliseconds")
    })?;
    let since = time
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|_| "times before 1970 are not supported".to_string())?;
    Ok(since.as_millis() as i64 - offset_ms)
}

/// `...T15:00:00+01:00` -> (`...T15:00:00`, 3_600_000).
fn split_utc_offset(text: &str) -> Option<(&str, i64)> {
    let split = text.len().checked_sub(6)?;
    let (base, offset) = (text.get(..split)?, text.get(split..)?);
    let sign = match offset.as_bytes()[0] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let (hours, minutes) = offset[1..].split_once(':')?;
    let (hours, minutes): (i64, i64) = (hours.parse().ok()?, minutes.parse().ok()?);
    base.contains('T')
        .then_some((base, sign * (hours * 60 + minutes) * 60_000))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn times_parse_both_ways() {
        assert_eq!(parse_time("1700000000000"), Ok(1_700_000_000_000));
        assert_eq!(parse_time("2023-11-14T22:13:20Z"), Ok(1_700_000_000_000));
        assert_eq!(
            parse_time("2023-11-14T23:13:20+01:00"),
            Ok(1_700_000_000_000)
        );
        assert_eq!(
            parse_time("2023-11-14T17:43:20.5-04:30"),
            Ok(1_700_000_000_500)
        );
        assert!(parse_time("yesterday").unwrap_err().contains("RFC 3339"));
    }

    #[test]
    fn stall_timeouts_must_be_positive() {
        assert_eq!(parse_timeout("3s"), Ok(std::time::Duration::from_secs(3)));
        assert!(parse_timeout("0s").unwrap_err().contains("more than 0s"));
        assert!(parse_timeout("soon").is_err());
    }

    #[test]
    fn log_levels_are_names_or_directives() {
        for good in [
            "info",
            "WARN",
            "off",
            "trace",
            "info,kafkasnap=debug",
            "kafkasnap=trace",
        ] {
            assert_eq!(parse_log_filter(good), Ok(good.to_string()), "{good}");
        }
        for bad in ["banana", "", "info,banana", "kafkasnap=banana"] {
            assert!(parse_log_filter(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_log_filter("banana").unwrap_err(),
            "\"banana\" is not a log level: use off, error, warn, info, debug or trace, or target=level directives (e.g. info,kafkasnap=debug)"
        );
    }

    #[test]
    fn key_values_keep_equals_in_values() {
        assert_eq!(
            parse_key_value("sasl.jaas.config=a=b"),
            Ok(("sasl.jaas.config".into(), "a=b".into()))
        );
        assert!(parse_key_value("novalue").is_err());
    }
}
