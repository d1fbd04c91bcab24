#!/bin/sh
# The concurrency test at full size: ROUNDS rounds (default 200) of `mlp run` x2, `mlp watch`
# (stopped with Ctrl-C at a varying moment), `gc`, `runs`, `show`, `diff`, `status`,
# `explain` and `run --dry-run` started together in one workspace
# (tests/it/concurrency.rs; CI runs 4 rounds). Prints, per command, how often it did its
# work and how often it exited 4 naming the holder; fails on any other exit code, a run
# reported successful but missing from `mlp runs`, or a wrong next run.
#
#   bench/concurrency.sh [ROUNDS]
set -eu
rounds=${1:-200}
cd "$(dirname "$0")/.."
start=$(date +%s)
MLP_CONCURRENCY_ROUNDS=$rounds cargo test --quiet --test it \
    concurrency::commands_started_together -- --nocapture 2>&1 |
    grep -E '^concurrency:|test result|panicked|FAILED'
echo "elapsed: $(( $(date +%s) - start )) s for $rounds rounds (debug build)"
