"""The serving catalog and its Parquet files: complete marts, only what a build changed is written, atomic
replacement, readers never see half a publish and never block the pipeline, and DuckDB 1.x clients read it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from pipeline.defs.serve.assets import marts_file
from pipeline.defs.serve.compaction import compact_serving_files_job
from pipeline.defs.transform.assets import MART_ASSET_KEYS, dbt_activity_marts
from pipeline.serving.publish import STORAGE_VERSION, compact, files_directory, publish, state_path
from tests.transform.marts_build import resources

MARTS = sorted(k.path[-1] for k in MART_ASSET_KEYS)


def table_counts(path: Path, schema: str = "main") -> dict[str, int]:
    """Rows per table of the warehouse's schema, or per view of the serving catalog."""
    with duckdb.connect(str(path), read_only=True) as conn:
        names = [r[0] for r in conn.execute(
            "SELECT table_name FROM duckdb_tables() WHERE schema_name = ? AND database_name = current_database() "
            "UNION ALL SELECT view_name FROM duckdb_views() WHERE schema_name = ? AND NOT internal "
            "AND database_name = current_database()", [schema, schema]).fetchall()]
        return {n: conn.execute(f'SELECT count(*) FROM {schema}."{n}"').fetchone()[0] for n in names}


def test_publish_copies_every_mart_completely(built, tmp_path):
    result = publish(built.warehouse, tmp_path / "marts.duckdb", include_message_text=True)
    assert set(table_counts(built.warehouse, "marts")) == set(MARTS)
    assert table_counts(tmp_path / "marts.duckdb") == table_counts(built.warehouse, "marts")
    assert result.tables == {f"main.{k}": v for k, v in table_counts(built.warehouse, "marts").items()}
    with duckdb.connect(str(tmp_path / "marts.duckdb"), read_only=True) as conn:
        info = conn.execute("SELECT count(*), count(DISTINCT published_at), any_value(storage_version) "
                            "FROM serving.published_tables WHERE table_schema = 'main'").fetchone()
        # default file name: catalog "marts", so `marts.<table>` resolves too (no schema of that name)
        assert conn.execute("SELECT count(*) FROM marts.activity_overview").fetchone()[0] == \
            result.tables["main.activity_overview"]
        for table in ("activity_overview", "chats"):
            with duckdb.connect(str(built.warehouse), read_only=True) as wh:
                assert conn.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchall() == \
                    wh.execute(f"SELECT * FROM marts.{table} ORDER BY ALL").fetchall()
    assert info == (len(MARTS), 1, STORAGE_VERSION)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".marts.duckdb.state.json", "marts.duckdb", "marts_files"], \
        "no temporary file or WAL left behind"
    # a day per file, and hours for the newest day (the extra window's day)
    days = sorted(p.name.split(".")[0] for p in (files_directory(tmp_path / "marts.duckdb") / "main" /
                                                  "activity_overview").iterdir())
    assert days == ["2026-11-02", "2026-11-03T00"]
    # every file in event-time order: a dashboard's time range reads only the row groups it needs
    for table, column in (("activity_overview", "created_at"), ("chats", "message_created_at")):
        for path in (files_directory(tmp_path / "marts.duckdb") / "main" / table).iterdir():
            with duckdb.connect() as conn:
                conn.execute("SET threads = 1")  # file order, as written
                times = [r[0] for r in conn.execute(f"SELECT {column} FROM read_parquet('{path}')").fetchall()]
            assert times and times == sorted(times), path


def test_a_day_too_big_to_sort_streams_out_whole_with_the_same_rows(built, tmp_path, monkeypatch):
    """Above SORTED_DAY_ROWS a day is exported in the warehouse's order, with no sort (memory): the same rows, a
    spill folder of its own removed after, and the newest day's hour files still sorted."""
    monkeypatch.setattr("pipeline.serving.publish.SORTED_DAY_ROWS", 0)
    serving = tmp_path / "marts.duckdb"
    result = publish(built.warehouse, serving, include_message_text=True, memory_limit="256MB")
    assert result.tables == {f"main.{k}": v for k, v in table_counts(built.warehouse, "marts").items()}
    with duckdb.connect(str(serving), read_only=True) as conn, \
            duckdb.connect(str(built.warehouse), read_only=True) as wh:
        assert conn.execute("SELECT * FROM activity_overview ORDER BY ALL").fetchall() == \
            wh.execute("SELECT * FROM marts.activity_overview ORDER BY ALL").fetchall()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".marts.duckdb.state.json", "marts.duckdb", "marts_files"]
    folder = files_directory(serving) / "main" / "activity_overview"
    assert sorted(p.name.split(".")[0] for p in folder.iterdir()) == ["2026-11-02", "2026-11-03T00"]
    hour = next(folder.glob("2026-11-03T00.*"))
    with duckdb.connect() as conn:
        conn.execute("SET threads = 1")
        times = [r[0] for r in conn.execute(f"SELECT created_at FROM read_parquet('{hour}')").fetchall()]
    assert times and times == sorted(times)


