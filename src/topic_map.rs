//! `--topic-map OLD=NEW` (restore, verify --against): checking a map against a backup before
//! anything is read or written (known sources, legal target names, no two topics landing on
//! one target), and looking up where each backup topic goes.

use crate::archive::Manifest;

/// The longest topic name Kafka accepts.
const MAX_TOPIC_NAME: usize = 249;

/// A `--topic-map` that cannot be followed; nothing was read or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicMapError {
    #[error("--topic-map names topic {source_topic:?}, which is not in backup {backup_id}; `kafkasnap show` lists its topics")]
    UnknownSource {
        source_topic: String,
        backup_id: String,
    },
    #[error("--topic-map maps topic {source_topic:?} twice ({first:?} and {second:?}); give one target per topic")]
    DuplicateSource {
        source_topic: String,
        first: String,
        second: String,
    },
    #[error("--topic-map {source_topic}={target}: {target:?} is not a topic name Kafka accepts ({reason}); nothing was written")]
    InvalidTarget {
        source_topic: String,
        target: String,
        reason: &'static str,
    },
    #[error("topics {first:?} and {second:?} would both go to topic {target:?}{}; map them to different names with --topic-map (e.g. --topic-map {second}={second}.restored), or leave one out with --exclude; nothing was written", similar_hint(.target, .other_target))]
    Collision {
        first: String,
        second: String,
        target: String,
        /// Set when the two targets differ only in `.` versus `_`, which Kafka treats as
        /// the same name (their metric names collide).
        other_target: Option<String>,
    },
}

fn similar_hint(target: &str, other: &Option<String>) -> String {
    match other {
        Some(other) => format!(
            " and {other:?} (Kafka treats '.' and '_' in topic names as the same, so it holds only one of {target:?} and {other:?})"
        ),
        None => String::new(),
    }
}

/// A checked topic map: every source is a topic of the backup, named once.
#[derive(Debug, Clone, Default)]
pub(crate) struct TopicMap {
    pairs: Vec<(String, String)>,
}

impl TopicMap {
    /// Checks `pairs` against `manifest`. `covered` says which backup topics the command
    /// restores or compares; among those, no two may end on one target (including a topic
    /// left under its own name and another mapped onto that name; a swap `a=b,b=a` is fine).
    pub(crate) fn check(
        manifest: &Manifest,
        pairs: &[(String, String)],
        covered: impl Fn(&crate::archive::TopicBackup) -> bool,
    ) -> Result<TopicMap, TopicMapError> {
        let known: Vec<&str> = manifest.topics.iter().map(|t| t.name.as_str()).collect();
        let map = TopicMap::check_pairs(&known, &manifest.backup_id.to_string(), pairs)?;
        let sources: Vec<&str> = manifest
            .topics
            .iter()
            .filter(|t| covered(t))
            .map(|t| t.name.as_str())
            .collect();
        map.check_collisions(&sources)?;
        Ok(map)
    }

    fn check_pairs(
        known: &[&str],
        backup_id: &str,
        pairs: &[(String, String)],
    ) -> Result<TopicMap, TopicMapError> {
        for (index, (source, target)) in pairs.iter().enumerate() {
            if !known.contains(&source.as_str()) {
                return Err(TopicMapError::UnknownSource {
                    source_topic: source.clone(),
                    backup_id: backup_id.to_string(),
                });
            }
            if let Some((_, first)) = pairs[..index].iter().find(|(s, _)| s == source) {
                return Err(TopicMapError::DuplicateSource {
                    source_topic: source.clone(),
                    first: first.clone(),
                    second: target.clone(),
                });
            }
            if let Err(reason) = check_topic_name(target) {
                return Err(TopicMapError::InvalidTarget {
                    source_topic: source.clone(),
                    target: target.clone(),
                    reason,
                });
            }
        }
        Ok(TopicMap {
            pairs: pairs.to_vec(),
        })
    }

    /// Refuses two of `sources` whose targets are equal, or equal once `.` and `_` are
    /// treated alike (Kafka refuses to create the second).
    fn check_collisions(&self, sources: &[&str]) -> Result<(), TopicMapError> {
        let mut seen: Vec<(&str, &str, String)> = Vec::with_capacity(sources.len());
        for &source in sources {
            let target = self.target(source);
            let folded = target.replace('.', "_");
            if let Some((first, first_target, _)) = seen.iter().find(|(_, _, f)| *f == folded) {
                return Err(TopicMapError::Collision {
                    first: first.to_string(),
                    second: source.to_string(),
                    target: first_target.to_string(),
                    other_target: (*first_target != target).then(|| target.to_string()),
                });
            }
            seen.push((source, target, folded));
        }
        Ok(())
    }

