//! Backup ids: UTC start time plus a 24-bit random suffix (from the operating system), so ids
//! sort by time and two backups started in the same second, even in two containers that are
//! both pid 1, get different ids. Also what a user may name a backup by: `latest`, a whole
//! id, or the start of one.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How far past this machine's clock a backup id's time may lie and still be taken as real
/// (clock skew between the machine that took the backup and this one). An id dated later
/// than that cannot come from a backup that has begun: restore's "newest" choice and prune's
/// keep rules leave it out (a planted manifest must not outrank or push out genuine backups).
pub(crate) const CLOCK_SKEW_ALLOWANCE: Duration = Duration::from_secs(10 * 60);

/// The id of one backup, e.g. `20261125T145443Z-3f9a1c`. Lexical order is time order.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct BackupId(String);

/// Manifests are read from storage and may be hostile: an id that is not id-shaped is
/// refused while parsing, never carried into an object key.
impl TryFrom<String> for BackupId {
    type Error = String;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        BackupId::parse(&text).ok_or_else(|| format!("{text:?} is not a backup id"))
    }
}

impl From<BackupId> for String {
    fn from(id: BackupId) -> String {
        id.0
    }
}

impl BackupId {
    /// A new id for a backup starting at `now`: the second, then a suffix of the millisecond
    /// (3 hex digits, so ids of one second sort by start time too: a follower's checkpoints
    /// come less than a second apart) and 24 random bits (6 hex digits).
    pub fn new(now: SystemTime) -> Self {
        let stamp = humantime::format_rfc3339_seconds(now).to_string();
        let compact: String = stamp.chars().filter(|c| *c != '-' && *c != ':').collect();
        let mut random = [0u8; 4];
        let entropy = match getrandom::fill(&mut random) {
            Ok(()) => u32::from_le_bytes(random),
            // No OS randomness (never seen on Linux): the sub-second clock mixed with the
            // pid, as unlikely to repeat as it gets; publishing never overwrites anyway.
            Err(_) => {
                let since_epoch = now.duration_since(UNIX_EPOCH).unwrap_or_default();
                since_epoch.subsec_nanos() ^ std::process::id().rotate_left(16)
            }
        };
        let millis = now
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .subsec_millis();
        BackupId(format!(
            "{compact}-{millis:03x}{:06x}",
            entropy & 0x00ff_ffff
        ))
    }

