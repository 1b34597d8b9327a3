//! Object I/O at a location: put (multipart above a size), get, stream, list with sizes,
//! delete one object, and streamed uploads ([`ObjectWriter`]).

use std::sync::Arc;

use bytes::Bytes;
use futures::stream::{self, StreamExt, TryStreamExt};
use object_store::buffered::BufWriter;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use tokio::io::AsyncWriteExt;

use super::layout::datadir_archive_key;
use super::{Location, StoreError};
use crate::archive::{BackupId, Compression};

/// Objects larger than this are uploaded in parts (multipart upload).
pub(super) const MULTIPART_THRESHOLD: usize = 8 * 1024 * 1024;

/// Parts of one streamed object uploading at once: bounds a stream's memory to about
/// this many times `MULTIPART_THRESHOLD`.
const STREAM_PART_CONCURRENCY: usize = 2;

/// One object below a backup's prefix, as listed by the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    /// Key relative to the location root.
    pub(crate) key: String,
    pub(crate) size: u64,
}

/// One listed object with the store's last-modified time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ListedObject {
    pub(crate) key: String,
    pub(crate) size: u64,
    pub(crate) last_modified: std::time::SystemTime,
}

impl Location {
    /// Writes one object; large ones go up as a multipart upload. Atomic: readers see the
    /// whole object or none of it.
    pub async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), StoreError> {
        let put_err = |source| StoreError::Put {
            location: self.display.clone(),
            key: key.to_string(),
            source,
        };
        let path = Path::from(key);
        if bytes.len() <= MULTIPART_THRESHOLD {
            self.store
                .put(&path, Bytes::from(bytes).into())
                .await
                .map_err(put_err)?;
            return Ok(());
        }
        let mut writer =
            BufWriter::with_capacity(Arc::clone(&self.store), path, MULTIPART_THRESHOLD);
        let bytes = Bytes::from(bytes);
        for start in (0..bytes.len()).step_by(MULTIPART_THRESHOLD) {
            let end = (start + MULTIPART_THRESHOLD).min(bytes.len());
            if let Err(source) = writer.put(bytes.slice(start..end)).await {
                let _ = writer.abort().await;
                return Err(put_err(source));
            }
        }
        writer.shutdown().await.map_err(|err| StoreError::Put {
            location: self.display.clone(),
            key: key.to_string(),
            source: object_store::Error::Generic {
                store: "multipart",
                source: Box::new(err),
            },
        })
    }

    /// Starts a streamed upload of a data-dir backup's tar archive (see [`ObjectWriter`]).
    pub fn datadir_archive_writer(&self, id: &BackupId, compression: Compression) -> ObjectWriter {
        let key = datadir_archive_key(id, compression);
        let writer = BufWriter::with_capacity(
            Arc::clone(&self.store),
            Path::from(key.as_str()),
            MULTIPART_THRESHOLD,
        )
        .with_max_concurrency(STREAM_PART_CONCURRENCY);
        ObjectWriter {
            writer,
            key,
            location: self.display.clone(),
        }
    }

    /// A failed read of `key`: `NotFound` when the object is missing, `Get` otherwise.
    pub(super) fn read_error(&self, key: &str, source: object_store::Error) -> StoreError {
        match source {
            object_store::Error::NotFound { .. } => StoreError::NotFound {
                location: self.display.clone(),
                key: key.to_string(),
            },
            source => StoreError::Get {
                location: self.display.clone(),
                key: key.to_string(),
                source,
            },
        }
    }

    pub(crate) async fn get(&self, key: &str) -> Result<Bytes, StoreError> {
        let get_err = |source| self.read_error(key, source);
        let result = self.store.get(&Path::from(key)).await.map_err(get_err)?;
        result.bytes().await.map_err(get_err)
    }

    /// An object the caller knows the size of (a segment the manifest lists): when the
    /// store's metadata gives another size, [`StoreError::WrongSize`] before the body is read,
    /// so a planted or swapped object of any size costs no memory.
    pub(crate) async fn get_sized(&self, key: &str, expected: u64) -> Result<Bytes, StoreError> {
        let get_err = |source| self.read_error(key, source);
        let result = self.store.get(&Path::from(key)).await.map_err(get_err)?;
        if result.meta.size != expected {
            return Err(StoreError::WrongSize {
                location: self.display.clone(),
                key: key.to_string(),
                expected,
                actual: result.meta.size,
            });
        }
        result.bytes().await.map_err(get_err)
    }

    /// Streams an object through `visit` chunk by chunk (no whole-object buffer).
    pub(crate) async fn stream(
        &self,
        key: &str,
        mut visit: impl FnMut(&[u8]),
    ) -> Result<(), StoreError> {
        use futures::StreamExt;
        let get_err = |source| self.read_error(key, source);
        let result = self.store.get(&Path::from(key)).await.map_err(get_err)?;
        let mut chunks = result.into_stream();
        while let Some(chunk) = chunks.next().await {
            visit(&chunk.map_err(get_err)?);
        }
        Ok(())
    }

    /// An object's bytes as a stream of chunks (no whole-object buffer), for readers that
    /// hand them to another task.
    pub(crate) async fn chunks(
        &self,
        key: &str,
    ) -> Result<stream::BoxStream<'static, Result<Bytes, StoreError>>, StoreError> {
        let result = self
            .store
            .get(&Path::from(key))
            .await
            .map_err(|source| self.read_error(key, source))?;
        let this = self.clone();
        let key = key.to_string();
        Ok(result
            .into_stream()
            .map_err(move |source| this.read_error(&key, source))
            .boxed())
    }

    pub(super) async fn list_objects_under(
        &self,
        prefix: &str,
    ) -> Result<Vec<StoredObject>, StoreError> {
        Ok(self
            .list_objects_with_time(prefix)
            .await?
            .into_iter()
            .map(|o| StoredObject {
                key: o.key,
                size: o.size,
            })
            .collect())
    }

    /// Every object below `prefix` with its size and the store's last-modified time, sorted
    /// by key. On a local location symbolic links are listed, never followed.
    pub(crate) async fn list_objects_with_time(
        &self,
        prefix: &str,
    ) -> Result<Vec<ListedObject>, StoreError> {
        if let Some(root) = self.local_root.clone() {
            let prefix = match prefix {
                "" => String::new(),
                p if p.ends_with('/') => p.to_string(),
                p => format!("{p}/"),
            };
            return tokio::task::spawn_blocking(move || {
                super::local::list_no_follow(&root, &prefix)
            })
            .await
            .expect("listing a directory does not panic")
            .map_err(|source| StoreError::List {
                location: self.display.clone(),
                source: object_store::Error::Generic {
                    store: "local",
                    source: Box::new(source),
                },
            });
        }
        let mut objects: Vec<ListedObject> = self
            .store
            .list(Some(&Path::from(prefix)))
            .map_ok(|meta| ListedObject {
                key: logical_key(meta.location.as_ref()),
                size: meta.size,
                last_modified: meta.last_modified.into(),
            })
            .try_collect()
            .await
            .map_err(|source| StoreError::List {
                location: self.display.clone(),
                source,
            })?;
        objects.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(objects)
    }

    /// Deletes a lock object (a stale one, found by [`super::list_locks`]).
    pub async fn delete_lock(&self, key: &str) -> Result<(), StoreError> {
        if !key.starts_with(super::layout::LOCKS_DIR) {
            return Err(StoreError::BadLocation {
                location: self.display.clone(),
                reason: format!("{key} is not a lock object"),
            });
        }
        self.delete_key(key).await
    }

    /// Deletes one object by its key; one that is already gone counts as deleted.
    pub(crate) async fn delete_object(&self, key: &str) -> Result<(), StoreError> {
        self.delete_key(key).await
    }

    /// Deletes one object; one that is already gone counts as deleted.
    pub(super) async fn delete_key(&self, key: &str) -> Result<(), StoreError> {
        match self.store.delete(&Path::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(source) => Err(StoreError::Delete {
                location: self.display.clone(),
                key: key.to_string(),
                source,
            }),
        }
    }
}

