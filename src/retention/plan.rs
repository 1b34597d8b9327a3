//! Planning a prune: read what a location holds (manifests, listings, live locks) and apply
//! the policy. Deletes nothing.

use std::collections::{BTreeSet, HashMap};
use std::time::SystemTime;

use super::policy::{decide, Candidate, LeftAlone, Policy, Reason};
use super::RetentionError;
use crate::archive::{
    BackupId, BackupSelector, EncryptionKey, KeyFit, Manifest, CLOCK_SKEW_ALLOWANCE,
};
use crate::store::{backup_of_key, BackupListing, Location, LockInfo, LockListing, StoredObject};
use crate::Error;
use futures::StreamExt;

/// One backup in a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedBackup {
    pub id: BackupId,
    pub complete: bool,
    pub reasons: Vec<Reason>,
    /// Its objects with sizes; listed only for backups to remove.
    pub objects: Vec<StoredObject>,
}

impl PlannedBackup {
    pub fn bytes(&self) -> u64 {
        self.objects.iter().map(|o| o.size).sum()
    }
}

/// Which backups a plan is about: each kind is kept by the policy on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    /// `backups/`: logical backups.
    Logical,
    /// `datadir/`: data-dir (physical) backups.
    Datadir,
}

/// What a prune keeps and removes, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrunePlan {
    pub(crate) family: Family,
    pub keep: Vec<PlannedBackup>,
    pub remove: Vec<PlannedBackup>,
    /// Things the operator should know (a parent that is not at the location, an id that
    /// is not a real time and so is left alone).
    pub warnings: Vec<String>,
}

impl PrunePlan {
    pub fn objects_to_remove(&self) -> usize {
        self.remove.iter().map(|b| b.objects.len()).sum()
    }

    pub fn bytes_to_free(&self) -> u64 {
        self.remove.iter().map(PlannedBackup::bytes).sum()
    }
}

/// Reads what `location` holds (every published manifest, for its parent and segment keys)
/// and applies `policy` at time `now`. Deletes nothing. Refuses when a published manifest
/// cannot be read: what it builds on would be unknown. Given `encryption_key`, a backup
/// whose manifest does not authenticate under it (no seal that checks, plaintext, another
/// key's) is left alone: a manifest planted by whoever can write to the location must
/// neither push genuine backups out of the keep rules nor be removed as if it were one.
pub async fn plan(
    location: &Location,
    policy: &Policy,
    now: SystemTime,
    locks: &LockListing,
    encryption_key: Option<&EncryptionKey>,
) -> Result<PrunePlan, RetentionError> {
    policy.validate()?;
    let in_use = in_use(locks, |info| &info.backups)?;
    let mut warnings = Vec::new();
    let mut candidates = Vec::new();
    let mut leftovers = HashMap::new();
    let backups = dated(location.list_backups().await?, "", now, &mut warnings);
    // Read a few at a time: a follower's location holds thousands of backups.
    let mut reads = futures::stream::iter(&backups)
        .map(|(listing, _, _)| async move {
            match listing.complete {
                true => Read::Published(Box::new(
                    read_published(location, &listing.id, encryption_key).await,
                )),
                false => Read::Unpublished(location.unpublished_backup_objects(&listing.id).await),
            }
        })
        .buffered(READS_AT_ONCE);
    for (listing, started_at, left_alone) in backups.iter().cloned() {
        let mut left_alone = left_alone;
        let read = reads.next().await.expect("one read per backup");
        let (mut parent, mut uses, mut last_written) = (None, Vec::new(), None);
        if let Read::Published(manifest) = read {
            let manifest = (*manifest)?;
            if let Some(why) = &manifest.unauthenticated {
                warnings.push(format!(
                    "left {} alone: {why}; it counts for no keep rule and is not removed (what it names stays too)",
                    listing.id
                ));
                left_alone = left_alone.or(Some(LeftAlone::Unauthenticated));
            }
            let manifest = manifest.manifest;
            uses = manifest
                .segments()
                .filter_map(|(_, _, segment)| backup_of_key(&segment.key))
                .filter(|holder| *holder != listing.id)
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            // Only a delta needs its parent to be read; a manifest that lists every segment
            // needs just the backups holding them (`uses`).
            parent = manifest.parent.filter(|_| manifest.delta.is_some());
        } else if let Read::Unpublished(objects) = read {
            let (objects, newest) = objects?;
            last_written = newest;
            leftovers.insert(listing.id.clone(), objects);
        }
        candidates.push(Candidate {
            in_use_by: in_use.get(&listing.id).cloned().unwrap_or_default(),
            id: listing.id,
            started_at,
            complete: listing.complete,
            last_written,
            left_alone,
            parent,
            uses,
        });
    }
    let present: BTreeSet<&BackupId> = candidates.iter().map(|c| &c.id).collect();
    for candidate in &candidates {
        for needed in candidate.parent.iter().chain(&candidate.uses) {
            if !present.contains(needed) {
                warnings.push(format!(
                    "backup {} builds on {needed}, which is not at this location",
                    candidate.id
                ));
            }
        }
    }
    plan_from(
        location,
        Family::Logical,
        &candidates,
        leftovers,
        policy,
        now,
        warnings,
    )
    .await
}

