//! `tar cf - -C PATH .` in a pod through the exec API: start it, hand out its stdout as it
//! arrives, and judge how it ended. A failed command shows up only in the status channel, so
//! the status is always checked; a stream that ends without one is an error. GNU tar's
//! "file changed as we read it" (exit code 1, nothing else on stderr) is a warning.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bytes::BytesMut;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use kube::api::{Api, AttachParams, AttachedProcess};
use tokio::io::{AsyncReadExt, ReadHalf, SimplexStream};
use tokio::task::JoinHandle;

use super::{BoxError, K8sError};

/// Bytes the exec message loop may buffer for stdout before it waits for us.
const STDOUT_PIPE_BYTES: usize = 1024 * 1024;
/// Stderr kept for messages; the rest is counted, not kept.
const STDERR_KEEP_BYTES: usize = 64 * 1024;
/// GNU tar's warning for a file that grew while it was read (a broker writing its log).
const FILE_CHANGED: &str = "file changed as we read it";

/// Which container's directory to archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodTarget {
    pub namespace: String,
    pub pod: String,
    pub container: String,
    /// Absolute directory inside the container.
    pub path: String,
}

impl PodTarget {
    /// The error for a stream that delivered nothing for `after`.
    pub(crate) fn stalled(&self, after: Duration) -> K8sError {
        K8sError::Stalled {
            namespace: self.namespace.clone(),
            pod: self.pod.clone(),
            after,
        }
    }

    /// The error for a stream that ended without an exit status.
    pub(crate) fn no_exit_status(&self) -> K8sError {
        K8sError::NoExitStatus {
            namespace: self.namespace.clone(),
            pod: self.pod.clone(),
        }
    }
}

/// A running `tar` in a pod.
pub(crate) struct TarExec {
    target: PodTarget,
    /// Owns the exec message loop (dropping it stops the loop). `join` is only called once
    /// the loop is over: on the v4 protocol it would close the websocket and cut stdout.
    process: Option<AttachedProcess>,
    stdout: ReadHalf<SimplexStream>,
    /// Resolves when the status arrives, or with `None` when the loop ends without one.
    status_rx: Pin<Box<dyn Future<Output = Option<Status>> + Send>>,
    status: Option<Status>,
    /// Taken by `finish`; aborted on drop (after a failed loop its pipe never ends).
    stderr: Option<JoinHandle<Stderr>>,
    stall_timeout: Duration,
}

impl Drop for TarExec {
    fn drop(&mut self) {
        if let Some(stderr) = &self.stderr {
            stderr.abort();
        }
    }
}

/// What a command wrote on stderr: the first bytes, and how many more there were.
#[derive(Default)]
pub(crate) struct Stderr {
    pub(crate) kept: Vec<u8>,
    pub(crate) dropped: u64,
}

/// Reads stderr to its end concurrently: the message loop blocks on a full stderr pipe.
pub(crate) fn drain_stderr(mut stderr: ReadHalf<SimplexStream>) -> JoinHandle<Stderr> {
    tokio::spawn(async move {
        let mut out = Stderr::default();
        let mut buf = vec![0u8; 8192];
        loop {
            match stderr.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let keep = n.min(STDERR_KEEP_BYTES.saturating_sub(out.kept.len()));
                    out.kept.extend_from_slice(&buf[..keep]);
                    out.dropped += (n - keep) as u64;
                }
            }
        }
        out
    })
}

pub(crate) fn exec_err(target: &PodTarget, source: kube::Error) -> K8sError {
    K8sError::Exec {
        namespace: target.namespace.clone(),
        pod: target.pod.clone(),
        container: target.container.clone(),
        hint: exec_hint(&source),
        source: Box::new(source),
    }
}

impl TarExec {
    pub(crate) async fn start(
        client: kube::Client,
        target: &PodTarget,
        stall_timeout: Duration,
    ) -> Result<TarExec, K8sError> {
        let pods: Api<Pod> = Api::namespaced(client, &target.namespace);
        let params = AttachParams::default()
            .container(target.container.clone())
            .stdin(false)
            .stdout(true)
            .stderr(true)
            .max_stdout_buf_size(STDOUT_PIPE_BYTES);
        let command = ["tar", "cf", "-", "-C", target.path.as_str(), "."];
        let mut process = pods
            .exec(&target.pod, command, &params)
            .await
            .map_err(|source| exec_err(target, source))?;
        let stdout = process.stdout().expect("stdout was requested");
        let stderr = process.stderr().expect("stderr was requested");
        let status_rx = process.take_status().expect("status is taken once");
        Ok(TarExec {
            target: target.clone(),
            process: Some(process),
            stdout,
            status_rx: Box::pin(status_rx),
            status: None,
            stderr: Some(drain_stderr(stderr)),
            stall_timeout,
        })
    }

    /// Appends the next stdout bytes to `buf`; 0 at the end of the stream. Fails when no
    /// byte arrives for the stall timeout.
    pub(crate) async fn read(&mut self, buf: &mut BytesMut) -> Result<usize, K8sError> {
        let stall_timeout = self.stall_timeout;
        match tokio::time::timeout(stall_timeout, self.read_or_wait(buf)).await {
            Ok(read) => read,
            Err(_) => Err(self.target.stalled(stall_timeout)),
        }
    }

    async fn read_or_wait(&mut self, buf: &mut BytesMut) -> Result<usize, K8sError> {
        loop {
            if self.status.is_some() {
                // The loop has ended well and shuts stdout down: read what is left.
                return self
                    .stdout
                    .read_buf(buf)
                    .await
                    .map_err(|e| self.stream_err(e.into()));
            }
            tokio::select! {
                biased;
                read = self.stdout.read_buf(buf) => {
                    return read.map_err(|e| self.stream_err(e.into()));
                }
                status = &mut self.status_rx => match status {
                    Some(status) => self.status = Some(status),
                    // Ended without a status; after an error stdout never ends, so stop here.
                    None => return Err(self.ended_without_status().await),
                },
            }
        }
    }

