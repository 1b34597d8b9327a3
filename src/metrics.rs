//! Metrics for unattended runs, pushed to a Prometheus Pushgateway: when the last run ended
//! and whether it succeeded, how long it took, how many records and bytes it handled.
//!
//! A successful run replaces its group (HTTP PUT), so `kafkasnap_last_success_timestamp_seconds`
//! moves forward; a failed run only adds or updates the failure metrics (HTTP POST), so the
//! last success time stays what it was and an alert on its age fires.

use std::fmt::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What one run reports.
#[derive(Debug, Clone, PartialEq)]
pub struct RunMetrics {
    /// `backup`, `restore`, `prune`...
    pub command: &'static str,
    pub succeeded: bool,
    pub finished_at: SystemTime,
    pub duration: Duration,
    pub records: Option<u64>,
    pub raw_bytes: Option<u64>,
    pub stored_bytes: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("invalid Pushgateway URL {url:?}: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("pushing metrics to {url} failed: {source}")]
    Push {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("the Pushgateway at {url} answered {status}")]
    Rejected {
        url: String,
        status: reqwest::StatusCode,
    },
}

impl RunMetrics {
    /// The Prometheus text exposition of these metrics.
    pub(crate) fn to_text(&self) -> String {
        let seconds = |t: SystemTime| {
            t.duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs_f64()
        };
        let mut text = String::new();
        let mut gauge = |name: &str, help: &str, value: f64| {
            let _ = writeln!(
                text,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        };
        gauge(
            "kafkasnap_last_run_timestamp_seconds",
            "When the last run ended.",
            seconds(self.finished_at),
        );
        gauge(
            "kafkasnap_last_run_success",
            "1 if the last run succeeded, 0 if it failed.",
            if self.succeeded { 1.0 } else { 0.0 },
        );
        gauge(
            "kafkasnap_last_run_duration_seconds",
            "How long the last run took.",
            self.duration.as_secs_f64(),
        );
        if self.succeeded {
            gauge(
                "kafkasnap_last_success_timestamp_seconds",
                "When the last successful run ended.",
                seconds(self.finished_at),
            );
            if let Some(records) = self.records {
                gauge(
                    "kafkasnap_last_success_records",
                    "Records handled by the last successful run.",
                    records as f64,
                );
            }
            if let Some(bytes) = self.raw_bytes {
                gauge(
                    "kafkasnap_last_success_raw_bytes",
                    "Raw record bytes of the last successful run.",
                    bytes as f64,
                );
            }
            if let Some(bytes) = self.stored_bytes {
                gauge(
                    "kafkasnap_last_success_stored_bytes",
                    "Stored (compressed) bytes of the last successful run.",
                    bytes as f64,
                );
            }
        }
        text
    }
}

/// Pushes `metrics` to the Pushgateway at `base_url`, in group `job="kafkasnap", command=...`.
/// A Pushgateway's base URL: http:// or https://. Checked before a run starts, so a typo
/// is not found only once the run is over.
pub fn check_pushgateway_url(base_url: &str) -> Result<url::Url, MetricsError> {
    let base = url::Url::parse(base_url).map_err(|err| MetricsError::BadUrl {
        url: base_url.into(),
        reason: err.to_string(),
    })?;
    if !matches!(base.scheme(), "http" | "https") {
        return Err(MetricsError::BadUrl {
            url: base_url.into(),
            reason: "use an http:// or https:// URL".into(),
        });
    }
    Ok(base)
}

pub async fn push(base_url: &str, metrics: &RunMetrics) -> Result<(), MetricsError> {
    let base = check_pushgateway_url(base_url)?;
    let url = format!(
        "{}/metrics/job/kafkasnap/command/{}",
        base.as_str().trim_end_matches('/'),
        metrics.command
    );
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|source| MetricsError::Push {
            url: url.clone(),
            source,
        })?;
    let request = if metrics.succeeded {
        client.put(&url)
    } else {
        client.post(&url)
    };
    let response = request
        .header("Content-Type", "text/plain; version=0.0.4")
        .body(metrics.to_text())
        .send()
        .await
        .map_err(|source| MetricsError::Push {
            url: url.clone(),
            source,
        })?;
    if !response.status().is_success() {
        return Err(MetricsError::Rejected {
            url,
            status: response.status(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(succeeded: bool) -> RunMetrics {
        RunMetrics {
            command: "backup",
            succeeded,
            finished_at: UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            duration: Duration::from_millis(2500),
            records: Some(42),
            raw_bytes: Some(1000),
            stored_bytes: Some(300),
        }
    }

    #[test]
    fn success_reports_everything() {
        let text = run(true).to_text();
        assert!(
            text.contains("kafkasnap_last_success_timestamp_seconds 1700000000\n"),
            "{text}"
        );
        assert!(text.contains("kafkasnap_last_run_success 1\n"));
        assert!(text.contains("kafkasnap_last_success_records 42\n"));
        assert!(text.contains("kafkasnap_last_run_duration_seconds 2.5\n"));
    }

    #[test]
    fn failure_never_touches_the_last_success_time() {
        let text = run(false).to_text();
        assert!(text.contains("kafkasnap_last_run_success 0\n"), "{text}");
        assert!(!text.contains("last_success"), "{text}");
    }
}
