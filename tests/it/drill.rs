//! `kafkasnap drill` on two tansu brokers: a good backup drills exact (every record, a positive
//! recovery time, metrics pushed) and leaves no topic or group in the scratch cluster, whose
//! own topics it never touches; `--keep` leaves a restore an independent reader finds exact
//! (records and translated group offsets) and a later drill refuses to reuse (exit 2); a
//! flipped byte is found (exit 3, the object named) before anything is created; SIGINT
//! mid-restore cleans up (exit 130, the JSON result still printed); the source cluster is
//! refused (exit 2) unless allowed, and not by an environment variable; a data-dir backup of
//! a real broker's data directory drills too; a restore stopped by a target topic another
//! run created counts only the topics it created.

use std::path::Path;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};

use crate::fixture::{filled_source, path_str, CUSTOMERS, GROUP, ORDERS, ORDERS_PARTITIONS};
use crate::harness::{
    backup_to, client, committed_offsets, contents, create_topic, fidelity_record, files_under,
    fill_bulk, kafkasnap, produce, read_all, stderr_of, topic_names, Broker,
};
use crate::resume::end_offsets_of;

/// The consumer groups the broker lists.
fn group_names(bootstrap: &str) -> Vec<String> {
    let consumer: BaseConsumer = client(bootstrap).create().unwrap();
    let list = consumer
        .fetch_group_list(None, Duration::from_secs(30))
        .unwrap();
    let mut names: Vec<String> = list.groups().iter().map(|g| g.name().to_string()).collect();
    names.sort();
    names
}

/// Nothing with the prefix is left in the scratch cluster: no topic, no group, no commit.
fn assert_nothing_left(scratch: &Broker, prefix: &str) {
    let topics: Vec<String> = topic_names(&scratch.bootstrap)
        .into_iter()
        .filter(|t| t.starts_with(prefix))
        .collect();
    assert!(topics.is_empty(), "topics left behind: {topics:?}");
    let groups: Vec<String> = group_names(&scratch.bootstrap)
        .into_iter()
        .filter(|g| g.starts_with(prefix))
        .collect();
    assert!(groups.is_empty(), "groups left behind: {groups:?}");
}

fn drill_json(args: &[&str]) -> (Option<i32>, serde_json::Value, String) {
    let mut all = vec!["drill", "--output", "json"];
    all.extend_from_slice(args);
    let output = kafkasnap(&all, &[]);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let json = serde_json::from_str(stdout.trim()).unwrap_or(serde_json::Value::Null);
    (output.status.code(), json, stderr_of(&output))
}

