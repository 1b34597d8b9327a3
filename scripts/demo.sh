#!/usr/bin/env bash
# scripts/demo.sh: the whole job on local brokers: fill one, back it up, restore into a second, verify.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

install_build_deps
install_tansu
install_python_client
cargo build --release --quiet
KAFKASNAP="$CARGO_TARGET_DIR/release/kafkasnap"
BACKUPS="${KAFKASNAP_DEMO_BACKUPS:-./kafkasnap-backups}"

trap stop_brokers EXIT
start_broker demo-source SOURCE
start_broker demo-target TARGET
echo "== source broker $SOURCE, target broker $TARGET"

python3 scripts/demo_fill.py "$SOURCE"

echo "== kafkasnap backup -b $SOURCE --to $BACKUPS"
"$KAFKASNAP" backup -b "$SOURCE" --to "$BACKUPS"
"$KAFKASNAP" ls "$BACKUPS"

echo "== kafkasnap restore -b $TARGET --from $BACKUPS --dry-run"
"$KAFKASNAP" restore -b "$TARGET" --from "$BACKUPS" --dry-run
echo "== kafkasnap restore -b $TARGET --from $BACKUPS"
"$KAFKASNAP" restore -b "$TARGET" --from "$BACKUPS"

echo "== kafkasnap verify $BACKUPS --against $TARGET"
"$KAFKASNAP" verify "$BACKUPS" --against "$TARGET"
python3 scripts/demo_check.py "$SOURCE" "$TARGET"
echo "== demo complete: backups are in $BACKUPS"
