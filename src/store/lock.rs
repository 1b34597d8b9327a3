//! Location locks: how the backups, restores, verifies and prunes that share one location
//! make their presence known, so that a prune never deletes what a live run may still
//! publish or read (restic's repository locks are the model; docs/FORMAT.md, "Locks").
//!
//! A run writes `locks/<lock-id>.json` before it touches anything, refreshes it every
//! [`REFRESH_EVERY`], and deletes it when it ends. A lock is *live* until its object has not
//! been rewritten for [`STALE_AFTER`] (the store's own `last_modified`, not the holder's
//! clock), or until its holder is known to be dead (same host, process gone). Shared locks
//! (backup, restore, verify) name the backups they write or read; prune takes an exclusive
//! lock and keeps every backup a live shared lock names. Whoever writes its lock first is
//! seen by the other: a shared locker that finds a live prune waits for it to end.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;

use super::layout::{lock_key, LOCKS_DIR};
use super::{Location, StoreError};
use crate::archive::BackupId;

/// How often a holder rewrites its lock object.
pub(crate) const REFRESH_EVERY: Duration = Duration::from_secs(60);
/// A lock whose object has not been rewritten for this long belongs to a run that crashed
/// (or lost the store), and is ignored.
pub(crate) const STALE_AFTER: Duration = Duration::from_secs(5 * 60);
/// How long a backup, restore or verify waits for a running prune to finish.
pub(crate) const PRUNE_WAIT: Duration = Duration::from_secs(10 * 60);
/// How often a waiting run looks again.
const POLL_EVERY: Duration = Duration::from_millis(500);

/// Lock objects are small JSON documents; this version is checked by readers.
pub(crate) const LOCK_FORMAT_VERSION: u32 = 1;

/// What a lock's holder is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LockKind {
    Backup,
    DatadirBackup,
    Restore,
    Verify,
    Prune,
}

impl LockKind {
    /// Prune is the only exclusive kind: it deletes.
    pub(crate) fn exclusive(self) -> bool {
        self == LockKind::Prune
    }

    fn name(self) -> &'static str {
        match self {
            LockKind::Backup => "backup",
            LockKind::DatadirBackup => "datadir backup",
            LockKind::Restore => "restore",
            LockKind::Verify => "verify",
            LockKind::Prune => "prune",
        }
    }
}

/// The content of one lock object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct LockInfo {
    pub(crate) format_version: u32,
    pub(crate) lock_id: String,
    pub(crate) kind: LockKind,
    pub(crate) exclusive: bool,
    pub(crate) hostname: String,
    pub(crate) pid: u32,
    /// The holder's pid namespace (`/proc/self/ns/pid`): host name and pid identify a
    /// process only within one (pods on the host network share a host name, all pid 1).
    #[serde(default)]
    pub(crate) pid_namespace: String,
    /// RFC 3339, the holder's clock.
    pub(crate) started_at: String,
    /// RFC 3339, the holder's clock (informational: staleness uses the store's time).
    pub(crate) refreshed_at: String,
    /// Logical backups (`backups/<id>/`) this run writes or reads.
    #[serde(default)]
    pub(crate) backups: BTreeSet<BackupId>,
    /// Data-dir backups (`datadir/<id>/`) this run writes or reads.
    #[serde(default)]
    pub(crate) datadir_backups: BTreeSet<BackupId>,
    /// Set on a follower's lock (`backup --follow`, kind `backup`), held for its whole run:
    /// a second follower refuses to start beside it. Older readers ignore the field and see
    /// a shared backup lock, which is what it is.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) follower: bool,
}

impl LockInfo {
    /// "backup on host h (pid 7) since 2026-12-02T10:00:00Z": for messages and reasons.
    pub(crate) fn describe(&self) -> String {
        format!(
            "{} on host {} (pid {}) since {}",
            self.kind.name(),
            self.hostname,
            self.pid,
            self.started_at
        )
    }
}

/// One lock object found at a location.
#[derive(Debug, Clone)]
pub struct HeldLock {
    pub key: String,
    /// `None` when the object is not a lock this kafkasnap can read.
    pub(crate) info: Option<LockInfo>,
    pub(crate) last_modified: SystemTime,
}

