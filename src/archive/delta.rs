//! Delta manifests (format version 3): a checkpoint that lists only the segments it stored
//! itself and, per partition, how many of its parent's segments come before them. Folding
//! a delta onto its parent's complete segment lists gives the complete manifest every reader
//! works with; writing one from a complete manifest is the reverse (docs/FORMAT.md, section 6,
//! "Delta manifests").

use serde::{Deserialize, Serialize};

use super::{ArchiveError, Manifest, SegmentRef, Totals};

/// The manifest format version of a delta manifest (a version 2 reader must refuse it: it
/// would take the listed segments for the whole backup).
pub const DELTA_FORMAT_VERSION: u64 = 3;

/// The longest chain of delta manifests a reader folds (a writer writes a complete listing
/// long before: `backup --follow --full-every`, at most this).
pub const MAX_DELTA_DEPTH: u64 = 1000;

/// What a delta manifest adds to its partitions' own `segments`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeltaListing {
    /// How many delta manifests lead from the nearest complete listing to this one, this one
    /// included (1: the parent lists all its segments).
    pub depth: u64,
    /// Per partition that keeps any of its parent's segments: how many, taken from the end of
    /// the parent's (folded) list. A partition not named here keeps none.
    pub carried: Vec<CarriedSegments>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CarriedSegments {
    pub topic: String,
    pub partition: i32,
    pub segments: u64,
}

impl Manifest {
    /// This complete manifest written as a delta of depth `depth` over its parent: each
    /// partition keeps the segments `is_own` says this backup stored, and counts the ones
    /// before them (carried from the parent). Totals and every per-partition figure stay
    /// those of the whole backup. `None` when a carried segment follows an own one (never
    /// so for what the backup assembles: carried segments come first).
    pub(crate) fn into_delta(
        mut self,
        depth: u64,
        is_own: impl Fn(&SegmentRef) -> bool,
    ) -> Option<Manifest> {
        let mut carried = Vec::new();
        for topic in &mut self.topics {
            for partition in &mut topic.partitions {
                let kept = partition.segments.iter().take_while(|s| !is_own(s)).count();
                if partition.segments[kept..].iter().any(|s| !is_own(s)) {
                    return None;
                }
                partition.segments.drain(..kept);
                if kept > 0 {
                    carried.push(CarriedSegments {
                        topic: topic.name.clone(),
                        partition: partition.partition,
                        segments: kept as u64,
                    });
                }
            }
        }
        self.format_version = DELTA_FORMAT_VERSION;
        self.chain_depth = depth;
        self.delta = Some(DeltaListing { depth, carried });
        Some(self)
    }
}

