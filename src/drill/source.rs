//! Keeping a drill out of production: the scratch cluster must not be the backup's own
//! source (same cluster id; when either id is unknown, a broker address in common), and
//! must not hold any of the names the drill would create.

use std::sync::atomic::AtomicBool;

use super::report::DrillError;
use super::DrillOptions;
use crate::archive::{DatadirManifest, Manifest};
use crate::kafka::{self, ClientSettings};
use crate::restore::unless_cancelled;
use crate::Error;

/// The scratch cluster as the drill found it before writing.
pub(super) struct ScratchCluster {
    cluster_id: Option<String>,
    /// `host:port` of the bootstrap servers given and of every broker the metadata lists.
    addresses: Vec<String>,
    topics: Vec<String>,
}

/// What a backup says about the cluster it was taken from.
pub(super) struct BackupSource {
    backup_id: String,
    cluster_id: Option<String>,
    addresses: Vec<String>,
}

impl BackupSource {
    pub(super) fn of_logical(manifest: &Manifest) -> BackupSource {
        let mut addresses = split_addresses(&manifest.source.bootstrap_servers);
        addresses.extend(
            manifest
                .source
                .brokers
                .iter()
                .map(|b| address(&b.host, b.port)),
        );
        BackupSource {
            backup_id: manifest.backup_id.to_string(),
            cluster_id: manifest.source.cluster_id.clone(),
            addresses,
        }
    }

    /// A data-dir backup knows its cluster id (`meta.properties`) but no address.
    pub(super) fn of_datadir(manifest: &DatadirManifest) -> BackupSource {
        BackupSource {
            backup_id: manifest.backup_id.to_string(),
            cluster_id: manifest.cluster_id.clone(),
            addresses: Vec::new(),
        }
    }
}

fn address(host: &str, port: i32) -> String {
    format!("{}:{port}", host.to_ascii_lowercase())
}

fn split_addresses(bootstrap: &str) -> Vec<String> {
    bootstrap
        .split(',')
        .map(|a| a.trim().to_ascii_lowercase())
        .filter(|a| !a.is_empty())
        .collect()
}

/// Reads the scratch cluster's id, brokers and topics.
/// `None`: interrupted.
pub(super) async fn describe(
    client: &ClientSettings,
    cancel: &AtomicBool,
) -> Result<Option<ScratchCluster>, DrillError> {
    let settings = client.clone();
    let reading = tokio::task::spawn_blocking(move || kafka::describe_cluster(&settings));
    let Some(described) = unless_cancelled(cancel, reading).await.ok() else {
        return Ok(None);
    };
    let cluster = described
        .expect("metadata reads do not panic")
        .map_err(Error::from)?;
    let mut addresses = split_addresses(&client.bootstrap_servers);
    addresses.extend(cluster.brokers.iter().map(|b| address(&b.host, b.port)));
    Ok(Some(ScratchCluster {
        cluster_id: cluster.cluster_id,
        addresses,
        topics: cluster.topics.into_iter().map(|t| t.name).collect(),
    }))
}

/// Why the scratch cluster is the backup's source, if it is: the same cluster id, or (when
/// either id is unknown) a broker address both name.
fn same_cluster(backup: &BackupSource, scratch: &ScratchCluster) -> Option<String> {
    if let (Some(source), Some(scratch)) = (&backup.cluster_id, &scratch.cluster_id) {
        return (source == scratch).then(|| format!("both have cluster id {source}"));
    }
    backup
        .addresses
        .iter()
        .find(|a| scratch.addresses.contains(a))
        .map(|shared| format!("its cluster id is not known, and both are reached at {shared}"))
}

/// Refuses to drill into the backup's own source cluster unless `--allow-source-cluster`.
pub(super) fn refuse_source(
    backup: &BackupSource,
    scratch: &ScratchCluster,
    options: &DrillOptions,
) -> Result<(), DrillError> {
    let Some(why) = same_cluster(backup, scratch) else {
        if backup.cluster_id.is_none() || scratch.cluster_id.is_none() {
            tracing::warn!(
                "cannot tell for sure that the scratch cluster is not the source of backup {}: a cluster id is not known",
                backup.backup_id
            );
        }
        return Ok(());
    };
    if options.allow_source_cluster {
        tracing::warn!("drilling into the backup's own source cluster ({why}), as --allow-source-cluster says; everything goes under the prefix");
        return Ok(());
    }
    Err(DrillError::SourceCluster {
        scratch: options.client.bootstrap_servers.clone(),
        backup_id: backup.backup_id.clone(),
        why,
    })
}

/// Refuses when the scratch cluster already holds one of `topics` or `groups` (names the
/// drill would create): the drill deletes what it creates, and never what it found.
pub(super) async fn refuse_leftovers(
    client: &ClientSettings,
    scratch: &ScratchCluster,
    topics: &[&str],
    groups: &[&str],
) -> Result<(), DrillError> {
    let mut names: Vec<String> = topics
        .iter()
        .filter(|t| scratch.topics.iter().any(|existing| existing == *t))
        .map(|t| format!("topic {t}"))
        .collect();
    if !groups.is_empty() {
        let settings = client.clone();
        let existing = tokio::task::spawn_blocking(move || kafka::group_names(&settings))
            .await
            .expect("group listing does not panic")
            .map_err(Error::from)?;
        names.extend(
            groups
                .iter()
                .filter(|g| existing.iter().any(|e| e == *g))
                .map(|g| format!("consumer group {g}")),
        );
    }
    if names.is_empty() {
        Ok(())
    } else {
        Err(DrillError::AlreadyThere {
            scratch: client.bootstrap_servers.clone(),
            names,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backup(id: Option<&str>, addresses: &[&str]) -> BackupSource {
        BackupSource {
            backup_id: "B".into(),
            cluster_id: id.map(String::from),
            addresses: addresses.iter().map(|a| a.to_string()).collect(),
        }
    }

    fn scratch(id: Option<&str>, bootstrap: &str) -> ScratchCluster {
        ScratchCluster {
            cluster_id: id.map(String::from),
            addresses: split_addresses(bootstrap),
            topics: Vec::new(),
        }
    }

    #[test]
    fn the_same_cluster_id_is_the_source_and_another_is_not() {
        let why = same_cluster(&backup(Some("c1"), &[]), &scratch(Some("c1"), "x:9092"));
        assert_eq!(why.as_deref(), Some("both have cluster id c1"));
        // Known and different ids decide, whatever the addresses.
        let shared = ["kafka:9092"];
        assert!(same_cluster(
            &backup(Some("c1"), &shared),
            &scratch(Some("c2"), "kafka:9092")
        )
        .is_none());
    }

    #[test]
    fn without_an_id_a_shared_address_is_the_source() {
        let source = backup(None, &["kafka.messaging:9092"]);
        let why = same_cluster(
            &source,
            &scratch(Some("c2"), "other:9092, KAFKA.messaging:9092"),
        );
        assert!(why.unwrap().contains("kafka.messaging:9092"));
        assert!(same_cluster(&source, &scratch(Some("c2"), "scratch:9092")).is_none());
    }
}
