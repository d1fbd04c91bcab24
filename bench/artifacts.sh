#!/usr/bin/env bash
# Gigabyte outputs (issue 12): restoring and caching a SIZE_MB output with mlp, side by side
# with the command that does the same by hand, in one run. Root (mounts an XFS image).
#
# usage: sudo bench/artifacts.sh [SIZE_MB]        (default 1024)
# env: MLP (default target/release/mlp; several binaries separated by spaces are measured one
#      after the other in the same run, e.g. MLP="before/mlp after/mlp"), WORK (default
#      /var/tmp/mlp-bench-artifacts, on the root filesystem: ext4 here), REPS (restores
#      measured per case, default 6), CASES (default "xfs-reflink ext4-copy ext4-link"),
#      QUIET (seconds of pause after the sync before each timed step, default 2)
#
# Cases (every restore alternates between two versions of the output, so each one replaces
# a SIZE_MB file, as "change a param, change it back" does; warm page cache):
#   xfs-reflink  copy mode on a loop-mounted XFS image (mkfs.xfs -m reflink=1)
#                peer: cp --reflink=always OBJECT NEW
#   ext4-copy    copy mode on ext4 (copy_file_range)          peer: cp OBJECT NEW
#   ext4-link    link mode on ext4                             peer: ln OBJECT NEW
# Per case: the first run (command + hash + cache) beside the command alone, split by the
# run's own event log (`--json`): the stage's span (command, then hashing its output, which
# any content-addressed tool must do once) and what the run took after the stage ended
# (copying the output into the object cache, the record, the snapshot); then the
# median restore (`mlp run --set n=..`, the whole process) beside the peer's median, their
# ratio, and mlp's peak RSS (GNU time %M) during restore and caching. Wall times are taken
# in ms around the process; every timed step (mlp's and the peer's) starts after `sync` and
# a pause (QUIET seconds, default 2: the detached `rm` of a replaced output finishing), so
# that neither pays for writeback of the other's dirty pages (a 1 GiB file just written
# keeps ext4's journal busy for a second or more), and the peer's copy is kept until after
# mlp's next restore, as mlp's old output is, so that both leave a file to write back.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
SIZE_MB=${1:-1024}
MLP=${MLP:-$ROOT/target/release/mlp}
WORK=${WORK:-/var/tmp/mlp-bench-artifacts}
REPS=${REPS:-6}
XFS_MNT=$WORK/xfs
IMG=$WORK/xfs.img

cleanup() { mountpoint -q "$XFS_MNT" && umount "$XFS_MNT"; rm -f "$IMG"; }
trap cleanup EXIT
mkdir -p "$WORK" "$XFS_MNT"
command -v mkfs.xfs >/dev/null || { apt-get update -q && apt-get install -y -q xfsprogs; } >&2
if ! mountpoint -q "$XFS_MNT"; then
  rm -f "$IMG"; truncate -s $((SIZE_MB * 5 + 512))M "$IMG"
  mkfs.xfs -q -f -m reflink=1 "$IMG"; mount -o loop "$IMG" "$XFS_MNT"
fi

# seconds (ms resolution) and peak KB of a command, after a sync: "S KB"
timed() {
  sync; sleep "${QUIET:-2}"
  local s e; s=$(date +%s%N)
  /usr/bin/time -f "%M" -o "$WORK/t" "$@" >/dev/null 2>&1
  e=$(date +%s%N)
  echo "$(awk -v n=$((e - s)) 'BEGIN{printf "%.3f", n / 1e9}') $(cat "$WORK/t")"
}
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

echo "| case | mlp | first run (cmd+hash+cache) | command alone | stage (cmd+hash) | after the stage (cache+record) | restore median | peer median | ratio | restore peak RSS | caching peak RSS |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
bench_case() { # name dir mode peer
  local name=$1 dir=$2 mode=$3 peer=$4 ws
  ws=$(mktemp -d "$dir/ws.XXXX")
  head -c "${SIZE_MB}M" /dev/urandom >"$ws/src1.bin"
  { cat "$ws/src1.bin"; echo 2; } >"$ws/src2.bin"
  cat >"$ws/pipeline.mlp" <<MLP
cache $mode
param n = 1
stage big {
  params n
  out "big.bin"
  run "cp src\${params.n}.bin big.bin"
}
MLP
  cd "$ws"
  read -r cmd_s _ < <(timed cp src1.bin cmd.bin); rm -f cmd.bin
  read -r first_s first_kb < <(timed sh -c "exec '$MLP' run --json >'$WORK/ev.json'")
  local split; split=$(python3 - "$WORK/ev.json" <<'PY'
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
st = next(e for e in ev if "ended_ms" in e)
fin = next(e for e in ev if "elapsed_ms" in e)
span = st["ended_ms"] - st["started_ms"]
print("%.3f %.3f" % (span / 1e3, (fin["elapsed_ms"] - span) / 1e3))
PY
)
  local stage_s after_s; read -r stage_s after_s <<<"$split"
  "$MLP" run -q --set n=2
  local obj; obj=$(find .mlp/cache/objects -type f ! -name '*.dir' -size +1M | head -1)
  : >"$WORK/r"; : >"$WORK/p"; local peak=0
  for i in $(seq 1 "$REPS"); do
    local n=$(( i % 2 + 1 ))
    read -r s kb < <(timed "$MLP" run -q --set n=$n)
    echo "$s" >>"$WORK/r"; [ "$kb" -gt "$peak" ] && peak=$kb
    case $peer in
      reflink) read -r ps _ < <(timed cp --reflink=always "$obj" "peer$i") ;;
      copy) read -r ps _ < <(timed cp "$obj" "peer$i") ;;
      link) read -r ps _ < <(timed ln "$obj" "peer$i") ;;
    esac
    echo "$ps" >>"$WORK/p"; rm -f "peer$((i - 1))"
  done
  cmp -s big.bin src$(( REPS % 2 + 1 )).bin || echo "WARNING: $name restored wrong bytes" >&2
  local r p; r=$(median <"$WORK/r"); p=$(median <"$WORK/p")
  echo "| $name | $LABEL | ${first_s} s | ${cmd_s} s | ${stage_s} s | ${after_s} s | ${r} s | ${p} s | $(awk -v r="$r" -v p="$p" 'BEGIN{ if (p > 0) printf "%.2fx", r/p; else print "peer 0.000 s" }') | $((peak / 1024)) MB | $((first_kb / 1024)) MB |"
  cd /; rm -rf "$ws"
}
BINS=$MLP
for MLP in $BINS; do
  LABEL=$(basename "$(dirname "$MLP")")/$(basename "$MLP")
  for c in ${CASES:-xfs-reflink ext4-copy ext4-link}; do
    case $c in
      xfs-reflink) bench_case xfs-reflink "$XFS_MNT" copy reflink ;;
      ext4-copy) bench_case ext4-copy "$WORK" copy copy ;;
      ext4-link) bench_case ext4-link "$WORK" link link ;;
    esac
  done
done
echo
echo "$(date -u +%F) ${SIZE_MB} MiB, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
