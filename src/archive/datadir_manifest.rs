//! The manifest of a data-dir (physical) backup: one compressed tar of a broker's data
//! directory, where it came from, what it holds and its checksum. Specified in
//! `docs/FORMAT.md` ("Data-dir archives"); published after the archive object, never before.

use serde::{Deserialize, Serialize};

use super::{ArchiveError, BackupId, Compression, Encryption};

/// The data-dir manifest format this kafkasnap writes (2: an encrypted backup's manifest is
/// sealed, `manifest.seal`); it reads 1 too.
pub const DATADIR_FORMAT_VERSION: u64 = 2;
/// The first data-dir format whose encrypted manifests are sealed.
pub(crate) const DATADIR_SEALED_FROM_FORMAT_VERSION: u64 = 2;
/// The oldest data-dir manifest format this kafkasnap reads (1: unsealed).
pub(crate) const OLDEST_DATADIR_FORMAT_VERSION: u64 = 1;

/// Marks a manifest as a data-dir archive (`"kind": "datadir"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DatadirKind {
    Datadir,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatadirManifest {
    pub format_version: u64,
    pub kind: DatadirKind,
    pub backup_id: BackupId,
    /// RFC 3339, UTC: when the exec started and when the archive object was complete.
    pub started_at: String,
    pub finished_at: String,
    pub tool_version: String,
    pub source: DatadirSource,
    /// From the archive's `meta.properties` (`cluster.id`, `node.id` or `broker.id`).
    pub cluster_id: Option<String>,
    pub node_id: Option<i32>,
    pub archive: DatadirArchive,
    /// Present when the archive object is encrypted (a `KSNAPES2` stream, `--key-file`): the
    /// cipher and the key id, as in a logical manifest. Absent: the object is plaintext.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<Encryption>,
    /// Every regular file in the tar, in tar order, with its size from the tar header.
    pub files: Vec<DatadirFile>,
    /// Things that did not fail the backup but an operator should know, e.g. GNU tar's
    /// "file changed as we read it" (the copy of that file is not a point-in-time copy).
    pub warnings: Vec<String>,
}

/// Where the tar was taken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatadirSource {
    pub namespace: String,
    /// The broker's pod (in `stopped` mode: the pod whose volume was archived).
    pub pod: String,
    /// The container `tar` ran in: the broker's (`live`) or the helper pod's (`stopped`).
    pub container: String,
    /// The data directory as that container saw it.
    pub path: String,
    /// `live` (absent in manifests written before modes existed) or `stopped`.
    #[serde(default)]
    pub mode: DatadirMode,
    /// The PVC a `stopped` backup mounted read-only in a helper pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pvc: Option<String>,
}

/// How the data directory was read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DatadirMode {
    /// `tar` in the running broker's container (files may change while read).
    #[default]
    Live,
    /// The StatefulSet scaled to 0 and `tar` run in a helper pod mounting the volume
    /// read-only: a consistent copy.
    Stopped,
}

impl std::fmt::Display for DatadirMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DatadirMode::Live => "live",
            DatadirMode::Stopped => "stopped",
        })
    }
}

/// The archive object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatadirArchive {
    /// Key relative to the location root.
    pub key: String,
    pub compression: Compression,
    /// Size of the object as stored (compressed).
    pub stored_bytes: u64,
    /// SHA-256 of the object as stored, lowercase hex.
    pub sha256: String,
    /// Size of the uncompressed tar stream.
    pub tar_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatadirFile {
    /// Path inside the tar, without a leading `./`.
    pub path: String,
    pub bytes: u64,
}

impl DatadirArchive {
    /// How an object read back as `stored_bytes` bytes with SHA-256 `sha256` (lowercase hex)
    /// differs from what this manifest entry recorded, if it does.
    pub(crate) fn mismatch(&self, stored_bytes: u64, sha256: &str) -> Option<String> {
        if stored_bytes != self.stored_bytes {
            return Some(format!(
                "object has {stored_bytes} bytes, the manifest says {}",
                self.stored_bytes
            ));
        }
        (sha256 != self.sha256)
            .then(|| format!("sha256 is {sha256}, the manifest says {}", self.sha256))
    }
}

