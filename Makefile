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

.PHONY: install run test docs bench ui ui-check clean

install: $(STAMP)

# Reinstall only when the pins or the package metadata change. pip byte-compiles what it installs
# on one core; compileall does it on every core (a fresh install on the 2-core reference machine:
# 244 s with pip compiling, 137 s + 62 s this way). Two files that only Python 3.12 can compile
# (torch's and whenever's, which pip skips too) make compileall exit 1, hence `|| true`. evonas's own
# packages are compiled too: where PYTHONDONTWRITEBYTECODE is set, every `evonas` process (one per
# DVC stage) would otherwise compile them from source again (0.8 s each on that machine); a module
# edited later is compiled in memory from its newer source, as always.
$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --no-compile -r requirements.lock
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .
	@$(BIN)/python -m compileall -q -j 0 $(VENV)/lib nas flows tasks > /dev/null 2>&1 || true
	@touch $(STAMP)

run: install
	$(BIN)/evonas run --params params.yaml

# Three test processes side by side (pytest-xdist) on the 2-core reference machine: much of the
# suite waits on process start-up, Prefect and DVC, and a third process fills some of that idle
# core time (measured: 87-88 % use of the two cores against 84 % with two processes, a gain of a
# minute or so; the wall times, 21:39 and 27:41 with three, 26:03 with two, follow the machine's
# speed, which varied by 60 % within one session). Whole files go to one process, so module
# fixtures are built once; the heaviest files go first (tests/conftest.py orders them by
# tests/file_seconds.json; --no-loadscope-reorder keeps that order instead of xdist's "most tests
# first", which left the long end-to-end files for last and one process running alone at the end;
# measured on fresh clones, machine at about 0.6x its usual speed: pytest 30:37 before, 26:20 after).
test: install
	$(BIN)/python -m pytest -ra -n 3 --dist loadfile --no-loadscope-reorder --timeout=900 --durations=25 tests

# The documentation site (MkDocs, Material theme) into site/: the reference pages are regenerated
# from the code first; --strict turns a broken link or a missing page into an error.
docs: install
	$(BIN)/python -m flows.reference
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

bench: install
	$(BIN)/python benchmarks/pipeline.py

# A local Prefect server (UI and API) on 127.0.0.1:4200; Ctrl-C stops it.
ui: install
	$(BIN)/evonas ui

# Run a tiny pipeline against a local Prefect server, render the UI's page of that run in
# headless Chromium (installs Debian's chromium if missing), keep the screenshot in reports/ui-run.png.
ui-check: install
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || \
		{ SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); $$SUDO apt-get update -q && $$SUDO apt-get install -y -q chromium; }
	mkdir -p reports
	EVONAS_UI_SCREENSHOT=$(CURDIR)/reports/ui-run.png $(BIN)/python -m pytest -ra tests/test_pipeline_e2e.py -k chromium

clean:
	rm -rf data/prepared artifacts reports/*.json reports/*.png reports/*.csv .prefect
