//! `kafkasnap datadir ...`: a broker's data directory. `inspect` reads one (or a tar archive
//! of one) offline and prints what it holds and any damage; `backup` streams one out of a
//! running broker's pod into a backup location.

use anyhow::Context;
use kafkasnap::archive::Compression;
use kafkasnap::datadir::{inspect_path, MetadataMode, ProblemKind, Report};
use kafkasnap::k8s::{backup_datadir, default_client, DatadirBackupOptions, PodTarget};
use kafkasnap::progress::human_bytes;
use kafkasnap::store::Location;

use super::{print_json, Global, Outcome};
use crate::cli::{
    DatadirArgs, DatadirBackupArgs, DatadirCommand, DatadirInspectArgs, OutputFormat,
};

pub async fn run(args: DatadirArgs, global: &Global) -> anyhow::Result<Outcome> {
    match args.command {
        DatadirCommand::Inspect(args) => inspect(args, global).await,
        DatadirCommand::Backup(args) => backup(args, global).await,
    }
}

async fn backup(args: DatadirBackupArgs, global: &Global) -> anyhow::Result<Outcome> {
    let compression: Compression = args.compression.parse()?;
    let location = Location::open(&args.to, true)?;
    let client = default_client().await?;
    let options = DatadirBackupOptions {
        target: PodTarget {
            namespace: args.namespace,
            pod: args.pod,
            container: args.container,
            path: args.path,
        },
        compression,
    };
    tracing::info!(
        "backing up {}:{} of pod {}/{} to {}",
        options.target.container,
        options.target.path,
        options.target.namespace,
        options.target.pod,
        location.display()
    );
    let manifest = backup_datadir(client, &location, &options).await?;
    for warning in &manifest.warnings {
        tracing::warn!("{warning}");
    }
    if global.output == OutputFormat::Json {
        print_json(&manifest)?;
    } else {
        println!(
            "data-dir backup {} of pod {}/{}: {} files, {} tar, {} stored as {} (sha256 {})",
            manifest.backup_id,
            manifest.source.namespace,
            manifest.source.pod,
            manifest.files.len(),
            human_bytes(manifest.archive.tar_bytes),
            human_bytes(manifest.archive.stored_bytes),
            manifest.archive.key,
            manifest.archive.sha256
        );
        println!(
            "  cluster id {}, node id {}; {} warnings",
            manifest.cluster_id.as_deref().unwrap_or("unknown"),
            opt(manifest.node_id),
            manifest.warnings.len()
        );
    }
    Ok(Outcome::Success)
}

async fn inspect(args: DatadirInspectArgs, global: &Global) -> anyhow::Result<Outcome> {
    let path = args.path.clone();
    let report = tokio::task::spawn_blocking(move || inspect_path(&path))
        .await
        .context("the inspection task failed")?
        .with_context(|| format!("inspecting {}", args.path.display()))?;
    if global.output == OutputFormat::Json {
        print_json(&report)?;
    } else {
        print_text(&args, &report);
    }
    Ok(if report.has_corruption() {
        Outcome::ProblemsFound
    } else {
        Outcome::Success
    })
}

fn opt<T: std::fmt::Display>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_string(), |v| v.to_string())
}

fn print_text(args: &DatadirInspectArgs, report: &Report) {
    let t = &report.totals;
    println!(
        "data directory {} ({} metadata{})",
        args.path.display(),
        match report.metadata_mode {
            MetadataMode::Kraft => "KRaft",
            MetadataMode::Zookeeper => "ZooKeeper",
        },
        if report.clean_shutdown {
            ", clean shutdown"
        } else {
            ""
        }
    );
    println!(
        "  cluster id {}, node id {}",
        report.cluster_id.as_deref().unwrap_or("unknown"),
        opt(report.node_id)
    );
    println!(
        "  {} topics, {} partitions, {} segments, {} batches, {} records, {}",
        report.topics.len(),
        t.partitions,
        t.segments,
        t.batches,
        t.records,
        human_bytes(t.bytes)
    );
    for feature in &report.features {
        println!("feature {}={}", feature.name, feature.level);
    }
    for topic in &report.topics {
        println!(
            "topic {}  id {}  partitions {}{}",
            topic.name,
            topic.id.as_deref().unwrap_or("-"),
            topic.partitions,
            topic
                .replication_factor
                .map(|rf| format!("  replication factor {rf}"))
                .unwrap_or_default()
        );
        for (name, value) in &topic.configs {
            println!("    config {name}={value}");
        }
    }
    for p in &report.partitions {
        let codecs: Vec<&str> = p.codecs.iter().map(|c| c.name()).collect();
        println!(
            "partition {}-{}: {} segments, {} batches, {} records, offsets {}..{}, timestamps {}..{}, codecs [{}]",
            p.topic,
            p.partition,
            p.segments,
            p.batches,
            p.records,
            opt(p.first_offset),
            opt(p.last_offset),
            opt(p.first_timestamp),
            opt(p.last_timestamp),
            codecs.join(", ")
        );
        let mut notes = Vec::new();
        if p.corrupt_batches > 0 {
            notes.push(format!("{} CORRUPT", p.corrupt_batches));
        }
        if p.truncated {
            notes.push("truncated tail".to_string());
        }
        if p.legacy_message_sets > 0 {
            notes.push(format!("{} legacy message sets", p.legacy_message_sets));
        }
        if !p.index_problems.is_empty() {
            notes.push(format!("{} index problems", p.index_problems.len()));
        }
        if p.control_batches > 0 {
            notes.push(format!(
                "{} control batches ({} commits, {} aborts)",
                p.control_batches, p.commit_markers, p.abort_markers
            ));
        }
        if let Some(hw) = p.high_watermark {
            notes.push(format!("high watermark {hw}"));
        }
        if !notes.is_empty() {
            println!("    {}", notes.join("; "));
        }
    }
    for g in &report.groups {
        println!(
            "group {}  {}-{} committed {}",
            g.group, g.topic, g.partition, g.offset
        );
    }
    for problem in &report.problems {
        let kind = match problem.kind {
            ProblemKind::Corrupt => "CORRUPT",
            ProblemKind::Truncated => "truncated",
            ProblemKind::PreallocatedTail => "preallocated tail",
            ProblemKind::LegacyFormat => "legacy format",
            ProblemKind::Index => "index",
            ProblemKind::UndecodableRecord => "undecodable record",
            ProblemKind::BadFile => "bad file",
        };
        match problem.position {
            Some(position) => println!(
                "{kind}: {} at byte {position}: {}",
                problem.file, problem.detail
            ),
            None => println!("{kind}: {}: {}", problem.file, problem.detail),
        }
    }
    if report.has_corruption() {
        println!(
            "CORRUPTION FOUND: {} corrupt batches (see above)",
            t.corrupt_batches
        );
    } else {
        println!("no corruption found");
    }
}
