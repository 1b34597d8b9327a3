//! Sealed manifests: an encrypted backup's manifest altered, unsealed or moved by someone
//! without the key is refused by restore, verify, cat and an incremental backup before
//! anything is written; a version 1 manifest (no seal) is still read, with a warning.

use std::path::{Path, PathBuf};

use crate::encryption::write_key;
use crate::fixture::path_str;
use crate::harness::{
    backup_to, create_topic, fidelity_record, kafkasnap, kafkasnap_ok, only_backup_id, produce,
    stderr_of, topic_names, Broker, TestRecord,
};

const TOPIC: &str = "ledger";

fn manifest_path(dir: &Path) -> PathBuf {
    dir.join("backups")
        .join(only_backup_id(dir))
        .join("manifest.json")
}

fn seal_path(dir: &Path) -> PathBuf {
    dir.join("backups")
        .join(only_backup_id(dir))
        .join("manifest.seal")
}

/// A broker holding `records` fidelity records in TOPIC (`partitions`, `configs`) and one
/// backup of it encrypted with a fresh key: (source, key dir, key file, backup dir).
fn encrypted_backup(
    name: &str,
    partitions: i32,
    records: usize,
    configs: &[(&str, &str)],
) -> (Broker, tempfile::TempDir, PathBuf, tempfile::TempDir) {
    let source = Broker::start(name);
    create_topic(&source.bootstrap, TOPIC, partitions, configs);
    let records: Vec<TestRecord> = (0..records)
        .map(|i| fidelity_record(i as i32 % partitions, i))
        .collect();
    produce(&source.bootstrap, TOPIC, &records);
    let keys = tempfile::tempdir().unwrap();
    let (key_file, _) = write_key(keys.path(), "backup.key");
    let dir = tempfile::tempdir().unwrap();
    backup_to(
        &source.bootstrap,
        dir.path(),
        &["--key-file", path_str(&key_file)],
    );
    (source, keys, key_file, dir)
}

/// Runs every reader of the backup at `dir` with `key` and checks each refuses it with a
/// message containing `expected`; the target broker gets no topic.
fn assert_refused_everywhere(source: &Broker, dir: &Path, key: &str, expected: &str) {
    let to = path_str(dir);
    let target = Broker::start("seal-target");
    let restore = kafkasnap(
        &[
            "restore",
            "-b",
            &target.bootstrap,
            "--from",
            to,
            "--key-file",
            key,
        ],
        &[],
    );
    let message = stderr_of(&restore);
    assert_eq!(restore.status.code(), Some(1), "restore: {message}");
    assert!(message.contains(expected), "restore: {message}");
    assert!(
        topic_names(&target.bootstrap).is_empty(),
        "restore wrote topics"
    );

    let verify = kafkasnap(&["verify", to, "--key-file", key], &[]);
    let report = String::from_utf8_lossy(&verify.stdout);
    assert_eq!(verify.status.code(), Some(3), "verify: {report}");
    assert!(report.contains(expected), "verify: {report}");

    let cat = kafkasnap(&["cat", to, "--topic", TOPIC, "--key-file", key], &[]);
    assert!(!cat.status.success(), "cat succeeded");
    assert!(cat.stdout.is_empty(), "cat printed records");
    assert!(
        stderr_of(&cat).contains(expected),
        "cat: {}",
        stderr_of(&cat)
    );

    let before = std::fs::read_dir(dir.join("backups")).unwrap().count();
    let incremental = kafkasnap(
        &[
            "backup",
            "-b",
            &source.bootstrap,
            "--to",
            to,
            "--incremental",
            "--key-file",
            key,
        ],
        &[],
    );
    assert!(
        !incremental.status.success(),
        "an incremental continued from it"
    );
    assert!(
        stderr_of(&incremental).contains(expected),
        "incremental: {}",
        stderr_of(&incremental)
    );
    assert_eq!(
        std::fs::read_dir(dir.join("backups")).unwrap().count(),
        before
    );
}