#[test]
fn a_good_backup_drills_exact_and_leaves_nothing_behind() {
    let source = filled_source();
    let dir = tempfile::tempdir().unwrap();
    let location = path_str(dir.path());
    backup_to(&source.broker.bootstrap, dir.path(), &[]);
    let id = crate::harness::only_backup_id(dir.path());
    let total = source.orders.iter().map(Vec::len).sum::<usize>()
        + source.customers.iter().map(Vec::len).sum::<usize>();

    // The scratch cluster has a topic and a group of its own under the backup's names.
    let scratch = Broker::start("drill-scratch");
    create_topic(&scratch.bootstrap, ORDERS, 1, &[]);
    produce(&scratch.bootstrap, ORDERS, &[fidelity_record(0, 424_242)]);
    crate::harness::commit_offsets(&scratch.bootstrap, GROUP, ORDERS, &[(0, 1)]);
    let own_records = read_all(&scratch.bootstrap, ORDERS, 1);

    let (url, requests) = crate::metrics::pushgateway();
    let (code, report, stderr) = drill_json(&[
        "--from",
        location,
        "-b",
        &scratch.bootstrap,
        "--pushgateway",
        &url,
    ]);
    assert_eq!(code, Some(0), "{stderr}\n{report}");
    // The default prefix: the backup's id and a random run suffix.
    let prefix = report["prefix"].as_str().unwrap().to_string();
    let suffix = prefix
        .strip_prefix(&format!("kafkasnap-drill-{id}-"))
        .and_then(|rest| rest.strip_suffix('.'))
        .unwrap_or_else(|| panic!("default prefix {prefix}"));
    assert!(
        suffix.len() == 6 && suffix.bytes().all(|b| b.is_ascii_hexdigit()),
        "{prefix}"
    );
    assert_eq!(report["exact"], true, "{report}");
    assert_eq!(report["backup_id"], id.as_str());
    assert_eq!(report["backup_kind"], "logical");
    assert_eq!(report["records_restored"], total as u64, "{report}");
    assert_eq!(report["records_checked"], total as u64, "{report}");
    assert_eq!(
        report["partitions_checked"],
        (ORDERS_PARTITIONS + 2) as u64,
        "{report}"
    );
    assert_eq!(report["group_offsets_checked"], 3, "{report}");
    assert!(
        report["restore_seconds"].as_f64().unwrap() > 0.0,
        "{report}"
    );
    assert!(report["records_per_second"].as_f64().unwrap() > 0.0);
    let age = report["backup_age_seconds"].as_f64().unwrap();
    assert!((0.0..600.0).contains(&age), "{report}");
    assert_eq!(report["differences"], serde_json::json!([]));
    let mut deleted: Vec<String> =
        serde_json::from_value(report["cleanup"]["topics_deleted"].clone()).unwrap();
    deleted.sort();
    assert_eq!(
        deleted,
        [format!("{prefix}{ORDERS}"), format!("{prefix}{CUSTOMERS}")]
    );
    assert_eq!(
        report["cleanup"]["groups_deleted"],
        serde_json::json!([format!("{prefix}{GROUP}")])
    );
    assert_nothing_left(&scratch, &prefix);
    // The scratch cluster's own topic and group are as they were.
    assert_eq!(topic_names(&scratch.bootstrap), [ORDERS]);
    assert_eq!(
        contents(&read_all(&scratch.bootstrap, ORDERS, 1)),
        contents(&own_records)
    );
    assert_eq!(
        committed_offsets(&scratch.bootstrap, GROUP, ORDERS, 1),
        [Some(1)]
    );

    let pushed = requests.lock().unwrap().clone();
    let (method, path, body) = pushed.last().expect("metrics pushed").clone();
    assert_eq!(
        (method.as_str(), path.as_str()),
        ("PUT", "/metrics/job/kafkasnap/command/drill")
    );
    for metric in [
        "kafkasnap_drill_last_success_timestamp_seconds ",
        "kafkasnap_drill_rto_seconds ",
        "kafkasnap_drill_backup_age_seconds ",
        "kafkasnap_drill_last_run_success 1\n",
    ] {
        assert!(body.contains(metric), "{metric} missing:\n{body}");
    }

    // --keep leaves the restore for inspection: an independent reader finds the records and
    // the translated group offsets exact.
    let kept = kafkasnap(
        &[
            "drill",
            "--from",
            location,
            "-b",
            &scratch.bootstrap,
            "--prefix",
            "kept.",
            "--keep",
        ],
        &[],
    );
    let stdout = String::from_utf8_lossy(&kept.stdout).into_owned();
    assert_eq!(kept.status.code(), Some(0), "{}", stderr_of(&kept));
    assert!(stdout.trim_end().ends_with("OK"), "{stdout}");
    assert!(stdout.contains("(the recovery time)"), "{stdout}");
    let restored = read_all(&scratch.bootstrap, "kept.order.created", ORDERS_PARTITIONS);
    assert_eq!(contents(&restored), contents(&source.orders));
    let committed = committed_offsets(
        &scratch.bootstrap,
        "kept.billing",
        "kept.order.created",
        ORDERS_PARTITIONS,
    );
    let expected: Vec<Option<i64>> = source.committed.iter().map(|(_, o)| Some(*o)).collect();
    assert_eq!(committed, expected);

    // What the kept drill left is never taken over or deleted by another drill.
    let (code, _, stderr) = drill_json(&[
        "--from",
        location,
        "-b",
        &scratch.bootstrap,
        "--prefix",
        "kept.",
    ]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("already has topic kept.order.created"),
        "{stderr}"
    );
    assert_eq!(
        contents(&read_all(
            &scratch.bootstrap,
            "kept.order.created",
            ORDERS_PARTITIONS
        )),
        contents(&source.orders)
    );
}

#[test]
fn a_flipped_byte_is_found_before_anything_is_created() {
    let source = Broker::start("drill-damaged-source");
    create_topic(&source.bootstrap, "t", 2, &[]);
    let records: Vec<_> = (0..400).map(|i| fidelity_record(i as i32 % 2, i)).collect();
    produce(&source.bootstrap, "t", &records);
    crate::harness::commit_offsets(&source.bootstrap, "readers", "t", &[(0, 5)]);
    let dir = tempfile::tempdir().unwrap();
    backup_to(&source.bootstrap, dir.path(), &[]);
    let segment = files_under(dir.path())
        .into_iter()
        .find(|f| f.to_string_lossy().contains(".kseg"))
        .expect("a segment");
    let mut bytes = std::fs::read(&segment).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&segment, bytes).unwrap();
    let key = segment
        .strip_prefix(dir.path())
        .unwrap()
        .to_string_lossy()
        .into_owned();

    let scratch = Broker::start("drill-damaged-scratch");
    let output = kafkasnap(
        &[
            "drill",
            "--from",
            path_str(dir.path()),
            "-b",
            &scratch.bootstrap,
        ],
        &[],
    );
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert_eq!(
        output.status.code(),
        Some(3),
        "{stdout}{}",
        stderr_of(&output)
    );
    assert!(stdout.contains(&format!("BAD {key}: ")), "{stdout}");
    assert!(stdout.trim_end().ends_with("FAILED"), "{stdout}");
    assert!(topic_names(&scratch.bootstrap).is_empty());
    assert_nothing_left(&scratch, "kafkasnap-drill-");
}

