//! A data-dir backup: `tar` out of the pod -> zstd or gzip -> (with a key: the `KSNAPES2`
//! encrypted stream) -> SHA-256 -> a (multipart) upload, with the tar headers indexed on the side; no temporary file, memory bounded by
//! the queues below plus the upload's parts. The manifest is published last; on any error
//! the upload is aborted and nothing is published.
//!
//! Stages: an async task reads the exec stdout; a blocking thread compresses, encrypts, hashes
//! and feeds the indexer thread; the calling task uploads.

use std::io::{self, Write};
use std::sync::atomic::AtomicBool;
use std::sync::mpsc::SyncSender;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::{Bytes, BytesMut};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use super::chunk_reader::ChunkReader;
use super::tar_index::{index_tar, TarIndex};
use super::PhysicalError;
use crate::archive::{
    BackupId, Compression, DatadirArchive, DatadirKind, DatadirManifest, DatadirMode,
    DatadirSource, EncryptionKey, StreamSealer, DATADIR_FORMAT_VERSION,
};
use crate::k8s::exec::{PodTarget, TarExec};
use crate::k8s::{cancelled, K8sError};
use crate::store::{Location, LocationLock, LockError, LockKind};

/// Tar bytes gathered before they are handed on.
const CHUNK_BYTES: usize = 256 * 1024;
/// Chunks waiting between two stages.
const QUEUE_CHUNKS: usize = 8;

#[derive(Debug, Clone)]
pub struct DatadirBackupOptions {
    /// The running broker's container and data directory.
    pub target: PodTarget,
    /// zstd or gzip.
    pub compression: Compression,
    /// Encrypt the archive (after compression) with this key; the manifest names its key id.
    pub encryption_key: Option<EncryptionKey>,
    /// No byte from `tar` for this long fails the backup.
    pub stall_timeout: Duration,
    /// Set on Ctrl-C / SIGTERM: the backup stops with [`K8sError::Interrupted`], unpublished.
    pub cancel: Arc<AtomicBool>,
}

/// Takes a data-dir backup of the running broker `options.target` (`live` mode) into
/// `location` and returns its published manifest.
pub async fn backup_datadir(
    client: kube::Client,
    location: &Location,
    options: &DatadirBackupOptions,
) -> Result<DatadirManifest, PhysicalError> {
    let target = &options.target;
    let source = DatadirSource {
        namespace: target.namespace.clone(),
        pod: target.pod.clone(),
        container: target.container.clone(),
        path: target.path.clone(),
        mode: DatadirMode::Live,
        pvc: None,
    };
    let target = &options.target;
    let lock = BackupLock::take(location, &options.cancel, &target.namespace, &target.pod).await?;
    let result = stream_backup(client, location, options, source, &lock).await;
    lock.release().await;
    result
}

/// The id a data-dir backup will publish under, and the location lock naming it (a prune
/// keeps its objects meanwhile; docs/FORMAT.md, "Locks"). Taken before anything else: in
/// stopped mode before the broker goes down, as it may wait for a running prune.
pub(crate) struct BackupLock {
    id: BackupId,
    started: SystemTime,
    lock: LocationLock,
}

impl BackupLock {
    pub(crate) async fn take(
        location: &Location,
        cancel: &AtomicBool,
        namespace: &str,
        pod: &str,
    ) -> Result<BackupLock, PhysicalError> {
        let started = SystemTime::now();
        let id = BackupId::new(started);
        let lock =
            LocationLock::shared(location, LockKind::DatadirBackup, [], [id.clone()], cancel)
                .await
                .map_err(|err| match err {
                    LockError::Interrupted { .. } => PhysicalError::K8s(K8sError::Interrupted),
                    err => PhysicalError::Lock {
                        namespace: namespace.to_string(),
                        pod: pod.to_string(),
                        source: Box::new(err),
                    },
                })?;
        Ok(BackupLock { id, started, lock })
    }

    pub(crate) async fn release(self) {
        self.lock.release().await;
    }
}

/// Runs `tar` in `options.target` and publishes a backup described as coming from `source`
/// under `lock`'s id.
pub(crate) async fn stream_backup(
    client: kube::Client,
    location: &Location,
    options: &DatadirBackupOptions,
    source: DatadirSource,
    lock: &BackupLock,
) -> Result<DatadirManifest, PhysicalError> {
    let compression = options.compression;
    if matches!(compression, Compression::None | Compression::Lz4) {
        return Err(PhysicalError::UnsupportedCompression(compression));
    }
    stream_under_lock(
        client,
        location,
        options,
        source,
        lock.id.clone(),
        lock.started,
        &lock.lock,
    )
    .await
}

