//! The k8s-cronjob/ manifests' command lines, run for real: the backup CronJob's `args` with the
//! ConfigMap's environment against a tansu broker and a local directory, the prune CronJob's on
//! that location, and the restore Job's (as shipped, a dry run, then with `--dry-run` dropped as
//! its comment says) into a second broker. Also the settings a schema cannot check (the image's
//! uid, the hardening fields). The YAML is read by a tiny line parser made for these files (block
//! lists, `KEY: value` data, `- name:`/`value:` env), not a YAML library; scripts/validate-manifests.sh
//! checks the same files against the Kubernetes schemas.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::harness::{
    create_topic, fidelity_record, kafkasnap_ok, produce, read_all, topic_names, Broker, TestRecord,
};

const REPO: &str = env!("CARGO_MANIFEST_DIR");
const TOPIC: &str = "orders.manifests";
const PARTITIONS: i32 = 3;

fn manifest(name: &str) -> String {
    let path = Path::new(REPO).join("k8s-cronjob").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

fn is_blank_or_comment(line: &str) -> bool {
    let trimmed = line.trim();
    trimmed.is_empty() || trimmed.starts_with('#')
}

fn unquote(text: &str) -> String {
    let text = text.trim();
    for quote in ['"', '\''] {
        if text.len() >= 2 && text.starts_with(quote) && text.ends_with(quote) {
            return text[1..text.len() - 1].to_string();
        }
    }
    assert!(
        !text.contains(" #"),
        "inline comments are not supported by this parser: {text:?}"
    );
    text.to_string()
}

/// The lines after the first line that is exactly `key:` (at any indentation), up to the next
/// line (not blank, not a comment) indented no deeper than it, except `- ` items at its level.
fn block_under<'a>(yaml: &'a str, key: &str) -> Vec<&'a str> {
    let mut lines = yaml.lines();
    let start = lines
        .by_ref()
        .find(|line| line.trim() == format!("{key}:") && !is_blank_or_comment(line))
        .unwrap_or_else(|| panic!("no `{key}:` line"));
    let level = indent(start);
    lines
        .filter(|line| !is_blank_or_comment(line))
        .take_while(|line| {
            indent(line) > level || (indent(line) == level && line.trim().starts_with("- "))
        })
        .collect()
}

/// The items of the block list under the first `key:` line; comment lines are skipped.
fn block_list(yaml: &str, key: &str) -> Vec<String> {
    block_under(yaml, key)
        .into_iter()
        .map(|line| {
            let item = line
                .trim()
                .strip_prefix("- ")
                .unwrap_or_else(|| panic!("`{key}:` holds a non-item line {line:?}"));
            unquote(item)
        })
        .collect()
}

/// The ConfigMap's `data:` as `KEY -> value`.
fn config_map_data(yaml: &str) -> BTreeMap<String, String> {
    block_under(yaml, "data")
        .into_iter()
        .map(|line| {
            let (key, value) = line
                .trim()
                .split_once(": ")
                .unwrap_or_else(|| panic!("not `KEY: value`: {line:?}"));
            (key.to_string(), unquote(value))
        })
        .collect()
}

/// The container's own `env:` entries (`- name: N` followed by `value: V`).
/// What the test's "Kubernetes" puts in a `fieldRef` (the downward API): the pod's labels.
const JOB_NAME: &str = "kafkasnap-backup-sharded-29384760";
const FIELD_REFS: &[(&str, &str)] =
    &[("metadata.labels['batch.kubernetes.io/job-name']", JOB_NAME)];

fn container_env(yaml: &str) -> Vec<(String, String)> {
    let mut env = Vec::new();
    let mut name = None;
    for line in block_under(yaml, "env") {
        let line = line.trim();
        if let Some(n) = line.strip_prefix("- name: ") {
            name = Some(unquote(n));
        } else if let Some(value) = line.strip_prefix("value: ") {
            let name = name.take().expect("`value:` without `- name:`");
            env.push((name, unquote(value)));
        } else if line == "valueFrom:" || line == "fieldRef:" {
        } else if let Some(path) = line.strip_prefix("fieldPath: ") {
            let name = name.take().expect("`fieldPath:` without `- name:`");
            let path = unquote(path);
            let value = FIELD_REFS
                .iter()
                .find(|(known, _)| *known == path)
                .unwrap_or_else(|| panic!("{name}: unsupported fieldRef {path}"))
                .1;
            env.push((name, value.to_string()));
        } else {
            panic!("unsupported env line {line:?} (only name/value pairs and fieldRefs)");
        }
    }
    env
}

