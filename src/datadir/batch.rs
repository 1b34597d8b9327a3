//! Kafka's log framing, entry by entry: RecordBatch magic 2 (61-byte header, CRC-32C over
//! attributes..end, records with varint fields and headers, control records such as
//! transaction markers), legacy magic 0/1 message sets recognised by framing only, a
//! truncated tail, and a zero-filled (preallocated) tail.

use std::io::{self, Read};

use super::codec::{self, Codec};
use super::wire::{read_up_to, WireError, WireReader};

/// Bytes of a magic-2 batch header, from base offset to record count.
pub(crate) const HEADER_LEN: usize = 61;
/// Offset of the attributes field: the CRC covers everything from here to the end.
const CRC_START: usize = 21;
/// Base offset (8) + length (4) + leader epoch or CRC (4) + magic (1): enough to tell the format.
const PREFIX_LEN: usize = 17;
/// Smallest legal `length` field per magic (bytes after the length field).
const MIN_LENGTH_V2: i32 = (HEADER_LEN - 12) as i32;
const MIN_LENGTH_V0: i32 = 14;
const MIN_LENGTH_V1: i32 = 22;
/// Fewest bytes one record can take: a length, attributes, timestamp delta, offset delta, key
/// length, value length and header count, one byte each.
const MIN_RECORD_LEN: u64 = 7;
/// Fewest bytes one record header can take: a key length and a value length, one byte each.
const MIN_HEADER_LEN: u64 = 2;

const ATTR_TIMESTAMP_LOG_APPEND: i16 = 0x08;
const ATTR_TRANSACTIONAL: i16 = 0x10;
const ATTR_CONTROL: i16 = 0x20;

/// The fixed fields of a magic-2 RecordBatch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    pub(crate) length: i32,
    pub(crate) partition_leader_epoch: i32,
    pub(crate) magic: i8,
    pub(crate) crc: u32,
    pub(crate) attributes: i16,
    pub(crate) last_offset_delta: i32,
    pub(crate) base_timestamp: i64,
    pub(crate) max_timestamp: i64,
    pub(crate) producer_id: i64,
    pub(crate) producer_epoch: i16,
    pub(crate) base_sequence: i32,
    pub record_count: i32,
}

impl BatchHeader {
    fn parse(b: &[u8]) -> BatchHeader {
        let i16_at = |at: usize| i16::from_be_bytes([b[at], b[at + 1]]);
        let i32_at = |at: usize| i32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
        let i64_at = |at: usize| {
            let mut raw = [0u8; 8];
            raw.copy_from_slice(&b[at..at + 8]);
            i64::from_be_bytes(raw)
        };
        BatchHeader {
            base_offset: i64_at(0),
            length: i32_at(8),
            partition_leader_epoch: i32_at(12),
            magic: b[16] as i8,
            crc: i32_at(17) as u32,
            attributes: i16_at(21),
            last_offset_delta: i32_at(23),
            base_timestamp: i64_at(27),
            max_timestamp: i64_at(35),
            producer_id: i64_at(43),
            producer_epoch: i16_at(51),
            base_sequence: i32_at(53),
            record_count: i32_at(57),
        }
    }

    /// The codec, or `Err(id)` for an id Kafka does not define.
    pub fn codec(&self) -> Result<Codec, u8> {
        Codec::from_attributes(self.attributes)
    }

    pub fn is_transactional(&self) -> bool {
        self.attributes & ATTR_TRANSACTIONAL != 0
    }

    pub fn is_control(&self) -> bool {
        self.attributes & ATTR_CONTROL != 0
    }

    /// Records carry the broker's append time (the batch's max timestamp), not their own.
    pub(crate) fn log_append_time(&self) -> bool {
        self.attributes & ATTR_TIMESTAMP_LOG_APPEND != 0
    }

    pub fn last_offset(&self) -> i64 {
        self.base_offset
            .saturating_add(i64::from(self.last_offset_delta))
    }
}

/// One magic-2 batch as it sits in the log, with its byte position.
#[derive(Debug, Clone)]
pub struct RecordBatch {
    pub position: u64,
    pub header: BatchHeader,
    bytes: Vec<u8>,
}

/// A record header (key, value; null values kept distinct from empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordHeader {
    pub key: String,
    pub value: Option<Vec<u8>>,
}

/// One record with its absolute offset and effective timestamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub offset: i64,
    pub timestamp: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<RecordHeader>,
}

/// What a control record says (its key: version int16, type int16).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlRecord {
    /// A transaction marker that commits.
    Commit,
    /// A transaction marker that aborts.
    Abort,
    /// KRaft's own control records (leader change, snapshot header/footer, voters...).
    Other(i16),
}

