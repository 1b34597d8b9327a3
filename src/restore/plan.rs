//! Planning a restore: which topics are created or continued, how, with which records and
//! group offsets; and the archive check that runs before anything is written.

use super::*;

/// Works out what a restore would do, checking the request against the backup (its key
/// first) and the target cluster. Changes nothing.
pub async fn plan_restore(
    manifest: &Manifest,
    options: &RestoreOptions,
) -> Result<RestorePlan, Error> {
    key_for_backup(manifest, options.encryption_key.as_ref())?;
    let topic_map = TopicMap::check(manifest, &options.topic_map, |topic| {
        !topic.internal && options.selection.matches(&topic.name, topic.internal)
    })?;
    options.check()?;
    let client = options.client.clone();
    let described = tokio::task::spawn_blocking(move || -> Result<_, KafkaError> {
        let cluster = kafka::describe_cluster(&client)?;
        Ok((
            cluster
                .topics
                .into_iter()
                .map(|t| (t.name, t.partitions.len() as i32))
                .collect::<HashMap<String, i32>>(),
            cluster.brokers.len() as i32,
        ))
    });
    let (existing, brokers) = unless_cancelled(&options.cancel, described)
        .await
        .map_err(|_| Written::stopped_before_writing(options.resume))?
        .expect("metadata reads do not panic")?;

    let mut warnings = Vec::new();
    let mut topics = Vec::new();
    for topic in &manifest.topics {
        if !options.selection.matches(&topic.name, topic.internal) {
            continue;
        }
        if topic.internal {
            warnings.push(format!(
                "internal topic {} is not restored: Kafka manages it",
                topic.name
            ));
            continue;
        }
        let target = topic_map.target(&topic.name).to_string();
        let action = match (existing.get(&target), options.if_exists) {
            (None, _) => TopicAction::Create,
            (Some(&partitions), _) if options.resume => {
                if partitions != topic.partition_count {
                    return Err(Error::InvalidRequest(format!(
                        "--resume: target topic {target} has {partitions} partitions, backup topic {} has {}; it was not created by a restore of this backup",
                        topic.name, topic.partition_count
                    )));
                }
                TopicAction::Resume
            }
            (Some(_), IfExists::Fail) => return Err(Error::TopicExists { topic: target }),
            (Some(_), IfExists::Skip) => TopicAction::Skip,
            (Some(_), IfExists::Append) => TopicAction::Append,
        };
        let mut replication_factor = topic.replication_factor.max(1);
        if replication_factor > brokers.max(1) {
            warnings.push(format!(
                "topic {target}: replication factor {replication_factor} capped at {} (the target's broker count)",
                brokers.max(1)
            ));
            replication_factor = brokers.max(1);
        }
        for config in topic
            .configs
            .iter()
            .filter(|c| c.is_sensitive && c.source == "dynamic_topic")
        {
            warnings.push(format!(
                "topic {target}: sensitive config {} was set on the source but its value is never stored; set it again by hand",
                config.name
            ));
        }
        topics.push(PlannedTopic {
            source: topic.name.clone(),
            target,
            action,
            partitions: topic.partition_count,
            replication_factor,
            configs: kafka::explicitly_set_configs(&topic.configs),
            records: topic.partitions.iter().map(|p| p.records).sum(),
            bytes: topic.partitions.iter().map(|p| p.raw_bytes).sum(),
        });
    }
    if topics.is_empty() {
        return Err(Error::NoTopicsMatch {
            selection: options.selection.describe(),
            available: manifest.topics.iter().map(|t| t.name.clone()).collect(),
        });
    }
    let restored: Vec<&str> = topics
        .iter()
        .filter(|t| t.action != TopicAction::Skip)
        .map(|t| t.source.as_str())
        .collect();
    let groups = if options.skip_groups {
        Vec::new()
    } else {
        manifest
            .groups
            .iter()
            .filter(|g| {
                g.offsets
                    .iter()
                    .any(|o| restored.contains(&o.topic.as_str()))
            })
            .map(|g| g.group.clone())
            .collect()
    };
    Ok(RestorePlan {
        backup_id: manifest.backup_id.to_string(),
        target: options.client.bootstrap_servers.clone(),
        topics,
        groups,
        from_time: options.from_time,
        until: options.until,
        encryption: manifest.encryption.clone(),
        warnings,
    })
}

/// Checks every object the plan will read (presence, size, checksum); refuses with the full
/// list of problems before anything is written.
pub async fn check_archive(
    location: &Location,
    manifest: &Manifest,
    plan: &RestorePlan,
    parallelism: usize,
) -> Result<(), Error> {
    let problems = archive_problems(location, manifest, plan, parallelism).await;
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::ArchiveDamaged {
            problems: problems
                .into_iter()
                .map(|p| format!("  {}: {}", p.key, p.problem))
                .collect(),
        })
    }
}

/// The objects the plan will read that are missing or differ in size or checksum from the
/// manifest (none: the archive is intact).
pub async fn archive_problems(
    location: &Location,
    manifest: &Manifest,
    plan: &RestorePlan,
    parallelism: usize,
) -> Vec<ObjectProblem> {
    let segments = plan
        .topics
        .iter()
        .filter(|t| t.action != TopicAction::Skip)
        .filter_map(|t| manifest.topic(&t.source))
        .flat_map(|t| t.partitions.iter().flat_map(|p| p.segments.iter()));
    check_segments(location, segments, SegmentCheck::Stored, parallelism).await
}
