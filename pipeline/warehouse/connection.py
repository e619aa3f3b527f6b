"""Opening the warehouse file.

DuckDB allows one process to open a file read-write. Inside Dagster every step that opens the warehouse runs in the
pool `duckdb` (limit 1), so a lock conflict only comes from outside (a BI tool on the working file, a CLI session):
wait for it a bounded time, then fail with a message that says what holds the lock.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from pipeline.config import DATA_DIR
from pipeline.warehouse.files import private_dir, restrict


class WarehouseLockedError(RuntimeError):
    pass


# DuckDB's own words when another process holds the file: matched exactly, so that no other I/O error ("lock" in a
# path, a permission error on a lock file) is waited on or reported as a lock.
LOCK_CONFLICT = "Could not set lock on file"


def is_lock_conflict(exc: BaseException) -> bool:
    return isinstance(exc, duckdb.IOException) and LOCK_CONFLICT in str(exc)


def connect(path: str | Path, *, read_only: bool = False, memory_limit: str | None = None,
            lock_timeout: float = 60.0) -> duckdb.DuckDBPyConnection:
    path = Path(path)
    if not read_only:
        # Private by default: the project's data folder is narrowed to owner-only, a missing folder created so.
        private_dir(path.parent, narrow=path.parent.resolve() == DATA_DIR.resolve())
    config = {"memory_limit": memory_limit} if memory_limit else {}
    deadline = time.monotonic() + lock_timeout
    delay = 0.1
    while True:
        try:
            conn = duckdb.connect(str(path), read_only=read_only, config=config)
            break
        except duckdb.IOException as exc:
            if not is_lock_conflict(exc):
                raise
            if time.monotonic() >= deadline:
                raise WarehouseLockedError(
                    f"The warehouse {path} is locked by another process ({exc}). Point BI tools at the serving "
                    "file (COMPLIANCE_SERVING_PATH), never at the working warehouse. Backfills from a shell must go "
                    "through the run queue, behind the running warehouse work: `dagster job launch -j "
                    "ingest_activities --tags '{\"dagster/asset_partition_range_start\": \"...\", "
                    "\"dagster/asset_partition_range_end\": \"...\"}'` (README), not `dagster asset materialize`."
                ) from exc
            time.sleep(delay)
            delay = min(delay * 2, 2.0)
    if not read_only:
        restrict(path)  # DuckDB creates the file (and its .wal) with the umask
    conn.execute("SET TimeZone = 'UTC'")
    return conn


@contextmanager
def open_warehouse(path: str | Path, **kwargs) -> Iterator[duckdb.DuckDBPyConnection]:
    """Connection closed in `finally`, so a failing step never keeps the file lock."""
    conn = connect(path, **kwargs)
    try:
        yield conn
    finally:
        conn.close()
