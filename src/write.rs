//! Writing a logical backup's segments, for `backup` and for the data-dir conversion alike:
//! one partition's records cut into segments of about `segment_bytes` raw bytes
//! ([`SegmentCutter`]), and each sealed segment compressed, encrypted when a key is given, and
//! stored under its layout key ([`SegmentWriter`]), giving the manifest's entry for it. Raw
//! segment buffers go round between the two ([`SegmentBuffers`]): a buffer is allocated and
//! faulted in once, not once per segment.

use std::sync::{Arc, Mutex};

use crate::archive::{
    BackupId, Compression, EncryptionKey, SealedSegment, SegmentBuilder, SegmentRef, StoredSegment,
};
use crate::store::{segment_key, Location};
use crate::Error;

/// Room a segment's buffer has beyond `segment_bytes`, so that the record that fills it
/// rarely makes the buffer grow.
const SEGMENT_SLACK_BYTES: usize = 64 * 1024;

/// Raw segment buffers that are free to build the next segment in, shared by the cutters
/// (which take them) and the writer (which gives each back once its segment is compressed).
/// Allocating a fresh 16 MiB buffer per segment cost page faults on every 4 KiB of it (a
/// sixteenth of `backup`'s CPU time, measured with perf). At most `keep` buffers wait here; the
/// rest, and any that grew past twice the usual size for one large record, are freed.
#[derive(Debug, Clone)]
pub(crate) struct SegmentBuffers {
    free: Arc<Mutex<Vec<Vec<u8>>>>,
    segment_bytes: usize,
    keep: usize,
}

impl SegmentBuffers {
    /// Buffers for segments of `segment_bytes`, keeping at most `keep` free ones.
    pub(crate) fn new(segment_bytes: usize, keep: usize) -> SegmentBuffers {
        SegmentBuffers {
            free: Arc::new(Mutex::new(Vec::new())),
            segment_bytes,
            keep,
        }
    }

    fn capacity(&self) -> usize {
        self.segment_bytes + SEGMENT_SLACK_BYTES
    }

    fn take(&self) -> Vec<u8> {
        let reused = self.free.lock().expect("buffer pool lock").pop();
        reused.unwrap_or_else(|| Vec::with_capacity(self.capacity()))
    }

    fn give_back(&self, buffer: Vec<u8>) {
        if buffer.capacity() > 2 * self.capacity() {
            return;
        }
        let mut free = self.free.lock().expect("buffer pool lock");
        if free.len() < self.keep {
            free.push(buffer);
        }
    }
}

/// Cuts one partition's records into segments. The buffer is taken with the first record,
/// so a partition that delivers none costs nothing.
#[derive(Debug)]
pub(crate) struct SegmentCutter {
    builder: Option<SegmentBuilder>,
    buffers: SegmentBuffers,
}

impl SegmentCutter {
    pub(crate) fn new(buffers: &SegmentBuffers) -> SegmentCutter {
        SegmentCutter {
            builder: None,
            buffers: buffers.clone(),
        }
    }

    /// Adds a record through `add` (one [`SegmentBuilder::push`]). Returns its framed size in
    /// raw bytes, and the segment it filled.
    pub(crate) fn push(
        &mut self,
        add: impl FnOnce(&mut SegmentBuilder),
    ) -> (usize, Option<SealedSegment>) {
        let buffers = &self.buffers;
        let builder = self
            .builder
            .get_or_insert_with(|| SegmentBuilder::reusing(buffers.take()));
        let before = builder.raw_len();
        add(builder);
        let added = builder.raw_len() - before;
        let full = builder.raw_len() >= self.buffers.segment_bytes;
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
    /// Where compressed segments' raw buffers go back to.
    pub(crate) buffers: SegmentBuffers,
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
        let encryption = self.encryption_key.as_ref().map(|k| (k, key.as_str()));
        let (stored, raw) = sealed
            .into_stored(self.compression, self.level, encryption)
            .map_err(|source| Error::Archive {
                key: key.clone(),
                source,
            })?;
        self.buffers.give_back(raw);
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
        let mut cutter = SegmentCutter::new(&SegmentBuffers::new(300, 1));
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
        assert!(SegmentCutter::new(&SegmentBuffers::new(1024, 1))
            .finish()
            .is_none());
    }

    #[test]
    fn a_given_back_buffer_builds_the_next_segment_and_the_pool_stays_bounded() {
        let buffers = SegmentBuffers::new(1024, 1);
        let mut cutter = SegmentCutter::new(&buffers);
        push(&mut cutter, 0, &[1u8; 10]);
        let (stored, raw) = cutter
            .finish()
            .unwrap()
            .into_stored(Compression::None, 0, None)
            .unwrap();
        assert!(raw.is_empty() && raw.capacity() >= 1024);
        let reused_at = raw.as_ptr();
        buffers.give_back(raw);
        buffers.give_back(Vec::with_capacity(1024));
        assert_eq!(
            buffers.free.lock().unwrap().len(),
            1,
            "keeps at most `keep`"
        );
        buffers.give_back(Vec::with_capacity(10 * 1024 * 1024));
        assert_eq!(
            buffers.free.lock().unwrap().len(),
            1,
            "a grown buffer is freed"
        );
        // The next segment is built in the buffer given back, and holds only its own record.
        push(&mut cutter, 1, &[2u8; 10]);
        let next = cutter.finish().unwrap();
        assert_eq!(next.raw.as_ptr(), reused_at);
        assert_eq!((next.first_offset, next.records), (1, 1));
        assert_eq!(next.raw.len(), stored.raw_bytes as usize);
    }
}
