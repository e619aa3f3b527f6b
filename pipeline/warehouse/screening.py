"""Screening of delivered bytes for records that no JSON reader downstream can take (pure functions).

DuckDB (like orjson) refuses a whole file for one string with invalid UTF-8 or a lone surrogate escape (`"\\ud800"`),
and a refused statement aborts the load's transaction: one hostile record would block every valid one around it.
So each page is checked before it reaches the spool; only a suspicious page (rare) is split record by record, its
hostile records set aside with their reason and exact bytes, the others written on as delivered.
"""

from __future__ import annotations

import base64
import re

import orjson

# Any surrogate escape (valid pairs included, e.g. an escaped emoji): the page is then checked record by record.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
# Tokens of a JSON text that matter for splitting an array into its items: strings (any bytes) and structure.
_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{},]', re.DOTALL)
_ID = re.compile(rb'"id"\s*:\s*"((?:[^"\\]|\\.){1,200})"')


def page_is_suspicious(data: bytes) -> bool:
    """True when the page may hold a record a strict JSON reader refuses (cheap: one decode and one search)."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return _SURROGATE_ESCAPE.search(data) is not None


def split_array(data: bytes) -> list[bytes] | None:
    """The items of a JSON array as their exact bytes, or None when `data` is not one array."""
    items: list[bytes] = []
    depth, start = 0, None
    for match in _TOKEN.finditer(data):
        token = match.group()
        if token in (b"[", b"{"):
            if depth == 0 and token == b"[" and start is None and not items:
                start = match.end()
            depth += 1
        elif token in (b"]", b"}"):
            depth -= 1
            if depth == 0:
                if start is None:
                    return None
                item = data[start:match.start()].strip()
                if item or items:
                    items.append(item)
                return items if not data[match.end():].strip() else None
        elif token == b"," and depth == 1:
            if start is None:
                return None
            items.append(data[start:match.start()].strip())
            start = match.end()
    return None


def text_reason(item: bytes) -> str | None:
    """Why this item cannot be stored as text (None: it can). Deep nesting is no reason here: DuckDB stores it."""
    try:
        orjson.loads(item)
    except orjson.JSONDecodeError as exc:
        message = str(exc)
        if "not valid UTF-8" in message:
            return "invalid_utf8"
        if "surrogate" in message:
            return "invalid_unicode_escape"
        if "depth" in message:
            return None
        return "invalid_json"
    return None


def screen_page(data: bytes) -> tuple[bytes, list[dict]]:
    """The page's array without its hostile items, and those items as quarantine entries (reason, id when readable,
    exact bytes in base64, a readable rendering). A page that is not one array is returned unchanged: the load then
    fails on it with DuckDB's own error."""
    if not page_is_suspicious(data):
        return data, []
    items = split_array(data)
    if items is None:
        return data, []
    kept: list[bytes] = []
    rejected: list[dict] = []
    for item in items:
        reason = text_reason(item)
        if reason is None:
            kept.append(item)
        else:
            rejected.append(quarantine_entry(reason, item))
    return b"[" + b",".join(kept) + b"]", rejected


def quarantine_entry(reason: str, raw: bytes) -> dict:
    found = _ID.search(raw)
    record_id = found.group(1).decode("utf-8", "backslashreplace") if found else None
    return {"reason": reason, "record_id": record_id, "raw_base64": base64.b64encode(raw).decode("ascii"),
            "text": raw.decode("utf-8", "backslashreplace")[:10_000]}
