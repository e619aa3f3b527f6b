"""Simulator configuration: data volume, time range, clock, faults, keys.

Times are UTC. Internally the simulator works in epoch microseconds (int); `SimConfig` converts once.

Clock: sim now = wall clock + `clock_offset`, or `frozen_now` when set (admin endpoints change both at run time
through `set_clock`). "Historical" = fixed [start, end); "live" = end None, start = now - N hours.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone

UTC = timezone.utc
US = 1_000_000
HOUR_US = 3600 * US
DAY_US = 24 * HOUR_US

FIVE_XX = ("500", "502", "503", "529")
FAULT_KEYS = ("429", "500", "502", "503", "504", "529", "slow", "drop", "truncated", "repeated", "malformed")

_CLOCK_LOCK = threading.Lock()   # module level: SimConfig must stay picklable (SimulatorProcess hands it over)

_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def to_us(dt: datetime) -> int:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    delta = dt - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86400 + delta.seconds) * US + delta.microseconds


def from_us(us: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)


def iso_us(us: int) -> str:
    """RFC 3339 with microseconds and 'Z' (the format every generated activity uses)."""
    return from_us(us).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_faults(spec: str | dict | None) -> dict[str, float]:
    """Parse "429=5%,5xx=5%,truncated=1%,slow=1%,repeated=2%" into {"429": 0.05, ...}.

    Values may be percentages ("5%") or fractions ("0.05"). `5xx` is split evenly over 500/502/503/529 and added to
    any explicit value of those codes. Unknown keys raise ValueError (a typo should not silently disable a fault).
    """
    if not spec:
        return {}
    items = spec.items() if isinstance(spec, dict) else (p.split("=", 1) for p in str(spec).split(",") if p.strip())
    out: dict[str, float] = {}
    for k, v in items:
        k = str(k).strip().lower()
        v = str(v).strip()
        rate = float(v[:-1]) / 100.0 if v.endswith("%") else float(v)
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"fault rate out of range: {k}={v}")
        if k == "5xx":
            for code in FIVE_XX:
                out[code] = out.get(code, 0.0) + rate / len(FIVE_XX)
        elif k in FAULT_KEYS:
            out[k] = out.get(k, 0.0) + rate
        else:
            raise ValueError(f"unknown fault key {k!r} (known: 5xx, {', '.join(FAULT_KEYS)})")
    return out


def _key_id(name: str) -> str:
    # Deterministic "apikey_01" + 24 base58 chars, so key ids are stable across runs and never reveal the secret.
    h = int.from_bytes(hashlib.sha256(b"simkey:" + name.encode()).digest(), "big")
    chars = []
    for _ in range(24):
        h, r = divmod(h, 58)
        chars.append(_B58[r])
    return "apikey_01" + "".join(chars)


_ALL_READ = ["read:compliance_activities", "read:compliance_user_data", "read:compliance_org_data"]


def default_keys() -> list[dict]:
    """The simulator's default credentials (DESIGN.md). `id` is what activities show as `actor.api_key_id`."""
    spec = [
        ("sk-ant-api01-sim-full", "sim-full", "compliance", _ALL_READ + ["delete:compliance_user_data"]),
        ("sk-ant-api01-sim-activities", "sim-activities", "compliance", ["read:compliance_activities"]),
        ("sk-ant-api01-sim-userdata", "sim-userdata", "compliance", ["read:compliance_user_data"]),
        ("sk-ant-api01-sim-orgdata", "sim-orgdata", "compliance", ["read:compliance_org_data"]),
        ("sk-ant-admin01-sim-admin", "sim-admin", "admin", ["read:compliance_activities"]),
    ]
    return [{"key": k, "id": _key_id(n), "name": n, "kind": kind, "scopes": list(sc)} for k, n, kind, sc in spec]


