"""A real PostgreSQL server for the Dagster instance, started by the project's own script (deploy/postgres.sh) in a
private directory on a free port, and the instance configuration that points at it (deploy/dagster.postgres.yaml)."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

from pipeline.config import PROJECT_ROOT
from pipeline.demo.dagster_dev import free_port

SCRIPT = PROJECT_ROOT / "deploy" / "postgres.sh"
PG_BIN = Path("/usr/lib/postgresql/15/bin")


def available() -> bool:
    """Installed, or installable by the script (root can apt-get install postgresql-15)."""
    return (PG_BIN / "pg_ctl").exists() or os.geteuid() == 0


class PostgresServer:
    """A running server of deploy/postgres.sh: `database(name)` creates one more database (owner `dagster`) on it
    through the same script and returns its DAGSTER_PG_URL."""

    def __init__(self, env: dict[str, str]):
        self._env = env

    def database(self, name: str = "dagster") -> str:
        created = subprocess.run([str(SCRIPT)], env={**self._env, "COMPLIANCE_PG_DB": name}, capture_output=True,
                                 text=True, timeout=600)
        if created.returncode != 0:
            raise RuntimeError(f"deploy/postgres.sh failed: {created.stderr[-2000:]}")
        env = self._env
        return (f"postgresql+psycopg2://dagster:{env['DAGSTER_PG_PASSWORD']}@127.0.0.1:{env['COMPLIANCE_PG_PORT']}"
                f"/{name}")


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """Start a fresh server (its `dagster` database created). Stopped and removed on exit."""
    # Directly under the system temp folder: the server runs as the `postgres` user, which must reach the folder
    # (pytest's own temp folders are private to root).
    directory = Path(tempfile.mkdtemp(prefix="compliance-pg-"))
    password, port = secrets.token_urlsafe(16), free_port()
    env = {**os.environ, "DAGSTER_PG_PASSWORD": password, "COMPLIANCE_PG_DIR": str(directory),
           "COMPLIANCE_PG_PORT": str(port)}
    started = subprocess.run([str(SCRIPT)], env=env, capture_output=True, text=True, timeout=600)
    if started.returncode != 0:
        shutil.rmtree(directory, ignore_errors=True)
        raise RuntimeError(f"deploy/postgres.sh failed: {started.stderr[-2000:]}")
    try:
        yield PostgresServer(env)
    finally:
        subprocess.run([str(SCRIPT), "stop"], env=env, capture_output=True, timeout=120)
        shutil.rmtree(directory, ignore_errors=True)


def instance_yaml(*, postgres: bool, **overrides) -> str:
    """The project's dagster.yaml, with the Postgres storage section when `postgres` (what `make setup` writes)."""
    instance = yaml.safe_load((PROJECT_ROOT / "dagster.yaml").read_text())
    if postgres:
        instance.update(yaml.safe_load((PROJECT_ROOT / "deploy" / "dagster.postgres.yaml").read_text()))
    for path, value in overrides.items():  # e.g. concurrency__runs__max_concurrent_runs=0
        *parents, leaf = path.split("__")
        node = instance
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    return yaml.safe_dump(instance)
