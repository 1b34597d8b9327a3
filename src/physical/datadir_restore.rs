//! `datadir restore`: a data-dir backup written back into a broker's PVC while no broker runs
//! on it. First, with nothing written: no helper pod may exist, the volume must be free (no
//! pod using it, StatefulSet at 0, unless forced; without the right to list pods, only the
//! broker pod is looked for, with a warning), and the whole archive is read once: size and
//! SHA-256 against the manifest, every chunk's tag of an encrypted one, every tar entry safe
//! to unpack, every `meta.properties` holding the target cluster's id. Then a helper pod
//! mounts the PVC read-write and the same stream is fed to `tar x` in it over exec stdin; its
//! exit status decides. The helper is deleted on every path.

use std::io::Read;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use tokio::sync::mpsc;

use super::restore_stream::{inspect, spawn_reader, tar_stream, InspectError, Inspection};
use super::stopped::{with_cleanup, Downtime};
use super::PhysicalError;
use crate::archive::{DatadirManifest, EncryptionKey};
use crate::k8s::exec_stdin::StdinExec;
use crate::k8s::helper_pod::{HelperPod, HelperPodSpec, HELPER_MOUNT_PATH};
use crate::k8s::pods::{has_ended, pods_using_pvc};
use crate::k8s::StatefulSetRef;
use crate::k8s::{api_err, interruptible, K8sError};
use crate::store::{Location, StoreError};

/// Tar bytes per write to the pod.
const CHUNK_BYTES: usize = 256 * 1024;
/// Chunks waiting between the decompressing thread and the pod.
const QUEUE_CHUNKS: usize = 8;
/// The restore script's exit code for a volume that is not empty.
const NOT_EMPTY_EXIT: i32 = 17;
/// Run in the helper: refuse a volume that holds anything (but `lost+found`).
const EMPTY_CHECK_SCRIPT: &str = r#"cd "$1" || exit 1
if ls -A | grep -q -v -x -F lost+found; then
  echo "the volume already holds: $(ls -A | head -n 5 | tr '\n' ' ')" >&2
  exit 17
fi"#;
/// Run in the helper after the check passed: check again (nothing may have appeared), then
/// unpack stdin into the volume.
fn restore_script() -> String {
    format!("{EMPTY_CHECK_SCRIPT}\nexec tar xf - -C \"$1\"")
}

#[derive(Debug, Clone)]
pub struct DatadirRestoreOptions {
    /// The broker's StatefulSet (its pods would use the volume).
    pub statefulset: StatefulSetRef,
    /// The broker pod that mounts the PVC (`kafka-0`).
    pub pod: String,
    /// The helper pod; `read_only` is forced off. Its `pvc` is the volume written.
    pub helper: HelperPodSpec,
    /// The target cluster's id (its StatefulSet's CLUSTER_ID): every `meta.properties` in
    /// the archive must hold it.
    pub cluster_id: Option<String>,
    /// Write this `cluster.id` into every `meta.properties` as it is restored.
    pub rewrite_cluster_id: Option<String>,
    /// Write even when a pod uses the volume or the StatefulSet is not at 0.
    pub force: bool,
    /// The key of an encrypted archive (`read::key_for_datadir_backup` checks it against
    /// the manifest); an encrypted archive without it is refused before anything is written.
    pub encryption_key: Option<EncryptionKey>,
    pub stall_timeout: Duration,
    pub wait_timeout: Duration,
    pub cancel: Arc<AtomicBool>,
}

/// What was restored.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RestoreReport {
    pub backup_id: String,
    pub namespace: String,
    pub pvc: String,
    pub(crate) helper_pod: String,
    pub files: usize,
    pub tar_bytes: u64,
    /// The `cluster.id` the restored `meta.properties` hold.
    pub cluster_id: Option<String>,
    /// How many `meta.properties` got a rewritten `cluster.id`.
    pub rewritten_meta_properties: usize,
    pub warnings: Vec<String>,
}