#[test]
fn an_interrupted_drill_cleans_up() {
    let source = Broker::start("drill-interrupt-source");
    fill_bulk(&source, "bulk", 2, 160_000);
    crate::harness::commit_offsets(&source.bootstrap, "readers", "bulk", &[(0, 10)]);
    let dir = tempfile::tempdir().unwrap();
    backup_to(&source.bootstrap, dir.path(), &[]);

    let scratch = Broker::start("drill-interrupt-scratch");
    let drill = crate::stops::spawn(&[
        "drill",
        "--output",
        "json",
        "--from",
        path_str(dir.path()),
        "-b",
        &scratch.bootstrap,
        "--prefix",
        "drill.",
        "--parallelism",
        "1",
    ]);
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut drill = drill;
    while end_offsets_of(&scratch.bootstrap, "drill.bulk", 2)
        .iter()
        .sum::<i64>()
        < 20_000
    {
        assert!(
            Instant::now() < deadline,
            "the drill's restore never got going"
        );
        assert!(
            drill.try_wait().unwrap().is_none(),
            "the drill finished before it could be stopped"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    crate::stops::signal(drill.id(), "INT");
    let output = crate::stops::wait_at_most(drill, Duration::from_secs(30), "an interrupted drill");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    // Interrupted while writing records: the topic was created, no group committed yet.
    assert!(
        stderr.contains("the drill was interrupted while restoring into the scratch cluster; it deleted the 1 topic and 0 consumer groups it created"),
        "{stderr}"
    );
    // The last stdout line is the JSON result also for a drill that did not finish.
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let last = stdout.lines().last().unwrap_or_default();
    let report: serde_json::Value = serde_json::from_str(last).unwrap_or_else(|err| {
        panic!("the last stdout line is not JSON ({err}): {stdout}");
    });
    assert_eq!(report["exit_code"], 130, "{report}");
    assert_eq!(report["exact"], false, "{report}");
    assert_eq!(report["prefix"], "drill.", "{report}");
    assert_eq!(
        report["cleanup"]["topics_deleted"],
        serde_json::json!(["drill.bulk"]),
        "{report}"
    );
    assert_eq!(report["cleanup"]["groups_deleted"], serde_json::json!([]));
    // The error object every command prints with --output json, the report beside it.
    assert_eq!(report["error"]["kind"], "interrupted", "{report}");
    assert!(
        report["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("the drill was interrupted"),
        "{report}"
    );
    assert_eq!(stdout.lines().count(), 1, "one JSON result: {stdout}");
    assert_nothing_left(&scratch, "drill.");
}

/// What a drill deletes after a failed restore is what the restore says it created: a target
/// topic that appeared after the plan (another drill's) is refused as already there, never
/// counted as created, and keeps its records.
#[test]
fn a_restore_counts_as_created_only_the_topics_the_cluster_created_for_it() {
    use kafkasnap::restore::{plan_restore, run_restore, GroupNames, IfExists, RestoreOptions};

    let source = Broker::start("drill-created-source");
    create_topic(&source.bootstrap, "a", 1, &[]);
    create_topic(&source.bootstrap, "b", 1, &[]);
    produce(&source.bootstrap, "a", &[fidelity_record(0, 1)]);
    produce(&source.bootstrap, "b", &[fidelity_record(0, 2)]);
    let dir = tempfile::tempdir().unwrap();
    backup_to(&source.bootstrap, dir.path(), &[]);
    let id =
        kafkasnap::archive::BackupId::parse(&crate::harness::only_backup_id(dir.path())).unwrap();
    let location = kafkasnap::store::Location::open(path_str(dir.path()), false).unwrap();

    let scratch = Broker::start("drill-created-scratch");
    let options = RestoreOptions {
        client: kafkasnap::kafka::ClientSettings::new(scratch.bootstrap.clone()),
        selection: kafkasnap::selection::TopicSelection::new(&[], &[], false).unwrap(),
        topic_map: vec![("a".into(), "p.a".into()), ("b".into(), "p.b".into())],
        from_time: None,
        until: None,
        if_exists: IfExists::Fail,
        skip_groups: false,
        group_names: GroupNames::Prefixed("p.".into()),
        parallelism: 1,
        resume: false,
        encryption_key: None,
        stall_timeout: Duration::from_secs(60),
        cancel: Default::default(),
    };
    let restored = crate::harness::block_on(async {
        let manifest = kafkasnap::read::read_manifest(&location, &id, None)
            .await
            .unwrap();
        let plan = plan_restore(&manifest, &options).await.unwrap();
        // Between the plan and the restore, another drill creates one of the targets.
        create_topic(&scratch.bootstrap, "p.b", 1, &[]);
        produce(&scratch.bootstrap, "p.b", &[fidelity_record(0, 424_242)]);
        let writer = kafkasnap::restore::connect_writer(&options).await.unwrap();
        let progress = std::sync::Arc::default();
        run_restore(&location, &manifest, plan, &options, writer, progress).await
    });
    let written = match restored {
        Err(kafkasnap::Error::RestoreIncomplete { written, .. }) => written,
        other => panic!("expected a restore stopped creating topics, got {other:?}"),
    };
    assert_eq!(written.created().topics, ["p.a"]);
    assert!(written.created().groups.is_empty());
    assert_eq!(
        contents(&read_all(&scratch.bootstrap, "p.b", 1)),
        contents(&[vec![fidelity_record(0, 424_242)]])
    );
}

#[test]
fn the_source_cluster_is_refused_unless_allowed() {
    let source = Broker::start("drill-own-source");
    create_topic(&source.bootstrap, "t", 1, &[]);
    let records: Vec<_> = (0..50).map(|i| fidelity_record(0, i)).collect();
    produce(&source.bootstrap, "t", &records);
    let dir = tempfile::tempdir().unwrap();
    backup_to(&source.bootstrap, dir.path(), &[]);
    let location = path_str(dir.path());

    let (code, _, stderr) = drill_json(&["--from", location, "-b", &source.bootstrap]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("is the cluster backup")
            && stderr.contains("both have cluster id drill-own-source")
            && stderr.contains("--allow-source-cluster"),
        "{stderr}"
    );
    assert_eq!(topic_names(&source.bootstrap), ["t"]);

    // Only the command-line flag lifts the refusal, never the environment.
    let refused = kafkasnap(
        &["drill", "--from", location, "-b", &source.bootstrap],
        &[("KAFKASNAP_ALLOW_SOURCE_CLUSTER", "true".into())],
    );
    assert_eq!(refused.status.code(), Some(2), "{}", stderr_of(&refused));

    let (code, report, stderr) = drill_json(&[
        "--from",
        location,
        "-b",
        &source.bootstrap,
        "--allow-source-cluster",
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(report["records_checked"], 50, "{report}");
    assert_eq!(topic_names(&source.bootstrap), ["t"]);
}

#[test]
fn a_datadir_backup_drills_too() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/fixtures/kafka-bytes/ldi-poc-kraft-3.7-datadir");
    if !fixture.is_dir() {
        assert!(
            std::env::var("CI").is_err(),
            "fixture {} is missing",
            fixture.display()
        );
        eprintln!("SKIPPED: fixture {} is missing", fixture.display());
        return;
    }
    let backups = tempfile::tempdir().unwrap();
    let manifest = crate::harness::block_on(crate::k8s_restore::publish(
        backups.path(),
        &crate::k8s_restore::tar_of(&fixture),
    ));
    let scratch = Broker::start("drill-datadir-scratch");
    let (code, report, stderr) =
        drill_json(&["--from", path_str(backups.path()), "-b", &scratch.bootstrap]);
    assert_eq!(code, Some(0), "{stderr}\n{report}");
    assert_eq!(report["backup_kind"], "datadir", "{report}");
    assert_eq!(report["backup_id"], manifest.backup_id.to_string());
    assert_eq!(report["exact"], true, "{report}");
    assert_eq!(report["records_restored"], 3, "{report}");
    assert_eq!(report["records_checked"], 3, "{report}");
    assert!(
        report["group_offsets_checked"].as_u64().unwrap() >= 1,
        "{report}"
    );
    assert!(report["restore_seconds"].as_f64().unwrap() > 0.0);
    assert_nothing_left(&scratch, "kafkasnap-drill-");
    assert!(topic_names(&scratch.bootstrap).is_empty());
}