impl HeldLock {
    pub fn describe(&self) -> String {
        match &self.info {
            Some(info) => info.describe(),
            None => format!("an unreadable lock object {}", self.key),
        }
    }

    fn is_exclusive(&self) -> bool {
        self.info.as_ref().is_none_or(|info| info.exclusive)
    }
}

/// The locks at a location, split by whether their holder may still be running.
#[derive(Debug, Clone, Default)]
pub struct LockListing {
    pub(crate) live: Vec<HeldLock>,
    pub stale: Vec<HeldLock>,
}

/// What can stop a run from taking its lock. Nothing was written or deleted by the run when
/// this is returned (its own lock object is removed again).
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("another prune is running at {location} ({other}); run this prune again once it has ended (its lock goes stale {stale} after its last refresh if it crashed)", stale = humantime::format_duration(STALE_AFTER))]
    PruneRunning { location: String, other: String },
    #[error("a prune has held {location} for longer than {waited} ({other}); nothing was written. Run again once it has ended; if it crashed, its lock goes stale {stale} after its last refresh", waited = humantime::format_duration(PRUNE_WAIT), stale = humantime::format_duration(STALE_AFTER))]
    PruneTooLong { location: String, other: String },
    #[error("another follower (backup --follow) is running at {location} ({other}): two would each publish a chain of checkpoints of their own; stop that one first (if it crashed, its lock goes stale {stale} after its last refresh)", stale = humantime::format_duration(STALE_AFTER))]
    FollowerRunning { location: String, other: String },
    #[error("interrupted while waiting for a prune at {location} to finish; nothing was written")]
    Interrupted { location: String },
    #[error("the lock {key} at {location} could not be refreshed for {for_how_long}: a prune may have taken this run for crashed; {what} (run it again)")]
    Lost {
        location: String,
        key: String,
        for_how_long: String,
        what: &'static str,
    },
}

/// Every lock at `location`, live or stale at `now`.
pub async fn list_locks(location: &Location, now: SystemTime) -> Result<LockListing, StoreError> {
    let me = Holder::this_process();
    let mut listing = LockListing::default();
    for object in location.list_objects_with_time(LOCKS_DIR).await? {
        if !object.key.ends_with(".json") {
            continue;
        }
        let info = match location.get(&object.key).await {
            Ok(bytes) => serde_json::from_slice::<LockInfo>(&bytes)
                .ok()
                .filter(|info| info.format_version == LOCK_FORMAT_VERSION),
            // Released between the listing and the read.
            Err(StoreError::NotFound { .. }) => continue,
            Err(err) => return Err(err),
        };
        let lock = HeldLock {
            key: object.key,
            info,
            last_modified: object.last_modified,
        };
        let old = now
            .duration_since(lock.last_modified)
            .is_ok_and(|age| age > STALE_AFTER);
        let dead = lock.info.as_ref().is_some_and(|info| me.knows_dead(info));
        if old || dead {
            listing.stale.push(lock);
        } else {
            listing.live.push(lock);
        }
    }
    Ok(listing)
}

/// A lock this process holds. Refreshed in the background until [`LocationLock::release`].
pub struct LocationLock {
    location: Location,
    key: String,
    info: Arc<Mutex<LockInfo>>,
    /// When the lock object was last written successfully.
    refreshed: Arc<Mutex<std::time::Instant>>,
    heartbeat: JoinHandle<()>,
    released: bool,
}

impl LocationLock {
    /// Takes a shared lock naming `backups` and `datadir_backups`. If a prune holds the
    /// location, waits (up to [`PRUNE_WAIT`], stopping when `cancel` is set) for it to end.
    /// Resolve and read the backups only after this returns: a prune that started earlier
    /// may have deleted what it did not know was in use.
    pub async fn shared(
        location: &Location,
        kind: LockKind,
        backups: impl IntoIterator<Item = BackupId>,
        datadir_backups: impl IntoIterator<Item = BackupId>,
        cancel: &AtomicBool,
    ) -> Result<LocationLock, LockError> {
        debug_assert!(!kind.exclusive());
        let lock = Self::write(location, kind, backups, datadir_backups, false).await?;
        lock.wait_for_prunes(cancel).await
    }

