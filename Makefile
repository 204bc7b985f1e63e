# Developer and CI entry points. Every target works from the repository root of any clone.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST := $(BIN)/pytest -q -p no:cacheprovider
BENCH_ARGS ?=

.PHONY: venv run test test-slow bench etcd clean

venv: $(STAMP)

# Rebuilt when pyproject.toml changes; the stamp is written only after a complete install.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -e '.[test]'
	touch $@

run: venv
	$(BIN)/shim up --data-dir ./data

test: venv
	$(PYTEST) -m 'not slow' tests/

# pytest exits 5 when no test carries the marker; that is not a failure here.
test-slow: venv
	$(PYTEST) -m slow tests/ || { rc=$$?; [ $$rc -eq 5 ] || exit $$rc; }

bench: venv
	$(BIN)/python bench/api_bench.py $(BENCH_ARGS)
	$(BIN)/python bench/store_bench.py

# Build (once) the pinned etcd server; tests and `bench --store etcd` also do it themselves.
etcd: venv
	scripts/install-etcd.sh

clean:
	rm -rf $(VENV) data/
