//! One Kafka record as the archive keeps it, and its byte framing inside a segment.
//!
//! Framing (all integers little-endian; see docs/FORMAT.md "Record frame"):
//! `u32 frame_len | i64 offset | i64 timestamp | u8 timestamp_type | bytes key | bytes value |
//!  u32 header_count | (bytes name | bytes value) * header_count`
//! where `bytes` is `i32 len` then `len` bytes, and `len = -1` means null (distinct from empty).

use super::ArchiveError;

/// How Kafka set a record's timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampType {
    NotAvailable,
    CreateTime,
    LogAppendTime,
}

impl TimestampType {
    fn to_byte(self) -> u8 {
        match self {
            TimestampType::NotAvailable => 0,
            TimestampType::CreateTime => 1,
            TimestampType::LogAppendTime => 2,
        }
    }

    fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            0 => Some(TimestampType::NotAvailable),
            1 => Some(TimestampType::CreateTime),
            2 => Some(TimestampType::LogAppendTime),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TimestampType::NotAvailable => "none",
            TimestampType::CreateTime => "create",
            TimestampType::LogAppendTime => "log-append",
        }
    }
}

/// A record header; the name is kept as bytes, the value may be null.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderRef<'a> {
    pub name: &'a [u8],
    pub value: Option<&'a [u8]>,
}

/// A record borrowed from a segment buffer (or built by the reader before encoding).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordRef<'a> {
    pub offset: i64,
    pub timestamp: i64,
    pub timestamp_type: TimestampType,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub headers: Vec<HeaderRef<'a>>,
}

const FIXED_PART: usize = 8 + 8 + 1 + 4 + 4 + 4;

fn put_bytes(out: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        None => out.extend_from_slice(&(-1i32).to_le_bytes()),
        Some(b) => {
            out.extend_from_slice(&(b.len() as i32).to_le_bytes());
            out.extend_from_slice(b);
        }
    }
}

fn bytes_len(bytes: Option<&[u8]>) -> usize {
    bytes.map_or(0, <[u8]>::len)
}

/// Appends one record frame to `out`. Headers come as an iterator so callers can encode
/// straight from a client's message without building a `Vec` per record.
pub(crate) fn encode_record<'h>(
    out: &mut Vec<u8>,
    offset: i64,
    timestamp: i64,
    timestamp_type: TimestampType,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: impl ExactSizeIterator<Item = HeaderRef<'h>> + Clone,
) {
    let header_bytes: usize = headers
        .clone()
        .map(|h| 8 + h.name.len() + bytes_len(h.value))
        .sum();
    let frame_len = FIXED_PART + bytes_len(key) + bytes_len(value) + header_bytes;
    out.reserve(4 + frame_len);
    out.extend_from_slice(&(frame_len as u32).to_le_bytes());
    out.extend_from_slice(&offset.to_le_bytes());
    out.extend_from_slice(&timestamp.to_le_bytes());
    out.push(timestamp_type.to_byte());
    put_bytes(out, key);
    put_bytes(out, value);
    out.extend_from_slice(&(headers.len() as u32).to_le_bytes());
    for header in headers {
        out.extend_from_slice(&(header.name.len() as i32).to_le_bytes());
        out.extend_from_slice(header.name);
        put_bytes(out, header.value);
    }
}

impl RecordRef<'_> {
    /// The size of this record's frame in a segment, length prefix included: what it
    /// added to the segment's raw bytes when it was backed up.
    pub(crate) fn raw_len(&self) -> usize {
        let header_bytes: usize = self
            .headers
            .iter()
            .map(|h| 8 + h.name.len() + bytes_len(h.value))
            .sum();
        4 + FIXED_PART + bytes_len(self.key) + bytes_len(self.value) + header_bytes
    }

    #[cfg(test)]
    pub(crate) fn encode_into(&self, out: &mut Vec<u8>) {
        encode_record(
            out,
            self.offset,
            self.timestamp,
            self.timestamp_type,
            self.key,
            self.value,
            self.headers.iter().copied(),
        );
    }
}

/// A bounds-checked cursor over one frame; every read names the byte position on failure.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    base: usize,
}

impl<'a> Cursor<'a> {
    fn corrupt(&self, what: impl Into<String>) -> ArchiveError {
        ArchiveError::CorruptSegment {
            position: self.base + self.pos,
            what: what.into(),
        }
    }

    fn take(&mut self, len: usize, what: &str) -> Result<&'a [u8], ArchiveError> {
        let end = self
            .pos
            .checked_add(len)
            .filter(|end| *end <= self.buf.len());
        let end = end.ok_or_else(|| {
            self.corrupt(format!("{what} of {len} bytes runs past the record frame"))
        })?;
        let slice = &self.buf[self.pos..end];
        self.pos = end;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], ArchiveError> {
        Ok(self
            .take(N, what)?
            .try_into()
            .expect("take returned N bytes"))
    }

    fn nullable_bytes(&mut self, what: &str) -> Result<Option<&'a [u8]>, ArchiveError> {
        let len = i32::from_le_bytes(self.array(what)?);
        match len {
            -1 => Ok(None),
            len if len < 0 => Err(self.corrupt(format!("{what} has negative length {len}"))),
            len => Ok(Some(self.take(len as usize, what)?)),
        }
    }
}

/// Decodes the frame starting at `buf[pos..]`; returns the record and the position after it.
/// `base` is added to positions in errors so they point into the whole segment.
pub(crate) fn decode_record(
    buf: &[u8],
    pos: usize,
) -> Result<(RecordRef<'_>, usize), ArchiveError> {
    decode_frame(buf, pos, true)
}

