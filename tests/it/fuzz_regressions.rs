//! Replays every input kept under `tests/fuzz-regressions/<target>/` (hand-made hostile
//! inputs, and anything the fuzzers in `fuzz/` found) through the same harness functions the
//! fuzz targets call, on stable and without a fuzzer: no input may panic, `ok-*` inputs must
//! be accepted and `bad-*` inputs refused or reported as damaged.

#[path = "../../fuzz/src/lib.rs"]
#[allow(dead_code)]
mod harness;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use harness::Verdict;

fn replay(target: &str, run: fn(&[u8]) -> Verdict) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz-regressions")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|err| panic!("{}: {err}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no inputs in {}", dir.display());
    let mut failures = Vec::new();
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let bytes = std::fs::read(path).unwrap();
        let verdict = match catch_unwind(AssertUnwindSafe(|| run(&bytes))) {
            Ok(verdict) => verdict,
            Err(_) => {
                failures.push(format!("{name}: panicked"));
                continue;
            }
        };
        match (&verdict, name.split('-').next()) {
            (Verdict::Rejected(why), Some("ok")) => {
                failures.push(format!("{name}: refused ({why}), expected accepted"))
            }
            (Verdict::Accepted, Some("bad")) => {
                failures.push(format!("{name}: accepted, expected refused"))
            }
            _ => {}
        }
    }
    assert!(
        failures.is_empty(),
        "{target}: {} of {} inputs failed:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

#[test]
fn archive_segment_inputs() {
    replay("archive_segment", harness::archive_segment);
}

#[test]
fn manifest_inputs() {
    replay("manifest", harness::manifest);
}

#[test]
fn manifest_seal_inputs() {
    replay("manifest_seal", harness::manifest_seal);
}

#[test]
fn kafka_log_inputs() {
    replay("kafka_log", harness::kafka_log);
}

#[test]
fn tar_rewrite_inputs() {
    replay("tar_rewrite", harness::tar_rewrite);
}

/// Writes the archive-segment seeds of `fuzz/corpus/archive_segment/` from segments the
/// backup code builds (run by hand: `cargo test --release --test it write_fuzz_seeds -- --ignored`).
#[test]
#[ignore = "writes fuzz seeds; run by hand"]
fn write_fuzz_seeds() {
    use kafkasnap::archive::{Compression, HeaderRef, SegmentBuilder, TimestampType};
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/archive_segment");
    std::fs::create_dir_all(&dir).unwrap();
    let mut builder = SegmentBuilder::new(0);
    for i in 0..20i64 {
        let key = format!("key-{}", i % 3);
        let value = vec![b'v'; (i * 7) as usize];
        let headers = [HeaderRef {
            name: b"trace",
            value: (i % 2 == 0).then_some(&b"on"[..]),
        }];
        builder.push(
            100 + i * 2,
            1_700_000_000_000 + i,
            if i % 5 == 0 {
                TimestampType::LogAppendTime
            } else {
                TimestampType::CreateTime
            },
            (i % 4 != 0).then_some(key.as_bytes()),
            (i % 6 != 0).then_some(&value[..]),
            headers.iter().copied().take((i % 3) as usize),
        );
    }
    let sealed = builder.seal().unwrap();
    let raw = sealed.raw.clone();
    for (mode, codec) in [
        (0u8, Compression::None),
        (2, Compression::Zstd),
        (3, Compression::Gzip),
    ] {
        let stored = codec.compress(codec.default_level(), &raw).unwrap();
        let mut input = vec![mode];
        input.extend_from_slice(&100i64.to_le_bytes());
        input.extend_from_slice(&138i64.to_le_bytes());
        input.extend_from_slice(&20u32.to_le_bytes());
        input.extend_from_slice(&(raw.len() as u64).to_le_bytes());
        input.extend_from_slice(&stored);
        assert_eq!(
            harness::archive_segment(&input),
            Verdict::Accepted,
            "{codec}"
        );
        std::fs::write(dir.join(format!("backup-segment-{codec}")), input).unwrap();
    }
}
