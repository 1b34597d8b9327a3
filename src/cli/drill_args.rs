//! `kafkasnap drill`'s flags. The scratch cluster is named apart from the cluster the backups
//! are taken of: its flags read `KAFKASNAP_DRILL_*`, so a pod given the backup's environment
//! never drills into production by accident.

use std::path::PathBuf;

use clap::builder::BoolishValueParser;
use clap::Args;
use kafkasnap::archive::BackupSelector;

use super::values::{parse_bootstrap, parse_key_value, parse_pushgateway, parse_timeout};
use super::{KeyArgs, SelectionArgs};

#[derive(Debug, Args)]
pub struct DrillArgs {
    /// Bootstrap servers of the scratch cluster to restore into. Read from
    /// KAFKASNAP_DRILL_BOOTSTRAP_SERVERS, never from KAFKASNAP_BOOTSTRAP_SERVERS (the cluster
    /// the backups are taken of).
    #[arg(
        short = 'b',
        long = "bootstrap-servers",
        visible_alias = "bootstrap",
        value_name = "SCRATCH_BOOTSTRAP",
        value_parser = parse_bootstrap,
        env = "KAFKASNAP_DRILL_BOOTSTRAP_SERVERS"
    )]
    pub bootstrap_servers: String,
    /// librdkafka property key=value for the scratch cluster (repeatable).
    #[arg(short = 'X', value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub properties: Vec<(String, String)>,
    /// File of librdkafka properties for the scratch cluster; -X wins over it.
    #[arg(long = "config", value_name = "FILE", env = "KAFKASNAP_DRILL_CONFIG")]
    pub config_file: Option<PathBuf>,
    /// How long to wait for the scratch cluster to answer a request, e.g. 30s.
    #[arg(long, default_value = "30s", value_parser = parse_timeout, env = "KAFKASNAP_TIMEOUT")]
    pub timeout: std::time::Duration,
    /// The backup location (logical and data-dir backups).
    #[arg(long, env = "KAFKASNAP_FROM")]
    pub from: String,
    /// Which backup: its id, a unique start of one, or `latest`, the newest complete backup
    /// of either kind (logical or data-dir).
    #[arg(
        long,
        value_name = "ID|PREFIX|latest",
        default_value = "latest",
        env = "KAFKASNAP_BACKUP"
    )]
    pub backup: BackupSelector,
    #[command(flatten)]
    pub selection: SelectionArgs,
    /// Put before the name of every topic and consumer group the drill creates (default
    /// kafkasnap-drill-<backup id>-<random run suffix>.), so it never touches the scratch
    /// cluster's own.
    #[arg(long, env = "KAFKASNAP_DRILL_PREFIX")]
    pub prefix: Option<String>,
    /// Leave the restored topics and groups in the scratch cluster for inspection.
    #[arg(long, env = "KAFKASNAP_DRILL_KEEP", value_parser = BoolishValueParser::new())]
    pub keep: bool,
    /// Drill even when the scratch cluster is the backup's own source cluster (same
    /// cluster id); refused without. A command-line flag only (no environment variable), so
    /// a stray setting never lifts the refusal.
    #[arg(long)]
    pub allow_source_cluster: bool,
    /// Partitions written at the same time.
    #[arg(long, default_value = "4", value_parser = clap::value_parser!(u16).range(1..=256), env = "KAFKASNAP_PARALLELISM")]
    pub parallelism: u16,
    /// Fail if records wait and the scratch cluster acknowledges none of them for this long.
    #[arg(long, default_value = "2m", value_parser = parse_timeout, env = "KAFKASNAP_STALL_TIMEOUT")]
    pub stall_timeout: std::time::Duration,
    /// Push the drill's metrics (kafkasnap_drill_*) to this Prometheus Pushgateway.
    #[arg(long, value_name = "URL", value_parser = parse_pushgateway, env = "KAFKASNAP_PUSHGATEWAY")]
    pub pushgateway: Option<String>,
    #[command(flatten)]
    pub key: KeyArgs,
}
