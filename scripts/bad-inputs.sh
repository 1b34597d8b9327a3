#!/usr/bin/env bash
# scripts/bad-inputs.sh: the bad-input table. Runs kafkasnap with inputs a user can get wrong
# (levels, names, locations, keys, damaged manifests, signals while connecting) against two
# local tansu brokers and prints one Markdown row per input: exit code, time, first error line.
#   bash scripts/bad-inputs.sh [KAFKASNAP_BINARY]     (default: the release build)
set -uo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
cd "$REPO" && source scripts/lib.sh
install_tansu
install_python_client
K="${1:-$CARGO_TARGET_DIR/release/kafkasnap}"
[ -x "$K" ] || (cargo build --release --quiet --bin kafkasnap)
W=$(mktemp -d "${TMPDIR:-/tmp}/kafkasnap-bad-inputs.XXXX"); cd "$W"
trap 'stop_brokers; kill "${BH:-}" 2>/dev/null; rm -rf "$W"' EXIT
start_broker bad-src SRC
start_broker bad-dst DST
python3 "$REPO/scripts/demo_fill.py" "$SRC" >/dev/null 2>&1
"$K" --no-progress backup -b "$SRC" --to ./loc >/dev/null 2>&1 || echo "seed backup failed"
head -c 32 /dev/urandom > key; head -c 32 /dev/urandom > otherkey
"$K" --no-progress backup -b "$SRC" --to ./enc --key-file key >/dev/null 2>&1 || echo "enc backup failed"
cp -a loc damaged; M=$(find damaged -name manifest.json | head -1); echo "damaging $M" >&2; printf '{"format_version": 1, "backup' > "$M"
python3 -c 'import socket,time; s=socket.socket(); s.bind(("127.0.0.1",0)); s.listen(); print(s.getsockname()[1], flush=True); time.sleep(600)' > blackhole.port &
BH=$!; sleep 0.5; BHP=$(cat blackhole.port)
row() {
  local t0=$(date +%s.%N)
  out=$(KAFKASNAP_NO_PROGRESS=1 timeout 60 "$K" "$@" 2>err </dev/null); rc=$?
  local t1=$(date +%s.%N)
  first=$(grep -m1 '^error' err); [ -z "$first" ] && first=$(grep -v '^\s*$' err | grep -v ' INFO ' | head -1); [ -z "$first" ] && first=$(printf '%s\n' "$out" | head -1)
  printf '| `kafkasnap %s` | %s | %.1f s | %s |\n' "$*" "$rc" "$(echo "$t1 - $t0" | bc)" "${first:0:200}"
}
sig() { # SIGINT after 1 s
  local t0=$(date +%s.%N)
  KAFKASNAP_NO_PROGRESS=1 "$K" "$@" 2>err </dev/null & local p=$!; sleep 1; kill -INT $p; wait $p; rc=$?
  local t1=$(date +%s.%N)
  printf '| `kafkasnap %s` + SIGINT at 1 s | %s | %.1f s | %s |\n' "$*" "$rc" "$(echo "$t1 - $t0" | bc)" "$(grep -v '^\s*$' err | tail -1 | cut -c1-200)"
}
echo "| input | exit | time | first line |"
echo "|---|---:|---:|---|"
row backup -b "$SRC" --to ./x --compression zstd --level 99
row backup -b "$SRC" --to ./x --compression gzip --level 15
row backup -b "$SRC" --to ./x --compression none --level 5
row --log-level banana ls ./loc
row backup -b "$SRC" --to ./x --stall-timeout 0s
row backup -b "$SRC" --to ./x --parallelism 0
row backup -b "$SRC" --to 'ftp://host/x'
row backup -b 127.0.0.1:1 --to ./x --timeout 3s
row restore -b "$DST" --from ./loc --topic-map order.created=merged --topic-map order.updated=merged --dry-run
row restore -b "$DST" --from ./loc --topic-map order.created=..
row restore -b "$DST" --from ./loc --topic-map 'order.created=a/b'
row restore -b "$DST" --from ./loc --topic-map "order.created=$(printf 'x%.0s' $(seq 1 250))"
row restore -b "$DST" --from ./loc --topic-map order.created
row restore -b "$DST" --from ./empty-dir-that-does-not-exist
row restore -b "$DST" --from ./loc --backup 20990101T000000Z-000000
row restore -b "$DST" --from ./enc
row restore -b "$DST" --from ./enc --key-file otherkey
row restore -b "$DST" --from ./loc --key-file missing-key
row restore -b "$DST" --from ./loc --include 'o{1,2}rder.*' --dry-run
row restore -b "$DST" --from ./loc --topic-map order.created=order.updated --dry-run
row restore -b "$DST" --from ./loc --include 'order.(' --dry-run
row verify ./damaged
row ls ./damaged
row verify ./loc --against 127.0.0.1:1
row prune ./loc
row prune ./loc --keep-last 1 --grace banana
row prune ./loc --keep-last 0
row prune ./loc --keep-within 24x
row cat ./loc --topic no-such-topic
row show ./loc --backup not-an-id
row bogus-subcommand
row backup -b "$SRC" --to ./x --shard 3/2 --shard-run r
row restore -b "$DST" --from ./loc --resume --if-exists skip
row restore -b "$DST" --from ./loc --from-time 2026-01-02T00:00:00Z --until 2026-01-01T00:00:00Z
row backup -b '' --to ./x
row backup -b 'kafka:port' --to ./x
row backup -b "$SRC" -X bootstrap.servers=127.0.0.1:1 --to ./x
row backup -b "$SRC" --to memory://
row backup -b "$SRC" --to file://relative/x
row backup -b "$SRC" --to ./key
row backup -b 127.0.0.1:1 --to ./never-created --timeout 2s; [ -e ./never-created ] && echo "./never-created was left behind"
row datadir verify ./loc
(unset $(env | grep -o '^AWS_[A-Z_]*'); row backup -b "$SRC" --to s3://bucket/x)
sig backup -b 127.0.0.1:$BHP --to ./y
sig restore -b 127.0.0.1:$BHP --from ./loc
sig verify ./loc --against 127.0.0.1:$BHP
