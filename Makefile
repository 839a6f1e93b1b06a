# Leadcast — `make help` lists the targets.
# Everything installs into ./.venv from the committed uv.lock (reproducible installs).

PYTHON ?= python3
UV_VERSION := 0.13.8
UV := $(PYTHON) -m uv
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
export LEADCAST_HOME ?= $(CURDIR)/.leadcast

.DEFAULT_GOAL := help
.PHONY: help install demo test test-fast lint format typecheck bench clean

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml uv.lock
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet "uv==$(UV_VERSION)"
	$(UV) sync --frozen
	@touch $@

install: $(STAMP) ## Install Leadcast and its locked dependencies into ./.venv

demo: install ## Install, then run the demo on embedded defaults (generated data, local store)
	$(BIN)/leadcast demo

test: install ## Install, then run the linters and the whole test suite (slow tests included)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/pytest

test-fast: install ## Only the tests not marked slow
	$(BIN)/pytest -m "not slow"

lint: install ## ruff lint + format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install ## Format and auto-fix with ruff
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: install ## mypy over the packages
	$(BIN)/mypy

bench: install ## Run the benchmarks; JSON results go to benchmarks/results/
	$(BIN)/python -m benchmarks.run

clean: ## Remove the virtualenv, caches and the local Leadcast home
	rm -rf $(VENV) .leadcast .mypy_cache .ruff_cache .pytest_cache
