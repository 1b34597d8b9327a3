//! Backup locations: URL -> object store, the object keys (built only in `layout`), atomic
//! create-only publish of manifests, listing what a location holds, deleting whole backups
//! (never through a local symlink), and the location locks that let runs share it.

mod backups;
mod layout;
mod local;
mod location;
mod lock;
mod objects;

pub use backups::BackupListing;
pub(crate) use layout::{backup_of_key, segment_key_matches};
pub use layout::{own_segments, segment_key, OwnSegments};
pub use location::{Location, StoreOptions};
pub use lock::{list_locks, release_held_locks, LocationLock, LockKind, LockListing};
pub(crate) use lock::{LockError, LockInfo};
pub(crate) use objects::StoredObject;

/// What can go wrong reaching or using a backup location. Every variant names the location
/// or object key; credentials are never part of a message.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot use backup location {location:?}: {reason}")]
    BadLocation { location: String, reason: String },
    /// Text that cannot name a usable location (empty, an unknown scheme, a relative
    /// `file://`, a regular file, S3 without credentials): refused before anything is read.
    #[error("cannot use {location:?} as a backup location: {reason}")]
    InvalidLocation { location: String, reason: String },
    #[error("cannot open backup location {location}: {source}")]
    Open {
        location: String,
        #[source]
        source: object_store::Error,
    },
    #[error("cannot create local backup directory {path}: {source}")]
    CreateDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {key} at {location}: {source}")]
    Put {
        location: String,
        key: String,
        #[source]
        source: object_store::Error,
    },
    #[error("{key} is missing at {location}")]
    NotFound { location: String, key: String },
    #[error("{key} at {location} is {actual} bytes, not the {expected} its manifest says; it was not read")]
    WrongSize {
        location: String,
        key: String,
        expected: u64,
        actual: u64,
    },
    #[error("cannot read {key} at {location}: {source}")]
    Get {
        location: String,
        key: String,
        #[source]
        source: object_store::Error,
    },
    #[error("cannot list {location}: {source}")]
    List {
        location: String,
        #[source]
        source: object_store::Error,
    },
    #[error("cannot delete {key} at {location}: {source}")]
    Delete {
        location: String,
        key: String,
        #[source]
        source: object_store::Error,
    },
    #[error("{key} already exists at {location} with other contents; a manifest is never overwritten (two backups got the same id?). Nothing was published: run the backup again")]
    AlreadyPublished { location: String, key: String },
    #[error("backup {backup_id} was not published at {location}: {} of the objects its manifest would name {} missing or changed ({}{}). Something deleted them while the backup ran (a prune with a short --grace from an older kafkasnap, a lifecycle rule, a person); run the backup again", .problems.len(), if .problems.len() == 1 { "is" } else { "are" }, .problems.iter().take(3).cloned().collect::<Vec<_>>().join("; "), if .problems.len() > 3 { "; ..." } else { "" })]
    NotPublishable {
        location: String,
        backup_id: String,
        problems: Vec<String>,
    },
    #[error("no random bytes from the operating system: {reason}")]
    NoRandomness { reason: String },
    #[error("refusing to delete {path}: {reason}; nothing outside the location is ever deleted. Remove it by hand if it is yours")]
    UnsafeLocalPath { path: String, reason: String },
    #[error("cannot remove local directory {path}: {source}")]
    RemoveDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl StoreError {
    /// The location given cannot be used as one at all: a bad request (exit 2), not a failure.
    pub fn is_invalid_request(&self) -> bool {
        matches!(self, StoreError::InvalidLocation { .. })
    }
}
