//! The conventions people bring from kubectl, kcat and restic: shell completions, a man
//! page, short flags (`-o json`, `-n`, `-t`/`-p`), failures as JSON with `--output json`, sizes
//! with units and on/off settings in the environment as 1/0 or yes/no.

use crate::harness::{
    create_topic, fidelity_record, kafkasnap, kafkasnap_ok, produce, stderr_of, Broker,
};

#[test]
fn completions_and_the_man_page_name_the_real_subcommands() {
    for shell in ["bash", "zsh", "fish"] {
        let script = kafkasnap_ok(&["completions", shell], &[]);
        for word in [
            "backup",
            "restore",
            "verify",
            "prune",
            "datadir",
            "bootstrap-servers",
        ] {
            assert!(script.contains(word), "{shell} completions lack {word}");
        }
        assert!(script.contains("kafkasnap"), "{shell}: {script}");
    }
    let unknown = kafkasnap(&["completions", "tcsh"], &[]);
    assert_eq!(unknown.status.code(), Some(2), "{}", stderr_of(&unknown));
    let man = kafkasnap_ok(&["man"], &[]);
    assert!(
        man.starts_with(".ie") || man.contains(".TH kafkasnap"),
        "{man}"
    );
    for word in [
        "backup",
        "restore",
        "completions",
        "Back up an Apache Kafka cluster",
    ] {
        assert!(man.contains(word), "the man page lacks {word}");
    }
}

#[test]
fn short_flags_kubectl_and_kcat_users_expect() {
    let help = |args: &[&str]| kafkasnap_ok(args, &[]);
    let datadir_backup = help(&["datadir", "backup", "--help"]);
    assert!(
        datadir_backup.contains("-n, --namespace"),
        "{datadir_backup}"
    );
    let datadir_restore = help(&["datadir", "restore", "--help"]);
    assert!(
        datadir_restore.contains("-n, --namespace"),
        "{datadir_restore}"
    );
    let cat = help(&["cat", "--help"]);
    assert!(
        cat.contains("-t, --topic") && cat.contains("-p, --partition"),
        "{cat}"
    );
    assert!(help(&["ls", "--help"]).contains("-o, --output"));
    let dir = tempfile::tempdir().unwrap();
    let listed = kafkasnap_ok(&["ls", dir.path().to_str().unwrap(), "-o", "json"], &[]);
    serde_json::from_str::<serde_json::Value>(&listed).expect("-o json prints JSON");
}

#[test]
fn failures_with_output_json_print_an_error_object_on_stdout_too() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    let missing = missing.to_str().unwrap();
    for (args, code, kind, message) in [
        (
            vec!["ls", missing, "--output", "json"],
            1,
            "failure",
            "no such directory",
        ),
        (
            vec![
                "-o",
                "json",
                "backup",
                "-b",
                "127.0.0.1:9",
                "--to",
                "memory://",
            ],
            2,
            "invalid_request",
            "memory:// cannot hold backups",
        ),
    ] {
        let output = kafkasnap(&args, &[]);
        assert_eq!(output.status.code(), Some(code), "{}", stderr_of(&output));
        assert!(stderr_of(&output).contains("error: "), "text on stderr too");
        let stdout = String::from_utf8(output.stdout).unwrap();
        let error: serde_json::Value = serde_json::from_str(&stdout).expect(&stdout);
        assert_eq!(error["exit_code"], code, "{error}");
        assert_eq!(error["error"]["kind"], kind, "{error}");
        assert!(
            error["error"]["message"]
                .as_str()
                .unwrap()
                .contains(message),
            "{error}"
        );
        assert!(error["error"]["causes"].is_array(), "{error}");
        assert_eq!(error.as_object().unwrap().len(), 2, "{error}");
    }
    // Text output keeps stdout for results only.
    let text = kafkasnap(&["ls", missing], &[]);
    assert!(text.stdout.is_empty());
}

/// `--segment-bytes` takes a size with a unit, and on/off settings from the environment take
/// the words people write in a ConfigMap (1/0, yes/no, true/false).
#[test]
fn sizes_take_units_and_switches_in_the_environment_take_yes_no_1_0() {
    let broker = Broker::start("conventions-units");
    create_topic(&broker.bootstrap, "orders", 1, &[]);
    let records: Vec<_> = (0..40).map(|i| fidelity_record(0, i)).collect();
    produce(&broker.bootstrap, "orders", &records);
    let dir = tempfile::tempdir().unwrap();
    let to = dir.path().to_str().unwrap();
    let backup = |segment: &str, env: &[(&str, String)]| -> serde_json::Value {
        let args = ["backup", "-b", &broker.bootstrap, "--to", to];
        let args = [&args[..], &["--segment-bytes", segment, "-o", "json"]].concat();
        serde_json::from_str(&kafkasnap_ok(&args, env)).unwrap()
    };
    let first = backup("1KiB", &[("KAFKASNAP_INCREMENTAL", "0".into())]);
    assert!(first["parent"].is_null(), "{first}");
    let id = first["backup_id"].as_str().unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.path().join(format!("backups/{id}/manifest.json"))).unwrap(),
    )
    .unwrap();
    let segments = manifest["topics"][0]["partitions"][0]["segments"]
        .as_array()
        .unwrap()
        .len();
    // 40 records of a few hundred bytes each: 1KiB segments make many of them.
    assert!(segments > 4, "{segments} segments of at most 1KiB");

    let second = backup("16MiB", &[("KAFKASNAP_INCREMENTAL", "yes".into())]);
    assert_eq!(second["parent"], first["backup_id"], "{second}");

    for (value, dry) in [("1", true), ("no", false)] {
        let pruned: serde_json::Value = serde_json::from_str(&kafkasnap_ok(
            &["prune", to, "--keep-last", "1", "-o", "json"],
            &[("KAFKASNAP_DRY_RUN", value.into())],
        ))
        .unwrap();
        assert_eq!(
            pruned["dry_run"], dry,
            "KAFKASNAP_DRY_RUN={value}: {pruned}"
        );
    }
    let refused = kafkasnap(
        &["prune", to, "--keep-last", "1"],
        &[("KAFKASNAP_DRY_RUN", "maybe".into())],
    );
    assert_eq!(refused.status.code(), Some(2), "{}", stderr_of(&refused));
}