/// Backups whose manifest or objects are read at the same time.
const READS_AT_ONCE: usize = 16;

/// What prune reads of one backup: its manifest, or an unpublished one's objects.
enum Read {
    Published(Box<Result<Published, RetentionError>>),
    Unpublished(Result<(Vec<StoredObject>, Option<SystemTime>), crate::store::StoreError>),
}

/// A published manifest as prune reads it, and why it is not authenticated (`None`: it is,
/// or no key was given).
struct Published {
    manifest: Manifest,
    unauthenticated: Option<String>,
}

/// Reads published backup `id`'s manifest. Without a key it is only parsed. With one, it is
/// read as restore reads it (size and structure checked, the seal checked); one whose seal
/// is missing or does not check, or that is plaintext or another key's, is returned with
/// why it is not authenticated. One that cannot be read at all is refused.
async fn read_published(
    location: &Location,
    id: &BackupId,
    encryption_key: Option<&EncryptionKey>,
) -> Result<Published, RetentionError> {
    let unreadable = |source| RetentionError::UnreadableManifest {
        id: id.clone(),
        key: location.manifest_key(id),
        source,
    };
    let Some(key) = encryption_key else {
        let bytes = location.read_manifest(id).await?;
        let manifest = Manifest::from_json(&bytes).map_err(unreadable)?;
        return Ok(Published {
            manifest,
            unauthenticated: None,
        });
    };
    // As stored: a delta's own segments and its parent are what it builds on (folding every
    // checkpoint's chain would read each manifest once per later delta).
    match crate::read::read_manifest_as_stored(location, id, Some(key)).await {
        Ok(manifest) => {
            let unauthenticated = match KeyFit::of(manifest.encryption.as_ref(), Some(key)) {
                KeyFit::NotEncrypted => Some("its manifest is not encrypted, so it cannot be authenticated under the given key (prune without --key-file applies the rules to it)".to_string()),
                KeyFit::OtherKey { recorded, given } => Some(format!(
                    "it is encrypted with key id {}, not the given key id {}, so its manifest cannot be authenticated",
                    recorded.key_id,
                    given.id()
                )),
                KeyFit::SameKey(_) | KeyFit::Plaintext | KeyFit::KeyMissing(_) => None,
            };
            Ok(Published {
                manifest,
                unauthenticated,
            })
        }
        Err(Error::ManifestDamaged { source, .. }) if source.is_about_the_seal() => {
            // Parsed again without the key, only for what it builds on (kept with it).
            let bytes = location.read_manifest(id).await?;
            let manifest = Manifest::from_json(&bytes).map_err(unreadable)?;
            Ok(Published {
                manifest,
                unauthenticated: Some(format!("its manifest is not authenticated: {source}")),
            })
        }
        Err(Error::ManifestDamaged { source, .. } | Error::Archive { source, .. }) => {
            Err(unreadable(source))
        }
        Err(Error::Store(source)) => Err(RetentionError::Store(source)),
        Err(other) => Err(RetentionError::Read(Box::new(other))),
    }
}

/// The same policy applied to the data-dir backups at `location` (they build on nothing and
/// nothing builds on them). Deletes nothing.
pub async fn plan_datadir(
    location: &Location,
    policy: &Policy,
    now: SystemTime,
    locks: &LockListing,
    encryption_key: Option<&EncryptionKey>,
) -> Result<PrunePlan, RetentionError> {
    policy.validate()?;
    let in_use = in_use(locks, |info| &info.datadir_backups)?;
    let mut warnings = Vec::new();
    let mut candidates = Vec::new();
    let mut leftovers = HashMap::new();
    let listings = location.list_datadir_backups().await?;
    for (listing, started_at, mut left_alone) in
        dated(listings, "data-dir backup ", now, &mut warnings)
    {
        if let (true, Some(key)) = (listing.complete, encryption_key) {
            if let Some(why) = datadir_unauthenticated(location, &listing.id, key).await? {
                warnings.push(format!(
                    "left data-dir backup {} alone: {why}; it counts for no keep rule and is not removed",
                    listing.id
                ));
                left_alone = left_alone.or(Some(LeftAlone::Unauthenticated));
            }
        }
        let mut last_written = None;
        if !listing.complete {
            let (objects, newest) = location.unpublished_datadir_objects(&listing.id).await?;
            last_written = newest;
            leftovers.insert(listing.id.clone(), objects);
        }
        candidates.push(Candidate {
            in_use_by: in_use.get(&listing.id).cloned().unwrap_or_default(),
            id: listing.id,
            started_at,
            complete: listing.complete,
            last_written,
            left_alone,
            parent: None,
            uses: Vec::new(),
        });
    }
    plan_from(
        location,
        Family::Datadir,
        &candidates,
        leftovers,
        policy,
        now,
        warnings,
    )
    .await
}

