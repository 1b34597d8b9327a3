//! Retention: which backups `prune` keeps and why (restic's `forget` rules over backup ids,
//! parents never deleted under a kept backup, a grace period for unpublished ones), and
//! carrying out a prune at a location: unpublish first, then delete the data.
//!
//! [`decide`] is the pure policy; [`plan`] feeds it what a location holds; [`execute`]
//! deletes what a plan removes. The deletion rules are in `docs/FORMAT.md`, "Deleting backups".

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::archive::{ArchiveError, BackupId, Manifest};
use crate::store::{backup_of_key, BackupListing, Location, StoreError, StoredObject};

/// What to keep. A count of 0 turns its rule off; at least one rule must be on, so a
/// policy can never mean "delete everything".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// The N newest complete backups.
    pub keep_last: u32,
    /// For each of the last N UTC days that have complete backups, the newest of that day.
    pub keep_daily: u32,
    /// For each of the last N ISO weeks (UTC) that have complete backups, the newest of that week.
    pub keep_weekly: u32,
    /// Unpublished backups (no manifest) are deleted only when their id's time is older
    /// than this: younger ones may still be running.
    pub grace: Duration,
}

impl Policy {
    /// Refuses a policy without any rule that keeps something.
    pub fn validate(&self) -> Result<(), RetentionError> {
        if self.keep_last == 0 && self.keep_daily == 0 && self.keep_weekly == 0 {
            return Err(RetentionError::NoKeepRule);
        }
        Ok(())
    }
}

/// One backup as the policy sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub id: BackupId,
    /// When the backup began (the time in its id).
    pub started_at: SystemTime,
    /// Whether its manifest is published.
    pub complete: bool,
    /// The backup it builds on (incremental backups).
    pub parent: Option<BackupId>,
    /// Other backups whose prefixes hold segments its manifest lists.
    pub uses: Vec<BackupId>,
}

/// Why a backup is kept or removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// Among the `n` newest complete backups (`--keep-last n`).
    Last(u32),
    /// The newest backup of this UTC day, `YYYY-MM-DD`.
    Daily(String),
    /// The newest backup of this ISO week, `YYYY-Www`.
    Weekly(String),
    /// A kept backup names this one as its parent.
    ParentOf(BackupId),
    /// A kept backup's manifest lists segments stored under this one.
    SegmentsUsedBy(BackupId),
    /// Unpublished and younger than the grace period: it may still be running.
    WithinGrace(Duration),
    /// Complete, but no rule keeps it.
    NoRule,
    /// Unpublished and older than the grace period: a crashed or interrupted backup.
    PastGrace(Duration),
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Last(n) => write!(f, "last {n}"),
            Reason::Daily(day) => write!(f, "daily {day}"),
            Reason::Weekly(week) => write!(f, "weekly {week}"),
            Reason::ParentOf(child) => write!(f, "parent of {child}"),
            Reason::SegmentsUsedBy(user) => write!(f, "segments used by {user}"),
            Reason::WithinGrace(grace) => write!(
                f,
                "unpublished, younger than the {} grace period (may still be running)",
                humantime::format_duration(*grace)
            ),
            Reason::NoRule => f.write_str("no keep rule matches"),
            Reason::PastGrace(grace) => write!(
                f,
                "unpublished for longer than the {} grace period (crashed or interrupted)",
                humantime::format_duration(*grace)
            ),
        }
    }
}

/// The verdict on one backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub id: BackupId,
    pub complete: bool,
    pub keep: bool,
    /// Every reason that applies, rules first; never empty.
    pub reasons: Vec<Reason>,
}

