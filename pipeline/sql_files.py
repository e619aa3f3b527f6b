"""Named SQL statements kept in a `.sql` file beside the module that runs them.

The format is the panels' one (dbt_project/panels/README.md): a file holds blocks that start with `-- name: <query>`,
optionally followed by `-- <comment>` lines, then the SQL (one statement, or several for DDL). Each module loads its
own file once:

    SQL = queries_beside(__file__)               # pipeline/warehouse/chats.py -> pipeline/warehouse/chats.sql
    conn.execute(SQL["insert_new_chats"])
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

_NAME = re.compile(r"^--\s*name:\s*([a-z0-9_]+)\s*$", re.MULTILINE)


def parse_queries(text: str, source: str = "<sql>") -> dict[str, str]:
    """{name: SQL} of every `-- name:` block; the comment lines right after the name are dropped."""
    matches = list(_NAME.finditer(text))
    queries: dict[str, str] = {}
    for i, match in enumerate(matches):
        body = text[match.end():matches[i + 1].start() if i + 1 < len(matches) else len(text)]
        lines = body.strip("\n").splitlines()
        while lines and lines[0].lstrip().startswith("--"):
            lines.pop(0)
        sql = "\n".join(lines).strip()
        name = match.group(1)
        if name in queries:
            raise ValueError(f"{source}: query {name!r} defined twice")
        if not sql:
            raise ValueError(f"{source}: query {name!r} has no SQL")
        queries[name] = sql
    return queries


@cache
def load_queries(path: Path) -> dict[str, str]:
    return parse_queries(path.read_text(encoding="utf-8"), str(path))


def queries_beside(module_file: str) -> dict[str, str]:
    """The named statements of the `.sql` file with the module's name (`__file__` of the caller)."""
    return load_queries(Path(module_file).with_suffix(".sql"))
