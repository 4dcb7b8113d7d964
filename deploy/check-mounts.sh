#!/usr/bin/env bash
# Usage: check-mounts.sh DIR
# Fails if a FUSE mount is left below DIR (a test leaked it) and detaches it,
# so a leak fails this run instead of breaking the next one. Only DIR is
# looked at: other runs' live mounts elsewhere are not ours to touch.
set -euo pipefail
dir=$(realpath "$1")
leaked=$(awk -v d="$dir/" '$3 ~ /^fuse/ && index($2, d) == 1 {print $2}' /proc/mounts)
if [ -n "$leaked" ]; then
	echo "leaked FUSE mounts (now detached):" $leaked >&2
	for m in $leaked; do umount -l "$m" 2>/dev/null || fusermount3 -uz "$m" || true; done
	exit 1
fi
echo "no FUSE mount left behind"