def test_a_day_whose_sort_runs_out_of_memory_streams_out_with_the_same_rows(tmp_path, monkeypatch):
    """A day under SORTED_DAY_ROWS whose sort does not fit the memory limit (a wide mart, two tables at once) is
    exported unsorted instead of failing the publish: real DuckDB out-of-memory, 300k rows sorted at 64 MB."""
    monkeypatch.setattr("pipeline.serving.publish.SORTED_DAY_ROWS", 10**9)  # this day is sorted first
    warehouse = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as conn:
        conn.execute("CREATE SCHEMA marts")
        conn.execute("CREATE TABLE marts.wide AS SELECT TIMESTAMPTZ '2026-11-02 00:00:00+00' + to_seconds(i % 86000) "
                     "AS created_at, md5(i::VARCHAR) || md5((i + 1)::VARCHAR) AS a, md5((i + 2)::VARCHAR) "
                     "|| md5((i + 3)::VARCHAR) AS b, md5((i + 4)::VARCHAR) || md5((i + 5)::VARCHAR) AS c, "
                     "md5((i + 6)::VARCHAR) || md5((i + 7)::VARCHAR) AS d FROM range(300000) r(i)")
    serving = tmp_path / "marts.duckdb"
    result = publish(warehouse, serving, include_message_text=False, memory_limit="64MB")
    assert result.unsorted_after_out_of_memory == ["main.wide 2026-11-02"]
    with duckdb.connect(str(serving), read_only=True) as conn, duckdb.connect(str(warehouse), read_only=True) as wh:
        assert conn.execute("SELECT count(*), count(DISTINCT a), sum(hash(a, created_at)) FROM wide").fetchone() == \
            wh.execute("SELECT count(*), count(DISTINCT a), sum(hash(a, created_at)) FROM marts.wide").fetchone()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".marts.duckdb.state.json", "marts.duckdb", "marts_files", "warehouse.duckdb"], "no spill folder left"


def _record_build(warehouse: Path, start: str, end: str) -> None:
    """What the dbt step records after rewriting a range (pipeline/warehouse/mart_windows.py)."""
    with duckdb.connect(str(warehouse)) as conn:
        conn.execute("INSERT INTO transform.mart_builds VALUES (?::TIMESTAMPTZ, ?::TIMESTAMPTZ, false, now())",
                     [start, end])