    /// After stdout has ended: how tar ended. `Ok` holds warnings for the manifest.
    pub(crate) async fn finish(mut self) -> Result<Vec<String>, K8sError> {
        let status = match self.status.take() {
            Some(status) => status,
            None => match (&mut self.status_rx).await {
                Some(status) => status,
                None => return Err(self.ended_without_status().await),
            },
        };
        if let Some(process) = self.process.take() {
            process
                .join()
                .await
                .map_err(|e| stream_err(&self.target, Box::new(e)))?;
        }
        let stderr = match self.stderr.take() {
            Some(handle) => handle.await.unwrap_or_default(),
            None => Stderr::default(),
        };
        let text = String::from_utf8_lossy(&stderr.kept).into_owned();
        judge(&self.target, Some(status), &text, stderr.dropped)
    }

    /// The loop is over (no status will come): its own error, else "no exit status".
    async fn ended_without_status(&mut self) -> K8sError {
        let joined = match self.process.take() {
            Some(process) => process.join().await,
            None => Ok(()),
        };
        match joined {
            Err(e) => stream_err(&self.target, Box::new(e)),
            Ok(()) => self.target.no_exit_status(),
        }
    }

    fn stream_err(&self, source: BoxError) -> K8sError {
        stream_err(&self.target, source)
    }
}

pub(crate) fn stream_err(target: &PodTarget, source: BoxError) -> K8sError {
    K8sError::Stream {
        namespace: target.namespace.clone(),
        pod: target.pod.clone(),
        source,
    }
}

fn exec_hint(error: &kube::Error) -> &'static str {
    match error {
        kube::Error::Api(status) if status.code == 403 => {
            " (forbidden: the service account needs RBAC `create` on `pods/exec` in this namespace)"
        }
        kube::Error::Api(status) if status.code == 404 => {
            " (not found: check the namespace, pod and container names)"
        }
        _ => "",
    }
}

/// Success, success with warnings, or the failure with tar's own words.
pub(crate) fn judge(
    target: &PodTarget,
    status: Option<Status>,
    stderr: &str,
    stderr_dropped: u64,
) -> Result<Vec<String>, K8sError> {
    let Some(status) = status else {
        return Err(target.no_exit_status());
    };
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let mut warnings: Vec<String> = lines.iter().map(|l| format!("tar: {l}")).collect();
    if stderr_dropped > 0 {
        warnings.push(format!(
            "tar wrote {stderr_dropped} more bytes of stderr (not kept)"
        ));
    }
    if status.status.as_deref() == Some("Success") {
        return Ok(warnings);
    }
    let exit_code = status
        .details
        .as_ref()
        .and_then(|d| d.causes.as_ref())
        .and_then(|causes| {
            causes
                .iter()
                .find(|c| c.reason.as_deref() == Some("ExitCode"))
        })
        .and_then(|c| c.message.as_deref())
        .and_then(|m| m.trim().parse::<i32>().ok());
    let only_changed_files =
        !lines.is_empty() && stderr_dropped == 0 && lines.iter().all(|l| l.contains(FILE_CHANGED));
    if status.reason.as_deref() == Some("NonZeroExitCode")
        && exit_code == Some(1)
        && only_changed_files
    {
        return Ok(warnings);
    }
    let message = status
        .message
        .clone()
        .or_else(|| status.reason.clone())
        .unwrap_or_else(|| "the command failed".into());
    Err(K8sError::CommandFailed {
        namespace: target.namespace.clone(),
        pod: target.pod.clone(),
        exit_code,
        message,
        stderr: lines.join("; "),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> PodTarget {
        PodTarget {
            namespace: "messaging".into(),
            pod: "kafka-0".into(),
            container: "kafka".into(),
            path: "/var/lib/kafka/data".into(),
        }
    }

    fn failure(code: &str) -> Status {
        serde_json::from_value(serde_json::json!({
            "status": "Failure",
            "reason": "NonZeroExitCode",
            "message": format!("command terminated with non-zero exit code: exit status {code}"),
            "details": {"causes": [{"reason": "ExitCode", "message": code}]}
        }))
        .unwrap()
    }

    #[test]
    fn success_and_changed_files_pass_everything_else_fails() {
        let ok: Status = serde_json::from_str(r#"{"metadata":{},"status":"Success"}"#).unwrap();
        assert_eq!(
            judge(&target(), Some(ok), "", 0).unwrap(),
            Vec::<String>::new()
        );
        let changed = "tar: ./t-0/00000000000000000000.log: file changed as we read it\n";
        let warnings = judge(&target(), Some(failure("1")), changed, 0).unwrap();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains(FILE_CHANGED));

        let mixed = format!("{changed}tar: ./x: Cannot open: Permission denied\n");
        let err = judge(&target(), Some(failure("1")), &mixed, 0).unwrap_err();
        assert!(
            matches!(
                err,
                K8sError::CommandFailed {
                    exit_code: Some(1),
                    ..
                }
            ),
            "{err}"
        );
        let err = judge(&target(), Some(failure("2")), changed, 0).unwrap_err();
        assert!(err.to_string().contains("kafka-0"), "{err}");
        assert!(err.to_string().contains("exit code 2"), "{err}");
        let err = judge(&target(), Some(failure("1")), "", 0).unwrap_err();
        assert!(matches!(err, K8sError::CommandFailed { .. }), "{err}");
        assert!(matches!(
            judge(&target(), None, "", 0).unwrap_err(),
            K8sError::NoExitStatus { .. }
        ));
    }
}
