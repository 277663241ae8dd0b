# Two commands, each of which makes what it needs first when it is missing:
#   make ingest   the virtual environment, then the main job: the shared papers (../shared/papers,
#                 or PAPERS=DIR) ingested into the data home ($DDSEARCH_HOME or the user's),
#                 else the catalog's open-access PDFs downloaded
#   make test     the environment, the system tools and npm packages the tests drive, then the
#                 test suite (the command .ci/run runs)
# and, for CI and before a commit: make check (ruff, mypy, the layer contract).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PAPERS ?= $(wildcard ../shared/papers)

.PHONY: ingest test check system

ingest: $(VENV)/installed
	$(BIN)/ddsearch ingest $(if $(PAPERS),--from $(PAPERS))

test: $(VENV)/installed tests/js/node_modules/installed
	$(BIN)/python -m pytest

check: $(VENV)/installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

$(VENV)/installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

system:
	tools/system-deps

tests/js/node_modules/installed: tests/js/package-lock.json | system
	cd tests/js && npm ci --no-audit --no-fund --loglevel=error
	touch $@
