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

/// The README's exit-code table, row 2: every value that cannot be followed exits 2, with a
/// message saying what is wrong, before anything is connected to (nothing listens at the
/// address), read, or created.
#[test]
fn every_invalid_value_exits_2_before_connecting_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let to = dir.path().join("backups-here");
    let to = path_str(&to);
    let unreachable = format!("127.0.0.1:{}", free_port());
    let u = unreachable.as_str();
    let a_file = dir.path().join("a-file");
    std::fs::write(&a_file, "x").unwrap();
    let config = dir.path().join("client.properties");
    std::fs::write(&config, format!("bootstrap.servers={u}\n")).unwrap();
    let not_a_key = dir.path().join("passphrase.key");
    std::fs::write(&not_a_key, "correct horse battery staple").unwrap();
    let backup = |extra: &[&'static str]| -> Vec<String> {
        let mut args = vec!["backup", "-b", u, "--to", to];
        args.extend_from_slice(extra);
        args.into_iter().map(String::from).collect()
    };
    let restore = |extra: &[&'static str]| -> Vec<String> {
        let mut args = vec!["restore", "-b", u, "--from", to];
        args.extend_from_slice(extra);
        args.into_iter().map(String::from).collect()
    };
    let owned = |args: &[&str]| -> Vec<String> { args.iter().map(|a| a.to_string()).collect() };
    let rows: Vec<(Vec<String>, &str)> = vec![
        (backup(&["--shard", "3/2", "--shard-run", "r"]), "shard \"3/2\" is not INDEX/COUNT with 0 <= INDEX < COUNT"),
        (backup(&["--shard-run", "r"]), "--shard-run is only meaningful with --shard INDEX/COUNT or --shards COUNT"),
        (backup(&["--shard", "0/2", "--shard-run", "not a name"]), "shard run name \"not a name\" must be"),
        (backup(&["--include", "a("]), "invalid regular expression \"a(\" in --include/--exclude"),
        (backup(&["--exclude", "[z-a]"]), "invalid regular expression \"[z-a]\""),
        (backup(&["--timeout", "0s"]), "invalid value '0s' for '--timeout <TIMEOUT>': must be more than 0s"),
        (backup(&["--stall-timeout", "0s"]), "invalid value '0s' for '--stall-timeout <STALL_TIMEOUT>': must be more than 0s"),
        (backup(&["--segment-bytes", "10"]), "invalid value '10' for '--segment-bytes"),
        (backup(&["--parallelism", "0"]), "invalid value '0' for '--parallelism"),
        (backup(&["--pushgateway", "ftp://metrics:9091"]), "invalid Pushgateway URL \"ftp://metrics:9091\": use an http:// or https:// URL"),
        (owned(&["backup", "-b", "", "--to", to]), "no bootstrap servers: give HOST:PORT"),
        (owned(&["backup", "-b", "a:b:c", "--to", to]), "\"a:b:c\" is not a bootstrap server: more than one ':'"),
        (owned(&["backup", "-b", "kafka:port", "--to", to]), "\"kafka:port\" is not a bootstrap server: the port is not a number"),
        (owned(&["backup", "-b", &format!("{u},"), "--to", to]), "\"\" is not a bootstrap server: it is empty"),
        (backup(&["-X", "bootstrap.servers=127.0.0.1:9"]), "-X sets bootstrap.servers, and -b gives the bootstrap servers too: give them once, with -b"),
        (owned(&["backup", "-b", u, "--to", to, "--config", path_str(&config)]), "sets bootstrap.servers, and -b gives the bootstrap servers too"),
        (owned(&["backup", "-b", u, "--to", "memory://"]), "memory:// cannot hold backups from the command line: it is this process's memory"),
        (owned(&["backup", "-b", u, "--to", "file://relative/dir"]), "a file:// URL takes an absolute path (file:///var/backups), and this one names the host \"relative\""),
        (owned(&["backup", "-b", u, "--to", path_str(&a_file)]), "it is a file, not a directory"),
        (owned(&["backup", "-b", u, "--to", "ftp://host/x"]), "unknown scheme \"ftp\""),
        (owned(&["backup", "-b", u, "--to", to, "--key-file", path_str(&not_a_key)]), "is not a key"),
        (restore(&["--resume", "--if-exists", "skip"]), "--resume continues the topics an interrupted restore created; it cannot be combined with --if-exists skip or append"),
        (restore(&["--from-time", "2026-01-02T00:00:00Z", "--until", "2026-01-01T00:00:00Z"]), "--from-time 2026-01-02T00:00:00Z is after --until 2026-01-01T00:00:00Z"),
        (restore(&["--include", "a("]), "invalid regular expression \"a(\""),
        (restore(&["--backup", "nope"]), "\"nope\" is not a backup id, the start of one, or `latest`"),
        (restore(&["--until", "yesterday"]), "is not a time: use RFC 3339"),
        (owned(&["restore", "-b", u, "--from", "memory://"]), "memory:// cannot hold backups"),
        (owned(&["verify", to, "--against", ""]), "no bootstrap servers"),
        (owned(&["verify", to, "--against", u, "-X", "metadata.broker.list=x:1"]), "-X sets metadata.broker.list, and --against gives the bootstrap servers too: give them once, with --against"),
        (owned(&["ls", "memory://"]), "memory:// cannot hold backups"),
        (owned(&["ls", "file://relative/dir"]), "a file:// URL takes an absolute path"),
        (owned(&["prune", to]), "no retention rule: give at least one of --keep-last N"),
        (owned(&["prune", to, "--keep-last", "0"]), "no retention rule"),
        (owned(&["prune", to, "--keep-last", "1", "--grace", "banana"]), "invalid value 'banana' for '--grace"),
        (owned(&["show", to, "--backup", "../etc"]), "is not a backup id"),
        (owned(&["datadir", "backup", "--to", "memory://"]), "memory:// cannot hold backups"),
        (owned(&["datadir", "backup", "--to", path_str(&a_file)]), "it is a file, not a directory"),
        (owned(&["bogus-subcommand"]), "unrecognized subcommand 'bogus-subcommand'"),
    ];
    let started = std::time::Instant::now();
    for (args, expected) in &rows {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let stderr = refused_with(&args, &[], expected);
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(
            !stderr.contains("cannot reach Kafka"),
            "{args:?} connected: {stderr}"
        );
    }
    // The --timeout refusal blames --timeout only.
    let zero = refused_with(
        &backup(&["--timeout", "0s"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        &[],
        "--timeout",
    );
    assert!(!zero.contains("-X"), "{zero}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "the refusals waited for something"
    );
    assert!(
        !std::path::Path::new(to).exists(),
        "a refused command created {to}"
    );
    assert!(!std::path::Path::new("relative").exists());
}

/// S3 without credentials says which variables are missing, before any client is built:
/// nothing is asked of an instance metadata service (169.254.169.254).
#[test]
fn s3_without_credentials_names_the_missing_variables_and_asks_nobody() {
    let unreachable = format!("127.0.0.1:{}", free_port());
    let run = |extra_env: &[(&str, &str)]| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_kafkasnap"));
        command
            .args(["backup", "-b", &unreachable, "--to", "s3://bucket/x"])
            .stdin(std::process::Stdio::null());
        for (key, _) in std::env::vars().filter(|(key, _)| key.starts_with("AWS_")) {
            command.env_remove(key);
        }
        command.envs(extra_env.iter().copied());
        let started = std::time::Instant::now();
        let output = command.output().unwrap();
        crate::harness::assert_no_debug_text(&["backup", "--to", "s3://bucket/x"], &output);
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
        assert_eq!(output.status.code(), Some(2), "{}", stderr_of(&output));
        stderr_of(&output)
    };
    let none = run(&[]);
    assert!(
        none.contains("cannot use \"s3://bucket/x\" as a backup location: no S3 credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set")
            && none.contains("AWS_WEB_IDENTITY_TOKEN_FILE with AWS_ROLE_ARN"),
        "{none}"
    );
    assert!(!none.contains("403"), "{none}");
    let half = run(&[("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")]);
    assert!(
        half.contains("AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not"),
        "{half}"
    );
    assert!(!half.contains("AKIDEXAMPLE"), "{half}");
}
