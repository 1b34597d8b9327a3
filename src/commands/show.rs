//! `kafkasnap show`: what one backup holds.

use kafkasnap::progress::{count, human_bytes, human_time};
use kafkasnap::read::open_backup;

use super::{print_json, Global, Outcome};
use crate::cli::{OutputFormat, ShowArgs};

pub async fn run(args: ShowArgs, global: &Global) -> anyhow::Result<Outcome> {
    let location = global.open_location(&args.location, false)?;
    let manifest = open_backup(&location, &args.backup, None).await?;
    if global.output == OutputFormat::Json {
        print_json(&manifest)?;
        return Ok(Outcome::Success);
    }
    let t = &manifest.totals;
    println!(
        "backup {} ({} backup, format version {})",
        manifest.backup_id, manifest.kind, manifest.format_version
    );
    if let Some(parent) = &manifest.parent {
        println!("  incremental: builds on parent backup {parent}");
    }
    println!(
        "  taken {} .. {} from {}",
        manifest.started_at, manifest.finished_at, manifest.source.bootstrap_servers
    );
    println!(
        "  cluster id {}",
        manifest.source.cluster_id.as_deref().unwrap_or("unknown")
    );
    println!(
        "  {}, {}, {}, {}, {} raw, {} stored ({})",
        count(t.topics, "topic"),
        count(t.partitions, "partition"),
        count(t.segments, "segment"),
        count(t.records, "record"),
        human_bytes(t.raw_bytes),
        human_bytes(t.stored_bytes),
        manifest.compression
    );
    if let Some(encryption) = &manifest.encryption {
        println!(
            "  segments encrypted with {}, key id {} (restore, verify and cat need its --key-file)",
            encryption.cipher, encryption.key_id
        );
    }
    for topic in &manifest.topics {
        println!(
            "topic {}  partitions {}  replication factor {}{}",
            topic.name,
            topic.partition_count,
            topic.replication_factor,
            if topic.internal { "  (internal)" } else { "" }
        );
        for config in &topic.configs {
            let value = if config.is_sensitive {
                "(sensitive, not stored)".to_string()
            } else {
                config.value.clone().unwrap_or_default()
            };
            println!("    config {}={} [{}]", config.name, value, config.source);
        }
        for p in &topic.partitions {
            println!(
                "    partition {}: offsets {}..{} (high watermark {}), {}, {}{}",
                p.partition,
                p.start_offset,
                p.end_offset,
                p.high_watermark,
                count(p.records, "record"),
                count(p.segments.len(), "segment"),
                match (p.first_timestamp, p.last_timestamp) {
                    (Some(first), Some(last)) => {
                        format!(", timestamps {} .. {}", human_time(first), human_time(last))
                    }
                    _ => String::new(),
                }
            );
        }
    }
    for group in &manifest.groups {
        println!("group {}", group.group);
        for o in &group.offsets {
            println!("    {}/{} committed {}", o.topic, o.partition, o.offset);
        }
    }
    for warning in &manifest.warnings {
        println!("warning: {warning}");
    }
    Ok(Outcome::Success)
}