def test_publish_writes_only_what_a_build_rewrote(built, tmp_path):
    import shutil

    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copyfile(built.warehouse, warehouse)
    serving = tmp_path / "bi" / "marts.duckdb"
    first = publish(warehouse, serving, include_message_text=True)
    assert set(first.copied.values()) == {"full"}
    again = publish(warehouse, serving, include_message_text=True)
    assert set(again.copied.values()) == {"unchanged"} and again.files_written == 0
    with duckdb.connect(str(warehouse)) as conn:  # what an incremental dbt run does to a range: rewrite, delete
        conn.execute("UPDATE marts.activity_overview SET dbt_invocation_id = 'next-run', outcome = 'unknown' "
                     "WHERE created_5min IN ('2026-11-02 10:00+00', '2026-11-02 10:05+00')")
        conn.execute("DELETE FROM marts.claude_usage WHERE created_5min = '2026-11-02 11:00+00'")
        conn.execute("DELETE FROM marts.activity_overview WHERE created_at >= '2026-11-03 00:04+00'")
    _record_build(warehouse, "2026-11-02 10:00+00", "2026-11-02 11:05+00")
    _record_build(warehouse, "2026-11-03 00:00+00", "2026-11-03 01:05+00")
    changed = publish(warehouse, serving, include_message_text=True)
    # a past day is one file; the newest day's hours: 00 rewritten, 01 has no rows (no file)
    assert changed.copied["main.activity_overview"] == "2 files"
    assert changed.copied["main.claude_usage"] == "1 files"  # the extra window has no claude_usage activity
    assert changed.copied["main.chats"] == "unchanged"
    with duckdb.connect(str(warehouse), read_only=True) as wh, duckdb.connect(str(serving), read_only=True) as bi:
        for table in ("activity_overview", "claude_usage", "billing_monitoring"):
            assert bi.execute(f"SELECT * FROM {table} ORDER BY activity_id").fetchall() == \
                wh.execute(f"SELECT * FROM marts.{table} ORDER BY activity_id").fetchall()
    # a new day arrives: the tick's publish leaves the previous day's hour files alone (no day copy in the tick) ...
    with duckdb.connect(str(warehouse)) as conn:
        conn.execute("INSERT INTO raw.activity_attestations SELECT * REPLACE ('2026-11-04 00:00+00'::TIMESTAMPTZ "
                     "AS window_start) FROM raw.activity_attestations WHERE record_count > 0 LIMIT 1")
    _record_build(warehouse, "2026-11-04 00:00+00", "2026-11-04 01:05+00")
    first_of_day = publish(warehouse, serving, include_message_text=True)
    assert first_of_day.copied["main.activity_overview"] == "unchanged" and first_of_day.files_written == 0
    state = json.loads(state_path(serving).read_text())
    assert sorted(state["tables"]["main.activity_overview"]["units"]) == ["2026-11-02", "2026-11-03T00"]
    # ... a late row of that closed day re-exports its hour, not the day ...
    with duckdb.connect(str(warehouse)) as conn:
        conn.execute("UPDATE marts.activity_overview SET outcome = 'late' WHERE created_at "
                     "BETWEEN '2026-11-03 00:00+00' AND '2026-11-03 00:01+00'")
    _record_build(warehouse, "2026-11-03 00:00+00", "2026-11-03 00:05+00")
    late = publish(warehouse, serving, include_message_text=True)
    assert late.copied["main.activity_overview"] == "1 files"
    state = json.loads(state_path(serving).read_text())
    assert sorted(state["tables"]["main.activity_overview"]["units"]) == ["2026-11-02", "2026-11-03T00"]
    before = snapshot(serving)
    catalog_before = serving.stat().st_ino
    # ... and the compaction, in a run of its own (its job), swaps them for one day file: the views' rows are identical
    run = compact_serving_files_job.execute_in_process(
        run_config={"ops": {"compact_serving_day_files": {"config": {"serving_path": str(serving)}}}})
    assert run.success
    meta = next(e for e in run.all_events if e.event_type_value == "STEP_OUTPUT").event_specific_data.metadata
    assert meta["days"].value == ["2026-11-03"] and meta["skipped"].value == 0
    assert meta["hour_files_replaced"].value == meta["files_written"].value > 0  # that day held one hour file
    state = json.loads(state_path(serving).read_text())
    assert sorted(state["tables"]["main.activity_overview"]["units"]) == ["2026-11-02", "2026-11-03"]
    assert serving.stat().st_ino != catalog_before, "a new catalog, renamed over the old one"
    assert snapshot(serving) == before
    assert table_counts(serving) == table_counts(warehouse, "marts")
    assert compact(serving).files_written == 0  # nothing left to compact
    # a later publish over the compacted day exports the day whole again (it is one file now)
    _record_build(warehouse, "2026-11-03 00:00+00", "2026-11-03 00:05+00")
    assert publish(warehouse, serving, include_message_text=True).copied["main.activity_overview"] == "1 files"
    state = json.loads(state_path(serving).read_text())
    assert sorted(state["tables"]["main.activity_overview"]["units"]) == ["2026-11-02", "2026-11-03"]


def snapshot(serving: Path) -> dict:
    """Every row of every view of the catalog, its published_tables and macro (what a reader can see)."""
    with duckdb.connect(str(serving), read_only=True) as bi:
        views = [r[0] for r in bi.execute("SELECT schema_name || '.\"' || view_name || '\"' FROM duckdb_views() "
                                          "WHERE NOT internal AND database_name = current_database()").fetchall()]
        seen = {v: bi.execute(f"SELECT * FROM {v} ORDER BY ALL").fetchall() for v in sorted(views)}
        seen["published"] = bi.execute("SELECT * EXCLUDE (file_count) FROM serving.published_tables "
                                       "ORDER BY ALL").fetchall()
        seen["macros"] = bi.execute("SELECT function_name, macro_definition FROM duckdb_functions() "
                                    "WHERE function_type = 'table_macro' AND NOT internal").fetchall()
    return seen


