"""The simulator's HTTP side: a raw ASGI app serving the Compliance API contract (contract.md §2-§8) over a Dataset.

Raw ASGI (no framework) because the activity feed must serve >100k records/s from one client: pages are assembled from
each record's pre-serialized JSON bytes and never re-serialized.

Request pipeline for /v1/compliance/*:
  route -> auth (401, costs nothing) -> rate limiter (429) -> injected fault draw -> scope check (403, already charged)
  -> handler (400/404 validation, data) -> fault post-processing (slow/drop/truncated/repeated) -> access event.
/_sim/* admin endpoints (no auth, loopback clients only) are never rate limited or faulted.

The app wires the route families (simulator/routes/: activities, chats and messages, directory, admin) to the paths;
keys, clock, rate limiter and the shared protocol helpers are modules of their own.

Time: `Clock` is the simulator clock (wall + offset, or frozen); an activity is visible when indexed_us <= now_us.
The rate limiter runs on the real wall clock (its headers are meant for the client's own clock).
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime
from typing import Any

from simulator.clock import Clock, dt_to_us
from simulator.faults import ERROR_BODIES, FaultInjector
from simulator.hostile import HostileRecords
from simulator.keys import SCOPE_ACTIVITIES, SCOPE_DELETE, SCOPE_ORG_DATA, SCOPE_USER_DATA, ApiKey, KeyStore
from simulator.protocol import (
    ApiError,
    Ctx,
    Query,
    Route,
    new_request_id,
    not_found,
    send_error,
    send_response,
)
from simulator.ratelimit import RATE_LIMIT_MESSAGE, RateLimiter, iso_seconds
from simulator.routes.activities import ActivityRoutes
from simulator.routes.admin import AdminRoutes
from simulator.routes.chats import ChatRoutes
from simulator.routes.directory import DirectoryRoutes

__all__ = ["KeyStore", "SimulatorApp", "create_app", "dt_to_us", "install_log_filter"]

log = logging.getLogger("simulator.app")

_DROP_LOG_MESSAGE = "ASGI callable returned without completing response."
_DROPPED = -1  # stats marker: the `drop` fault closed the connection mid-body


class _QuietDropFilter(logging.Filter):
    """The `drop` fault closes the connection mid-body on purpose; uvicorn logs that as an error. Hide exactly that."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != _DROP_LOG_MESSAGE


def install_log_filter() -> None:
    logging.getLogger("uvicorn.error").addFilter(_QuietDropFilter())


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
        self.stats_by_endpoint: dict[str, dict[str, int]] = {}
        self.started_at = time.time()
        directory = DirectoryRoutes(dataset)
        activities = ActivityRoutes(dataset, directory, self._start_us, self._end_us)
        chats = ChatRoutes(dataset, directory)
        self.admin = AdminRoutes(self)
        self._routes = {
            "activities": Route("activities", "GET", SCOPE_ACTIVITIES, activities.activities, feed=True),
            "organizations": Route("organizations", "GET", SCOPE_ORG_DATA, directory.organizations),
            "users": Route("organization_users", "GET", SCOPE_USER_DATA, directory.users),
            "chats": Route("chats", "GET", SCOPE_USER_DATA, chats.chats),
            "messages": Route("chat_messages", "GET", SCOPE_USER_DATA, chats.messages),
            "delete_chat": Route("chat_delete", "DELETE", SCOPE_DELETE, chats.delete_chat),
        }

    # ------------------------------------------------------------------------------------------------ ASGI plumbing

    async def __call__(self, scope, receive, send):
        kind = scope["type"]
        if kind == "http":
            path = scope["path"]
            if path.startswith("/v1/compliance/"):
                await self._api(scope, receive, send)
            elif path.startswith("/_sim/"):
                await self.admin.handle(scope, receive, send)
            else:
                rid = new_request_id()
                await send_error(send, rid, ApiError(404, "not_found_error", "Not found."))
        elif kind == "lifespan":
            while True:
                msg = await receive()
                if msg["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif msg["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return

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
            await send_error(send, rid, ApiError(401, "authentication_error",
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
                    await send_error(send, rid, ApiError(
                        429, "rate_limit_error", RATE_LIMIT_MESSAGE.format(n=self.limiter.limit),
                        [(b"retry-after", str(retry_after).encode())]))
                    return
                rl_headers = [(b"anthropic-ratelimit-requests-limit", str(self.limiter.limit).encode()),
                              (b"anthropic-ratelimit-requests-remaining", str(remaining).encode()),
                              (b"anthropic-ratelimit-requests-reset", iso_seconds(reset).encode())]

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
                await send_error(send, rid, not_found(f"Not found: {method} {path}"), rl_headers)
                return
            if route.scope not in key.scopes or (key.is_admin and not route.feed):
                status = 403
                await send_error(send, rid, ApiError(
                    403, "permission_error",
                    f"Missing required scopes. Got: {list(key.scopes)!r} Needed: {[route.scope]!r}"), rl_headers)
                return

            # 5. handler
            ctx = Ctx(Query(scope.get("query_string", b"")), self.clock.now_us(), key, args,
                       repeated=(fault == "repeated"))
            if fault == "slow":
                self.faults.count("slow")
                await asyncio.sleep(self.faults.slow_seconds)
                ctx.now_us = self.clock.now_us()
            try:
                status, body = route.handler(ctx)
            except ApiError as err:
                status = err.status
                await send_error(send, rid, err, rl_headers)
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
            await send_response(send, status, body, out_headers)
        except Exception:
            log.exception("unhandled error serving %s %s", method, path)
            status = 500
            try:
                await send_error(send, rid, ApiError(500, "api_error", "Internal server error."),
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
            await send_error(send, rid, ApiError(
                429, "rate_limit_error",
                RATE_LIMIT_MESSAGE.format(n=self.limiter.limit if self.limiter else 600),
                [(b"retry-after", str(self.faults.retry_after_seconds).encode())]))
            return
        etype, message = ERROR_BODIES[status]
        extra = []
        if status == 500 and self.faults.coin():
            extra.append((b"x-should-retry", b"false"))
        await send_error(send, rid, ApiError(status, etype, message, extra))

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

    def stats(self) -> dict:
        total = sum(sum(d.values()) for d in self.stats_by_endpoint.values())
        return {"requests_total": total, "by_endpoint": self.stats_by_endpoint,
                "faults_injected": dict(self.faults.injected),
                "rate_limited": self.limiter.rejected if self.limiter else 0,
                "rate_limit": self.limiter.snapshot() if self.limiter else None}


def create_app(dataset: Any, config: Any = None, **kwargs) -> SimulatorApp:
    return SimulatorApp(dataset, config, **kwargs)
