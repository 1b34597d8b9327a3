//! Checking a backup: re-read every object (size, checksum, every record decrypted and
//! decoded, counts and offset ranges against the manifest; for an encrypted backup without
//! its key, size and checksum only), and compare a backup with a live cluster partition
//! by partition (record count and an order-sensitive content hash; offsets ignored).

use std::collections::{BTreeMap, HashSet};

use crate::archive::{
    ContentHasher, DatadirManifest, EncryptionKey, Manifest, RecordRef, StreamOpener, TimestampType,
};
use crate::kafka::{
    self, ClientSettings, ConsumedRecord, KafkaError, PartitionOutcome, PartitionTask, ReadOptions,
    RecordSink, SinkError,
};
use crate::read::{
    check_segments, key_for_backup, key_for_datadir_backup, read_segment, ObjectProblem,
    SegmentCheck,
};
use crate::store::Location;
use crate::topic_map::TopicMap;
use crate::Error;

#[derive(Debug, Clone, serde::Serialize)]
pub struct ArchiveReport {
    pub backup_id: String,
    pub objects_checked: usize,
    /// Records actually decoded and checked: those of the objects that passed (none for an
    /// encrypted backup checked without its key).
    pub records: u64,
    /// Records the manifest says the backup holds.
    pub records_in_manifest: u64,
    /// Whether every record of the backup was decoded and checked; false for an encrypted
    /// backup checked without its key (sizes and checksums of the stored objects only), and
    /// when an object is missing or failed its check.
    pub records_decoded: bool,
    /// The manifest itself is damaged (not a readable manifest): nothing else was checked.
    pub manifest_damaged: bool,
    pub problems: Vec<ObjectProblem>,
}

impl ArchiveReport {
    /// The report on a backup whose manifest could not be read (see
    /// [`Error::ManifestDamaged`]): one problem, nothing checked.
    pub fn damaged_manifest(backup_id: &str, key: &str, problem: String) -> ArchiveReport {
        ArchiveReport {
            backup_id: backup_id.to_string(),
            objects_checked: 0,
            records: 0,
            records_in_manifest: 0,
            records_decoded: false,
            manifest_damaged: true,
            problems: vec![ObjectProblem {
                key: key.to_string(),
                problem,
            }],
        }
    }
}

/// Re-reads and checks every object of `manifest`, and the manifest's own arithmetic. An
/// encrypted backup is decrypted and decoded with `encryption_key`; without one, its objects'
/// sizes and checksums are checked. A key that is not the backup's is refused.
pub async fn verify_archive(
    location: &Location,
    manifest: &Manifest,
    encryption_key: Option<&EncryptionKey>,
    parallelism: usize,
) -> Result<ArchiveReport, Error> {
    let decode = manifest.encryption.is_none() || encryption_key.is_some();
    let encryption_key = match encryption_key {
        Some(_) => key_for_backup(manifest, encryption_key)?,
        None => None,
    };
    let check = if decode {
        SegmentCheck::Decode(encryption_key.clone())
    } else {
        SegmentCheck::Stored
    };
    let mut problems = check_segments(
        location,
        manifest.segments().map(|(_, _, s)| s),
        check,
        parallelism,
    )
    .await;
    // Objects that are missing or failed their check: their records were not checked.
    let failed: HashSet<String> = problems.iter().map(|p| p.key.clone()).collect();
    let mut checked = 0u64;
    for topic in &manifest.topics {
        for partition in &topic.partitions {
            let name = format!("{}/{}", topic.name, partition.partition);
            // Ordering, ranges and keys were checked with the manifest (archive::check).
            let mut records: u64 = partition.segments.iter().map(|s| s.records).sum();
            let mut intact: u64 = partition
                .segments
                .iter()
                .filter(|s| !failed.contains(&s.key))
                .map(|s| s.records)
                .sum();
            let straddling = partition
                .segments
                .first()
                .filter(|s| s.first_offset < partition.start_offset);
            if straddling.is_some() && !decode {
                continue; // the records below start_offset cannot be counted without the key
            }
            if let Some((first, Ok(decoded))) = match straddling {
                Some(first) => Some((
                    first,
                    read_segment(location, first, encryption_key.as_ref()).await,
                )),
                None => None,
            } {
                let below = decoded
                    .iter()
                    .filter_map(Result::ok)
                    .filter(|r| r.offset < partition.start_offset)
                    .count() as u64;
                records -= below;
                if !failed.contains(&first.key) {
                    intact = intact.saturating_sub(below);
                }
            }
            if decode {
                checked += intact;
            }
            if records != partition.records {
                problems.push(ObjectProblem {
                    key: "manifest.json".into(),
                    problem: format!(
                        "{name}: segments hold {records} records but the partition says {}",
                        partition.records
                    ),
                });
            }
        }
    }
    problems.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(ArchiveReport {
        backup_id: manifest.backup_id.to_string(),
        objects_checked: manifest.segments().count(),
        records: checked,
        records_in_manifest: manifest.totals.records,
        records_decoded: decode && failed.is_empty(),
        manifest_damaged: false,
        problems,
    })
}

