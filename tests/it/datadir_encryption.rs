//! Encrypted data-dir backups (`--key-file`) through the command line and the mock Kubernetes
//! API (`mock_k8s`, whose exec runs the real `tar`): the stored archive holds no plaintext,
//! `datadir verify` and `datadir restore` need the key (a missing or wrong one is refused
//! before anything is read or written), restore with it is exact, and a flipped byte is
//! refused before anything is written even when the manifest's checksum is made to match.

use std::path::Path;

use kafkasnap::archive::{seal_datadir_manifest, DatadirManifest, EncryptionKey, STREAM_MAGIC};
use sha2::{Digest, Sha256};

use crate::encryption::{key_id, write_key};
use crate::harness::{kafkasnap, stderr_of};
use crate::k8s_restore::{assert_nothing_written, empty_target};
use crate::mock_k8s::{tree, volume_with_datadir, ExecBehavior, MockCluster};

/// Bytes zstd cannot shrink (it stores them as they are): seen in a plaintext archive.
fn incompressible(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 32);
    let mut block = Sha256::digest(b"kafkasnap datadir encryption").to_vec();
    while out.len() < len {
        block = Sha256::digest(&block).to_vec();
        out.extend_from_slice(&block);
    }
    out.truncate(len);
    out
}

/// Runs the CLI off the async runtime (the mock cluster serves on it).
async fn run(args: Vec<String>, kubeconfig: &Path) -> std::process::Output {
    let env = vec![("KUBECONFIG", kubeconfig.to_str().unwrap().to_string())];
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        kafkasnap(&args, &env)
    })
    .await
    .unwrap()
}

fn args(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|s| s.to_string()).collect()
}

/// Rewrites a published manifest's `archive.sha256` to match the object as it is now, so that
/// only decryption can notice a change to the object.
pub(crate) fn match_checksum(backups: &Path, manifest: &DatadirManifest) {
    let stored = std::fs::read(backups.join(&manifest.archive.key)).unwrap();
    let path = backups.join(format!("datadir/{}/manifest.json", manifest.backup_id));
    let mut json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    json["archive"]["sha256"] = hex::encode(Sha256::digest(&stored)).into();
    std::fs::write(&path, serde_json::to_vec(&json).unwrap()).unwrap();
}

