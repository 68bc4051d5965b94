# Two entry points a new user needs: `make train` and `make test`. Each builds its own virtual environment.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: train test test-fast lint install install-dev install-docs docs docs-serve bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet -e .

install-dev: $(BIN)/python
	$(BIN)/pip install --quiet -e ".[dev,docs]"

install-docs: $(BIN)/python
	$(BIN)/pip install --quiet -e ".[docs]"

train: install
	$(BIN)/dlfound train $(ARGS)

# Two pytest workers, each test file on one of them (module fixtures are built once): the suite's runs spend
# much of their time starting processes and reading files, so two workers nearly halve its wall time on 2 cores.
# The lint runs first: a finding fails the test command before the suite starts.
test: install-dev
	$(BIN)/ruff check src tests scripts docs/hooks
	$(BIN)/ruff format --check src tests scripts docs/hooks
	$(BIN)/python -m pytest -q -n 2 --dist loadfile $(ARGS)

# The edit-test loop: every test not marked slow (each such test takes more than about 2 s on 2 cores).
test-fast: install-dev
	$(BIN)/python -m pytest -q -n 2 --dist loadfile -m "not slow" $(ARGS)

# The rules and the line length live in pyproject.toml ([tool.ruff]).
lint: install-dev
	$(BIN)/ruff check src tests scripts docs/hooks
	$(BIN)/ruff format --check src tests scripts docs/hooks

# The documentation site (docs/, mkdocs.yml), offline: strict, so a broken link or reference fails the build.
docs: install-docs
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

docs-serve: install-docs
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve

bench: install
	$(BIN)/python scripts/benchmark_loop.py $(ARGS)

clean:
	rm -rf $(VENV) outputs multirun build site src/*.egg-info
