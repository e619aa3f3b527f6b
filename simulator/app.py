"""The simulator's HTTP side: a raw ASGI app serving the Compliance API contract (contract.md §2-§8) over a Dataset.

Raw ASGI (no framework) because the activity feed must serve >100k records/s from one client: pages are assembled from
each record's pre-serialized JSON bytes and never re-serialized.

Request pipeline for /v1/compliance/*:
  route -> auth (401, costs nothing) -> rate limiter (429) -> injected fault draw -> scope check (403, already charged)
  -> handler (400/404 validation, data) -> fault post-processing (slow/drop/truncated/repeated) -> access event.
/_sim/* admin endpoints (no auth, loopback clients only) are never rate limited or faulted.

Time: `Clock` is the simulator clock (wall + offset, or frozen); an activity is visible when indexed_us <= now_us.
The rate limiter runs on the real wall clock (its headers are meant for the client's own clock).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import json
import logging
import math
import os
import re
import threading
import time
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import orjson

from simulator.faults import ERROR_BODIES, FaultInjector
from simulator.hostile import HostileRecords

log = logging.getLogger("simulator.app")

# ---------------------------------------------------------------------------------------------------------------------
# Scopes, keys

SCOPE_ACTIVITIES = "read:compliance_activities"
SCOPE_USER_DATA = "read:compliance_user_data"
SCOPE_ORG_DATA = "read:compliance_org_data"
SCOPE_DELETE = "delete:compliance_user_data"

COMPLIANCE_KEY_PREFIX = "sk-ant-api01-"
ADMIN_KEY_PREFIX = "sk-ant-admin01-"

DEFAULT_KEYS: dict[str, list[str]] = {
    "sk-ant-api01-sim-full": [SCOPE_ACTIVITIES, SCOPE_USER_DATA, SCOPE_ORG_DATA, SCOPE_DELETE],
    "sk-ant-api01-sim-activities": [SCOPE_ACTIVITIES],
    "sk-ant-api01-sim-userdata": [SCOPE_USER_DATA],
    "sk-ant-api01-sim-orgdata": [SCOPE_ORG_DATA],
    "sk-ant-admin01-sim-admin": [SCOPE_ACTIVITIES],
}

_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def _b58(data: bytes, length: int) -> str:
    n = int.from_bytes(data, "big")
    out = []
    for _ in range(length):
        n, r = divmod(n, 58)
        out.append(_B58[r])
    return "".join(out)


def key_id_for(key: str) -> str:
    """Stable `apikey_…` id for a key string (what `actor.api_key_id` shows); never reveals the key."""
    import hashlib

    return "apikey_01" + _b58(hashlib.sha256(key.encode()).digest(), 24)


@dataclasses.dataclass(frozen=True, slots=True)
class ApiKey:
    key: str
    id: str
    scopes: tuple[str, ...]
    name: str = ""

    @property
    def is_admin(self) -> bool:
        return self.key.startswith(ADMIN_KEY_PREFIX)

    def masked(self) -> str:
        # the key type prefix only: no secret characters ever leave the process
        return (ADMIN_KEY_PREFIX if self.is_admin else COMPLIANCE_KEY_PREFIX) + "…"


class KeyStore:
    def __init__(self, keys: Iterable[ApiKey]):
        self._by_key = {k.key: k for k in keys}

    @classmethod
    def default(cls) -> "KeyStore":
        return cls(ApiKey(k, key_id_for(k), tuple(s), k.rsplit("-", 1)[-1]) for k, s in DEFAULT_KEYS.items())

    @classmethod
    def from_obj(cls, obj: Any) -> "KeyStore":
        """Accepts {"keys": [...]}, a list of {"key", "scopes", "id"?, "name"?}, or a mapping key -> scopes | {...}."""
        if isinstance(obj, Mapping) and "keys" in obj:
            obj = obj["keys"]
        items: list[ApiKey] = []
        if isinstance(obj, Mapping):
            for k, v in obj.items():
                spec = v if isinstance(v, Mapping) else {"scopes": v}
                items.append(ApiKey(str(k), str(spec.get("id") or key_id_for(str(k))), tuple(spec.get("scopes") or ()),
                                    str(spec.get("name") or "")))
        elif isinstance(obj, list):
            for spec in obj:
                k = str(spec["key"])
                items.append(ApiKey(k, str(spec.get("id") or key_id_for(k)), tuple(spec.get("scopes") or ()),
                                    str(spec.get("name") or "")))
        else:
            raise ValueError("keys file: expected a list or an object")
        return cls(items)

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> "KeyStore":
        return cls.from_obj(json.loads(Path(path).read_text()))

    def lookup(self, key: str | None) -> ApiKey | None:
        # Only Compliance Access Keys and Admin API keys are ever accepted (sk-ant-api03-… → 401).
        if not key or not (key.startswith(COMPLIANCE_KEY_PREFIX) or key.startswith(ADMIN_KEY_PREFIX)):
            return None
        return self._by_key.get(key)

    def describe(self) -> list[dict]:
        return [{"id": k.id, "name": k.name, "key_prefix": k.masked(), "admin": k.is_admin, "scopes": list(k.scopes)}
                for k in self._by_key.values()]

    def __iter__(self):
        return iter(self._by_key.values())


# ---------------------------------------------------------------------------------------------------------------------
# Time

_RFC3339 = re.compile(r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_INT = re.compile(r"-?[0-9]{1,12}")


def parse_rfc3339_us(value: str) -> int | None:
    """RFC 3339 date-time (date AND time AND zone) -> epoch microseconds; None when invalid."""
    m = _RFC3339.fullmatch(value)
    if not m:
        return None
    y, mo, d, h, mi, s, frac, zone = m.groups()
    try:
        dt = datetime(int(y), int(mo), int(d), int(h), int(mi), int(s), tzinfo=timezone.utc)
    except ValueError:
        return None
    us = (dt - _EPOCH) // timedelta(microseconds=1)
    if frac:
        us += int((frac[1:] + "000000")[:6])
    if zone not in ("Z", "z"):
        sign = 1 if zone[0] == "+" else -1
        hh, mm = int(zone[1:3]), int(zone[4:6])
        if hh > 23 or mm > 59:
            return None
        us -= sign * (hh * 3600 + mm * 60) * 1_000_000
    return us


def us_to_iso(us: int) -> str:
    dt = _EPOCH + timedelta(microseconds=us)
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + (f".{dt.microsecond:06d}Z" if dt.microsecond else "Z")


def dt_to_us(dt: datetime) -> int:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return (dt - _EPOCH) // timedelta(microseconds=1)


def _wall_us() -> int:
    return time.time_ns() // 1000


class Clock:
    """Simulator clock: wall + offset, or frozen. Mutable at run time through POST /_sim/clock."""

    def __init__(self, offset_us: int = 0, frozen_us: int | None = None):
        self.offset_us = offset_us
        self.frozen_us = frozen_us

    @classmethod
    def of_config(cls, config: Any) -> "Clock":
        """The clock stored in a SimConfig (`frozen_now`, `clock_offset`), so data side and server share one clock."""
        return ConfigClock(config) if hasattr(config, "frozen_now") and hasattr(config, "clock_offset") else cls()

    def now_us(self) -> int:
        return self.frozen_us if self.frozen_us is not None else _wall_us() + self.offset_us

    def freeze(self, us: int) -> None:
        self.frozen_us = us

    def set_running(self, us: int) -> None:
        self.frozen_us = None
        self.offset_us = us - _wall_us()

    def advance(self, seconds: float) -> None:
        delta = int(round(seconds * 1_000_000))
        if self.frozen_us is not None:
            self.frozen_us += delta
        else:
            self.offset_us += delta

    def wall(self) -> None:
        self.frozen_us = None
        self.offset_us = 0

    def snapshot(self) -> dict:
        now = self.now_us()
        return {"now": us_to_iso(now), "now_us": now, "frozen": self.frozen_us is not None,
                "offset_seconds": self.offset_us / 1e6}


class ConfigClock(Clock):
    """Clock whose state lives in SimConfig.frozen_now / .clock_offset (datetime / timedelta)."""

    def __init__(self, config: Any):
        self.config = config

    @property
    def frozen_us(self) -> int | None:  # type: ignore[override]
        f = self.config.frozen_now
        return dt_to_us(f) if f is not None else None

    @frozen_us.setter
    def frozen_us(self, us: int | None) -> None:
        self.config.frozen_now = None if us is None else _EPOCH + timedelta(microseconds=us)

    @property
    def offset_us(self) -> int:  # type: ignore[override]
        return self.config.clock_offset // timedelta(microseconds=1)

    @offset_us.setter
    def offset_us(self, us: int) -> None:
        self.config.clock_offset = timedelta(microseconds=us)


# ---------------------------------------------------------------------------------------------------------------------
# Rate limiter

RATE_LIMIT_MESSAGE = ("Compliance API rate limit of {n} requests per minute per parent organization has been exceeded. "
                      "Retry after the time indicated by the retry-after header. Quote the request-id response header "
                      "when contacting Anthropic support.")


class RateLimiter:
    """Fixed one-minute window per parent organization (one tenant per simulator, so one budget).

    The window opens at the first request after the previous one expired (a fixed window, not sliding); that keeps
    tests deterministic while matching the contract's reset-timestamp semantics. Real (wall) time, not sim time."""

    WINDOW_S = 60.0

    def __init__(self, limit: int):
        self.limit = limit
        self._lock = threading.Lock()
        self._window_start = -math.inf  # monotonic
        self._wall_start = 0.0
        self._count = 0
        self.rejected = 0

    def hit(self) -> tuple[bool, int, float, int]:
        """Charge one unit. Returns (allowed, remaining, reset_wall_epoch_s, retry_after_s)."""
        with self._lock:
            mono = time.monotonic()
            if mono - self._window_start >= self.WINDOW_S:
                self._window_start = mono
                self._wall_start = time.time()
                self._count = 0
            reset = self._wall_start + self.WINDOW_S
            retry_after = max(1, math.ceil(self._window_start + self.WINDOW_S - mono))
            if self._count >= self.limit:
                self.rejected += 1
                return False, 0, reset, retry_after
            self._count += 1
            return True, self.limit - self._count, reset, retry_after

    def snapshot(self) -> dict:
        return {"limit_per_minute": self.limit, "used_in_window": self._count, "rejected": self.rejected}


