"""Publish the marts for BI tools: Parquet files per day plus a small DuckDB catalog of views (README: Serving).

BI tools never open the working warehouse: a reader there would block the pipeline (DuckDB allows one writing
process, and a read-only reader also holds a lock). Instead the marts are published next to the serving path:

    marts.duckdb                        the catalog: one view per mart over its files (DuckDB 1.x storage format),
                                        serving.published_tables (rows, publish time), search_messages(term)
    marts_files/<table>/<unit>.<publish id>.parquet
                                        the data: one file per day, and per hour for the newest day (it still grows)
    .marts.duckdb.state.json            the publisher's private record of which file holds what

A publish costs what changed: the dbt step records every range it rewrote (transform.mart_builds), and only the
days (hours, for the newest day) those ranges touch are exported again, as *new* files; unchanged files are never
read or copied. A day keeps its hour files after it stops being the newest (a late row re-exports one hour); they
are compacted into one day file by `compact`, in a run of its own (job `compact_serving_files`), never by a publish:
the 5-minute tick does not pay for a day's copy. Compaction reads the immutable hour files, not the warehouse (it
never blocks the pipeline), and swaps them for the day file in one catalog replacement, so the views name either
the hour files or the day file, never both. Publishes and the swap are serialised by a lock on the files folder.
Marts not built window by window (chats: by chat; alerts) are compared per day (chats) or whole by a fingerprint.

Snapshots: files are never rewritten in place; the new catalog, whose views name exactly the new set of files, is
written beside the serving path and renamed over it (`os.replace`, atomic on POSIX). A reader that has the old
catalog open keeps querying the old files; they are deleted only when no catalog references them and they are older
than COMPLIANCE_SERVING_RETAIN_MINUTES (default 60): longer than any BI query. The publisher never opens the serving
catalog, so a reader never blocks it.

Readable by DuckDB 1.x: the catalog is written with `STORAGE_VERSION 'v1.0.0'` and the views use only
`read_parquet([...])` (tests/serve/test_publish.py checks with a real 1.x reader when DUCKDB1_PYTHON is set).

Message text (restricted.chat_message_text) and the `search_messages(term)` table macro are published only while text
storage is on (COMPLIANCE_STORE_MESSAGE_TEXT); the marts never contain text. Every file is created owner-only and then
given COMPLIANCE_SERVING_FILE_MODE / _GROUP (default 600: owner-only), the catalog as much as the Parquet files.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

import duckdb

from pipeline.settings import load_settings
from pipeline.warehouse.files import (
    PRIVATE_FILE_MODE,
    apply_serving_mode,
    prepare_serving_folder,
    private_dir,
    private_file,
    serving_dir,
    serving_mode,
    sweep_stale_temporaries,
)

STORAGE_VERSION = "v1.0.0"
# warehouse schema -> schema in the catalog. The marts go to the default schema `main`: BI users and the panel
# queries name them unqualified (`FROM billing_monitoring`), and with the default file name (marts.duckdb, catalog
# "marts") `marts.billing_monitoring` still resolves. A schema named like the file's catalog would make every
# `marts.x` ambiguous ("Ambiguous reference to catalog or schema") in DuckDB 1.x and 2.x alike.
SERVED_SCHEMAS = {"marts": "main"}
TEXT_TABLE = ("restricted", "chat_message_text")
SEARCH_MACRO = "search_messages"
# marts rebuilt window by window (the dbt step's ranges say what changed): their time column, the first they have
# (created_5min: the panel rollups, models/marts/rollups, whose rows are whole 5-minute windows)
WINDOW_TIME_COLUMNS = ("created_at", "created_5min")
DAY_COLUMNS = ("message_date",)     # other marts with a day: compared day by day
# a table's event time (the first of these it has): hour files are written in this order, day files in the order of
# their hours (see `_export_instance`), so a time filter (the dashboard's time range) reads only the row groups it
# needs, by their min/max statistics
EVENT_TIME_COLUMNS = ("created_at", "message_created_at", "created_5min")
PUBLISH_THREADS = 2  # tables exported at once
# A day exported whole is sorted by event time up to this many rows. A bigger one (a busy organisation's day) streams
# out in the warehouse's insertion order, window by window, its row groups a few hours each: sorting a 1M-activity
# day of a wide mart, two tables at once, ran out of the default 256 MB (and took 2.6x as long).
SORTED_DAY_ROWS = 250_000


@dataclass
class PublishResult:
    path: Path
    tables: dict[str, int] = field(default_factory=dict)   # "schema.table" (in the catalog) -> rows
    copied: dict[str, str] = field(default_factory=dict)   # "schema.table" -> "full" | "<n> files" | "unchanged"
    message_text_rows: int | None = None                    # None: text not published
    size_bytes: int = 0                                     # catalog + the files it references
    files_written: int = 0
    bytes_written: int = 0
    files_removed: int = 0
    unsorted_after_out_of_memory: list[str] = field(default_factory=list)  # "<table> <unit>" exported again, unsorted
    seconds: float = 0.0
    storage_version: str = STORAGE_VERSION
    published_at: datetime | None = None


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def files_directory(serving_path: Path) -> Path:
    return serving_path.with_name(f"{serving_path.stem}_files")


def state_path(serving_path: Path) -> Path:
    return serving_path.with_name(f".{serving_path.name}.state.json")


def retain_minutes() -> float:
    """COMPLIANCE_SERVING_RETAIN_MINUTES, validated in pipeline.settings."""
    return load_settings().serving_retain_minutes


# ---------------------------------------------------------------------------------------------------------- pure


def hours_of(start: datetime, end: datetime) -> list[datetime]:
    """The UTC hours [start, end) touches."""
    hour = start.astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0)
    hours = []
    while hour < end:
        hours.append(hour)
        hour += timedelta(hours=1)
    return hours


def units_to_export(ranges: list[tuple[datetime, datetime]], newest_day: date | None,
                    existing: set[str]) -> set[str]:
    """Units ('2026-11-02' a day, '2026-11-02T10' an hour) a table must export for the rewritten ranges: the day when
    it is one file already, hours of the newest day and of days still held as hour files (not compacted yet: see
    `compact`), whole days otherwise. Never a compaction: that is `days_to_compact`, outside the tick."""
    hour_days = {u[:10] for u in existing if "T" in u}
    units = set()
    for start, end in ranges:
        for hour in hours_of(start, end):  # an empty range (a build that found nothing changed) has none
            day = hour.date()
            if day.isoformat() not in existing and (day == newest_day or day.isoformat() in hour_days):
                units.add(hour.strftime("%Y-%m-%dT%H"))
            else:
                units.add(day.isoformat())
    # a day exported whole replaces its hour files
    return {u for u in units if "T" not in u or u[:10] not in units}


def days_to_compact(units: dict, newest_day: date | None) -> dict[str, list[str]]:
    """Days held as hour files that are no longer the newest day -> their hour units, oldest day first."""
    days: dict[str, list[str]] = {}
    for unit in sorted(units):
        if "T" in unit and newest_day is not None and date.fromisoformat(unit[:10]) < newest_day:
            days.setdefault(unit[:10], []).append(unit)
    return days


def unit_bounds(unit: str) -> tuple[datetime, datetime]:
    if "T" in unit:
        start = datetime.strptime(unit, "%Y-%m-%dT%H").replace(tzinfo=timezone.utc)
        return start, start + timedelta(hours=1)
    start = datetime.combine(date.fromisoformat(unit), datetime.min.time(), tzinfo=timezone.utc)
    return start, start + timedelta(days=1)


# ---------------------------------------------------------------------------------------------------------- apply


def publish(warehouse_path: str | Path, serving_path: str | Path, *, include_message_text: bool,
            storage_version: str = STORAGE_VERSION, memory_limit: str | None = None) -> PublishResult:
    """Export what changed since the last publish to new Parquet files, then atomically replace the catalog."""
    started = time.monotonic()
    warehouse_path, serving_path = Path(warehouse_path).resolve(), Path(serving_path).resolve()
    prepare_serving_folder(serving_path)  # private files: pipeline/warehouse/files.py
    files_dir = files_directory(serving_path)
    serving_dir(files_dir)
    with _serving_lock(files_dir):
        result = _publish(warehouse_path, serving_path, files_dir, include_message_text, storage_version, memory_limit)
    result.seconds = time.monotonic() - started
    return result


@contextmanager
def _serving_lock(files_dir: Path):
    """Publishes and compaction swaps, one at a time: an exclusive flock on the files folder (no extra file; released
    by the kernel if the process dies)."""
    fd = os.open(files_dir, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _publish(warehouse_path: Path, serving_path: Path, files_dir: Path, include_message_text: bool,
             storage_version: str, memory_limit: str | None) -> PublishResult:
    sweep_stale_temporaries(serving_path.parent, f".{serving_path.name}.*.publishing")
    result = PublishResult(path=serving_path, storage_version=storage_version,
                           published_at=datetime.now(timezone.utc))
    state = _load_state(serving_path)
    publish_id = f"{result.published_at:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    with _export_instance(serving_path, memory_limit) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        conn.execute(f"ATTACH {_literal(str(warehouse_path))} AS wh (READ_ONLY)")
        publisher = _Publisher(conn, files_dir, state, publish_id, result)
        new_state = publisher.run(include_message_text)
        conn.execute("DETACH wh")
        # What `compact` needs to write the same catalog again without the warehouse.
        new_state["catalog"] = {"macro": publisher.macro, "published_at": result.published_at.isoformat(),
                                "storage_version": storage_version, "source_warehouse": warehouse_path.name,
                                "rows": result.tables}
        _write_catalog(conn, serving_path, new_state, result, publisher.macro, storage_version, warehouse_path)
    _apply_mode_to_unchanged_files(files_dir, state, new_state)
    _save_state(serving_path, new_state)
    result.files_removed = _collect_garbage(files_dir, new_state, retain_minutes() * 60)
    result.size_bytes = serving_path.stat().st_size + sum(
        unit["bytes"] for table in new_state["tables"].values() for unit in table["units"].values())
    return result


@contextmanager
def _export_instance(serving_path: Path, memory_limit: str | None) -> Iterator[duckdb.DuckDBPyConnection]:
    """The in-memory DuckDB a publish or compaction exports with. Rows are written in the order they are read (a
    compacted day is its sorted hour files in order; a big day exported whole streams with no sort to hold: see
    SORTED_DAY_ROWS). What spills goes to a private folder of its own beside the serving file, removed after (a
    compaction and a publish may run at once), never to the working directory."""
    spill = private_dir(serving_path.with_name(f".{serving_path.name}.{uuid.uuid4().hex[:8]}.spill"))
    config = {"preserve_insertion_order": True, "temp_directory": str(spill)}
    conn = duckdb.connect(config={**config, "memory_limit": memory_limit} if memory_limit else config)
    try:
        yield conn
    finally:
        conn.close()
        shutil.rmtree(spill, ignore_errors=True)


@dataclass
class CompactionResult:
    days: dict[str, list[str]] = field(default_factory=dict)  # table -> days compacted into one file each
    files_written: int = 0
    bytes_written: int = 0
    hour_files_replaced: int = 0
    skipped: int = 0       # days a publish changed meanwhile: compacted by the next run
    seconds: float = 0.0


def compact(serving_path: str | Path, *, memory_limit: str | None = None) -> CompactionResult:
    """Replace the hour files of every day that is no longer the newest by one day file per table.

    Reads only the published hour files (immutable), never the warehouse, and writes the day files without the
    lock, so publishes go on meanwhile; then, under the lock, swaps them in with one catalog replacement for the
    days whose hour files are still the current ones (a publish that re-exported an hour meanwhile wins: that day
    is compacted by the next run). Same rows, same snapshot (`published_at` unchanged)."""
    started = time.monotonic()
    serving_path = Path(serving_path).resolve()
    files_dir = files_directory(serving_path)
    result = CompactionResult()
    if not files_dir.is_dir():
        return result
    with _serving_lock(files_dir):
        state = _load_state(serving_path)
    newest = state.get("newest_day")
    if "catalog" not in state or newest is None:  # published by an older version: the next publish records both
        return result
    plans = {name: days for name, table in state["tables"].items()
             if (days := days_to_compact(table["units"], date.fromisoformat(newest)))}
    if not plans:
        result.seconds = time.monotonic() - started
        return result
    publish_id = f"{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-compact-{uuid.uuid4().hex[:8]}"
    written: dict[tuple[str, str], dict] = {}
    with _export_instance(serving_path, memory_limit) as conn:
        try:
            for name, days in plans.items():
                units = state["tables"][name]["units"]
                directory = files_dir.joinpath(*name.split("."))
                for day, hours in days.items():
                    path = directory / f"{day}.{publish_id}.parquet"
                    private_file(path, b"")
                    paths = ", ".join(_literal(units[h]["path"]) for h in hours)
                    rows = conn.execute(f"COPY (SELECT * FROM read_parquet([{paths}])) TO {_literal(str(path))} "
                                        "(FORMAT parquet, COMPRESSION zstd)").fetchone()[0]
                    apply_serving_mode(path)
                    written[(name, day)] = {"path": str(path), "rows": rows, "bytes": path.stat().st_size,
                                            "fingerprint": None, "replaces": {h: units[h]["path"] for h in hours}}
        except BaseException:
            for unit in written.values():
                Path(unit["path"]).unlink(missing_ok=True)
            raise
    with _serving_lock(files_dir):
        current = _load_state(serving_path)
        swapped = False
        for (name, day), unit in written.items():
            table = current["tables"].get(name)
            units = table["units"] if table else {}
            now_hours = {u: units[u]["path"] for u in units if u.startswith(f"{day}T")}
            if (table is None or table["columns"] != state["tables"][name]["columns"] or day in units
                    or now_hours != unit["replaces"]):
                Path(unit["path"]).unlink(missing_ok=True)  # a publish changed this day meanwhile
                result.skipped += 1
                continue
            for hour in now_hours:
                del units[hour]
            units[day] = {k: v for k, v in unit.items() if k != "replaces"}
            result.days.setdefault(name, []).append(day)
            result.files_written += 1
            result.bytes_written += unit["bytes"]
            result.hour_files_replaced += len(now_hours)
            swapped = True
        if swapped:
            _rewrite_catalog(serving_path, current)
            _save_state(serving_path, current)
            _collect_garbage(files_dir, current, retain_minutes() * 60)
    result.seconds = time.monotonic() - started
    return result


def _rewrite_catalog(serving_path: Path, state: dict) -> None:
    """The catalog of `state` written again from what the last publish recorded (no warehouse needed)."""
    info = state["catalog"]
    result = PublishResult(path=serving_path, tables=info["rows"], storage_version=info["storage_version"],
                           published_at=datetime.fromisoformat(info["published_at"]))
    macro = tuple(info["macro"]) if info["macro"] else None
    conn = duckdb.connect()
    try:
        _write_catalog(conn, serving_path, state, result, macro, info["storage_version"],
                       Path(info["source_warehouse"]))
    finally:
        conn.close()


def _load_state(serving_path: Path) -> dict:
    path = state_path(serving_path)
    if serving_path.exists() and path.exists():
        try:
            state = json.loads(path.read_text())
            if all(Path(u["path"]).exists() for t in state["tables"].values() for u in t["units"].values()):
                return state
        except (ValueError, KeyError, TypeError):
            pass  # unreadable: publish everything again
    return {"built_at": None, "tables": {}}


def _apply_mode_to_unchanged_files(files_dir: Path, state: dict, new_state: dict) -> None:
    """New files get the serving mode as they are written; when the configured mode or group changed since the last
    publish, the files this publish kept (and their folders) get it too, once."""
    wanted = list(serving_mode())
    new_state["serving_mode"] = wanted
    if state.get("serving_mode", [PRIVATE_FILE_MODE, None]) == wanted:
        return
    for folder in (files_dir, *(p for p in files_dir.rglob("*") if p.is_dir())):
        serving_dir(folder)
    for table in new_state["tables"].values():
        for unit in table["units"].values():
            if Path(unit["path"]).exists():
                apply_serving_mode(Path(unit["path"]))


def _save_state(serving_path: Path, state: dict) -> None:
    path = state_path(serving_path)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    private_file(tmp, json.dumps(state, sort_keys=True).encode())
    os.replace(tmp, path)


class _Publisher:
    def __init__(self, conn: duckdb.DuckDBPyConnection, files_dir: Path, state: dict, publish_id: str,
                 result: PublishResult):
        self.base, self.files_dir, self.state, self.publish_id, self.result = conn, files_dir, state, publish_id, result
        self.macro: tuple[list[str], str] | None = None
        self._local = threading.local()
        self._counting = threading.Lock()

    @property
    def conn(self) -> duckdb.DuckDBPyConnection:
        """This thread's connection to the publish's DuckDB instance (the warehouse attached, same settings)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            if threading.current_thread() is threading.main_thread():
                conn = self.base
            else:
                conn = self.base.cursor()
                conn.execute("SET TimeZone = 'UTC'")
            self._local.conn = conn
        return conn

    def run(self, include_message_text: bool) -> dict:
        conn = self.conn
        built_at = self.state.get("built_at")
        has_builds = self._exists("transform", "mart_builds")
        ranges: list[tuple[datetime, datetime]] = []
        full_refresh, newest_built = False, built_at
        if has_builds:
            rows = conn.execute(
                "SELECT range_start, range_end, full_refresh, built_at FROM wh.transform.mart_builds "
                "WHERE ? IS NULL OR built_at > ?::TIMESTAMPTZ ORDER BY range_start", [built_at, built_at]).fetchall()
            ranges = [(r[0], r[1]) for r in rows]
            full_refresh = any(r[2] for r in rows)
            if rows:
                newest_built = max(r[3] for r in rows).isoformat()
        newest = conn.execute("SELECT max(window_start) FROM wh.raw.activity_attestations WHERE record_count > 0"
                              ).fetchone()[0] if self._exists("raw", "activity_attestations") else None
        newest_day = newest.astimezone(timezone.utc).date() if newest else None

        tables = conn.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = 'wh' "
            f"AND schema_name IN ({', '.join(_literal(s) for s in SERVED_SCHEMAS)}) ORDER BY 1, 2").fetchall()
        new_tables = {}
        # Tables two at a time, each on a connection of its own: a day file is one Parquet row group (one thread), so
        # a publish of many days (after a backfill) used one core of two.
        with ThreadPoolExecutor(max_workers=PUBLISH_THREADS) as pool:
            synced = {}
            for schema, table in tables:
                name = f"{SERVED_SCHEMAS[schema]}.{table}"
                source = f"wh.{_quote(schema)}.{_quote(table)}"
                synced[name] = pool.submit(self._sync, name, source, self.state["tables"].get(name), ranges,
                                           full_refresh or not has_builds, newest_day)
            for name, future in synced.items():  # in table order; the first failure fails the publish
                new_tables[name] = future.result()
                self.result.tables[name] = sum(u["rows"] for u in new_tables[name]["units"].values())
        self.result.copied = {name: self.result.copied[name] for name in synced}
        self.result.message_text_rows = None
        if include_message_text and self._exists(*TEXT_TABLE):
            macro = conn.execute(
                "SELECT parameters, macro_definition FROM duckdb_functions() WHERE database_name = 'wh' "
                "AND function_name = ? AND function_type = 'table_macro'", [SEARCH_MACRO]).fetchone()
            if macro is not None:
                name = ".".join(TEXT_TABLE)
                source = f"wh.{_quote(TEXT_TABLE[0])}.{_quote(TEXT_TABLE[1])}"
                new_tables[name] = self._sync(name, source, self.state["tables"].get(name), [], False, None)
                self.result.message_text_rows = sum(u["rows"] for u in new_tables[name]["units"].values())
                self.macro = (list(macro[0]), macro[1])
        return {"built_at": newest_built, "tables": new_tables,
                "newest_day": newest_day.isoformat() if newest_day else None}

    def _exists(self, schema: str, table: str) -> bool:
        return self.conn.execute("SELECT count(*) FROM duckdb_tables() WHERE database_name = 'wh' "
                                 "AND schema_name = ? AND table_name = ?", [schema, table]).fetchone()[0] > 0

    def _sync(self, name: str, source: str, previous: dict | None, ranges, everything: bool,
              newest_day: date | None) -> dict:
        columns = [list(r[:2]) for r in self.conn.execute(f"DESCRIBE {source}").fetchall()]
        names = {c for c, _ in columns}
        fresh = previous is None or previous["columns"] != columns
        units: dict = {} if fresh else dict(previous["units"])
        units.pop("empty", None)
        written = 0
        order = next((f" ORDER BY {_quote(c)}" for c in EVENT_TIME_COLUMNS if c in names), "")
        time_column = next((c for c in WINDOW_TIME_COLUMNS if c in names), None)
        if time_column:
            day_rows: dict[str, int] = {}  # rows of the days known to export whole (a fresh export's scan counts them)
            if fresh or everything:
                day_rows = {d.isoformat(): n for d, n in self.conn.execute(
                    f"SELECT CAST(timezone('UTC', {time_column}) AS DATE), count(*) FROM {source} GROUP BY 1"
                ).fetchall()}
                days = [date.fromisoformat(d) for d in day_rows]
                wanted = {d.isoformat() for d in days if d != newest_day}
                if newest_day in days:
                    wanted |= {h.strftime("%Y-%m-%dT%H") for h in hours_of(*unit_bounds(newest_day.isoformat()))}
                units = {}
            else:
                wanted = units_to_export(ranges, newest_day, set(units))
            for unit in sorted(wanted):
                lo, hi = unit_bounds(unit)
                for old in [u for u in units if u == unit or (len(unit) == 10 and u.startswith(unit))]:
                    del units[old]
                rows = (f"FROM {source} WHERE {time_column} >= '{lo.isoformat()}'::TIMESTAMPTZ "
                        f"AND {time_column} < '{hi.isoformat()}'::TIMESTAMPTZ")
                sort = "T" in unit or (day_rows[unit] if unit in day_rows else self.conn.execute(
                    f"SELECT count(*) {rows}").fetchone()[0]) <= SORTED_DAY_ROWS
                try:
                    written += self._export(name, unit, f"SELECT * {rows}{order if sort else ''}", units, None)
                except duckdb.OutOfMemoryException:
                    # A sort that did not fit the memory limit (a wide mart's day under SORTED_DAY_ROWS, two tables
                    # at once: a full refresh at 1M activities a day, data_access_exfiltration's 170k rows of 58
                    # columns beside identity_access_auth's), or an export beside it: once more, streamed in the
                    # warehouse's order as a big day is (same rows); a second failure fails the publish.
                    self.result.unsorted_after_out_of_memory.append(f"{name} {unit}")
                    written += self._export(name, unit, f"SELECT * {rows}", units, None)
        else:
            day = next((c for c in DAY_COLUMNS if c in names), None)
            if day:
                prints = {str(r[0]): f"{r[1]}:{r[2]}" for r in self.conn.execute(
                    f"SELECT {_quote(day)}, count(*), bit_xor(hash(t)) FROM {source} t GROUP BY 1").fetchall()}
            else:
                prints = {"all": ":".join(map(str, self.conn.execute(
                    f"SELECT count(*), bit_xor(hash(t)) FROM {source} t").fetchone()))}
            for unit in [u for u in units if u not in prints]:
                del units[unit]
            for unit, fingerprint in sorted(prints.items()):
                if unit in units and units[unit].get("fingerprint") == fingerprint:
                    continue
                units.pop(unit, None)
                if day:
                    condition = f"{_quote(day)} IS NULL" if unit == "None" else f"{_quote(day)} = '{unit}'::DATE"
                    query = f"SELECT * FROM {source} WHERE {condition}{order}"
                else:
                    query = f"SELECT * FROM {source}{order}"
                written += self._export(name, unit, query, units, fingerprint)
        if not units:  # views need at least one file: an empty one carries the columns
            self._export(name, "empty", f"SELECT * FROM {source} WHERE false", units, None, keep_empty=True)
        self.result.copied[name] = "full" if fresh else f"{written} files" if written else "unchanged"
        return {"columns": columns, "units": units}

    def _export(self, name: str, unit: str, query: str, units: dict, fingerprint: str | None,
                keep_empty: bool = False) -> int:
        directory = self.files_dir.joinpath(*name.split("."))
        serving_dir(directory)
        path = directory / f"{unit}.{self.publish_id}.parquet"
        private_file(path, b"")  # never readable by others, even while it is written
        rows = self.conn.execute(f"COPY ({query}) TO {_literal(str(path))} (FORMAT parquet, COMPRESSION zstd)"
                                 ).fetchone()[0]
        if rows == 0 and not keep_empty:
            path.unlink()
            return 0
        apply_serving_mode(path)  # the readers' mode and group (COMPLIANCE_SERVING_FILE_MODE), owner-only by default
        size = path.stat().st_size
        units[unit] = {"path": str(path), "rows": rows, "bytes": size, "fingerprint": fingerprint}
        with self._counting:
            self.result.files_written += 1
            self.result.bytes_written += size
        return 1


