//! The store matrix: every location the README promises (local dir, S3 through s3s-fs and
//! through moto, Azure through Azurite, GCS through fake-gcs-server), each through the same
//! round trip: backup with a multipart-sized segment, ls, show, cat, verify, an exact restore,
//! an incremental and a prune, a damaged object that verify names, a backup stopped mid-run
//! (its location lock kept a prune off it; it published nothing), and no credential in any
//! output or object.

use std::sync::Arc;
use std::time::{Duration, Instant};

use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode};

use crate::faults::wait_bounded;
use crate::harness::{
    backup_in_flight_until, contents, create_topic, fidelity_record, fill_bulk, kafkasnap,
    kafkasnap_ok, produce, read_all, stderr_of, Broker, S3Server, TestRecord, S3_SECRET,
};
use crate::location_safety::{kept_one_in_use, prune_to_newest};
use crate::stores_harness::{Emulator, Kind};

/// Above object_store's multipart threshold as kafkasnap uses it (8 MiB).
const MULTIPART_THRESHOLD: u64 = 8 * 1024 * 1024;
const BIG_RECORDS: usize = 90;
const BIG_VALUE: usize = 100 * 1024;

/// A location under test: its URL, the environment kafkasnap needs, a client for the
/// test's own reads and writes, and the credential values that must never leak.
struct Target {
    url: String,
    env: Vec<(&'static str, String)>,
    store: Arc<dyn ObjectStore>,
    secrets: Vec<String>,
}

/// Incompressible bytes (xorshift), so a segment of them stays above the threshold.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A source broker with `orders` (fidelity records, 2 partitions) and `big` (about 9 MiB of
/// incompressible values in one partition: one segment above the multipart threshold).
fn source(name: &str) -> Broker {
    let broker = Broker::start(name);
    create_topic(&broker.bootstrap, "orders", 2, &[]);
    let orders: Vec<TestRecord> = (0..400)
        .map(|i| fidelity_record(i % 2, i as usize))
        .collect();
    produce(&broker.bootstrap, "orders", &orders);
    create_topic(&broker.bootstrap, "big", 1, &[]);
    let big: Vec<TestRecord> = (0..BIG_RECORDS)
        .map(|i| TestRecord {
            partition: 0,
            offset: -1,
            timestamp: 1_600_000_000_000 + i as i64,
            key: Some(format!("k{i}").into_bytes()),
            value: Some(noise(BIG_VALUE, i as u64 + 7)),
            headers: vec![],
        })
        .collect();
    produce(&broker.bootstrap, "big", &big);
    broker
}

/// Backup flags: one segment per partition, uncompressed, so `big` is one >8 MiB object.
const BACKUP_FLAGS: [&str; 6] = [
    "--segment-bytes",
    "16777216",
    "--compression",
    "none",
    "--output",
    "json",
];

fn backup(source: &Broker, target: &Target, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["backup", "-b", &source.bootstrap, "--to", &target.url];
    args.extend_from_slice(&BACKUP_FLAGS);
    args.extend_from_slice(extra);
    serde_json::from_str(&run_ok(target, &args)).unwrap()
}

/// Runs kafkasnap against `target`, checking that no credential shows in its output.
fn run(target: &Target, args: &[&str]) -> std::process::Output {
    let output = kafkasnap(args, &target.env);
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        stderr_of(&output)
    );
    for secret in &target.secrets {
        assert!(
            !all.contains(secret.as_str()),
            "a credential leaked:\n{all}"
        );
    }
    output
}

fn run_ok(target: &Target, args: &[&str]) -> String {
    let output = run(target, args);
    assert!(
        output.status.success(),
        "kafkasnap {args:?} failed with {}:\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        stderr_of(&output)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Every object in the target's store (key relative to the bucket root, size).
async fn objects(store: &Arc<dyn ObjectStore>) -> Vec<(String, u64)> {
    use futures::TryStreamExt;
    let mut listed: Vec<(String, u64)> = store
        .list(None)
        .map_ok(|meta| (meta.location.to_string(), meta.size))
        .try_collect()
        .await
        .unwrap();
    listed.sort();
    listed
}

/// The object whose key contains every one of `parts`.
fn find<'a>(listed: &'a [(String, u64)], parts: &[&str]) -> &'a (String, u64) {
    listed
        .iter()
        .find(|(key, _)| parts.iter().all(|p| key.contains(p)))
        .unwrap_or_else(|| panic!("no object with {parts:?} in {listed:?}"))
}

/// `key`'s bytes, and the same with one byte in the middle flipped.
async fn damaged(store: &Arc<dyn ObjectStore>, key: &str) -> (Vec<u8>, Vec<u8>) {
    let original = store
        .get(&ObjectPath::from(key))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .to_vec();
    let mut bytes = original.clone();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    (original, bytes)
}

