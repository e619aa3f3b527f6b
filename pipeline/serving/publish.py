"""Publish the marts to a separate DuckDB file for BI tools, atomically (README: Serving the marts).

BI tools never open the working warehouse: a reader there would block the pipeline (DuckDB allows one writing
process, and a read-only reader also holds a lock). After the marts are built, this module brings a private *shadow*
copy of the marts up to date, copies that file next to the serving path and renames the copy over the serving file
(`os.replace`, atomic on POSIX). A reader that has the old file open keeps reading that complete snapshot (its inode
lives on until it closes); a reader that opens the path later gets the new complete snapshot; nobody ever sees half a
publish, and the publisher never waits for a reader, because it never opens the serving file itself.

Incremental: the shadow (`.<serving name>.shadow`, same directory) is synchronised per 5-minute bucket. Every row of
an incremental mart carries the dbt invocation that wrote it, so a bucket whose (invocation, row count) pairs differ
between warehouse and shadow is exactly a bucket some dbt run rewrote; only those are re-copied. Tables without those
columns, or whose columns changed, are copied whole. A publish thus costs the changed windows plus one file copy,
not a re-encoding of the whole history.

The files are written in DuckDB's v1.0.0 storage format (`ATTACH ... (STORAGE_VERSION 'v1.0.0')`): DuckDB 2.x writes a
format that DuckDB 1.x cannot open, and many BI drivers embed DuckDB 1.x. Verified readable by DuckDB 0.10.3, 1.0.0,
1.1.3, 1.2.2, 1.3.2 and 1.4.4 (tests/serve/test_publish.py checks with a real 1.x reader when DUCKDB1_PYTHON is set).

Message text (restricted.chat_message_text) and the `search_messages(term)` table macro are published only while text
storage is on (COMPLIANCE_STORE_MESSAGE_TEXT); the marts themselves never contain text.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import duckdb

from pipeline.warehouse.files import (
    apply_serving_mode,
    prepare_serving_folder,
    private_file,
    restrict,
    sweep_stale_temporaries,
)

STORAGE_VERSION = "v1.0.0"
# warehouse schema -> schema in the serving file. The marts go to the default schema `main`: BI users and the panel
# queries name them unqualified (`FROM billing_monitoring`), and with the default file name (marts.duckdb, catalog
# "marts") `marts.billing_monitoring` still resolves. A schema named like the file's catalog would make every
# `marts.x` ambiguous ("Ambiguous reference to catalog or schema") in DuckDB 1.x and 2.x alike.
SERVED_SCHEMAS = {"marts": "main"}
TEXT_TABLE = ("restricted", "chat_message_text")
SEARCH_MACRO = "search_messages"
BUCKET_COLUMNS = ("created_5min", "message_5min")
INVOCATION_COLUMN = "dbt_invocation_id"


@dataclass
class PublishResult:
    path: Path
    tables: dict[str, int] = field(default_factory=dict)   # "schema.table" (in the serving file) -> rows
    copied: dict[str, str] = field(default_factory=dict)   # "schema.table" -> "full" | "<n> buckets" | "unchanged"
    message_text_rows: int | None = None                    # None: text not published
    size_bytes: int = 0
    seconds: float = 0.0
    storage_version: str = STORAGE_VERSION
    published_at: datetime | None = None


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _remove(path: Path) -> None:
    for p in (path, path.with_name(path.name + ".wal")):
        try:
            p.unlink()
        except FileNotFoundError:
            pass


def shadow_path(serving_path: Path) -> Path:
    return serving_path.with_name(f".{serving_path.name}.shadow")


def publish(warehouse_path: str | Path, serving_path: str | Path, *, include_message_text: bool,
            storage_version: str = STORAGE_VERSION, memory_limit: str | None = None) -> PublishResult:
    """Bring the shadow up to date with the warehouse's marts, then atomically replace `serving_path` by a copy."""
    started = time.monotonic()
    warehouse_path, serving_path = Path(warehouse_path).resolve(), Path(serving_path).resolve()
    prepare_serving_folder(serving_path)  # private files: pipeline/warehouse/files.py
    sweep_stale_temporaries(serving_path.parent, f".{serving_path.name}.*.publishing")
    shadow = shadow_path(serving_path)
    result = PublishResult(path=serving_path, storage_version=storage_version,
                           published_at=datetime.now(timezone.utc))
    try:
        _sync_shadow(warehouse_path, shadow, result, include_message_text, storage_version, memory_limit)
    except duckdb.Error:
        # an unreadable or foreign shadow (crash mid-checkpoint, other format): rebuild it from scratch once
        _remove(shadow)
        result.tables.clear(), result.copied.clear()
        _sync_shadow(warehouse_path, shadow, result, include_message_text, storage_version, memory_limit)
    restrict(shadow)  # DuckDB creates files with the umask
    # Same directory as the target (os.replace must not cross filesystems); dot-prefixed so BI file pickers skip it.
    tmp = serving_path.with_name(f".{serving_path.name}.{os.getpid()}.publishing")
    try:
        private_file(tmp, b"")  # owner-only from its creation, then the configured mode and group
        shutil.copyfile(shadow, tmp)  # in-kernel copy (sendfile/copy_file_range) on Linux
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        apply_serving_mode(tmp)
        os.replace(tmp, serving_path)
    except BaseException:
        _remove(tmp)
        raise
    _fsync_directory(serving_path.parent)
    result.size_bytes = serving_path.stat().st_size
    result.seconds = time.monotonic() - started
    return result