def _iso_seconds(epoch_s: float) -> str:
    return datetime.fromtimestamp(math.ceil(epoch_s), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---------------------------------------------------------------------------------------------------------------------
# Errors and query parsing


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


def _invalid_cursor(param: str, what: str, raw: str) -> ApiError:
    return bad_request(f"Invalid `{param}`. No {what} found for `{param}` \"{raw}\"")


def _dump(obj: Any) -> bytes:
    return orjson.dumps(obj, default=str)


# ---------------------------------------------------------------------------------------------------------------------
# The app

RETIRED_TYPES = ("environment_archived", "environment_created", "environment_deleted", "environment_token_minted",
                 "environment_token_revoked", "environment_updated", "design_project_viewed")
PER_USER_UPDATED_AT_REJECTED_FROM = dt_to_us(datetime(2026, 9, 23, tzinfo=timezone.utc))
LOOPBACK = ("127.0.0.1", "::1", "localhost")

_DROP_LOG_MESSAGE = "ASGI callable returned without completing response."
_DROPPED = -1  # stats marker: the `drop` fault closed the connection mid-body


class _QuietDropFilter(logging.Filter):
    """The `drop` fault closes the connection mid-body on purpose; uvicorn logs that as an error. Hide exactly that."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != _DROP_LOG_MESSAGE


def install_log_filter() -> None:
    logging.getLogger("uvicorn.error").addFilter(_QuietDropFilter())


@dataclasses.dataclass(slots=True)
class _Ctx:
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


def _cfg(config: Any, name: str, default: Any = None) -> Any:
    return getattr(config, name, default) if config is not None else default


class SimulatorApp:
    """ASGI application. `dataset` follows the Dataset facade of DESIGN.md (simulator/dataset.py)."""

    def __init__(self, dataset: Any, config: Any = None, *, keys: KeyStore | None = None,
                 clock: Clock | None = None, faults: FaultInjector | None = None, rate_limit: int | None = None,
                 emit_access_events: bool | None = None):
        self.dataset = dataset
        self.config = config if config is not None else getattr(dataset, "config", None)
        cfg = self.config
        if keys is None:
            keys = KeyStore.from_obj(cfg.keys) if _cfg(cfg, "keys") else KeyStore.default()
        self.keys = keys
        self.clock = clock if clock is not None else Clock.of_config(cfg)
        if faults is None:
            faults = FaultInjector(_cfg(cfg, "faults"), int(_cfg(cfg, "fault_seed", 0) or 0),
                                   retry_after_seconds=int(_cfg(cfg, "fault_retry_after", 1) or 1),
                                   slow_seconds=float(_cfg(cfg, "slow_seconds", 3.0) or 3.0))
        self.faults = faults
        self.hostile = HostileRecords()
        limit = rate_limit if rate_limit is not None else int(_cfg(cfg, "rate_limit", 600) or 0)
        self.limiter = RateLimiter(limit) if limit > 0 else None
        self.emit_access_events = (emit_access_events if emit_access_events is not None
                                   else bool(_cfg(cfg, "emit_access_events", True)))
        self._start_us = dt_to_us(_cfg(cfg, "start")) if isinstance(_cfg(cfg, "start"), datetime) else 0
        end = _cfg(cfg, "end")
        self._end_us = dt_to_us(end) if isinstance(end, datetime) else None
        self._known_types: frozenset[str] | None = None
        self.stats_by_endpoint: dict[str, dict[str, int]] = {}
        self.started_at = time.time()
        self._routes = {
            "activities": Route("activities", "GET", SCOPE_ACTIVITIES, self._activities, feed=True),
            "organizations": Route("organizations", "GET", SCOPE_ORG_DATA, self._organizations),
            "users": Route("organization_users", "GET", SCOPE_USER_DATA, self._users),
            "chats": Route("chats", "GET", SCOPE_USER_DATA, self._chats),
            "messages": Route("chat_messages", "GET", SCOPE_USER_DATA, self._messages),
            "delete_chat": Route("chat_delete", "DELETE", SCOPE_DELETE, self._delete_chat),
        }

    # ------------------------------------------------------------------------------------------------ ASGI plumbing

    async def __call__(self, scope, receive, send):
        kind = scope["type"]
        if kind == "http":
            path = scope["path"]
            if path.startswith("/v1/compliance/"):
                await self._api(scope, receive, send)
            elif path.startswith("/_sim/"):
                await self._admin(scope, receive, send)
            else:
                rid = new_request_id()
                await self._send_error(send, rid, ApiError(404, "not_found_error", "Not found."))
        elif kind == "lifespan":
            while True:
                msg = await receive()
                if msg["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif msg["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return

    @staticmethod
    async def _send(send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _send_error(self, send, rid: str, err: ApiError, extra: list[tuple[bytes, bytes]] | None = None) -> None:
        body = _dump({"type": "error", "error": {"type": err.etype, "message": err.message}, "request_id": rid})
        headers = [(b"content-type", b"application/json"), (b"request-id", rid.encode())]
        headers += err.headers
        if extra:
            headers += extra
        await self._send(send, err.status, body, headers)

    @staticmethod
    async def _read_body(receive) -> bytes:
        chunks = []
        while True:
            msg = await receive()
            if msg["type"] != "http.request":
                break
            chunks.append(msg.get("body", b""))
            if not msg.get("more_body"):
                break
        return b"".join(chunks)

    def _route(self, method: str, path: str) -> tuple[Route | None, tuple[str, ...]]:
        parts = path[len("/v1/compliance/"):].split("/")
        n = len(parts)
        route: Route | None = None
        args: tuple[str, ...] = ()
        if n == 1 and parts[0] == "activities":
            route = self._routes["activities"]
        elif n == 1 and parts[0] == "organizations":
            route = self._routes["organizations"]
        elif n == 3 and parts[0] == "organizations" and parts[2] == "users" and parts[1]:
            route, args = self._routes["users"], (parts[1],)
        elif n == 2 and parts == ["apps", "chats"]:
            route = self._routes["chats"]
        elif n == 4 and parts[:2] == ["apps", "chats"] and parts[3] == "messages" and parts[2]:
            route, args = self._routes["messages"], (parts[2],)
        elif n == 3 and parts[:2] == ["apps", "chats"] and parts[2] and method == "DELETE":
            route, args = self._routes["delete_chat"], (parts[2],)
        if route is not None and route.method != method:
            return None, ()
        return route, args

    def _count(self, endpoint: str, status: int) -> None:
        d = self.stats_by_endpoint.setdefault(endpoint, {})
        k = "dropped" if status == _DROPPED else str(status)
        d[k] = d.get(k, 0) + 1

    # ------------------------------------------------------------------------------------------------ API pipeline

    async def _api(self, scope, receive, send) -> None:
        rid = new_request_id()
        method = scope["method"]
        path = scope["path"]
        headers = dict(scope["headers"])  # lower-case bytes names per ASGI
        route, args = self._route(method, path)
        endpoint = route.name if route else "unknown"

        # 1. auth: before anything else, costs nothing
        raw_key = headers.get(b"x-api-key")
        if raw_key is None:
            auth = headers.get(b"authorization", b"")
            if auth[:7].lower() == b"bearer ":
                raw_key = auth[7:].strip()
        key = self.keys.lookup(raw_key.decode("latin-1").strip()) if raw_key else None
        if key is None:
            self._count(endpoint, 401)
            await self._send_error(send, rid, ApiError(401, "authentication_error",
                                                       "The API key provided is invalid or has been revoked."))
            return

        status = 500
        try:
            # 2. rate limit (one budget for every key of the tenant)
            rl_headers: list[tuple[bytes, bytes]] = []
            if self.limiter is not None:
                allowed, remaining, reset, retry_after = self.limiter.hit()
                if not allowed:
                    status = 429
                    await self._send_error(send, rid, ApiError(
                        429, "rate_limit_error", RATE_LIMIT_MESSAGE.format(n=self.limiter.limit),
                        [(b"retry-after", str(retry_after).encode())]))
                    return
                rl_headers = [(b"anthropic-ratelimit-requests-limit", str(self.limiter.limit).encode()),
                              (b"anthropic-ratelimit-requests-remaining", str(remaining).encode()),
                              (b"anthropic-ratelimit-requests-reset", _iso_seconds(reset).encode())]

            # 3. injected fault (never advances anything: error kinds return before the handler runs)
            fault = self.faults.draw() if self.faults.active else None
            if fault is not None and fault in ("429", "500", "502", "503", "504", "529"):
                status = int(fault)
                self.faults.count(fault)
                await self._send_fault_error(send, rid, status)
                return

            # 4. route + scope (a valid key without the scope has already been charged one unit)
            if route is None:
                status = 404
                await self._send_error(send, rid, not_found(f"Not found: {method} {path}"), rl_headers)
                return
            if route.scope not in key.scopes or (key.is_admin and not route.feed):
                status = 403
                await self._send_error(send, rid, ApiError(
                    403, "permission_error",
                    f"Missing required scopes. Got: {list(key.scopes)!r} Needed: {[route.scope]!r}"), rl_headers)
                return

            # 5. handler
            ctx = _Ctx(Query(scope.get("query_string", b"")), self.clock.now_us(), key, args,
                       repeated=(fault == "repeated"))
            if fault == "slow":
                self.faults.count("slow")
                await asyncio.sleep(self.faults.slow_seconds)
                ctx.now_us = self.clock.now_us()
            try:
                status, body = route.handler(ctx)
            except ApiError as err:
                status = err.status
                await self._send_error(send, rid, err, rl_headers)
                return
            if ctx.repeated_applied:
                self.faults.count("repeated")
            if (self.hostile.enabled or self.hostile.altered) and status == 200:
                body = self.hostile.apply(route.name, ctx.query.has("after_id") or ctx.query.has("before_id"), body)

            out_headers = [(b"content-type", b"application/json"), (b"request-id", rid.encode())] + rl_headers
            if fault == "truncated" and status == 200 and len(body) > 2:
                self.faults.count("truncated")
                body = body[: max(1, int(len(body) * self._fraction(rid)))]
            if fault == "drop" and status == 200 and len(body) > 2:
                self.faults.count("drop")
                out_headers.append((b"content-length", str(len(body)).encode()))
                await send({"type": "http.response.start", "status": status, "headers": out_headers})
                await send({"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True})
                status = _DROPPED
                return  # returning without completing makes uvicorn close the connection
            await self._send(send, status, body, out_headers)
        except Exception:
            log.exception("unhandled error serving %s %s", method, path)
            status = 500
            try:
                await self._send_error(send, rid, ApiError(500, "api_error", "Internal server error."),
                                       [(b"x-should-retry", b"false")])
            except Exception:  # response already started or client gone: uvicorn closes the connection
                pass
        finally:
            self._count(endpoint, status)
            if self.emit_access_events:
                self._record_access(scope, headers, key, method, rid, 200 if status == _DROPPED else status)

    @staticmethod
    def _fraction(rid: str) -> float:
        # where to cut a truncated body: deterministic from the request, somewhere in the middle
        return 0.2 + (sum(rid.encode()) % 60) / 100.0

    async def _send_fault_error(self, send, rid: str, status: int) -> None:
        if status == 429:
            await self._send_error(send, rid, ApiError(
                429, "rate_limit_error",
                RATE_LIMIT_MESSAGE.format(n=self.limiter.limit if self.limiter else 600),
                [(b"retry-after", str(self.faults.retry_after_seconds).encode())]))
            return
        etype, message = ERROR_BODIES[status]
        extra = []
        if status == 500 and self.faults.coin():
            extra.append((b"x-should-retry", b"false"))
        await self._send_error(send, rid, ApiError(status, etype, message, extra))

    def _record_access(self, scope, headers, key: ApiKey, method: str, rid: str, status: int) -> None:
        try:
            host = headers.get(b"host", b"api.anthropic.com").decode("latin-1")
            qs = scope.get("query_string", b"").decode("latin-1")
            url = f"{scope.get('scheme', 'http')}://{host}{scope['path']}" + (f"?{qs}" if qs else "")
            client = scope.get("client") or ("127.0.0.1", 0)
            self.dataset.record_api_call(
                now_us=self.clock.now_us(), key_id=key.id, ip=client[0],
                user_agent=headers.get(b"user-agent", b"").decode("latin-1"), method=method, url=url,
                status_code=status, request_id=rid)
        except Exception:  # the access trail must never break serving
            log.exception("record_api_call failed")

    # ------------------------------------------------------------------------------------------------ helpers

    def known_types(self) -> frozenset[str]:
        if self._known_types is None:
            types: set[str] = set(RETIRED_TYPES)
            getter = getattr(self.dataset, "known_activity_types", None)
            try:  # types the generator emits beyond the documented list ("new types appear every week")
                from simulator.generator import UNKNOWN_TYPES

                types.update(UNKNOWN_TYPES)
            except ImportError:
                pass
            if callable(getter):
                types.update(getter())
            else:
                tsv = Path(__file__).with_name("data") / "activity_types.tsv"
                if tsv.exists():
                    for line in tsv.read_text().splitlines()[1:]:
                        if line.strip():
                            types.add(line.split("\t", 1)[0])
            types.add("compliance_api_accessed")
            self._known_types = frozenset(types)
        return self._known_types

    def _org_lookup(self) -> dict[str, tuple[str | None, str | None]]:
        """Any accepted org identifier (org_… or uuid) -> (org_id, uuid)."""
        out: dict[str, tuple[str | None, str | None]] = {}
        for org in self.dataset.organizations():
            uuid = org.get("uuid")
            oid = org.get("id") or org.get("organization_id")
            if oid is None:
                world = getattr(self.dataset, "world", None)
                for o in (getattr(world, "orgs", None) or []):
                    if getattr(o, "uuid", None) == uuid:
                        oid = getattr(o, "id", None)
            for ident in (uuid, oid):
                if ident:
                    out[ident] = (oid, uuid)
        return out

    def _org_filter(self, values: list[str]) -> set[str] | None:
        if not values:
            return None
        lookup = self._org_lookup()
        accepted: set[str] = set()
        for v in values:
            accepted.add(v)
            oid, uuid = lookup.get(v, (None, None))
            if oid:
                accepted.add(oid)
            if uuid:
                accepted.add(uuid)
        return accepted

    # ------------------------------------------------------------------------------------------------ activities

    def _activity_cursor(self, param: str, raw: str | None) -> tuple[int, str] | None:
        if raw is None:
            return None
        tok = decode_token(raw)
        key = None
        if tok and tok.get("k") == "activity" and isinstance(tok.get("t"), int) and isinstance(tok.get("id"), str):
            key = self.dataset.get_activity_key(tok["id"], tok["t"])
        if key is None:
            raise _invalid_cursor(param, "activity", raw)
        return key

    @staticmethod
    def _cursor_of(rec) -> str:
        return encode_token({"k": "activity", "t": rec.created_us, "id": rec.id})

    def _activities(self, ctx: _Ctx) -> tuple[int, bytes]:
        q = ctx.query
        include = q.list("activity_types")
        exclude = q.list("exclude_activity_types")
        if include and exclude:
            raise bad_request("`activity_types[]` and `exclude_activity_types[]` cannot be used together; "
                              "provide only one of them.")
        known = self.known_types()
        for name, vals in (("activity_types[]", include), ("exclude_activity_types[]", exclude)):
            unknown = [v for v in vals if v not in known]
            if unknown:
                raise bad_request(f"Invalid value for `{name}`: unknown activity type \"{unknown[0]}\".")
        actors = set(q.list("actor_ids")) | set(q.list("user_ids"))
        orgs = self._org_filter(q.list("organization_ids"))
        gte, lt, _ = q.time_range("created_at")
        limit = q.int_param("limit", 100, 1, 5000)
        order = q.choice("order", ("asc", "desc"), "desc")
        after_raw, before_raw = q.get("after_id"), q.get("before_id")
        if after_raw is not None and before_raw is not None:
            raise bad_request("Only one of `after_id` or `before_id` may be set.")
        after = self._activity_cursor("after_id", after_raw)
        before = self._activity_cursor("before_id", before_raw)

        now = ctx.now_us
        lo = self._start_us if gte is None else max(gte, self._start_us)
        hi = now + 1 if lt is None else min(lt, now + 1)
        if self._end_us is not None:
            hi = min(hi, self._end_us)

        inc = frozenset(include) if include else None
        exc = frozenset(exclude) if exclude else None
        act = frozenset(actors) if actors else None

        def pred(r) -> bool:
            if inc is not None and r.type not in inc:
                return False
            if exc is not None and r.type in exc:
                return False
            if act is not None and r.actor_id not in act:
                return False
            if orgs is not None and r.organization_id not in orgs and r.organization_uuid not in orgs:
                return False
            return True

        filtered = inc is not None or exc is not None or act is not None or orgs is not None
        desc = order == "desc"
        cursor = before or after
        # before_id = the page adjacent to the cursor on the other side: walk away from the cursor, then flip the page
        walk_desc = (not desc) if before else desc
        page: list = []
        more = False
        if lo < hi:
            it = self.dataset.iter_activities(lo, hi, after=cursor, descending=walk_desc)
            append = page.append
            if filtered:
                for r in it:
                    if r.indexed_us <= now and pred(r):
                        if len(page) >= limit:
                            more = True
                            break
                        append(r)
            else:
                for r in it:
                    if r.indexed_us <= now:
                        if len(page) >= limit:
                            more = True
                            break
                        append(r)
        if before:
            page.reverse()

        if ctx.repeated and cursor is not None and limit >= 2:
            rec = self._find_record(cursor)
            if rec is not None:
                ctx.repeated_applied = True
                if before:  # the cursor record sits right after this page in result order
                    if len(page) >= limit:
                        more = True
                        page = page[1:]
                    page.append(rec)
                else:
                    if len(page) >= limit:
                        more = True
                        page = page[:-1]
                    page.insert(0, rec)

        if page:
            first = b'"' + self._cursor_of(page[0]).encode() + b'"'
            last = b'"' + self._cursor_of(page[-1]).encode() + b'"'
        else:
            first = last = b"null"
        body = b"".join((b'{"data":[', b",".join([r.json for r in page]), b'],"has_more":',
                         b"true" if more else b"false", b',"first_id":', first, b',"last_id":', last, b"}"))
        return 200, body

    def _find_record(self, key: tuple[int, str]):
        t, rid = key
        for r in self.dataset.iter_activities(t, t + 1):
            if r.id == rid:
                return r
        return None

    # ------------------------------------------------------------------------------------------------ directory

    def _page_offset(self, raw: str | None, kind: str, scope_id: str | None = None) -> int:
        if raw is None:
            return 0
        tok = decode_token(raw[5:]) if raw.startswith("page_") else None
        if (not tok or tok.get("k") != kind or not isinstance(tok.get("o"), int) or tok["o"] < 0
                or tok.get("s") != scope_id):
            raise bad_request(f"Invalid `page` token \"{raw}\".")
        return tok["o"]

    @staticmethod
    def _page_token(kind: str, offset: int, scope_id: str | None = None) -> str:
        return "page_" + encode_token({"k": kind, "o": offset, "s": scope_id})

    def _paged(self, items: list, offset: int, limit: int, kind: str, scope_id: str | None = None) -> bytes:
        chunk = items[offset: offset + limit]
        more = offset + limit < len(items)
        return _dump({"data": [_public(x) for x in chunk], "has_more": more,
                      "next_page": self._page_token(kind, offset + limit, scope_id) if more else None})

    def _organizations(self, ctx: _Ctx) -> tuple[int, bytes]:
        q = ctx.query
        limit = q.int_param("limit", 1000, 1, 1000)
        offset = self._page_offset(q.get("page"), "organizations")
        orgs = [{"uuid": o["uuid"], "name": o["name"], "created_at": o["created_at"]}
                for o in self.dataset.organizations()]
        return 200, self._paged(orgs, offset, limit, "organizations")

    def _users(self, ctx: _Ctx) -> tuple[int, bytes]:
        org_uuid = ctx.path_args[0]
        users = self.dataset.users(org_uuid)
        if users is None:
            raise not_found(f"The \"{org_uuid}\" organization does not exist or the requester is not authorized to "
                            f"access it.")
        q = ctx.query
        limit = q.int_param("limit", 500, 1, 1000)
        offset = self._page_offset(q.get("page"), "users", org_uuid)
        return 200, self._paged(users, offset, limit, "users", org_uuid)

    # ------------------------------------------------------------------------------------------------ chats

    def _chat_rows(self, now_us: int) -> list[tuple[int, int, str, dict]]:
        """(created_us, updated_us, id, chat) for every chat visible at now (data side decides visibility)."""
        view = self.dataset.chats_view(now_us)
        rows = []
        for item in view:
            if isinstance(item, tuple):  # (chat, created_us, updated_us) variant
                chat, c_us, u_us = item[0], item[1], item[2]
            else:
                chat = item
                c_us = chat.get("_created_us")
                u_us = chat.get("_updated_us")
                if c_us is None:
                    c_us = parse_rfc3339_us(chat["created_at"])
                if u_us is None:
                    u_us = parse_rfc3339_us(chat["updated_at"])
            rows.append((c_us, u_us, chat["id"], chat))
        return rows

    def _chats(self, ctx: _Ctx) -> tuple[int, bytes]:
        q = ctx.query
        user_ids = q.list("user_ids")
        if len(user_ids) > 10:
            raise bad_request(f"`user_ids[]` accepts at most 10 values. Got {len(user_ids)}.")
        orgs = self._org_filter(q.list("organization_ids"))
        project_ids = q.list("project_ids")
        order_by = q.choice("order_by", ("created_at", "updated_at"), "created_at")
        c_gte, c_lt, c_given = q.time_range("created_at")
        u_gte, u_lt, u_given = q.time_range("updated_at")
        after_raw, before_raw = q.get("after_id"), q.get("before_id")
        per_user = bool(user_ids)
        if per_user:
            if order_by == "updated_at":
                raise bad_request("`order_by=updated_at` cannot be combined with `user_ids[]`: per-user queries are "
                                  "always sorted by `created_at`.")
            if u_given and ctx.now_us >= PER_USER_UPDATED_AT_REJECTED_FROM:
                raise bad_request("`updated_at` filters cannot be combined with `user_ids[]` (deprecated, rejected "
                                  "since 2026-09-22); use an org-wide query with `order_by=updated_at`.")
        else:
            if project_ids:
                raise bad_request("`project_ids[]` requires `user_ids[]`; it is not available for org-wide queries.")
            if before_raw is not None:
                raise bad_request("`before_id` is only supported for per-user queries (with `user_ids[]`).")
            if order_by == "created_at" and u_given:
                raise bad_request("Org-wide queries sorted by `created_at` accept only `created_at` filters; use "
                                  "`order_by=updated_at` to filter on `updated_at`.")
            if order_by == "updated_at" and c_given:
                raise bad_request("Org-wide queries sorted by `updated_at` accept only `updated_at` filters; use "
                                  "`order_by=created_at` to filter on `created_at`.")
        limit = q.int_param("limit", 100, 1, 1000)
        if after_raw is not None and before_raw is not None:
            raise bad_request("Only one of `after_id` or `before_id` may be set.")
        cursor = None
        param = "after_id" if after_raw is not None else "before_id"
        raw = after_raw if after_raw is not None else before_raw
        if raw is not None:
            tok = decode_token(raw)
            if not tok or tok.get("o") != "chat" or not isinstance(tok.get("t"), int) \
                    or not isinstance(tok.get("id"), str):
                raise _invalid_cursor(param, "chat", raw)
            if tok.get("k") != order_by:
                raise bad_request(f"Invalid `{param}`: the cursor was issued for `order_by={tok.get('k')}` and cannot "
                                  f"be used with `order_by={order_by}`.")
            cursor = (tok["t"], tok["id"])

        by_updated = order_by == "updated_at"
        users = set(user_ids) if user_ids else None
        projects = set(project_ids) if project_ids else None
        rows = []
        for c_us, u_us, cid, chat in self._chat_rows(ctx.now_us):
            if users is not None and ((chat.get("user") or {}).get("id") not in users):
                continue
            if projects is not None and chat.get("project_id") not in projects:
                continue
            if orgs is not None and (chat.get("organization_uuid") not in orgs
                                     and chat.get("organization_id") not in orgs):
                continue
            if (c_gte is not None and c_us < c_gte) or (c_lt is not None and c_us >= c_lt):
                continue
            if (u_gte is not None and u_us < u_gte) or (u_lt is not None and u_us >= u_lt):
                continue
            rows.append(((u_us if by_updated else c_us, cid), chat))
        rows.sort(key=lambda x: x[0])
        keys = [k for k, _ in rows]
        if before_raw is not None and cursor is not None:
            end = bisect_left(keys, cursor)
            start = max(0, end - limit)
            chunk = rows[start:end]
            more = start > 0
            rep_at_end = True
        else:
            start = bisect_right(keys, cursor) if cursor is not None else 0
            chunk = rows[start: start + limit]
            more = start + limit < len(rows)
            rep_at_end = False
        if ctx.repeated and cursor is not None and limit >= 2:
            # at-least-once: re-deliver the record at the cursor (if it is still there)
            i = bisect_left(keys, cursor)
            if i < len(keys) and keys[i] == cursor:
                ctx.repeated_applied = True
                if len(chunk) >= limit:
                    more = True
                    chunk = chunk[1:] if rep_at_end else chunk[:-1]
                chunk = chunk + [rows[i]] if rep_at_end else [rows[i]] + chunk

        def cur(k):
            return encode_token({"o": "chat", "k": order_by, "t": k[0], "id": k[1]})

        return 200, _dump({"data": [_public(c) for _, c in chunk], "has_more": more,
                           "first_id": cur(chunk[0][0]) if chunk else None,
                           "last_id": cur(chunk[-1][0]) if chunk else None})

    # ------------------------------------------------------------------------------------------------ messages

    def _messages(self, ctx: _Ctx) -> tuple[int, bytes]:
        chat_id = ctx.path_args[0]
        q = ctx.query
        limit = q.int_param("limit", None, 1, 1000)
        order = q.choice("order", ("asc", "desc"), "asc")
        c_gte, c_lt, _ = q.time_range("created_at")
        q.time_range("updated_at")  # validated; messages carry no updated_at, so it filters nothing
        tr_cap = q.int_param("tool_result_max_chars", 10000, -1, 2**31)
        tu_cap = q.int_param("tool_use_input_max_chars", 10000, -1, 2**31)
        after_raw, before_raw = q.get("after_id"), q.get("before_id")
        if after_raw is not None and before_raw is not None:
            raise bad_request("Only one of `after_id` or `before_id` may be set.")
        # truncation (incl. `-1` = server max) is the data side's, so ground truth and API agree
        res = self.dataset.chat_messages_view(chat_id, ctx.now_us, tool_use_input_max_chars=tu_cap,
                                              tool_result_max_chars=tr_cap)
        if res is None:
            raise not_found(f"Chat {chat_id} not found.")
        chat, messages = res
        cursor = None
        param = "after_id" if after_raw is not None else "before_id"
        raw = after_raw if after_raw is not None else before_raw
        if raw is not None:
            tok = decode_token(raw)
            if (not tok or tok.get("k") != "message" or tok.get("chat") != chat_id or not isinstance(tok.get("t"), int)
                    or not isinstance(tok.get("id"), str)):
                raise _invalid_cursor(param, "message", raw)
            cursor = (tok["t"], tok["id"])

        rows = []
        for m in messages:
            c_us = parse_rfc3339_us(m["created_at"])
            if (c_gte is not None and c_us < c_gte) or (c_lt is not None and c_us >= c_lt):
                continue
            rows.append(((c_us, m["id"]), m))
        rows.sort(key=lambda x: x[0])
        desc = order == "desc"
        if desc:
            rows.reverse()
        # position in result order: for desc compare with negated keys by walking
        keys = [k for k, _ in rows]

        def pos_after(c):  # index of first row strictly after c in result order
            if desc:
                return next((i for i, k in enumerate(keys) if k < c), len(keys))
            return bisect_right(keys, c)

        def pos_at_or_after(c):
            if desc:
                return next((i for i, k in enumerate(keys) if k <= c), len(keys))
            return bisect_left(keys, c)

        n = len(rows)
        lim = limit if limit is not None else n
        if before_raw is not None and cursor is not None:
            end = pos_at_or_after(cursor)
            start = max(0, end - lim)
            chunk = rows[start:end]
            more = start > 0
            rep_at_end = True
        else:
            start = pos_after(cursor) if cursor is not None else 0
            chunk = rows[start: start + lim]
            more = start + lim < n
            rep_at_end = False
        if ctx.repeated and cursor is not None and lim >= 2:
            i = pos_at_or_after(cursor)
            if i < n and keys[i] == cursor:
                ctx.repeated_applied = True
                if len(chunk) >= lim:
                    more = True
                    chunk = chunk[1:] if rep_at_end else chunk[:-1]
                chunk = chunk + [rows[i]] if rep_at_end else [rows[i]] + chunk

        def cur(k):
            return encode_token({"k": "message", "chat": chat_id, "t": k[0], "id": k[1]})

        out = _public(chat)
        out["chat_messages"] = [m for _, m in chunk]
        out["has_more"] = more
        out["first_id"] = cur(chunk[0][0]) if chunk else None
        out["last_id"] = cur(chunk[-1][0]) if chunk else None
        return 200, _dump(out)

    def _delete_chat(self, ctx: _Ctx) -> tuple[int, bytes]:
        chat_id = ctx.path_args[0]
        if not self.dataset.hard_delete_chat(chat_id, ctx.now_us):
            raise not_found(f"Chat {chat_id} not found.")
        return 200, _dump({"id": chat_id, "type": "claude_chat_deleted"})

    # ------------------------------------------------------------------------------------------------ admin

    async def _admin(self, scope, receive, send) -> None:
        rid = new_request_id()
        client = scope.get("client") or ("127.0.0.1", 0)
        hdrs = [(b"content-type", b"application/json"), (b"request-id", rid.encode())]
        if client[0] not in LOOPBACK and not str(client[0]).startswith("127."):
            await self._send_error(send, rid, ApiError(403, "permission_error", "/_sim/* is loopback only."))
            return
        path, method = scope["path"], scope["method"]
        try:
            if path == "/_sim/health" and method == "GET":
                body = {"status": "ok", "now": us_to_iso(self.clock.now_us()), "uptime_seconds":
                        round(time.time() - self.started_at, 3)}
            elif path == "/_sim/config" and method == "GET":
                body = self._config_view()
            elif path == "/_sim/clock":
                if method == "POST":
                    self._set_clock(orjson.loads(await self._read_body(receive) or b"{}"))
                body = self.clock.snapshot()
            elif path == "/_sim/faults":
                if method == "POST":
                    payload = orjson.loads(await self._read_body(receive) or b"{}")
                    reseed = False
                    if isinstance(payload, dict):
                        reseed = bool(payload.pop("_reseed", False))
                        if "spec" in payload:
                            payload = payload["spec"]
                    self.faults.set_rates(payload, reseed=reseed)
                body = self.faults.snapshot()
            elif path == "/_sim/hostile":
                if method == "POST":
                    payload = orjson.loads(await self._read_body(receive) or b"{}")
                    payload = payload if isinstance(payload, dict) else {}
                    self.hostile.enabled = bool(payload.get("enabled"))
                    self.hostile.altered = bool(payload.get("altered"))
                body = self.hostile.snapshot()
            elif path == "/_sim/stats" and method == "GET":
                body = self.stats()
            elif path == "/_sim/ground-truth" and method == "GET":
                q = Query(scope.get("query_string", b""))
                now = self.clock.now_us()
                gte_raw, lt_raw = q.get("gte"), q.get("lt")
                gte = parse_rfc3339_us(gte_raw) if gte_raw else self._start_us
                lt = parse_rfc3339_us(lt_raw) if lt_raw else (
                    min(now, self._end_us) if self._end_us is not None else now)
                if gte is None or lt is None:
                    raise bad_request("gte/lt must be RFC 3339 date-times")
                body = self.dataset.ground_truth(gte, lt, now)
            else:
                raise not_found(f"Not found: {method} {path}")
        except ApiError as err:
            await self._send_error(send, rid, err)
            return
        except (ValueError, orjson.JSONDecodeError) as exc:
            await self._send_error(send, rid, bad_request(str(exc)))
            return
        await self._send(send, 200, _dump(body), hdrs)

    def _set_clock(self, payload: dict) -> None:
        if not isinstance(payload, dict):
            raise bad_request("expected a JSON object")
        if payload.get("wall"):
            self.clock.wall()
        if "now" in payload:
            us = parse_rfc3339_us(str(payload["now"]))
            if us is None:
                raise bad_request("`now` must be an RFC 3339 date-time")
            if payload.get("frozen", True):
                self.clock.freeze(us)
            else:
                self.clock.set_running(us)
        elif "frozen" in payload:
            if payload["frozen"]:
                self.clock.freeze(self.clock.now_us())
            else:
                self.clock.set_running(self.clock.now_us())
        if "advance_seconds" in payload:
            self.clock.advance(float(payload["advance_seconds"]))

    def _config_view(self) -> dict:
        cfg = self.config
        view: dict[str, Any] = {}
        if cfg is not None:
            if hasattr(cfg, "to_public_dict"):
                view.update(cfg.to_public_dict())
                view.pop("keys", None)  # the key store below is the one in force
            elif dataclasses.is_dataclass(cfg):
                for f in dataclasses.fields(cfg):
                    if "key" in f.name.lower():  # never expose key material
                        continue
                    view[f.name] = getattr(cfg, f.name)
            else:
                view["config"] = str(cfg)
        view["server"] = {"rate_limit_per_minute": self.limiter.limit if self.limiter else 0,
                          "emit_access_events": self.emit_access_events, "faults": self.faults.snapshot(),
                          "clock": self.clock.snapshot(), "keys": self.keys.describe()}
        return orjson.loads(_dump(view))

    def stats(self) -> dict:
        total = sum(sum(d.values()) for d in self.stats_by_endpoint.values())
        return {"requests_total": total, "by_endpoint": self.stats_by_endpoint,
                "faults_injected": dict(self.faults.injected),
                "rate_limited": self.limiter.rejected if self.limiter else 0,
                "rate_limit": self.limiter.snapshot() if self.limiter else None}


# ---------------------------------------------------------------------------------------------------------------------
# small helpers

def new_request_id() -> str:
    return "req_01" + _b58(os.urandom(18), 24)


def _public(obj: Any) -> Any:
    """Drop data-side helper keys (leading underscore) from an API object."""
    if isinstance(obj, dict) and any(k.startswith("_") for k in obj):
        return {k: v for k, v in obj.items() if not k.startswith("_")}
    return dict(obj) if isinstance(obj, dict) else obj


def create_app(dataset: Any, config: Any = None, **kwargs) -> SimulatorApp:
    return SimulatorApp(dataset, config, **kwargs)
