//! A backup location: the object store behind a URL or path (parsing, cloud client
//! options, redaction for display). Its operations live in `objects`, `backups` and `lock`.

use std::sync::Arc;
use std::time::Duration;

use object_store::aws::AmazonS3Builder;
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
        let bad = |reason: String| StoreError::BadLocation {
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
            ObjectStoreScheme::AmazonS3 => Arc::new(
                AmazonS3Builder::from_env()
                    .with_url(url.as_str())
                    .with_retry(options.retry_config())
                    .build()
                    .map_err(open_err)?,
            ),
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
        })
    }

    fn open_local(path: &std::path::Path, create: bool) -> Result<Location, StoreError> {
        let shown = path.display().to_string();
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
        })
    }

    /// Wraps an existing store (tests, and callers that build their own).
    pub fn from_store(store: Arc<dyn ObjectStore>, display: impl Into<String>) -> Location {
        Location {
            store,
            display: display.into(),
            local_root: None,
        }
    }

    pub fn display(&self) -> &str {
        &self.display
    }
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
    fn unknown_scheme_is_named() {
        let err = Location::open("ftp://host/dir", false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown scheme \"ftp\""), "{err}");
    }
}
