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

.PHONY: run test build temporal vet lint fmt clean

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
run: bin/ferry $(TEMPORAL)
	./bin/ferry dev

vet:
	$(GO) vet ./...

test: $(TEMPORAL) vet
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) test -count=1 -timeout 20m ./...

clean:
	rm -rf bin .data
