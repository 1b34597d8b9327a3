//! `kafkasnap datadir ...`: a broker's data directory. `inspect` reads one (or a tar archive
//! of one) offline and prints what it holds and any damage; `backup` streams one out of a
//! broker's pod (live) or its PVC (stopped) into a backup location; `restore` writes such a
//! backup back into a PVC; `ls` and `verify` list and check such backups.

use anyhow::Context;
use kafkasnap::archive::{Compression, DatadirManifest};
use kafkasnap::datadir::{inspect_path, MetadataMode, ProblemKind, Report};
use kafkasnap::k8s::{default_client, HelperPodSpec, K8sError, PodTarget, StatefulSetRef};
use kafkasnap::physical::{
    backup_datadir, backup_datadir_stopped, restore_datadir, DatadirBackupOptions,
    DatadirRestoreOptions, PhysicalError, StoppedBackupOptions,
};
use kafkasnap::progress::{count, human_bytes, human_time};
use kafkasnap::read::{key_for_datadir_backup, open_datadir_backup};
use kafkasnap::verify::verify_datadir_archive;

use super::{
    cancel_on_signal, damaged_manifest, load_key_file, lock_datadir_for_reading, print_json,
    Global, Outcome,
};
use crate::cli::{
    DatadirArgs, DatadirBackupArgs, DatadirBackupMode, DatadirCommand, DatadirInspectArgs,
    DatadirRestoreArgs, DatadirVerifyArgs, HelperPodArgs, LsArgs, OutputFormat,
};
use kafkasnap::store::LockKind;

pub async fn run(args: DatadirArgs, global: &Global) -> anyhow::Result<Outcome> {
    match args.command {
        DatadirCommand::Inspect(args) => inspect(args, global).await,
        DatadirCommand::Backup(args) => backup(*args, global).await,
        DatadirCommand::Restore(args) => restore(*args, global).await,
        DatadirCommand::Ls(args) => list(args, global).await,
        DatadirCommand::Verify(args) => verify(args, global).await,
    }
}

async fn list(args: LsArgs, global: &Global) -> anyhow::Result<Outcome> {
    let location = global.open_location(&args.location, false)?;
    let mut entries = Vec::new();
    for listing in location.list_datadir_backups().await?.into_iter().rev() {
        // Read each manifest directly: resolving it by id would list the location again.
        let manifest = match listing.complete {
            true => {
                let bytes = location.read_datadir_manifest(&listing.id).await?;
                Some(DatadirManifest::from_json(&bytes).with_context(|| {
                    format!("reading {}", location.datadir_manifest_key(&listing.id))
                })?)
            }
            false => None,
        };
        entries.push((listing, manifest));
    }
    if global.output == OutputFormat::Json {
        let json: Vec<_> = entries
            .iter()
            .map(|(listing, manifest)| serde_json::json!({ "backup_id": listing.id.to_string(), "complete": listing.complete, "manifest": manifest }))
            .collect();
        print_json(&json)?;
        return Ok(Outcome::Success);
    }
    if entries.is_empty() {
        println!("no data-dir backups at {}", location.display());
        return Ok(Outcome::Success);
    }
    // A header row, then one row per backup, as `ls` prints logical ones.
    let source =
        |m: &DatadirManifest| format!("{}/{}:{}", m.source.namespace, m.source.pod, m.source.path);
    let width = |column: &str, cells: &mut dyn Iterator<Item = usize>| {
        cells.max().unwrap_or(0).max(column.len())
    };
    let id_width = width("ID", &mut entries.iter().map(|(l, _)| l.id.as_str().len()));
    let made = entries.iter().filter_map(|(_, m)| m.as_ref());
    let started_width = width("STARTED", &mut made.clone().map(|m| m.started_at.len()));
    let source_width = width("SOURCE", &mut made.map(|m| source(m).len()));
    let row = |id: &str, status: &str, rest: &str| {
        println!("{id:<id_width$}  {status:<10}  {rest}");
    };
    let columns = |started: &str, source: &str, files: &str, stored: &str, encryption: &str| {
        let line = format!(
            "{started:<started_width$}  {source:<source_width$}  {files:>6}  {stored:>10}  {encryption}"
        );
        line.trim_end().to_string()
    };
    row(
        "ID",
        "STATUS",
        &columns("STARTED", "SOURCE", "FILES", "STORED", "ENCRYPTION"),
    );
    for (listing, manifest) in &entries {
        match manifest {
            None => row(
                listing.id.as_str(),
                "INCOMPLETE",
                "(no manifest: crashed or still running)",
            ),
            Some(m) => row(
                listing.id.as_str(),
                "complete",
                &columns(
                    &m.started_at,
                    &source(m),
                    &m.files.len().to_string(),
                    &human_bytes(m.archive.stored_bytes),
                    &match &m.encryption {
                        Some(e) => format!("encrypted (key id {})", e.key_id),
                        None => "-".to_string(),
                    },
                ),
            ),
        }
    }
    Ok(Outcome::Success)
}