/// Applies `policy` to `candidates` at time `now`; the decisions come newest first.
///
/// Rules (restic's `forget`): keep-last N keeps the N newest complete backups; keep-daily N,
/// for each of the last N UTC days that have complete backups, the newest backup of that
/// day; keep-weekly N the same per ISO week. A backup kept by any rule is kept. Every backup
/// a kept one builds on (its parent chain, and backups holding segments it lists) is kept
/// too. Unpublished backups count for no rule and are removed only once older than the
/// grace period.
pub fn decide(
    candidates: &[Candidate],
    policy: &Policy,
    now: SystemTime,
) -> Result<Vec<Decision>, RetentionError> {
    policy.validate()?;
    let mut newest_first: Vec<usize> = (0..candidates.len()).collect();
    newest_first.sort_by(|&a, &b| {
        let (a, b) = (&candidates[a], &candidates[b]);
        (b.started_at, &b.id).cmp(&(a.started_at, &a.id))
    });
    let complete: Vec<usize> = newest_first
        .iter()
        .copied()
        .filter(|&i| candidates[i].complete)
        .collect();
    let mut reasons: Vec<Vec<Reason>> = vec![Vec::new(); candidates.len()];

    for &i in complete.iter().take(policy.keep_last as usize) {
        reasons[i].push(Reason::Last(policy.keep_last));
    }
    keep_newest_per_bucket(
        &complete,
        policy.keep_daily,
        |i| utc_day(candidates[i].started_at),
        Reason::Daily,
        &mut reasons,
    );
    keep_newest_per_bucket(
        &complete,
        policy.keep_weekly,
        |i| iso_week(candidates[i].started_at),
        Reason::Weekly,
        &mut reasons,
    );
    for (i, candidate) in candidates.iter().enumerate() {
        // A time in the future (clock skew) counts as age zero.
        let young = now
            .duration_since(candidate.started_at)
            .map_or(true, |age| age <= policy.grace);
        if !candidate.complete && young {
            reasons[i].push(Reason::WithinGrace(policy.grace));
        }
    }

    // Whatever a kept backup builds on stays, transitively.
    let index: HashMap<&BackupId, usize> = candidates
        .iter()
        .enumerate()
        .map(|(i, c)| (&c.id, i))
        .collect();
    let mut kept: Vec<bool> = reasons.iter().map(|r| !r.is_empty()).collect();
    let mut pending: Vec<usize> = (0..candidates.len()).filter(|&i| kept[i]).collect();
    while let Some(child) = pending.pop() {
        let candidate = &candidates[child];
        let parent = candidate
            .parent
            .iter()
            .map(|p| (p, Reason::ParentOf(candidate.id.clone())));
        let holders = candidate
            .uses
            .iter()
            .filter(|u| Some(*u) != candidate.parent.as_ref())
            .map(|u| (u, Reason::SegmentsUsedBy(candidate.id.clone())));
        for (needed, reason) in parent.chain(holders) {
            let Some(&n) = index.get(needed) else {
                continue;
            };
            if n == child {
                continue;
            }
            if !reasons[n].contains(&reason) {
                reasons[n].push(reason);
            }
            if !kept[n] {
                kept[n] = true;
                pending.push(n);
            }
        }
    }

    Ok(newest_first
        .into_iter()
        .map(|i| {
            let candidate = &candidates[i];
            let mut why = std::mem::take(&mut reasons[i]);
            if why.is_empty() {
                why.push(if candidate.complete {
                    Reason::NoRule
                } else {
                    Reason::PastGrace(policy.grace)
                });
            }
            Decision {
                id: candidate.id.clone(),
                complete: candidate.complete,
                keep: kept[i],
                reasons: why,
            }
        })
        .collect())
}

/// Walking newest first, keeps the first backup of each new bucket until `count` buckets
/// have one (buckets are contiguous because times only decrease).
fn keep_newest_per_bucket(
    newest_first: &[usize],
    count: u32,
    bucket: impl Fn(usize) -> String,
    reason: impl Fn(String) -> Reason,
    reasons: &mut [Vec<Reason>],
) {
    let mut last: Option<String> = None;
    let mut used = 0;
    for &i in newest_first {
        if used >= count {
            break;
        }
        let current = bucket(i);
        if last.as_ref() == Some(&current) {
            continue;
        }
        reasons[i].push(reason(current.clone()));
        used += 1;
        last = Some(current);
    }
}

