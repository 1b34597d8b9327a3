//! Checking a drill's restore against the backup: every restored partition by record count
//! and content hash (as `verify --against` does, through the topic map), and every restored
//! group's committed offsets against offsets worked out from the backup itself.
//!
//! A committed offset `O` on a source partition should be, on the restored (new) topic, the
//! number of the backup's records on that partition below `O`: restored in order from
//! offset 0, the record at source offset `O` (or the next one after it) lands there, and so
//! does the partition's end when there is none. This is computed from the archive, not taken
//! from the restore's own bookkeeping. Commits on partitions the backup holds nothing of are
//! not restored, so not expected.

use std::collections::{BTreeMap, BTreeSet};

use super::report::Difference;
use super::{DrillOptions, Opened};
use crate::archive::{CommittedOffset, EncryptionKey, Manifest, PartitionBackup};
use crate::kafka;
use crate::read::{key_for_backup, read_segment};
use crate::restore::{GroupNames, RestorePlan};
use crate::store::Location;
use crate::verify::{compare_with_cluster, PartitionComparison};
use crate::Error;

/// What the check covered, and what differed.
#[derive(Debug, Default)]
pub(super) struct Checked {
    pub(super) partitions: usize,
    /// Records of the partitions found exact.
    pub(super) records: u64,
    pub(super) group_offsets: usize,
    pub(super) differences: Vec<Difference>,
}

pub(super) async fn check_restore(
    opened: &Opened,
    plan: &RestorePlan,
    options: &DrillOptions,
    groups: &GroupNames,
) -> Result<Checked, Error> {
    let mut restored = opened.manifest.clone();
    restored
        .topics
        .retain(|t| plan.topics.iter().any(|p| p.source == t.name));
    let topic_map: Vec<(String, String)> = plan
        .topics
        .iter()
        .map(|t| (t.source.clone(), t.target.clone()))
        .collect();
    let key = opened.encryption_key.as_ref();
    let comparisons = compare_with_cluster(
        &opened.location,
        &restored,
        key,
        &options.client,
        &topic_map,
        &options.selection,
    )
    .await?;
    let mut checked = Checked::default();
    for comparison in &comparisons {
        if comparison.partition >= 0 {
            checked.partitions += 1;
        }
        match difference_of(comparison) {
            None => checked.records += comparison.backup_records,
            Some(difference) => checked.differences.push(difference),
        }
    }
    let key = key_for_backup(&restored, key)?;
    let expected =
        expected_offsets(&opened.location, &restored, key.as_ref(), plan, groups).await?;
    for (group, offsets) in expected {
        let partitions: Vec<(String, i32)> = offsets
            .iter()
            .map(|o| (o.topic.clone(), o.partition))
            .collect();
        let settings = options.client.clone();
        let named = group.clone();
        let actual = tokio::task::spawn_blocking(move || {
            kafka::committed_offsets(&settings, &named, &partitions)
        })
        .await
        .expect("offset reads do not panic")?;
        for want in &offsets {
            checked.group_offsets += 1;
            let got = actual
                .iter()
                .find(|a| a.topic == want.topic && a.partition == want.partition);
            if let Some(detail) = offset_difference(want, got) {
                checked.differences.push(Difference {
                    subject: format!("group {group} on {}/{}", want.topic, want.partition),
                    detail,
                });
            }
        }
    }
    Ok(checked)
}

/// The difference a partition's (or, partition -1, a topic's) comparison found, if any.
fn difference_of(comparison: &PartitionComparison) -> Option<Difference> {
    if comparison.matches {
        return None;
    }
    let subject = match comparison.partition {
        -1 => comparison.topic.clone(),
        partition => format!("{}/{partition}", comparison.topic),
    };
    let detail = comparison.note.clone().unwrap_or_else(|| {
        format!(
            "the backup holds {} records, the scratch cluster {}: contents differ",
            comparison.backup_records,
            comparison
                .live_records
                .map_or("none".into(), |n| n.to_string())
        )
    });
    Some(Difference { subject, detail })
}

