#!/usr/bin/env bash
# scripts/test.sh: install what the tests need (build deps, tansu, the storage emulators) and run the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

install_build_deps
install_tansu
install_store_emulators

if cargo fmt --version >/dev/null 2>&1; then
  cargo fmt --all -- --check
fi
bash scripts/validate-manifests.sh
# Each fuzz target for a bounded time (FUZZ_SECONDS, default 60); a crash fails the suite.
bash scripts/fuzz.sh
# One profile for tests, demo and benchmarks, so everything is built once.
# Examples (the benchmark baseline) must compile; they hold no tests, so they are built, not run,
# and the suite's last line is the integration tests' result.
cargo build --release --examples
cargo test --release --lib --bins --tests
