#!/usr/bin/env bash
# Big pipelines (issue 12): two mlp builds side by side with make and ninja, in one run.
#
#   bench/scale.sh BEFORE_MLP AFTER_MLP
#
# Env: SIZES_COLD (default "1000 10000": chain and wide, cold runs, round-robin over the
# engines, REPS each), BIG (default 100000: the wide pipeline of that size, cold run,
# one stage's command changed, no-op; 0 skips it), REPS (default 3; sizes of 10,000 and
# more run once), WORK (default /tmp/mlp-bench-scale), CALLGRIND (default 1; 0 skips the
# instruction counts).
#
# Prints markdown tables: seconds (median) and peak RSS (GNU time, the engine and its
# children) per case, and each mlp's ratio to make and ninja. Wall seconds move with the
# machine's load: only the side-by-side ratios of one run mean anything, and the
# instruction counts (bench/instructions.sh, run at the end for the 1,000-stage cases)
# do not move with it.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
[ $# -eq 2 ] || { echo "usage: bench/scale.sh BEFORE_MLP AFTER_MLP" >&2; exit 2; }
BEFORE=$1
AFTER=$2
SIZES_COLD=${SIZES_COLD:-"1000 10000"}
BIG=${BIG:-100000}
REPS=${REPS:-3}
WORK=${WORK:-/tmp/mlp-bench-scale}
for t in make ninja /usr/bin/time valgrind; do
  command -v "$t" >/dev/null || { echo "bench/scale.sh: needs $t (apt-get install make ninja-build time valgrind)" >&2; exit 2; }
done
mkdir -p "$WORK"

# One timed command in the current directory: "seconds max_rss_kb" (or "fail").
timed() {
  local f=$WORK/time.out
  if /usr/bin/time -o "$f" -f "%e %M" "$@" >/dev/null 2>&1; then
    tail -1 "$f"
  else
    echo "fail 0"
  fi
}

median() { sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }

# Engine name → command running its pipeline in the current directory.
cmd_of() {
  case $1 in
    make) echo "make -j2 -s" ;;
    ninja) echo "ninja -j2" ;;
    before) echo "$BEFORE run -j2 -q" ;;
    after) echo "$AFTER run -j2 -q" ;;
  esac
}
gen_of() { case $1 in before|after) echo mlp ;; *) echo "$1" ;; esac; }

echo "## Cold runs (median of $REPS below 10,000 stages, else one run; round-robin), -j2"
echo
echo "| shape | N | engine | cold_s | peak_MB |"
echo "| --- | ---: | --- | ---: | ---: |"
declare -A secs=() rss=()
for shape in chain wide; do
  for n in $SIZES_COLD; do
    declare -A runs=()
    reps=$REPS; [ "$n" -ge 10000 ] && reps=1
    for _ in $(seq "$reps"); do
      for e in make ninja before after; do
        d=$WORK/$e-$shape-$n
        python3 "$HERE/gen.py" "$(gen_of "$e")" "$shape" "$n" "$d" >/dev/null
        cd "$d"
        read -r s kb <<<"$(timed $(cmd_of "$e"))"
        cd - >/dev/null
        runs[$e]="${runs[$e]:-} $s"
        rss[$e-$shape-$n]=$kb
      done
    done
    for e in make ninja before after; do
      m=$(printf '%s\n' ${runs[$e]} | median)
      secs[$e-$shape-$n]=$m
      echo "| $shape | $n | $e | $m | $(awk -v k="${rss[$e-$shape-$n]}" 'BEGIN{printf "%.1f", k/1024}') |"
    done
    unset runs
  done
done
echo
echo "| shape | N | before/make | after/make | before/ninja | after/ninja | after/before |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
r() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
for shape in chain wide; do
  for n in $SIZES_COLD; do
    k=$shape-$n
    echo "| $shape | $n | $(r "${secs[before-$k]}" "${secs[make-$k]}") | $(r "${secs[after-$k]}" "${secs[make-$k]}") | $(r "${secs[before-$k]}" "${secs[ninja-$k]}") | $(r "${secs[after-$k]}" "${secs[ninja-$k]}") | $(r "${secs[after-$k]}" "${secs[before-$k]}") |"
  done
done

echo
echo "## mlp check (median of 5 runs; peak RSS)"
echo
echo "| shape | N | build | check_s | peak_MB |"
echo "| --- | ---: | --- | ---: | ---: |"
for shape in chain wide; do
  for n in 10000 $BIG; do
    [ "$n" -gt 0 ] || continue
    d=$WORK/check-$shape-$n
    python3 "$HERE/gen.py" mlp "$shape" "$n" "$d" >/dev/null
    cd "$d"
    for b in before after; do
      bin=$BEFORE; [ $b = after ] && bin=$AFTER
      ss=() kb=0
      for _ in 1 2 3 4 5; do
        read -r s k <<<"$(timed "$bin" check)"
        ss+=("$s"); kb=$k
      done
      echo "| $shape | $n | $b | $(printf '%s\n' "${ss[@]}" | median) | $(awk -v k="$kb" 'BEGIN{printf "%.1f", k/1024}') |"
    done
    cd - >/dev/null
  done
done

if [ "$BIG" -gt 0 ]; then
  echo
  echo "## wide $BIG: cold run, one stage's command changed, no-op (one run each)"
  echo
  echo "| engine | cold_s | cold_MB | one_s | one_MB | noop_s | noop_MB |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
  mid=$((BIG / 2))
  for e in ninja before after; do
    d=$WORK/big-$e
    python3 "$HERE/gen.py" "$(gen_of "$e")" wide "$BIG" "$d" >/dev/null
    cd "$d"
    read -r cs ck <<<"$(timed $(cmd_of "$e"))"
    # One stage's command changed (and the final stage, which reads it, reruns).
    f=pipeline.mlp; [ "$e" = ninja ] && f=build.ninja
    sed -i "s/echo $mid >> out\/$mid.txt/echo $mid changed >> out\/$mid.txt/" "$f"
    read -r os ok <<<"$(timed $(cmd_of "$e"))"
    read -r ns nk <<<"$(timed $(cmd_of "$e"))"
    cd - >/dev/null
    mb() { awk -v k="$1" 'BEGIN{printf "%.1f", k/1024}'; }
    echo "| $e | $cs | $(mb "$ck") | $os | $(mb "$ok") | $ns | $(mb "$nk") |"
  done
fi

[ "${CALLGRIND:-1}" = 1 ] || exit 0
echo
echo "## Instructions of mlp's main thread (callgrind), 1,000 stages"
echo
REPS=1 "$HERE/instructions.sh" "$BEFORE" "$AFTER" -- "chain wide" "1000"
