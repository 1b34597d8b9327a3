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
use crate::store::{BackupListing, Location, StoreError};
use crate::Error;

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

/// The parsed manifest of published backup `id`. One that does not parse is
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
/// is read.
fn check_size_and_structure(bytes: &[u8]) -> Result<Manifest, archive::ArchiveError> {
    let size = bytes.len() as u64;
    if size > archive::MAX_MANIFEST_BYTES {
        return Err(archive::ArchiveError::ManifestTooLarge { size });
    }
    let manifest = Manifest::from_json(bytes)?;
    let problems = archive::check_manifest(&manifest, &crate::store::segment_key_matches);
    if problems.is_empty() {
        Ok(manifest)
    } else {
        Err(archive::ArchiveError::Structure(problems))
    }
}

/// A backup of the kind `looked_for` that was not found may be one of the other kind (named
/// by its whole id or the start of it), or the location may hold only the other kind: say
/// so, with what to run instead. Any other error is returned as it is.
async fn name_other_kind(location: &Location, err: Error, looked_for: BackupKind) -> Error {
    let other = match looked_for {
        BackupKind::Logical => location.list_datadir_backups().await,
        BackupKind::Datadir => location.list_backups().await,
    };
    let Ok(other) = other else {
        return err;
    };
    let location = location.display().to_string();
    match (of_other_kind(&err, &other), looked_for) {
        (Some(OtherKind::Only(newest)), BackupKind::Logical) => {
            Error::OnlyDatadirBackups { location, newest }
        }
        (Some(OtherKind::Named(id)), BackupKind::Logical) => {
            Error::IsDatadirBackup { id, location }
        }
        (Some(OtherKind::Only(newest)), BackupKind::Datadir) => {
            Error::OnlyLogicalBackups { location, newest }
        }
        (Some(OtherKind::Named(id)), BackupKind::Datadir) => {
            Error::IsLogicalBackup { id, location }
        }
        (None, _) => err,
    }
}

/// What backups of the other kind (`other`) say about `err`, a backup not found.
enum OtherKind {
    /// There was none of the kind looked for; this is the newest complete one of the other.
    Only(String),
    /// The id or prefix given names this one backup of the other kind.
    Named(String),
}

