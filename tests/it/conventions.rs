//! The conventions people bring from kubectl, kcat and restic: shell completions, a man
//! page, short flags (`-o json`, `-n`, `-t`/`-p`), and failures as JSON with `--output json`.

use crate::harness::{kafkasnap, kafkasnap_ok, stderr_of};

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
