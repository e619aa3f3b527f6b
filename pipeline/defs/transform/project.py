"""The dbt project (dbt_project/) as seen by Dagster, and the dbt CLI resource."""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache, cached_property
from pathlib import Path

from packaging import version

from dagster_dbt import DbtCliResource, DbtProject
from dagster_dbt.dbt_project import run_with_concurrent_update_guard, using_dagster_dev

from pipeline.config import PROJECT_ROOT

DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"

_VENV_BIN = Path(sys.executable).parent
PARTIAL_PARSE = "partial_parse.msgpack"


def _put_venv_dbt_on_path() -> None:
    """The dbt installed next to this interpreter (the project's venv), also when the venv is not activated
    (`.venv/bin/python -m ...`): dagster-dbt looks `dbt` up on PATH."""
    if (_VENV_BIN / "dbt").exists() and shutil.which("dbt") != str(_VENV_BIN / "dbt"):
        os.environ["PATH"] = f"{_VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"


@cache
def _load_dbt_project() -> DbtProject:
    _put_venv_dbt_on_path()
    project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR, target="local")
    # Under `dagster dev` the manifest is rebuilt on start; elsewhere `make setup` builds it
    # (python -m pipeline.defs.transform.prepare). A checkout that skipped setup still loads: parse once here.
    if using_dagster_dev() or not Path(project.manifest_path).exists():
        prepare(project)
    return project


def prepare(project: DbtProject) -> None:
    """`dbt parse` into a folder of its own, then its files renamed into target/, the manifest last: a process that
    loads the definitions while another one parses (a run or the CLI while `dagster dev` starts, two deployments
    starting at once) reads the previous manifest or the new one, never a half-written file (dagster-dbt's own
    preparer writes target/ in place). Parses are serialized by dagster-dbt's lock beside the manifest."""
    _put_venv_dbt_on_path()
    target = Path(project.manifest_path).parent
    target.mkdir(parents=True, exist_ok=True)

    def parse() -> None:
        scratch = Path(tempfile.mkdtemp(prefix=".parse-", dir=target))
        try:
            if (target / PARTIAL_PARSE).exists():  # start from the previous parse, as dbt does in target/
                shutil.copyfile(target / PARTIAL_PARSE, scratch / PARTIAL_PARSE)
            DbtCliResource(project_dir=project).cli(["parse", "--quiet"], target_path=scratch).wait()
            for name in (PARTIAL_PARSE, "semantic_manifest.json", "manifest.json"):
                if (scratch / name).exists():
                    os.replace(scratch / name, target / name)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    run_with_concurrent_update_guard(Path(project.manifest_path), parse)


def __getattr__(name: str) -> DbtProject:
    """`dbt_project` is loaded on first use (PATH set, manifest parsed if missing), not when this module is imported."""
    if name == "dbt_project":
        return _load_dbt_project()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class ComplianceDbtCliResource(DbtCliResource):
    """DbtCliResource without two per-invocation costs we do not need (about 5-10 s per dbt step on 2 cores):
    `dbt --version` in a subprocess (the dbt next to this interpreter is the dbt-core package installed here), and a
    dbt adapter initialised inside the Dagster process (used only to fetch column metadata, which we do not do).
    Both are private hooks of dagster-dbt 0.29 (pinned in requirements.lock)."""

    @cached_property
    def _cli_version(self) -> version.Version:
        return version.parse(importlib.metadata.version("dbt-core"))

    def _initialize_dbt_core_adapter(self, args):  # noqa: ANN001, ANN202
        return None


def dbt_resource() -> DbtCliResource:
    return ComplianceDbtCliResource(project_dir=_load_dbt_project(), profiles_dir=str(DBT_PROJECT_DIR), target="local")


# The range a marts invocation rebuilds, and the range its data tests read (macros/incremental_window.sql reads them
# when the SQL runs).
WINDOW_ENV = {"min_date": "MARTS_WINDOW_MIN_DATE", "max_date": "MARTS_WINDOW_MAX_DATE"}
TEST_WINDOW_ENV = {"min_date": "MARTS_TEST_MIN_DATE", "max_date": "MARTS_TEST_MAX_DATE"}


def window_environment(window: dict[str, str] | None = None,
                       tests: dict[str, str] | None = None) -> dict[str, str | None]:
    """The range variables of one invocation (None: unset): `window` (min_date, max_date) is what the models rebuild;
    `tests`, what the data tests read (default: the window)."""
    return {**{name: (window or {}).get(var) for var, name in WINDOW_ENV.items()},
            **{name: (tests or {}).get(var) for var, name in TEST_WINDOW_ENV.items()}}


def warehouse_environment(warehouse_path: str) -> dict[str, str]:
    """profiles.yml reads the warehouse file from the environment: an absolute path (dbt runs in dbt_project/)."""
    return {"COMPLIANCE_WAREHOUSE_PATH": str(Path(warehouse_path).resolve())}


@contextmanager
def dbt_environment(warehouse_path: str, window: dict[str, str] | None = None,
                    tests: dict[str, str] | None = None) -> Iterator[None]:
    """Environment of a dbt invocation: profiles.yml reads the warehouse file from it (an absolute path: dbt runs in
    dbt_project/), the marts read the range to rebuild (`window`: min_date, max_date; none: the vars' defaults, all
    time) and the data tests theirs (`tests`; none: the window). Restored afterwards, so in-process runs (tests) do
    not leak. dbt's memory limit is its own (COMPLIANCE_DBT_MEMORY_LIMIT, default 512MB): several models run at once
    in one DuckDB instance."""
    wanted = {**warehouse_environment(warehouse_path), **window_environment(window, tests)}
    saved = {key: os.environ.get(key) for key in wanted}
    for key, value in wanted.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def keep_parsed_project(invocation) -> None:  # noqa: ANN001 (a DbtCliInvocation)
    """Make the project dbt parsed in this invocation the starting point of the next one: dagster-dbt copies
    target/partial_parse.msgpack into each invocation's own target directory; the one written at setup holds the
    configured warehouse path (part of dbt's profile check), so a run on another warehouse (tests, benchmarks) re-parsed
    the whole project every time (~5 s on 2 cores). Replaced atomically; a file from another profile only costs the
    next run a full parse, as before."""
    keep_parsed(Path(invocation.target_path))


def keep_parsed(target_path: Path) -> None:
    """keep_parsed_project for the artifacts folder of a dbt process started otherwise (chunk_runner)."""
    parsed = Path(target_path) / PARTIAL_PARSE
    if not parsed.exists():
        return
    target = DBT_PROJECT_DIR / "target" / "partial_parse.msgpack"
    temporary = target.with_name(f".partial_parse.{os.getpid()}.msgpack")
    shutil.copyfile(parsed, temporary)
    os.replace(temporary, target)
