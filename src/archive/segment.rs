//! Record segments: building one from records, sealing and compressing (and optionally
//! encrypting) it, and decoding and checking a stored one against its manifest entry.

use sha2::{Digest, Sha256};

use super::record::{check_record, decode_record, encode_record};
use super::{
    record_digest, ArchiveError, Compression, EncryptionKey, HeaderRef, RecordRef, SegmentRef,
    TimestampType,
};

/// Every segment's raw (decompressed) bytes begin with this; the digit is the frame version.
pub(crate) const SEGMENT_MAGIC: &[u8; 8] = b"KSNAPSG1";

/// Timestamps seen in a run of records (all `None` until a record is seen).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct TimestampRange {
    pub(crate) first: Option<i64>,
    pub(crate) last: Option<i64>,
    pub(crate) min: Option<i64>,
    pub(crate) max: Option<i64>,
}

impl TimestampRange {
    fn observe(&mut self, timestamp: i64) {
        self.first.get_or_insert(timestamp);
        self.last = Some(timestamp);
        if timestamp >= 0 {
            self.min = Some(self.min.map_or(timestamp, |m| m.min(timestamp)));
            self.max = Some(self.max.map_or(timestamp, |m| m.max(timestamp)));
        }
    }
}

/// Accumulates one partition's records into a segment's raw bytes.
#[derive(Debug)]
pub struct SegmentBuilder {
    raw: Vec<u8>,
    records: u64,
    first_offset: i64,
    last_offset: i64,
    /// Where the last record's frame begins in `raw`.
    last_record_at: usize,
    timestamps: TimestampRange,
}

impl SegmentBuilder {
    pub fn new(capacity: usize) -> Self {
        Self::reusing(Vec::with_capacity(capacity.max(SEGMENT_MAGIC.len())))
    }

    /// A builder writing into `raw` (emptied first): a buffer given back by
    /// [`SealedSegment::into_stored`], already faulted in, so filling it costs no page faults.
    pub(crate) fn reusing(mut raw: Vec<u8>) -> Self {
        raw.clear();
        raw.extend_from_slice(SEGMENT_MAGIC);
        SegmentBuilder {
            raw,
            records: 0,
            first_offset: -1,
            last_offset: -1,
            last_record_at: 0,
            timestamps: TimestampRange::default(),
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub fn push<'h>(
        &mut self,
        offset: i64,
        timestamp: i64,
        timestamp_type: TimestampType,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: impl ExactSizeIterator<Item = HeaderRef<'h>> + Clone,
    ) {
        self.last_record_at = self.raw.len();
        encode_record(
            &mut self.raw,
            offset,
            timestamp,
            timestamp_type,
            key,
            value,
            headers,
        );
        if self.records == 0 {
            self.first_offset = offset;
        }
        self.records += 1;
        self.last_offset = offset;
        self.timestamps.observe(timestamp);
    }

    pub fn push_record(&mut self, record: &RecordRef<'_>) {
        let headers = record.headers.iter().copied();
        self.push(
            record.offset,
            record.timestamp,
            record.timestamp_type,
            record.key,
            record.value,
            headers,
        );
    }

    /// Raw bytes so far, magic included.
    pub(crate) fn raw_len(&self) -> usize {
        self.raw.len()
    }

    /// Ends the segment; `None` when it holds no record (empty segments are never stored).
    pub fn seal(self) -> Option<SealedSegment> {
        (self.records > 0).then_some(SealedSegment {
            raw: self.raw,
            records: self.records,
            first_offset: self.first_offset,
            last_offset: self.last_offset,
            last_record_at: self.last_record_at,
            timestamps: self.timestamps,
        })
    }
}

/// A finished segment, not yet compressed.
#[derive(Debug)]
pub struct SealedSegment {
    pub raw: Vec<u8>,
    pub(crate) records: u64,
    pub(crate) first_offset: i64,
    pub(crate) last_offset: i64,
    /// Where the last record's frame begins in `raw`.
    pub(crate) last_record_at: usize,
    pub(crate) timestamps: TimestampRange,
}

impl SealedSegment {
    /// Compresses and checksums the segment (CPU-heavy: call it off the consuming thread).
    pub fn compress(
        self,
        compression: Compression,
        level: i32,
    ) -> Result<StoredSegment, ArchiveError> {
        Ok(self.into_stored(compression, level, None)?.0)
    }

