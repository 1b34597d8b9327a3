//! Retention: which backups `prune` keeps and why (restic's `forget` rules over backup ids,
//! parents never deleted under a kept backup, a grace period for unpublished ones, nothing a
//! live run's lock names), and carrying out a prune at a location: unpublish first, then
//! delete the data.
//!
//! [`decide`] (`policy`) is the pure rule set over [`calendar`] buckets; [`plan`] feeds it
//! what a location holds; [`execute`] deletes what a plan removes. The deletion rules are in
//! `docs/FORMAT.md`, "Deleting backups" and "Locks".

mod calendar;
mod execute;
mod plan;
mod policy;

pub use execute::execute;
pub use plan::{plan, plan_datadir, PlannedBackup, PrunePlan};
pub use policy::Policy;

use crate::archive::{ArchiveError, BackupId};
use crate::store::{LockError, StoreError};

/// What can stop a prune. Nothing has been deleted when planning fails.
#[derive(Debug, thiserror::Error)]
pub enum RetentionError {
    #[error(
        "no retention rule: give at least one of --keep-last N, --keep-hourly N, --keep-daily N, \
         --keep-weekly N with N above 0, or --keep-within DURATION above 0s (e.g. 24h); prune \
         never deletes every backup"
    )]
    NoKeepRule,
    #[error(transparent)]
    Store(Box<StoreError>),
    #[error(transparent)]
    Lock(Box<LockError>),
    #[error("the lock object {key} is live but this kafkasnap cannot read it, so what it protects is unknown; nothing was deleted. If no kafkasnap runs at this location, remove it by hand (or wait until it is stale)")]
    UnreadableLock { key: String },
    #[error(
        "cannot read the manifest {key} of backup {id}, so what it builds on is unknown; \
         nothing was deleted. Check it with `kafkasnap show --backup {id}`, then repair or \
         remove it by hand, or use a kafkasnap that reads it"
    )]
    UnreadableManifest {
        id: BackupId,
        key: String,
        #[source]
        source: ArchiveError,
    },
    #[error("reading a manifest failed, so nothing was deleted: {0}")]
    Read(Box<crate::Error>),
}

impl From<LockError> for RetentionError {
    fn from(err: LockError) -> Self {
        RetentionError::Lock(Box::new(err))
    }
}

impl From<StoreError> for RetentionError {
    fn from(err: StoreError) -> Self {
        RetentionError::Store(Box::new(err))
    }
}
