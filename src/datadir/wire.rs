//! Byte-level reading shared by the parsers: big-endian integers, Kafka's zigzag varints and
//! unsigned varints, length-prefixed byte strings, from any stream, counting bytes read.
//!
//! Lengths read from the data never size an allocation up front: byte strings grow only as
//! bytes actually arrive, so a length a header merely claims cannot exhaust memory. When the
//! reader knows where the data (or the structure being read) ends, a length or a count that
//! cannot fit in the bytes left is refused before anything is read for it.

use std::io::{self, Read};

/// Why bytes could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("data ends after {at} bytes, in the middle of {what}")]
    Eof { at: u64, what: &'static str },
    #[error("invalid {what} at byte {at}: {detail}")]
    Invalid {
        at: u64,
        what: &'static str,
        detail: String,
    },
    #[error("cannot read {what} at byte {at}: {source}")]
    Io {
        at: u64,
        what: &'static str,
        #[source]
        source: io::Error,
    },
}

/// A stream of Kafka-encoded fields.
pub(crate) struct WireReader<R> {
    inner: R,
    position: u64,
    /// Where the data, or the structure being read (see [`WireReader::limit_to`]), ends,
    /// when that is known.
    end: Option<u64>,
}

impl<'a> WireReader<&'a [u8]> {
    /// Fields of a byte slice: lengths and counts are checked against the bytes it holds.
    pub(crate) fn over(bytes: &'a [u8]) -> Self {
        WireReader::with_len(bytes, bytes.len() as u64)
    }
}

impl<R: Read> WireReader<R> {
    /// Fields of a stream of unknown length (a decompressing reader): lengths are checked
    /// only inside a structure with a declared length ([`WireReader::limit_to`]).
    pub(crate) fn new(inner: R) -> Self {
        WireReader {
            inner,
            position: 0,
            end: None,
        }
    }

    /// Fields of a stream known to hold exactly `len` bytes: lengths and counts are checked
    /// against the bytes left.
    pub(crate) fn with_len(inner: R, len: u64) -> Self {
        WireReader {
            inner,
            position: 0,
            end: Some(len),
        }
    }

    /// Bytes consumed so far.
    pub(crate) fn position(&self) -> u64 {
        self.position
    }

    /// Bytes left before the known end, if there is one.
    fn left(&self) -> Option<u64> {
        self.end.map(|end| end.saturating_sub(self.position))
    }

    /// Declares that the next `len` bytes hold one structure (a record after its length):
    /// until [`WireReader::unlimit`] with the returned value, lengths and counts are checked
    /// against what is left of it. Refuses a `len` longer than the data left.
    pub(crate) fn limit_to(
        &mut self,
        len: u64,
        what: &'static str,
    ) -> Result<Option<u64>, WireError> {
        if let Some(left) = self.left() {
            if len > left {
                return Err(self.invalid(
                    what,
                    format!("{len} bytes declared, only {left} left in the data"),
                ));
            }
        }
        Ok(self.end.replace(self.position.saturating_add(len)))
    }

    /// Ends a [`WireReader::limit_to`], restoring the end it returned.
    pub(crate) fn unlimit(&mut self, outer: Option<u64>) {
        self.end = outer;
    }

    /// Refuses `count` items of at least `min_each` bytes when they cannot fit in the bytes
    /// left, before any of them is read.
    pub(crate) fn check_count(
        &self,
        count: u64,
        min_each: u64,
        what: &'static str,
    ) -> Result<(), WireError> {
        match self.left() {
            Some(left) if count.saturating_mul(min_each) > left => Err(self.invalid(
                what,
                format!(
                    "{count} entries of at least {min_each} bytes each cannot fit in the {left} bytes left"
                ),
            )),
            _ => Ok(()),
        }
    }

    pub(crate) fn invalid(&self, what: &'static str, detail: impl Into<String>) -> WireError {
        WireError::Invalid {
            at: self.position,
            what,
            detail: detail.into(),
        }
    }

    fn fill(&mut self, buf: &mut [u8], what: &'static str) -> Result<(), WireError> {
        match self.inner.read_exact(buf) {
            Ok(()) => {
                self.position += buf.len() as u64;
                Ok(())
            }
            Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => Err(WireError::Eof {
                at: self.position,
                what,
            }),
            Err(source) => Err(WireError::Io {
                at: self.position,
                what,
                source,
            }),
        }
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], WireError> {
        let mut buf = [0u8; N];
        self.fill(&mut buf, what)?;
        Ok(buf)
    }