def _view_sql(units: dict) -> str:
    paths = ", ".join(_literal(u["path"]) for _, u in sorted(units.items()))
    return f"SELECT * FROM read_parquet([{paths}])"


def _write_catalog(conn: duckdb.DuckDBPyConnection, serving_path: Path, state: dict, result: PublishResult,
                   macro: tuple[list[str], str] | None, storage_version: str, warehouse_path: Path) -> None:
    """A new catalog beside the serving path, renamed over it (same directory: os.replace must not cross
    filesystems; dot-prefixed so BI file pickers skip it)."""
    tmp = serving_path.with_name(f".{serving_path.name}.{os.getpid()}.publishing")
    for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
        leftover.unlink(missing_ok=True)
    try:
        conn.execute(f"ATTACH {_literal(str(tmp))} AS srv (STORAGE_VERSION {_literal(storage_version)})")
        conn.execute("BEGIN TRANSACTION")
        for name, table in sorted(state["tables"].items()):
            schema, relation = name.split(".", 1)
            if schema != "main":
                conn.execute(f"CREATE SCHEMA IF NOT EXISTS srv.{_quote(schema)}")
            conn.execute(f"CREATE VIEW srv.{_quote(schema)}.{_quote(relation)} AS {_view_sql(table['units'])}")
        if macro is not None:
            params, definition = macro
            # The definition names restricted.chat_message_text without a catalog: it resolves inside this file.
            conn.execute(f"CREATE MACRO srv.main.{SEARCH_MACRO}({', '.join(params)}) AS TABLE {definition}")
        conn.execute("CREATE SCHEMA srv.serving")
        conn.execute("""CREATE TABLE srv.serving.published_tables (
            table_schema VARCHAR, table_name VARCHAR, row_count BIGINT, published_at TIMESTAMPTZ,
            storage_version VARCHAR, source_warehouse VARCHAR, file_count INTEGER)""")
        rows = [(*name.split(".", 1), n, result.published_at, storage_version, warehouse_path.name,
                 len(state["tables"][name]["units"])) for name, n in result.tables.items()]
        if rows:
            conn.executemany("INSERT INTO srv.serving.published_tables VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
        conn.execute("COMMIT")
        conn.execute("CHECKPOINT srv")
        conn.execute("DETACH srv")  # the file is complete, no WAL left behind
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        apply_serving_mode(tmp)
        os.replace(tmp, serving_path)
    except BaseException:
        for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
            leftover.unlink(missing_ok=True)
        raise
    _fsync_directory(serving_path.parent)


def _collect_garbage(files_dir: Path, state: dict, retain_seconds: float) -> int:
    """Files no catalog references any more, once older than the retention (readers of an older catalog)."""
    referenced = {u["path"] for t in state["tables"].values() for u in t["units"].values()}
    cutoff = time.time() - retain_seconds
    removed = 0
    for path in files_dir.rglob("*.parquet"):
        if str(path) not in referenced and path.stat().st_mtime < cutoff:
            path.unlink(missing_ok=True)
            removed += 1
    for directory in sorted((p for p in files_dir.rglob("*") if p.is_dir()), reverse=True):
        if not any(directory.iterdir()):
            shutil.rmtree(directory, ignore_errors=True)
    return removed


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # not supported on every platform
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
