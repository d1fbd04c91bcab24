#!/usr/bin/env bash
# Seed the fuzz corpora from the repository: every .mlp file, every params file and
# fixture, and every ```mlp block of the book. One input per file, named by its path.
#   corpus/{parse,differential,check}/  the .mlp texts (and the book's blocks)
#   corpus/plan/                        pipeline NUL include NUL params, per directory
# Safe to re-run: it only adds files.
set -euo pipefail
cd "$(dirname "$0")"
repo=..
name() { echo "$1" | sed 's#^\.\./##; s#/#_#g'; }

mkdir -p corpus/parse corpus/differential corpus/check corpus/plan
mlp_files=$(cd "$repo" && git ls-files '*.mlp' | grep -v '^fuzz/')
for f in $mlp_files; do
  for t in parse differential check; do cp "$repo/$f" "corpus/$t/$(name "$f")"; done
done

# The book's ```mlp blocks, one file each.
for md in "$repo"/book/src/*.md; do
  awk -v out="corpus/parse/book_$(basename "$md" .md)_" '
    /^```mlp/ { n++; f = out n ".mlp"; inblock = 1; next }
    /^```/    { inblock = 0; next }
    inblock   { print > f }
  ' "$md"
done
for f in corpus/parse/book_*; do cp "$f" corpus/differential/; cp "$f" corpus/check/; done

# Plan: each pipeline with another .mlp of its directory as the include and its params
# file, under the names the target lays over its root (inc.mlp, params.yaml/toml/json).
params_files=$(cd "$repo" && git ls-files | grep -E '(^|/)params\.(yaml|yml|toml|json|ini)$' || true)
for f in $mlp_files; do
  dir=$(dirname "$f")
  inc=$(cd "$repo" && git ls-files "$dir" | grep '\.mlp$' | grep -vx "$f" | head -1 || true)
  par=$(echo "$params_files" | grep "^$dir/params\." | head -1 || true)
  {
    sed -E 's#include "[^"]*"#include "inc.mlp"#' "$repo/$f"
    printf '\0'
    [ -n "$inc" ] && cat "$repo/$inc"
    printf '\0'
    [ -n "$par" ] && cat "$repo/$par"
  } > "corpus/plan/$(name "$f")"
done
# Params files alone, as the params part.
for p in $params_files; do
  { printf 'params "%s"\nstage s { params x run "true" }\0\0' "$(basename "$p")"; cat "$repo/$p"; } \
    > "corpus/plan/params_$(name "$p")"
done

for t in parse differential check plan; do
  echo "corpus/$t: $(find "corpus/$t" -type f | wc -l) inputs"
done