/// Restores `manifest`'s archive into `options.helper.pvc` (see the module docs).
pub async fn restore_datadir(
    client: kube::Client,
    location: &Location,
    manifest: &DatadirManifest,
    options: &DatadirRestoreOptions,
) -> Result<RestoreReport, PhysicalError> {
    let mut warnings = Vec::new();
    let cancel = &options.cancel;
    let spec = HelperPodSpec {
        read_only: false,
        ..options.helper.clone()
    };
    let helper = HelperPod::named(&spec);
    interruptible(cancel, helper.ensure_absent(&client)).await?;
    interruptible(cancel, check_volume_free(&client, options, &mut warnings)).await?;
    let inspection = interruptible(cancel, check_archive(location, manifest, options)).await?;
    let cluster_id = check_cluster_id(&inspection, options, &mut warnings)?;

    let mut downtime = Downtime::new(client.clone(), options.statefulset.clone());
    let outcome = write_volume(
        &mut downtime,
        location,
        manifest,
        options,
        &spec,
        &helper,
        &inspection,
    )
    .await
    .map(|stderr| {
        warnings.extend(stderr);
        RestoreReport {
            backup_id: manifest.backup_id.to_string(),
            namespace: spec.namespace.clone(),
            pvc: spec.pvc.clone(),
            helper_pod: helper.name.clone(),
            files: inspection.files,
            tar_bytes: inspection.tar_bytes,
            cluster_id,
            rewritten_meta_properties: match options.rewrite_cluster_id {
                Some(_) => inspection.meta_properties.len(),
                None => 0,
            },
            warnings,
        }
    });
    let cleanup = downtime.end().await;
    with_cleanup(outcome, cleanup, |_| {
        "the restore itself succeeded".to_string()
    })
    .map_err(PhysicalError::from)
}

/// No pod may use the volume and the StatefulSet must be at 0 (else warnings, with --force).
async fn check_volume_free(
    client: &kube::Client,
    options: &DatadirRestoreOptions,
    warnings: &mut Vec<String>,
) -> Result<(), K8sError> {
    let namespace = &options.helper.namespace;
    let pvc = &options.helper.pvc;
    let statefulset = &options.statefulset;
    if let Some(replicas @ 1..) = statefulset.replicas(client).await? {
        let refusal = K8sError::StatefulSetRunning {
            statefulset: statefulset.to_string(),
            replicas,
            command: statefulset.kubectl_scale(0),
        };
        match options.force {
            true => warnings.push(format!("--force: {refusal}")),
            false => return Err(refusal),
        }
    }
    let mut users = match pods_using_pvc(client, namespace, pvc).await {
        Ok(users) => users,
        // The restore's Role (k8s-cronjob/datadir-downtime/) names every pod it may touch,
        // so it cannot list pods: then the broker pod and the helper are what is checked.
        Err(err) if is_forbidden(&err) => {
            warnings.push(format!(
                "not allowed to list the pods in namespace {namespace}: checked that pod {} \
                 and the helper pod do not exist, not whether some other pod mounts PVC {pvc}",
                options.pod
            ));
            Vec::new()
        }
        Err(err) => return Err(err),
    };
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let broker = pods
        .get_opt(&options.pod)
        .await
        .map_err(|source| api_err(format!("look up pod {namespace}/{}", options.pod), source))?;
    let broker_running = broker.is_some_and(|pod| !has_ended(&pod));
    if broker_running && !users.contains(&options.pod) {
        users.push(options.pod.clone());
    }
    for pod in users {
        let refusal = K8sError::PvcInUse {
            namespace: namespace.clone(),
            pvc: pvc.clone(),
            pod,
        };
        match options.force {
            true => warnings.push(format!("--force: {refusal}")),
            false => return Err(refusal),
        }
    }
    Ok(())
}

/// An API request that RBAC refused (HTTP 403).
fn is_forbidden(err: &K8sError) -> bool {
    matches!(err, K8sError::Api { source, .. }
        if matches!(&**source, kube::Error::Api(status) if status.code == 403))
}