def hour_files(serving: Path, table: str, day: str) -> dict:
    units = json.loads(state_path(serving).read_text())["tables"][f"main.{table}"]["units"]
    return {u: v["path"] for u, v in units.items() if u.startswith(f"{day}T")}


def test_a_publish_during_a_compaction_wins(built, tmp_path, monkeypatch):
    """A publish that re-exports an hour of the day being compacted, between the compaction's copy and its swap:
    the day keeps the publish's hour files, the compaction's day file is dropped, the next compaction takes it."""
    import shutil

    import pipeline.serving.publish as publish_module

    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copyfile(built.warehouse, warehouse)
    serving = tmp_path / "marts.duckdb"
    publish(warehouse, serving, include_message_text=False)
    with duckdb.connect(str(warehouse)) as conn:  # a new day: 2026-11-03 closes, held as hour files
        conn.execute("INSERT INTO raw.activity_attestations SELECT * REPLACE ('2026-11-04 00:00+00'::TIMESTAMPTZ "
                     "AS window_start) FROM raw.activity_attestations WHERE record_count > 0 LIMIT 1")
    _record_build(warehouse, "2026-11-04 00:00+00", "2026-11-04 00:05+00")
    publish(warehouse, serving, include_message_text=False)
    before = hour_files(serving, "activity_overview", "2026-11-03")
    original_lock, locks = publish_module._serving_lock, []

    def publish_first(files_dir):
        locks.append(files_dir)
        if len(locks) == 2:  # the compaction's swap: a publish of a late row in that day got the lock first
            monkeypatch.setattr(publish_module, "_serving_lock", original_lock)
            with duckdb.connect(str(warehouse)) as conn:
                conn.execute("UPDATE marts.activity_overview SET outcome = 'late' WHERE created_at "
                             "BETWEEN '2026-11-03 00:00+00' AND '2026-11-03 00:01+00'")
            _record_build(warehouse, "2026-11-03 00:00+00", "2026-11-03 00:05+00")
            publish(warehouse, serving, include_message_text=False)
        return original_lock(files_dir)

    monkeypatch.setattr(publish_module, "_serving_lock", publish_first)
    raced = compact(serving)
    assert len(locks) == 2 and raced.skipped >= 1 and "main.activity_overview" not in raced.days
    after = hour_files(serving, "activity_overview", "2026-11-03")
    assert set(after) == set(before) and after != before, "the publish's new hour file stays current"
    assert not list((files_directory(serving) / "main" / "activity_overview").glob("*compact*")), \
        "the compaction's day file is dropped"
    assert table_counts(serving) == table_counts(warehouse, "marts")
    assert compact(serving).days["main.activity_overview"] == ["2026-11-03"]
    assert hour_files(serving, "activity_overview", "2026-11-03") == {}
    with duckdb.connect(str(warehouse), read_only=True) as wh, duckdb.connect(str(serving), read_only=True) as bi:
        assert bi.execute("SELECT * FROM activity_overview ORDER BY ALL").fetchall() == \
            wh.execute("SELECT * FROM marts.activity_overview ORDER BY ALL").fetchall()


def test_serve_asset_publishes_after_the_marts(built, tmp_path):
    target = tmp_path / "bi" / "marts.duckdb"
    result = dg.materialize([dbt_activity_marts, marts_file], resources=resources(built.base_url, built.warehouse),
                            selection=[marts_file],
                            run_config={"ops": {"serve__marts_file": {"config": {"serving_path": str(target)}}}})
    assert result.success
    meta = result.asset_materializations_for_node("serve__marts_file")[0].metadata
    assert meta["tables"].value == len(MARTS)
    assert table_counts(target)["activity_overview"] > 0


COMPLETE = textwrap.dedent("""
    def complete(conn):
        # a complete snapshot: every table holds exactly the rows the publish recorded for it
        expected = dict(conn.execute(
            "SELECT table_name, row_count FROM serving.published_tables").fetchall())
        assert len(expected) >= 17, expected
        for table, rows in expected.items():
            got = conn.execute(f'SELECT count(*) FROM main."{table}"').fetchone()[0]
            assert got == rows, (table, got, rows)
        return conn.execute("SELECT max(published_at)::VARCHAR FROM serving.published_tables").fetchone()[0]
""")

