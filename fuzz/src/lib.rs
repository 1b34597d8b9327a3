//! The fuzz harnesses: how raw fuzzer bytes are turned into calls of kafkasnap's public
//! parsers, and the invariants checked on what comes back (a failed invariant panics, which
//! the fuzzer reports as a crash).
//!
//! Shared with `tests/it/fuzz_regressions.rs` (included there by `#[path]`), which replays
//! every file under `tests/fuzz-regressions/<target>/` through the same functions, so a
//! crash found by the fuzzer stays a plain `cargo test`. Keep it to crates kafkasnap itself
//! depends on (sha2, hex, tar, crc32c, serde_json) so that include compiles.

use kafkasnap::archive::{
    check_manifest_seal, decode_segment, seal_manifest, ArchiveError, BackupId, Compression,
    DatadirManifest, EncryptionKey, Manifest, SegmentBuilder, SegmentRef,
};
use kafkasnap::datadir::{inspect_tar_stream, ControlRecord, LogEntry, LogReader, RecordBatch};
use kafkasnap::physical::ClusterIdRewriter;
use sha2::{Digest, Sha256};
use std::io::Read;

/// What a parser made of an input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Parsed, and nothing in it was damaged.
    Accepted,
    /// Refused or reported as damaged, with the first reason.
    Rejected(String),
}

impl Verdict {
    fn from_result<T, E: std::fmt::Display>(result: &Result<T, E>) -> Verdict {
        match result {
            Ok(_) => Verdict::Accepted,
            Err(err) => Verdict::Rejected(err.to_string()),
        }
    }
}

/// Bytes of the archive-segment input header (see [`archive_segment`]).
pub const SEGMENT_HEADER_LEN: usize = 29;
/// Largest `raw_bytes` the harness lets an input claim for a compressed object: the decoder
/// may legitimately fill that much (the manifest promised it), so a bigger claim would only
/// measure the fuzzer's memory limit.
const MAX_CLAIM: u64 = 64 << 20;

/// The archive segment decoder (`decode_segment`: size and sha256 check, decompression,
/// KSNAPSG1 magic, record frames, offsets against the manifest entry).
///
/// Input: `mode u8 | first_offset i64 | last_offset i64 | records u32 | raw_bytes u64 |
/// payload` (integers little-endian). The manifest entry always matches the object's size
/// and checksum, so every input reaches decompression. Modes (`mode % 5`):
/// 0 `none`, raw_bytes = payload length (explores record framing);
/// 1 `none`, raw_bytes as claimed; 2 `zstd` and 3 `gzip`, payload stored as is, raw_bytes as
/// claimed (capped at 64 MiB); 4 payload compressed with zstd by the harness, exact size.
///
/// Invariant: a segment that decodes re-encodes to the same records.
pub fn archive_segment(data: &[u8]) -> Verdict {
    if data.len() < SEGMENT_HEADER_LEN {
        return Verdict::Rejected("input shorter than the harness header".into());
    }
    let le64 = |at: usize| u64::from_le_bytes(data[at..at + 8].try_into().expect("8 bytes"));
    let mode = data[0] % 5;
    let first_offset = le64(1) as i64;
    let last_offset = le64(9) as i64;
    let records = u64::from(u32::from_le_bytes(
        data[17..21].try_into().expect("4 bytes"),
    ));
    let claim = le64(21);
    let payload = &data[SEGMENT_HEADER_LEN..];
    let (compression, stored, raw_bytes) = match mode {
        0 => (Compression::None, payload.to_vec(), payload.len() as u64),
        1 => (Compression::None, payload.to_vec(), claim),
        2 => (Compression::Zstd, payload.to_vec(), claim.min(MAX_CLAIM)),
        3 => (Compression::Gzip, payload.to_vec(), claim.min(MAX_CLAIM)),
        _ => (
            Compression::Zstd,
            Compression::Zstd
                .compress(1, payload)
                .expect("zstd compresses any bytes"),
            payload.len() as u64,
        ),
    };
    let entry = SegmentRef {
        key: "fuzz".into(),
        compression,
        first_offset,
        last_offset,
        records,
        raw_bytes,
        stored_bytes: stored.len() as u64,
        sha256: hex::encode(Sha256::digest(&stored)),
        first_timestamp: None,
        last_timestamp: None,
        min_timestamp: None,
        max_timestamp: None,
        last_record_sha256: None,
    };
    let decoded = decode_segment(&stored, &entry, None);
    if let Ok(segment) = &decoded {
        let mut builder = SegmentBuilder::new(0);
        let mut originals = Vec::new();
        for record in segment.iter() {
            let record = record.expect("decode_segment already read every record");
            builder.push_record(&record);
            originals.push(record);
        }
        let again = builder
            .seal()
            .expect("a decoded segment holds records")
            .compress(Compression::None, 0)
            .expect("none always compresses");
        let again_entry = again.to_ref("again".into());
        let redecoded =
            decode_segment(&again.bytes, &again_entry, None).expect("re-encoded decodes");
        let round: Vec<_> = redecoded.iter().map(|r| r.expect("decoded")).collect();
        assert_eq!(round, originals, "records change through a re-encode");
        if mode == 0 {
            assert_eq!(
                again.bytes, payload,
                "a decoded frame re-encodes differently"
            );
        }
    }
    Verdict::from_result(&decoded)
}