impl DatadirManifest {
    /// Parses manifest bytes, checking `format_version` and `kind` before anything else.
    pub fn from_json(bytes: &[u8]) -> Result<DatadirManifest, ArchiveError> {
        super::manifest::parse_versioned(
            bytes,
            OLDEST_DATADIR_FORMAT_VERSION,
            DATADIR_FORMAT_VERSION,
        )
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("a manifest always serializes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_names_its_kind() {
        let manifest = DatadirManifest {
            format_version: DATADIR_FORMAT_VERSION,
            kind: DatadirKind::Datadir,
            backup_id: BackupId::parse("20261125T145443Z-3f9a1c").unwrap(),
            started_at: "2026-11-25T14:54:43Z".into(),
            finished_at: "2026-11-25T14:54:50Z".into(),
            tool_version: "0.1.0".into(),
            source: DatadirSource {
                namespace: "messaging".into(),
                pod: "kafka-0".into(),
                container: "kafka".into(),
                path: "/var/lib/kafka/data".into(),
                mode: DatadirMode::Stopped,
                pvc: Some("kafka-data-kafka-0".into()),
            },
            cluster_id: Some("MkU3OEVBNTcwNTJENDM2Qk".into()),
            node_id: Some(1),
            archive: DatadirArchive {
                key: "datadir/20261125T145443Z-3f9a1c/data.tar.zst".into(),
                compression: Compression::Zstd,
                stored_bytes: 10,
                sha256: "00".repeat(32),
                tar_bytes: 10240,
            },
            encryption: None,
            files: vec![DatadirFile {
                path: "meta.properties".into(),
                bytes: 90,
            }],
            warnings: vec![],
        };
        let json = manifest.to_json();
        assert!(String::from_utf8_lossy(&json).contains("\"kind\": \"datadir\""));
        assert!(String::from_utf8_lossy(&json).contains("\"mode\": \"stopped\""));
        assert_eq!(DatadirManifest::from_json(&json).unwrap(), manifest);
        let newer = String::from_utf8(json)
            .unwrap()
            .replace("\"format_version\": 2", "\"format_version\": 3");
        assert!(matches!(
            DatadirManifest::from_json(newer.as_bytes()),
            Err(ArchiveError::UnsupportedVersion { found: 3, .. })
        ));
        // Version 1 manifests (unsealed, before datadir seals) still parse.
        let version_1 = String::from_utf8(manifest.to_json())
            .unwrap()
            .replace("\"format_version\": 2", "\"format_version\": 1");
        assert_eq!(
            DatadirManifest::from_json(version_1.as_bytes())
                .unwrap()
                .format_version,
            1
        );
        // Manifests written before modes existed were live backups.
        let older = String::from_utf8(manifest.to_json())
            .unwrap()
            .replace("\"mode\": \"stopped\",", "");
        let older = DatadirManifest::from_json(older.as_bytes()).unwrap();
        assert_eq!(older.source.mode, DatadirMode::Live);
        assert!(!String::from_utf8_lossy(&manifest.to_json()).contains("encryption"));
    }

    #[test]
    fn an_encrypted_archive_names_its_cipher_and_key_id() {
        let mut manifest = DatadirManifest::from_json(
            br#"{"format_version": 1, "kind": "datadir", "backup_id": "20261125T145443Z-3f9a1c",
                "started_at": "", "finished_at": "", "tool_version": "0.1.0",
                "source": {"namespace": "messaging", "pod": "kafka-0", "container": "kafka",
                           "path": "/var/lib/kafka/data"},
                "cluster_id": null, "node_id": null,
                "archive": {"key": "datadir/20261125T145443Z-3f9a1c/data.tar.zst",
                            "compression": "zstd", "stored_bytes": 1, "sha256": "00",
                            "tar_bytes": 1},
                "encryption": {"cipher": "aes-256-gcm", "key_id": "0123456789abcdef"},
                "files": [], "warnings": []}"#,
        )
        .unwrap();
        let encryption = manifest.encryption.take().unwrap();
        assert_eq!(
            encryption.cipher,
            super::super::encryption::Cipher::Aes256Gcm
        );
        assert_eq!(encryption.key_id, "0123456789abcdef");
    }
}