    /// Where backup topic `source` goes: its mapped name, or its own.
    pub(crate) fn target<'a>(&'a self, source: &'a str) -> &'a str {
        self.pairs
            .iter()
            .find(|(s, _)| s == source)
            .map_or(source, |(_, target)| target.as_str())
    }
}

/// Kafka's rules for a topic name (`org.apache.kafka.common.internals.Topic.validate`).
pub(crate) fn check_topic_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("it is empty");
    }
    if name == "." || name == ".." {
        return Err("'.' and '..' are not allowed");
    }
    if name.len() > MAX_TOPIC_NAME {
        return Err("it is longer than 249 characters");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err("only ASCII letters, digits, '.', '_' and '-' are allowed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(s, t)| (s.to_string(), t.to_string()))
            .collect()
    }

    fn checked(list: &[(&str, &str)], sources: &[&str]) -> Result<TopicMap, TopicMapError> {
        let map = TopicMap::check_pairs(sources, "B", &pairs(list))?;
        map.check_collisions(sources)?;
        Ok(map)
    }

    #[test]
    fn two_sources_on_one_target_are_refused_naming_both() {
        let err = checked(&[("a", "merged"), ("b", "merged")], &["a", "b"]).unwrap_err();
        assert_eq!(
            err,
            TopicMapError::Collision {
                first: "a".into(),
                second: "b".into(),
                target: "merged".into(),
                other_target: None
            }
        );
        let text = err.to_string();
        assert!(
            text.starts_with(r#"topics "a" and "b" would both go to topic "merged";"#),
            "{text}"
        );
    }

    #[test]
    fn a_target_that_is_another_restored_topic_is_refused_unless_that_one_moves() {
        let err = checked(&[("a", "b")], &["a", "b"]).unwrap_err();
        assert!(
            matches!(&err, TopicMapError::Collision { first, second, target, .. }
                if first == "a" && second == "b" && target == "b"),
            "{err:?}"
        );
        // A swap, and a chain whose last name is free, are what the user asked for.
        let swap = checked(&[("a", "b"), ("b", "a")], &["a", "b"]).unwrap();
        assert_eq!((swap.target("a"), swap.target("b")), ("b", "a"));
        let chain = checked(&[("a", "b"), ("b", "c")], &["a", "b"]).unwrap();
        assert_eq!((chain.target("a"), chain.target("b")), ("b", "c"));
        // b is not restored (not selected): a may take its name.
        assert!(checked(&[("a", "b")], &["a"]).is_ok());
    }

    #[test]
    fn targets_kafka_treats_as_one_name_collide() {
        let err = checked(&[("a", "x.y"), ("b", "x_y")], &["a", "b"]).unwrap_err();
        assert_eq!(
            err,
            TopicMapError::Collision {
                first: "a".into(),
                second: "b".into(),
                target: "x.y".into(),
                other_target: Some("x_y".into())
            }
        );
    }

    #[test]
    fn unknown_and_repeated_sources_are_refused() {
        assert_eq!(
            checked(&[("nope", "x")], &["a"]).unwrap_err(),
            TopicMapError::UnknownSource {
                source_topic: "nope".into(),
                backup_id: "B".into()
            }
        );
        assert_eq!(
            checked(&[("a", "x"), ("a", "y")], &["a"]).unwrap_err(),
            TopicMapError::DuplicateSource {
                source_topic: "a".into(),
                first: "x".into(),
                second: "y".into()
            }
        );
    }

    #[test]
    fn target_names_follow_kafkas_rules() {
        let long = "x".repeat(249);
        assert_eq!(check_topic_name(&long), Ok(()));
        assert_eq!(check_topic_name("Orders.v2_eu-1"), Ok(()));
        assert_eq!(
            check_topic_name(&"x".repeat(250)),
            Err("it is longer than 249 characters")
        );
        assert_eq!(check_topic_name(""), Err("it is empty"));
        assert_eq!(check_topic_name("."), Err("'.' and '..' are not allowed"));
        assert_eq!(check_topic_name(".."), Err("'.' and '..' are not allowed"));
        for bad in ["a b", "a/b", "a,b", "é", "a:b"] {
            assert_eq!(
                check_topic_name(bad),
                Err("only ASCII letters, digits, '.', '_' and '-' are allowed"),
                "{bad}"
            );
        }
        let err = checked(&[("a", "a/b")], &["a"]).unwrap_err();
        assert!(
            matches!(err, TopicMapError::InvalidTarget { .. }),
            "{err:?}"
        );
    }

    #[test]
    fn unmapped_topics_keep_their_names() {
        let map = checked(&[("a", "b")], &["a", "c"]).unwrap();
        assert_eq!((map.target("a"), map.target("c")), ("b", "c"));
    }
}
