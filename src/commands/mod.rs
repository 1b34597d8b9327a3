//! One file per subcommand: each wires its options to the library and prints the result.
//! Shared here: exit codes, client settings from flags, interrupt handling, JSON output.

mod backup;
mod cat;
mod datadir;
mod drill;
mod follow;
mod generated;
mod ls;
mod prune;
mod restore;
mod show;
mod verify;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use anyhow::Context;
use kafkasnap::archive::{BackupId, BackupSelector, DatadirManifest, EncryptionKey, Manifest};
use kafkasnap::kafka::{parse_properties_file, ClientSettings};
use kafkasnap::progress::ProgressMode;
use kafkasnap::read::{open_datadir_backup, read_manifest};
use kafkasnap::store::{Location, LocationLock, LockKind, StoreOptions};

use zeroize::Zeroizing;

use crate::cli::{Cli, ClientArgs, Command, KeyArgs, OutputFormat};

/// Exit codes, documented in the README.
pub const EXIT_FAILURE: u8 = 1;
/// An invalid request, as clap exits for a bad command line.
pub const EXIT_INVALID: u8 = 2;
pub const EXIT_PROBLEMS_FOUND: u8 = 3;
/// `backup --shard` stored its part, and the run is not published yet.
pub const EXIT_SHARD_RUN_WAITING: u8 = 4;
pub const EXIT_INTERRUPTED: u8 = 130;

/// A request refused before anything was read or written, for a reason clap cannot check
/// (exit code 2, as clap exits for a bad command line).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InvalidRequest(pub String);

/// With `--output json`, a failure is also a JSON object on stdout, so a script that reads
/// stdout sees it: `{"error": {"message", "causes", "kind"}, "exit_code"}`; a drill that
/// stopped has its report so far beside them.
pub fn json_error(err: &anyhow::Error, code: u8) -> serde_json::Value {
    let kind = match code {
        EXIT_INVALID => "invalid_request",
        EXIT_INTERRUPTED => "interrupted",
        _ => "failure",
    };
    let causes: Vec<String> = err.chain().skip(1).map(ToString::to_string).collect();
    let mut result = serde_json::json!({
        "error": { "message": err.to_string(), "causes": causes, "kind": kind },
        "exit_code": code,
    });
    let report = err
        .downcast_ref::<kafkasnap::drill::DrillError>()
        .and_then(|drill| drill.report())
        .and_then(|report| serde_json::to_value(report).ok());
    if let (Some(serde_json::Value::Object(report)), Some(fields)) =
        (report, result.as_object_mut())
    {
        for (name, value) in report {
            fields.entry(name).or_insert(value);
        }
    }
    result
}

/// The exit code of a command that failed with `err`.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    if is_interrupted(err) {
        return EXIT_INTERRUPTED;
    }
    if err.downcast_ref::<InvalidRequest>().is_some() {
        return EXIT_INVALID;
    }
    if let Some(drill) = err.downcast_ref::<kafkasnap::drill::DrillError>() {
        return match drill.is_invalid_request() {
            true => EXIT_INVALID,
            false => EXIT_FAILURE,
        };
    }
    match err.downcast_ref::<kafkasnap::Error>() {
        Some(err) if err.is_invalid_request() => EXIT_INVALID,
        _ => EXIT_FAILURE,
    }
}

/// How a command that did not fail ended.
pub enum Outcome {
    Success,
    /// verify or drill found damage or differences, or datadir inspect found corruption
    /// (exit code 3).
    ProblemsFound,
    /// A shard stored its part and the run still waits for other shards (exit code 4).
    ShardRunWaiting,
}

/// Options every command sees.
pub struct Global {
    pub output: OutputFormat,
    pub progress: ProgressMode,
    pub store: StoreOptions,
}

impl Global {
    /// Opens a backup location with the store options from the command line.
    pub fn open_location(&self, target: &str, create: bool) -> anyhow::Result<Location> {
        if target.trim().to_ascii_lowercase().starts_with("memory:") {
            return Err(InvalidRequest(format!(
                "{target} cannot hold backups from the command line: it is this process's memory, emptied when the command ends; give a directory or an s3://, gs:// or az:// URL"
            ))
            .into());
        }
        Location::open_with(target, create, &self.store)
            .map_err(|err| kafkasnap::Error::from(err).into())
    }
}