impl ControlRecord {
    pub fn parse(record: &Record) -> Result<ControlRecord, WireError> {
        let key = record.key.as_deref().unwrap_or_default();
        let mut r = WireReader::over(key);
        let _version = r.i16("control record key version")?;
        Ok(match r.i16("control record type")? {
            0 => ControlRecord::Abort,
            1 => ControlRecord::Commit,
            other => ControlRecord::Other(other),
        })
    }
}

impl RecordBatch {
    /// Builds a batch from its complete bytes (header included).
    pub(crate) fn from_bytes(position: u64, bytes: Vec<u8>) -> Result<RecordBatch, WireError> {
        if bytes.len() < HEADER_LEN {
            return Err(WireError::Eof {
                at: bytes.len() as u64,
                what: "record batch header",
            });
        }
        let header = BatchHeader::parse(&bytes);
        Ok(RecordBatch {
            position,
            header,
            bytes,
        })
    }

    /// The CRC-32C of attributes..end, as computed from the bytes.
    pub(crate) fn computed_crc(&self) -> u32 {
        crc32c::crc32c(&self.bytes[CRC_START..])
    }

    pub fn crc_ok(&self) -> bool {
        self.computed_crc() == self.header.crc
    }

    /// Decodes every record. Fails (and returns nothing) if any record, the record count or
    /// the codec is wrong, so a half-readable batch is never mistaken for a whole one.
    pub fn records(&self) -> Result<Vec<Record>, WireError> {
        let mut records = Vec::new();
        self.for_each_record(|record| records.push(record))?;
        Ok(records)
    }

    /// Decodes the records one at a time, handing each to `visit` as it is read, so memory
    /// stays at one record however many a batch holds (a small compressed batch can expand to
    /// millions). Returns how many there were. On an error, the records before it have
    /// already been visited.
    pub(crate) fn for_each_record(&self, mut visit: impl FnMut(Record)) -> Result<u64, WireError> {
        let h = &self.header;
        let codec = h.codec().map_err(|id| WireError::Invalid {
            at: 21,
            what: "batch attributes",
            detail: format!("unknown compression codec id {id}"),
        })?;
        if h.record_count < 0 {
            return Err(WireError::Invalid {
                at: 57,
                what: "record count",
                detail: format!("negative record count {}", h.record_count),
            });
        }
        let body = &self.bytes[HEADER_LEN..];
        let stream = codec::decoder(codec, body).map_err(|source| WireError::Io {
            at: HEADER_LEN as u64,
            what: "compressed records",
            source,
        })?;
        // Uncompressed, the records are the body: a count they cannot fit in is refused
        // before any is decoded. Compressed, each record is still held to its own length.
        let mut r = match codec {
            Codec::None => {
                let body_len = body.len() as u64;
                if h.record_count as u64 * MIN_RECORD_LEN > body_len {
                    return Err(WireError::Invalid {
                        at: 57,
                        what: "record count",
                        detail: format!(
                            "{} records cannot fit in the {body_len} bytes of an uncompressed \
                             batch (a record takes at least {MIN_RECORD_LEN})",
                            h.record_count
                        ),
                    });
                }
                WireReader::with_len(stream, body_len)
            }
            _ => WireReader::new(stream),
        };
        for _ in 0..h.record_count {
            visit(self.record(&mut r)?);
        }
        if !r.at_end()? {
            return Err(r.invalid(
                "records",
                format!(
                    "bytes remain after the {} records the header declares",
                    h.record_count
                ),
            ));
        }
        Ok(h.record_count as u64)
    }

    fn record(&self, r: &mut WireReader<impl Read>) -> Result<Record, WireError> {
        let h = &self.header;
        let length = r.varint("record length")?;
        if length < 0 {
            return Err(r.invalid("record length", format!("negative length {length}")));
        }
        let start = r.position();
        // Key, value and headers are refused when they claim more than the record's length.
        let outer = r.limit_to(length as u64, "record length")?;
        let _attributes = r.i8("record attributes")?;
        let timestamp_delta = r.varlong("record timestamp delta")?;
        let offset_delta = r.varint("record offset delta")?;
        let key = r.varint_bytes("record key")?;
        let value = r.varint_bytes("record value")?;
        let header_count = r.varint("record header count")?;
        if header_count < 0 {
            return Err(r.invalid(
                "record header count",
                format!("negative count {header_count}"),
            ));
        }
        r.check_count(header_count as u64, MIN_HEADER_LEN, "record header count")?;
        let mut headers = Vec::new();
        for _ in 0..header_count {
            let key = r
                .varint_bytes("header key")?
                .ok_or_else(|| r.invalid("header key", "null header key"))?;
            let key =
                String::from_utf8(key).map_err(|_| r.invalid("header key", "not valid UTF-8"))?;
            let value = r.varint_bytes("header value")?;
            headers.push(RecordHeader { key, value });
        }
        r.unlimit(outer);
        let used = r.position() - start;
        if used != length as u64 {
            return Err(r.invalid(
                "record",
                format!("record length says {length} bytes but its fields take {used}"),
            ));
        }
        let timestamp = if h.log_append_time() {
            h.max_timestamp
        } else {
            h.base_timestamp.wrapping_add(timestamp_delta)
        };
        Ok(Record {
            offset: h.base_offset.wrapping_add(i64::from(offset_delta)),
            timestamp,
            key,
            value,
            headers,
        })
    }
}

