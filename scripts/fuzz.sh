#!/usr/bin/env bash
# scripts/fuzz.sh: build the fuzz targets in fuzz/ and run each for a bounded time.
#
#   FUZZ_SECONDS=60 bash scripts/fuzz.sh [TARGET...]     (default: every target, 60 s each)
#
# Runs on the stable toolchain: cargo-fuzz's instrumentation (-Cpasses=sancov-module and
# -Cllvm-args) is stable; only sanitizers need nightly, so targets are built with `-s none`
# (debug assertions and overflow checks stay on). FUZZ_SANITIZER=address uses ASan when a
# nightly toolchain is installed (`cargo +nightly`).
#
# Seeds: fuzz/corpus/<target> (committed), tests/fuzz-regressions/<target>, and for kafka_log
# the small real segments of ../shared/fixtures/kafka-bytes when present. New corpus entries
# go to fuzz/corpus-work/<target> (not committed). A panic, a hang (FUZZ_TIMEOUT s per input)
# or memory over 2 GiB (and, under a sanitizer, one allocation over FUZZ_MALLOC_MB: libFuzzer
# sees single allocations only through sanitizer hooks) fails the script, naming the input saved under
# fuzz/artifacts/<target>/: fix the parser, then keep the input under
# tests/fuzz-regressions/<target>/ (see tests/it/fuzz_regressions.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

CARGO_FUZZ_VERSION=0.13.2
FUZZ_SECONDS="${FUZZ_SECONDS:-60}"
FUZZ_TIMEOUT="${FUZZ_TIMEOUT:-10}"
FUZZ_MALLOC_MB="${FUZZ_MALLOC_MB:-512}"
FUZZ_SANITIZER="${FUZZ_SANITIZER:-none}"
# Instrumented builds must not share the normal target dir (different flags rebuild everything).
FUZZ_TARGET_DIR="${FUZZ_TARGET_DIR:-$HOME/.cache/kafkasnap-fuzz-target}"
FIXTURES="$(realpath -m "${KAFKASNAP_FIXTURES:-../shared/fixtures/kafka-bytes}")"

install_build_deps
if [ "$(cargo fuzz --version 2>/dev/null)" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]; then
  echo "installing cargo-fuzz $CARGO_FUZZ_VERSION"
  cargo install --quiet --locked "cargo-fuzz@$CARGO_FUZZ_VERSION"
fi

toolchain=()
if [ "$FUZZ_SANITIZER" != none ]; then
  toolchain=(+nightly)
fi
cd fuzz
fuzz=(cargo "${toolchain[@]}" fuzz)
flags=(-s "$FUZZ_SANITIZER" --target-dir "$FUZZ_TARGET_DIR")

if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <("${fuzz[@]}" list)
fi

started=$SECONDS
"${fuzz[@]}" build "${flags[@]}"
echo "fuzz targets built in $((SECONDS - started)) s"

failed=()
for target in "${targets[@]}"; do
  work="corpus-work/$target"
  mkdir -p "$work" "corpus/$target" "artifacts/$target"
  seeds=("corpus/$target" "../tests/fuzz-regressions/$target")
  if [ "$target" = kafka_log ] && [ -d "$FIXTURES" ]; then
    mkdir -p corpus-work/fixtures
    find "$FIXTURES" -type f \( -name '*.log' -o -name '*.bin' -o -name '*.checkpoint' \) \
      -size -100k -exec cp -f {} corpus-work/fixtures/ \;
    seeds+=(corpus-work/fixtures)
  fi
  log="corpus-work/$target.log"
  echo "fuzzing $target for $FUZZ_SECONDS s"
  if "${fuzz[@]}" run "${flags[@]}" "$target" "$work" "${seeds[@]}" -- \
    -max_total_time="$FUZZ_SECONDS" -timeout="$FUZZ_TIMEOUT" \
    -malloc_limit_mb="$FUZZ_MALLOC_MB" -rss_limit_mb=2048 \
    -print_final_stats=1 >"$log" 2>&1; then
    grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)|cov: ' "$log" |
      tail -n 4 | sed "s/^/  $target: /"
  else
    tail -n 40 "$log"
    artifact="$(grep -o 'Test unit written to [^ ]*' "$log" | tail -n 1 | cut -d' ' -f5-)"
    echo "FUZZ FAILURE in $target: input saved as ${artifact:-fuzz/artifacts/$target/ (see fuzz/$log)}" >&2
    failed+=("$target")
  fi
done

if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzzing found problems in: ${failed[*]}" >&2
  exit 1
fi
echo "fuzzing: ${#targets[@]} targets, ${FUZZ_SECONDS} s each, no crash"
