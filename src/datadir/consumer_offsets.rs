//! `__consumer_offsets` records: keys (version 0/1 offset commit: group, topic, partition;
//! version 2 group metadata and newer kinds, skipped) and offset commit values (versions 0-4),
//! folded into the latest committed offset per group, topic and partition. A null value (a
//! tombstone) deletes the commit.

use std::collections::BTreeMap;

use super::wire::{WireError, WireReader};

/// What a `__consumer_offsets` record key names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum OffsetsKey {
    Commit {
        group: String,
        topic: String,
        partition: i32,
    },
    /// Group metadata (version 2) or a newer record kind: not an offset.
    Other { version: i16 },
}

/// An offset commit value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OffsetCommitValue {
    pub(crate) offset: i64,
    pub(crate) leader_epoch: Option<i32>,
    pub(crate) metadata: Option<String>,
    pub(crate) commit_timestamp: i64,
    pub(crate) expire_timestamp: Option<i64>,
}

pub(crate) fn parse_key(key: &[u8]) -> Result<OffsetsKey, WireError> {
    let mut r = WireReader::over(key);
    let version = r.i16("offsets key version")?;
    if !(0..=1).contains(&version) {
        return Ok(OffsetsKey::Other { version });
    }
    let group = r.string16("group")?;
    let topic = r.string16("topic")?;
    let partition = r.i32("partition")?;
    match (group, topic) {
        (Some(group), Some(topic)) => Ok(OffsetsKey::Commit {
            group,
            topic,
            partition,
        }),
        _ => Err(r.invalid("offsets key", "null group or topic")),
    }
}

pub(crate) fn parse_value(value: &[u8]) -> Result<OffsetCommitValue, WireError> {
    let mut r = WireReader::over(value);
    let version = r.i16("offset commit value version")?;
    if !(0..=4).contains(&version) {
        return Err(r.invalid(
            "offset commit value version",
            format!("unknown version {version} (this reader knows 0 to 4)"),
        ));
    }
    let offset = r.i64("committed offset")?;
    let leader_epoch = if version >= 3 {
        Some(r.i32("leader epoch")?)
    } else {
        None
    };
    let metadata = if version >= 4 {
        r.compact_string("commit metadata")?
    } else {
        r.string16("commit metadata")?
    };
    let commit_timestamp = r.i64("commit timestamp")?;
    let expire_timestamp = if version == 1 {
        Some(r.i64("expire timestamp")?)
    } else {
        None
    };
    if version >= 4 {
        r.skip_tagged_fields()?;
    }
    Ok(OffsetCommitValue {
        offset,
        leader_epoch,
        metadata,
        commit_timestamp,
        expire_timestamp,
    })
}

/// The latest commit per (group, topic, partition), whatever order records arrive in.
#[derive(Debug, Default)]
pub(crate) struct GroupOffsets {
    /// key -> (record offset in __consumer_offsets, commit or tombstone).
    latest: BTreeMap<(String, String, i32), (i64, Option<OffsetCommitValue>)>,
}

impl GroupOffsets {
    /// Applies one `__consumer_offsets` record at `record_offset`; returns whether it was an
    /// offset commit (or tombstone).
    pub(crate) fn add(
        &mut self,
        record_offset: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
    ) -> Result<bool, WireError> {
        let Some(key) = key else {
            return Ok(false);
        };
        let OffsetsKey::Commit {
            group,
            topic,
            partition,
        } = parse_key(key)?
        else {
            return Ok(false);
        };
        let value = value.map(parse_value).transpose()?;
        let slot = self
            .latest
            .entry((group, topic, partition))
            .or_insert((i64::MIN, None));
        if record_offset >= slot.0 {
            *slot = (record_offset, value);
        }
        Ok(true)
    }

    /// (group, topic, partition, commit) for every live commit, sorted.
    pub(crate) fn committed(&self) -> impl Iterator<Item = (&str, &str, i32, &OffsetCommitValue)> {
        self.latest
            .iter()
            .filter_map(|((group, topic, partition), (_, value))| {
                value
                    .as_ref()
                    .map(|v| (group.as_str(), topic.as_str(), *partition, v))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(version: i16, group: &str, topic: &str, partition: i32) -> Vec<u8> {
        let mut k = version.to_be_bytes().to_vec();
        for s in [group, topic] {
            k.extend_from_slice(&(s.len() as i16).to_be_bytes());
            k.extend_from_slice(s.as_bytes());
        }
        k.extend_from_slice(&partition.to_be_bytes());
        k
    }

    fn value_v3(offset: i64) -> Vec<u8> {
        let mut v = 3i16.to_be_bytes().to_vec();
        v.extend_from_slice(&offset.to_be_bytes());
        v.extend_from_slice(&(-1i32).to_be_bytes());
        v.extend_from_slice(&0i16.to_be_bytes());
        v.extend_from_slice(&1_700_000_000_000i64.to_be_bytes());
        v
    }

    #[test]
    fn values_of_every_version_decode() {
        let mut v1 = 1i16.to_be_bytes().to_vec();
        v1.extend_from_slice(&42i64.to_be_bytes());
        v1.extend_from_slice(&2i16.to_be_bytes());
        v1.extend_from_slice(b"md");
        v1.extend_from_slice(&5i64.to_be_bytes());
        v1.extend_from_slice(&6i64.to_be_bytes());
        let parsed = parse_value(&v1).unwrap();
        assert_eq!(parsed.offset, 42);
        assert_eq!(parsed.metadata.as_deref(), Some("md"));
        assert_eq!(parsed.expire_timestamp, Some(6));

        let parsed = parse_value(&value_v3(9)).unwrap();
        assert_eq!((parsed.offset, parsed.leader_epoch), (9, Some(-1)));

        let mut v4 = 4i16.to_be_bytes().to_vec();
        v4.extend_from_slice(&7i64.to_be_bytes());
        v4.extend_from_slice(&3i32.to_be_bytes());
        v4.push(1); // empty compact string
        v4.extend_from_slice(&8i64.to_be_bytes());
        v4.push(0);
        let parsed = parse_value(&v4).unwrap();
        assert_eq!(
            (parsed.offset, parsed.leader_epoch, parsed.commit_timestamp),
            (7, Some(3), 8)
        );
        assert_eq!(parsed.metadata.as_deref(), Some(""));

        assert!(parse_value(&5i16.to_be_bytes()).is_err());
    }

    #[test]
    fn latest_wins_and_tombstones_delete() {
        let mut offsets = GroupOffsets::default();
        let k = key(1, "billing", "orders", 0);
        assert!(offsets.add(5, Some(&k), Some(&value_v3(100))).unwrap());
        assert!(offsets.add(3, Some(&k), Some(&value_v3(50))).unwrap()); // older, arrives later
        let other = key(0, "billing", "orders", 1);
        offsets.add(6, Some(&other), Some(&value_v3(7))).unwrap();
        offsets.add(8, Some(&other), None).unwrap();
        assert!(!offsets
            .add(9, Some(&2i16.to_be_bytes()), Some(b"x"))
            .unwrap());
        let live: Vec<_> = offsets
            .committed()
            .map(|(g, t, p, v)| (g, t, p, v.offset))
            .collect();
        assert_eq!(live, vec![("billing", "orders", 0, 100)]);
    }
}
