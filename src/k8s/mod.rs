//! Kubernetes: `tar` out of a broker's pod through the exec API, streamed (compressed,
//! checksummed and uploaded without a temporary file) into a data-dir backup.
//!
//! Everything takes a [`kube::Client`] so that callers choose how to reach the cluster
//! ([`default_client`] does what kubectl does; tests point one at a loopback server).

mod datadir_backup;
mod exec;
mod tar_index;

pub use datadir_backup::{backup_datadir, DatadirBackupOptions};
pub use exec::PodTarget;

use crate::store::StoreError;

/// A client configured the way kubectl finds its cluster: `$KUBECONFIG` or `~/.kube/config`,
/// else the in-cluster service account (a CronJob).
pub async fn default_client() -> Result<kube::Client, K8sError> {
    kube::Client::try_default()
        .await
        .map_err(|source| K8sError::Client {
            source: Box::new(source),
        })
}

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What can go wrong taking a data directory out of a pod. Every variant names the pod.
#[derive(Debug, thiserror::Error)]
pub enum K8sError {
    #[error(
        "cannot set up a Kubernetes client (no usable kubeconfig and not running in a pod): {source}"
    )]
    Client {
        #[source]
        source: Box<kube::Error>,
    },
    #[error("cannot run tar in pod {namespace}/{pod} (container {container}){hint}: {source}")]
    Exec {
        namespace: String,
        pod: String,
        container: String,
        /// A hint for the common causes (RBAC, missing pod), or empty.
        hint: &'static str,
        #[source]
        source: Box<kube::Error>,
    },
    #[error(
        "the exec stream from pod {namespace}/{pod} failed; the archive is incomplete: {source}"
    )]
    Stream {
        namespace: String,
        pod: String,
        #[source]
        source: BoxError,
    },
    #[error(
        "the exec connection to pod {namespace}/{pod} closed before tar reported its exit status; \
         the archive may be incomplete"
    )]
    NoExitStatus { namespace: String, pod: String },
    #[error("tar in pod {namespace}/{pod} failed{}: {message}{}",
        exit_code.map(|c| format!(" with exit code {c}")).unwrap_or_default(),
        if stderr.is_empty() { String::new() } else { format!("; its stderr: {stderr}") })]
    CommandFailed {
        namespace: String,
        pod: String,
        exit_code: Option<i32>,
        message: String,
        stderr: String,
    },
    #[error("the output of tar in pod {namespace}/{pod} is not a valid tar stream: {source}")]
    BadTar {
        namespace: String,
        pod: String,
        #[source]
        source: std::io::Error,
    },
    #[error("compressing the data directory of pod {namespace}/{pod} failed: {source}")]
    Compress {
        namespace: String,
        pod: String,
        #[source]
        source: std::io::Error,
    },
    #[error("storing the data directory of pod {namespace}/{pod} failed: {source}")]
    Store {
        namespace: String,
        pod: String,
        #[source]
        source: Box<StoreError>,
    },
    #[error("compression {0} is not available for data-dir archives; use zstd or gzip")]
    UnsupportedCompression(crate::archive::Compression),
}
