//! `datadir restore` through the real kube client against the mock Kubernetes API
//! (`mock_k8s`), whose exec runs the restore's real `sh`/`tar x` into a local directory standing
//! for the PVC: a round trip file by file, and every refusal (volume in use, StatefulSet up,
//! cluster id mismatch, hostile entries, damaged archive, volume not empty) before anything is
//! written.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use kafkasnap::archive::{
    seal_datadir_manifest, BackupId, Compression, DatadirArchive, DatadirKind, DatadirManifest,
    DatadirMode, DatadirSource, EncryptionKey, StreamSealer, DATADIR_FORMAT_VERSION,
};
use kafkasnap::k8s::{K8sError, StatefulSetRef};
use kafkasnap::physical::{
    backup_datadir_stopped, restore_datadir, DatadirRestoreOptions, PhysicalError, RestoreReport,
    StoppedBackupOptions,
};
use kafkasnap::store::Location;
use sha2::{Digest, Sha256};
use tempfile::TempDir;

use crate::harness::{kafkasnap, stderr_of};
use crate::k8s_stopped::helper_spec;
use crate::mock_k8s::{
    broker_pod, tree, volume_with_datadir, ExecBehavior, MockCluster, BROKER_POD, NAMESPACE,
    STATEFULSET,
};

const CLUSTER_ID: &str = "q1w2e3r4t5y6u7i8o9p0";

pub(crate) fn options(
    cluster_id: Option<&str>,
    rewrite: Option<&str>,
    force: bool,
) -> DatadirRestoreOptions {
    DatadirRestoreOptions {
        statefulset: StatefulSetRef {
            namespace: NAMESPACE.into(),
            name: STATEFULSET.into(),
        },
        pod: BROKER_POD.into(),
        // `read_only: true` here: the restore must force it off.
        helper: kafkasnap::k8s::HelperPodSpec {
            read_only: true,
            ..helper_spec("restore")
        },
        cluster_id: cluster_id.map(String::from),
        rewrite_cluster_id: rewrite.map(String::from),
        force,
        encryption_key: None,
        stall_timeout: Duration::from_secs(60),
        wait_timeout: Duration::from_secs(10),
        cancel: Arc::default(),
    }
}

pub(crate) async fn restore(
    cluster: &MockCluster,
    backups: &Path,
    manifest: &DatadirManifest,
    options: &DatadirRestoreOptions,
) -> Result<RestoreReport, PhysicalError> {
    let location = Location::open(backups.to_str().unwrap(), false).unwrap();
    tokio::time::timeout(
        Duration::from_secs(120),
        restore_datadir(cluster.client(), &location, manifest, options),
    )
    .await
    .expect("the restore finishes (or fails) instead of hanging")
}

/// Runs a restore that must be refused (`RestoreRefused`, checked here); returns the message.
async fn refused(
    cluster: &MockCluster,
    backups: &Path,
    manifest: &DatadirManifest,
    options: &DatadirRestoreOptions,
) -> String {
    let err = restore(cluster, backups, manifest, options)
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, PhysicalError::K8s(K8sError::RestoreRefused { .. })),
        "{text}"
    );
    text
}

/// `tar cf - -C DIR .`, as the backup's `tar` writes it.
pub(crate) fn tar_of(dir: &Path) -> Vec<u8> {
    let output = std::process::Command::new("tar")
        .args(["cf", "-", "-C", dir.to_str().unwrap(), "."])
        .output()
        .unwrap();
    assert!(output.status.success());
    output.stdout
}

/// Publishes `tar` (zstd) with a correct manifest at `backups`.
pub(crate) async fn publish(backups: &Path, tar: &[u8]) -> DatadirManifest {
    publish_with(backups, tar, None).await
}

