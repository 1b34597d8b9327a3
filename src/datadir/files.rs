//! The small text files of a data directory: `meta.properties`, the offset checkpoint files
//! (`recovery-point-offset-checkpoint`, `replication-offset-checkpoint`,
//! `log-start-offset-checkpoint`, `cleaner-offset-checkpoint`) and `partition.metadata`.

use std::collections::BTreeMap;

/// Why a small file could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {what}")]
pub(crate) struct FileFormatError {
    pub(crate) line: usize,
    pub(crate) what: String,
}

fn bad(line: usize, what: impl Into<String>) -> FileFormatError {
    FileFormatError {
        line,
        what: what.into(),
    }
}

/// `meta.properties`: Java properties, `key=value` lines, `#`/`!` comments.
pub(crate) fn parse_properties(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#') && !line.starts_with('!'))
        .filter_map(|line| {
            let split = line.find(['=', ':'])?;
            let key = line[..split].trim();
            let value = line[split + 1..].trim();
            Some((unescape(key), unescape(value)))
        })
        .collect()
}

/// Java properties escapes that occur in generated files (`\:`, `\=`, `\\`).
fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// One `topic partition offset` line of a checkpoint file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CheckpointEntry {
    pub(crate) topic: String,
    pub(crate) partition: i32,
    pub(crate) offset: i64,
}

/// An offset checkpoint file: a version line (0), a count line, then `topic partition offset`
/// lines. An empty file (Kafka truncates before writing) holds no entries.
pub(crate) fn parse_checkpoint(text: &str) -> Result<Vec<CheckpointEntry>, FileFormatError> {
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l.trim()));
    let Some((_, version)) = lines.next() else {
        return Ok(Vec::new());
    };
    if version != "0" {
        return Err(bad(
            1,
            format!("unsupported checkpoint version {version:?} (expected 0)"),
        ));
    }
    let (_, count) = lines.next().ok_or_else(|| bad(2, "missing entry count"))?;
    let count: usize = count
        .parse()
        .map_err(|_| bad(2, format!("entry count {count:?} is not a number")))?;
    let mut entries = Vec::new();
    for (number, line) in lines.by_ref() {
        if line.is_empty() {
            continue;
        }
        let mut fields = line.split(' ');
        let (Some(topic), Some(partition), Some(offset), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err(bad(
                number,
                format!("expected `topic partition offset`, found {line:?}"),
            ));
        };
        let partition = partition
            .parse()
            .map_err(|_| bad(number, format!("partition {partition:?} is not a number")))?;
        let offset = offset
            .parse()
            .map_err(|_| bad(number, format!("offset {offset:?} is not a number")))?;
        entries.push(CheckpointEntry {
            topic: topic.to_string(),
            partition,
            offset,
        });
    }
    if entries.len() != count {
        return Err(bad(
            2,
            format!(
                "count line says {count} entries, the file holds {}",
                entries.len()
            ),
        ));
    }
    Ok(entries)
}

/// `partition.metadata`: `version: 0` and `topic_id: <base64 uuid>`; returns the topic id.
pub(crate) fn parse_partition_metadata(text: &str) -> Result<String, FileFormatError> {
    let mut version = None;
    let mut topic_id = None;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let (key, value) = line
            .split_once(':')
            .ok_or_else(|| bad(i + 1, format!("expected `key: value`, found {line:?}")))?;
        match key.trim() {
            "version" => version = Some(value.trim().to_string()),
            "topic_id" => topic_id = Some(value.trim().to_string()),
            _ => {}
        }
    }
    match version.as_deref() {
        Some("0") => {}
        Some(other) => {
            return Err(bad(
                1,
                format!("unsupported version {other:?} (expected 0)"),
            ))
        }
        None => return Err(bad(1, "no version line")),
    }
    topic_id.ok_or_else(|| bad(2, "no topic_id line"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_properties_parse() {
        let props = parse_properties(
            "#\n#Fri Jan 30 16:43:51 UTC 2026\nnode.id=1\ndirectory.id=XHhk\nversion=1\ncluster.id=q1w2\\:e3\n",
        );
        assert_eq!(props["node.id"], "1");
        assert_eq!(props["cluster.id"], "q1w2:e3");
        assert_eq!(props.len(), 4);
    }

    #[test]
    fn checkpoints_parse() {
        let entries =
            parse_checkpoint("0\n2\nfirst_topic 2 18\n__consumer_offsets 22 0\n").unwrap();
        assert_eq!(
            entries[0],
            CheckpointEntry {
                topic: "first_topic".into(),
                partition: 2,
                offset: 18
            }
        );
        assert_eq!(entries.len(), 2);
        assert_eq!(parse_checkpoint("").unwrap(), vec![]);
        assert_eq!(parse_checkpoint("0\n0\n").unwrap(), vec![]);
    }

    #[test]
    fn bad_checkpoints_say_where() {
        assert_eq!(parse_checkpoint("1\n0\n").unwrap_err().line, 1);
        assert_eq!(parse_checkpoint("0\n2\na 0 1\n").unwrap_err().line, 2);
        assert_eq!(parse_checkpoint("0\n1\na x 1\n").unwrap_err().line, 3);
    }

    #[test]
    fn partition_metadata_parses() {
        assert_eq!(
            parse_partition_metadata("version: 0\ntopic_id: B3_HiNPgSQ6oxG9ZZ6ED5A").unwrap(),
            "B3_HiNPgSQ6oxG9ZZ6ED5A"
        );
        assert!(parse_partition_metadata("version: 9\ntopic_id: x").is_err());
    }
}
