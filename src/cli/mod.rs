//! Command-line definitions (clap). Every flag also reads from `KAFKASNAP_<FLAG>`; the
//! repeatable lists (`--include`, `--exclude`, `--topic-map`) read theirs, comma-separated,
//! here after parsing, so a comma on the command line stays part of the value.

use std::path::PathBuf;

use clap::builder::BoolishValueParser;
use clap::{Args, Parser, Subcommand, ValueEnum};
use kafkasnap::archive::BackupSelector;

mod datadir_args;
mod drill_args;
mod env_lists;
mod follow_args;
mod parse;
mod values;

pub use datadir_args::{
    DatadirArgs, DatadirBackupArgs, DatadirBackupMode, DatadirCommand, DatadirInspectArgs,
    DatadirRestoreArgs, DatadirVerifyArgs, HelperPodArgs,
};
pub use drill_args::DrillArgs;
pub use follow_args::{FollowArgs, DEFAULT_CHECKPOINT_INTERVAL, DEFAULT_FULL_EVERY};
pub use parse::{definition, json_output_requested, usage_error_message};

pub use values::parse_time;
use values::{
    parse_bootstrap, parse_key_value, parse_log_filter, parse_pushgateway, parse_segment_bytes,
    parse_timeout,
};

#[derive(Debug, Parser)]
#[command(
    name = "kafkasnap",
    version,
    about = "Back up an Apache Kafka cluster and restore it, exactly."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Output format of the final result; with json, a failure prints
    /// {"error": {...}, "exit_code": N} on stdout too.
    #[arg(
        short = 'o',
        long,
        global = true,
        help_heading = GLOBAL_OPTIONS,
        value_enum,
        default_value = "text",
        env = "KAFKASNAP_OUTPUT"
    )]
    pub output: OutputFormat,
    /// No progress bar or progress log lines (backup, restore, drill).
    #[arg(long, global = true, help_heading = GLOBAL_OPTIONS, env = "KAFKASNAP_NO_PROGRESS", value_parser = BoolishValueParser::new())]
    pub no_progress: bool,
    /// Log filter: off, error, warn, info, debug or trace, or tracing directives
    /// (target=level, comma-separated, e.g. info,kafkasnap=debug).
    #[arg(
        long,
        global = true,
        help_heading = GLOBAL_OPTIONS,
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
        help_heading = GLOBAL_OPTIONS,
        default_value = "3m",
        value_parser = humantime::parse_duration,
        env = "KAFKASNAP_STORE_RETRY_TIMEOUT"
    )]
    pub store_retry_timeout: std::time::Duration,
}

/// The help heading of the options given before or after any subcommand; each subcommand
/// takes (and its help lists) only those that do something for it (see `global_options`).
pub const GLOBAL_OPTIONS: &str = "Global options";

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
    /// Restore drill: restore a backup (the newest by default) into a scratch cluster under a
    /// prefix, check every record and group offset against it, delete what it created, and
    /// report the recovery time and the backup's age. Exit code 3 if it is not exact.
    Drill(Box<DrillArgs>),
    /// Print a shell completion script: `source <(kafkasnap completions bash)`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff): `kafkasnap man | man -l -`.
    Man,
}

/// How to reach a Kafka cluster.
#[derive(Debug, Clone, Args)]
pub struct ClientArgs {
    /// Bootstrap servers, e.g. kafka.messaging.svc.cluster.local:9092.
    #[arg(
        short = 'b',
        long = "bootstrap-servers",
        visible_alias = "bootstrap",
        value_parser = parse_bootstrap,
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
    #[arg(long, env = "KAFKASNAP_INCLUDE_INTERNAL", value_parser = BoolishValueParser::new())]
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
    /// With --key-file, also read encrypted backups whose manifest has no seal because an
    /// older kafkasnap wrote it (logical format version 1, data-dir format version 1), with a
    /// warning: anyone who can write to the location could have altered them. Refused without.
    #[arg(long, env = "KAFKASNAP_ALLOW_UNSEALED", value_parser = BoolishValueParser::new(), requires = "key_file")]
    pub allow_unsealed: bool,
}