/// One object written as a stream of chunks, in bounded memory: small objects become one
/// put, larger ones a multipart upload. Readers see nothing until [`ObjectWriter::finish`]
/// succeeds; [`ObjectWriter::abort`] (call it on every error path) removes uploaded parts.
pub struct ObjectWriter {
    writer: BufWriter,
    key: String,
    location: String,
}

impl ObjectWriter {
    /// The object's key relative to the location root.
    pub fn key(&self) -> &str {
        &self.key
    }

    pub async fn write(&mut self, bytes: Bytes) -> Result<(), StoreError> {
        self.writer
            .put(bytes)
            .await
            .map_err(|source| StoreError::Put {
                location: self.location.clone(),
                key: self.key.clone(),
                source,
            })
    }

    /// Completes the upload: afterwards the object exists, whole.
    pub async fn finish(mut self) -> Result<(), StoreError> {
        if let Err(err) = self.writer.shutdown().await {
            let _ = self.writer.abort().await;
            return Err(StoreError::Put {
                location: self.location.clone(),
                key: self.key.clone(),
                source: object_store::Error::Generic {
                    store: "multipart",
                    source: Box::new(err),
                },
            });
        }
        Ok(())
    }

    /// Abandons the upload; best effort (a store that cannot abort leaves parts for its
    /// own lifecycle rules, never a visible object).
    pub(crate) async fn abort(mut self) {
        let _ = self.writer.abort().await;
    }
}

