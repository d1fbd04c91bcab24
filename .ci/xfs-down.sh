#!/usr/bin/env bash
# Undo .ci/xfs-up.sh: unmount the XFS image and the tmpfs, delete the image.
XFS_DIR=${MLP_XFS_MOUNT:-/mnt/mlp-xfs}
TMPFS_DIR=${MLP_TMPFS_MOUNT:-/mnt/mlp-tmpfs}
IMG=${MLP_XFS_IMAGE:-/var/tmp/mlp-xfs.img}
mountpoint -q "$XFS_DIR" && umount "$XFS_DIR"
mountpoint -q "$TMPFS_DIR" && umount "$TMPFS_DIR"
rm -f "$IMG"
echo "[xfs-down] unmounted" >&2
