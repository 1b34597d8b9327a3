//! Deleting what a drill created in the scratch cluster: its prefixed consumer groups, then
//! its prefixed topics (waiting until the cluster's metadata no longer lists them). Runs when
//! the drill ends, fails or is interrupted; `--keep` leaves everything for inspection.

use std::fmt;
use std::time::{Duration, Instant};

use super::report::DrillReport;
use crate::kafka::{self, ClientSettings, Deleted, KafkaError};

/// What the drill left in the scratch cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct CleanupReport {
    /// `--keep`: nothing was deleted.
    pub kept: bool,
    pub topics_deleted: Vec<String>,
    pub groups_deleted: Vec<String>,
    /// Topics and groups that could not be deleted, and why: delete them by hand.
    pub left_behind: Vec<String>,
}

impl fmt::Display for CleanupReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.left_behind.is_empty() {
            return write!(
                f,
                "it could not delete {} from the scratch cluster: delete them by hand",
                self.left_behind.join(", ")
            );
        }
        let (topics, groups) = (self.topics_deleted.len(), self.groups_deleted.len());
        match (self.kept, topics + groups) {
            (true, _) => write!(
                f,
                "what it created is left in the scratch cluster for inspection (--keep)"
            ),
            (false, 0) => write!(f, "nothing was left in the scratch cluster"),
            (false, _) => write!(
                f,
                "it deleted the {topics} topics and {groups} consumer groups it created"
            ),
        }
    }
}

/// Deletes the report's (target) groups and topics from the scratch cluster, unless `keep`.
/// Never fails: what could not be deleted is listed in [`CleanupReport::left_behind`].
pub(super) async fn clean_up(
    client: &ClientSettings,
    report: &DrillReport,
    keep: bool,
) -> CleanupReport {
    let topics: Vec<String> = report.topics.iter().map(|t| t.target.clone()).collect();
    let groups: Vec<String> = report.groups.iter().map(|g| g.target.clone()).collect();
    if keep {
        tracing::info!(
            topics = topics.len(),
            groups = groups.len(),
            "--keep: leaving what the drill created in the scratch cluster"
        );
        return CleanupReport {
            kept: true,
            ..CleanupReport::default()
        };
    }
    let mut cleanup = CleanupReport::default();
    let deleted_groups = kafka::delete_groups(client, &groups).await;
    cleanup.groups_deleted = sort(deleted_groups, &groups, "group", &mut cleanup.left_behind);
    let deleted_topics = kafka::delete_topics(client, &topics).await;
    cleanup.topics_deleted = sort(deleted_topics, &topics, "topic", &mut cleanup.left_behind);
    match still_listed(client, &cleanup.topics_deleted).await {
        Ok(listed) => {
            for topic in listed {
                cleanup.topics_deleted.retain(|t| *t != topic);
                cleanup.left_behind.push(format!(
                    "topic {topic} (deleted, but still listed after {:?})",
                    client.request_timeout
                ));
            }
        }
        Err(err) => tracing::warn!("cannot check that the deleted topics are gone: {err}"),
    }
    cleanup
}

/// The names deleted; those that were not go to `left_behind` as `WHAT NAME (WHY)`.
fn sort(
    result: Result<Deleted, KafkaError>,
    asked: &[String],
    what: &str,
    left_behind: &mut Vec<String>,
) -> Vec<String> {
    match result {
        Ok(outcome) => {
            for (name, why) in outcome.failed {
                left_behind.push(format!("{what} {name} ({why})"));
            }
            outcome.deleted
        }
        Err(err) => {
            for name in asked {
                left_behind.push(format!("{what} {name} ({err})"));
            }
            Vec::new()
        }
    }
}

/// Those of `topics` that the cluster's metadata still lists after waiting up to the
/// client's request timeout (topic deletion completes in the background on some brokers).
async fn still_listed(
    client: &ClientSettings,
    topics: &[String],
) -> Result<Vec<String>, KafkaError> {
    let deadline = Instant::now() + client.request_timeout;
    loop {
        if topics.is_empty() {
            return Ok(Vec::new());
        }
        let settings = client.clone();
        let cluster = tokio::task::spawn_blocking(move || kafka::describe_cluster(&settings))
            .await
            .expect("metadata reads do not panic")?;
        let listed: Vec<String> = cluster
            .topics
            .into_iter()
            .map(|t| t.name)
            .filter(|name| topics.contains(name))
            .collect();
        if listed.is_empty() || Instant::now() >= deadline {
            return Ok(listed);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