pub async fn run(cli: Cli) -> anyhow::Result<Outcome> {
    let global = Global {
        output: cli.output,
        progress: if cli.no_progress || cli.output == OutputFormat::Json {
            ProgressMode::Off
        } else {
            ProgressMode::Auto
        },
        store: StoreOptions {
            retry_timeout: cli.store_retry_timeout,
        },
    };
    let policy = StopPolicy::of(&cli.command);
    // Registered before the command starts, so a signal at any moment is caught.
    let mut signals = Signals::register();
    let command = dispatch(cli.command, &global);
    tokio::pin!(command);
    tokio::select! {
        result = &mut command => return release_locks_after(result).await,
        () = signals.received() => {}
    }
    if let Some(finish_within) = policy.finish_within {
        // A follower publishes a last checkpoint; a second signal, or no end in time, stops it hard.
        tracing::warn!("stop requested: publishing a last checkpoint of what was read (a second Ctrl-C stops at once, publishing nothing more)");
        finish_on_signal().store(true, Ordering::Relaxed);
        tokio::select! {
            result = tokio::time::timeout(finish_within, &mut command) => {
                if let Ok(result) = result {
                    return release_locks_after(result).await;
                }
                tracing::warn!("the last checkpoint took longer than {}s", finish_within.as_secs());
            }
            () = signals.received() => {}
        }
    }
    tracing::warn!("stop requested: {}", policy.notice);
    cancel_on_signal().store(true, Ordering::Relaxed);
    match policy.grace {
        None => release_locks_after(command.await).await,
        Some(grace) => match tokio::time::timeout(grace, &mut command).await {
            Ok(result) => release_locks_after(result).await,
            // Stuck in a call that cannot see the flag (a broker that never answers, say).
            // Its location locks go now, so nobody waits for them to go stale.
            Err(_) => {
                kafkasnap::store::release_held_locks(LOCK_RELEASE_LIMIT).await;
                Err(Stopped(policy.unfinished).into())
            }
        },
    }
}

/// A command may return (early, or holding a lock guard to the end) without releasing its
/// location locks; the binary then stops without running background tasks, so whatever is
/// still held goes here. Nothing when every lock was released.
async fn release_locks_after(result: anyhow::Result<Outcome>) -> anyhow::Result<Outcome> {
    kafkasnap::store::release_held_locks(LOCK_RELEASE_LIMIT).await;
    result
}

async fn dispatch(command: Command, global: &Global) -> anyhow::Result<Outcome> {
    match command {
        Command::Backup(args) => backup::run(args, global).await,
        Command::Restore(args) => restore::run(args, global).await,
        Command::Verify(args) => verify::run(args, global).await,
        Command::Ls(args) => ls::run(args, global).await,
        Command::Show(args) => show::run(args, global).await,
        Command::Cat(args) => cat::run(args, global).await,
        Command::Datadir(args) => datadir::run(args, global).await,
        Command::Prune(args) => prune::run(args, global).await,
        Command::Drill(args) => drill::run(*args, global).await,
        Command::Completions { shell } => generated::completions(shell),
        Command::Man => generated::man_page(),
    }
}

/// How long a cut-off command may spend removing its location locks.
const LOCK_RELEASE_LIMIT: std::time::Duration = std::time::Duration::from_millis(500);

/// How long a command may take to end by itself once stopped, before it is cut off.
const STOP_GRACE: std::time::Duration = std::time::Duration::from_millis(1500);

/// How long a follower may take to publish its last checkpoint once stopped (inside the 30 s
/// a Kubernetes pod gets by default).
const FOLLOW_FINISH_WITHIN: std::time::Duration = std::time::Duration::from_secs(25);

/// What Ctrl-C / SIGTERM means for one command.
struct StopPolicy {
    /// Logged when the signal arrives.
    notice: &'static str,
    /// `None`: the command always runs its own clean-up to the end (it changed a cluster).
    grace: Option<std::time::Duration>,
    /// The error when it was cut off after the grace period.
    unfinished: &'static str,
    /// Set for a follower: the first signal asks it to finish (publish a last checkpoint)
    /// within this long; only a second signal, or the time running out, stops it as above.
    finish_within: Option<std::time::Duration>,
}

