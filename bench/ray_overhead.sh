#!/usr/bin/env bash
# Per-stage overhead of the Ray executor against local runs.
#
# A chain of N trivial stages (each waits for the one before: nothing overlaps) is run
# from scratch locally and with `--executor ray`; the difference of the wall times,
# divided by N, is what a stage costs on Ray (POST /api/jobs/, Ray's start of the job's
# supervisor and entrypoint, the poll that sees it end, the log fetched). A second shape,
# N independent stages with -j N, shows how much of that overlaps: on .ci/ray-up.sh's
# cluster (two nodes of one CPU, each job takes one) two jobs run at a time, so the wide
# run should take about half the chain's time.
#
#   bash bench/ray_overhead.sh              # needs a cluster: bash .ci/ray-up.sh
#   N=20 REPS=3 POLLS="250 100" bash bench/ray_overhead.sh
#
# MLP (default: target/release/mlp, built if missing) is the binary measured; RAY_ADDRESS
# (default http://127.0.0.1:8265) the cluster. POLLS lists the MLP_RAY_POLL_MS values.
# SLEEP=S makes every stage sleep S seconds too (default 0): commands that take time but
# no CPU, to see the two nodes overlap when Ray's own per-job CPU does not dominate.
#
# Measured on the shared 2-vCPU machine (load 11-13) with .ci/ray-up.sh's cluster (Ray 2.60.0,
# two one-CPU nodes on the same host), poll 250 ms:
#   chain, local, -j 2                      0.119 s    0.006 s a stage
#   wide, local, -j 20                      0.060 s    0.003 s a stage
#   chain, ray                             34.504 s   +1.719 s a stage
#   wide, ray, -j 20                       38.946 s   +1.944 s a stage
#   SLEEP=2: chain, ray 103.036 s; wide, ray, -j 20 52.329 s (0.51x)
# Analysis (why the trivial wide run is not half the chain on this host): bench/RESULTS.md,
# "Ray executor overhead".
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-20}
REPS=${REPS:-3}
POLLS=${POLLS:-"250 100"}
SLEEP=${SLEEP:-0}
if [ "$SLEEP" = 0 ]; then NAP=""; else NAP="sleep $SLEEP && "; fi
export RAY_ADDRESS=${RAY_ADDRESS:-http://127.0.0.1:8265}
MLP=${MLP:-$PWD/target/release/mlp}
[ -x "$MLP" ] || cargo build --release --quiet
python3 -c "import urllib.request, sys; urllib.request.urlopen(sys.argv[1] + '/api/version', timeout=3)" "$RAY_ADDRESS" 2>/dev/null \
  || { echo "no Ray dashboard at $RAY_ADDRESS: start a cluster with .ci/ray-up.sh" >&2; exit 1; }

WORK=$(mktemp -d /tmp/mlp-ray-bench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

# chain: s1 <- s2 <- ... <- sN;  wide: N stages that read nothing.
mkdir -p "$WORK/chain" "$WORK/wide"
{
  echo 'pipeline "chain"'
  for i in $(seq 1 "$N"); do
    echo "stage s$i {"
    [ "$i" -gt 1 ] && echo "  in  s$((i - 1))"
    echo "  out \"out/s$i.txt\""
    if [ "$i" -gt 1 ]; then
      echo "  run \"${NAP}mkdir -p out && cat out/s$((i - 1)).txt > out/s$i.txt && echo $i >> out/s$i.txt\""
    else
      echo "  run \"${NAP}mkdir -p out && echo 1 > out/s1.txt\""
    fi
    echo "}"
  done
} > "$WORK/chain/pipeline.mlp"
{
  echo 'pipeline "wide"'
  for i in $(seq 1 "$N"); do
    echo "stage w$i {"
    echo "  out \"out/w$i.txt\""
    echo "  run \"${NAP}mkdir -p out && echo $i > out/w$i.txt\""
    echo "}"
  done
} > "$WORK/wide/pipeline.mlp"

# Median wall time (seconds) of REPS runs from scratch: `time1 SHAPE ARGS...`.
time1() {
  local shape=$1; shift
  local ts=()
  for _ in $(seq 1 "$REPS"); do
    rm -rf "$WORK/$shape/.mlp" "$WORK/$shape/out"
    local t0 t1
    t0=$(date +%s%N)
    (cd "$WORK/$shape" && "$MLP" run "$@" >/dev/null 2>"$WORK/err") || { cat "$WORK/err" >&2; exit 1; }
    t1=$(date +%s%N)
    ts+=($(( (t1 - t0) / 1000000 )))
  done
  printf '%s\n' "${ts[@]}" | sort -n | awk '{ a[NR] = $1 } END { printf "%.3f", a[int((NR + 1) / 2)] / 1000 }'
}

printf 'mlp %s; %s stages (each also sleeping %s s); median of %s runs from scratch; %s\n' \
  "$("$MLP" --version | awk '{print $2}')" "$N" "$SLEEP" "$REPS" "$(python3 -c "
import json, sys, urllib.request
v = json.load(urllib.request.urlopen(sys.argv[1] + '/api/version', timeout=3))
n = json.load(urllib.request.urlopen(sys.argv[1] + '/api/v0/nodes', timeout=3))['data']['result']['result']
alive = [x for x in n if x['state'] == 'ALIVE']
print('Ray %s, %d nodes, CPUs %s' % (v['ray_version'], len(alive), '+'.join('%g' % x['resources_total'].get('CPU', 0) for x in alive)))
" "$RAY_ADDRESS")"
printf '%-34s %10s %16s\n' "run" "wall (s)" "per stage (s)"
local_chain=$(time1 chain -j 2)
printf '%-34s %10s %16s\n' "chain, local, -j 2" "$local_chain" \
  "$(awk -v t="$local_chain" -v n="$N" 'BEGIN { printf "%.3f", t / n }')"
local_wide=$(time1 wide -j "$N")
printf '%-34s %10s %16s\n' "wide, local, -j $N" "$local_wide" \
  "$(awk -v t="$local_wide" -v n="$N" 'BEGIN { printf "%.3f", t / n }')"
for poll in $POLLS; do
  export MLP_RAY_POLL_MS=$poll
  t=$(time1 chain -j 2 --executor ray)
  printf '%-34s %10s %16s\n' "chain, ray, poll ${poll} ms" "$t" \
    "$(awk -v t="$t" -v l="$local_chain" -v n="$N" 'BEGIN { printf "+%.3f", (t - l) / n }')"
  t=$(time1 wide -j "$N" --executor ray)
  printf '%-34s %10s %16s\n' "wide, ray, -j $N, poll ${poll} ms" "$t" \
    "$(awk -v t="$t" -v l="$local_wide" -v n="$N" 'BEGIN { printf "+%.3f", (t - l) / n }')"
done
echo "(per stage on ray: the difference to the local run of the same shape, divided by $N)"
