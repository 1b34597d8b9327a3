//! Which backup a `--backup` value names at a location: `latest` (the newest complete one
//! that could have begun by now), a whole id, or the start of one, for one kind of backup or
//! either; and, for one that is not found, whether it is a backup of the other kind.

use crate::archive::{self, BackupSelector};
use crate::error::BackupKind;
use crate::store::{BackupListing, Location};
use crate::Error;

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
pub(super) fn resolve_id(
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

/// A backup of the kind `looked_for` that was not found may be one of the other kind (named
/// by its whole id or the start of it), or the location may hold only the other kind: say
/// so, with what to run instead. Any other error is returned as it is.
pub(super) async fn name_other_kind(
    location: &Location,
    err: Error,
    looked_for: BackupKind,
) -> Error {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