    /// Compresses the segment, encrypts it for storage under `object_key`, and checksums
    /// the encrypted bytes (the writer calls [`into_stored`](Self::into_stored)).
    #[cfg(test)]
    pub(crate) fn compress_and_encrypt(
        self,
        compression: Compression,
        level: i32,
        encryption_key: &EncryptionKey,
        object_key: &str,
    ) -> Result<StoredSegment, ArchiveError> {
        Ok(self
            .into_stored(compression, level, Some((encryption_key, object_key)))?
            .0)
    }

    /// Compresses the segment, encrypts it for storage under the object key when given one,
    /// and checksums the stored bytes (CPU-heavy: call it off the consuming thread). Gives
    /// back the raw buffer too, emptied, so that the next segment can be built in it
    /// ([`SegmentBuilder::reusing`]) instead of in freshly allocated memory.
    pub fn into_stored(
        mut self,
        compression: Compression,
        level: i32,
        encryption: Option<(&EncryptionKey, &str)>,
    ) -> Result<(StoredSegment, Vec<u8>), ArchiveError> {
        let (last_record, _) = decode_record(&self.raw, self.last_record_at)?;
        let last_record_sha256 = record_digest(&last_record);
        let mut bytes = compression.compress(level, &self.raw)?;
        let raw_bytes = self.raw.len() as u64;
        // The raw bytes are not needed past this point: give the buffer back before the upload.
        let mut raw = std::mem::take(&mut self.raw);
        raw.clear();
        if let Some((encryption_key, object_key)) = encryption {
            bytes = encryption_key.encrypt(object_key, &bytes)?;
        }
        let sha256 = hex::encode(Sha256::digest(&bytes));
        let stored = StoredSegment {
            raw_bytes,
            bytes,
            sha256,
            compression,
            last_record_sha256,
            sealed: self,
        };
        Ok((stored, raw))
    }
}

/// A segment's object bytes, ready to upload, with what the manifest must say about them.
#[derive(Debug)]
pub struct StoredSegment {
    pub bytes: Vec<u8>,
    pub(crate) sha256: String,
    pub(crate) raw_bytes: u64,
    pub(crate) compression: Compression,
    last_record_sha256: String,
    sealed: SealedSegment,
}

impl StoredSegment {
    /// The manifest entry for this segment once it is stored under `key`.
    pub fn to_ref(&self, key: String) -> SegmentRef {
        let t = &self.sealed.timestamps;
        SegmentRef {
            key,
            compression: self.compression,
            first_offset: self.sealed.first_offset,
            last_offset: self.sealed.last_offset,
            records: self.sealed.records,
            raw_bytes: self.raw_bytes,
            stored_bytes: self.bytes.len() as u64,
            sha256: self.sha256.clone(),
            first_timestamp: t.first,
            last_timestamp: t.last,
            min_timestamp: t.min,
            max_timestamp: t.max,
            last_record_sha256: Some(self.last_record_sha256.clone()),
        }
    }

