# Tools are pinned here and installed into ./bin through the Go module proxy.
BUF_VERSION          := v1.70.0
PROTOC_GEN_GO        := v1.36.12
PROTOC_GEN_GO_GRPC   := v1.6.2
GRPC_GATEWAY_VERSION := v2.31.0
GOTESTSUM_VERSION    := v1.13.0

BIN    := $(CURDIR)/bin
GO     ?= go
export PATH := $(BIN):$(PATH)

.PHONY: all build run test lint generate tools fuzz bench bench-api load clean

all: build

# buf: the prebuilt binary of npm's @bufbuild/buf package when npm is there
# (seconds), else compiled from source (minutes).
$(BIN)/buf:
	@if command -v npm >/dev/null; then \
		echo "installing buf $(BUF_VERSION) from npm (@bufbuild/buf, prebuilt)"; \
		npm install --silent --no-save --no-package-lock --no-audit --no-fund --prefix $(BIN)/buf.npm @bufbuild/buf@$(BUF_VERSION:v%=%) && \
		ln -sf "$$(find $(BIN)/buf.npm/node_modules/@bufbuild -path '*/buf-*/bin/buf' -type f | head -1)" $(BIN)/buf && \
		$(BIN)/buf --version; \
	else \
		GOBIN=$(BIN) $(GO) install github.com/bufbuild/buf/cmd/buf@$(BUF_VERSION); \
	fi
$(BIN)/gotestsum:
	GOBIN=$(BIN) $(GO) install gotest.tools/gotestsum@$(GOTESTSUM_VERSION)
$(BIN)/protoc-gen-go:
	GOBIN=$(BIN) $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO)
$(BIN)/protoc-gen-go-grpc:
	GOBIN=$(BIN) $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC)
$(BIN)/protoc-gen-grpc-gateway:
	GOBIN=$(BIN) $(GO) install github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-grpc-gateway@$(GRPC_GATEWAY_VERSION)
$(BIN)/protoc-gen-openapiv2:
	GOBIN=$(BIN) $(GO) install github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-openapiv2@$(GRPC_GATEWAY_VERSION)

tools: $(BIN)/buf $(BIN)/protoc-gen-go $(BIN)/protoc-gen-go-grpc $(BIN)/protoc-gen-grpc-gateway $(BIN)/protoc-gen-openapiv2

## generate: lint the protos and regenerate gen/ and gateway/apidoc/ (committed; CI checks they are up to date)
generate: tools
	buf lint
	buf format -d --exit-code
	buf generate

## build: the lbaasd daemon and the lbaas command-line client in ./bin
build:
	$(GO) build -o $(BIN)/lbaasd ./cmd/lbaasd
	$(GO) build -o $(BIN)/lbaas ./cmd/lbaas

## run: the service on its embedded default (SQLite file ./lbaasd.db); flags in ARGS:
##   make run ARGS="--denied-node-networks none --log-level debug"
run: build
	$(BIN)/lbaasd serve $(ARGS)

## test: every test, Postgres included (started from the machine's PostgreSQL binaries);
##   gotestsum lists skipped tests (and why) at the end, without -v
# -parallel 4: the e2e tests (t.Parallel) mostly wait on their own daemons and
# clients, so four at a time fit two cores.
test: $(BIN)/gotestsum
	$(BIN)/gotestsum --format pkgname -- -count=1 -parallel 4 ./...

## lint: formatting and vet
lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...

## fuzz: a short run of every fuzz target
fuzz:
	$(GO) test ./gateway -run '^$$' -fuzz FuzzDecodeCreateLoadBalancer -fuzztime 30s
	$(GO) test ./gateway -run '^$$' -fuzz FuzzDecodeXMLCreateLoadBalancer -fuzztime 30s
	$(GO) test ./translator -run '^$$' -fuzz FuzzTranslate -fuzztime 30s
	$(GO) test ./xds -run '^$$' -fuzz FuzzNACKMessage -fuzztime 30s

## load: the load harness against a real lbaasd (10,000 LBs; loopback only, bounded; see docs/load.md)
##   make load MODE=envoy-delta CLIENTS=50 CHANGE=both CHANGES=200 LBS=10000 MAX_DURATION=10m [REPLICAS=3] [CONNECT_OVER=90s]
MODE         ?= grpc
CLIENTS      ?= 50
CHANGE       ?= both
CHANGES      ?= 200
LBS          ?= 10000
MAX_DURATION ?= 10m
REPLICAS     ?= 1
CONNECT_OVER ?= 0s
load: build
	$(GO) build -o $(BIN)/lbaas-load ./cmd/lbaas-load
	$(BIN)/lbaas-load -lbaasd $(BIN)/lbaasd -mode $(MODE) -clients $(CLIENTS) -change $(CHANGE) \
		-changes $(CHANGES) -load-balancers $(LBS) -max-duration $(MAX_DURATION) -replicas $(REPLICAS) \
		-connect-over $(CONNECT_OVER)

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

## bench-api: REST API req/s and latency with wrk against a real lbaasd on a temporary SQLite file
##   (loopback, about a minute); BENCH_DATABASE_URL=postgres://... for PostgreSQL, see scripts/bench-api.sh
bench-api: build
	bash scripts/bench-api.sh

clean:
	rm -rf $(BIN) lbaasd.db
