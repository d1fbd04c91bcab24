#!/usr/bin/env bash
# Start a real two-node Ray cluster on this host, on loopback, for the Ray tests
# (tests/it/ray.rs): a head with one CPU and the custom resource `node1`, and a second node
# with one CPU and `node2`, as issue 19 describes. Idempotent: a cluster that answers with
# two nodes is left alone.
#   MLP_RAY_BIN    the `ray` command (default: `ray` on PATH, else the CI venv's)
#   MLP_RAY_PORT   the dashboard port (default 8265); the GCS listens on 6379
# Prints nothing on success but the `ray start` logs' tails on failure.
set -euo pipefail
VENV=${MLP_CI_VENV:-/opt/mlp-ci-venv}
RAY=${MLP_RAY_BIN:-$(command -v ray || echo "$VENV/bin/ray")}
PORT=${MLP_RAY_PORT:-8265}
ADDR=http://127.0.0.1:$PORT
LOG=${TMPDIR:-/tmp}/mlp-ray-up.log
unset RAY_ADDRESS
say() { echo "[ray-up] $*"; }

alive_nodes() {
  python3 - "$ADDR" <<'PY' 2>/dev/null || echo 0
import json, sys, urllib.request
with urllib.request.urlopen(sys.argv[1] + "/api/v0/nodes?limit=100", timeout=3) as r:
    nodes = json.load(r)["data"]["result"]["result"]
print(sum(1 for n in nodes if n["state"] == "ALIVE"))
PY
}

[ -x "$RAY" ] || { echo "ray-up: no ray at $RAY: pip install 'ray[default]'" >&2; exit 1; }
if [ "$(alive_nodes)" = 2 ]; then say "already up at $ADDR"; exit 0; fi
: >"$LOG"
"$RAY" start --head --node-ip-address 127.0.0.1 --port 6379 --num-cpus 1 \
  --resources '{"node1": 1}' --dashboard-host 127.0.0.1 --dashboard-port "$PORT" \
  --disable-usage-stats >>"$LOG" 2>&1 || { tail -20 "$LOG" >&2; exit 1; }
"$RAY" start --address 127.0.0.1:6379 --node-ip-address 127.0.0.1 \
  --dashboard-agent-listen-port 52366 --num-cpus 1 --resources '{"node2": 1}' \
  --disable-usage-stats >>"$LOG" 2>&1 || { tail -20 "$LOG" >&2; exit 1; }
for _ in $(seq 1 120); do
  if [ "$(alive_nodes)" = 2 ]; then say "two nodes up at $ADDR"; exit 0; fi
  sleep 0.5
done
echo "ray-up: the cluster at $ADDR did not show two alive nodes in 60 s" >&2
tail -20 "$LOG" >&2
exit 1
