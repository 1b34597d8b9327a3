//! A command in a pod fed through the exec API's stdin (channel 0), e.g. `tar x` for a
//! data-dir restore: write to it, close its stdin, and judge how it ended from the status
//! channel (stderr kept for the message). Closing stdin is a CLOSE signal on the
//! `v5.channel.k8s.io` protocol; on `v4` it closes the whole connection, so the status is
//! awaited a moment first (tar stops at its end-of-archive marker without needing EOF).

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use kube::api::{Api, AttachParams, AttachedProcess};
use tokio::io::{AsyncWriteExt, SimplexStream, WriteHalf};
use tokio::task::JoinHandle;

use super::exec::{drain_stderr, exec_err, judge, stream_err, PodTarget, Stderr};
use super::K8sError;

/// Bytes the exec message loop may buffer for stdin before a write waits.
const STDIN_PIPE_BYTES: usize = 1024 * 1024;
/// How long to wait for the exit status, with stdin still open, once everything is written.
const STATUS_BEFORE_CLOSE: Duration = Duration::from_secs(2);

/// A running command reading its stdin from us.
pub(crate) struct StdinExec {
    target: PodTarget,
    process: Option<AttachedProcess>,
    stdin: Option<WriteHalf<SimplexStream>>,
    status_rx: Pin<Box<dyn Future<Output = Option<Status>> + Send>>,
    /// `Some(None)`: the loop ended without a status.
    status: Option<Option<Status>>,
    stderr: Option<JoinHandle<Stderr>>,
    stall_timeout: Duration,
}

impl Drop for StdinExec {
    fn drop(&mut self) {
        if let Some(stderr) = &self.stderr {
            stderr.abort();
        }
    }
}

impl StdinExec {
    pub(crate) async fn start(
        client: kube::Client,
        target: &PodTarget,
        command: Vec<String>,
        stall_timeout: Duration,
    ) -> Result<StdinExec, K8sError> {
        let pods: Api<Pod> = Api::namespaced(client, &target.namespace);
        let params = AttachParams::default()
            .container(target.container.clone())
            .stdin(true)
            .stdout(false)
            .stderr(true)
            .max_stdin_buf_size(STDIN_PIPE_BYTES);
        let mut process = pods
            .exec(&target.pod, command, &params)
            .await
            .map_err(|source| exec_err(target, source))?;
        let stdin = process.stdin().expect("stdin was requested");
        let stderr = process.stderr().expect("stderr was requested");
        let status_rx = process.take_status().expect("status is taken once");
        Ok(StdinExec {
            target: target.clone(),
            process: Some(process),
            stdin: Some(stdin),
            status_rx: Box::pin(status_rx),
            status: None,
            stderr: Some(drain_stderr(stderr)),
            stall_timeout,
        })
    }

    /// Writes all of `bytes`. `Ok(false)` when the command has already ended (its status
    /// says how; `finish` reports it): write nothing more.
    pub(crate) async fn write(&mut self, bytes: &[u8]) -> Result<bool, K8sError> {
        if self.status.is_some() {
            return Ok(false);
        }
        let stdin = self.stdin.as_mut().expect("stdin is open until finish");
        let status_rx = &mut self.status_rx;
        let write = tokio::time::timeout(self.stall_timeout, async {
            tokio::select! {
                biased;
                status = status_rx => Err(status),
                written = stdin.write_all(bytes) => Ok(written),
            }
        });
        match write.await {
            Err(_) => Err(self.target.stalled(self.stall_timeout)),
            Ok(Ok(Ok(()))) => Ok(true),
            // The pipe closes when the message loop ends: the status (if any) comes with it.
            Ok(Ok(Err(_))) => {
                self.status = Some((&mut self.status_rx).await);
                Ok(false)
            }
            Ok(Err(status)) => {
                self.status = Some(status);
                Ok(false)
            }
        }
    }

    /// Closes stdin, waits for the exit status and judges it. `Ok` holds stderr lines.
    pub(crate) async fn finish(mut self) -> Result<Vec<String>, K8sError> {
        if self.status.is_none() {
            if let Ok(status) = tokio::time::timeout(STATUS_BEFORE_CLOSE, &mut self.status_rx).await
            {
                self.status = Some(status);
            }
        }
        if let Some(mut stdin) = self.stdin.take() {
            let _ = stdin.shutdown().await;
        }
        let status = match self.status.take() {
            Some(status) => status,
            None => tokio::time::timeout(self.stall_timeout, &mut self.status_rx)
                .await
                .map_err(|_| self.target.stalled(self.stall_timeout))?,
        };
        let joined = match self.process.take() {
            Some(process) => process.join().await,
            None => Ok(()),
        };
        if status.is_none() {
            if let Err(e) = joined {
                return Err(stream_err(&self.target, Box::new(e)));
            }
        }
        let stderr = match self.stderr.take() {
            Some(handle) => handle.await.unwrap_or_default(),
            None => Stderr::default(),
        };
        let text = String::from_utf8_lossy(&stderr.kept).into_owned();
        judge(&self.target, status, &text, stderr.dropped)
    }
}