/// The manifest parsers (`Manifest::from_json`, `DatadirManifest::from_json`, which share
/// `parse_versioned`). Input: the JSON bytes.
///
/// Invariants: whatever parses serializes and parses back to itself, and carries backup ids
/// that `BackupId::parse` accepts (ids become object-key segments).
pub fn manifest(data: &[u8]) -> Verdict {
    let logical = Manifest::from_json(data);
    if let Ok(manifest) = &logical {
        let again = Manifest::from_json(&manifest.to_json()).expect("own JSON parses");
        assert_eq!(&again, manifest, "manifest changes through its JSON");
        for id in std::iter::once(&manifest.backup_id).chain(manifest.parent.as_ref()) {
            assert!(
                kafkasnap::archive::BackupId::parse(id.as_str()).is_some(),
                "manifest accepted with a malformed backup id {id:?}"
            );
        }
        let _ = manifest.segments().count();
    }
    let datadir = DatadirManifest::from_json(data);
    if let Ok(manifest) = &datadir {
        let again = DatadirManifest::from_json(&manifest.to_json()).expect("own JSON parses");
        assert_eq!(
            &again, manifest,
            "data-dir manifest changes through its JSON"
        );
        assert!(
            kafkasnap::archive::BackupId::parse(manifest.backup_id.as_str()).is_some(),
            "data-dir manifest accepted with a malformed backup id {:?}",
            manifest.backup_id
        );
    }
    match (&logical, &datadir) {
        (Ok(_), _) | (_, Ok(_)) => Verdict::Accepted,
        (Err(err), _) => Verdict::Rejected(err.to_string()),
    }
}

