//! A backup location: the object store behind a URL or path (parsing, cloud client
//! options, redaction for display). Its operations live in `objects`, `backups` and `lock`.

use std::sync::Arc;
use std::time::Duration;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::MicrosoftAzureBuilder;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::prefix::PrefixStore;
use object_store::{BackoffConfig, ObjectStore, ObjectStoreScheme, RetryConfig};
use url::Url;

use super::StoreError;

/// How a cloud location's client behaves when the store misbehaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOptions {
    /// How long one request is retried (connection errors, 5xx, timeouts of reads) before it
    /// fails the command. Time, not a count, bounds it: object_store's own 10 retries can
    /// be spent in under 2 s, so a blip that short would fail a nightly backup.
    pub retry_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            retry_timeout: Duration::from_secs(180),
        }
    }
}

/// Backoff between retries starts here and never exceeds `MAX_BACKOFF`, so a store that
/// comes back is used again within seconds.
const INIT_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

impl StoreOptions {
    fn retry_config(&self) -> RetryConfig {
        RetryConfig {
            backoff: BackoffConfig {
                init_backoff: INIT_BACKOFF,
                max_backoff: MAX_BACKOFF,
                base: 2.0,
            },
            // Enough retries that the timeout is what ends them (each waits >= INIT_BACKOFF).
            max_retries: (self.retry_timeout.as_millis() / INIT_BACKOFF.as_millis()).max(1)
                as usize,
            retry_timeout: self.retry_timeout,
        }
    }
}

/// An opened backup location. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Location {
    pub(super) store: Arc<dyn ObjectStore>,
    /// The location as shown to people: no query string, no user info.
    pub(super) display: String,
    /// The directory of a local location: deleting a backup also removes its directories
    /// (and any staging files of interrupted writes), which object stores do not have.
    pub(super) local_root: Option<std::path::PathBuf>,
    /// True when opening the location created its local directory.
    created_local_root: bool,
}

impl Location {
    /// Opens `target`: a plain path, `file://`, `s3://`, `gs://`, `az://` (and the other
    /// Azure forms object_store knows), or `memory://`. Cloud credentials come from the
    /// standard `AWS_*`, `GOOGLE_*` and `AZURE_*` environment variables.
    /// With `create`, a missing local directory is created.
    pub fn open(target: &str, create: bool) -> Result<Location, StoreError> {
        Self::open_with(target, create, &StoreOptions::default())
    }

    /// Whether [`Location::open`] reads `target` as a URL (`file:`, `s3://`, ...) rather than
    /// a local path.
    pub fn is_url(target: &str) -> bool {
        Url::parse(target).is_ok_and(|url| Self::is_url_scheme(&url))
    }

    /// A one-letter scheme is a Windows drive letter, not a URL.
    fn is_url_scheme(url: &Url) -> bool {
        url.scheme().len() > 1
    }

    /// [`Location::open`] with `options` for a cloud store's client.
    pub fn open_with(
        target: &str,
        create: bool,
        options: &StoreOptions,
    ) -> Result<Location, StoreError> {
        let bad = |reason: String| StoreError::InvalidLocation {
            location: redact(target),
            reason,
        };
        if target.trim().is_empty() {
            return Err(bad(
                "it is empty; give a directory or a URL such as s3://bucket/prefix".into(),
            ));
        }
        let url = match Url::parse(target) {
            Ok(url) if Self::is_url_scheme(&url) => url,
            // No scheme (or a Windows drive letter): a local path.
            _ => return Self::open_local(std::path::Path::new(target), create),
        };
        let display = redact(target);
        if url.scheme() == "file" && url.host_str().is_some_and(|host| !host.is_empty()) {
            return Err(bad(format!(
                "a file:// URL takes an absolute path (file:///var/backups), and this one names the host {:?}; give a relative path without file://",
                url.host_str().unwrap_or_default()
            )));
        }
        let (scheme, prefix) = ObjectStoreScheme::parse(&url).map_err(|_| {
            bad(format!(
                "unknown scheme {:?}; use a path, file://, s3://, gs://, az://, abfss:// or memory://",
                url.scheme()
            ))
        })?;
        let open_err = |source| StoreError::Open {
            location: display.clone(),
            source,
        };
        let store: Arc<dyn ObjectStore> = match scheme {
            ObjectStoreScheme::Local => {
                let path = url
                    .to_file_path()
                    .map_err(|_| bad("not a valid file:// URL".into()))?;
                return Self::open_local(&path, create);
            }
            ObjectStoreScheme::Memory => Arc::new(InMemory::new()),
            ObjectStoreScheme::AmazonS3 => {
                let builder = AmazonS3Builder::from_env().with_url(url.as_str());
                s3_credentials_given(&builder).map_err(bad)?;
                Arc::new(
                    builder
                        .with_retry(options.retry_config())
                        .build()
                        .map_err(open_err)?,
                )
            }
            ObjectStoreScheme::GoogleCloudStorage => Arc::new(
                GoogleCloudStorageBuilder::from_env()
                    .with_url(url.as_str())
                    .with_retry(options.retry_config())
                    .build()
                    .map_err(open_err)?,
            ),
            ObjectStoreScheme::MicrosoftAzure => Arc::new(
                MicrosoftAzureBuilder::from_env()
                    .with_url(url.as_str())
                    .with_retry(options.retry_config())
                    .build()
                    .map_err(open_err)?,
            ),
            _ => {
                return Err(bad(format!(
                    "scheme {:?} cannot hold backups",
                    url.scheme()
                )))
            }
        };
        let store: Arc<dyn ObjectStore> = if prefix.as_ref().is_empty() {
            store
        } else {
            Arc::new(PrefixStore::new(store, prefix))
        };
        Ok(Location {
            store,
            display,
            local_root: None,
            created_local_root: false,
        })
    }

