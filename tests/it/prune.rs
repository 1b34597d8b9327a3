//! `kafkasnap prune` on a local location built through the library (no broker needed):
//! retention rules, a parent chain, the grace period for unpublished backups, dry runs,
//! freed bytes, and the refusals (no rule, an unreadable manifest).

use std::path::Path;
use std::time::{Duration, SystemTime};

use kafkasnap::archive::{
    ArchiveKind, BackupId, Compression, HeaderRef, Manifest, PartitionBackup, SegmentBuilder,
    SourceCluster, TimestampType, TopicBackup, Totals, FORMAT_VERSION,
};
use kafkasnap::progress::human_bytes;
use kafkasnap::store::{segment_key, Location};

use crate::fixture::path_str;
use crate::harness::{files_under, kafkasnap, kafkasnap_ok, stderr_of};

const TOPIC: &str = "orders";

pub(crate) fn utc(text: &str) -> SystemTime {
    humantime::parse_rfc3339(text).unwrap()
}

/// Writes a backup that started at `started`: 20 new records of partition 0 in one segment
/// under its own prefix, continuing `parent` (an incremental backup: its manifest also lists
/// the parent's segments). With `publish`, the manifest goes last, as `backup` does it.
pub(crate) async fn write_backup(
    location: &Location,
    started: SystemTime,
    parent: Option<&Manifest>,
    publish: bool,
) -> Manifest {
    let id = BackupId::new(started);
    let first = parent.map_or(0, |p| p.topics[0].partitions[0].end_offset);
    let mut builder = SegmentBuilder::new(4096);
    for offset in first..first + 20 {
        let value = format!("record {offset} of {id}");
        builder.push(
            offset,
            1_700_000_000_000 + offset,
            TimestampType::CreateTime,
            Some(b"key".as_slice()),
            Some(value.as_bytes()),
            std::iter::empty::<HeaderRef>(),
        );
    }
    let stored = builder
        .seal()
        .unwrap()
        .compress(Compression::Zstd, 3)
        .unwrap();
    let key = segment_key(&id, TOPIC, 0, first, Compression::Zstd);
    location.put(&key, stored.bytes.clone()).await.unwrap();
    let mut segments = parent
        .map(|p| p.topics[0].partitions[0].segments.clone())
        .unwrap_or_default();
    segments.push(stored.to_ref(key));
    let partition = PartitionBackup {
        partition: 0,
        start_offset: 0,
        end_offset: first + 20,
        high_watermark: first + 20,
        records: segments.iter().map(|s| s.records).sum(),
        raw_bytes: segments.iter().map(|s| s.raw_bytes).sum(),
        stored_bytes: segments.iter().map(|s| s.stored_bytes).sum(),
        first_timestamp: segments[0].first_timestamp,
        last_timestamp: segments[segments.len() - 1].last_timestamp,
        segments,
    };
    let topics = vec![TopicBackup {
        name: TOPIC.into(),
        internal: false,
        partition_count: 1,
        replication_factor: 1,
        configs: vec![],
        partitions: vec![partition],
    }];
    let stamp = humantime::format_rfc3339_millis(started).to_string();
    let manifest = Manifest {
        format_version: FORMAT_VERSION,
        kind: ArchiveKind::Logical,
        backup_id: id.clone(),
        parent: parent.map(|p| p.backup_id.clone()),
        started_at: stamp.clone(),
        finished_at: stamp,
        tool_version: "prune-test".into(),
        source: SourceCluster {
            bootstrap_servers: "127.0.0.1:9092".into(),
            cluster_id: None,
            brokers: vec![],
        },
        compression: Compression::Zstd,
        compression_level: 3,
        segment_bytes: 1 << 24,
        encryption: None,
        totals: Totals::of(&topics),
        topics,
        groups: vec![],
        warnings: vec![],
        sharding: None,
        delta: None,
        chain_depth: 0,
    };
    if publish {
        location
            .publish_manifest(&id, manifest.to_json())
            .await
            .unwrap();
    }
    manifest
}

