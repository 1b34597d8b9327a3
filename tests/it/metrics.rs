//! --pushgateway: a successful backup PUTs its metrics, a failed one POSTs only failure
//! metrics, to a real HTTP server on loopback.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use crate::fixture::path_str;
use crate::harness::{create_topic, fidelity_record, kafkasnap, produce, Broker};

/// (method, path, body) of every request received.
pub(crate) type Requests = Arc<Mutex<Vec<(String, String, String)>>>;

/// A minimal HTTP/1.1 server that records requests and answers 200.
pub(crate) fn pushgateway() -> (String, Requests) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let requests: Requests = Arc::default();
    let seen = Arc::clone(&requests);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            reader.read_line(&mut request_line).unwrap();
            let mut length = 0;
            loop {
                let mut header = String::new();
                reader.read_line(&mut header).unwrap();
                if header.trim().is_empty() {
                    break;
                }
                if let Some(value) = header.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = value.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let mut parts = request_line.split_whitespace();
            let (method, path) = (
                parts.next().unwrap().to_string(),
                parts.next().unwrap().to_string(),
            );
            seen.lock()
                .unwrap()
                .push((method, path, String::from_utf8(body).unwrap()));
            stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .unwrap();
        }
    });
    (url, requests)
}

#[test]
fn backups_push_their_outcome_to_the_pushgateway() {
    let (url, requests) = pushgateway();
    let broker = Broker::start("metrics");
    create_topic(&broker.bootstrap, "t", 1, &[]);
    produce(
        &broker.bootstrap,
        "t",
        &(0..25).map(|i| fidelity_record(0, i)).collect::<Vec<_>>(),
    );
    let dir = tempfile::tempdir().unwrap();

    let ok = kafkasnap(
        &[
            "backup",
            "-b",
            &broker.bootstrap,
            "--to",
            path_str(dir.path()),
            "--pushgateway",
            &url,
        ],
        &[],
    );
    assert!(ok.status.success());
    let failed = kafkasnap(
        &[
            "backup",
            "-b",
            "127.0.0.1:1",
            "--to",
            path_str(dir.path()),
            "--timeout",
            "2s",
            "--pushgateway",
            &url,
        ],
        &[],
    );
    assert_eq!(
        failed.status.code(),
        Some(1),
        "a failed backup still fails when its metrics are pushed"
    );

    let requests = requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 2, "{requests:?}");
    let (method, path, body) = &requests[0];
    assert_eq!(
        (method.as_str(), path.as_str()),
        ("PUT", "/metrics/job/kafkasnap/command/backup")
    );
    assert!(
        body.contains("kafkasnap_last_run_success 1\n")
            && body.contains("kafkasnap_last_success_records 25\n"),
        "{body}"
    );
    assert!(
        body.contains("kafkasnap_last_success_timestamp_seconds "),
        "{body}"
    );
    let (method, _, body) = &requests[1];
    assert_eq!(
        method, "POST",
        "a failure must not replace the last success time"
    );
    assert!(
        body.contains("kafkasnap_last_run_success 0\n") && !body.contains("last_success"),
        "{body}"
    );
}