/// Pass 1: the whole archive read, checked against its manifest, and inspected as it will be
/// sent.
async fn check_archive(
    location: &Location,
    manifest: &DatadirManifest,
    options: &DatadirRestoreOptions,
) -> Result<Inspection, PhysicalError> {
    let key = manifest.archive.key.clone();
    let (stored, reader) = spawn_reader(location, &key);
    let rewrite = options.rewrite_cluster_id.clone();
    let (manifest_copy, encryption_key) = (manifest.clone(), options.encryption_key.clone());
    let inspected = tokio::task::spawn_blocking(move || {
        let tar = tar_stream(
            stored,
            &manifest_copy,
            encryption_key.as_ref(),
            rewrite.as_deref(),
        )?;
        inspect(tar)
    })
    .await
    .expect("the archive inspection does not panic");
    let digest = reader
        .await
        .expect("the archive reader does not panic")
        .map_err(|source| PhysicalError::ArchiveRead {
            key: key.clone(),
            source: Box::new(source),
        })?;
    if let Some(problem) = digest.mismatch(manifest) {
        return Err(K8sError::RestoreRefused {
            problem: format!("{problem}: the backup is damaged (`kafkasnap datadir verify`)"),
        }
        .into());
    }
    match inspected {
        Ok(inspection) => Ok(inspection),
        Err(InspectError::Hostile { entry, why }) => Err(K8sError::RestoreRefused {
            problem: format!("archive {key} holds a hostile entry {entry:?}: {why}"),
        }
        .into()),
        Err(InspectError::Unreadable(source)) => Err(K8sError::RestoreRefused {
            problem: unreadable(&key, &source),
        }
        .into()),
    }
}

/// Why the archive `key` could not be read as a tar stream.
fn unreadable(key: &str, source: &std::io::Error) -> String {
    if let Some(refusal) = crate::datadir::TarLimitError::of(source) {
        return format!("archive {key} is refused: {refusal}");
    }
    let decryption = source
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<crate::archive::ArchiveError>());
    match (decryption, source.kind()) {
        (Some(err), _) => format!(
            "archive {key} does not decrypt: {err} (`kafkasnap datadir verify --key-file` checks it)"
        ),
        (None, std::io::ErrorKind::InvalidInput) => format!("archive {key} cannot be read: {source}"),
        (None, _) => format!("archive {key} is not a readable tar stream: {source}"),
    }
}

/// The cluster id the restored volume will hold, refusing a mismatch.
fn check_cluster_id(
    inspection: &Inspection,
    options: &DatadirRestoreOptions,
    warnings: &mut Vec<String>,
) -> Result<Option<String>, K8sError> {
    if inspection.meta_properties.is_empty() {
        warnings.push(
            "the archive holds no meta.properties: the broker will treat the volume as unformatted"
                .into(),
        );
        return Ok(None);
    }
    let expected = options
        .rewrite_cluster_id
        .as_ref()
        .or(options.cluster_id.as_ref());
    let Some(expected) = expected else {
        warnings.push(
            "cluster id not checked (no --cluster-id): a broker refuses to start if it differs \
             from its CLUSTER_ID"
                .into(),
        );
        return Ok(inspection.meta_properties[0].1.clone());
    };
    for (entry, found) in &inspection.meta_properties {
        let Some(found) = found.as_deref() else {
            return Err(K8sError::RestoreRefused {
                problem: format!(
                    "{entry} in the archive has no cluster.id line (a damaged or ZooKeeper-era \
                     meta.properties), so a KRaft broker would refuse to start on it, and \
                     --rewrite-cluster-id only replaces an existing line. Check the archive \
                     with `kafkasnap datadir verify`, or restore another backup with --backup"
                ),
            });
        };
        if found != expected {
            return Err(K8sError::RestoreRefused {
                problem: format!(
                    "{entry} in the archive has cluster.id {found}, the target cluster's is \
                     {expected}; a broker would refuse to start on it. Pass --cluster-id {found} \
                     if that is the StatefulSet's CLUSTER_ID, or --rewrite-cluster-id {expected} \
                     to write {expected} into meta.properties as it is restored"
                ),
            });
        }
    }
    Ok(Some(expected.clone()))
}

