#!/usr/bin/env bash
# Stop the Ray cluster .ci/ray-up.sh started (`ray stop` ends the Ray processes of this
# host, which on a CI machine are that cluster's).
VENV=${MLP_CI_VENV:-/opt/mlp-ci-venv}
RAY=${MLP_RAY_BIN:-$(command -v ray || echo "$VENV/bin/ray")}
[ -x "$RAY" ] || exit 0
"$RAY" stop --force >/dev/null 2>&1 || true
echo "[ray-down] stopped"