    fn open_local(path: &std::path::Path, create: bool) -> Result<Location, StoreError> {
        let shown = path.display().to_string();
        if path.exists() && !path.is_dir() {
            return Err(StoreError::InvalidLocation {
                location: shown,
                reason: "it is a file, not a directory; give the directory that holds the backups (backup --to creates it when it is missing)".into(),
            });
        }
        let created_local_root = create && !path.exists();
        if create {
            std::fs::create_dir_all(path).map_err(|source| StoreError::CreateDir {
                path: shown.clone(),
                source,
            })?;
        } else if !path.is_dir() {
            return Err(StoreError::BadLocation {
                location: shown,
                reason: "no such directory; check the path (backups are written with `kafkasnap backup --to`)".into(),
            });
        }
        let absolute = std::fs::canonicalize(path).map_err(|source| StoreError::CreateDir {
            path: shown,
            source,
        })?;
        // fsync: a power loss must not leave a published manifest over segments that never
        // reached the disk (each object, then its directory, is synced before it is visible).
        let store = LocalFileSystem::new_with_prefix(&absolute)
            .map_err(|source| StoreError::Open {
                location: absolute.display().to_string(),
                source,
            })?
            .with_fsync(true);
        Ok(Location {
            store: Arc::new(store),
            display: absolute.display().to_string(),
            local_root: Some(absolute),
            created_local_root,
        })
    }

    /// After a command that wrote nothing failed: removes the local directory that opening
    /// the location created, if it holds no file (only empty directories, such as `locks/`).
    /// Anything else is left as it is.
    pub fn remove_if_created_and_empty(&self) {
        fn remove_empty(dir: &std::path::Path) -> bool {
            let Ok(entries) = std::fs::read_dir(dir) else {
                return false;
            };
            let mut empty = true;
            for entry in entries.flatten() {
                // file_type does not follow links: a link counts as content.
                let is_dir = entry.file_type().is_ok_and(|kind| kind.is_dir());
                empty &= is_dir && remove_empty(&entry.path());
            }
            empty && std::fs::remove_dir(dir).is_ok()
        }
        if let (Some(root), true) = (&self.local_root, self.created_local_root) {
            remove_empty(root);
        }
    }

    /// Wraps an existing store (tests, and callers that build their own).
    pub fn from_store(store: Arc<dyn ObjectStore>, display: impl Into<String>) -> Location {
        Location {
            store,
            display: display.into(),
            local_root: None,
            created_local_root: false,
        }
    }

    pub fn display(&self) -> &str {
        &self.display
    }
}

/// Checks, before the client is built, that S3 credentials were given: without them
/// object_store would ask an EC2 instance metadata service, which outside EC2 fails with a
/// confusing error (or hangs). Asking it is opt-in: set `AWS_METADATA_ENDPOINT`.
fn s3_credentials_given(builder: &AmazonS3Builder) -> Result<(), String> {
    let set = |key: AmazonS3ConfigKey| {
        builder
            .get_config_value(&key)
            .is_some_and(|value| !value.trim().is_empty())
    };
    let pair = |first: AmazonS3ConfigKey, second: AmazonS3ConfigKey, names: [&str; 2]| match (
        set(first),
        set(second),
    ) {
        (true, false) => Err(format!("{} is set but {} is not", names[0], names[1])),
        (false, true) => Err(format!("{} is set but {} is not", names[1], names[0])),
        (given, _) => Ok(given),
    };
    use AmazonS3ConfigKey as Key;
    let static_keys = pair(
        Key::AccessKeyId,
        Key::SecretAccessKey,
        ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"],
    )?;
    let web_identity = pair(
        Key::WebIdentityTokenFile,
        Key::RoleArn,
        ["AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN"],
    )?;
    // object_store uses a full URI only with its token file; alone, it would fall back to
    // the instance metadata service.
    let eks_pod_identity = pair(
        Key::ContainerCredentialsFullUri,
        Key::ContainerAuthorizationTokenFile,
        [
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
        ],
    )?;
    let skips_signing = builder
        .get_config_value(&Key::SkipSignature)
        .is_some_and(|value| value.eq_ignore_ascii_case("true"));
    if static_keys
        || web_identity
        || skips_signing
        || eks_pod_identity
        || set(Key::ContainerCredentialsRelativeUri)
        || set(Key::MetadataEndpoint)
    {
        return Ok(());
    }
    Err("no S3 credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set, and no role is (AWS_WEB_IDENTITY_TOKEN_FILE with AWS_ROLE_ARN on EKS, AWS_CONTAINER_CREDENTIALS_RELATIVE_URI on ECS, AWS_CONTAINER_CREDENTIALS_FULL_URI with AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE for EKS Pod Identity). To use an EC2 instance profile, set AWS_METADATA_ENDPOINT=http://169.254.169.254".into())
}

