//! `kafkasnap drill`: restore a backup into a scratch cluster, check it, clean up, report.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use kafkasnap::drill::{run_drill, DrillError, DrillOptions, DrillReport};
use kafkasnap::metrics::{push_drill, DrillMetrics};
use kafkasnap::progress::{human_bytes, Progress, ProgressReporter};
use kafkasnap::selection::TopicSelection;

use super::{cancel_on_signal, load_key_file, print_json, settings_from, Global, Outcome};
use crate::cli::{DrillArgs, OutputFormat};

pub async fn run(args: DrillArgs, global: &Global) -> anyhow::Result<Outcome> {
    let options = DrillOptions {
        client: settings_from(
            ("-b", &args.bootstrap_servers),
            args.config_file.as_deref(),
            &args.properties,
            args.timeout,
        )?,
        selection: TopicSelection::new(
            &args.selection.include,
            &args.selection.exclude,
            args.selection.include_internal,
        )?,
        prefix: args.prefix.clone(),
        keep: args.keep,
        allow_source_cluster: args.allow_source_cluster,
        encryption_key: load_key_file(&args.key)?,
        parallelism: args.parallelism as usize,
        stall_timeout: args.stall_timeout,
        cancel: cancel_on_signal(),
    };
    let location = global.open_location(&args.from, false)?;
    let progress = Arc::new(Progress::default());
    let reporter = ProgressReporter::start("drill", Arc::clone(&progress), global.progress);
    let result = run_drill(&location, &args.backup, &options, progress).await;
    drop(reporter);
    if let Some(url) = &args.pushgateway {
        // The drill's own outcome decides the exit code; a metrics failure is only logged.
        if let Err(err) = push_drill(url, &metrics_of(&result)).await {
            tracing::warn!("{err}");
        }
    }
    // A drill that did not finish: with --output json, main prints the error object with
    // the report so far beside it (`json_error`).
    let report = result?;
    match global.output {
        OutputFormat::Json => print_json(&report)?,
        OutputFormat::Text => print_text(&report),
    }
    Ok(if report.exact {
        Outcome::Success
    } else {
        Outcome::ProblemsFound
    })
}

fn metrics_of(result: &Result<DrillReport, DrillError>) -> DrillMetrics {
    let report = match result {
        Ok(report) => Some(report),
        Err(err) => err.report(),
    };
    let seconds = |s: Option<f64>| s.map(Duration::from_secs_f64);
    DrillMetrics {
        succeeded: result.as_ref().is_ok_and(|r| r.exact),
        finished_at: SystemTime::now(),
        restore_duration: seconds(report.and_then(|r| r.restore_seconds)),
        backup_age: seconds(report.and_then(|r| r.backup_age_seconds)),
        records: report.map(|r| r.records_restored),
        differences: report.map(DrillReport::findings),
    }
}

fn print_text(report: &DrillReport) {
    let age = report.backup_age_seconds.map_or("unknown".into(), |s| {
        humantime::format_duration(Duration::from_secs(s as u64)).to_string()
    });
    println!(
        "drill of {} backup {} (started {}: {age} old at drill time, the recovery point) into {} under {}",
        match report.backup_kind {
            kafkasnap::BackupKind::Logical => "logical",
            kafkasnap::BackupKind::Datadir => "data-dir",
        },
        report.backup_id,
        report.backup_started_at,
        report.scratch_cluster,
        report.prefix
    );
    for problem in &report.damaged {
        println!("  BAD {}: {}", problem.key, problem.problem);
    }
    if let Some(seconds) = report.restore_seconds {
        println!(
            "  restored {} topics, {} records ({}), {} groups in {seconds:.1}s (the recovery time): {:.0} records/s, {}/s",
            report.topics.len(),
            report.records_restored,
            human_bytes(report.bytes_restored),
            report.groups.len(),
            report.records_per_second.unwrap_or(0.0),
            human_bytes(report.bytes_per_second.unwrap_or(0.0) as u64)
        );
    }
    if let Some(seconds) = report.check_seconds {
        println!(
            "  checked {} partitions ({} records exact) and {} group offsets in {seconds:.1}s: {} differ",
            report.partitions_checked,
            report.records_checked,
            report.group_offsets_checked,
            report.differences.len()
        );
    }
    for difference in &report.differences {
        println!("  DIFF {}: {}", difference.subject, difference.detail);
    }
    println!("  clean-up: {}", report.cleanup);
    println!("{}", if report.exact { "OK" } else { "FAILED" });
}
