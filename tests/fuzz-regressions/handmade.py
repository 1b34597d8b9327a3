#!/usr/bin/env python3
"""Writes the hand-made hostile inputs of tests/fuzz-regressions/ (re-run after changing it).

Each file is one input for a fuzz harness (fuzz/src/lib.rs) in that harness's layout. The
name says what the replay test (tests/it/fuzz_regressions.rs) expects: `ok-` must be
accepted, `bad-` must be refused or reported as damaged; any other name (inputs the fuzzer
found) must only not panic.
"""
import json
import os
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))


def write(target, name, data):
    os.makedirs(os.path.join(HERE, target), exist_ok=True)
    with open(os.path.join(HERE, target, name), "wb") as f:
        f.write(data)


# ---- archive_segment: mode u8 | first i64 | last i64 | records u32 | raw_bytes u64 | payload
def seg_header(mode, first, last, records, claim=0):
    return struct.pack("<BqqIQ", mode, first, last, records, claim)


def frame(offset, ts, ts_type, key, value, headers=(), count=None):
    def b(x):
        return struct.pack("<i", -1) if x is None else struct.pack("<i", len(x)) + x

    body = struct.pack("<qqB", offset, ts, ts_type) + b(key) + b(value)
    body += struct.pack("<I", len(headers) if count is None else count)
    for name, val in headers:
        body += b(name) + b(val)
    return struct.pack("<I", len(body)) + body


MAGIC = b"KSNAPSG1"
good = MAGIC + frame(5, 1000, 1, b"k", None, [(b"h", b"v")]) + frame(6, 1001, 1, None, b"")
write("archive_segment", "ok-two-records", seg_header(0, 5, 6, 2) + good)
write("archive_segment", "ok-two-records-zstd-by-harness", seg_header(4, 5, 6, 2) + good)
write("archive_segment", "bad-truncated-frame", seg_header(0, 5, 6, 2) + good[:-7])
write("archive_segment", "bad-magic", seg_header(0, 5, 6, 2) + b"KSNAPSG2" + good[8:])
write("archive_segment", "bad-frame-length-4GiB",
      seg_header(0, 0, 0, 1) + MAGIC + struct.pack("<I", 0xFFFFFFFF) + b"\0" * 40)
write("archive_segment", "bad-header-count-4G",
      seg_header(0, 0, 0, 1) + MAGIC + frame(0, 0, 1, None, None, count=0xFFFFFFFF))
write("archive_segment", "bad-key-length-2GiB",
      seg_header(0, 0, 0, 1) + MAGIC + frame(0, 0, 1, b"k", None)[:25]
      + struct.pack("<i", 0x7FFFFFFF) + b"k" + struct.pack("<iI", -1, 0))
write("archive_segment", "bad-negative-value-length",
      seg_header(0, 0, 0, 1) + MAGIC + frame(0, 0, 1, None, None)[:29]
      + struct.pack("<iI", -7, 0))
write("archive_segment", "bad-offsets-go-backwards",
      seg_header(0, 6, 5, 2) + MAGIC + frame(6, 0, 1, None, None) + frame(5, 0, 1, None, None))
write("archive_segment", "bad-record-count-disagrees", seg_header(0, 5, 6, 3) + good)
write("archive_segment", "bad-raw-bytes-claims-16EiB", seg_header(1, 5, 6, 2, 2**64 - 1) + good)
write("archive_segment", "bad-zstd-garbage-claims-8EiB",
      seg_header(2, 0, 0, 1, 2**63) + b"\x28\xb5\x2f\xfd" + b"\xff" * 64)
write("archive_segment", "bad-gzip-truncated",
      seg_header(3, 5, 6, 2, len(good)) + zlib.compress(good)[:20])

