//! restore --from-datadir: real Kafka data directories (../shared/fixtures) restored into tansu
//! hold the same records, topics and translated group offsets.

use std::path::{Path, PathBuf};

use kafkasnap::datadir::{LogEntry, LogReader};

use crate::harness::{committed_offsets, kafkasnap_ok, read_all, topic_names, Broker, TestRecord};

fn fixture(name: &str) -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/fixtures/kafka-bytes")
        .join(name);
    if dir.is_dir() {
        return Some(dir);
    }
    assert!(
        std::env::var("CI").is_err(),
        "fixture {} is missing: CI must have ../shared beside the checkout",
        dir.display()
    );
    eprintln!(
        "SKIPPED: fixture {} is missing (run beside ../shared to test this)",
        dir.display()
    );
    None
}

/// The partition's records as Kafka's own files hold them (control batches left out).
fn records_on_disk(partition_dir: &Path, partition: i32) -> Vec<TestRecord> {
    if !partition_dir.exists() {
        return Vec::new(); // a topic the metadata knows whose partition lives elsewhere
    }
    let mut logs: Vec<PathBuf> = std::fs::read_dir(partition_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    logs.sort();
    let mut records = Vec::new();
    for log in logs {
        for entry in LogReader::new(std::fs::File::open(log).unwrap()) {
            let LogEntry::Batch(batch) = entry.unwrap() else {
                continue;
            };
            assert!(batch.crc_ok());
            if batch.header.is_control() {
                continue;
            }
            for r in batch.records().unwrap() {
                records.push(TestRecord {
                    partition,
                    offset: r.offset,
                    timestamp: r.timestamp,
                    key: r.key,
                    value: r.value,
                    headers: r.headers.into_iter().map(|h| (h.key, h.value)).collect(),
                });
            }
        }
    }
    records
}

fn restore_and_compare(
    name: &str,
    topics: &[(&str, i32, &[usize])],
    group: Option<(&str, &str, &[i64])>,
) {
    let Some(dir) = fixture(name) else { return };
    restore_from(&dir, &dir, topics, group, &[]);
}

/// Restores `source` (the fixture directory `dir` or an archive of it) and compares with `dir`.
fn restore_from(
    source: &Path,
    dir: &Path,
    topics: &[(&str, i32, &[usize])],
    group: Option<(&str, &str, &[i64])>,
    extra_args: &[&str],
) {
    let target = Broker::start("from-datadir");
    let args = [
        "restore",
        "-b",
        &target.bootstrap,
        "--from-datadir",
        source.to_str().unwrap(),
    ];
    kafkasnap_ok(&[&args[..], extra_args].concat(), &[]);
    for (topic, partitions, counts) in topics {
        assert!(
            topic_names(&target.bootstrap).contains(&topic.to_string()),
            "{topic} not created"
        );
        let restored = read_all(&target.bootstrap, topic, *partitions);
        for (partition, records) in restored.iter().enumerate() {
            assert_eq!(records.len(), counts[partition], "{topic}/{partition}");
            let partition_dir = dir.join(format!("{topic}-{partition}"));
            let on_disk: Vec<_> = records_on_disk(&partition_dir, partition as i32);
            let expected: Vec<_> = on_disk.iter().map(TestRecord::content).collect();
            assert_eq!(
                records.iter().map(TestRecord::content).collect::<Vec<_>>(),
                expected,
                "{topic}/{partition}"
            );
        }
    }
    if let Some((group, topic, expected)) = group {
        let committed = committed_offsets(&target.bootstrap, group, topic, expected.len() as i32);
        let committed: Vec<i64> = committed
            .into_iter()
            .map(|o| o.expect("group offset restored"))
            .collect();
        assert_eq!(committed, expected, "group {group} on {topic}");
    }
}

#[test]
fn a_kraft_data_directory_restores_into_tansu() {
    restore_and_compare(
        "ldi-poc-kraft-3.7-datadir",
        &[
            ("TestTopicPatient", 1, &[3]),
            ("Retry.TestTopicPatient", 1, &[0]),
            ("subscription.matching.SHR_PROD.persistence", 1, &[0]),
        ],
        Some(("DEVSmileCDR", "TestTopicPatient", &[3])),
    );
}

#[test]
fn zookeeper_data_directories_restore_into_tansu() {
    restore_and_compare(
        "volodymyrzee-zk-2.x-datadir",
        &[("first_topic", 3, &[11, 12, 18]), ("new_topic", 1, &[2])],
        Some(("my-firstd-application", "first_topic", &[11, 12, 18])),
    );
    restore_and_compare("kaipasubhash-zk-datadir", &[("subhash", 1, &[3])], None);
}

/// `restore --from-datadir LOCATION [--backup ID]`: the data-dir backup is downloaded, checked
/// against its manifest, and restored like the directory it holds; a damaged one is refused
/// before any topic is created.
#[test]
fn a_stored_datadir_backup_restores_from_its_location() {
    let Some(dir) = fixture("ldi-poc-kraft-3.7-datadir") else {
        return;
    };
    let backups = tempfile::tempdir().unwrap();
    let manifest = crate::harness::block_on(crate::k8s_restore::publish(
        backups.path(),
        &crate::k8s_restore::tar_of(&dir),
    ));
    restore_from(
        backups.path(),
        &dir,
        &[
            ("TestTopicPatient", 1, &[3]),
            ("Retry.TestTopicPatient", 1, &[0]),
        ],
        Some(("DEVSmileCDR", "TestTopicPatient", &[3])),
        &[],
    );

    let archive = backups.path().join(&manifest.archive.key);
    let mut bytes = std::fs::read(&archive).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&archive, bytes).unwrap();
    let target = Broker::start("from-datadir-damaged");
    let url = format!("file://{}", backups.path().display());
    let id = manifest.backup_id.to_string();
    let refused = crate::harness::kafkasnap(
        &[
            "restore",
            "-b",
            &target.bootstrap,
            "--from-datadir",
            &url,
            "--backup",
            &id,
        ],
        &[],
    );
    let stderr = crate::harness::stderr_of(&refused);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&manifest.archive.key) && stderr.contains("sha256"),
        "{stderr}"
    );
    assert!(
        !topic_names(&target.bootstrap).contains(&"TestTopicPatient".to_string()),
        "nothing may be created from a damaged archive"
    );
}

