//! Finding and reading backups at a location: resolve what `--backup` names (the newest, an
//! id, or the start of one) against the location's listing, load and check
//! its manifest, check the decryption key against it, fetch and decode its segments, check
//! that all its objects are intact.

use std::sync::Arc;

use futures::stream::{self, StreamExt};

use crate::archive::{
    self, BackupSelector, DatadirManifest, Encryption, EncryptionKey, KeyFit, Manifest,
    SegmentRecords, SegmentRef, StreamOpener,
};
use crate::error::BackupKind;
use crate::store::{Location, StoreError};
use crate::Error;

mod fold;
mod select;

pub use select::resolve_backup_of_any_kind;
use select::{name_other_kind, resolve_id};

/// The manifest of the backup `selector` names (see [`resolve_id`]), checked against its
/// seal when `encryption_key` is given (see [`read_manifest`]).
pub async fn open_backup(
    location: &Location,
    selector: &BackupSelector,
    encryption_key: Option<&EncryptionKey>,
) -> Result<Manifest, Error> {
    let listing = location.list_backups().await?;
    let id = match resolve_id(location, &listing, selector, BackupKind::Logical) {
        Ok(id) => id,
        Err(err) => return Err(name_other_kind(location, err, BackupKind::Logical).await),
    };
    read_manifest(location, &id, encryption_key).await
}

/// The parsed manifest of published backup `id`, complete: a checkpoint's delta manifest
/// comes folded onto its chain (see [`fold`]). One that does not parse is
/// [`Error::ManifestDamaged`]; one of a format version this kafkasnap does not read is
/// [`Error::Archive`] (the backup may be fine; a newer kafkasnap reads it). Given the key
/// of an encrypted backup, its manifest must carry a matching seal (format version 2 on;
/// a version 1 one is refused unless the key allows unsealed manifests, then read with a
/// warning that it is unauthenticated): one without, or whose seal does not match, is
/// [`Error::ManifestDamaged`]. Without a key (ls, show)
/// nothing is authenticated.
pub async fn read_manifest(
    location: &Location,
    id: &archive::BackupId,
    encryption_key: Option<&EncryptionKey>,
) -> Result<Manifest, Error> {
    let manifest = read_manifest_as_stored(location, id, encryption_key).await?;
    if manifest.delta.is_none() {
        return Ok(manifest);
    }
    fold::fold_chain(location, manifest, encryption_key).await
}

/// The manifest of published backup `id` as stored, checked as [`read_manifest`] says: a
/// delta manifest's partitions list only its own segments (their totals and offsets are the
/// whole backup's). Enough for listings; anything that reads segments takes
/// [`read_manifest`].
pub async fn read_manifest_as_stored(
    location: &Location,
    id: &archive::BackupId,
    encryption_key: Option<&EncryptionKey>,
) -> Result<Manifest, Error> {
    let bytes = location.read_manifest(id).await?;
    let key = location.manifest_key(id);
    let damaged = |source| Error::ManifestDamaged {
        backup_id: id.to_string(),
        key: key.clone(),
        source,
    };
    let manifest = check_size_and_structure(&bytes).map_err(|source| match source {
        archive::ArchiveError::UnsupportedVersion { .. } => Error::Archive {
            key: key.clone(),
            source,
        },
        source => damaged(source),
    })?;
    let Some(given) = encryption_key else {
        return Ok(manifest);
    };
    // Another key's or a plaintext backup is refused by `key_for_backup` with its own message.
    if sealed_under(manifest.encryption.as_ref(), given) {
        let seal = location.read_manifest_seal(id).await?;
        let check = |seal: &[u8]| archive::check_manifest_seal(given, id, &bytes, seal);
        judge_seal(
            given,
            id,
            manifest.format_version,
            archive::SEALED_FROM_FORMAT_VERSION,
            seal,
            check,
        )
        .map_err(damaged)?;
    }
    Ok(manifest)
}

/// Whether a manifest that says `encryption` must carry a seal that checks under `given`:
/// it says it is encrypted with that very key.
fn sealed_under(encryption: Option<&Encryption>, given: &EncryptionKey) -> bool {
    matches!(KeyFit::of(encryption, Some(given)), KeyFit::SameKey(_))
}

