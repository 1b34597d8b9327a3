//! Client settings shared by every consumer, producer and admin client kafkasnap makes:
//! bootstrap servers plus pass-through librdkafka properties (`-X`, `--config`).

use std::time::Duration;

use rdkafka::ClientConfig;

use super::KafkaError;

/// Where the cluster is and how to talk to it.
#[derive(Clone)]
pub struct ClientSettings {
    pub(crate) bootstrap_servers: String,
    /// librdkafka properties, applied in order (later wins); may hold secrets.
    pub properties: Vec<(String, String)>,
    /// How long to wait for the cluster to answer a metadata or admin request.
    pub request_timeout: Duration,
}

impl std::fmt::Debug for ClientSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.properties.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("ClientSettings")
            .field("bootstrap_servers", &self.bootstrap_servers)
            .field("property_names", &names)
            .field("request_timeout", &self.request_timeout)
            .finish()
    }
}

impl ClientSettings {
    pub fn new(bootstrap_servers: impl Into<String>) -> Self {
        ClientSettings {
            bootstrap_servers: bootstrap_servers.into(),
            properties: Vec::new(),
            request_timeout: Duration::from_secs(30),
        }
    }

    /// A config with our `defaults` first, then the user's properties (so they can tune
    /// anything), then `required` (settings correctness depends on).
    pub(crate) fn config(
        &self,
        defaults: &[(&str, &str)],
        required: &[(&str, &str)],
    ) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.bootstrap_servers);
        config.set(
            "client.id",
            concat!("kafkasnap/", env!("CARGO_PKG_VERSION")),
        );
        // Without this librdkafka retries forever against a wrong address.
        let timeout_ms = self.request_timeout.as_millis().to_string();
        config.set("socket.connection.setup.timeout.ms", &timeout_ms);
        for (key, value) in defaults {
            config.set(*key, *value);
        }
        for (key, value) in &self.properties {
            config.set(key, value);
        }
        for (key, value) in required {
            config.set(*key, *value);
        }
        config
    }
}

/// Reads a librdkafka properties file: `key=value` lines, `#` comments, blank lines.
pub fn parse_properties_file(path: &std::path::Path) -> Result<Vec<(String, String)>, KafkaError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| KafkaError::ConfigFile {
        path: shown.clone(),
        source,
    })?;
    let mut properties = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            // Never echo the line: it may be a secret written without its key.
            let text = format!("{} characters without '='", line.len());
            return Err(KafkaError::ConfigFileSyntax {
                path: shown,
                line: index + 1,
                text,
            });
        };
        properties.push((key.trim().to_string(), value.trim().to_string()));
    }
    Ok(properties)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_file_is_parsed_and_secrets_are_not_echoed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("client.properties");
        std::fs::write(
            &path,
            "# comment\nsecurity.protocol=SASL_SSL\n\n sasl.password = hunter2 \n",
        )
        .unwrap();
        let props = parse_properties_file(&path).unwrap();
        assert_eq!(
            props[1],
            ("sasl.password".to_string(), "hunter2".to_string())
        );
        std::fs::write(&path, "hunter2\n").unwrap();
        let err = parse_properties_file(&path).unwrap_err().to_string();
        assert!(err.contains("line 1") && !err.contains("hunter2"), "{err}");
    }

    #[test]
    fn debug_output_never_shows_property_values() {
        let mut settings = ClientSettings::new("127.0.0.1:9092");
        settings
            .properties
            .push(("sasl.password".into(), "hunter2".into()));
        let shown = format!("{settings:?}");
        assert!(
            shown.contains("sasl.password") && !shown.contains("hunter2"),
            "{shown}"
        );
    }
}