    #[cfg(test)]
    pub(crate) fn first_offset(&self) -> i64 {
        self.sealed.first_offset
    }
}

/// Checks a stored object's size and checksum against its manifest entry (no decompression).
pub(crate) fn check_stored(stored: &[u8], entry: &SegmentRef) -> Result<(), ArchiveError> {
    if stored.len() as u64 != entry.stored_bytes {
        return Err(ArchiveError::SizeMismatch {
            expected: entry.stored_bytes,
            actual: stored.len() as u64,
        });
    }
    let actual = hex::encode(Sha256::digest(stored));
    if actual != entry.sha256 {
        return Err(ArchiveError::ChecksumMismatch {
            expected: entry.sha256.clone(),
            actual,
        });
    }
    Ok(())
}

/// A decoded segment's raw bytes; iterate its records with [`SegmentRecords::iter`].
#[derive(Debug)]
pub struct SegmentRecords {
    raw: Vec<u8>,
}

/// Checks `stored` against `entry` (size, sha256), decrypts it with `encryption_key` (for a
/// backup that is encrypted), decompresses it, and checks that its records match the entry
/// (count, first and last offset, offsets strictly increasing).
pub fn decode_segment(
    stored: &[u8],
    entry: &SegmentRef,
    encryption_key: Option<&EncryptionKey>,
) -> Result<SegmentRecords, ArchiveError> {
    decode_segment_into(stored, entry, encryption_key, Vec::new())
}

/// [`decode_segment`] into `spare`, a buffer an earlier segment gave back
/// ([`SegmentRecords::into_buffer`]): decoding one segment after another then reuses memory
/// that is already faulted in instead of allocating (and page-faulting) a fresh one each time.
pub(crate) fn decode_segment_into(
    stored: &[u8],
    entry: &SegmentRef,
    encryption_key: Option<&EncryptionKey>,
    spare: Vec<u8>,
) -> Result<SegmentRecords, ArchiveError> {
    check_stored(stored, entry)?;
    let decrypted = encryption_key
        .map(|key| key.decrypt(&entry.key, stored))
        .transpose()?;
    let compressed = decrypted.as_deref().unwrap_or(stored);
    let raw = entry
        .compression
        .decompress_into(compressed, entry.raw_bytes, spare)?;
    drop(decrypted);
    if raw.get(..SEGMENT_MAGIC.len()) != Some(SEGMENT_MAGIC.as_slice()) {
        return Err(ArchiveError::CorruptSegment {
            position: 0,
            what: "missing KSNAPSG1 magic".into(),
        });
    }
    let segment = SegmentRecords { raw };
    let mut count = 0u64;
    let mut previous: Option<i64> = None;
    let mut pos = SEGMENT_MAGIC.len();
    let mut last_record_at = pos;
    while pos < segment.raw.len() {
        let (record, next) = check_record(&segment.raw, pos)?;
        last_record_at = pos;
        pos = next;
        if let Some(prev) = previous.filter(|prev| record.offset <= *prev) {
            return Err(ArchiveError::CorruptSegment {
                position: 0,
                what: format!(
                    "offset {} follows offset {prev}: offsets must increase",
                    record.offset
                ),
            });
        }
        if count == 0 && record.offset != entry.first_offset {
            return Err(mismatch(format!(
                "first offset is {} but the manifest says {}",
                record.offset, entry.first_offset
            )));
        }
        previous = Some(record.offset);
        count += 1;
    }
    if count != entry.records {
        return Err(mismatch(format!(
            "holds {count} records but the manifest says {}",
            entry.records
        )));
    }
    if previous != Some(entry.last_offset) {
        let found = previous.map_or("missing (no records)".to_string(), |p| p.to_string());
        return Err(mismatch(format!(
            "last offset is {found} but the manifest says {}",
            entry.last_offset
        )));
    }
    if let Some(expected) = &entry.last_record_sha256 {
        let (last, _) = decode_record(&segment.raw, last_record_at)?;
        if record_digest(&last) != *expected {
            return Err(mismatch(format!(
                "the record at offset {} does not match the manifest's digest of it",
                entry.last_offset
            )));
        }
    }
    Ok(segment)
}

fn mismatch(what: String) -> ArchiveError {
    ArchiveError::CorruptSegment { position: 0, what }
}

impl SegmentRecords {
    /// The decoded bytes' buffer, emptied, for [`decode_segment_into`] to decode the next
    /// segment into.
    pub fn into_buffer(self) -> Vec<u8> {
        let mut raw = self.raw;
        raw.clear();
        raw
    }

