//! A data-dir backup with the broker stopped (`datadir backup --mode stopped`): scale the
//! StatefulSet to 0, wait for the broker's pod to go, archive its PVC from a read-only helper
//! pod, then delete the helper and scale back to the original replica count. The putting-back
//! is one cleanup that runs whatever happened (success, tar or upload failure, Ctrl-C /
//! SIGTERM); when it fails, the error says which `kubectl` lines to run by hand. A helper pod
//! that already exists stops the backup before the broker is touched.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use super::datadir_backup::{stream_backup, BackupLock, DatadirBackupOptions};
use super::PhysicalError;
use crate::archive::{Compression, DatadirManifest, DatadirMode, DatadirSource, EncryptionKey};
use crate::k8s::helper_pod::{HelperPod, HelperPodSpec, HELPER_CONTAINER, HELPER_MOUNT_PATH};
use crate::k8s::pods::wait_until_gone;
use crate::k8s::StatefulSetRef;
use crate::k8s::{interruptible, K8sError};
use crate::store::Location;

/// Longest a single cleanup request may take before it counts as failed.
const CLEANUP_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct StoppedBackupOptions {
    pub statefulset: StatefulSetRef,
    /// The broker pod that must be gone before the PVC is read (`kafka-0`).
    pub pod: String,
    /// The helper pod; `read_only` is forced on.
    pub helper: HelperPodSpec,
    pub compression: Compression,
    /// Encrypt the archive with this key (see [`DatadirBackupOptions::encryption_key`]).
    pub encryption_key: Option<EncryptionKey>,
    pub stall_timeout: Duration,
    /// How long to wait for the broker pod to go and for the helper to run.
    pub wait_timeout: Duration,
    pub cancel: Arc<AtomicBool>,
}

/// What has to be put back; filled in as the backup goes.
pub(crate) struct Downtime {
    pub(super) client: kube::Client,
    statefulset: StatefulSetRef,
    /// Set just before the scale-down request: from then on, scale back.
    restore_replicas: Option<i32>,
    /// Set just before the create request: from then on, delete it.
    helper: Option<HelperPod>,
}

impl Downtime {
    pub(crate) fn new(client: kube::Client, statefulset: StatefulSetRef) -> Downtime {
        Downtime {
            client,
            statefulset,
            restore_replicas: None,
            helper: None,
        }
    }

    /// Starts `helper` (see [`HelperPod::start`]), to be deleted at the end from just before
    /// its create request on; unless its name is taken ([`K8sError::HelperPodExists`]): that
    /// pod is another run's, or a leftover, and not this run's to delete.
    pub(crate) async fn start_helper(
        &mut self,
        helper: &HelperPod,
        spec: &HelperPodSpec,
        timeout: Duration,
        cancel: &AtomicBool,
    ) -> Result<(), K8sError> {
        self.helper = Some(helper.clone());
        let started = helper.start(&self.client, spec, timeout, cancel).await;
        if matches!(started, Err(K8sError::HelperPodExists { .. })) {
            self.helper = None;
        }
        started
    }

    /// Deletes the helper and scales the StatefulSet back, each attempted whatever the
    /// other did. `Err` lists what failed and the `kubectl` lines that finish the job.
    pub(crate) async fn end(self) -> Result<(), (Vec<String>, Vec<String>)> {
        let (mut failures, mut commands) = (Vec::new(), Vec::new());
        if let Some(helper) = &self.helper {
            match bounded(helper.delete(&self.client)).await {
                Ok(()) => tracing::info!("deleted helper pod {}", helper.name),
                Err(err) => {
                    failures.push(err.to_string());
                    commands.push(helper.kubectl_delete());
                }
            }
        }
        if let Some(replicas) = self.restore_replicas {
            match bounded(self.statefulset.scale(&self.client, replicas)).await {
                Ok(()) => {
                    tracing::info!("scaled statefulset {} back to {replicas}", self.statefulset)
                }
                Err(err) => {
                    failures.push(err.to_string());
                    commands.push(self.statefulset.kubectl_scale(replicas));
                }
            }
        }
        match failures.is_empty() {
            true => Ok(()),
            false => Err((failures, commands)),
        }
    }
}