/// Seals the data-dir manifest as it now is with `key` (as only a holder of the key could),
/// replacing its seal: the archive's own encryption must then catch what was changed.
pub(crate) fn reseal(backups: &Path, manifest: &DatadirManifest, key: &[u8]) {
    let key = EncryptionKey::parse(key).unwrap();
    let dir = backups.join(format!("datadir/{}", manifest.backup_id));
    let bytes = std::fs::read(dir.join("manifest.json")).unwrap();
    let seal = seal_datadir_manifest(&key, &manifest.backup_id, &bytes).unwrap();
    std::fs::write(dir.join("manifest.seal"), seal).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_encrypted_datadir_backup_needs_its_key_and_restores_exactly() {
    let source = volume_with_datadir();
    let secret = incompressible(300_000);
    std::fs::write(source.path().join("incompressible.bin"), &secret).unwrap();
    let cluster = MockCluster::start(Some(1), source.path(), ExecBehavior::Run).await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = cluster.kubeconfig(dir.path());
    let (key_file, key) = write_key(dir.path(), "backup.key");
    let (wrong_file, wrong) = write_key(dir.path(), "other.key");
    let key_file = key_file.to_str().unwrap().to_string();
    let path = source.path().to_str().unwrap().to_string();
    let backups = dir.path().join("encrypted");
    let plain = dir.path().join("plain");
    let to = backups.to_str().unwrap().to_string();

    let backup = |to: &str, key: Option<&str>| {
        let mut parts = args(&[
            "datadir", "backup", "--to", to, "--path", &path, "--output", "json",
        ]);
        if let Some(key) = key {
            parts.extend(args(&["--key-file", key]));
        }
        parts
    };
    let output = run(backup(&to, Some(&key_file)), &kubeconfig).await;
    assert!(output.status.success(), "{}", stderr_of(&output));
    let manifest: DatadirManifest = serde_json::from_slice(&output.stdout).unwrap();
    let encryption = manifest
        .encryption
        .clone()
        .expect("the manifest names the key");
    assert_eq!(encryption.cipher.to_string(), "aes-256-gcm");
    assert_eq!(encryption.key_id, key_id(&key));
    let output = run(backup(plain.to_str().unwrap(), None), &kubeconfig).await;
    assert!(output.status.success(), "{}", stderr_of(&output));
    let plain_manifest: DatadirManifest = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(plain_manifest.encryption, None);

    // The plaintext archive shows the file's bytes; the encrypted one shows none of them.
    let stored = std::fs::read(backups.join(&manifest.archive.key)).unwrap();
    let plain_stored = std::fs::read(plain.join(&plain_manifest.archive.key)).unwrap();
    let window = &secret[100_000..100_064];
    assert!(plain_stored.windows(64).any(|w| w == window));
    assert!(!stored.windows(64).any(|w| w == window));
    assert_eq!(&stored[..8], STREAM_MAGIC);
    assert_eq!(stored.len() as u64, manifest.archive.stored_bytes);
    assert_eq!(
        manifest.archive.stored_bytes,
        kafkasnap::archive::sealed_stream_len(plain_stored.len() as u64),
        "the same compressed tar, sealed"
    );
    assert_eq!(manifest.archive.tar_bytes, plain_manifest.archive.tar_bytes);

    // verify: with the key OK; without it, or with another, refused by key id.
    let verify = |key: Option<&str>| {
        let mut parts = args(&["datadir", "verify", &to]);
        if let Some(key) = key {
            parts.extend(args(&["--key-file", key]));
        }
        parts
    };
    let verified = run(verify(Some(&key_file)), &kubeconfig).await;
    assert!(verified.status.success(), "{}", stderr_of(&verified));
    let report = String::from_utf8_lossy(&verified.stdout);
    assert!(
        report.contains("every chunk decrypted") && report.ends_with("OK\n"),
        "{report}"
    );
    let unkeyed = run(verify(None), &kubeconfig).await;
    assert_eq!(unkeyed.status.code(), Some(1), "{}", stderr_of(&unkeyed));
    let expected = format!(
        "backup {} is encrypted (aes-256-gcm, key id {}): give its key with --key-file FILE",
        manifest.backup_id,
        key_id(&key)
    );
    assert!(
        stderr_of(&unkeyed).contains(&expected),
        "{}",
        stderr_of(&unkeyed)
    );
    let wrong_keyed = run(verify(Some(wrong_file.to_str().unwrap())), &kubeconfig).await;
    assert_eq!(wrong_keyed.status.code(), Some(1));
    let expected = format!("key id {}, yours {}", key_id(&key), key_id(&wrong));
    assert!(
        stderr_of(&wrong_keyed).contains(&expected),
        "{}",
        stderr_of(&wrong_keyed)
    );
    let listing = run(args(&["datadir", "ls", &to]), &kubeconfig).await;
    let listing = String::from_utf8_lossy(&listing.stdout);
    assert!(
        listing.contains(&format!("encrypted (key id {})", key_id(&key))),
        "{listing}"
    );

    // restore: without the key nothing is touched; with it, file for file.
    // Each target cluster gets its own kubeconfig directory.
    let restore = |target: &MockCluster, key: Option<&str>| {
        let mut parts = args(&["datadir", "restore", "--from", &to]);
        if let Some(key) = key {
            parts.extend(args(&["--key-file", key]));
        }
        let config_dir = tempfile::tempdir_in(dir.path()).unwrap().keep();
        (parts, target.kubeconfig(&config_dir))
    };
    let (target, target_cluster) = empty_target().await;
    let (parts, target_kubeconfig) = restore(&target_cluster, None);
    let refused = run(parts, &target_kubeconfig).await;
    assert_eq!(refused.status.code(), Some(1), "{}", stderr_of(&refused));
    assert!(
        stderr_of(&refused).contains("give its key with --key-file"),
        "{}",
        stderr_of(&refused)
    );
    assert!(
        target_cluster.calls().is_empty(),
        "{:#?}",
        target_cluster.calls()
    );
    assert!(tree(target.path()).is_empty());
    let (parts, target_kubeconfig) = restore(&target_cluster, Some(&key_file));
    let restored = run(parts, &target_kubeconfig).await;
    assert!(restored.status.success(), "{}", stderr_of(&restored));
    assert_eq!(tree(target.path()), tree(source.path()));

    // One flipped byte, with the manifest's checksum made to match: the manifest's seal no
    // longer matches, so verify reports the manifest damaged and reads nothing else.
    let archive = backups.join(&manifest.archive.key);
    let mut tampered = stored.clone();
    tampered[stored.len() / 2] ^= 0x01;
    std::fs::write(&archive, &tampered).unwrap();
    match_checksum(&backups, &manifest);
    let forged = run(verify(Some(&key_file)), &kubeconfig).await;
    assert_eq!(forged.status.code(), Some(3), "{}", stderr_of(&forged));
    let report = String::from_utf8_lossy(&forged.stdout);
    assert!(
        report.contains("its manifest is damaged")
            && report.contains("its seal does not match the manifest"),
        "{report}"
    );
    // Sealed again with the key, as only its holder could: decryption still catches the byte.
    reseal(&backups, &manifest, &key);
    let damaged = run(verify(Some(&key_file)), &kubeconfig).await;
    assert_eq!(damaged.status.code(), Some(3), "{}", stderr_of(&damaged));
    let report = String::from_utf8_lossy(&damaged.stdout);
    assert!(
        report.contains(&format!("BAD {}", manifest.archive.key))
            && report.contains("of the encrypted stream does not decrypt with this key"),
        "{report}"
    );
    let (target, target_cluster) = empty_target().await;
    let (parts, target_kubeconfig) = restore(&target_cluster, Some(&key_file));
    let refused = run(parts, &target_kubeconfig).await;
    let stderr = stderr_of(&refused);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "archive {} does not decrypt: chunk",
            manifest.archive.key
        )) && stderr.contains("nothing was written"),
        "{stderr}"
    );
    assert_nothing_written(&target_cluster, target.path(), 0);
}

