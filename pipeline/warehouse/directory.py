"""Organizations and their users: a snapshot replaced only when it changed."""

from __future__ import annotations

from datetime import datetime

import duckdb
import pyarrow as pa

DIRECTORY_DDL = """
CREATE SCHEMA IF NOT EXISTS raw;
CREATE TABLE IF NOT EXISTS raw.organizations (
    uuid VARCHAR NOT NULL, name VARCHAR, created_at TIMESTAMPTZ, fetched_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS raw.organization_users (
    organization_uuid VARCHAR NOT NULL, id VARCHAR NOT NULL, full_name VARCHAR, email VARCHAR,
    organization_role VARCHAR, created_at TIMESTAMPTZ, fetched_at TIMESTAMPTZ NOT NULL
);
"""

_ORGS = pa.schema([("uuid", pa.string()), ("name", pa.string()), ("created_at", pa.string())])
_USERS = pa.schema([("organization_uuid", pa.string()), ("id", pa.string()), ("full_name", pa.string()),
                    ("email", pa.string()), ("organization_role", pa.string()), ("created_at", pa.string())])


def replace_directory(conn: duckdb.DuckDBPyConnection, organizations: list[dict], users: list[dict],
                      fetched_at: datetime) -> bool:
    """Replace both tables in one transaction when their content differs; return whether anything changed."""
    conn.execute(DIRECTORY_DDL)
    orgs = pa.Table.from_pylist([{k: o.get(k) for k in _ORGS.names} for o in organizations], schema=_ORGS)
    members = pa.Table.from_pylist([{k: u.get(k) for k in _USERS.names} for u in users], schema=_USERS)
    conn.execute("BEGIN TRANSACTION")
    try:
        conn.register("new_orgs", orgs)
        conn.register("new_users", members)
        old = (set(conn.execute("SELECT uuid, name, strftime(created_at, '%Y-%m-%dT%H:%M:%S.%fZ') "
                                "FROM raw.organizations").fetchall()),
               set(conn.execute("SELECT organization_uuid, id, full_name, email, organization_role "
                                "FROM raw.organization_users").fetchall()))
        new = (set(conn.execute("SELECT uuid, name, strftime(created_at::TIMESTAMPTZ, '%Y-%m-%dT%H:%M:%S.%fZ') "
                                "FROM new_orgs").fetchall()),
               set(conn.execute("SELECT organization_uuid, id, full_name, email, organization_role "
                                "FROM new_users").fetchall()))
        changed = old != new
        if changed:
            conn.execute("DELETE FROM raw.organizations")
            conn.execute("DELETE FROM raw.organization_users")
            conn.execute("INSERT INTO raw.organizations SELECT uuid, name, created_at::TIMESTAMPTZ, $now FROM new_orgs",
                         {"now": fetched_at})
            conn.execute("""INSERT INTO raw.organization_users
                            SELECT organization_uuid, id, full_name, email, organization_role,
                                   created_at::TIMESTAMPTZ, $now FROM new_users""", {"now": fetched_at})
        conn.unregister("new_orgs")
        conn.unregister("new_users")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return bool(changed)