    /// Takes a follower's lock (a shared backup lock, for the follower's whole run), then waits
    /// for prunes as [`Self::shared`] does. Another follower's lock that is live at `location`
    /// is watched first: if its holder refreshes it, this follower refuses (two followers that
    /// start together both refuse); if it goes stale or away unrefreshed (the lock of a
    /// follower that was killed, whose restarted pod cannot tell it was its own), this one
    /// goes on. That takes at most [`STALE_AFTER`]; an interrupt stops the wait.
    pub async fn follower(
        location: &Location,
        cancel: &AtomicBool,
    ) -> Result<LocationLock, LockError> {
        let mut lock = Self::write(location, LockKind::Backup, [], [], true).await?;
        let mut watched: Option<(String, SystemTime)> = None;
        loop {
            let listing = lock.list_or_release().await?;
            let other = listing
                .live
                .iter()
                .find(|l| l.key != lock.key && l.info.as_ref().is_some_and(|info| info.follower));
            let Some(other) = other else {
                return lock.wait_for_prunes(cancel).await;
            };
            match &watched {
                Some((key, seen)) if *key == other.key && other.last_modified > *seen => {
                    let other = other.describe();
                    lock.release().await;
                    return Err(LockError::FollowerRunning {
                        location: location.display().to_string(),
                        other,
                    });
                }
                Some((key, _)) if *key == other.key => {}
                _ => {
                    tracing::warn!(
                        "another follower's lock is at {} ({}): waiting to see whether it is still refreshed (then this one stops) or goes stale, as a killed follower's does (then this one goes on)",
                        location.display(),
                        other.describe()
                    );
                    watched = Some((other.key.clone(), other.last_modified));
                }
            }
            if cancel.load(Ordering::Relaxed) {
                lock.release().await;
                return Err(LockError::Interrupted {
                    location: location.display().to_string(),
                });
            }
            tokio::time::sleep(POLL_EVERY * 4).await;
        }
    }

    /// Every lock at the location now; on failure this lock is released first.
    async fn list_or_release(&mut self) -> Result<LockListing, LockError> {
        match list_locks(&self.location, SystemTime::now()).await {
            Ok(listing) => Ok(listing),
            Err(err) => {
                self.release_now().await;
                Err(err.into())
            }
        }
    }