async fn stream_under_lock(
    client: kube::Client,
    location: &Location,
    options: &DatadirBackupOptions,
    source: DatadirSource,
    id: BackupId,
    started: SystemTime,
    lock: &LocationLock,
) -> Result<DatadirManifest, PhysicalError> {
    let compression = options.compression;
    let target = &options.target;
    let mut writer = location.datadir_archive_writer(&id, compression);
    let key = writer.key().to_string();
    let sealer =
        match &options.encryption_key {
            Some(encryption_key) => Some(StreamSealer::new(encryption_key, &key).map_err(
                |err| K8sError::Compress {
                    namespace: target.namespace.clone(),
                    pod: target.pod.clone(),
                    source: io::Error::other(err),
                },
            )?),
            None => None,
        };
    let mut exec = TarExec::start(client, target, options.stall_timeout).await?;

    let (raw_tx, raw_rx) = mpsc::channel::<Bytes>(QUEUE_CHUNKS);
    let (packed_tx, mut packed_rx) = mpsc::channel::<Bytes>(QUEUE_CHUNKS);
    let (index_tx, index_rx) = std::sync::mpsc::sync_channel::<Bytes>(QUEUE_CHUNKS);
    let indexer = tokio::task::spawn_blocking(move || index_tar(ChunkReader::new(index_rx)));
    let compressor =
        tokio::task::spawn_blocking(move || pack(raw_rx, index_tx, packed_tx, compression, sealer));
    // `Ok(None)`: a later stage stopped first (its error is the one to report).
    let reader = tokio::spawn(async move {
        let mut buf = BytesMut::with_capacity(CHUNK_BYTES);
        loop {
            buf.reserve(CHUNK_BYTES);
            let n = exec.read(&mut buf).await?;
            if (n == 0 || buf.len() >= CHUNK_BYTES / 4)
                && !buf.is_empty()
                && raw_tx.send(buf.split().freeze()).await.is_err()
            {
                return Ok(None);
            }
            if n == 0 {
                break;
            }
        }
        drop(raw_tx);
        exec.finish().await.map(Some)
    });

    let mut upload_error = None;
    let uploaded = async {
        while let Some(chunk) = packed_rx.recv().await {
            if let Err(err) = writer.write(chunk).await {
                upload_error = Some(err);
                break;
            }
        }
    };
    let interrupted = tokio::select! {
        () = uploaded => false,
        () = cancelled(&options.cancel) => true,
    };
    drop(packed_rx);
    if interrupted {
        // The stages behind stop as their queues close; the reader may be waiting for tar.
        reader.abort();
        writer.abort().await;
        return Err(K8sError::Interrupted.into());
    }
    let read = reader.await.expect("the exec reader does not panic");
    let packed = compressor.await.expect("compression does not panic");
    let index = indexer.await.expect("the tar indexer does not panic");

    let checked = check(target, read, upload_error, packed, index);
    let (mut warnings, packed, index) = match checked {
        Ok(done) => done,
        Err(err) => {
            writer.abort().await;
            return Err(err);
        }
    };
    let store_err = |source| PhysicalError::Store {
        namespace: target.namespace.clone(),
        pod: target.pod.clone(),
        source: Box::new(source),
    };
    writer.finish().await.map_err(store_err)?;
    if !index.found_meta_properties {
        warnings.push(format!(
            "no meta.properties at the top of {}: it may not be a Kafka data directory",
            target.path
        ));
    }
    let manifest = DatadirManifest {
        format_version: DATADIR_FORMAT_VERSION,
        kind: DatadirKind::Datadir,
        backup_id: id.clone(),
        started_at: humantime::format_rfc3339_millis(started).to_string(),
        finished_at: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        source,
        cluster_id: index.cluster_id,
        node_id: index.node_id,
        archive: DatadirArchive {
            key,
            compression,
            stored_bytes: packed.stored_bytes,
            sha256: packed.sha256,
            tar_bytes: packed.tar_bytes,
        },
        encryption: options.encryption_key.as_ref().map(EncryptionKey::describe),
        files: index.files,
        warnings,
    };
    lock.check_held("the data-dir backup was not published")
        .await
        .map_err(|err| PhysicalError::Lock {
            namespace: target.namespace.clone(),
            pod: target.pod.clone(),
            source: Box::new(err),
        })?;
    let wanted = [(manifest.archive.key.clone(), manifest.archive.stored_bytes)];
    location
        .check_publishable(&id, &wanted)
        .await
        .map_err(store_err)?;
    let bytes = manifest.to_json();
    if let Some(key) = &options.encryption_key {
        let seal_err = |source| PhysicalError::Seal {
            namespace: target.namespace.clone(),
            pod: target.pod.clone(),
            source,
        };
        let seal = crate::archive::seal_datadir_manifest(key, &id, &bytes).map_err(seal_err)?;
        if let Some(existing) = location
            .create_datadir_manifest_seal(&id, seal)
            .await
            .map_err(store_err)?
        {
            // Ids are random: a seal already there was not written by this backup.
            crate::archive::check_datadir_manifest_seal(key, &id, &bytes, &existing)
                .map_err(seal_err)?;
        }
    }
    location
        .publish_datadir_manifest(&id, bytes)
        .await
        .map_err(store_err)?;
    Ok(manifest)
}