/// The environment Kubernetes gives the container (envFrom the ConfigMap, then its own `env:`,
/// which wins), with the cluster's bootstrap servers and backup location replaced by the test's.
fn pod_env(workload: &str, bootstrap: &str, location: &str) -> BTreeMap<String, String> {
    let config_map = manifest("configmap.yaml");
    let name = block_under(&config_map, "metadata")
        .into_iter()
        .find_map(|line| line.trim().strip_prefix("name: ").map(unquote))
        .expect("ConfigMap name");
    let env_from = block_under(workload, "envFrom");
    let refs_config_map = env_from.windows(2).any(|pair| {
        pair[0].trim() == "- configMapRef:" && pair[1].trim() == format!("name: {name}")
    });
    assert!(refs_config_map, "envFrom does not name ConfigMap {name}");

    let mut env = config_map_data(&config_map);
    for key in ["KAFKASNAP_BOOTSTRAP_SERVERS", "KAFKASNAP_TO"] {
        assert!(env.contains_key(key), "the ConfigMap has no {key}");
    }
    env.insert("KAFKASNAP_BOOTSTRAP_SERVERS".into(), bootstrap.into());
    env.insert("KAFKASNAP_TO".into(), location.into());
    env.extend(container_env(workload));
    env
}

/// Kubernetes' `$(VAR)` expansion of an argument from the container's environment. Kubernetes
/// would pass an unknown reference through literally; here it is a mistake in the manifest.
fn expand(arg: &str, env: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = arg;
    while let Some(start) = rest.find("$(") {
        out.push_str(&rest[..start]);
        let end = rest[start..]
            .find(')')
            .unwrap_or_else(|| panic!("unclosed $( in {arg:?}"));
        let name = &rest[start + 2..start + end];
        let value = env
            .get(name)
            .unwrap_or_else(|| panic!("{arg:?} refers to {name}, which the pod does not define"));
        out.push_str(value);
        rest = &rest[start + end + 1..];
    }
    out.push_str(rest);
    out
}

/// Runs a workload's `args` (the image's entrypoint is kafkasnap) as the pod would.
fn run_workload(args: &[String], env: &BTreeMap<String, String>) -> serde_json::Value {
    let args: Vec<String> = args.iter().map(|arg| expand(arg, env)).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let env: Vec<(&str, String)> = env.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    let stdout = kafkasnap_ok(&args, &env);
    // `--output json`: the result is one JSON object on stdout.
    serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("kafkasnap {args:?} printed no JSON result ({e}): {stdout}"))
}

