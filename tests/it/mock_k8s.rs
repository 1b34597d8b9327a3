//! A small mock Kubernetes API on loopback for `datadir backup --mode stopped` and
//! `datadir restore`, driven by the real kube client: the StatefulSet `scale` subresource,
//! pods (get, list (or 403), create (409 for a name taken), delete) and exec over a websocket
//! (`v5.channel.k8s.io`: 0 stdin, 1 stdout, 2 stderr, 3 status, 255 close). Exec runs the requested command for real on this
//! machine, with the helper's mount path replaced by a local directory standing for the PVC;
//! or misbehaves as scripted. Every request is recorded in order.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use kafkasnap::k8s::HELPER_MOUNT_PATH;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

pub const NAMESPACE: &str = "messaging";
pub const STATEFULSET: &str = "kafka";
pub const BROKER_POD: &str = "kafka-0";
pub const PVC: &str = "kafka-data-kafka-0";

/// What an exec does.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ExecBehavior {
    /// Runs the command locally (mount path -> the volume directory).
    Run,
    /// Sends this many bytes of `tar cf` output, then exits with this code.
    FailAfter(usize, i32),
    /// Sends this many bytes, then drops the TCP connection (no status).
    Abrupt(usize),
    /// Sends this many bytes, then nothing more, ever.
    Hang(usize),
}

pub struct State {
    /// `None`: the StatefulSet does not exist.
    pub replicas: Option<i32>,
    pub pods: BTreeMap<String, Value>,
    /// "METHOD path[ body]" of every request, in order.
    pub calls: Vec<String>,
    /// GETs of the broker pod still answered after a scale to 0.
    pub broker_lingers: usize,
    pub exec: ExecBehavior,
    /// Answer PATCHes of the scale to a non-zero count with HTTP 500.
    pub fail_scale_up: bool,
    /// Answer pod lists with HTTP 403 (RBAC without `list`).
    pub forbid_list: bool,
    /// A pod some other client creates just before the next pod creation request arrives.
    pub created_meanwhile: Option<Value>,
}

pub struct MockCluster {
    pub url: String,
    pub state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for MockCluster {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The broker pod as the StatefulSet creates it: mounts the PVC, running.
pub fn broker_pod(name: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "containers": [{"name": "kafka", "image": "apache/kafka:3.7.0"}],
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": PVC}}]
        },
        "status": {"phase": "Running"}
    })
}

impl MockCluster {
    /// A StatefulSet at `replicas` (its pod running when > 0) over the volume `volume`.
    pub async fn start(replicas: Option<i32>, volume: &Path, exec: ExecBehavior) -> MockCluster {
        let mut pods = BTreeMap::new();
        if replicas.is_some_and(|r| r > 0) {
            pods.insert(BROKER_POD.to_string(), broker_pod(BROKER_POD));
        }
        let state = Arc::new(Mutex::new(State {
            replicas,
            pods,
            calls: Vec::new(),
            broker_lingers: 2,
            exec,
            fail_scale_up: false,
            forbid_list: false,
            created_meanwhile: None,
        }));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (shared, volume_dir) = (Arc::clone(&state), volume.to_path_buf());
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (state, volume) = (Arc::clone(&shared), volume_dir.clone());
                tokio::spawn(async move { serve(stream, state, volume).await });
            }
        });
        MockCluster { url, state, task }
    }

    pub fn client(&self) -> kube::Client {
        let config = kube::Config::new(self.url.parse::<http::Uri>().unwrap());
        kube::Client::try_from(config).unwrap()
    }

    pub fn calls(&self) -> Vec<String> {
        self.state.lock().unwrap().calls.clone()
    }

    /// Waits (up to 30 s, then fails showing every call) until `n` exec calls have come in.
    pub async fn wait_for_execs(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self
            .calls()
            .iter()
            .filter(|c| c.starts_with("EXEC"))
            .count()
            < n
        {
            assert!(Instant::now() < deadline, "{:#?}", self.calls());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn replicas(&self) -> Option<i32> {
        self.state.lock().unwrap().replicas
    }

    /// Names of the pods that exist now.
    pub fn pod_names(&self) -> Vec<String> {
        self.state.lock().unwrap().pods.keys().cloned().collect()
    }

    /// The body of the one pod creation request.
    pub fn created_pod(&self) -> Value {
        let calls = self.calls();
        let created: Vec<&String> = calls.iter().filter(|c| c.starts_with("POST ")).collect();
        assert_eq!(created.len(), 1, "{calls:?}");
        let body = created[0]
            .split_once(' ')
            .unwrap()
            .1
            .split_once(' ')
            .unwrap()
            .1;
        serde_json::from_str(body).unwrap()
    }

    /// A kubeconfig file for the CLI pointing at this server.
    pub fn kubeconfig(&self, dir: &Path) -> PathBuf {
        write_kubeconfig(dir, &self.url)
    }
}

/// Writes `dir/kubeconfig` naming `server` (no credentials), for the CLI's KUBECONFIG.
pub fn write_kubeconfig(dir: &Path, server: &str) -> PathBuf {
    let path = dir.join("kubeconfig");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: {server}\n\
             contexts:\n- name: test\n  context:\n    cluster: test\n    user: test\n\
             current-context: test\nusers:\n- name: test\n  user: {{}}\n"
        ),
    )
    .unwrap();
    path
}