/// [`decode_record`] with every check, but without collecting the headers (the returned
/// record's `headers` is empty): for walking a segment only to check it, at no allocation.
pub(crate) fn check_record(buf: &[u8], pos: usize) -> Result<(RecordRef<'_>, usize), ArchiveError> {
    decode_frame(buf, pos, false)
}

fn decode_frame(
    buf: &[u8],
    pos: usize,
    collect_headers: bool,
) -> Result<(RecordRef<'_>, usize), ArchiveError> {
    let rest = &buf[pos..];
    if rest.len() < 4 {
        return Err(ArchiveError::CorruptSegment {
            position: pos,
            what: "truncated record length".into(),
        });
    }
    let frame_len = u32::from_le_bytes(rest[..4].try_into().expect("4 bytes")) as usize;
    if frame_len > rest.len() - 4 {
        return Err(ArchiveError::CorruptSegment {
            position: pos,
            what: format!(
                "record frame of {frame_len} bytes but only {} remain",
                rest.len() - 4
            ),
        });
    }
    let mut cursor = Cursor {
        buf: &rest[4..4 + frame_len],
        pos: 0,
        base: pos + 4,
    };
    let offset = i64::from_le_bytes(cursor.array("offset")?);
    let timestamp = i64::from_le_bytes(cursor.array("timestamp")?);
    let [type_byte] = cursor.array("timestamp type")?;
    let timestamp_type = TimestampType::from_byte(type_byte)
        .ok_or_else(|| cursor.corrupt(format!("unknown timestamp type {type_byte}")))?;
    let key = cursor.nullable_bytes("key")?;
    let value = cursor.nullable_bytes("value")?;
    let header_count = u32::from_le_bytes(cursor.array("header count")?) as usize;
    // Each header needs at least 8 bytes, so a claimed count cannot outgrow the frame.
    if header_count > (frame_len - cursor.pos) / 8 {
        return Err(cursor.corrupt(format!(
            "{header_count} headers cannot fit in the record frame"
        )));
    }
    let mut headers = Vec::with_capacity(if collect_headers { header_count } else { 0 });
    for _ in 0..header_count {
        let name = cursor
            .nullable_bytes("header name")?
            .ok_or_else(|| cursor.corrupt("header name is null"))?;
        let value = cursor.nullable_bytes("header value")?;
        if collect_headers {
            headers.push(HeaderRef { name, value });
        }
    }
    if cursor.pos != frame_len {
        return Err(cursor.corrupt(format!(
            "{} unexplained bytes at the end of the record",
            frame_len - cursor.pos
        )));
    }
    let record = RecordRef {
        offset,
        timestamp,
        timestamp_type,
        key,
        value,
        headers,
    };
    Ok((record, pos + 4 + frame_len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> RecordRef<'static> {
        RecordRef {
            offset: 42,
            timestamp: -1,
            timestamp_type: TimestampType::NotAvailable,
            key: None,
            value: Some(b""),
            headers: vec![
                HeaderRef {
                    name: b"dup",
                    value: Some(b"1"),
                },
                HeaderRef {
                    name: b"dup",
                    value: None,
                },
                HeaderRef {
                    name: b"\xff\x00bin",
                    value: Some(b"\x00\xff"),
                },
            ],
        }
    }

    #[test]
    fn raw_len_is_the_encoded_frame_size() {
        let with_key = RecordRef {
            key: Some(b"a key"),
            ..sample()
        };
        for record in [sample(), with_key] {
            let mut buf = Vec::new();
            record.encode_into(&mut buf);
            assert_eq!(record.raw_len(), buf.len());
        }
    }

    #[test]
    fn null_and_empty_and_headers_round_trip() {
        let mut buf = Vec::new();
        sample().encode_into(&mut buf);
        let (decoded, end) = decode_record(&buf, 0).unwrap();
        assert_eq!(decoded, sample());
        assert_eq!(end, buf.len());
    }

    #[test]
    fn every_truncation_is_an_error() {
        let mut buf = Vec::new();
        sample().encode_into(&mut buf);
        for cut in 0..buf.len() {
            assert!(decode_record(&buf[..cut], 0).is_err(), "cut at {cut}");
            assert!(check_record(&buf[..cut], 0).is_err(), "check, cut at {cut}");
        }
    }

    #[test]
    fn checking_reads_the_same_frame_without_collecting_headers() {
        let mut buf = Vec::new();
        sample().encode_into(&mut buf);
        sample().encode_into(&mut buf);
        let (checked, end) = check_record(&buf, 0).unwrap();
        let (decoded, decoded_end) = decode_record(&buf, 0).unwrap();
        assert_eq!(
            (end, checked.offset, checked.value),
            (decoded_end, 42, Some(&b""[..]))
        );
        assert!(checked.headers.is_empty() && decoded.headers.len() == 3);
        // A frame whose header is cut short is refused by both, with the same message.
        let frame_len = u32::from_le_bytes(buf[..4].try_into().unwrap()) as usize;
        let mut short = buf[..4 + frame_len].to_vec();
        short[..4].copy_from_slice(&(frame_len as u32 - 1).to_le_bytes());
        short.pop();
        let (a, b) = (check_record(&short, 0), decode_record(&short, 0));
        assert_eq!(a.unwrap_err().to_string(), b.unwrap_err().to_string());
    }

    #[test]
    fn absurd_lengths_are_errors_not_allocations() {
        let mut buf = Vec::new();
        sample().encode_into(&mut buf);
        // header count field sits right after key (-1) and value (len 0).
        let count_at = 4 + 8 + 8 + 1 + 4 + 4;
        buf[count_at..count_at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        let err = decode_record(&buf, 0).unwrap_err().to_string();
        assert!(err.contains("headers cannot fit"), "{err}");
    }
}
