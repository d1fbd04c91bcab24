#!/usr/bin/env bash
# For tests/it/artifacts.rs (root only): a 512 MB XFS image with reflinks, loop-mounted at
# /mnt/mlp-xfs, and a small tmpfs at /mnt/mlp-tmpfs. Prints the exports the tests read.
# Undone by .ci/xfs-down.sh.
set -euo pipefail
XFS_DIR=${MLP_XFS_MOUNT:-/mnt/mlp-xfs}
TMPFS_DIR=${MLP_TMPFS_MOUNT:-/mnt/mlp-tmpfs}
IMG=${MLP_XFS_IMAGE:-/var/tmp/mlp-xfs.img}
if ! command -v mkfs.xfs >/dev/null; then
  apt-get update -q >&2 && apt-get install -y -q xfsprogs >&2
fi
mkdir -p "$XFS_DIR" "$TMPFS_DIR"
if ! mountpoint -q "$XFS_DIR"; then
  rm -f "$IMG"
  truncate -s 512M "$IMG"
  mkfs.xfs -q -f -m reflink=1 "$IMG" >&2
  mount -o loop "$IMG" "$XFS_DIR"
fi
if ! mountpoint -q "$TMPFS_DIR"; then
  mount -t tmpfs -o size=256M tmpfs "$TMPFS_DIR"
fi
echo "[xfs-up] $XFS_DIR (xfs, reflink) and $TMPFS_DIR (tmpfs) mounted" >&2
echo "export MLP_XFS_DIR=$XFS_DIR MLP_TMPFS_DIR=$TMPFS_DIR"
