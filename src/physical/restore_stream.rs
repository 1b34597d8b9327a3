//! The tar stream a data-dir restore sends: the stored archive object read from the location
//! (hashed on the way: size and SHA-256 against the manifest), decompressed, and with
//! `meta.properties` rewritten when asked. Built the same way twice: once to inspect it
//! (every entry checked, every `meta.properties` read) and once to send it.

use std::io::{self, Read};
use std::path::Path;

use bytes::Bytes;
use futures::StreamExt;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::chunk_reader::ChunkReader;
use super::tar_rewrite::META_PROPERTIES_LIMIT;
use super::tar_rewrite::{cluster_id_of, is_meta_properties, ClusterIdRewriter};
use crate::archive::{Compression, DatadirManifest, DecryptingReader, EncryptionKey};
use crate::datadir::{hostile_entry, TarGuard};
use crate::store::{Location, StoreError};

/// Stored chunks waiting for the decompressing thread.
const QUEUE_CHUNKS: usize = 8;

/// Size and SHA-256 of the object as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ObjectDigest {
    pub(crate) stored_bytes: u64,
    pub(crate) sha256: String,
}

impl ObjectDigest {
    /// How it differs from what the manifest recorded, if it does.
    pub(crate) fn mismatch(&self, manifest: &DatadirManifest) -> Option<String> {
        let archive = &manifest.archive;
        archive
            .mismatch(self.stored_bytes, &self.sha256)
            .map(|problem| format!("archive {}: {problem}", archive.key))
    }
}

/// Reads `key` from `location` into a channel, hashing every chunk. The whole object is read
/// and hashed even after the receiver is gone (a check needs it all).
pub(crate) fn spawn_reader(
    location: &Location,
    key: &str,
) -> (ChannelReader, JoinHandle<Result<ObjectDigest, StoreError>>) {
    let (tx, rx) = mpsc::channel::<Bytes>(QUEUE_CHUNKS);
    let (location, key) = (location.clone(), key.to_string());
    let task = tokio::spawn(async move {
        let mut chunks = location.chunks(&key).await?;
        let mut hasher = Sha256::new();
        let mut stored_bytes = 0u64;
        let mut tx = Some(tx);
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk?;
            hasher.update(&chunk);
            stored_bytes += chunk.len() as u64;
            if let Some(sender) = &tx {
                if sender.send(chunk).await.is_err() {
                    tx = None;
                }
            }
        }
        Ok(ObjectDigest {
            stored_bytes,
            sha256: hex::encode(hasher.finalize()),
        })
    });
    (ChunkReader::new(rx), task)
}

/// The stored archive's bytes as a blocking `Read` (from the reading task's channel).
pub(crate) type ChannelReader = ChunkReader<mpsc::Receiver<Bytes>>;

/// The tar stream inside `manifest`'s stored archive, decrypted with `encryption_key` (which
/// an encrypted archive needs), with `cluster.id` rewritten when asked. Reading it fails with a
/// [`crate::datadir::TarLimitError`] once the decompressed stream passes the manifest's
/// `tar_bytes` (or ends short of it), or an extension header is oversized.
pub(crate) fn tar_stream(
    stored: ChannelReader,
    manifest: &DatadirManifest,
    encryption_key: Option<&EncryptionKey>,
    rewrite_cluster_id: Option<&str>,
) -> io::Result<Box<dyn Read + Send>> {
    let archive = &manifest.archive;
    let stored: Box<dyn Read + Send> = match (&manifest.encryption, encryption_key) {
        (Some(_), Some(key)) => Box::new(DecryptingReader::new(stored, key, &archive.key)),
        (Some(encryption), None) => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "it is encrypted ({}, key id {}) and no key was given (--key-file)",
                    encryption.cipher, encryption.key_id
                ),
            ))
        }
        (None, _) => Box::new(stored),
    };
    let tar: Box<dyn Read + Send> = match archive.compression {
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(stored)?),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(io::BufReader::new(
            stored,
        ))),
        Compression::Lz4 => Box::new(lz4_flex::frame::FrameDecoder::new(stored)),
        Compression::None => Box::new(stored),
    };
    // Below the rewriter (which changes sizes): the stream as it was backed up.
    let tar = TarGuard::expecting(tar, archive.tar_bytes);
    Ok(match rewrite_cluster_id {
        Some(id) => Box::new(ClusterIdRewriter::new(tar, id)),
        None => Box::new(tar),
    })
}

/// What the tar stream holds, as far as a restore cares.
#[derive(Debug, Default)]
pub(crate) struct Inspection {
    pub(crate) files: usize,
    pub(crate) tar_bytes: u64,
    /// Every `meta.properties` entry: its path and `cluster.id`.
    pub(crate) meta_properties: Vec<(String, Option<String>)>,
}

/// Why an inspection failed.
#[derive(Debug)]
pub(crate) enum InspectError {
    Hostile { entry: String, why: &'static str },
    Unreadable(io::Error),
}

impl From<io::Error> for InspectError {
    fn from(err: io::Error) -> Self {
        InspectError::Unreadable(err)
    }
}

/// Reads the whole tar stream: every entry must be safe to unpack (see [`hostile_entry`]).
pub(crate) fn inspect(tar: impl Read) -> Result<Inspection, InspectError> {
    let mut counted = CountingReader {
        inner: tar,
        bytes: 0,
    };
    let mut inspection = Inspection::default();
    {
        let mut archive = tar::Archive::new(&mut counted);
        for entry in archive.entries()? {
            let mut entry = entry?;
            let path = entry.path()?.into_owned();
            let kind = entry.header().entry_type();
            if let Some(why) = hostile_entry(&path, kind) {
                return Err(InspectError::Hostile {
                    entry: path.display().to_string(),
                    why,
                });
            }
            if !kind.is_file() {
                continue;
            }
            inspection.files += 1;
            if is_meta_properties(path_bytes(&path)) {
                let mut text = String::new();
                (&mut entry)
                    .take(META_PROPERTIES_LIMIT)
                    .read_to_string(&mut text)?;
                inspection
                    .meta_properties
                    .push((path.display().to_string(), cluster_id_of(&text)));
            }
        }
    }
    // The rest (end-of-archive padding) still has to decompress cleanly.
    io::copy(&mut counted, &mut io::sink())?;
    inspection.tar_bytes = counted.bytes;
    Ok(inspection)
}

fn path_bytes(path: &Path) -> &[u8] {
    path.as_os_str().as_encoded_bytes()
}

struct CountingReader<R> {
    inner: R,
    bytes: u64,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }
}