# ---- manifest: JSON bytes
segment = {
    "key": "backups/20261125T145443Z-3f9a1c/t/0/00000000000000000005.kseg.zst",
    "compression": "zstd", "first_offset": 5, "last_offset": 6, "records": 2,
    "raw_bytes": 100, "stored_bytes": 80, "sha256": "00" * 32,
    "first_timestamp": 1000, "last_timestamp": 1001, "min_timestamp": 1000,
    "max_timestamp": 1001,
}
logical = {
    "format_version": 1, "kind": "logical", "backup_id": "20261125T145443Z-3f9a1c",
    "parent": None, "started_at": "2026-11-25T14:54:43Z", "finished_at": "2026-11-25T14:54:50Z",
    "tool_version": "0.1.0",
    "source": {"bootstrap_servers": "127.0.0.1:9092", "cluster_id": "abc",
               "brokers": [{"id": 1, "host": "127.0.0.1", "port": 9092}]},
    "compression": "zstd", "compression_level": 3, "segment_bytes": 16777216,
    "topics": [{"name": "t", "internal": False, "partition_count": 1, "replication_factor": 1,
                "configs": [{"name": "cleanup.policy", "value": "delete", "source": "default",
                             "is_default": True, "is_sensitive": False, "is_read_only": False}],
                "partitions": [{"partition": 0, "start_offset": 5, "end_offset": 7,
                                "high_watermark": 7, "records": 2, "raw_bytes": 100,
                                "stored_bytes": 80, "first_timestamp": 1000,
                                "last_timestamp": 1001, "segments": [segment]}]}],
    "groups": [{"group": "g", "offsets": [{"topic": "t", "partition": 0, "offset": 7,
                                          "metadata": None}]}],
    "totals": {"topics": 1, "partitions": 1, "segments": 1, "records": 2, "raw_bytes": 100,
               "stored_bytes": 80},
    "warnings": [],
}
datadir = {
    "format_version": 1, "kind": "datadir", "backup_id": "20261125T145443Z-3f9a1c",
    "started_at": "2026-11-25T14:54:43Z", "finished_at": "2026-11-25T14:54:50Z",
    "tool_version": "0.1.0",
    "source": {"namespace": "messaging", "pod": "kafka-0", "container": "kafka",
               "path": "/var/lib/kafka/data"},
    "cluster_id": None, "node_id": 1,
    "archive": {"key": "datadir/20261125T145443Z-3f9a1c/data.tar.zst", "compression": "zstd",
                "stored_bytes": 10, "sha256": "00" * 32, "tar_bytes": 10240},
    "files": [{"path": "meta.properties", "bytes": 90}], "warnings": [],
}


def js(value):
    return json.dumps(value, indent=2).encode()


write("manifest", "ok-logical", js(logical))
write("manifest", "ok-datadir", js(datadir))
write("manifest", "bad-truncated", js(logical)[:300])
write("manifest", "bad-version-3", js(dict(logical, format_version=3)))
write("manifest", "ok-version-2", js(dict(logical, format_version=2)))
write("manifest", "bad-version-string", js(dict(logical, format_version="1")))
write("manifest", "bad-version-huge", js(logical).replace(b'"format_version": 1', b'"format_version": 1e400'))
write("manifest", "bad-no-version", js({k: v for k, v in logical.items() if k != "format_version"}))
write("manifest", "bad-backup-id-path-traversal", js(dict(logical, backup_id="../../etc")))
write("manifest", "bad-parent-id-path-traversal", js(dict(logical, parent="a/../../b")))
write("manifest", "bad-datadir-id-path-traversal", js(dict(datadir, backup_id="..")))
write("manifest", "bad-nesting-100k", b'{"format_version":1,"x":' + b"[" * 100000)
write("manifest", "bad-negative-raw-bytes",
      js(logical).replace(b'"raw_bytes": 100', b'"raw_bytes": -1', 1))
write("manifest", "bad-not-utf8", b'{"format_version":1,"kind":"\xff\xfe"}')


# ---- kafka_log: a log's bytes
def crc32c(data):
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def varint(value):
    raw = (value << 1) ^ (value >> 63)
    raw &= (1 << 64) - 1
    out = b""
    while True:
        byte = raw & 0x7F
        raw >>= 7
        if raw == 0:
            return out + bytes([byte])
        out += bytes([byte | 0x80])


def vbytes(x):
    return varint(-1) if x is None else varint(len(x)) + x


def record(offset_delta, key, value):
    body = b"\0" + varint(offset_delta) + varint(offset_delta) + vbytes(key) + vbytes(value) + varint(0)
    return varint(len(body)) + body