/// One entry of a log, in file order.
#[derive(Debug)]
pub enum LogEntry {
    /// A magic-2 batch, complete (its CRC not yet checked).
    Batch(RecordBatch),
    /// A legacy magic 0/1 message (possibly a compressed wrapper); skipped, not decoded.
    Legacy {
        position: u64,
        offset: i64,
        magic: i8,
        size: u64,
    },
    /// The log ends inside an entry: `claimed` bytes announced, `available` present.
    Truncated {
        position: u64,
        claimed: u64,
        available: u64,
    },
    /// The rest of the log, from `position`, is zero bytes (a preallocated file).
    ZeroTail { position: u64, len: u64 },
    /// The framing is broken at `position`: no later entry can be found.
    Corrupt { position: u64, detail: String },
}

/// Reads a log (a `.log` segment, a snapshot, a fetched record set) entry by entry. Memory
/// is bounded by the largest entry actually present; a length the data merely claims is
/// never allocated.
pub struct LogReader<R> {
    inner: R,
    position: u64,
    done: bool,
}

impl<R: Read> LogReader<R> {
    pub fn new(inner: R) -> Self {
        LogReader {
            inner,
            position: 0,
            done: false,
        }
    }

    /// Bytes consumed so far.
    pub(crate) fn position(&self) -> u64 {
        self.position
    }

    fn next_entry(&mut self) -> io::Result<Option<LogEntry>> {
        let position = self.position;
        let mut prefix = [0u8; PREFIX_LEN];
        let got = read_up_to(&mut self.inner, &mut prefix)?;
        self.position += got as u64;
        if got == 0 {
            return Ok(None);
        }
        if got < PREFIX_LEN {
            self.done = true;
            if prefix[..got].iter().all(|b| *b == 0) {
                return Ok(Some(LogEntry::ZeroTail {
                    position,
                    len: got as u64,
                }));
            }
            return Ok(Some(LogEntry::Truncated {
                position,
                claimed: if got >= 12 {
                    12 + length_of(&prefix).max(0) as u64
                } else {
                    PREFIX_LEN as u64
                },
                available: got as u64,
            }));
        }
        let offset = i64::from_be_bytes(prefix[0..8].try_into().expect("8 bytes"));
        let length = length_of(&prefix);
        let magic = prefix[16] as i8;
        if prefix.iter().all(|b| *b == 0) {
            self.done = true;
            let rest = self.zero_run()?;
            return Ok(Some(match rest {
                Some(zeros) => LogEntry::ZeroTail {
                    position,
                    len: PREFIX_LEN as u64 + zeros,
                },
                None => LogEntry::Corrupt {
                    position,
                    detail: "entry with length 0, followed by non-zero bytes".into(),
                },
            }));
        }
        let min = match magic {
            2 => MIN_LENGTH_V2,
            1 => MIN_LENGTH_V1,
            0 => MIN_LENGTH_V0,
            other => {
                self.done = true;
                return Ok(Some(LogEntry::Corrupt {
                    position,
                    detail: format!("unknown magic byte {other} (expected 0, 1 or 2)"),
                }));
            }
        };
        if length < min {
            self.done = true;
            return Ok(Some(LogEntry::Corrupt {
                position,
                detail: format!("length {length} is below the minimum {min} for magic {magic}"),
            }));
        }
        let claimed = 12 + length as u64;
        let remaining = claimed - PREFIX_LEN as u64;
        if magic == 2 {
            let mut bytes = Vec::with_capacity(PREFIX_LEN + remaining.min(1 << 20) as usize);
            bytes.extend_from_slice(&prefix);
            let read = (&mut self.inner).take(remaining).read_to_end(&mut bytes)? as u64;
            self.position += read;
            if read < remaining {
                self.done = true;
                return Ok(Some(LogEntry::Truncated {
                    position,
                    claimed,
                    available: PREFIX_LEN as u64 + read,
                }));
            }
            let batch = RecordBatch::from_bytes(position, bytes)
                .expect("a complete batch is at least the header length");
            return Ok(Some(LogEntry::Batch(batch)));
        }
        let skipped = io::copy(&mut (&mut self.inner).take(remaining), &mut io::sink())?;
        self.position += skipped;
        if skipped < remaining {
            self.done = true;
            return Ok(Some(LogEntry::Truncated {
                position,
                claimed,
                available: PREFIX_LEN as u64 + skipped,
            }));
        }
        Ok(Some(LogEntry::Legacy {
            position,
            offset,
            magic,
            size: claimed,
        }))
    }

