# The two commands of the README:  `make run`  (pipeline end to end on the embedded simulator)  and  `make test`.
# Both set up everything they need first (a virtualenv from requirements-dev.lock, the dbt manifest).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home

.PHONY: setup run test lint bench simulator preflight postgres clean lock duckdb1 dashboard browser

UV_VERSION := 0.13.9

$(BIN)/.ready: requirements-dev.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check uv==$(UV_VERSION)
	# --compile-bytecode: with PYTHONDONTWRITEBYTECODE set (as on CI machines) every process would recompile dagster and
	# dbt from source, ~7 s per Dagster run process.
	$(BIN)/uv pip install -q --compile-bytecode --python $(BIN)/python -r requirements-dev.lock
	$(BIN)/uv pip install -q --python $(BIN)/python --no-deps -e .
	touch $@

setup: $(BIN)/.ready
	mkdir -p $(DAGSTER_HOME) && cp dagster.yaml $(DAGSTER_HOME)/dagster.yaml
	# DAGSTER_PG_URL set: the instance stores runs and events in PostgreSQL (README: Production), else SQLite.
	if [ -n "$${DAGSTER_PG_URL:-}" ]; then cat deploy/dagster.postgres.yaml >> $(DAGSTER_HOME)/dagster.yaml; fi
	$(BIN)/python -m pipeline.defs.transform.prepare

# Recompile both locks after changing pyproject.toml's dependencies or requirements.in (see requirements.in).
lock: $(BIN)/.ready
	$(BIN)/uv pip compile -q --universal --python-version 3.11 pyproject.toml requirements.in -o requirements.lock
	$(BIN)/uv pip compile -q --universal --python-version 3.11 pyproject.toml requirements.in --extra test --extra bench --extra postgres \
		-o requirements-dev.lock

run: setup
	$(BIN)/python -m pipeline.demo

# A DuckDB 1.x client in its own small venv: tests/serve/test_publish.py opens the serving file with it (the format
# BI tools still on DuckDB 1.x read), so that test runs everywhere `make test` runs instead of being skipped.
DUCKDB1_VENV := .venv-duckdb1
DUCKDB1_VERSION := 1.5.6
$(DUCKDB1_VENV)/.ready: $(BIN)/.ready
	$(BIN)/uv venv -q --allow-existing --python $(BIN)/python $(DUCKDB1_VENV)
	$(BIN)/uv pip install -q --python $(DUCKDB1_VENV)/bin/python duckdb==$(DUCKDB1_VERSION)
	touch $@

duckdb1: $(DUCKDB1_VENV)/.ready

test: setup duckdb1 browser
	DUCKDB1_PYTHON=$(CURDIR)/$(DUCKDB1_VENV)/bin/python $(BIN)/python -m pytest $(PYTEST_ARGS)

# ruff (pyproject.toml [tool.ruff]) and sqlfluff (.sqlfluff) on the tree; .ci/run runs it before the tests.
lint: $(BIN)/.ready
	$(BIN)/ruff check .
	$(BIN)/sqlfluff lint dbt_project/models

# The dashboards' browser tests drive Debian's headless Chromium (no browser download from the web).
browser:
	@command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium; }

# The dashboard app alone on COMPLIANCE_SERVING_PATH (default data/marts.duckdb), http://127.0.0.1:8501
dashboard: $(BIN)/.ready
	$(BIN)/python -m pipeline.dashboard

bench: setup
	$(BIN)/python -m bench

simulator: $(BIN)/.ready
	$(BIN)/python -m simulator serve

# Checks key, scopes, reachability, warehouse paths and the GeoIP database before pointing the pipeline at the
# real API (same environment variables as the pipeline); exit code 1 if any check FAILs.
preflight: $(BIN)/.ready
	$(BIN)/python -m pipeline.preflight

# A real PostgreSQL 15 (Debian package) for the Dagster instance: needs DAGSTER_PG_PASSWORD; see deploy/postgres.sh.
postgres:
	deploy/postgres.sh

clean:
	rm -rf $(VENV) $(DUCKDB1_VENV) .dagster_home data dbt_project/target
