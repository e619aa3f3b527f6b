"""The shipped panel queries (dbt_project/panels/<mart>.sql): one named query per panel of every dashboard.

    from pipeline.serving.panels import load_panels, open_serving, run_panel
    panels = load_panels()                       # {"billing_monitoring": {"top_plan_types": Panel, ...}, ...}
    with open_serving() as conn:                 # read-only, on COMPLIANCE_SERVING_PATH
        rows = run_panel(conn, "chats", "message_search", {"term": "budget"})

A file holds blocks that start with `-- name: <panel>`, optionally followed by `-- <description>` lines and a
`-- chart: <kind>` line (how the dashboard app draws it when its columns alone don't say: number, line, area, bar,
geo, table), then one SQL statement. Queries name their mart unqualified: that runs as is in the serving file
(marts in its default schema);
`run_panel` sets the search path so the same text also runs in the working warehouse (schema `marts`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import duckdb

from pipeline.config import PROJECT_ROOT

PANELS_DIR = PROJECT_ROOT / "dbt_project" / "panels"
_NAME = re.compile(r"^--\s*name:\s*([a-z0-9_]+)\s*$", re.MULTILINE)
_CHART = re.compile(r"^chart:\s*([a-z_]+)\s*$")
CHART_KINDS = ("number", "line", "area", "bar", "geo", "table")


@dataclass(frozen=True)
class Panel:
    dashboard: str
    name: str
    description: str
    sql: str
    chart: str | None = None  # `-- chart:` annotation; None: the dashboard app infers it from the columns

    @property
    def parameters(self) -> list[str]:
        return sorted(set(re.findall(r"\$([a-z_]+)", self.sql)))


def parse_panels(dashboard: str, text: str) -> dict[str, Panel]:
    matches = list(_NAME.finditer(text))
    panels: dict[str, Panel] = {}
    for i, match in enumerate(matches):
        body = text[match.end():matches[i + 1].start() if i + 1 < len(matches) else len(text)]
        lines = body.strip("\n").splitlines()
        description, chart = [], None
        name = match.group(1)
        while lines and lines[0].startswith("--"):
            line = lines.pop(0).lstrip("-").strip()
            if annotation := _CHART.match(line):
                chart = annotation.group(1)
                if chart not in CHART_KINDS:
                    raise ValueError(f"{dashboard}: panel {name!r} has chart {chart!r}, not one of {CHART_KINDS}")
            else:
                description.append(line)
        sql = "\n".join(lines).strip().rstrip(";").strip()
        if name in panels:
            raise ValueError(f"{dashboard}: panel {name!r} defined twice")
        if not sql:
            raise ValueError(f"{dashboard}: panel {name!r} has no query")
        panels[name] = Panel(dashboard, name, " ".join(description), sql, chart)
    return panels


@cache
def load_panels(directory: Path = PANELS_DIR) -> dict[str, dict[str, Panel]]:
    """{dashboard (= mart name): {panel name: Panel}} for every panels/*.sql file."""
    return {path.stem: parse_panels(path.stem, path.read_text()) for path in sorted(directory.glob("*.sql"))}


def open_serving(path: str | Path | None = None) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the published marts: the catalog file (COMPLIANCE_SERVING_PATH, default
    data/marts.duckdb) whose views read the per-day Parquet files beside it. The publisher never opens this file (it
    replaces it), so a reader never blocks the pipeline. A connection sees the snapshot it opened; open a new one per
    page view or refresh (the files of an old snapshot are removed COMPLIANCE_SERVING_RETAIN_MINUTES after it was
    replaced)."""
    if path is None:
        from pipeline.config import Settings

        path = Settings.from_env().serving_path
    return duckdb.connect(str(path), read_only=True)


def run_panel(conn: duckdb.DuckDBPyConnection, dashboard: str, panel: str, params: dict | None = None,
              *, schema: str | None = None) -> list[tuple]:
    """Run one panel query; `schema` = where the marts are (auto: `marts` in the warehouse, else `main`)."""
    query = load_panels()[dashboard][panel]
    if schema is None:
        has_marts = conn.execute("SELECT count(*) FROM duckdb_schemas() WHERE database_name = current_database() "
                                 "AND schema_name = 'marts'").fetchone()[0]
        schema = "marts" if has_marts else "main"
    conn.execute(f"SET search_path = '{schema},main'")
    wanted = {k: v for k, v in (params or {}).items() if k in query.parameters}
    missing = set(query.parameters) - set(wanted)
    if missing:
        raise ValueError(f"panel {dashboard}.{panel} needs parameters {sorted(missing)}")
    return conn.execute(query.sql, wanted).fetchall() if wanted else conn.execute(query.sql).fetchall()