/// An encrypted data-dir backup's manifest is sealed: rewritten as format version 1 (from
/// before data-dir seals) it still fails its seal; with the seal removed too, a reader given
/// the key refuses it unless told `--allow-unsealed`, and then reads it with a warning.
#[tokio::test(flavor = "multi_thread")]
async fn an_unsealed_datadir_manifest_is_refused_unless_allowed() {
    let source = volume_with_datadir();
    let backups = tempfile::tempdir().unwrap();
    let (key_file, key) = write_key(backups.path(), "backup.key");
    let encryption_key = EncryptionKey::parse(&key).unwrap();
    let tar = crate::k8s_restore::tar_of(source.path());
    let manifest =
        crate::k8s_restore::publish_with(backups.path(), &tar, Some(&encryption_key)).await;
    let location = format!("file://{}", backups.path().display());
    let key_file = key_file.to_str().unwrap();
    let verify = |extra: &[&str]| {
        let args = [
            &["datadir", "verify", &location, "--key-file", key_file][..],
            extra,
        ]
        .concat();
        kafkasnap(&args, &[])
    };
    let genuine = verify(&[]);
    assert_eq!(genuine.status.code(), Some(0), "{}", stderr_of(&genuine));

    let dir = backups
        .path()
        .join(format!("datadir/{}", manifest.backup_id));
    let json = std::fs::read_to_string(dir.join("manifest.json")).unwrap();
    assert!(json.contains("\"format_version\": 2"), "{json}");
    let version_1 = json.replacen("\"format_version\": 2", "\"format_version\": 1", 1);
    std::fs::write(dir.join("manifest.json"), version_1).unwrap();
    let relabelled = verify(&[]);
    assert_eq!(
        relabelled.status.code(),
        Some(3),
        "{}",
        stderr_of(&relabelled)
    );
    assert!(
        String::from_utf8_lossy(&relabelled.stdout).contains("seal does not match"),
        "{}",
        String::from_utf8_lossy(&relabelled.stdout)
    );

    std::fs::remove_file(dir.join("manifest.seal")).unwrap();
    let unsealed = verify(&[]);
    let report = String::from_utf8_lossy(&unsealed.stdout);
    assert_eq!(unsealed.status.code(), Some(3), "{}", stderr_of(&unsealed));
    assert!(report.contains("--allow-unsealed"), "{report}");
    let allowed = verify(&["--allow-unsealed"]);
    assert_eq!(allowed.status.code(), Some(0), "{}", stderr_of(&allowed));
    assert!(
        stderr_of(&allowed).contains("without a seal"),
        "{}",
        stderr_of(&allowed)
    );
}
