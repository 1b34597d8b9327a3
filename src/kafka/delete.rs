//! Deleting topics and consumer groups (the admin API): what a restore drill created in a
//! scratch cluster goes again. One that is already gone is told apart from one deleted.

use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;

use super::{ClientSettings, KafkaError};

/// What was deleted, what was already gone, and what could not be deleted (name and why).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Deleted {
    pub(crate) deleted: Vec<String>,
    pub(crate) absent: Vec<String>,
    pub(crate) failed: Vec<(String, String)>,
}

fn admin(settings: &ClientSettings) -> Result<AdminClient<DefaultClientContext>, KafkaError> {
    settings
        .config(&[], &[])
        .create()
        .map_err(|source| KafkaError::BadSetting { source })
}

/// Sorts each result into deleted, absent (`gone`: it did not exist) or failed.
fn sort_results(
    results: Vec<Result<String, (String, RDKafkaErrorCode)>>,
    gone: RDKafkaErrorCode,
) -> Deleted {
    let mut outcome = Deleted::default();
    for result in results {
        match result {
            Ok(name) => outcome.deleted.push(name),
            Err((name, code)) if code == gone => outcome.absent.push(name),
            Err((name, code)) => outcome.failed.push((name, code.to_string())),
        }
    }
    outcome
}

/// Deletes `topics`. A request that fails as a whole is the error; a topic the broker
/// refuses is listed in [`Deleted::failed`].
pub(crate) async fn delete_topics(
    settings: &ClientSettings,
    topics: &[String],
) -> Result<Deleted, KafkaError> {
    if topics.is_empty() {
        return Ok(Deleted::default());
    }
    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    let options = AdminOptions::new()
        .operation_timeout(Some(settings.request_timeout))
        .request_timeout(Some(settings.request_timeout));
    let results = admin(settings)?
        .delete_topics(&names, &options)
        .await
        .map_err(KafkaError::client("deleting topics"))?;
    Ok(sort_results(
        results,
        RDKafkaErrorCode::UnknownTopicOrPartition,
    ))
}

/// Deletes consumer groups `groups` (they must have no active members), as
/// [`delete_topics`] does topics.
pub(crate) async fn delete_groups(
    settings: &ClientSettings,
    groups: &[String],
) -> Result<Deleted, KafkaError> {
    if groups.is_empty() {
        return Ok(Deleted::default());
    }
    let names: Vec<&str> = groups.iter().map(String::as_str).collect();
    let options = AdminOptions::new().request_timeout(Some(settings.request_timeout));
    let results = admin(settings)?
        .delete_groups(&names, &options)
        .await
        .map_err(KafkaError::client("deleting consumer groups"))?;
    Ok(sort_results(results, RDKafkaErrorCode::GroupIdNotFound))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_name_is_absent_not_deleted_and_other_refusals_are_kept() {
        let outcome = sort_results(
            vec![
                Ok("a".into()),
                Err(("b".into(), RDKafkaErrorCode::GroupIdNotFound)),
                Err(("c".into(), RDKafkaErrorCode::NonEmptyGroup)),
            ],
            RDKafkaErrorCode::GroupIdNotFound,
        );
        assert_eq!(outcome.deleted, ["a"]);
        assert_eq!(outcome.absent, ["b"]);
        assert_eq!(outcome.failed.len(), 1);
        assert_eq!(outcome.failed[0].0, "c");
    }
}
