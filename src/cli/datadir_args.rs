//! The `datadir` subcommands' options: inspect, backup and restore through the Kubernetes
//! exec API, ls and verify.

use std::path::PathBuf;

use clap::builder::BoolishValueParser;
use clap::{Args, Subcommand, ValueEnum};
use kafkasnap::archive::BackupSelector;

use super::values::parse_timeout;
use super::{KeyArgs, LsArgs};

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
    #[arg(
        short = 'n',
        long,
        default_value = "messaging",
        env = "KAFKASNAP_NAMESPACE"
    )]
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
    /// Where to write: a directory, file:///abs/path, s3://bucket/prefix, gs://, az://.
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
    /// Which data-dir backup: its id, a unique start of one (e.g. 20261202T1253), or
    /// `latest`, the newest complete one.
    #[arg(
        long,
        value_name = "ID|PREFIX|latest",
        default_value = "latest",
        env = "KAFKASNAP_BACKUP"
    )]
    pub backup: BackupSelector,
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
    /// Which data-dir backup: its id, a unique start of one (e.g. 20261202T1253), or
    /// `latest`, the newest complete one.
    #[arg(
        long,
        value_name = "ID|PREFIX|latest",
        default_value = "latest",
        env = "KAFKASNAP_BACKUP"
    )]
    pub backup: BackupSelector,
    /// Namespace of the broker and its PVC.
    #[arg(
        short = 'n',
        long,
        default_value = "messaging",
        env = "KAFKASNAP_NAMESPACE"
    )]
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
    #[arg(long, env = "KAFKASNAP_FORCE", value_parser = BoolishValueParser::new())]
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
