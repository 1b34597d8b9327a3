//! A shard's place in a sharded backup run (`--shard INDEX/COUNT`, `--shard-run NAME`) and the
//! fixed rule that assigns each partition to one shard (docs/FORMAT.md, "Sharded backups").

use std::fmt;

/// This process's share of a sharded backup run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardSpec {
    /// Names the run all shards belong to (e.g. the Indexed Job's name).
    pub run: String,
    pub index: u32,
    pub count: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShardError {
    #[error("shard {0:?} is not INDEX/COUNT with 0 <= INDEX < COUNT (e.g. --shard 0/2)")]
    BadSpec(String),
    #[error("shard run name {0:?} must be 1-63 characters of a-z, A-Z, 0-9, '-' and '_' (an Indexed Job's name is one)")]
    BadRun(String),
    #[error("the parts of shard run {run} do not fit together: {problem}; run the whole sharded backup again")]
    Mismatch { run: String, problem: String },
}

impl ShardSpec {
    /// Parses `INDEX/COUNT` for run `run`.
    pub fn parse(spec: &str, run: &str) -> Result<ShardSpec, ShardError> {
        let bad = || ShardError::BadSpec(spec.to_string());
        let (index, count) = spec.split_once('/').ok_or_else(bad)?;
        let index: u32 = index.trim().parse().map_err(|_| bad())?;
        let count: u32 = count.trim().parse().map_err(|_| bad())?;
        ShardSpec::new(index, count, run).map_err(|err| match err {
            ShardError::BadSpec(_) => bad(),
            other => other,
        })
    }

    pub fn new(index: u32, count: u32, run: &str) -> Result<ShardSpec, ShardError> {
        if count == 0 || index >= count {
            return Err(ShardError::BadSpec(format!("{index}/{count}")));
        }
        let run_ok = !run.is_empty()
            && run.len() <= 63
            && run
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !run_ok {
            return Err(ShardError::BadRun(run.to_string()));
        }
        Ok(ShardSpec {
            run: run.to_string(),
            index,
            count,
        })
    }

    /// Whether this shard owns `topic`/`partition`.
    pub(crate) fn owns(&self, topic: &str, partition: i32) -> bool {
        shard_of(topic, partition, self.count) == self.index
    }
}

impl fmt::Display for ShardSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "shard {}/{} of run {}", self.index, self.count, self.run)
    }
}

/// The shard that owns a partition: a topic's partitions go round-robin, starting at a
/// shard picked by a fixed hash of the topic name (FNV-1a, the same on every machine and
/// build), so shards agree without talking and a topic's partitions spread evenly.
pub(crate) fn shard_of(topic: &str, partition: i32, count: u32) -> u32 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in topic.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    let count = u64::from(count.max(1));
    ((hash % count + u64::from(partition.unsigned_abs()) % count) % count) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_and_refuse_nonsense() {
        assert_eq!(
            ShardSpec::parse("1/3", "nightly-1").unwrap(),
            ShardSpec {
                run: "nightly-1".into(),
                index: 1,
                count: 3
            }
        );
        for bad in ["3/3", "0/0", "1", "a/2", "-1/2", "1/2/3"] {
            assert_eq!(
                ShardSpec::parse(bad, "r"),
                Err(ShardError::BadSpec(bad.into())),
                "{bad}"
            );
        }
        for run in ["", "has space", "../x", &"x".repeat(64)] {
            assert!(
                matches!(ShardSpec::parse("0/2", run), Err(ShardError::BadRun(_))),
                "{run}"
            );
        }
    }

    #[test]
    fn every_partition_has_exactly_one_owner_and_topics_spread() {
        for count in 1..=5u32 {
            let shards: Vec<ShardSpec> = (0..count)
                .map(|i| ShardSpec::new(i, count, "r").unwrap())
                .collect();
            for topic in ["orders", "payments", "a", ""] {
                let mut per_shard = vec![0; count as usize];
                for partition in 0..12 {
                    let owners: Vec<u32> = shards
                        .iter()
                        .filter(|s| s.owns(topic, partition))
                        .map(|s| s.index)
                        .collect();
                    assert_eq!(owners.len(), 1, "{topic}/{partition} of {count}");
                    per_shard[owners[0] as usize] += 1;
                }
                let (min, max) = (per_shard.iter().min(), per_shard.iter().max());
                assert!(
                    max.unwrap() - min.unwrap() <= 1,
                    "{topic} over {count}: {per_shard:?}"
                );
            }
        }
    }

    #[test]
    fn ownership_is_a_fixed_function() {
        // Pinned (FNV-1a of the name, then round-robin): changing the function would split a
        // run whose shards run different builds.
        assert_eq!(shard_of("orders", 0, 7), 4);
        assert_eq!(shard_of("orders", 3, 7), 0);
        assert_eq!(shard_of("payments", 0, 4), 2);
        assert_eq!(shard_of("payments", 1, 4), 3);
        assert_eq!(shard_of("payments", 2, 4), 0);
    }
}