/// `restore --from-datadir LOCATION --key-file F` of an encrypted data-dir backup restores
/// exactly; without the key, or with one flipped byte (its checksum made to match), it is
/// refused before any topic is created.
#[test]
fn an_encrypted_stored_datadir_backup_restores_only_with_its_key_and_intact() {
    let Some(dir) = fixture("ldi-poc-kraft-3.7-datadir") else {
        return;
    };
    let backups = tempfile::tempdir().unwrap();
    let keys = tempfile::tempdir().unwrap();
    let (key_file, key) = crate::encryption::write_key(keys.path(), "backup.key");
    let encryption_key = kafkasnap::archive::EncryptionKey::parse(&key).unwrap();
    let manifest = crate::harness::block_on(crate::k8s_restore::publish_with(
        backups.path(),
        &crate::k8s_restore::tar_of(&dir),
        Some(&encryption_key),
    ));
    assert!(manifest.encryption.is_some());
    let key_file = key_file.to_str().unwrap();
    restore_from(
        backups.path(),
        &dir,
        &[
            ("TestTopicPatient", 1, &[3]),
            ("Retry.TestTopicPatient", 1, &[0]),
        ],
        Some(("DEVSmileCDR", "TestTopicPatient", &[3])),
        &["--key-file", key_file],
    );

    let target = Broker::start("from-datadir-refused");
    let url = format!("file://{}", backups.path().display());
    let restore = |extra: &[&str]| {
        let args = ["restore", "-b", &target.bootstrap, "--from-datadir", &url];
        crate::harness::kafkasnap(&[&args[..], extra].concat(), &[])
    };
    let keyless = restore(&[]);
    let stderr = crate::harness::stderr_of(&keyless);
    assert_eq!(keyless.status.code(), Some(1), "{stderr}");
    let expected = format!(
        "backup {} is encrypted (aes-256-gcm, key id {}): give its key with --key-file FILE",
        manifest.backup_id,
        crate::encryption::key_id(&key)
    );
    assert!(stderr.contains(&expected), "{stderr}");

    let archive = backups.path().join(&manifest.archive.key);
    let mut bytes = std::fs::read(&archive).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&archive, bytes).unwrap();
    crate::datadir_encryption::match_checksum(backups.path(), &manifest);
    let forged = restore(&["--key-file", key_file]);
    let stderr = crate::harness::stderr_of(&forged);
    assert_eq!(forged.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("its seal does not match the manifest"),
        "{stderr}"
    );
    crate::datadir_encryption::reseal(backups.path(), &manifest, &key);
    let damaged = restore(&["--key-file", key_file]);
    let stderr = crate::harness::stderr_of(&damaged);
    assert_eq!(damaged.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("the archive failed its check before anything was written")
            && stderr.contains("of the encrypted stream does not decrypt with this key"),
        "{stderr}"
    );
    assert!(
        topic_names(&target.bootstrap).is_empty(),
        "nothing may be created without the key or from a damaged archive"
    );
}

