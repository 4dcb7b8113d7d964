#!/usr/bin/env bash
# Installs what Lighthouse's mounts need, or says exactly what is missing.
set -euo pipefail

need=()
command -v fusermount3 >/dev/null 2>&1 || need+=(fuse3)
if [ ${#need[@]} -gt 0 ]; then
	if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
		echo "installing: ${need[*]}"
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
	else
		echo "missing: ${need[*]}. Install it (Debian: sudo apt-get install -y ${need[*]}) and run again." >&2
		exit 1
	fi
fi
if [ ! -c /dev/fuse ]; then
	echo "no /dev/fuse: load the fuse module (sudo modprobe fuse) or, in a container, pass --device /dev/fuse" >&2
	exit 1
fi
if ! command -v go >/dev/null 2>&1; then
	echo "no go toolchain on PATH: install Go 1.26 (or add /usr/local/go/bin to PATH)" >&2
	exit 1
fi
