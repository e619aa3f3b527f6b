"""The actor identity the monitors group by: dbt_project/macros/actor_identity.sql rendered with jinja2, the very
expression stg_activities writes to `actor_identity` (and every activity mart shows). One definition: a change there
changes dashboards and monitors together."""

from __future__ import annotations

import re
from functools import cache

import jinja2

from pipeline.config import PROJECT_ROOT

MACRO_FILE = PROJECT_ROOT / "dbt_project" / "macros" / "actor_identity.sql"


@cache
def identity_sql(alias: str = "a") -> str:
    """The identity of the raw.activities row `alias` as a SQL expression."""
    module = jinja2.Environment(undefined=jinja2.StrictUndefined).from_string(MACRO_FILE.read_text()).module
    return str(module.actor_identity(alias)).strip()


def email_first(alias: str = "a") -> str:
    """The identity's first field (the email, typed column): rows where it is set need no JSON read. Checked against
    the rendered definition so that reordering the macro cannot silently break the monitors' fast path."""
    first = f"nullif({alias}.actor_email_address, '')"
    if not re.match(r"coalesce\(\s*" + re.escape(first), identity_sql(alias)):
        raise RuntimeError(f"{MACRO_FILE}: the actor identity no longer starts with the email ({first})")
    return first
