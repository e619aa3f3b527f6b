"""Hand-made activities for the monitor tests, loaded through the real window load (with geolocation)."""

from __future__ import annotations

import ipaddress
import itertools
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

from pipeline.enrichment.geo import GeoIPLookup
from pipeline.enrichment.useragent import parse_user_agent
from pipeline.warehouse.activities import Enricher, PageSpool, TraversalStats, load_activity_range

UTC = timezone.utc
POOL = json.loads((Path(__file__).resolve().parents[2] / "simulator" / "data" / "ip_pool.json").read_text())
_ids = itertools.count(1)


def ip_in(code: str, n: int = 1) -> str:
    """An address the bundled GeoLite2 database places in a country ("IR") or region ("UA-43")."""
    pool = POOL["regions"] if "-" in code else POOL["countries"]
    if code in POOL.get("embargoed_countries", []) and code not in pool:
        pool = POOL.get("countries", {})
    for cidr in pool[code]["v4"]:  # the n-th usable host across the networks (some are tiny)
        hosts = ipaddress.ip_network(cidr).num_addresses - 2
        if n <= hosts:
            return str(ipaddress.ip_network(cidr)[n])
        n -= hosts
    raise ValueError(f"not enough addresses for {code}")


def us_ip(n: int = 1) -> str:
    return ip_in("US", n)


def at(base: datetime, minutes: float = 0, seconds: float = 0) -> datetime:
    return base + timedelta(minutes=minutes, seconds=seconds)


def activity(type_: str, when: datetime, *, actor: dict | None = None, **fields) -> dict:
    n = next(_ids)
    return {"id": f"activity_t{n:07d}", "type": type_, "created_at": when.isoformat().replace("+00:00", "Z"),
            "organization_id": "org_1", "organization_uuid": "00000000-0000-4000-8000-000000000001",
            "actor": actor or user("alice@example.com"), **fields}


def user(email: str, ip: str | None = None) -> dict:
    return {"type": "user_actor", "email_address": email, "user_id": "user_" + email.split("@")[0],
            "ip_address": ip or "81.2.69.160", "user_agent": "Mozilla/5.0"}


def unauth(ip: str, email: str | None = None) -> dict:
    a = {"type": "unauthenticated_user_actor", "ip_address": ip, "user_agent": "Mozilla/5.0"}
    if email is not None:
        a["unauthenticated_email_address"] = email
    return a


def api(key_id: str | None, ip: str = "81.2.69.161") -> dict:
    a = {"type": "api_actor", "ip_address": ip, "user_agent": "python-httpx/0.28"}
    if key_id is not None:
        a["api_key_id"] = key_id
    return a


_lookup = None


def load(conn, tmp_path: Path, records: list[dict], start: datetime, end: datetime, run_id: str = "run-test"):
    """Make [start, end) of raw.activities equal to `records` (the pipeline's own load, with enrichment)."""
    global _lookup
    if _lookup is None:
        _lookup = GeoIPLookup()
    with PageSpool(tmp_path / "spool") as spool:
        spool.add(records)
        return load_activity_range(conn, spool.files, start, end, run_id=run_id,
                                   fetched_at=datetime(2026, 12, 1, tzinfo=UTC),
                                   traversal=TraversalStats(pages=1), enricher=Enricher(_lookup, parse_user_agent))