/// The key kafkasnap names an object by (as `store::layout` builds it, and as manifests
/// hold it), from the key a store lists it under. object_store percent-encodes characters it
/// does not allow in a path segment, `~` among them (`a~2Fb` is stored as `a%7E2Fb`); layout
/// keys never hold `%` (the topic escaping turns it into `~25`), so decoding is exact, and
/// `Path::from` of the result names the listed object again (delete by it, compare it).
pub(super) fn logical_key(stored: &str) -> String {
    percent_encoding::percent_decode_str(stored)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn streamed_objects_appear_only_when_finished() {
        let dir = tempfile::tempdir().unwrap();
        let location = Location::open(dir.path().to_str().unwrap(), true).unwrap();
        let id = BackupId::parse("20261125T145443Z-000001").unwrap();
        let chunk: Vec<u8> = (0..1_000_003).map(|i| (i % 251) as u8).collect();
        let mut writer = location.datadir_archive_writer(&id, Compression::Zstd);
        let key = writer.key().to_string();
        for _ in 0..20 {
            writer.write(Bytes::from(chunk.clone())).await.unwrap();
        }
        writer.finish().await.unwrap();
        let stored = location.get(&key).await.unwrap();
        assert_eq!(stored.len(), chunk.len() * 20);
        assert_eq!(&stored[..chunk.len()], chunk.as_slice());

        let other = BackupId::parse("20261125T145444Z-000002").unwrap();
        let mut writer = location.datadir_archive_writer(&other, Compression::Gzip);
        let key = writer.key().to_string();
        for _ in 0..20 {
            writer.write(Bytes::from(chunk.clone())).await.unwrap();
        }
        writer.abort().await;
        assert!(matches!(
            location.get(&key).await,
            Err(StoreError::NotFound { .. })
        ));
    }

    #[tokio::test]
    async fn keys_the_store_escapes_are_listed_and_deleted_as_the_layout_builds_them() {
        // `~` starts a topic-name escape; object_store stores it as `%7E`.
        let key = "backups/20261125T145443Z-3f9a1c/segments/a~2Fb/0/00000000000000000000.kseg";
        let dir = tempfile::tempdir().unwrap();
        for url in ["memory://", dir.path().to_str().unwrap()] {
            let location = Location::open(url, true).unwrap();
            location.put(key, b"segment".to_vec()).await.unwrap();
            let listed = location
                .list_objects_under("backups/20261125T145443Z-3f9a1c/")
                .await
                .unwrap();
            let keys: Vec<&str> = listed.iter().map(|o| o.key.as_str()).collect();
            assert_eq!(keys, vec![key], "{url}");
            let id = crate::archive::BackupId::parse("20261125T145443Z-3f9a1c").unwrap();
            location.delete_backup(&id).await.unwrap();
            let left = location.list_objects_under("backups/").await.unwrap();
            assert!(left.is_empty(), "{url}: left behind {left:?}");
        }
        assert_eq!(logical_key("a%7E2Fb/%7E25"), "a~2Fb/~25");
    }

    #[tokio::test]
    async fn an_object_of_another_size_than_expected_is_refused_unread() {
        let dir = tempfile::tempdir().unwrap();
        for url in ["memory://", dir.path().to_str().unwrap()] {
            let location = Location::open(url, true).unwrap();
            location.put("backups/x/seg", vec![1; 100]).await.unwrap();
            let fetched = location.get_sized("backups/x/seg", 100).await.unwrap();
            assert_eq!(fetched.len(), 100);
            let refused = location.get_sized("backups/x/seg", 99).await.unwrap_err();
            assert!(
                matches!(
                    refused,
                    StoreError::WrongSize {
                        expected: 99,
                        actual: 100,
                        ..
                    }
                ),
                "{url}: {refused}"
            );
            let missing = location.get_sized("backups/x/none", 1).await.unwrap_err();
            assert!(matches!(missing, StoreError::NotFound { .. }), "{missing}");
        }
    }

    #[tokio::test]
    async fn large_objects_round_trip_through_multipart() {
        let dir = tempfile::tempdir().unwrap();
        let location = Location::open(dir.path().to_str().unwrap(), true).unwrap();
        let big: Vec<u8> = (0..(MULTIPART_THRESHOLD * 2 + 17))
            .map(|i| (i % 253) as u8)
            .collect();
        location.put("backups/x/big", big.clone()).await.unwrap();
        assert_eq!(
            location.get("backups/x/big").await.unwrap().as_ref(),
            big.as_slice()
        );
        let missing = location.get("backups/x/none").await.unwrap_err();
        assert!(matches!(missing, StoreError::NotFound { .. }), "{missing}");
    }
}
