//! Checking a backup: re-read every object (size, checksum, every record decrypted and
//! decoded, counts and offset ranges against the manifest; for an encrypted backup without
//! its key, size and checksum only). Comparing one with a live cluster is [`live`].

use std::collections::HashSet;

use crate::archive::{DatadirManifest, EncryptionKey, Manifest, StreamOpener};
use crate::read::{
    check_segments, key_for_backup, key_for_datadir_backup, read_segment, ObjectProblem,
    SegmentCheck,
};
use crate::store::Location;
use crate::Error;

mod live;

pub use live::{compare_with_cluster, PartitionComparison};

#[derive(Debug, Clone, serde::Serialize)]
pub struct ArchiveReport {
    pub backup_id: String,
    pub objects_checked: usize,
    /// Records actually decoded and checked: those of the objects that passed (none for an
    /// encrypted backup checked without its key).
    pub records: u64,
    /// Records the manifest says the backup holds.
    pub records_in_manifest: u64,
    /// Whether every record of the backup was decoded and checked; false for an encrypted
    /// backup checked without its key (sizes and checksums of the stored objects only), and
    /// when an object is missing or failed its check.
    pub records_decoded: bool,
    /// The manifest itself is damaged (not a readable manifest): nothing else was checked.
    pub(crate) manifest_damaged: bool,
    pub problems: Vec<ObjectProblem>,
}

impl ArchiveReport {
    /// The report on a backup whose manifest could not be read (see
    /// [`Error::ManifestDamaged`]): one problem, nothing checked.
    pub fn damaged_manifest(backup_id: &str, key: &str, problem: String) -> ArchiveReport {
        ArchiveReport {
            backup_id: backup_id.to_string(),
            objects_checked: 0,
            records: 0,
            records_in_manifest: 0,
            records_decoded: false,
            manifest_damaged: true,
            problems: vec![ObjectProblem {
                key: key.to_string(),
                problem,
            }],
        }
    }
}

/// Re-reads and checks every object of `manifest`, and the manifest's own arithmetic. An
/// encrypted backup is decrypted and decoded with `encryption_key`; without one, its objects'
/// sizes and checksums are checked. A key that is not the backup's is refused.
pub async fn verify_archive(
    location: &Location,
    manifest: &Manifest,
    encryption_key: Option<&EncryptionKey>,
    parallelism: usize,
) -> Result<ArchiveReport, Error> {
    let decode = manifest.encryption.is_none() || encryption_key.is_some();
    let encryption_key = match encryption_key {
        Some(_) => key_for_backup(manifest, encryption_key)?,
        None => None,
    };
    let check = if decode {
        SegmentCheck::Decode(encryption_key.clone())
    } else {
        SegmentCheck::Stored
    };
    let mut problems = check_segments(
        location,
        manifest.segments().map(|(_, _, s)| s),
        check,
        parallelism,
    )
    .await;
    // Objects that are missing or failed their check: their records were not checked.
    let failed: HashSet<String> = problems.iter().map(|p| p.key.clone()).collect();
    let mut checked = 0u64;
    for topic in &manifest.topics {
        for partition in &topic.partitions {
            let name = format!("{}/{}", topic.name, partition.partition);
            // Ordering, ranges and keys were checked with the manifest (archive::check).
            let mut records: u64 = partition.segments.iter().map(|s| s.records).sum();
            let mut intact: u64 = partition
                .segments
                .iter()
                .filter(|s| !failed.contains(&s.key))
                .map(|s| s.records)
                .sum();
            let straddling = partition
                .segments
                .first()
                .filter(|s| !partition.holds(s.first_offset));
            if straddling.is_some() && !decode {
                continue; // the records below start_offset cannot be counted without the key
            }
            if let Some((first, Ok(decoded))) = match straddling {
                Some(first) => Some((
                    first,
                    read_segment(location, first, encryption_key.as_ref()).await,
                )),
                None => None,
            } {
                let below = decoded
                    .iter()
                    .filter_map(Result::ok)
                    .filter(|r| !partition.holds(r.offset))
                    .count() as u64;
                records -= below;
                if !failed.contains(&first.key) {
                    intact = intact.saturating_sub(below);
                }
            }
            if decode {
                checked += intact;
            }
            if records != partition.records {
                problems.push(ObjectProblem {
                    key: "manifest.json".into(),
                    problem: format!(
                        "{name}: segments hold {records} records but the partition says {}",
                        partition.records
                    ),
                });
            }
        }
    }
    problems.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(ArchiveReport {
        backup_id: manifest.backup_id.to_string(),
        objects_checked: manifest.segments().count(),
        records: checked,
        records_in_manifest: manifest.totals.records,
        records_decoded: decode && failed.is_empty(),
        manifest_damaged: false,
        problems,
    })
}

/// Re-reads a data-dir backup's archive object (streamed, not buffered) and checks its size and
/// SHA-256 against the manifest; an encrypted one is also decrypted with `encryption_key`,
/// every chunk's tag checked (and the stream's end). Returns the problems found (none =
/// intact); an encrypted backup without its key, or with another key, is an error.
pub async fn verify_datadir_archive(
    location: &Location,
    manifest: &DatadirManifest,
    encryption_key: Option<&EncryptionKey>,
) -> Result<Vec<ObjectProblem>, Error> {
    use sha2::{Digest, Sha256};
    let archive = &manifest.archive;
    let mut opener = key_for_datadir_backup(manifest, encryption_key)?
        .map(|key| StreamOpener::new(&key, &archive.key));
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut decrypt_error = None;
    let streamed = location
        .stream(&archive.key, |chunk| {
            hasher.update(chunk);
            size += chunk.len() as u64;
            if let (Some(stream), None) = (&mut opener, &decrypt_error) {
                decrypt_error = stream.update(chunk, |_| {}).err();
            }
        })
        .await;
    if let (Some(stream), None) = (opener, &decrypt_error) {
        decrypt_error = stream.finish(|_| {}).err();
    }
    let problem = match streamed {
        Err(err) => Some(err.to_string()),
        Ok(()) => archive
            .mismatch(size, &hex::encode(hasher.finalize()))
            .or(decrypt_error.map(|err| err.to_string())),
    };
    Ok(problem
        .map(|problem| ObjectProblem {
            key: archive.key.clone(),
            problem,
        })
        .into_iter()
        .collect())
}
