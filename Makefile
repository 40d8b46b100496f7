# Sparse AL: the two commands a newcomer needs are `make demo` and `make test` (README.md).
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
PY := $(VENV)/bin/python
export QT_QPA_PLATFORM ?= offscreen
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help setup qgis demo test test-fast lint format bench package deploy clean

help:
	@echo "make demo    generate a synthetic aerial scene and run the click-train-predict loop on it (CPU, minutes)"
	@echo "make test    run every test (sets up the Python environment and QGIS when missing)"
	@echo "make bench   speed, memory and label-efficiency benchmarks (slow; writes numbers to stdout)"
	@echo "make setup   only build the Python environment ($(VENV), cached by requirements hash)"
	@echo "make package / deploy   build the QGIS plugin zip / install it into the local QGIS profile"

setup:
	@scripts/setup_env.sh

qgis:
	@scripts/setup_qgis.sh

demo: setup
	$(PY) -m engine.demo --out demo

test: setup qgis lint
	$(PY) -m pytest

test-fast: setup
	$(PY) -m pytest -m "not slow"

lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: setup
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

bench: setup
	$(PY) -m benchmarks

package: setup
	$(PY) scripts/package_plugin.py --out dist

deploy: package
	$(PY) scripts/package_plugin.py --out dist --deploy

clean:
	rm -rf dist demo .pytest_cache .ruff_cache
