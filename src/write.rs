//! Writing a logical backup's segments, for `backup` and for the data-dir conversion alike:
//! one partition's records cut into segments of about `segment_bytes` raw bytes
//! ([`SegmentCutter`]), and each sealed segment compressed, encrypted when a key is given, and
//! stored under its layout key ([`SegmentWriter`]), giving the manifest's entry for it.

use crate::archive::{
    BackupId, Compression, EncryptionKey, SealedSegment, SegmentBuilder, SegmentRef, StoredSegment,
};
use crate::store::{segment_key, Location};
use crate::Error;

/// Room a segment's buffer has beyond `segment_bytes`, so that the record that fills it
/// rarely makes the buffer grow.
const SEGMENT_SLACK_BYTES: usize = 64 * 1024;

/// Cuts one partition's records into segments. The buffer is allocated with the first record,
/// so a partition that delivers none costs nothing.
#[derive(Debug)]
pub(crate) struct SegmentCutter {
    builder: Option<SegmentBuilder>,
    segment_bytes: usize,
}

impl SegmentCutter {
    pub(crate) fn new(segment_bytes: usize) -> SegmentCutter {
        SegmentCutter {
            builder: None,
            segment_bytes,
        }
    }

    /// Adds a record through `add` (one [`SegmentBuilder::push`]). Returns its framed size in
    /// raw bytes, and the segment it filled.
    pub(crate) fn push(
        &mut self,
        add: impl FnOnce(&mut SegmentBuilder),
    ) -> (usize, Option<SealedSegment>) {
        let capacity = self.segment_bytes + SEGMENT_SLACK_BYTES;
        let builder = self
            .builder
            .get_or_insert_with(|| SegmentBuilder::new(capacity));
        let before = builder.raw_len();
        add(builder);
        let added = builder.raw_len() - before;
        let full = builder.raw_len() >= self.segment_bytes;
        (added, if full { self.finish() } else { None })
    }

    /// Seals what has been added since the last segment (`None` when nothing has).
    pub(crate) fn finish(&mut self) -> Option<SealedSegment> {
        self.builder.take().and_then(SegmentBuilder::seal)
    }
}

/// Stores sealed segments of one backup at a location.
#[derive(Debug, Clone)]
pub(crate) struct SegmentWriter {
    pub(crate) location: Location,
    pub(crate) backup_id: BackupId,
    pub(crate) compression: Compression,
    pub(crate) level: i32,
    pub(crate) encryption_key: Option<EncryptionKey>,
}

impl SegmentWriter {
    /// The CPU-heavy half (call it off the async threads): compresses, and encrypts under the
    /// object's key when the backup is encrypted. Returns the object key and its bytes.
    pub(crate) fn prepare(
        &self,
        topic: &str,
        partition: i32,
        sealed: SealedSegment,
    ) -> Result<(String, StoredSegment), Error> {
        let key = segment_key(
            &self.backup_id,
            topic,
            partition,
            sealed.first_offset,
            self.compression,
        );
        let stored = match &self.encryption_key {
            Some(encryption_key) => {
                sealed.compress_and_encrypt(self.compression, self.level, encryption_key, &key)
            }
            None => sealed.compress(self.compression, self.level),
        }
        .map_err(|source| Error::Archive {
            key: key.clone(),
            source,
        })?;
        Ok((key, stored))
    }

    /// Uploads a prepared segment; returns its manifest entry.
    pub(crate) async fn put(
        &self,
        key: String,
        stored: StoredSegment,
    ) -> Result<SegmentRef, Error> {
        let entry = stored.to_ref(key.clone());
        self.location.put(&key, stored.bytes).await?;
        Ok(entry)
    }

    /// [`prepare`](Self::prepare) on the blocking pool, then [`put`](Self::put).
    pub(crate) async fn store(
        &self,
        topic: String,
        partition: i32,
        sealed: SealedSegment,
    ) -> Result<SegmentRef, Error> {
        let writer = self.clone();
        let (key, stored) =
            tokio::task::spawn_blocking(move || writer.prepare(&topic, partition, sealed))
                .await
                .expect("compression does not panic")?;
        self.put(key, stored).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::TimestampType;

    fn push(cutter: &mut SegmentCutter, offset: i64, value: &[u8]) -> Option<SealedSegment> {
        let (added, sealed) = cutter.push(|segment| {
            segment.push(
                offset,
                1_700_000_000_000,
                TimestampType::CreateTime,
                None,
                Some(value),
                std::iter::empty(),
            )
        });
        assert!(added > value.len(), "a frame holds at least its value");
        sealed
    }

    #[test]
    fn a_segment_is_cut_by_the_record_that_fills_it_and_the_rest_at_finish() {
        let mut cutter = SegmentCutter::new(300);
        let mut sealed = Vec::new();
        for offset in 0..10 {
            sealed.extend(push(&mut cutter, offset, &[7u8; 100]));
        }
        sealed.extend(cutter.finish());
        assert!(cutter.finish().is_none(), "nothing is sealed twice");
        let ranges: Vec<(i64, i64)> = sealed
            .iter()
            .map(|s| (s.first_offset, s.last_offset))
            .collect();
        // Each record frames to about 120 bytes after the 8-byte magic: the third record of
        // a segment takes it past 300.
        assert_eq!(ranges, [(0, 2), (3, 5), (6, 8), (9, 9)]);
        assert!(sealed[..3].iter().all(|s| s.raw.len() >= 300));
        assert_eq!(sealed.iter().map(|s| s.records).sum::<u64>(), 10);
    }

    #[test]
    fn a_partition_without_records_seals_nothing() {
        assert!(SegmentCutter::new(1024).finish().is_none());
    }
}
