# hwsim: the two commands.  Both do their own set-up (idempotent; seconds when all is there).
SHELL := /bin/bash
VENV  ?= .venv
BUILD ?= build
JOBS  ?= 2

.PHONY: setup run test lint bench docs-figures clean

setup:
	@bash scripts/setup.sh

run: setup
	$(VENV)/bin/hwsim run -o $(BUILD)/run

test: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/python -m pytest -n $(JOBS) -m "not slow" --durations=25 tests

lint: setup
	$(VENV)/bin/ruff check .

bench: setup
	$(VENV)/bin/hwsim bench ternary-mvu --json

# the docs' figure tables (docs/figures/*.md), measured by the commands each file names;
# FIGURES_JSON=DIR renders DIR/NAME.json of earlier runs instead of measuring
docs-figures: setup
	$(VENV)/bin/python -m hwsim.bench._figures -o docs/figures $(if $(FIGURES_JSON),--from-json $(FIGURES_JSON))

clean:
	rm -rf $(BUILD) .pytest_cache
