//! Tests of shard ownership, part merging and run states.

use super::*;
use crate::archive::{
    ArchiveKind, CommittedOffset, Compression, PartitionBackup, SourceCluster, TopicBackup,
    FORMAT_VERSION,
};

fn partition(number: i32, records: u64) -> PartitionBackup {
    PartitionBackup {
        partition: number,
        start_offset: 0,
        end_offset: records as i64,
        high_watermark: records as i64,
        records,
        raw_bytes: records * 10,
        stored_bytes: records,
        first_timestamp: None,
        last_timestamp: None,
        segments: vec![],
    }
}

fn part(index: u32, count: u32, id: &str, partitions: &[i32]) -> ShardPart {
    let manifest = Manifest {
        format_version: FORMAT_VERSION,
        kind: ArchiveKind::Logical,
        backup_id: BackupId::parse(id).unwrap(),
        parent: None,
        started_at: format!("2026-11-25T10:00:0{index}Z"),
        finished_at: format!("2026-11-25T10:01:0{index}Z"),
        tool_version: "0.1.0".into(),
        source: SourceCluster {
            bootstrap_servers: "127.0.0.1:9092".into(),
            cluster_id: Some("c1".into()),
            brokers: vec![],
        },
        compression: Compression::Zstd,
        compression_level: 3,
        segment_bytes: 1 << 24,
        encryption: None,
        topics: vec![TopicBackup {
            name: "orders".into(),
            internal: false,
            partition_count: 3,
            replication_factor: 1,
            configs: vec![],
            partitions: partitions.iter().map(|&p| partition(p, 5)).collect(),
        }],
        groups: vec![GroupOffsets {
            group: "billing".into(),
            offsets: partitions
                .iter()
                .map(|&p| CommittedOffset {
                    topic: "orders".into(),
                    partition: p,
                    offset: 2,
                    metadata: None,
                })
                .collect(),
        }],
        totals: Totals::default(),
        warnings: vec![format!("note from {index}")],
        sharding: None,
        delta: None,
        chain_depth: 0,
    };
    ShardPart {
        format_version: PART_FORMAT_VERSION,
        run: "nightly".into(),
        index,
        count,
        manifest,
    }
}

#[test]
fn parts_merge_into_one_manifest_under_the_smallest_id() {
    let parts = [
        part(0, 2, "20261125T100002Z-bbbbbb", &[1]),
        part(1, 2, "20261125T100001Z-aaaaaa", &[0, 2]),
    ];
    let merged = merge(&parts).unwrap();
    assert_eq!(merged.backup_id.as_str(), "20261125T100001Z-aaaaaa");
    assert_eq!(merged.started_at, "2026-11-25T10:00:00Z");
    assert_eq!(merged.finished_at, "2026-11-25T10:01:01Z");
    let numbers: Vec<i32> = merged.topics[0]
        .partitions
        .iter()
        .map(|p| p.partition)
        .collect();
    assert_eq!(numbers, vec![0, 1, 2]);
    assert_eq!(merged.totals.records, 15);
    assert_eq!(merged.totals.partitions, 3);
    let offsets: Vec<i32> = merged.groups[0]
        .offsets
        .iter()
        .map(|o| o.partition)
        .collect();
    assert_eq!(offsets, vec![0, 1, 2]);
    assert_eq!(
        merged.warnings,
        vec!["shard 0/2: note from 0", "shard 1/2: note from 1"]
    );
    let sharding = merged.sharding.as_ref().unwrap();
    assert_eq!(sharding.parts[0].as_str(), "20261125T100002Z-bbbbbb");
    // Merging again (another shard finishing at the same time) gives the same bytes.
    assert_eq!(merge(&parts).unwrap().to_json(), merged.to_json());
}

#[test]
fn the_merged_manifest_is_of_the_version_the_merger_writes() {
    let mut parts = [
        part(0, 2, "20261125T100002Z-bbbbbb", &[1]),
        part(1, 2, "20261125T100001Z-aaaaaa", &[0, 2]),
    ];
    // A part's embedded manifest claiming an older (unsealed) version must not make the
    // published manifest one that readers accept without a seal.
    parts[0].manifest.format_version = 1;
    parts[1].manifest.format_version = 1;
    assert_eq!(merge(&parts).unwrap().format_version, FORMAT_VERSION);
}

