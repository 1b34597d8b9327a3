//! `kafkasnap ls`: the backups at a location, newest first, under a header row; for each,
//! the chain's totals and what the backup stored itself (an incremental one carries the rest).

use std::collections::BTreeMap;

use kafkasnap::archive::BackupId;
use kafkasnap::archive::ShardSpec;
use kafkasnap::backup::shard::{newest_published, run_state, PublishedRun, RunState};
use kafkasnap::progress::human_bytes;
use kafkasnap::read::read_manifest_as_stored;
use kafkasnap::store::{own_segments, BackupListing};

use futures::StreamExt;

use super::{print_json, Global, Outcome};
use crate::cli::{LsArgs, OutputFormat};

#[derive(serde::Serialize)]
struct Entry {
    backup_id: String,
    /// Published with a manifest this kafkasnap reads: the backup can be used.
    complete: bool,
    /// Published, but its manifest is damaged: the backup cannot be restored.
    damaged: bool,
    started_at: Option<String>,
    topics: Option<u64>,
    records: Option<u64>,
    stored_bytes: Option<u64>,
    segments: Option<u64>,
    /// What the backup stored itself; an incremental one carries its other segments from
    /// its parents, so its totals above are the chain's.
    new_segments: Option<u64>,
    new_records: Option<u64>,
    new_stored_bytes: Option<u64>,
    /// The backup an incremental one builds on; `None` for a full backup.
    parent: Option<String>,
    /// Why a published backup's manifest could not be read (then `complete` is false).
    error: Option<String>,
    /// For one shard's part of a sharded run: the shard, and the backup that holds the run
    /// once every part is stored.
    shard: Option<ShardEntry>,
}

#[derive(serde::Serialize)]
struct ShardEntry {
    run: String,
    index: u32,
    count: u32,
    /// The published backup that reads this part.
    part_of: Option<String>,
    /// The run's published backup, if every part is stored; `None` while the run waits.
    run_published_as: Option<String>,
}

/// Manifests read at the same time.
const MANIFEST_READS_AT_ONCE: usize = 16;

pub async fn run(args: LsArgs, global: &Global) -> anyhow::Result<Outcome> {
    let location = global.open_location(&args.location, false)?;
    let listings = location.list_backups().await?;
    let mut entries = Vec::new();
    // Which backup reads each shard part (from the published manifests).
    let mut part_of: BTreeMap<String, String> = BTreeMap::new();
    let mut finished: BTreeMap<String, String> = BTreeMap::new();
    let published: std::collections::HashSet<&BackupId> = listings
        .iter()
        .filter(|l| l.complete)
        .map(|l| &l.id)
        .collect();
    // Manifests are read a few at a time: a follower's location holds thousands.
    let manifests: Vec<_> = futures::stream::iter(listings.iter().rev())
        .map(|listing| {
            let location = &location;
            async move {
                match listing.complete {
                    true => Some(read_manifest_as_stored(location, &listing.id, None).await),
                    false => None,
                }
            }
        })
        .buffered(MANIFEST_READS_AT_ONCE)
        .collect()
        .await;
    for (listing, manifest) in listings.iter().rev().zip(manifests) {
        let mut entry = Entry {
            backup_id: listing.id.to_string(),
            complete: listing.complete,
            damaged: false,
            started_at: None,
            topics: None,
            records: None,
            stored_bytes: None,
            segments: None,
            new_segments: None,
            new_records: None,
            new_stored_bytes: None,
            parent: None,
            error: None,
            shard: None,
        };
        if let Some(manifest) = manifest {
            match manifest {
                Ok(manifest)
                    if manifest.delta.is_some() && !parent_complete(&manifest, &published) =>
                {
                    entry.complete = false;
                    entry.damaged = true;
                    entry.error = Some(format!(
                        "checkpoint that lists only what it added to {}, which is gone or incomplete: it cannot be restored",
                        manifest.parent.as_ref().map_or_else(|| "its parent".to_string(), ToString::to_string)
                    ));
                }
                Ok(manifest) => {
                    finished.insert(listing.id.to_string(), manifest.finished_at.clone());
                    entry.started_at = Some(manifest.started_at.clone());
                    entry.topics = Some(manifest.totals.topics);
                    entry.records = Some(manifest.totals.records);
                    entry.stored_bytes = Some(manifest.totals.stored_bytes);
                    entry.segments = Some(manifest.totals.segments);
                    let own = own_segments(&manifest);
                    entry.new_segments = Some(own.segments);
                    entry.new_records = Some(own.records);
                    entry.new_stored_bytes = Some(own.stored_bytes);
                    entry.parent = manifest.parent.as_ref().map(ToString::to_string);
                    for part in manifest.sharding.iter().flat_map(|s| &s.parts) {
                        part_of.insert(part.to_string(), listing.id.to_string());
                    }
                }
                Err(err) => {
                    entry.complete = false;
                    entry.damaged = matches!(err, kafkasnap::Error::ManifestDamaged { .. });
                    entry.error = Some(err.to_string());
                }
            }
        }
        entries.push(entry);
    }
    for (entry, listing) in entries.iter_mut().zip(listings.iter().rev()) {
        entry.shard = listing.shard_part.as_ref().map(|spec| ShardEntry {
            run: spec.run.clone(),
            index: spec.index,
            count: spec.count,
            part_of: part_of.get(&entry.backup_id).cloned(),
            run_published_as: superseded_by(spec, &entry.backup_id, &listings, &part_of, &finished),
        });
    }
    match global.output {
        OutputFormat::Json => print_json(&entries)?,
        OutputFormat::Text if entries.is_empty() => {
            println!("no backups at {}", location.display())
        }
        OutputFormat::Text => print_table(&entries),
    }
    Ok(Outcome::Success)
}

