//! One log segment: its `.log` file read batch by batch into a summary (counts, offsets,
//! timestamps, codecs, corruption, truncation, legacy entries), and its `.index` /
//! `.timeindex` checked entry by entry against the batch boundaries the log really has.

use std::collections::BTreeSet;
use std::io::{self, Read};

use super::batch::{ControlRecord, LogEntry, LogReader, Record, RecordBatch};
use super::codec::Codec;

/// The kind of file a segment name denotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SegmentFile {
    Log,
    OffsetIndex,
    TimeIndex,
    /// A KRaft metadata snapshot (`<end offset>-<epoch>.checkpoint`).
    Snapshot,
}

/// Parses `00000000000000000042.log` (and `.index`, `.timeindex`, snapshot names) into the
/// base offset and kind.
pub(crate) fn parse_segment_name(name: &str) -> Option<(i64, SegmentFile)> {
    let (stem, kind) = if let Some(stem) = name.strip_suffix(".log") {
        (stem, SegmentFile::Log)
    } else if let Some(stem) = name.strip_suffix(".timeindex") {
        (stem, SegmentFile::TimeIndex)
    } else if let Some(stem) = name.strip_suffix(".index") {
        (stem, SegmentFile::OffsetIndex)
    } else if let Some(stem) = name.strip_suffix(".checkpoint") {
        let (offset, epoch) = stem.split_once('-')?;
        if offset.len() != 20 || epoch.len() != 10 || !epoch.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        (offset, SegmentFile::Snapshot)
    } else {
        return None;
    };
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((stem.parse().ok()?, kind))
}

/// Where an entry starts and which offsets (and max timestamp) it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Boundary {
    pub(crate) position: u64,
    pub(crate) base_offset: i64,
    pub(crate) last_offset: i64,
    /// None for legacy entries (not decoded).
    pub(crate) max_timestamp: Option<i64>,
}

/// A run of consecutive legacy magic 0/1 entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LegacyRun {
    pub(crate) position: u64,
    pub(crate) end: u64,
    pub(crate) count: u64,
    pub(crate) magics: BTreeSet<i8>,
}

/// A damaged place in a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Damage {
    pub(crate) position: u64,
    pub(crate) detail: String,
}

/// What one segment holds.
#[derive(Debug, Default)]
pub(crate) struct SegmentScan {
    pub(crate) boundaries: Vec<Boundary>,
    /// Magic-2 batches that decoded (control batches included).
    pub(crate) batches: u64,
    /// Data records (control records not included).
    pub(crate) records: u64,
    pub(crate) control_batches: u64,
    pub(crate) commit_markers: u64,
    pub(crate) abort_markers: u64,
    /// (offset, timestamp) of the lowest- and highest-offset data record.
    pub(crate) first: Option<(i64, i64)>,
    pub(crate) last: Option<(i64, i64)>,
    pub(crate) codecs: BTreeSet<Codec>,
    /// Bad CRCs, undecodable batches, broken framing.
    pub(crate) corrupt: Vec<Damage>,
    pub(crate) truncated: Option<Damage>,
    pub(crate) legacy: Vec<LegacyRun>,
    /// (position, length) of a zero-filled tail.
    pub(crate) zero_tail: Option<(u64, u64)>,
    /// Bytes read.
    pub(crate) size: u64,
}

impl SegmentScan {
    pub(crate) fn legacy_entries(&self) -> u64 {
        self.legacy.iter().map(|run| run.count).sum()
    }
}

/// How records reach [`scan_log`]'s `on_record`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RecordFeed {
    /// As each record is decoded: memory stays at one record whatever a batch expands to,
    /// but a batch that fails to decode part-way has passed on the records before the failure.
    Streamed,
    /// Only from batches that decode completely: each batch is decoded once to check it, then
    /// again to pass its records on. For state built from records (the metadata log, group
    /// offsets), where a half-readable batch must never count as a whole one.
    WholeBatches,
}

