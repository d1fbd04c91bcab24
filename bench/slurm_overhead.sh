#!/usr/bin/env bash
# Per-stage overhead of the Slurm executor against local runs.
#
# A chain of N trivial stages (each waits for the one before: nothing overlaps) is run
# from scratch locally and with `--executor slurm`; the difference of the wall times,
# divided by N, is what a stage costs on Slurm (sbatch, the wait for the scheduler, the
# job's start, the poll that sees it end, the result file). A second shape, N independent
# stages with -j N, shows how much of that overlaps when stages can run side by side.
#
#   bash bench/slurm_overhead.sh            # needs a cluster: bash .ci/slurm-up.sh
#   N=20 REPS=3 POLLS="500 100" bash bench/slurm_overhead.sh
#
# MLP (default: target/release/mlp, built if missing) is the binary measured. POLLS lists
# the MLP_SLURM_POLL_MS values to try.
#
# Measured on the 2-core CI machine with .ci/slurm-up.sh's cluster (2 nodes, Slurm 22.05):
#   chain, local, -j 2                      0.106 s    0.005 s a stage
#   wide, local, -j 20                      0.062 s    0.003 s a stage
#   chain, slurm, poll 500 ms              19.886 s   +0.989 s a stage
#   wide, slurm, -j 20, poll 500 ms         2.160 s   +0.105 s a stage
#   chain, slurm, poll 100 ms              19.071 s   +0.948 s a stage
#   wide, slurm, -j 20, poll 100 ms         2.027 s   +0.098 s a stage
# Most of a chained stage's second is Slurm's own: sbatch answers in ~15 ms, but a job
# starts 0.6-1.0 s after it is submitted (the controller's scheduling pass); the poll adds
# half its interval on average.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-20}
REPS=${REPS:-3}
POLLS=${POLLS:-"500 100"}
MLP=${MLP:-$PWD/target/release/mlp}
[ -x "$MLP" ] || cargo build --release --quiet
command -v sbatch >/dev/null || { echo "no sbatch: start a cluster with .ci/slurm-up.sh" >&2; exit 1; }

WORK=$(mktemp -d /tmp/mlp-slurm-bench.XXXXXX)
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
      echo "  run \"mkdir -p out && cat out/s$((i - 1)).txt > out/s$i.txt && echo $i >> out/s$i.txt\""
    else
      echo "  run \"mkdir -p out && echo 1 > out/s1.txt\""
    fi
    echo "}"
  done
} > "$WORK/chain/pipeline.mlp"
{
  echo 'pipeline "wide"'
  for i in $(seq 1 "$N"); do
    echo "stage w$i {"
    echo "  out \"out/w$i.txt\""
    echo "  run \"mkdir -p out && echo $i > out/w$i.txt\""
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

printf 'mlp %s; %s stages; median of %s runs from scratch; %s\n' \
  "$("$MLP" --version | awk '{print $2}')" "$N" "$REPS" "$(sinfo -h -o '%D nodes, %c CPUs each' | head -1)"
printf '%-34s %10s %16s\n' "run" "wall (s)" "per stage (s)"
local_chain=$(time1 chain -j 2)
printf '%-34s %10s %16s\n' "chain, local, -j 2" "$local_chain" \
  "$(awk -v t="$local_chain" -v n="$N" 'BEGIN { printf "%.3f", t / n }')"
local_wide=$(time1 wide -j "$N")
printf '%-34s %10s %16s\n' "wide, local, -j $N" "$local_wide" \
  "$(awk -v t="$local_wide" -v n="$N" 'BEGIN { printf "%.3f", t / n }')"
for poll in $POLLS; do
  export MLP_SLURM_POLL_MS=$poll
  t=$(time1 chain -j 2 --executor slurm)
  printf '%-34s %10s %16s\n' "chain, slurm, poll ${poll} ms" "$t" \
    "$(awk -v t="$t" -v l="$local_chain" -v n="$N" 'BEGIN { printf "+%.3f", (t - l) / n }')"
  t=$(time1 wide -j "$N" --executor slurm)
  printf '%-34s %10s %16s\n' "wide, slurm, -j $N, poll ${poll} ms" "$t" \
    "$(awk -v t="$t" -v l="$local_wide" -v n="$N" 'BEGIN { printf "+%.3f", (t - l) / n }')"
done
echo "(per stage on slurm: the difference to the local run of the same shape, divided by $N)"