def _sync_shadow(warehouse_path: Path, shadow: Path, result: PublishResult, include_message_text: bool,
                 storage_version: str, memory_limit: str | None) -> None:
    conn = duckdb.connect(config={"memory_limit": memory_limit} if memory_limit else {})
    try:
        conn.execute("SET TimeZone = 'UTC'")
        conn.execute(f"ATTACH {_literal(str(warehouse_path))} AS wh (READ_ONLY)")
        conn.execute(f"ATTACH {_literal(str(shadow))} AS srv (STORAGE_VERSION {_literal(storage_version)})")
        tables = conn.execute(
            f"SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = 'wh' "
            f"AND schema_name IN ({', '.join(_literal(s) for s in SERVED_SCHEMAS)}) ORDER BY 1, 2").fetchall()
        conn.execute("BEGIN TRANSACTION")
        wanted = {(SERVED_SCHEMAS[s], t) for s, t in tables}
        for schema in sorted({s for s, _ in wanted} - {"main"}):
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS srv.{_quote(schema)}")
        for schema, table in conn.execute(
                "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = 'srv' "
                f"AND schema_name IN ({', '.join(_literal(s) for s in set(SERVED_SCHEMAS.values()))})").fetchall():
            if (schema, table) not in wanted:  # a mart dropped from the project
                conn.execute(f"DROP TABLE srv.{_quote(schema)}.{_quote(table)}")
        for schema, table in tables:
            source = f"wh.{_quote(schema)}.{_quote(table)}"
            target = f"srv.{_quote(SERVED_SCHEMAS[schema])}.{_quote(table)}"
            result.copied[f"{SERVED_SCHEMAS[schema]}.{table}"] = _sync_table(conn, source, target)
            result.tables[f"{SERVED_SCHEMAS[schema]}.{table}"] = \
                conn.execute(f"SELECT count(*) FROM {target}").fetchone()[0]
        result.message_text_rows = _sync_message_text(conn, include_message_text)
        _write_publish_info(conn, result, warehouse_path)
        conn.execute("COMMIT")
        conn.execute("CHECKPOINT srv")
        conn.execute("DETACH srv")  # the file is complete, no WAL left behind
        conn.execute("DETACH wh")
    finally:
        conn.close()


def _columns(conn: duckdb.DuckDBPyConnection, relation: str) -> list[tuple[str, str]]:
    return [(r[0], r[1]) for r in conn.execute(f"DESCRIBE {relation}").fetchall()]


