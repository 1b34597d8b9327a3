//! Offset translation: committed group offsets on source partitions mapped to the offsets
//! the restored records got on the target.

use super::*;

/// Each group's committed offsets on restored partitions, translated to target offsets
/// and target topic names.
pub(super) fn translate_groups(
    manifest: &Manifest,
    plan: &RestorePlan,
    results: &ReplayResults,
    writer: &RecordWriter,
    start_ends: &HashMap<(String, i32), i64>,
) -> Vec<(String, Vec<CommittedOffset>)> {
    let mut translated = Vec::new();
    for group in manifest
        .groups
        .iter()
        .filter(|g| plan.groups.contains(&g.group))
    {
        let mut offsets = Vec::new();
        for committed in &group.offsets {
            let Some(topic) = plan
                .topics
                .iter()
                .find(|t| t.source == committed.topic && t.action != TopicAction::Skip)
            else {
                continue;
            };
            let Some(result) = results.get(&(committed.topic.clone(), committed.partition)) else {
                continue;
            };
            let new_offset = match result.markers.get(&committed.offset) {
                Some(&marker) => writer.tracker().marked_offset(marker),
                None => result.resumed_offsets.get(&committed.offset).copied(),
            };
            let end = writer
                .tracker()
                .last_offset(&topic.target, committed.partition)
                .map(|last| last + 1)
                .or_else(|| {
                    start_ends
                        .get(&(topic.target.clone(), committed.partition))
                        .copied()
                })
                .unwrap_or(0);
            offsets.push(CommittedOffset {
                topic: topic.target.clone(),
                partition: committed.partition,
                offset: new_offset.unwrap_or(end),
                metadata: committed.metadata.clone(),
            });
        }
        if !offsets.is_empty() {
            translated.push((group.group.clone(), offsets));
        }
    }
    translated
}
