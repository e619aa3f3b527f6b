"""What every route shares: API errors, query parsing, opaque cursors, JSON bodies, the request context, sending."""

from __future__ import annotations

import base64
import binascii
import dataclasses
import os
import re
from typing import Any
from urllib.parse import parse_qsl

import orjson

from simulator.clock import parse_rfc3339_us
from simulator.keys import ApiKey, b58

_INT = re.compile(r"-?[0-9]{1,12}")


class ApiError(Exception):
    def __init__(self, status: int, etype: str, message: str, headers: list[tuple[bytes, bytes]] | None = None):
        super().__init__(message)
        self.status = status
        self.etype = etype
        self.message = message
        self.headers = headers or []


def bad_request(message: str) -> ApiError:
    return ApiError(400, "invalid_request_error", message)


def not_found(message: str) -> ApiError:
    return ApiError(404, "not_found_error", message)


class Query:
    """Query string with the contract's conventions: `name[]` repeats for arrays (un-bracketed repeats accepted too)."""

    __slots__ = ("pairs", "_multi")

    def __init__(self, raw: bytes):
        self.pairs = parse_qsl(raw.decode("latin-1"), keep_blank_values=True) if raw else []
        multi: dict[str, list[str]] = {}
        for k, v in self.pairs:
            multi.setdefault(k, []).append(v)
        self._multi = multi

    def get(self, name: str) -> str | None:
        vals = self._multi.get(name)
        return vals[0] if vals else None

    def has(self, name: str) -> bool:
        return name in self._multi

    def list(self, name: str) -> list[str]:
        vals = self._multi.get(name + "[]", []) + self._multi.get(name, [])
        out: list[str] = []
        for v in vals:
            out.extend(x for x in (v.split(",") if "," in v else [v]) if x != "")
        return out

    def int_param(self, name: str, default: int | None, lo: int, hi: int) -> int | None:
        raw = self.get(name)
        if raw is None:
            return default
        val = int(raw) if _INT.fullmatch(raw.strip()) else None
        if val is None or not lo <= val <= hi:
            raise bad_request(f"The {name} parameter must be between {lo} and {hi}, inclusive. Got {raw}.")
        return val

    def choice(self, name: str, allowed: tuple[str, ...], default: str) -> str:
        raw = self.get(name)
        if raw is None:
            return default
        if raw not in allowed:
            opts = ", ".join(f'"{a}"' for a in allowed)
            raise bad_request(f"Invalid value for `{name}`: must be one of {opts}. Got \"{raw}\".")
        return raw

    def time_range(self, field: str) -> tuple[int | None, int | None, bool]:
        """created_at.gte/.gt/.lte/.lt -> half-open [gte_us, lt_us) (None = unbounded), plus 'any given'."""
        gte: int | None = None
        lt: int | None = None
        given = False
        for op in ("gte", "gt", "lte", "lt"):
            name = f"{field}.{op}"
            raw = self.get(name)
            if raw is None:
                continue
            given = True
            us = parse_rfc3339_us(raw)
            if us is None:
                raise bad_request(
                    f"The `{name}` parameter contains an invalid timestamp format. Timestamps must be provided in "
                    f"RFC 3339 format e.g., \"2024-03-01T00:00:00Z\". Got \"{raw}\".")
            if op == "gte":
                lo = us
            elif op == "gt":
                lo = us + 1
            elif op == "lte":
                hi = us + 1
            else:
                hi = us
            if op in ("gte", "gt"):
                gte = lo if gte is None else max(gte, lo)
            else:
                lt = hi if lt is None else min(lt, hi)
        return gte, lt, given


# Opaque cursors / page tokens: urlsafe base64 of a small JSON object with a kind marker and the sort position.
# Deliberately not the record ids, so a client that builds cursors from ids fails loudly (400).

def encode_token(obj: dict) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(obj)).rstrip(b"=").decode()


def decode_token(token: str) -> dict | None:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        obj = orjson.loads(raw)
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        return None
    return obj if isinstance(obj, dict) else None


def redeliver(page: list, record: Any, limit: int, at_end: bool) -> tuple[list, bool]:
    """At-least-once delivery: `page` with the cursor's `record` again, at its end when the cursor record sits right
    after the page in result order (a `before_id` page), else at its start. A full page gives up its far record to
    make room: the second value is then True (there is more after it)."""
    full = len(page) >= limit
    if full:
        page = page[1:] if at_end else page[:-1]
    return (page + [record] if at_end else [record] + page), full


def invalid_cursor(param: str, what: str, raw: str) -> ApiError:
    return bad_request(f"Invalid `{param}`. No {what} found for `{param}` \"{raw}\"")


def dump(obj: Any) -> bytes:
    return orjson.dumps(obj, default=str)



@dataclasses.dataclass(slots=True)
class Ctx:
    query: Query
    now_us: int
    key: ApiKey
    path_args: tuple[str, ...]
    repeated: bool = False
    repeated_applied: bool = False


class Route:
    __slots__ = ("name", "method", "scope", "handler", "feed")

    def __init__(self, name: str, method: str, scope: str, handler, feed: bool = False):
        self.name, self.method, self.scope, self.handler, self.feed = name, method, scope, handler, feed


async def send_response(send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def send_error(send, rid: str, err: ApiError, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    body = dump({"type": "error", "error": {"type": err.etype, "message": err.message}, "request_id": rid})
    headers = [(b"content-type", b"application/json"), (b"request-id", rid.encode())]
    headers += err.headers
    if extra:
        headers += extra
    await send_response(send, err.status, body, headers)


async def read_body(receive) -> bytes:
    chunks = []
    while True:
        msg = await receive()
        if msg["type"] != "http.request":
            break
        chunks.append(msg.get("body", b""))
        if not msg.get("more_body"):
            break
    return b"".join(chunks)


def new_request_id() -> str:
    return "req_01" + b58(os.urandom(18), 24)


def public(obj: Any) -> Any:
    """Drop data-side helper keys (leading underscore) from an API object."""
    if isinstance(obj, dict) and any(k.startswith("_") for k in obj):
        return {k: v for k, v in obj.items() if not k.startswith("_")}
    return dict(obj) if isinstance(obj, dict) else obj
