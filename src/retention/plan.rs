//! Planning a prune: read what a location holds (manifests, listings, live locks) and apply
//! the policy. Deletes nothing.

use std::collections::{BTreeSet, HashMap};
use std::time::SystemTime;

use super::policy::{decide, Candidate, Policy, Reason};
use super::RetentionError;
use crate::archive::{BackupId, Manifest, CLOCK_SKEW_ALLOWANCE};
use crate::store::{backup_of_key, BackupListing, Location, LockInfo, LockListing, StoredObject};

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
pub enum Family {
    /// `backups/`: logical backups.
    Logical,
    /// `datadir/`: data-dir (physical) backups.
    Datadir,
}

/// What a prune keeps and removes, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrunePlan {
    pub family: Family,
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
/// cannot be read: what it builds on would be unknown.
pub async fn plan(
    location: &Location,
    policy: &Policy,
    now: SystemTime,
    locks: &LockListing,
) -> Result<PrunePlan, RetentionError> {
    policy.validate()?;
    let in_use = in_use(locks, |info| &info.backups)?;
    let mut warnings = Vec::new();
    let mut candidates = Vec::new();
    for (listing, started_at, left_alone) in
        dated(location.list_backups().await?, "", now, &mut warnings)
    {
        let (parent, uses) = if listing.complete {
            let bytes = location.read_manifest(&listing.id).await?;
            let manifest = Manifest::from_json(&bytes).map_err(|source| {
                RetentionError::UnreadableManifest {
                    id: listing.id.clone(),
                    key: location.manifest_key(&listing.id),
                    source,
                }
            })?;
            let uses: BTreeSet<BackupId> = manifest
                .segments()
                .filter_map(|(_, _, segment)| backup_of_key(&segment.key))
                .filter(|holder| *holder != listing.id)
                .collect();
            (manifest.parent, uses.into_iter().collect())
        } else {
            (None, Vec::new())
        };
        let last_written = match listing.complete {
            true => None,
            false => location.backup_last_written(&listing.id).await?,
        };
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
        policy,
        now,
        warnings,
    )
    .await
}

/// The same policy applied to the data-dir backups at `location` (they build on nothing and
/// nothing builds on them). Deletes nothing.
pub async fn plan_datadir(
    location: &Location,
    policy: &Policy,
    now: SystemTime,
    locks: &LockListing,
) -> Result<PrunePlan, RetentionError> {
    policy.validate()?;
    let in_use = in_use(locks, |info| &info.datadir_backups)?;
    let mut warnings = Vec::new();
    let mut candidates = Vec::new();
    let listings = location.list_datadir_backups().await?;
    for (listing, started_at, left_alone) in dated(listings, "data-dir backup ", now, &mut warnings)
    {
        let last_written = match listing.complete {
            true => None,
            false => location.datadir_last_written(&listing.id).await?,
        };
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
        policy,
        now,
        warnings,
    )
    .await
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
) -> Vec<(BackupListing, SystemTime, bool)> {
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
                (listing, started_at, true)
            }
            Some(started_at) => (listing, started_at, false),
            None => {
                warnings.push(format!(
                    "left {kind}{} alone: its id is not a real UTC time",
                    listing.id
                ));
                (listing, now, true)
            }
        })
        .collect()
}

async fn plan_from(
    location: &Location,
    family: Family,
    candidates: &[Candidate],
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
