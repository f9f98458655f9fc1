# trademesh: `make run` starts the mesh and a demo; `make test` runs the tests.
# Both install what they need first (a .venv with the project and its tools).

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.DEFAULT_GOAL := help
.PHONY: help install protos protos-check certs run observe test lint format clean

help:
	@echo "make run           install, start every service, run a demo, keep serving until Ctrl-C"
	@echo "make test          install, check generated code and lint, run the tests"
	@echo "make observe       start the mesh with tracing, trace one order, print its trace, stop"
	@echo "make protos        regenerate Python code from protos/ (grpcio-tools)"
	@echo "make certs         local CA + one mTLS certificate per identity in certs/ (kept if current)"
	@echo "make lint | clean  ruff; remove the venv, state and caches"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $@

install: $(STAMP)

protos: $(STAMP)
	$(PY) protos/generate.py

protos-check: $(STAMP)
	$(PY) protos/generate.py --check

# Idempotent: keeps current certificates, renews those near expiry (never committed).
certs: $(STAMP)
	$(PY) -m services.runtime.certs --out certs

# `make run RUN_FLAGS=--plaintext` for a mesh without TLS (local debugging only).
run: $(STAMP) certs
	$(PY) -m services.launcher $(RUN_FLAGS)

# Spans of every process to var/traces/*.jsonl; prints the metrics URLs and one
# order's trace as a tree, then stops (OBSERVE_FLAGS=--keep-running to look first).
observe: $(STAMP) certs
	$(PY) -m services.observe $(OBSERVE_FLAGS)

test: $(STAMP) protos-check lint
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf $(VENV) var build *.egg-info .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
