//! The KRaft metadata log (`__cluster_metadata-0`) and its snapshots: record framing (frame
//! version, api key, version as unsigned varints), the records the report needs (TopicRecord,
//! PartitionRecord, ConfigRecord, RemoveTopicRecord, FeatureLevelRecord), and replaying them
//! in offset order, from the latest snapshot on, into topics, configs and features.
//!
//! Metadata records use the flexible encoding: compact strings and arrays (unsigned varint
//! length + 1) and a tagged-field section. Other record types are skipped by api key.

use std::collections::BTreeMap;

use base64::Engine;

use super::wire::{WireError, WireReader};

const FRAME_VERSION: u32 = 1;
const TOPIC_RECORD: u32 = 2;
const PARTITION_RECORD: u32 = 3;
const CONFIG_RECORD: u32 = 4;
const REMOVE_TOPIC_RECORD: u32 = 9;
const FEATURE_LEVEL_RECORD: u32 = 12;
/// ConfigRecord resource type for topics.
const RESOURCE_TOPIC: i8 = 2;

/// A decoded metadata record (only the kinds the report uses).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum MetadataRecord {
    Topic {
        name: String,
        id: [u8; 16],
    },
    Partition {
        topic_id: [u8; 16],
        partition: i32,
        replicas: Vec<i32>,
        isr: Vec<i32>,
        leader: i32,
    },
    Config {
        resource_type: i8,
        resource_name: String,
        name: String,
        /// None deletes the setting.
        value: Option<String>,
    },
    RemoveTopic {
        id: [u8; 16],
    },
    FeatureLevel {
        name: String,
        level: i16,
    },
    /// Any other api key: skipped.
    Other {
        api_key: u32,
        version: u32,
    },
}

/// Decodes a metadata record value.
pub(crate) fn parse_record(value: &[u8]) -> Result<MetadataRecord, WireError> {
    let mut r = WireReader::over(value);
    let frame = r.uvarint("frame version")?;
    if frame != FRAME_VERSION {
        return Err(r.invalid(
            "frame version",
            format!("unknown frame version {frame} (expected {FRAME_VERSION})"),
        ));
    }
    let api_key = r.uvarint("api key")?;
    let version = r.uvarint("record version")?;
    let record = match api_key {
        TOPIC_RECORD => MetadataRecord::Topic {
            name: required(&mut r, "topic name")?,
            id: r.uuid("topic id")?,
        },
        PARTITION_RECORD => {
            let partition = r.i32("partition id")?;
            let topic_id = r.uuid("topic id")?;
            let replicas = r.compact_i32_array("replicas")?;
            let isr = r.compact_i32_array("isr")?;
            r.compact_i32_array("removing replicas")?;
            r.compact_i32_array("adding replicas")?;
            let leader = r.i32("leader")?;
            MetadataRecord::Partition {
                topic_id,
                partition,
                replicas,
                isr,
                leader,
            }
        }
        CONFIG_RECORD => MetadataRecord::Config {
            resource_type: r.i8("resource type")?,
            resource_name: required(&mut r, "resource name")?,
            name: required(&mut r, "config name")?,
            value: r.compact_string("config value")?,
        },
        REMOVE_TOPIC_RECORD => MetadataRecord::RemoveTopic {
            id: r.uuid("topic id")?,
        },
        FEATURE_LEVEL_RECORD => MetadataRecord::FeatureLevel {
            name: required(&mut r, "feature name")?,
            level: r.i16("feature level")?,
        },
        api_key => MetadataRecord::Other { api_key, version },
    };
    Ok(record)
}

fn required(r: &mut WireReader<&[u8]>, what: &'static str) -> Result<String, WireError> {
    r.compact_string(what)?
        .ok_or_else(|| r.invalid(what, "null where a string is required"))
}

/// A topic id as Kafka prints it (URL-safe base64 without padding).
pub(crate) fn topic_id_string(id: &[u8; 16]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id)
}

/// A partition as the metadata log last described it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PartitionState {
    pub(crate) replicas: Vec<i32>,
    pub(crate) isr: Vec<i32>,
    pub(crate) leader: i32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TopicState {
    pub(crate) name: String,
    pub(crate) id: [u8; 16],
    pub(crate) partitions: BTreeMap<i32, PartitionState>,
    pub(crate) configs: BTreeMap<String, String>,
}

/// The cluster state the metadata log describes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct MetadataImage {
    pub(crate) topics: BTreeMap<[u8; 16], TopicState>,
    pub(crate) features: BTreeMap<String, i16>,
}