#[test]
fn parts_that_do_not_fit_are_refused() {
    let missing = [
        part(0, 2, "20261125T100002Z-bbbbbb", &[1]),
        part(1, 2, "20261125T100001Z-aaaaaa", &[0]),
    ];
    let err = merge(&missing).unwrap_err().to_string();
    assert!(err.contains("partitions [0, 1]"), "{err}");

    let mut other_cluster = part(1, 2, "20261125T100001Z-aaaaaa", &[0, 2]);
    other_cluster.manifest.source.cluster_id = Some("c2".into());
    let err = merge(&[part(0, 2, "20261125T100002Z-bbbbbb", &[1]), other_cluster])
        .unwrap_err()
        .to_string();
    assert!(err.contains("cluster"), "{err}");

    let key = crate::archive::EncryptionKey::parse(&[0x99; 32]).unwrap();
    let mut encrypted = part(1, 2, "20261125T100001Z-aaaaaa", &[0, 2]);
    encrypted.manifest.encryption = Some(key.describe());
    let err = merge(&[
        part(0, 2, "20261125T100002Z-bbbbbb", &[1]),
        encrypted.clone(),
    ])
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("shard 0 did not encrypt its segments")
            && err.contains(&format!(
                "shard 1 encrypted its segments (aes-256-gcm, key id {})",
                key.id()
            )),
        "{err}"
    );
    let mut also_encrypted = part(0, 2, "20261125T100002Z-bbbbbb", &[1]);
    also_encrypted.manifest.encryption = Some(key.describe());
    let merged = merge(&[also_encrypted, encrypted]).unwrap();
    assert_eq!(merged.encryption, Some(key.describe()));

    let mut grown = part(1, 2, "20261125T100001Z-aaaaaa", &[0, 2]);
    grown.manifest.topics[0].partition_count = 4;
    let err = merge(&[part(0, 2, "20261125T100002Z-bbbbbb", &[1]), grown])
        .unwrap_err()
        .to_string();
    assert!(err.contains("had 3 partitions for shard 0 and 4"), "{err}");
}

#[test]
fn a_run_is_complete_published_or_waiting() {
    let spec = ShardSpec::new(1, 2, "nightly").unwrap();
    let entry = |id: &str, complete: bool, part: Option<(&str, u32, u32)>| BackupListing {
        id: BackupId::parse(id).unwrap(),
        complete,
        shard_part: part.map(|(run, i, n)| ShardSpec::new(i, n, run).unwrap()),
    };
    let id = |id: &str| BackupId::parse(id).unwrap();
    let own = id("20261125T100000Z-000002");
    let mut listing = vec![
        entry("20261124T100000Z-000001", true, None),
        entry("20261125T100000Z-000002", false, Some(("nightly", 1, 2))),
        entry("20261125T100001Z-000003", false, Some(("other", 0, 2))),
        entry("20261125T100002Z-000004", false, Some(("nightly", 0, 3))),
    ];
    assert_eq!(
        run_state(&spec, &own, &listing, None),
        RunState::Waiting { missing: vec![0] }
    );
    listing.push(entry(
        "20261125T100003Z-000005",
        false,
        Some(("nightly", 0, 2)),
    ));
    // A retried shard 1 stored a second part: the newest is used.
    let own = id("20261125T100004Z-000006");
    listing.push(entry(
        "20261125T100004Z-000006",
        false,
        Some(("nightly", 1, 2)),
    ));
    let parts = match run_state(&spec, &own, &listing, None) {
        RunState::Complete(parts) => parts,
        other => panic!("{other:?}"),
    };
    let names: Vec<&str> = parts.iter().map(BackupId::as_str).collect();
    assert_eq!(
        names,
        ["20261125T100003Z-000005", "20261125T100004Z-000006"]
    );
    listing[4].complete = true;
    let published_id = id("20261125T100003Z-000005");
    assert_eq!(
        newest_published(&spec, &listing),
        Some(published_id.clone())
    );
    let run = PublishedRun {
        id: &published_id,
        parts: &parts,
        finished_at: humantime::parse_rfc3339("2026-11-25T10:05:00Z").unwrap(),
    };
    assert_eq!(
        run_state(&spec, &own, &listing, Some(run)),
        RunState::Published {
            id: published_id.clone(),
            holds_own_part: true
        }
    );
    // A retry of shard 1 that lost the race: begun before the run was complete.
    let late = id("20261125T100400Z-000009");
    assert_eq!(
        run_state(&spec, &late, &listing, Some(run)),
        RunState::Published {
            id: published_id.clone(),
            holds_own_part: false
        }
    );

    // The name reused the next night: neither the published run's parts nor the older
    // part of shard 1 it did not use (nor the late retry) are this run's.
    listing.push(entry(late.as_str(), false, Some(("nightly", 1, 2))));
    let tonight = id("20261126T100000Z-000007");
    listing.push(entry(tonight.as_str(), false, Some(("nightly", 1, 2))));
    assert_eq!(
        run_state(&spec, &tonight, &listing, Some(run)),
        RunState::Waiting { missing: vec![0] },
        "not reported as the older run's backup"
    );
    listing.push(entry(
        "20261126T100001Z-000008",
        false,
        Some(("nightly", 0, 2)),
    ));
    assert_eq!(
        run_state(&spec, &tonight, &listing, Some(run)),
        RunState::Complete(vec![id("20261126T100001Z-000008"), tonight.clone()])
    );
}

#[test]
fn parts_round_trip_through_json() {
    let part = part(0, 2, "20261125T100002Z-bbbbbb", &[1]);
    assert_eq!(ShardPart::from_json(&part.to_json()).unwrap(), part);
}