/// Publishes `tar` (zstd, then encrypted with `encryption_key` if given) with a correct
/// manifest at `backups`.
pub(crate) async fn publish_with(
    backups: &Path,
    tar: &[u8],
    encryption_key: Option<&EncryptionKey>,
) -> DatadirManifest {
    let location = Location::open(backups.to_str().unwrap(), true).unwrap();
    let id = BackupId::new(SystemTime::now());
    let mut stored = zstd::encode_all(tar, 3).unwrap();
    let mut writer = location.datadir_archive_writer(&id, Compression::Zstd);
    let key = writer.key().to_string();
    if let Some(encryption_key) = encryption_key {
        let mut sealer = StreamSealer::new(encryption_key, &key).unwrap();
        let mut sealed: Vec<u8> = sealer.update(&stored).unwrap().concat();
        sealed.extend_from_slice(&sealer.finish().unwrap());
        stored = sealed;
    }
    writer.write(Bytes::from(stored.clone())).await.unwrap();
    writer.finish().await.unwrap();
    let manifest = DatadirManifest {
        format_version: DATADIR_FORMAT_VERSION,
        kind: DatadirKind::Datadir,
        backup_id: id.clone(),
        started_at: "2026-11-25T14:54:43Z".into(),
        finished_at: "2026-11-25T14:54:50Z".into(),
        tool_version: "test".into(),
        source: DatadirSource {
            namespace: NAMESPACE.into(),
            pod: BROKER_POD.into(),
            container: "kafka".into(),
            path: "/var/lib/kafka/data".into(),
            mode: DatadirMode::Live,
            pvc: None,
        },
        cluster_id: None,
        node_id: None,
        archive: DatadirArchive {
            key,
            compression: Compression::Zstd,
            stored_bytes: stored.len() as u64,
            sha256: hex::encode(Sha256::digest(&stored)),
            tar_bytes: tar.len() as u64,
        },
        encryption: encryption_key.map(EncryptionKey::describe),
        files: Vec::new(),
        warnings: Vec::new(),
    };
    let json = manifest.to_json();
    if let Some(encryption_key) = encryption_key {
        let seal = seal_datadir_manifest(encryption_key, &id, &json).unwrap();
        location
            .create_datadir_manifest_seal(&id, seal)
            .await
            .unwrap();
    }
    location.publish_datadir_manifest(&id, json).await.unwrap();
    manifest
}

/// Nothing reached the pod: no helper was created, the volume is as it was.
/// A fresh, empty volume and a cluster whose broker StatefulSet is scaled to 0 over it.
pub(crate) async fn empty_target() -> (TempDir, MockCluster) {
    let target = tempfile::tempdir().unwrap();
    let cluster = MockCluster::start(Some(0), target.path(), ExecBehavior::Run).await;
    (target, cluster)
}

/// A broker volume, and a data-dir backup of it published in a fresh backups directory.
pub(crate) async fn published_volume() -> (TempDir, TempDir, DatadirManifest) {
    let source = volume_with_datadir();
    let backups = tempfile::tempdir().unwrap();
    let manifest = publish(backups.path(), &tar_of(source.path())).await;
    (source, backups, manifest)
}

