//! A StatefulSet's replica count through its `scale` subresource: read it, set it, and the
//! `kubectl` line that sets it by hand (for messages when kafkasnap could not).

use k8s_openapi::api::apps::v1::StatefulSet;
use kube::api::{Api, Patch, PatchParams};

use super::{api_err, K8sError};

/// One StatefulSet in one namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatefulSetRef {
    pub namespace: String,
    pub name: String,
}

impl StatefulSetRef {
    /// Its replica count (`spec.replicas` of the scale subresource); `None` when it does
    /// not exist.
    pub(crate) async fn replicas(&self, client: &kube::Client) -> Result<Option<i32>, K8sError> {
        match self.api(client).get_scale(&self.name).await {
            Ok(scale) => Ok(Some(scale.spec.and_then(|s| s.replicas).unwrap_or(0))),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(None),
            Err(source) => Err(api_err(
                format!("read the replica count of statefulset {self}"),
                source,
            )),
        }
    }

    /// Sets its replica count (a merge patch of the scale subresource).
    pub(crate) async fn scale(&self, client: &kube::Client, replicas: i32) -> Result<(), K8sError> {
        let patch = serde_json::json!({ "spec": { "replicas": replicas } });
        self.api(client)
            .patch_scale(&self.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(|source| api_err(format!("scale statefulset {self} to {replicas}"), source))?;
        Ok(())
    }

    /// What an operator runs to set the replica count by hand.
    pub fn kubectl_scale(&self, replicas: i32) -> String {
        format!(
            "kubectl -n {} scale statefulset {} --replicas={replicas}",
            self.namespace, self.name
        )
    }

    fn api(&self, client: &kube::Client) -> Api<StatefulSet> {
        Api::namespaced(client.clone(), &self.namespace)
    }
}

impl std::fmt::Display for StatefulSetRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}
