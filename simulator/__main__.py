"""CLI: `python -m simulator serve ...` (the Compliance API simulator over HTTP) and `python -m simulator manifest ...`
(the ground-truth manifest of a historical range, as JSON).

Every `serve` flag has an environment fallback SIMULATOR_<FLAG> (e.g. SIMULATOR_PORT, SIMULATOR_FAULTS,
SIMULATOR_KEYS_FILE); an explicit flag wins. `python -m simulator serve` with no flags starts a live simulator on
127.0.0.1:8765: data from 24 h ago onward, generated as the wall clock advances, default keys, no faults,
600 requests/min.
"""

from __future__ import annotations

import argparse
import logging
import os
import pickle
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

UTC = timezone.utc

ENV_HELP = """environment fallbacks (an explicit flag wins):
  SIMULATOR_HOST, SIMULATOR_PORT, SIMULATOR_SEED, SIMULATOR_START, SIMULATOR_DAYS, SIMULATOR_LIVE_HOURS,
  SIMULATOR_VOLUME, SIMULATOR_CHATS_PER_DAY, SIMULATOR_FAULTS, SIMULATOR_FAULT_SEED, SIMULATOR_LATE_SHARE,
  SIMULATOR_MALFORMED_RATE, SIMULATOR_RATE_LIMIT, SIMULATOR_KEYS_FILE, SIMULATOR_EMIT_ACCESS_EVENTS (1/0),
  SIMULATOR_FROZEN_NOW, SIMULATOR_SLOW_SECONDS, SIMULATOR_FAULT_RETRY_AFTER, SIMULATOR_LOG_LEVEL

time range:
  --start S --days N   historical: fixed [S, S+N days), everything visible on the wall clock
  --start S            live from S (open ended)
  --days N             historical: the N full UTC days before today
  (neither)            live: from --live-hours before now (floored to the hour), open ended

fault spec (--faults): comma-separated kind=rate, rate as 5% or 0.05; kinds: 429 500 502 503 504 529
  5xx (split over 500/502/503/529) slow drop truncated repeated, and malformed (a data-generation rate).
  e.g. "429=5%,5xx=5%,truncated=1%,slow=1%,repeated=2%,drop=1%"

keys file (--keys): JSON list of {"key": "sk-ant-api01-…", "scopes": [...], "id"?: "apikey_…", "name"?: "…"}
  or an object {"<key>": [scopes...]}; replaces the default keys.
"""


def _env(name: str, default=None):
    v = os.environ.get("SIMULATOR_" + name)
    return v if v not in (None, "") else default


def _env_bool(name: str, default: bool) -> bool:
    v = _env(name)
    if v is None:
        return default
    return v.strip().lower() in ("1", "true", "yes", "on")


def _parse_dt(value: str) -> datetime:
    dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def _add_data_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=int, default=int(_env("SEED", 42)), help="data seed (default 42)")
    p.add_argument("--start", default=_env("START"), help="range start, ISO date or date-time (UTC)")
    p.add_argument("--days", type=float, default=float(_env("DAYS")) if _env("DAYS") else None,
                   help="range length in days (historical)")
    p.add_argument("--volume", type=int, default=int(_env("VOLUME", 50_000)),
                   help="activities per (week)day (default 50000)")
    p.add_argument("--chats-per-day", type=int, default=int(_env("CHATS_PER_DAY", 400)), help="default 400")
    p.add_argument("--late-share", type=float, default=float(_env("LATE_SHARE", 0.005)),
                   help="share of activities indexed 2-15 minutes late (default 0.005)")
    p.add_argument("--malformed-rate", type=float,
                   default=float(_env("MALFORMED_RATE")) if _env("MALFORMED_RATE") else None,
                   help="share of deliberately malformed records (default 0, or `malformed=` of --faults)")
    p.add_argument("--incidents", choices=["all", "seed", "none"], default=_env("INCIDENTS", "all"),
                   help="planted monitor incidents and near misses: all (default), seed (monitors.md's 9 only), none")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m simulator", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    s = sub.add_parser("serve", help="serve the Compliance API simulator over HTTP", epilog=ENV_HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    s.add_argument("--host", default=_env("HOST", "127.0.0.1"), help="default 127.0.0.1")
    s.add_argument("--port", type=int, default=int(_env("PORT", 8765)), help="default 8765")
    _add_data_flags(s)
    s.add_argument("--live-hours", type=float, default=float(_env("LIVE_HOURS", 24)),
                   help="live mode: how many hours of history before now (default 24)")
    s.add_argument("--faults", default=_env("FAULTS", ""), help="fault spec (default: none), see below")
    s.add_argument("--fault-seed", type=int, default=int(_env("FAULT_SEED", 0)), help="default 0")
    s.add_argument("--slow-seconds", type=float, default=float(_env("SLOW_SECONDS", 3.0)),
                   help="how long a `slow` fault stalls before answering (default 3)")
    s.add_argument("--fault-retry-after", type=int, default=int(_env("FAULT_RETRY_AFTER", 1)),
                   help="retry-after of injected 429s, seconds (default 1)")
    s.add_argument("--rate-limit", type=int, default=int(_env("RATE_LIMIT", 600)),
                   help="requests per minute per parent org, 0 = off (default 600)")
    s.add_argument("--keys", default=_env("KEYS_FILE"), help="JSON keys file (default: the built-in sim keys)")
    s.add_argument("--emit-access-events", action=argparse.BooleanOptionalAction,
                   default=_env_bool("EMIT_ACCESS_EVENTS", True),
                   help="append a compliance_api_accessed activity per authenticated call (default on)")
    s.add_argument("--frozen-now", default=_env("FROZEN_NOW"), help="freeze the sim clock at this instant")
    s.add_argument("--log-level", default=_env("LOG_LEVEL", "info"),
                   choices=["critical", "error", "warning", "info", "debug"], help="default info")
    s.add_argument("--config-pickle", help=argparse.SUPPRESS)  # SimulatorProcess(SimConfig) hand-over

    m = sub.add_parser("manifest", help="write the ground-truth manifest of a range as JSON")
    _add_data_flags(m)
    m.add_argument("--out", required=True, help="output file ('-' = stdout)")
    return parser