    /// Accepts an id read from a location or given by a user; `None` if it is not id-shaped
    /// (ids become object-key segments, so nothing else may pass).
    pub fn parse(text: &str) -> Option<Self> {
        let (stamp, suffix) = text.split_once('-')?;
        let stamp_ok = stamp.len() == 16
            && stamp.as_bytes()[8] == b'T'
            && stamp.ends_with('Z')
            && stamp[..8].bytes().all(|b| b.is_ascii_digit())
            && stamp[9..15].bytes().all(|b| b.is_ascii_digit());
        let suffix_ok = !suffix.is_empty()
            && suffix
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        (stamp_ok && suffix_ok).then(|| BackupId(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The UTC time in the id (`YYYYMMDDTHHMMSSZ-...`); `None` if it is not a real time.
    pub(crate) fn started_at(&self) -> Option<SystemTime> {
        let s = self.as_str();
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

    /// Whether the id's time lies more than [`CLOCK_SKEW_ALLOWANCE`] after `now`.
    pub(crate) fn is_future_dated(&self, now: SystemTime) -> bool {
        self.started_at()
            .is_some_and(|started| started > now + CLOCK_SKEW_ALLOWANCE)
    }

    /// Whether a backup begun by `now` can have this id: its time is a real one, and not
    /// future-dated. (`99999999T000000Z-0` parses, sorts above every real id, and is neither.)
    pub(crate) fn could_have_begun_by(&self, now: SystemTime) -> bool {
        self.started_at().is_some() && !self.is_future_dated(now)
    }
}

impl fmt::Display for BackupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How a user names a backup (`--backup`): the newest complete one, a whole id, or the
/// start of one (restic's snapshot ids work the same way). Which backup it selects depends
/// on what a location holds; the reader resolves it against the location's listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackupSelector {
    /// `latest`: the newest complete backup (what a command reads when none is named).
    Latest,
    /// A whole id, e.g. `20261125T145443Z-3f9a1c`.
    Exact(BackupId),
    /// The start of an id, e.g. `20261125T1454`: selects the one complete backup whose id
    /// starts with it. Only id-shaped text passes, so it never reaches an object key.
    Prefix(String),
}

/// A `--backup` value that is neither `latest`, an id, nor the start of one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a backup id, the start of one, or `latest` (ids look like 20261125T145443Z-3f9a1c; `kafkasnap ls URL` lists them)")]
pub struct BadBackupSelector(pub String);

impl BackupSelector {
    /// `latest`, a whole id, or a non-empty start of one (each character where an id has
    /// one of its kind: digits, `T`, digits, `Z`, `-`, lowercase hex).
    pub fn parse(text: &str) -> Result<Self, BadBackupSelector> {
        if text == "latest" {
            return Ok(BackupSelector::Latest);
        }
        if let Some(id) = BackupId::parse(text) {
            return Ok(BackupSelector::Exact(id));
        }
        let fits = |(at, byte): (usize, u8)| match at {
            8 => byte == b'T',
            15 => byte == b'Z',
            16 => byte == b'-',
            0..=14 => byte.is_ascii_digit(),
            _ => byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte),
        };
        if !text.is_empty() && text.bytes().enumerate().all(fits) {
            Ok(BackupSelector::Prefix(text.to_string()))
        } else {
            Err(BadBackupSelector(text.to_string()))
        }
    }

    /// Whether `id` is one this selector can name by its text (an exact id also counts as
    /// the start of itself); always false for [`BackupSelector::Latest`].
    pub fn names(&self, id: &BackupId) -> bool {
        match self {
            BackupSelector::Latest => false,
            BackupSelector::Exact(exact) => id.as_str().starts_with(exact.as_str()),
            BackupSelector::Prefix(prefix) => id.as_str().starts_with(prefix.as_str()),
        }
    }
}

impl std::str::FromStr for BackupSelector {
    type Err = BadBackupSelector;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        BackupSelector::parse(text)
    }
}

impl fmt::Display for BackupSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BackupSelector::Latest => f.write_str("latest"),
            BackupSelector::Exact(id) => write!(f, "{id}"),
            BackupSelector::Prefix(prefix) => f.write_str(prefix),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn ids_are_parseable_and_sort_by_time() {
        let earlier = BackupId::new(UNIX_EPOCH + Duration::from_secs(1_700_000_000));
        let later = BackupId::new(UNIX_EPOCH + Duration::from_secs(1_700_000_001));
        assert!(
            earlier.as_str().starts_with("20231114T221320Z-"),
            "{earlier}"
        );
        assert!(earlier < later);
        assert_eq!(BackupId::parse(earlier.as_str()), Some(earlier));
    }