/// The location as safe to print: user info and query string (SAS tokens, keys) removed.
fn redact(target: &str) -> String {
    match Url::parse(target) {
        Ok(mut url) if url.scheme().len() > 1 => {
            let _ = url.set_username("");
            let _ = url.set_password(None);
            url.set_query(None);
            url.to_string()
        }
        _ => target.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_urls_are_never_shown() {
        let shown = redact("az://user:secret@container/prefix?sig=topsecret");
        assert!(!shown.contains("secret"), "{shown}");
    }

    #[test]
    fn s3_needs_credentials_or_a_role_before_its_client_is_built() {
        use AmazonS3ConfigKey as Key;
        let with = |settings: &[(Key, &str)]| {
            let builder = settings
                .iter()
                .fold(AmazonS3Builder::new(), |builder, (key, value)| {
                    builder.with_config(*key, *value)
                });
            s3_credentials_given(&builder)
        };
        let none = with(&[]).unwrap_err();
        assert!(
            none.contains("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set")
                && none.contains("AWS_WEB_IDENTITY_TOKEN_FILE"),
            "{none}"
        );
        assert_eq!(
            with(&[(Key::AccessKeyId, "id")]).unwrap_err(),
            "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not"
        );
        assert_eq!(
            with(&[(Key::SecretAccessKey, "secret")]).unwrap_err(),
            "AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not"
        );
        assert_eq!(
            with(&[(Key::WebIdentityTokenFile, "/token")]).unwrap_err(),
            "AWS_WEB_IDENTITY_TOKEN_FILE is set but AWS_ROLE_ARN is not"
        );
        // Alone, a full URI would make object_store ask the instance metadata service.
        assert!(with(&[(Key::ContainerCredentialsFullUri, "http://x")]).is_err());
        for given in [
            &[(Key::AccessKeyId, "id"), (Key::SecretAccessKey, "secret")][..],
            &[(Key::WebIdentityTokenFile, "/token"), (Key::RoleArn, "arn")],
            &[(Key::ContainerCredentialsRelativeUri, "/v2/credentials")],
            &[
                (Key::ContainerCredentialsFullUri, "http://x"),
                (Key::ContainerAuthorizationTokenFile, "/token"),
            ],
            &[(Key::MetadataEndpoint, "http://127.0.0.1:1")],
            &[(Key::SkipSignature, "true")],
        ] {
            assert_eq!(with(given), Ok(()), "{given:?}");
        }
    }

    #[test]
    fn unusable_local_locations_say_what_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a-file");
        std::fs::write(&file, b"x").unwrap();
        for create in [true, false] {
            let err = Location::open(file.to_str().unwrap(), create).unwrap_err();
            assert!(err.is_invalid_request(), "{err}");
            assert!(
                err.to_string().contains("it is a file, not a directory"),
                "{err}"
            );
        }
        let err = Location::open("file://relative/dir", true).unwrap_err();
        assert!(err.is_invalid_request(), "{err}");
        assert!(
            err.to_string()
                .contains("a file:// URL takes an absolute path (file:///var/backups), and this one names the host \"relative\""),
            "{err}"
        );
        assert!(!std::path::Path::new("relative").exists());
    }

    #[test]
    fn only_a_created_directory_that_holds_no_file_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let created = dir.path().join("new");
        let location = Location::open(created.to_str().unwrap(), true).unwrap();
        std::fs::create_dir_all(created.join("locks/empty")).unwrap();
        location.remove_if_created_and_empty();
        assert!(!created.exists());

        let location = Location::open(created.to_str().unwrap(), true).unwrap();
        std::fs::create_dir_all(created.join("locks")).unwrap();
        std::fs::write(created.join("locks/kept"), b"x").unwrap();
        location.remove_if_created_and_empty();
        assert!(created.join("locks/kept").exists());

        // One that was there before is never removed, empty or not.
        let existing = dir.path().join("existing");
        std::fs::create_dir(&existing).unwrap();
        Location::open(existing.to_str().unwrap(), true)
            .unwrap()
            .remove_if_created_and_empty();
        assert!(existing.exists());
    }

    #[test]
    fn unknown_scheme_is_named() {
        let err = Location::open("ftp://host/dir", false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown scheme \"ftp\""), "{err}");
    }
}
