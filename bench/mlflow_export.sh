#!/usr/bin/env bash
# What exporting a run to MLflow costs: `mlp runs --export mlflow RUN` timed per run
# (experiment lookup, run search, create, log-batch, artifact uploads, status update), a
# re-export of the same runs (search finds them: no create), and `mlp run` after an input
# change with the export on, off, and pointed at a closed port (a server that is down).
#
#   MLFLOW_TRACKING_URI=http://127.0.0.1:5000 bash bench/mlflow_export.sh
#   RUNS=10 MLP=target/release/mlp bash bench/mlflow_export.sh
#
# Needs a running `mlflow server` (see book/src/mlflow.md). MLP (default:
# target/release/mlp) is the binary measured; every figure is a median.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${MLFLOW_TRACKING_URI:?set MLFLOW_TRACKING_URI to a running mlflow server}"
RUNS=${RUNS:-10}
MLP=${MLP:-target/release/mlp}
MLP=$(realpath "$MLP")
WS=$(mktemp -d)
trap 'rm -rf "$WS"' EXIT
cp -r examples/quickstart/. "$WS"
cd "$WS"
export MLFLOW_EXPERIMENT_NAME="mlp-bench-$(date +%s)-$$"
now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

# RUNS recorded runs without export (each reruns evaluate and publish).
for i in $(seq "$RUNS"); do
  MLFLOW_TRACKING_URI= "$MLP" run --set "train.lr=0.$i" >/dev/null 2>&1
done
first=()
again=()
for i in $(seq "$RUNS"); do
  t=$(now); "$MLP" runs --export mlflow "$i" >/dev/null 2>&1; first+=("$(echo "$(now) - $t" | bc)")
done
for i in $(seq "$RUNS"); do
  t=$(now); "$MLP" runs --export mlflow "$i" >/dev/null 2>&1; again+=("$(echo "$(now) - $t" | bc)")
done
# All RUNS in one command (one connection, the experiment looked up once), re-exported.
t=$(now); "$MLP" runs --export mlflow --limit "$RUNS" >/dev/null 2>&1; batch=$(echo "($(now) - $t) / $RUNS" | bc -l)
printf 'export, new MLflow run       %6.3f s a run (median of %d)\n' "$(printf '%s\n' "${first[@]}" | median)" "$RUNS"
printf 're-export, same MLflow run   %6.3f s a run (median of %d)\n' "$(printf '%s\n' "${again[@]}" | median)" "$RUNS"
printf 're-export, %d runs in one call %5.3f s a run\n' "$RUNS" "$batch"

# `mlp run` of one changed stage (publish) with the export on, off, and the server down.
closed=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
for mode in off on down; do
  ts=()
  for i in $(seq 5); do
    echo "$mode $i" > registry/extra.txt 2>/dev/null || { mkdir -p registry; echo "$mode $i" > registry/extra.txt; }
    rm -f registry/model.json
    case $mode in
      off) uri= ;;
      on) uri=$MLFLOW_TRACKING_URI ;;
      down) uri=http://127.0.0.1:$closed ;;
    esac
    t=$(now); MLFLOW_TRACKING_URI=$uri "$MLP" run >/dev/null 2>&1; ts+=("$(echo "$(now) - $t" | bc)")
    rm -f .mlp/tracking/pending
  done
  printf 'mlp run (1 stage), export %-4s %6.3f s (median of 5)\n' "$mode" "$(printf '%s\n' "${ts[@]}" | median)"
done