/// What is wrong with the committed offset `got` where `want` was expected, if anything.
fn offset_difference(want: &CommittedOffset, got: Option<&CommittedOffset>) -> Option<String> {
    match got {
        None => Some(format!(
            "no committed offset; expected {} (from the backup)",
            want.offset
        )),
        Some(got) if got.offset != want.offset => Some(format!(
            "committed offset {}, expected {} (from the backup)",
            got.offset, want.offset
        )),
        Some(got) if got.metadata != want.metadata => Some(format!(
            "commit metadata {:?}, expected {:?}",
            got.metadata, want.metadata
        )),
        Some(_) => None,
    }
}

/// Each restored group (target name) with the offsets it should have committed on the
/// restored (target) partitions, worked out from the backup (see the module docs).
async fn expected_offsets(
    location: &Location,
    manifest: &Manifest,
    key: Option<&EncryptionKey>,
    plan: &RestorePlan,
    groups: &GroupNames,
) -> Result<Vec<(String, Vec<CommittedOffset>)>, Error> {
    let target_of = |topic: &str| {
        plan.topics
            .iter()
            .find(|t| t.source == topic)
            .map(|t| t.target.clone())
    };
    let restored_groups: Vec<_> = manifest
        .groups
        .iter()
        .filter(|g| plan.groups.contains(&g.group))
        .collect();
    let mut wanted: BTreeMap<(String, i32), BTreeSet<i64>> = BTreeMap::new();
    for group in &restored_groups {
        for committed in group
            .offsets
            .iter()
            .filter(|o| target_of(&o.topic).is_some())
        {
            wanted
                .entry((committed.topic.clone(), committed.partition))
                .or_default()
                .insert(committed.offset);
        }
    }
    let mut below: BTreeMap<(String, i32, i64), i64> = BTreeMap::new();
    for ((topic, partition), offsets) in wanted {
        // A partition the backup holds nothing of (in a data directory: one that lives on
        // another broker) is not restored, and neither are commits on it.
        let Some(backup) = manifest
            .topic(&topic)
            .and_then(|t| t.partitions.iter().find(|p| p.partition == partition))
        else {
            continue;
        };
        let offsets: Vec<i64> = offsets.into_iter().collect();
        let counts = records_below(location, backup, key, &offsets).await?;
        for (offset, count) in offsets.into_iter().zip(counts) {
            below.insert((topic.clone(), partition, offset), count);
        }
    }
    let mut expected = Vec::new();
    for group in restored_groups {
        let offsets: Vec<CommittedOffset> = group
            .offsets
            .iter()
            .filter_map(|committed| {
                let target = target_of(&committed.topic)?;
                let key = (
                    committed.topic.clone(),
                    committed.partition,
                    committed.offset,
                );
                Some(CommittedOffset {
                    topic: target,
                    partition: committed.partition,
                    offset: *below.get(&key)?,
                    metadata: committed.metadata.clone(),
                })
            })
            .collect();
        if !offsets.is_empty() {
            expected.push((groups.target(&group.group), offsets));
        }
    }
    Ok(expected)
}

