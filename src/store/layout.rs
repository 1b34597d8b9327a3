//! The one place that builds object keys. Layout below a location's root:
//!
//! ```text
//! backups/<backup-id>/manifest.json
//! backups/<backup-id>/manifest.seal      an encrypted backup's manifest seal, written just before it
//! backups/<backup-id>/segments/<escaped-topic>/<partition>/<first-offset, 20 digits>.<ext>
//! backups/<backup-id>/shard-part.<run>.<index>-of-<count>.json   one shard's part of a run
//! backups/<backup-id>/shard-part.<run>.<index>-of-<count>.json.seal   its seal (encrypted runs)
//! datadir/<backup-id>/data.tar.zst (or .tar.gz)     a data-dir (physical) backup's tar
//! datadir/<backup-id>/manifest.seal                 an encrypted one's manifest seal, just before it
//! datadir/<backup-id>/manifest.json                 its manifest, written last
//! locks/<lock-id>.json                              a running backup/restore/verify/prune
//! ```

use crate::archive::ShardSpec;
use crate::archive::{BackupId, Compression, Manifest};

pub(crate) const BACKUPS_DIR: &str = "backups";
pub(crate) const MANIFEST_NAME: &str = "manifest.json";

pub(crate) fn manifest_key(id: &BackupId) -> String {
    format!("{BACKUPS_DIR}/{id}/{MANIFEST_NAME}")
}

/// The key of an encrypted backup's manifest seal (docs/FORMAT.md, "Manifest seal").
pub(crate) fn manifest_seal_key(id: &BackupId) -> String {
    format!("{BACKUPS_DIR}/{id}/manifest.seal")
}

const SHARD_PART_PREFIX: &str = "shard-part.";

/// The key of the part file shard `spec` writes after its segments (under its own id). The
/// name carries the run and index, so a listing finds a run's parts without reading them.
pub(crate) fn shard_part_key(id: &BackupId, spec: &ShardSpec) -> String {
    format!(
        "{BACKUPS_DIR}/{id}/{SHARD_PART_PREFIX}{}.{}-of-{}.json",
        spec.run, spec.index, spec.count
    )
}

/// The key of an encrypted run's part seal, written just before the part
/// (docs/FORMAT.md, "Manifest seal"). Its name does not end in `.json`: not a part.
pub(crate) fn shard_part_seal_key(id: &BackupId, spec: &ShardSpec) -> String {
    format!("{}.seal", shard_part_key(id, spec))
}

/// The shard a part file's name describes; `None` for any other file name.
pub(crate) fn shard_of_part_name(name: &str) -> Option<ShardSpec> {
    let middle = name
        .strip_prefix(SHARD_PART_PREFIX)?
        .strip_suffix(".json")?;
    let (run, position) = middle.split_once('.')?;
    let (index, count) = position.split_once("-of-")?;
    ShardSpec::new(index.parse().ok()?, count.parse().ok()?, run).ok()
}

/// Top-level directory of location locks.
pub(crate) const LOCKS_DIR: &str = "locks/";

/// The key of the lock object `lock_id` (`<UTC time>-<random hex>`).
pub(crate) fn lock_key(lock_id: &str) -> String {
    format!("{LOCKS_DIR}{lock_id}.json")
}

/// Top-level directory of data-dir (physical) backups.
pub(crate) const DATADIR_DIR: &str = "datadir";

/// The key of a data-dir backup's tar archive.
pub(crate) fn datadir_archive_key(id: &BackupId, compression: Compression) -> String {
    let ext = match compression {
        Compression::Zstd => "tar.zst",
        Compression::Lz4 => "tar.lz4",
        Compression::Gzip => "tar.gz",
        Compression::None => "tar",
    };
    format!("{DATADIR_DIR}/{id}/data.{ext}")
}

/// The key of a data-dir backup's manifest (its commit point).
pub(crate) fn datadir_manifest_key(id: &BackupId) -> String {
    format!("{DATADIR_DIR}/{id}/{MANIFEST_NAME}")
}

/// The key of an encrypted data-dir backup's manifest seal.
pub(crate) fn datadir_manifest_seal_key(id: &BackupId) -> String {
    format!("{DATADIR_DIR}/{id}/manifest.seal")
}

pub(crate) fn backup_prefix(id: &BackupId) -> String {
    prefix_under(BACKUPS_DIR, id)
}

/// The prefix of backup `id` below `dir` (`backups` or `datadir`).
pub(crate) fn prefix_under(dir: &str, id: &BackupId) -> String {
    format!("{dir}/{id}/")
}

/// The backup whose prefix holds object `key` (`backups/<id>/...`), if any. A manifest's
/// segment keys may point under another backup's prefix (incremental backups); this says
/// which backups a manifest's segments live in.
pub(crate) fn backup_of_key(key: &str) -> Option<BackupId> {
    let rest = key.strip_prefix(BACKUPS_DIR)?.strip_prefix('/')?;
    let (id, inside) = rest.split_once('/')?;
    if inside.is_empty() {
        return None;
    }
    BackupId::parse(id)
}

/// The segments a backup stored itself, as against those it carries from its parents (an
/// incremental backup): those whose keys are under its own prefix, or a sharded run's parts'.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct OwnSegments {
    pub segments: u64,
    pub records: u64,
    pub stored_bytes: u64,
}

