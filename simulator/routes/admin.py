"""Control endpoints `/_sim/*` (no auth, loopback clients only, never rate limited or faulted): health, config,
clock, faults, hostile records, stats, ground truth."""

from __future__ import annotations

import dataclasses
import time
from typing import TYPE_CHECKING, Any

import orjson

from simulator.clock import parse_rfc3339_us, us_to_iso
from simulator.protocol import (
    ApiError,
    Query,
    bad_request,
    dump,
    new_request_id,
    not_found,
    read_body,
    send_error,
    send_response,
)

if TYPE_CHECKING:
    from simulator.app import SimulatorApp

LOOPBACK = ("127.0.0.1", "::1", "localhost")


class AdminRoutes:
    """Operates on the app's own state (clock, faults, hostile switch, counters) and the dataset's ground truth."""

    def __init__(self, app: "SimulatorApp"):
        self.app = app

    async def handle(self, scope, receive, send) -> None:
        rid = new_request_id()
        client = scope.get("client") or ("127.0.0.1", 0)
        hdrs = [(b"content-type", b"application/json"), (b"request-id", rid.encode())]
        if client[0] not in LOOPBACK and not str(client[0]).startswith("127."):
            await send_error(send, rid, ApiError(403, "permission_error", "/_sim/* is loopback only."))
            return
        path, method = scope["path"], scope["method"]
        try:
            if path == "/_sim/health" and method == "GET":
                body = {"status": "ok", "now": us_to_iso(self.app.clock.now_us()), "uptime_seconds":
                        round(time.time() - self.app.started_at, 3)}
            elif path == "/_sim/config" and method == "GET":
                body = self._config_view()
            elif path == "/_sim/clock":
                if method == "POST":
                    self._set_clock(orjson.loads(await read_body(receive) or b"{}"))
                body = self.app.clock.snapshot()
            elif path == "/_sim/faults":
                if method == "POST":
                    payload = orjson.loads(await read_body(receive) or b"{}")
                    reseed = False
                    if isinstance(payload, dict):
                        reseed = bool(payload.pop("_reseed", False))
                        if "spec" in payload:
                            payload = payload["spec"]
                    self.app.faults.set_rates(payload, reseed=reseed)
                body = self.app.faults.snapshot()
            elif path == "/_sim/hostile":
                if method == "POST":
                    payload = orjson.loads(await read_body(receive) or b"{}")
                    payload = payload if isinstance(payload, dict) else {}
                    self.app.hostile.enabled = bool(payload.get("enabled"))
                    self.app.hostile.altered = bool(payload.get("altered"))
                body = self.app.hostile.snapshot()
            elif path == "/_sim/stats" and method == "GET":
                body = self.app.stats()
            elif path == "/_sim/ground-truth" and method == "GET":
                q = Query(scope.get("query_string", b""))
                now = self.app.clock.now_us()
                gte_raw, lt_raw = q.get("gte"), q.get("lt")
                gte = parse_rfc3339_us(gte_raw) if gte_raw else self.app._start_us
                lt = parse_rfc3339_us(lt_raw) if lt_raw else (
                    min(now, self.app._end_us) if self.app._end_us is not None else now)
                if gte is None or lt is None:
                    raise bad_request("gte/lt must be RFC 3339 date-times")
                body = self.app.dataset.ground_truth(gte, lt, now)
            else:
                raise not_found(f"Not found: {method} {path}")
        except ApiError as err:
            await send_error(send, rid, err)
            return
        except (ValueError, orjson.JSONDecodeError) as exc:
            await send_error(send, rid, bad_request(str(exc)))
            return
        await send_response(send, 200, dump(body), hdrs)

    def _set_clock(self, payload: dict) -> None:
        if not isinstance(payload, dict):
            raise bad_request("expected a JSON object")
        if payload.get("wall"):
            self.app.clock.wall()
        if "now" in payload:
            us = parse_rfc3339_us(str(payload["now"]))
            if us is None:
                raise bad_request("`now` must be an RFC 3339 date-time")
            if payload.get("frozen", True):
                self.app.clock.freeze(us)
            else:
                self.app.clock.set_running(us)
        elif "frozen" in payload:
            if payload["frozen"]:
                self.app.clock.freeze(self.app.clock.now_us())
            else:
                self.app.clock.set_running(self.app.clock.now_us())
        if "advance_seconds" in payload:
            self.app.clock.advance(float(payload["advance_seconds"]))

    def _config_view(self) -> dict:
        cfg = self.app.config
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
        view["server"] = {"rate_limit_per_minute": self.app.limiter.limit if self.app.limiter else 0,
                          "emit_access_events": self.app.emit_access_events, "faults": self.app.faults.snapshot(),
                          "clock": self.app.clock.snapshot(), "keys": self.app.keys.describe()}
        return orjson.loads(dump(view))
