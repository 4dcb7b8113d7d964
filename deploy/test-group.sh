#!/usr/bin/env bash
# Usage: test-group.sh --list | GROUP
# The test packages, in groups that CI runs as separate jobs
# (.github/workflows/compat.yml) and `make test` runs one after the other,
# so the two cannot test different things. The tests cannot be split by
# FUSE library: most of them are differential and mount bazil and go-fuse
# side by side in one test, so the groups are by package; only the two
# adapters' own tests are one library each (bazil, gofuse).
#   --list  prints the group names
#   GROUP   runs that group's tests ($GO test $TESTFLAGS), with its mount
#           points in a temporary directory of its own, and fails if a test
#           left a FUSE mount there
# "other" is every package no other group names, so a new package is tested
# without editing this file.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
TESTFLAGS=${TESTFLAGS:--count=1 -p 1 -race -timeout 25m}

declare -A groups=(
	[bazil]="./primary"
	[gofuse]="./shadow"
	[bridge]="./bridge ./bridgeclient ./fusemount ./sysexec ./storeexec ./internal/..."
	[proxy]="./proxy/... ./proxyserver ./rollout ./front ./harness ./workload"
	[conformance]="./conformance"
	[e2e]="./e2e ./deploy/... ./dashboards ./report ./bench ./cmd/..."
)
order="bazil gofuse bridge proxy other conformance e2e"

if [ "${1:-}" = --list ]; then
	echo $order
	exit 0
fi
group=${1:?usage: test-group.sh --list | GROUP}

named=$(for g in "${!groups[@]}"; do $GO list ${groups[$g]}; done | sort)
dup=$(echo "$named" | uniq -d)
if [ -n "$dup" ]; then
	echo "test-group.sh: in two groups: $dup" >&2
	exit 2
fi
if [ "$group" = other ]; then
	pkgs=$(comm -23 <($GO list ./... | sort) <(echo "$named"))
elif [ -n "${groups[$group]+set}" ]; then
	pkgs=$($GO list ${groups[$group]})
else
	echo "test-group.sh: no group $group (groups: $order)" >&2
	exit 2
fi

tmp=$(mktemp -d /tmp/lighthouse-test.XXXXXX)
rc=0
# shellcheck disable=SC2086 # TESTFLAGS and pkgs are word lists
TMPDIR=$tmp $GO test $TESTFLAGS $pkgs || rc=$?
./deploy/check-mounts.sh "$tmp" || rc=1
rm -rf "$tmp"
exit $rc