/// Kafka's on-disk log: `LogReader` framing, RecordBatch v2 CRC and record decoding with
/// every codec, control records; then the whole inspector (`inspect_tar_stream`) over a tar
/// that holds the input as a topic segment, as the KRaft metadata log and a metadata
/// snapshot, as a `__consumer_offsets` segment, as index files beside a segment based at
/// `i64::MAX`, and as `meta.properties` and a checkpoint file. Input: a log's bytes.
///
/// Copies given to the metadata and offsets decoders have their batch CRCs recomputed, so
/// mutations reach the record parsers instead of stopping at the CRC.
///
/// The verdict is the direct read's: `Accepted` when every entry is a batch whose CRC holds
/// and whose records decode (a zero-filled tail is fine).
/// Invariant: an in-memory tar of any bytes yields a report, never an error.
pub fn kafka_log(data: &[u8]) -> Verdict {
    let verdict = read_log(data);
    let fixed = fix_crcs(data);
    if fixed != data {
        read_log(&fixed);
    }
    let index = &data[..data.len().min(4096)];
    let files: [(&str, &[u8]); 10] = [
        ("meta.properties", data),
        ("recovery-point-offset-checkpoint", data),
        ("t-0/00000000000000000000.log", data),
        ("__cluster_metadata-0/00000000000000000000.log", &fixed),
        (
            "__cluster_metadata-0/00000000000000000100-0000000001.checkpoint",
            &fixed,
        ),
        ("__consumer_offsets-0/00000000000000000000.log", &fixed),
        ("u-1/09223372036854775807.index", index),
        ("u-1/09223372036854775807.timeindex", index),
        ("u-1/09223372036854775807.log", &fixed),
        ("u-1/partition.metadata", data),
    ];
    let mut tar = tar::Builder::new(Vec::new());
    for (path, bytes) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut header, path, bytes)
            .expect("appending to a Vec");
    }
    let tar = tar.into_inner().expect("finishing a Vec");
    let report = inspect_tar_stream(&tar[..]).expect("an in-memory tar always yields a report");
    let _ = serde_json::to_vec(&report).expect("a report serializes");
    verdict
}

fn read_log(data: &[u8]) -> Verdict {
    let mut verdict = Verdict::Accepted;
    let mut reject = |why: String| {
        if verdict == Verdict::Accepted {
            verdict = Verdict::Rejected(why);
        }
    };
    for entry in LogReader::new(data) {
        match entry.expect("reading a slice cannot fail") {
            LogEntry::Batch(batch) => {
                if !batch.crc_ok() {
                    reject(format!("CRC mismatch at {}", batch.position));
                }
                check_batch(&batch).unwrap_or_else(&mut reject);
            }
            LogEntry::ZeroTail { .. } => {}
            other => reject(format!("{other:?}")),
        }
    }
    verdict
}

fn check_batch(batch: &RecordBatch) -> Result<(), String> {
    let _ = batch.header.codec();
    let _ = batch.header.last_offset();
    let records = batch.records().map_err(|err| err.to_string())?;
    if batch.header.is_control() {
        for record in &records {
            let _ = ControlRecord::parse(record);
        }
    }
    Ok(())
}

/// A copy of `data` with the CRC of every complete magic-2 batch recomputed.
fn fix_crcs(data: &[u8]) -> Vec<u8> {
    let mut out = data.to_vec();
    let mut pos = 0usize;
    while pos + 17 <= out.len() {
        let length = i32::from_be_bytes(out[pos + 8..pos + 12].try_into().expect("4 bytes"));
        let Ok(length) = usize::try_from(length) else {
            break;
        };
        let end = pos + 12 + length;
        if length < 14 || end > out.len() {
            break;
        }
        if out[pos + 16] == 2 && length >= 49 {
            let crc = crc32c::crc32c(&out[pos + 21..end]);
            out[pos + 17..pos + 21].copy_from_slice(&crc.to_be_bytes());
        }
        pos = end;
    }
    out
}

/// Key and backup id the manifest-seal harness checks seals under (the seeds are made with them).
const SEAL_KEY_HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const SEAL_BACKUP_ID: &str = "20261125T145443Z-3f9a1c";

