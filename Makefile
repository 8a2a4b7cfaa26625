# Two commands a new user needs: `make quickstart` and `make test`. Both build .venv themselves.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip
PYTEST_ARGS ?=

.PHONY: quickstart test test-fast fuzz bench lint assets browser postgres netns clean help

help:
	@echo "make quickstart  create .venv, install, run the whole loop on telco_churn (quickstart/)"
	@echo "make test        install test dependencies (incl. headless chromium, PostgreSQL), run all the tests"
	@echo "make test-fast   the tests not marked slow (a few minutes)"
	@echo "make fuzz        the long fuzzing runs of the parsers of outside input (~5 min)"
	@echo "make bench       run the benchmarks in benchmarks/ (slow; not part of make test)"
	@echo "make lint        ruff, mypy over the whole package, import layering (lint-imports)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# Re-install whenever pyproject.toml changes.
# Once installed, the numba kernels are compiled into numba's cache (about 5 s), as pip
# compiles bytecode: the first training would pay it otherwise (cli/compile_kernels.py).
$(VENV)/.installed-suite: pyproject.toml | $(BIN)/python
	$(PIP) install --quiet -e ".[suite]"
	$(BIN)/python -m mlwright.cli.compile_kernels
	@touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(PIP) install --quiet -e ".[dev]"
	$(BIN)/python -m mlwright.cli.compile_kernels
	@touch $@ $(VENV)/.installed-suite

# Debian's chromium renders the HTML reports in the tests (headless, offline).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "Installing Debian's chromium for the browser tests..."; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; \
	  else \
	    echo "The browser tests need chromium: sudo apt-get install chromium"; exit 1; \
	  fi; }

# Debian's PostgreSQL server binaries: tests/postgres starts its own server from them (initdb
# + pg_ctl in a temporary folder, on a free loopback port); it never uses a running one.
PG_BIN ?= /usr/lib/postgresql/15/bin
postgres:
	@test -x $(PG_BIN)/initdb -a -x $(PG_BIN)/pg_ctl || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "Installing Debian's postgresql for the PostgreSQL tests..."; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null; \
	  else \
	    echo "The PostgreSQL tests need $(PG_BIN)/initdb and pg_ctl: sudo apt-get install postgresql"; exit 1; \
	  fi; }
	@test -x $(PG_BIN)/initdb || { echo "$(PG_BIN)/initdb is still missing (another PostgreSQL version? make postgres PG_BIN=... and MLWRIGHT_PG_BIN=...)"; exit 1; }

# iproute2's ip: tests/cluster/test_multihost.py makes hosts as network namespaces (as root).
netns:
	@command -v ip >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "Installing iproute2 for the multi-host test..."; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends iproute2 >/dev/null; \
	  else \
	    echo "The multi-host test needs root and iproute2; it is skipped (with the reason) here."; \
	  fi; }

# The whole loop on telco_churn in quickstart/: profile, train + report + register, serve,
# live traffic with drift injected halfway, monitor, retrain, compare, promote or refuse.
quickstart: $(VENV)/.installed-suite
	$(BIN)/python examples/quickstart.py --budget 30 --folder quickstart

# The long fuzzing runs are `make fuzz` (the short ones of the same properties run here).
test: $(VENV)/.installed-dev browser postgres netns
	$(BIN)/python -m pytest -m "not deep" $(PYTEST_ARGS)

# Skips the tests marked slow (real trainings through the CLI, server processes, workers,
# the quickstart); CI runs them all.
test-fast: $(VENV)/.installed-dev browser postgres
	$(BIN)/python -m pytest -m "not slow and not deep" $(PYTEST_ARGS)

fuzz: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -m deep $(PYTEST_ARGS)

# AutoML against peers: pass FLAML=/path/to/venv/bin/python AUTOGLUON=/path/to/venv/bin/python
bench: $(VENV)/.installed-dev
	$(BIN)/python benchmarks/ingest.py
	$(BIN)/python benchmarks/profiling.py
	$(BIN)/python benchmarks/automl.py --budget 60 $(if $(FLAML),--flaml $(FLAML)) $(if $(AUTOGLUON),--autogluon $(AUTOGLUON))

# Front-end assets come from npm (frontend/package-lock.json) and ship inside the package, so
# no page loads anything from a CDN. Run after changing frontend/package.json; commit the result.
assets:
	cd frontend && npm ci --no-audit --no-fund
	cp frontend/node_modules/swagger-ui-dist/swagger-ui-bundle.js \
	   frontend/node_modules/swagger-ui-dist/swagger-ui.css \
	   frontend/node_modules/swagger-ui-dist/favicon-32x32.png \
	   frontend/node_modules/swagger-ui-dist/LICENSE frontend/node_modules/swagger-ui-dist/NOTICE \
	   src/mlwright/serve/static/swagger-ui/
	echo "swagger-ui-dist $$(node -p "require('./frontend/node_modules/swagger-ui-dist/package.json').version") (npm; frontend/package-lock.json)" > src/mlwright/serve/static/swagger-ui/VERSION
	# The dashboard (mlwright ui, /ui): htmx for partial updates, Plotly's JS for the charts.
	mkdir -p src/mlwright/ui/static/vendor
	cp frontend/node_modules/htmx.org/dist/htmx.min.js src/mlwright/ui/static/vendor/htmx.min.js
	cp frontend/node_modules/htmx.org/LICENSE src/mlwright/ui/static/vendor/LICENSE.htmx
	cp frontend/node_modules/plotly.js-dist-min/plotly.min.js src/mlwright/ui/static/vendor/plotly.min.js
	cp frontend/node_modules/plotly.js-dist-min/LICENSE src/mlwright/ui/static/vendor/LICENSE.plotly
	cd frontend && node -p "['htmx.org', 'plotly.js-dist-min'].map(p => p + ' ' + require('./node_modules/' + p + '/package.json').version).join('\\n') + '\\n(npm; frontend/package-lock.json)'" > ../src/mlwright/ui/static/vendor/VERSION

# mypy's files and lint-imports' contracts are in pyproject.toml.
lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/mypy
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) quickstart reports data runs .mlwright .pytest_cache
