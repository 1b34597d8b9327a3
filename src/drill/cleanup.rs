//! Deleting what a drill created in the scratch cluster, and nothing else: the consumer
//! groups it committed offsets for, then the topics the cluster created for it (a topic that
//! already existed is never one of them), waiting until the cluster's metadata no longer
//! lists them. Runs when the drill ends, fails or is interrupted; `--keep` leaves everything
//! for inspection.

use std::fmt;
use std::time::{Duration, Instant};

use crate::kafka::{self, ClientSettings, Deleted, KafkaError};
use crate::restore::Created;

/// What the drill left in the scratch cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct CleanupReport {
    /// `--keep`: nothing was deleted.
    pub kept: bool,
    pub topics_deleted: Vec<String>,
    pub groups_deleted: Vec<String>,
    /// Created by the drill, but already gone when it came to delete them.
    pub topics_already_absent: Vec<String>,
    pub groups_already_absent: Vec<String>,
    /// Topics and groups that could not be deleted, and why: delete them by hand.
    pub left_behind: Vec<String>,
}

fn counted(n: usize, what: &str) -> String {
    match n {
        1 => format!("1 {what}"),
        n => format!("{n} {what}s"),
    }
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
        if self.kept {
            return write!(
                f,
                "what it created is left in the scratch cluster for inspection (--keep)"
            );
        }
        let (topics, groups) = (self.topics_deleted.len(), self.groups_deleted.len());
        let absent = self.topics_already_absent.len() + self.groups_already_absent.len();
        if topics + groups + absent == 0 {
            return write!(f, "it had created nothing in the scratch cluster");
        }
        write!(
            f,
            "it deleted the {} and {} it created",
            counted(topics, "topic"),
            counted(groups, "consumer group")
        )?;
        if absent > 0 {
            let names: Vec<&str> = self
                .topics_already_absent
                .iter()
                .chain(&self.groups_already_absent)
                .map(String::as_str)
                .collect();
            write!(
                f,
                "; {} it created {} already gone ({})",
                counted(absent, "name"),
                if absent == 1 { "was" } else { "were" },
                names.join(", ")
            )?;
        }
        Ok(())
    }
}

/// Deletes the groups and topics this run `created` from the scratch cluster, unless `keep`.
/// Never fails: what could not be deleted is listed in [`CleanupReport::left_behind`].
pub(super) async fn clean_up(
    client: &ClientSettings,
    created: &Created,
    keep: bool,
) -> CleanupReport {
    if keep {
        tracing::info!(
            topics = created.topics.len(),
            groups = created.groups.len(),
            "--keep: leaving what the drill created in the scratch cluster"
        );
        return CleanupReport {
            kept: true,
            ..CleanupReport::default()
        };
    }
    let mut cleanup = CleanupReport::default();
    let groups = &created.groups;
    let deleted_groups = kafka::delete_groups(client, groups).await;
    (cleanup.groups_deleted, cleanup.groups_already_absent) =
        sort(deleted_groups, groups, "group", &mut cleanup.left_behind);
    let topics = &created.topics;
    let deleted_topics = kafka::delete_topics(client, topics).await;
    (cleanup.topics_deleted, cleanup.topics_already_absent) =
        sort(deleted_topics, topics, "topic", &mut cleanup.left_behind);
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

/// The names deleted and those already absent; those that could not be deleted go to
/// `left_behind` as `WHAT NAME (WHY)`.
fn sort(
    result: Result<Deleted, KafkaError>,
    asked: &[String],
    what: &str,
    left_behind: &mut Vec<String>,
) -> (Vec<String>, Vec<String>) {
    match result {
        Ok(outcome) => {
            for (name, why) in outcome.failed {
                left_behind.push(format!("{what} {name} ({why})"));
            }
            (outcome.deleted, outcome.absent)
        }
        Err(err) => {
            for name in asked {
                left_behind.push(format!("{what} {name} ({err})"));
            }
            (Vec::new(), Vec::new())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn names(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn the_message_counts_only_what_was_deleted_and_names_what_was_already_gone() {
        let mut cleanup = CleanupReport {
            topics_deleted: names(&["p.a", "p.b"]),
            groups_deleted: names(&["p.g"]),
            ..CleanupReport::default()
        };
        assert_eq!(
            cleanup.to_string(),
            "it deleted the 2 topics and 1 consumer group it created"
        );
        cleanup.topics_deleted = names(&["p.a"]);
        cleanup.topics_already_absent = names(&["p.b"]);
        assert_eq!(
            cleanup.to_string(),
            "it deleted the 1 topic and 1 consumer group it created; 1 name it created was already gone (p.b)"
        );
        assert_eq!(
            CleanupReport::default().to_string(),
            "it had created nothing in the scratch cluster"
        );
    }

    #[test]
    fn names_already_absent_are_kept_apart_from_those_deleted() {
        let mut left_behind = Vec::new();
        let outcome = Deleted {
            deleted: names(&["p.a"]),
            absent: names(&["p.b"]),
            failed: vec![("p.c".into(), "refused".into())],
        };
        let (deleted, absent) = sort(
            Ok(outcome),
            &names(&["p.a", "p.b", "p.c"]),
            "topic",
            &mut left_behind,
        );
        assert_eq!(deleted, ["p.a"]);
        assert_eq!(absent, ["p.b"]);
        assert_eq!(left_behind, ["topic p.c (refused)"]);
    }
}
