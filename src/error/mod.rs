//! The library's error type for whole operations (backup, restore, verify, reading backups).

use crate::archive::ArchiveError;
use crate::datadir::DatadirError;
use crate::kafka::KafkaError;
use crate::store::StoreError;

mod restore_incomplete;
pub use restore_incomplete::Created;
pub(crate) use restore_incomplete::{RestoreStop, TopicWritten, WritePhase, Written};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Kafka(Box<KafkaError>),
    #[error(transparent)]
    Store(Box<StoreError>),
    #[error("{key}: {source}")]
    Archive {
        key: String,
        #[source]
        source: ArchiveError,
    },
    /// A published backup's manifest that is not a readable manifest (not JSON, fields
    /// missing or of the wrong type): the backup is damaged.
    #[error("{key}: {source}; backup {backup_id} is damaged and cannot be restored: restore an older backup with --backup ID (`kafkasnap ls` lists them)")]
    ManifestDamaged {
        backup_id: String,
        key: String,
        #[source]
        source: ArchiveError,
    },
    #[error("no topic matches the selection{}; topics present: {}", selection_hint(.selection), list_or_none(.available))]
    NoTopicsMatch {
        selection: String,
        available: Vec<String>,
    },
    /// `problem` is the regex crate's report, which shows where in `pattern` it fails.
    #[error("invalid regular expression {pattern:?} in --include/--exclude (each is matched against a whole topic name): {problem}")]
    BadPattern { pattern: String, problem: String },
    #[error(
        "no complete backup at {location}; run `kafkasnap ls {location}` to see what is there"
    )]
    NoBackups { location: String },
    #[error("no logical backup at {location}, only data-dir backups (the newest is {newest}; `kafkasnap datadir ls {location}` lists them). {DATADIR_HINT}")]
    OnlyDatadirBackups { location: String, newest: String },
    #[error("backup {id} at {location} is a data-dir backup, not a logical one. {DATADIR_HINT}")]
    IsDatadirBackup { id: String, location: String },
    #[error("no data-dir backup at {location}, only logical backups (the newest is {newest}; `kafkasnap ls {location}` lists them). {LOGICAL_HINT}")]
    OnlyLogicalBackups { location: String, newest: String },
    #[error("backup {id} at {location} is a logical backup, not a data-dir one. {LOGICAL_HINT}")]
    IsLogicalBackup { id: String, location: String },
    #[error("{kind} {id} not found at {location}; run `{} {location}` to see the {kind}s there", .kind.ls_command())]
    BackupNotFound {
        id: String,
        location: String,
        kind: BackupKind,
    },
    /// `--backup PREFIX` that starts no complete backup's id.
    #[error("no complete {kind} at {location} has an id starting with {prefix}; run `{} {location}` to see the ids there", .kind.ls_command())]
    NoBackupMatches {
        prefix: String,
        location: String,
        kind: BackupKind,
    },
    /// `--backup PREFIX` that starts more than one complete backup's id.
    #[error("--backup {prefix} is ambiguous: {} complete {kind}s at {location} have ids starting with it: {}; give more characters of the id", .matches.len(), list_or_none_of(.matches, 10))]
    AmbiguousBackup {
        prefix: String,
        location: String,
        kind: BackupKind,
        matches: Vec<String>,
    },
    #[error("backup {id} at {location} is incomplete (its manifest was never published: it crashed, was stopped, or is still running) and cannot be used; leave out --backup to use the newest complete one (`kafkasnap ls {location}` lists them); `kafkasnap prune` removes it after its grace period")]
    BackupIncomplete { id: String, location: String },
    #[error("the archive failed its check before anything was written:\n{}\nrun `kafkasnap verify` (`kafkasnap datadir verify` for a data-dir backup) on the location to list every damaged object, or restore an older backup with --backup ID", .problems.join("\n"))]
    ArchiveDamaged { problems: Vec<String> },
    #[error("target topic {topic} already exists; nothing was written. If an interrupted kafkasnap restore created it, rerun the same command with --resume; otherwise use --if-exists skip to leave it alone, --if-exists append to add the records to it, or --topic-map to restore under another name")]
    TopicExists { topic: String },
    #[error("{0}")]
    InvalidRequest(String),
    /// Options that contradict each other or a value that cannot be followed, found before
    /// anything was read, connected to or written (exit 2, like a bad command line).
    #[error("{0}")]
    InvalidOptions(String),
    #[error(transparent)]
    TopicMap(#[from] crate::topic_map::TopicMapError),
    #[error(transparent)]
    BadLevel(#[from] crate::archive::BadLevel),
    #[error("{0}")]
    Delivery(String),
    /// A restore that stopped part-way: why, and what the target holds from it.
    #[error("{why}; {written}")]
    RestoreIncomplete { why: RestoreStop, written: Written },
    #[error("cannot read the data directory")]
    Datadir(#[from] DatadirError),
    #[error("interrupted; nothing was published")]
    Interrupted,
    #[error(transparent)]
    Shard(#[from] crate::archive::ShardError),
    #[error("backup {backup_id} is encrypted ({cipher}, key id {key_id}): give its key with --key-file FILE (or KAFKASNAP_KEY_FILE); nothing was read or written")]
    KeyRequired {
        backup_id: String,
        cipher: String,
        key_id: String,
    },
    #[error("backup {backup_id} is not encrypted, but a key file was given: anyone who can write to the location can strip a manifest's encryption and put plaintext objects of their own in, so it is not trusted; nothing was read or written. If it was meant to be a plaintext backup, run without --key-file (and KAFKASNAP_KEY_FILE)")]
    NotEncrypted { backup_id: String },
    #[error("the key does not match the one backup {backup_id} was encrypted with (key id {expected}, yours {actual}); nothing was read or written")]
    WrongKey {
        backup_id: String,
        expected: String,
        actual: String,
    },
    #[error(transparent)]
    Lock(Box<crate::store::LockError>),
    #[error("--incremental cannot continue from backup {parent}: {problem}")]
    ChainEncryption { parent: String, problem: String },
}

impl Error {
    /// True when the operation stopped because it was asked to (Ctrl-C / SIGTERM).
    pub fn is_interrupted(&self) -> bool {
        match self {
            Error::Interrupted => true,
            Error::RestoreIncomplete { why, .. } => matches!(why, RestoreStop::Interrupted),
            Error::Lock(lock) => matches!(**lock, crate::store::LockError::Interrupted { .. }),
            _ => false,
        }
    }

    /// The request itself cannot be followed (a value outside its range, a topic map that
    /// collides, a `--backup` prefix that names several backups, a regex that does not compile,
    /// text that names no usable location), so it was refused before anything was read or
    /// written. The binary exits 2 for these, as for a bad command line.
    pub fn is_invalid_request(&self) -> bool {
        match self {
            Error::Store(store) => store.is_invalid_request(),
            other => matches!(
                other,
                Error::TopicMap(_)
                    | Error::BadLevel(_)
                    | Error::AmbiguousBackup { .. }
                    | Error::BadPattern { .. }
                    | Error::InvalidOptions(_)
            ),
        }
    }
}

impl From<KafkaError> for Error {
    fn from(err: KafkaError) -> Self {
        Error::Kafka(Box::new(err))
    }
}

impl From<crate::store::LockError> for Error {
    fn from(err: crate::store::LockError) -> Self {
        Error::Lock(Box::new(err))
    }
}

impl From<StoreError> for Error {
    fn from(err: StoreError) -> Self {
        Error::Store(Box::new(err))
    }
}

const DATADIR_HINT: &str = "Put a data-dir backup back into a broker's volume with `kafkasnap datadir restore --from LOCATION --backup ID`, or download its data.tar.* archive and replay its records with `kafkasnap restore --from-datadir FILE`";

const LOGICAL_HINT: &str = "Restore a logical backup into a running cluster with `kafkasnap restore --from LOCATION --backup ID` and check it with `kafkasnap verify LOCATION --backup ID`";

fn selection_hint(selection: &str) -> String {
    if selection.is_empty() {
        String::new()
    } else {
        format!(" ({selection})")
    }
}

/// Which kind of backup an error is about: they are listed by different commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BackupKind {
    Logical,
    Datadir,
}

impl BackupKind {
    /// The command that lists backups of this kind.
    pub fn ls_command(self) -> &'static str {
        match self {
            BackupKind::Logical => "kafkasnap ls",
            BackupKind::Datadir => "kafkasnap datadir ls",
        }
    }
}

impl std::fmt::Display for BackupKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BackupKind::Logical => "backup",
            BackupKind::Datadir => "data-dir backup",
        })
    }
}

fn list_or_none(names: &[String]) -> String {
    list_or_none_of(names, 20)
}

/// At most `limit` of `names`, then how many more there are.
fn list_or_none_of(names: &[String], limit: usize) -> String {
    if names.is_empty() {
        return "none".into();
    }
    let shown: Vec<&str> = names.iter().take(limit).map(String::as_str).collect();
    let more = names.len().saturating_sub(shown.len());
    if more > 0 {
        format!("{} and {more} more", shown.join(", "))
    } else {
        shown.join(", ")
    }
}
