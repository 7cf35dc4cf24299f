# Ferry's two commands: `make run` (the whole system on the simulator, with
# the Temporal UI) and `make test`. Everything they need is built here.
SHELL := /bin/bash
GO ?= go
TEMPORAL_VERSION := v1.5.1
# The Temporal CLI (dev server + Web UI) is built from Go modules once and
# kept in the user's cache, keyed by version, where a fresh clone finds it.
CACHE_DIR := $(or $(XDG_CACHE_HOME),$(HOME)/.cache)
TEMPORAL_DIR := $(CACHE_DIR)/ferry/temporal-$(TEMPORAL_VERSION)
TEMPORAL := $(TEMPORAL_DIR)/temporal
export FERRY_TEMPORAL_BIN ?= $(TEMPORAL)
# The SDK's determinism analyzer, cached the same way (its own Go module).
WORKFLOWCHECK_VERSION := v0.6.0
WORKFLOWCHECK := $(CACHE_DIR)/ferry/workflowcheck-$(WORKFLOWCHECK_VERSION)/workflowcheck
# How long `make fuzz` runs each fuzz target.
FUZZTIME ?= 20s

.PHONY: run test chaos build temporal vet lint fuzz fmt clean bench

build: bin/ferry

bin/ferry: $(shell find . -name '*.go' -not -path './.data/*') go.mod go.sum demo/demo.yaml $(wildcard store/migrations/*.sql)
	$(GO) build -o bin/ferry ./cmd/ferry

temporal: $(TEMPORAL)

$(TEMPORAL):
	@echo "Building the Temporal dev server $(TEMPORAL_VERSION) from Go modules (once; 5-10 minutes on 2 cores)..."
	mkdir -p $(TEMPORAL_DIR)
	GOBIN=$(TEMPORAL_DIR) $(GO) install github.com/temporalio/cli/cmd/temporal@$(TEMPORAL_VERSION)

# The whole system in one process: Temporal dev server (UI on :8233), API on
# :8080, worker and a simulated two-site cloud seeded with the demo.
# FERRY_DEV_FLAGS=--postgres adds a real PostgreSQL pair and a real DNS
# server to the demo (docs/postgres-demo.md).
run: bin/ferry $(TEMPORAL)
	./bin/ferry dev $(FERRY_DEV_FLAGS)

vet:
	$(GO) vet ./...

$(WORKFLOWCHECK):
	mkdir -p $(dir $(WORKFLOWCHECK))
	GOBIN=$(dir $(WORKFLOWCHECK)) $(GO) install go.temporal.io/sdk/contrib/tools/workflowcheck@$(WORKFLOWCHECK_VERSION)

# Determinism guard (docs/reliability.md): workflowcheck over every package,
# with the reviewed exceptions in workflowcheck.config.yaml.
lint: $(WORKFLOWCHECK)
	$(WORKFLOWCHECK) -config workflowcheck.config.yaml ./...

# Each fuzz target for FUZZTIME; `make test` runs only their seed corpora.
fuzz:
	@set -e; for pkg in . ./server ./cli; do \
	  for target in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$target"; \
	    $(GO) test -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

test: $(TEMPORAL) vet lint
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	# One package's tests at a time: the suites start real servers (Temporal,
	# PostgreSQL pairs, BIND, Cinder) and on 2 cores they would starve each
	# other's timeouts.
	$(GO) test -p 1 -count=1 -timeout 20m ./...

# The chaos suite's full matrix (docs/reliability.md, "Chaos"): every kill
# point of every run kind, each waiting out its killed worker's activity
# timeout, on FERRY_CHAOS_SYSTEMS (default 4) deployments side by side;
# well over an hour on 2 cores. `make test` runs its short form.
chaos: $(TEMPORAL)
	FERRY_CHAOS=full $(GO) test -count=1 -run '^TestChaos$$' -timeout 6h -v ./testsuite/

# `make bench` (docs/benchmarks.md): the site-scale benchmarks on the
# simulator, results in bench/results/<date>-<commit>.md and on the terminal.
# BENCH_FLAGS passes flags to ferry-bench (`bin/ferry-bench -h` lists them),
# e.g. BENCH_FLAGS="-groups 10 -runs 1" for a quick check. It needs the
# Temporal server and its SQL tool (built from Go modules into the cache,
# like the dev server), wrk (Debian's package) and the PostgreSQL at
# 127.0.0.1:5432 that the tests use.
TEMPORAL_SERVER_VERSION := v1.29.1
TEMPORAL_SERVER_DIR := $(CACHE_DIR)/ferry/temporal-server-$(TEMPORAL_SERVER_VERSION)
BENCH_FLAGS ?=

$(TEMPORAL_SERVER_DIR)/server $(TEMPORAL_SERVER_DIR)/sql:
	@echo "Building the Temporal server $(TEMPORAL_SERVER_VERSION) and its SQL tool from Go modules (once; about 5 minutes on 2 cores)..."
	mkdir -p $(TEMPORAL_SERVER_DIR)
	GOBIN=$(TEMPORAL_SERVER_DIR) $(GO) install go.temporal.io/server/cmd/server@$(TEMPORAL_SERVER_VERSION) go.temporal.io/server/cmd/tools/sql@$(TEMPORAL_SERVER_VERSION)

bin/ferry-bench: bin/ferry
	$(GO) build -o bin/ferry-bench ./cmd/ferry-bench

bench: bin/ferry bin/ferry-bench $(TEMPORAL) $(TEMPORAL_SERVER_DIR)/server $(TEMPORAL_SERVER_DIR)/sql
	@command -v wrk >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "Installing wrk, Debian's HTTP load generator, for the API benchmark..."; \
	    apt-get install -y wrk >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y wrk; }; \
	  else \
	    echo "make bench needs wrk: install Debian's package as root (apt-get install -y wrk) and run it again"; exit 1; \
	  fi; }
	./bin/ferry-bench -ferry bin/ferry -out bench/results \
	  -temporal-server $(TEMPORAL_SERVER_DIR)/server -temporal-sql-tool $(TEMPORAL_SERVER_DIR)/sql $(BENCH_FLAGS)

clean:
	rm -rf bin .data
