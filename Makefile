# modgate: `make run` starts the gateway on its embedded defaults, `make test` runs everything.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TOOLS := $(CURDIR)/.tools/bin
OPA_VERSION := v1.22.2
OPA := $(TOOLS)/opa
PROMTOOL := $(TOOLS)/promtool
DEV := .modgate

.PHONY: run test lint bench tools venv lock system-deps policy-test clean

# The locks: requirements.lock (what modgate runs on; the Dockerfile installs it) and
# requirements-dev.lock (that plus the dev extra, the runtime pins held by -c), every
# file with its hash. `make lock` re-resolves after a change to pyproject.toml's
# dependencies; uv keeps the versions already locked unless LOCK_FLAGS=--upgrade.
LOCK := requirements.lock
DEV_LOCK := requirements-dev.lock
UV_VERSION := 0.13.9
UV := $(CURDIR)/.tools/uv/bin/uv
LOCK_FLAGS ?=
COMPILE = $(UV) pip compile pyproject.toml --quiet --universal --python-version 3.11 \
	--generate-hashes $(LOCK_FLAGS)

# A virtual environment with modgate and its dev tools, exactly as locked; rebuilt when
# pyproject.toml or the lock changes. modgate itself goes in editable, without resolving.
$(BIN)/modgate: pyproject.toml setup.py $(DEV_LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --require-hashes -r $(DEV_LOCK)
	$(BIN)/pip install -q --no-deps --no-build-isolation -e .
	touch $@

venv: $(BIN)/modgate

$(UV):
	$(PYTHON) -m venv $(CURDIR)/.tools/uv
	$(CURDIR)/.tools/uv/bin/pip install -q 'uv==$(UV_VERSION)'

lock: $(UV)
	$(COMPILE) -o $(LOCK)
	$(COMPILE) --extra dev -c $(LOCK) -o $(DEV_LOCK)

# OPA, pinned, built from the Go module proxy into the project-local tools directory.
$(OPA):
	GOBIN=$(TOOLS) GOFLAGS=-mod=mod go install github.com/open-policy-agent/opa@$(OPA_VERSION)

tools: $(OPA)

# PostgreSQL (the tests start their own throwaway server), promtool (the tests check
# deploy/prometheus/ with it) and wrk (for make bench), from Debian's packages; skipped when
# already there.
system-deps: $(PROMTOOL)
	@if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; fi

# promtool alone, taken out of Debian's prometheus package into the tools directory:
# installing the package would also install and start a Prometheus server.
$(PROMTOOL):
	@mkdir -p $(TOOLS)
	@if command -v promtool >/dev/null; then ln -sf "$$(command -v promtool)" $@; else \
	  work=$$(mktemp -d) && chmod 755 $$work && cd $$work && \
	  (apt-get download -qq prometheus || (apt-get update -qq && apt-get download -qq prometheus)) && \
	  cd - >/dev/null && \
	  dpkg-deb --fsys-tarfile $$work/prometheus_*.deb | tar -xO ./usr/bin/promtool > $@.tmp && \
	  chmod +x $@.tmp && mv $@.tmp $@ && rm -rf $$work; fi

$(DEV)/certs/server.pem: | $(BIN)/modgate
	$(BIN)/modgate certs init $(DEV)/certs

# The gateway on its embedded defaults: SQLite audit, bundled policies under a supervised
# OPA, TLS on https://127.0.0.1:8443 with a development CA, a token for `dev` printed once.
run: venv tools $(DEV)/certs/server.pem
	@mkdir -p $(DEV)
	@if [ ! -f $(DEV)/dev-token ]; then \
	  umask 077; MODGATE_AUDIT_DATABASE_URL=sqlite+aiosqlite:///$(DEV)/audit.db \
	    $(BIN)/modgate token create --subject dev --group developers > $(DEV)/dev-token; fi
	@echo "modgate: https://127.0.0.1:8443  CA: $(DEV)/certs/ca.pem  token: $$(cat $(DEV)/dev-token)"
	@echo "  metrics: http://127.0.0.1:9464/metrics (docs/operations.md)"
	@echo "  try: SSL_CERT_FILE=$(DEV)/certs/ca.pem GOPROXY=https://127.0.0.1:8443 go mod download -json <module>@<version>"
	@echo "  with ~/.netrc: machine 127.0.0.1:8443 login dev password <token>"
	MODGATE_AUDIT_DATABASE_URL=sqlite+aiosqlite:///$(DEV)/audit.db \
	MODGATE_TLS_CERT_FILE=$(DEV)/certs/server.pem MODGATE_TLS_KEY_FILE=$(DEV)/certs/server-key.pem \
	  $(BIN)/modgate serve

lint: venv
	$(BIN)/ruff check gateway tests bench migrations
	$(BIN)/ruff format --check gateway tests bench migrations
	$(BIN)/mypy gateway

# The bundled policies, and the authz policy of the OPA in compose.yaml (deploy/opa).
policy-test: tools
	$(OPA) check --strict --ignore '*_test.rego' policies
	$(OPA) check --strict --ignore '*_test.rego' deploy/opa
	$(OPA) fmt --list --fail policies deploy/opa tests/golden
	# tests/golden: the exact inputs the gateway sends (policy_input.json), as data.policy_input
	$(OPA) test -v --timeout 60s policies tests/golden  # per-test limit: 5 s by default, tight on a busy 2-core VM
	$(OPA) test -v deploy/opa

# --cov: branch coverage of gateway/ (the `modgate` subprocesses included), held to the
# floor in pyproject.toml's [tool.coverage.report].
test: venv tools system-deps lint policy-test
	$(BIN)/pytest -q --cov

bench: venv tools system-deps
	@command -v wrk >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk)
	$(BIN)/python bench/proxy_bench.py

clean:
	rm -rf $(VENV) $(DEV) .mypy_cache .ruff_cache .pytest_cache .coverage build *.egg-info
