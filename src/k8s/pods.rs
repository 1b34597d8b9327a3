//! Questions about pods: is this one gone yet, and which pods mount a given PVC.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};

use super::{api_err, K8sError};

/// Between two looks at a pod while waiting for it.
pub(crate) const POLL_INTERVAL: Duration = Duration::from_millis(250);

/// Waits until pod `name` no longer exists (a 404), for at most `timeout`.
pub(crate) async fn wait_until_gone(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    timeout: Duration,
) -> Result<(), K8sError> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let deadline = Instant::now() + timeout;
    loop {
        match pods.get_opt(name).await {
            Ok(None) => return Ok(()),
            Ok(Some(_)) if Instant::now() >= deadline => {
                return Err(K8sError::WaitTimedOut {
                    what: format!("pod {namespace}/{name} to terminate"),
                    after: timeout,
                })
            }
            Ok(Some(_)) => tokio::time::sleep(POLL_INTERVAL).await,
            Err(source) => return Err(api_err(format!("look up pod {namespace}/{name}"), source)),
        }
    }
}

/// Pods in `namespace` that mount PVC `pvc` and have not ended (pending, running or unknown).
pub(crate) async fn pods_using_pvc(
    client: &kube::Client,
    namespace: &str,
    pvc: &str,
) -> Result<Vec<String>, K8sError> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let list = pods
        .list(&ListParams::default())
        .await
        .map_err(|source| api_err(format!("list the pods in namespace {namespace}"), source))?;
    Ok(list
        .items
        .into_iter()
        .filter(|pod| mounts_pvc(pod, pvc) && !has_ended(pod))
        .filter_map(|pod| pod.metadata.name)
        .collect())
}

fn mounts_pvc(pod: &Pod, pvc: &str) -> bool {
    pod.spec.as_ref().is_some_and(|spec| {
        spec.volumes.iter().flatten().any(|volume| {
            volume
                .persistent_volume_claim
                .as_ref()
                .is_some_and(|claim| claim.claim_name == pvc)
        })
    })
}

pub(crate) fn has_ended(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}
