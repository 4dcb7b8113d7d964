#!/bin/sh
# The tester stage of Dockerfile.dual-fuse: go vet, then every test that
# needs no mount. A build has no /dev/fuse, so each mount test skips and
# says why; the summary (packages, failures, skip reasons with counts) is
# printed and kept in the image as /out/test-summary.txt, the full -v log
# as /out/test.log.
#
# Skipped by name, because a build's root is not the root they assume
# (a build container has Docker's default capabilities); `make test` runs
# them on the host:
#   TestExecutorXattrs, TestExecutorRandom  compare the store's executor,
#       which treats uid 0 as privileged, with the kernel: trusted.* xattrs
#       need CAP_SYS_ADMIN
#   TestFramesPriority  renices a bridge back to 0: needs CAP_SYS_NICE (or
#       RLIMIT_NICE 20)
set -u
skip='^(TestExecutorXattrs|TestExecutorRandom|TestFramesPriority)$'
out=/out
mkdir -p "$out"

echo "== go vet ./..."
go vet ./... || exit 1

echo "== go test -short ./... (no /dev/fuse: mount tests skip)"
go test -short -count=1 -p 2 -timeout 10m -v -skip "$skip" ./... >"$out/test.log" 2>&1
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
	echo "-- skipped by name (they need CAP_SYS_ADMIN or CAP_SYS_NICE as root; make test runs them): $skip"
} | tee "$out/test-summary.txt"
exit $rc