async fn bounded(
    request: impl std::future::Future<Output = Result<(), K8sError>>,
) -> Result<(), K8sError> {
    tokio::time::timeout(CLEANUP_REQUEST_TIMEOUT, request)
        .await
        .unwrap_or_else(|_| {
            Err(K8sError::WaitTimedOut {
                what: "the Kubernetes API to answer".into(),
                after: CLEANUP_REQUEST_TIMEOUT,
            })
        })
}

/// Joins an operation's outcome with its cleanup's: a failed cleanup wins (the cluster needs
/// a human now) and carries the operation's outcome in its message.
pub(crate) fn with_cleanup<T, E: From<K8sError> + std::fmt::Display>(
    outcome: Result<T, E>,
    cleanup: Result<(), (Vec<String>, Vec<String>)>,
    describe_success: impl FnOnce(&T) -> String,
) -> Result<T, E> {
    match cleanup {
        Ok(()) => outcome,
        Err((failures, commands)) => {
            let outcome = match &outcome {
                Ok(done) => describe_success(done),
                Err(err) => format!("the operation itself failed: {err}"),
            };
            tracing::error!(
                "CLEANUP FAILED: {}; run by hand: {}",
                failures.join("; "),
                commands.join(" && ")
            );
            Err(K8sError::CleanupFailed {
                failures,
                commands,
                outcome,
            }
            .into())
        }
    }
}

/// Takes a consistent data-dir backup of `options.pod`'s PVC with the StatefulSet scaled to 0,
/// and puts the StatefulSet back (see the module docs).
pub async fn backup_datadir_stopped(
    client: kube::Client,
    location: &Location,
    options: &StoppedBackupOptions,
) -> Result<DatadirManifest, PhysicalError> {
    let statefulset = &options.statefulset;
    let original = statefulset
        .replicas(&client)
        .await?
        .ok_or_else(|| K8sError::NoStatefulSet {
            statefulset: statefulset.to_string(),
        })?;
    // Before the broker goes down: taking the lock may wait for a running prune.
    let lock = BackupLock::take(
        location,
        &options.cancel,
        &statefulset.namespace,
        &options.pod,
    )
    .await?;
    let mut downtime = Downtime::new(client.clone(), statefulset.clone());
    let outcome = stopped_backup(&client, location, options, original, &mut downtime, &lock).await;
    let cleanup = downtime.end().await;
    lock.release().await;
    with_cleanup(outcome, cleanup, |manifest| {
        format!(
            "the backup itself succeeded and was published as {}",
            manifest.backup_id
        )
    })
}

async fn stopped_backup(
    client: &kube::Client,
    location: &Location,
    options: &StoppedBackupOptions,
    original: i32,
    downtime: &mut Downtime,
    lock: &BackupLock,
) -> Result<DatadirManifest, PhysicalError> {
    let statefulset = &options.statefulset;
    let cancel = &options.cancel;
    let namespace = &statefulset.namespace;
    let spec = HelperPodSpec {
        read_only: true,
        ..options.helper.clone()
    };
    let helper = HelperPod::named(&spec);
    // Before the broker is stopped: a run that cannot create its helper changes nothing.
    interruptible(cancel, helper.ensure_absent(client)).await?;
    if original > 0 {
        tracing::info!("scaling statefulset {statefulset} from {original} to 0");
        downtime.restore_replicas = Some(original);
        interruptible(cancel, statefulset.scale(client, 0)).await?;
    }
    interruptible(
        cancel,
        wait_until_gone(client, namespace, &options.pod, options.wait_timeout),
    )
    .await?;
    downtime
        .start_helper(&helper, &spec, options.wait_timeout, cancel)
        .await?;
    let backup = DatadirBackupOptions {
        target: helper.target(),
        compression: options.compression,
        encryption_key: options.encryption_key.clone(),
        stall_timeout: options.stall_timeout,
        cancel: Arc::clone(cancel),
    };
    let source = DatadirSource {
        namespace: namespace.clone(),
        pod: options.pod.clone(),
        container: HELPER_CONTAINER.to_string(),
        path: HELPER_MOUNT_PATH.to_string(),
        mode: DatadirMode::Stopped,
        pvc: Some(spec.pvc.clone()),
    };
    stream_backup(client.clone(), location, &backup, source, lock).await
}
