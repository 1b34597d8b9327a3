//! Questions about pods: is this one gone yet.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;

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
