//! The conventions people bring from kubectl, kcat and restic: shell completions, a man
//! page, short flags (`-o json`, `-n`, `-t`/`-p`), `cat` limits, failures (usage errors too)
//! as JSON with `--output json`, global options only where they do something, sizes with
//! units and on/off settings in the environment as 1/0 or yes/no.

use crate::harness::{
    create_topic, fidelity_record, kafkasnap, kafkasnap_ok, produce, read_all, stderr_of, Broker,
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

/// `cat` limits as kcat users expect them: `--offset` (per partition, or in the one `-p`
/// picks), `--count` in total, `--from-time` by record timestamp; a `topic` in every line;
/// values that cannot work refused with exit 2 before any record is read.
#[test]
fn cat_takes_offset_count_and_from_time_and_names_the_topic() {
    let broker = Broker::start("conventions-cat");
    create_topic(&broker.bootstrap, "orders", 2, &[]);
    let records: Vec<_> = (0..40)
        .map(|i| fidelity_record(i % 2, i as usize))
        .collect();
    produce(&broker.bootstrap, "orders", &records);
    let stored = read_all(&broker.bootstrap, "orders", 2);
    let dir = tempfile::tempdir().unwrap();
    let at = dir.path().to_str().unwrap();
    crate::harness::backup_to(&broker.bootstrap, dir.path(), &[]);
    let cat = |extra: &[&str]| -> Vec<(i64, i64)> {
        let printed = kafkasnap_ok(&[&["cat", at, "-t", "orders"][..], extra].concat(), &[]);
        printed
            .lines()
            .map(|line| {
                let record: serde_json::Value = serde_json::from_str(line).unwrap();
                assert_eq!(record["topic"], "orders", "{line}");
                (
                    record["partition"].as_i64().unwrap(),
                    record["offset"].as_i64().unwrap(),
                )
            })
            .collect()
    };
    let expected = |keep: &dyn Fn(&crate::harness::TestRecord) -> bool| -> Vec<(i64, i64)> {
        stored
            .iter()
            .flatten()
            .filter(|r| keep(r))
            .map(|r| (r.partition as i64, r.offset))
            .collect()
    };
    let all = cat(&[]);
    assert_eq!(all, expected(&|_| true));
    assert_eq!(
        cat(&["-p", "1", "--offset", "5"]),
        expected(&|r| r.partition == 1 && r.offset >= 5)
    );
    assert_eq!(cat(&["--offset", "15"]), expected(&|r| r.offset >= 15));
    assert_eq!(cat(&["--count", "3"]), all[..3]);
    assert_eq!(
        cat(&["--offset", "18", "--count", "3"]),
        [(0, 18), (0, 19), (1, 18)]
    );
    let mut stamps: Vec<i64> = stored.iter().flatten().map(|r| r.timestamp).collect();
    stamps.sort();
    let from = stamps[stamps.len() / 2];
    let later = expected(&|r| r.timestamp >= from);
    assert_eq!(later.len(), 20);
    assert_eq!(cat(&["--from-time", &from.to_string()]), later);
    let rfc3339 = kafkasnap::progress::human_time(from);
    assert_eq!(cat(&["--from-time", &rfc3339]), later, "{rfc3339}");

    for (extra, message) in [
        (vec!["--count", "0"], "invalid value '0' for '--count <N>'"),
        (vec!["--offset", "-1"], "invalid value '-1' for '--offset <N>'"),
        (vec!["--from-time", "yesterday"], "is not a time: use RFC 3339"),
        (
            vec!["-p", "0", "--offset", "20"],
            "--offset 20 is past the last record of topic orders in this backup (partition 0 holds offsets below 20): give a smaller offset",
        ),
    ] {
        let args = [&["cat", at, "-t", "orders"][..], &extra].concat();
        let refused = kafkasnap(&args, &[]);
        assert_eq!(refused.status.code(), Some(2), "{args:?}: {}", stderr_of(&refused));
        assert!(refused.stdout.is_empty(), "{args:?}");
        assert!(stderr_of(&refused).contains(message), "{args:?}: {}", stderr_of(&refused));
    }
}

/// A command line clap rejects is, with `-o json` (or KAFKASNAP_OUTPUT=json), also the JSON
/// error object on stdout, like any other failure; the text stays on stderr.
#[test]
fn usage_errors_with_output_json_print_the_error_object_too() {
    let dir = tempfile::tempdir().unwrap();
    let at = dir.path().to_str().unwrap();
    for (args, env, message) in [
        (
            vec!["ls", at, "-o", "json", "--bogus"],
            None,
            "unexpected argument '--bogus' found",
        ),
        (
            vec!["-o", "json", "cat", at, "-t"],
            None,
            "a value is required for '--topic <TOPIC>'",
        ),
        (
            vec![
                "--output=json",
                "backup",
                "-b",
                "k:9092",
                "--to",
                at,
                "--parallelism",
                "0",
            ],
            None,
            "invalid value '0' for '--parallelism <PARALLELISM>'",
        ),
        (
            vec!["ls", at, "--frobnicate"],
            Some("json"),
            "unexpected argument '--frobnicate'",
        ),
        (
            vec!["-o", "json", "ls", at, "--no-progress"],
            None,
            "--no-progress does nothing for `kafkasnap ls`",
        ),
    ] {
        let env: Vec<(&str, String)> = env
            .iter()
            .map(|v| ("KAFKASNAP_OUTPUT", v.to_string()))
            .collect();
        let output = kafkasnap(&args, &env);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr_of(&output)
        );
        assert!(
            stderr_of(&output).contains("error: "),
            "{args:?}: text on stderr too"
        );
        let stdout = String::from_utf8(output.stdout).unwrap();
        let error: serde_json::Value = serde_json::from_str(&stdout).expect(&stdout);
        assert_eq!(error["exit_code"], 2, "{error}");
        assert_eq!(error["error"]["kind"], "invalid_request", "{error}");
        assert!(error["error"]["causes"].is_array(), "{error}");
        let printed = error["error"]["message"].as_str().unwrap();
        assert!(
            printed.contains(message) && !printed.contains('\n'),
            "{args:?}: {error}"
        );
        assert_eq!(error.as_object().unwrap().len(), 2, "{error}");
    }
    let text = kafkasnap(&["ls", at, "--bogus"], &[]);
    assert_eq!(text.status.code(), Some(2));
    assert!(
        text.stdout.is_empty(),
        "text output keeps stdout for results"
    );
    let help = kafkasnap_ok(&["ls", "--help", "-o", "json"], &[]);
    assert!(
        help.starts_with("List the backups"),
        "help is not an error: {help}"
    );
}

