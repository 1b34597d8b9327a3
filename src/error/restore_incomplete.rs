//! What an unfinished restore had written and why it stopped: the two halves of
//! [`Error::RestoreIncomplete`], which an operator reads to decide what to do next.

use std::fmt;
use std::time::Duration;

use super::Error;
use crate::progress::count;

/// Why a restore stopped before it finished.
#[derive(Debug)]
pub enum RestoreStop {
    /// Ctrl-C / SIGTERM.
    Interrupted,
    /// Records were waiting and the target acknowledged none of them for `waited`.
    Stalled { waited: Duration, waiting: u64 },
    /// Anything else that went wrong.
    Failed(Box<Error>),
}

impl fmt::Display for RestoreStop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RestoreStop::Interrupted => write!(f, "restore interrupted"),
            RestoreStop::Stalled { waited, waiting } => write!(
                f,
                "restore stalled: {} sent to the target got no acknowledgement for {} (--stall-timeout); check that its brokers are up and reachable",
                count(waiting, "record"),
                humantime::format_duration(*waited)
            ),
            RestoreStop::Failed(err) => write!(f, "restore failed: {err}"),
        }
    }
}

impl From<Error> for RestoreStop {
    fn from(err: Error) -> Self {
        RestoreStop::Failed(Box::new(err))
    }
}

impl From<crate::kafka::KafkaError> for RestoreStop {
    fn from(err: crate::kafka::KafkaError) -> Self {
        RestoreStop::Failed(Box::new(err.into()))
    }
}

/// How far a restore had got when it stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WritePhase {
    /// Nothing was changed in the target yet.
    Nothing,
    /// Topics were being created (some may exist, empty); no record was sent.
    CreatingTopics,
    /// Records were being written.
    Records,
    /// Every record was written; group offsets were being committed.
    Groups,
}

/// Records of one target topic the target holds from this restore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TopicWritten {
    pub(crate) topic: String,
    /// Acknowledged by the target in this run.
    pub(crate) acknowledged: u64,
    /// Already there from an interrupted run (checked by `--resume`).
    pub(crate) resumed: u64,
    /// Records of the source topic in the backup.
    pub(crate) in_backup: u64,
}

/// What a restore made in the target: the topics the cluster created for it (not those that
/// were there already) and the consumer groups it committed offsets for (target names). A
/// restore drill deletes exactly these.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Created {
    pub topics: Vec<String>,
    pub groups: Vec<String>,
}

/// What an unfinished restore had written: the second half of its error message.
#[derive(Debug, Clone)]
pub struct Written {
    pub(crate) phase: WritePhase,
    /// This run was itself a `--resume`.
    pub(crate) resuming: bool,
    pub(crate) topics: Vec<TopicWritten>,
    pub(crate) groups_committed: usize,
    pub(crate) groups_total: usize,
    pub(crate) created: Created,
}

const RESUME: &str = "rerun the same command with --resume to continue: it checks what each target partition holds and writes only the rest";

impl fmt::Display for Written {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.phase {
            WritePhase::Nothing if self.resuming => write!(
                f,
                "this run wrote nothing; the target still holds what the earlier run wrote: {RESUME}"
            ),
            WritePhase::Nothing => write!(
                f,
                "nothing was written to the target; run the same command again to restore"
            ),
            WritePhase::CreatingTopics => write!(
                f,
                "no record was written, but some target topics may have been created (empty): {RESUME}"
            ),
            WritePhase::Records => {
                let held: u64 = self.topics.iter().map(|t| t.acknowledged + t.resumed).sum();
                let resumed: u64 = self.topics.iter().map(|t| t.resumed).sum();
                write!(f, "the target acknowledged {} (", count(held, "record"))?;
                self.per_topic(f)?;
                write!(f, ")")?;
                if resumed > 0 {
                    write!(f, ", {resumed} of them already there from the earlier run")?;
                }
                write!(
                    f,
                    "; records sent but not yet acknowledged may have landed too, and no consumer-group offsets were committed: {RESUME}"
                )
            }
            WritePhase::Groups => {
                let held: u64 = self.topics.iter().map(|t| t.acknowledged + t.resumed).sum();
                write!(f, "all {} were written (", count(held, "record"))?;
                self.per_topic(f)?;
                write!(
                    f,
                    "), consumer-group offsets of {} of {} committed: rerun the same command with --resume to commit the rest",
                    self.groups_committed,
                    count(self.groups_total, "group")
                )
            }
        }
    }
}

impl Written {
    /// What the restore had made in the target when it stopped.
    pub fn created(&self) -> &Created {
        &self.created
    }

    /// Stopped before changing anything in the target.
    pub(crate) fn nothing(resuming: bool) -> Written {
        Written {
            phase: WritePhase::Nothing,
            resuming,
            topics: Vec::new(),
            groups_committed: 0,
            groups_total: 0,
            created: Created::default(),
        }
    }

    /// The error of a restore interrupted before anything was written.
    pub(crate) fn stopped_before_writing(resuming: bool) -> Error {
        Error::RestoreIncomplete {
            why: RestoreStop::Interrupted,
            written: Written::nothing(resuming),
        }
    }

    fn per_topic(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 10;
        for (i, topic) in self.topics.iter().take(SHOWN).enumerate() {
            if i > 0 {
                write!(f, ", ")?;
            }
            write!(
                f,
                "{}: {} of {}",
                topic.topic,
                topic.acknowledged + topic.resumed,
                topic.in_backup
            )?;
        }
        if self.topics.len() > SHOWN {
            write!(f, " and {} more topics", self.topics.len() - SHOWN)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(name: &str, acknowledged: u64, resumed: u64, in_backup: u64) -> TopicWritten {
        TopicWritten {
            topic: name.into(),
            acknowledged,
            resumed,
            in_backup,
        }
    }

    #[test]
    fn what_was_written_is_said_per_topic_with_the_way_on() {
        let mut written = Written {
            phase: WritePhase::Records,
            resuming: true,
            topics: vec![topic("a", 10, 5, 100), topic("b", 0, 0, 7)],
            groups_committed: 0,
            groups_total: 2,
            created: Created::default(),
        };
        assert_eq!(
            written.to_string(),
            format!("the target acknowledged 15 records (a: 15 of 100, b: 0 of 7), 5 of them already there from the earlier run; records sent but not yet acknowledged may have landed too, and no consumer-group offsets were committed: {RESUME}")
        );
        written.phase = WritePhase::Groups;
        written.groups_committed = 1;
        assert_eq!(
            written.to_string(),
            "all 15 records were written (a: 15 of 100, b: 0 of 7), consumer-group offsets of 1 of 2 groups committed: rerun the same command with --resume to commit the rest"
        );
        written.phase = WritePhase::Nothing;
        assert!(written.to_string().starts_with("this run wrote nothing;"));
        written.resuming = false;
        assert_eq!(
            written.to_string(),
            "nothing was written to the target; run the same command again to restore"
        );
        written.phase = WritePhase::CreatingTopics;
        assert!(written.to_string().ends_with(RESUME));
    }
}
