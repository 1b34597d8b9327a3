//! `kafkasnap cat`: a backup's records as JSON lines, from `--offset` and `--from-time` on,
//! up to `--count` of them. UTF-8 bytes print as text; anything else as `{"base64": "..."}`;
//! null stays null.

use std::io::Write;

use anyhow::Context;
use base64::Engine;
use kafkasnap::archive::{PartitionBackup, RecordRef};
use kafkasnap::read::{key_for_backup, open_backup, read_segment};
use serde_json::{json, Value};

use super::{load_key_file, Global, InvalidRequest, Outcome};
use crate::cli::CatArgs;

pub async fn run(args: CatArgs, global: &Global) -> anyhow::Result<Outcome> {
    let given_key = load_key_file(&args.key)?;
    let location = global.open_location(&args.location, false)?;
    let manifest = open_backup(&location, &args.backup, given_key.as_ref()).await?;
    let encryption_key = key_for_backup(&manifest, given_key.as_ref())?;
    let topic = manifest.topic(&args.topic).with_context(|| {
        let names: Vec<&str> = manifest.topics.iter().map(|t| t.name.as_str()).collect();
        format!(
            "topic {:?} is not in backup {}; it holds: {}",
            args.topic,
            manifest.backup_id,
            names.join(", ")
        )
    })?;
    if let Some(p) = args.partition {
        anyhow::ensure!(
            topic.partitions.iter().any(|x| x.partition == p),
            "topic {} has no partition {p} in backup {} (it has {})",
            topic.name,
            manifest.backup_id,
            topic.partition_count
        );
    }
    let partitions: Vec<&PartitionBackup> = topic
        .partitions
        .iter()
        .filter(|p| args.partition.is_none_or(|want| want == p.partition))
        .collect();
    let start = args.offset.unwrap_or(0);
    refuse_offset_past_the_end(start, &partitions, &topic.name)?;
    let mut left = args.count.unwrap_or(u64::MAX);
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    'partitions: for partition in partitions {
        for segment in &partition.segments {
            // Segments wholly before --offset or before --from-time are not read.
            let before_time = matches!((segment.max_timestamp, args.from_time), (Some(max), Some(from)) if max < from);
            if segment.last_offset < start || before_time {
                continue;
            }
            let records = read_segment(&location, segment, encryption_key.as_ref()).await?;
            for record in records.iter() {
                let record = record.with_context(|| format!("decoding {}", segment.key))?;
                if !partition.holds(record.offset) {
                    continue; // deleted from the cluster before this backup (carried segment)
                }
                if record.offset < start
                    || args.from_time.is_some_and(|from| record.timestamp < from)
                {
                    continue;
                }
                let line = record_json(&topic.name, partition.partition, &record);
                let mut line = serde_json::to_vec(&line)?;
                line.push(b'\n');
                out.write_all(&line)?;
                left -= 1;
                if left == 0 {
                    break 'partitions;
                }
            }
        }
    }
    out.flush()?;
    Ok(Outcome::Success)
}

/// `--offset` past the last record of every partition printed is a mistake (exit code 2),
/// not an empty result: says where the partitions end.
fn refuse_offset_past_the_end(
    start: i64,
    partitions: &[&PartitionBackup],
    topic: &str,
) -> Result<(), InvalidRequest> {
    if start == 0
        || partitions
            .iter()
            .any(|p| p.records > 0 && p.end_offset > start)
    {
        return Ok(());
    }
    let ends: Vec<String> = partitions
        .iter()
        .map(|p| match p.records {
            0 => format!("partition {} holds no records", p.partition),
            _ => format!(
                "partition {} holds offsets below {}",
                p.partition, p.end_offset
            ),
        })
        .collect();
    Err(InvalidRequest(format!(
        "--offset {start} is past the last record of topic {topic} in this backup ({}): give a smaller offset",
        ends.join(", ")
    )))
}

fn bytes_json(bytes: Option<&[u8]>) -> Value {
    match bytes {
        None => Value::Null,
        Some(b) => match std::str::from_utf8(b) {
            Ok(text) => Value::String(text.to_string()),
            Err(_) => json!({ "base64": base64::engine::general_purpose::STANDARD.encode(b) }),
        },
    }
}

fn record_json(topic: &str, partition: i32, record: &RecordRef<'_>) -> Value {
    let headers: Vec<Value> = record
        .headers
        .iter()
        .map(|h| json!({ "name": bytes_json(Some(h.name)), "value": bytes_json(h.value) }))
        .collect();
    json!({
        "topic": topic,
        "partition": partition,
        "offset": record.offset,
        "timestamp": record.timestamp,
        "timestamp_type": record.timestamp_type.as_str(),
        "key": bytes_json(record.key),
        "value": bytes_json(record.value),
        "headers": headers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafkasnap::archive::{HeaderRef, TimestampType};

    #[test]
    fn text_binary_and_null_are_told_apart() {
        let record = RecordRef {
            offset: 7,
            timestamp: 1,
            timestamp_type: TimestampType::CreateTime,
            key: None,
            value: Some(b"\xff\x00"),
            headers: vec![HeaderRef {
                name: b"h",
                value: Some(b""),
            }],
        };
        let line = record_json("orders", 0, &record);
        assert_eq!(line["topic"], json!("orders"));
        assert_eq!(line["key"], Value::Null);
        assert_eq!(line["value"], json!({"base64": "/wA="}));
        assert_eq!(line["headers"][0]["value"], json!(""));
    }
}
