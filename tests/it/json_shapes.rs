//! docs/CLI-JSON.md against real output: for each command the doc describes and the suite
//! can run here, the keys of its JSON result (of each element for `ls`, each line for `cat`)
//! are the ones the doc's table lists, each of a type the doc allows.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::fixture::path_str;
use crate::harness::{
    commit_offsets, create_topic, fidelity_record, kafkasnap, kafkasnap_ok, produce, Broker,
};

/// One documented key: the JSON types it may have, and whether it may be left out.
#[derive(Debug)]
pub(crate) struct KeyShape {
    types: Vec<&'static str>,
    optional: bool,
}

/// The tables of docs/CLI-JSON.md, by section title (`backup`, `restore --dry-run`, ...).
pub(crate) fn documented_shapes() -> BTreeMap<String, BTreeMap<String, KeyShape>> {
    const TYPES: [&str; 7] = [
        "string", "integer", "number", "boolean", "array", "object", "null",
    ];
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/CLI-JSON.md")).unwrap();
    let mut shapes: BTreeMap<String, BTreeMap<String, KeyShape>> = BTreeMap::new();
    let mut section = String::new();
    for line in doc.lines() {
        if let Some(title) = line.strip_prefix("## ") {
            section = title.trim_matches('`').to_string();
            continue;
        }
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let [_, key, kind, _, ..] = cells[..] else {
            continue;
        };
        let Some(key) = key.strip_prefix('`').and_then(|k| k.strip_suffix('`')) else {
            continue;
        };
        let types: Vec<&'static str> = TYPES
            .into_iter()
            .filter(|t| kind.split([' ', ',']).any(|word| word == *t))
            .collect();
        assert!(
            !types.is_empty(),
            "{section}: key {key} has no JSON type: {kind:?}"
        );
        let optional = line.contains("*optional*");
        shapes
            .entry(section.clone())
            .or_default()
            .insert(key.to_string(), KeyShape { types, optional });
    }
    shapes
}

fn type_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_u64() || n.is_i64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Fails unless `value` is an object with exactly the keys of `section` (optional ones may be
/// missing), each of a documented type (an integer passes where a number is documented).
pub(crate) fn assert_shape(
    shapes: &BTreeMap<String, BTreeMap<String, KeyShape>>,
    section: &str,
    value: &Value,
) {
    let shape = shapes
        .get(section)
        .unwrap_or_else(|| panic!("docs/CLI-JSON.md has no section {section}"));
    let object = value
        .as_object()
        .unwrap_or_else(|| panic!("{section}: not an object: {value}"));
    for key in object.keys() {
        assert!(
            shape.contains_key(key),
            "{section}: key {key} is not documented: {value}"
        );
    }
    for (key, documented) in shape {
        let Some(found) = object.get(key) else {
            assert!(
                documented.optional,
                "{section}: key {key} is missing: {value}"
            );
            continue;
        };
        let found_type = type_of(found);
        let allowed = documented.types.contains(&found_type)
            || (found_type == "integer" && documented.types.contains(&"number"));
        assert!(
            allowed,
            "{section}: {key} is {found_type}, documented as {:?}: {value}",
            documented.types
        );
    }
}

fn json_of(args: &[&str]) -> Value {
    let printed = kafkasnap_ok(&[args, &["-o", "json"]].concat(), &[]);
    serde_json::from_str(printed.trim()).unwrap_or_else(|e| panic!("{args:?}: {e}: {printed}"))
}

#[test]
fn every_command_prints_the_json_shape_docs_cli_json_describes() {
    let shapes = documented_shapes();
    let source = Broker::start("json-shapes-source");
    create_topic(&source.bootstrap, "orders", 2, &[]);
    let records: Vec<_> = (0..30)
        .map(|i| fidelity_record(i % 2, i as usize))
        .collect();
    produce(&source.bootstrap, "orders", &records);
    commit_offsets(&source.bootstrap, "billing", "orders", &[(0, 3)]);
    let dir = tempfile::tempdir().unwrap();
    let at = path_str(dir.path());
    let b = source.bootstrap.as_str();

    let full = json_of(&["backup", "-b", b, "--to", at]);
    assert_shape(&shapes, "backup", &full);
    produce(&source.bootstrap, "orders", &records[..4]);
    let incremental = json_of(&["backup", "-b", b, "--to", at, "--incremental"]);
    assert_shape(&shapes, "backup", &incremental);
    assert!(incremental["parent"].is_string(), "{incremental}");

    // A follower prints its summary when stopped: one checkpoint here, then SIGTERM.
    let follower = std::process::Command::new(env!("CARGO_BIN_EXE_kafkasnap"))
        .args(["backup", "-b", b, "--to", at, "--follow", "-o", "json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while json_of(&["ls", at]).as_array().unwrap().len() < 3 {
        assert!(std::time::Instant::now() < deadline, "no checkpoint");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let stopped = std::process::Command::new("kill")
        .args(["-TERM", &follower.id().to_string()])
        .status()
        .unwrap();
    assert!(stopped.success());
    let output = follower.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let followed: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_shape(&shapes, "backup --follow", &followed);
    assert_shape(&shapes, "backup", &followed["last_checkpoint"]);
    assert_eq!(followed["checkpoints"], 2, "{followed}");

    let listed = json_of(&["ls", at]);
    assert_eq!(listed.as_array().unwrap().len(), 4, "{listed}");
    for entry in listed.as_array().unwrap() {
        assert_shape(&shapes, "ls", entry);
    }
    assert_shape(&shapes, "show", &json_of(&["show", at]));
    let lines = kafkasnap_ok(&["cat", at, "-t", "orders", "--count", "5"], &[]);
    assert_eq!(lines.lines().count(), 5);
    for line in lines.lines() {
        assert_shape(&shapes, "cat", &serde_json::from_str(line).unwrap());
    }

    let target = Broker::start("json-shapes-target");
    let t = target.bootstrap.as_str();
    let plan = json_of(&["restore", "-b", t, "--from", at, "--dry-run"]);
    assert_shape(&shapes, "restore --dry-run", &plan);
    assert_shape(
        &shapes,
        "restore",
        &json_of(&["restore", "-b", t, "--from", at]),
    );
    let verified = json_of(&["verify", at, "--against", t]);
    assert_shape(&shapes, "verify", &verified);
    assert!(verified["comparison"].is_array(), "{verified}");
    assert_shape(&shapes, "verify", &json_of(&["verify", at]));

    let scratch = Broker::start("json-shapes-scratch");
    let drilled = json_of(&["drill", "--from", at, "-b", &scratch.bootstrap]);
    assert_shape(&shapes, "drill", &drilled);
    assert_eq!(drilled["exact"], true, "{drilled}");

    let pruned = json_of(&["prune", at, "--keep-last", "1", "--dry-run"]);
    assert_shape(&shapes, "prune", &pruned);
    assert_eq!(json_of(&["datadir", "ls", at]), Value::Array(Vec::new()));

    // Errors: a failure, and a command line that does not parse.
    let missing = dir.path().join("missing");
    for args in [
        vec!["ls", path_str(&missing), "-o", "json"],
        vec!["ls", at, "-o", "json", "--bogus"],
    ] {
        let output = kafkasnap(&args, &[]);
        assert!(!output.status.success(), "{args:?}");
        let error: Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_shape(&shapes, "Errors", &error);
    }
}