#[derive(Debug, Args)]
pub struct BackupArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Where to write: a directory, file:///abs/path, s3://bucket/prefix, gs://, az://.
    #[arg(long, env = "KAFKASNAP_TO")]
    pub to: String,
    #[command(flatten)]
    pub selection: SelectionArgs,
    /// Segment compression.
    #[arg(long, default_value = "zstd", value_parser = ["zstd", "lz4", "gzip", "none"], env = "KAFKASNAP_COMPRESSION")]
    pub compression: String,
    /// Compression level (zstd -7 to 22 but 0, negative = fast, default 3; gzip 0-9, default 6;
    /// lz4 and none take none).
    #[arg(long, allow_negative_numbers = true, env = "KAFKASNAP_LEVEL")]
    pub level: Option<i32>,
    /// Close a segment once it holds this many raw bytes: bytes or a size such as 16MiB
    /// (KiB, MiB, GiB; KB, MB, GB), from 1KiB to 1GiB.
    #[arg(long, value_name = "SIZE", default_value = "16MiB", value_parser = parse_segment_bytes, env = "KAFKASNAP_SEGMENT_BYTES")]
    pub segment_bytes: u64,
    /// Partitions read at the same time.
    #[arg(long, default_value = "4", value_parser = clap::value_parser!(u16).range(1..=256), env = "KAFKASNAP_PARALLELISM")]
    pub parallelism: u16,
    /// Push run metrics to this Prometheus Pushgateway (e.g. http://pushgateway:9091).
    #[arg(long, value_name = "URL", value_parser = parse_pushgateway, env = "KAFKASNAP_PUSHGATEWAY")]
    pub pushgateway: Option<String>,
    /// Store only what is new since the newest complete backup at --to (its manifest names
    /// that backup as parent); a full backup when there is none.
    #[arg(long, env = "KAFKASNAP_INCREMENTAL", value_parser = BoolishValueParser::new())]
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
    #[command(flatten)]
    pub follow: FollowArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum IfExists {
    /// Stop before writing anything.
    Fail,
    /// Leave the existing topic alone and restore nothing into it.
    Skip,
    /// Add the backup's records after the existing ones, and move the restored groups'
    /// committed offsets on those topics to the restored records (replacing the target's).
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
    /// backups at a location (`datadir backup --to`: a path or URL; --backup picks one, by
    /// default the newest), instead of a logical backup: topics, configs, records and group offsets
    /// are read from the broker's files.
    #[arg(
        long,
        value_name = "DIR_OR_LOCATION",
        env = "KAFKASNAP_FROM_DATADIR",
        conflicts_with = "from"
    )]
    pub from_datadir: Option<String>,
    /// Which backup: its id, a unique start of one (e.g. 20261202T1253), or `latest`, the
    /// newest complete backup.
    #[arg(
        long,
        value_name = "ID|PREFIX|latest",
        default_value = "latest",
        env = "KAFKASNAP_BACKUP"
    )]
    pub backup: BackupSelector,
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
    /// What to do when a target topic already exists: fail, skip it, or append to it (which
    /// also sets the restored groups' committed offsets there to the appended records).
    #[arg(long, value_enum, default_value = "fail", env = "KAFKASNAP_IF_EXISTS")]
    pub if_exists: IfExists,
    /// Do not restore consumer-group offsets.
    #[arg(long, env = "KAFKASNAP_SKIP_GROUPS", value_parser = BoolishValueParser::new())]
    pub skip_groups: bool,
    /// Print the plan and change nothing.
    #[arg(long, env = "KAFKASNAP_DRY_RUN", value_parser = BoolishValueParser::new())]
    pub dry_run: bool,
    /// Partitions written at the same time.
    #[arg(long, default_value = "4", value_parser = clap::value_parser!(u16).range(1..=256), env = "KAFKASNAP_PARALLELISM")]
    pub parallelism: u16,
    /// Continue an interrupted restore (same command otherwise): each existing target
    /// partition is checked to hold exactly the backup's first records, then the rest follow.
    #[arg(long, env = "KAFKASNAP_RESUME", value_parser = BoolishValueParser::new())]
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
    /// Which backup: its id, a unique start of one (e.g. 20261202T1253), or `latest`, the
    /// newest complete backup.
    #[arg(
        long,
        value_name = "ID|PREFIX|latest",
        default_value = "latest",
        env = "KAFKASNAP_BACKUP"
    )]
    pub backup: BackupSelector,
    /// Also compare the backup with this live cluster (bootstrap servers).
    #[arg(long, value_name = "BOOTSTRAP", value_parser = parse_bootstrap, env = "KAFKASNAP_AGAINST")]
    pub against: Option<String>,
    /// Compare topic OLD in the backup with topic NEW in the cluster (repeatable). When not
    /// given, read from KAFKASNAP_TOPIC_MAP (OLD=NEW pairs separated by commas).
    #[arg(long, value_name = "OLD=NEW", value_parser = parse_key_value)]
    pub topic_map: Vec<(String, String)>,
    /// With --against: compare only topics whose whole name matches this regex (repeatable),
    /// e.g. after restoring only some. When not given, read from KAFKASNAP_INCLUDE.
    #[arg(long, value_name = "REGEX", requires = "against")]
    pub include: Vec<String>,
    /// With --against: leave out topics whose whole name matches this regex (repeatable).
    /// When not given, read from KAFKASNAP_EXCLUDE.
    #[arg(long, value_name = "REGEX", requires = "against")]
    pub exclude: Vec<String>,
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
    /// Keep every complete backup whose id time is less than DURATION (e.g. 24h, 90m) before
    /// the newest complete backup's; measured from the newest backup, not from now (restic's
    /// --keep-within), so a location no longer written to keeps its last DURATION.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration, env = "KAFKASNAP_KEEP_WITHIN")]
    pub keep_within: Option<std::time::Duration>,
    /// For each of the last N UTC hours with complete backups, keep that hour's newest.
    #[arg(long, value_name = "N", env = "KAFKASNAP_KEEP_HOURLY")]
    pub keep_hourly: Option<u32>,
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
    #[arg(long, env = "KAFKASNAP_DRY_RUN", value_parser = BoolishValueParser::new())]
    pub dry_run: bool,
    /// With the backups' key, only backups whose manifest is sealed under it count for the
    /// rules or are removed; any other (forged, altered, plaintext, another key's) is left
    /// alone with a warning.
    #[command(flatten)]
    pub key: KeyArgs,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The backup location.
    #[arg(env = "KAFKASNAP_LOCATION")]
    pub location: String,
    /// Which backup: its id, a unique start of one (e.g. 20261202T1253), or `latest`, the
    /// newest complete backup.
    #[arg(
        long,
        value_name = "ID|PREFIX|latest",
        default_value = "latest",
        env = "KAFKASNAP_BACKUP"
    )]
    pub backup: BackupSelector,
}

