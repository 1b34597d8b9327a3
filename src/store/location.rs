//! A backup location: the object store behind a URL or path, and the operations the rest of
//! kafkasnap needs from it (put a segment, publish a manifest, read, list, delete a backup).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::stream::{self, StreamExt, TryStreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::buffered::BufWriter;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{BackoffConfig, ObjectStore, ObjectStoreExt, ObjectStoreScheme, RetryConfig};
use tokio::io::AsyncWriteExt;
use url::Url;

use super::layout::{
    backup_prefix, datadir_archive_key, datadir_manifest_key, manifest_key, prefix_under,
    shard_of_part_name, shard_part_key, BACKUPS_DIR, DATADIR_DIR, MANIFEST_NAME,
};
use super::StoreError;
use crate::archive::{BackupId, Compression};
use crate::shard::ShardSpec;

/// Objects larger than this are uploaded in parts (multipart upload).
const MULTIPART_THRESHOLD: usize = 8 * 1024 * 1024;

/// Parts of one streamed object uploading at once: bounds a stream's memory to about
/// this many times `MULTIPART_THRESHOLD`.
const STREAM_PART_CONCURRENCY: usize = 2;

/// Deletes in flight at once when removing a backup's objects.
const DELETE_CONCURRENCY: usize = 16;

/// How a cloud location's client behaves when the store misbehaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOptions {
    /// How long one request is retried (connection errors, 5xx, timeouts of reads) before it
    /// fails the command. Time, not a count, bounds it: object_store's own 10 retries can
    /// be spent in under 2 s, so a blip that short would fail a nightly backup.
    pub retry_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            retry_timeout: Duration::from_secs(180),
        }
    }
}

/// Backoff between retries starts here and never exceeds `MAX_BACKOFF`, so a store that
/// comes back is used again within seconds.
const INIT_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

impl StoreOptions {
    fn retry_config(&self) -> RetryConfig {
        RetryConfig {
            backoff: BackoffConfig {
                init_backoff: INIT_BACKOFF,
                max_backoff: MAX_BACKOFF,
                base: 2.0,
            },
            // Enough retries that the timeout is what ends them (each waits >= INIT_BACKOFF).
            max_retries: (self.retry_timeout.as_millis() / INIT_BACKOFF.as_millis()).max(1)
                as usize,
            retry_timeout: self.retry_timeout,
        }
    }
}

/// An opened backup location. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Location {
    store: Arc<dyn ObjectStore>,
    /// The location as shown to people: no query string, no user info.
    display: String,
    /// The directory of a local location: deleting a backup also removes its directories
    /// (and any staging files of interrupted writes), which object stores do not have.
    local_root: Option<std::path::PathBuf>,
}

/// One object below a backup's prefix, as listed by the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    /// Key relative to the location root.
    pub key: String,
    pub size: u64,
}

/// One backup id found at a location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupListing {
    pub id: BackupId,
    /// False when data objects exist but the manifest was never published (a crashed or
    /// running backup): such a backup does not exist for restore.
    pub complete: bool,
    /// Set when this id holds one shard's part of a sharded run.
    pub shard_part: Option<ShardSpec>,
}

impl Location {
    /// Opens `target`: a plain path, `file://`, `s3://`, `gs://`, `az://` (and the other
    /// Azure forms object_store knows), or `memory://`. Cloud credentials come from the
    /// standard `AWS_*`, `GOOGLE_*` and `AZURE_*` environment variables.
    /// With `create`, a missing local directory is created.
    pub fn open(target: &str, create: bool) -> Result<Location, StoreError> {
        Self::open_with(target, create, &StoreOptions::default())
    }

    /// Whether [`Location::open`] reads `target` as a URL (`file:`, `s3://`, ...) rather than
    /// a local path.
    pub fn is_url(target: &str) -> bool {
        Url::parse(target).is_ok_and(|url| Self::is_url_scheme(&url))
    }

