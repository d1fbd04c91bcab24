#!/usr/bin/env bash
# Engine overhead of mlp next to make, ninja, Snakemake and DVC, on the same pipelines.
#
# usage: bench/peers.sh [ENGINES] [SHAPES] [SIZES]
#   defaults: "make ninja snakemake dvc mlp" "chain wide" "10 100 1000 10000"
#   An engine `mlp=PATH` is mlp built elsewhere (e.g. `mlp mlp=/tmp/mlp-with-fix` compares
#   two builds side by side; ratios are given for every mlp engine).
# env: MLP (default target/release/mlp of this checkout), VENV (dvc + snakemake, from
#      bench/setup.sh), WORK_DIR (default /tmp/mlp-bench-peers), LIMIT (seconds per run,
#      default 900), SLOW_MAX (largest N for dvc and snakemake, default 100),
#      COLD_RUNS (default 3 up to N=1000, 1 above), NICE (default -5: the benchmark runs at
#      a higher priority than background builds; 0 to leave it).
#
# Per engine, shape and N (pipelines from bench/gen.py, every engine with 2 jobs):
#   cold_s   first run in a fresh directory (median of COLD_RUNS fresh directories)
#   noop_s   rerun with nothing changed (median of 5)
#   one_s    rerun after deleting the output of stage N/2 (median of 3)
#   touch_s  rerun after `touch src/input.txt`: mtime changes, content does not (median
#            of 3); content-hashing engines need not run anything, make and ninja rerun
#            everything downstream of it (chain: all N; wide: all N + the final stage)
#   noop_MB  peak resident set of a no-op (GNU time %M; engine and its children)
# Prints markdown to stdout: the absolute figures, then mlp's ratios to make and ninja.
# Raw rows (TSV) accumulate in $WORK_DIR/peers.tsv; progress and failures go to stderr.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
ENGINES=${1:-"make ninja snakemake dvc mlp"}
SHAPES=${2:-"chain wide"}
SIZES=${3:-"10 100 1000 10000"}
MLP=${MLP:-$ROOT/target/release/mlp}
VENV=${VENV:-/tmp/mlp-bench-venv}
WORK=${WORK_DIR:-/tmp/mlp-bench-peers}
LIMIT=${LIMIT:-900}
SLOW_MAX=${SLOW_MAX:-100}
NICE=${NICE:--5}
export PATH="$VENV/bin:$PATH"
mkdir -p "$WORK"
TSV=$WORK/peers.tsv
ERR=$WORK/last-stderr.log
: > "$TSV"

[ "$NICE" != 0 ] && renice -n "$NICE" -p $$ >/dev/null 2>&1

cmd_of() {
  case $1 in
    make) echo "make -s -j2" ;;
    ninja) echo "ninja -j2" ;;
    snakemake) echo "snakemake --cores 2 -q" ;;
    dvc) echo "dvc repro -q" ;;
    mlp) echo "$MLP run -j2" ;;
    mlp=*) echo "${1#mlp=} run -j2" ;;
    *) echo "peers.sh: unknown engine $1" >&2; return 1 ;;
  esac
}
measure() { python3 "$HERE/measure.py" --limit "$LIMIT" --log "$ERR" "$@"; }
median() { sort -g | awk '{v[NR]=$1} END {if (NR) print v[int((NR+1)/2)]}'; }
failed() { case $1 in timeout*|fail*) return 0 ;; *) return 1 ;; esac; }

