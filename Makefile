# The two commands a newcomer needs are `make demo` and `make test`; both set
# up what is missing first (a virtualenv, and the control-plane binaries
# built from Go modules into ~/.cache/execguard), so they work on a fresh clone.
SHELL := /bin/bash
VENV ?= .venv
PYTHON ?= python3

.PHONY: setup binaries demo test lint unit

setup: $(VENV)/.installed binaries

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	touch $@

binaries:
	hack/build-binaries.sh

## demo: the local demo on the embedded control plane
demo: setup
	$(VENV)/bin/execguard dev demo

## test: linters, type checks and the whole test suite (unit, integration, e2e)
test: setup
	VENV=$(VENV) hack/test.sh

## lint: linters and type checks only
lint: $(VENV)/.installed
	VENV=$(VENV) hack/test.sh --lint-only

## unit: fast tests without a control plane
unit: $(VENV)/.installed
	$(VENV)/bin/pytest -q tests/unit
