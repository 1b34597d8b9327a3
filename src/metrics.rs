//! Metrics for unattended runs, pushed to a Prometheus Pushgateway: when the last run ended
//! and whether it succeeded, how long it took, how many records and bytes it handled; for a
//! restore drill ([`DrillMetrics`]), the recovery time it measured and the backup's age.
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

/// What one restore drill reports. A drill succeeded when it found the restore exact.
#[derive(Debug, Clone, PartialEq)]
pub struct DrillMetrics {
    pub succeeded: bool,
    pub finished_at: SystemTime,
    /// How long the restore into the scratch cluster took (the recovery time); `None` when
    /// it did not get that far.
    pub restore_duration: Option<Duration>,
    /// How old the drilled backup was when the drill began (the recovery point it gives).
    pub backup_age: Option<Duration>,
    pub records: Option<u64>,
    /// Differences and damaged objects found; `None` when the drill failed before checking.
    pub differences: Option<usize>,
}

pub(crate) fn epoch_seconds(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

/// Appends one gauge, with its HELP and TYPE lines, to `text`.
fn gauge(text: &mut String, name: &str, help: &str, value: f64) {
    let _ = writeln!(
        text,
        "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
    );
}

impl DrillMetrics {
    /// The Prometheus text exposition of these metrics. The success metrics (time, recovery
    /// time, backup age, records) are only in a successful drill's, so they keep describing
    /// the last good drill after a failed one.
    pub(crate) fn to_text(&self) -> String {
        let mut text = String::new();
        gauge(
            &mut text,
            "kafkasnap_drill_last_run_timestamp_seconds",
            "When the last restore drill ended.",
            epoch_seconds(self.finished_at),
        );
        gauge(
            &mut text,
            "kafkasnap_drill_last_run_success",
            "1 if the last restore drill found the restore exact, 0 if not.",
            if self.succeeded { 1.0 } else { 0.0 },
        );
        if let Some(differences) = self.differences {
            gauge(
                &mut text,
                "kafkasnap_drill_last_run_differences",
                "Differences and damaged objects the last restore drill found.",
                differences as f64,
            );
        }
        if self.succeeded {
            gauge(
                &mut text,
                "kafkasnap_drill_last_success_timestamp_seconds",
                "When the last exact restore drill ended.",
                epoch_seconds(self.finished_at),
            );
            if let Some(duration) = self.restore_duration {
                gauge(
                    &mut text,
                    "kafkasnap_drill_rto_seconds",
                    "How long the last exact drill's restore took (recovery time).",
                    duration.as_secs_f64(),
                );
            }
            if let Some(age) = self.backup_age {
                gauge(
                    &mut text,
                    "kafkasnap_drill_backup_age_seconds",
                    "Age of the backup the last exact drill restored, when it began (recovery point).",
                    age.as_secs_f64(),
                );
            }
            if let Some(records) = self.records {
                gauge(
                    &mut text,
                    "kafkasnap_drill_records",
                    "Records the last exact drill restored and checked.",
                    records as f64,
                );
            }
        }
        text
    }
}

/// Pushes `metrics` to the Pushgateway at `base_url`, in group `job="kafkasnap", command="drill"`
/// (a success replaces the group, a failure only updates what it reports, as [`push`] does).
pub async fn push_drill(base_url: &str, metrics: &DrillMetrics) -> Result<(), MetricsError> {
    push_text(base_url, "drill", metrics.succeeded, metrics.to_text()).await
}

impl RunMetrics {
    /// The Prometheus text exposition of these metrics.
    pub(crate) fn to_text(&self) -> String {
        let mut text = String::new();
        gauge(
            &mut text,
            "kafkasnap_last_run_timestamp_seconds",
            "When the last run ended.",
            epoch_seconds(self.finished_at),
        );
        gauge(
            &mut text,
            "kafkasnap_last_run_success",
            "1 if the last run succeeded, 0 if it failed.",
            if self.succeeded { 1.0 } else { 0.0 },
        );
        gauge(
            &mut text,
            "kafkasnap_last_run_duration_seconds",
            "How long the last run took.",
            self.duration.as_secs_f64(),
        );
        if self.succeeded {
            gauge(
                &mut text,
                "kafkasnap_last_success_timestamp_seconds",
                "When the last successful run ended.",
                epoch_seconds(self.finished_at),
            );
            if let Some(records) = self.records {
                gauge(
                    &mut text,
                    "kafkasnap_last_success_records",
                    "Records handled by the last successful run.",
                    records as f64,
                );
            }
            if let Some(bytes) = self.raw_bytes {
                gauge(
                    &mut text,
                    "kafkasnap_last_success_raw_bytes",
                    "Raw record bytes of the last successful run.",
                    bytes as f64,
                );
            }
            if let Some(bytes) = self.stored_bytes {
                gauge(
                    &mut text,
                    "kafkasnap_last_success_stored_bytes",
                    "Stored (compressed) bytes of the last successful run.",
                    bytes as f64,
                );
            }
        }
        text
    }
}

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

/// Pushes `metrics` to the Pushgateway at `base_url`, in group `job="kafkasnap", command=...`.
pub async fn push(base_url: &str, metrics: &RunMetrics) -> Result<(), MetricsError> {
    push_text(
        base_url,
        metrics.command,
        metrics.succeeded,
        metrics.to_text(),
    )
    .await
}

/// Pushes the exposition `body` into group `job="kafkasnap", command=COMMAND`: PUT (the group
/// replaced) when the run `succeeded`, else POST (only these metrics replaced).
async fn push_text(
    base_url: &str,
    command: &str,
    succeeded: bool,
    body: String,
) -> Result<(), MetricsError> {
    let base = check_pushgateway_url(base_url)?;
    let url = format!(
        "{}/metrics/job/kafkasnap/command/{}",
        base.as_str().trim_end_matches('/'),
        command
    );
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|source| MetricsError::Push {
            url: url.clone(),
            source,
        })?;
    let request = if succeeded {
        client.put(&url)
    } else {
        client.post(&url)
    };
    let response = request
        .header("Content-Type", "text/plain; version=0.0.4")
        .body(body)
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
    fn a_drill_reports_its_recovery_time_and_point_only_when_exact() {
        let exact = DrillMetrics {
            succeeded: true,
            finished_at: UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            restore_duration: Some(Duration::from_millis(12_500)),
            backup_age: Some(Duration::from_secs(3600)),
            records: Some(42),
            differences: Some(0),
        };
        let text = exact.to_text();
        for line in [
            "kafkasnap_drill_last_success_timestamp_seconds 1700000000\n",
            "kafkasnap_drill_rto_seconds 12.5\n",
            "kafkasnap_drill_backup_age_seconds 3600\n",
            "kafkasnap_drill_last_run_success 1\n",
            "kafkasnap_drill_last_run_differences 0\n",
        ] {
            assert!(text.contains(line), "{line} missing from {text}");
        }
        let differing = DrillMetrics {
            succeeded: false,
            differences: Some(2),
            ..exact
        }
        .to_text();
        assert!(differing.contains("kafkasnap_drill_last_run_success 0\n"));
        assert!(differing.contains("kafkasnap_drill_last_run_differences 2\n"));
        assert!(!differing.contains("last_success") && !differing.contains("rto"));
    }

    #[test]
    fn failure_never_touches_the_last_success_time() {
        let text = run(false).to_text();
        assert!(text.contains("kafkasnap_last_run_success 0\n"), "{text}");
        assert!(!text.contains("last_success"), "{text}");
    }
}
