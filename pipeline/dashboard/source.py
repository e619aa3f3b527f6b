"""The dashboard app's only access to data: the serving file, read-only, one fresh connection per page load.

    with open_serving(path) as source:
        source.apply_filters(filters)                 # shadows every mart by a filtered view of the same name
        columns = source.describe("chats", "top_users")
        frame = source.run("chats", "top_users")      # the shipped `-- name:` query, text unchanged

Why this shape:
- The app never opens the working warehouse and never keeps the serving file open between page loads: the
  publisher replaces the file atomically (pipeline/serving/publish.py) and never opens it, so it never waits for us,
  and the next page load opens the new file (`version()` changes with it: caches key on it).
- Global filters without a second copy of any panel's SQL: the panel queries name their mart unqualified, so a
  temporary view with the mart's own name (temp objects are resolved first) restricts every panel, and every subquery
  inside it, to the filtered rows. A filter applies to each table that has its column. Filter values travel as DuckDB
  variables (`getvariable`), never spliced into SQL text; DuckDB folds them into the scan, so filters push down.
- Everything that knows the file layout is here; a serving catalog of views (over Parquet files) is queried the same.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

import duckdb
import pandas as pd

from pipeline.serving.panels import Panel, load_panels
from pipeline.serving.publish import EVENT_TIME_COLUMNS

CATALOG = "served"  # alias of the attached serving file (not "serving": that is a schema inside it)
SEARCH_MACRO = "search_messages"

# filter -> the column it restricts (in every table that has it); time is handled apart (TIME_COLUMNS)
FILTER_COLUMNS = {
    "organization": "organization_id",
    "actor_type": "actor_type",
    "event_type": "event_type",
    "user_email": "user_email",
    "role": "role",
    "model": "model",
    "content_type": "content_types",  # a list column: messages containing that block type
}
# the event time of a table: a row is in [start, end) by this column (the published files are sorted by it);
# alerts by their first..last event overlap. A panel rollup's time is its 5-minute window (created_5min): exact, as
# every range the app offers starts and ends on a 5-minute boundary (pipeline/dashboard/timerange.py)
TIME_COLUMNS = EVENT_TIME_COLUMNS
ALERT_SPAN = ("first_event_at", "last_event_at")


@dataclass(frozen=True)
class Filters:
    start: datetime | None = None   # inclusive, UTC
    end: datetime | None = None     # exclusive, UTC
    organization: str | None = None
    actor_type: str | None = None
    event_type: str | None = None
    user_email: str | None = None
    role: str | None = None
    model: str | None = None
    content_type: str | None = None


def version(path: str | Path) -> tuple:
    """Identity of the file now at `path` (a publish replaces the inode): cache key of everything read from it."""
    st = os.stat(path)
    return (str(path), st.st_ino, st.st_mtime_ns, st.st_size)


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


class Source:
    def __init__(self, conn: duckdb.DuckDBPyConnection):
        self.conn = conn
        rows = conn.execute(
            "SELECT table_name, column_name FROM duckdb_columns() WHERE database_name = ? AND schema_name = 'main'",
            [CATALOG]).fetchall()
        self.tables: dict[str, set[str]] = {}
        for table, column in rows:
            self.tables.setdefault(table, set()).add(column)

    # -- filters ---------------------------------------------------------------------------------------------------
    def apply_filters(self, filters: Filters) -> None:
        values = asdict(filters)
        for name, value in values.items():
            self.conn.execute(f"SET VARIABLE dashboard_{name} = $1", [value])
        for table, columns in self.tables.items():
            predicates = []
            time_column = next((c for c in TIME_COLUMNS if c in columns), None)
            if time_column:
                if filters.start is not None:
                    predicates.append(f"{_quote(time_column)} >= getvariable('dashboard_start')")
                if filters.end is not None:
                    predicates.append(f"{_quote(time_column)} < getvariable('dashboard_end')")
            elif set(ALERT_SPAN) <= columns:
                if filters.start is not None:
                    predicates.append(f"{ALERT_SPAN[1]} >= getvariable('dashboard_start')")
                if filters.end is not None:
                    predicates.append(f"{ALERT_SPAN[0]} < getvariable('dashboard_end')")
            for name, column in FILTER_COLUMNS.items():
                if values[name] is None or column not in columns:
                    continue
                if column == "content_types":
                    predicates.append(f"list_contains({column}, getvariable('dashboard_{name}'))")
                else:
                    predicates.append(f"{_quote(column)} = getvariable('dashboard_{name}')")
            if predicates:
                self.conn.execute(f"CREATE OR REPLACE TEMP VIEW {_quote(table)} AS SELECT * FROM "
                                  f"{CATALOG}.main.{_quote(table)} WHERE {' AND '.join(predicates)}")
            else:
                self.conn.execute(f"DROP VIEW IF EXISTS temp.main.{_quote(table)}")

    # -- panels ----------------------------------------------------------------------------------------------------
    @staticmethod
    def panel(dashboard: str, name: str) -> Panel:
        return load_panels()[dashboard][name]

    def _bind(self, panel: Panel, params: dict | None) -> dict:
        wanted = {k: v for k, v in (params or {}).items() if k in panel.parameters}
        missing = set(panel.parameters) - set(wanted)
        if missing:
            raise ValueError(f"panel {panel.dashboard}.{panel.name} needs parameters {sorted(missing)}")
        return wanted

    def describe(self, dashboard: str, name: str, params: dict | None = None) -> list[tuple[str, str]]:
        """(column, DuckDB type) of a panel's result, without running it."""
        panel = self.panel(dashboard, name)
        cursor = self.conn.execute(f"SELECT * FROM ({panel.sql}) AS panel LIMIT 0", self._bind(panel, params))
        return [(d[0], str(d[1])) for d in cursor.description]

    def run(self, dashboard: str, name: str, params: dict | None = None, *, limit: int | None = None,
            offset: int = 0, order_by: str | None = None, descending: bool = False) -> pd.DataFrame:
        """The panel's rows (a page of them with limit/offset; re-sorted by a result column with order_by)."""
        panel = self.panel(dashboard, name)
        sql = panel.sql
        if limit is not None or order_by is not None:
            sql = f"SELECT * FROM ({sql}) AS panel"
            if order_by is not None:
                sql += f" ORDER BY {_quote(order_by)} {'DESC' if descending else 'ASC'} NULLS LAST"
            if limit is not None:
                sql += f" LIMIT {int(limit)} OFFSET {int(offset)}"
        return self.conn.execute(sql, self._bind(panel, params)).df()

    def count(self, dashboard: str, name: str, params: dict | None = None) -> int:
        panel = self.panel(dashboard, name)
        return self.conn.execute(f"SELECT count(*) FROM ({panel.sql}) AS panel",
                                 self._bind(panel, params)).fetchone()[0]

    # -- the file itself -------------------------------------------------------------------------------------------
    def query(self, sql: str, params: list | dict | None = None) -> pd.DataFrame:
        """App-level reads that are not panels (freshness, filter choices, alerts): on the filtered views too."""
        return self.conn.execute(sql, params or []).df()

    def freshness(self) -> tuple[datetime | None, datetime | None]:
        """(last publish time, end of the newest 5-minute window held), both UTC; None when unknown."""
        published = None
        if self.has_table("serving", "published_tables"):
            published = self.conn.execute(
                f"SELECT max(published_at) FROM {CATALOG}.serving.published_tables").fetchone()[0]
        newest = []
        # the rollup holds the same windows as its mart, in far fewer rows
        activity = "activity_overview_5min" if "activity_overview_5min" in self.tables else "activity_overview"
        for table, column in ((activity, "created_5min"), ("chats", "message_5min")):
            if column in self.tables.get(table, ()):
                newest.append(self.conn.execute(
                    f"SELECT max({column}) + INTERVAL 5 MINUTE FROM {CATALOG}.main.{table}").fetchone()[0])
        newest = [n for n in newest if n is not None]
        return published, max(newest) if newest else None

    def filter_choices(self) -> dict[str, list[str]]:
        """The values each global filter offers, from the whole file (not narrowed by the other filters)."""
        choices: dict[str, list[str]] = {}
        for name, column in FILTER_COLUMNS.items():
            table = "chats" if name in ("user_email", "role", "model", "content_type") else "activity_overview"
            if column not in self.tables.get(table, ()):
                continue
            value = f"unnest({column})" if column == "content_types" else _quote(column)
            choices[name] = [r[0] for r in self.conn.execute(
                f"SELECT DISTINCT v FROM (SELECT {value} AS v FROM {CATALOG}.main.{table}) WHERE v IS NOT NULL "
                f"ORDER BY v LIMIT 5000").fetchall()]
        return choices

    def alerts(self) -> pd.DataFrame:
        """The alerts overlapping the filtered time range, newest first (`alerts` mart)."""
        if "alerts" not in self.tables:
            return pd.DataFrame()
        return self.conn.execute("SELECT * FROM alerts ORDER BY last_event_at DESC, alert_id").df()

    def alert_events(self, activity_ids: list[str], span: tuple[datetime, datetime] | None = None) -> pd.DataFrame:
        """The alert's events. Looked up within the alert's first..last event span first (the files are sorted by
        time: a week of ids is not read); all of the file only if that did not find every id."""
        sql = (f"SELECT created_at, event_type, outcome, actor_type, actor_identity, ip_address, geo_country_name, "
               f"organization_id, activity_id FROM {CATALOG}.main.activity_overview "
               f"WHERE activity_id IN (SELECT unnest($ids)) {{}}ORDER BY created_at")
        if span is not None and not any(pd.isna(v) for v in span):
            found = self.conn.execute(sql.format("AND created_at BETWEEN $lo AND $hi "),
                                      {"ids": activity_ids, "lo": span[0], "hi": span[1]}).df()
            if len(found) >= len(set(activity_ids)):
                return found
        return self.conn.execute(sql.format(""), {"ids": activity_ids}).df()

    def has_message_search(self) -> bool:
        return self.conn.execute("SELECT count(*) FROM duckdb_functions() WHERE database_name = ? AND function_name = ?"
                                 " AND function_type = 'table_macro'", [CATALOG, SEARCH_MACRO]).fetchone()[0] > 0

    def has_table(self, schema: str, table: str) -> bool:
        return self.conn.execute("SELECT count(*) FROM duckdb_tables() WHERE database_name = ? AND schema_name = ? "
                                 "AND table_name = ?", [CATALOG, schema, table]).fetchone()[0] > 0


@contextmanager
def open_serving(path: str | Path, *, threads: int | None = None) -> Iterator[Source]:
    """A private in-memory session with the serving file attached read-only; closed (lock released) on exit."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"serving file {path} does not exist yet (COMPLIANCE_SERVING_PATH): run the "
                                f"pipeline (make run) or point COMPLIANCE_SERVING_PATH at a published file")
    conn = duckdb.connect(":memory:", config={"threads": threads} if threads else {})
    try:
        conn.execute("SET TimeZone = 'UTC'")
        conn.execute("SET enable_progress_bar = false")
        conn.execute(f"ATTACH '{str(path).replace(chr(39), chr(39) * 2)}' AS {CATALOG} (READ_ONLY)")
        conn.execute(f"USE {CATALOG}")
        yield Source(conn)
    finally:
        conn.close()
