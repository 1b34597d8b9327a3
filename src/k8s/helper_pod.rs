//! The short-lived helper pod that mounts a broker's PVC so `tar` can run while the broker is
//! stopped (backup, read-only) or before it starts (restore, read-write): create it, wait until
//! it runs, delete it. It runs `sleep` for a bounded time as a non-root user, so a helper
//! left behind by a killed kafkasnap ends on its own. Its name is fixed
//! ([`HELPER_POD_NAME`]), so the RBAC Role can name it; a second run while one exists fails
//! with [`K8sError::HelperPodExists`] and leaves that pod alone.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, PostParams};

use super::exec::PodTarget;
use super::pods::POLL_INTERVAL;
use super::{api_err, K8sError};

/// The helper pod's name, the same for backups and restores: the RBAC Role
/// (k8s-cronjob/datadir-downtime/role.yaml) limits `get`, `delete` and `pods/exec` to it.
pub const HELPER_POD_NAME: &str = "kafkasnap-datadir-helper";
/// The helper's only container.
pub(crate) const HELPER_CONTAINER: &str = "datadir";
/// Where the helper mounts the PVC.
pub const HELPER_MOUNT_PATH: &str = "/kafkasnap/data";

/// Container waiting reasons that will not fix themselves.
const HOPELESS_WAITING: &[&str] = &[
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
];

/// What the helper pod looks like.
#[derive(Debug, Clone)]
pub struct HelperPodSpec {
    pub namespace: String,
    pub pvc: String,
    /// An image with `sh`, `sleep` and `tar` (busybox).
    pub image: String,
    /// User and group id the helper runs as; for a restore, the broker's (files it writes
    /// belong to it).
    pub uid: i64,
    pub read_only: bool,
    /// How long the helper lives at most (its `sleep`; Kubernetes ends it a minute later).
    pub lifetime: Duration,
    /// What it is for, `backup` or `restore` (its `kafkasnap.io/purpose` label).
    pub purpose: &'static str,
}

/// A helper pod that was created (it may not be running yet).
#[derive(Debug, Clone)]
pub(crate) struct HelperPod {
    pub(crate) namespace: String,
    pub(crate) name: String,
}

impl HelperPod {
    /// The helper for `spec`, named [`HELPER_POD_NAME`] (known before creating it, so that
    /// cleanup knows what to delete even when the create request is cut short).
    pub(crate) fn named(spec: &HelperPodSpec) -> HelperPod {
        HelperPod {
            namespace: spec.namespace.clone(),
            name: HELPER_POD_NAME.to_string(),
        }
    }

    /// Fails with [`K8sError::HelperPodExists`] when a pod with the helper's name exists
    /// (another run's helper, or one left behind): checked before anything is changed.
    pub(crate) async fn ensure_absent(&self, client: &kube::Client) -> Result<(), K8sError> {
        let pods: Api<Pod> = Api::namespaced(client.clone(), &self.namespace);
        let existing = pods
            .get_opt(&self.name)
            .await
            .map_err(|source| api_err(format!("look up helper pod {}", self.display()), source))?;
        match existing {
            None => Ok(()),
            Some(pod) => Err(self.exists(pod.status.and_then(|s| s.phase))),
        }
    }

    pub(crate) async fn create(
        &self,
        client: &kube::Client,
        spec: &HelperPodSpec,
    ) -> Result<(), K8sError> {
        let name = &self.name;
        let pod: Pod = serde_json::from_value(manifest(name, spec))
            .expect("the helper pod manifest matches the Pod schema");
        let pods: Api<Pod> = Api::namespaced(client.clone(), &spec.namespace);
        pods.create(&PostParams::default(), &pod)
            .await
            .map_err(|source| match source {
                kube::Error::Api(status) if status.code == 409 => self.exists(None),
                source => api_err(
                    format!(
                        "create helper pod {}/{name} mounting PVC {}",
                        spec.namespace, spec.pvc
                    ),
                    source,
                ),
            })?;
        Ok(())
    }

    /// Creates the helper and waits (at most `timeout`) until it runs; `cancel` stops either.
    pub(crate) async fn start(
        &self,
        client: &kube::Client,
        spec: &HelperPodSpec,
        timeout: Duration,
        cancel: &std::sync::atomic::AtomicBool,
    ) -> Result<(), K8sError> {
        tracing::info!(
            "creating helper pod {} with PVC {} {}",
            self.display(),
            spec.pvc,
            if spec.read_only {
                "read-only"
            } else {
                "read-write"
            }
        );
        super::interruptible(cancel, self.create(client, spec)).await?;
        super::interruptible(cancel, self.wait_running(client, timeout)).await
    }

