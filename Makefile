# Lighthouse: the dual-FUSE shadow harness.
#
#   make run    mount the store through bazil and go-fuse side by side, run the
#               conformance cases on both, print the comparison table
#   make test   every test, with both FUSE libraries really mounted
#
# Both install what they need (fuse3) when run as root on Debian, and say
# what to install otherwise.

GO          ?= go
VERSION     ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS     := -X main.version=$(VERSION)
BIN         := bin/lighthouse
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

# -count=1: never reuse cached results (mount behaviour depends on the kernel).
# -p 1: one package at a time; mount tests and 2-core machines do not mix well.
# -race: the store, the executors and both adapters are concurrent.
# -timeout: a hung FUSE connection is aborted by the tests' watchdogs long
#  before this; it is the last resort.
TESTFLAGS   ?= -count=1 -p 1 -race -timeout 25m

.PHONY: all build deps run test lint bench compat clean check-mounts

all: build

deps:
	@./deploy/install-deps.sh

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/lighthouse

run: deps build
	./$(BIN) compat --dir .lighthouse/compat

test: deps
	$(GO) vet ./...
	$(GO) test $(TESTFLAGS) ./...
	@$(MAKE) --no-print-directory check-mounts

# A leaked mount breaks the next run: fail loudly and clean it.
check-mounts:
	@leaked=$$(awk '$$3 ~ /^fuse\.lighthouse/ {print $$2}' /proc/mounts); \
	if [ -n "$$leaked" ]; then \
		echo "leaked FUSE mounts (now detached): $$leaked"; \
		for m in $$leaked; do umount -l "$$m" 2>/dev/null || fusermount3 -uz "$$m"; done; \
		exit 1; \
	fi; echo "no FUSE mount left behind"

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

# Go micro-benchmarks of the hot paths (ns/op and allocations).
bench:
	$(GO) test -run '^$$' -bench . -benchmem -count=1 ./store ./sysexec ./compare

# Regenerate docs/compatibility.md from a real run of the conformance suite.
compat: deps
	$(GO) test -count=1 ./conformance -run 'TestConformance$$' -update

clean:
	rm -rf bin .lighthouse
