//! Tests of record-batch decoding and the log reader: framing, CRCs, codecs, bounds.

use super::build::*;
use super::*;

fn entries(bytes: &[u8]) -> Vec<LogEntry> {
    LogReader::new(bytes).map(Result::unwrap).collect()
}

fn only_batch(bytes: &[u8]) -> RecordBatch {
    match <[LogEntry; 1]>::try_from(entries(bytes)) {
        Ok([LogEntry::Batch(batch)]) => batch,
        other => panic!("expected one batch, got {other:?}"),
    }
}

#[test]
fn a_valid_batch_decodes_with_offsets_and_timestamps() {
    let log = simple(100, 3);
    let batch = only_batch(&log);
    assert!(batch.crc_ok());
    assert_eq!(batch.header.last_offset(), 102);
    let records = batch.records().unwrap();
    let offsets: Vec<i64> = records.iter().map(|r| r.offset).collect();
    assert_eq!(offsets, vec![100, 101, 102]);
    assert_eq!(records[2].timestamp, 1_002);
    assert_eq!(records[1].value.as_deref(), Some(&[1u8][..]));
}

#[test]
fn records_stream_to_the_visitor_before_a_later_one_fails() {
    // Three declared records: two good, then a negative length (padded to the size of
    // the smallest record, so the count fits the body).
    let records = vec![
        record(0, 0, Some(b"a"), Some(b"1")),
        record(1, 1, Some(b"b"), Some(b"2")),
        vec![0x7f, 0, 0, 0, 0, 0, 0],
    ];
    let log = batch(10, 0, 1_000, &records, 2);
    let batch = only_batch(&log);
    let mut seen = Vec::new();
    let result = batch.for_each_record(|r| seen.push(r.offset));
    assert!(result.is_err(), "{result:?}");
    assert_eq!(seen, vec![10, 11], "records are handed over as they decode");
    assert_eq!(
        only_batch(&simple(0, 4)).for_each_record(|_| {}).unwrap(),
        4
    );
}

#[test]
fn null_key_and_value_stay_null_and_empty_stays_empty() {
    let recs = vec![record(0, 0, None, Some(b"")), record(1, 0, Some(b""), None)];
    let log = batch(0, 0, 5, &recs, 1);
    let batch = only_batch(&log);
    let records = batch.records().unwrap();
    assert_eq!(records[0].key, None);
    assert_eq!(records[0].value, Some(vec![]));
    assert_eq!(records[1].key, Some(vec![]));
    assert_eq!(records[1].value, None);
}

#[test]
fn a_flipped_byte_fails_the_crc() {
    let mut log = simple(0, 2);
    let last = log.len() - 1;
    log[last] ^= 0x01;
    let batch = only_batch(&log);
    assert!(!batch.crc_ok());
}

#[test]
fn a_cut_batch_is_truncated_with_its_position() {
    let mut log = simple(0, 1);
    let second = simple(1, 2);
    log.extend_from_slice(&second[..second.len() - 5]);
    let found = entries(&log);
    assert_eq!(found.len(), 2);
    match &found[1] {
        LogEntry::Truncated {
            position,
            claimed,
            available,
        } => {
            assert_eq!(*position, simple(0, 1).len() as u64);
            assert_eq!(*claimed, second.len() as u64);
            assert_eq!(*available, second.len() as u64 - 5);
        }
        other => panic!("expected truncation, got {other:?}"),
    }
    // Cut inside the 17-byte prefix too.
    let found = entries(&second[..10]);
    assert!(matches!(
        found[0],
        LogEntry::Truncated {
            position: 0,
            available: 10,
            ..
        }
    ));
}

#[test]
fn a_huge_claimed_length_is_truncation_not_an_allocation() {
    let mut log = simple(0, 1);
    log[8..12].copy_from_slice(&i32::MAX.to_be_bytes());
    let found = entries(&log);
    assert!(
        matches!(found[0], LogEntry::Truncated { claimed, .. } if claimed == 12 + i32::MAX as u64)
    );
}

#[test]
fn record_count_must_match_the_records() {
    // Ten records of nine bytes: an eleventh would still fit the body's size, so the
    // count is only found wrong when the data ends.
    let mut log = simple(0, 10);
    log[57..61].copy_from_slice(&11i32.to_be_bytes());
    let crc = crc32c::crc32c(&log[CRC_START..]);
    log[17..21].copy_from_slice(&crc.to_be_bytes());
    let batch = only_batch(&log);
    assert!(batch.crc_ok());
    assert!(matches!(batch.records(), Err(WireError::Eof { .. })));
    log[57..61].copy_from_slice(&1i32.to_be_bytes());
    let batch = RecordBatch::from_bytes(0, log).unwrap();
    assert!(batch
        .records()
        .unwrap_err()
        .to_string()
        .contains("bytes remain"));
}

/// `log` with its record count set to `count` and its CRC recomputed.
fn with_record_count(mut log: Vec<u8>, count: i32) -> RecordBatch {
    log[57..61].copy_from_slice(&count.to_be_bytes());
    let crc = crc32c::crc32c(&log[CRC_START..]);
    log[17..21].copy_from_slice(&crc.to_be_bytes());
    RecordBatch::from_bytes(0, log).unwrap()
}

