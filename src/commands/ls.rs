//! `kafkasnap ls`: the backups at a location, newest first.

use kafkasnap::archive::Manifest;
use kafkasnap::progress::human_bytes;
use kafkasnap::store::Location;

use super::{print_json, Global, Outcome};
use crate::cli::{LsArgs, OutputFormat};

#[derive(serde::Serialize)]
struct Entry {
    backup_id: String,
    complete: bool,
    started_at: Option<String>,
    topics: Option<u64>,
    records: Option<u64>,
    stored_bytes: Option<u64>,
    /// Why a published backup's manifest could not be read.
    error: Option<String>,
}

pub async fn run(args: LsArgs, global: &Global) -> anyhow::Result<Outcome> {
    let location = Location::open(&args.location, false)?;
    let mut entries = Vec::new();
    for listing in location.list_backups().await?.into_iter().rev() {
        let mut entry = Entry {
            backup_id: listing.id.to_string(),
            complete: listing.complete,
            started_at: None,
            topics: None,
            records: None,
            stored_bytes: None,
            error: None,
        };
        if listing.complete {
            match location
                .read_manifest(&listing.id)
                .await
                .map_err(anyhow::Error::from)
                .and_then(|b| Ok(Manifest::from_json(&b)?))
            {
                Ok(manifest) => {
                    entry.started_at = Some(manifest.started_at);
                    entry.topics = Some(manifest.totals.topics);
                    entry.records = Some(manifest.totals.records);
                    entry.stored_bytes = Some(manifest.totals.stored_bytes);
                }
                Err(err) => entry.error = Some(err.to_string()),
            }
        }
        entries.push(entry);
    }
    match global.output {
        OutputFormat::Json => print_json(&entries)?,
        OutputFormat::Text => {
            if entries.is_empty() {
                println!("no backups at {}", location.display());
            }
            for e in &entries {
                match (&e.error, e.complete) {
                    (Some(err), _) => println!("{}  UNREADABLE  {err}", e.backup_id),
                    (None, false) => println!(
                        "{}  INCOMPLETE  (no manifest: crashed or still running)",
                        e.backup_id
                    ),
                    (None, true) => println!(
                        "{}  complete  {}  {} topics  {} records  {}",
                        e.backup_id,
                        e.started_at.as_deref().unwrap_or("-"),
                        e.topics.unwrap_or(0),
                        e.records.unwrap_or(0),
                        human_bytes(e.stored_bytes.unwrap_or(0))
                    ),
                }
            }
        }
    }
    Ok(Outcome::Success)
}
