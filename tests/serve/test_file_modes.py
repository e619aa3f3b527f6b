"""Private by default on disk (issue #12): warehouse, spool and serving files owner-only; the serving catalog and its
Parquet files get the configured mode and group at every publish; stale temporary files are swept."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from pipeline.serving.publish import files_directory, publish, state_path
from pipeline.warehouse.activities import PageSpool
from pipeline.warehouse.connection import open_warehouse
from pipeline.warehouse.files import FileModeError, serving_mode


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_warehouse_and_spool_are_owner_only(tmp_path):
    warehouse = tmp_path / "new" / "warehouse.duckdb"
    with open_warehouse(warehouse) as conn:
        conn.execute("CREATE TABLE t AS SELECT 1 AS x")
    assert mode(warehouse.parent) == 0o700 and mode(warehouse) == 0o600
    stale = warehouse.parent / ".spool-999999999-x"  # left by a process that is gone
    stale.mkdir()
    with PageSpool(warehouse.parent) as spool:
        page = Path(spool.add([{"id": "a"}]))
        assert mode(spool.directory) == 0o700 and mode(page) == 0o600
    assert not stale.exists()


def test_serving_file_modes_after_each_publish(built, tmp_path, monkeypatch):
    serving = tmp_path / "srv" / "marts.duckdb"
    publish(built.warehouse, serving, include_message_text=True)
    files = [p for p in files_directory(serving).rglob("*") if p.is_file()]
    folders = [files_directory(serving), *(p for p in files_directory(serving).rglob("*") if p.is_dir())]
    assert files and any("restricted" in p.parts for p in files)
    assert mode(serving.parent) == 0o700 and mode(serving) == 0o600 and mode(state_path(serving)) == 0o600
    assert {mode(p) for p in files} == {0o600} and {mode(p) for p in folders} == {0o700}

    monkeypatch.setenv("COMPLIANCE_SERVING_FILE_MODE", "640")
    monkeypatch.setenv("COMPLIANCE_SERVING_FILE_GROUP", str(os.getgid()))
    leftover = serving.with_name(f".{serving.name}.999999999.publishing")  # an interrupted publish of a dead pid
    leftover.write_bytes(b"partial")
    for _ in range(2):  # kept across publishes, not undone by the next one
        publish(built.warehouse, serving, include_message_text=True)
        assert mode(serving) == 0o640 and serving.stat().st_gid == os.getgid()
        files = list(files_directory(serving).rglob("*.parquet"))
        assert any("restricted" in p.parts for p in files)  # message text too: the reviewers' group searches it
        assert {mode(p) for p in files} == {0o640} and {p.stat().st_gid for p in files} == {os.getgid()}
        assert mode(files_directory(serving)) == 0o750
    assert not leftover.exists()
    assert not list(serving.parent.glob("*.publishing"))


@pytest.mark.parametrize("value", ["644", "rw-r--r--", "700"])
def test_a_serving_mode_readable_by_others_is_refused_naming_the_setting(value):
    with pytest.raises(FileModeError, match="COMPLIANCE_SERVING_FILE_MODE"):
        serving_mode({"COMPLIANCE_SERVING_FILE_MODE": value})
