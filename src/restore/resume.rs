//! Continuing an interrupted restore: how far each target partition got, checked against
//! the backup before anything more is written.

use super::*;

/// For each partition of a topic being resumed: how many records the interrupted restore
/// wrote, and their content hash (read back from the target, checked during replay).
pub(super) async fn resume_points(
    client: &ClientSettings,
    plan: &RestorePlan,
) -> Result<HashMap<(String, i32), ResumePoint>, Error> {
    let resumed: Vec<(String, i32)> = plan
        .topics
        .iter()
        .filter(|t| t.action == TopicAction::Resume)
        .flat_map(|t| (0..t.partitions).map(move |p| (t.target.clone(), p)))
        .collect();
    if resumed.is_empty() {
        return Ok(HashMap::new());
    }
    let reader = client.clone();
    let hashed = tokio::task::spawn_blocking(move || {
        let client = reader;
        let wanted: Vec<(usize, String, i32)> = resumed
            .iter()
            .enumerate()
            .map(|(i, (topic, partition))| (i, topic.clone(), *partition))
            .collect();
        crate::kafka::hash_live_partitions(&client, &wanted).map(|hashes| (resumed, hashes))
    })
    .await
    .expect("live reads do not panic")?;
    let (resumed, hashes) = hashed;
    let mut points = HashMap::new();
    for (index, (records, live_hash)) in hashes {
        let (topic, partition) = resumed[index].clone();
        let (log_start, _) = live_bounds(client.clone(), &topic, partition).await?;
        if log_start != 0 {
            return Err(Error::InvalidRequest(format!(
                "--resume: {topic}/{partition} starts at offset {log_start}, not 0: records were deleted from it, so it cannot be checked against the backup; delete the topic and restore it again"
            )));
        }
        points.insert((topic, partition), ResumePoint { records, live_hash });
    }
    Ok(points)
}

/// Before anything is written: every resumed partition must hold exactly the first records
/// this restore would write there (same contents, same order), else the resume is refused.
pub(super) async fn check_resume_points(
    location: &Location,
    encryption_key: Option<&EncryptionKey>,
    jobs: &[PartitionJob],
    window: (Option<i64>, Option<i64>),
) -> Result<(), Error> {
    for job in jobs {
        let Some(point) = job.resume.as_ref().filter(|p| p.records > 0) else {
            continue;
        };
        let mut hasher = ContentHasher::new();
        'segments: for segment in &job.partition.segments {
            let records = read_segment(location, segment, encryption_key).await?;
            for record in records.iter() {
                let record = record.map_err(|source| Error::Archive {
                    key: segment.key.clone(),
                    source,
                })?;
                if !job.partition.holds(record.offset) || !in_window(&record, window) {
                    continue;
                }
                hasher.add(&record);
                if hasher.records() == point.records {
                    break 'segments;
                }
            }
        }
        let (records, hash) = hasher.finish();
        if records != point.records || hash != point.live_hash {
            return Err(Error::InvalidRequest(format!(
                "--resume: {}/{} holds {} records that are not the first {} records this restore writes there (backup topic {}), so it was not written by an interrupted restore of this backup with these options; nothing was written. Delete the topic, or restore it under another name with --topic-map",
                job.target_topic, job.partition.partition, point.records, point.records, job.source_topic
            )));
        }
    }
    Ok(())
}

pub(super) async fn live_bounds(
    client: ClientSettings,
    topic: &str,
    partition: i32,
) -> Result<(i64, i64), Error> {
    let topic = topic.to_string();
    Ok(tokio::task::spawn_blocking(move || {
        let consumer = kafka::metadata_consumer(&client)?;
        kafka::partition_bounds(&consumer, &client, &topic, partition)
    })
    .await
    .expect("offset reads do not panic")?)
}

pub(super) async fn append_start_ends(
    client: &ClientSettings,
    plan: &RestorePlan,
) -> Result<HashMap<(String, i32), i64>, Error> {
    let appended: Vec<(String, i32)> = plan
        .topics
        .iter()
        .filter(|t| t.action == TopicAction::Append)
        .flat_map(|t| (0..t.partitions).map(move |p| (t.target.clone(), p)))
        .collect();
    if appended.is_empty() {
        return Ok(HashMap::new());
    }
    let client = client.clone();
    let ends = tokio::task::spawn_blocking(move || -> Result<_, KafkaError> {
        let consumer = kafka::metadata_consumer(&client)?;
        let mut ends = HashMap::new();
        for (topic, partition) in appended {
            let (_, high) = kafka::partition_bounds(&consumer, &client, &topic, partition)?;
            ends.insert((topic, partition), high);
        }
        Ok(ends)
    })
    .await
    .expect("offset reads do not panic")?;
    Ok(ends)
}