    pub(crate) fn i8(&mut self, what: &'static str) -> Result<i8, WireError> {
        Ok(i8::from_be_bytes(self.array(what)?))
    }

    pub(crate) fn i16(&mut self, what: &'static str) -> Result<i16, WireError> {
        Ok(i16::from_be_bytes(self.array(what)?))
    }

    pub(crate) fn i32(&mut self, what: &'static str) -> Result<i32, WireError> {
        Ok(i32::from_be_bytes(self.array(what)?))
    }

    pub(crate) fn i64(&mut self, what: &'static str) -> Result<i64, WireError> {
        Ok(i64::from_be_bytes(self.array(what)?))
    }

    pub(crate) fn uuid(&mut self, what: &'static str) -> Result<[u8; 16], WireError> {
        self.array(what)
    }

    /// An unsigned LEB128 varint of at most `max_bytes` bytes.
    fn unsigned(&mut self, max_bytes: u32, what: &'static str) -> Result<u64, WireError> {
        let mut value: u64 = 0;
        for i in 0..max_bytes {
            let [byte] = self.array::<1>(what)?;
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(self.invalid(what, format!("varint longer than {max_bytes} bytes")))
    }

    /// Kafka's `unsigned varint` (compact lengths, tagged fields).
    pub(crate) fn uvarint(&mut self, what: &'static str) -> Result<u32, WireError> {
        let value = self.unsigned(5, what)?;
        u32::try_from(value).map_err(|_| self.invalid(what, "unsigned varint exceeds 32 bits"))
    }

    /// Kafka's `varint`: zigzag-encoded signed 32-bit.
    pub(crate) fn varint(&mut self, what: &'static str) -> Result<i32, WireError> {
        let raw = self.unsigned(5, what)?;
        let raw = u32::try_from(raw).map_err(|_| self.invalid(what, "varint exceeds 32 bits"))?;
        Ok(zigzag32(raw))
    }

    /// Kafka's `varlong`: zigzag-encoded signed 64-bit.
    pub(crate) fn varlong(&mut self, what: &'static str) -> Result<i64, WireError> {
        Ok(zigzag64(self.unsigned(10, what)?))
    }

    /// Refuses a length past the known end, before any byte of it is read.
    fn check_len(&self, len: u64, what: &'static str) -> Result<(), WireError> {
        match self.left() {
            Some(left) if len > left => {
                Err(self.invalid(what, format!("{len} bytes claimed, only {left} left")))
            }
            _ => Ok(()),
        }
    }

    /// Exactly `len` bytes; the buffer grows only as bytes arrive, and a `len` past the known
    /// end is refused before any is read.
    pub(crate) fn bytes(&mut self, len: u64, what: &'static str) -> Result<Vec<u8>, WireError> {
        self.check_len(len, what)?;
        let mut out = Vec::with_capacity(len.min(64 * 1024) as usize);
        let read = (&mut self.inner)
            .take(len)
            .read_to_end(&mut out)
            .map_err(|source| WireError::Io {
                at: self.position,
                what,
                source,
            })?;
        self.position += read as u64;
        if (read as u64) < len {
            return Err(WireError::Eof {
                at: self.position,
                what,
            });
        }
        Ok(out)
    }

    /// Skips exactly `len` bytes.
    pub(crate) fn skip(&mut self, len: u64, what: &'static str) -> Result<(), WireError> {
        self.check_len(len, what)?;
        let skipped =
            io::copy(&mut (&mut self.inner).take(len), &mut io::sink()).map_err(|source| {
                WireError::Io {
                    at: self.position,
                    what,
                    source,
                }
            })?;
        self.position += skipped;
        if skipped < len {
            return Err(WireError::Eof {
                at: self.position,
                what,
            });
        }
        Ok(())
    }

    /// Bytes with a zigzag varint length; -1 is null.
    pub(crate) fn varint_bytes(
        &mut self,
        what: &'static str,
    ) -> Result<Option<Vec<u8>>, WireError> {
        match self.varint(what)? {
            -1 => Ok(None),
            len if len < 0 => Err(self.invalid(what, format!("negative length {len}"))),
            len => self.bytes(len as u64, what).map(Some),
        }
    }

    /// A string with an int16 length (classic, non-flexible encoding); -1 is null.
    pub(crate) fn string16(&mut self, what: &'static str) -> Result<Option<String>, WireError> {
        match self.i16(what)? {
            -1 => Ok(None),
            len if len < 0 => Err(self.invalid(what, format!("negative length {len}"))),
            len => {
                let bytes = self.bytes(len as u64, what)?;
                self.utf8(bytes, what).map(Some)
            }
        }
    }

    /// A compact (flexible-version) string: unsigned varint length + 1; 0 is null.
    pub(crate) fn compact_string(
        &mut self,
        what: &'static str,
    ) -> Result<Option<String>, WireError> {
        match self.uvarint(what)? {
            0 => Ok(None),
            len => {
                let bytes = self.bytes(u64::from(len) - 1, what)?;
                self.utf8(bytes, what).map(Some)
            }
        }
    }

    /// A compact array of int32: unsigned varint length + 1; 0 is null (read as empty).
    pub(crate) fn compact_i32_array(&mut self, what: &'static str) -> Result<Vec<i32>, WireError> {
        let len = self.uvarint(what)?.saturating_sub(1);
        self.check_count(u64::from(len), 4, what)?;
        let mut out = Vec::new();
        for _ in 0..len {
            out.push(self.i32(what)?);
        }
        Ok(out)
    }

    /// The tagged-field section that ends every flexible-version structure: skipped.
    pub(crate) fn skip_tagged_fields(&mut self) -> Result<(), WireError> {
        let count = self.uvarint("tagged field count")?;
        // A tag and a size, one byte each at least.
        self.check_count(u64::from(count), 2, "tagged field count")?;
        for _ in 0..count {
            self.uvarint("tagged field tag")?;
            let size = self.uvarint("tagged field size")?;
            self.skip(u64::from(size), "tagged field")?;
        }
        Ok(())
    }

    /// True when the stream has no more bytes.
    pub(crate) fn at_end(&mut self) -> Result<bool, WireError> {
        let mut probe = [0u8; 1];
        loop {
            match self.inner.read(&mut probe) {
                Ok(0) => return Ok(true),
                Ok(_) => return Ok(false),
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(WireError::Io {
                        at: self.position,
                        what: "end of data",
                        source,
                    })
                }
            }
        }
    }