fn assert_restores_exactly(source: &Broker, target: &Target, backup_id: &str, orders: usize) {
    let restored = Broker::start("matrix-target");
    run_ok(
        target,
        &[
            "restore",
            "-b",
            &restored.bootstrap,
            "--from",
            &target.url,
            "--backup",
            backup_id,
        ],
    );
    let want = read_all(&source.bootstrap, "orders", 2);
    assert_eq!(want.iter().map(Vec::len).sum::<usize>(), orders);
    assert_eq!(
        contents(&read_all(&restored.bootstrap, "orders", 2)),
        contents(&want),
        "orders restored from {}",
        target.url
    );
    assert_eq!(
        contents(&read_all(&restored.bootstrap, "big", 1)),
        contents(&read_all(&source.bootstrap, "big", 1)),
        "big restored from {}",
        target.url
    );
}

/// The read-only half of the round trip: ls, show, cat and verify of `backup_id`.
fn assert_reads(target: &Target, backup_id: &str, orders_in_partition_0: usize) {
    let listing = run_ok(target, &["ls", &target.url]);
    assert!(listing.contains(backup_id), "{listing}");
    assert!(!listing.contains("INCOMPLETE"), "{listing}");
    let show = run_ok(target, &["show", &target.url, "--backup", backup_id]);
    assert!(show.contains("orders") && show.contains("big"), "{show}");
    let cat = run_ok(
        target,
        &["cat", &target.url, "--topic", "orders", "--partition", "0"],
    );
    assert_eq!(cat.lines().count(), orders_in_partition_0, "{cat}");
    let verify = run_ok(target, &["verify", &target.url, "--backup", backup_id]);
    assert!(verify.contains("OK"), "{verify}");
}

/// verify exits 3 naming the damaged object.
fn assert_verify_names(target: &Target, key: &str) {
    let verify = run(target, &["verify", &target.url]);
    let report = String::from_utf8_lossy(&verify.stdout);
    assert_eq!(
        verify.status.code(),
        Some(3),
        "{report}{}",
        stderr_of(&verify)
    );
    let name = key.rsplit('/').next().unwrap();
    assert!(report.contains(name), "{report}");
}

/// The whole round trip against a location kafkasnap can write to.
async fn round_trip(name: &str, target: Target, prefix: &str) {
    let started = Instant::now();
    let source = source(name);
    let first = backup(&source, &target, &[]);
    let first_id = first["backup_id"].as_str().unwrap().to_string();
    assert_eq!(first["records"], 400 + BIG_RECORDS as u64, "{first}");

    let listed = objects(&target.store).await;
    let (_, big_size) = find(&listed, &[prefix, &first_id, "big", ".kseg"]);
    assert!(
        *big_size > MULTIPART_THRESHOLD,
        "the big segment is {big_size} bytes: not a multipart upload"
    );
    assert_create_only(
        &target.store,
        &format!("{prefix}backups/{first_id}/manifest.json"),
    )
    .await;
    assert_reads(&target, &first_id, 200);
    assert_restores_exactly(&source, &target, &first_id, 400);

    // An incremental reads only what is new, and prune keeps the chain it needs.
    let more: Vec<TestRecord> = (400..500)
        .map(|i| fidelity_record(i % 2, i as usize))
        .collect();
    produce(&source.bootstrap, "orders", &more);
    let second = backup(&source, &target, &["--incremental"]);
    let second_id = second["backup_id"].as_str().unwrap().to_string();
    assert_eq!(second["parent"], first["backup_id"], "{second}");
    assert_eq!(second["records_read"], 100, "{second}");
    assert_reads(&target, &second_id, 250);
    let pruned = run_ok(
        &target,
        &["prune", &target.url, "--keep-last", "1", "--grace", "0s"],
    );
    let listing = run_ok(&target, &["ls", &target.url]);
    assert!(
        listing.contains(&first_id) && listing.contains(&second_id),
        "prune removed a parent the kept backup needs: {pruned}\n{listing}"
    );
    assert_restores_exactly(&source, &target, &second_id, 500);

    // A damaged segment is found and named; with it repaired, verify passes again.
    let listed = objects(&target.store).await;
    let (victim, _) = find(&listed, &[prefix, &first_id, "orders", ".kseg"]).clone();
    let (original, bad) = damaged(&target.store, &victim).await;
    let path = ObjectPath::from(victim.as_str());
    target.store.put(&path, bad.into()).await.unwrap();
    assert_verify_names(&target, &victim);
    target.store.put(&path, original.into()).await.unwrap();
    run_ok(&target, &["verify", &target.url]);

    interrupted_backup_publishes_nothing(&source, &target, prefix);
    assert_no_secret_in_objects(&target).await;
    eprintln!("store matrix: {name} took {:?}", started.elapsed());
}