/// The first error in pipeline order (tar's own failure explains the others best).
fn check(
    target: &PodTarget,
    read: Result<Option<Vec<String>>, K8sError>,
    upload_error: Option<crate::store::StoreError>,
    packed: io::Result<Option<Packed>>,
    index: io::Result<TarIndex>,
) -> Result<(Vec<String>, Packed, TarIndex), PhysicalError> {
    let warnings = read?;
    if let Some(source) = upload_error {
        return Err(PhysicalError::Store {
            namespace: target.namespace.clone(),
            pod: target.pod.clone(),
            source: Box::new(source),
        });
    }
    let packed = packed.map_err(|source| K8sError::Compress {
        namespace: target.namespace.clone(),
        pod: target.pod.clone(),
        source,
    })?;
    let index = index.map_err(|source| K8sError::BadTar {
        namespace: target.namespace.clone(),
        pod: target.pod.clone(),
        source,
    })?;
    match (warnings, packed) {
        (Some(warnings), Some(packed)) => Ok((warnings, packed, index)),
        _ => Err(K8sError::Stream {
            namespace: target.namespace.clone(),
            pod: target.pod.clone(),
            source: "the backup pipeline stopped early".into(),
        }
        .into()),
    }
}

/// What compression produced.
struct Packed {
    stored_bytes: u64,
    sha256: String,
    tar_bytes: u64,
}

enum Encoder {
    Zstd(zstd::stream::write::Encoder<'static, Vec<u8>>),
    Gzip(flate2::write::GzEncoder<Vec<u8>>),
}

/// Data-dir streams compress as `tar | zstd -3` and `tar czf` (gzip -6) do, the commands they
/// replace: the same archive sizes at a higher speed (segments default to a cheaper level).
const STREAM_ZSTD_LEVEL: i32 = 3;
const STREAM_GZIP_LEVEL: u32 = 6;

impl Encoder {
    fn new(compression: Compression) -> io::Result<Encoder> {
        Ok(match compression {
            Compression::Gzip => Encoder::Gzip(flate2::write::GzEncoder::new(
                Vec::new(),
                flate2::Compression::new(STREAM_GZIP_LEVEL),
            )),
            _ => Encoder::Zstd(zstd::stream::write::Encoder::new(
                Vec::new(),
                STREAM_ZSTD_LEVEL,
            )?),
        })
    }

    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Encoder::Zstd(e) => e.write_all(bytes),
            Encoder::Gzip(e) => e.write_all(bytes),
        }
    }

    /// Compressed bytes produced so far and not yet taken.
    fn take_output(&mut self) -> Vec<u8> {
        match self {
            Encoder::Zstd(e) => std::mem::take(e.get_mut()),
            Encoder::Gzip(e) => std::mem::take(e.get_mut()),
        }
    }

    fn finish(self) -> io::Result<Vec<u8>> {
        match self {
            Encoder::Zstd(e) => e.finish(),
            Encoder::Gzip(e) => e.finish(),
        }
    }
}

/// Compresses, encrypts (given a sealer) and hashes the tar chunks, passing them to the
/// indexer and the stored bytes to the uploader. `Ok(None)` when the uploader stopped taking them.
fn pack(
    mut raw: mpsc::Receiver<Bytes>,
    index: SyncSender<Bytes>,
    packed: mpsc::Sender<Bytes>,
    compression: Compression,
    mut sealer: Option<StreamSealer>,
) -> io::Result<Option<Packed>> {
    let mut encoder = Encoder::new(compression)?;
    let mut hasher = Sha256::new();
    let (mut stored_bytes, mut tar_bytes) = (0u64, 0u64);
    let mut index = Some(index);
    let mut store = |out: Vec<u8>| {
        if out.is_empty() {
            return true;
        }
        hasher.update(&out);
        stored_bytes += out.len() as u64;
        packed.blocking_send(Bytes::from(out)).is_ok()
    };
    // Compressed bytes, through the sealer when there is one; `false`: the uploader stopped.
    let mut emit = |out: Vec<u8>, last: bool| -> io::Result<bool> {
        let Some(stream) = &mut sealer else {
            return Ok(store(out));
        };
        for sealed in stream.update(&out).map_err(io::Error::other)? {
            if !store(sealed) {
                return Ok(false);
            }
        }
        match last {
            true => {
                let stream = sealer.take().expect("sealing ends once");
                Ok(store(stream.finish().map_err(io::Error::other)?))
            }
            false => Ok(true),
        }
    };
    while let Some(chunk) = raw.blocking_recv() {
        tar_bytes += chunk.len() as u64;
        // The indexer stops reading at the end-of-archive marker (or on a bad header; its
        // error is reported): then it gets nothing more.
        if index
            .as_ref()
            .is_some_and(|tx| tx.send(chunk.clone()).is_err())
        {
            index = None;
        }
        encoder.write_all(&chunk)?;
        if !emit(encoder.take_output(), false)? {
            return Ok(None);
        }
    }
    drop(index);
    if !emit(encoder.finish()?, true)? {
        return Ok(None);
    }
    Ok(Some(Packed {
        stored_bytes,
        sha256: hex::encode(hasher.finalize()),
        tar_bytes,
    }))
}