/// The verdict on an encrypted manifest's `seal` (`None`: there is none), checked with
/// `check`. A seal that is there is checked, whatever the version says; a manifest of a
/// version older than `sealed_from` may lack one only when the key allows unsealed
/// manifests (then with a warning); any other is refused.
fn judge_seal(
    given: &EncryptionKey,
    id: &archive::BackupId,
    version: u64,
    sealed_from: u64,
    seal: Option<bytes::Bytes>,
    check: impl FnOnce(&[u8]) -> Result<(), archive::ArchiveError>,
) -> Result<(), archive::ArchiveError> {
    match seal {
        Some(seal) => check(&seal),
        None if version < sealed_from && given.allows_unsealed_manifests() => {
            tracing::warn!(
                "backup {id} has a format version {version} manifest without a seal: whoever can write to the location could have altered it (or rewritten a sealed one as version {version}); read anyway because of --allow-unsealed; its objects are still authenticated"
            );
            Ok(())
        }
        None if version < sealed_from => Err(archive::ArchiveError::Unsealed { version }),
        None => Err(archive::ArchiveError::SealMissing { version }),
    }
}

/// Publishes `manifest` (the commit point): an encrypted one (`encryption_key` given) is
/// sealed first, so that the seal exists whenever the manifest does. A seal already there
/// (shards merging together) is kept when it seals these very bytes, else nothing is
/// published: a seal is never replaced.
pub(crate) async fn publish_manifest(
    location: &Location,
    manifest: &Manifest,
    encryption_key: Option<&EncryptionKey>,
) -> Result<(), Error> {
    let bytes = manifest.to_json();
    let id = &manifest.backup_id;
    if let Some(key) = encryption_key {
        let seal = archive::seal_manifest(key, id, &bytes).map_err(|source| Error::Archive {
            key: location.manifest_key(id),
            source,
        })?;
        if let Some(existing) = location.create_manifest_seal(id, seal).await? {
            archive::check_manifest_seal(key, id, &bytes, &existing).map_err(|source| {
                Error::Archive {
                    key: location.manifest_key(id),
                    source,
                }
            })?;
        }
    }
    location.publish_manifest(id, bytes).await?;
    Ok(())
}

/// Parses manifest bytes and refuses them when they exceed [`archive::MAX_MANIFEST_BYTES`]
/// or fail the structural check (docs/FORMAT.md, "Structural checks"), before any segment
/// is read. A delta manifest's structure is checked once it is folded.
fn check_size_and_structure(bytes: &[u8]) -> Result<Manifest, archive::ArchiveError> {
    let size = bytes.len() as u64;
    if size > archive::MAX_MANIFEST_BYTES {
        return Err(archive::ArchiveError::ManifestTooLarge { size });
    }
    let manifest = Manifest::from_json(bytes)?;
    if manifest.delta.is_some() {
        return Ok(manifest);
    }
    check_structure(manifest)
}

fn check_structure(manifest: Manifest) -> Result<Manifest, archive::ArchiveError> {
    let problems = archive::check_manifest(&manifest, &crate::store::segment_key_matches);
    if problems.is_empty() {
        Ok(manifest)
    } else {
        Err(archive::ArchiveError::Structure(problems))
    }
}

/// The manifest of the data-dir backup `selector` names (see [`resolve_id`]), checked
/// against its seal when `encryption_key` is the key it is encrypted with (format
/// version 2 on; a version 1 one as [`read_manifest`] treats a logical one).
pub async fn open_datadir_backup(
    location: &Location,
    selector: &BackupSelector,
    encryption_key: Option<&EncryptionKey>,
) -> Result<DatadirManifest, Error> {
    let listing = location.list_datadir_backups().await?;
    let id = match resolve_id(location, &listing, selector, BackupKind::Datadir) {
        Ok(id) => id,
        Err(err) => return Err(name_other_kind(location, err, BackupKind::Datadir).await),
    };
    let bytes = location.read_datadir_manifest(&id).await?;
    let key = location.datadir_manifest_key(&id);
    let manifest = DatadirManifest::from_json(&bytes).map_err(|source| Error::Archive {
        key: key.clone(),
        source,
    })?;
    if let Some(given) = encryption_key.filter(|k| sealed_under(manifest.encryption.as_ref(), k)) {
        let seal = location.read_datadir_manifest_seal(&id).await?;
        let check = |seal: &[u8]| archive::check_datadir_manifest_seal(given, &id, &bytes, seal);
        judge_seal(
            given,
            &id,
            manifest.format_version,
            archive::DATADIR_SEALED_FROM_FORMAT_VERSION,
            seal,
            check,
        )
        .map_err(|source| Error::ManifestDamaged {
            backup_id: id.to_string(),
            key,
            source,
        })?;
    }
    Ok(manifest)
}