def batch(base, records, attributes=0, count=None, last_delta=None, body=None):
    n = len(records)
    body = b"".join(records) if body is None else body
    tail = struct.pack(">hiqqqhii", attributes, n - 1 if last_delta is None else last_delta,
                       1000, 1000 + n, -1, -1, -1, n if count is None else count) + body
    crc = crc32c(tail)
    out = struct.pack(">q", base) + struct.pack(">i", 4 + 1 + 4 + len(tail)) + struct.pack(">ib", 0, 2)
    return out + struct.pack(">I", crc) + tail


one = batch(0, [record(0, b"k", b"v"), record(1, None, b"")])
write("kafka_log", "ok-one-batch", one)
write("kafka_log", "ok-two-batches-zero-tail", one + batch(2, [record(0, b"x", None)]) + b"\0" * 40)
write("kafka_log", "bad-truncated-batch", one[:-3])
write("kafka_log", "bad-truncated-prefix", one[:14])
length_max = one[:8] + struct.pack(">i", 0x7FFFFFFF) + one[12:]
write("kafka_log", "bad-length-2GiB", length_max)
write("kafka_log", "bad-negative-length", one[:8] + struct.pack(">i", -5) + one[12:])
write("kafka_log", "bad-magic-7", one[:16] + b"\x07" + one[17:])
write("kafka_log", "bad-crc", one[:-1] + bytes([one[-1] ^ 1]))
write("kafka_log", "bad-record-count-2G", batch(0, [record(0, b"k", b"v")], count=0x7FFFFFFF))
write("kafka_log", "bad-record-count-negative", batch(0, [record(0, b"k", b"v")], count=-1))
write("kafka_log", "bad-key-length-1GiB",
      batch(0, [], count=1, body=varint(12) + b"\0\0\0" + varint(1 << 30) + b"abc"))
# Codec 2 (snappy), raw block whose preamble claims 2^31 bytes.
write("kafka_log", "bad-snappy-claims-2GiB",
      batch(0, [], attributes=2, count=1, body=bytes([0x80, 0x80, 0x80, 0x80, 0x08, 0, 1, 2])))
# Codec 2, xerial framing with a block that claims 4 GiB.
write("kafka_log", "bad-xerial-block-4GiB",
      batch(0, [], attributes=2, count=1,
            body=b"\x82SNAPPY\x00" + struct.pack(">ii", 1, 1) + b"\xff\xff\xff\xff" + b"abc"))
write("kafka_log", "bad-codec-7", batch(0, [record(0, b"k", b"v")], attributes=7))
write("kafka_log", "bad-gzip-garbage", batch(0, [], attributes=1, count=1, body=b"\x1f\x8b" + b"\x00" * 30))
write("kafka_log", "bad-zstd-garbage", batch(0, [], attributes=4, count=1, body=b"\x28\xb5\x2f\xfd" + b"\xff" * 30))
write("kafka_log", "bad-lz4-garbage", batch(0, [], attributes=3, count=1, body=b"\x04\x22\x4d\x18" + b"\xff" * 30))
write("kafka_log", "bad-legacy-then-garbage",
      struct.pack(">qi", 7, 14) + b"\0\0\0\0\x00\x00" + struct.pack(">ii", -1, -1) + b"\x01\x02garbage")


# ---- manifest_seal: seal_len u16 | seal | manifest, under the harness's fixed key and id
import hashlib
import hmac

SEAL_KEY = bytes(range(32))
SEAL_ID = b"20261125T145443Z-3f9a1c"
SEAL_MANIFEST = js(dict(logical, format_version=2))


def seal(manifest, salt=bytes(range(100, 132)), **override):
    prk = hmac.new(salt, SEAL_KEY, hashlib.sha256).digest()  # HKDF-Extract
    mac_key = hmac.new(prk, b"kafkasnap manifest seal hmac-sha256 v1" + b"\x01", hashlib.sha256).digest()
    data = b"kafkasnap manifest\x00" + struct.pack(">Q", len(SEAL_ID)) + SEAL_ID + manifest
    fields = dict(mac="hmac-sha256", kdf="hkdf-sha256", salt=salt.hex(),
                  tag=hmac.new(mac_key, data, hashlib.sha256).hexdigest())
    fields.update(override)
    return json.dumps(fields).encode()


def seal_input(seal_bytes, manifest):
    return struct.pack("<H", len(seal_bytes)) + seal_bytes + manifest