impl MetadataImage {
    fn apply(
        &mut self,
        record: &MetadataRecord,
        configs: &mut BTreeMap<String, BTreeMap<String, String>>,
    ) {
        match record {
            MetadataRecord::Topic { name, id } => {
                self.topics.insert(
                    *id,
                    TopicState {
                        name: name.clone(),
                        id: *id,
                        partitions: BTreeMap::new(),
                        configs: BTreeMap::new(),
                    },
                );
            }
            MetadataRecord::Partition {
                topic_id,
                partition,
                replicas,
                isr,
                leader,
            } => {
                if let Some(topic) = self.topics.get_mut(topic_id) {
                    topic.partitions.insert(
                        *partition,
                        PartitionState {
                            replicas: replicas.clone(),
                            isr: isr.clone(),
                            leader: *leader,
                        },
                    );
                }
            }
            MetadataRecord::Config {
                resource_type: RESOURCE_TOPIC,
                resource_name,
                name,
                value,
            } => {
                let topic = configs.entry(resource_name.clone()).or_default();
                match value {
                    Some(value) => topic.insert(name.clone(), value.clone()),
                    None => topic.remove(name),
                };
            }
            MetadataRecord::RemoveTopic { id } => {
                if let Some(topic) = self.topics.remove(id) {
                    configs.remove(&topic.name);
                }
            }
            MetadataRecord::FeatureLevel { name, level } => {
                self.features.insert(name.clone(), *level);
            }
            MetadataRecord::Config { .. } | MetadataRecord::Other { .. } => {}
        }
    }
}

/// Collects metadata records from the log and snapshots in any file order, and replays them
/// in offset order at the end.
#[derive(Debug, Default)]
pub(crate) struct MetadataLog {
    /// Snapshot end offset -> its records.
    snapshots: BTreeMap<i64, Vec<(i64, MetadataRecord)>>,
    log: Vec<(i64, MetadataRecord)>,
}

impl MetadataLog {
    pub(crate) fn add_log_record(&mut self, offset: i64, record: MetadataRecord) {
        if !matches!(record, MetadataRecord::Other { .. }) {
            self.log.push((offset, record));
        }
    }

    pub(crate) fn add_snapshot_record(
        &mut self,
        end_offset: i64,
        offset: i64,
        record: MetadataRecord,
    ) {
        if !matches!(record, MetadataRecord::Other { .. }) {
            self.snapshots
                .entry(end_offset)
                .or_default()
                .push((offset, record));
        }
    }

