# trademesh: `make run` starts the mesh and a demo; `make test` runs the tests.
# Both install what they need first (a .venv with the project and its tools).

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.DEFAULT_GOAL := help
.PHONY: help install protos protos-check certs run observe test lint format clean \
        bench bench-quick bench-tools

help:
	@echo "make run           install, start every service, run a demo, keep serving until Ctrl-C"
	@echo "make test          install, check generated code and lint, run the tests"
	@echo "make observe       start the mesh with tracing, trace one order, print its trace, stop"
	@echo "make bench         gRPC vs REST benchmark, a few minutes (BENCH_FLAGS=--help for options)"
	@echo "make bench-quick   the benchmark's smoke test (< 1 min)"
	@echo "make protos        regenerate Python code from protos/ (grpcio-tools)"
	@echo "make certs         local CA + one mTLS certificate per identity in certs/ (kept if current)"
	@echo "make lint | clean  ruff; remove the venv, state and caches"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $@

install: $(STAMP)

# The tests also cover the optional `native` extra (--grpc-server native); `make run` does without.
TEST_STAMP := $(VENV)/.installed-test-stamp
$(TEST_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e '.[dev,native]'
	@touch $@

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

test: $(TEST_STAMP) protos-check lint bench-tools
	$(PY) -m pytest

# Load generators for the benchmark (Debian packages): installed when missing if
# we are root with apt-get, otherwise named; the benchmark itself refuses to run
# without them (and its smoke test in `make test` fails saying so).
BENCH_PACKAGES := h2load:nghttp2-client wrk:wrk
bench-tools:
	@missing=""; for pair in $(BENCH_PACKAGES); do \
	  command -v $${pair%%:*} >/dev/null 2>&1 || missing="$$missing $${pair#*:}"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing load generators:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	else \
	  echo "missing load generators:$$missing (as root: apt-get install$$missing)"; \
	fi

# Results in bench/results/<time>/ (report.md, results.json, PNGs); see bench/README.md.
bench: $(STAMP) bench-tools
	$(PY) -m bench $(BENCH_FLAGS)

bench-quick: $(STAMP) bench-tools
	$(PY) -m bench --quick $(BENCH_FLAGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf $(VENV) var build *.egg-info .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
