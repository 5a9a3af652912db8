# evonas: `make run` installs (once) and runs the default pipeline; `make test` runs every test.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PREFECT_HOME := $(CURDIR)/.prefect
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export DO_NOT_TRACK := 1
export DVC_NO_ANALYTICS := 1
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: install run test bench clean

install: $(STAMP)

# Reinstall only when the pins or the package metadata change.
$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -r requirements.lock
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .
	@touch $(STAMP)

run: install
	$(BIN)/evonas run --params params.yaml

test: install
	$(BIN)/python -m pytest -ra --timeout=900 tests

bench: install
	$(BIN)/python benchmarks/pipeline.py

clean:
	rm -rf data/prepared artifacts reports/*.json reports/*.png reports/*.csv .prefect