/// Downloads data-dir backup `manifest`'s archive to `dest` (streamed, not buffered),
/// decrypting an encrypted one with `encryption_key` (checked against the manifest first, as
/// [`key_for_datadir_backup`] does: nothing is read without the right key), and checks its
/// size and SHA-256 against the manifest; on a mismatch or a chunk that does not decrypt
/// `dest` is removed and the archive refused, so nothing is read from a damaged download.
/// Only authenticated plaintext is ever written to `dest`.
pub async fn download_datadir_archive(
    location: &Location,
    manifest: &DatadirManifest,
    encryption_key: Option<&EncryptionKey>,
    dest: &std::path::Path,
) -> Result<(), Error> {
    use sha2::{Digest, Sha256};
    use std::io::Write;
    let io_error = |source| {
        Error::Datadir(crate::datadir::DatadirError::Io {
            path: dest.to_path_buf(),
            source,
        })
    };
    let archive = &manifest.archive;
    let mut opener = key_for_datadir_backup(manifest, encryption_key)?
        .map(|key| StreamOpener::new(&key, &archive.key));
    let mut file =
        std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(dest).map_err(io_error)?);
    let (mut hasher, mut size) = (Sha256::new(), 0u64);
    let (mut write_error, mut decrypt_error) = (None, None);
    let mut write = |file: &mut std::io::BufWriter<std::fs::File>, plain: &[u8]| {
        if write_error.is_none() {
            write_error = file.write_all(plain).err();
        }
    };
    let streamed = location
        .stream(&archive.key, |chunk| {
            hasher.update(chunk);
            size += chunk.len() as u64;
            match &mut opener {
                None => write(&mut file, chunk),
                Some(_) if decrypt_error.is_some() => {}
                Some(stream) => {
                    decrypt_error = stream.update(chunk, |plain| write(&mut file, plain)).err()
                }
            }
        })
        .await;
    if let (Some(stream), None) = (opener, &decrypt_error) {
        decrypt_error = stream.finish(|plain| write(&mut file, plain)).err();
    }
    let damaged = |problem: String| {
        let _ = std::fs::remove_file(dest);
        Error::ArchiveDamaged {
            problems: vec![format!("  {}: {problem}", archive.key)],
        }
    };
    if let Err(err) = streamed {
        let _ = std::fs::remove_file(dest);
        return Err(err.into());
    }
    if let Some(problem) = archive.mismatch(size, &hex::encode(hasher.finalize())) {
        return Err(damaged(problem));
    }
    if let Some(err) = decrypt_error {
        return Err(damaged(err.to_string()));
    }
    if let Some(err) = write_error {
        let _ = std::fs::remove_file(dest);
        return Err(io_error(err));
    }
    file.flush().map_err(io_error)
}

/// The key to decrypt `manifest`'s segments with: `None` for a plaintext backup read without
/// a key. A plaintext backup read with a key (its `encryption` may have been stripped by
/// whoever can write to the location), an encrypted one without a key, or one with a key
/// whose id differs from the manifest's, is refused before any object is read.
pub fn key_for_backup(
    manifest: &Manifest,
    given: Option<&EncryptionKey>,
) -> Result<Option<EncryptionKey>, Error> {
    key_for(&manifest.backup_id, manifest.encryption.as_ref(), given)
}

/// The key to decrypt data-dir backup `manifest`'s archive with, as [`key_for_backup`] says.
pub fn key_for_datadir_backup(
    manifest: &DatadirManifest,
    given: Option<&EncryptionKey>,
) -> Result<Option<EncryptionKey>, Error> {
    key_for(&manifest.backup_id, manifest.encryption.as_ref(), given)
}

fn key_for(
    backup_id: &archive::BackupId,
    encryption: Option<&Encryption>,
    given: Option<&EncryptionKey>,
) -> Result<Option<EncryptionKey>, Error> {
    match KeyFit::of(encryption, given) {
        KeyFit::Plaintext => Ok(None),
        KeyFit::NotEncrypted => Err(Error::NotEncrypted {
            backup_id: backup_id.to_string(),
        }),
        KeyFit::KeyMissing(encryption) => Err(Error::KeyRequired {
            backup_id: backup_id.to_string(),
            cipher: encryption.cipher.to_string(),
            key_id: encryption.key_id.clone(),
        }),
        KeyFit::OtherKey { recorded, given } => Err(Error::WrongKey {
            backup_id: backup_id.to_string(),
            expected: recorded.key_id.clone(),
            actual: given.id().to_string(),
        }),
        KeyFit::SameKey(key) => Ok(Some(key.clone())),
    }
}

/// Fetches one segment and decodes it, checking size, checksum, count and offsets (and
/// decrypting it with `encryption_key`, which [`key_for_backup`] gives for its backup).
pub async fn read_segment(
    location: &Location,
    entry: &SegmentRef,
    encryption_key: Option<&EncryptionKey>,
) -> Result<SegmentRecords, Error> {
    let stored = fetch_segment(location, entry).await?;
    let (entry, encryption_key) = (entry.clone(), encryption_key.cloned());
    tokio::task::spawn_blocking(move || {
        decode_fetched(&stored, &entry, encryption_key.as_ref(), Vec::new())
    })
    .await
    .expect("decoding does not panic")
}

