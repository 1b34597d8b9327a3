//! Client-side encryption: stored objects hide every record, the manifest names the cipher and
//! key id, verify works with and without the key, restore with the key is exact, and a missing
//! or wrong key (or a chain or shard run given mixed keys) is refused before anything is written.

use std::path::{Path, PathBuf};
use std::process::Output;

use sha2::{Digest, Sha256};

use crate::fixture::path_str;
use crate::harness::{
    contents, create_topic, fidelity_record, files_under, kafkasnap, kafkasnap_ok, produce,
    read_all, stderr_of, topic_names, Broker, TestRecord,
};

const TOPIC: &str = "payroll";
const PARTITIONS: i32 = 2;
/// Planted in keys, values and headers: must never be readable in a stored object.
const MARKER: &str = "kafkasnap-planted-marker";

/// A fresh random key written to `dir/name` as 32 raw bytes; returns its path and bytes.
pub(crate) fn write_key(dir: &Path, name: &str) -> (PathBuf, Vec<u8>) {
    let mut key = vec![0u8; 32];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom").unwrap(), &mut key).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, &key).unwrap();
    (path, key)
}

pub(crate) fn key_id(key: &[u8]) -> String {
    hex::encode(&Sha256::digest(key)[..8])
}

/// Records with the marker in key, value and a header, between fidelity records.
fn records(from: usize, count: usize) -> Vec<TestRecord> {
    (from..from + count)
        .map(|i| {
            let partition = (i % PARTITIONS as usize) as i32;
            if i % 3 == 0 {
                let mut record = fidelity_record(partition, i);
                record.key = Some(format!("{MARKER}-key-{i}").into_bytes());
                record.value =
                    Some(format!("{{\"salary\":{i},\"note\":\"{MARKER}\"}}").into_bytes());
                record.headers = vec![("tag".into(), Some(MARKER.as_bytes().to_vec()))];
                record
            } else {
                fidelity_record(partition, i)
            }
        })
        .collect()
}

fn filled(name: &str) -> Broker {
    let broker = Broker::start(name);
    create_topic(&broker.bootstrap, TOPIC, PARTITIONS, &[]);
    produce(&broker.bootstrap, TOPIC, &records(0, 1_200));
    broker
}

