#!/usr/bin/env bash
# mlp's content hashing next to b3sum, on one big input (page cache warm for both).
#
# usage: bench/hash.sh
# env: MLP (default target/release/mlp of this checkout), HASH_DIR (default
#      /tmp/mlp-bench-hash; holds the input, made once with `head -c SIZE /dev/urandom`),
#      SIZE (default 2G), REPS (default 5), NICE (default -5, 0 to leave the priority).
#
# Two one-stage workspaces whose stage reads one input and writes a tiny output:
# big/ reads the SIZE file, small/ a 5-byte file. mlp's first run of big/ minus its first
# run of small/ (medians) is what hashing the big input cost; throughput is SIZE over that,
# compared with `b3sum --num-threads 2` (mlp hashes on a rayon pool of one thread per core:
# 2 here). Then the no-op with the big input (must only stat it) and the rerun after
# `touch` (mtime changed: the input is hashed again, nothing runs).
# Prints markdown to stdout.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
MLP=${MLP:-$(dirname "$HERE")/target/release/mlp}
DIR=${HASH_DIR:-/tmp/mlp-bench-hash}
SIZE=${SIZE:-2G}
REPS=${REPS:-5}
NICE=${NICE:--5}
B3SUM=$(command -v b3sum || echo "$HOME/.cargo/bin/b3sum")
[ "$NICE" != 0 ] && renice -n "$NICE" -p $$ >/dev/null 2>&1
m() { python3 "$HERE/measure.py" "$@"; }

mkdir -p "$DIR/big" "$DIR/small"
big=$DIR/big/big.bin
want=$(numfmt --from=iec "$SIZE")
if [ ! -f "$big" ] || [ "$(stat -c %s "$big")" != "$want" ]; then
  echo "writing $big ($SIZE of /dev/urandom)" >&2
  head -c "$SIZE" /dev/urandom > "$big.tmp" && mv "$big.tmp" "$big"
fi
echo seed > "$DIR/small/small.bin"
for w in big small; do
  cat > "$DIR/$w/pipeline.mlp" <<MLP
pipeline "hash"

stage h {
  in "$w.bin"
  out o = "out/h.txt"
  run "mkdir -p out && echo done > out/h.txt"
}
MLP
done
warm="cat $big > /dev/null"
sh -c "$warm"

cat_r=$(m --runs "$REPS" -- cat "$big")      # stdout is discarded by measure.py
b3_2=$(m --runs "$REPS" --prepare "$warm" -- "$B3SUM" --num-threads 2 "$big")
b3_1=$(m --runs "$REPS" --prepare "$warm" -- "$B3SUM" --num-threads 1 "$big")
first=$(cd "$DIR/big" && m --runs "$REPS" --prepare "rm -rf .mlp out && $warm" -- "$MLP" run -j2)
base=$(cd "$DIR/small" && m --runs "$REPS" --prepare "rm -rf .mlp out && $warm" -- "$MLP" run -j2)
cd "$DIR/big"
"$MLP" run -j2 >/dev/null 2>&1                 # settle: the next runs are plain no-ops
noop=$(m --runs $((REPS * 2)) --rss -- "$MLP" run -j2)
touchr=$(m --runs "$REPS" --prepare "touch big.bin && $warm" -- "$MLP" run -j2)

python3 - "$want" "$cat_r" "$b3_2" "$b3_1" "$first" "$base" "$noop" "$touchr" <<'PY'
import sys
size = int(sys.argv[1])
cat_r, b3_2, b3_1, first, base, noop, touchr = [a.split() for a in sys.argv[2:]]
med = lambda r: float(r[0])
gbps = lambda s: size / s / 1e9
hash_s = med(first) - med(base)
touch_hash = med(touchr) - med(noop)
gib = size / 2**30
print(f"| what ({gib:g} GiB input, page cache warm) | wall (median) | min–max | throughput |")
print("| --- | ---: | ---: | ---: |")
def row(name, r, s=None):
    s = med(r) if s is None else s
    print(f"| {name} | {med(r):.3f} s | {float(r[1]):.3f}–{float(r[2]):.3f} s | "
          + (f"{gbps(s):.2f} GB/s |" if s > 0 else "– |"))
row("`cat` (read only)", cat_r)
row("`b3sum --num-threads 2`", b3_2)
row("`b3sum --num-threads 1`", b3_1)
row("mlp first run (hash + run + record)", first)
print(f"| mlp first run, 5-byte input (the rest of a first run) | {med(base):.3f} s | "
      f"{float(base[1]):.3f}–{float(base[2]):.3f} s | – |")
print(f"| **mlp hashing** (difference of the two) | {hash_s:.3f} s | | {gbps(hash_s):.2f} GB/s |")
row("mlp rerun after `touch` (rehash, nothing runs)", touchr)
print(f"| mlp no-op with the input | {med(noop) * 1000:.1f} ms | "
      f"{float(noop[1]) * 1000:.1f}–{float(noop[2]) * 1000:.1f} ms | peak {int(noop[3]) / 1024:.1f} MB |")
print()
ratio = med(b3_2) / hash_s
print(f"- mlp hashing throughput ÷ b3sum (2 threads): **{ratio:.0%}** (target ≥ 90%); "
      f"whole first run ÷ b3sum: {med(b3_2) / med(first):.0%}.")
print(f"- no-op with the {gib:g} GiB input: **{med(noop) * 1000:.1f} ms** (target ≤ 20 ms).")
PY