    /// A one-letter scheme is a Windows drive letter, not a URL.
    fn is_url_scheme(url: &Url) -> bool {
        url.scheme().len() > 1
    }

    /// [`Location::open`] with `options` for a cloud store's client.
    pub fn open_with(
        target: &str,
        create: bool,
        options: &StoreOptions,
    ) -> Result<Location, StoreError> {
        let bad = |reason: String| StoreError::BadLocation {
            location: redact(target),
            reason,
        };
        if target.trim().is_empty() {
            return Err(bad(
                "it is empty; give a directory or a URL such as s3://bucket/prefix".into(),
            ));
        }
        let url = match Url::parse(target) {
            Ok(url) if Self::is_url_scheme(&url) => url,
            // No scheme (or a Windows drive letter): a local path.
            _ => return Self::open_local(std::path::Path::new(target), create),
        };
        let display = redact(target);
        let (scheme, prefix) = ObjectStoreScheme::parse(&url).map_err(|_| {
            bad(format!(
                "unknown scheme {:?}; use a path, file://, s3://, gs://, az://, abfss:// or memory://",
                url.scheme()
            ))
        })?;
        let open_err = |source| StoreError::Open {
            location: display.clone(),
            source,
        };
        let store: Arc<dyn ObjectStore> = match scheme {
            ObjectStoreScheme::Local => {
                let path = url
                    .to_file_path()
                    .map_err(|_| bad("not a valid file:// URL".into()))?;
                return Self::open_local(&path, create);
            }
            ObjectStoreScheme::Memory => Arc::new(InMemory::new()),
            ObjectStoreScheme::AmazonS3 => Arc::new(
                AmazonS3Builder::from_env()
                    .with_url(url.as_str())
                    .with_retry(options.retry_config())
                    .build()
                    .map_err(open_err)?,
            ),
            ObjectStoreScheme::GoogleCloudStorage => Arc::new(
                GoogleCloudStorageBuilder::from_env()
                    .with_url(url.as_str())
                    .with_retry(options.retry_config())
                    .build()
                    .map_err(open_err)?,
            ),
            ObjectStoreScheme::MicrosoftAzure => Arc::new(
                MicrosoftAzureBuilder::from_env()
                    .with_url(url.as_str())
                    .with_retry(options.retry_config())
                    .build()
                    .map_err(open_err)?,
            ),
            _ => {
                return Err(bad(format!(
                    "scheme {:?} cannot hold backups",
                    url.scheme()
                )))
            }
        };
        let store: Arc<dyn ObjectStore> = if prefix.as_ref().is_empty() {
            store
        } else {
            Arc::new(PrefixStore::new(store, prefix))
        };
        Ok(Location {
            store,
            display,
            local_root: None,
        })
    }

    fn open_local(path: &std::path::Path, create: bool) -> Result<Location, StoreError> {
        let shown = path.display().to_string();
        if create {
            std::fs::create_dir_all(path).map_err(|source| StoreError::CreateDir {
                path: shown.clone(),
                source,
            })?;
        } else if !path.is_dir() {
            return Err(StoreError::BadLocation {
                location: shown,
                reason: "no such directory; check the path (backups are written with `kafkasnap backup --to`)".into(),
            });
        }
        let absolute = std::fs::canonicalize(path).map_err(|source| StoreError::CreateDir {
            path: shown,
            source,
        })?;
        let store =
            LocalFileSystem::new_with_prefix(&absolute).map_err(|source| StoreError::Open {
                location: absolute.display().to_string(),
                source,
            })?;
        Ok(Location {
            store: Arc::new(store),
            display: absolute.display().to_string(),
            local_root: Some(absolute),
        })
    }

    /// Wraps an existing store (tests, and callers that build their own).
    pub fn from_store(store: Arc<dyn ObjectStore>, display: impl Into<String>) -> Location {
        Location {
            store,
            display: display.into(),
            local_root: None,
        }
    }

    pub fn display(&self) -> &str {
        &self.display
    }

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

