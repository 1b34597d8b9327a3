//! The last check before a backup's manifest is published: every object it names is there.

use crate::archive::Manifest;
use crate::store::Location;
use crate::Error;

/// Refuses to publish `manifest` unless every object it names (its own segments and those
/// carried from its parents) is at the location with the size it records: a prune, a
/// lifecycle rule or a person may have removed some while the backup ran.
pub(crate) async fn check_before_publishing(
    location: &Location,
    manifest: &Manifest,
) -> Result<(), Error> {
    let wanted: Vec<(String, u64)> = manifest
        .segments()
        .map(|(_, _, segment)| (segment.key.clone(), segment.stored_bytes))
        .collect();
    Ok(location
        .check_publishable(&manifest.backup_id, &wanted)
        .await?)
}