    /// Waits until the helper runs, for at most `timeout`; fails early when it cannot start.
    pub(crate) async fn wait_running(
        &self,
        client: &kube::Client,
        timeout: Duration,
    ) -> Result<(), K8sError> {
        let pods: Api<Pod> = Api::namespaced(client.clone(), &self.namespace);
        let deadline = Instant::now() + timeout;
        loop {
            let pod = pods.get(&self.name).await.map_err(|source| {
                api_err(format!("look up helper pod {}", self.display()), source)
            })?;
            let status = pod.status.unwrap_or_default();
            match status.phase.as_deref() {
                Some("Running") => return Ok(()),
                Some(phase @ ("Succeeded" | "Failed")) => {
                    return Err(self.failed(format!(
                        "it ended ({phase}) before it was used{}",
                        status.message.map(|m| format!(": {m}")).unwrap_or_default()
                    )))
                }
                _ => {}
            }
            let waiting = status
                .container_statuses
                .iter()
                .flatten()
                .filter_map(|c| c.state.as_ref()?.waiting.as_ref())
                .find(|w| HOPELESS_WAITING.contains(&w.reason.as_deref().unwrap_or_default()));
            if let Some(waiting) = waiting {
                return Err(self.failed(format!(
                    "{}: {}",
                    waiting.reason.as_deref().unwrap_or_default(),
                    waiting.message.as_deref().unwrap_or("no message")
                )));
            }
            if Instant::now() >= deadline {
                return Err(K8sError::WaitTimedOut {
                    what: format!(
                        "helper pod {} to run (is the PVC bound and its node up? see `kubectl -n {} describe pod {}`)",
                        self.display(),
                        self.namespace,
                        self.name
                    ),
                    after: timeout,
                });
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// Deletes the helper; one that is already gone is fine.
    pub(crate) async fn delete(&self, client: &kube::Client) -> Result<(), K8sError> {
        let pods: Api<Pod> = Api::namespaced(client.clone(), &self.namespace);
        match pods.delete(&self.name, &DeleteParams::default()).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
            Err(source) => Err(api_err(
                format!("delete helper pod {}", self.display()),
                source,
            )),
        }
    }

    /// Where `tar` runs in it.
    pub(crate) fn target(&self) -> PodTarget {
        PodTarget {
            namespace: self.namespace.clone(),
            pod: self.name.clone(),
            container: HELPER_CONTAINER.to_string(),
            path: HELPER_MOUNT_PATH.to_string(),
        }
    }

    /// What an operator runs to delete it by hand.
    pub(crate) fn kubectl_delete(&self) -> String {
        format!("kubectl -n {} delete pod {}", self.namespace, self.name)
    }

    fn display(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    fn exists(&self, phase: Option<String>) -> K8sError {
        K8sError::HelperPodExists {
            namespace: self.namespace.clone(),
            pod: self.name.clone(),
            phase: phase.map(|p| format!(" ({p})")).unwrap_or_default(),
        }
    }

    fn failed(&self, reason: String) -> K8sError {
        K8sError::HelperFailed {
            namespace: self.namespace.clone(),
            pod: self.name.clone(),
            reason,
        }
    }
}

fn manifest(name: &str, spec: &HelperPodSpec) -> serde_json::Value {
    let lifetime = spec.lifetime.as_secs().max(1);
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "labels": {
                "app.kubernetes.io/name": "kafkasnap",
                "app.kubernetes.io/component": "datadir-helper",
                "kafkasnap.io/purpose": spec.purpose,
            },
        },
        "spec": {
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 1,
            "activeDeadlineSeconds": lifetime + 60,
            "automountServiceAccountToken": false,
            "securityContext": {
                "runAsNonRoot": true,
                "runAsUser": spec.uid,
                "runAsGroup": spec.uid,
                "seccompProfile": { "type": "RuntimeDefault" },
            },
            "containers": [{
                "name": HELPER_CONTAINER,
                "image": spec.image,
                "command": ["sleep", lifetime.to_string()],
                "securityContext": {
                    "allowPrivilegeEscalation": false,
                    "readOnlyRootFilesystem": true,
                    "capabilities": { "drop": ["ALL"] },
                },
                "volumeMounts": [{
                    "name": "data",
                    "mountPath": HELPER_MOUNT_PATH,
                    "readOnly": spec.read_only,
                }],
            }],
            "volumes": [{
                "name": "data",
                "persistentVolumeClaim": { "claimName": spec.pvc, "readOnly": spec.read_only },
            }],
        },
    })
}
