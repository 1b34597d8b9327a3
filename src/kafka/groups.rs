//! Consumer-group committed offsets: read them from a cluster (OffsetFetch, without joining
//! the group) and commit translated ones into another (OffsetCommit, likewise).

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use super::snapshot::metadata_consumer;
use super::{ClientSettings, KafkaError};
use crate::archive::{CommittedOffset, GroupOffsets};

fn group_consumer(settings: &ClientSettings, group: &str) -> Result<BaseConsumer, KafkaError> {
    settings
        .config(
            &[],
            &[
                ("group.id", group),
                ("enable.auto.commit", "false"),
                ("enable.auto.offset.store", "false"),
            ],
        )
        .create::<BaseConsumer>()
        .map_err(|source| KafkaError::BadSetting { source })
}

/// Every group's committed offsets on the given partitions (blocking). Groups with no
/// commit on any of them are left out.
pub(crate) fn read_group_offsets(
    settings: &ClientSettings,
    partitions: &[(String, i32)],
) -> Result<Vec<GroupOffsets>, KafkaError> {
    if partitions.is_empty() {
        return Ok(Vec::new());
    }
    let mut all = Vec::new();
    for group in group_names(settings)? {
        let offsets = committed_offsets(settings, &group, partitions)?;
        if !offsets.is_empty() {
            all.push(GroupOffsets { group, offsets });
        }
    }
    Ok(all)
}

/// The names of the cluster's consumer groups, sorted (blocking).
pub(crate) fn group_names(settings: &ClientSettings) -> Result<Vec<String>, KafkaError> {
    let lister = metadata_consumer(settings)?;
    let list = lister
        .fetch_group_list(None, settings.request_timeout)
        .map_err(KafkaError::client("listing consumer groups"))?;
    let mut names: Vec<String> = list.groups().iter().map(|g| g.name().to_string()).collect();
    names.sort();
    names.dedup();
    Ok(names)
}

/// `group`'s committed offsets on the given partitions (blocking); partitions it has no
/// commit on are left out.
pub(crate) fn committed_offsets(
    settings: &ClientSettings,
    group: &str,
    partitions: &[(String, i32)],
) -> Result<Vec<CommittedOffset>, KafkaError> {
    let mut wanted = TopicPartitionList::with_capacity(partitions.len());
    for (topic, partition) in partitions {
        wanted.add_partition(topic, *partition);
    }
    let consumer = group_consumer(settings, group)?;
    let committed = consumer
        .committed_offsets(wanted, settings.request_timeout)
        .map_err(KafkaError::client(format!(
            "reading committed offsets of group {group}"
        )))?;
    Ok(committed
        .elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(offset) => Some(CommittedOffset {
                topic: e.topic().to_string(),
                partition: e.partition(),
                offset,
                metadata: Some(e.metadata().to_string()).filter(|m| !m.is_empty()),
            }),
            _ => None,
        })
        .collect())
}

/// Commits `offsets` for `group` (blocking). The group must have no active members.
pub(crate) fn commit_group_offsets(
    settings: &ClientSettings,
    group: &str,
    offsets: &[CommittedOffset],
) -> Result<(), KafkaError> {
    let consumer = group_consumer(settings, group)?;
    let mut list = TopicPartitionList::with_capacity(offsets.len());
    for committed in offsets {
        let mut element = list.add_partition(&committed.topic, committed.partition);
        element
            .set_offset(Offset::Offset(committed.offset))
            .map_err(KafkaError::client(format!(
                "setting offset for group {group}"
            )))?;
        if let Some(metadata) = &committed.metadata {
            element.set_metadata(metadata.clone());
        }
    }
    consumer
        .commit(&list, CommitMode::Sync)
        .map_err(KafkaError::client(format!(
            "committing offsets of group {group}"
        )))?;
    // commit() reports request-level failures; per-partition errors come back in the list.
    let check = consumer
        .committed_offsets(list.clone(), std::time::Duration::from_secs(30))
        .map_err(KafkaError::client(format!(
            "re-reading committed offsets of group {group}"
        )))?;
    for (expected, actual) in list.elements().iter().zip(check.elements()) {
        if expected.offset() != actual.offset() {
            return Err(KafkaError::Broker {
                action: format!("committing offsets of group {group}"),
                resource: format!(
                    "{}/{} (wanted {:?}, broker has {:?})",
                    expected.topic(),
                    expected.partition(),
                    expected.offset(),
                    actual.offset()
                ),
                code: rdkafka::types::RDKafkaErrorCode::InvalidCommitOffsetSize,
            });
        }
    }
    Ok(())
}