/// The fixture broker's data directory (`../shared/fixtures/kafka-bytes/`), when present.
pub fn fixture_datadir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/fixtures/kafka-bytes/ldi-poc-kraft-3.7-datadir");
    dir.is_dir().then_some(dir)
}

struct Request {
    method: String,
    path: String,
    query: String,
    headers: BTreeMap<String, String>,
    body: String,
}

async fn read_request(stream: &mut TcpStream) -> Option<Request> {
    let mut buf = Vec::new();
    let head_end = loop {
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let (method, target) = (first.next()?.to_string(), first.next()?.to_string());
    let headers: BTreeMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let length: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < length {
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (target, String::new()),
    };
    Some(Request {
        method,
        path,
        query,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

async fn respond(mut stream: TcpStream, code: u16, body: Value) {
    let body = body.to_string();
    let head = format!(
        "HTTP/1.1 {code} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(body.as_bytes()).await;
    let _ = stream.shutdown().await;
}

fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": message, "reason": reason, "code": code})
}

fn scale(replicas: i32) -> Value {
    json!({"apiVersion": "autoscaling/v1", "kind": "Scale",
           "metadata": {"name": STATEFULSET, "namespace": NAMESPACE},
           "spec": {"replicas": replicas}, "status": {"replicas": replicas}})
}

async fn serve(mut stream: TcpStream, state: Arc<Mutex<State>>, volume: PathBuf) {
    let Some(request) = read_request(&mut stream).await else {
        return;
    };
    let pods_prefix = format!("/api/v1/namespaces/{NAMESPACE}/pods");
    let scale_path =
        format!("/apis/apps/v1/namespaces/{NAMESPACE}/statefulsets/{STATEFULSET}/scale");
    if request.path.starts_with(&pods_prefix) && request.path.ends_with("/exec") {
        let pod = request.path[pods_prefix.len() + 1..request.path.len() - 5].to_string();
        return exec(stream, request, pod, state, volume).await;
    }
    let (code, body) = {
        let mut state = state.lock().unwrap();
        let mut call = format!("{} {}", request.method, request.path);
        if !request.body.is_empty() {
            call = format!("{call} {}", request.body);
        }
        state.calls.push(call);
        route(&mut state, &request, &pods_prefix, &scale_path)
    };
    respond(stream, code, body).await;
}

fn route(
    state: &mut State,
    request: &Request,
    pods_prefix: &str,
    scale_path: &str,
) -> (u16, Value) {
    let method = request.method.as_str();
    if request.path == scale_path {
        let Some(replicas) = state.replicas else {
            return (
                404,
                status(404, "NotFound", "statefulsets.apps \"kafka\" not found"),
            );
        };
        if method == "GET" {
            return (200, scale(replicas));
        }
        let patch: Value = serde_json::from_str(&request.body).unwrap();
        let wanted = patch["spec"]["replicas"].as_i64().unwrap() as i32;
        if wanted > 0 && state.fail_scale_up {
            return (
                500,
                status(500, "InternalError", "etcdserver: request timed out"),
            );
        }
        state.replicas = Some(wanted);
        if wanted > 0 {
            state
                .pods
                .insert(BROKER_POD.to_string(), broker_pod(BROKER_POD));
        }
        return (200, scale(wanted));
    }
    if request.path == pods_prefix {
        if method == "POST" {
            let mut pod: Value = serde_json::from_str(&request.body).unwrap();
            pod["status"] = json!({"phase": "Pending"});
            let name = pod["metadata"]["name"].as_str().unwrap().to_string();
            if let Some(other) = state.created_meanwhile.take() {
                let other_name = other["metadata"]["name"].as_str().unwrap().to_string();
                state.pods.insert(other_name, other);
            }
            if state.pods.contains_key(&name) {
                let message = format!("pods \"{name}\" already exists");
                return (409, status(409, "AlreadyExists", &message));
            }
            state.pods.insert(name, pod.clone());
            return (201, pod);
        }
        if state.forbid_list {
            let message = "pods is forbidden: User \"system:serviceaccount:messaging:\
                kafkasnap-datadir-downtime\" cannot list resource \"pods\" in API group \"\" in \
                the namespace \"messaging\"";
            return (403, status(403, "Forbidden", message));
        }
        let items: Vec<Value> = state.pods.values().cloned().collect();
        return (
            200,
            json!({"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": items}),
        );
    }
    let Some(name) = request.path.strip_prefix(&format!("{pods_prefix}/")) else {
        return (404, status(404, "NotFound", "no such path"));
    };
    let name = name.to_string();
    let not_found = (
        404,
        status(404, "NotFound", &format!("pods \"{name}\" not found")),
    );
    match method {
        "DELETE" => match state.pods.remove(&name) {
            Some(pod) => (200, pod),
            None => not_found,
        },
        _ => {
            let scaled_down = state.replicas == Some(0);
            if name == BROKER_POD && scaled_down && state.pods.contains_key(&name) {
                if state.broker_lingers == 0 {
                    state.pods.remove(&name);
                    return not_found;
                }
                state.broker_lingers -= 1;
            }
            match state.pods.get_mut(&name) {
                None => not_found,
                Some(pod) => {
                    let shown = pod.clone();
                    // A created pod is Pending once, then Running.
                    pod["status"] = json!({"phase": "Running"});
                    (200, shown)
                }
            }
        }
    }
}

fn frame(channel: u8, bytes: &[u8]) -> Message {
    let mut data = Vec::with_capacity(bytes.len() + 1);
    data.push(channel);
    data.extend_from_slice(bytes);
    Message::binary(data)
}

/// The exec API's closing status (channel 3) for a command's exit code.
pub fn exit_status(code: i32) -> Value {
    if code == 0 {
        return json!({"metadata": {}, "status": "Success"});
    }
    json!({"metadata": {}, "status": "Failure",
           "message": format!("command terminated with non-zero exit code: exit status {code}"),
           "reason": "NonZeroExitCode",
           "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]}})
}

async fn exec(
    mut stream: TcpStream,
    request: Request,
    pod: String,
    state: Arc<Mutex<State>>,
    volume: PathBuf,
) {
    let params: Vec<(String, String)> = url::form_urlencoded::parse(request.query.as_bytes())
        .into_owned()
        .collect();
    let command: Vec<String> = params
        .iter()
        .filter(|(k, _)| k == "command")
        .map(|(_, v)| v.clone())
        .collect();
    let stdin = params.iter().any(|(k, v)| k == "stdin" && v == "true");
    let behavior = {
        let mut state = state.lock().unwrap();
        state.calls.push(format!(
            "EXEC {}/{pod} stdin={stdin} {}",
            request.path.rsplit_once("/pods/").unwrap().0,
            command.join(" ")
        ));
        state.pods.contains_key(&pod).then_some(state.exec)
    };
    let Some(behavior) = behavior else {
        return respond(stream, 404, status(404, "NotFound", "pod not found")).await;
    };
    let key = request
        .headers
        .get("sec-websocket-key")
        .cloned()
        .unwrap_or_default();
    let offered = request
        .headers
        .get("sec-websocket-protocol")
        .cloned()
        .unwrap_or_default();
    assert!(offered.contains("v5.channel.k8s.io"), "{offered}");
    let head = format!(
        "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n\
         sec-websocket-accept: {}\r\nsec-websocket-protocol: v5.channel.k8s.io\r\n\r\n",
        derive_accept_key(key.as_bytes())
    );
    if stream.write_all(head.as_bytes()).await.is_err() {
        return;
    }
    let mut ws = WebSocketStream::from_raw_socket(stream, Role::Server, None).await;
    let local: Vec<String> = command
        .iter()
        .map(|arg| match arg == HELPER_MOUNT_PATH {
            true => volume.to_str().unwrap().to_string(),
            false => arg.clone(),
        })
        .collect();
    match behavior {
        ExecBehavior::Run => run_locally(ws, local, stdin).await,
        ExecBehavior::FailAfter(bytes, code) => {
            let tar = local_tar(&local);
            let _ = ws.send(frame(1, &tar[..bytes.min(tar.len())])).await;
            let _ = ws
                .send(frame(2, b"tar: ./x: Cannot open: Permission denied\n"))
                .await;
            let _ = ws
                .send(frame(3, exit_status(code).to_string().as_bytes()))
                .await;
            let _ = ws.close(None).await;
        }
        ExecBehavior::Abrupt(bytes) => {
            let tar = local_tar(&local);
            let _ = ws.send(frame(1, &tar[..bytes.min(tar.len())])).await;
            // Dropping the stream here cuts the TCP connection: no close frame, no status.
        }
        ExecBehavior::Hang(bytes) => {
            let tar = local_tar(&local);
            let _ = ws.send(frame(1, &tar[..bytes.min(tar.len())])).await;
            // Read (and ignore) until the client goes away.
            while let Some(Ok(_)) = ws.next().await {}
        }
    }
}

/// What `tar cf - -C DIR .` prints for the (substituted) command.
fn local_tar(command: &[String]) -> Vec<u8> {
    let output = Command::new(&command[0])
        .args(&command[1..])
        .output()
        .unwrap();
    assert!(output.status.success(), "{command:?}");
    output.stdout
}

/// Runs the command, pumping stdin frames into it and its output back as frames.
async fn run_locally(mut ws: WebSocketStream<TcpStream>, command: Vec<String>, stdin: bool) {
    let mut child = Command::new(&command[0])
        .args(&command[1..])
        .stdin(if stdin { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (out_tx, mut out_rx) = mpsc::channel::<(u8, Vec<u8>)>(16);
    let pump = |channel: u8, mut reader: Box<dyn Read + Send>, tx: mpsc::Sender<(u8, Vec<u8>)>| {
        std::thread::spawn(move || loop {
            let mut buf = vec![0u8; 64 * 1024];
            match reader.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    buf.truncate(n);
                    if tx.blocking_send((channel, buf)).is_err() {
                        break;
                    }
                }
            }
        })
    };
    let stdout = pump(1, Box::new(child.stdout.take().unwrap()), out_tx.clone());
    let stderr = pump(2, Box::new(child.stderr.take().unwrap()), out_tx.clone());
    let (in_tx, in_rx) = std::sync::mpsc::channel::<Vec<u8>>();
    if let Some(mut child_stdin) = child.stdin.take() {
        std::thread::spawn(move || {
            for bytes in in_rx {
                // A command that stopped reading: the rest is dropped.
                if child_stdin.write_all(&bytes).is_err() {
                    break;
                }
            }
        });
    }
    std::thread::spawn(move || {
        let _ = (stdout.join(), stderr.join());
        let code = child.wait().unwrap().code().unwrap_or(-1);
        let _ = out_tx.blocking_send((3, exit_status(code).to_string().into_bytes()));
    });
    let mut in_tx = Some(in_tx);
    let mut ws_open = true;
    loop {
        tokio::select! {
            out = out_rx.recv() => match out {
                Some((3, status)) => {
                    let _ = ws.send(frame(3, &status)).await;
                    let _ = ws.close(None).await;
                    return;
                }
                Some((channel, bytes)) => {
                    if ws.send(frame(channel, &bytes)).await.is_err() {
                        return;
                    }
                }
                None => return,
            },
            incoming = ws.next(), if ws_open => match incoming {
                Some(Ok(Message::Binary(data))) if data.first() == Some(&0) => {
                    if let Some(tx) = &in_tx {
                        let _ = tx.send(data[1..].to_vec());
                    }
                }
                // CLOSE signal for stdin.
                Some(Ok(Message::Binary(data))) if data[..] == [255, 0] => in_tx = None,
                Some(Ok(_)) => {}
                Some(Err(_)) | None => {
                    in_tx = None;
                    ws_open = false;
                }
            },
        }
    }
}

/// A directory standing for the broker's PVC: a copy of the fixture broker's data directory
/// when present (`../shared/fixtures/kafka-bytes/`), else a small generated one.
pub fn volume_with_datadir() -> tempfile::TempDir {
    let volume = tempfile::tempdir().unwrap();
    if let Some(fixture) = fixture_datadir() {
        let status = Command::new("cp")
            .arg("-a")
            .arg(format!("{}/.", fixture.display()))
            .arg(volume.path())
            .status()
            .unwrap();
        assert!(status.success());
    } else {
        let dir = volume.path();
        std::fs::write(
            dir.join("meta.properties"),
            "#\nnode.id=1\nversion=1\ncluster.id=q1w2e3r4t5y6u7i8o9p0\n",
        )
        .unwrap();
        std::fs::create_dir_all(dir.join("orders-0")).unwrap();
        std::fs::write(
            dir.join("orders-0/00000000000000000000.log"),
            vec![7u8; 70_000],
        )
        .unwrap();
        std::fs::write(
            dir.join("orders-0/00000000000000000000.index"),
            vec![0u8; 1024],
        )
        .unwrap();
    }
    volume
}

/// Every regular file below `dir`: relative path -> bytes.
pub fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    crate::harness::files_under(dir)
        .into_iter()
        .map(|file| {
            let rel = file
                .strip_prefix(dir)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            (rel, std::fs::read(&file).unwrap())
        })
        .collect()
}