#[derive(Debug, Args)]
pub struct CatArgs {
    /// The backup location.
    #[arg(env = "KAFKASNAP_LOCATION")]
    pub location: String,
    /// Which backup: its id, a unique start of one (e.g. 20261202T1253), or `latest`, the
    /// newest complete backup.
    #[arg(
        long,
        value_name = "ID|PREFIX|latest",
        default_value = "latest",
        env = "KAFKASNAP_BACKUP"
    )]
    pub backup: BackupSelector,
    /// The topic to print.
    #[arg(short = 't', long, env = "KAFKASNAP_TOPIC")]
    pub topic: String,
    /// Only this partition.
    #[arg(short = 'p', long, env = "KAFKASNAP_PARTITION")]
    pub partition: Option<i32>,
    /// Start at this offset in each partition printed (with -p, in that one).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i64).range(0..), allow_negative_numbers = true, env = "KAFKASNAP_OFFSET")]
    pub offset: Option<i64>,
    /// Stop after printing this many records in all.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..), env = "KAFKASNAP_COUNT")]
    pub count: Option<u64>,
    /// Only records whose timestamp is at or after this (RFC 3339 or epoch milliseconds).
    #[arg(long, value_name = "TIME", value_parser = parse_time, env = "KAFKASNAP_FROM_TIME")]
    pub from_time: Option<i64>,
    #[command(flatten)]
    pub key: KeyArgs,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