    #[test]
    fn only_ids_past_the_clock_skew_allowance_are_future_dated() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let id_at = |ahead: Duration| BackupId::new(now + ahead);
        assert!(!id_at(Duration::ZERO).is_future_dated(now));
        assert!(!id_at(CLOCK_SKEW_ALLOWANCE).is_future_dated(now));
        assert!(id_at(CLOCK_SKEW_ALLOWANCE + Duration::from_secs(1)).is_future_dated(now));
        assert!(id_at(Duration::from_secs(365 * 86_400)).is_future_dated(now));
        let impossible = BackupId::parse("20261399T000000Z-000000").unwrap();
        assert!(!impossible.is_future_dated(now));
        assert!(!impossible.could_have_begun_by(now));
        assert!(!BackupId::parse("99999999T000000Z-0")
            .unwrap()
            .could_have_begun_by(now));
        assert!(!id_at(Duration::from_secs(365 * 86_400)).could_have_begun_by(now));
        assert!(id_at(Duration::ZERO).could_have_begun_by(now));
    }

    #[test]
    fn ids_of_one_second_sort_by_millisecond() {
        let second = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let ids: Vec<BackupId> = [0, 1, 15, 16, 255, 256, 999]
            .into_iter()
            .map(|ms| BackupId::new(second + Duration::from_millis(ms)))
            .collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
        assert!(
            ids[0].as_str().starts_with("20231114T221320Z-000"),
            "{}",
            ids[0]
        );
        assert!(
            ids[6].as_str().starts_with("20231114T221320Z-3e7"),
            "{}",
            ids[6]
        );
        assert_eq!(ids[6].as_str().len(), "20231114T221320Z-".len() + 9);
    }

    #[test]
    fn ids_of_the_same_second_differ() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let ids: std::collections::BTreeSet<BackupId> =
            (0..64).map(|_| BackupId::new(now)).collect();
        // 64 draws of 24 random bits: a repeat has odds of about 1 in 8,000.
        assert!(ids.len() >= 63, "{ids:?}");
    }

    #[test]
    fn parse_rejects_non_ids() {
        for bad in [
            "",
            "latest",
            "../x",
            "20231114T221320Z",
            "20231114T221320Z-",
            "2023111xT221320Z-ab",
            "20231114T221320Z-zz/x",
        ] {
            assert_eq!(BackupId::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn selectors_are_latest_ids_or_starts_of_ids() {
        assert_eq!(BackupSelector::parse("latest"), Ok(BackupSelector::Latest));
        // Id-shaped text is an id, even with a short suffix; it still names the longer
        // ids it starts (see `names`).
        for id in ["20261202T125301Z-3f9a1c", "20261202T125301Z-3f"] {
            assert_eq!(
                BackupSelector::parse(id),
                Ok(BackupSelector::Exact(BackupId::parse(id).unwrap()))
            );
        }
        for prefix in [
            "2",
            "20261202",
            "20261202T",
            "20261202T1253",
            "20261202T125301Z-",
        ] {
            assert_eq!(
                BackupSelector::parse(prefix),
                Ok(BackupSelector::Prefix(prefix.to_string())),
                "{prefix}"
            );
        }
        for bad in [
            "",
            "nope",
            "../etc",
            "2026-12",
            "20261202t",
            "20261202T125301Z-3F",
            "20261202T125301Z-x",
            "Latest",
            "20261202T12530Z",
        ] {
            assert_eq!(
                BackupSelector::parse(bad),
                Err(BadBackupSelector(bad.to_string())),
                "{bad}"
            );
        }
        let err = BackupSelector::parse("../etc").unwrap_err().to_string();
        assert!(
            err.contains("is not a backup id") && err.contains("kafkasnap ls"),
            "{err}"
        );
    }

    #[test]
    fn a_selector_names_the_ids_it_starts() {
        let id = BackupId::parse("20261202T125301Z-3f9a1c").unwrap();
        let named = |text: &str| BackupSelector::parse(text).unwrap().names(&id);
        assert!(named("20261202T1253"));
        assert!(named("20261202T125301Z-3f9a1c"));
        assert!(named("20261202T125301Z-3f"));
        assert!(!named("20261202T1254"));
        assert!(!named("latest"));
    }

    #[test]
    fn deserializing_checks_the_shape() {
        let id: BackupId = serde_json::from_str("\"20231114T221320Z-ab\"").unwrap();
        assert_eq!(
            serde_json::to_string(&id).unwrap(),
            "\"20231114T221320Z-ab\""
        );
        let err = serde_json::from_str::<BackupId>("\"../../etc\"").unwrap_err();
        assert!(err.to_string().contains("not a backup id"), "{err}");
    }
}