for s in $SHAPES; do
  for n in $SIZES; do
    # Engines of one case run side by side, and the cold runs round-robin over them, so
    # that background load (this is a shared machine) hits them alike.
    es=()
    for e in $ENGINES; do
      cmd_of "$e" >/dev/null || exit 2
      case $e in snakemake|dvc) [ "$n" -gt "$SLOW_MAX" ] && continue ;; esac
      es+=("$e")
    done
    runs=${COLD_RUNS:-$([ "$n" -le 1000 ] && echo 3 || echo 1)}
    declare -A colds=() bad=()
    for _ in $(seq "$runs"); do
      for e in "${es[@]}"; do
        [ -n "${bad[$e]:-}" ] && continue
        d=$WORK/$(echo "$e" | tr -c 'a-zA-Z0-9\n' _)-$s-$n
        python3 "$HERE/gen.py" "${e%%=*}" "$s" "$n" "$d" || exit 2
        r=$(cd "$d" && measure -- $(cmd_of "$e"))
        if failed "$r"; then
          bad[$e]=$r
          echo "$e $s $n: cold run $r: $(tail -c 400 "$ERR" | tr '\n' ' ')" >&2
        else
          colds[$e]="${colds[$e]:-} ${r%% *}"
        fi
      done
    done
    for e in "${es[@]}"; do
      if [ -n "${bad[$e]:-}" ]; then
        printf '%s\t%s\t%s\t%s\n' "$e" "$s" "$n" "${bad[$e]}" >> "$TSV"
        continue
      fi
      c=$(cmd_of "$e")
      d=$WORK/$(echo "$e" | tr -c 'a-zA-Z0-9\n' _)-$s-$n
      cold=$(printf '%s\n' ${colds[$e]} | median)
      h=$((n / 2))
      noop=$(cd "$d" && measure --runs 5 --rss -- $c)
      one=$(cd "$d" && measure --runs 3 --prepare "rm -f out/$h.txt" -- $c)
      touch=$(cd "$d" && measure --runs 3 --prepare "touch src/input.txt" -- $c)
      set -- $noop
      mb=$(awk -v k="${4:-0}" 'BEGIN {printf "%.1f", k / 1024}')
      row=$(printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s' "$e" "$s" "$n" "$cold" "${noop%% *}" \
        "${one%% *}" "${touch%% *}" "$mb")
      echo "$row" >> "$TSV"
      echo "$row   (cold:${colds[$e]}; noop min ${2:-?} max ${3:-?}; load $(cut -d' ' -f1 /proc/loadavg))" >&2
    done
    unset colds bad
  done
done

python3 - "$TSV" "$ENGINES" <<'PY'
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
cols = ["cold_s", "noop_s", "one_s", "touch_s", "noop_MB"]
order = {e: k for k, e in enumerate(sys.argv[2].split())}
rows.sort(key=lambda r: (order.get(r[0], 99), r[1], int(r[2])))
res = {}
print("| engine | shape | N | " + " | ".join(cols) + " |")
print("| --- | --- | ---: |" + " ---: |" * len(cols))
for r in rows:
    e, s, n = r[:3]
    if len(r) < 8:
        print(f"| {e} | {s} | {n} | {' '.join(r[3:])} |" + " |" * (len(cols) - 1))
        continue
    res[e, s, n] = [float(x) if x[0].isdigit() else None for x in r[3:8]]
    print(f"| {e} | {s} | {n} | " + " | ".join(r[3:8]) + " |")
mlps = [e for e in dict.fromkeys(k[0] for k in res) if e.split("=")[0] == "mlp"]
peers = [p for p in ("make", "ninja") if any(k[0] == p for k in res)]
if mlps and peers:
    print()
    print("mlp's figure divided by the peer's (below 1: mlp is faster or smaller):")
    print()
    short = ["cold", "noop", "one", "touch", "noop MB"]
    head = [f"{c} mlp/{p}" for c in short for p in peers]
    many = len(mlps) > 1
    print(("| mlp " if many else "") + "| shape | N | " + " | ".join(head) + " |")
    print(("| --- " if many else "") + "| --- | ---: |" + " ---: |" * len(head))
    cases = sorted({(e, s, n) for (e, s, n) in res if e in mlps},
                   key=lambda k: (mlps.index(k[0]), k[1], int(k[2])))
    for e, s, n in cases:
        m = res[e, s, n]
        cells = []
        for k in range(len(cols)):
            for p in peers:
                o = res.get((p, s, n))
                cells.append(f"{m[k] / o[k]:.2f}" if o and o[k] and m[k] is not None else "–")
        print((f"| {e} " if many else "") + f"| {s} | {n} | " + " | ".join(cells) + " |")
PY
