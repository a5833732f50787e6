# The two commands a newcomer needs (see README): `make run` and `make test`; `make unit` is the
# fast sibling (no component started).
# Each sets up what it needs first (scripts/setup.sh is idempotent).

VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup run test unit lint bench

setup:
	@scripts/setup.sh

## The main job on the local embedded stack.
run: setup
	@scripts/run-local.sh

## The whole test suite (unit + live against real components).
test: setup
	$(BIN)/python -m pytest --durations=15 $(PYTEST_ARGS)

## The unit tests only: no live stack, nothing started (live tests sit in *_live.py files).
## They run on every core (pytest-xdist); live tests never do: `make test` stays serial.
unit: setup
	$(BIN)/python -m pytest -m "not live" -q -n auto --durations=5 $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: setup
	@for b in benchmarks/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done
