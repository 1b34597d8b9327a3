//! A manifest that fails the structural check (archive/check) is refused by restore, verify
//! and cat before any segment is read and before any topic is created, naming the problem.

use std::path::Path;

use serde_json::Value;

use crate::fixture::path_str;
use crate::harness::{
    backup_to, create_topic, fidelity_record, kafkasnap, only_backup_id, produce, stderr_of,
    topic_names, Broker,
};

fn edit_manifest(dir: &Path, edit: impl FnOnce(&mut Value)) {
    let id = only_backup_id(dir);
    let path = dir.join("backups").join(id).join("manifest.json");
    let mut manifest: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    edit(&mut manifest);
    std::fs::write(&path, manifest.to_string()).unwrap();
}

#[test]
fn restore_verify_and_cat_refuse_an_unsound_manifest_before_creating_anything() {
    let source = Broker::start("structsource");
    create_topic(&source.bootstrap, "t", 2, &[]);
    for partition in 0..2 {
        let records: Vec<_> = (0..40).map(|i| fidelity_record(partition, i)).collect();
        produce(&source.bootstrap, "t", &records);
    }
    let original = tempfile::tempdir().unwrap();
    backup_to(
        &source.bootstrap,
        original.path(),
        &["--segment-bytes", "1024", "--compression", "none"],
    );
    let target = Broker::start("structtarget");
    assert!(topic_names(&target.bootstrap).is_empty());

    type Edit = fn(&mut Value);
    let cases: [(&str, Edit, &str); 4] = [
        (
            "overlap",
            |m| {
                let segments = &mut m["topics"][0]["partitions"][0]["segments"];
                let last = segments[0]["last_offset"].clone();
                segments[1]["first_offset"] = last;
            },
            "segments overlap or are out of order",
        ),
        (
            "partition out of range",
            |m| m["topics"][0]["partitions"][1]["partition"] = 7.into(),
            "t/7: partition number outside 0..2",
        ),
        (
            "duplicate topic",
            |m| {
                let copy = m["topics"][0].clone();
                m["topics"].as_array_mut().unwrap().push(copy);
            },
            "topic \"t\" is listed more than once",
        ),
        (
            "key of another partition",
            |m| {
                let other = m["topics"][0]["partitions"][1]["segments"][0]["key"].clone();
                m["topics"][0]["partitions"][0]["segments"][0]["key"] = other;
            },
            "is not the key of this partition's none segment starting at offset 0",
        ),
    ];
    for (name, edit, expected) in cases {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(original.path(), dir.path());
        edit_manifest(dir.path(), edit);
        let from = path_str(dir.path());

        let restore = kafkasnap(&["restore", "-b", &target.bootstrap, "--from", from], &[]);
        let stderr = stderr_of(&restore);
        assert_ne!(restore.status.code(), Some(0), "{name}: {stderr}");
        assert!(
            stderr.contains(expected),
            "{name}: expected {expected:?} in:\n{stderr}"
        );
        assert!(
            topic_names(&target.bootstrap).is_empty(),
            "{name}: restore created topics"
        );

        let verify = kafkasnap(&["verify", from], &[]);
        let stdout = String::from_utf8_lossy(&verify.stdout).to_string();
        assert_eq!(
            verify.status.code(),
            Some(3),
            "{name}: {stdout}{}",
            stderr_of(&verify)
        );
        assert!(
            stdout.contains(expected),
            "{name}: expected {expected:?} in:\n{stdout}"
        );

        let cat = kafkasnap(&["cat", from, "--topic", "t"], &[]);
        let stderr = stderr_of(&cat);
        assert_ne!(cat.status.code(), Some(0), "{name}: {stderr}");
        assert!(
            stderr.contains(expected),
            "{name}: expected {expected:?} in:\n{stderr}"
        );
        assert!(cat.stdout.is_empty(), "{name}: cat printed records");
    }
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}
