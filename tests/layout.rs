//! The library's layering, checked from its source: every `crate::` path in a module points to
//! a module in a lower layer (so imports run one way and there are no cycles), and no file's
//! non-test code is longer than 600 lines. The layers are the ones the README's "Code layout"
//! table draws; change both together.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Bottom first. A module may use only modules of lower layers.
const LAYERS: &[&[&str]] = &[
    &["archive"],
    &[
        "datadir",
        "kafka",
        "store",
        "k8s",
        "topic_map",
        "progress",
        "metrics",
    ],
    &["error"],
    &["read", "write", "selection"],
    &["backup", "restore", "verify", "retention", "physical"],
    &["drill", "follow"],
];

/// Non-test lines a source file may hold.
const MAX_LINES: usize = 600;

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

fn library_sources() -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut dirs = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("src")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// `src/a/b.rs` and `src/a.rs` belong to module `a`; `None` for the crate root and the binary.
fn module_of(relative: &Path) -> Option<String> {
    let first = relative.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    let name = name.strip_suffix("_tests").unwrap_or(name);
    match name {
        "lib" | "main" | "commands" | "cli" => None,
        _ => Some(name.to_string()),
    }
}

/// The top-level modules a file names through `crate::`, comments left out. `crate::Error`
/// is the `error` module's; `use crate::{a::x, b}` names `a` and `b`.
fn crate_references(source: &str) -> Vec<String> {
    let code: String = source
        .lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut names = Vec::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find("crate::") {
        let after = &rest[at + "crate::".len()..];
        if let Some(group) = after.strip_prefix('{') {
            let mut depth = 1;
            let end = group
                .char_indices()
                .find(|&(_, c)| {
                    depth += match c {
                        '{' => 1,
                        '}' => -1,
                        _ => 0,
                    };
                    depth == 0
                })
                .map_or(group.len(), |(i, _)| i);
            let mut depth = 0;
            let mut item = String::new();
            for c in group[..end].chars().chain([',']) {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        names.push(leading_name(&item));
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                item.push(c);
            }
            rest = &group[end..];
        } else {
            names.push(leading_name(after));
            rest = after;
        }
    }
    names.retain(|name| !name.is_empty());
    names
        .into_iter()
        .map(|name| {
            if name == "Error" {
                "error".into()
            } else {
                name
            }
        })
        .collect()
}

fn leading_name(text: &str) -> String {
    text.trim_start()
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect()
}

#[test]
fn every_module_imports_only_lower_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut wrong: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut modules_seen = 0;
    for path in library_sources() {
        let relative = path.strip_prefix(&src).unwrap();
        let Some(module) = module_of(relative) else {
            continue;
        };
        modules_seen += 1;
        let Some(own_layer) = layer_of(&module) else {
            wrong.entry(module.clone()).or_default().push(format!(
                "{} is in no layer: add it to LAYERS",
                relative.display()
            ));
            continue;
        };
        let source = std::fs::read_to_string(&path).unwrap();
        for target in crate_references(&source) {
            if target == module {
                continue;
            }
            let allowed = layer_of(&target).is_some_and(|layer| layer < own_layer);
            if !allowed {
                wrong
                    .entry(module.clone())
                    .or_default()
                    .push(format!("{} uses crate::{target}", relative.display()));
            }
        }
    }
    assert!(
        modules_seen > 50,
        "read only {modules_seen} files under {src:?}"
    );
    assert!(
        wrong.is_empty(),
        "imports against the layering (lower layers first: {LAYERS:?}):\n{wrong:#?}"
    );
}

#[test]
fn no_source_file_holds_more_than_600_lines_of_non_test_code() {
    let mut long = Vec::new();
    for path in library_sources() {
        if path.to_str().unwrap().ends_with("_tests.rs") {
            continue;
        }
        let source = std::fs::read_to_string(&path).unwrap();
        let code_lines = non_test_lines(&source);
        if code_lines > MAX_LINES {
            long.push(format!("{}: {code_lines} lines", path.display()));
        }
    }
    assert!(long.is_empty(), "split by what the parts own:\n{long:#?}");
}

/// Lines before the file's test module (`#[cfg(test)]`, then attributes, then `mod`).
fn non_test_lines(source: &str) -> usize {
    let lines: Vec<&str> = source.lines().collect();
    (0..lines.len())
        .find(|&i| {
            lines[i].trim() == "#[cfg(test)]"
                && lines[i + 1..]
                    .iter()
                    .find(|line| !line.trim_start().starts_with("#["))
                    .is_some_and(|line| line.starts_with("mod "))
        })
        .unwrap_or(lines.len())
}

#[test]
fn references_are_read_from_paths_and_groups() {
    let source = "use crate::archive::{A, B};\n// crate::commented\nuse crate::{store::X, kafka::{self, Y}, Error};\nfn f() { crate::read::g() }";
    assert_eq!(
        crate_references(source),
        ["archive", "store", "kafka", "error", "read"]
    );
    assert_eq!(
        module_of(Path::new("backup/shard_tests.rs")).as_deref(),
        Some("backup")
    );
    assert_eq!(
        module_of(Path::new("shard_tests.rs")).as_deref(),
        Some("shard")
    );
    assert_eq!(module_of(Path::new("commands/ls.rs")), None);
    let with_tests = "fn a() {}\n#[cfg(test)]\nfn helper() {}\n#[cfg(test)]\n#[path = \"x_tests.rs\"]\nmod tests;\n";
    assert_eq!(non_test_lines(with_tests), 3);
}