write("manifest_seal", "ok-sealed", seal_input(seal(SEAL_MANIFEST), SEAL_MANIFEST))
write("manifest_seal", "ok-empty-manifest", seal_input(seal(b""), b""))
write("manifest_seal", "bad-manifest-altered",
      seal_input(seal(SEAL_MANIFEST), SEAL_MANIFEST.replace(b"3f9a1c", b"3f9a1d", 1)))
write("manifest_seal", "bad-other-salt",
      seal_input(seal(SEAL_MANIFEST, tag=json.loads(seal(SEAL_MANIFEST, salt=bytes(32)))["tag"]),
                 SEAL_MANIFEST))
write("manifest_seal", "bad-short-tag", seal_input(seal(SEAL_MANIFEST, tag="00" * 31), SEAL_MANIFEST))
write("manifest_seal", "bad-md5", seal_input(seal(SEAL_MANIFEST, mac="hmac-md5"), SEAL_MANIFEST))
write("manifest_seal", "bad-extra-field", seal_input(seal(SEAL_MANIFEST, note="x"), SEAL_MANIFEST))
write("manifest_seal", "bad-not-json", seal_input(b"{\"mac\":", SEAL_MANIFEST))
write("manifest_seal", "bad-no-seal", seal_input(b"", SEAL_MANIFEST))
write("manifest_seal", "bad-huge-seal", seal_input(b" " * 5000, SEAL_MANIFEST))


# ---- tar_rewrite: mode u8 | tar bytes (mode 0) or entries to build (mode 1)
import io
import tarfile

META = b"#\n#Thu Nov 25 14:54:43 UTC 2026\nnode.id=1\nversion=1\ncluster.id=OldClusterId\n"


def python_tar(entries, fmt):
    """A tar written by Python's tarfile (GNU or PAX format), not by the crate under test."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt) as tar:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 1764000000, 0o644
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


LONG = "./" + "t" * 150 + "-0/"
DATA_DIR = [("./orders-0/00000000000000000000.log", bytes(range(256)) * 9),
            ("./meta.properties", META),
            (LONG + "00000000000000000000.log", b"\x07" * 700),
            (LONG + "meta.properties", b"cluster.id = OldClusterId\r\nnode.id=2"),
            ("./recovery-point-offset-checkpoint", b"0\n0\n")]
write("tar_rewrite", "ok-gnu-tar", b"\x00" + python_tar(DATA_DIR, tarfile.GNU_FORMAT))
write("tar_rewrite", "ok-pax-tar", b"\x00" + python_tar(DATA_DIR, tarfile.PAX_FORMAT))
write("tar_rewrite", "ok-built", b"\x01" + b"".join(
    struct.pack("<BBH", path, fmt, len(data)) + data
    for path, fmt, data in [(0, 0, META), (4, 1, b"log bytes" * 40), (6, 0, META.replace(b"\n", b"\r\n")),
                            (7, 1, b"\x00" * 16), (2, 1, b"cluster.id:x\ncluster.id=y")]))
longlink = tarfile.TarInfo("././@LongLink")
longlink.type, longlink.size = tarfile.GNUTYPE_LONGNAME, 2 << 20
write("tar_rewrite", "bad-long-name-2MiB", b"\x00" + longlink.tobuf(tarfile.GNU_FORMAT) + b"n" * 4096)
write("tar_rewrite", "bad-meta-not-utf8",
      b"\x00" + python_tar([("./meta.properties", b"cluster.id=\xff\xfe\n")], tarfile.GNU_FORMAT))
write("tar_rewrite", "bad-meta-over-64KiB",
      b"\x00" + python_tar([("./meta.properties", b"#" * (64 * 1024 + 1))], tarfile.GNU_FORMAT))
write("tar_rewrite", "bad-cut-in-a-header", b"\x00" + python_tar(DATA_DIR, tarfile.GNU_FORMAT)[:700])
huge = tarfile.TarInfo("./huge.log")
huge.size = 2 ** 64 - 11  # base-256 in a GNU header
write("tar_rewrite", "bad-size-near-2-pow-64",
      b"\x00" + huge.tobuf(tarfile.GNU_FORMAT) + python_tar([("./meta.properties", META)], tarfile.GNU_FORMAT))