def _range(args, live_hours: float | None) -> tuple[datetime | None, datetime | None]:
    start = _parse_dt(args.start) if args.start else None
    if start is not None and args.days is not None:
        return start, start + timedelta(days=args.days)
    if start is not None:
        return start, None
    if args.days is not None:
        today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        return today - timedelta(days=args.days), today
    return None, None


def build_config(args, *, live: bool = True):
    """SimConfig from parsed CLI args."""
    from simulator.config import SimConfig, parse_faults

    start, end = _range(args, getattr(args, "live_hours", None))
    faults = parse_faults(getattr(args, "faults", "") or "")
    malformed = args.malformed_rate if args.malformed_rate is not None else faults.get("malformed", 0.0)
    kw = dict(seed=args.seed, start=start, end=end, activities_per_day=args.volume,
              chats_per_day=args.chats_per_day, late_share=args.late_share, malformed_rate=malformed,
              incidents=args.incidents != "none", peer_incidents=args.incidents == "all")
    if live:
        kw.update(faults=faults, fault_seed=args.fault_seed, rate_limit=args.rate_limit,
                  emit_access_events=args.emit_access_events, live_hours_back=args.live_hours)
        if args.frozen_now:
            kw["frozen_now"] = _parse_dt(args.frozen_now)
        if args.keys:
            from simulator.app import KeyStore

            store = KeyStore.from_file(args.keys)
            kw["keys"] = [{"key": k.key, "id": k.id, "name": k.name or k.id,
                           "kind": "admin" if k.is_admin else "compliance", "scopes": list(k.scopes)} for k in store]
    return SimConfig(**kw)


def _describe(cfg) -> str:
    start = cfg.start.isoformat().replace("+00:00", "Z")
    if cfg.end is None:
        return f"live from {start}"
    return f"historical [{start}, {cfg.end.isoformat().replace('+00:00', 'Z')})"


def cmd_serve(args) -> int:
    import uvicorn

    from simulator.app import create_app, install_log_filter
    from simulator.dataset import Dataset
    from simulator.faults import FaultInjector

    if args.config_pickle:
        cfg = pickle.loads(Path(args.config_pickle).read_bytes())
        if isinstance(cfg, dict):  # SimConfig fields (see simulator.process)
            from simulator.config import SimConfig

            cfg = SimConfig(**cfg)
    else:
        cfg = build_config(args)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    install_log_filter()
    dataset = Dataset(cfg)
    faults = FaultInjector(cfg.faults, cfg.fault_seed, retry_after_seconds=args.fault_retry_after,
                           slow_seconds=args.slow_seconds)
    app = create_app(dataset, cfg, faults=faults)
    logging.getLogger("simulator").info(
        "Compliance API simulator on http://%s:%s: %s, seed %s, %s activities/day, rate limit %s, faults %s",
        args.host, args.port, _describe(cfg), cfg.seed, cfg.activities_per_day,
        f"{cfg.rate_limit}/min" if cfg.rate_limit else "off", faults.rates or "off")
    uvicorn.run(app, host=args.host, port=args.port, loop="uvloop", http="httptools", lifespan="off",
                access_log=args.log_level == "debug", log_level=args.log_level)
    return 0


def cmd_manifest(args) -> int:
    import orjson

    from simulator.app import dt_to_us
    from simulator.dataset import Dataset

    if args.start is None and args.days is None:
        raise SystemExit("manifest needs --start and/or --days")
    cfg = build_config(args, live=False)
    if cfg.end is None:
        cfg.end = cfg.start + timedelta(days=1)
    dataset = Dataset(cfg)
    manifest = dataset.ground_truth(dt_to_us(cfg.start), dt_to_us(cfg.end))
    data = orjson.dumps(manifest, option=orjson.OPT_INDENT_2, default=str)
    if args.out == "-":
        sys.stdout.buffer.write(data + b"\n")
    else:
        Path(args.out).write_bytes(data + b"\n")
        print(f"wrote {args.out}: {manifest.get('activity_count', '?')} activities, "
              f"{len(manifest.get('incidents', []))} incidents, {_describe(cfg)}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        return cmd_serve(args)
    return cmd_manifest(args)


if __name__ == "__main__":
    sys.exit(main())
