//! What the inspector holds of one partition while its files arrive (each segment's scan and
//! index files), and the partition's statistics summed up from it at the end.

use std::collections::{BTreeMap, BTreeSet};

use super::report::{PartitionReport, Problem, ProblemKind};
use super::segment::SegmentScan;

/// One segment's state while files arrive.
#[derive(Debug, Default)]
pub(super) struct SegmentState {
    pub(super) scan: Option<SegmentScan>,
    pub(super) offset_index: Option<Vec<u8>>,
    pub(super) time_index: Option<Vec<u8>>,
}

#[derive(Debug, Default)]
pub(super) struct PartitionState {
    pub(super) dir: String,
    pub(super) topic_id: Option<String>,
    pub(super) segments: BTreeMap<i64, SegmentState>,
    pub(super) index_problems: Vec<String>,
}

impl PartitionState {
    /// Sums the segments up. A cut-short segment that is not the last one is corruption
    /// (pushed to `problems`); `checkpoints` are log start, high watermark, recovery point.
    pub(super) fn report(
        &self,
        topic: String,
        partition: i32,
        checkpoints: [Option<i64>; 3],
        problems: &mut Vec<Problem>,
    ) -> PartitionReport {
        let [log_start_offset, high_watermark, recovery_point] = checkpoints;
        let mut report = PartitionReport {
            topic,
            partition,
            topic_id: self.topic_id.clone(),
            segments: 0,
            batches: 0,
            records: 0,
            control_batches: 0,
            commit_markers: 0,
            abort_markers: 0,
            first_offset: None,
            last_offset: None,
            first_timestamp: None,
            last_timestamp: None,
            codecs: Vec::new(),
            corrupt_batches: 0,
            truncated: false,
            legacy_message_sets: 0,
            index_problems: self.index_problems.clone(),
            log_start_offset,
            high_watermark,
            recovery_point,
            bytes: 0,
        };
        let last_base = self
            .segments
            .iter()
            .filter(|(_, s)| s.scan.is_some())
            .map(|(base, _)| *base)
            .next_back();
        let mut codecs = BTreeSet::new();
        let mut first: Option<(i64, i64)> = None;
        let mut last: Option<(i64, i64)> = None;
        for (base, segment) in &self.segments {
            let index_name = |ext: &str| format!("{}/{base:020}.{ext}", self.dir);
            if segment.offset_index.is_some() {
                report.index_problems.push(format!(
                    "{}: no {base:020}.log beside it",
                    index_name("index")
                ));
            }
            if segment.time_index.is_some() {
                report.index_problems.push(format!(
                    "{}: no {base:020}.log beside it",
                    index_name("timeindex")
                ));
            }
            let Some(scan) = &segment.scan else {
                continue;
            };
            report.segments += 1;
            report.batches += scan.batches;
            report.records += scan.records;
            report.control_batches += scan.control_batches;
            report.commit_markers += scan.commit_markers;
            report.abort_markers += scan.abort_markers;
            report.corrupt_batches += scan.corrupt.len() as u64;
            report.legacy_message_sets += scan.legacy_entries();
            report.bytes += scan.size;
            codecs.extend(scan.codecs.iter().copied());
            if let Some(f) = scan.first {
                if first.is_none_or(|(o, _)| f.0 < o) {
                    first = Some(f);
                }
            }
            if let Some(l) = scan.last {
                if last.is_none_or(|(o, _)| l.0 >= o) {
                    last = Some(l);
                }
            }
            if let Some(damage) = &scan.truncated {
                if Some(*base) == last_base {
                    report.truncated = true;
                } else {
                    report.corrupt_batches += 1;
                    problems.push(Problem {
                        file: format!("{}/{base:020}.log", self.dir),
                        position: Some(damage.position),
                        kind: ProblemKind::Corrupt,
                        detail: "a segment that is not the partition's last one is cut short: \
                                 the records after this byte are lost"
                            .to_string(),
                    });
                }
            }
        }
        report.codecs = codecs.into_iter().collect();
        report.first_offset = first.map(|f| f.0);
        report.first_timestamp = first.map(|f| f.1);
        report.last_offset = last.map(|l| l.0);
        report.last_timestamp = last.map(|l| l.1);
        report.index_problems.sort();
        report
    }
}