async fn verify(args: DatadirVerifyArgs, global: &Global) -> anyhow::Result<Outcome> {
    let encryption_key = load_key_file(&args.key)?;
    let location = global.open_location(&args.location, false)?;
    let opened = async {
        let chosen = open_datadir_backup(&location, &args.backup, encryption_key.as_ref()).await?;
        // Held while the archive is read: a prune keeps it meanwhile.
        lock_datadir_for_reading(
            &location,
            LockKind::Verify,
            &chosen.backup_id,
            encryption_key.as_ref(),
            &cancel_on_signal(),
        )
        .await
    }
    .await;
    let (_read_lock, manifest) = match opened {
        Ok(opened) => opened,
        // A damaged (or forged) manifest is a finding, as `verify` reports it (exit 3).
        Err(err) => {
            let damaged = damaged_manifest(err)?;
            if global.output == OutputFormat::Json {
                print_json(&serde_json::json!({
                    "ok": false,
                    "backup_id": damaged.backup_id,
                    "problems": [{ "key": damaged.key, "problem": damaged.problem }],
                }))?;
            } else {
                damaged.print_text("data-dir backup");
            }
            return Ok(Outcome::ProblemsFound);
        }
    };
    let problems = verify_datadir_archive(&location, &manifest, encryption_key.as_ref()).await?;
    if global.output == OutputFormat::Json {
        print_json(
            &serde_json::json!({ "ok": problems.is_empty(), "backup_id": manifest.backup_id.to_string(), "problems": problems }),
        )?;
    } else {
        println!(
            "data-dir backup {}: {} ({}{})",
            manifest.backup_id,
            manifest.archive.key,
            human_bytes(manifest.archive.stored_bytes),
            match &manifest.encryption {
                Some(e) => format!(
                    ", encrypted with {} key id {}: every chunk decrypted",
                    e.cipher, e.key_id
                ),
                None => String::new(),
            }
        );
        for problem in &problems {
            println!("  BAD {}: {}", problem.key, problem.problem);
        }
        println!("{}", if problems.is_empty() { "OK" } else { "FAILED" });
    }
    Ok(if problems.is_empty() {
        Outcome::Success
    } else {
        Outcome::ProblemsFound
    })
}

async fn backup(args: DatadirBackupArgs, global: &Global) -> anyhow::Result<Outcome> {
    let compression: Compression = args.compression.parse()?;
    let encryption_key = load_key_file(&args.key)?;
    let location = global.open_location(&args.to, true)?;
    let client = default_client()
        .await
        .inspect_err(|_| location.remove_if_created_and_empty())?;
    let cancel = cancel_on_signal();
    let manifest = match args.mode {
        DatadirBackupMode::Live => {
            let options = DatadirBackupOptions {
                target: PodTarget {
                    namespace: args.namespace,
                    pod: args.pod,
                    container: args.container,
                    path: args.path,
                },
                compression,
                encryption_key,
                stall_timeout: args.stall_timeout,
                cancel,
            };
            tracing::info!(
                "backing up {}:{} of pod {}/{} to {}",
                options.target.container,
                options.target.path,
                options.target.namespace,
                options.target.pod,
                location.display()
            );
            backup_datadir(client, &location, &options).await
        }
        DatadirBackupMode::Stopped => {
            let options = StoppedBackupOptions {
                statefulset: StatefulSetRef {
                    namespace: args.namespace.clone(),
                    name: args.helper.statefulset.clone(),
                },
                pod: args.pod,
                helper: helper_spec(&args.namespace, &args.helper, "backup"),
                compression,
                encryption_key,
                stall_timeout: args.stall_timeout,
                wait_timeout: args.helper.wait_timeout,
                cancel,
            };
            tracing::info!(
                "backing up PVC {}/{} with statefulset {} stopped to {}",
                args.namespace,
                options.helper.pvc,
                options.statefulset,
                location.display()
            );
            backup_datadir_stopped(client, &location, &options).await
        }
    }
    // A backup that failed before it stored anything leaves no new empty directory.
    .inspect_err(|_| location.remove_if_created_and_empty())
    .map_err(interrupted)?;
    for warning in &manifest.warnings {
        tracing::warn!("{warning}");
    }
    if global.output == OutputFormat::Json {
        print_json(&manifest)?;
    } else {
        println!(
            "data-dir backup {} ({}) of pod {}/{}: {}, {} tar, {} stored as {} (sha256 {})",
            manifest.backup_id,
            manifest.source.mode,
            manifest.source.namespace,
            manifest.source.pod,
            count(manifest.files.len(), "file"),
            human_bytes(manifest.archive.tar_bytes),
            human_bytes(manifest.archive.stored_bytes),
            manifest.archive.key,
            manifest.archive.sha256
        );
        println!(
            "  cluster id {}, node id {}; {}{}",
            manifest.cluster_id.as_deref().unwrap_or("unknown"),
            opt(manifest.node_id),
            count(manifest.warnings.len(), "warning"),
            match &manifest.encryption {
                Some(e) => format!("; encrypted ({}, key id {})", e.cipher, e.key_id),
                None => String::new(),
            }
        );
    }
    Ok(Outcome::Success)
}

