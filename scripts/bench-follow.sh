#!/usr/bin/env bash
# scripts/bench-follow.sh: benchmark of continuous backup (`kafkasnap backup --follow`) on tansu.
#
# A producer writes at a steady rate for BENCH_FOLLOW_SECONDS while a follower publishes a
# checkpoint every BENCH_FOLLOW_INTERVAL into a local directory. Reported:
#   RPO            for a sample of records (every 50th acknowledged one): the time from its
#                  produce (its CreateTime) to the publication (manifest finished_at) of the
#                  first checkpoint whose end_offset passes it: median, p95, max
#   CPU s/GB       the follower's user+system CPU over the keys+values produced, beside kcat -C
#                  reading the same records afterwards (a bare consumer: the same-run baseline)
#   RSS            the follower's resident set at 1 minute (half the run if shorter than 2) and
#                  at the end (and its peak),
#                  to show memory stays flat over the run
#   manifests      the size of the first and last delta manifest (flat: no growth with time)
# Output: a table on stdout and BENCH_OUT (default bench-follow.json).
#
# Environment (all optional):
#   BENCH_FOLLOW_SECONDS=240  BENCH_FOLLOW_RATE=2000 (records/s)  BENCH_VALUE_BYTES=1024
#   BENCH_PARTITIONS=4  BENCH_FOLLOW_INTERVAL=10s  BENCH_OUT=bench-follow.json
#   BENCH_SKIP_BUILD=1 (use the built binary)  BENCH_KEEP=1 (keep the work directory)
set -euo pipefail

REPO="$(cd "$(dirname "$0")/.." && pwd)"
SECONDS_TO_RUN=${BENCH_FOLLOW_SECONDS:-240}
RATE=${BENCH_FOLLOW_RATE:-2000}
VALUE_BYTES=${BENCH_VALUE_BYTES:-1024}
PARTITIONS=${BENCH_PARTITIONS:-4}
INTERVAL=${BENCH_FOLLOW_INTERVAL:-10s}
OUT=${BENCH_OUT:-bench-follow.json}
TOPIC=follow.bench
# shellcheck source=scripts/lib.sh
source "$REPO/scripts/lib.sh"
install_tansu >&2
install_python_client >&2
install_kcat >&2

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/kafkasnap-target}
if [[ ${BENCH_SKIP_BUILD:-0} != 1 ]]; then
    (cd "$REPO" && cargo build --release --quiet --bin kafkasnap)
fi
KAFKASNAP="$CARGO_TARGET_DIR/release/kafkasnap"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/kafkasnap-bench-follow.XXXXXX")"
FOLLOWER=""
cleanup() {
    [[ -n $FOLLOWER ]] && kill "$FOLLOWER" 2>/dev/null || true
    stop_brokers
    [[ ${BENCH_KEEP:-0} == 1 ]] && echo "work directory kept: $WORK" >&2 || rm -rf "$WORK"
}
trap cleanup EXIT

start_broker follow BROKER
python3 - "$BROKER" "$TOPIC" "$PARTITIONS" <<'EOF'
import sys
from confluent_kafka.admin import AdminClient, NewTopic
bootstrap, topic, partitions = sys.argv[1], sys.argv[2], int(sys.argv[3])
admin = AdminClient({"bootstrap.servers": bootstrap})
admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result()
EOF

# CPU ticks (user+system) and resident set of a process.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
peak_kib() { awk '/^VmHWM/ {print $2}' "/proc/$1/status"; }

"$KAFKASNAP" backup -b "$BROKER" --to "$WORK/location" --follow --checkpoint-interval "$INTERVAL" \
    --log-level warn >"$WORK/follower.out" 2>"$WORK/follower.err" &
FOLLOWER=$!

# The producer: a steady rate, CreateTime = produce time; every 50th acknowledged record's
# partition, offset and timestamp go to samples.tsv.
python3 - "$BROKER" "$TOPIC" "$RATE" "$SECONDS_TO_RUN" "$VALUE_BYTES" "$WORK/samples.tsv" \
    >"$WORK/producer.out" <<'EOF' &
import sys, time
from confluent_kafka import Producer
bootstrap, topic, rate, seconds, value_bytes, samples = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "enable.idempotence": True})
out = open(samples, "w")
acked = [0, 0]
def delivered(err, msg):
    if err is not None:
        raise SystemExit(f"produce failed: {err}")
    acked[0] += 1
    acked[1] += len(msg.value()) + len(msg.key())
    if acked[0] % 50 == 0:
        out.write(f"{msg.partition()}\t{msg.offset()}\t{msg.timestamp()[1]}\n")
value = b"v" * value_bytes
start = time.time()
sent = 0
while True:
    elapsed = time.time() - start
    if elapsed >= seconds:
        break
    due = int(elapsed * rate)
    while sent < due:
        producer.produce(topic, key=b"k%09d" % sent, value=value, on_delivery=delivered)
        sent += 1
    producer.poll(0)
    time.sleep(0.005)
producer.flush(60)
out.close()
print(acked[0], acked[1])
EOF
PRODUCER=$!

