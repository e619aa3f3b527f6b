"""Build simulator/data/ip_pool.json from the bundled GeoLite2-City (2018) database.

The simulator must hand out IPs that the same database the pipeline uses really places in a given country or
embargoed region, so we walk the database once, keep a deterministic sample of leaf networks per country / region
and verify each kept network by looking up its first, middle and last address with geoip2.

Run:  .venv/bin/python simulator/data/build_ip_pool.py   (about 1-2 minutes; output is deterministic)
"""

from __future__ import annotations

import ipaddress
import json
import sys
from pathlib import Path

import geoip2.database
import maxminddb
from _maxminddb_geolite2 import geolite2_database

# Home countries of simulated users (must match world.COUNTRY_WEIGHTS) plus decoys used by near misses.
COUNTRIES = ["US", "GB", "DE", "FR", "IN", "JP", "BR", "CA", "AU", "NL", "ES", "SG", "IE", "SE", "PL", "IT", "MX",
             "KR", "CH", "IL", "UA", "RU"]
# Embargoed countries and regions of monitor 4 (monitors.md defaults).
EMBARGOED_COUNTRIES = ["CU", "IR", "KP", "SY"]
EMBARGOED_REGIONS = ["UA-43", "UA-40", "UA-14", "UA-09"]
# A Ukrainian region that is NOT embargoed (Kyiv city): the benign near miss of monitor 4.
DECOY_REGIONS = ["UA-30"]

# Ranges that look fake in a dashboard (1.0.0.0/8 debogon test space, 2000::/16 odd GeoLite entries).
ODD = [ipaddress.ip_network("1.0.0.0/8"), ipaddress.ip_network("2000::/16")]

MAX_V4 = 64
MAX_V6 = 16


def _usable(net: ipaddress._BaseNetwork) -> bool:
    # Skip single addresses and huge blocks; a leaf this size is a real allocation.
    if net.version == 4:
        return 20 <= net.prefixlen <= 30
    return 32 <= net.prefixlen <= 64


def _sample(nets: list, k: int) -> list:
    if len(nets) <= k:
        return nets
    step = len(nets) / k
    return [nets[int(i * step)] for i in range(k)]


def main(out: Path) -> None:
    path = geolite2_database()
    raw = maxminddb.open_database(path)
    meta = raw.metadata()
    wanted_c = set(COUNTRIES) | set(EMBARGOED_COUNTRIES)
    wanted_r = set(EMBARGOED_REGIONS) | set(DECOY_REGIONS)
    by_key: dict[str, dict[int, list]] = {k: {4: [], 6: []} for k in wanted_c | wanted_r}
    for net, rec in raw:
        if not isinstance(rec, dict):
            continue
        c = (rec.get("country") or {}).get("iso_code")
        if c not in wanted_c:
            continue
        traits = rec.get("traits") or {}
        if traits.get("is_anonymous_proxy") or traits.get("is_satellite_provider"):
            continue
        if net.version == 6 and net.subnet_of(ipaddress.ip_network("::/96")):
            continue  # IPv4 subtree seen through IPv6; we get those as IPv4 networks too
        if net.version == 6 and net.subnet_of(ipaddress.ip_network("2002::/16")):
            continue  # 6to4 mirrors of IPv4 space
        if not _usable(net) or not net.is_global or any(net.version == o.version and net.subnet_of(o) for o in ODD):
            continue  # keep real, globally routed allocations only
        subs = rec.get("subdivisions") or []
        # Regions keep only their own networks; a country pool never includes embargoed regions.
        region = f"{c}-{subs[0].get('iso_code')}" if subs else None
        if region in wanted_r:
            by_key[region][net.version].append(net)
        if c == "UA" and region in set(EMBARGOED_REGIONS):
            continue
        if c == "UA" and not subs:
            continue  # unknown region: could be anywhere in Ukraine, keep the UA pool unambiguous
        by_key[c][net.version].append(net)

    reader = geoip2.database.Reader(path)

    def verify(net, key: str) -> bool:
        n = net.num_addresses
        for off in (1, n // 2, n - 2):
            r = reader.city(str(net.network_address + off))
            if r.country.iso_code != key.split("-")[0]:
                return False
            if "-" in key:
                if not r.subdivisions or f"{r.country.iso_code}-{r.subdivisions[0].iso_code}" != key:
                    return False
            elif key == "UA" and r.subdivisions and f"UA-{r.subdivisions[0].iso_code}" in EMBARGOED_REGIONS:
                return False
        return True

    out_doc: dict = {
        "_about": ("Networks that the bundled GeoLite2-City database (build epoch %d) places in each country / region; "
                   "every network verified by geoip2 lookups of its first, middle and last host. Built by "
                   "simulator/data/build_ip_pool.py." % meta.build_epoch),
        "db_build_epoch": meta.build_epoch,
        "embargoed_countries": EMBARGOED_COUNTRIES,
        "embargoed_regions": EMBARGOED_REGIONS,
        "countries": {},
        "regions": {},
        # Keys for which the 2018 database places no usable network at all (none today) / no IPv6 network.
        "missing": [],
        "missing_v6": [],
    }
    for key in sorted(by_key):
        fam = {}
        for v, k in ((4, MAX_V4), (6, MAX_V6)):
            nets = sorted(by_key[key][v], key=lambda n: (int(n.network_address), n.prefixlen))
            kept = [str(n) for n in _sample(nets, k * 2) if verify(n, key)][:k]
            fam[f"v{v}"] = kept
        if not fam["v4"] and not fam["v6"]:
            out_doc["missing"].append(key)
        elif not fam["v6"]:
            out_doc["missing_v6"].append(key)
        (out_doc["regions"] if "-" in key else out_doc["countries"])[key] = fam
        print(key, len(fam["v4"]), len(fam["v6"]), file=sys.stderr)
    out.write_text(json.dumps(out_doc, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main(Path(__file__).with_name("ip_pool.json"))
