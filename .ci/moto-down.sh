#!/usr/bin/env bash
# Stop the moto server .ci/moto-up.sh started (its whole process group).
DIR=${MLP_MOTO_DIR:-/tmp/mlp-moto}
[ -f "$DIR/pid" ] || exit 0
PID=$(cat "$DIR/pid")
kill -TERM -- "-$PID" 2>/dev/null || { rm -f "$DIR/pid"; exit 0; }
for _ in 1 2 3 4 5; do kill -0 -- "-$PID" 2>/dev/null || break; sleep 1; done
kill -KILL -- "-$PID" 2>/dev/null || true
rm -f "$DIR/pid"
echo "[moto-down] stopped"