/// The ids of the complete backups `ls` lists.
fn complete_backups(target: &Target) -> Vec<String> {
    let listed: serde_json::Value =
        serde_json::from_str(&run_ok(target, &["ls", &target.url, "--output", "json"])).unwrap();
    listed
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["complete"] == true)
        .map(|b| b["backup_id"].as_str().unwrap().to_string())
        .collect()
}

/// What the test sees of the store, from a synchronous wait loop.
fn objects_now(store: &Arc<dyn ObjectStore>) -> Vec<(String, u64)> {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(objects(store)))
}

/// A backup stopped with SIGTERM mid-run, with a prune run beside it: the prune sees the
/// backup's location lock (written create-only on this store) and removes nothing; the backup
/// exits 130, publishes nothing and takes its lock away; what was published before still
/// verifies.
fn interrupted_backup_publishes_nothing(source: &Broker, target: &Target, prefix: &str) {
    fill_bulk(source, "bulk", 2, 60_000);
    let published = complete_backups(target);
    let extra = ["--include", "^bulk$", "--parallelism", "1"];
    let child = backup_in_flight_until(source, &target.url, &target.env, &extra, || {
        objects_now(&target.store)
            .iter()
            .any(|(key, _)| key.contains("/bulk") && key.contains(".kseg"))
    });
    let pruned: serde_json::Value =
        serde_json::from_str(&run_ok(target, &prune_to_newest(&target.url))).unwrap();
    assert!(
        pruned["removed"].as_array().unwrap().is_empty() && kept_one_in_use(&pruned),
        "a prune beside a running backup: {pruned}"
    );

    let term = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let stopped = wait_bounded(child, Duration::from_secs(30));
    let stderr = stderr_of(&stopped);
    assert_eq!(stopped.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("interrupted; nothing was published"),
        "{stderr}"
    );
    assert_eq!(complete_backups(target), published);
    let locks: Vec<_> = objects_now(&target.store)
        .into_iter()
        .filter(|(key, _)| key.starts_with(&format!("{prefix}locks/")))
        .collect();
    assert!(locks.is_empty(), "locks left behind: {locks:?}");
    run_ok(target, &["verify", &target.url]);
}

/// The store refuses a create-only put over an existing manifest (what publishing relies on:
/// a manifest is never overwritten), and the manifest is unchanged.
async fn assert_create_only(store: &Arc<dyn ObjectStore>, key: &str) {
    let path = ObjectPath::from(key);
    let before = store.get(&path).await.unwrap().bytes().await.unwrap();
    let again = store
        .put_opts(&path, b"{}".to_vec().into(), PutMode::Create.into())
        .await;
    assert!(
        matches!(again, Err(object_store::Error::AlreadyExists { .. })),
        "a create-only put over {key} gave {again:?}"
    );
    let after = store.get(&path).await.unwrap().bytes().await.unwrap();
    assert_eq!(before, after, "{key} was overwritten");
}