/// The backup directories at a local location, sorted.
pub(crate) fn backup_dirs(root: &Path) -> Vec<String> {
    let mut ids: Vec<String> = match std::fs::read_dir(root.join("backups")) {
        Ok(entries) => entries
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    };
    ids.sort();
    ids
}

/// Total size of the files below `dir`.
fn bytes_below(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            if path.is_dir() {
                bytes_below(&path)
            } else {
                path.metadata().unwrap().len()
            }
        })
        .sum()
}

/// The `backup_id` of each entry of a JSON list (`kept`, `removed`, `ls` output).
pub(crate) fn ids_of(entries: &serde_json::Value) -> Vec<String> {
    entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["backup_id"].as_str().unwrap().to_string())
        .collect()
}

fn sorted(ids: &[&BackupId]) -> Vec<String> {
    let mut ids: Vec<String> = ids.iter().map(|id| id.to_string()).collect();
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread")]
async fn prune_keeps_by_rule_parent_and_grace_and_removes_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let url = path_str(root);
    let location = Location::open(url, true).unwrap();

    // 2025-02-24 is a Monday (ISO week 9); 2025-03-03..06 are Monday..Thursday of week 10.
    let f1 = write_backup(&location, utc("2025-02-24T02:00:00Z"), None, true).await;
    let x_old = write_backup(&location, utc("2025-03-01T02:00:00Z"), None, false).await;
    backdate(
        root,
        "backups",
        &x_old.backup_id,
        utc("2025-03-01T02:00:00Z"),
    );
    let f2 = write_backup(&location, utc("2025-03-03T02:00:00Z"), None, true).await;
    let f3 = write_backup(&location, utc("2025-03-04T02:00:00Z"), None, true).await;
    // A chain: full P <- I1 <- I2, each child listing its parents' segments.
    let p = write_backup(&location, utc("2025-03-05T02:00:00Z"), None, true).await;
    let i1 = write_backup(&location, utc("2025-03-05T14:00:00Z"), Some(&p), true).await;
    let i2 = write_backup(&location, utc("2025-03-06T02:00:00Z"), Some(&i1), true).await;
    let g = write_backup(&location, utc("2025-03-06T09:00:00Z"), None, true).await;
    // Still running: started an hour ago, no manifest yet.
    let running_since = SystemTime::now() - Duration::from_secs(3_600);
    let x_new = write_backup(&location, running_since, None, false).await;
    backdate(root, "backups", &x_new.backup_id, running_since);

    let all = sorted(&[
        &f1.backup_id,
        &x_old.backup_id,
        &f2.backup_id,
        &f3.backup_id,
        &p.backup_id,
        &i1.backup_id,
        &i2.backup_id,
        &g.backup_id,
        &x_new.backup_id,
    ]);
    assert_eq!(backup_dirs(root), all);
    let removed = [
        &i2.backup_id,
        &f3.backup_id,
        &f2.backup_id,
        &x_old.backup_id,
    ];
    let freed: u64 = removed
        .iter()
        .map(|id| bytes_below(&root.join("backups").join(id.as_str())))
        .sum();
    let policy = [
        "--keep-last",
        "1",
        "--keep-daily",
        "2",
        "--keep-weekly",
        "2",
    ];

    // Dry run, JSON: the full verdict, and nothing deleted.
    let mut args = vec!["prune", url, "--dry-run", "--output", "json"];
    args.extend(policy);
    let dry: serde_json::Value = serde_json::from_str(&kafkasnap_ok(&args, &[])).unwrap();
    assert_eq!(dry["dry_run"], true);
    let kept: Vec<(String, bool, Vec<String>)> = dry["kept"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["backup_id"].as_str().unwrap().to_string(),
                e["complete"].as_bool().unwrap(),
                e["reasons"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r.as_str().unwrap().to_string())
                    .collect(),
            )
        })
        .collect();
    let reasons = |list: &[&str]| list.iter().map(|r| r.to_string()).collect::<Vec<_>>();
    assert_eq!(
        kept,
        vec![
            (
                x_new.backup_id.to_string(),
                false,
                reasons(&[
                    "unpublished, younger than the 1day grace period (may still be running)"
                ])
            ),
            (
                g.backup_id.to_string(),
                true,
                reasons(&["last 1", "daily 2025-03-06", "weekly 2025-W10"])
            ),
            (
                i1.backup_id.to_string(),
                true,
                reasons(&["daily 2025-03-05"])
            ),
            (
                p.backup_id.to_string(),
                true,
                vec![format!("segments used by {}", i1.backup_id)]
            ),
            (
                f1.backup_id.to_string(),
                true,
                reasons(&["weekly 2025-W09"])
            ),
        ]
    );
    assert_eq!(
        ids_of(&dry["removed"]),
        removed.iter().map(|id| id.to_string()).collect::<Vec<_>>()
    );
    assert_eq!(dry["removed"][0]["reasons"][0], "no keep rule matches");
    assert_eq!(
        dry["removed"][3]["reasons"][0],
        "unpublished for longer than the 1day grace period (crashed or interrupted)"
    );
    assert_eq!(dry["removed"][3]["complete"], false);
    // I2 = manifest + its own segment; the others one segment (+ manifest when published).
    assert_eq!(dry["removed"][0]["objects"], 2);
    assert_eq!(dry["removed"][3]["objects"], 1);
    assert_eq!(dry["removed_objects"], 7);
    assert_eq!(dry["freed_bytes"], freed);
    assert_eq!(backup_dirs(root), all, "a dry run deletes nothing");

    // A shorter grace period (and the rule from the environment): the running one would go too.
    let shorter = kafkasnap_ok(
        &[
            "prune",
            url,
            "--dry-run",
            "--grace",
            "30m",
            "--output",
            "json",
        ],
        &[("KAFKASNAP_KEEP_LAST", "1".to_string())],
    );
    let shorter: serde_json::Value = serde_json::from_str(&shorter).unwrap();
    assert_eq!(shorter["policy"]["keep_last"], 1);
    assert!(ids_of(&shorter["removed"]).contains(&x_new.backup_id.to_string()));
    assert_eq!(backup_dirs(root), all);

    // For real, text output.
    let mut args = vec!["prune", url];
    args.extend(policy);
    let out = kafkasnap_ok(&args, &[]);
    let summary = format!(
        "kept 5 backups; removed 4 backups (7 objects), freed {} ({freed} bytes)",
        human_bytes(freed)
    );
    assert!(out.contains(&summary), "{out}");
    assert!(
        out.contains(&format!(
            "{}  complete    segments used by {}",
            p.backup_id, i1.backup_id
        )),
        "{out}"
    );
    let remaining = sorted(&[
        &f1.backup_id,
        &p.backup_id,
        &i1.backup_id,
        &g.backup_id,
        &x_new.backup_id,
    ]);
    assert_eq!(backup_dirs(root), remaining);

    // `ls` agrees, and what was kept is intact: I1 still reads its parent's segments.
    let ls: serde_json::Value =
        serde_json::from_str(&kafkasnap_ok(&["ls", url, "--output", "json"], &[])).unwrap();
    let mut listed = ids_of(&ls);
    listed.sort();
    assert_eq!(listed, remaining);
    let incomplete: Vec<String> = ls
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["complete"] == false)
        .map(|e| e["backup_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(incomplete, vec![x_new.backup_id.to_string()]);
    for kept in [&i1.backup_id, &g.backup_id, &f1.backup_id] {
        let verified = kafkasnap_ok(&["verify", url, "--backup", kept.as_str()], &[]);
        assert!(verified.contains("OK"), "{verified}");
    }

    // Again: nothing left to remove.
    let mut args = vec!["prune", url];
    args.extend(policy);
    let again = kafkasnap_ok(&args, &[]);
    assert!(
        again.contains("kept 5 backups; removed 0 backups (0 objects), freed 0 B (0 bytes)"),
        "{again}"
    );
    assert_eq!(backup_dirs(root), remaining);

    // A prune interrupted after unpublishing F1 (manifest gone, data left) is finished by
    // the next one: the leftover is unpublished and past the grace period (its objects were
    // written when F1 ran).
    backdate(root, "backups", &f1.backup_id, utc("2025-02-24T02:00:00Z"));
    std::fs::remove_file(
        root.join("backups")
            .join(f1.backup_id.as_str())
            .join("manifest.json"),
    )
    .unwrap();
    let mut args = vec!["prune", url];
    args.extend(policy);
    let collected = kafkasnap_ok(&args, &[]);
    assert!(
        collected.contains("removed 1 backup (1 object)"),
        "{collected}"
    );
    assert!(!backup_dirs(root).contains(&f1.backup_id.to_string()));
}

#[tokio::test(flavor = "multi_thread")]
async fn prune_refuses_without_a_rule_or_with_an_unreadable_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let url = path_str(root);
    let location = Location::open(url, true).unwrap();
    let old = write_backup(&location, utc("2025-03-03T02:00:00Z"), None, true).await;
    let new = write_backup(&location, utc("2025-03-04T02:00:00Z"), None, true).await;
    let before = backup_dirs(root);

    for args in [
        vec!["prune", url],
        vec!["prune", url, "--keep-last", "0"],
        vec!["prune", url, "--keep-daily", "0", "--dry-run"],
    ] {
        let output = kafkasnap(&args, &[]);
        let stderr = stderr_of(&output);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains("no retention rule") && stderr.contains("--keep-last N"),
            "{args:?}: {stderr}"
        );
        assert_eq!(backup_dirs(root), before);
    }

    // A published manifest that cannot be read (damaged, or from a newer kafkasnap) hides
    // what its backup builds on: prune stops before deleting anything.
    let manifest = root
        .join("backups")
        .join(new.backup_id.as_str())
        .join("manifest.json");
    let mut json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&manifest).unwrap()).unwrap();
    json["format_version"] = 99.into();
    std::fs::write(&manifest, json.to_string()).unwrap();
    let output = kafkasnap(&["prune", url, "--keep-last", "1"], &[]);
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "cannot read the manifest backups/{}/manifest.json",
            new.backup_id
        )) && stderr.contains("nothing was deleted")
            && stderr.contains("format_version 99"),
        "{stderr}"
    );
    assert_eq!(backup_dirs(root), before);
    assert!(root
        .join("backups")
        .join(old.backup_id.as_str())
        .join("manifest.json")
        .exists());
}

