//! `datadir backup` through the real kube exec client against a loopback websocket server
//! that speaks the exec channel protocol (`v4.channel.k8s.io`: 1 stdout, 2 stderr, 3 status
//! JSON). No API server can run here; a tower mock cannot do the HTTP upgrade.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::SinkExt;
use kafkasnap::archive::{Compression, DatadirManifest};
use kafkasnap::k8s::{K8sError, PodTarget};
use kafkasnap::physical::{backup_datadir, DatadirBackupOptions, PhysicalError};
use kafkasnap::store::Location;
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::Message;

use crate::harness::{files_under, kafkasnap, stderr_of};
use crate::mock_k8s::{exit_status, fixture_datadir, write_kubeconfig};

const CHANGED: &str = "tar: ./orders-0/00000000000000000000.log: file changed as we read it\n";

/// How the fake exec ends.
#[derive(Clone, Copy, PartialEq)]
enum Ending {
    Success,
    ExitCode(i32),
    /// Half the stdout, then the TCP connection drops (no close frame, no status).
    Abrupt,
    /// All of stdout, then a clean websocket close without a status.
    CloseWithoutStatus,
    /// HTTP 403 instead of the upgrade.
    Forbidden,
}

struct Script {
    tar: Vec<u8>,
    stderr: String,
    ending: Ending,
}

