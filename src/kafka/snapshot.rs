//! The cluster as it is now: id, brokers, topics with partitions and replication factors,
//! topic configs as the broker describes them, and partition offset bounds.

use rdkafka::admin::{AdminClient, AdminOptions, ConfigSource, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};

use super::{ClientSettings, KafkaError};
use crate::archive::{BrokerInfo, TopicConfig};

#[derive(Debug, Clone)]
pub(crate) struct ClusterSnapshot {
    pub(crate) cluster_id: Option<String>,
    pub(crate) brokers: Vec<BrokerInfo>,
    pub(crate) topics: Vec<TopicInfo>,
}

#[derive(Debug, Clone)]
pub(crate) struct TopicInfo {
    pub(crate) name: String,
    /// Kafka's own topics (`__consumer_offsets`, `__transaction_state`, ...): names starting `__`.
    pub(crate) internal: bool,
    pub(crate) partitions: Vec<i32>,
    pub(crate) replication_factor: i32,
}

pub(crate) fn metadata_consumer(settings: &ClientSettings) -> Result<BaseConsumer, KafkaError> {
    settings
        .config(&[], &[("enable.auto.commit", "false")])
        .create::<BaseConsumer>()
        .map_err(|source| KafkaError::BadSetting { source })
}

/// Reads cluster metadata (blocking). Fails with `Unreachable` naming the servers when no
/// broker answers within the request timeout.
pub(crate) fn describe_cluster(settings: &ClientSettings) -> Result<ClusterSnapshot, KafkaError> {
    let consumer = metadata_consumer(settings)?;
    let metadata = consumer
        .fetch_metadata(None, settings.request_timeout)
        .map_err(|source| KafkaError::Unreachable {
            servers: settings.bootstrap_servers.clone(),
            timeout: settings.request_timeout,
            source,
        })?;
    let cluster_id = consumer.client().fetch_cluster_id(settings.request_timeout);
    let brokers = metadata
        .brokers()
        .iter()
        .map(|b| BrokerInfo {
            id: b.id(),
            host: b.host().to_string(),
            port: b.port(),
        })
        .collect();
    let mut topics = Vec::new();
    for topic in metadata.topics() {
        if let Some(err) = topic.error() {
            return Err(KafkaError::Broker {
                action: "reading topic metadata".into(),
                resource: format!("topic {}", topic.name()),
                code: err.into(),
            });
        }
        let mut partitions: Vec<i32> = topic.partitions().iter().map(|p| p.id()).collect();
        partitions.sort_unstable();
        let replication_factor = topic
            .partitions()
            .iter()
            .map(|p| p.replicas().len() as i32)
            .max()
            .unwrap_or(0);
        topics.push(TopicInfo {
            name: topic.name().to_string(),
            internal: topic.name().starts_with("__"),
            partitions,
            replication_factor,
        });
    }
    topics.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(ClusterSnapshot {
        cluster_id,
        brokers,
        topics,
    })
}

/// Describes each topic's configs. Sensitive values are dropped here, before anything can
/// store or print them.
pub(crate) async fn describe_topic_configs(
    settings: &ClientSettings,
    topics: &[String],
) -> Result<Vec<Vec<TopicConfig>>, KafkaError> {
    if topics.is_empty() {
        return Ok(Vec::new());
    }
    let admin: AdminClient<DefaultClientContext> = settings
        .config(&[], &[])
        .create()
        .map_err(|source| KafkaError::BadSetting { source })?;
    let specifiers: Vec<ResourceSpecifier<'_>> =
        topics.iter().map(|t| ResourceSpecifier::Topic(t)).collect();
    let options = AdminOptions::new().request_timeout(Some(settings.request_timeout));
    let results = admin
        .describe_configs(&specifiers, &options)
        .await
        .map_err(KafkaError::client("describing topic configs"))?;
    let mut all = Vec::with_capacity(topics.len());
    for (topic, result) in topics.iter().zip(results) {
        let resource = result.map_err(|code| KafkaError::Broker {
            action: "describing configs".into(),
            resource: format!("topic {topic}"),
            code,
        })?;
        let mut configs: Vec<TopicConfig> = resource
            .entries
            .into_iter()
            .map(|entry| TopicConfig {
                value: if entry.is_sensitive {
                    None
                } else {
                    entry.value
                },
                name: entry.name,
                source: source_name(&entry.source).to_string(),
                is_default: entry.is_default,
                is_sensitive: entry.is_sensitive,
                is_read_only: entry.is_read_only,
            })
            .collect();
        configs.sort_by(|a, b| a.name.cmp(&b.name));
        all.push(configs);
    }
    Ok(all)
}

fn source_name(source: &ConfigSource) -> &'static str {
    match source {
        ConfigSource::Unknown => "unknown",
        ConfigSource::DynamicTopic => "dynamic_topic",
        ConfigSource::DynamicBroker => "dynamic_broker",
        ConfigSource::DynamicDefaultBroker => "dynamic_default_broker",
        ConfigSource::StaticBroker => "static_broker",
        ConfigSource::Default => "default",
    }
}

/// The log start offset and the end offset ListOffsets reports (blocking). On some brokers
/// (tansu) the end under-reports the high watermark; the reader corrects it from Fetch.
pub(crate) fn partition_bounds(
    consumer: &BaseConsumer,
    settings: &ClientSettings,
    topic: &str,
    partition: i32,
) -> Result<(i64, i64), KafkaError> {
    consumer
        .fetch_watermarks(topic, partition, settings.request_timeout)
        .map_err(KafkaError::client(format!(
            "listing offsets of {topic}/{partition}"
        )))
}