/// A follower's checkpoints: `--keep-within` keeps the newest few by the rule and their chain
/// as parents, from the JSON summary to the disk; a duration that does not parse, or a 0s
/// window alone, is refused (exit 2) before anything at the location is touched.
#[tokio::test(flavor = "multi_thread")]
async fn prune_keep_within_keeps_the_newest_checkpoints_and_their_chain() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let url = path_str(root);
    let location = Location::open(url, true).unwrap();
    let nightly = write_backup(&location, utc("2025-03-05T01:15:00Z"), None, true).await;
    let mut chain = vec![write_backup(&location, utc("2025-03-05T10:00:00Z"), None, true).await];
    for minute in 1..=4 {
        let at = utc("2025-03-05T10:00:00Z") + Duration::from_secs(60 * minute);
        let checkpoint = write_backup(&location, at, chain.last(), true).await;
        chain.push(checkpoint);
    }
    let files_before = files_under(root);

    for (args, error) in [
        (vec!["--keep-within", "90 minutes please"], "--keep-within"),
        (vec!["--keep-within", "24x"], "--keep-within"),
        (vec!["--keep-within", "0s"], "no retention rule"),
    ] {
        let mut command = vec!["prune", url, "--grace", "0s"];
        command.extend(args);
        let output = kafkasnap(&command, &[]);
        let stderr = stderr_of(&output);
        assert_eq!(output.status.code(), Some(2), "{command:?}: {stderr}");
        assert!(stderr.contains(error), "{command:?}: {stderr}");
        assert_eq!(files_under(root), files_before, "{command:?}");
    }

    let args = ["prune", url, "--keep-within", "150s", "--output", "json"];
    let pruned: serde_json::Value = serde_json::from_str(&kafkasnap_ok(&args, &[])).unwrap();
    assert_eq!(pruned["policy"]["keep_within_seconds"], 150);
    let reasons_of = |id: &BackupId| -> Vec<String> {
        let entry = pruned["kept"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["backup_id"] == id.as_str())
            .unwrap_or_else(|| panic!("{id} not kept: {pruned}"));
        serde_json::from_value(entry["reasons"].clone()).unwrap()
    };
    let ids: Vec<&BackupId> = chain.iter().map(|m| &m.backup_id).collect();
    let within = "within 2m 30s of the newest".to_string();
    let used_by = |n: usize| format!("segments used by {}", ids[n]);
    // 10:04, 10:03 and 10:02 (120 s before the newest) by the rule; 10:01 (180 s before)
    // and the full backup at 10:00 for the segments the newer ones list (an incremental
    // manifest lists its parents' segments, and needs no more of them than that).
    assert_eq!(reasons_of(ids[4]), vec![within.clone()]);
    for (n, id) in ids.iter().enumerate().take(4) {
        let reasons = reasons_of(id);
        assert!(reasons.contains(&used_by(n + 1)), "{n}: {reasons:?}");
        let by_rule = reasons.iter().filter(|r| **r == within).count();
        assert_eq!(by_rule, usize::from(n >= 2), "{n}: {reasons:?}");
    }
    assert_eq!(ids_of(&pruned["removed"]), [nightly.backup_id.to_string()]);
    assert_eq!(pruned["removed"][0]["reasons"][0], "no keep rule matches");
    let mut remaining = ids.clone();
    remaining.reverse();
    assert_eq!(backup_dirs(root), sorted(&remaining));
    let verified = kafkasnap_ok(&["verify", url], &[]);
    assert!(verified.contains("OK"), "{verified}");
}

