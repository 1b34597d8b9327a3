//! `datadir backup --mode stopped` through the real kube client against the mock Kubernetes
//! API (`mock_k8s`): the StatefulSet is scaled to 0, the broker pod waited out, the PVC archived
//! from a read-only helper pod, and, on every path (success, tar failure, a cut connection, a
//! stall, Ctrl-C / SIGTERM), the helper deleted and the StatefulSet scaled back.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kafkasnap::archive::{Compression, DatadirManifest, DatadirMode};
use kafkasnap::k8s::{HelperPodSpec, K8sError, StatefulSetRef, HELPER_POD_NAME};
use kafkasnap::physical::{backup_datadir_stopped, PhysicalError, StoppedBackupOptions};
use kafkasnap::store::Location;

use crate::harness::{files_under, kafkasnap, stderr_of};
use crate::k8s_exec::assert_nothing_published;
use crate::mock_k8s::{
    tree, volume_with_datadir, ExecBehavior, MockCluster, BROKER_POD, NAMESPACE, PVC, STATEFULSET,
};

pub fn helper_spec(purpose: &'static str) -> HelperPodSpec {
    HelperPodSpec {
        namespace: NAMESPACE.into(),
        pvc: PVC.into(),
        image: "busybox:1.36".into(),
        uid: 1000,
        read_only: false,
        lifetime: Duration::from_secs(3600),
        purpose,
    }
}

pub(crate) fn options(cancel: Arc<AtomicBool>, stall_timeout: Duration) -> StoppedBackupOptions {
    StoppedBackupOptions {
        statefulset: StatefulSetRef {
            namespace: NAMESPACE.into(),
            name: STATEFULSET.into(),
        },
        pod: BROKER_POD.into(),
        // `read_only: false` here: the stopped backup must force it on.
        helper: helper_spec("backup"),
        compression: Compression::Zstd,
        encryption_key: None,
        stall_timeout,
        wait_timeout: Duration::from_secs(10),
        cancel,
    }
}

pub(crate) async fn backup(
    cluster: &MockCluster,
    dir: &Path,
    options: &StoppedBackupOptions,
) -> Result<DatadirManifest, PhysicalError> {
    let location = Location::open(dir.to_str().unwrap(), true).unwrap();
    tokio::time::timeout(
        Duration::from_secs(120),
        backup_datadir_stopped(cluster.client(), &location, options),
    )
    .await
    .expect("the backup finishes (or fails) instead of hanging")
}

/// The files inside a published archive: path (without `./`) -> bytes.
pub fn archived_tree(dir: &Path, manifest: &DatadirManifest) -> BTreeMap<String, Vec<u8>> {
    let stored = std::fs::read(dir.join(&manifest.archive.key)).unwrap();
    let mut tar = Vec::new();
    zstd::stream::read::Decoder::new(&stored[..])
        .unwrap()
        .read_to_end(&mut tar)
        .unwrap();
    let mut archive = tar::Archive::new(&tar[..]);
    let mut files = BTreeMap::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).unwrap();
        files.insert(path.trim_start_matches("./").to_string(), bytes);
    }
    files
}