    /// The state after the latest snapshot and every log record from its end offset on.
    pub(crate) fn replay(mut self) -> MetadataImage {
        let mut image = MetadataImage::default();
        let mut configs = BTreeMap::new();
        let start = match self.snapshots.pop_last() {
            Some((end_offset, mut records)) => {
                records.sort_by_key(|(offset, _)| *offset);
                for (_, record) in &records {
                    image.apply(record, &mut configs);
                }
                end_offset
            }
            None => i64::MIN,
        };
        self.log.sort_by_key(|(offset, _)| *offset);
        for (_, record) in self.log.iter().filter(|(offset, _)| *offset >= start) {
            image.apply(record, &mut configs);
        }
        for topic in image.topics.values_mut() {
            topic.configs = configs.remove(&topic.name).unwrap_or_default();
        }
        image
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn compact(out: &mut Vec<u8>, s: &str) {
        out.push(s.len() as u8 + 1);
        out.extend_from_slice(s.as_bytes());
    }

    pub(crate) fn topic(name: &str, id: u8) -> Vec<u8> {
        let mut v = vec![1, 2, 0];
        compact(&mut v, name);
        v.extend_from_slice(&[id; 16]);
        v.push(0);
        v
    }

    pub(crate) fn partition(id: u8, partition: i32, replicas: &[i32]) -> Vec<u8> {
        let mut v = vec![1, 3, 1];
        v.extend_from_slice(&partition.to_be_bytes());
        v.extend_from_slice(&[id; 16]);
        for list in [replicas, replicas, &[][..], &[][..]] {
            v.push(list.len() as u8 + 1);
            for r in list {
                v.extend_from_slice(&r.to_be_bytes());
            }
        }
        v.extend_from_slice(&replicas[0].to_be_bytes()); // leader
        v.extend_from_slice(&0i32.to_be_bytes()); // leader epoch
        v.extend_from_slice(&0i32.to_be_bytes()); // partition epoch
        v.push(1); // directories: empty
        v.push(0); // tagged fields
        v
    }

    #[test]
    fn an_array_or_string_longer_than_the_record_is_refused_before_it_is_read() {
        // A PartitionRecord whose replica array claims 2^28 - 1 int32s.
        let mut v = vec![1, 3, 1];
        v.extend_from_slice(&0i32.to_be_bytes());
        v.extend_from_slice(&[7; 16]);
        v.extend_from_slice(&[0x80, 0x80, 0x80, 0x80, 0x01, 0, 0, 0, 1]);
        let err = parse_record(&v).unwrap_err();
        assert!(
            matches!(&err, WireError::Invalid { what: "replicas", detail, .. }
                if detail.contains("cannot fit in the 4 bytes left")),
            "{err}"
        );
        // A TopicRecord whose name claims 1000 bytes.
        let err = parse_record(&[1, 2, 0, 0xe9, 0x07, b'x']).unwrap_err();
        assert!(
            matches!(&err, WireError::Invalid { what: "topic name", detail, .. }
                if detail.contains("1000 bytes claimed, only 1 left")),
            "{err}"
        );
    }

    pub(crate) fn config(topic: &str, name: &str, value: Option<&str>) -> Vec<u8> {
        let mut v = vec![1, 4, 0, 2];
        compact(&mut v, topic);
        compact(&mut v, name);
        match value {
            Some(value) => compact(&mut v, value),
            None => v.push(0),
        }
        v.push(0);
        v
    }

    #[test]
    fn records_decode() {
        assert_eq!(
            parse_record(&topic("orders", 7)).unwrap(),
            MetadataRecord::Topic {
                name: "orders".into(),
                id: [7; 16]
            }
        );
        assert_eq!(
            parse_record(&partition(7, 2, &[1, 3])).unwrap(),
            MetadataRecord::Partition {
                topic_id: [7; 16],
                partition: 2,
                replicas: vec![1, 3],
                isr: vec![1, 3],
                leader: 1
            }
        );
        let mut feature = vec![1, 12, 0];
        compact(&mut feature, "metadata.version");
        feature.extend_from_slice(&19i16.to_be_bytes());
        feature.push(0);
        assert_eq!(
            parse_record(&feature).unwrap(),
            MetadataRecord::FeatureLevel {
                name: "metadata.version".into(),
                level: 19
            }
        );
        assert_eq!(
            parse_record(&[1, 21, 0, 0]).unwrap(),
            MetadataRecord::Other {
                api_key: 21,
                version: 0
            }
        );
        assert!(parse_record(&[7, 2, 0]).is_err());
        assert!(parse_record(&topic("orders", 7)[..6]).is_err());
    }

    #[test]
    fn replay_applies_in_offset_order_from_the_latest_snapshot() {
        let mut log = MetadataLog::default();
        // Log records arrive out of order (e.g. segments in tar order).
        log.add_log_record(
            12,
            parse_record(&config("orders", "retention.ms", None)).unwrap(),
        );
        log.add_log_record(
            11,
            parse_record(&config("orders", "retention.ms", Some("1"))).unwrap(),
        );
        log.add_log_record(
            10,
            parse_record(&config("orders", "cleanup.policy", Some("compact"))).unwrap(),
        );
        log.add_log_record(13, parse_record(&topic("late", 9)).unwrap());
        // Older than the snapshot: ignored.
        log.add_log_record(3, parse_record(&topic("gone", 8)).unwrap());
        log.add_snapshot_record(10, 0, parse_record(&topic("orders", 7)).unwrap());
        log.add_snapshot_record(10, 1, parse_record(&partition(7, 0, &[1])).unwrap());
        log.add_snapshot_record(5, 0, parse_record(&topic("old", 6)).unwrap());
        let image = log.replay();
        let names: Vec<&str> = image.topics.values().map(|t| t.name.as_str()).collect();
        assert_eq!(names, vec!["orders", "late"]);
        let orders = &image.topics[&[7; 16]];
        assert_eq!(orders.partitions.len(), 1);
        assert_eq!(
            orders.configs,
            BTreeMap::from([("cleanup.policy".to_string(), "compact".to_string())])
        );
    }

    #[test]
    fn topic_ids_print_like_kafka() {
        let id = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        assert_eq!(topic_id_string(&id), "AAAAAAAAAAAAAAAAAAAAAQ");
    }
}
