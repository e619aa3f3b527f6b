# The two commands of the README:  `make run`  (pipeline end to end on the embedded simulator)  and  `make test`.
# Both set up everything they need first (a virtualenv from requirements.lock, the dbt manifest).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home

.PHONY: setup run test bench simulator preflight postgres clean

$(BIN)/.ready: requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check uv==0.13.9
	# --compile-bytecode: with PYTHONDONTWRITEBYTECODE set (as on CI machines) every process would recompile dagster and
	# dbt from source, ~7 s per Dagster run process.
	$(BIN)/uv pip install -q --compile-bytecode --python $(BIN)/python -r requirements.lock
	$(BIN)/uv pip install -q --python $(BIN)/python --no-deps -e .
	touch $@

setup: $(BIN)/.ready
	mkdir -p $(DAGSTER_HOME) && cp dagster.yaml $(DAGSTER_HOME)/dagster.yaml
	# DAGSTER_PG_URL set: the instance stores runs and events in PostgreSQL (README: Production), else SQLite.
	if [ -n "$${DAGSTER_PG_URL:-}" ]; then cat deploy/dagster.postgres.yaml >> $(DAGSTER_HOME)/dagster.yaml; fi
	$(BIN)/python -m pipeline.defs.transform.prepare

run: setup
	$(BIN)/python -m pipeline.demo

test: setup
	$(BIN)/python -m pytest

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
	rm -rf $(VENV) .dagster_home data dbt_project/target