    pub fn iter(&self) -> impl Iterator<Item = Result<RecordRef<'_>, ArchiveError>> + '_ {
        let mut pos = SEGMENT_MAGIC.len();
        let mut failed = false;
        std::iter::from_fn(move || {
            if failed || pos >= self.raw.len() {
                return None;
            }
            match decode_record(&self.raw, pos) {
                Ok((record, next)) => {
                    pos = next;
                    Some(Ok(record))
                }
                Err(err) => {
                    failed = true;
                    Some(Err(err))
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(offsets: &[i64]) -> SealedSegment {
        let mut builder = SegmentBuilder::new(1024);
        for &offset in offsets {
            let record = RecordRef {
                offset,
                timestamp: 1_000 + offset,
                timestamp_type: TimestampType::CreateTime,
                key: Some(b"k"),
                value: if offset % 2 == 0 { None } else { Some(b"v") },
                headers: vec![],
            };
            builder.push_record(&record);
        }
        builder.seal().unwrap()
    }

    #[test]
    fn segment_with_gaps_round_trips_for_each_codec() {
        for codec in [Compression::Zstd, Compression::Gzip, Compression::None] {
            let stored = build(&[3, 4, 9, 100])
                .compress(codec, codec.default_level())
                .unwrap();
            let entry = stored.to_ref("k".into());
            assert_eq!(
                (entry.first_offset, entry.last_offset, entry.records),
                (3, 100, 4)
            );
            assert_eq!(
                (entry.min_timestamp, entry.max_timestamp),
                (Some(1003), Some(1100))
            );
            let decoded = decode_segment(&stored.bytes, &entry, None).unwrap();
            let offsets: Vec<i64> = decoded.iter().map(|r| r.unwrap().offset).collect();
            assert_eq!(offsets, vec![3, 4, 9, 100]);
        }
    }

    #[test]
    fn a_flipped_byte_fails_the_checksum() {
        let stored = build(&[0, 1, 2]).compress(Compression::Zstd, 3).unwrap();
        let entry = stored.to_ref("k".into());
        let mut bytes = stored.bytes.clone();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x01;
        assert!(matches!(
            decode_segment(&bytes, &entry, None),
            Err(ArchiveError::ChecksumMismatch { .. })
        ));
        assert!(matches!(
            decode_segment(&bytes[1..], &entry, None),
            Err(ArchiveError::SizeMismatch { .. })
        ));
    }

    #[test]
    fn manifest_disagreeing_with_contents_is_reported() {
        let stored = build(&[0, 1, 2]).compress(Compression::None, 0).unwrap();
        let mut entry = stored.to_ref("k".into());
        entry.records = 4;
        let err = decode_segment(&stored.bytes, &entry, None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("holds 3 records"), "{err}");
    }

    #[test]
    fn the_last_record_digest_is_recorded_and_checked() {
        let stored = build(&[0, 1, 2]).compress(Compression::None, 0).unwrap();
        let mut entry = stored.to_ref("k".into());
        let last = RecordRef {
            offset: 2,
            timestamp: 1_002,
            timestamp_type: TimestampType::CreateTime,
            key: Some(b"k"),
            value: None,
            headers: vec![],
        };
        assert_eq!(entry.last_record_sha256, Some(record_digest(&last)));
        decode_segment(&stored.bytes, &entry, None).unwrap();
        entry.last_record_sha256 = Some(record_digest(&RecordRef {
            value: Some(b"other"),
            ..last
        }));
        let err = decode_segment(&stored.bytes, &entry, None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("does not match the manifest's digest"),
            "{err}"
        );
    }

    fn test_key() -> EncryptionKey {
        EncryptionKey::parse(&[0xa5; 32]).unwrap()
    }

    #[test]
    fn encrypted_segments_round_trip_and_checksum_the_stored_bytes() {
        for codec in [Compression::Zstd, Compression::Gzip, Compression::None] {
            let key = "backups/x/segments/t/0/00000000000000000003.kseg";
            let stored = build(&[3, 4, 9, 100])
                .compress_and_encrypt(codec, codec.default_level(), &test_key(), key)
                .unwrap();
            assert_eq!(&stored.bytes[..8], b"KSNAPEN2", "{codec}");
            let entry = stored.to_ref(key.into());
            assert_eq!(entry.sha256, hex::encode(Sha256::digest(&stored.bytes)));
            check_stored(&stored.bytes, &entry).unwrap();
            let decoded = decode_segment(&stored.bytes, &entry, Some(&test_key())).unwrap();
            let offsets: Vec<i64> = decoded.iter().map(|r| r.unwrap().offset).collect();
            assert_eq!(offsets, vec![3, 4, 9, 100], "{codec}");
            // A reader that ignores the manifest's `encryption` fails, never yields records.
            assert!(
                decode_segment(&stored.bytes, &entry, None).is_err(),
                "{codec} decoded without its key"
            );
        }
    }

    #[test]
    fn encrypted_segments_refuse_tampering_and_another_object_key() {
        let key = "backups/x/segments/t/0/00000000000000000000.kseg.zst";
        let stored = build(&[0, 1, 2])
            .compress_and_encrypt(Compression::Zstd, 3, &test_key(), key)
            .unwrap();
        // Tampered, with the manifest's checksum updated to match: the tag still catches it.
        let mut bytes = stored.bytes.clone();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x01;
        let mut entry = stored.to_ref(key.into());
        entry.sha256 = hex::encode(Sha256::digest(&bytes));
        assert!(matches!(
            decode_segment(&bytes, &entry, Some(&test_key())),
            Err(ArchiveError::DecryptionFailed)
        ));
        // The same object listed under another key (a swapped segment) does not decrypt.
        let moved = stored.to_ref(key.replace("/t/0/", "/t/1/"));
        assert!(matches!(
            decode_segment(&stored.bytes, &moved, Some(&test_key())),
            Err(ArchiveError::DecryptionFailed)
        ));
    }

    #[test]
    fn empty_builder_seals_to_nothing() {
        assert!(SegmentBuilder::new(0).seal().is_none());
    }
}