/// The manifest seal check (`check_manifest_seal`: seal JSON, algorithm names, salt and tag
/// lengths, HKDF and HMAC over the id and the exact manifest bytes).
///
/// Input: `seal_len u16 (little-endian) | seal bytes | manifest bytes`, checked under a fixed
/// key and backup id. The verdict is that check's.
/// Invariants: a seal made now for the input's manifest bytes checks, and stops checking when
/// one byte of the manifest changes.
pub fn manifest_seal(data: &[u8]) -> Verdict {
    if data.len() < 2 {
        return Verdict::Rejected("input shorter than the harness header".into());
    }
    let seal_len = usize::from(u16::from_le_bytes([data[0], data[1]])).min(data.len() - 2);
    let (seal, manifest) = data[2..].split_at(seal_len);
    let key = EncryptionKey::parse(SEAL_KEY_HEX.as_bytes()).expect("the harness key parses");
    let id = BackupId::parse(SEAL_BACKUP_ID).expect("the harness id parses");
    let verdict = Verdict::from_result(&check_manifest_seal(&key, &id, manifest, seal));
    let fresh = seal_manifest(&key, &id, manifest).expect("sealing needs only randomness");
    check_manifest_seal(&key, &id, manifest, &fresh).expect("a fresh seal checks");
    let mut altered = manifest.to_vec();
    match altered.first_mut() {
        Some(byte) => *byte ^= 1,
        None => altered.push(b' '),
    }
    assert!(
        matches!(
            check_manifest_seal(&key, &id, &altered, &fresh),
            Err(ArchiveError::SealMismatch)
        ),
        "a seal still checks after the manifest changed"
    );
    verdict
}

/// The `cluster.id` the tar-rewrite harness writes (as `datadir restore --rewrite-cluster-id`).
const NEW_CLUSTER_ID: &str = "FuzzNewClusterId0123456";
/// Most bytes one built entry takes from the input (keeps `meta.properties` under the
/// rewriter's 64 KiB even after lossy UTF-8 conversion triples it).
const MAX_BUILT_ENTRY: usize = 16 * 1024;
/// Paths the built tars use: `meta.properties` at the root, below a prefix and under a name
/// long enough for a GNU long-name header; look-alikes; a segment; a checkpoint.
const BUILT_PATHS: [&str; 8] = [
    "./meta.properties",
    "meta.properties",
    "./var/lib/kafka/data/meta.properties",
    "./meta.properties.bak",
    "./orders-0/00000000000000000000.log",
    "./recovery-point-offset-checkpoint",
    "./ttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttt-0/meta.properties",
    "./ttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttt-0/00000000000000000000.index",
];

/// The `--rewrite-cluster-id` tar rewriter (`ClusterIdRewriter`: tar framing with GNU
/// long names, PAX headers and sparse maps, the 1 MiB extension limit, `meta.properties`
/// entries rebuilt with a new size and checksum).
///
/// Input: `mode u8 | rest`. Mode 0 (even): `rest` is the tar stream. Mode 1 (odd): a tar is
/// built from `rest` with the `tar` crate, entry by entry (`path u8 | format u8 | len u16
/// (little-endian) | bytes`; a path from a fixed set, GNU or ustar headers, a
/// `meta.properties` made valid UTF-8), and rewritten.
///
/// Invariants: the rewriter never panics; its output is at most the input plus, per
/// `cluster.id` in the input, the new id's length, plus a block for every two of the input's;
/// when the input reads as a tar with the `tar` crate (always, in mode 1, where the rewriter
/// must also accept it), the output reads as one with the same entries in the same order,
/// every entry but a `meta.properties` has the same header and data, and in every
/// `meta.properties` each `cluster.id` line holds the new id and every other line is unchanged.
pub fn tar_rewrite(data: &[u8]) -> Verdict {
    let Some((&mode, rest)) = data.split_first() else {
        return Verdict::Rejected("empty input".into());
    };
    let built;
    let tar = match mode % 2 {
        0 => rest,
        _ => {
            built = build_tar(rest);
            &built[..]
        }
    };
    let mut out = Vec::new();
    let rewritten = Read::read_to_end(&mut ClusterIdRewriter::new(tar, NEW_CLUSTER_ID), &mut out);
    let ids = tar
        .windows(b"cluster.id".len())
        .filter(|w| w == b"cluster.id")
        .count();
    let bound = tar.len() + ids * NEW_CLUSTER_ID.len() + 512 * (tar.len() / 1024 + 1);
    assert!(
        out.len() <= bound,
        "{} bytes out of {} in (bound {bound})",
        out.len(),
        tar.len()
    );
    if mode % 2 == 1 {
        if let Err(err) = &rewritten {
            panic!("a well-formed tar is refused: {err}");
        }
    }
    if rewritten.is_ok() {
        if let Some(before) = tar_entries(tar) {
            let after = tar_entries(&out).expect("the rewritten tar reads as a tar");
            check_rewrite(&before, &after);
        }
    }
    Verdict::from_result(&rewritten)
}

