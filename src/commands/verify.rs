//! `kafkasnap verify`: check every object of a backup; with --against, compare it with a cluster.

use kafkasnap::archive::Manifest;
use kafkasnap::progress::count;
use kafkasnap::read::open_backup;
use kafkasnap::selection::TopicSelection;
use kafkasnap::verify::{compare_with_cluster, verify_archive, ArchiveReport};

use kafkasnap::store::LockKind;

use super::{
    damaged_manifest, load_key_file, lock_for_reading, print_json, settings_from, Global,
    InvalidRequest, Outcome,
};
use crate::cli::{OutputFormat, VerifyArgs};

pub async fn run(args: VerifyArgs, global: &Global) -> anyhow::Result<Outcome> {
    let encryption_key = load_key_file(&args.key)?;
    // Checked before anything is read.
    let client = match &args.against {
        None => None,
        Some(bootstrap) => Some(settings_from(
            ("--against", bootstrap),
            args.config_file.as_deref(),
            &args.properties,
            args.timeout,
        )?),
    };
    let selection = TopicSelection::new(&args.include, &args.exclude, false)?;
    let location = global.open_location(&args.location, false)?;
    // Held while verify reads: a prune keeps the backup meanwhile. The manifest is read again
    // under the lock, and a damaged one found either time is a finding.
    let cancel = super::cancel_on_signal();
    let opened = async {
        let chosen = open_backup(&location, &args.backup, encryption_key.as_ref()).await?;
        lock_for_reading(
            &location,
            LockKind::Verify,
            &chosen.backup_id,
            encryption_key.as_ref(),
            &cancel,
        )
        .await
    }
    .await;
    let (read_lock, manifest) = match opened {
        Ok(opened) => opened,
        // A damaged backup is a finding, like a damaged segment (exit 3), not a failure.
        Err(err) => {
            let damaged = damaged_manifest(err)?;
            match global.output {
                OutputFormat::Json => print_json(&serde_json::json!({
                    "ok": false,
                    "archive": ArchiveReport::damaged_manifest(
                        &damaged.backup_id,
                        &damaged.key,
                        damaged.problem,
                    ),
                    "comparison": null,
                }))?,
                OutputFormat::Text => damaged.print_text("backup"),
            }
            return Ok(Outcome::ProblemsFound);
        }
    };
    if client.is_some() {
        refuse_selecting_nothing(&manifest, &selection)?;
    }
    let report = verify_archive(&location, &manifest, encryption_key.as_ref(), 4).await?;
    let comparisons = match &client {
        None => None,
        Some(client) => Some(
            compare_with_cluster(
                &location,
                &manifest,
                encryption_key.as_ref(),
                client,
                &args.topic_map,
                &selection,
            )
            .await?,
        ),
    };
    let differences: Vec<_> = comparisons
        .iter()
        .flatten()
        .filter(|c| !c.matches)
        .collect();
    let ok = report.problems.is_empty() && differences.is_empty();
    match global.output {
        OutputFormat::Json => print_json(&serde_json::json!({
            "ok": ok,
            "archive": report,
            "comparison": comparisons,
        }))?,
        OutputFormat::Text => {
            let records = if report.records_decoded {
                format!("{} checked", count(report.records, "record"))
            } else if report.records > 0 {
                format!(
                    "{} of {} records checked (the others are in objects that failed)",
                    report.records, report.records_in_manifest
                )
            } else if manifest.encryption.is_some() && encryption_key.is_none() {
                "records not decoded".to_string()
            } else {
                format!("0 of {} records checked", report.records_in_manifest)
            };
            println!(
                "backup {}: {}, {records}, {}",
                report.backup_id,
                count(report.objects_checked, "object"),
                count(report.problems.len(), "problem")
            );
            if encryption_key.is_none() {
                if let Some(encryption) = &manifest.encryption {
                    println!(
                        "  encrypted ({}, key id {}) and no --key-file given: sizes and SHA-256 of the stored objects checked, records not decoded",
                        encryption.cipher, encryption.key_id
                    );
                }
            }
            for problem in &report.problems {
                println!("  BAD {}: {}", problem.key, problem.problem);
            }
            if let Some(comparisons) = &comparisons {
                let scope = match selection.describe() {
                    given if given.is_empty() => given,
                    given => format!(" of the topics {given} selects"),
                };
                println!(
                    "compared {}{scope} with the cluster: {} differ",
                    count(comparisons.len(), "partition"),
                    differences.len()
                );
                for diff in &differences {
                    let live = diff.live_records.map_or("-".to_string(), |n| n.to_string());
                    let why = diff
                        .note
                        .clone()
                        .unwrap_or_else(|| "contents differ".into());
                    println!(
                        "  DIFF {}/{}: backup {}, cluster {live}: {why}",
                        diff.topic,
                        diff.partition,
                        count(diff.backup_records, "record")
                    );
                }
            }
            println!("{}", if ok { "OK" } else { "FAILED" });
        }
    }
    read_lock.release().await;
    Ok(if ok {
        Outcome::Success
    } else {
        Outcome::ProblemsFound
    })
}

/// `--include`/`--exclude` that leave no topic of the backup to compare are a mistake (exit
/// code 2), found before anything is read.
fn refuse_selecting_nothing(
    manifest: &Manifest,
    selection: &TopicSelection,
) -> Result<(), InvalidRequest> {
    let topics: Vec<&str> = manifest
        .topics
        .iter()
        .filter(|t| !t.internal)
        .map(|t| t.name.as_str())
        .collect();
    if topics.iter().any(|name| selection.matches(name, false)) {
        return Ok(());
    }
    Err(InvalidRequest(format!(
        "{} select no topic of backup {} to compare; it holds: {}",
        selection.describe(),
        manifest.backup_id,
        topics.join(", ")
    )))
}
