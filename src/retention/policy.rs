//! The pure retention policy: which backups to keep and why, given what a location holds.

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, SystemTime};

use super::calendar::{iso_week, utc_day, utc_hour};
use super::RetentionError;
use crate::archive::BackupId;

/// What to keep. A count of 0 (or a `keep_within` of 0s) turns its rule off; at least one
/// rule must be on, so a policy can never mean "delete everything".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// The N newest complete backups.
    pub keep_last: u32,
    /// Every complete backup whose id time is less than this before the newest complete
    /// backup's (restic's `--keep-within`: measured from the newest backup, not from now).
    pub keep_within: Duration,
    /// For each of the last N UTC hours that have complete backups, the newest of that hour.
    pub keep_hourly: u32,
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
        let counts = [
            self.keep_last,
            self.keep_hourly,
            self.keep_daily,
            self.keep_weekly,
        ];
        if counts.iter().all(|&n| n == 0) && self.keep_within.is_zero() {
            return Err(RetentionError::NoKeepRule);
        }
        Ok(())
    }
}

/// One backup as the policy sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Candidate {
    pub(crate) id: BackupId,
    /// When the backup began (the time in its id).
    pub(crate) started_at: SystemTime,
    /// Whether its manifest is published.
    pub(crate) complete: bool,
    /// For an unpublished backup, the newest `last_modified` the store gives its objects:
    /// its age for the grace period is counted from then (the clock of the machine that
    /// wrote its id may be wrong, and a long backup keeps writing). `None`: by `started_at`.
    pub(crate) last_written: Option<SystemTime>,
    /// Why it counts for no rule and is never removed (what it builds on is kept with it):
    /// an id dated in the future or not a real time, or a manifest that cannot be
    /// authenticated under the key prune was given. `None`: the rules apply.
    pub(crate) left_alone: Option<LeftAlone>,
    /// The backup it cannot be read without: a delta manifest's parent (docs/FORMAT.md,
    /// "Delta manifests"). `None` for a manifest that lists every segment, whatever parent
    /// it names: it needs only the backups holding its segments (`uses`).
    pub(crate) parent: Option<BackupId>,
    /// Other backups whose prefixes hold segments its manifest lists.
    pub(crate) uses: Vec<BackupId>,
    /// Live runs whose location lock names this backup (described for people): a backup
    /// being written, restored or verified is never removed.
    pub(crate) in_use_by: Vec<String>,
}

/// Why a backup is left alone by every rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeftAlone {
    /// Its id is dated in the future or is not a real time (a wrong clock, or planted).
    NotARealTime,
    /// Prune was given the key, and its manifest does not carry a seal that checks under it
    /// (forged, altered, unsealed, plaintext, or another key's).
    Unauthenticated,
}

/// Why a backup is kept or removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// Among the `n` newest complete backups (`--keep-last n`).
    Last(u32),
    /// Less than this before the newest complete backup (`--keep-within`).
    Within(Duration),
    /// The newest backup of this UTC hour, `YYYY-MM-DDTHHZ`.
    Hourly(String),
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
    /// A live run's location lock names it (the run, described).
    InUse(String),
    /// Left alone, counting for no rule (and why).
    LeftAlone(LeftAlone),
    /// Complete, but no rule keeps it.
    NoRule,
    /// Unpublished and older than the grace period: a crashed or interrupted backup.
    PastGrace(Duration),
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Last(n) => write!(f, "last {n}"),
            Reason::Within(within) => write!(
                f,
                "within {} of the newest",
                humantime::format_duration(*within)
            ),
            Reason::Hourly(hour) => write!(f, "hourly {hour}"),
            Reason::Daily(day) => write!(f, "daily {day}"),
            Reason::Weekly(week) => write!(f, "weekly {week}"),
            Reason::ParentOf(child) => write!(f, "parent of {child}"),
            Reason::SegmentsUsedBy(user) => write!(f, "segments used by {user}"),
            Reason::WithinGrace(grace) => write!(
                f,
                "unpublished, younger than the {} grace period (may still be running)",
                humantime::format_duration(*grace)
            ),
            Reason::InUse(by) => write!(f, "in use by a running {by}"),
            Reason::LeftAlone(LeftAlone::NotARealTime) => f.write_str(
                "left alone: its id is dated in the future or is not a real time (counts for no rule)",
            ),
            Reason::LeftAlone(LeftAlone::Unauthenticated) => f.write_str(
                "left alone: its manifest is not authenticated under the given key (counts for no rule)",
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
pub(crate) struct Decision {
    pub(crate) id: BackupId,
    pub(crate) complete: bool,
    pub(crate) keep: bool,
    /// Every reason that applies, rules first; never empty.
    pub(crate) reasons: Vec<Reason>,
}

/// Applies `policy` to `candidates` at time `now`; the decisions come newest first.
///
/// Rules (restic's `forget`): keep-last N keeps the N newest complete backups; keep-within D
/// every complete backup whose id time is less than D before the newest complete one's;
/// keep-hourly N, for each of the last N UTC hours that have complete backups, the newest
/// backup of that hour; keep-daily N the same per UTC day, keep-weekly N per ISO week. A
/// backup kept by any rule is kept. Every backup
/// a kept one builds on (a delta's parent chain, and backups holding segments it lists) is kept
/// too. Unpublished backups count for no rule and are removed only once older than the
/// grace period. A backup a live run's lock names is kept, whatever its age or state.
pub(crate) fn decide(
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
        .filter(|&i| candidates[i].complete && candidates[i].left_alone.is_none())
        .collect();
    let mut reasons: Vec<Vec<Reason>> = vec![Vec::new(); candidates.len()];

    for &i in complete.iter().take(policy.keep_last as usize) {
        reasons[i].push(Reason::Last(policy.keep_last));
    }
    if let (false, Some(&newest)) = (policy.keep_within.is_zero(), complete.first()) {
        let newest = candidates[newest].started_at;
        for &i in &complete {
            // Newest first: the first one outside the window ends it.
            let before_newest = newest
                .duration_since(candidates[i].started_at)
                .unwrap_or_default();
            if before_newest >= policy.keep_within {
                break;
            }
            reasons[i].push(Reason::Within(policy.keep_within));
        }
    }
    keep_newest_per_bucket(
        &complete,
        policy.keep_hourly,
        |i| utc_hour(candidates[i].started_at),
        Reason::Hourly,
        &mut reasons,
    );
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
        let written = candidate.last_written.unwrap_or(candidate.started_at);
        let young = now
            .duration_since(written)
            .map_or(true, |age| age <= policy.grace);
        if !candidate.complete && young {
            reasons[i].push(Reason::WithinGrace(policy.grace));
        }
        for by in &candidate.in_use_by {
            reasons[i].push(Reason::InUse(by.clone()));
        }
        if let Some(why) = candidate.left_alone {
            reasons[i].push(Reason::LeftAlone(why));
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

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