    /// Waits while a live prune holds the location (see [`Self::shared`]); on failure the
    /// lock is released.
    async fn wait_for_prunes(self, cancel: &AtomicBool) -> Result<LocationLock, LockError> {
        let mut lock = self;
        let location = &lock.location.clone();
        let waited_since = std::time::Instant::now();
        let mut told = false;
        loop {
            let listing = lock.list_or_release().await?;
            let Some(prune) = listing.live.iter().find(|l| l.is_exclusive()) else {
                return Ok(lock);
            };
            if !told {
                tracing::warn!(
                    "waiting for a prune at {} to finish: {}",
                    location.display(),
                    prune.describe()
                );
                told = true;
            }
            let other = prune.describe();
            if waited_since.elapsed() > PRUNE_WAIT {
                lock.release().await;
                return Err(LockError::PruneTooLong {
                    location: location.display().to_string(),
                    other,
                });
            }
            if cancel.load(Ordering::Relaxed) {
                lock.release().await;
                return Err(LockError::Interrupted {
                    location: location.display().to_string(),
                });
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
    }

    /// Takes the exclusive lock of a prune. Refuses when another prune is live. Returns the
    /// live shared locks: what they name must be kept.
    pub async fn exclusive(location: &Location) -> Result<(LocationLock, LockListing), LockError> {
        let mut lock = Self::write(location, LockKind::Prune, [], [], false).await?;
        let mut listing = lock.list_or_release().await?;
        listing.live.retain(|l| l.key != lock.key);
        if let Some(other) = listing.live.iter().find(|l| l.is_exclusive()) {
            let other = other.describe();
            lock.release().await;
            return Err(LockError::PruneRunning {
                location: location.display().to_string(),
                other,
            });
        }
        Ok((lock, listing))
    }

    async fn write(
        location: &Location,
        kind: LockKind,
        backups: impl IntoIterator<Item = BackupId>,
        datadir_backups: impl IntoIterator<Item = BackupId>,
        follower: bool,
    ) -> Result<LocationLock, StoreError> {
        let holder = Holder::this_process();
        let now = SystemTime::now();
        let stamp = humantime::format_rfc3339_seconds(now).to_string();
        let lock_id = format!("{}-{}", compact(&stamp), random_hex()?);
        let info = LockInfo {
            format_version: LOCK_FORMAT_VERSION,
            lock_id: lock_id.clone(),
            kind,
            exclusive: kind.exclusive(),
            hostname: holder.hostname,
            pid: holder.pid,
            pid_namespace: holder.pid_namespace,
            started_at: stamp.clone(),
            refreshed_at: stamp,
            backups: backups.into_iter().collect(),
            datadir_backups: datadir_backups.into_iter().collect(),
            follower,
        };
        let key = lock_key(&lock_id);
        location.put(&key, to_json(&info)).await?;
        HELD.lock()
            .expect("held locks")
            .push((key.clone(), location.clone()));
        let info = Arc::new(Mutex::new(info));
        let refreshed = Arc::new(Mutex::new(std::time::Instant::now()));
        let heartbeat = tokio::spawn(heartbeat(
            location.clone(),
            key.clone(),
            Arc::clone(&info),
            Arc::clone(&refreshed),
        ));
        tracing::debug!(lock = %key, "location lock taken");
        Ok(LocationLock {
            location: location.clone(),
            key,
            info,
            refreshed,
            heartbeat,
            released: false,
        })
    }

    /// Adds `id` to the logical backups this lock protects, and rewrites the lock now.
    pub(crate) async fn protect(&self, id: BackupId) -> Result<(), StoreError> {
        self.info.lock().expect("lock info").backups.insert(id);
        self.refresh().await
    }

    /// Makes `id` the only logical backup this lock protects (a follower's newest
    /// checkpoint, which its next one builds on), and rewrites the lock now.
    pub(crate) async fn protect_only(&self, id: BackupId) -> Result<(), StoreError> {
        {
            let mut info = self.info.lock().expect("lock info");
            info.backups.clear();
            info.backups.insert(id);
        }
        self.refresh().await
    }

    /// Rewrites the lock object now.
    pub(crate) async fn refresh(&self) -> Result<(), StoreError> {
        refresh_once(&self.location, &self.key, &self.info, &self.refreshed).await
    }

    /// Fails when the lock may have looked stale to others: call it right before
    /// publishing. `what` says what that means for this run.
    pub(crate) async fn check_held(&self, what: &'static str) -> Result<(), LockError> {
        let since = *self.refreshed.lock().expect("refresh time");
        let refreshed = self.refresh().await;
        let gap = since.elapsed();
        if refreshed.is_err() || gap > STALE_AFTER - REFRESH_EVERY / 2 {
            return Err(LockError::Lost {
                location: self.location.display().to_string(),
                key: self.key.clone(),
                for_how_long: humantime::format_duration(Duration::from_secs(gap.as_secs()))
                    .to_string(),
                what,
            });
        }
        Ok(())
    }

    /// Stops refreshing and deletes the lock object (best effort: a lock left behind goes
    /// stale on its own).
    pub async fn release(mut self) {
        self.release_now().await;
    }

    /// [`Self::release`] for a holder that still owns the guard (it drops it right after).
    async fn release_now(&mut self) {
        self.heartbeat.abort();
        self.released = true;
        HELD.lock()
            .expect("held locks")
            .retain(|(key, _)| *key != self.key);
        if let Err(err) = self.location.delete_object(&self.key).await {
            tracing::warn!("could not remove the lock {}: {err}", self.key);
        }
    }
}

/// A lock dropped without [`LocationLock::release`] (an early return) is deleted in the
/// background if the runtime still runs; one left behind goes stale on its own (at once
/// for runs on the same host, whose process is gone).
impl Drop for LocationLock {
    fn drop(&mut self) {
        self.heartbeat.abort();
        if self.released {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (location, key) = (self.location.clone(), self.key.clone());
            runtime.spawn(async move {
                let _ = location.delete_object(&key).await;
            });
        }
    }
}

async fn heartbeat(
    location: Location,
    key: String,
    info: Arc<Mutex<LockInfo>>,
    refreshed: Arc<Mutex<std::time::Instant>>,
) {
    loop {
        tokio::time::sleep(REFRESH_EVERY).await;
        if let Err(err) = refresh_once(&location, &key, &info, &refreshed).await {
            tracing::warn!("could not refresh the lock {key}: {err}");
        }
    }
}

async fn refresh_once(
    location: &Location,
    key: &str,
    info: &Mutex<LockInfo>,
    refreshed: &Mutex<std::time::Instant>,
) -> Result<(), StoreError> {
    let json = {
        let mut info = info.lock().expect("lock info");
        info.refreshed_at = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
        to_json(&info)
    };
    let attempt = std::time::Instant::now();
    location.put(key, json).await?;
    *refreshed.lock().expect("refresh time") = attempt;
    Ok(())
}

fn to_json(info: &LockInfo) -> Vec<u8> {
    serde_json::to_vec_pretty(info).expect("a lock serializes")
}

/// `2026-12-02T10:00:00Z` -> `20261202T100000Z`.
fn compact(stamp: &str) -> String {
    stamp.chars().filter(|c| *c != '-' && *c != ':').collect()
}

fn random_hex() -> Result<String, StoreError> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).map_err(|err| StoreError::NoRandomness {
        reason: err.to_string(),
    })?;
    Ok(hex::encode(bytes))
}