async fn assert_no_secret_in_objects(target: &Target) {
    for (key, _) in objects(&target.store).await {
        let bytes = target
            .store
            .get(&ObjectPath::from(key.as_str()))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&bytes);
        for secret in &target.secrets {
            assert!(!text.contains(secret.as_str()), "a credential is in {key}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn store_matrix_local_directory() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn ObjectStore> =
        Arc::new(object_store::local::LocalFileSystem::new_with_prefix(dir.path()).unwrap());
    let target = Target {
        url: dir.path().join("kafka").to_str().unwrap().to_string(),
        env: vec![],
        store,
        secrets: vec![],
    };
    round_trip("matrix-local", target, "kafka/").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn store_matrix_s3_through_s3s_fs() {
    let s3 = S3Server::start("bucket");
    let store = object_store::aws::AmazonS3Builder::new()
        .with_endpoint(&s3.endpoint)
        .with_allow_http(true)
        .with_bucket_name("bucket")
        .with_access_key_id(crate::harness::S3_KEY)
        .with_secret_access_key(S3_SECRET)
        .with_region("us-east-1")
        .build()
        .unwrap();
    let target = Target {
        url: "s3://bucket/nightly/kafka".into(),
        env: s3.env(),
        store: Arc::new(store),
        secrets: vec![S3_SECRET.into()],
    };
    round_trip("matrix-s3s", target, "nightly/kafka/").await;
}

fn emulated(emulator: &Emulator, prefix: &str) -> Target {
    Target {
        url: emulator.url(prefix),
        env: emulator.env(),
        store: emulator.store(),
        secrets: emulator.secrets(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn store_matrix_s3_through_moto() {
    let moto = Emulator::start(Kind::Moto, "backups");
    round_trip("matrix-moto", emulated(&moto, "nightly"), "nightly/").await;
}

/// The README's advice for an S3-compatible server without `If-None-Match: *`:
/// `AWS_CONDITIONAL_PUT=disabled` makes object_store refuse create-only puts as not
/// implemented, and kafkasnap looks before it puts instead. The whole round trip still holds.
#[tokio::test(flavor = "multi_thread")]
async fn store_matrix_s3_through_moto_without_conditional_put() {
    let moto = Emulator::start(Kind::Moto, "backups");
    let mut target = emulated(&moto, "nightly");
    target.env.push(("AWS_CONDITIONAL_PUT", "disabled".into()));
    round_trip("matrix-moto-look-first", target, "nightly/").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn store_matrix_azure_through_azurite() {
    let azurite = Emulator::start(Kind::Azurite, "backups");
    round_trip("matrix-azurite", emulated(&azurite, "nightly"), "nightly/").await;
}

/// fake-gcs-server implements GCS's JSON API but not the XML API uploads object_store's GCS
/// client writes with (plain PUT, multipart, `x-goog-if-generation-match`). Whatever writes
/// (a backup; verify and restore, which write a location lock first) must fail clearly,
/// naming the object and the location, and change nothing. What only reads (ls, show, cat,
/// a damaged object found by cat) is tested on a backup copied in through the JSON API.
#[tokio::test(flavor = "multi_thread")]
async fn store_matrix_gcs_through_fake_gcs_server() {
    let started = Instant::now();
    let gcs = Emulator::start(Kind::FakeGcs, "backups");
    let target = emulated(&gcs, "nightly");
    let source = source("matrix-gcs");

    let refused = run(
        &target,
        &["backup", "-b", &source.bootstrap, "--to", &target.url],
    );
    assert_cannot_write(&refused);
    assert!(
        objects(&target.store).await.is_empty(),
        "a refused backup left objects"
    );

    // The same backup made locally, copied in object by object.
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().to_str().unwrap();
    let mut args = vec!["backup", "-b", &source.bootstrap, "--to", local];
    args.extend_from_slice(&BACKUP_FLAGS);
    let summary: serde_json::Value = serde_json::from_str(&kafkasnap_ok(&args, &[])).unwrap();
    let id = summary["backup_id"].as_str().unwrap().to_string();
    for file in crate::harness::files_under(dir.path()) {
        let key = file.strip_prefix(dir.path()).unwrap().to_str().unwrap();
        if !key.starts_with("locks/") {
            gcs.gcs_upload(&format!("nightly/{key}"), &std::fs::read(&file).unwrap());
        }
    }
    let listed = objects(&target.store).await;
    let (_, big_size) = find(&listed, &["nightly/", &id, "big", ".kseg"]);
    assert!(*big_size > MULTIPART_THRESHOLD);

    let listing = run_ok(&target, &["ls", &target.url]);
    assert!(
        listing.contains(&id) && !listing.contains("INCOMPLETE"),
        "{listing}"
    );
    let show = run_ok(&target, &["show", &target.url, "--backup", &id]);
    assert!(show.contains("orders") && show.contains("big"), "{show}");
    let cat = run_ok(&target, &["cat", &target.url, "--topic", "orders"]);
    assert_eq!(cat.lines().count(), 400, "{cat}");
    let cat_big = run_ok(&target, &["cat", &target.url, "--topic", "big"]);
    assert_eq!(cat_big.lines().count(), BIG_RECORDS);

    // verify and restore lock the location first: refused, the target cluster untouched.
    assert_cannot_write(&run(&target, &["verify", &target.url]));
    let restored = Broker::start("matrix-gcs-target");
    let before = crate::harness::topic_names(&restored.bootstrap);
    let restore = run(
        &target,
        &["restore", "-b", &restored.bootstrap, "--from", &target.url],
    );
    assert_cannot_write(&restore);
    assert_eq!(crate::harness::topic_names(&restored.bootstrap), before);

    let (victim, _) = find(&listed, &["nightly/", &id, "orders", ".kseg"]).clone();
    let (_, bad) = damaged(&target.store, &victim).await;
    gcs.gcs_upload(&victim, &bad);
    let cat = run(&target, &["cat", &target.url, "--topic", "orders"]);
    let name = victim.rsplit('/').next().unwrap();
    assert!(
        !cat.status.success() && stderr_of(&cat).contains(name),
        "cat of a damaged segment: {}",
        stderr_of(&cat)
    );
    assert_no_secret_in_objects(&target).await;
    eprintln!("store matrix: matrix-gcs took {:?}", started.elapsed());
}

/// A run that had to write to fake-gcs-server: exit 1, naming the object and the location.
fn assert_cannot_write(output: &std::process::Output) {
    let stderr = stderr_of(output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot write locks/") && stderr.contains("at gs://backups/nightly"),
        "{stderr}"
    );
}
