//! Backups at a location: listing ids (published or not), publishing manifests (the commit
//! point), reading them, and deleting whole backups in a safe order.

use std::collections::{HashMap, HashSet};
use std::time::SystemTime;

use bytes::Bytes;
use futures::stream::{self, StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutMode};

use super::layout::{
    backup_of_key, backup_prefix, datadir_manifest_key, datadir_manifest_seal_key, manifest_key,
    manifest_seal_key, prefix_under, shard_of_part_name, shard_part_key, shard_part_seal_key,
    BACKUPS_DIR, DATADIR_DIR, MANIFEST_NAME,
};
use super::{Location, StoreError, StoredObject};
use crate::archive::BackupId;
use crate::archive::ShardSpec;

/// Deletes in flight at once when removing a backup's objects.
const DELETE_CONCURRENCY: usize = 16;

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
    /// Publishes a data-dir backup's manifest: the commit point, written after the archive.
    pub async fn publish_datadir_manifest(
        &self,
        id: &BackupId,
        json: Vec<u8>,
    ) -> Result<(), StoreError> {
        self.put_new(&datadir_manifest_key(id), json).await
    }

    /// The key of a data-dir backup's manifest; for messages and readers.
    pub fn datadir_manifest_key(&self, id: &BackupId) -> String {
        datadir_manifest_key(id)
    }

    /// Publishes a backup's manifest: the commit point, written after every data object.
    pub async fn publish_manifest(&self, id: &BackupId, json: Vec<u8>) -> Result<(), StoreError> {
        self.put_new(&manifest_key(id), json).await
    }

    /// Writes a manifest that must not exist yet (see [`Self::create_or_existing`]). The
    /// same bytes already there are fine (shards that finish together publish identical
    /// merged manifests); other bytes are refused, never overwritten.
    async fn put_new(&self, key: &str, json: Vec<u8>) -> Result<(), StoreError> {
        let payload = Bytes::from(json);
        match self.create_or_existing(key, payload.clone()).await? {
            Some(existing) if existing != payload => Err(StoreError::AlreadyPublished {
                location: self.display.clone(),
                key: key.to_string(),
            }),
            _ => Ok(()),
        }
    }

    /// Creates `key` with `payload` unless it exists: a conditional create where the store
    /// has one (local, memory, GCS, Azure; S3 when configured for it), else a look first.
    /// Returns `None` when it was created, or the bytes of the object already there (never
    /// overwritten).
    async fn create_or_existing(
        &self,
        key: &str,
        payload: Bytes,
    ) -> Result<Option<Bytes>, StoreError> {
        let path = Path::from(key);
        let created = self
            .store
            .put_opts(&path, payload.clone().into(), PutMode::Create.into())
            .await;
        match created {
            Ok(_) => Ok(None),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(Some(self.get(key).await?)),
            Err(object_store::Error::NotImplemented { .. }) => match self.store.head(&path).await {
                Ok(_) => Ok(Some(self.get(key).await?)),
                Err(object_store::Error::NotFound { .. }) => {
                    self.put(key, payload.to_vec()).await?;
                    Ok(None)
                }
                Err(source) => Err(self.read_error(key, source)),
            },
            Err(source) => Err(StoreError::Put {
                location: self.display.clone(),
                key: key.to_string(),
                source,
            }),
        }
    }

    pub(crate) async fn read_manifest(&self, id: &BackupId) -> Result<Bytes, StoreError> {
        self.get(&manifest_key(id)).await
    }

    /// Creates an encrypted backup's manifest seal, just before the manifest is published.
    /// Never overwrites: when a seal is already there (shards that merge together, or a
    /// merge run again), nothing is written and that seal's bytes are returned, for the
    /// caller to check against its manifest.
    pub(crate) async fn create_manifest_seal(
        &self,
        id: &BackupId,
        seal: Vec<u8>,
    ) -> Result<Option<Bytes>, StoreError> {
        self.create_or_existing(&manifest_seal_key(id), Bytes::from(seal))
            .await
    }

    /// The object at `key`; `None` when there is none.
    async fn get_if_exists(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        match self.get(key).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(StoreError::NotFound { .. }) => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// An encrypted backup's manifest seal; `None` when there is none.
    pub(crate) async fn read_manifest_seal(
        &self,
        id: &BackupId,
    ) -> Result<Option<Bytes>, StoreError> {
        self.get_if_exists(&manifest_seal_key(id)).await
    }

    /// The key a manifest would have; for messages.
    pub(crate) fn manifest_key(&self, id: &BackupId) -> String {
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

    /// Stores shard `spec`'s part file under its own backup `id` (after its segments), and
    /// first its `seal` (encrypted runs), so a part that is listed has its seal.
    pub(crate) async fn put_shard_part(
        &self,
        id: &BackupId,
        spec: &ShardSpec,
        json: Vec<u8>,
        seal: Option<Vec<u8>>,
    ) -> Result<(), StoreError> {
        if let Some(seal) = seal {
            self.put(&shard_part_seal_key(id, spec), seal).await?;
        }
        self.put(&shard_part_key(id, spec), json).await
    }

    /// The part file of shard `spec` stored under backup `id`, and its seal (`None` when
    /// there is none).
    pub(crate) async fn read_shard_part(
        &self,
        id: &BackupId,
        spec: &ShardSpec,
    ) -> Result<(Bytes, Option<Bytes>), StoreError> {
        let part = self.get(&shard_part_key(id, spec)).await?;
        let seal = self.get_if_exists(&shard_part_seal_key(id, spec)).await?;
        Ok((part, seal))
    }

    /// A data-dir backup's manifest bytes.
    pub async fn read_datadir_manifest(&self, id: &BackupId) -> Result<Bytes, StoreError> {
        self.get(&datadir_manifest_key(id)).await
    }

    /// Creates an encrypted data-dir backup's manifest seal, just before its manifest; never
    /// overwrites (an existing seal's bytes are returned, as [`Self::create_manifest_seal`]).
    pub async fn create_datadir_manifest_seal(
        &self,
        id: &BackupId,
        seal: Vec<u8>,
    ) -> Result<Option<Bytes>, StoreError> {
        self.create_or_existing(&datadir_manifest_seal_key(id), Bytes::from(seal))
            .await
    }

    /// An encrypted data-dir backup's manifest seal; `None` when there is none.
    pub(crate) async fn read_datadir_manifest_seal(
        &self,
        id: &BackupId,
    ) -> Result<Option<Bytes>, StoreError> {
        self.get_if_exists(&datadir_manifest_seal_key(id)).await
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
    pub(crate) async fn list_backup_objects(
        &self,
        id: &BackupId,
    ) -> Result<Vec<StoredObject>, StoreError> {
        self.list_objects_under(&backup_prefix(id)).await
    }

    /// Unpublished backup `id`'s objects, with the newest `last_modified` among them
    /// (`None` if it has none): how long ago it was last written, by the store's clock.
    pub(crate) async fn unpublished_backup_objects(
        &self,
        id: &BackupId,
    ) -> Result<(Vec<StoredObject>, Option<SystemTime>), StoreError> {
        self.objects_and_newest_under(&backup_prefix(id)).await
    }

    /// [`Self::unpublished_backup_objects`] for data-dir backup `id`.
    pub(crate) async fn unpublished_datadir_objects(
        &self,
        id: &BackupId,
    ) -> Result<(Vec<StoredObject>, Option<SystemTime>), StoreError> {
        self.objects_and_newest_under(&prefix_under(DATADIR_DIR, id))
            .await
    }

    async fn objects_and_newest_under(
        &self,
        prefix: &str,
    ) -> Result<(Vec<StoredObject>, Option<SystemTime>), StoreError> {
        let listed = self.list_objects_with_time(prefix).await?;
        let newest = listed.iter().map(|o| o.last_modified).max();
        let objects = listed
            .into_iter()
            .map(|o| StoredObject {
                key: o.key,
                size: o.size,
            })
            .collect();
        Ok((objects, newest))
    }

    /// Every object of data-dir backup `id` (manifest included), with its size, sorted by key.
    pub(crate) async fn list_datadir_objects(
        &self,
        id: &BackupId,
    ) -> Result<Vec<StoredObject>, StoreError> {
        self.list_objects_under(&prefix_under(DATADIR_DIR, id))
            .await
    }

    /// The check a backup makes right before publishing `id`: every object of `wanted`
    /// (key, size) is listed with that size, else [`StoreError::NotPublishable`] names
    /// what is missing or changed.
    pub(crate) async fn check_publishable(
        &self,
        id: &BackupId,
        wanted: &[(String, u64)],
    ) -> Result<(), StoreError> {
        let problems = self.missing_or_changed(wanted).await?;
        if problems.is_empty() {
            return Ok(());
        }
        Err(StoreError::NotPublishable {
            location: self.display.clone(),
            backup_id: id.to_string(),
            problems,
        })
    }

    /// [`Self::check_publishable`] for a delta manifest (docs/FORMAT.md, "Delta manifests"):
    /// its own objects (`wanted`), and its parent's manifest. What the parent builds on was
    /// checked when the parent was published, and the running backup's lock names the parent,
    /// so a prune keeps it with its whole chain: the check costs the same at every checkpoint.
    pub(crate) async fn check_delta_publishable(
        &self,
        id: &BackupId,
        wanted: &[(String, u64)],
        parent: &BackupId,
    ) -> Result<(), StoreError> {
        let mut problems = self.missing_or_changed(wanted).await?;
        let parent_manifest = manifest_key(parent);
        let listed = self.list_objects_under(&backup_prefix(parent)).await?;
        if !listed.iter().any(|object| object.key == parent_manifest) {
            problems.push(format!(
                "{parent_manifest} (the parent's manifest) is missing"
            ));
        }
        if problems.is_empty() {
            return Ok(());
        }
        Err(StoreError::NotPublishable {
            location: self.display.clone(),
            backup_id: id.to_string(),
            problems,
        })
    }

    /// What is wrong with the objects of `wanted`: one line per object that is missing or
    /// has another size. Lists each backup prefix once.
    async fn missing_or_changed(
        &self,
        wanted: &[(String, u64)],
    ) -> Result<Vec<String>, StoreError> {
        let mut present: HashMap<String, u64> = HashMap::new();
        let mut listed: HashSet<String> = HashSet::new();
        let mut problems = Vec::new();
        for (key, size) in wanted {
            let prefix = match backup_of_key(key) {
                Some(id) => backup_prefix(&id),
                // A listing names what is below a directory, never the key itself.
                None => key
                    .rsplit_once('/')
                    .map_or_else(String::new, |(dir, _)| format!("{dir}/")),
            };
            if listed.insert(prefix.clone()) {
                for object in self.list_objects_under(&prefix).await? {
                    present.insert(object.key, object.size);
                }
            }
            match present.get(key) {
                None => problems.push(format!("{key} is missing")),
                Some(actual) if actual != size => problems.push(format!(
                    "{key} has {actual} bytes where the manifest says {size}"
                )),
                Some(_) => {}
            }
        }
        Ok(problems)
    }

    /// Deletes backup `id`'s manifest, if it has one: afterwards the backup is unpublished
    /// and no reader uses it. Idempotent.
    pub(crate) async fn delete_manifest(&self, id: &BackupId) -> Result<(), StoreError> {
        self.delete_key(&manifest_key(id)).await
    }

    /// Deletes every object of backup `id` and returns what was deleted. The manifest goes
    /// first, so a crash part-way leaves an unpublished leftover (collected by the next
    /// prune), never a manifest that lists missing segments. Idempotent: objects already
    /// gone are not an error. On a local location the backup's directory goes too.
    pub(crate) async fn delete_backup(
        &self,
        id: &BackupId,
    ) -> Result<Vec<StoredObject>, StoreError> {
        self.delete_under(BACKUPS_DIR, id).await
    }

    /// Deletes every object of data-dir backup `id` (manifest first), like [`Self::delete_backup`].
    pub(crate) async fn delete_datadir_backup(
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
        if let Some(root) = self.local_root.clone() {
            // One removal of the directory that never follows a link: deleting listed keys
            // one by one would reach through a planted link to files outside the location.
            tokio::task::spawn_blocking(move || super::local::remove_dir_no_follow(&root, &prefix))
                .await
                .expect("removing a directory does not panic")?;
            return Ok(objects);
        }
        stream::iter(objects.iter().filter(|o| o.key != manifest))
            .map(|object| self.delete_key(&object.key))
            .buffer_unordered(DELETE_CONCURRENCY)
            .try_collect::<()>()
            .await?;
        Ok(objects)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    async fn the_pre_publish_check_names_missing_and_changed_objects() {
        let dir = tempfile::tempdir().unwrap();
        let location = Location::open(dir.path().to_str().unwrap(), true).unwrap();
        let parent = BackupId::parse("20261125T145443Z-000001").unwrap();
        let child = BackupId::parse("20261125T145444Z-000002").unwrap();
        let carried = format!("backups/{parent}/segments/t/0/a.kseg");
        let own = format!("backups/{child}/segments/t/0/b.kseg");
        let archive = format!("datadir/{child}/data.tar.zst");
        location.put(&carried, vec![1; 10]).await.unwrap();
        location.put(&own, vec![2; 5]).await.unwrap();
        location.put(&archive, vec![3; 7]).await.unwrap();
        let all_there = [
            (carried.clone(), 10),
            (own.clone(), 5),
            (archive.clone(), 7),
        ];
        assert!(location
            .missing_or_changed(&all_there)
            .await
            .unwrap()
            .is_empty());
        let gone = format!("backups/{parent}/segments/t/0/gone.kseg");
        let problems = location
            .missing_or_changed(&[(carried.clone(), 11), (gone.clone(), 1), (own, 5)])
            .await
            .unwrap();
        assert_eq!(
            problems,
            vec![
                format!("{carried} has 10 bytes where the manifest says 11"),
                format!("{gone} is missing"),
            ]
        );
    }

    #[tokio::test]
    async fn a_published_manifest_is_never_overwritten() {
        let location = Location::open("memory://", false).unwrap();
        let id = BackupId::parse("20261125T145443Z-000001").unwrap();
        location
            .publish_manifest(&id, b"{1}".to_vec())
            .await
            .unwrap();
        // The same bytes again (two shards merging at once) are fine.
        location
            .publish_manifest(&id, b"{1}".to_vec())
            .await
            .unwrap();
        let err = location
            .publish_manifest(&id, b"{2}".to_vec())
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::AlreadyPublished { .. }), "{err}");
        assert_eq!(location.read_manifest(&id).await.unwrap().as_ref(), b"{1}");
    }
}
