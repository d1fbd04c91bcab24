#!/usr/bin/env bash
# How often a kill -9 leaves a sled store that the next open calls corrupt.
#
# usage: bench/crash_open.sh MLP [KILLS]
# env: DELAY_MS (default 20: kills land in [0, DELAY_MS) ms after the start; a release
#      build opens the store, writing sled's snapshot, about 5 ms in), STAGES (default 40), DIR (default
#      a new temporary directory).
#
# One workspace of STAGES tiny stages that all read data.txt. Each cycle writes a new
# data.txt (so every stage reruns and writes its record), starts `mlp run -j2` in a session
# of its own, SIGKILLs the session after a random delay, then runs `mlp runs`. A store that
# sled cannot reopen is moved aside by mlp to `.mlp/store.corrupt-MS` (and a new one
# started): each such directory is one corrupt reopen. Any other failure of `mlp runs` is
# counted too. Before reopening it also counts the torn sled snapshots the kill left
# (`snap.*.generating`): each made sled 0.34 call the store corrupt on its next open
# until mlp deleted them before opening. Prints one markdown table row: binary, kills,
# torn snapshots left, corrupt reopens, other failures.
set -eu
MLP=${1:?usage: bench/crash_open.sh MLP [KILLS]}
KILLS=${2:-1000}
DELAY_MS=${DELAY_MS:-20}
STAGES=${STAGES:-40}
DIR=${DIR:-$(mktemp -d /tmp/mlp-crash-open.XXXXXX)}
MLP=$(readlink -f "$MLP")

cd "$DIR"
{
  echo 'pipeline "open"'
  for i in $(seq 1 "$STAGES"); do
    printf 'stage s%d {\n  in "data.txt"\n  out o = "out/s%d.txt"\n  run "mkdir -p out && cat data.txt > ${out.o}"\n}\n' "$i" "$i"
  done
} >pipeline.mlp
echo 0 >data.txt
"$MLP" run -j2 >/dev/null 2>&1

corrupt=0
other=0
torn=0
for k in $(seq 1 "$KILLS"); do
  echo "$k" >data.txt
  setsid "$MLP" run -j2 >/dev/null 2>&1 &
  pid=$!
  sleep "$(awk -v r="$RANDOM" -v d="$DELAY_MS" 'BEGIN { printf "%.4f", (r % (d * 10)) / 10000 }')"
  kill -KILL "$pid" 2>/dev/null || true
  # The session: mlp and the stage processes it started in groups of their own, until
  # none is left alive (a child forked just before the kill still holds mlp's files).
  for _ in $(seq 1 100); do
    pids=$(ps -o pid=,stat= -s "$pid" 2>/dev/null | awk '$2 !~ /^Z/ { print $1 }')
    [ -n "$pids" ] || break
    kill -KILL $pids 2>/dev/null || true
    sleep 0.005
  done
  { wait "$pid"; } 2>/dev/null || true
  for f in .mlp/store/snap.*.generating; do
    [ -e "$f" ] && torn=$((torn + 1))
  done
  if ! "$MLP" runs >/dev/null 2>err.txt; then
    other=$((other + 1))
    echo "kill $k: mlp runs failed: $(head -c 300 err.txt)" >&2
  fi
  for d in .mlp/store.corrupt-*; do
    [ -e "$d" ] || continue
    corrupt=$((corrupt + 1))
    echo "kill $k: store found corrupt ($d: $(ls "$d" | tr '\n' ' '))" >&2
    rm -rf "$d"
  done
done
echo "| \`$(basename "$MLP")\` | $KILLS | $torn | $corrupt | $other |"
