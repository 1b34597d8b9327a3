//! Carrying out a prune plan: unpublish, then delete.

use super::plan::{Family, PlannedBackup, PrunePlan};
use super::RetentionError;
use crate::progress::count;
use crate::store::Location;

/// What [`execute`] deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Deleted {
    pub(crate) backups: usize,
    pub objects: usize,
    pub bytes: u64,
}

/// Deletes every backup `plan` removes. First all their manifests, newest first (children
/// before the parents they build on), so no published manifest ever lists a deleted object;
/// then their data objects. A crash part-way leaves unpublished leftovers that the next
/// prune collects once they are past the grace period.
pub async fn execute(location: &Location, plan: &PrunePlan) -> Result<Deleted, RetentionError> {
    let mut newest_first: Vec<&PlannedBackup> = plan.remove.iter().collect();
    newest_first.sort_by(|a, b| b.id.cmp(&a.id));
    let mut deleted = Deleted::default();
    // Nothing builds on a data-dir backup: each goes on its own, manifest first.
    let unpublish_first = newest_first
        .iter()
        .filter(|b| plan.family == Family::Logical && b.complete);
    for backup in unpublish_first {
        location.delete_manifest(&backup.id).await?;
        // Counted here: the listing in `delete_backup` below no longer sees it.
        let key = location.manifest_key(&backup.id);
        if let Some(manifest) = backup.objects.iter().find(|o| o.key == key) {
            deleted.objects += 1;
            deleted.bytes += manifest.size;
        }
        tracing::debug!("unpublished backup {}", backup.id);
    }
    for backup in newest_first {
        // Lists afresh, so objects written since the plan go too.
        let (objects, what) = match plan.family {
            Family::Logical => (location.delete_backup(&backup.id).await?, "backup"),
            Family::Datadir => (
                location.delete_datadir_backup(&backup.id).await?,
                "data-dir backup",
            ),
        };
        let bytes: u64 = objects.iter().map(|o| o.size).sum();
        tracing::info!(
            "deleted {what} {}: {}, {bytes} bytes",
            backup.id,
            count(objects.len(), "object")
        );
        deleted.backups += 1;
        deleted.objects += objects.len();
        deleted.bytes += bytes;
    }
    Ok(deleted)
}
