# The two commands of the README:  `make run`  (pipeline end to end on the embedded simulator)  and  `make test`.
# Both set up everything they need first (a virtualenv from requirements.lock, the dbt manifest).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home

.PHONY: setup run test bench simulator clean

$(BIN)/.ready: requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check uv==0.13.9
	$(BIN)/uv pip install -q --python $(BIN)/python -r requirements.lock
	$(BIN)/uv pip install -q --python $(BIN)/python --no-deps -e .
	touch $@

setup: $(BIN)/.ready
	mkdir -p $(DAGSTER_HOME) && cp dagster.yaml $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/python -m pipeline.defs.transform.prepare

run: setup
	$(BIN)/python -m pipeline.demo

test: setup
	$(BIN)/python -m pytest

bench: setup
	$(BIN)/python -m bench

simulator: $(BIN)/.ready
	$(BIN)/python -m simulator serve

clean:
	rm -rf $(VENV) .dagster_home data dbt_project/target
