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
mod stopped;
mod tar_index;
mod tar_rewrite;
mod to_archive;

pub use datadir_backup::{backup_datadir, DatadirBackupOptions};
pub use datadir_restore::{restore_datadir, DatadirRestoreOptions, RestoreReport};
pub use stopped::{backup_datadir_stopped, StoppedBackupOptions};
pub use tar_rewrite::ClusterIdRewriter;
pub use to_archive::archive_datadir;