pub(crate) fn assert_nothing_written(cluster: &MockCluster, volume: &Path, before: usize) {
    let calls = cluster.calls();
    assert!(
        !calls
            .iter()
            .any(|c| c.starts_with("POST ") || c.starts_with("EXEC")),
        "{calls:#?}"
    );
    assert_eq!(tree(volume).len(), before, "the volume was written to");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stopped_backup_restores_file_for_file() {
    let source = volume_with_datadir();
    let backups = tempfile::tempdir().unwrap();
    let backed_up = MockCluster::start(Some(1), source.path(), ExecBehavior::Run).await;
    let location = Location::open(backups.path().to_str().unwrap(), true).unwrap();
    let backup_options = StoppedBackupOptions {
        statefulset: StatefulSetRef {
            namespace: NAMESPACE.into(),
            name: STATEFULSET.into(),
        },
        pod: BROKER_POD.into(),
        helper: helper_spec("backup"),
        compression: Compression::Zstd,
        encryption_key: None,
        stall_timeout: Duration::from_secs(60),
        wait_timeout: Duration::from_secs(10),
        cancel: Arc::default(),
    };
    let manifest = backup_datadir_stopped(backed_up.client(), &location, &backup_options)
        .await
        .unwrap();

    let (target, cluster) = empty_target().await;
    let report = restore(
        &cluster,
        backups.path(),
        &manifest,
        &options(Some(CLUSTER_ID), None, false),
    )
    .await
    .unwrap();
    assert_eq!(tree(target.path()), tree(source.path()));
    assert_eq!(report.files, manifest.files.len());
    assert_eq!(report.tar_bytes, manifest.archive.tar_bytes);
    assert_eq!(report.cluster_id.as_deref(), Some(CLUSTER_ID));
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);

    let calls = cluster.calls();
    let pod = cluster.created_pod();
    assert_eq!(
        pod["spec"]["volumes"][0]["persistentVolumeClaim"]["readOnly"],
        false
    );
    assert_eq!(
        pod["spec"]["containers"][0]["volumeMounts"][0]["readOnly"],
        false
    );
    // First the emptiness check alone, then the unpack fed through stdin.
    let execs: Vec<&String> = calls.iter().filter(|c| c.starts_with("EXEC")).collect();
    assert_eq!(execs.len(), 2, "{calls:#?}");
    assert!(
        execs[0].contains("exit 17") && !execs[0].contains("tar xf"),
        "{}",
        execs[0]
    );
    let exec = execs[1];
    assert!(exec.contains("stdin=true sh -c"), "{exec}");
    assert!(
        exec.ends_with("tar xf - -C \"$1\" kafkasnap-restore /kafkasnap/data"),
        "{exec}"
    );
    // The helper is gone and the StatefulSet was left alone at 0.
    assert_eq!(cluster.pod_names(), Vec::<String>::new());
    assert!(calls.last().unwrap().starts_with("DELETE "), "{calls:#?}");
    assert!(!calls.iter().any(|c| c.starts_with("PATCH ")), "{calls:#?}");
    assert_eq!(cluster.replicas(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_volume_in_use_is_refused_naming_the_pod_unless_forced() {
    let (source, backups, manifest) = published_volume().await;

    let (target, cluster) = empty_target().await;
    cluster
        .state
        .lock()
        .unwrap()
        .pods
        .insert("kafka-debug".into(), broker_pod("kafka-debug"));
    let err = restore(
        &cluster,
        backups.path(),
        &manifest,
        &options(None, None, false),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, PhysicalError::K8s(K8sError::PvcInUse { pod, .. }) if pod == "kafka-debug"),
        "{err}"
    );
    assert!(err.to_string().contains("--force"), "{err}");
    assert_nothing_written(&cluster, target.path(), 0);

    let report = restore(
        &cluster,
        backups.path(),
        &manifest,
        &options(None, None, true),
    )
    .await
    .unwrap();
    assert!(
        report.warnings.iter().any(|w| w.contains("kafka-debug")),
        "{:?}",
        report.warnings
    );
    assert_eq!(tree(target.path()), tree(source.path()));

    // A StatefulSet that is up would start a broker on the volume mid-restore.
    let other = tempfile::tempdir().unwrap();
    let running = MockCluster::start(Some(1), other.path(), ExecBehavior::Run).await;
    let err = restore(
        &running,
        backups.path(),
        &manifest,
        &options(None, None, false),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, PhysicalError::K8s(K8sError::StatefulSetRunning { .. })),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("kubectl -n messaging scale statefulset kafka --replicas=0"),
        "{err}"
    );
    assert_nothing_written(&running, other.path(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cluster_id_mismatch_is_refused_and_rewrite_fixes_it() {
    let (source, backups, manifest) = published_volume().await;
    let (target, cluster) = empty_target().await;

    let text = refused(
        &cluster,
        backups.path(),
        &manifest,
        &options(Some("NewClusterIdAbcdefghij"), None, false),
    )
    .await;
    for part in [
        CLUSTER_ID,
        "--cluster-id q1w2e3r4t5y6u7i8o9p0",
        "--rewrite-cluster-id NewClusterIdAbcdefghij",
        "nothing was written",
    ] {
        assert!(text.contains(part), "{part} missing from: {text}");
    }
    assert_nothing_written(&cluster, target.path(), 0);

    let report = restore(
        &cluster,
        backups.path(),
        &manifest,
        &options(None, Some("NewClusterIdAbcdefghij"), false),
    )
    .await
    .unwrap();
    assert_eq!(report.rewritten_meta_properties, 1);
    assert_eq!(report.cluster_id.as_deref(), Some("NewClusterIdAbcdefghij"));
    let (mut restored, mut original) = (tree(target.path()), tree(source.path()));
    let meta = String::from_utf8(restored.remove("meta.properties").unwrap()).unwrap();
    let old = String::from_utf8(original.remove("meta.properties").unwrap()).unwrap();
    assert_eq!(
        meta,
        old.replace(
            &format!("cluster.id={CLUSTER_ID}"),
            "cluster.id=NewClusterIdAbcdefghij"
        )
    );
    assert_ne!(meta, old);
    assert_eq!(restored, original, "other files changed");
}

/// A tar entry with a raw name (the tar crate refuses to build hostile ones itself).
fn raw_entry(builder: &mut tar::Builder<Vec<u8>>, name: &str, kind: tar::EntryType, link: &str) {
    let data = b"owned\n";
    let mut header = tar::Header::new_gnu();
    {
        let gnu = header.as_gnu_mut().unwrap();
        gnu.name[..name.len()].copy_from_slice(name.as_bytes());
        gnu.linkname[..link.len()].copy_from_slice(link.as_bytes());
    }
    header.set_entry_type(kind);
    let size = if kind.is_file() { data.len() } else { 0 };
    header.set_size(size as u64);
    header.set_mode(0o644);
    header.set_cksum();
    builder.append(&header, &data[..size]).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hostile_entries_refuse_the_whole_archive_before_writing() {
    let cases = [
        ("../escape", tar::EntryType::Regular, ""),
        ("/tmp/kafkasnap-absolute", tar::EntryType::Regular, ""),
        ("./link-out", tar::EntryType::Symlink, "/etc"),
    ];
    for (name, kind, link) in cases {
        let mut builder = tar::Builder::new(Vec::new());
        raw_entry(
            &mut builder,
            "./meta.properties",
            tar::EntryType::Regular,
            "",
        );
        raw_entry(&mut builder, name, kind, link);
        let tar = builder.into_inner().unwrap();
        let backups = tempfile::tempdir().unwrap();
        let manifest = publish(backups.path(), &tar).await;
        let (target, cluster) = empty_target().await;
        let text = refused(
            &cluster,
            backups.path(),
            &manifest,
            &options(None, None, true),
        )
        .await;
        assert!(
            text.contains("hostile entry") && text.contains(name),
            "{text}"
        );
        assert_nothing_written(&cluster, target.path(), 0);
    }
    assert!(!Path::new("/tmp/kafkasnap-absolute").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_damaged_archive_or_a_non_empty_volume_is_refused() {
    let (_source, backups, manifest) = published_volume().await;
    let archive = backups.path().join(&manifest.archive.key);
    let good = std::fs::read(&archive).unwrap();
    let mut bad = good.clone();
    let middle = bad.len() / 2;
    bad[middle] ^= 0x10;
    std::fs::write(&archive, bad).unwrap();

    let (target, cluster) = empty_target().await;
    let text = refused(
        &cluster,
        backups.path(),
        &manifest,
        &options(None, None, false),
    )
    .await;
    assert!(
        text.contains("sha256") && text.contains("damaged"),
        "{text}"
    );
    assert_nothing_written(&cluster, target.path(), 0);

    // Intact again, but the volume already holds something: the helper's script refuses.
    std::fs::write(&archive, good).unwrap();
    std::fs::write(target.path().join("stale.log"), b"left over").unwrap();
    let text = refused(
        &cluster,
        backups.path(),
        &manifest,
        &options(None, None, false),
    )
    .await;
    assert!(
        text.contains("not empty") && text.contains("stale.log"),
        "{text}"
    );
    assert_eq!(tree(target.path()).len(), 1, "the volume was written to");
    assert_eq!(
        cluster.pod_names(),
        Vec::<String>::new(),
        "the helper is left"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tar_longer_or_shorter_than_its_manifest_or_with_an_oversized_header_is_refused() {
    let (_source, backups, manifest) = published_volume().await;
    let recorded = manifest.archive.tar_bytes;
    for (tar_bytes, expected) in [
        (
            recorded - 1,
            format!("longer than the {} bytes", recorded - 1),
        ),
        (
            recorded + 512,
            format!(
                "ends after {recorded} bytes, its manifest records {}",
                recorded + 512
            ),
        ),
    ] {
        let mut altered = manifest.clone();
        altered.archive.tar_bytes = tar_bytes;
        let (target, cluster) = empty_target().await;
        let text = refused(
            &cluster,
            backups.path(),
            &altered,
            &options(None, None, true),
        )
        .await;
        assert!(
            text.contains(&expected) && text.contains("archive.tar_bytes"),
            "{text}"
        );
        assert_nothing_written(&cluster, target.path(), 0);
    }

    // A PAX header of 2 MiB (present in full): refused before the tar reader holds it.
    let record = format!(" comment={}\n", "c".repeat(2 << 20));
    let record = format!("{}{record}", record.len() + 7);
    let mut header = tar::Header::new_ustar();
    header.set_path("./PaxHeaders/meta.properties").unwrap();
    header.set_entry_type(tar::EntryType::XHeader);
    header.set_size(record.len() as u64);
    header.set_cksum();
    let mut builder = tar::Builder::new(Vec::new());
    builder.append(&header, record.as_bytes()).unwrap();
    raw_entry(
        &mut builder,
        "./meta.properties",
        tar::EntryType::Regular,
        "",
    );
    let tar = builder.into_inner().unwrap();
    let backups = tempfile::tempdir().unwrap();
    let manifest = publish(backups.path(), &tar).await;
    let (target, cluster) = empty_target().await;
    let text = refused(
        &cluster,
        backups.path(),
        &manifest,
        &options(None, None, true),
    )
    .await;
    assert!(
        text.contains("PAX extension header of") && text.contains("more than the 1048576 bytes"),
        "{text}"
    );
    assert_nothing_written(&cluster, target.path(), 0);
}

/// The command line: `datadir restore` flags, `--backup latest`, exit codes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_cli_restores_and_explains_a_cluster_id_mismatch() {
    let source = volume_with_datadir();
    let backups = tempfile::tempdir().unwrap();
    publish(backups.path(), &tar_of(source.path())).await;
    let (target, cluster) = empty_target().await;
    let kubeconfig = cluster.kubeconfig(backups.path());
    let from = backups.path().to_str().unwrap().to_string();
    let env = vec![("KUBECONFIG", kubeconfig.to_str().unwrap().to_string())];
    let (mismatch, restored) = tokio::task::spawn_blocking(move || {
        let base = ["datadir", "restore", "--from", &from, "--backup", "latest"];
        let mismatch = kafkasnap(&[&base[..], &["--cluster-id", "Other"]].concat(), &env);
        let restored = kafkasnap(
            &[&base[..], &["--cluster-id", CLUSTER_ID, "--output", "json"]].concat(),
            &env,
        );
        (mismatch, restored)
    })
    .await
    .unwrap();
    assert_eq!(mismatch.status.code(), Some(1), "{}", stderr_of(&mismatch));
    assert!(
        stderr_of(&mismatch).contains("--rewrite-cluster-id Other"),
        "{}",
        stderr_of(&mismatch)
    );
    assert!(restored.status.success(), "{}", stderr_of(&restored));
    let report: serde_json::Value = serde_json::from_slice(&restored.stdout).unwrap();
    assert_eq!(report["pvc"], "kafka-data-kafka-0");
    assert_eq!(report["cluster_id"], CLUSTER_ID);
    assert_eq!(tree(target.path()), tree(source.path()));
}
