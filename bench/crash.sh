#!/usr/bin/env bash
# The full crash campaign (issue 17): tests/it/crash.rs's campaign at full size, driving a
# release build of mlp.
#
# usage: bench/crash.sh [ROUNDS]           (default 300)
# env: MLP (default target/release/mlp of this checkout; built if missing),
#      MLP_CRASH_MB (default 4: each of the 16 stages writes about this many MB),
#      MLP_CRASH_SEED (default: from the clock; printed, to replay a campaign).
#
# Each round switches data.txt to one of three versions (a version seen before is restored
# from the run-cache), starts `mlp run -j2`, SIGKILLs its whole session at a random moment
# within the time such a run takes, then checks: the next run succeeds, every output equals
# a clean run's byte for byte, the run after that does nothing, no `.mlp-tmp-`/`.mlp-old-`
# strays or cache tmp/ files are left, no store was moved aside as corrupt, and `mlp runs`
# and `mlp status` work. Prints the kills by where they landed and every failure.
set -eu
cd "$(dirname "$0")/.."
ROUNDS=${1:-300}
MLP=${MLP:-$PWD/target/release/mlp}
[ -x "$MLP" ] || cargo build --release
MLP_CRASH_BIN=$(readlink -f "$MLP") MLP_CRASH_ROUNDS=$ROUNDS MLP_CRASH_MB=${MLP_CRASH_MB:-4} \
  cargo test -p mlp --test it -- --exact crash::campaign --nocapture