@dataclass
class SimConfig:
    seed: int = 42
    start: datetime | None = None          # None: live, start = now - live_hours_back (floored to the hour)
    end: datetime | None = None            # None: open ended ("live")
    activities_per_day: int = 50_000       # weekday volume; weekends are ~30 % of it
    late_share: float = 0.005              # share of activities indexed late_minutes after created_at
    late_minutes: tuple[float, float] = (2.0, 15.0)
    max_lag_seconds: float = 50.0          # ordinary indexing lag, uniform in [0, max_lag_seconds]
    malformed_rate: float = 0.0            # share of records deliberately malformed (4 reasons)
    chats_per_day: int = 400
    emit_access_events: bool = True        # record_api_call() appends compliance_api_accessed activities
    frozen_now: datetime | None = None
    clock_offset: timedelta = field(default_factory=timedelta)
    faults: dict[str, float] = field(default_factory=dict)
    fault_seed: int = 0
    rate_limit: int = 600                  # requests per minute per parent org; 0 = off
    keys: list[dict] = field(default_factory=default_keys)
    live_hours_back: float = 24.0
    cache_hours: int = 48                  # hour buckets kept in the LRU (>= 48; ~36 MB per hour at 1M/day)
    incidents: bool = True                 # plant monitor incidents / near misses
    peer_incidents: bool = True            # ... including those of the peers' rules (needs incidents)

    def __post_init__(self) -> None:
        if isinstance(self.faults, str):
            self.faults = parse_faults(self.faults)
        if self.start is not None and self.start.tzinfo is None:
            self.start = self.start.replace(tzinfo=UTC)
        if self.end is not None and self.end.tzinfo is None:
            self.end = self.end.replace(tzinfo=UTC)
        if self.frozen_now is not None and self.frozen_now.tzinfo is None:
            self.frozen_now = self.frozen_now.replace(tzinfo=UTC)
        if self.start is None:
            now = self.now_us() - int(self.live_hours_back * HOUR_US)
            self.start = from_us(now - now % HOUR_US)
        if self.end is not None and self.end <= self.start:
            raise ValueError("end must be after start")
        if self.activities_per_day < 0:
            raise ValueError("activities_per_day must be >= 0")
        self.cache_hours = max(48, int(self.cache_hours))

    # ---- constructors ---------------------------------------------------------------------------------------
    @classmethod
    def historical(cls, start: datetime | str, days: float = 1, **kw) -> "SimConfig":
        """Fixed range [start, start + days); the clock stays on the wall (everything visible) unless frozen."""
        if isinstance(start, str):
            start = datetime.fromisoformat(start.replace("Z", "+00:00"))
        if start.tzinfo is None:
            start = start.replace(tzinfo=UTC)
        return cls(start=start, end=start + timedelta(days=days), **kw)

    @classmethod
    def live(cls, hours_back: float = 24, **kw) -> "SimConfig":
        """Open-ended data starting `hours_back` hours before now (floored to the hour); clock = wall (+offset)."""
        return cls(start=None, end=None, live_hours_back=hours_back, **kw)

    # ---- time -----------------------------------------------------------------------------------------------
    @property
    def start_us(self) -> int:
        return to_us(self.start)

    @property
    def end_us(self) -> int | None:
        return None if self.end is None else to_us(self.end)

    @property
    def is_live(self) -> bool:
        return self.end is None

    def now_us(self) -> int:
        if self.frozen_now is not None:
            return to_us(self.frozen_now)
        return time.time_ns() // 1000 + int(self.clock_offset.total_seconds() * US)

    def now(self) -> datetime:
        return from_us(self.now_us())

    def set_clock(self, *, now: datetime | None = None, advance_seconds: float | None = None,
                  wall: bool = False) -> datetime:
        """Admin clock control: freeze at `now`, advance (frozen or offset clock) or return to the wall clock."""
        with _CLOCK_LOCK:
            if wall:
                self.frozen_now = None
                self.clock_offset = timedelta()
            if now is not None:
                self.frozen_now = now if now.tzinfo else now.replace(tzinfo=UTC)
            if advance_seconds:
                if self.frozen_now is not None:
                    self.frozen_now += timedelta(seconds=advance_seconds)
                else:
                    self.clock_offset += timedelta(seconds=advance_seconds)
            return self.now()

    # ---- misc -----------------------------------------------------------------------------------------------
    def key_by_secret(self, secret: str) -> dict | None:
        for k in self.keys:
            if k["key"] == secret:
                return k
        return None

    def to_public_dict(self) -> dict:
        """Config as JSON-safe dict without key secrets (for GET /_sim/config)."""
        d = {k: v for k, v in asdict(self).items() if not k.startswith("_")}
        d["keys"] = [{k: v for k, v in key.items() if k != "key"} for key in self.keys]
        for k in ("start", "end", "frozen_now"):
            d[k] = None if d[k] is None else d[k].isoformat().replace("+00:00", "Z")
        d["clock_offset"] = self.clock_offset.total_seconds()
        d["late_minutes"] = list(self.late_minutes)
        d["now"] = iso_us(self.now_us())
        return d
