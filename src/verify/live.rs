//! Comparing a backup with a live cluster, partition by partition (record count and an
//! order-sensitive content hash; offsets ignored), topics renamed through a topic map.

use crate::archive::{ContentHasher, EncryptionKey, Manifest};
use crate::kafka::{self, ClientSettings};
use crate::read::{key_for_backup, read_segment};
use crate::selection::TopicSelection;
use crate::store::Location;
use crate::topic_map::TopicMap;
use crate::Error;

/// One partition compared between a backup and a live cluster.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PartitionComparison {
    pub topic: String,
    pub partition: i32,
    pub backup_records: u64,
    pub live_records: Option<u64>,
    pub(crate) backup_hash: String,
    pub(crate) live_hash: Option<String>,
    pub matches: bool,
    pub note: Option<String>,
}

/// Compares every partition of the backup's topics that `selection` selects with the same
/// partition in the cluster (topics renamed through `topic_map`). Reads both sides in full.
pub async fn compare_with_cluster(
    location: &Location,
    manifest: &Manifest,
    encryption_key: Option<&EncryptionKey>,
    client: &ClientSettings,
    topic_map: &[(String, String)],
    selection: &TopicSelection,
) -> Result<Vec<PartitionComparison>, Error> {
    let compared = |topic: &crate::archive::TopicBackup| {
        !topic.internal && selection.matches(&topic.name, topic.internal)
    };
    let topic_map = TopicMap::check(manifest, topic_map, compared)?;
    let encryption_key = match manifest.encryption {
        None => None,
        Some(_) => key_for_backup(manifest, encryption_key)?,
    };
    let client_for_meta = client.clone();
    let cluster = tokio::task::spawn_blocking(move || kafka::describe_cluster(&client_for_meta))
        .await
        .expect("metadata reads do not panic")?;

    let mut comparisons = Vec::new();
    let mut tasks = Vec::new();
    for topic in manifest.topics.iter().filter(|t| compared(t)) {
        let target = topic_map.target(&topic.name).to_string();
        let live = cluster.topics.iter().find(|t| t.name == target);
        for partition in &topic.partitions {
            let mut hasher = ContentHasher::new();
            for segment in &partition.segments {
                let records = read_segment(location, segment, encryption_key.as_ref()).await?;
                for record in records.iter() {
                    let record = record.map_err(|source| Error::Archive {
                        key: segment.key.clone(),
                        source,
                    })?;
                    if partition.holds(record.offset) {
                        hasher.add(&record);
                    }
                }
            }
            let (backup_records, backup_hash) = hasher.finish();
            let note = match live {
                None => Some(format!("topic {target} does not exist in the cluster")),
                Some(live) if !live.partitions.contains(&partition.partition) => Some(format!(
                    "partition {} does not exist in the cluster",
                    partition.partition
                )),
                Some(_) => None,
            };
            if note.is_none() {
                tasks.push((comparisons.len(), target.clone(), partition.partition));
            }
            comparisons.push(PartitionComparison {
                topic: target.clone(),
                partition: partition.partition,
                backup_records,
                live_records: None,
                backup_hash,
                live_hash: None,
                matches: false,
                note,
            });
        }
        if let Some(live) = live {
            if live.partitions.len() as i32 != topic.partition_count {
                comparisons.push(PartitionComparison {
                    topic: target.clone(),
                    partition: -1,
                    backup_records: 0,
                    live_records: None,
                    backup_hash: String::new(),
                    live_hash: None,
                    matches: false,
                    note: Some(format!(
                        "the cluster has {} partitions, the backup {}",
                        live.partitions.len(),
                        topic.partition_count
                    )),
                });
            }
        }
    }

    let client = client.clone();
    let hashes = tokio::task::spawn_blocking(move || kafka::hash_live_partitions(&client, &tasks))
        .await
        .expect("live reads do not panic")?;
    for (index, (records, hash)) in hashes {
        let comparison = &mut comparisons[index];
        comparison.matches = records == comparison.backup_records && hash == comparison.backup_hash;
        comparison.live_records = Some(records);
        comparison.live_hash = Some(hash);
    }
    Ok(comparisons)
}