/// A tar built from fuzz bytes (see [`tar_rewrite`]).
fn build_tar(mut rest: &[u8]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    while rest.len() >= 4 {
        let path = BUILT_PATHS[usize::from(rest[0]) % BUILT_PATHS.len()];
        let gnu = rest[1] % 2 == 0;
        let len = usize::from(u16::from_le_bytes([rest[2], rest[3]])).min(MAX_BUILT_ENTRY);
        let take = len.min(rest.len() - 4);
        let raw = &rest[4..4 + take];
        rest = &rest[4 + take..];
        let bytes = if path.ends_with("meta.properties") {
            String::from_utf8_lossy(raw).into_owned().into_bytes()
        } else {
            raw.to_vec()
        };
        let mut header = if gnu {
            tar::Header::new_gnu()
        } else {
            tar::Header::new_ustar()
        };
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        builder
            .append_data(&mut header, path, &bytes[..])
            .expect("appending to a Vec");
    }
    builder.into_inner().expect("finishing a Vec")
}

/// One tar entry as the `tar` crate reads it.
#[derive(Debug)]
struct TarEntry {
    path: Vec<u8>,
    header: Vec<u8>,
    regular: bool,
    data: Vec<u8>,
}

/// Every entry of `tar`, or `None` when the `tar` crate cannot read it to its end.
fn tar_entries(tar: &[u8]) -> Option<Vec<TarEntry>> {
    let mut archive = tar::Archive::new(tar);
    let mut found = Vec::new();
    for entry in archive.entries().ok()? {
        let mut entry = entry.ok()?;
        let mut data = Vec::new();
        Read::read_to_end(&mut entry, &mut data).ok()?;
        found.push(TarEntry {
            path: entry.path_bytes().into_owned(),
            header: entry.header().as_bytes().to_vec(),
            regular: entry.header().entry_type().is_file(),
            data,
        });
    }
    Some(found)
}

fn is_meta_properties(entry: &TarEntry) -> bool {
    let path = entry.path.strip_suffix(b"/").unwrap_or(&entry.path);
    entry.regular && path.rsplit(|&b| b == b'/').next() == Some(&b"meta.properties"[..])
}

fn check_rewrite(before: &[TarEntry], after: &[TarEntry]) {
    assert_eq!(before.len(), after.len(), "the number of entries changed");
    for (old, new) in before.iter().zip(after) {
        assert_eq!(old.path, new.path, "an entry's path changed");
        if !is_meta_properties(old) {
            assert_eq!(old.header, new.header, "a header changed: {:?}", old.path);
            assert_eq!(old.data, new.data, "data changed: {:?}", old.path);
            continue;
        }
        let (old_text, new_text) = (
            std::str::from_utf8(&old.data).expect("the rewriter takes only UTF-8"),
            std::str::from_utf8(&new.data).expect("the rewriter writes UTF-8"),
        );
        let old_lines: Vec<&str> = old_text.split_inclusive('\n').collect();
        let new_lines: Vec<&str> = new_text.split_inclusive('\n').collect();
        assert_eq!(old_lines.len(), new_lines.len(), "meta.properties lines");
        for (old_line, new_line) in old_lines.iter().zip(&new_lines) {
            let body = old_line.trim_end_matches(['\n', '\r']);
            let key = body.split_once(['=', ':']).map(|(key, _)| key.trim());
            if key == Some("cluster.id") {
                let ending = &old_line[body.len()..];
                assert_eq!(
                    *new_line,
                    format!("cluster.id={NEW_CLUSTER_ID}{ending}"),
                    "a cluster.id line"
                );
            } else {
                assert_eq!(
                    old_line, new_line,
                    "a meta.properties line other than cluster.id"
                );
            }
        }
    }
}