/// A loopback server answering `/api/v1/namespaces/{ns}/pods/{pod}/exec`.
struct ExecServer {
    url: String,
    requests: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ExecServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ExecServer {
    async fn start(script: Script) -> ExecServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&requests);
        let script = Arc::new(script);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (script, seen) = (Arc::clone(&script), Arc::clone(&seen));
                tokio::spawn(async move { serve(stream, &script, &seen).await });
            }
        });
        ExecServer {
            url,
            requests,
            task,
        }
    }

    fn client(&self) -> kube::Client {
        let config = kube::Config::new(self.url.parse::<http::Uri>().unwrap());
        kube::Client::try_from(config).unwrap()
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

// tungstenite's handshake callback returns its large `ErrorResponse` by value.
#[allow(clippy::result_large_err)]
async fn serve(stream: tokio::net::TcpStream, script: &Script, seen: &Mutex<Vec<String>>) {
    let forbidden = script.ending == Ending::Forbidden;
    let callback = |request: &Request, mut response: Response| {
        seen.lock().unwrap().push(request.uri().to_string());
        if forbidden {
            let body = serde_json::json!({
                "kind": "Status", "apiVersion": "v1", "metadata": {},
                "status": "Failure",
                "message": "pods \"kafka-0\" is forbidden: User \"system:serviceaccount:messaging:kafkasnap\" cannot create resource \"pods/exec\"",
                "reason": "Forbidden",
                "code": 403
            })
            .to_string();
            let error: ErrorResponse = http::Response::builder()
                .status(403)
                .header("content-type", "application/json")
                .header("content-length", body.len())
                .body(Some(body))
                .unwrap();
            return Err(error);
        }
        let offered = request
            .headers()
            .get("sec-websocket-protocol")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        assert!(offered.contains("v4.channel.k8s.io"), "{offered}");
        response.headers_mut().insert(
            "sec-websocket-protocol",
            "v4.channel.k8s.io".parse().unwrap(),
        );
        Ok(response)
    };
    let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(stream, callback).await else {
        return;
    };
    let frame = |channel: u8, bytes: &[u8]| {
        let mut data = Vec::with_capacity(bytes.len() + 1);
        data.push(channel);
        data.extend_from_slice(bytes);
        Message::binary(data)
    };
    let stdout: &[u8] = if script.ending == Ending::Abrupt {
        &script.tar[..script.tar.len() / 2]
    } else {
        &script.tar
    };
    for chunk in stdout.chunks(64 * 1024) {
        if ws.send(frame(1, chunk)).await.is_err() {
            return;
        }
    }
    if !script.stderr.is_empty() {
        let _ = ws.send(frame(2, script.stderr.as_bytes())).await;
    }
    let status = match script.ending {
        Ending::Success => exit_status(0),
        Ending::ExitCode(code) => exit_status(code),
        Ending::Abrupt => return, // drops the TCP connection: no close frame
        Ending::CloseWithoutStatus => {
            let _ = ws.close(None).await;
            return;
        }
        Ending::Forbidden => unreachable!(),
    };
    let _ = ws.send(frame(3, status.to_string().as_bytes())).await;
    let _ = ws.close(None).await;
}

/// A tar of a data directory as `tar cf - -C DIR .` writes it: the fixture broker's data
/// directory when present, else a tiny generated one. Returns the tar and (path, size) of
/// every regular file.
fn datadir_tar() -> (Vec<u8>, Vec<(String, u64)>) {
    let mut builder = tar::Builder::new(Vec::new());
    let mut files = Vec::new();
    match fixture_datadir() {
        Some(dir) => {
            for file in files_under(&dir) {
                let rel = file
                    .strip_prefix(&dir)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                let bytes = std::fs::read(&file).unwrap();
                append(&mut builder, &format!("./{rel}"), &bytes);
                files.push((rel, bytes.len() as u64));
            }
        }
        None => {
            let meta = b"node.id=1\nversion=1\ncluster.id=GeneratedClusterId000\n";
            append(&mut builder, "./meta.properties", meta);
            files.push(("meta.properties".to_string(), meta.len() as u64));
            let log = vec![0u8; 4096];
            append(&mut builder, "./orders-0/00000000000000000000.log", &log);
            files.push(("orders-0/00000000000000000000.log".to_string(), 4096));
        }
    }
    (builder.into_inner().unwrap(), files)
}

fn append(builder: &mut tar::Builder<Vec<u8>>, path: &str, bytes: &[u8]) {
    let mut header = tar::Header::new_gnu();
    header.set_size(bytes.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(1_764_000_000);
    header.set_cksum();
    builder.append_data(&mut header, path, bytes).unwrap();
}

/// `size` bytes of data-dir-like files: half noise (incompressible), half repetitive.
fn big_tar(size: usize) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    append(
        &mut builder,
        "./meta.properties",
        b"node.id=3\ncluster.id=BigCluster\n",
    );
    let file_size = 8 * 1024 * 1024;
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    for i in 0..size / file_size {
        let bytes: Vec<u8> = if i % 2 == 0 {
            (0..file_size)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect()
        } else {
            b"{\"event\":\"order.created\",\"amount\":42}\n"
                .iter()
                .copied()
                .cycle()
                .take(file_size)
                .collect()
        };
        append(
            &mut builder,
            &format!("./orders-{i}/00000000000000000000.log"),
            &bytes,
        );
    }
    builder.into_inner().unwrap()
}

fn options(compression: Compression) -> DatadirBackupOptions {
    DatadirBackupOptions {
        target: PodTarget {
            namespace: "messaging".into(),
            pod: "kafka-0".into(),
            container: "kafka".into(),
            path: "/var/lib/kafka/data".into(),
        },
        compression,
        encryption_key: None,
        stall_timeout: Duration::from_secs(60),
        cancel: Default::default(),
    }
}

async fn run_backup(
    server: &ExecServer,
    dir: &Path,
    compression: Compression,
) -> Result<DatadirManifest, PhysicalError> {
    let location = Location::open(dir.to_str().unwrap(), true).unwrap();
    tokio::time::timeout(
        Duration::from_secs(120),
        backup_datadir(server.client(), &location, &options(compression)),
    )
    .await
    .expect("the backup finishes (or fails) instead of hanging")
}

fn decompress(compression: Compression, stored: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::new();
    match compression {
        Compression::Zstd => {
            zstd::stream::read::Decoder::new(stored)
                .unwrap()
                .read_to_end(&mut out)
                .unwrap();
        }
        Compression::Gzip => {
            flate2::read::GzDecoder::new(stored)
                .read_to_end(&mut out)
                .unwrap();
        }
        Compression::None => out.extend_from_slice(stored),
        Compression::Lz4 => panic!("data-dir archives are never lz4"),
    }
    out
}

/// Checks the published manifest and the archive object against what was served.
fn check_published(dir: &Path, manifest: &DatadirManifest, served: &[u8]) {
    let key = &manifest.archive.key;
    let manifest_path = dir.join(format!("datadir/{}/manifest.json", manifest.backup_id));
    let stored_manifest =
        DatadirManifest::from_json(&std::fs::read(&manifest_path).unwrap()).unwrap();
    assert_eq!(&stored_manifest, manifest);
    let stored = std::fs::read(dir.join(key)).unwrap();
    assert_eq!(manifest.archive.stored_bytes, stored.len() as u64);
    assert_eq!(
        manifest.archive.sha256,
        hex::encode(Sha256::digest(&stored))
    );
    assert_eq!(manifest.archive.tar_bytes, served.len() as u64);
    let tar = decompress(manifest.archive.compression, &stored);
    assert!(
        tar == served,
        "the archive does not decompress to the served tar"
    );
    // Nothing else: no staging files, no second object.
    let mut expected = vec![dir.join(key), manifest_path];
    expected.sort();
    assert_eq!(files_under(dir), expected);
}

pub(crate) fn assert_nothing_published(dir: &Path) {
    let left: Vec<PathBuf> = if dir.join("datadir").exists() {
        files_under(&dir.join("datadir"))
    } else {
        Vec::new()
    };
    assert!(left.is_empty(), "a failed backup left {left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn datadir_round_trips_through_exec() {
    let (tar, files) = datadir_tar();
    for compression in [Compression::Zstd, Compression::Gzip] {
        let server = ExecServer::start(Script {
            tar: tar.clone(),
            stderr: String::new(),
            ending: Ending::Success,
        })
        .await;
        let dir = tempfile::tempdir().unwrap();
        let manifest = run_backup(&server, dir.path(), compression).await.unwrap();

        let requests = server.requests();
        assert_eq!(requests.len(), 1, "{requests:?}");
        let uri = &requests[0];
        assert!(
            uri.starts_with("/api/v1/namespaces/messaging/pods/kafka-0/exec?"),
            "{uri}"
        );
        for part in [
            "command=tar",
            "command=cf",
            "command=-C",
            "command=%2Fvar%2Flib%2Fkafka%2Fdata",
            "container=kafka",
            "stdout=true",
            "stderr=true",
        ] {
            assert!(uri.contains(part), "{part} missing from {uri}");
        }

        check_published(dir.path(), &manifest, &tar);
        assert_eq!(manifest.archive.compression, compression);
        assert!(manifest.archive.key.ends_with(match compression {
            Compression::Gzip => "/data.tar.gz",
            _ => "/data.tar.zst",
        }));
        assert_eq!(manifest.source.pod, "kafka-0");
        assert_eq!(manifest.source.path, "/var/lib/kafka/data");
        assert!(manifest.warnings.is_empty(), "{:?}", manifest.warnings);
        let listed: Vec<(String, u64)> = manifest
            .files
            .iter()
            .map(|f| (f.path.clone(), f.bytes))
            .collect();
        assert_eq!(listed, files);
        // The cluster and node ids come from the tar's meta.properties.
        let meta = match fixture_datadir() {
            Some(dir) => std::fs::read_to_string(dir.join("meta.properties")).unwrap(),
            None => "node.id=1\ncluster.id=GeneratedClusterId000\n".to_string(),
        };
        let value = |key: &str| {
            meta.lines()
                .find_map(|l| l.strip_prefix(&format!("{key}=")))
                .map(str::to_string)
        };
        assert_eq!(manifest.cluster_id, value("cluster.id"));
        assert!(manifest.cluster_id.is_some());
        assert_eq!(
            manifest.node_id,
            value("node.id").map(|v| v.parse().unwrap())
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_large_datadir_streams_through_a_multipart_upload() {
    let tar = big_tar(64 * 1024 * 1024);
    let server = ExecServer::start(Script {
        tar: tar.clone(),
        stderr: String::new(),
        ending: Ending::Success,
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let manifest = run_backup(&server, dir.path(), Compression::Zstd)
        .await
        .unwrap();
    // Half the data is noise: well over one 8 MiB part.
    assert!(
        manifest.archive.stored_bytes > 24 * 1024 * 1024,
        "{}",
        manifest.archive.stored_bytes
    );
    assert_eq!(manifest.files.len(), 9);
    assert_eq!(manifest.cluster_id.as_deref(), Some("BigCluster"));
    assert_eq!(manifest.node_id, Some(3));
    check_published(dir.path(), &manifest, &tar);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_tar_publishes_nothing() {
    // Big enough that the upload has gone multipart before the failure is known.
    let tar = big_tar(24 * 1024 * 1024);
    let server = ExecServer::start(Script {
        tar,
        stderr: "tar: ./orders-1: Cannot open: Permission denied\ntar: Exiting with failure status due to previous errors\n".into(),
        ending: Ending::ExitCode(2),
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let err = run_backup(&server, dir.path(), Compression::Zstd)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            PhysicalError::K8s(K8sError::CommandFailed {
                exit_code: Some(2),
                ..
            })
        ),
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.contains("messaging/kafka-0") && text.contains("Permission denied"),
        "{text}"
    );
    assert_nothing_published(dir.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn files_changed_while_read_are_warnings() {
    let (tar, _) = datadir_tar();
    let server = ExecServer::start(Script {
        tar: tar.clone(),
        stderr: format!("{CHANGED}{}", CHANGED.replace("orders-0", "orders-1")),
        ending: Ending::ExitCode(1),
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let manifest = run_backup(&server, dir.path(), Compression::Zstd)
        .await
        .unwrap();
    assert_eq!(manifest.warnings.len(), 2, "{:?}", manifest.warnings);
    assert!(manifest
        .warnings
        .iter()
        .all(|w| w.contains("file changed as we read it")));
    check_published(dir.path(), &manifest, &tar);

    // The same exit code with anything else on stderr is a failure.
    let server = ExecServer::start(Script {
        tar,
        stderr: format!("{CHANGED}tar: ./x: Cannot stat: No such file or directory\n"),
        ending: Ending::ExitCode(1),
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let err = run_backup(&server, dir.path(), Compression::Zstd)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            PhysicalError::K8s(K8sError::CommandFailed {
                exit_code: Some(1),
                ..
            })
        ),
        "{err}"
    );
    assert_nothing_published(dir.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stream_that_ends_without_a_status_is_an_error() {
    for ending in [Ending::Abrupt, Ending::CloseWithoutStatus] {
        let server = ExecServer::start(Script {
            tar: big_tar(16 * 1024 * 1024),
            stderr: String::new(),
            ending,
        })
        .await;
        let dir = tempfile::tempdir().unwrap();
        let err = run_backup(&server, dir.path(), Compression::Zstd)
            .await
            .unwrap_err();
        match ending {
            Ending::Abrupt => assert!(
                matches!(
                    err,
                    PhysicalError::K8s(K8sError::Stream { .. })
                        | PhysicalError::K8s(K8sError::NoExitStatus { .. })
                ),
                "{err}"
            ),
            _ => assert!(
                matches!(err, PhysicalError::K8s(K8sError::NoExitStatus { .. })),
                "{err}"
            ),
        }
        assert!(err.to_string().contains("messaging/kafka-0"), "{err}");
        assert_nothing_published(dir.path());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_forbidden_exec_names_the_pod_and_the_permission() {
    let server = ExecServer::start(Script {
        tar: Vec::new(),
        stderr: String::new(),
        ending: Ending::Forbidden,
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let err = run_backup(&server, dir.path(), Compression::Zstd)
        .await
        .unwrap_err();
    assert!(
        matches!(err, PhysicalError::K8s(K8sError::Exec { .. })),
        "{err}"
    );
    let text = err.to_string();
    for part in [
        "messaging/kafka-0",
        "container kafka",
        "pods/exec",
        "forbidden",
    ] {
        assert!(text.contains(part), "{part} missing from: {text}");
    }
    assert_nothing_published(dir.path());
}

/// The command line: flags, kubeconfig discovery as kubectl does it, JSON output.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_cli_backs_up_through_the_kubeconfig() {
    let (tar, _) = datadir_tar();
    let server = ExecServer::start(Script {
        tar: tar.clone(),
        stderr: String::new(),
        ending: Ending::Success,
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = write_kubeconfig(dir.path(), &server.url);
    let backups = dir.path().join("backups-here");
    let to = backups.to_str().unwrap().to_string();
    let env = vec![("KUBECONFIG", kubeconfig.to_str().unwrap().to_string())];
    let output = tokio::task::spawn_blocking(move || {
        kafkasnap(
            &[
                "datadir",
                "backup",
                "--to",
                &to,
                "--compression",
                "gzip",
                "--output",
                "json",
            ],
            &env,
        )
    })
    .await
    .unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    let manifest: DatadirManifest = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(manifest.source.namespace, "messaging");
    assert_eq!(manifest.source.container, "kafka");
    assert_eq!(manifest.archive.compression, Compression::Gzip);
    check_published(&backups, &manifest, &tar);
    assert!(server.requests()[0].starts_with("/api/v1/namespaces/messaging/pods/kafka-0/exec?"));

    // The backup is listed and verifies; one flipped byte in its archive fails verify (exit 3).
    let location = backups.to_str().unwrap().to_string();
    let id = manifest.backup_id.to_string();
    let (listing, verified, damaged) = tokio::task::spawn_blocking(move || {
        let listing = crate::harness::kafkasnap_ok(&["datadir", "ls", &location], &[]);
        let verified =
            crate::harness::kafkasnap_ok(&["datadir", "verify", &location, "--backup", &id], &[]);
        let archive = std::path::Path::new(&location).join(&manifest.archive.key);
        let mut bytes = std::fs::read(&archive).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x10;
        std::fs::write(&archive, bytes).unwrap();
        (
            listing,
            verified,
            kafkasnap(&["datadir", "verify", &location], &[]),
        )
    })
    .await
    .unwrap();
    assert!(
        listing.contains("complete") && listing.contains("messaging/kafka-0"),
        "{listing}"
    );
    assert!(verified.contains("OK"), "{verified}");
    assert_eq!(damaged.status.code(), Some(3), "{}", stderr_of(&damaged));
    let report = String::from_utf8_lossy(&damaged.stdout);
    assert!(
        report.contains("BAD datadir/") && report.contains("sha256"),
        "{report}"
    );
}
