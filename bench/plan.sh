#!/usr/bin/env bash
# Planning speed: wall time and peak memory of `mlp check` on generated pipelines.
#
#   bench/plan.sh [N...]        default N: 10000; both shapes (chain, wide) for each N
#
# Builds the release binary, writes each pipeline with bench/gen_pipeline.py into a
# temporary directory, then measures:
#   wall time  the median of RUNS runs (hyperfine if installed, else a python loop)
#   cpu ms     the median user+sys time of 5 runs (/usr/bin/time): steadier than the wall
#              time on a machine that is busy with other work
#   peak RSS   the largest maximum resident set size of /usr/bin/time over the same runs
# and compares wall time and peak RSS with the targets (TARGET_MS, TARGET_MB). Exits 1 if
# one is missed.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
RUNS=${RUNS:-20}
TARGET_MS=${TARGET_MS:-50}
TARGET_MB=${TARGET_MB:-50}
SIZES=("$@")
[ ${#SIZES[@]} -gt 0 ] || SIZES=(10000)

cargo build --release --quiet --bin mlp --manifest-path "$ROOT/Cargo.toml"
MLP=${CARGO_TARGET_DIR:-$ROOT/target}/release/mlp
[ -x /usr/bin/time ] || {
    echo "bench/plan.sh: /usr/bin/time is missing (apt-get install -y time)" >&2
    exit 2
}

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

median_ms() { # median wall time in ms of `mlp -f $1 check`, RUNS runs after 3 warm-ups
    local file=$1
    if command -v hyperfine >/dev/null; then
        hyperfine --style none --warmup 3 --runs "$RUNS" --export-json "$WORK/h.json" \
            "$MLP -f $file check" >/dev/null 2>&1
        python3 -c 'import json,sys; print("%.1f" % (json.load(open(sys.argv[1]))["results"][0]["median"] * 1000))' "$WORK/h.json"
    else
        python3 - "$MLP" "$file" "$RUNS" <<'EOF'
import statistics, subprocess, sys, time
mlp, file, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
def once():
    t = time.perf_counter()
    subprocess.run([mlp, "-f", file, "check"], check=True, capture_output=True)
    return time.perf_counter() - t
for _ in range(3):
    once()
print("%.1f" % (statistics.median(once() for _ in range(runs)) * 1000))
EOF
    fi
}

rss_cpu() { # "PEAK_MB CPU_MS": the largest peak RSS and the median user+sys time of 5 runs
    local file=$1
    for _ in 1 2 3 4 5; do
        /usr/bin/time -f '%M %U %S' "$MLP" -f "$file" check 2>&1 >/dev/null | tail -1
    done | python3 -c '
import statistics, sys
runs = [line.split() for line in sys.stdin if line.strip()]
peak = max(int(r[0]) for r in runs) / 1024
cpu = statistics.median(float(r[1]) + float(r[2]) for r in runs) * 1000
print("%.1f %.0f" % (peak, cpu))'
}

fail=0
printf '%-7s %-6s %9s %10s %8s %8s  %s\n' N shape bytes "median ms" "cpu ms" "peak MB" verdict
for n in "${SIZES[@]}"; do
    for shape in chain wide; do
        dir="$WORK/$shape-$n"
        python3 "$ROOT/bench/gen_pipeline.py" "$n" "$shape" -o "$dir"
        file="$dir/pipeline.mlp"
        # The pipeline must be valid, or this would time the error path.
        out=$("$MLP" -f "$file" check 2>&1) || { echo "$out" >&2; exit 1; }
        ms=$(median_ms "$file")
        read -r mb cpu <<<"$(rss_cpu "$file")"
        verdict=ok
        if python3 -c "import sys; sys.exit(0 if $ms < $TARGET_MS and $mb < $TARGET_MB else 1)"; then
            :
        else
            verdict="MISSED (targets: < $TARGET_MS ms, < $TARGET_MB MB)"
            fail=1
        fi
        printf '%-7s %-6s %9s %10s %8s %8s  %s\n' "$n" "$shape" "$(wc -c <"$file")" "$ms" "$cpu" "$mb" "$verdict"
    done
done
exit $fail