/// Each call as a step name, consecutive repeats collapsed.
pub(crate) fn steps(calls: &[String]) -> Vec<String> {
    let scale = format!("/apis/apps/v1/namespaces/{NAMESPACE}/statefulsets/{STATEFULSET}/scale");
    let pods = format!("/api/v1/namespaces/{NAMESPACE}/pods");
    let mut steps: Vec<String> = Vec::new();
    for call in calls {
        let (method, rest) = call.split_once(' ').unwrap();
        let path = rest.split(' ').next().unwrap();
        let step = if path == scale && method == "GET" {
            "get-scale".to_string()
        } else if path == scale {
            let body: serde_json::Value =
                serde_json::from_str(rest.split_once(' ').unwrap().1).unwrap();
            format!("scale-to-{}", body["spec"]["replicas"])
        } else if method == "EXEC" {
            "exec-helper".to_string()
        } else if path == pods && method == "POST" {
            "create-helper".to_string()
        } else if path == pods {
            "list-pods".to_string()
        } else if path == format!("{pods}/{BROKER_POD}") {
            format!("{}-broker", method.to_lowercase())
        } else {
            format!("{}-helper", method.to_lowercase())
        };
        if steps.last() != Some(&step) {
            steps.push(step);
        }
    }
    steps
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stopped_backup_scales_down_archives_read_only_and_scales_back() {
    for replicas in [1, 3] {
        let volume = volume_with_datadir();
        let cluster = MockCluster::start(Some(replicas), volume.path(), ExecBehavior::Run).await;
        let dir = tempfile::tempdir().unwrap();
        let options = options(Arc::default(), Duration::from_secs(60));
        let manifest = backup(&cluster, dir.path(), &options).await.unwrap();

        let calls = cluster.calls();
        assert_eq!(
            steps(&calls),
            [
                "get-scale",
                "get-helper",
                "scale-to-0",
                "get-broker",
                "create-helper",
                "get-helper",
                "exec-helper",
                "delete-helper",
                &format!("scale-to-{replicas}"),
            ],
            "{calls:#?}"
        );
        // The broker pod lingered for two looks before it was gone: it was waited for.
        let broker_gets = calls
            .iter()
            .filter(|c| c.ends_with(&format!("/pods/{BROKER_POD}")))
            .count();
        assert_eq!(broker_gets, 3, "{calls:#?}");
        let exec = calls.iter().find(|c| c.starts_with("EXEC")).unwrap();
        assert!(
            exec.contains("stdin=false tar cf - -C /kafkasnap/data ."),
            "{exec}"
        );

        let pod = cluster.created_pod();
        assert_eq!(pod["metadata"]["name"], HELPER_POD_NAME);
        assert_eq!(pod["metadata"]["labels"]["kafkasnap.io/purpose"], "backup");
        let spec = &pod["spec"];
        assert_eq!(
            spec["volumes"][0]["persistentVolumeClaim"]["claimName"],
            PVC
        );
        assert_eq!(
            spec["volumes"][0]["persistentVolumeClaim"]["readOnly"],
            true
        );
        let container = &spec["containers"][0];
        assert_eq!(container["volumeMounts"][0]["readOnly"], true);
        assert_eq!(container["volumeMounts"][0]["mountPath"], "/kafkasnap/data");
        assert_eq!(container["image"], "busybox:1.36");
        assert_eq!(container["command"][0], "sleep");
        assert_eq!(container["command"][1], "3600");
        assert_eq!(
            container["securityContext"]["allowPrivilegeEscalation"],
            false
        );
        assert_eq!(spec["restartPolicy"], "Never");
        assert_eq!(spec["securityContext"]["runAsNonRoot"], true);
        assert_eq!(spec["securityContext"]["runAsUser"], 1000);

        assert_eq!(cluster.replicas(), Some(replicas));
        assert_eq!(cluster.pod_names(), [BROKER_POD], "the helper is left");
        assert_eq!(manifest.source.mode, DatadirMode::Stopped);
        assert_eq!(manifest.source.pvc.as_deref(), Some(PVC));
        assert_eq!(manifest.source.pod, BROKER_POD);
        assert_eq!(manifest.cluster_id.as_deref(), Some("q1w2e3r4t5y6u7i8o9p0"));
        assert_eq!(archived_tree(dir.path(), &manifest), tree(volume.path()));
    }
}

/// After any failure: nothing published, helper gone, StatefulSet back at `replicas`.
fn assert_put_back(cluster: &MockCluster, dir: &Path, replicas: i32) {
    assert_nothing_published(dir);
    assert_eq!(cluster.replicas(), Some(replicas));
    assert_eq!(cluster.pod_names(), [BROKER_POD], "the helper is left");
    let calls = cluster.calls();
    let steps = steps(&calls);
    assert_eq!(
        steps[steps.len() - 2..],
        ["delete-helper".to_string(), format!("scale-to-{replicas}")],
        "{calls:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_or_cut_tar_publishes_nothing_and_puts_the_statefulset_back() {
    for behavior in [
        ExecBehavior::FailAfter(20_000, 2),
        ExecBehavior::Abrupt(20_000),
    ] {
        let volume = volume_with_datadir();
        let cluster = MockCluster::start(Some(1), volume.path(), behavior).await;
        let dir = tempfile::tempdir().unwrap();
        let err = backup(
            &cluster,
            dir.path(),
            &options(Arc::default(), Duration::from_secs(60)),
        )
        .await
        .unwrap_err();
        match behavior {
            ExecBehavior::FailAfter(..) => assert!(
                matches!(
                    err,
                    PhysicalError::K8s(K8sError::CommandFailed {
                        exit_code: Some(2),
                        ..
                    })
                ),
                "{err}"
            ),
            _ => assert!(
                matches!(
                    err,
                    PhysicalError::K8s(K8sError::Stream { .. })
                        | PhysicalError::K8s(K8sError::NoExitStatus { .. })
                ),
                "{err}"
            ),
        }
        assert!(
            err.to_string()
                .contains("messaging/kafkasnap-datadir-helper"),
            "{err}"
        );
        assert_put_back(&cluster, dir.path(), 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancelling_mid_stream_puts_the_statefulset_back() {
    let volume = volume_with_datadir();
    let cluster = MockCluster::start(Some(3), volume.path(), ExecBehavior::Hang(20_000)).await;
    let dir = tempfile::tempdir().unwrap();
    let cancel = Arc::new(AtomicBool::new(false));
    let options = options(Arc::clone(&cancel), Duration::from_secs(60));
    let location = Location::open(dir.path().to_str().unwrap(), true).unwrap();
    let client = cluster.client();
    let running =
        tokio::spawn(async move { backup_datadir_stopped(client, &location, &options).await });
    cluster.wait_for_execs(1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(cluster.replicas(), Some(0), "not stopped while streaming");
    cancel.store(true, Ordering::Relaxed);
    let err = tokio::time::timeout(Duration::from_secs(30), running)
        .await
        .expect("cancellation ends the backup promptly")
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(err, PhysicalError::K8s(K8sError::Interrupted)),
        "{err}"
    );
    assert_put_back(&cluster, dir.path(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stalled_stream_fails_naming_the_helper_and_puts_the_statefulset_back() {
    let volume = volume_with_datadir();
    let cluster = MockCluster::start(Some(1), volume.path(), ExecBehavior::Hang(20_000)).await;
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let err = backup(
        &cluster,
        dir.path(),
        &options(Arc::default(), Duration::from_secs(1)),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, PhysicalError::K8s(K8sError::Stalled { .. })),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(20));
    let text = err.to_string();
    assert!(
        text.contains("messaging/kafkasnap-datadir-helper") && text.contains("--stall-timeout"),
        "{text}"
    );
    assert_put_back(&cluster, dir.path(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_broker_pod_that_never_goes_times_out_and_is_scaled_back() {
    let volume = volume_with_datadir();
    let cluster = MockCluster::start(Some(1), volume.path(), ExecBehavior::Run).await;
    cluster.state.lock().unwrap().broker_lingers = usize::MAX;
    let dir = tempfile::tempdir().unwrap();
    let mut options = options(Arc::default(), Duration::from_secs(60));
    options.wait_timeout = Duration::from_secs(1);
    let err = backup(&cluster, dir.path(), &options).await.unwrap_err();
    assert!(
        matches!(err, PhysicalError::K8s(K8sError::WaitTimedOut { .. })),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("pod messaging/kafka-0 to terminate"),
        "{err}"
    );
    assert_nothing_published(dir.path());
    assert_eq!(cluster.replicas(), Some(1));
    let steps = steps(&cluster.calls());
    assert!(!steps.contains(&"create-helper".to_string()), "{steps:?}");
    assert_eq!(steps.last().unwrap(), "scale-to-1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_scale_back_is_loud_and_says_what_to_run() {
    let volume = volume_with_datadir();
    let cluster = MockCluster::start(Some(1), volume.path(), ExecBehavior::Run).await;
    cluster.state.lock().unwrap().fail_scale_up = true;
    let dir = tempfile::tempdir().unwrap();
    let err = backup(
        &cluster,
        dir.path(),
        &options(Arc::default(), Duration::from_secs(60)),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, PhysicalError::K8s(K8sError::CleanupFailed { .. })),
        "{err}"
    );
    let text = err.to_string();
    for part in [
        "CLEANUP FAILED",
        "kubectl -n messaging scale statefulset kafka --replicas=1",
        "succeeded and was published as",
    ] {
        assert!(text.contains(part), "{part} missing from: {text}");
    }
    // The helper was still deleted; the backup itself is complete.
    assert_eq!(cluster.pod_names(), Vec::<String>::new());
    assert_eq!(cluster.replicas(), Some(0));
    assert_eq!(files_under(&dir.path().join("datadir")).len(), 2);
}

/// The command line: `--mode stopped` with its flags, and SIGTERM mid-stream (exit 130).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_cli_takes_a_stopped_backup_and_sigterm_puts_things_back() {
    let volume = volume_with_datadir();
    let cluster = MockCluster::start(Some(1), volume.path(), ExecBehavior::Run).await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = cluster.kubeconfig(dir.path());
    let to = dir.path().join("backups");
    let args = |to: &Path| {
        vec![
            "datadir".to_string(),
            "backup".into(),
            "--to".into(),
            to.to_str().unwrap().into(),
            "--mode".into(),
            "stopped".into(),
            "--output".into(),
            "json".into(),
        ]
    };
    let env = vec![("KUBECONFIG", kubeconfig.to_str().unwrap().to_string())];
    let (run_args, run_env) = (args(&to), env.clone());
    let output = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = run_args.iter().map(String::as_str).collect();
        kafkasnap(&args, &run_env)
    })
    .await
    .unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    let manifest: DatadirManifest = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(manifest.source.mode, DatadirMode::Stopped);
    assert_eq!(archived_tree(&to, &manifest), tree(volume.path()));
    assert_eq!(cluster.replicas(), Some(1));

    cluster.state.lock().unwrap().exec = ExecBehavior::Hang(20_000);
    let interrupted_to = dir.path().join("interrupted");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_kafkasnap"))
        .args(args(&interrupted_to))
        .env("KUBECONFIG", &kubeconfig)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    cluster.wait_for_execs(2).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let output = tokio::task::spawn_blocking(move || {
        let status = child.wait().unwrap();
        let mut stderr = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        (status, stderr)
    })
    .await
    .unwrap();
    assert_eq!(output.0.code(), Some(130), "{}", output.1);
    crate::harness::assert_no_debug_text_in(&["datadir", "backup"], &output.1);
    assert!(output.1.contains("interrupted"), "{}", output.1);
    assert_put_back(&cluster, &interrupted_to, 1);
}