#[tokio::test(flavor = "multi_thread")]
async fn prune_deletes_through_s3() {
    let s3 = crate::harness::S3Server::start("bucket");
    // s3s-fs serves the bucket from a directory: write the backups there directly.
    let bucket_dir = s3.root.path().join("bucket").join("kafka");
    let local = Location::open(path_str(&bucket_dir), true).unwrap();
    let old = write_backup(&local, utc("2025-03-03T02:00:00Z"), None, true).await;
    let crashed = write_backup(&local, utc("2025-03-03T03:00:00Z"), None, false).await;
    backdate(
        &bucket_dir,
        "backups",
        &crashed.backup_id,
        utc("2025-03-03T03:00:00Z"),
    );
    let parent = write_backup(&local, utc("2025-03-04T02:00:00Z"), None, true).await;
    let newest = write_backup(&local, utc("2025-03-05T02:00:00Z"), Some(&parent), true).await;
    let env = s3.env();

    let out = kafkasnap_ok(&["prune", "s3://bucket/kafka", "--keep-last", "1"], &env);
    assert!(
        out.contains("kept 2 backups; removed 2 backups (3 objects)"),
        "{out}"
    );
    let ls: serde_json::Value = serde_json::from_str(&kafkasnap_ok(
        &["ls", "s3://bucket/kafka", "--output", "json"],
        &env,
    ))
    .unwrap();
    assert_eq!(
        ids_of(&ls),
        vec![newest.backup_id.to_string(), parent.backup_id.to_string()]
    );
    for gone in [&old.backup_id, &crashed.backup_id] {
        let dir = bucket_dir.join("backups").join(gone.as_str());
        assert!(
            !dir.exists() || bytes_below(&dir) == 0,
            "{gone} left objects"
        );
    }
    let verified = kafkasnap_ok(&["verify", "s3://bucket/kafka"], &env);
    assert!(verified.contains("OK"), "{verified}");
}

