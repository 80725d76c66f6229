# Warden build, test and demo entry points. Everything a fresh Debian 12
# machine needs is installed by `make deps` (as root) or printed as one apt line.

SHELL := /bin/bash

# Debian packages the build and tests need: OpenCV (cgo, gocv), pkg-config to
# find it, mosquitto (interoperability tests against a real broker), ffmpeg
# (test clips, ffprobe checks), chromium/node/npm (console browser test) and
# fonts-noto-cjk (without it every Chinese string of the console, the burnt-in
# captions and the browser test's screenshots is tofu). Extend with e.g.
#   make deps APT_PACKAGES+="htop"
APT_PACKAGES ?= libopencv-dev libopencv-contrib-dev pkg-config mosquitto mosquitto-clients ffmpeg chromium nodejs npm curl fonts-noto-cjk prometheus

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)

GO        ?= go
BIN       := bin/warden
LDFLAGS   := -X main.version=$(VERSION) -X main.commit=$(COMMIT)

# Tools pinned to versions the module proxy serves (checked with go list -m).
GOTESTSUM   := $(GO) run gotest.tools/gotestsum@v1.13.0
STATICCHECK := $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2

# Test knobs: TEST_PKGS narrows the run, TEST_FLAGS adds go test flags.
TEST_PKGS  ?= ./... ./testdata/gen/...
TEST_FLAGS ?=
TEST_OUT   := test-artifacts

# Benchmarks: each benchmark runs for BENCHTIME; the whole run is capped.
BENCHTIME    ?= 500ms
BENCH_PKGS   ?= ./...
BENCH_TIMEOUT ?= 20m

.PHONY: all build demo test bench lint deps clean help

all: build

help:
	@echo "make deps   install (root) or print the apt packages: $(APT_PACKAGES)"
	@echo "make build  build $(BIN) ($(VERSION))"
	@echo "make demo   run the daemon on configs/demo.yaml, replay demo scenarios, stream events"
	@echo "make test   go vet + go test -race via gotestsum"
	@echo "make bench  benchmarks into bench.out"
	@echo "make lint   gofmt, go vet, staticcheck"

deps:
	@scripts/deps.sh $(APT_PACKAGES)

build:
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/warden

demo: deps build
	scripts/demo.sh

# gotestsum prints "DONE N tests[, N skipped][, N failures] in Ns" last and
# exits non-zero when anything failed.
test: deps
	$(GO) vet $(TEST_PKGS)
	@mkdir -p $(TEST_OUT)
	$(GOTESTSUM) --format pkgname-and-test-fails --jsonfile $(TEST_OUT)/go-test.json -- \
		-race -count=1 -timeout 60m $(TEST_FLAGS) $(TEST_PKGS)

bench: deps
	@set -o pipefail; $(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) \
		-timeout $(BENCH_TIMEOUT) $(BENCH_PKGS) 2>&1 | tee bench.out
	@echo "benchmarks written to bench.out"

lint:
	@files=$$(find . -name '*.go' -not -path './.git/*' -not \( -path '*/testdata/*' -not -path './testdata/gen/*' \) -not -path '*/node_modules/*' | xargs gofmt -l); \
	if [ -n "$$files" ]; then echo "gofmt needed on:"; echo "$$files"; exit 1; fi
	$(GO) vet ./... ./testdata/gen/...
	$(STATICCHECK) ./... ./testdata/gen/...

clean:
	rm -rf bin $(TEST_OUT) bench.out tmp/demo
