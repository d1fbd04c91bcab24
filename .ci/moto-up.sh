#!/usr/bin/env bash
# Start moto's S3 server on 127.0.0.1 for tests/it/remote.rs (and bench/remote.sh), from
# the one CI virtualenv, and create the test bucket. Prints the endpoint to export as
# MLP_S3_ENDPOINT. Stopped by .ci/moto-down.sh.
set -euo pipefail
VENV=${MLP_CI_VENV:-/opt/mlp-ci-venv}
MOTO=${MLP_MOTO_BIN:-$(command -v moto_server || echo "$VENV/bin/moto_server")}
PORT=${MLP_MOTO_PORT:-5055}
DIR=${MLP_MOTO_DIR:-/tmp/mlp-moto}
mkdir -p "$DIR"
# Its own process group (setsid), so moto-down stops it and anything it started.
setsid "$MOTO" -H 127.0.0.1 -p "$PORT" >"$DIR/server.log" 2>&1 &
echo $! >"$DIR/pid"
up() { python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' "http://127.0.0.1:$PORT/moto-api/" 2>/dev/null; }
for _ in $(seq 60); do
  up && break
  kill -0 "$(cat "$DIR/pid")" 2>/dev/null || { cat "$DIR/server.log"; exit 1; }
  sleep 1
done
up || { cat "$DIR/server.log"; exit 1; }
# The bucket the tests use (moto accepts any static credentials).
python3 - "$PORT" <<'PY'
import sys, urllib.request
req = urllib.request.Request(f"http://127.0.0.1:{sys.argv[1]}/mlp-test", method="PUT")
urllib.request.urlopen(req, timeout=5)
PY
echo "[moto-up] S3 on http://127.0.0.1:$PORT, bucket mlp-test"
