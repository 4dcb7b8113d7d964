#!/usr/bin/env bash
# Usage: install-deps.sh [run|test]
# Installs what Lighthouse needs, or says exactly what is missing:
#   run   fuse3 (fusermount3, for bazil's mounts)
#   test  that, plus Prometheus and Alertmanager (the end-to-end tests run
#         real ones), Chromium (the HTML report's test loads the page headless)
#         and bindfs (the programs benchmark's passthrough FUSE column)
set -euo pipefail
what=${1:-test}

need=()
command -v fusermount3 >/dev/null 2>&1 || need+=(fuse3)
if [ "$what" = test ]; then
# Debian's Prometheus server: the end-to-end tests (e2e/) run their own
# /usr/bin/prometheus on a free port to scrape the bridges and the proxy
# (the package's own service on :9090, if the init system starts it, is
# not used).
[ -x /usr/bin/prometheus ] || need+=(prometheus)
# Debian's Alertmanager: the fleet test (e2e) routes the fleet rollback
# alert of a real Prometheus through a real Alertmanager to the proxies.
[ -x /usr/bin/prometheus-alertmanager ] || need+=(prometheus-alertmanager)
# Debian's Chromium: the HTML report's test loads the page headless.
[ -x /usr/bin/chromium ] || need+=(chromium)
# bindfs, libfuse's C passthrough: e2e TestFrontPrograms (LIGHTHOUSE_BENCH=1)
# times each program on it too, the floor a FUSE mount costs a program.
command -v bindfs >/dev/null 2>&1 || need+=(bindfs)
fi
if [ ${#need[@]} -gt 0 ]; then
	if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
		echo "installing: ${need[*]}"
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
	else
		echo "missing: ${need[*]}. Install it (Debian: sudo apt-get install -y --no-install-recommends ${need[*]}) and run again." >&2
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