#[test]
fn an_encrypted_manifest_altered_or_unsealed_without_the_key_is_refused() {
    let (source, _keys, key_file, dir) =
        encrypted_backup("seal-source", 2, 200, &[("retention.ms", "604800000")]);
    let key = path_str(&key_file);

    let manifest = manifest_path(dir.path());
    let original = std::fs::read(&manifest).unwrap();
    let json: serde_json::Value = serde_json::from_slice(&original).unwrap();
    assert_eq!(json["format_version"], 2);
    assert!(
        seal_path(dir.path()).exists(),
        "no manifest.seal next to the manifest"
    );
    kafkasnap_ok(&["verify", path_str(dir.path()), "--key-file", key], &[]);

    // Altered: the topic's retention cut to 1 ms, as someone with bucket access could.
    let altered = String::from_utf8(original.clone())
        .unwrap()
        .replace("\"604800000\"", "\"1\"");
    assert_ne!(altered.as_bytes(), original.as_slice());
    std::fs::write(&manifest, &altered).unwrap();
    assert_refused_everywhere(&source, dir.path(), key, "seal does not match");

    // Unsealed: the original manifest with its seal removed.
    std::fs::write(&manifest, &original).unwrap();
    let seal = std::fs::read(seal_path(dir.path())).unwrap();
    std::fs::remove_file(seal_path(dir.path())).unwrap();
    assert_refused_everywhere(&source, dir.path(), key, "has no seal");

    // Moved: the sealed manifest of this backup under another id.
    std::fs::write(seal_path(dir.path()), &seal).unwrap();
    let id = only_backup_id(dir.path());
    let moved_id = format!("{}0", &id[..id.len() - 1]);
    let moved_id = if moved_id == id {
        format!("{}1", &id[..id.len() - 1])
    } else {
        moved_id
    };
    let backups = dir.path().join("backups");
    std::fs::rename(backups.join(&id), backups.join(&moved_id)).unwrap();
    let moved = std::fs::read_to_string(manifest_path(dir.path()))
        .unwrap()
        .replace(&id, &moved_id);
    std::fs::write(manifest_path(dir.path()), moved).unwrap();
    assert_refused_everywhere(&source, dir.path(), key, "seal does not match");

    // Without a key nothing is authenticated: show still describes it.
    kafkasnap_ok(&["show", path_str(dir.path())], &[]);
}