/// The UTC time in a backup id (`YYYYMMDDTHHMMSSZ-...`); `None` if it is not a real time.
pub fn id_time(id: &BackupId) -> Option<SystemTime> {
    let s = id.as_str();
    let stamp = format!(
        "{}-{}-{}T{}:{}:{}Z",
        s.get(0..4)?,
        s.get(4..6)?,
        s.get(6..8)?,
        s.get(9..11)?,
        s.get(11..13)?,
        s.get(13..15)?
    );
    humantime::parse_rfc3339(&stamp).ok()
}

/// Days since 1970-01-01 (UTC), rounding towards the past.
fn epoch_days(time: SystemTime) -> i64 {
    let seconds = match time.duration_since(UNIX_EPOCH) {
        Ok(after) => after.as_secs() as i64,
        Err(before) => {
            let before = before.duration();
            -(before.as_secs() as i64) - i64::from(before.subsec_nanos() > 0)
        }
    };
    seconds.div_euclid(86_400)
}

/// `YYYY-MM-DD` of `time` in UTC.
fn utc_day(time: SystemTime) -> String {
    let (year, month, day) = civil_from_days(epoch_days(time));
    format!("{year:04}-{month:02}-{day:02}")
}

/// ISO 8601 week of `time` in UTC, `YYYY-Www`: weeks start on Monday and belong to the
/// year of their Thursday.
fn iso_week(time: SystemTime) -> String {
    let days = epoch_days(time);
    let from_monday = (days + 3).rem_euclid(7); // 1970-01-01 was a Thursday
    let thursday = days - from_monday + 3;
    let (year, _, _) = civil_from_days(thursday);
    let week = (thursday - days_from_civil(year, 1, 1)) / 7 + 1;
    format!("{year:04}-W{week:02}")
}

/// Proleptic Gregorian date of a day number (days since 1970-01-01); H. Hinnant's algorithm.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Day number (days since 1970-01-01) of a proleptic Gregorian date.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = year - i64::from(month <= 2);
    let era = year.div_euclid(400);
    let yoe = year - era * 400;
    let mp = i64::from((month + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// What can stop a prune. Nothing has been deleted when planning fails.
#[derive(Debug, thiserror::Error)]
pub enum RetentionError {
    #[error(
        "no retention rule: give at least one of --keep-last N, --keep-daily N, --keep-weekly N \
         with N above 0 (prune never deletes every backup)"
    )]
    NoKeepRule,
    #[error(transparent)]
    Store(Box<StoreError>),
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
}

impl From<StoreError> for RetentionError {
    fn from(err: StoreError) -> Self {
        RetentionError::Store(Box::new(err))
    }
}

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

/// What [`execute`] deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Deleted {
    pub backups: usize,
    pub objects: usize,
    pub bytes: u64,
}