    /// Reads to the end; `Some(count)` if every byte was zero.
    fn zero_run(&mut self) -> io::Result<Option<u64>> {
        let mut buf = [0u8; 8192];
        let mut count = 0u64;
        let mut all_zero = true;
        loop {
            let n = read_up_to(&mut self.inner, &mut buf)?;
            if n == 0 {
                break;
            }
            all_zero &= buf[..n].iter().all(|b| *b == 0);
            count += n as u64;
            self.position += n as u64;
        }
        Ok(all_zero.then_some(count))
    }
}

fn length_of(prefix: &[u8]) -> i32 {
    i32::from_be_bytes(prefix[8..12].try_into().expect("4 bytes"))
}

impl<R: Read> Iterator for LogReader<R> {
    type Item = io::Result<LogEntry>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.next_entry() {
            Ok(Some(entry)) => Some(Ok(entry)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(err) => {
                self.done = true;
                Some(Err(err))
            }
        }
    }
}

/// Builds batches for tests (here and in the other datadir modules).
#[cfg(test)]
pub(crate) mod build {
    use super::*;

    pub(crate) fn varint(out: &mut Vec<u8>, value: i64) {
        let mut raw = ((value << 1) ^ (value >> 63)) as u64;
        loop {
            let byte = (raw & 0x7f) as u8;
            raw >>= 7;
            if raw == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }

    fn bytes(out: &mut Vec<u8>, value: Option<&[u8]>) {
        match value {
            None => varint(out, -1),
            Some(v) => {
                varint(out, v.len() as i64);
                out.extend_from_slice(v);
            }
        }
    }

    /// One record: (offset delta, timestamp delta, key, value).
    pub(crate) fn record(
        offset_delta: i32,
        ts_delta: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
    ) -> Vec<u8> {
        let mut body = vec![0u8];
        varint(&mut body, ts_delta);
        varint(&mut body, i64::from(offset_delta));
        bytes(&mut body, key);
        bytes(&mut body, value);
        varint(&mut body, 0);
        let mut out = Vec::new();
        varint(&mut out, body.len() as i64);
        out.extend_from_slice(&body);
        out
    }

    /// An uncompressed batch with a correct CRC.
    pub(crate) fn batch(
        base_offset: i64,
        attributes: i16,
        base_ts: i64,
        records: &[Vec<u8>],
        last_delta: i32,
    ) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&base_offset.to_be_bytes());
        b.extend_from_slice(&0i32.to_be_bytes()); // length, patched
        b.extend_from_slice(&0i32.to_be_bytes()); // leader epoch
        b.push(2);
        b.extend_from_slice(&0u32.to_be_bytes()); // crc, patched
        b.extend_from_slice(&attributes.to_be_bytes());
        b.extend_from_slice(&last_delta.to_be_bytes());
        b.extend_from_slice(&base_ts.to_be_bytes());
        b.extend_from_slice(&(base_ts + i64::from(last_delta)).to_be_bytes());
        b.extend_from_slice(&(-1i64).to_be_bytes());
        b.extend_from_slice(&(-1i16).to_be_bytes());
        b.extend_from_slice(&(-1i32).to_be_bytes());
        b.extend_from_slice(&(records.len() as i32).to_be_bytes());
        for r in records {
            b.extend_from_slice(r);
        }
        let length = (b.len() - 12) as i32;
        b[8..12].copy_from_slice(&length.to_be_bytes());
        let crc = crc32c::crc32c(&b[CRC_START..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        b
    }

    /// A batch of `n` one-byte records at consecutive offsets from `base_offset`.
    pub(crate) fn simple(base_offset: i64, n: i32) -> Vec<u8> {
        let records: Vec<Vec<u8>> = (0..n)
            .map(|i| record(i, i64::from(i), Some(b"k"), Some(&[i as u8])))
            .collect();
        batch(base_offset, 0, 1_000, &records, n - 1)
    }
}

#[cfg(test)]
#[path = "batch_tests.rs"]
mod tests;
