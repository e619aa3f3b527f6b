"""Complete response bodies holding records no strict JSON reader takes (pure functions).

A record with invalid UTF-8, a lone surrogate escape (`"\\ud800"`) or nesting deeper than orjson's 1,024 levels makes
the whole body fail to decode. Such a body is complete (it is not truncated: retrying gets the same bytes), so the
records of its record array are decoded one by one instead: each hostile one is replaced by a `RejectedRecord`
(reason and exact bytes) for the caller to quarantine, every other record is kept as parsed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import orjson

# Tokens that matter for splitting JSON: strings (any bytes, escapes included) and structure.
_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{},:]', re.DOTALL)
RECORD_ARRAYS = (b'"data"', b'"chat_messages"')  # the keys whose arrays hold records, in our envelopes


@dataclass(frozen=True)
class RejectedRecord:
    """A record of a complete body that cannot be decoded as delivered."""

    reason: str   # invalid_utf8 | invalid_unicode_escape | nesting_too_deep | invalid_json
    raw: bytes = field(repr=False)  # its exact bytes (never in logs: it may hold conversation text)


def is_content_error(exc: orjson.JSONDecodeError) -> bool:
    """A decode error caused by the content of a complete body (not by its end being cut off)."""
    message = str(exc)
    return "not valid UTF-8" in message or "surrogate" in message or "depth limit" in message


def item_reason(item: bytes) -> str | None:
    """Why one JSON item cannot be decoded (None: it can)."""
    try:
        orjson.loads(item)
    except orjson.JSONDecodeError as exc:
        message = str(exc)
        if "not valid UTF-8" in message:
            return "invalid_utf8"
        if "surrogate" in message:
            return "invalid_unicode_escape"
        if "depth limit" in message:
            return "nesting_too_deep"
        return "invalid_json"
    return None


def split_array(data: bytes, start: int = 0) -> tuple[list[bytes], int] | None:
    """Items (exact bytes) of the JSON array opening at `data[start]`, and the offset just after it; None when
    there is no well-formed array there."""
    if data[start:start + 1] != b"[":
        return None
    items: list[bytes] = []
    depth, item_start = 0, start + 1
    for match in _TOKEN.finditer(data, start):
        token = match.group()
        if token in (b"[", b"{"):
            depth += 1
        elif token in (b"]", b"}"):
            depth -= 1
            if depth == 0:
                item = data[item_start:match.start()].strip()
                if item or items:
                    items.append(item)
                return items, match.end()
        elif token == b"," and depth == 1:
            items.append(data[item_start:match.start()].strip())
            item_start = match.end()
    return None


def decode_with_rejects(body: bytes) -> dict | None:
    """The body's top-level object with each undecodable record of a record array replaced by a RejectedRecord;
    None when the body is not an object whose only undecodable parts are records (then it stays an error)."""
    pieces: list[bytes] = []
    arrays: dict[str, list] = {}
    depth, key, last, pos = 0, None, 0, 0
    while (match := _TOKEN.search(body, pos)) is not None:
        token, pos = match.group(), match.end()
        if token == b"[" and depth == 1 and key in RECORD_ARRAYS:
            split = split_array(body, match.start())
            if split is None:
                return None
            items, pos = split
            arrays[key.strip(b'"').decode()] = [
                orjson.loads(item) if (reason := item_reason(item)) is None else RejectedRecord(reason, item)
                for item in items]
            pieces += [body[last:match.start()], b"[]"]
            last, key = pos, None
        elif token in (b"[", b"{"):
            depth, key = depth + 1, None
        elif token in (b"]", b"}"):
            depth, key = depth - 1, None
        elif token == b",":
            key = None
        elif token != b":":
            key = token if depth == 1 else None
    if not arrays:
        return None
    pieces.append(body[last:])
    try:
        data = orjson.loads(b"".join(pieces))
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict):
        return None
    for name, records in arrays.items():
        if data.get(name) == []:
            data[name] = records
    return data
