//! An order-sensitive hash over a partition's record contents (key, value, headers,
//! timestamp; offsets ignored), used to prove that a live partition holds what a backup holds.

use sha2::{Digest, Sha256};

use super::RecordRef;

/// Feeds records in partition order; two partitions with the same records in the same order
/// give the same digest, whatever their offsets.
#[derive(Debug, Clone, Default)]
pub(crate) struct ContentHasher {
    hasher: Sha256,
    records: u64,
}

impl ContentHasher {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn add(&mut self, record: &RecordRef<'_>) {
        let h = &mut self.hasher;
        h.update(record.timestamp.to_le_bytes());
        update_nullable(h, record.key);
        update_nullable(h, record.value);
        h.update((record.headers.len() as u64).to_le_bytes());
        for header in &record.headers {
            update_nullable(h, Some(header.name));
            update_nullable(h, header.value);
        }
        self.records += 1;
    }

    pub(crate) fn records(&self) -> u64 {
        self.records
    }

    /// The record count and hex digest.
    pub(crate) fn finish(self) -> (u64, String) {
        (self.records, hex::encode(self.hasher.finalize()))
    }
}

/// The digest of one record alone: how a segment entry marks its last record, so an
/// incremental backup can tell whether the cluster still holds that record at that offset.
pub(crate) fn record_digest(record: &RecordRef<'_>) -> String {
    let mut hasher = ContentHasher::new();
    hasher.add(record);
    hasher.finish().1
}

fn update_nullable(hasher: &mut Sha256, bytes: Option<&[u8]>) {
    match bytes {
        None => hasher.update(u64::MAX.to_le_bytes()),
        Some(b) => {
            hasher.update((b.len() as u64).to_le_bytes());
            hasher.update(b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::{HeaderRef, TimestampType};

    fn record(
        offset: i64,
        key: Option<&'static [u8]>,
        value: Option<&'static [u8]>,
    ) -> RecordRef<'static> {
        RecordRef {
            offset,
            timestamp: 5,
            timestamp_type: TimestampType::CreateTime,
            key,
            value,
            headers: vec![],
        }
    }

    fn digest(records: &[RecordRef<'_>]) -> String {
        let mut hasher = ContentHasher::new();
        records.iter().for_each(|r| hasher.add(r));
        hasher.finish().1
    }

    #[test]
    fn offsets_do_not_matter_but_order_null_and_headers_do() {
        let a = record(0, Some(b"k"), Some(b"v"));
        let b = record(1, None, Some(b""));
        assert_eq!(
            digest(&[a.clone(), b.clone()]),
            digest(&[
                record(10, Some(b"k"), Some(b"v")),
                record(11, None, Some(b""))
            ])
        );
        assert_ne!(
            digest(&[a.clone(), b.clone()]),
            digest(&[b.clone(), a.clone()])
        );
        assert_ne!(
            digest(std::slice::from_ref(&b)),
            digest(&[record(1, Some(b""), Some(b""))])
        );
        let mut with_header = a.clone();
        with_header.headers.push(HeaderRef {
            name: b"h",
            value: None,
        });
        let mut with_empty_header = a.clone();
        with_empty_header.headers.push(HeaderRef {
            name: b"h",
            value: Some(b""),
        });
        assert_ne!(digest(&[with_header]), digest(&[with_empty_header]));
    }
}