def _sync_table(conn: duckdb.DuckDBPyConnection, source: str, target: str) -> str:
    """Make `target` equal to `source`: changed 5-minute buckets only when the table allows it, else whole."""
    database, schema, table = target.split(".")
    exists = conn.execute("SELECT count(*) FROM duckdb_tables() WHERE database_name = 'srv' AND schema_name = ? "
                          "AND table_name = ?", [schema.strip('"'), table.strip('"')]).fetchone()[0]
    columns = _columns(conn, source)
    names = {c for c, _ in columns}
    bucket = next((c for c in BUCKET_COLUMNS if c in names), None)
    if not exists or _columns(conn, target) != columns or bucket is None or INVOCATION_COLUMN not in names:
        conn.execute(f"CREATE OR REPLACE TABLE {target} AS SELECT * FROM {source}")
        return "full"
    b, inv = _quote(bucket), _quote(INVOCATION_COLUMN)
    conn.execute(f"""
        CREATE OR REPLACE TEMP TABLE changed_buckets AS
        SELECT DISTINCT bucket FROM (
            (SELECT {b} AS bucket, {inv} AS inv, count(*) AS n FROM {source} GROUP BY ALL
             EXCEPT
             SELECT {b}, {inv}, count(*) FROM {target} GROUP BY ALL)
            UNION ALL
            (SELECT {b}, {inv}, count(*) FROM {target} GROUP BY ALL
             EXCEPT
             SELECT {b}, {inv}, count(*) FROM {source} GROUP BY ALL))""")
    changed = conn.execute("SELECT count(*) FROM changed_buckets").fetchone()[0]
    if changed:
        match = f"{b} IN (SELECT bucket FROM changed_buckets)"
        null = f"({b} IS NULL AND EXISTS (SELECT 1 FROM changed_buckets WHERE bucket IS NULL))"
        conn.execute(f"DELETE FROM {target} WHERE {match} OR {null}")
        conn.execute(f"INSERT INTO {target} SELECT * FROM {source} WHERE {match} OR {null}")
    conn.execute("DROP TABLE changed_buckets")
    return f"{changed} buckets" if changed else "unchanged"


def _sync_message_text(conn: duckdb.DuckDBPyConnection, include: bool) -> int | None:
    """The restricted text (by message, block and content hash) and the search macro exactly as dbt defined it in the
    warehouse. Without text storage, or when the warehouse has neither, the shadow has neither either."""
    schema, table = TEXT_TABLE
    target = f"srv.{_quote(schema)}.{_quote(table)}"
    source = f"wh.{_quote(schema)}.{_quote(table)}"
    exists = conn.execute("SELECT count(*) FROM duckdb_tables() WHERE database_name = 'wh' AND schema_name = ? "
                          "AND table_name = ?", [schema, table]).fetchone()[0]
    macro = conn.execute("SELECT parameters, macro_definition FROM duckdb_functions() WHERE database_name = 'wh' "
                         "AND function_name = ? AND function_type = 'table_macro'", [SEARCH_MACRO]).fetchone()
    conn.execute(f"DROP MACRO TABLE IF EXISTS srv.main.{SEARCH_MACRO}")
    if not include or not exists or macro is None:
        conn.execute(f"DROP SCHEMA IF EXISTS srv.{_quote(schema)} CASCADE")
        return None
    conn.execute(f"CREATE SCHEMA IF NOT EXISTS srv.{_quote(schema)}")
    conn.execute(f"CREATE TABLE IF NOT EXISTS {target} AS SELECT * FROM {source} WHERE false")
    key = "message_id, block_index, hash(text)"
    conn.execute(f"DELETE FROM {target} WHERE ({key}) NOT IN (SELECT ({key}) FROM {source})")
    conn.execute(f"INSERT INTO {target} SELECT * FROM {source} WHERE ({key}) NOT IN (SELECT ({key}) FROM {target})")
    params, definition = macro
    # The definition names restricted.chat_message_text without a catalog: it resolves inside the serving file.
    conn.execute(f"CREATE MACRO srv.main.{SEARCH_MACRO}({', '.join(params)}) AS TABLE {definition}")
    return conn.execute(f"SELECT count(*) FROM {target}").fetchone()[0]


def _write_publish_info(conn: duckdb.DuckDBPyConnection, result: PublishResult, warehouse_path: Path) -> None:
    """serving.published_tables: what this file holds and when it was published (a freshness tile for BI)."""
    conn.execute("CREATE SCHEMA IF NOT EXISTS srv.serving")
    conn.execute("""CREATE OR REPLACE TABLE srv.serving.published_tables (
        table_schema VARCHAR, table_name VARCHAR, row_count BIGINT, published_at TIMESTAMPTZ,
        storage_version VARCHAR, source_warehouse VARCHAR)""")
    rows = [(*name.split(".", 1), n, result.published_at, result.storage_version, warehouse_path.name)
            for name, n in result.tables.items()]
    if rows:
        conn.executemany("INSERT INTO srv.serving.published_tables VALUES (?, ?, ?, ?, ?, ?)", rows)


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # not supported on every platform
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