/// Reads a whole log, calling `on_record` with the records (of data and control batches
/// alike) of every batch whose CRC holds, as `feed` says. A batch that fails to decode is
/// recorded as damage. Damage is never fatal; only an I/O error reading the stream itself
/// fails.
pub(crate) fn scan_log<R: Read>(
    reader: R,
    feed: RecordFeed,
    mut on_record: impl FnMut(&RecordBatch, &Record),
) -> io::Result<SegmentScan> {
    let mut scan = SegmentScan::default();
    let mut log = LogReader::new(reader);
    for entry in &mut log {
        match entry? {
            LogEntry::Batch(batch) => scan.add_batch(&batch, feed, &mut on_record),
            LogEntry::Legacy {
                position,
                offset,
                magic,
                size,
            } => {
                let base = scan
                    .boundaries
                    .last()
                    .map_or(offset, |b| (b.last_offset.saturating_add(1)).min(offset));
                scan.boundaries.push(Boundary {
                    position,
                    base_offset: base,
                    last_offset: offset,
                    max_timestamp: None,
                });
                match scan.legacy.last_mut() {
                    Some(run) if run.end == position => {
                        run.end = position + size;
                        run.count += 1;
                        run.magics.insert(magic);
                    }
                    _ => scan.legacy.push(LegacyRun {
                        position,
                        end: position + size,
                        count: 1,
                        magics: BTreeSet::from([magic]),
                    }),
                }
            }
            LogEntry::Truncated {
                position,
                claimed,
                available,
            } => {
                scan.truncated = Some(Damage {
                    position,
                    detail: format!(
                        "log ends inside an entry: {claimed} bytes announced, {available} present"
                    ),
                });
            }
            LogEntry::ZeroTail { position, len } => scan.zero_tail = Some((position, len)),
            LogEntry::Corrupt { position, detail } => scan.corrupt.push(Damage {
                position,
                detail: format!("{detail}; the rest of the file cannot be framed"),
            }),
        }
    }
    scan.size = log.position();
    Ok(scan)
}

impl SegmentScan {
    fn add_batch(
        &mut self,
        batch: &RecordBatch,
        feed: RecordFeed,
        on_record: &mut impl FnMut(&RecordBatch, &Record),
    ) {
        let h = &batch.header;
        if !batch.crc_ok() {
            self.corrupt.push(Damage {
                position: batch.position,
                detail: format!(
                    "CRC mismatch in batch at base offset {}: header says {:#010x}, bytes give {:#010x}",
                    h.base_offset,
                    h.crc,
                    batch.computed_crc()
                ),
            });
            return;
        }
        let checked = match feed {
            RecordFeed::WholeBatches => batch.for_each_record(|_| {}).map(|_| ()),
            RecordFeed::Streamed => Ok(()),
        };
        // Records are counted as they stream by and committed to the scan only if the whole
        // batch decodes.
        let (mut records, mut first, mut last) = (0u64, self.first, self.last);
        let (mut commits, mut aborts) = (0u64, 0u64);
        let control = h.is_control();
        let decoded = checked.and_then(|()| {
            batch.for_each_record(|record| {
                if control {
                    match ControlRecord::parse(&record) {
                        Ok(ControlRecord::Commit) => commits += 1,
                        Ok(ControlRecord::Abort) => aborts += 1,
                        Ok(ControlRecord::Other(_)) | Err(_) => {}
                    }
                } else {
                    records += 1;
                    let point = (record.offset, record.timestamp);
                    if first.is_none_or(|(o, _)| record.offset < o) {
                        first = Some(point);
                    }
                    if last.is_none_or(|(o, _)| record.offset >= o) {
                        last = Some(point);
                    }
                }
                on_record(batch, &record);
            })
        });
        if let Err(err) = decoded {
            self.corrupt.push(Damage {
                position: batch.position,
                detail: format!(
                    "batch at base offset {} does not decode: {err}",
                    h.base_offset
                ),
            });
            return;
        }
        self.batches += 1;
        if let Ok(codec) = h.codec() {
            self.codecs.insert(codec);
        }
        self.boundaries.push(Boundary {
            position: batch.position,
            base_offset: h.base_offset,
            last_offset: h.last_offset(),
            max_timestamp: Some(h.max_timestamp),
        });
        if control {
            self.control_batches += 1;
            self.commit_markers += commits;
            self.abort_markers += aborts;
        } else {
            self.records += records;
            self.first = first;
            self.last = last;
        }
    }
}

