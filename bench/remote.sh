#!/usr/bin/env bash
# The team cache against DVC, side by side in one run: push and pull of (a) one stage
# output directory of 10,000 files of 1-4 KB and (b) one 1 GiB file, to the same moto S3
# server and to the same kind of directory remote, with equal -j. Prints wall seconds,
# CPU seconds (user+sys) and the ratio DVC/mlp (above 1: mlp is faster).
#
#   MLP_S3_ENDPOINT=http://127.0.0.1:5055 bash bench/remote.sh
#   CASES="small" REMOTES="dir" JOBS=8 MLP=target/release/mlp bash bench/remote.sh
#
# Needs `dvc[s3]` (bench/setup.sh's venv or MLP_CI_VENV) and, for the S3 rows, a moto
# server (.ci/moto-up.sh; bucket mlp-test). DVC gets the same credentials and endpoint.
set -euo pipefail
cd "$(dirname "$0")/.."
MLP=$(realpath "${MLP:-target/release/mlp}")
VENV=${MLP_CI_VENV:-/opt/mlp-ci-venv}
DVC=${DVC:-$VENV/bin/dvc}
JOBS=${JOBS:-8}
CASES=${CASES:-"small big"}
REMOTES=${REMOTES:-"dir s3"}
ENDPOINT=${MLP_S3_ENDPOINT:-http://127.0.0.1:5055}
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench-secret AWS_REGION=us-east-1
export AWS_ENDPOINT_URL=$ENDPOINT
ROOT=$(mktemp -d /tmp/mlp-bench-remote.XXXXXX)
trap 'rm -rf "$ROOT"' EXIT
TAG=$(date +%s)-$$

# `secs CMD...`: run in the current directory, print "wall cpu".
secs() {
  /usr/bin/time -f '%e %U %S' -o "$ROOT/time" "$@" >"$ROOT/out" 2>&1 || { cat "$ROOT/out" >&2; return 1; }
  awk '{printf "%.2f %.2f", $1, $2 + $3}' "$ROOT/time"
}

make_data() { # make_data CASE DIR
  case $1 in
    small) python3 - "$2" <<'PY'
import os, random, sys
random.seed(7)
d = os.path.join(sys.argv[1], "data")
for i in range(10000):
    sub = os.path.join(d, f"{i // 1000:02d}")
    os.makedirs(sub, exist_ok=True)
    with open(os.path.join(sub, f"f{i:05d}.txt"), "wb") as f:
        f.write(random.randbytes(random.randint(1024, 4096)))
PY
    ;;
    big) mkdir -p "$2/data" && head -c 1073741824 /dev/urandom >"$2/data/big.bin" ;;
  esac
}

printf '%-6s %-4s %-5s %10s %10s %10s %10s %8s\n' case rem op mlp_wall mlp_cpu dvc_wall dvc_cpu dvc/mlp
for case in $CASES; do
  SRC=$ROOT/src-$case
  make_data "$case" "$SRC"
  for rem in $REMOTES; do
    if [ "$rem" = dir ]; then
      MURL=$ROOT/remote-mlp-$case; DURL=$ROOT/remote-dvc-$case
    else
      MURL=s3://mlp-test/bench-$TAG-mlp-$case; DURL=s3://mlp-test/bench-$TAG-dvc-$case
    fi
    # mlp: a stage that moves the prepared data into its output.
    A=$ROOT/mlp-a-$case-$rem; B=$ROOT/mlp-b-$case-$rem
    mkdir -p "$A"
    printf 'pipeline "bench"\n\nstage gen {\n  out d = "data"\n  run "cp -r %s/data data"\n}\n' "$SRC" >"$A/pipeline.mlp"
    (cd "$A" && "$MLP" -q run >/dev/null)
    mkdir -p "$B" && cp "$A/pipeline.mlp" "$B/"
    mp=$(cd "$A" && secs "$MLP" push -j "$JOBS" --remote "$MURL")
    ml=$(cd "$B" && secs "$MLP" pull -j "$JOBS" --remote "$MURL")
    cmp -s <(cd "$A/data" && find . -type f | sort | xargs md5sum) <(cd "$B/data" && find . -type f | sort | xargs md5sum) || { echo "mlp pull differs" >&2; exit 1; }
    # DVC: the same directory, `dvc add`ed.
    C=$ROOT/dvc-a-$case-$rem; D=$ROOT/dvc-b-$case-$rem
    mkdir -p "$C" && cp -r "$SRC/data" "$C/data"
    (cd "$C" && git init -q && "$DVC" init -q && "$DVC" add -q data >/dev/null &&
      "$DVC" remote add -q -d r "$DURL" &&
      { [ "$rem" = dir ] || "$DVC" remote modify r endpointurl "$ENDPOINT"; })
    dp=$(cd "$C" && secs "$DVC" push -j "$JOBS")
    mkdir -p "$D" && cp -r "$C/.dvc" "$C/data.dvc" "$D/" && rm -rf "$D/.dvc/cache" "$D/.dvc/tmp"
    (cd "$D" && git init -q)
    dl=$(cd "$D" && secs "$DVC" pull -j "$JOBS")
    cmp -s <(cd "$C/data" && find . -type f | sort | xargs md5sum) <(cd "$D/data" && find . -type f | sort | xargs md5sum) || { echo "dvc pull differs" >&2; exit 1; }
    for op in push pull; do
      if [ $op = push ]; then m=$mp; d=$dp; else m=$ml; d=$dl; fi
      read -r mw mc <<<"$m"; read -r dw dc <<<"$d"
      printf '%-6s %-4s %-5s %10s %10s %10s %10s %8.1f\n' "$case" "$rem" "$op" "$mw" "$mc" "$dw" "$dc" "$(echo "$dw / ($mw + 0.005)" | bc -l)"
    done
  done
  rm -rf "$SRC"
done