/// For each of `offsets` (ascending), how many of the partition's backed-up records lie
/// below it. Segments wholly below the next offset are counted from the manifest; the
/// others are read.
async fn records_below(
    location: &Location,
    partition: &PartitionBackup,
    key: Option<&EncryptionKey>,
    offsets: &[i64],
) -> Result<Vec<i64>, Error> {
    let mut counts = Vec::with_capacity(offsets.len());
    let mut seen: i64 = 0;
    for segment in &partition.segments {
        let Some(&next) = offsets.get(counts.len()) else {
            break;
        };
        if segment.first_offset >= partition.start_offset && segment.last_offset < next {
            seen += segment.records as i64;
            continue;
        }
        let records = read_segment(location, segment, key).await?;
        for record in records.iter() {
            let record = record.map_err(|source| Error::Archive {
                key: segment.key.clone(),
                source,
            })?;
            if !partition.holds(record.offset) {
                continue;
            }
            while offsets
                .get(counts.len())
                .is_some_and(|&o| o <= record.offset)
            {
                counts.push(seen);
            }
            seen += 1;
        }
    }
    counts.resize(offsets.len(), seen);
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn committed(offset: i64, metadata: Option<&str>) -> CommittedOffset {
        CommittedOffset {
            topic: "p.t".into(),
            partition: 0,
            offset,
            metadata: metadata.map(String::from),
        }
    }

    fn comparison(partition: i32, live: Option<u64>, matches: bool) -> PartitionComparison {
        PartitionComparison {
            topic: "p.t".into(),
            partition,
            backup_records: 5,
            live_records: live,
            backup_hash: "h1".into(),
            live_hash: live.map(|_| "h2".into()),
            matches,
            note: None,
        }
    }

    #[test]
    fn a_partition_that_does_not_match_is_a_difference() {
        assert_eq!(difference_of(&comparison(0, Some(5), true)), None);
        assert_eq!(
            difference_of(&comparison(1, Some(4), false)),
            Some(Difference {
                subject: "p.t/1".into(),
                detail: "the backup holds 5 records, the scratch cluster 4: contents differ".into(),
            })
        );
        let missing = difference_of(&comparison(2, None, false)).unwrap();
        assert!(
            missing.detail.contains("the scratch cluster none"),
            "{missing:?}"
        );
        let mut noted = comparison(-1, None, false);
        noted.note = Some("topic missing".into());
        assert_eq!(
            difference_of(&noted),
            Some(Difference {
                subject: "p.t".into(),
                detail: "topic missing".into(),
            })
        );
    }

    /// Stores a segment of records at `offsets` and returns its entry.
    async fn stored_segment(location: &Location, offsets: &[i64]) -> crate::archive::SegmentRef {
        let mut builder = crate::archive::SegmentBuilder::new(4096);
        for &offset in offsets {
            builder.push(
                offset,
                1000 + offset,
                crate::archive::TimestampType::CreateTime,
                None,
                Some(offset.to_string().as_bytes()),
                std::iter::empty(),
            );
        }
        let stored = builder
            .seal()
            .unwrap()
            .compress(crate::archive::Compression::Zstd, 1)
            .unwrap();
        let key = format!("segments/t/0/{:020}.kseg.zst", offsets[0]);
        let entry = stored.to_ref(key.clone());
        location.put(&key, stored.bytes).await.unwrap();
        entry
    }

    #[tokio::test]
    async fn records_below_counts_from_the_start_offset_across_a_gap() {
        let location = Location::open("memory://", false).unwrap();
        // The first segment begins below the start offset (records 8 and 9 are not in the
        // backup); offsets 13..=19 are a gap in the log; the second segment lies wholly below
        // the largest committed offset and is counted from the manifest.
        let first = stored_segment(&location, &[8, 9, 10, 11, 12]).await;
        let second = stored_segment(&location, &[20, 21, 22]).await;
        let third = stored_segment(&location, &[30, 31]).await;
        let partition = PartitionBackup {
            partition: 0,
            start_offset: 10,
            end_offset: 32,
            high_watermark: 32,
            records: 8,
            raw_bytes: 0,
            stored_bytes: 0,
            first_timestamp: None,
            last_timestamp: None,
            segments: vec![first, second, third],
        };
        let offsets = [0, 10, 11, 13, 19, 20, 22, 25, 31, 40];
        let counts = records_below(&location, &partition, None, &offsets)
            .await
            .unwrap();
        // Below 10 nothing; the gap 13..=20 maps to 3 (records 10, 11, 12 below it); past
        // the end, all 8 records.
        assert_eq!(counts, [0, 0, 1, 3, 3, 3, 5, 6, 7, 8]);
    }

    #[test]
    fn offsets_and_metadata_must_both_match() {
        let want = committed(7, Some("m"));
        assert_eq!(
            offset_difference(&want, Some(&committed(7, Some("m")))),
            None
        );
        assert!(offset_difference(&want, Some(&committed(6, Some("m"))))
            .unwrap()
            .contains("committed offset 6, expected 7"));
        assert!(offset_difference(&want, Some(&committed(7, None)))
            .unwrap()
            .contains("metadata"));
        assert!(offset_difference(&want, None)
            .unwrap()
            .starts_with("no committed offset"));
    }
}