/// What `manifest`'s backup stored itself (see [`OwnSegments`]).
pub fn own_segments(manifest: &Manifest) -> OwnSegments {
    let parts: Vec<&BackupId> = manifest.sharding.iter().flat_map(|s| &s.parts).collect();
    let mut own = OwnSegments::default();
    for (_, _, segment) in manifest.segments() {
        let Some(holder) = backup_of_key(&segment.key) else {
            continue;
        };
        if holder == manifest.backup_id || parts.contains(&&holder) {
            own.segments += 1;
            own.records += segment.records;
            own.stored_bytes += segment.stored_bytes;
        }
    }
    own
}

/// The key of the segment of `topic`/`partition` whose first record has `first_offset`.
pub fn segment_key(
    id: &BackupId,
    topic: &str,
    partition: i32,
    first_offset: i64,
    compression: Compression,
) -> String {
    format!(
        "{BACKUPS_DIR}/{id}/segments/{}/{partition}/{first_offset:020}.{}",
        escape_topic(topic),
        compression.file_extension()
    )
}

/// Whether `key` is exactly the key [`segment_key`] builds for this segment, under the
/// prefix of the backup `key` names (a parent's, for a carried segment).
pub(crate) fn segment_key_matches(
    key: &str,
    topic: &str,
    partition: i32,
    first_offset: i64,
    compression: Compression,
) -> bool {
    backup_of_key(key)
        .is_some_and(|id| key == segment_key(&id, topic, partition, first_offset, compression))
}

/// Makes a topic name safe as one key segment on every store: bytes outside
/// `[A-Za-z0-9._-]` become `~XX` (hex), as does the whole name when it is `.` or `..`
/// (Kafka forbids both, but a key must never walk up). The mapping is one-to-one.
pub(crate) fn escape_topic(topic: &str) -> String {
    let whole_name_unsafe = topic.is_empty() || topic == "." || topic == "..";
    let mut out = String::with_capacity(topic.len());
    for byte in topic.bytes() {
        let plain = byte.is_ascii_alphanumeric()
            || byte == b'_'
            || byte == b'-'
            || (byte == b'.' && !whole_name_unsafe);
        if plain {
            out.push(byte as char);
        } else {
            out.push_str(&format!("~{byte:02X}"));
        }
    }
    if out.is_empty() {
        out.push('~');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_topic_names_stay_readable() {
        assert_eq!(escape_topic("order.created"), "order.created");
        assert_eq!(escape_topic("__consumer_offsets"), "__consumer_offsets");
    }

    #[test]
    fn unsafe_names_cannot_walk_or_collide() {
        assert_eq!(escape_topic(".."), "~2E~2E");
        assert_eq!(escape_topic("a/b"), "a~2Fb");
        assert_eq!(escape_topic("a~2Fb"), "a~7E2Fb");
        assert_eq!(escape_topic("ü"), "~C3~BC");
    }

    #[test]
    fn keys_name_the_backup_they_belong_to() {
        let id = BackupId::parse("20261125T145443Z-3f9a1c").unwrap();
        let key = segment_key(&id, "a/b", 3, 7, Compression::Gzip);
        assert_eq!(backup_of_key(&key), Some(id.clone()));
        assert_eq!(backup_of_key(&manifest_key(&id)), Some(id.clone()));
        for foreign in [
            "",
            "backups",
            "backups/",
            "backups/20261125T145443Z-3f9a1c",
            "backups/20261125T145443Z-3f9a1c/",
            "backups/not-an-id/x",
            "other/20261125T145443Z-3f9a1c/x",
            "backupsx/20261125T145443Z-3f9a1c/x",
        ] {
            assert_eq!(backup_of_key(foreign), None, "{foreign}");
        }
    }

    #[test]
    fn datadir_keys_live_apart_from_logical_backups() {
        let id = BackupId::parse("20261125T145443Z-3f9a1c").unwrap();
        assert_eq!(
            datadir_archive_key(&id, Compression::Zstd),
            "datadir/20261125T145443Z-3f9a1c/data.tar.zst"
        );
        assert_eq!(
            datadir_archive_key(&id, Compression::Gzip),
            "datadir/20261125T145443Z-3f9a1c/data.tar.gz"
        );
        assert_eq!(
            datadir_manifest_key(&id),
            "datadir/20261125T145443Z-3f9a1c/manifest.json"
        );
        assert_eq!(backup_of_key(&datadir_manifest_key(&id)), None);
    }

    #[test]
    fn shard_part_names_carry_their_run_and_index() {
        let id = BackupId::parse("20261125T145443Z-3f9a1c").unwrap();
        let spec = ShardSpec::new(2, 3, "nightly-29384760").unwrap();
        let key = shard_part_key(&id, &spec);
        assert_eq!(
            key,
            "backups/20261125T145443Z-3f9a1c/shard-part.nightly-29384760.2-of-3.json"
        );
        assert_eq!(backup_of_key(&key), Some(id.clone()));
        let seal = shard_part_seal_key(&id, &spec);
        assert_eq!(shard_of_part_name(seal.rsplit('/').next().unwrap()), None);
        let name = key.rsplit('/').next().unwrap();
        assert_eq!(shard_of_part_name(name), Some(spec));
        for other in [
            "manifest.json",
            "shard-part.x.3-of-3.json",
            "shard-part..0-of-1.json",
        ] {
            assert_eq!(shard_of_part_name(other), None, "{other}");
        }
    }

    #[test]
    fn segment_keys_sort_by_offset() {
        let id = BackupId::parse("20261125T145443Z-3f9a1c").unwrap();
        let early = segment_key(&id, "t", 0, 9, Compression::Zstd);
        let late = segment_key(&id, "t", 0, 10, Compression::Zstd);
        assert_eq!(
            early,
            "backups/20261125T145443Z-3f9a1c/segments/t/0/00000000000000000009.kseg.zst"
        );
        assert!(early < late);
    }
}