/// Why data-dir backup `id`'s manifest is not authenticated under `key` (`None`: it is).
async fn datadir_unauthenticated(
    location: &Location,
    id: &BackupId,
    key: &EncryptionKey,
) -> Result<Option<String>, RetentionError> {
    match crate::read::open_datadir_backup(location, &BackupSelector::Exact(id.clone()), Some(key))
        .await
    {
        Ok(manifest) => Ok(match KeyFit::of(manifest.encryption.as_ref(), Some(key)) {
            KeyFit::NotEncrypted => Some(
                "its manifest is not encrypted, so it cannot be authenticated under the given key"
                    .into(),
            ),
            KeyFit::OtherKey { recorded, given } => Some(format!(
                "it is encrypted with key id {}, not the given key id {}",
                recorded.key_id,
                given.id()
            )),
            KeyFit::SameKey(_) | KeyFit::Plaintext | KeyFit::KeyMissing(_) => None,
        }),
        Err(Error::ManifestDamaged { source, .. }) if source.is_about_the_seal() => {
            Ok(Some(format!("its manifest is not authenticated: {source}")))
        }
        Err(Error::ManifestDamaged { source, .. } | Error::Archive { source, .. }) => {
            Err(RetentionError::UnreadableManifest {
                id: id.clone(),
                key: location.datadir_manifest_key(id),
                source,
            })
        }
        Err(Error::Store(source)) => Err(RetentionError::Store(source)),
        Err(other) => Err(RetentionError::Read(Box::new(other))),
    }
}

/// Which backups the live locks name (`named` picks the family), with who holds them.
/// A live lock this kafkasnap cannot read might name anything: the prune is refused.
fn in_use(
    locks: &LockListing,
    named: impl Fn(&LockInfo) -> &BTreeSet<BackupId>,
) -> Result<HashMap<BackupId, Vec<String>>, RetentionError> {
    let mut in_use: HashMap<BackupId, Vec<String>> = HashMap::new();
    for lock in &locks.live {
        let Some(info) = &lock.info else {
            return Err(RetentionError::UnreadableLock {
                key: lock.key.clone(),
            });
        };
        for id in named(info) {
            in_use.entry(id.clone()).or_default().push(info.describe());
        }
    }
    Ok(in_use)
}

/// The listed backups with the time to sort them by and whether they are left alone. One
/// whose id is not a real UTC time, or is dated later than `now` plus the clock skew
/// allowance (no backup begun yet has such an id: a planted manifest must neither push
/// genuine backups out of the keep rules nor be deleted as if it were one, and a real one
/// from a machine with a fast clock keeps what it builds on), is left alone, with a warning
/// (`kind` names the family in it).
fn dated(
    listings: Vec<BackupListing>,
    kind: &str,
    now: SystemTime,
    warnings: &mut Vec<String>,
) -> Vec<(BackupListing, SystemTime, Option<LeftAlone>)> {
    listings
        .into_iter()
        .map(|listing| match listing.id.started_at() {
            Some(started_at) if listing.id.is_future_dated(now) => {
                warnings.push(format!(
                    "left {kind}{} alone: its id is dated more than {} in the future, so no \
                     backup begun yet has it; it counts for no keep rule (check the clock of \
                     the machine that wrote it, or whether it was planted)",
                    listing.id,
                    humantime::format_duration(CLOCK_SKEW_ALLOWANCE)
                ));
                (listing, started_at, Some(LeftAlone::NotARealTime))
            }
            Some(started_at) => (listing, started_at, None),
            None => {
                warnings.push(format!(
                    "left {kind}{} alone: its id is not a real UTC time",
                    listing.id
                ));
                (listing, now, Some(LeftAlone::NotARealTime))
            }
        })
        .collect()
}

/// `leftovers`: the objects of unpublished backups, listed while planning (not again).
async fn plan_from(
    location: &Location,
    family: Family,
    candidates: &[Candidate],
    mut leftovers: HashMap<BackupId, Vec<StoredObject>>,
    policy: &Policy,
    now: SystemTime,
    warnings: Vec<String>,
) -> Result<PrunePlan, RetentionError> {
    let mut plan = PrunePlan {
        family,
        keep: Vec::new(),
        remove: Vec::new(),
        warnings,
    };
    for decision in decide(candidates, policy, now)? {
        let objects = match (decision.keep, family) {
            (true, _) => Vec::new(),
            (false, _) if leftovers.contains_key(&decision.id) => {
                leftovers.remove(&decision.id).unwrap_or_default()
            }
            (false, Family::Logical) => location.list_backup_objects(&decision.id).await?,
            (false, Family::Datadir) => location.list_datadir_objects(&decision.id).await?,
        };
        let planned = PlannedBackup {
            id: decision.id,
            complete: decision.complete,
            reasons: decision.reasons,
            objects,
        };
        if decision.keep {
            plan.keep.push(planned);
        } else {
            plan.remove.push(planned);
        }
    }
    Ok(plan)
}