/// A segment's stored bytes, refused before its body is read when the store's metadata
/// gives another size than the manifest's `stored_bytes` (reported like a size mismatch
/// found after reading).
pub(crate) async fn fetch_segment(
    location: &Location,
    entry: &SegmentRef,
) -> Result<bytes::Bytes, Error> {
    match location.get_sized(&entry.key, entry.stored_bytes).await {
        Ok(stored) => Ok(stored),
        Err(StoreError::WrongSize {
            expected, actual, ..
        }) => Err(Error::Archive {
            key: entry.key.clone(),
            source: archive::ArchiveError::SizeMismatch { expected, actual },
        }),
        Err(err) => Err(err.into()),
    }
}

/// Decodes a segment's object bytes fetched with [`fetch_segment`] (CPU-bound; blocking),
/// into `spare` (an earlier segment's [`SegmentRecords::into_buffer`], or `Vec::new()`).
pub(crate) fn decode_fetched(
    stored: &[u8],
    entry: &SegmentRef,
    encryption_key: Option<&EncryptionKey>,
    spare: Vec<u8>,
) -> Result<SegmentRecords, Error> {
    archive::decode_segment_into(stored, entry, encryption_key, spare).map_err(|source| {
        Error::Archive {
            key: entry.key.clone(),
            source,
        }
    })
}

/// One object that failed a check.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ObjectProblem {
    pub key: String,
    pub problem: String,
}

/// How thoroughly [`check_segments`] checks each object.
#[derive(Debug, Clone)]
pub(crate) enum SegmentCheck {
    /// Presence, size and SHA-256 of the stored bytes (no key needed).
    Stored,
    /// All of that, then decrypt (with the backup's key, if it is encrypted), decompress and
    /// decode every record, as [`read_segment`] does.
    Decode(Option<EncryptionKey>),
}

/// Checks every given segment as `check` says. Returns the problems found (none = intact).
pub(crate) async fn check_segments<'a>(
    location: &Location,
    segments: impl IntoIterator<Item = &'a SegmentRef>,
    check: SegmentCheck,
    parallelism: usize,
) -> Vec<ObjectProblem> {
    let location = Arc::new(location.clone());
    let checks = segments.into_iter().cloned().map(|entry| {
        let (location, check) = (Arc::clone(&location), check.clone());
        async move {
            let result = if let SegmentCheck::Decode(encryption_key) = check {
                read_segment(&location, &entry, encryption_key.as_ref())
                    .await
                    .map(drop)
            } else {
                match fetch_segment(&location, &entry).await {
                    Ok(stored) => {
                        archive::check_stored(&stored, &entry).map_err(|source| Error::Archive {
                            key: entry.key.clone(),
                            source,
                        })
                    }
                    Err(err) => Err(err),
                }
            };
            result.err().map(|err| ObjectProblem {
                key: entry.key.clone(),
                problem: describe(&err),
            })
        }
    });
    stream::iter(checks)
        .buffer_unordered(parallelism.max(1))
        .filter_map(|p| async move { p })
        .collect()
        .await
}

/// The problem without repeating the key (the report already names it).
fn describe(err: &Error) -> String {
    match err {
        Error::Archive { source, .. } => source.to_string(),
        Error::Store(store) if matches!(**store, StoreError::NotFound { .. }) => {
            "object is missing".into()
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    #[tokio::test]
    async fn a_seal_already_there_is_kept_and_must_seal_the_same_bytes() {
        let location = Location::open("memory://", false).unwrap();
        let key = EncryptionKey::parse(KEY_HEX.as_bytes()).unwrap();
        let json = include_bytes!("../../tests/fuzz-regressions/manifest/ok-version-2");
        let mut manifest = Manifest::from_json(json).unwrap();
        manifest.encryption = Some(key.describe());
        let segment = &mut manifest.topics[0].partitions[0].segments[0];
        segment.key = crate::store::segment_key(
            &manifest.backup_id,
            "t",
            0,
            segment.first_offset,
            segment.compression,
        );
        // Two mergers of one shard run publishing the same manifest both succeed.
        publish_manifest(&location, &manifest, Some(&key))
            .await
            .unwrap();
        publish_manifest(&location, &manifest, Some(&key))
            .await
            .unwrap();
        let mut other = manifest.clone();
        other.warnings.push("a different merge".into());
        let refused = publish_manifest(&location, &other, Some(&key)).await;
        assert!(
            matches!(
                refused,
                Err(Error::Archive {
                    source: archive::ArchiveError::SealMismatch,
                    ..
                })
            ),
            "{refused:?}"
        );
        let read = read_manifest(&location, &manifest.backup_id, Some(&key))
            .await
            .unwrap();
        assert_eq!(read, manifest);
    }
}
