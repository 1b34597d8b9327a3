//! Invalid requests are refused with exit 2 before anything is connected to, read or written:
//! colliding topic maps, impossible compression levels, unknown log levels; and list flags
//! keep their commas on the command line (only the environment's value is split).

use crate::fixture::path_str;
use crate::harness::{
    backup_to, create_topic, fidelity_record, free_port, kafkasnap, kafkasnap_ok, produce,
    read_all, stderr_of, topic_names, Broker,
};

/// `base` followed by `extra`.
fn with<'a>(base: &[&'a str], extra: &[&'a str]) -> Vec<&'a str> {
    [base, extra].concat()
}

/// Runs kafkasnap; asserts exit 2 with `expected` in stderr; returns stderr.
fn refused_with(args: &[&str], env: &[(&str, String)], expected: &str) -> String {
    let output = kafkasnap(args, env);
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(
        stderr.contains(expected),
        "{args:?}: expected {expected:?} in:\n{stderr}"
    );
    stderr
}

#[test]
fn a_colliding_topic_map_creates_nothing_and_names_both_topics() {
    let source = Broker::start("mapsource");
    for (topic, first) in [("alpha", 0), ("beta", 100)] {
        create_topic(&source.bootstrap, topic, 1, &[]);
        let records: Vec<_> = (first..first + 5).map(|i| fidelity_record(0, i)).collect();
        produce(&source.bootstrap, topic, &records);
    }
    let dir = tempfile::tempdir().unwrap();
    let from = path_str(dir.path());
    backup_to(&source.bootstrap, dir.path(), &[]);

    let target = Broker::start("maptarget");
    let before = topic_names(&target.bootstrap);
    let restore = ["restore", "-b", &target.bootstrap, "--from", from];
    let merged = r#"topics "alpha" and "beta" would both go to topic "merged""#;
    let both = ["--topic-map", "alpha=merged", "--topic-map", "beta=merged"];
    refused_with(
        &with(&restore, &[&both[..], &["--dry-run"]].concat()),
        &[],
        merged,
    );
    refused_with(&with(&restore, &both), &[], merged);
    // From the environment too.
    let env = [(
        "KAFKASNAP_TOPIC_MAP",
        "alpha=merged,beta=merged".to_string(),
    )];
    refused_with(&with(&restore, &[]), &env, merged);
    // A topic mapped onto another restored topic's own name.
    refused_with(
        &with(&restore, &["--topic-map", "alpha=beta"]),
        &[],
        r#"topics "alpha" and "beta" would both go to topic "beta""#,
    );
    refused_with(
        &with(&restore, &["--topic-map", "alpha=a/b", "--dry-run"]),
        &[],
        r#""a/b" is not a topic name Kafka accepts (only ASCII letters, digits, '.', '_' and '-' are allowed)"#,
    );
    refused_with(
        &with(&restore, &["--topic-map", "alpha=.."]),
        &[],
        "'.' and '..' are not allowed",
    );
    let long = format!("alpha={}", "x".repeat(250));
    refused_with(
        &with(&restore, &["--topic-map", &long]),
        &[],
        "longer than 249 characters",
    );
    assert_eq!(
        topic_names(&target.bootstrap),
        before,
        "a refused restore created topics"
    );

    // verify --against checks the same map the same way.
    refused_with(
        &[
            "verify",
            from,
            "--against",
            &target.bootstrap,
            "--topic-map",
            "alpha=beta",
        ],
        &[],
        r#"topics "alpha" and "beta" would both go to topic "beta""#,
    );

    // A swap is what the user asked for: each topic lands under the other's name.
    let swap = ["--topic-map", "alpha=beta", "--topic-map", "beta=alpha"];
    kafkasnap_ok(&with(&restore, &swap), &[]);
    let values = |bootstrap: &str, topic: &str| -> Vec<Option<Vec<u8>>> {
        read_all(bootstrap, topic, 1)[0]
            .iter()
            .map(|r| r.value.clone())
            .collect()
    };
    assert_eq!(
        values(&target.bootstrap, "beta"),
        values(&source.bootstrap, "alpha")
    );
    assert_eq!(
        values(&target.bootstrap, "alpha"),
        values(&source.bootstrap, "beta")
    );
    let verified = kafkasnap_ok(
        &[&["verify", from, "--against", &target.bootstrap][..], &swap].concat(),
        &[],
    );
    assert!(verified.contains("0 differ"), "{verified}");
}

#[test]
fn impossible_levels_and_log_levels_exit_2_before_connecting() {
    let dir = tempfile::tempdir().unwrap();
    let to = dir.path().join("backups-here");
    // Nothing listens there: a level check that needed the broker would fail with exit 1.
    let unreachable = format!("127.0.0.1:{}", free_port());
    let backup = [
        "backup",
        "-b",
        &unreachable,
        "--to",
        path_str(&to),
        "--timeout",
        "20s",
    ];
    let started = std::time::Instant::now();
    for (codec, level, expected) in [
        (
            "zstd",
            "99",
            "--level 99 is not a zstd level: use -7 to -1 (zstd's fast levels) or 1 to 22 (1 is the default)",
        ),
        ("zstd", "0", "--level 0 is not a zstd level: use -7 to -1"),
        ("zstd", "-8", "--level -8 is not a zstd level"),
        ("lz4", "1", "--compression lz4 takes no --level"),
        (
            "gzip",
            "15",
            "--level 15 is not a gzip level: use 0 to 9 (6 is the default)",
        ),
        ("none", "5", "--compression none takes no --level"),
    ] {
        refused_with(
            &with(&backup, &["--compression", codec, "--level", level]),
            &[],
            expected,
        );
    }
    refused_with(
        &with(&backup, &["--level", "23"]),
        &[],
        "--level 23 is not a zstd level",
    );
    refused_with(
        &with(&backup, &[]),
        &[("KAFKASNAP_LEVEL", "-9".to_string())],
        "--level -9 is not a zstd level",
    );
    refused_with(
        &with(&backup, &["--log-level", "banana"]),
        &[],
        "\"banana\" is not a log level: use off, error, warn, info, debug or trace",
    );
    refused_with(
        &with(&backup, &[]),
        &[("KAFKASNAP_LOG_LEVEL", "info,banana".to_string())],
        "\"banana\" is not a log level",
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(15),
        "the refusals waited for the broker"
    );
    assert!(!to.exists(), "a refused backup wrote to its destination");
}

#[test]
fn list_flags_keep_their_commas_and_only_the_environment_is_split() {
    let broker = Broker::start("commas");
    for topic in [
        "order.created",
        "oorder.created",
        "ooorder.created",
        "customer",
    ] {
        create_topic(&broker.bootstrap, topic, 1, &[]);
        produce(&broker.bootstrap, topic, &[fidelity_record(0, 1)]);
    }
    let topics_of = |extra: &[&str], env: &[(&str, String)]| -> Vec<String> {
        let dir = tempfile::tempdir().unwrap();
        let mut args = vec![
            "backup",
            "-b",
            &broker.bootstrap,
            "--to",
            path_str(dir.path()),
        ];
        args.extend_from_slice(extra);
        kafkasnap_ok(&args, env);
        let shown: serde_json::Value = serde_json::from_str(&kafkasnap_ok(
            &["show", path_str(dir.path()), "--output", "json"],
            &[],
        ))
        .unwrap();
        let mut names: Vec<String> = shown["topics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_string())
            .collect();
        names.sort();
        names
    };
    // `o{1,2}` is one or two o's; split at its comma it would be two broken regexes.
    assert_eq!(
        topics_of(&["--include", "o{1,2}rder.*"], &[]),
        ["oorder.created", "order.created"]
    );
    // The flag wins over the environment, which is split at commas.
    let env = [("KAFKASNAP_INCLUDE", "customer,ooorder.created".to_string())];
    assert_eq!(topics_of(&[], &env), ["customer", "ooorder.created"]);
    assert_eq!(
        topics_of(&["--include", "o{1,2}rder.*"], &env),
        ["oorder.created", "order.created"]
    );
    assert_eq!(topics_of(&["--exclude", "o{1,3}rder.*"], &[]), ["customer"]);
    let env = [("KAFKASNAP_EXCLUDE", "customer,ooorder.created".to_string())];
    assert_eq!(topics_of(&[], &env), ["oorder.created", "order.created"]);
}
