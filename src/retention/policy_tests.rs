//! Tests of the retention policy's decisions (`policy::decide`): rules, chains, grace, locks.

use super::*;
use std::time::UNIX_EPOCH;

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
        last_written: None,
        left_alone: None,
        parent: None,
        uses: Vec::new(),
        in_use_by: Vec::new(),
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
        last_written: None,
        left_alone: None,
        ..full(seconds)
    }
}

fn policy(last: u32, daily: u32, weekly: u32) -> Policy {
    Policy {
        keep_last: last,
        keep_within: Duration::ZERO,
        keep_hourly: 0,
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
fn a_policy_without_rules_is_refused() {
    let err = decide(&[full(MONDAY)], &policy(0, 0, 0), at(MONDAY)).unwrap_err();
    assert!(matches!(err, RetentionError::NoKeepRule));
    assert!(err.to_string().contains("--keep-last"), "{err}");
    assert!(policy(0, 0, 1).validate().is_ok());
    let within = |seconds| Policy {
        keep_within: Duration::from_secs(seconds),
        ..policy(0, 0, 0)
    };
    assert!(within(1).validate().is_ok());
    assert!(matches!(
        within(0).validate(),
        Err(RetentionError::NoKeepRule)
    ));
    let hourly = Policy {
        keep_hourly: 1,
        ..policy(0, 0, 0)
    };
    assert!(hourly.validate().is_ok());
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
    // Age is counted from the newest object the store lists, when there is one: an id
    // dated a week ago whose objects were written an hour ago may still be running.
    let stale_id_fresh_objects = Candidate {
        last_written: Some(at(now - HOUR)),
        ..unpublished(now - 7 * DAY)
    };
    let fresh_id_stale_objects = Candidate {
        last_written: Some(at(now - 2 * DAY)),
        ..unpublished(now - HOUR)
    };
    let candidates = [full(MONDAY), stale_id_fresh_objects, fresh_id_stale_objects];
    let decisions = decide(&candidates, &policy(1, 0, 0), at(now)).unwrap();
    let keep_of = |seconds: u64| decisions.iter().find(|d| d.id == id(seconds)).unwrap().keep;
    assert!(keep_of(now - 7 * DAY), "objects written an hour ago");
    assert!(!keep_of(now - HOUR), "objects last written two days ago");
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
fn what_a_live_lock_names_is_kept_with_what_it_builds_on() {
    let now = MONDAY + 10 * DAY;
    let running = Candidate {
        in_use_by: vec!["backup on host h (pid 7) since then".into()],
        ..unpublished(MONDAY + 2 * HOUR)
    };
    // An old incremental whose lock names it and its parent; a newer full backup that
    // keep-last 1 keeps; an old full one nothing keeps.
    let read = Candidate {
        in_use_by: vec!["restore on host h (pid 8) since then".into()],
        ..child(MONDAY + HOUR, MONDAY)
    };
    let candidates = [
        full(MONDAY),
        read,
        running,
        full(MONDAY + 3 * HOUR),
        full(MONDAY - DAY),
    ];
    let (kept, removed) = verdict(&candidates, &policy(1, 0, 0), now);
    assert_eq!(
        kept,
        vec![
            (id(MONDAY + 3 * HOUR), vec!["last 1".to_string()]),
            (
                id(MONDAY + 2 * HOUR),
                vec!["in use by a running backup on host h (pid 7) since then".to_string()]
            ),
            (
                id(MONDAY + HOUR),
                vec!["in use by a running restore on host h (pid 8) since then".to_string()]
            ),
            (id(MONDAY), vec![format!("parent of {}", id(MONDAY + HOUR))]),
        ]
    );
    assert_eq!(removed, ids(&[MONDAY - DAY]));
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

#[test]
fn a_left_alone_backup_takes_no_rule_slot_and_keeps_what_it_builds_on() {
    let now = MONDAY + 10 * DAY;
    // A backup from a machine whose clock runs a day fast, building on an old full one.
    let fast_clock = Candidate {
        left_alone: Some(LeftAlone::NotARealTime),
        ..child(now + DAY, MONDAY)
    };
    let candidates = [full(MONDAY), full(now - HOUR), fast_clock];
    let (kept, removed) = verdict(&candidates, &policy(1, 0, 0), now);
    assert!(removed.is_empty(), "{removed:?}");
    let reasons = |seconds: u64| {
        kept.iter()
            .find(|(k, _)| *k == id(seconds))
            .map(|(_, r)| r.join(", "))
            .unwrap()
    };
    assert!(reasons(now + DAY).starts_with("left alone"));
    assert_eq!(reasons(now - HOUR), "last 1");
    assert!(reasons(MONDAY).contains(&format!("parent of {}", id(now + DAY))));
}

const MINUTE: u64 = 60;

/// A follower's checkpoints: a full backup at `full_at`, then `count` incremental
/// checkpoints a minute apart, each naming the one before as its parent. (Whether a
/// checkpoint's manifest also lists its ancestors' segments changes nothing here: those
/// ancestors are kept as parents already; `segments_stored_under_another_backup_keep_it`
/// covers that rule.)
fn checkpoint_chain(full_at: u64, count: u64) -> Vec<Candidate> {
    let mut chain = vec![full(full_at)];
    chain.extend((1..=count).map(|n| child(full_at + n * MINUTE, full_at + (n - 1) * MINUTE)));
    chain
}

fn within(seconds: u64) -> Policy {
    Policy {
        keep_within: Duration::from_secs(seconds),
        ..policy(0, 0, 0)
    }
}

#[test]
fn keep_within_keeps_the_newest_checkpoints_and_every_ancestor() {
    // An old nightly full backup (a chain of its own), then a follower's full backup at
    // 10:00 and ten checkpoints, 10:01 ... 10:10.
    let start = MONDAY + 10 * HOUR;
    let nightly = MONDAY + HOUR;
    let mut candidates = checkpoint_chain(start, 10);
    candidates.push(full(nightly));
    let newest = start + 10 * MINUTE;
    let rule = || "within 3m of the newest".to_string();
    let parent_of = |t: u64| format!("parent of {}", id(t));
    // The newest three by the rule (exactly 3 minutes before the newest is outside the
    // window, as in restic); every older checkpoint and the full backup as a parent.
    let mut expected: Kept = vec![
        (id(newest), vec![rule()]),
        (id(newest - MINUTE), vec![rule(), parent_of(newest)]),
        (
            id(newest - 2 * MINUTE),
            vec![rule(), parent_of(newest - MINUTE)],
        ),
    ];
    expected.extend((0..8).rev().map(|n| {
        let at = start + n * MINUTE;
        (id(at), vec![parent_of(at + MINUTE)])
    }));
    // Measured from the newest backup, not from now: a day later the window is the same.
    for now in [newest + 5, newest + DAY] {
        let (kept, removed) = verdict(&candidates, &within(3 * MINUTE), now);
        assert_eq!(kept, expected, "now {now}");
        assert_eq!(removed, ids(&[nightly]), "now {now}");
    }
    // A window that reaches back to the nightly backup keeps it by the rule.
    let (kept, removed) = verdict(&candidates, &within(DAY), newest);
    assert!(removed.is_empty(), "{removed:?}");
    assert_eq!(kept.len(), 12);
    assert!(kept
        .iter()
        .all(|(_, r)| r[0] == "within 1day of the newest"));
}

#[test]
fn keep_within_counts_only_complete_backups_that_are_not_left_alone() {
    let now = MONDAY + 10 * DAY;
    // The newest complete backup is the reference: neither a running backup nor one dated
    // in the future moves the window.
    let running = unpublished(now - MINUTE);
    let fast_clock = Candidate {
        left_alone: Some(LeftAlone::NotARealTime),
        ..full(now + DAY)
    };
    let newest = now - 2 * HOUR;
    let candidates = [
        full(newest),
        full(newest - 59 * MINUTE),
        full(newest - HOUR),
        running,
        fast_clock,
    ];
    let (kept, removed) = verdict(&candidates, &within(HOUR), now);
    let by_rule: Vec<&BackupId> = kept
        .iter()
        .filter(|(_, r)| r.contains(&"within 1h of the newest".to_string()))
        .map(|(k, _)| k)
        .collect();
    assert_eq!(by_rule, vec![&id(newest), &id(newest - 59 * MINUTE)]);
    assert_eq!(removed, ids(&[newest - HOUR]));
}

#[test]
fn keep_hourly_keeps_each_hours_newest_checkpoint_with_its_chain() {
    // Checkpoints every 20 minutes from 08:00 to 11:40 (one chain), and no backup in the
    // 12:00 hour; then a full backup at 13:30 starting a new chain, with a checkpoint at 13:50.
    let start = MONDAY + 8 * HOUR;
    let mut candidates = vec![full(start)];
    candidates
        .extend((1..12).map(|n| child(start + n * 20 * MINUTE, start + (n - 1) * 20 * MINUTE)));
    let restart = MONDAY + 13 * HOUR + 30 * MINUTE;
    candidates.push(full(restart));
    candidates.push(child(restart + 20 * MINUTE, restart));
    let now = restart + DAY;
    let hourly = |n| Policy {
        keep_hourly: n,
        ..policy(0, 0, 0)
    };

    // The last two hours with backups are 13:00 and 11:00 (12:00 had none): 13:50 and 11:40
    // by the rule, 13:30 as 13:50's parent, and 11:40's whole chain back to 08:00.
    let (kept, removed) = verdict(&candidates, &hourly(2), now);
    let rules: Vec<(BackupId, Vec<String>)> = kept
        .iter()
        .filter(|(_, r)| r[0].starts_with("hourly"))
        .cloned()
        .collect();
    assert_eq!(
        rules,
        vec![
            (
                id(restart + 20 * MINUTE),
                vec!["hourly 2025-03-03T13Z".to_string()]
            ),
            (
                id(start + 3 * HOUR + 40 * MINUTE),
                vec!["hourly 2025-03-03T11Z".to_string()]
            ),
        ]
    );
    assert_eq!(kept.len(), candidates.len());
    assert!(removed.is_empty());

    // Keep-hourly 1: only the new chain stays; the old one, nothing builds on, goes.
    let (kept, removed) = verdict(&candidates, &hourly(1), now);
    assert_eq!(
        kept,
        vec![
            (
                id(restart + 20 * MINUTE),
                vec!["hourly 2025-03-03T13Z".to_string()]
            ),
            (
                id(restart),
                vec![format!("parent of {}", id(restart + 20 * MINUTE))]
            ),
        ]
    );
    assert_eq!(removed.len(), 12);
    assert_eq!(removed[0], id(start + 3 * HOUR + 40 * MINUTE));
    assert_eq!(removed[11], id(start));

    // With keep-within beside it, a backup keeps every rule that selects it, in order.
    let both = Policy {
        keep_last: 1,
        keep_within: Duration::from_secs(30 * MINUTE),
        ..hourly(1)
    };
    let (kept, _) = verdict(&candidates, &both, now);
    assert_eq!(
        kept[0].1,
        [
            "last 1",
            "within 30m of the newest",
            "hourly 2025-03-03T13Z"
        ]
    );
    assert_eq!(
        kept[1].1,
        [
            "within 30m of the newest".to_string(),
            format!("parent of {}", id(restart + 20 * MINUTE))
        ]
    );
}
