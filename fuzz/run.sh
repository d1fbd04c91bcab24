#!/usr/bin/env bash
# Run fuzz targets for a given time each and print what they did:
#   ./run.sh SECONDS [TARGET...]      (default: parse differential plan check)
# Each target runs from its corpus (./seed.sh fills it) with the dictionary mlp.dict and
# inputs of at most 1024 bytes. A crash stops libFuzzer: its input is kept under
# artifacts/TARGET/, and the target starts again for the time left, so one crash does not
# end the campaign. At the end, one line per target: executions, executions per second of
# wall-clock time and per CPU-second (the fair figure on a loaded machine), coverage (cov:
# edges, ft: features), new corpus inputs and crashes.
# Logs go to $FUZZ_LOGS (default logs/); extra libFuzzer flags in $FUZZ_FLAGS.
# Needs cargo-fuzz; a stable toolchain works with RUSTC_BOOTSTRAP=1 (set here).
set -uo pipefail
cd "$(dirname "$0")"
secs=${1:?usage: run.sh SECONDS [TARGET...]}
shift
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(parse differential plan check)
logs=${FUZZ_LOGS:-logs}
mkdir -p "$logs"
export RUSTC_BOOTSTRAP=1
[ -d corpus/parse ] || ./seed.sh

for t in "${targets[@]}"; do cargo fuzz build -O "$t" || exit 1; done

summary=()
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t" "artifacts/$t"
  end=$(($(date +%s) + secs))
  execs=0 crashes=0 cov=? ft=? added=0 round=0 cpu_ms=0
  while :; do
    left=$((end - $(date +%s)))
    [ "$left" -le 0 ] && break
    round=$((round + 1))
    log="$logs/$t.$(date -u +%Y%m%dT%H%M%S).$round.log"
    # shellcheck disable=SC2086
    /usr/bin/time -o "$log.cpu" -f '%U %S' \
    cargo fuzz run -O "$t" "corpus/$t" -- \
      -dict=mlp.dict -max_len=1024 -use_value_profile=0 -timeout=10 -rss_limit_mb=2048 \
      -max_total_time="$left" -print_final_stats=1 -artifact_prefix="artifacts/$t/" \
      ${FUZZ_FLAGS:-} >"$log" 2>&1
    rc=$?
    c=$(awk '/^[0-9.]+ [0-9.]+$/ {printf "%d", ($1 + $2) * 1000}' "$log.cpu" 2>/dev/null)
    cpu_ms=$((cpu_ms + ${c:-0}))
    n=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    [ -z "$n" ] && n=$(grep -oE '^#[0-9]+' "$log" | tail -1 | tr -d '#')
    execs=$((execs + ${n:-0}))
    a=$(grep -o 'stat::new_units_added: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    added=$((added + ${a:-0}))
    last=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -1)
    if [ -n "$last" ]; then
      cov=$(echo "$last" | awk '{print $2}')
      ft=$(echo "$last" | awk '{print $4}')
    fi
    if [ $rc -ne 0 ]; then
      crashes=$((crashes + 1))
      echo "$t: crash, see $log: $(grep -o 'Test unit written to .*' "$log" | tail -1)" >&2
      # A target that fails at once (a build error, a crash in the seeds) would loop.
      [ "${n:-0}" -lt 100 ] && break
    fi
  done
  rate=$((execs / (secs > 0 ? secs : 1)))
  cpu_rate=$((execs * 1000 / (cpu_ms > 0 ? cpu_ms : 1)))
  summary+=("$(printf '%-13s %11d execs %7d exec/s %7d exec/CPU-s  cov %5s  ft %6s  new %5d  crashes %d' \
    "$t" "$execs" "$rate" "$cpu_rate" "$cov" "$ft" "$added" "$crashes")")
done
echo
printf '%s\n' "${summary[@]}" | tee -a "$logs/summary.txt"