impl StopPolicy {
    fn of(command: &Command) -> StopPolicy {
        use crate::cli::DatadirCommand;
        let (notice, grace, unfinished) = match command {
            Command::Backup(args) if args.follow.follow => (
                "stopping the follower; the checkpoint being taken will not be published",
                Some(STOP_GRACE),
                "the last checkpoint was not published; the checkpoints published before it stand, and the follower, started again, continues from the newest",
            ),
            Command::Backup(_) => (
                "stopping the backup; it will not be published",
                Some(STOP_GRACE),
                "nothing was published",
            ),
            Command::Restore(_) => (
                "stopping the restore; what it already wrote stays in the target and is reported when it ends",
                Some(STOP_GRACE),
                "the restore was cut off while it waited on the cluster or the store, so how far it got is not known: rerun the same command with --resume to continue: it checks what each target partition holds and writes only the rest",
            ),
            Command::Verify(_) => (
                "stopping verify; it will give no verdict",
                Some(STOP_GRACE),
                "verify did not finish, so it gave no verdict",
            ),
            Command::Prune(_) => (
                "stopping prune; backups it has not reached yet are kept",
                Some(STOP_GRACE),
                "prune did not finish: what it deleted is gone, the rest is kept; run it again to finish",
            ),
            Command::Datadir(args) => match args.command {
                DatadirCommand::Backup(_) => (
                    "stopping the data-dir backup; it will not be published",
                    None,
                    "nothing was published",
                ),
                DatadirCommand::Restore(_) => ("stopping the data-dir restore", None, ""),
                _ => ("stopping", Some(STOP_GRACE), "nothing was changed"),
            },
            Command::Drill(_) => (
                "stopping the drill; it deletes the topics and groups it created first",
                None,
                "",
            ),
            Command::Ls(_)
            | Command::Show(_)
            | Command::Cat(_)
            | Command::Completions { .. }
            | Command::Man => {
                ("stopping", Some(STOP_GRACE), "nothing was changed")
            }
        };
        let finish_within = match command {
            Command::Backup(args) if args.follow.follow => Some(FOLLOW_FINISH_WITHIN),
            _ => None,
        };
        StopPolicy {
            notice,
            grace,
            unfinished,
            finish_within,
        }
    }
}

/// A command cut off by Ctrl-C / SIGTERM (exit code 130), and what that left.
#[derive(Debug, thiserror::Error)]
#[error("interrupted; {0}")]
pub struct Stopped(&'static str);

/// True if `err` says the command stopped because it was asked to (exit code 130).
pub fn is_interrupted(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause.is::<Stopped>()
            || cause
                .downcast_ref::<kafkasnap::Error>()
                .is_some_and(kafkasnap::Error::is_interrupted)
            || cause
                .downcast_ref::<kafkasnap::drill::DrillError>()
                .is_some_and(kafkasnap::drill::DrillError::is_interrupted)
    })
}

/// SIGINT (Ctrl-C) and SIGTERM (a pod or CronJob being stopped).
struct Signals {
    interrupt: Option<tokio::signal::unix::Signal>,
    terminate: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn register() -> Signals {
        use tokio::signal::unix::{signal, SignalKind};
        Signals {
            interrupt: signal(SignalKind::interrupt()).ok(),
            terminate: signal(SignalKind::terminate()).ok(),
        }
    }

    async fn received(&mut self) {
        async fn on(signal: Option<&mut tokio::signal::unix::Signal>) {
            match signal {
                Some(signal) => {
                    signal.recv().await;
                }
                None => std::future::pending().await,
            }
        }
        tokio::select! {
            () = on(self.interrupt.as_mut()) => {}
            () = on(self.terminate.as_mut()) => {}
        }
    }
}

/// The key in `--key-file`, if one was given. The file's contents are never shown, not
/// even in errors; its bytes are wiped from memory once parsed.
pub fn load_key_file(args: &KeyArgs) -> anyhow::Result<Option<EncryptionKey>> {
    let Some(path) = &args.key_file else {
        return Ok(None);
    };
    let contents = std::fs::read(path)
        .map(Zeroizing::new)
        .with_context(|| format!("cannot read the key file {}", path.display()))?;
    let key = EncryptionKey::parse(&contents).map_err(|err| {
        InvalidRequest(format!("key file {} is not a key: {err}", path.display()))
    })?;
    tracing::debug!(key_id = key.id(), "key file read");
    Ok(Some(match args.allow_unsealed {
        true => key.allowing_unsealed_manifests(),
        false => key,
    }))
}

/// Client settings from flags: `--config` file first, then `-X` in order.
pub fn client_settings(args: &ClientArgs) -> anyhow::Result<ClientSettings> {
    settings_from(
        ("-b", &args.bootstrap_servers),
        args.config_file.as_deref(),
        &args.properties,
        args.timeout,
    )
}