/// One partition compared between a backup and a live cluster.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PartitionComparison {
    pub topic: String,
    pub partition: i32,
    pub backup_records: u64,
    pub live_records: Option<u64>,
    pub backup_hash: String,
    pub live_hash: Option<String>,
    pub matches: bool,
    pub note: Option<String>,
}

/// Compares every partition of the backup with the same partition in the cluster (topics
/// renamed through `topic_map`). Reads both sides in full.
pub async fn compare_with_cluster(
    location: &Location,
    manifest: &Manifest,
    encryption_key: Option<&EncryptionKey>,
    client: &ClientSettings,
    topic_map: &[(String, String)],
) -> Result<Vec<PartitionComparison>, Error> {
    let topic_map = TopicMap::check(manifest, topic_map, |topic| !topic.internal)?;
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
    for topic in manifest.topics.iter().filter(|t| !t.internal) {
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
                    if record.offset >= partition.start_offset {
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
    let hashes = tokio::task::spawn_blocking(move || hash_live_partitions(&client, &tasks))
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

struct HashingSink {
    hashers: Vec<ContentHasher>,
}

impl RecordSink for HashingSink {
    fn record(&mut self, task: usize, record: ConsumedRecord<'_>) -> Result<(), SinkError> {
        let view = RecordRef {
            offset: record.offset,
            timestamp: record.timestamp,
            timestamp_type: TimestampType::CreateTime,
            key: record.key,
            value: record.value,
            headers: record.headers.collect(),
        };
        self.hashers[task].add(&view);
        Ok(())
    }

    fn partition_done(
        &mut self,
        _task: usize,
        _outcome: PartitionOutcome,
    ) -> Result<(), SinkError> {
        Ok(())
    }
}

/// Reads the given live partitions in full; returns comparison index -> (records, hash).
pub(crate) fn hash_live_partitions(
    client: &ClientSettings,
    wanted: &[(usize, String, i32)],
) -> Result<BTreeMap<usize, (u64, String)>, KafkaError> {
    let consumer = kafka::metadata_consumer(client)?;
    let mut tasks = Vec::with_capacity(wanted.len());
    for (_, topic, partition) in wanted {
        let (low, high) = kafka::partition_bounds(&consumer, client, topic, *partition)?;
        tasks.push(PartitionTask {
            topic: topic.clone(),
            partition: *partition,
            start_offset: low,
            listed_end: high,
        });
    }
    let mut sink = HashingSink {
        hashers: vec![ContentHasher::new(); tasks.len()],
    };
    kafka::read_partitions(
        client,
        &tasks,
        &ReadOptions {
            parallelism: 8,
            ..ReadOptions::default()
        },
        &mut sink,
    )?;
    Ok(wanted
        .iter()
        .zip(sink.hashers)
        .map(|((index, _, _), hasher)| (*index, hasher.finish()))
        .collect())
}

/// Re-reads a data-dir backup's archive object (streamed, not buffered) and checks its size and
/// SHA-256 against the manifest; an encrypted one is also decrypted with `encryption_key`,
/// every chunk's tag checked (and the stream's end). Returns the problems found (none =
/// intact); an encrypted backup without its key, or with another key, is an error.
pub async fn verify_datadir_archive(
    location: &Location,
    manifest: &DatadirManifest,
    encryption_key: Option<&EncryptionKey>,
) -> Result<Vec<ObjectProblem>, Error> {
    use sha2::{Digest, Sha256};
    let archive = &manifest.archive;
    let mut opener = key_for_datadir_backup(manifest, encryption_key)?
        .map(|key| StreamOpener::new(&key, &archive.key));
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut decrypt_error = None;
    let streamed = location
        .stream(&archive.key, |chunk| {
            hasher.update(chunk);
            size += chunk.len() as u64;
            if let (Some(stream), None) = (&mut opener, &decrypt_error) {
                decrypt_error = stream.update(chunk, |_| {}).err();
            }
        })
        .await;
    if let (Some(stream), None) = (opener, &decrypt_error) {
        decrypt_error = stream.finish(|_| {}).err();
    }
    let problem = match streamed {
        Err(err) => Some(err.to_string()),
        Ok(()) => archive
            .mismatch(size, &hex::encode(hasher.finalize()))
            .or(decrypt_error.map(|err| err.to_string())),
    };
    Ok(problem
        .map(|problem| ObjectProblem {
            key: archive.key.clone(),
            problem,
        })
        .into_iter()
        .collect())
}