/// The global options are listed under their own heading, and each command takes (and lists)
/// only those that do something for it; their environment variables stay harmless anywhere.
#[test]
fn global_options_are_listed_as_such_and_refused_where_they_do_nothing() {
    let help = |args: &[&str]| kafkasnap_ok(args, &[]);
    let top = help(&["--help"]);
    assert!(top.contains("Global options:"), "{top}");
    for flag in [
        "-o, --output",
        "--no-progress",
        "--log-level",
        "--store-retry-timeout",
    ] {
        assert!(top.contains(flag), "{flag}: {top}");
    }
    let backup = help(&["backup", "--help"]);
    assert!(
        backup.contains("Global options:") && backup.contains("--no-progress"),
        "{backup}"
    );
    let ls = help(&["ls", "--help"]);
    assert!(
        ls.contains("-o, --output") && !ls.contains("--no-progress"),
        "{ls}"
    );
    let restore = help(&["restore", "--help"]);
    assert!(
        restore.contains("append to it (which also sets the restored groups' committed offsets there to the appended records)"),
        "{restore}"
    );
    for (args, message) in [
        (vec!["ls", "/tmp", "--no-progress"], "--no-progress does nothing for `kafkasnap ls`: it shows no progress (backup, restore and drill do); leave it out"),
        (vec!["--store-retry-timeout", "1m", "completions", "bash"], "--store-retry-timeout does nothing for `kafkasnap completions`"),
        (vec!["man", "-o", "json"], "--output does nothing for `kafkasnap man`"),
    ] {
        let refused = kafkasnap(&args, &[]);
        assert_eq!(refused.status.code(), Some(2), "{args:?}");
        assert!(stderr_of(&refused).contains(message), "{args:?}: {}", stderr_of(&refused));
    }
    // The harness sets KAFKASNAP_NO_PROGRESS for every command; the others' variables too:
    let env = [
        ("KAFKASNAP_STORE_RETRY_TIMEOUT", "1m".to_string()),
        ("KAFKASNAP_OUTPUT", "json".to_string()),
    ];
    assert!(kafkasnap_ok(&["completions", "bash"], &env).contains("kafkasnap"));
}
