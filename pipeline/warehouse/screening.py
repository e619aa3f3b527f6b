"""Screening of delivered bytes for records that no JSON reader downstream can take (pure functions).

DuckDB (like orjson) refuses a whole file for one string with invalid UTF-8 or a lone surrogate escape (`"\\ud800"`),
and a refused statement aborts the load's transaction: one hostile record would block every valid one around it.
So each page is checked before it reaches the spool; only a suspicious page (rare) is split record by record, its
hostile records set aside with their reason and exact bytes, the others written on as delivered.
"""

from __future__ import annotations

import base64
import re

from pipeline.compliance_api.hostile import item_reason, split_array

# Any surrogate escape (valid pairs included, e.g. an escaped emoji): the page is then checked record by record.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_ID = re.compile(rb'"id"\s*:\s*"((?:[^"\\]|\\.){1,200})"')


def page_is_suspicious(data: bytes) -> bool:
    """True when the page may hold a record a strict JSON reader refuses (cheap: one decode and one search)."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return _SURROGATE_ESCAPE.search(data) is not None


def screen_page(data: bytes) -> tuple[bytes, list[dict]]:
    """The page's array without its hostile items, and those items as quarantine entries (reason, id when readable,
    exact bytes in base64, a readable rendering). A page that is not one array is returned unchanged: the load then
    fails on it with DuckDB's own error."""
    if not page_is_suspicious(data):
        return data, []
    start = len(data) - len(data.lstrip())
    split = split_array(data, start)
    if split is None or data[split[1]:].strip():
        return data, []
    kept: list[bytes] = []
    rejected: list[dict] = []
    for item in split[0]:
        reason = item_reason(item)
        if reason is None or reason == "nesting_too_deep":  # DuckDB has no depth limit: stored as delivered
            kept.append(item)
        else:
            rejected.append(quarantine_entry(reason, item))
    return b"[" + b",".join(kept) + b"]", rejected


def quarantine_entry(reason: str, raw: bytes) -> dict:
    found = _ID.search(raw)
    record_id = found.group(1).decode("utf-8", "backslashreplace") if found else None
    return {"reason": reason, "record_id": record_id, "raw_base64": base64.b64encode(raw).decode("ascii"),
            "text": raw.decode("utf-8", "backslashreplace")[:10_000]}