/// Reads what `location` holds (every published manifest, for its parent and segment keys)
/// and applies `policy` at time `now`. Deletes nothing. Refuses when a published manifest
/// cannot be read: what it builds on would be unknown.
pub async fn plan(
    location: &Location,
    policy: &Policy,
    now: SystemTime,
) -> Result<PrunePlan, RetentionError> {
    policy.validate()?;
    let mut warnings = Vec::new();
    let mut candidates = Vec::new();
    for (listing, started_at) in dated(location.list_backups().await?, "", &mut warnings) {
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
        candidates.push(Candidate {
            id: listing.id,
            started_at,
            complete: listing.complete,
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
) -> Result<PrunePlan, RetentionError> {
    policy.validate()?;
    let mut warnings = Vec::new();
    let mut candidates = Vec::new();
    let listings = location.list_datadir_backups().await?;
    for (listing, started_at) in dated(listings, "data-dir backup ", &mut warnings) {
        candidates.push(Candidate {
            id: listing.id,
            started_at,
            complete: listing.complete,
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

/// The listed backups with the time in their id; one whose id is not a real UTC time is left
/// alone, with a warning (`kind` names the family in it).
fn dated(
    listings: Vec<BackupListing>,
    kind: &str,
    warnings: &mut Vec<String>,
) -> Vec<(BackupListing, SystemTime)> {
    listings
        .into_iter()
        .filter_map(|listing| match id_time(&listing.id) {
            Some(started_at) => Some((listing, started_at)),
            None => {
                warnings.push(format!(
                    "left {kind}{} alone: its id is not a real UTC time",
                    listing.id
                ));
                None
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

/// Deletes every backup `plan` removes. First all their manifests, newest first (children
/// before the parents they build on), so no published manifest ever lists a deleted object;
/// then their data objects. A crash part-way leaves unpublished leftovers that the next
/// prune collects once they are past the grace period.
pub async fn execute(location: &Location, plan: &PrunePlan) -> Result<Deleted, RetentionError> {
    let mut newest_first: Vec<&PlannedBackup> = plan.remove.iter().collect();
    newest_first.sort_by(|a, b| b.id.cmp(&a.id));
    let mut deleted = Deleted::default();
    // Nothing builds on a data-dir backup: each goes on its own, manifest first.
    let unpublish_first = newest_first
        .iter()
        .filter(|b| plan.family == Family::Logical && b.complete);
    for backup in unpublish_first {
        location.delete_manifest(&backup.id).await?;
        // Counted here: the listing in `delete_backup` below no longer sees it.
        let key = location.manifest_key(&backup.id);
        if let Some(manifest) = backup.objects.iter().find(|o| o.key == key) {
            deleted.objects += 1;
            deleted.bytes += manifest.size;
        }
        tracing::debug!("unpublished backup {}", backup.id);
    }
    for backup in newest_first {
        // Lists afresh, so objects written since the plan go too.
        let (objects, what) = match plan.family {
            Family::Logical => (location.delete_backup(&backup.id).await?, "backup"),
            Family::Datadir => (
                location.delete_datadir_backup(&backup.id).await?,
                "data-dir backup",
            ),
        };
        let bytes: u64 = objects.iter().map(|o| o.size).sum();
        tracing::info!(
            "deleted {what} {}: {} objects, {bytes} bytes",
            backup.id,
            objects.len()
        );
        deleted.backups += 1;
        deleted.objects += objects.len();
        deleted.bytes += bytes;
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: u64 = 3_600;
    const DAY: u64 = 24 * HOUR;

    /// 2025-03-03T00:00:00Z, a Monday (ISO week 2025-W10).
    const MONDAY: u64 = 1_740_960_000;

    fn at(seconds: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(seconds)
    }

    fn id(seconds: u64) -> BackupId {
        let stamp = humantime::format_rfc3339_seconds(at(seconds)).to_string();
        let compact: String = stamp.chars().filter(|c| *c != '-' && *c != ':').collect();
        BackupId::parse(&format!("{compact}-{:06x}", seconds % 0xff_ffff)).unwrap()
    }

    fn full(seconds: u64) -> Candidate {
        Candidate {
            id: id(seconds),
            started_at: at(seconds),
            complete: true,
            parent: None,
            uses: Vec::new(),
        }
    }

    fn child(seconds: u64, parent: u64) -> Candidate {
        Candidate {
            parent: Some(id(parent)),
            uses: vec![id(parent)],
            ..full(seconds)
        }
    }

    fn unpublished(seconds: u64) -> Candidate {
        Candidate {
            complete: false,
            ..full(seconds)
        }
    }

    fn policy(last: u32, daily: u32, weekly: u32) -> Policy {
        Policy {
            keep_last: last,
            keep_daily: daily,
            keep_weekly: weekly,
            grace: Duration::from_secs(DAY),
        }
    }

    /// Kept ids with their reasons as text, newest first.
    type Kept = Vec<(BackupId, Vec<String>)>;

    /// (kept, removed ids), both newest first.
    type Verdict = (Kept, Vec<BackupId>);

    fn verdict(candidates: &[Candidate], policy: &Policy, now: u64) -> Verdict {
        let decisions = decide(candidates, policy, at(now)).unwrap();
        let kept = decisions
            .iter()
            .filter(|d| d.keep)
            .map(|d| {
                let reasons = d.reasons.iter().map(ToString::to_string).collect();
                (d.id.clone(), reasons)
            })
            .collect();
        let removed = decisions
            .iter()
            .filter(|d| !d.keep)
            .map(|d| d.id.clone())
            .collect();
        (kept, removed)
    }

    fn kept(list: &[(u64, &[&str])]) -> Kept {
        list.iter()
            .map(|(t, reasons)| (id(*t), reasons.iter().map(|r| r.to_string()).collect()))
            .collect()
    }

    fn ids(times: &[u64]) -> Vec<BackupId> {
        times.iter().map(|t| id(*t)).collect()
    }

    #[test]
    fn calendar_buckets_are_utc_days_and_iso_weeks() {
        let cases: &[(&str, &str, &str)] = &[
            ("1970-01-01T00:00:00Z", "1970-01-01", "1970-W01"),
            ("2020-12-31T23:59:59Z", "2020-12-31", "2020-W53"),
            ("2021-01-03T12:00:00Z", "2021-01-03", "2020-W53"),
            ("2021-01-04T00:00:00Z", "2021-01-04", "2021-W01"),
            ("2024-02-29T08:00:00Z", "2024-02-29", "2024-W09"),
            ("2024-12-30T00:00:00Z", "2024-12-30", "2025-W01"),
            ("2025-03-03T00:00:00Z", "2025-03-03", "2025-W10"),
            ("2026-11-24T02:00:00Z", "2026-11-24", "2026-W48"),
            ("2027-01-01T00:00:00Z", "2027-01-01", "2026-W53"),
        ];
        for (time, day, week) in cases {
            let time = humantime::parse_rfc3339(time).unwrap();
            assert_eq!(utc_day(time), *day);
            assert_eq!(iso_week(time), *week, "{day}");
        }
        for days in [-800_000, -1, 0, 59, 365, 11_016, 20_000, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn ids_carry_their_time() {
        let time = at(MONDAY + 2 * HOUR + 7);
        let id = BackupId::new(time);
        assert_eq!(id_time(&id), Some(time));
        let impossible = BackupId::parse("20251399T250000Z-1").unwrap();
        assert_eq!(id_time(&impossible), None);
    }

    #[test]
    fn a_policy_without_rules_is_refused() {
        let err = decide(&[full(MONDAY)], &policy(0, 0, 0), at(MONDAY)).unwrap_err();
        assert!(matches!(err, RetentionError::NoKeepRule));
        assert!(err.to_string().contains("--keep-last"), "{err}");
        assert!(policy(0, 0, 1).validate().is_ok());
    }

    #[test]
    fn rules_keep_what_restic_would() {
        let now = MONDAY + 10 * DAY;
        // Two backups a day, Monday 2025-03-03 (W10) to Wednesday 2025-03-12 (W11), and two
        // in the week before (W09).
        let mut week_of_backups: Vec<Candidate> = (0..10)
            .flat_map(|d| {
                [
                    full(MONDAY + d * DAY + 2 * HOUR),
                    full(MONDAY + d * DAY + 14 * HOUR),
                ]
            })
            .collect();
        week_of_backups.push(full(MONDAY - 6 * DAY));
        week_of_backups.push(full(MONDAY - 5 * DAY));
        let newest = MONDAY + 9 * DAY + 14 * HOUR;
        let mut sorted = week_of_backups.clone();
        sorted.sort_by(|a, b| b.id.cmp(&a.id));
        let table: &[(&str, Policy, Kept)] = &[
            (
                "last 3",
                policy(3, 0, 0),
                kept(&[
                    (newest, &["last 3"]),
                    (newest - 12 * HOUR, &["last 3"]),
                    (newest - DAY, &["last 3"]),
                ]),
            ),
            (
                "daily 2 keeps the newest of each of the last two days",
                policy(0, 2, 0),
                kept(&[
                    (newest, &["daily 2025-03-12"]),
                    (newest - DAY, &["daily 2025-03-11"]),
                ]),
            ),
            (
                "weekly 3 reaches back over a week without backups in it",
                policy(0, 0, 3),
                kept(&[
                    (newest, &["weekly 2025-W11"]),
                    (MONDAY + 6 * DAY + 14 * HOUR, &["weekly 2025-W10"]),
                    (MONDAY - 5 * DAY, &["weekly 2025-W09"]),
                ]),
            ),
            (
                "rules add up and a backup keeps every reason",
                policy(1, 2, 2),
                kept(&[
                    (newest, &["last 1", "daily 2025-03-12", "weekly 2025-W11"]),
                    (newest - DAY, &["daily 2025-03-11"]),
                    (MONDAY + 6 * DAY + 14 * HOUR, &["weekly 2025-W10"]),
                ]),
            ),
            (
                "more asked for than exists keeps everything there is",
                policy(100, 0, 0),
                sorted
                    .iter()
                    .map(|c| (c.id.clone(), vec!["last 100".to_string()]))
                    .collect(),
            ),
        ];
        for (name, policy, expected) in table {
            let (kept, removed) = verdict(&week_of_backups, policy, now);
            assert_eq!(&kept, expected, "{name}");
            let expected_removed: Vec<BackupId> = sorted
                .iter()
                .map(|c| c.id.clone())
                .filter(|id| !expected.iter().any(|(k, _)| k == id))
                .collect();
            assert_eq!(removed, expected_removed, "{name}");
        }
    }

    #[test]
    fn removal_reasons_are_given() {
        let now = MONDAY + 10 * DAY;
        let decisions = decide(
            &[full(MONDAY), full(MONDAY + DAY), unpublished(MONDAY)],
            &policy(1, 0, 0),
            at(now),
        )
        .unwrap();
        let shown: Vec<(bool, String)> = decisions
            .iter()
            .map(|d| (d.keep, d.reasons[0].to_string()))
            .collect();
        assert_eq!(
            shown,
            vec![
                (true, "last 1".to_string()),
                (false, "no keep rule matches".to_string()),
                (
                    false,
                    "unpublished for longer than the 1day grace period (crashed or interrupted)"
                        .to_string()
                ),
            ]
        );
    }

    #[test]
    fn parents_of_kept_backups_are_kept_transitively() {
        let now = MONDAY + 10 * DAY;
        // full F0 <- I1 <- I2 <- I3 (newest); an unrelated older full U; an orphan child O
        // whose parent is not at the location.
        let (f0, i1, i2, i3) = (MONDAY, MONDAY + HOUR, MONDAY + 2 * HOUR, MONDAY + 3 * HOUR);
        let u = MONDAY - DAY;
        let o = MONDAY - 2 * DAY;
        let candidates = [
            full(f0),
            child(i1, f0),
            child(i2, i1),
            child(i3, i2),
            full(u),
            child(o, MONDAY - 30 * DAY),
        ];
        let parent_of = |t: u64| vec![format!("parent of {}", id(t))];
        let table: &[(&str, Policy, Kept, Vec<u64>)] = &[
            (
                "the newest child pulls in its whole chain",
                policy(1, 0, 0),
                vec![
                    (id(i3), vec!["last 1".to_string()]),
                    (id(i2), parent_of(i3)),
                    (id(i1), parent_of(i2)),
                    (id(f0), parent_of(i1)),
                ],
                vec![u, o],
            ),
            (
                "weekly rules and a parent chain together",
                policy(0, 0, 2),
                vec![
                    (id(i3), vec!["weekly 2025-W10".to_string()]),
                    (id(i2), parent_of(i3)),
                    (id(i1), parent_of(i2)),
                    (id(f0), parent_of(i1)),
                    (id(u), vec!["weekly 2025-W09".to_string()]),
                ],
                vec![o],
            ),
            (
                "a chain member kept by a rule",
                policy(2, 0, 0),
                vec![
                    (id(i3), vec!["last 2".to_string()]),
                    (
                        id(i2),
                        vec!["last 2".to_string(), format!("parent of {}", id(i3))],
                    ),
                    (id(i1), parent_of(i2)),
                    (id(f0), parent_of(i1)),
                ],
                vec![u, o],
            ),
        ];
        for (name, policy, expected_kept, expected_removed) in table {
            let (kept, removed) = verdict(&candidates, policy, now);
            assert_eq!(&kept, expected_kept, "{name}");
            assert_eq!(removed, ids(expected_removed), "{name}");
        }
    }

    #[test]
    fn segments_stored_under_another_backup_keep_it() {
        let now = MONDAY + 10 * DAY;
        let old = MONDAY;
        let newer = MONDAY + DAY;
        let mut user = full(MONDAY + 2 * DAY);
        user.uses = vec![id(old)];
        let (kept, removed) = verdict(&[full(old), full(newer), user], &policy(1, 0, 0), now);
        assert_eq!(
            kept,
            vec![
                (id(MONDAY + 2 * DAY), vec!["last 1".to_string()]),
                (
                    id(old),
                    vec![format!("segments used by {}", id(MONDAY + 2 * DAY))]
                ),
            ]
        );
        assert_eq!(removed, ids(&[newer]));
    }

    #[test]
    fn unpublished_backups_wait_out_the_grace_period() {
        let now = MONDAY + 10 * DAY;
        let table: &[(&str, u64, bool)] = &[
            ("running for an hour", now - HOUR, true),
            ("exactly at the grace period", now - DAY, true),
            ("one second past it", now - DAY - 1, false),
            ("crashed a week ago", now - 7 * DAY, false),
            ("in the future (clock skew)", now + HOUR, true),
        ];
        for (name, started, keep) in table {
            let candidates = [full(MONDAY), unpublished(*started)];
            let decisions = decide(&candidates, &policy(1, 0, 0), at(now)).unwrap();
            let decision = decisions.iter().find(|d| d.id == id(*started)).unwrap();
            assert_eq!(decision.keep, *keep, "{name}");
            assert!(!decision.complete);
        }
        // Unpublished backups never count for a rule: keep-last 1 keeps the newest complete one.
        let (kept, _) = verdict(
            &[full(MONDAY), unpublished(now - HOUR)],
            &policy(1, 1, 1),
            now,
        );
        assert_eq!(kept[0].0, id(now - HOUR));
        assert_eq!(
            kept[1],
            (
                id(MONDAY),
                vec![
                    "last 1".to_string(),
                    "daily 2025-03-03".to_string(),
                    "weekly 2025-W10".to_string()
                ]
            )
        );
    }

    #[test]
    fn an_old_unpublished_parent_of_a_kept_backup_stays() {
        let now = MONDAY + 10 * DAY;
        let candidates = [unpublished(MONDAY), child(MONDAY + HOUR, MONDAY)];
        let (kept, removed) = verdict(&candidates, &policy(1, 0, 0), now);
        assert_eq!(kept.len(), 2, "{kept:?}");
        assert_eq!(
            kept[1],
            (id(MONDAY), vec![format!("parent of {}", id(MONDAY + HOUR))])
        );
        assert!(removed.is_empty());
    }

    #[test]
    fn cycles_and_self_references_end() {
        let now = MONDAY + 10 * DAY;
        let mut a = child(MONDAY, MONDAY + HOUR);
        a.uses.push(id(MONDAY));
        let b = child(MONDAY + HOUR, MONDAY);
        let (kept, removed) = verdict(&[a, b, full(MONDAY - DAY)], &policy(1, 0, 0), now);
        assert_eq!(kept.len(), 2);
        assert_eq!(removed, ids(&[MONDAY - DAY]));
    }
}