READER = COMPLETE + textwrap.dedent("""
    import sys, duckdb
    held = duckdb.connect(sys.argv[1], read_only=True)      # kept open (read-only lock) through every publish
    first = complete(held)
    print("READY", flush=True)
    checks = 0
    while sys.stdin.readline().strip() != "STOP":            # one line per publish from the test
        assert complete(held) == first, "the held connection must keep its snapshot"
        checks += 1
        print("CHECKED", flush=True)
    print(f"OK {checks}", flush=True)
""")


def test_reader_holding_the_file_never_blocks_publishes_and_always_sees_a_complete_snapshot(built, tmp_path):
    scope: dict = {}
    exec(COMPLETE, scope)  # the same completeness check, for readers that open the file after each publish
    complete = scope["complete"]
    serving = tmp_path / "marts.duckdb"
    publish(built.warehouse, serving, include_message_text=False)
    reader = subprocess.Popen([sys.executable, "-c", READER, str(serving)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    snapshots = set()
    try:
        assert reader.stdout.readline().strip() == "READY", reader.stderr.read()
        for _ in range(20):
            # The reader holds a read-only DuckDB lock on the serving file the whole time: a publisher that opened
            # the file would fail here with "Could not set lock"; this one never opens it.
            publish(built.warehouse, serving, include_message_text=False)
            reader.stdin.write("NEXT\n")
            reader.stdin.flush()
            assert reader.stdout.readline().strip() == "CHECKED", reader.stderr.read()
            with duckdb.connect(str(serving), read_only=True) as fresh:  # a new reader: the new, complete snapshot
                snapshots.add(complete(fresh))
        reader.stdin.write("STOP\n")
        reader.stdin.flush()
        out, err = reader.communicate(timeout=60)
    finally:
        if reader.poll() is None:
            reader.kill()
    assert reader.returncode == 0, err
    assert out.split() == ["OK", "20"]
    assert len(snapshots) == 20


def _duckdb1_python() -> str | None:
    """A Python with DuckDB 1.x to check the format with a real 1.x reader, e.g. a throwaway venv:
    python -m venv /tmp/duckdb1 && /tmp/duckdb1/bin/pip install duckdb==1.4.4;  DUCKDB1_PYTHON=/tmp/duckdb1/bin/python
    """
    return os.environ.get("DUCKDB1_PYTHON")


@pytest.mark.skipif(_duckdb1_python() is None, reason="set DUCKDB1_PYTHON to a Python with duckdb 1.x installed")
def test_duckdb_1x_opens_the_serving_file(built, tmp_path):
    serving = tmp_path / "marts.duckdb"
    publish(built.warehouse, serving, include_message_text=True)
    script = textwrap.dedent("""
        import sys, duckdb
        conn = duckdb.connect(sys.argv[1], read_only=True)
        print(duckdb.__version__, conn.execute("SELECT count(*) FROM activity_overview").fetchone()[0],
              conn.execute("SELECT count(*) FROM search_messages('the')").fetchone()[0] >= 0)
    """)
    out = subprocess.run([_duckdb1_python(), "-c", script, str(serving)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    version, rows, searched = out.stdout.split()
    assert version.startswith("1.") and int(rows) == table_counts(serving)["activity_overview"] and searched == "True"


def _format_version(path: Path) -> int:
    """The storage version number in a DuckDB file header (64 = the v1.0.0 format; DuckDB 1.4 reads 64-67)."""
    with open(path, "rb") as fh:
        header = fh.read(20)
    assert header[8:12] == b"DUCK"
    return int.from_bytes(header[12:20], "little")


def test_serving_file_uses_the_duckdb_1_storage_format(built, tmp_path):
    serving = tmp_path / "marts.duckdb"
    publish(built.warehouse, serving, include_message_text=False)
    with duckdb.connect() as conn:
        conn.execute(f"ATTACH '{serving}' AS s (READ_ONLY)")
        tags = conn.execute("SELECT tags FROM duckdb_databases() WHERE database_name = 's'").fetchone()[0]
    assert tags["storage_version"] == "v1.0.0+"
    assert _format_version(serving) == 64
    # what DuckDB 2.x writes by default, and why the version is pinned: beyond what any DuckDB 1.x reads
    plain = tmp_path / "plain.duckdb"
    with duckdb.connect(str(plain)) as conn:
        conn.execute("CREATE TABLE t AS SELECT 1 AS x")
    assert _format_version(plain) > 67