    fn utf8(&self, bytes: Vec<u8>, what: &'static str) -> Result<String, WireError> {
        String::from_utf8(bytes).map_err(|_| self.invalid(what, "not valid UTF-8"))
    }
}

pub(crate) fn zigzag32(raw: u32) -> i32 {
    ((raw >> 1) as i32) ^ -((raw & 1) as i32)
}

pub(crate) fn zigzag64(raw: u64) -> i64 {
    ((raw >> 1) as i64) ^ -((raw & 1) as i64)
}

/// Reads until `buf` is full or the stream ends; returns how many bytes were read.
pub(crate) fn read_up_to(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(bytes: &[u8]) -> WireReader<&[u8]> {
        WireReader::new(bytes)
    }

    #[test]
    fn zigzag_varints_decode() {
        // Examples from Kafka's ByteUtils tests and the protobuf spec.
        assert_eq!(reader(&[0x00]).varint("v").unwrap(), 0);
        assert_eq!(reader(&[0x01]).varint("v").unwrap(), -1);
        assert_eq!(reader(&[0x02]).varint("v").unwrap(), 1);
        assert_eq!(reader(&[0x03]).varint("v").unwrap(), -2);
        assert_eq!(reader(&[0xac, 0x02]).varint("v").unwrap(), 150);
        assert_eq!(
            reader(&[0xfe, 0xff, 0xff, 0xff, 0x0f]).varint("v").unwrap(),
            i32::MAX
        );
        assert_eq!(
            reader(&[0xff, 0xff, 0xff, 0xff, 0x0f]).varint("v").unwrap(),
            i32::MIN
        );
        let max = [0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert_eq!(reader(&max).varlong("v").unwrap(), i64::MAX);
        let min = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert_eq!(reader(&min).varlong("v").unwrap(), i64::MIN);
    }

    #[test]
    fn unsigned_varints_decode() {
        assert_eq!(reader(&[0x7f]).uvarint("u").unwrap(), 127);
        assert_eq!(reader(&[0x80, 0x01]).uvarint("u").unwrap(), 128);
        assert_eq!(
            reader(&[0xff, 0xff, 0xff, 0xff, 0x0f])
                .uvarint("u")
                .unwrap(),
            u32::MAX
        );
    }

    #[test]
    fn overlong_and_cut_varints_are_errors() {
        let overlong = [0x80, 0x80, 0x80, 0x80, 0x80, 0x01];
        assert!(matches!(
            reader(&overlong).varint("v"),
            Err(WireError::Invalid { .. })
        ));
        assert!(matches!(
            reader(&[0x80]).varint("v"),
            Err(WireError::Eof { at: 1, .. })
        ));
    }

    #[test]
    fn claimed_lengths_beyond_the_data_fail_without_allocating_them() {
        // A varint length of 2^30 with 3 bytes behind it.
        let mut r = reader(&[0x80, 0x80, 0x80, 0x80, 0x08, 1, 2, 3]);
        let err = r.varint_bytes("value").unwrap_err();
        assert!(matches!(err, WireError::Eof { at: 8, .. }), "{err}");
    }

    #[test]
    fn strings_and_arrays() {
        let mut r = reader(&[
            0, 2, b'h', b'i', 0xff, 0xff, 3, b'a', b'b', 0, 3, 0, 0, 0, 1, 0, 0, 0, 2, 0,
        ]);
        assert_eq!(r.string16("s").unwrap().as_deref(), Some("hi"));
        assert_eq!(r.string16("s").unwrap(), None);
        assert_eq!(r.compact_string("c").unwrap().as_deref(), Some("ab"));
        assert_eq!(r.compact_string("c").unwrap(), None);
        assert_eq!(r.compact_i32_array("a").unwrap(), vec![1, 2]);
        r.skip_tagged_fields().unwrap();
        assert!(r.at_end().unwrap());
    }

    #[test]
    fn over_a_slice_counts_and_lengths_that_cannot_fit_are_refused_before_reading() {
        // A compact int32 array claiming 2^28 - 1 entries with 8 bytes behind it.
        let mut r = WireReader::over(&[0x80, 0x80, 0x80, 0x80, 0x01, 0, 0, 0, 1, 0, 0, 0, 2]);
        let err = r.compact_i32_array("replicas").unwrap_err();
        assert!(
            matches!(&err, WireError::Invalid { at: 5, detail, .. } if detail.contains("cannot fit in the 8 bytes left")),
            "{err}"
        );
        // A tagged-field count of 1000 with 3 bytes behind it.
        let mut r = WireReader::over(&[0xe8, 0x07, 0, 0, 0]);
        assert!(matches!(
            r.skip_tagged_fields(),
            Err(WireError::Invalid { at: 2, .. })
        ));
        // A varint length of 2^30 with 3 bytes behind it: refused, not read.
        let mut r = WireReader::over(&[0x80, 0x80, 0x80, 0x80, 0x08, 1, 2, 3]);
        let err = r.varint_bytes("value").unwrap_err();
        assert!(matches!(err, WireError::Invalid { at: 5, .. }), "{err}");
    }

    #[test]
    fn a_limit_bounds_lengths_inside_a_structure_and_is_lifted_after_it() {
        let data = [3, b'a', b'b', b'c', 0x06, b'x', b'y', b'z'];
        let mut r = reader(&data);
        let outer = r.limit_to(2, "record").unwrap();
        let err = r.bytes(3, "key").unwrap_err();
        assert!(
            matches!(&err, WireError::Invalid { detail, .. } if detail.contains("3 bytes claimed, only 2 left")),
            "{err}"
        );
        r.unlimit(outer);
        assert_eq!(r.bytes(3, "key").unwrap(), b"\x03ab");
        let mut r = WireReader::over(&data);
        assert!(r.limit_to(9, "record").is_err());
        let outer = r.limit_to(8, "record").unwrap();
        assert_eq!(outer, Some(8));
    }
}