fn segment_files(dir: &Path) -> Vec<PathBuf> {
    files_under(dir)
        .into_iter()
        .filter(|f| f.to_string_lossy().contains(".kseg"))
        .collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The forms a key could leak in: raw bytes, hex, base64.
fn leaks(key: &[u8]) -> Vec<Vec<u8>> {
    use base64::Engine;
    vec![
        key.to_vec(),
        hex::encode(key).into_bytes(),
        base64::engine::general_purpose::STANDARD
            .encode(key)
            .into_bytes(),
    ]
}

fn assert_no_key_in(output: &Output, key: &[u8]) {
    for form in leaks(key) {
        assert!(
            !contains(&output.stdout, &form) && !contains(&output.stderr, &form),
            "the key appears in the output of a command"
        );
    }
}

fn manifest_json(dir: &Path) -> serde_json::Value {
    let manifest = files_under(dir)
        .into_iter()
        .find(|f| f.ends_with("manifest.json"))
        .expect("a published manifest");
    serde_json::from_slice(&std::fs::read(manifest).unwrap()).unwrap()
}

fn run(args: &[&str]) -> Output {
    kafkasnap(args, &[])
}

#[test]
fn an_encrypted_backup_hides_every_record_and_restores_exactly_with_its_key() {
    let source = filled("enc-source");
    let keys = tempfile::tempdir().unwrap();
    let (key_file, key) = write_key(keys.path(), "backup.key");

    // Control: without a key, uncompressed objects show the marker, so the check below can fail.
    let plain = tempfile::tempdir().unwrap();
    crate::harness::backup_to(&source.bootstrap, plain.path(), &["--compression", "none"]);
    assert!(segment_files(plain.path())
        .iter()
        .any(|f| contains(&std::fs::read(f).unwrap(), MARKER.as_bytes())));

    let dir = tempfile::tempdir().unwrap();
    let to = path_str(dir.path());
    let backup = run(&[
        "backup",
        "-b",
        &source.bootstrap,
        "--to",
        to,
        "--compression",
        "none",
        "--segment-bytes",
        "20000",
        "--key-file",
        path_str(&key_file),
    ]);
    assert!(backup.status.success(), "{}", stderr_of(&backup));
    assert_no_key_in(&backup, &key);

    let objects = segment_files(dir.path());
    assert!(objects.len() > 4, "several segments expected: {objects:?}");
    for object in &objects {
        let bytes = std::fs::read(object).unwrap();
        assert_eq!(&bytes[..8], b"KSNAPEN2", "{}", object.display());
        assert!(
            !contains(&bytes, MARKER.as_bytes()),
            "{} holds a plaintext record",
            object.display()
        );
        for form in leaks(&key) {
            assert!(
                !contains(&bytes, &form),
                "{} holds the key",
                object.display()
            );
        }
    }
    let manifest = manifest_json(dir.path());
    assert_eq!(
        manifest["encryption"],
        serde_json::json!({"cipher": "aes-256-gcm", "key_id": key_id(&key)})
    );
    let manifest_bytes = serde_json::to_vec(&manifest).unwrap();
    for form in leaks(&key) {
        assert!(
            !contains(&manifest_bytes, &form),
            "the manifest holds the key"
        );
    }
    let show = kafkasnap_ok(&["show", to], &[]);
    assert!(show.contains(&key_id(&key)), "{show}");

    // Without the key, verify checks sizes and checksums; with it, it decodes every record.
    let unkeyed = kafkasnap_ok(&["verify", to], &[]);
    assert!(
        unkeyed.contains("records not decoded")
            && !unkeyed.contains("records checked")
            && unkeyed.contains("OK"),
        "{unkeyed}"
    );
    let keyed = run(&["verify", to, "--key-file", path_str(&key_file)]);
    let keyed_text = String::from_utf8_lossy(&keyed.stdout);
    assert!(keyed.status.success(), "{keyed_text}");
    assert!(
        !keyed_text.contains("records not decoded") && keyed_text.contains("OK"),
        "{keyed_text}"
    );
    assert_no_key_in(&keyed, &key);

    let cat = run(&[
        "cat",
        to,
        "--topic",
        TOPIC,
        "--key-file",
        path_str(&key_file),
    ]);
    assert!(cat.status.success(), "{}", stderr_of(&cat));
    assert_eq!(
        String::from_utf8_lossy(&cat.stdout).lines().count(),
        1_200,
        "cat prints every record"
    );
    assert!(contains(&cat.stdout, MARKER.as_bytes()));
    let cat_without = run(&["cat", to, "--topic", TOPIC]);
    assert_eq!(cat_without.status.code(), Some(1));
    assert!(
        stderr_of(&cat_without).contains("is encrypted")
            && stderr_of(&cat_without).contains("--key-file"),
        "{}",
        stderr_of(&cat_without)
    );

    // Restore with the key (given through the environment this time) is exact.
    let target = Broker::start("enc-target");
    let restore = kafkasnap(
        &["restore", "-b", &target.bootstrap, "--from", to],
        &[("KAFKASNAP_KEY_FILE", path_str(&key_file).to_string())],
    );
    assert!(restore.status.success(), "{}", stderr_of(&restore));
    assert_no_key_in(&restore, &key);
    assert_eq!(
        contents(&read_all(&target.bootstrap, TOPIC, PARTITIONS)),
        contents(&read_all(&source.bootstrap, TOPIC, PARTITIONS))
    );
    let against = kafkasnap_ok(
        &[
            "verify",
            to,
            "--key-file",
            path_str(&key_file),
            "--against",
            &target.bootstrap,
        ],
        &[],
    );
    assert!(against.contains("0 differ"), "{against}");
}

#[test]
fn a_missing_wrong_or_malformed_key_is_refused_before_anything_is_written() {
    let source = filled("enc-refuse");
    let keys = tempfile::tempdir().unwrap();
    let (key_file, key) = write_key(keys.path(), "backup.key");
    let wrong_bytes = [0xa7u8; 32];
    let wrong_file = keys.path().join("wrong.key");
    // The hex form of a key is accepted too.
    std::fs::write(&wrong_file, format!("{}\n", hex::encode(wrong_bytes))).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let to = path_str(dir.path());
    crate::harness::backup_to(
        &source.bootstrap,
        dir.path(),
        &["--key-file", path_str(&key_file)],
    );

    let target = Broker::start("enc-refuse-target");
    let before = topic_names(&target.bootstrap);
    let restore = |extra: &[&str]| {
        let mut args = vec!["restore", "-b", &target.bootstrap, "--from", to];
        args.extend_from_slice(extra);
        run(&args)
    };

    let without = restore(&[]);
    assert_eq!(without.status.code(), Some(1));
    let message = stderr_of(&without);
    assert!(
        message.contains("is encrypted (aes-256-gcm, key id")
            && message.contains(&key_id(&key))
            && message.contains("--key-file"),
        "{message}"
    );

    let wrong = restore(&["--key-file", path_str(&wrong_file)]);
    assert_eq!(wrong.status.code(), Some(1));
    let message = stderr_of(&wrong);
    assert!(
        message.contains(&format!(
            "the key does not match the one backup {} was encrypted with (key id {}, yours {})",
            crate::harness::only_backup_id(dir.path()),
            key_id(&key),
            key_id(&wrong_bytes)
        )),
        "{message}"
    );
    assert_no_key_in(&wrong, &wrong_bytes);
    let dry = restore(&["--dry-run", "--key-file", path_str(&wrong_file)]);
    assert_eq!(dry.status.code(), Some(1), "{}", stderr_of(&dry));

    let passphrase = keys.path().join("passphrase.key");
    std::fs::write(&passphrase, "correct horse battery staple 123").unwrap();
    let malformed = restore(&["--key-file", path_str(&passphrase)]);
    assert_eq!(malformed.status.code(), Some(2));
    let message = stderr_of(&malformed);
    assert!(
        message.contains("is not a key") && message.contains("head -c 32 /dev/urandom"),
        "{message}"
    );
    assert!(
        !message.contains("horse"),
        "the key file's contents were shown"
    );

    assert_eq!(
        topic_names(&target.bootstrap),
        before,
        "a refused restore created topics"
    );

    let verify_wrong = run(&["verify", to, "--key-file", path_str(&wrong_file)]);
    assert_eq!(verify_wrong.status.code(), Some(1));
    assert!(
        stderr_of(&verify_wrong).contains("the key does not match"),
        "{}",
        stderr_of(&verify_wrong)
    );
}

#[test]
fn altered_ciphertext_is_named_even_when_its_checksum_was_updated() {
    let source = filled("enc-tamper");
    let keys = tempfile::tempdir().unwrap();
    let (key_file, key_bytes) = write_key(keys.path(), "backup.key");
    let dir = tempfile::tempdir().unwrap();
    let to = path_str(dir.path());
    crate::harness::backup_to(
        &source.bootstrap,
        dir.path(),
        &["--key-file", path_str(&key_file)],
    );

    // Flip one ciphertext byte and make the manifest's size and checksum agree with it, as
    // someone holding the key could (and seal the manifest again): only the segment's
    // authentication tag can tell.
    let victim = segment_files(dir.path()).pop().unwrap();
    let mut bytes = std::fs::read(&victim).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x10;
    std::fs::write(&victim, &bytes).unwrap();
    let manifest_path = files_under(dir.path())
        .into_iter()
        .find(|f| f.ends_with("manifest.json"))
        .unwrap();
    let text = std::fs::read_to_string(&manifest_path).unwrap();
    let mut manifest: serde_json::Value = serde_json::from_str(&text).unwrap();
    let name = victim.file_name().unwrap().to_string_lossy().into_owned();
    let mut patched = 0;
    for topic in manifest["topics"].as_array_mut().unwrap() {
        for partition in topic["partitions"].as_array_mut().unwrap() {
            for segment in partition["segments"].as_array_mut().unwrap() {
                if victim.ends_with(segment["key"].as_str().unwrap()) {
                    segment["sha256"] = hex::encode(Sha256::digest(&bytes)).into();
                    patched += 1;
                }
            }
        }
    }
    assert_eq!(patched, 1);
    let patched_bytes = serde_json::to_vec_pretty(&manifest).unwrap();
    std::fs::write(&manifest_path, &patched_bytes).unwrap();
    let id = kafkasnap::archive::BackupId::parse(manifest["backup_id"].as_str().unwrap()).unwrap();
    let key = kafkasnap::archive::EncryptionKey::parse(&key_bytes).unwrap();
    let seal = kafkasnap::archive::seal_manifest(&key, &id, &patched_bytes).unwrap();
    std::fs::write(manifest_path.with_file_name("manifest.seal"), seal).unwrap();

    let verify = run(&["verify", to, "--key-file", path_str(&key_file)]);
    assert_eq!(verify.status.code(), Some(3));
    let report = String::from_utf8_lossy(&verify.stdout);
    assert!(
        report.contains(&name) && report.contains("does not decrypt with this key"),
        "{report}"
    );

    let target = Broker::start("enc-tamper-target");
    let restore = run(&[
        "restore",
        "-b",
        &target.bootstrap,
        "--from",
        to,
        "--key-file",
        path_str(&key_file),
    ]);
    assert_eq!(restore.status.code(), Some(1));
    let message = stderr_of(&restore);
    assert!(
        message.contains(&name) && message.contains("does not decrypt"),
        "{message}"
    );
}

#[test]
fn a_chain_and_a_shard_run_keep_one_key() {
    let source = filled("enc-chain");
    let keys = tempfile::tempdir().unwrap();
    let (key_file, _) = write_key(keys.path(), "backup.key");
    let (other_file, other) = write_key(keys.path(), "other.key");
    let dir = tempfile::tempdir().unwrap();
    let to = path_str(dir.path());
    let key_arg = ["--key-file", path_str(&key_file)];
    crate::harness::backup_to(&source.bootstrap, dir.path(), &key_arg);
    produce(&source.bootstrap, TOPIC, &records(1_200, 300));

    let backups = || {
        files_under(dir.path())
            .iter()
            .filter(|f| f.ends_with("manifest.json"))
            .count()
    };
    for (extra, expected) in [
        (vec![], "no --key-file was given"),
        (
            vec!["--key-file", path_str(&other_file)],
            "the key does not match",
        ),
    ] {
        let mut args = vec![
            "backup",
            "-b",
            &source.bootstrap,
            "--to",
            to,
            "--incremental",
        ];
        args.extend_from_slice(&extra);
        let refused = run(&args);
        assert_eq!(refused.status.code(), Some(1));
        assert!(
            stderr_of(&refused).contains(expected),
            "{}",
            stderr_of(&refused)
        );
        assert_no_key_in(&refused, &other);
    }
    assert_eq!(
        backups(),
        1,
        "a refused incremental backup published something"
    );

    let mut args = vec![
        "backup",
        "-b",
        &source.bootstrap,
        "--to",
        to,
        "--incremental",
        "--output",
        "json",
    ];
    args.extend_from_slice(&key_arg);
    let child: serde_json::Value = serde_json::from_str(&kafkasnap_ok(&args, &[])).unwrap();
    assert_eq!(child["records_read"], 300, "{child}");
    assert!(child["parent"].is_string(), "{child}");
    let target = Broker::start("enc-chain-target");
    let mut args = vec!["restore", "-b", &target.bootstrap, "--from", to];
    args.extend_from_slice(&key_arg);
    kafkasnap_ok(&args, &[]);
    assert_eq!(
        contents(&read_all(&target.bootstrap, TOPIC, PARTITIONS)),
        contents(&read_all(&source.bootstrap, TOPIC, PARTITIONS))
    );

    // A shard run whose shards were given different keys is not published.
    let shards = tempfile::tempdir().unwrap();
    let shard = |spec: &str, key: &Path| {
        run(&[
            "backup",
            "-b",
            &source.bootstrap,
            "--to",
            path_str(shards.path()),
            "--shard",
            spec,
            "--shard-run",
            "mixed",
            "--key-file",
            path_str(key),
        ])
    };
    assert_eq!(
        shard("0/2", &key_file).status.code(),
        Some(4),
        "part stored, run waiting"
    );
    let second = shard("1/2", &other_file);
    assert_eq!(second.status.code(), Some(1));
    assert!(
        stderr_of(&second).contains("every shard of a run must be given the same --key-file"),
        "{}",
        stderr_of(&second)
    );
    assert!(!crate::harness::has_manifest(shards.path()));
}
