//! The data-dir helper pod's fixed name (`kafkasnap-datadir-helper`, which the RBAC Role in
//! k8s-cronjob/datadir-downtime/ names) and a second run while that name is taken: it fails
//! saying so and never deletes a pod it did not create, whether the pod was there before it
//! began (then nothing changes: the broker keeps running) or appeared between its check and its
//! create request. And a restore whose Role may not list pods (that Role's case).

use std::sync::Arc;
use std::time::Duration;

use kafkasnap::k8s::{K8sError, HELPER_POD_NAME};
use kafkasnap::physical::PhysicalError;

use crate::k8s_exec::assert_nothing_published;
use crate::k8s_restore::{
    assert_nothing_written, empty_target, options as restore_options, published_volume, restore,
};
use crate::k8s_stopped::{backup, options as backup_options, steps};
use crate::mock_k8s::{
    broker_pod, tree, volume_with_datadir, ExecBehavior, MockCluster, BROKER_POD, NAMESPACE,
    STATEFULSET,
};

/// What the second run says, for a pod in `phase` (`""` when unknown).
fn exists_message(phase: &str) -> String {
    format!(
        "pod messaging/kafkasnap-datadir-helper already exists{phase}: another `kafkasnap \
         datadir backup --mode stopped` or `datadir restore` is running, or a helper pod was \
         left behind by one that was killed; kafkasnap leaves it alone. If none is running, \
         delete it with `kubectl -n messaging delete pod kafkasnap-datadir-helper` and run again"
    )
}

fn assert_exists(err: &PhysicalError, phase: &str) {
    assert!(
        matches!(err, PhysicalError::K8s(K8sError::HelperPodExists { pod, .. }) if pod == HELPER_POD_NAME),
        "{err}"
    );
    assert_eq!(err.to_string(), exists_message(phase));
}

fn deletes(cluster: &MockCluster) -> Vec<String> {
    let calls = cluster.calls();
    calls
        .into_iter()
        .filter(|c| c.starts_with("DELETE "))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_taken_helper_name_stops_a_stopped_backup_before_the_broker_is_touched() {
    let volume = volume_with_datadir();
    let cluster = MockCluster::start(Some(1), volume.path(), ExecBehavior::Run).await;
    cluster
        .state
        .lock()
        .unwrap()
        .pods
        .insert(HELPER_POD_NAME.into(), broker_pod(HELPER_POD_NAME));
    let dir = tempfile::tempdir().unwrap();
    let options = backup_options(Arc::default(), Duration::from_secs(60));
    let err = backup(&cluster, dir.path(), &options).await.unwrap_err();
    assert_exists(&err, " (Running)");
    assert_eq!(
        cluster.calls(),
        [
            format!("GET /apis/apps/v1/namespaces/{NAMESPACE}/statefulsets/{STATEFULSET}/scale"),
            format!("GET /api/v1/namespaces/{NAMESPACE}/pods/{HELPER_POD_NAME}"),
        ]
    );
    assert_eq!(cluster.replicas(), Some(1));
    assert_eq!(cluster.pod_names(), [BROKER_POD, HELPER_POD_NAME]);
    assert_nothing_published(dir.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_helper_created_meanwhile_is_left_alone_and_the_broker_is_scaled_back() {
    let volume = volume_with_datadir();
    let cluster = MockCluster::start(Some(1), volume.path(), ExecBehavior::Run).await;
    cluster.state.lock().unwrap().created_meanwhile = Some(broker_pod(HELPER_POD_NAME));
    let dir = tempfile::tempdir().unwrap();
    let options = backup_options(Arc::default(), Duration::from_secs(60));
    let err = backup(&cluster, dir.path(), &options).await.unwrap_err();
    assert_exists(&err, "");
    let calls = cluster.calls();
    assert_eq!(
        steps(&calls),
        [
            "get-scale",
            "get-helper",
            "scale-to-0",
            "get-broker",
            "create-helper",
            "scale-to-1",
        ],
        "{calls:#?}"
    );
    assert_eq!(deletes(&cluster), Vec::<String>::new());
    assert_eq!(cluster.replicas(), Some(1));
    assert_eq!(cluster.pod_names(), [BROKER_POD, HELPER_POD_NAME]);
    assert_nothing_published(dir.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_restore_refuses_a_taken_helper_name_and_leaves_that_pod() {
    let (_source, backups, manifest) = published_volume().await;
    let options = restore_options(None, None, true);

    // There before the restore began: refused first, even with --force.
    let (target, cluster) = empty_target().await;
    let mut ended = broker_pod(HELPER_POD_NAME);
    ended["status"]["phase"] = "Succeeded".into();
    cluster
        .state
        .lock()
        .unwrap()
        .pods
        .insert(HELPER_POD_NAME.into(), ended);
    let err = restore(&cluster, backups.path(), &manifest, &options)
        .await
        .unwrap_err();
    assert_exists(&err, " (Succeeded)");
    assert_eq!(
        cluster.calls(),
        [format!(
            "GET /api/v1/namespaces/{NAMESPACE}/pods/{HELPER_POD_NAME}"
        )]
    );
    assert_nothing_written(&cluster, target.path(), 0);
    assert_eq!(cluster.pod_names(), [HELPER_POD_NAME]);

    // Created between the check and the restore's create request.
    let (target, cluster) = empty_target().await;
    cluster.state.lock().unwrap().created_meanwhile = Some(broker_pod(HELPER_POD_NAME));
    let err = restore(&cluster, backups.path(), &manifest, &options)
        .await
        .unwrap_err();
    assert_exists(&err, "");
    let calls = cluster.calls();
    assert!(!calls.iter().any(|c| c.starts_with("EXEC")), "{calls:#?}");
    assert_eq!(deletes(&cluster), Vec::<String>::new());
    assert_eq!(cluster.pod_names(), [HELPER_POD_NAME]);
    assert_eq!(tree(target.path()).len(), 0, "the volume was written to");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_restore_that_may_not_list_pods_checks_the_broker_pod_and_says_so() {
    let (source, backups, manifest) = published_volume().await;

    let (target, cluster) = empty_target().await;
    cluster.state.lock().unwrap().forbid_list = true;
    let report = restore(
        &cluster,
        backups.path(),
        &manifest,
        &restore_options(None, None, false),
    )
    .await
    .unwrap();
    assert_eq!(
        report.warnings,
        [
            "not allowed to list the pods in namespace messaging: checked that pod kafka-0 and \
             the helper pod do not exist, not whether some other pod mounts PVC \
             kafka-data-kafka-0",
            "cluster id not checked (no --cluster-id): a broker refuses to start if it differs \
             from its CLUSTER_ID",
        ]
    );
    assert_eq!(tree(target.path()), tree(source.path()));
    assert_eq!(cluster.pod_names(), Vec::<String>::new());

    // The broker pod is still looked up by name and refused.
    let (target, cluster) = empty_target().await;
    {
        let mut state = cluster.state.lock().unwrap();
        state.forbid_list = true;
        state.pods.insert(BROKER_POD.into(), broker_pod(BROKER_POD));
    }
    let err = restore(
        &cluster,
        backups.path(),
        &manifest,
        &restore_options(None, None, false),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, PhysicalError::K8s(K8sError::PvcInUse { pod, .. }) if pod == BROKER_POD),
        "{err}"
    );
    assert_nothing_written(&cluster, target.path(), 0);
}
