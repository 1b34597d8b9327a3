//! Physical (data-dir) backup and restore: a broker's data directory streamed out of its pod
//! (compressed, checksummed and uploaded without a temporary file), from the running broker or
//! with its StatefulSet scaled to 0 through a helper pod; a data-dir backup written back into a
//! PVC (`tar x` in a helper pod, fed over exec stdin); and a data directory converted into a
//! logical archive for `restore --from-datadir`. The pod transport is `k8s`; the on-disk format
//! is `datadir`.

mod chunk_reader;
mod datadir_backup;
mod datadir_restore;
mod restore_stream;
mod staged;
mod stopped;
mod tar_index;
mod tar_rewrite;
mod to_archive;

pub use datadir_backup::{backup_datadir, DatadirBackupOptions};
pub use datadir_restore::{restore_datadir, DatadirRestoreOptions, RestoreReport};
pub use staged::{stage_datadir_as_archive, stage_datadir_backup};
pub use stopped::{backup_datadir_stopped, StoppedBackupOptions};
pub use tar_rewrite::ClusterIdRewriter;
pub use to_archive::archive_datadir;

use crate::archive::{ArchiveError, Compression};
use crate::k8s::K8sError;
use crate::store::{LockError, StoreError};

/// What can go wrong taking a data directory out of a pod into a backup, or writing a backup
/// back into a volume: the pod transport's errors ([`K8sError`], shown as they are), and
/// reading, storing, locking and sealing the archive. Every variant names the pod or the
/// archive concerned.
#[derive(Debug, thiserror::Error)]
pub enum PhysicalError {
    #[error(transparent)]
    K8s(#[from] K8sError),
    #[error(
        "cannot read the archive {key}: {source}; nothing was written: check the location \
         and run the restore again"
    )]
    ArchiveRead {
        key: String,
        #[source]
        source: Box<StoreError>,
    },
    #[error("storing the data directory of pod {namespace}/{pod} failed: {source}")]
    Store {
        namespace: String,
        pod: String,
        #[source]
        source: Box<StoreError>,
    },
    #[error("data-dir backup of pod {namespace}/{pod}: {source}")]
    Lock {
        namespace: String,
        pod: String,
        #[source]
        source: Box<LockError>,
    },
    #[error("sealing the manifest of the data-dir backup of pod {namespace}/{pod} failed: {source}; nothing was published")]
    Seal {
        namespace: String,
        pod: String,
        #[source]
        source: ArchiveError,
    },
    #[error("compression {0} is not available for data-dir archives; use zstd or gzip")]
    UnsupportedCompression(Compression),
}
