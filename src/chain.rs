//! Incremental backups: each partition continues from the parent backup's end offset, and the
//! parent's segments that still hold live records are carried into the new manifest, so every
//! manifest alone describes a complete backup (restore, verify, show and cat walk no chain).
//!
//! Records below a partition's `start_offset` (its log start when the backup began) are not
//! part of the backup even when a carried segment still holds them: retention deleted them
//! from the cluster, and a restore must give the cluster as it was at this backup.

use crate::archive::{Manifest, SegmentRef};
use crate::catalog::read_segment;
use crate::kafka::PartitionTask;
use crate::store::Location;
use crate::Error;

/// What the parent contributes to one partition.
#[derive(Debug, Clone, PartialEq)]
pub struct Carried {
    /// The partition's log start now; records below it are excluded.
    pub log_start: i64,
    pub segments: Vec<SegmentRef>,
    /// Records of `segments` at or above `log_start`.
    pub records: u64,
    pub first_timestamp: Option<i64>,
}

/// Moves each task's start to where `parent` ended and returns what the parent carries for
/// it (`None` for partitions the parent does not have: they are read in full). Gaps (records
/// deleted between the parent and now) are reported in `warnings`.
pub async fn continue_from(
    location: &Location,
    parent: &Manifest,
    tasks: &mut [PartitionTask],
    warnings: &mut Vec<String>,
) -> Result<Vec<Option<Carried>>, Error> {
    let mut carried = Vec::with_capacity(tasks.len());
    for task in tasks.iter_mut() {
        let previous = parent
            .topic(&task.topic)
            .and_then(|t| t.partitions.iter().find(|p| p.partition == task.partition));
        let Some(previous) = previous else {
            carried.push(None);
            continue;
        };
        let log_start = task.start_offset;
        if log_start > previous.end_offset {
            warnings.push(format!(
                "{}/{}: offsets {}..{} were deleted from the cluster after backup {} and before this one; no backup holds them",
                task.topic, task.partition, previous.end_offset, log_start, parent.backup_id
            ));
        }
        let segments: Vec<SegmentRef> = previous
            .segments
            .iter()
            .filter(|s| s.last_offset >= log_start)
            .cloned()
            .collect();
        let mut records: u64 = segments.iter().map(|s| s.records).sum();
        let mut first_timestamp = segments.first().and_then(|s| s.first_timestamp);
        if let Some(straddling) = segments.first().filter(|s| s.first_offset < log_start) {
            let decoded = read_segment(location, straddling).await?;
            let mut below = 0;
            first_timestamp = None;
            for record in decoded.iter() {
                let record = record.map_err(|source| Error::Archive {
                    key: straddling.key.clone(),
                    source,
                })?;
                if record.offset < log_start {
                    below += 1;
                } else if first_timestamp.is_none() {
                    first_timestamp = Some(record.timestamp);
                }
            }
            records -= below;
        }
        task.start_offset = log_start.max(previous.end_offset);
        carried.push(Some(Carried {
            log_start,
            segments,
            records,
            first_timestamp,
        }));
    }
    Ok(carried)
}