async fn restore(args: DatadirRestoreArgs, global: &Global) -> anyhow::Result<Outcome> {
    let location = global.open_location(&args.from, false)?;
    let given_key = load_key_file(&args.key)?;
    let chosen = open_datadir_backup(&location, &args.backup, given_key.as_ref()).await?;
    let (_read_lock, manifest) = lock_datadir_for_reading(
        &location,
        LockKind::Restore,
        &chosen.backup_id,
        given_key.as_ref(),
        &cancel_on_signal(),
    )
    .await?;
    // A missing or wrong key stops the restore here, before the cluster is touched.
    let encryption_key = key_for_datadir_backup(&manifest, given_key.as_ref())?;
    let client = default_client().await?;
    let options = DatadirRestoreOptions {
        statefulset: StatefulSetRef {
            namespace: args.namespace.clone(),
            name: args.helper.statefulset.clone(),
        },
        pod: args.pod,
        helper: helper_spec(&args.namespace, &args.helper, "restore"),
        cluster_id: args.cluster_id,
        rewrite_cluster_id: args.rewrite_cluster_id,
        force: args.force,
        encryption_key,
        stall_timeout: args.stall_timeout,
        wait_timeout: args.helper.wait_timeout,
        cancel: cancel_on_signal(),
    };
    tracing::info!(
        "restoring data-dir backup {} from {} into PVC {}/{}",
        manifest.backup_id,
        location.display(),
        args.namespace,
        options.helper.pvc
    );
    let report = restore_datadir(client, &location, &manifest, &options)
        .await
        .map_err(|err| match err {
            PhysicalError::K8s(K8sError::Interrupted) => anyhow::Error::from(
                kafkasnap::Error::Interrupted,
            )
            .context(
                "the restore was stopped; if it had started writing, the volume holds a partial \
                 restore: empty it and run the restore again",
            ),
            err => err.into(),
        })?;
    for warning in &report.warnings {
        tracing::warn!("{warning}");
    }
    if global.output == OutputFormat::Json {
        print_json(&report)?;
    } else {
        println!(
            "restored data-dir backup {} into PVC {}/{}: {}, {} tar; cluster id {}{}",
            report.backup_id,
            report.namespace,
            report.pvc,
            count(report.files, "file"),
            human_bytes(report.tar_bytes),
            report.cluster_id.as_deref().unwrap_or("unknown"),
            match report.rewritten_meta_properties {
                0 => String::new(),
                n => format!(" (rewritten in {n} meta.properties)"),
            }
        );
        println!("  next: {}  (manual)", options.statefulset.kubectl_scale(1));
    }
    Ok(Outcome::Success)
}

fn helper_spec(namespace: &str, args: &HelperPodArgs, purpose: &'static str) -> HelperPodSpec {
    HelperPodSpec {
        namespace: namespace.to_string(),
        pvc: args.pvc.clone(),
        image: args.helper_image.clone(),
        uid: args.helper_uid,
        read_only: purpose == "backup",
        lifetime: args.helper_lifetime,
        purpose,
    }
}

/// Ctrl-C / SIGTERM ends with the interrupted exit code (130) like every other command.
fn interrupted(err: PhysicalError) -> anyhow::Error {
    match err {
        PhysicalError::K8s(K8sError::Interrupted) => kafkasnap::Error::Interrupted.into(),
        err => err.into(),
    }
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
        "  {}, {}, {}, {}, {}, {}",
        count(report.topics.len(), "topic"),
        count(t.partitions, "partition"),
        count(t.segments, "segment"),
        count(t.batches, "batch"),
        count(t.records, "record"),
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
            "partition {}-{}: {}, {}, {}, offsets {}..{}, timestamps {} .. {}, codecs [{}]",
            p.topic,
            p.partition,
            count(p.segments, "segment"),
            count(p.batches, "batch"),
            count(p.records, "record"),
            opt(p.first_offset),
            opt(p.last_offset),
            opt(p.first_timestamp.map(human_time)),
            opt(p.last_timestamp.map(human_time)),
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
            notes.push(count(p.legacy_message_sets, "legacy message set"));
        }
        if !p.index_problems.is_empty() {
            notes.push(count(p.index_problems.len(), "index problem"));
        }
        if p.control_batches > 0 {
            notes.push(format!(
                "{} ({}, {})",
                count(p.control_batches, "control batch"),
                count(p.commit_markers, "commit"),
                count(p.abort_markers, "abort")
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