# The first memory point at 1 minute (at half the run, for runs under 2 minutes).
FIRST_POINT=$(( SECONDS_TO_RUN >= 120 ? 60 : SECONDS_TO_RUN / 2 ))
sleep "$FIRST_POINT"
RSS_1MIN=$(rss_kib "$FOLLOWER")
wait "$PRODUCER"
read -r PRODUCED PRODUCED_BYTES <"$WORK/producer.out"
# Once the producer stops, the next checkpoint holds everything; then stop the follower.
newest_records() {
    "$KAFKASNAP" ls "$WORK/location" -o json | python3 -c '
import json, sys
done = [e for e in json.load(sys.stdin) if e["complete"]]
print(max(done, key=lambda e: e["backup_id"])["records"] if done else 0)'
}
deadline=$(( SECONDS + 300 ))
until [[ $(newest_records) == "$PRODUCED" ]]; do
    (( SECONDS < deadline )) || { echo "no checkpoint holds all $PRODUCED records" >&2; exit 1; }
    sleep 0.5
done
RSS_END=$(rss_kib "$FOLLOWER")
PEAK=$(peak_kib "$FOLLOWER")
TICKS=$(cpu_ticks "$FOLLOWER")
kill -TERM "$FOLLOWER"
wait "$FOLLOWER" || { echo "the follower failed:" >&2; tail -20 "$WORK/follower.err" >&2; exit 1; }
FOLLOWER=""
CLK_TCK=$(getconf CLK_TCK)

# Baseline: a bare consumer (kcat -C) reading the same records, its CPU seconds.
/usr/bin/time -f "%U %S" -o "$WORK/kcat.time" "$KCAT" -C -b "$BROKER" -t "$TOPIC" -e -q -o beginning >/dev/null
read -r KCAT_USER KCAT_SYS <"$WORK/kcat.time"

python3 - "$WORK/location" "$WORK/samples.tsv" "$PRODUCED" "$PRODUCED_BYTES" "$TICKS" "$CLK_TCK" \
    "$KCAT_USER" "$KCAT_SYS" "$RSS_1MIN" "$RSS_END" "$PEAK" "$SECONDS_TO_RUN" "$RATE" "$INTERVAL" "$OUT" <<'EOF'
import glob, json, os, statistics, sys
from datetime import datetime
(location, samples, produced, produced_bytes, ticks, clk, kcat_user, kcat_sys, rss_1min,
 rss_end, peak, seconds, rate, interval, out) = sys.argv[1:]
manifests = []
for path in glob.glob(os.path.join(location, "backups", "*", "manifest.json")):
    m = json.load(open(path))
    done = datetime.fromisoformat(m["finished_at"].replace("Z", "+00:00")).timestamp()
    ends = {(t["name"], p["partition"]): p["end_offset"] for t in m["topics"] for p in t["partitions"]}
    manifests.append((done, ends, os.path.getsize(path), m["format_version"], m["totals"]["records"]))
manifests.sort(key=lambda m: m[0])
if manifests[-1][4] != int(produced):
    sys.exit(f"the last checkpoint holds {manifests[-1][4]} records, {produced} were produced")
rpo = []
for line in open(samples):
    partition, offset, ts = line.split()
    key = ("follow.bench", int(partition))
    first = next(m[0] for m in manifests if m[1].get(key, 0) > int(offset))
    rpo.append(first - int(ts) / 1000)
rpo.sort()
gb = int(produced_bytes) / 1e9
cpu = int(ticks) / int(clk)
kcat_cpu = float(kcat_user) + float(kcat_sys)
deltas = [m[2] for m in manifests if m[3] == 3]
result = {
    "seconds": int(seconds), "rate": int(rate), "interval": interval, "records": int(produced),
    "gb": round(gb, 3), "checkpoints": len(manifests),
    "rpo_median_s": round(statistics.median(rpo), 2),
    "rpo_p95_s": round(rpo[int(len(rpo) * 0.95)], 2), "rpo_max_s": round(rpo[-1], 2),
    "follower_cpu_s_per_gb": round(cpu / gb, 2), "kcat_cpu_s_per_gb": round(kcat_cpu / gb, 2),
    "cpu_ratio_to_kcat": round(cpu / kcat_cpu, 2),
    "rss_mib_1min": round(int(rss_1min) / 1024, 1), "rss_mib_end": round(int(rss_end) / 1024, 1),
    "rss_mib_peak": round(int(peak) / 1024, 1),
    "delta_manifest_bytes_first_last": [deltas[0], deltas[-1]] if deltas else None,
}
json.dump(result, open(out, "w"), indent=2)
print(f"follow: {result['records']} records ({result['gb']} GB) at {rate}/s for {seconds}s, checkpoint every {interval}: {result['checkpoints']} checkpoints")
print(f"RPO (produce -> first checkpoint holding it): median {result['rpo_median_s']} s, p95 {result['rpo_p95_s']} s, max {result['rpo_max_s']} s")
print(f"CPU: follower {result['follower_cpu_s_per_gb']} s/GB, kcat -C of the same records {result['kcat_cpu_s_per_gb']} s/GB ({result['cpu_ratio_to_kcat']}x)")
print(f"RSS: {result['rss_mib_1min']} MiB at 1 min, {result['rss_mib_end']} MiB at the end, peak {result['rss_mib_peak']} MiB")
print(f"delta manifest bytes, first and last: {result['delta_manifest_bytes_first_last']}")
EOF