/// `delta` with its parent's segments put back: `parent` is the parent's complete manifest
/// (itself folded). The result lists every segment, has no `delta`, and keeps the delta's
/// depth as `chain_depth`. Refused when the delta names another parent, carries more
/// segments than the parent has, or its depth does not follow the parent's.
pub fn fold_delta(parent: &Manifest, mut delta: Manifest) -> Result<Manifest, ArchiveError> {
    let refuse = |problem: String| ArchiveError::Delta {
        backup_id: delta.backup_id.to_string(),
        problem,
    };
    let Some(listing) = delta.delta.take() else {
        return Ok(delta);
    };
    if delta.parent.as_ref() != Some(&parent.backup_id) {
        return Err(refuse(format!(
            "it is folded onto {}, which is not its parent",
            parent.backup_id
        )));
    }
    let parent_depth = parent.chain_depth;
    if listing.depth != parent_depth + 1 {
        return Err(refuse(format!(
            "its depth is {}, but its parent's is {parent_depth}",
            listing.depth
        )));
    }
    for entry in &listing.carried {
        let available = parent
            .topic(&entry.topic)
            .and_then(|t| t.partitions.iter().find(|p| p.partition == entry.partition))
            .map_or(0, |p| p.segments.len());
        let wanted = entry.segments as usize;
        let Some(partition) = delta
            .topics
            .iter_mut()
            .find(|t| t.name == entry.topic)
            .and_then(|t| {
                t.partitions
                    .iter_mut()
                    .find(|p| p.partition == entry.partition)
            })
        else {
            return Err(refuse(format!(
                "it carries segments of {}/{}, which it does not list",
                entry.topic, entry.partition
            )));
        };
        if wanted > available {
            return Err(refuse(format!(
                "it carries {wanted} segments of {}/{}, but its parent has {available}",
                entry.topic, entry.partition
            )));
        }
        let from_parent = parent
            .topic(&entry.topic)
            .and_then(|t| t.partitions.iter().find(|p| p.partition == entry.partition))
            .map(|p| &p.segments[available - wanted..])
            .unwrap_or_default();
        partition.segments.splice(0..0, from_parent.iter().cloned());
    }
    delta.totals.segments = Totals::of(&delta.topics).segments;
    delta.chain_depth = listing.depth;
    Ok(delta)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::{
        ArchiveKind, BackupId, Compression, PartitionBackup, SourceCluster, TopicBackup,
        FORMAT_VERSION,
    };

    fn segment(backup: &str, first: i64, last: i64) -> SegmentRef {
        SegmentRef {
            key: format!("backups/{backup}/segments/t/0/{first:020}.kseg.zst"),
            compression: Compression::Zstd,
            first_offset: first,
            last_offset: last,
            records: (last - first + 1) as u64,
            raw_bytes: 10,
            stored_bytes: 5,
            sha256: String::new(),
            first_timestamp: None,
            last_timestamp: None,
            min_timestamp: None,
            max_timestamp: None,
            last_record_sha256: None,
        }
    }

    fn manifest(id: &str, parent: Option<&str>, segments: Vec<SegmentRef>) -> Manifest {
        let end = segments.last().map_or(0, |s| s.last_offset + 1);
        let topics = vec![TopicBackup {
            name: "t".into(),
            internal: false,
            partition_count: 1,
            replication_factor: 1,
            configs: vec![],
            partitions: vec![PartitionBackup::over_segments(0, 0, end, end, segments)],
        }];
        Manifest {
            format_version: FORMAT_VERSION,
            kind: ArchiveKind::Logical,
            backup_id: BackupId::parse(id).unwrap(),
            parent: parent.map(|p| BackupId::parse(p).unwrap()),
            started_at: String::new(),
            finished_at: String::new(),
            tool_version: String::new(),
            source: SourceCluster {
                bootstrap_servers: String::new(),
                cluster_id: None,
                brokers: vec![],
            },
            compression: Compression::Zstd,
            compression_level: 1,
            segment_bytes: 1 << 20,
            encryption: None,
            totals: Totals::of(&topics),
            topics,
            groups: vec![],
            warnings: vec![],
            sharding: None,
            delta: None,
            chain_depth: 0,
        }
    }

    const A: &str = "20261207T010000Z-aaaaaa";
    const B: &str = "20261207T010100Z-bbbbbb";
    const C: &str = "20261207T010200Z-cccccc";

    fn own(id: &'static str) -> impl Fn(&SegmentRef) -> bool {
        move |s| s.key.starts_with(&format!("backups/{id}/"))
    }

    #[test]
    fn a_delta_lists_only_its_own_segments_and_folds_back_to_the_whole() {
        let full = manifest(A, None, vec![segment(A, 0, 9), segment(A, 10, 19)]);
        let b_whole = manifest(
            B,
            Some(A),
            vec![segment(A, 0, 9), segment(A, 10, 19), segment(B, 20, 29)],
        );
        let b = b_whole.clone().into_delta(1, own(B)).unwrap();
        assert_eq!(b.format_version, DELTA_FORMAT_VERSION);
        assert_eq!(b.topics[0].partitions[0].segments, vec![segment(B, 20, 29)]);
        assert_eq!(b.delta.as_ref().unwrap().carried[0].segments, 2);
        assert_eq!(b.totals, b_whole.totals, "totals stay the whole backup's");
        let folded = fold_delta(&full, b.clone()).unwrap();
        assert_eq!(folded.topics, b_whole.topics);
        assert_eq!(folded.totals, b_whole.totals);
        assert!(folded.delta.is_none());

        // A second delta over the first, keeping only the newest two segments (retention).
        let c_whole = manifest(
            C,
            Some(B),
            vec![segment(A, 10, 19), segment(B, 20, 29), segment(C, 30, 39)],
        );
        let c = c_whole.clone().into_delta(2, own(C)).unwrap();
        assert_eq!(folded.chain_depth, 1);
        let folded_c = fold_delta(&folded, c).unwrap();
        assert_eq!(folded_c.topics, c_whole.topics);
        assert_eq!(folded_c.chain_depth, 2);
    }

    #[test]
    fn a_delta_that_does_not_fit_its_parent_is_refused() {
        let full = manifest(A, None, vec![segment(A, 0, 9)]);
        let whole = manifest(B, Some(A), vec![segment(A, 0, 9), segment(B, 10, 19)]);
        let delta = whole.into_delta(1, own(B)).unwrap();

        let mut too_many = delta.clone();
        too_many.delta.as_mut().unwrap().carried[0].segments = 2;
        let err = fold_delta(&full, too_many).unwrap_err().to_string();
        assert!(
            err.contains("carries 2 segments of t/0, but its parent has 1"),
            "{err}"
        );

        let mut deeper = delta.clone();
        deeper.delta.as_mut().unwrap().depth = 5;
        let err = fold_delta(&full, deeper).unwrap_err().to_string();
        assert!(
            err.contains("its depth is 5, but its parent's is 0"),
            "{err}"
        );

        let other = manifest(C, None, vec![segment(C, 0, 9)]);
        let err = fold_delta(&other, delta).unwrap_err().to_string();
        assert!(err.contains("not its parent"), "{err}");
    }

    #[test]
    fn a_carried_segment_after_an_own_one_cannot_be_written_as_a_delta() {
        let whole = manifest(B, Some(A), vec![segment(B, 0, 9), segment(A, 10, 19)]);
        assert!(whole.into_delta(1, own(B)).is_none());
    }
}
