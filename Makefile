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
.PHONY: help install browser demo test test-fast lint format typecheck bench calibration report clean

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml uv.lock
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet "uv==$(UV_VERSION)"
	$(UV) sync --frozen
	@touch $@

install: $(STAMP) ## Install Leadcast and its locked dependencies into ./.venv

# Browser tests drive Debian's Chromium (Playwright never downloads one); a CJK font lets
# the review page's Chinese render. As root it installs them; otherwise it says how.
BROWSER_PACKAGES := chromium fonts-wqy-microhei
browser: ## Install Debian's chromium and a Chinese font for the browser tests (needs root)
	@if command -v chromium >/dev/null 2>&1 && fc-list :lang=zh 2>/dev/null | grep -q .; then \
	  exit 0; \
	elif [ "$$(id -u)" = 0 ]; then \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get install -y --no-install-recommends $(BROWSER_PACKAGES) >/dev/null \
	    || { apt-get update >/dev/null && apt-get install -y --no-install-recommends $(BROWSER_PACKAGES) >/dev/null; }; \
	else \
	  echo "browser tests need Debian's chromium and a Chinese font: run"; \
	  echo "  sudo apt-get install -y $(BROWSER_PACKAGES)"; \
	  echo "or set LEADCAST_SKIP_BROWSER=1 to skip the browser tests"; \
	  [ "$$LEADCAST_SKIP_BROWSER" = 1 ]; \
	fi

demo: install ## Install, then run the demo on embedded defaults (generated data, local store)
	$(BIN)/leadcast demo

# OMP_WAIT_POLICY=PASSIVE: LightGBM's OpenMP threads sleep instead of spinning while they
# wait, which on 2 cores shared with test servers made training up to 10× faster.
test: install browser ## Install, then run the linters and the whole test suite (slow tests included)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	OMP_WAIT_POLICY=PASSIVE $(BIN)/pytest

test-fast: install ## Only the tests not marked slow
	OMP_WAIT_POLICY=PASSIVE $(BIN)/pytest -m "not slow"

lint: install ## ruff lint + format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install ## Format and auto-fix with ruff
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: install ## mypy over the packages
	$(BIN)/mypy

report: install ## Write the review page of the demo data to report.html (after make demo)
	$(BIN)/leadcast report --data $(LEADCAST_HOME)/demo-data --out report.html

bench: install ## Run the benchmarks; JSON results go to benchmarks/results/
	$(BIN)/python -m benchmarks.run

calibration: install ## Backtest the forecast on 5 seeds and pool the coverage (about 15 min)
	$(BIN)/python -m benchmarks.run --only bench_forecast_calibration

clean: ## Remove the virtualenv, caches and the local Leadcast home
	rm -rf $(VENV) .leadcast .mypy_cache .ruff_cache .pytest_cache test-artifacts
