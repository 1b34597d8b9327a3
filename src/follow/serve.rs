//! The follower's HTTP endpoint: `GET /metrics` (Prometheus text) and `GET /healthz`
//! (200 when healthy, 503 with the reason otherwise). Plain HTTP/1.1, one request per
//! connection: all a scraper and a kubelet probe need.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::status::{FollowStatus, Health};

/// The largest request head read; anything longer is answered 431.
const MAX_REQUEST_HEAD: usize = 8192;
/// How long a client may take to send its request and read the answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections served at once; more are closed at once, so that a flood of them cannot use
/// up the file descriptors the follower's Kafka and store connections need.
const MAX_CONNECTIONS: usize = 32;

/// Why the endpoint could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {address} for --metrics-listen: {source}; give a free address such as 127.0.0.1:9400 (or 0.0.0.0:9400 in a pod)")]
pub struct ListenError {
    address: String,
    #[source]
    source: std::io::Error,
}

/// Binds `address` (so a taken port fails the command at once) and serves `status` from a
/// background task until the process ends. Returns the address bound (port 0 picks one).
pub async fn serve_status(
    address: &str,
    status: Arc<FollowStatus>,
) -> Result<SocketAddr, ListenError> {
    let listen_error = |source| ListenError {
        address: address.to_string(),
        source,
    };
    let listener = TcpListener::bind(address).await.map_err(listen_error)?;
    let bound = listener.local_addr().map_err(listen_error)?;
    tracing::info!(address = %bound, "serving /metrics and /healthz");
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
                        continue; // dropped: closed
                    };
                    let status = Arc::clone(&status);
                    tokio::spawn(async move {
                        let _ = tokio::time::timeout(ANSWER_TIMEOUT, answer(stream, status)).await;
                        drop(slot);
                    });
                }
                Err(err) => {
                    tracing::warn!(error = %err, "metrics endpoint: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    });
    Ok(bound)
}

async fn answer(mut stream: TcpStream, status: Arc<FollowStatus>) {
    let head = match read_head(&mut stream).await {
        Ok(Some(head)) => head,
        Ok(None) => {
            let _ = respond(&mut stream, 431, "text/plain", "request head too large\n").await;
            return;
        }
        Err(_) => return,
    };
    let (code, content_type, body) = route(&head, &status);
    let _ = respond(&mut stream, code, content_type, &body).await;
}

/// What to answer to a request whose head (up to the blank line) is `head`.
fn route(head: &str, status: &FollowStatus) -> (u16, &'static str, String) {
    let mut words = head.lines().next().unwrap_or_default().split_whitespace();
    let (method, target) = (
        words.next().unwrap_or_default(),
        words.next().unwrap_or("/"),
    );
    let path = target.split('?').next().unwrap_or_default();
    const TEXT: &str = "text/plain; charset=utf-8";
    if method != "GET" {
        return (405, TEXT, "only GET is served\n".into());
    }
    match path {
        "/metrics" => (
            200,
            "text/plain; version=0.0.4; charset=utf-8",
            status.to_prometheus(),
        ),
        "/healthz" => match status.health() {
            Health::Healthy => (200, TEXT, "ok\n".into()),
            Health::Unhealthy(why) => (503, TEXT, format!("{why}\n")),
        },
        _ => (404, TEXT, "not found: try /metrics or /healthz\n".into()),
    }
}

/// The request head, up to and without the blank line; `None` when it is too large.
async fn read_head(stream: &mut TcpStream) -> std::io::Result<Option<String>> {
    let mut buffer = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            return Ok(Some(String::from_utf8_lossy(&buffer[..end]).into_owned()));
        }
        if buffer.len() > MAX_REQUEST_HEAD {
            return Ok(None);
        }
        let read = stream.read(&mut chunk).await?;
        if read == 0 {
            return Ok(Some(String::from_utf8_lossy(&buffer).into_owned()));
        }
        buffer.extend_from_slice(&chunk[..read]);
    }
}

async fn respond(
    stream: &mut TcpStream,
    code: u16,
    content_type: &str,
    body: &str,
) -> std::io::Result<()> {
    let reason = match code {
        200 => "OK",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        _ => "Service Unavailable",
    };
    let head = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_metrics_health_and_the_rest() {
        let status = FollowStatus::new(Duration::from_secs(60));
        let (code, kind, body) = route("GET /metrics HTTP/1.1\r\nHost: x", &status);
        assert_eq!(
            (code, kind.starts_with("text/plain; version=0.0.4")),
            (200, true)
        );
        assert!(
            body.contains("kafkasnap_follow_checkpoints_total 0"),
            "{body}"
        );
        let (code, _, body) = route("GET /healthz HTTP/1.1", &status);
        assert_eq!(code, 503);
        assert!(body.contains("no checkpoint published yet"), "{body}");
        assert_eq!(route("GET /nope HTTP/1.1", &status).0, 404);
        assert_eq!(route("POST /metrics HTTP/1.1", &status).0, 405);
    }
}