#[test]
fn a_tarball_of_a_data_directory_restores_like_the_directory() {
    let Some(dir) = fixture("ldi-poc-kraft-3.7-datadir") else {
        return;
    };
    let scratch = tempfile::tempdir().unwrap();
    let tarball = scratch.path().join("kafka-data.tar.zst");
    let encoder =
        zstd::stream::write::Encoder::new(std::fs::File::create(&tarball).unwrap(), 3).unwrap();
    let mut builder = tar::Builder::new(encoder);
    // Old `tar czf` backups hold the data directory under its absolute path's components.
    builder.append_dir_all("var/lib/kafka/data", &dir).unwrap();
    builder.into_inner().unwrap().finish().unwrap();
    restore_from(
        &tarball,
        &dir,
        &[
            ("TestTopicPatient", 1, &[3]),
            ("Retry.TestTopicPatient", 1, &[0]),
        ],
        Some(("DEVSmileCDR", "TestTopicPatient", &[3])),
        &[],
    );
}

/// A one-entry tar whose header says `name` (written raw: the tar crate refuses to build such
/// paths itself) and whose type is `kind`.
fn hostile_tar(path: &Path, name: &[u8], kind: tar::EntryType, link: Option<&str>) {
    let mut header = tar::Header::new_gnu();
    header.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name);
    header.set_entry_type(kind);
    header.set_mode(0o644);
    header.set_size(if kind.is_file() { 5 } else { 0 });
    if let Some(link) = link {
        header.set_link_name(link).unwrap();
    }
    header.set_cksum();
    let mut builder = tar::Builder::new(std::fs::File::create(path).unwrap());
    let data: &[u8] = if kind.is_file() { b"owned" } else { b"" };
    builder.append(&header, data).unwrap();
    builder.finish().unwrap();
}

#[test]
fn archives_with_escaping_entries_are_refused_and_write_nothing_outside() {
    let broker = Broker::start("hostile");
    let scratch = tempfile::tempdir().unwrap();
    let tmp = scratch.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    for (file, name, kind, link) in [
        (
            "dotdot.tar",
            &b"../../escaped"[..],
            tar::EntryType::Regular,
            None,
        ),
        (
            "absolute.tar",
            &b"/tmp/kafkasnap-escaped"[..],
            tar::EntryType::Regular,
            None,
        ),
        (
            "symlink.tar",
            &b"meta.properties"[..],
            tar::EntryType::Symlink,
            Some("/etc/passwd"),
        ),
    ] {
        let archive = scratch.path().join(file);
        hostile_tar(&archive, name, kind, link);
        let output = crate::harness::kafkasnap(
            &[
                "restore",
                "-b",
                &broker.bootstrap,
                "--from-datadir",
                archive.to_str().unwrap(),
            ],
            &[("TMPDIR", tmp.display().to_string())],
        );
        let stderr = crate::harness::stderr_of(&output);
        assert_eq!(output.status.code(), Some(1), "{file}: {stderr}");
        assert!(
            stderr.contains("refusing to unpack this archive"),
            "{file}: {stderr}"
        );
        assert!(
            !scratch.path().join("escaped").exists()
                && !Path::new("/tmp/kafkasnap-escaped").exists(),
            "{file} escaped"
        );
    }
    assert!(
        topic_names(&broker.bootstrap).is_empty(),
        "nothing may be restored"
    );
}
