//! Which of a topic's described configs were set explicitly, and so must be set again when
//! the topic is re-created. Documented in docs/FORMAT.md ("Topic configs").

use crate::archive::TopicConfig;

/// Keys Apache Kafka always includes when it describes a topic; a description lacking any
/// of them comes from a broker that reports only explicitly set keys (tansu does this, and
/// marks them as defaults).
const ALWAYS_DESCRIBED_BY_KAFKA: [&str; 4] = [
    "cleanup.policy",
    "retention.ms",
    "segment.bytes",
    "max.message.bytes",
];

/// The `(name, value)` pairs to pass to CreateTopics:
/// - a full description (Apache Kafka): entries whose source is `dynamic_topic`;
/// - a partial description (tansu): every entry that has a value.
///
/// Sensitive entries have no stored value and are never returned.
pub(crate) fn explicitly_set_configs(configs: &[TopicConfig]) -> Vec<(String, String)> {
    let full_description = ALWAYS_DESCRIBED_BY_KAFKA
        .iter()
        .all(|key| configs.iter().any(|c| c.name == *key));
    configs
        .iter()
        .filter(|c| !full_description || c.source == "dynamic_topic")
        .filter_map(|c| Some((c.name.clone(), c.value.clone()?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, value: &str, source: &str, is_default: bool) -> TopicConfig {
        TopicConfig {
            name: name.into(),
            value: Some(value.into()),
            source: source.into(),
            is_default,
            is_sensitive: false,
            is_read_only: false,
        }
    }

    #[test]
    fn apache_kafka_overrides_are_the_dynamic_topic_entries() {
        let mut configs: Vec<TopicConfig> = ALWAYS_DESCRIBED_BY_KAFKA
            .iter()
            .map(|k| entry(k, "x", "default", true))
            .collect();
        configs[0] = entry("cleanup.policy", "compact", "dynamic_topic", false);
        configs.push(entry("min.insync.replicas", "2", "static_broker", false));
        assert_eq!(
            explicitly_set_configs(&configs),
            vec![("cleanup.policy".to_string(), "compact".to_string())]
        );
    }

    #[test]
    fn a_partial_description_is_all_explicit_even_when_marked_default() {
        let configs = vec![
            entry("cleanup.policy", "compact", "default", true),
            entry("retention.ms", "1000", "default", true),
        ];
        assert_eq!(explicitly_set_configs(&configs).len(), 2);
    }

    #[test]
    fn sensitive_entries_are_never_set() {
        let mut secret = entry("some.password", "", "dynamic_topic", false);
        secret.value = None;
        secret.is_sensitive = true;
        assert!(explicitly_set_configs(&[secret]).is_empty());
    }
}
