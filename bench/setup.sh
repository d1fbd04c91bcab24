#!/usr/bin/env bash
# Install the peers the benchmark compares mlp with. Idempotent: re-running only checks.
#   make (preinstalled), ninja, GNU time, hyperfine   (apt; needs root)
#   dvc, snakemake                                    (venv $VENV, default /tmp/mlp-bench-venv)
#   b3sum                                             (cargo install, the blake3 reference)
set -euo pipefail
VENV=${VENV:-/tmp/mlp-bench-venv}

need_apt=()
command -v ninja     >/dev/null || need_apt+=(ninja-build)
[ -x /usr/bin/time ]            || need_apt+=(time)
command -v hyperfine >/dev/null || need_apt+=(hyperfine)
if [ ${#need_apt[@]} -gt 0 ]; then
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need_apt[@]}"
fi

if [ ! -x "$VENV/bin/dvc" ] || [ ! -x "$VENV/bin/snakemake" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q dvc snakemake
fi

command -v b3sum >/dev/null || [ -x "$HOME/.cargo/bin/b3sum" ] || cargo install b3sum --locked

echo "make      $(make --version | head -1)"
echo "ninja     $(ninja --version)"
echo "hyperfine $(hyperfine --version)"
echo "time      $(/usr/bin/time --version 2>&1 | head -1)"
echo "dvc       $("$VENV/bin/dvc" --version)"
echo "snakemake $("$VENV/bin/snakemake" --version)"
echo "b3sum     $("${HOME}/.cargo/bin/b3sum" --version 2>/dev/null || b3sum --version)"