#[test]
fn a_version_1_encrypted_manifest_is_refused_unless_allowed_then_read_with_a_warning() {
    let (source, _keys, key_file, dir) = encrypted_backup("seal-v1-source", 1, 50, &[]);
    let key = path_str(&key_file);
    // What kafkasnap wrote before seals existed: format version 1, no manifest.seal.
    let manifest = manifest_path(dir.path());
    let v1 = std::fs::read_to_string(&manifest).unwrap().replacen(
        "\"format_version\": 2",
        "\"format_version\": 1",
        1,
    );
    std::fs::write(&manifest, v1).unwrap();
    // A sealed manifest rewritten as version 1 is still checked against its seal.
    let verify = kafkasnap(&["verify", path_str(dir.path()), "--key-file", key], &[]);
    assert_eq!(verify.status.code(), Some(3), "{}", stderr_of(&verify));
    assert!(String::from_utf8_lossy(&verify.stdout).contains("seal does not match"));
    std::fs::remove_file(seal_path(dir.path())).unwrap();

    // Unsealed, it could have been forged by anyone who can write to the location: with a
    // key it is refused, naming the flag that accepts it.
    let verify = kafkasnap(&["verify", path_str(dir.path()), "--key-file", key], &[]);
    assert_eq!(verify.status.code(), Some(3), "{}", stderr_of(&verify));
    let report = String::from_utf8_lossy(&verify.stdout);
    assert!(
        report.contains("written before manifests were sealed")
            && report.contains("--allow-unsealed"),
        "{report}"
    );
    let restore_target = Broker::start("seal-v1-target");
    let refused = kafkasnap(
        &[
            "restore",
            "-b",
            &restore_target.bootstrap,
            "--from",
            path_str(dir.path()),
            "--key-file",
            key,
        ],
        &[],
    );
    assert_eq!(refused.status.code(), Some(1), "{}", stderr_of(&refused));
    assert!(
        stderr_of(&refused).contains("--allow-unsealed"),
        "{}",
        stderr_of(&refused)
    );
    assert!(topic_names(&restore_target.bootstrap).is_empty());
    // Accepted explicitly, it reads with a warning that it is unauthenticated.
    let verify = kafkasnap(
        &[
            "verify",
            path_str(dir.path()),
            "--key-file",
            key,
            "--allow-unsealed",
        ],
        &[],
    );
    assert_eq!(verify.status.code(), Some(0), "{}", stderr_of(&verify));
    let warning = stderr_of(&verify);
    assert!(warning.contains("without a seal"), "{warning}");
    let by_env = kafkasnap(
        &["verify", path_str(dir.path()), "--key-file", key],
        &[("KAFKASNAP_ALLOW_UNSEALED", "true".to_string())],
    );
    assert_eq!(by_env.status.code(), Some(0), "{}", stderr_of(&by_env));

    // It is not trusted as an incremental's parent: the next backup is a full one.
    let parent = only_backup_id(dir.path());
    backup_to(
        &source.bootstrap,
        dir.path(),
        &["--incremental", "--key-file", key],
    );
    let newest = std::fs::read_dir(dir.path().join("backups"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|id| *id != parent)
        .collect::<Vec<_>>();
    assert_eq!(newest.len(), 1, "{newest:?}");
    let json: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            dir.path()
                .join("backups")
                .join(&newest[0])
                .join("manifest.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert!(json["parent"].is_null(), "{json}");
    assert!(
        json["warnings"].to_string().contains("took a full backup"),
        "{}",
        json["warnings"]
    );
    assert_eq!(json["totals"]["records"], 50);
}

/// A sharded run's part files are sealed too: a part altered by someone without the key
/// (here a group offset rewound, the JSON still valid) stops the merge, and nothing is
/// published; the same run with untouched parts publishes.
#[test]
fn an_altered_shard_part_is_not_merged() {
    let (source, _keys, key_file, _dir) = encrypted_backup("seal-shards", 4, 400, &[]);
    crate::harness::commit_offsets(
        &source.bootstrap,
        "billing",
        TOPIC,
        &[(0, 10), (1, 10), (2, 10), (3, 10)],
    );
    let key = path_str(&key_file);
    let shard = |to: &Path, spec: &str| {
        kafkasnap(
            &[
                "backup",
                "-b",
                &source.bootstrap,
                "--to",
                path_str(to),
                "--shard",
                spec,
                "--shard-run",
                "sealed",
                "--key-file",
                key,
            ],
            &[],
        )
    };
    for altered in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(shard(dir.path(), "0/2").status.code(), Some(4));
        let part = crate::harness::files_under(dir.path())
            .into_iter()
            .find(|f| f.to_string_lossy().ends_with("-of-2.json"))
            .expect("shard 0's part");
        assert!(
            part.with_extension("json.seal").exists(),
            "the seal is stored beside the part"
        );
        if altered {
            let text = std::fs::read_to_string(&part).unwrap();
            let rewound = text.replacen("\"offset\": 10", "\"offset\": 0", 1);
            assert_ne!(rewound, text, "the part holds the group offsets");
            std::fs::write(&part, rewound).unwrap();
        }
        let last = shard(dir.path(), "1/2");
        if altered {
            assert_eq!(last.status.code(), Some(1), "{}", stderr_of(&last));
            assert!(
                stderr_of(&last).contains("is not authenticated: its seal does not match"),
                "{}",
                stderr_of(&last)
            );
            assert!(
                !crate::harness::has_manifest(dir.path()),
                "nothing published"
            );
        } else {
            assert!(last.status.success(), "{}", stderr_of(&last));
            kafkasnap_ok(&["verify", path_str(dir.path()), "--key-file", key], &[]);
        }
    }
}

/// Prune given the key counts only backups whose manifest is sealed under it: a plaintext
/// manifest planted as the newest backup (by someone who can write to the location but has
/// no key) is left alone, neither pushing the genuine backups out of `--keep-last` nor being
/// removed; without the key the planted one would count, and the genuine newest would go.
#[test]
fn prune_with_the_key_leaves_forged_manifests_alone() {
    let (source, _keys, key_file, dir) = encrypted_backup("seal-prune", 1, 30, &[]);
    let key = path_str(&key_file);
    let older = only_backup_id(dir.path());
    std::thread::sleep(std::time::Duration::from_millis(1100));
    backup_to(&source.bootstrap, dir.path(), &["--key-file", key]);
    let backups = dir.path().join("backups");
    let ids = |dir: &Path| -> Vec<String> {
        let mut ids: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        ids.sort();
        ids
    };
    let newer = ids(&backups).into_iter().find(|id| *id != older).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    // The forgery: a plaintext, unsealed manifest of an empty backup under a later id.
    let planted = kafkasnap::archive::BackupId::new(std::time::SystemTime::now()).to_string();
    let mut forged: serde_json::Value =
        serde_json::from_slice(&std::fs::read(backups.join(&newer).join("manifest.json")).unwrap())
            .unwrap();
    forged["backup_id"] = planted.clone().into();
    forged.as_object_mut().unwrap().remove("encryption");
    // Empty, so it keeps nothing of the genuine backups alive.
    forged["topics"] = serde_json::json!([]);
    forged["groups"] = serde_json::json!([]);
    forged["totals"] = serde_json::to_value(kafkasnap::archive::Totals::of(&[])).unwrap();
    std::fs::create_dir_all(backups.join(&planted)).unwrap();
    std::fs::write(
        backups.join(&planted).join("manifest.json"),
        serde_json::to_vec_pretty(&forged).unwrap(),
    )
    .unwrap();

    let prune = |extra: &[&str]| -> (serde_json::Value, String) {
        let args = [
            &[
                "prune",
                path_str(dir.path()),
                "--keep-last",
                "1",
                "--output",
                "json",
            ][..],
            extra,
        ]
        .concat();
        let out = kafkasnap(&args, &[]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
        let json = serde_json::from_slice(&out.stdout).unwrap();
        (json, stderr_of(&out))
    };
    let ids_in = |json: &serde_json::Value, field: &str| crate::prune::ids_of(&json[field]);
    // Without the key the forgery counts as the newest backup: the genuine newest would go.
    let (blind, _) = prune(&["--dry-run"]);
    assert_eq!(ids_in(&blind, "kept"), vec![planted.clone()], "{blind}");
    assert!(ids_in(&blind, "removed").contains(&newer), "{blind}");

    let (keyed, _) = prune(&["--key-file", key]);
    assert_eq!(ids_in(&keyed, "removed"), vec![older.clone()], "{keyed}");
    let kept = ids_in(&keyed, "kept");
    assert!(kept.contains(&newer) && kept.contains(&planted), "{keyed}");
    let reasons = keyed.to_string();
    assert!(
        reasons.contains("not authenticated under the given key")
            && reasons.contains(&format!("left {planted} alone")),
        "{keyed}"
    );
    assert_eq!(ids(&backups), vec![newer.clone(), planted.clone()]);
    // The genuine newest backup still restores.
    kafkasnap_ok(
        &[
            "verify",
            path_str(dir.path()),
            "--backup",
            &newer,
            "--key-file",
            key,
        ],
        &[],
    );
}
