# The two commands a newcomer needs: `make run` and `make test`. Both install what they need first.
SHELL := /bin/bash
PYTHON ?= python3
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
SYNCED := $(VENV)/.synced
MEMBERS := $(wildcard */pyproject.toml libs/*/pyproject.toml)

.PHONY: install run test test-fast bench services browser lint distributed-migrate clean env openapi

# uv itself comes from PyPI into a private venv, so nothing is needed beyond python3.
$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# The whole workspace, pinned by uv.lock. Compiled to bytecode at install: uv does not by default, and
# where PYTHONDONTWRITEBYTECODE is set (as on the CI machines) every process would otherwise compile
# its thousand library modules at each start (5 s instead of 2 s for a service's imports).
$(SYNCED): $(UV) uv.lock pyproject.toml $(MEMBERS)
	$(UV) sync --all-packages --frozen --compile-bytecode
	@touch $@

install: $(SYNCED)

## Start the whole platform in the embedded mode (one process and the PostgreSQL server it starts, data under .data/).
## Webhooks may reach receivers on this machine (a newcomer's on 127.0.0.1): the banner says so;
## WEBHOOKS_ALLOW_LOOPBACK=false make run refuses them, as billing-embedded started any other way does.
run: install
	WEBHOOKS_ALLOW_LOOPBACK=$${WEBHOOKS_ALLOW_LOOPBACK:-true} $(VENV)/bin/billing-embedded

services:
	@bash tests/ensure_services.sh

## Debian's Chromium and axe-core (npm) for the browser tests in tests/e2e/browser.
browser:
	@bash tests/ensure_browser.sh

## The whole suite: lint, types, then unit, PostgreSQL, RabbitMQ, embedded and distributed end-to-end.
test: lint services browser
	$(VENV)/bin/pytest

## Everything but the slow tests (broker restarts, process spawning).
test-fast: lint services browser
	$(VENV)/bin/pytest -m "not slow"

## Throughput and latency (distributed mode), the embedded mode's footprint, reconciliation matching and idle cost; not part of `make test`. Results in bench-results/
bench: install services
	$(VENV)/bin/python tests/bench/run.py
	$(VENV)/bin/python tests/bench/webhooks.py
	$(VENV)/bin/python tests/bench/regional.py
	$(VENV)/bin/python tests/bench/stripe_webhooks.py
	$(VENV)/bin/python tests/bench/token_flood.py
	$(VENV)/bin/python tests/bench/embedded.py
	$(VENV)/bin/python tests/bench/reconciliation.py
	$(VENV)/bin/python tests/bench/idle.py
	$(VENV)/bin/python tests/bench/lifecycle.py

## ruff (lint and format) and mypy --strict over every service's and library's src/ (root pyproject.toml).
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

## The public API's OpenAPI document (gateway/src/gateway/openapi.json), rebuilt from every service's declared operations.
openapi: install
	$(VENV)/bin/python -m billing_embedded.openapi

## The .env docker-compose.yml reads, every secret generated; an existing .env is kept (missing variables added). ARGS=--force regenerates it.
env:
	$(PYTHON) ops/gen_env.py $(ARGS)

clean:
	rm -rf $(VENV) $(TOOLS) .data