/// Pass 2: the helper, and the tar stream into `tar x` in it. `Ok` holds tar's stderr lines.
async fn write_volume(
    downtime: &mut Downtime,
    location: &Location,
    manifest: &DatadirManifest,
    options: &DatadirRestoreOptions,
    spec: &HelperPodSpec,
    helper: &HelperPod,
    inspection: &Inspection,
) -> Result<Vec<String>, K8sError> {
    let cancel = &options.cancel;
    downtime
        .start_helper(helper, spec, options.wait_timeout, cancel)
        .await?;
    let client = &downtime.client;
    let target = helper.target();
    let command = |script: &str| {
        vec![
            "sh".to_string(),
            "-c".to_string(),
            script.to_string(),
            "kafkasnap-restore".to_string(),
            HELPER_MOUNT_PATH.to_string(),
        ]
    };
    // The emptiness check runs on its own first, with no stdin bytes: a refusal then always
    // arrives as an exit status, never as a connection reset while we are still sending.
    let check = StdinExec::start(
        client.clone(),
        &target,
        command(EMPTY_CHECK_SCRIPT),
        options.stall_timeout,
    )
    .await?;
    check
        .finish()
        .await
        .map_err(|err| not_empty_refusal(err, &spec.pvc))?;
    let mut exec = StdinExec::start(
        client.clone(),
        &target,
        command(&restore_script()),
        options.stall_timeout,
    )
    .await?;

    let key = manifest.archive.key.clone();
    let (stored, reader) = spawn_reader(location, &key);
    let (tx, mut rx) = mpsc::channel::<Bytes>(QUEUE_CHUNKS);
    let rewrite = options.rewrite_cluster_id.clone();
    let (manifest_copy, encryption_key) = (manifest.clone(), options.encryption_key.clone());
    // (tar bytes produced, whether all of them were taken)
    let producer = tokio::task::spawn_blocking(move || -> std::io::Result<(u64, bool)> {
        let mut tar = tar_stream(
            stored,
            &manifest_copy,
            encryption_key.as_ref(),
            rewrite.as_deref(),
        )?;
        let mut total = 0u64;
        loop {
            // Full chunks (the decoders and the rewriter return short reads): fewer, larger
            // exec writes, and no zeroed buffer per read.
            let mut chunk = Vec::with_capacity(CHUNK_BYTES);
            let n = (&mut tar)
                .take(CHUNK_BYTES as u64)
                .read_to_end(&mut chunk)?;
            if n == 0 {
                return Ok((total, true));
            }
            total += n as u64;
            if tx.blocking_send(Bytes::from(chunk)).is_err() {
                return Ok((total, false));
            }
        }
    });
    let sent = interruptible(cancel, async {
        while let Some(chunk) = rx.recv().await {
            if !exec.write(&chunk).await? {
                break;
            }
        }
        Ok(())
    })
    .await;
    drop(rx);
    let partial = |problem: String| K8sError::PartialRestore {
        key: key.clone(),
        namespace: target.namespace.clone(),
        pod: target.pod.clone(),
        problem,
    };
    let read_failed = |source: StoreError| partial(format!("reading it failed: {source}"));
    if let Err(err) = sent {
        reader.abort();
        return Err(err);
    }
    let produced = producer.await.expect("the tar producer does not panic");
    let (tar_bytes, complete) = match produced {
        Ok(done) => done,
        Err(err) => {
            // A failed read ends the reader first and reaches the producer as a cut stream:
            // name the read failure then.
            if reader.is_finished() {
                if let Err(source) = reader.await.expect("the archive reader does not panic") {
                    return Err(read_failed(source));
                }
            } else {
                reader.abort();
            }
            return Err(partial(format!("it no longer decodes: {err}")));
        }
    };
    let stderr = match exec.finish().await {
        Ok(stderr) => stderr,
        Err(err) => {
            reader.abort();
            return Err(not_empty_refusal(err, &spec.pvc));
        }
    };
    let digest = reader
        .await
        .expect("the archive reader does not panic")
        .map_err(read_failed)?;
    if let Some(problem) = digest.mismatch(manifest) {
        return Err(partial(format!(
            "it changed since it was checked: {problem}"
        )));
    }
    if complete && tar_bytes != inspection.tar_bytes {
        return Err(partial(format!(
            "it changed since it was checked: {tar_bytes} tar bytes sent, {} checked",
            inspection.tar_bytes
        )));
    }
    Ok(stderr)
}

/// The restore script's "volume not empty" exit is a refusal (nothing was written).
fn not_empty_refusal(err: K8sError, pvc: &str) -> K8sError {
    match err {
        K8sError::CommandFailed {
            exit_code: Some(NOT_EMPTY_EXIT),
            stderr,
            ..
        } => K8sError::RestoreRefused {
            problem: format!(
                "PVC {pvc} is not empty ({stderr}); restore only into an empty volume: delete \
                 the PVC and create it again empty (docs/RUNBOOK.md section 3)"
            ),
        },
        err => err,
    }
}
