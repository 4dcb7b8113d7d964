#!/bin/sh
# The tester stage of Dockerfile.dual-fuse: go vet, then every test that
# needs no mount. A build has no /dev/fuse, so each mount test skips and
# says why; the summary (packages, failures, skip reasons with counts) is
# printed and kept in the image as /out/test-summary.txt, the full -v log
# as /out/test.log.
# Tests that need a capability a build's root lacks (Docker's default set
# has neither CAP_SYS_ADMIN nor CAP_SYS_NICE) skip themselves and say so;
# `make test` runs them on the host.
set -u
out=/out
mkdir -p "$out"

echo "== go vet ./..."
go vet ./... || exit 1

echo "== go test -short ./... (no /dev/fuse: mount tests skip)"
go test -short -count=1 -p 2 -timeout 10m -v ./... >"$out/test.log" 2>&1
rc=$?
{
	grep -E '^(ok|FAIL|\?)\s' "$out/test.log"
	if [ $rc -ne 0 ]; then
		# go test -v prints a test's output before its --- FAIL line.
		echo "-- failures:"
		awk '/^=== (RUN|CONT|NAME)/ { buf = ""; next }
			/^ *--- FAIL/ { printf "%s%s\n", buf, $0; buf = ""; next }
			/^ *--- (PASS|SKIP)/ { buf = ""; next }
			{ buf = buf $0 "\n" }' "$out/test.log" | head -n 200
	fi
	# ... and a skip's reason before its --- SKIP line.
	echo "-- skipped tests, by reason:"
	awk '/^ *[A-Za-z0-9_]+\.go:[0-9]+: / { last = $0; sub(/^ *[A-Za-z0-9_]+\.go:[0-9]+: /, "", last); next }
		/^ *--- SKIP:/ { if (last != "") print last; last = ""; next }
		/^=== RUN/ { last = "" }' "$out/test.log" |
		sort | uniq -c | sort -rn
} | tee "$out/test-summary.txt"
exit $rc