/// Whether the backup a delta manifest builds on is listed as published (the rest of its
/// chain is checked when it is read: `verify`, `restore`).
fn parent_complete(
    manifest: &kafkasnap::archive::Manifest,
    published: &std::collections::HashSet<&BackupId>,
) -> bool {
    manifest
        .parent
        .as_ref()
        .is_some_and(|parent| published.contains(parent))
}

/// The text listing: a header row, then one row per backup. Complete backups fill every
/// column; any other row has its id, its status and a note on what it is.
fn print_table(entries: &[Entry]) {
    let id_width = entries.iter().map(|e| e.backup_id.len()).max().unwrap_or(0);
    let started_width = entries
        .iter()
        .filter_map(|e| e.started_at.as_deref().map(str::len))
        .max()
        .unwrap_or(0)
        .max("STARTED".len());
    let row = |id: &str, status: &str, rest: &str| {
        println!("{id:<id_width$}  {status:<10}  {rest}");
    };
    let columns = |started: &str, [topics, records, stored, new]: [&str; 4], parent: &str| {
        format!(
            "{started:<started_width$}  {topics:>6}  {records:>10}  {stored:>10}  {new:>10}  {parent}"
        )
    };
    let header = columns(
        "STARTED",
        ["TOPICS", "RECORDS", "STORED", "NEW STORED"],
        "PARENT",
    );
    row("ID", "STATUS", &header);
    for e in entries {
        let id = e.backup_id.as_str();
        match (&e.error, e.complete, &e.shard) {
            (Some(err), _, _) if e.damaged => row(id, "DAMAGED", err),
            (Some(err), _, _) => row(id, "UNREADABLE", err),
            (None, false, Some(shard)) => {
                let (index, count, run) = (shard.index, shard.count, &shard.run);
                match (&shard.part_of, &shard.run_published_as) {
                    (Some(backup), _) => row(id, "part", &format!(
                        "(shard {index}/{count} of run {run}: its records are in backup {backup})"
                    )),
                    (None, Some(backup)) => row(id, "INCOMPLETE", &format!(
                        "unused part (shard {index}/{count} of run {run}, a retried shard's part the run, published as {backup}, did not use; prune removes it)"
                    )),
                    (None, None) => row(id, "INCOMPLETE", &format!(
                        "(shard {index}/{count} of run {run}: the other shards have not all stored their parts)"
                    )),
                }
            }
            (None, false, None) => row(id, "INCOMPLETE", "(no manifest: crashed or still running)"),
            (None, true, _) => row(
                id,
                "complete",
                columns(
                    e.started_at.as_deref().unwrap_or("-"),
                    [
                        &e.topics.unwrap_or(0).to_string(),
                        &e.records.unwrap_or(0).to_string(),
                        &human_bytes(e.stored_bytes.unwrap_or(0)),
                        &human_bytes(e.new_stored_bytes.unwrap_or(0)),
                    ],
                    e.parent.as_deref().unwrap_or("-"),
                )
                .trim_end(),
            ),
        }
    }
}

/// For a part no published backup holds: the run's newest published backup, when the part is
/// a leftover of that run (a retried shard's older or late part) rather than a part of a
/// later run of the same name still in progress.
fn superseded_by(
    spec: &ShardSpec,
    part: &str,
    listings: &[BackupListing],
    part_of: &BTreeMap<String, String>,
    finished: &BTreeMap<String, String>,
) -> Option<String> {
    let part = BackupId::parse(part)?;
    let newest = newest_published(spec, listings)?;
    let parts: Vec<BackupId> = part_of
        .iter()
        .filter(|(_, backup)| **backup == newest.as_str())
        .filter_map(|(part, _)| BackupId::parse(part))
        .collect();
    let finished_at = humantime::parse_rfc3339(finished.get(newest.as_str())?).ok()?;
    let run = PublishedRun {
        id: &newest,
        parts: &parts,
        finished_at,
    };
    match run_state(spec, &part, listings, Some(run)) {
        RunState::Published { id, .. } => Some(id.to_string()),
        _ => None,
    }
}
