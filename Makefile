# tokenfix — every target works on a fresh clone with only Python and PostgreSQL binaries.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install test test-fast test-citus lint typecheck layering demo bench bench-full clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $(STAMP)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

layering: install
	$(BIN)/lint-imports

# Every test, on two workers (a server each; a test file stays on one worker, so a file's
# module-scoped servers start once). The signal campaigns time a run from its signal and find
# their moments by watching the run, so a second worker's load moves neither; a run that
# outlives its bound fails with its threads' stacks.
test: lint typecheck layering
	$(BIN)/pytest -n 2 --dist loadfile

# The tests that need no subprocess or extra server, on every core: the quick loop while coding.
test-fast: install
	$(BIN)/pytest -n auto tests/unit tests/db

# A coordinator and two workers on loopback (docs/citus.md); skips where Citus is not installed.
test-citus: install
	$(BIN)/pytest -m citus tests/e2e

demo: install
	$(BIN)/tokenfix demo

bench: install
	$(BIN)/python -m bench --users 2000 --rows 200000 --output bench/results/latest.md

bench-full: install
	$(BIN)/python -m bench --users 100000 --rows 10000000 --output BENCHMARKS.md

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
