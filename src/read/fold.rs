//! Reading a checkpoint whole: a delta manifest's parents are read back to the nearest
//! manifest that lists every segment, then the deltas are folded onto it, oldest first
//! (docs/FORMAT.md, section 6, "Delta manifests").

use crate::archive::{self, ArchiveError, EncryptionKey, Manifest, MAX_DELTA_DEPTH};
use crate::store::Location;
use crate::Error;

use super::{check_structure, read_manifest_as_stored};

/// `newest` (a delta manifest) with every segment of its chain listed. Each manifest of the
/// chain is read and authenticated like `newest` was. Refused ([`Error::ManifestDamaged`],
/// naming the delta at fault) when a parent is missing, not older than its child, or does
/// not fit it, or the chain is longer than [`MAX_DELTA_DEPTH`].
pub(super) async fn fold_chain(
    location: &Location,
    newest: Manifest,
    encryption_key: Option<&EncryptionKey>,
) -> Result<Manifest, Error> {
    let damaged = |id: &archive::BackupId, source: ArchiveError| Error::ManifestDamaged {
        backup_id: id.to_string(),
        key: location.manifest_key(id),
        source,
    };
    let broken = |manifest: &Manifest, problem: String| {
        let backup_id = manifest.backup_id.to_string();
        damaged(
            &manifest.backup_id,
            ArchiveError::Delta { backup_id, problem },
        )
    };
    let mut chain = vec![newest];
    loop {
        let child = chain.last().expect("the chain starts with the newest");
        if child.delta.is_none() {
            break;
        }
        let Some(parent_id) = child.parent.clone() else {
            return Err(broken(child, "it names no parent".into()));
        };
        if parent_id >= child.backup_id {
            return Err(broken(
                child,
                format!("its parent {parent_id} is not older than it"),
            ));
        }
        if chain.len() as u64 > MAX_DELTA_DEPTH {
            return Err(broken(
                child,
                format!("its chain of deltas is longer than {MAX_DELTA_DEPTH}"),
            ));
        }
        let parent = match read_manifest_as_stored(location, &parent_id, encryption_key).await {
            Ok(parent) => parent,
            Err(Error::Store(err)) if matches!(*err, crate::store::StoreError::NotFound { .. }) => {
                return Err(broken(
                    child,
                    format!("its parent {parent_id} has no manifest (deleted by hand, or by a tool that ignores the chain): restore an older complete backup, or a newer one that lists every segment"),
                ))
            }
            Err(err) => return Err(err),
        };
        chain.push(parent);
    }
    let mut folded = chain.pop().expect("the chain ends with a complete listing");
    while let Some(delta) = chain.pop() {
        let id = delta.backup_id.clone();
        folded = archive::fold_delta(&folded, delta).map_err(|e| damaged(&id, e))?;
    }
    let id = folded.backup_id.clone();
    check_structure(folded).map_err(|e| damaged(&id, e))
}