#[test]
fn a_record_count_the_body_cannot_hold_is_refused_before_decoding() {
    // 2^31 - 1 records claimed in a body of 100 bytes (enough for 14 at most).
    let records: Vec<Vec<u8>> = (0..10)
        .map(|i| record(i, 0, None, Some(&[i as u8])))
        .collect();
    let log = batch(0, 0, 0, &records, 9);
    assert_eq!(log.len() - HEADER_LEN, 80);
    let batch = with_record_count(log, i32::MAX);
    let mut visited = 0;
    let err = batch.for_each_record(|_| visited += 1).unwrap_err();
    assert!(
        matches!(&err, WireError::Invalid { at: 57, what: "record count", detail }
            if detail.contains("2147483647 records cannot fit in the 80 bytes")),
        "{err}"
    );
    assert_eq!(
        visited, 0,
        "nothing is decoded from a batch that cannot be whole"
    );
    // The most records 80 bytes could hold is still decoded (and found short).
    let batch = with_record_count(batch.bytes.clone(), 11);
    assert!(matches!(batch.records(), Err(WireError::Eof { .. })));
}

#[test]
fn a_header_count_the_record_cannot_hold_is_refused() {
    // A record of 8 bytes whose header count claims 2^30 headers.
    let mut body = vec![0u8, 0, 0, 1, 1];
    varint(&mut body, 1 << 30);
    let mut rec = Vec::new();
    varint(&mut rec, body.len() as i64);
    rec.extend_from_slice(&body);
    let log = batch(0, 0, 0, &[rec], 0);
    let err = RecordBatch::from_bytes(0, log)
        .unwrap()
        .records()
        .unwrap_err();
    assert!(
        matches!(&err, WireError::Invalid { what: "record header count", detail, .. }
            if detail.contains("1073741824 entries of at least 2 bytes each cannot fit in the 0 bytes left")),
        "{err}"
    );
}

#[test]
fn a_key_or_value_longer_than_its_record_is_refused_even_when_compressed() {
    // A record whose length says 10 bytes and whose value claims 2^30 bytes, gzip-compressed
    // with 2 MiB of zeros behind it: the value is refused, not read.
    let mut body = vec![0u8, 0, 0, 1];
    varint(&mut body, 1 << 30);
    body.push(0);
    let mut rec = Vec::new();
    varint(&mut rec, body.len() as i64);
    rec.extend_from_slice(&body);
    rec.extend_from_slice(&vec![0u8; 2 << 20]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &rec).unwrap();
    let compressed = gz.finish().unwrap();
    let log = batch(0, 1, 0, &[compressed], 0);
    let err = RecordBatch::from_bytes(0, log)
        .unwrap()
        .records()
        .unwrap_err();
    assert!(
        matches!(&err, WireError::Invalid { what: "record value", detail, .. }
            if detail.contains("1073741824 bytes claimed, only 1 left")),
        "{err}"
    );
}

#[test]
fn a_record_length_past_the_body_is_refused() {
    let mut rec = Vec::new();
    varint(&mut rec, 1 << 20);
    rec.extend_from_slice(&[0u8; 6]);
    let log = batch(0, 0, 0, &[rec], 0);
    let err = RecordBatch::from_bytes(0, log)
        .unwrap()
        .records()
        .unwrap_err();
    assert!(
        matches!(&err, WireError::Invalid { what: "record length", detail, .. }
            if detail.contains("1048576 bytes declared, only 6 left")),
        "{err}"
    );
}

#[test]
fn legacy_messages_are_framed_and_skipped() {
    // magic 1 message: offset, size, crc, magic, attributes, timestamp, key -1, value "x".
    let mut msg = Vec::new();
    msg.extend_from_slice(&7i64.to_be_bytes());
    let body: Vec<u8> = [
        &[0u8; 4][..],
        &[1, 0],
        &0i64.to_be_bytes(),
        &(-1i32).to_be_bytes(),
        &1i32.to_be_bytes(),
        b"x",
    ]
    .concat();
    msg.extend_from_slice(&(body.len() as i32).to_be_bytes());
    msg.extend_from_slice(&body);
    msg.extend_from_slice(&simple(8, 1));
    let found = entries(&msg);
    assert!(matches!(
        found[0],
        LogEntry::Legacy {
            position: 0,
            offset: 7,
            magic: 1,
            ..
        }
    ));
    assert!(matches!(&found[1], LogEntry::Batch(b) if b.position == 12 + body.len() as u64));
}

#[test]
fn zero_tail_and_unknown_magic() {
    let mut log = simple(0, 1);
    let at = log.len() as u64;
    log.extend_from_slice(&[0u8; 100]);
    let found = entries(&log);
    assert!(matches!(found[1], LogEntry::ZeroTail { position, len: 100 } if position == at));

    let mut log = simple(0, 1);
    log[16] = 7;
    assert!(
        matches!(&entries(&log)[0], LogEntry::Corrupt { position: 0, detail } if detail.contains("magic"))
    );
}

#[test]
fn control_records_name_transaction_markers() {
    let mut key = Vec::new();
    key.extend_from_slice(&0i16.to_be_bytes());
    key.extend_from_slice(&1i16.to_be_bytes());
    let value = [0u8, 0, 0, 0, 0, 5];
    let log = batch(9, 0x30, 0, &[record(0, 0, Some(&key), Some(&value))], 0);
    let batch = only_batch(&log);
    assert!(batch.header.is_control() && batch.header.is_transactional());
    let records = batch.records().unwrap();
    assert_eq!(
        ControlRecord::parse(&records[0]).unwrap(),
        ControlRecord::Commit
    );
}

#[test]
fn log_append_time_uses_the_batch_max_timestamp() {
    let log = batch(0, 0x08, 50, &[record(0, 3, None, None)], 0);
    let batch = RecordBatch::from_bytes(0, log).unwrap();
    assert_eq!(batch.records().unwrap()[0].timestamp, 50);
}