/// Sets the last-modified time of every object below `root/<dir>/<id>` (`dir` is `backups`
/// or `datadir`) to `to`: prune ages an unpublished backup by when its objects were written.
pub(crate) fn backdate(root: &Path, dir: &str, id: &BackupId, to: SystemTime) {
    for file in files_under(&root.join(dir).join(id.as_str())) {
        let handle = std::fs::File::options().write(true).open(&file).unwrap();
        handle.set_modified(to).unwrap();
    }
}

/// Writes the objects of a data-dir backup that started at `started` (the tarball, and with
/// `publish` its manifest) directly: prune reads only the listing of `datadir/`.
fn write_datadir_backup(root: &Path, started: SystemTime, publish: bool) -> BackupId {
    let id = BackupId::new(started);
    let dir = root.join("datadir").join(id.as_str());
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("data.tar.zst"), vec![7u8; 1000]).unwrap();
    if publish {
        std::fs::write(dir.join("manifest.json"), b"{}").unwrap();
    }
    id
}

#[tokio::test(flavor = "multi_thread")]
async fn prune_applies_the_policy_to_datadir_backups_on_their_own() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let location = Location::open(path_str(root), true).unwrap();
    let logical = write_backup(&location, utc("2025-03-01T02:00:00Z"), None, true).await;
    let crashed = write_datadir_backup(root, utc("2025-03-02T02:15:00Z"), false);
    backdate(root, "datadir", &crashed, utc("2025-03-02T02:15:00Z"));
    let oldest = write_datadir_backup(root, utc("2025-03-03T02:15:00Z"), true);
    let middle = write_datadir_backup(root, utc("2025-03-04T02:15:00Z"), true);
    let newest = write_datadir_backup(root, utc("2025-03-05T02:15:00Z"), true);
    let datadir_dirs = || {
        let mut ids: Vec<String> = std::fs::read_dir(root.join("datadir"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        ids.sort();
        ids
    };
    let before = datadir_dirs();

    let args = [
        "prune",
        path_str(root),
        "--keep-last",
        "2",
        "--output",
        "json",
    ];
    let mut dry_run = args.to_vec();
    dry_run.push("--dry-run");
    let planned: serde_json::Value = serde_json::from_str(&kafkasnap_ok(&dry_run, &[])).unwrap();
    assert_eq!(datadir_dirs(), before, "a dry run deletes nothing");
    let pruned: serde_json::Value = serde_json::from_str(&kafkasnap_ok(&args, &[])).unwrap();
    for summary in [&planned, &pruned] {
        // Two rules' worth of each kind: the one logical backup stays.
        assert_eq!(
            ids_of(&summary["kept"]),
            vec![logical.backup_id.to_string()]
        );
        assert_eq!(
            ids_of(&summary["datadir_kept"]),
            vec![newest.to_string(), middle.to_string()]
        );
        assert_eq!(
            ids_of(&summary["datadir_removed"]),
            vec![oldest.to_string(), crashed.to_string()]
        );
        assert_eq!(summary["freed_bytes"], 2 * 1000 + 2, "{summary}");
    }
    assert_eq!(datadir_dirs(), sorted(&[&middle, &newest]));
    assert_eq!(backup_dirs(root), vec![logical.backup_id.to_string()]);
}