/// An index entry that does not match the log.
fn entries<const N: usize>(bytes: &[u8], problems: &mut Vec<String>, what: &str) -> Vec<[u8; N]> {
    if bytes.len() % N != 0 {
        problems.push(format!(
            "{what} is {} bytes, not a multiple of its {N}-byte entries; the last {} bytes are ignored",
            bytes.len(),
            bytes.len() % N
        ));
    }
    let mut entries: Vec<[u8; N]> = bytes
        .chunks_exact(N)
        .map(|c| c.try_into().expect("chunk of N bytes"))
        .collect();
    // Kafka preallocates index files; the unused space is zero entries.
    while entries.last().is_some_and(|e| e.iter().all(|b| *b == 0)) {
        entries.pop();
    }
    entries
}

/// An index entry's absolute offset; `None` (and a problem) when the segment's base plus the
/// entry's relative offset is past the largest offset there can be.
fn absolute(
    segment_base: i64,
    relative: u32,
    i: usize,
    what: &str,
    problems: &mut Vec<String>,
) -> Option<i64> {
    let offset = segment_base.checked_add(i64::from(relative));
    if offset.is_none() {
        problems.push(format!(
            "{what} entry {i} names relative offset {relative} from base {segment_base}, past the largest possible offset"
        ));
    }
    offset
}

/// Checks an `.index` file (entries: relative offset u32, position u32): each entry must
/// point at the start of an entry of the log whose offsets include the indexed offset, and
/// entries must increase.
pub(crate) fn check_offset_index(
    bytes: &[u8],
    segment_base: i64,
    log: &[Boundary],
    log_size: u64,
) -> Vec<String> {
    let mut problems = Vec::new();
    let mut previous: Option<(i64, u64)> = None;
    for (i, e) in entries::<8>(bytes, &mut problems, ".index")
        .iter()
        .enumerate()
    {
        let relative = u32::from_be_bytes([e[0], e[1], e[2], e[3]]);
        let Some(offset) = absolute(segment_base, relative, i, ".index", &mut problems) else {
            continue;
        };
        let position = u64::from(u32::from_be_bytes([e[4], e[5], e[6], e[7]]));
        if let Some((prev_offset, prev_position)) = previous {
            if offset <= prev_offset || position <= prev_position {
                problems.push(format!(
                    ".index entry {i} (offset {offset}, byte {position}) does not increase over the previous one (offset {prev_offset}, byte {prev_position})"
                ));
            }
        }
        previous = Some((offset, position));
        match log.binary_search_by_key(&position, |b| b.position) {
            Ok(found) => {
                let b = &log[found];
                if offset < b.base_offset || offset > b.last_offset {
                    problems.push(format!(
                        ".index entry {i} says offset {offset} is at byte {position}, but the batch there holds offsets {}..={}",
                        b.base_offset, b.last_offset
                    ));
                }
            }
            Err(_) if position >= log_size => problems.push(format!(
                ".index entry {i} (offset {offset}) points at byte {position}, past the {log_size} readable bytes of the log"
            )),
            Err(_) => problems.push(format!(
                ".index entry {i} (offset {offset}) points at byte {position}, which is not the start of a batch"
            )),
        }
    }
    problems
}