fn backup_ids(dir: &Path) -> Vec<String> {
    let mut ids: Vec<String> = std::fs::read_dir(dir.join("backups"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    ids.sort();
    ids
}

/// Whether the binary lists `prune` among its commands.
fn binary_has_prune() -> bool {
    let output = Command::new(env!("CARGO_BIN_EXE_kafkasnap"))
        .arg("--help")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(output.status.success());
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .any(|line| line.trim_start().starts_with("prune "))
}

#[test]
fn the_cronjobs_and_the_restore_job_run_as_written() {
    let source = Broker::start("manifests-source");
    create_topic(&source.bootstrap, TOPIC, PARTITIONS, &[]);
    let records: Vec<TestRecord> = (0..600)
        .map(|i| fidelity_record(i as i32 % PARTITIONS, i))
        .collect();
    produce(&source.bootstrap, TOPIC, &records);
    let dir = tempfile::tempdir().unwrap();
    let location = dir.path().to_str().unwrap();

    // The nightly backup.
    let cronjob = manifest("cronjob.yaml");
    let backup_args = block_list(&cronjob, "args");
    assert_eq!(backup_args.first().map(String::as_str), Some("backup"));
    let env = pod_env(&cronjob, &source.bootstrap, location);
    assert_eq!(env.get("TMPDIR").map(String::as_str), Some("/tmp"));
    let summary = run_workload(&backup_args, &env);
    assert_eq!(summary["records"], records.len() as u64, "{summary}");
    assert_eq!(backup_ids(dir.path()).len(), 1);
    kafkasnap_ok(&["verify", location], &[]);

    // The nightly prune, on the same location, with the ConfigMap's policy.
    let prune = manifest("cronjob-prune.yaml");
    let prune_args = block_list(&prune, "args");
    assert_eq!(prune_args.first().map(String::as_str), Some("prune"));
    let prune_env = pod_env(&prune, &source.bootstrap, location);
    let prune_exists = Path::new(REPO).join("src/commands/prune.rs").exists();
    let has_prune = binary_has_prune();
    if prune_exists {
        assert!(
            has_prune,
            "src/commands/prune.rs exists but `kafkasnap --help` lists no prune"
        );
    }
    if has_prune {
        // A second night's backup, then prune: the policy keeps both.
        run_workload(&backup_args, &env);
        let before = backup_ids(dir.path());
        assert_eq!(before.len(), 2);
        let pruned = run_workload(&prune_args, &prune_env);
        let number = |key: &str| prune_env[key].parse::<u64>().unwrap();
        assert_eq!(pruned["dry_run"], false, "{pruned}");
        assert_eq!(pruned["policy"]["keep_last"], number("KAFKASNAP_KEEP_LAST"));
        assert_eq!(
            pruned["policy"]["keep_hourly"],
            number("KAFKASNAP_KEEP_HOURLY")
        );
        let within = humantime::parse_duration(&prune_env["KAFKASNAP_KEEP_WITHIN"]).unwrap();
        assert_eq!(pruned["policy"]["keep_within_seconds"], within.as_secs());
        assert_eq!(
            pruned["policy"]["keep_daily"],
            number("KAFKASNAP_KEEP_DAILY")
        );
        assert_eq!(
            pruned["policy"]["keep_weekly"],
            number("KAFKASNAP_KEEP_WEEKLY")
        );
        let grace = humantime::parse_duration(&prune_env["KAFKASNAP_GRACE"]).unwrap();
        assert_eq!(pruned["policy"]["grace_seconds"], grace.as_secs());
        assert_eq!(pruned["removed"], serde_json::json!([]), "{pruned}");
        assert_eq!(backup_ids(dir.path()), before);
    } else {
        // Still check that every $(VAR) it uses is defined.
        for arg in &prune_args {
            expand(arg, &prune_env);
        }
        eprintln!(
            "SKIPPED running the prune CronJob's command line: this kafkasnap has no `prune` \
             command yet (src/commands/prune.rs is missing)"
        );
    }

    // The restore Job, into an empty cluster: as shipped (a dry run), then for real.
    let target = Broker::start("manifests-target");
    let job = manifest("restore-job.yaml");
    let restore_args = block_list(&job, "args");
    assert_eq!(restore_args.first().map(String::as_str), Some("restore"));
    assert_eq!(
        restore_args.last().map(String::as_str),
        Some("--dry-run"),
        "restore-job.yaml must ship as a dry run"
    );
    let restore_env = pod_env(&job, &target.bootstrap, location);
    let plan = run_workload(&restore_args, &restore_env);
    assert_eq!(plan["dry_run"], true, "{plan}");
    assert!(
        !topic_names(&target.bootstrap).contains(&TOPIC.to_string()),
        "the dry run created {TOPIC}"
    );
    let for_real: Vec<String> = restore_args
        .iter()
        .filter(|arg| *arg != "--dry-run")
        .cloned()
        .collect();
    run_workload(&for_real, &restore_env);
    let restored = read_all(&target.bootstrap, TOPIC, PARTITIONS);
    for partition in 0..PARTITIONS {
        let expected: Vec<_> = records
            .iter()
            .filter(|r| r.partition == partition)
            .map(TestRecord::content)
            .collect();
        let got: Vec<_> = restored[partition as usize]
            .iter()
            .map(TestRecord::content)
            .collect();
        assert_eq!(got, expected, "partition {partition} after the restore Job");
    }
}

/// The sharded CronJob's Indexed Job: its pods, run at once with their JOB_COMPLETION_INDEX,
/// publish one backup that holds every record; `ls` shows the other shard's part as part of it.
#[test]
fn the_sharded_cronjob_publishes_one_backup_from_its_shards() {
    let source = Broker::start("manifests-sharded");
    create_topic(&source.bootstrap, TOPIC, PARTITIONS, &[]);
    create_topic(&source.bootstrap, "payments.manifests", 1, &[]);
    let records: Vec<TestRecord> = (0..600)
        .map(|i| fidelity_record(i as i32 % PARTITIONS, i))
        .collect();
    produce(&source.bootstrap, TOPIC, &records);
    produce(
        &source.bootstrap,
        "payments.manifests",
        &[fidelity_record(0, 7)],
    );
    let dir = tempfile::tempdir().unwrap();
    let location = dir.path().to_str().unwrap();

    let cronjob = manifest("cronjob-sharded.yaml");
    let args = block_list(&cronjob, "args");
    let env = pod_env(&cronjob, &source.bootstrap, location);
    let completions: u32 = block_under(&cronjob, "spec")
        .iter()
        .find_map(|line| line.trim().strip_prefix("completions: "))
        .expect("completions")
        .parse()
        .unwrap();
    assert_eq!(env["KAFKASNAP_SHARDS"], completions.to_string());
    assert!(cronjob.contains("completionMode: Indexed"));
    let summaries: Vec<serde_json::Value> = std::thread::scope(|scope| {
        let pods: Vec<_> = (0..completions)
            .map(|index| {
                let mut env = env.clone();
                env.insert("JOB_COMPLETION_INDEX".into(), index.to_string());
                let args = &args;
                scope.spawn(move || run_workload(args, &env))
            })
            .collect();
        pods.into_iter().map(|pod| pod.join().unwrap()).collect()
    });
    let published: Vec<&serde_json::Value> = summaries
        .iter()
        .filter(|s| s["shard"]["published"] == true)
        .collect();
    assert!(!published.is_empty(), "no shard published: {summaries:?}");
    let backup_id = published[0]["backup_id"].as_str().unwrap();
    for summary in &published {
        assert_eq!(summary["backup_id"], backup_id, "{summaries:?}");
    }
    for summary in &summaries {
        assert_eq!(summary["shard"]["run"], JOB_NAME);
    }
    let read: u64 = summaries
        .iter()
        .map(|s| s["records_read"].as_u64().unwrap())
        .sum();
    assert_eq!(
        read,
        records.len() as u64 + 1,
        "every record read by exactly one shard"
    );

    let verified = kafkasnap_ok(&["verify", location, "--output", "json"], &[]);
    let verified: serde_json::Value = serde_json::from_str(verified.trim()).unwrap();
    assert_eq!(verified["ok"], true, "{verified}");
    assert_eq!(verified["archive"]["backup_id"], backup_id, "{verified}");
    let shown = kafkasnap_ok(&["show", location, "--output", "json"], &[]);
    let shown: serde_json::Value = serde_json::from_str(shown.trim()).unwrap();
    assert_eq!(
        shown["totals"]["records"],
        records.len() as u64 + 1,
        "{shown}"
    );
    assert_eq!(shown["sharding"]["run"], JOB_NAME);
    assert_eq!(shown["sharding"]["count"], completions);
    let listing = kafkasnap_ok(&["ls", location], &[]);
    let complete = listing
        .lines()
        .filter(|l| l.contains("  complete  "))
        .count();
    assert_eq!(complete, 1, "{listing}");
    assert!(
        listing.contains(&format!("its records are in backup {backup_id}")),
        "{listing}"
    );
}

/// The weekly drill CronJob's command line, with the ConfigMap's environment: it drills the
/// newest backup into the scratch cluster the ConfigMap names, exactly, and leaves nothing there;
/// it never reads the backed-up cluster's KAFKASNAP_BOOTSTRAP_SERVERS.
#[test]
fn the_drill_cronjob_drills_the_newest_backup_into_the_scratch_cluster() {
    let source = Broker::start("manifests-drill-source");
    create_topic(&source.bootstrap, TOPIC, PARTITIONS, &[]);
    let records: Vec<TestRecord> = (0..300)
        .map(|i| fidelity_record(i as i32 % PARTITIONS, i))
        .collect();
    produce(&source.bootstrap, TOPIC, &records);
    let dir = tempfile::tempdir().unwrap();
    let location = dir.path().to_str().unwrap();
    crate::harness::backup_to(&source.bootstrap, dir.path(), &[]);

    let scratch = Broker::start("manifests-drill-scratch");
    let cronjob = manifest("cronjob-drill.yaml");
    let args = block_list(&cronjob, "args");
    assert_eq!(args.first().map(String::as_str), Some("drill"));
    let mut env = pod_env(&cronjob, &source.bootstrap, location);
    assert!(
        env.contains_key("KAFKASNAP_DRILL_BOOTSTRAP_SERVERS"),
        "the ConfigMap names no scratch cluster"
    );
    env.insert(
        "KAFKASNAP_DRILL_BOOTSTRAP_SERVERS".into(),
        scratch.bootstrap.clone(),
    );
    let report = run_workload(&args, &env);
    assert_eq!(report["exact"], true, "{report}");
    assert_eq!(report["records_checked"], records.len() as u64, "{report}");
    assert_eq!(report["scratch_cluster"], scratch.bootstrap.as_str());
    assert!(topic_names(&scratch.bootstrap).is_empty());
    assert_eq!(topic_names(&source.bootstrap), [TOPIC]);
}

#[test]
fn the_follow_deployment_serves_health_and_stops_with_a_last_checkpoint() {
    let source = Broker::start("manifests-follow");
    create_topic(&source.bootstrap, TOPIC, PARTITIONS, &[]);
    let records: Vec<TestRecord> = (0..200)
        .map(|i| fidelity_record(i as i32 % PARTITIONS, i))
        .collect();
    produce(&source.bootstrap, TOPIC, &records);
    let dir = tempfile::tempdir().unwrap();
    let location = dir.path().to_str().unwrap();
    let deployment = manifest("deployment-follow.yaml");
    let env = pod_env(&deployment, &source.bootstrap, location);
    // As written, but listening on a free loopback port instead of the pod's 0.0.0.0:9400.
    let port = crate::harness::free_port();
    let args: Vec<String> = block_list(&deployment, "args")
        .iter()
        .map(|arg| match arg.as_str() {
            "0.0.0.0:9400" => format!("127.0.0.1:{port}"),
            other => expand(other, &env),
        })
        .collect();
    assert!(args.contains(&format!("127.0.0.1:{port}")), "{args:?}");
    assert!(deployment.contains("containerPort: 9400"));
    let follower = Command::new(env!("CARGO_BIN_EXE_kafkasnap"))
        .args(&args)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while crate::follow::http_get(port, "/healthz").map(|(code, _)| code) != Some(200) {
        assert!(
            std::time::Instant::now() < deadline,
            "/healthz never said 200"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let (_, metrics) = crate::follow::http_get(port, "/metrics").unwrap();
    assert!(
        metrics.contains("kafkasnap_follow_checkpoints_total 1\n"),
        "{metrics}"
    );
    let killed = Command::new("kill")
        .args(["-TERM", &follower.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let output = follower.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        backup_ids(dir.path()).len(),
        2,
        "a first and a last checkpoint"
    );
    let env: Vec<(&str, String)> = env.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    kafkasnap_ok(&["verify", location, "--backup", "latest"], &env);
}

/// Every pod-running manifest: the image's uid, no token, and the hardening a schema cannot
/// require (it only checks that the fields are well-formed).
#[test]
fn the_pods_run_hardened_as_the_images_user() {
    let dockerfile = std::fs::read_to_string(Path::new(REPO).join("Dockerfile")).unwrap();
    let user = dockerfile
        .lines()
        .find_map(|line| line.strip_prefix("USER "))
        .expect("the Dockerfile sets USER");
    let (uid, gid) = user.trim().split_once(':').expect("USER uid:gid");
    assert!(uid.parse::<u32>().unwrap() > 0, "numeric non-root uid");
    assert!(dockerfile.contains("ENTRYPOINT [\"/usr/local/bin/kafkasnap\"]"));

    for name in [
        "cronjob.yaml",
        "cronjob-sharded.yaml",
        "cronjob-prune.yaml",
        "cronjob-datadir.yaml",
        "cronjob-drill.yaml",
        "restore-job.yaml",
        "deployment-follow.yaml",
    ] {
        let yaml = manifest(name);
        let value_of = |key: &str| -> Vec<String> {
            yaml.lines()
                .filter(|line| !is_blank_or_comment(line))
                .filter_map(|line| line.trim().strip_prefix(&format!("{key}: ")))
                .map(unquote)
                .collect()
        };
        let expect = |key: &str, want: &str| {
            let got = value_of(key);
            assert!(
                !got.is_empty() && got.iter().all(|v| v == want),
                "{name}: {key} is {got:?}, expected {want}"
            );
        };
        expect("runAsUser", uid);
        expect("runAsGroup", gid);
        expect("fsGroup", gid);
        expect("runAsNonRoot", "true");
        // Only the data-dir backup talks to the Kubernetes API (exec into kafka-0).
        let token = if name == "cronjob-datadir.yaml" {
            "true"
        } else {
            "false"
        };
        expect("automountServiceAccountToken", token);
        expect("serviceAccountName", "kafkasnap");
        // A Deployment's pods restart (the only policy it allows); a Job's pods are retried anew.
        let restart = if name.starts_with("deployment") {
            "Always"
        } else {
            "Never"
        };
        expect("restartPolicy", restart);
        expect("readOnlyRootFilesystem", "true");
        expect("allowPrivilegeEscalation", "false");
        expect("drop", "[\"ALL\"]");
        let seccomp = block_under(&yaml, "seccompProfile");
        assert_eq!(
            seccomp.first().map(|l| l.trim()),
            Some("type: RuntimeDefault"),
            "{name}"
        );
        let limits = block_under(&yaml, "limits");
        assert!(
            limits.iter().any(|line| line.trim() == "memory: 512Mi"),
            "{name}: memory limit 512Mi"
        );
        let writable: Vec<&str> = yaml
            .lines()
            .collect::<Vec<_>>()
            .windows(2)
            .filter(|pair| pair[0].trim() == "- name: tmp")
            .map(|pair| pair[1].trim())
            .collect();
        assert!(
            writable.contains(&"mountPath: /tmp") && writable.contains(&"emptyDir:"),
            "{name}: an emptyDir `tmp` mounted at /tmp"
        );
        if name.starts_with("cronjob") {
            expect("concurrencyPolicy", "Forbid");
        }
    }
    // The data-dir CronJob runs `datadir backup` with the ConfigMap's destination, and its Role
    // allows exec into kafka-0 only.
    let datadir = manifest("cronjob-datadir.yaml");
    assert_eq!(
        block_list(&datadir, "args"),
        ["datadir", "backup", "--output", "json"]
    );
    let role = manifest("role-datadir.yaml");
    assert_eq!(
        role.matches("resourceNames: [\"kafka-0\"]").count(),
        2,
        "{role}"
    );
    assert!(
        role.contains("resources: [\"pods/exec\"]") && !role.contains("\"*\""),
        "{role}"
    );

    let secret = manifest("secret.example.yaml");
    for key in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "sasl.password",
    ] {
        let line = secret
            .lines()
            .find(|line| line.trim().starts_with(key))
            .unwrap_or_else(|| panic!("secret.example.yaml has no {key}"));
        assert!(line.contains("REPLACE_ME"), "{key} must be a placeholder");
    }
    let kustomization = manifest("kustomization.yaml");
    let resources = block_list(&kustomization, "resources");
    for outside in [
        "secret.example.yaml",
        "restore-job.yaml",
        "cronjob-sharded.yaml",
        "deployment-follow.yaml",
    ] {
        assert!(
            !resources.iter().any(|r| r == outside),
            "{outside} must stay out of the kustomization"
        );
    }
}

/// A pod that reads the ConfigMap may be told KAFKASNAP_KEY_FILE=/etc/kafkasnap-key/...: each
/// one whose command takes a key mounts the key Secret there (else it fails, or a data-dir
/// backup would not be encrypted as the ConfigMap says).
#[test]
fn every_pod_that_may_be_given_a_key_file_mounts_it() {
    let configmap = manifest("configmap.yaml");
    assert!(
        configmap.contains("KAFKASNAP_KEY_FILE: \"/etc/kafkasnap-key/"),
        "{configmap}"
    );
    let mut checked = Vec::new();
    for entry in std::fs::read_dir(format!("{REPO}/k8s-cronjob")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if !name.ends_with(".yaml") {
            continue;
        }
        let yaml = manifest(&name);
        if !yaml.contains("configMapRef") {
            continue;
        }
        assert!(
            yaml.contains("mountPath: /etc/kafkasnap-key")
                && yaml.contains("secretName: kafkasnap-encryption-key"),
            "{name} reads the ConfigMap but does not mount the key Secret"
        );
        checked.push(name);
    }
    assert!(checked.len() >= 5, "{checked:?}");
    assert!(
        checked.iter().any(|name| name == "cronjob-prune.yaml"),
        "{checked:?}"
    );
}