/// This process, as a lock names it.
struct Holder {
    hostname: String,
    pid: u32,
    pid_namespace: String,
}

impl Holder {
    fn this_process() -> Holder {
        Holder {
            hostname: hostname(),
            pid: std::process::id(),
            pid_namespace: std::fs::read_link("/proc/self/ns/pid")
                .map(|link| link.display().to_string())
                .unwrap_or_default(),
        }
    }

    /// Whether `info`'s holder ran on this host and is gone (no such process, or it is
    /// this process but not a lock it holds: a restarted container reuses pid 1).
    fn knows_dead(&self, info: &LockInfo) -> bool {
        let same_namespace = !self.hostname.is_empty()
            && !self.pid_namespace.is_empty()
            && info.hostname == self.hostname
            && info.pid_namespace == self.pid_namespace;
        if !same_namespace {
            return false;
        }
        if info.pid == self.pid {
            let key = lock_key(&info.lock_id);
            return !HELD
                .lock()
                .expect("held locks")
                .iter()
                .any(|(k, _)| *k == key);
        }
        !process_exists(info.pid)
    }
}

/// The locks this process holds now, for [`release_held_locks`] (and to tell a lock of
/// ours from a predecessor's with the same pid).
static HELD: Mutex<Vec<(String, Location)>> = Mutex::new(Vec::new());

/// Deletes every lock this process still holds, waiting at most `limit`: for a command cut
/// off by a signal while its own code cannot run to the end. Best effort.
pub async fn release_held_locks(limit: Duration) {
    let held: Vec<(String, Location)> = std::mem::take(&mut *HELD.lock().expect("held locks"));
    let deletes = held
        .iter()
        .map(|(key, location)| location.delete_object(key));
    let _ = tokio::time::timeout(limit, futures::future::join_all(deletes)).await;
}

fn hostname() -> String {
    let mut buffer = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates within it
    // or truncates, and we stop at the first NUL.
    let result = unsafe { libc::gethostname(buffer.as_mut_ptr().cast(), buffer.len()) };
    if result != 0 {
        return String::new();
    }
    let end = buffer.iter().position(|&b| b == 0).unwrap_or(buffer.len());
    String::from_utf8_lossy(&buffer[..end]).into_owned()
}

fn process_exists(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return true;
    };
    // SAFETY: signal 0 checks for existence and permission only; nothing is delivered.
    let result = unsafe { libc::kill(pid, 0) };
    result == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}
