//! Kubernetes transport: a command run in a pod through the exec API (its stdout streamed
//! out, its stdin fed), the helper pod, pods, the StatefulSet, and the errors of data-dir
//! operations over them. What is done with the streams lives in `physical`, whose
//! `PhysicalError` adds the archive's failures (reading, storing, locking, sealing) to these.
//!
//! Everything takes a [`kube::Client`] so that callers choose how to reach the cluster
//! ([`default_client`] does what kubectl does; tests point one at a loopback server).

pub(crate) mod exec;
pub(crate) mod exec_stdin;
pub(crate) mod helper_pod;
pub(crate) mod pods;
mod statefulset;

pub use exec::PodTarget;
pub use helper_pod::{HelperPodSpec, HELPER_MOUNT_PATH, HELPER_POD_NAME};
pub use statefulset::StatefulSetRef;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Resolves once `flag` is set (Ctrl-C / SIGTERM), checked a few times a second.
pub(crate) async fn cancelled(flag: &AtomicBool) {
    while !flag.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `work`, unless `flag` is set first: then [`K8sError::Interrupted`].
pub(crate) async fn interruptible<T, E: From<K8sError>>(
    flag: &AtomicBool,
    work: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, E> {
    tokio::select! {
        done = work => done,
        () = cancelled(flag) => Err(K8sError::Interrupted.into()),
    }
}

/// A failed API request, with a hint for the usual causes.
pub(crate) fn api_err(action: String, source: kube::Error) -> K8sError {
    let hint = match &source {
        kube::Error::Api(status) if status.code == 403 => {
            " (forbidden: see k8s-cronjob/role-datadir.yaml for a live backup and \
             k8s-cronjob/datadir-downtime/ for --mode stopped and datadir restore)"
        }
        _ => "",
    };
    K8sError::Api {
        action,
        hint,
        source: Box::new(source),
    }
}

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

/// What can go wrong taking a data directory out of a pod or writing one back. Every variant
/// names the pod, StatefulSet, PVC or archive entry concerned.
#[derive(Debug, thiserror::Error)]
pub enum K8sError {
    #[error("cannot {action}{hint}: {source}")]
    Api {
        action: String,
        hint: &'static str,
        #[source]
        source: Box<kube::Error>,
    },
    #[error("statefulset {statefulset} does not exist; check --namespace and --statefulset")]
    NoStatefulSet { statefulset: String },
    #[error("timed out after {} waiting for {what}", humantime::format_duration(*after))]
    WaitTimedOut { what: String, after: Duration },
    #[error("helper pod {namespace}/{pod} cannot run: {reason}")]
    HelperFailed {
        namespace: String,
        pod: String,
        reason: String,
    },
    #[error(
        "pod {namespace}/{pod} already exists{phase}: another `kafkasnap datadir backup --mode \
         stopped` or `datadir restore` is running, or a helper pod was left behind by one that \
         was killed; kafkasnap leaves it alone. If none is running, delete it with `kubectl -n \
         {namespace} delete pod {pod}` and run again"
    )]
    HelperPodExists {
        namespace: String,
        pod: String,
        /// ` (Running)`, ` (Succeeded)`, ... when known, else empty.
        phase: String,
    },
    #[error(
        "CLEANUP FAILED, the cluster is not as it was: {}. Run by hand: {}. ({outcome})",
        failures.join("; "), commands.join(" && ")
    )]
    CleanupFailed {
        failures: Vec<String>,
        /// `kubectl` lines that finish the cleanup.
        commands: Vec<String>,
        /// How the operation itself ended.
        outcome: String,
    },
    #[error(
        "no bytes through the exec stream of pod {namespace}/{pod} for {}; giving up (raise \
         --stall-timeout if the pod is just slow)",
        humantime::format_duration(*after)
    )]
    Stalled {
        namespace: String,
        pod: String,
        after: Duration,
    },
    #[error("interrupted; nothing was published")]
    Interrupted,
    #[error(
        "pod {pod} is running with PVC {namespace}/{pvc} mounted; stop it first (scale its \
         StatefulSet to 0) or pass --force to write into the volume anyway"
    )]
    PvcInUse {
        namespace: String,
        pvc: String,
        pod: String,
    },
    #[error(
        "statefulset {statefulset} has {replicas} replicas and would start a broker on the \
         volume mid-restore; run `{command}` first, or pass --force"
    )]
    StatefulSetRunning {
        statefulset: String,
        replicas: i32,
        command: String,
    },
    #[error("{problem}; nothing was written")]
    RestoreRefused { problem: String },
    #[error(
        "the archive {key} was not written whole into pod {namespace}/{pod}: {problem}; \
         the volume holds a partial restore: empty it and run the restore again"
    )]
    PartialRestore {
        key: String,
        namespace: String,
        pod: String,
        problem: String,
    },
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
        "the exec stream from pod {namespace}/{pod} failed: {source}; a backup through it is incomplete and was not published (run it again), a restore through it may have left a partial volume (empty it and restore again)"
    )]
    Stream {
        namespace: String,
        pod: String,
        #[source]
        source: BoxError,
    },
    #[error(
        "the exec connection to pod {namespace}/{pod} closed before tar reported its exit status; \
         a backup through it may be incomplete and was not published (run it again), a restore \
         through it may have left a partial volume (empty it and restore again)"
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
    #[error(
        "compressing or encrypting the data directory of pod {namespace}/{pod} failed: {source}"
    )]
    Compress {
        namespace: String,
        pod: String,
        #[source]
        source: std::io::Error,
    },
}