/// `bootstrap` is the flag that gave the addresses and its value; no property may give
/// them a second time.
pub fn settings_from(
    (flag, bootstrap): (&str, &str),
    config_file: Option<&std::path::Path>,
    properties: &[(String, String)],
    timeout: std::time::Duration,
) -> anyhow::Result<ClientSettings> {
    let mut settings = ClientSettings::new(bootstrap);
    settings.request_timeout = timeout;
    if let Some(path) = config_file {
        settings.properties = parse_properties_file(path)?;
        refuse_second_bootstrap(
            &settings.properties,
            flag,
            &format!("--config {}", path.display()),
        )?;
    }
    refuse_second_bootstrap(properties, flag, "-X")?;
    settings.properties.extend(properties.iter().cloned());
    Ok(settings)
}

/// librdkafka's names for the addresses `-b` gives: one of them as well would leave two
/// answers to which cluster is meant.
fn refuse_second_bootstrap(
    properties: &[(String, String)],
    flag: &str,
    source: &str,
) -> anyhow::Result<()> {
    const NAMES: [&str; 2] = ["bootstrap.servers", "metadata.broker.list"];
    match properties.iter().find(|(key, _)| NAMES.contains(&key.as_str())) {
        Some((key, _)) => Err(InvalidRequest(format!(
            "{source} sets {key}, and {flag} gives the bootstrap servers too: give them once, with {flag}"
        ))
        .into()),
        None => Ok(()),
    }
}

/// The flag a follower (`backup --follow`) watches: true on the first Ctrl-C or SIGTERM, when
/// it publishes a last checkpoint and ends ([`cancel_on_signal`] then stays false).
pub fn finish_on_signal() -> Arc<AtomicBool> {
    static FINISH: OnceLock<Arc<AtomicBool>> = OnceLock::new();
    Arc::clone(FINISH.get_or_init(|| Arc::new(AtomicBool::new(false))))
}

/// The flag that turns true on Ctrl-C or SIGTERM (a CronJob being stopped), shared by every
/// caller; [`run`] sets it and then gives the command a moment to stop by itself.
pub fn cancel_on_signal() -> Arc<AtomicBool> {
    static CANCEL: OnceLock<Arc<AtomicBool>> = OnceLock::new();
    Arc::clone(CANCEL.get_or_init(|| Arc::new(AtomicBool::new(false))))
}

/// Takes a shared lock at `location` naming backup `id`, so that a prune keeps it while
/// this command reads it, and reads its manifest again under the lock (a prune that was
/// running may have removed it meanwhile).
pub async fn lock_for_reading(
    location: &Location,
    kind: LockKind,
    id: &BackupId,
    encryption_key: Option<&EncryptionKey>,
    cancel: &AtomicBool,
) -> anyhow::Result<(LocationLock, Manifest)> {
    let lock = LocationLock::shared(location, kind, [id.clone()], [], cancel)
        .await
        .map_err(kafkasnap::Error::from)?;
    let manifest = read_manifest(location, id, encryption_key).await?;
    Ok((lock, manifest))
}

/// [`lock_for_reading`] for data-dir backup `id`.
pub async fn lock_datadir_for_reading(
    location: &Location,
    kind: LockKind,
    id: &BackupId,
    encryption_key: Option<&EncryptionKey>,
    cancel: &AtomicBool,
) -> anyhow::Result<(LocationLock, DatadirManifest)> {
    let lock = LocationLock::shared(location, kind, [], [id.clone()], cancel)
        .await
        .map_err(kafkasnap::Error::from)?;
    let manifest =
        open_datadir_backup(location, &BackupSelector::Exact(id.clone()), encryption_key).await?;
    Ok((lock, manifest))
}

/// A backup whose manifest is damaged or fails its seal: for verify a finding (exit 3).
pub struct DamagedManifest {
    pub backup_id: String,
    pub key: String,
    pub problem: String,
}

/// Splits a damaged manifest off `err`; any other failure is handed back as the error.
pub fn damaged_manifest(err: anyhow::Error) -> anyhow::Result<DamagedManifest> {
    match err.downcast::<kafkasnap::Error>() {
        Ok(kafkasnap::Error::ManifestDamaged {
            backup_id,
            key,
            source,
        }) => Ok(DamagedManifest {
            backup_id,
            key,
            problem: source.to_string(),
        }),
        Ok(other) => Err(other.into()),
        Err(other) => Err(other),
    }
}

impl DamagedManifest {
    /// What `verify` and `datadir verify` print for it as text; `what` names the backup.
    pub fn print_text(&self, what: &str) {
        println!(
            "{what} {}: its manifest is damaged; nothing else can be checked",
            self.backup_id
        );
        println!("  BAD {}: {}", self.key, self.problem);
        println!("FAILED");
    }
}

/// Prints one JSON document on stdout.
pub fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, value).context("writing JSON output")?;
    writeln!(out).context("writing JSON output")?;
    Ok(())
}
