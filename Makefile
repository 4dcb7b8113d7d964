# Lighthouse: the dual-FUSE shadow harness.
#
#   make run    the whole harness on this machine (both bridges, the proxy, the
#               front mount) driven by the built-in workload; prints the report
#   make test   every test, with both FUSE libraries really mounted
#   make lint   gofmt, go vet, staticcheck, actionlint (the CI workflow)
#
# Both install what they need (fuse3) when run as root on Debian, and say
# what to install otherwise.

GO          ?= go
VERSION     ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS     := -X main.version=$(VERSION)
BIN         := bin/lighthouse
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
ACTIONLINT  := github.com/rhysd/actionlint/cmd/actionlint@v1.7.12

# -count=1: never reuse cached results (mount behaviour depends on the kernel).
# -p 1: one package at a time; mount tests and 2-core machines do not mix well.
# -race: the store, the executors and both adapters are concurrent.
# -timeout: a hung FUSE connection is aborted by the tests' watchdogs long
#  before this; it is the last resort.
TESTFLAGS   ?= -count=1 -p 1 -race -timeout 25m

.PHONY: all build deps test-deps run run-rollback compat-run test test-groups lint bench bench-check compat docker-test clean

all: build

deps:
	@./deploy/install-deps.sh run

test-deps:
	@./deploy/install-deps.sh test

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/lighthouse

# The whole harness on one machine: a bazil and a go-fuse bridge behind the
# proxy, the built-in workload through the proxy's API, then the report.
# Exits 1 on a divergence beyond the allowlist. `bin/lighthouse up` without
# --workload is the interactive mode.
run: deps build
	./$(BIN) up --dir .lighthouse --workload

# The rollback demo: start in canary, advance every 1500 quiet candidate
# ops, and let the go-fuse bridge start corrupting 2% of its reads 12 s in:
# watch the rollout advance, the divergence rise, and the automatic
# rollback, with its reason, in the report (whose verdict is then FAIL).
run-rollback: deps build
	-./$(BIN) up --dir .lighthouse --workload --phase canary --advance-after 1500 --inject-divergence 0.02 --inject-after 12s

# The conformance cases on both libraries side by side, with the table.
compat-run: deps build
	./$(BIN) compat --dir .lighthouse/compat

# The tests run in groups of packages (deploy/test-group.sh says which and
# why not by FUSE library), one after the other here and as separate jobs in
# CI (.github/workflows/compat.yml), which calls the same `make test-GROUP`.
# Each group puts its mount points in a temporary directory of its own, so
# that a leaked mount is found (and fails the run) without touching mounts
# of anything else running on the machine. test-conformance also fails when
# docs/compatibility.md differs from what this run regenerates (the diff is
# in the log; `make compat` rewrites it).
TEST_GROUPS := $(shell ./deploy/test-group.sh --list)

test: test-deps
	$(GO) vet ./...
	@rc=0; for g in $(TEST_GROUPS); do \
		echo "== make test-$$g"; $(MAKE) --no-print-directory test-$$g || rc=1; \
	done; exit $$rc

# The group names, for scripts and the workflow's check (deploy/ci_test.go).
test-groups:
	@echo $(TEST_GROUPS)

test-%: test-deps
	@GO=$(GO) TESTFLAGS="$(TESTFLAGS)" ./deploy/test-group.sh $*

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...
	$(GO) run $(ACTIONLINT) -color=false

# Go micro-benchmarks of the hot paths (ns/op and allocations), then a
# brief `lighthouse bench` of every target (docs/performance.md, "Benchmark
# suite"; the full run is `bin/lighthouse bench`).
bench: build
	$(GO) test -run '^$$' -bench . -benchmem -count=1 ./store ./sysexec ./compare ./bench
	./$(BIN) bench --iterations 200 --warmup 20 --concurrency 1,4 --seq-size 16777216

# The benchmark regression check (CI): a short `lighthouse bench` (300
# iterations after 30 warm-up, one client, the ten small ops, the targets
# the ratios need; under 2 minutes) whose ratios of medians (go-fuse/bazil,
# proxy/direct and mount/tmpdir, per op) must not worsen by more than
# BENCH_THRESHOLD (relative) against bench/baseline.json, in the run and
# again when the worsened ones are re-measured (--confirm). --cpus 0 runs the
# bench and its children on one CPU: no cross-CPU wake-ups, the largest
# source of run-to-run spread on shared machines. The threshold is above
# the spread measured on the 2-core CI machines (docs/performance.md). A
# baseline is machine-specific; refresh it there with
#   ./bin/lighthouse bench $(BENCH_CHECK) --json bench/baseline.json
BENCH_CHECK     := --cpus 0 --iterations 300 --warmup 30 --concurrency 1 \
	--ops create,write,read,stat,readdir,rename,unlink,mkdir,rmdir,setattr \
	--targets tmpdir,bazil-mount,gofuse-mount,bazil-bridge,gofuse-bridge,proxy-mirror,proxy-nomirror
BENCH_THRESHOLD ?= 1.5
# The geometric mean of a family's ratios (one definition over the ten
# ops) moved by at most 10% between runs where single ratios moved by 88%:
# it catches a cost added to every op of a layer (200 us in the code both
# bridges share: +45-70%) that no single ratio shows past 150%.
BENCH_FAMILY_THRESHOLD ?= 0.3
bench-check: deps build
	./$(BIN) bench $(BENCH_CHECK) --progress=false --compare bench/baseline.json --threshold $(BENCH_THRESHOLD) --family-threshold $(BENCH_FAMILY_THRESHOLD) --confirm 1

# Regenerate docs/compatibility.md from a real run of the conformance suite.
compat: deps
	$(GO) test -count=1 ./conformance -run 'TestConformance$$' -update

# The containers with a real Docker engine (docs/containers.md): builds
# every stage of Dockerfile.dual-fuse (and, where no registry can be
# reached, the two public base images, locally), starts
# docker-compose.dual-fuse.yml with the migration-test job, checks from
# outside what the bridge containers run, as whom, with which capabilities,
# seccomp profile, read-only root, mount and limits, and that `down` leaves
# nothing. As root: installs Docker's engine and compose from Debian when
# missing and starts dockerd when none answers. Under 4 minutes on 2 cores
# from nothing (docs/containers.md, "Measured").
docker-test:
	./deploy/docker/docker-test.sh

clean:
	rm -rf bin .lighthouse