    /// Publishes a data-dir backup's manifest: the commit point, written after the archive.
    pub async fn publish_datadir_manifest(
        &self,
        id: &BackupId,
        json: Vec<u8>,
    ) -> Result<(), StoreError> {
        self.put(&datadir_manifest_key(id), json).await
    }

    /// The key of a data-dir backup's manifest; for messages and readers.
    pub fn datadir_manifest_key(&self, id: &BackupId) -> String {
        datadir_manifest_key(id)
    }

    /// A failed read of `key`: `NotFound` when the object is missing, `Get` otherwise.
    fn read_error(&self, key: &str, source: object_store::Error) -> StoreError {
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

    pub async fn get(&self, key: &str) -> Result<Bytes, StoreError> {
        let get_err = |source| self.read_error(key, source);
        let result = self.store.get(&Path::from(key)).await.map_err(get_err)?;
        result.bytes().await.map_err(get_err)
    }

    /// Publishes a backup's manifest: the commit point, written after every data object.
    pub async fn publish_manifest(&self, id: &BackupId, json: Vec<u8>) -> Result<(), StoreError> {
        self.put(&manifest_key(id), json).await
    }

    pub async fn read_manifest(&self, id: &BackupId) -> Result<Bytes, StoreError> {
        self.get(&manifest_key(id)).await
    }

    /// The key a manifest would have; for messages.
    pub fn manifest_key(&self, id: &BackupId) -> String {
        manifest_key(id)
    }

    /// Every backup id at this location, oldest first, with whether its manifest exists.
    pub async fn list_backups(&self) -> Result<Vec<BackupListing>, StoreError> {
        self.list_ids_under(BACKUPS_DIR).await
    }

    /// Every data-dir backup id at this location, oldest first, with whether its manifest exists.
    pub async fn list_datadir_backups(&self) -> Result<Vec<BackupListing>, StoreError> {
        self.list_ids_under(DATADIR_DIR).await
    }

    /// Stores shard `spec`'s part file under its own backup `id` (after its segments).
    pub async fn put_shard_part(
        &self,
        id: &BackupId,
        spec: &ShardSpec,
        json: Vec<u8>,
    ) -> Result<(), StoreError> {
        self.put(&shard_part_key(id, spec), json).await
    }

    /// The part file of shard `spec` stored under backup `id`.
    pub async fn read_shard_part(
        &self,
        id: &BackupId,
        spec: &ShardSpec,
    ) -> Result<Bytes, StoreError> {
        self.get(&shard_part_key(id, spec)).await
    }

    /// A data-dir backup's manifest bytes.
    pub async fn read_datadir_manifest(&self, id: &BackupId) -> Result<Bytes, StoreError> {
        self.get(&datadir_manifest_key(id)).await
    }

    /// Streams an object through `visit` chunk by chunk (no whole-object buffer).
    pub async fn stream(&self, key: &str, mut visit: impl FnMut(&[u8])) -> Result<(), StoreError> {
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
    pub async fn chunks(
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

    /// Ids below `dir/` (`backups` or `datadir`), oldest first, with whether each has a manifest.
    async fn list_ids_under(&self, dir: &str) -> Result<Vec<BackupListing>, StoreError> {
        let list_err = |source| StoreError::List {
            location: self.display.clone(),
            source,
        };
        let listing = self
            .store
            .list_with_delimiter(Some(&Path::from(dir)))
            .await
            .map_err(list_err)?;
        let mut backups = Vec::new();
        for prefix in listing.common_prefixes {
            let Some(id) = prefix.filename().and_then(BackupId::parse) else {
                continue;
            };
            let inside = self
                .store
                .list_with_delimiter(Some(&Path::from(prefix_under(dir, &id))))
                .await
                .map_err(list_err)?;
            let complete = inside
                .objects
                .iter()
                .any(|o| o.location.filename() == Some(MANIFEST_NAME));
            let shard_part = inside
                .objects
                .iter()
                .find_map(|o| o.location.filename().and_then(shard_of_part_name));
            backups.push(BackupListing {
                id,
                complete,
                shard_part,
            });
        }
        backups.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(backups)
    }

    /// Every object below backup `id`'s prefix (manifest included), with its size, sorted
    /// by key.
    pub async fn list_backup_objects(
        &self,
        id: &BackupId,
    ) -> Result<Vec<StoredObject>, StoreError> {
        self.list_objects_under(&backup_prefix(id)).await
    }

    /// Every object of data-dir backup `id` (manifest included), with its size, sorted by key.
    pub async fn list_datadir_objects(
        &self,
        id: &BackupId,
    ) -> Result<Vec<StoredObject>, StoreError> {
        self.list_objects_under(&prefix_under(DATADIR_DIR, id))
            .await
    }

    async fn list_objects_under(&self, prefix: &str) -> Result<Vec<StoredObject>, StoreError> {
        let mut objects: Vec<StoredObject> = self
            .store
            .list(Some(&Path::from(prefix)))
            .map_ok(|meta| StoredObject {
                key: meta.location.to_string(),
                size: meta.size,
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

    /// Deletes backup `id`'s manifest, if it has one: afterwards the backup is unpublished
    /// and no reader uses it. Idempotent.
    pub async fn delete_manifest(&self, id: &BackupId) -> Result<(), StoreError> {
        self.delete_key(&manifest_key(id)).await
    }

    /// Deletes every object of backup `id` and returns what was deleted. The manifest goes
    /// first, so a crash part-way leaves an unpublished leftover (collected by the next
    /// prune), never a manifest that lists missing segments. Idempotent: objects already
    /// gone are not an error. On a local location the backup's directory goes too.
    pub async fn delete_backup(&self, id: &BackupId) -> Result<Vec<StoredObject>, StoreError> {
        self.delete_under(BACKUPS_DIR, id).await
    }

    /// Deletes every object of data-dir backup `id` (manifest first), like [`Self::delete_backup`].
    pub async fn delete_datadir_backup(
        &self,
        id: &BackupId,
    ) -> Result<Vec<StoredObject>, StoreError> {
        self.delete_under(DATADIR_DIR, id).await
    }

    async fn delete_under(
        &self,
        dir: &str,
        id: &BackupId,
    ) -> Result<Vec<StoredObject>, StoreError> {
        let prefix = prefix_under(dir, id);
        let objects = self.list_objects_under(&prefix).await?;
        let manifest = format!("{prefix}{MANIFEST_NAME}");
        if objects.iter().any(|o| o.key == manifest) {
            self.delete_key(&manifest).await?;
        }
        stream::iter(objects.iter().filter(|o| o.key != manifest))
            .map(|object| self.delete_key(&object.key))
            .buffer_unordered(DELETE_CONCURRENCY)
            .try_collect::<()>()
            .await?;
        if let Some(root) = &self.local_root {
            let dir = root.join(&prefix);
            tokio::task::spawn_blocking(move || match std::fs::remove_dir_all(&dir) {
                Ok(()) => Ok(()),
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(source) => Err(StoreError::RemoveDir {
                    path: dir.display().to_string(),
                    source,
                }),
            })
            .await
            .expect("removing a directory does not panic")?;
        }
        Ok(objects)
    }

    /// Deletes one object; one that is already gone counts as deleted.
    async fn delete_key(&self, key: &str) -> Result<(), StoreError> {
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
    pub async fn abort(mut self) {
        let _ = self.writer.abort().await;
    }
}

/// The location as safe to print: user info and query string (SAS tokens, keys) removed.
fn redact(target: &str) -> String {
    match Url::parse(target) {
        Ok(mut url) if url.scheme().len() > 1 => {
            let _ = url.set_username("");
            let _ = url.set_password(None);
            url.set_query(None);
            url.to_string()
        }
        _ => target.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_urls_are_never_shown() {
        let shown = redact("az://user:secret@container/prefix?sig=topsecret");
        assert!(!shown.contains("secret"), "{shown}");
    }

    #[test]
    fn unknown_scheme_is_named() {
        let err = Location::open("ftp://host/dir", false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown scheme \"ftp\""), "{err}");
    }

    #[tokio::test]
    async fn listing_tells_published_from_unpublished() {
        let location = Location::open("memory://", false).unwrap();
        let done = BackupId::parse("20261125T145443Z-000001").unwrap();
        let crashed = BackupId::parse("20261125T145444Z-000002").unwrap();
        location
            .put(&format!("backups/{crashed}/segments/t/0/x.kseg"), vec![1])
            .await
            .unwrap();
        location
            .put(&format!("backups/{done}/segments/t/0/x.kseg"), vec![1])
            .await
            .unwrap();
        location
            .publish_manifest(&done, b"{}".to_vec())
            .await
            .unwrap();
        let listed = location.list_backups().await.unwrap();
        assert_eq!(
            listed,
            vec![
                BackupListing {
                    id: done,
                    complete: true,
                    shard_part: None
                },
                BackupListing {
                    id: crashed,
                    complete: false,
                    shard_part: None
                }
            ]
        );
    }

    #[tokio::test]
    async fn deleting_a_backup_removes_its_objects_only_and_is_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let location = Location::open(dir.path().to_str().unwrap(), true).unwrap();
        let gone = BackupId::parse("20261125T145443Z-000001").unwrap();
        let stays = BackupId::parse("20261125T145444Z-000002").unwrap();
        for id in [&gone, &stays] {
            location
                .put(&format!("backups/{id}/segments/t/0/a.kseg"), vec![1; 10])
                .await
                .unwrap();
            location
                .put(&format!("backups/{id}/segments/u/1/b.kseg"), vec![2; 5])
                .await
                .unwrap();
            location.publish_manifest(id, b"{}".to_vec()).await.unwrap();
        }
        let listed = location.list_backup_objects(&gone).await.unwrap();
        let sizes: Vec<(&str, u64)> = listed.iter().map(|o| (o.key.as_str(), o.size)).collect();
        let manifest = location.manifest_key(&gone);
        let a = format!("backups/{gone}/segments/t/0/a.kseg");
        let b = format!("backups/{gone}/segments/u/1/b.kseg");
        assert_eq!(
            sizes,
            vec![(manifest.as_str(), 2), (a.as_str(), 10), (b.as_str(), 5)]
        );

        let deleted = location.delete_backup(&gone).await.unwrap();
        assert_eq!(deleted, listed);
        assert!(!dir.path().join("backups").join(gone.as_str()).exists());
        assert_eq!(
            location.list_backups().await.unwrap(),
            vec![BackupListing {
                id: stays.clone(),
                complete: true,
                shard_part: None
            }]
        );
        assert_eq!(location.list_backup_objects(&stays).await.unwrap().len(), 3);
        assert!(location.delete_backup(&gone).await.unwrap().is_empty());
        location.delete_manifest(&gone).await.unwrap();
    }

    #[tokio::test]
    async fn deleting_the_manifest_unpublishes_a_backup() {
        let location = Location::open("memory://", false).unwrap();
        let id = BackupId::parse("20261125T145443Z-000001").unwrap();
        location
            .put(&format!("backups/{id}/segments/t/0/a.kseg"), vec![1])
            .await
            .unwrap();
        location
            .publish_manifest(&id, b"{}".to_vec())
            .await
            .unwrap();
        location.delete_manifest(&id).await.unwrap();
        location.delete_manifest(&id).await.unwrap();
        assert_eq!(
            location.list_backups().await.unwrap(),
            vec![BackupListing {
                id: id.clone(),
                complete: false,
                shard_part: None
            }]
        );
        assert_eq!(location.delete_backup(&id).await.unwrap().len(), 1);
        assert!(location.list_backups().await.unwrap().is_empty());
    }

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