/// Checks a `.timeindex` file (entries: timestamp i64, relative offset u32): each entry's
/// offset must be in a batch of the log whose max timestamp is the entry's timestamp, and
/// entries must not decrease.
pub(crate) fn check_time_index(bytes: &[u8], segment_base: i64, log: &[Boundary]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut previous: Option<(i64, i64)> = None;
    for (i, e) in entries::<12>(bytes, &mut problems, ".timeindex")
        .iter()
        .enumerate()
    {
        let timestamp = i64::from_be_bytes(e[0..8].try_into().expect("8 bytes"));
        let relative = u32::from_be_bytes([e[8], e[9], e[10], e[11]]);
        let Some(offset) = absolute(segment_base, relative, i, ".timeindex", &mut problems) else {
            continue;
        };
        if let Some((prev_ts, prev_offset)) = previous {
            if timestamp < prev_ts || offset < prev_offset {
                problems.push(format!(
                    ".timeindex entry {i} (timestamp {timestamp}, offset {offset}) goes backwards from (timestamp {prev_ts}, offset {prev_offset})"
                ));
            }
        }
        previous = Some((timestamp, offset));
        let holder = log
            .iter()
            .find(|b| b.base_offset <= offset && offset <= b.last_offset);
        match holder {
            None => problems.push(format!(
                ".timeindex entry {i} (timestamp {timestamp}) names offset {offset}, which no batch of the log holds"
            )),
            Some(Boundary {
                max_timestamp: Some(max),
                position,
                ..
            }) if *max != timestamp => problems.push(format!(
                ".timeindex entry {i} says offset {offset} has timestamp {timestamp}, but the batch at byte {position} has max timestamp {max}"
            )),
            Some(_) => {}
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::super::batch::build;
    use super::*;

    fn three_batches() -> (Vec<u8>, Vec<u64>) {
        let mut log = Vec::new();
        let mut positions = Vec::new();
        for (base, n) in [(0, 2), (2, 1), (3, 3)] {
            positions.push(log.len() as u64);
            log.extend_from_slice(&build::simple(base, n));
        }
        (log, positions)
    }

    fn offset_entry(rel: u32, pos: u64) -> Vec<u8> {
        [rel.to_be_bytes(), (pos as u32).to_be_bytes()].concat()
    }

    fn time_entry(ts: i64, rel: u32) -> Vec<u8> {
        [&ts.to_be_bytes()[..], &rel.to_be_bytes()].concat()
    }

    #[test]
    fn segment_names_parse() {
        assert_eq!(
            parse_segment_name("00000000000000000042.log"),
            Some((42, SegmentFile::Log))
        );
        assert_eq!(
            parse_segment_name("00000000000000000042.index"),
            Some((42, SegmentFile::OffsetIndex))
        );
        assert_eq!(
            parse_segment_name("00000000000000000042.timeindex"),
            Some((42, SegmentFile::TimeIndex))
        );
        assert_eq!(
            parse_segment_name("00000000000000000100-0000000003.checkpoint"),
            Some((100, SegmentFile::Snapshot))
        );
        assert_eq!(parse_segment_name("leader-epoch-checkpoint"), None);
        assert_eq!(parse_segment_name("00000000000000000042.snapshot"), None);
        assert_eq!(parse_segment_name("42.log"), None);
    }

    #[test]
    fn a_scan_counts_batches_records_and_offsets() {
        let (log, _) = three_batches();
        let mut seen = 0;
        let scan = scan_log(&log[..], RecordFeed::Streamed, |_, _| seen += 1).unwrap();
        assert_eq!((scan.batches, scan.records, seen), (3, 6, 6));
        assert_eq!(scan.first.map(|f| f.0), Some(0));
        assert_eq!(scan.last.map(|l| l.0), Some(5));
        assert!(scan.corrupt.is_empty() && scan.truncated.is_none());
    }

    #[test]
    fn whole_batches_pass_on_nothing_from_a_batch_that_fails_part_way() {
        // The second "record" claims 10 bytes and has 5 (the body still has room for the two
        // records the header counts): the batch's CRC holds, its first record decodes, the
        // second does not.
        let records = [
            build::record(0, 0, Some(b"k"), Some(b"v")),
            vec![20, 0, 0, 0, 0, 0],
        ];
        let log = build::batch(0, 0, 1_000, &records, 1);
        for (feed, passed_on) in [(RecordFeed::Streamed, 1), (RecordFeed::WholeBatches, 0)] {
            let mut seen = 0;
            let scan = scan_log(&log[..], feed, |_, _| seen += 1).unwrap();
            assert_eq!(seen, passed_on, "{feed:?}");
            assert_eq!((scan.batches, scan.records), (0, 0), "{feed:?}");
            assert!(
                scan.corrupt[0].detail.contains("does not decode"),
                "{feed:?}"
            );
        }
        let mut seen = 0;
        let whole = scan_log(
            &build::simple(0, 3)[..],
            RecordFeed::WholeBatches,
            |_, _| seen += 1,
        );
        assert_eq!((whole.unwrap().records, seen), (3, 3));
    }

    #[test]
    fn a_bad_crc_is_corruption_and_scanning_goes_on() {
        let (mut log, positions) = three_batches();
        let at = positions[1] as usize + 65;
        log[at] ^= 0xff;
        let scan = scan_log(&log[..], RecordFeed::Streamed, |_, _| {}).unwrap();
        assert_eq!(scan.corrupt.len(), 1);
        assert_eq!(scan.corrupt[0].position, positions[1]);
        assert!(scan.corrupt[0].detail.contains("CRC"));
        assert_eq!((scan.batches, scan.records), (2, 5));
    }

    #[test]
    fn good_indexes_pass() {
        let (log, positions) = three_batches();
        let scan = scan_log(&log[..], RecordFeed::Streamed, |_, _| {}).unwrap();
        let index = [
            offset_entry(2, positions[1]),
            offset_entry(5, positions[2]),
            vec![0; 16],
        ]
        .concat();
        assert_eq!(
            check_offset_index(&index, 0, &scan.boundaries, scan.size),
            Vec::<String>::new()
        );
        // build::simple: base timestamp 1000, max = 1000 + last delta.
        let time = [time_entry(1_001, 1), time_entry(1_002, 5), vec![0; 12]].concat();
        assert_eq!(
            check_time_index(&time, 0, &scan.boundaries),
            Vec::<String>::new()
        );
    }

    #[test]
    fn index_entries_that_miss_the_log_are_reported() {
        let (log, positions) = three_batches();
        let scan = scan_log(&log[..], RecordFeed::Streamed, |_, _| {}).unwrap();
        let index = [
            offset_entry(4, positions[1]),     // offset not in that batch
            offset_entry(5, positions[2] + 1), // not a batch start
            offset_entry(6, 10_000),           // past the log
        ]
        .concat();
        let problems = check_offset_index(&index, 0, &scan.boundaries, scan.size);
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].contains("holds offsets 2..=2"));
        assert!(problems[1].contains("not the start of a batch"));
        assert!(problems[2].contains("past the"));

        let time = [time_entry(999, 1), time_entry(1_002, 9)].concat();
        let problems = check_time_index(&time, 0, &scan.boundaries);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("max timestamp 1001"));
        assert!(problems[1].contains("no batch of the log holds"));

        let problems = check_offset_index(&[0, 0, 0, 1, 0], 0, &scan.boundaries, scan.size);
        assert!(problems[0].contains("not a multiple"), "{problems:?}");
    }

    #[test]
    fn index_offsets_past_i64_max_are_problems_not_overflows() {
        // Found by the kafka_log fuzz target: a segment named 09223372036854775807.log.
        let (log, positions) = three_batches();
        let scan = scan_log(&log[..], RecordFeed::Streamed, |_, _| {}).unwrap();
        let index = [offset_entry(0, positions[0]), offset_entry(1, positions[1])].concat();
        let problems = check_offset_index(&index, i64::MAX, &scan.boundaries, scan.size);
        assert!(
            problems[1].contains(".index entry 1 names relative offset 1 from base"),
            "{problems:?}"
        );
        let time = [time_entry(1_001, 0), time_entry(1_002, 7)].concat();
        let problems = check_time_index(&time, i64::MAX, &scan.boundaries);
        assert!(
            problems
                .iter()
                .any(|p| p.contains("past the largest possible offset")),
            "{problems:?}"
        );
    }
}