fn of_other_kind(err: &Error, other: &[BackupListing]) -> Option<OtherKind> {
    let named = match err {
        Error::NoBackups { .. } => None,
        Error::BackupNotFound { id, .. } => Some(id),
        Error::NoBackupMatches { prefix, .. } => Some(prefix),
        _ => return None,
    };
    match named {
        None => other
            .iter()
            .rev()
            .find(|b| b.complete)
            .map(|newest| OtherKind::Only(newest.id.to_string())),
        Some(text) => {
            let mut matching = other.iter().filter(|b| b.id.as_str().starts_with(text));
            match (matching.next(), matching.next()) {
                (Some(only), None) => Some(OtherKind::Named(only.id.to_string())),
                _ => None,
            }
        }
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

/// The backup of either kind that `selector` names at `location`: for `latest` the newest
/// complete one, logical or data-dir; for an id or the start of one, the backup of the kind
/// that has it (see [`resolve_id`]). A prefix that names a backup of each kind is ambiguous.
pub async fn resolve_backup_of_any_kind(
    location: &Location,
    selector: &BackupSelector,
) -> Result<(BackupKind, archive::BackupId), Error> {
    let logical = location.list_backups().await?;
    let datadir = location.list_datadir_backups().await?;
    if *selector == BackupSelector::Latest {
        let newest_logical = newest_plausible(&logical).map(|id| (BackupKind::Logical, id));
        let newest_datadir = newest_plausible(&datadir).map(|id| (BackupKind::Datadir, id));
        return [newest_logical, newest_datadir]
            .into_iter()
            .flatten()
            .max_by(|a, b| a.1.cmp(&b.1))
            .ok_or_else(|| Error::NoBackups {
                location: location.display().to_string(),
            });
    }
    let as_logical = resolve_id(location, &logical, selector, BackupKind::Logical);
    let as_datadir = resolve_id(location, &datadir, selector, BackupKind::Datadir);
    let absent = |err: &Error| {
        matches!(
            err,
            Error::BackupNotFound { .. } | Error::NoBackupMatches { .. }
        )
    };
    match (as_logical, as_datadir) {
        (Ok(logical), Ok(datadir)) => Err(Error::AmbiguousBackup {
            prefix: selector.to_string(),
            location: location.display().to_string(),
            kind: BackupKind::Logical,
            matches: vec![logical.to_string(), datadir.to_string()],
        }),
        (Ok(id), Err(_)) => Ok((BackupKind::Logical, id)),
        (Err(_), Ok(id)) => Ok((BackupKind::Datadir, id)),
        (Err(logical), Err(datadir)) if absent(&logical) && !absent(&datadir) => Err(datadir),
        (Err(logical), Err(_)) => Err(logical),
    }
}

/// The one backup of `listing` that `selector` names: the newest complete one for `latest`
/// (whose id is not dated in the future past [`archive::CLOCK_SKEW_ALLOWANCE`]: no backup
/// begun yet has such an id, and a planted manifest must not be taken for the newest); the
/// backup with that very id for an id (which must be complete); else the one complete
/// backup whose id starts with the text given. Every command that takes `--backup` comes
/// through here, for both kinds of backup (`kind` names the kind in errors).
fn resolve_id(
    location: &Location,
    listing: &[BackupListing],
    selector: &BackupSelector,
    kind: BackupKind,
) -> Result<archive::BackupId, Error> {
    let place = || location.display().to_string();
    if *selector == BackupSelector::Latest {
        return newest_plausible(listing).ok_or_else(|| Error::NoBackups { location: place() });
    }
    let text = selector.to_string();
    let incomplete = |id: &archive::BackupId| Error::BackupIncomplete {
        id: id.to_string(),
        location: place(),
    };
    if let Some(exact) = listing.iter().find(|b| b.id.as_str() == text) {
        return match exact.complete {
            true => Ok(exact.id.clone()),
            false => Err(incomplete(&exact.id)),
        };
    }
    let named: Vec<&BackupListing> = listing.iter().filter(|b| selector.names(&b.id)).collect();
    let complete: Vec<&archive::BackupId> =
        named.iter().filter(|b| b.complete).map(|b| &b.id).collect();
    match (complete.as_slice(), named.as_slice()) {
        ([only], _) => Ok((*only).clone()),
        ([], [unpublished]) => Err(incomplete(&unpublished.id)),
        ([], _) => Err(match selector {
            BackupSelector::Exact(_) => Error::BackupNotFound {
                id: text,
                location: place(),
                kind,
            },
            _ => Error::NoBackupMatches {
                prefix: text,
                location: place(),
                kind,
            },
        }),
        (several, _) => Err(Error::AmbiguousBackup {
            prefix: text,
            location: place(),
            kind,
            // Newest first, as `ls` lists them.
            matches: several.iter().rev().map(|id| id.to_string()).collect(),
        }),
    }
}

/// The newest complete backup of `listing` whose id could have begun by now; ids that could
/// not are passed over with a warning.
fn newest_plausible(listing: &[BackupListing]) -> Option<archive::BackupId> {
    let now = std::time::SystemTime::now();
    let implausible = |b: &&BackupListing| !b.id.could_have_begun_by(now);
    for planted in listing.iter().filter(|b| b.complete).filter(implausible) {
        tracing::warn!(
            "passed over backup {} as the newest: its id is dated in the future or is not a real date (check the clock of the machine that wrote it, or whether it was planted); name it with --backup to use it",
            planted.id
        );
    }
    listing
        .iter()
        .rev()
        .find(|b| b.complete && b.id.could_have_begun_by(now))
        .map(|newest| newest.id.clone())
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

    fn listed(id: &str) -> BackupListing {
        BackupListing {
            id: archive::BackupId::parse(id).unwrap(),
            complete: true,
            shard_part: None,
        }
    }

    fn unpublished(id: &str) -> BackupListing {
        BackupListing {
            complete: false,
            ..listed(id)
        }
    }

    fn select(listing: &[BackupListing], text: &str) -> Result<archive::BackupId, Error> {
        let location = Location::open("memory://", false).unwrap();
        let selector = BackupSelector::parse(text).unwrap();
        resolve_id(&location, listing, &selector, BackupKind::Logical)
    }

    #[test]
    fn the_newest_backup_is_never_one_that_cannot_have_begun_yet() {
        let genuine = "20261125T145443Z-3f9a1c";
        let listing = [
            listed(genuine),
            listed("20261399T000000Z-000000"),
            listed("29991231T000000Z-aaaaaa"),
            listed("99999999T999999Z-0"),
        ];
        assert_eq!(select(&listing, "latest").unwrap().as_str(), genuine);
        // Named, any of them is used.
        let named = select(&listing, "99999999T999999Z-0").unwrap();
        assert_eq!(named.as_str(), "99999999T999999Z-0");
    }

    #[test]
    fn latest_is_the_newest_complete_backup() {
        let listing = [
            listed("20261202T125301Z-aaaaaa"),
            listed("20261202T125302Z-bbbbbb"),
            unpublished("20261202T125303Z-cccccc"),
        ];
        let latest = select(&listing, "latest").unwrap();
        assert_eq!(latest.as_str(), "20261202T125302Z-bbbbbb");
        let none = select(&listing[2..], "latest").unwrap_err();
        assert!(matches!(none, Error::NoBackups { .. }), "{none}");
    }

    #[test]
    fn a_unique_prefix_selects_its_backup_and_an_ambiguous_one_lists_them() {
        let (older, newer) = ("20261202T125301Z-aaaaaa", "20261202T125302Z-bbbbbb");
        let listing = [
            listed(older),
            listed(newer),
            unpublished("20261202T125303Z-cccccc"),
        ];
        assert_eq!(select(&listing, "20261202T125301").unwrap().as_str(), older);
        assert_eq!(
            select(&listing, "20261202T125302Z-b").unwrap().as_str(),
            newer
        );
        assert_eq!(select(&listing, newer).unwrap().as_str(), newer);
        // Unpublished backups are not candidates, so they make no prefix ambiguous.
        let err = select(&listing, "20261202T1253").unwrap_err();
        match &err {
            Error::AmbiguousBackup {
                prefix, matches, ..
            } => {
                assert_eq!(prefix, "20261202T1253");
                assert_eq!(matches, &[newer.to_string(), older.to_string()]);
            }
            other => panic!("{other}"),
        }
        assert!(err.is_invalid_request());
        let text = err.to_string();
        assert!(
            text.contains(older) && text.contains(newer) && text.contains("more characters"),
            "{text}"
        );
        // An unpublished backup named by a prefix of its own is said to be incomplete.
        let incomplete = select(&listing, "20261202T125303").unwrap_err();
        assert!(
            matches!(incomplete, Error::BackupIncomplete { .. }),
            "{incomplete}"
        );
    }

    #[test]
    fn prefixes_that_match_nothing_point_at_ls() {
        let listing = [listed("20261202T125301Z-aaaaaa")];
        let err = select(&listing, "2027").unwrap_err();
        assert!(matches!(err, Error::NoBackupMatches { .. }), "{err}");
        assert!(!err.is_invalid_request());
        assert!(
            err.to_string().contains("run `kafkasnap ls memory://"),
            "{err}"
        );
        let err = select(&listing, "20261202T125301Z-aaaaab").unwrap_err();
        assert!(matches!(err, Error::BackupNotFound { .. }), "{err}");
        let location = Location::open("memory://", false).unwrap();
        let selector = BackupSelector::parse("2027").unwrap();
        let datadir = resolve_id(&location, &listing, &selector, BackupKind::Datadir);
        let err = datadir.unwrap_err().to_string();
        assert!(err.contains("`kafkasnap datadir ls memory://"), "{err}");
    }

    #[test]
    fn a_backup_of_the_other_kind_is_named() {
        let (published, unfinished) = ("20261202T125301Z-aaaaaa", "20261202T125302Z-bbbbbb");
        let other = [listed(published), unpublished(unfinished)];
        let none = Error::NoBackups {
            location: "x".into(),
        };
        assert!(
            matches!(of_other_kind(&none, &other), Some(OtherKind::Only(id)) if id == published)
        );
        assert!(of_other_kind(&none, &[unpublished(unfinished)]).is_none());
        let prefix = Error::NoBackupMatches {
            prefix: "20261202T125301".into(),
            location: "x".into(),
            kind: BackupKind::Datadir,
        };
        assert!(
            matches!(of_other_kind(&prefix, &other), Some(OtherKind::Named(id)) if id == published)
        );
        let ambiguous = Error::NoBackupMatches {
            prefix: "2026".into(),
            location: "x".into(),
            kind: BackupKind::Datadir,
        };
        assert!(of_other_kind(&ambiguous, &other).is_none());
        assert!(of_other_kind(&Error::Interrupted, &other).is_none());
    }

    #[test]
    fn an_ambiguous_prefix_lists_at_most_ten_ids() {
        let listing: Vec<BackupListing> = (0..14)
            .map(|i| listed(&format!("20261202T1253{i:02}Z-aaaaaa")))
            .collect();
        let err = select(&listing, "2026").unwrap_err().to_string();
        assert!(err.contains("14 complete backups"), "{err}");
        assert!(err.contains("and 4 more"), "{err}");
        assert!(
            !err.contains("20261202T125300Z"),
            "the oldest are left out: {err}"
        );
    }

    #[tokio::test]
    async fn a_seal_already_there_is_kept_and_must_seal_the_same_bytes() {
        let location = Location::open("memory://", false).unwrap();
        let key = EncryptionKey::parse(KEY_HEX.as_bytes()).unwrap();
        let json = include_bytes!("../tests/fuzz-regressions/manifest/ok-version-2");
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
