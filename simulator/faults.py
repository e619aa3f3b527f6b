"""Seeded, per-request fault injection for the simulator's /v1/compliance/* endpoints.

One uniform draw per eligible request (in arrival order) picks at most one fault kind, so a given fault seed and a given
request sequence always produce the same faults. /_sim/* endpoints never go through here.

Kinds and their effect (applied by simulator.app):
  429        rate_limit_error with a small `retry-after` (default 1 s); no data, nothing advances
  500        api_error; half of them (second seeded draw) carry `x-should-retry: false` (deterministic-looking failure)
  502 / 503 / 504 / 529   api_error / overloaded_error / timeout_error / overloaded_error
  slow       sleep `slow_seconds` (default 3 s), then answer normally
  drop       send headers with the full Content-Length, then close the connection mid-body
  truncated  a complete HTTP response (Content-Length matches) whose JSON body is cut short
  repeated   at-least-once delivery: a cursor page re-delivers the record at its cursor (only when a cursor is given)
"""

from __future__ import annotations

import random
import threading
from collections.abc import Mapping

ERROR_KINDS = ("429", "500", "502", "503", "504", "529")
OTHER_KINDS = ("slow", "drop", "truncated", "repeated")
KINDS = ERROR_KINDS + OTHER_KINDS
# `5xx` is shorthand spread evenly over these (DESIGN.md: 504 is only injected when asked for by name).
FIVE_XX_SPLIT = ("500", "502", "503", "529")
# Keys that belong to the data side (generation rates), accepted in specs but ignored here.
DATA_KEYS = ("malformed",)

# status -> (error.type, message)
ERROR_BODIES: dict[int, tuple[str, str]] = {
    500: ("api_error", "Internal server error."),
    502: ("api_error", "Bad gateway. The upstream service returned an invalid response."),
    503: ("overloaded_error", "The service is temporarily unavailable. Try again shortly."),
    504: ("timeout_error", "The request timed out before a response was produced."),
    529: ("overloaded_error", "Overloaded"),
}


def _rate(value: object) -> float:
    if isinstance(value, str):
        v = value.strip()
        rate = float(v[:-1]) / 100.0 if v.endswith("%") else float(v)
    else:
        rate = float(value)  # type: ignore[arg-type]
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"fault rate out of range [0, 1]: {value!r}")
    return rate


def parse_spec(spec: str | None) -> dict[str, float]:
    """'429=5%,5xx=5%,slow=0.01' -> {'429': 0.05, '5xx': 0.05, 'slow': 0.01} (not yet expanded).

    Kept here as well as in simulator.config so that the server side can accept a spec string at run time
    (POST /_sim/faults {"spec": "..."}) without depending on the exact config API."""
    out: dict[str, float] = {}
    if not spec:
        return out
    for part in spec.replace(";", ",").split(","):
        part = part.strip()
        if not part:
            continue
        if "=" not in part:
            raise ValueError(f"bad fault spec item {part!r} (expected kind=rate)")
        k, v = part.split("=", 1)
        out[k.strip().lower()] = _rate(v)
    return out


def normalize_rates(rates: Mapping[str, object] | str | None) -> dict[str, float]:
    """Expand `5xx`, drop data-side keys, validate kinds and that the total is <= 1."""
    if rates is None:
        return {}
    if isinstance(rates, str):
        rates = parse_spec(rates)
    out: dict[str, float] = {}
    for k, v in rates.items():
        key = str(k).strip().lower()
        r = _rate(v)
        if key in DATA_KEYS:
            continue
        if key == "5xx":
            for kind in FIVE_XX_SPLIT:
                out[kind] = out.get(kind, 0.0) + r / len(FIVE_XX_SPLIT)
        elif key in KINDS:
            out[key] = out.get(key, 0.0) + r
        else:
            raise ValueError(f"unknown fault kind {k!r}; known: {', '.join(KINDS + ('5xx',) + DATA_KEYS)}")
    total = sum(out.values())
    if total > 1.0 + 1e-9:
        raise ValueError(f"fault rates add up to {total:.3f} > 1")
    return {k: v for k, v in out.items() if v > 0}


class FaultInjector:
    """Draws the fault (or None) for each request. Thread-safe; deterministic for a seed and request order."""

    def __init__(self, rates: Mapping[str, object] | str | None = None, seed: int = 0, *,
                 retry_after_seconds: int = 1, slow_seconds: float = 3.0):
        self.seed = seed
        self.retry_after_seconds = retry_after_seconds
        self.slow_seconds = slow_seconds
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self.rates: dict[str, float] = {}
        self._table: list[tuple[float, str]] = []
        self.injected: dict[str, int] = {}
        self.set_rates(rates)

    def set_rates(self, rates: Mapping[str, object] | str | None, *, reseed: bool = False) -> dict[str, float]:
        normalized = normalize_rates(rates)
        table, acc = [], 0.0
        for kind in KINDS:  # fixed order so the mapping draw -> kind does not depend on dict order
            if normalized.get(kind):
                acc += normalized[kind]
                table.append((acc, kind))
        with self._lock:
            self.rates = normalized
            self._table = table
            if reseed:
                self._rng = random.Random(self.seed)
        return normalized

    @property
    def active(self) -> bool:
        return bool(self._table)

    def draw(self) -> str | None:
        """One draw per eligible request; returns the fault kind or None."""
        if not self._table:
            return None
        with self._lock:
            u = self._rng.random()
            for edge, kind in self._table:
                if u < edge:
                    return kind
            return None

    def coin(self) -> bool:
        """Second seeded draw (e.g. whether a 500 carries x-should-retry: false)."""
        with self._lock:
            return self._rng.random() < 0.5

    def count(self, kind: str) -> None:
        with self._lock:
            self.injected[kind] = self.injected.get(kind, 0) + 1

    def snapshot(self) -> dict:
        return {"seed": self.seed, "rates": dict(self.rates), "retry_after_seconds": self.retry_after_seconds,
                "slow_seconds": self.slow_seconds, "injected": dict(self.injected)}
