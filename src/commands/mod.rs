//! One file per subcommand: each wires its options to the library and prints the result.
//! Shared here: exit codes, client settings from flags, interrupt handling, JSON output.

mod backup;
mod cat;
mod datadir;
mod ls;
mod prune;
mod restore;
mod show;
mod verify;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context;
use kafkasnap::archive::EncryptionKey;
use kafkasnap::kafka::{parse_properties_file, ClientSettings};
use kafkasnap::progress::ProgressMode;
use kafkasnap::store::{Location, StoreOptions};

use zeroize::Zeroizing;

use crate::cli::{Cli, ClientArgs, Command, KeyArgs, OutputFormat};

/// Exit codes, documented in the README.
pub const EXIT_FAILURE: u8 = 1;
/// An invalid request, as clap exits for a bad command line.
pub const EXIT_INVALID: u8 = 2;
pub const EXIT_PROBLEMS_FOUND: u8 = 3;
pub const EXIT_INTERRUPTED: u8 = 130;

/// The exit code of a command that failed with `err`.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    match err.downcast_ref::<kafkasnap::Error>() {
        Some(kafkasnap::Error::Interrupted) => EXIT_INTERRUPTED,
        Some(err) if err.is_invalid_request() => EXIT_INVALID,
        _ => EXIT_FAILURE,
    }
}

/// How a command that did not fail ended.
pub enum Outcome {
    Success,
    /// verify found damage or differences, or datadir inspect found corruption (exit code 3).
    ProblemsFound,
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
        Ok(Location::open_with(target, create, &self.store)?)
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
    match cli.command {
        Command::Backup(args) => backup::run(args, &global).await,
        Command::Restore(args) => restore::run(args, &global).await,
        Command::Verify(args) => verify::run(args, &global).await,
        Command::Ls(args) => ls::run(args, &global).await,
        Command::Show(args) => show::run(args, &global).await,
        Command::Cat(args) => cat::run(args, &global).await,
        Command::Datadir(args) => datadir::run(args, &global).await,
        Command::Prune(args) => prune::run(args, &global).await,
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
    let key = EncryptionKey::parse(&contents)
        .map_err(|err| anyhow::anyhow!("key file {} is not a key: {err}", path.display()))?;
    tracing::debug!(key_id = key.id(), "key file read");
    Ok(Some(key))
}

/// Client settings from flags: `--config` file first, then `-X` in order.
pub fn client_settings(args: &ClientArgs) -> anyhow::Result<ClientSettings> {
    settings_from(
        &args.bootstrap_servers,
        args.config_file.as_deref(),
        &args.properties,
        args.timeout,
    )
}

pub fn settings_from(
    bootstrap: &str,
    config_file: Option<&std::path::Path>,
    properties: &[(String, String)],
    timeout: std::time::Duration,
) -> anyhow::Result<ClientSettings> {
    let mut settings = ClientSettings::new(bootstrap);
    settings.request_timeout = timeout;
    if let Some(path) = config_file {
        settings.properties = parse_properties_file(path)?;
    }
    settings.properties.extend(properties.iter().cloned());
    Ok(settings)
}

/// A flag that turns true on Ctrl-C or SIGTERM (a CronJob being stopped).
pub fn cancel_on_signal() -> Arc<AtomicBool> {
    let cancel = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&cancel);
    tokio::spawn(async move {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => return,
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        tracing::warn!("stop requested: finishing nothing, publishing nothing");
        flag.store(true, Ordering::Relaxed);
    });
    cancel
}

/// Prints one JSON document on stdout.
pub fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, value).context("writing JSON output")?;
    writeln!(out).context("writing JSON output")?;
    Ok(())
}
