#!/usr/bin/env bash
# Instructions mlp's main thread executes (valgrind's callgrind, --separate-threads; child
# processes are not counted), for two or more builds side by side. Unlike seconds, the count
# does not move with the machine's load, so it compares builds on a busy machine. The main
# thread parses, plans, decides (with rayon) and coordinates; the other threads are
# excluded because sled's background flusher does work in proportion to how long the
# process lives, not to what it was asked (it made whole-process counts vary up to 4x).
#
# usage: bench/instructions.sh MLP... [-- SHAPES SIZES]
#   e.g. bench/instructions.sh /tmp/mlp-before target/release/mlp -- "chain wide" "1000"
# Per binary, shape and N (pipelines from bench/gen.py, -j2):
#   check   `mlp check` (parse and plan)
#   cold    the first run in a fresh directory (the engine's own work for N stages)
#   noop    a rerun with nothing to do (the snapshot path)
#   one     a rerun after deleting the output of stage N/2 (restore + early cutoff)
# Prints a markdown table of millions of instructions, and each build's ratio to the first.
# Waits for workers make the main thread's count vary a little, so cold and one are the
# median of REPS runs (default 3).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
BINS=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do BINS+=("$1"); shift; done
[ "${1:-}" = "--" ] && shift
SHAPES=${1:-"chain wide"}
SIZES=${2:-"1000"}
REPS=${REPS:-3}
[ ${#BINS[@]} -ge 1 ] || { echo "usage: bench/instructions.sh MLP... [-- SHAPES SIZES]" >&2; exit 2; }
command -v valgrind >/dev/null || { echo "instructions.sh: needs valgrind (apt-get install valgrind)" >&2; exit 2; }
WORK=${WORK_DIR:-/tmp/mlp-bench-instr}
mkdir -p "$WORK"

# Millions of instructions of one command run in the current directory.
count() {
  local out=$WORK/cg.out
  rm -f "$out"*
  valgrind --tool=callgrind --callgrind-out-file="$out" --separate-threads=yes \
    --trace-children=no "$@" >/dev/null 2>"$WORK/cg.err" || { echo "fail"; return; }
  awk '/^summary:/ {printf "%.1f", $2 / 1e6}' "$out-01"
}

echo "| build | shape | N | check Minstr | cold Minstr | noop Minstr | one Minstr |"
echo "| --- | --- | ---: | ---: | ---: | ---: | ---: |"
declare -A first=()
for s in $SHAPES; do
  for n in $SIZES; do
    for b in "${BINS[@]}"; do
      d=$WORK/$(basename "$b")-$s-$n
      colds=() ones=()
      for _ in $(seq "$REPS"); do
        python3 "$HERE/gen.py" mlp "$s" "$n" "$d" >/dev/null
        cd "$d"
        check=$(count "$b" check)
        colds+=("$(count "$b" run -j2)")
        noop=$(count "$b" run -j2)
        rm -f "out/$((n / 2)).txt"
        ones+=("$(count "$b" run -j2)")
        cd - >/dev/null
      done
      cold=$(printf '%s\n' "${colds[@]}" | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}')
      one=$(printf '%s\n' "${ones[@]}" | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}')
      echo "| \`$b\` | $s | $n | $check | $cold | $noop | $one |"
      key=$s-$n
      if [ -z "${first[$key]:-}" ]; then
        first[$key]="$check $cold $noop $one"
      else
        read -r c0 k0 n0 o0 <<<"${first[$key]}"
        ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f×", a / b; else print "-" }'; }
        echo "| ↳ ratio to the first | $s | $n | $(ratio "$check" "$c0") | $(ratio "$cold" "$k0") | $(ratio "$noop" "$n0") | $(ratio "$one" "$o0") |"
      fi
    done
  done
done
