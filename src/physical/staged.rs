//! A data directory (or a tarball of one, or a downloaded data-dir backup's archive) turned
//! into a temporary logical archive in a scratch directory, so `restore --from-datadir` and
//! `drill` replay it through the same path as a logical backup.

use std::path::{Path, PathBuf};

use crate::archive::{DatadirManifest, EncryptionKey, Manifest};
use crate::datadir::extract_archive;
use crate::read::download_datadir_archive;
use crate::store::Location;
use crate::Error;

use super::archive_datadir;

/// Converts `source` (a data directory, or a .tar / .tar.gz / .tar.zst of one, unpacked into
/// `scratch/data` first) into a published logical archive at `scratch/archive`, and returns
/// that location with the archive's manifest. `scratch` must exist and be private to the caller.
pub async fn stage_datadir_as_archive(
    source: PathBuf,
    scratch: &Path,
) -> Result<(Location, Manifest), Error> {
    let location = Location::open(&scratch.join("archive").display().to_string(), true)?;
    let (unpack_into, converted) = (scratch.join("data"), location.clone());
    let converting = tokio::task::spawn_blocking(move || -> Result<Manifest, Error> {
        let data_dir = if source.is_file() {
            extract_archive(&source, &unpack_into)?
        } else {
            source
        };
        archive_datadir(&data_dir, &converted)
    });
    let manifest = match converting.await {
        Ok(manifest) => manifest?,
        Err(err) => std::panic::resume_unwind(err.into_panic()),
    };
    tracing::info!(records = manifest.totals.records, "read the data directory");
    Ok((location, manifest))
}

/// Downloads data-dir backup `manifest` from `location` into `scratch` (checked, and decrypted
/// with `encryption_key`; see [`download_datadir_archive`]) and stages it as
/// [`stage_datadir_as_archive`] does. The staged archive is plaintext.
pub async fn stage_datadir_backup(
    location: &Location,
    manifest: &DatadirManifest,
    encryption_key: Option<&EncryptionKey>,
    scratch: &Path,
) -> Result<(Location, Manifest), Error> {
    let download = scratch.join("archive.download");
    tracing::info!(backup_id = %manifest.backup_id, bytes = manifest.archive.stored_bytes, "downloading the data-dir backup");
    download_datadir_archive(location, manifest, encryption_key, &download).await?;
    stage_datadir_as_archive(download, scratch).await
}
