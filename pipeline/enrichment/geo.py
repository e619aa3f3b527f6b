"""IP geolocation against a MaxMind GeoLite2/GeoIP2 City database (plain Python, no Dagster).

Database choice, in order: the `db_path` argument, the GEOIP_CITY_DB environment variable, and otherwise the
GeoLite2-City build of July 2018 bundled in the `maxminddb-geolite2` package. The bundled one is old (borders,
ISP allocations and city data have moved since), so `database_info()` reports its age for the preflight to warn.

Addresses are classified before any lookup: private (RFC 1918, IPv6 ULA) and reserved (loopback, link-local,
multicast, CGNAT 100.64/10, documentation and benchmarking ranges, unspecified, IETF/future-use space, IPv6 outside
2000::/3) are flagged and never looked up, so they can never geolocate (monitor 4: "private, reserved and unknown IPs
never match"). Garbage strings give `is_valid=False`, never an exception.

Speed: decoding a record (all its locale names) is the cost of a MaxMind lookup, so records are cached per database
network: an address inside a network already decoded costs a few dict probes. `geoip2.database.Reader` opens and
validates the file; the hot path reads the same memory map through `maxminddb` because geoip2's model objects
halve the throughput and we need only a dozen fields.
"""

from __future__ import annotations

import gc
import os
import socket
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import astuple, dataclass, fields
from datetime import datetime, timezone
from ipaddress import ip_address, ip_network
from typing import Any, ClassVar

import geoip2.database
import maxminddb

ENV_VAR = "GEOIP_CITY_DB"

# (CIDR, kind), most specific match wins. "embed_v4" = an IPv6 form of an IPv4 address, classified and looked up
# as that IPv4 address. "global" entries are the globally reachable exceptions inside a reserved block (IANA
# special-purpose registries). Keep this a table: it is data, reviewed against the registries, not logic.
SPECIAL_NETWORKS: tuple[tuple[str, str], ...] = (
    ("0.0.0.0/8", "reserved"),          # "this network", includes the unspecified 0.0.0.0
    ("10.0.0.0/8", "private"),
    ("100.64.0.0/10", "reserved"),      # shared address space (carrier-grade NAT)
    ("127.0.0.0/8", "reserved"),        # loopback
    ("169.254.0.0/16", "reserved"),     # link-local
    ("172.16.0.0/12", "private"),
    ("192.0.0.0/24", "reserved"),       # IETF protocol assignments
    ("192.0.0.9/32", "global"),         # PCP anycast
    ("192.0.0.10/32", "global"),        # TURN anycast
    ("192.0.2.0/24", "reserved"),       # TEST-NET-1 (documentation)
    ("192.168.0.0/16", "private"),
    ("198.18.0.0/15", "reserved"),      # benchmarking
    ("198.51.100.0/24", "reserved"),    # TEST-NET-2
    ("203.0.113.0/24", "reserved"),     # TEST-NET-3
    ("224.0.0.0/4", "reserved"),        # multicast
    ("240.0.0.0/4", "reserved"),        # future use, includes broadcast 255.255.255.255
    ("::/0", "reserved"),               # everything outside global unicast 2000::/3 is unassigned or special
    ("2000::/3", "global"),
    ("::ffff:0:0/96", "embed_v4"),      # IPv4-mapped
    ("64:ff9b::/96", "embed_v4"),       # NAT64 well-known prefix
    ("fc00::/7", "private"),            # unique local
    ("2001::/23", "reserved"),          # IETF protocol assignments (Teredo, ORCHID, benchmarking, ...)
    ("2001:1::1/128", "global"),
    ("2001:1::2/128", "global"),
    ("2001:3::/32", "global"),          # AMT
    ("2001:4:112::/48", "global"),      # AS112-v6
    ("2001:20::/28", "global"),         # ORCHIDv2
    ("2001:30::/28", "global"),         # drone remote ID
    ("2001:db8::/32", "reserved"),      # documentation
    ("3fff::/20", "reserved"),          # documentation (RFC 9637)
)


def _compile_special(table: Iterable[tuple[str, str]]) -> dict[int, list[tuple[int, dict[int, str]]]]:
    """{ip_version: [(prefixlen, {network_int >> host_bits: kind}), ...] longest prefix first}."""
    by_len: dict[int, dict[int, dict[int, str]]] = {4: {}, 6: {}}
    for cidr, kind in table:
        net = ip_network(cidr)
        host_bits = net.max_prefixlen - net.prefixlen
        by_len[net.version].setdefault(net.prefixlen, {})[int(net.network_address) >> host_bits] = kind
    return {v: sorted(d.items(), reverse=True) for v, d in by_len.items()}


_SPECIAL = _compile_special(SPECIAL_NETWORKS)
_BITS = {4: 32, 6: 128}
# Bucket prefix lengths of the network cache (see GeoIPLookup._empty_net_cache), longest first.
_CACHE_LEVELS = {4: (16, 8, 0), 6: (32, 16, 0)}


def classify_ip(version: int, value: int) -> str:
    """Kind of an address given as (version, integer): "global", "private", "reserved" or "embed_v4"."""
    bits = _BITS[version]
    for plen, nets in _SPECIAL[version]:
        kind = nets.get(value >> (bits - plen))
        if kind is not None:
            return kind
    return "global"


def _parse_ip(text: str) -> tuple[int, int] | None:
    """(version, integer) or None. inet_pton is ~10x faster than ipaddress and as strict (no leading zeros, no
    shorthand like 1.2.3); ipaddress is the fallback for what inet_pton refuses but is valid (scoped IPv6)."""
    try:
        return 4, int.from_bytes(socket.inet_pton(socket.AF_INET, text), "big")
    except OSError:
        pass
    if ":" not in text:
        return None
    try:
        return 6, int.from_bytes(socket.inet_pton(socket.AF_INET6, text), "big")
    except OSError:
        pass
    try:
        addr = ip_address(text)
    except ValueError:
        return None
    return addr.version, int(addr)


class GeoIPDatabaseError(RuntimeError):
    """The City database cannot be used (missing, unreadable, not a MaxMind file, or not a City database)."""


@dataclass(frozen=True, slots=True)
class GeoInfo:
    ip: str | None
    ip_version: int | None
    is_valid: bool
    is_private: bool
    is_reserved: bool
    found: bool
    country_iso: str | None = None
    country_name: str | None = None
    subdivision_iso: str | None = None      # ISO 3166-2, e.g. "UA-43"
    subdivision_name: str | None = None
    city: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    accuracy_radius: int | None = None

    # Column name -> DuckDB type, in `as_row()` order, for the dimension table.
    COLUMNS: ClassVar[tuple[tuple[str, str], ...]] = (
        ("ip", "VARCHAR"), ("ip_version", "INTEGER"), ("is_valid", "BOOLEAN"), ("is_private", "BOOLEAN"),
        ("is_reserved", "BOOLEAN"), ("found", "BOOLEAN"), ("country_iso", "VARCHAR"), ("country_name", "VARCHAR"),
        ("subdivision_iso", "VARCHAR"), ("subdivision_name", "VARCHAR"), ("city", "VARCHAR"),
        ("latitude", "DOUBLE"), ("longitude", "DOUBLE"), ("accuracy_radius", "INTEGER"),
    )

    def as_row(self) -> tuple:
        return astuple(self)

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


# Geo part of a GeoInfo (country_iso .. accuracy_radius), as cached per database network.
_GeoFields = tuple
_NOT_FOUND: _GeoFields = (False, None, None, None, None, None, None, None, None)


def _geo_fields(record: Any) -> _GeoFields:
    if not isinstance(record, dict):
        return _NOT_FOUND
    # Location country only (what MaxMind calls `country`), not the registrant's country: an embargo match is
    # about where the address is used.
    country = record.get("country") or {}
    iso = country.get("iso_code")
    subs = record.get("subdivisions") or ()
    sub = subs[0] if subs else {}
    sub_code = sub.get("iso_code")
    loc = record.get("location") or {}
    return (
        True,
        iso,
        (country.get("names") or {}).get("en"),
        f"{iso}-{sub_code}" if iso and sub_code else None,
        (sub.get("names") or {}).get("en"),
        ((record.get("city") or {}).get("names") or {}).get("en"),
        loc.get("latitude"),
        loc.get("longitude"),
        loc.get("accuracy_radius"),
    )


def bundled_database_path() -> str:
    try:
        from _maxminddb_geolite2 import geolite2_database
    except ImportError as exc:  # pragma: no cover - the package is a declared dependency
        raise GeoIPDatabaseError(
            f"no GeoIP City database: the maxminddb-geolite2 package is not installed and {ENV_VAR} is not set"
        ) from exc
    return geolite2_database()


def _configured_database() -> str | None:
    """GEOIP_CITY_DB, validated with the other settings (an existing file, or an error naming the variable)."""
    from pipeline.settings import load_settings

    path = load_settings().geoip_city_db
    return str(path) if path else None


class GeoIPLookup:
    """Geolocates IP address strings. Cheap to construct (the file is memory-mapped). Its caches are not
    synchronised: use one instance per thread."""

    max_cached_ips = 1_000_000
    max_cached_networks = 500_000

    def __init__(self, db_path: str | None = None) -> None:
        if db_path:
            source, path = "argument", str(db_path)
        elif configured := _configured_database():
            source, path = "env", configured
        else:
            source, path = "bundled", bundled_database_path()
        self.path, self.source = path, source
        self._reader = self._open(path)
        self._db = maxminddb.open_database(path)
        self._ip_cache: dict[Any, GeoInfo] = {}
        self._net_cache = self._empty_net_cache()
        self._cached_networks = 0

    @staticmethod
    def _empty_net_cache() -> dict[int, list[tuple[int, dict[int, tuple[list, list, list]]]]]:
        # Database networks decoded so far, per IP version: [(level, buckets)], longest level first. A network of
        # prefix length p sits in the bucket of the longest level <= p, keyed by its first `level` bits; a bucket
        # is (starts, ends, geos) sorted by start, searched by bisection (a few microseconds less than a decode).
        return {v: [(level, {}) for level in levels] for v, levels in _CACHE_LEVELS.items()}

    @staticmethod
    def _open(path: str) -> geoip2.database.Reader:
        hint = f"set {ENV_VAR} to a readable GeoLite2-City or GeoIP2-City .mmdb file"
        if not os.path.isfile(path):
            raise GeoIPDatabaseError(f"GeoIP City database not found: {path!r} ({hint})")
        try:
            reader = geoip2.database.Reader(path)
        except (OSError, ValueError, maxminddb.InvalidDatabaseError) as exc:
            raise GeoIPDatabaseError(f"GeoIP City database unreadable: {path!r}: {exc} ({hint})") from exc
        db_type = reader.metadata().database_type
        if "City" not in db_type and "Enterprise" not in db_type:  # Enterprise is a superset of City
            reader.close()
            raise GeoIPDatabaseError(f"{path!r} is a {db_type} database, not a City database ({hint})")
        return reader

    def close(self) -> None:
        self._db.close()
        self._reader.close()

    def __enter__(self) -> GeoIPLookup:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def database_info(self, now: datetime | None = None) -> dict[str, Any]:
        meta = self._reader.metadata()
        built = datetime.fromtimestamp(meta.build_epoch, timezone.utc)
        now = now or datetime.now(timezone.utc)
        return {
            "path": self.path,
            "source": self.source,  # argument | env | bundled
            "build_epoch": built,
            "database_type": meta.database_type,
            "age_days": (now - built).days,
        }

    def lookup(self, ip: str | None) -> GeoInfo:
        info = self._ip_cache.get(ip)
        if info is None:
            info = self._lookup(ip)
            if len(self._ip_cache) >= self.max_cached_ips:
                self._ip_cache.clear()  # bounded memory; a refill is cheap thanks to the network cache
            self._ip_cache[ip] = info
        return info

    def lookup_many(self, ips: Iterable[str | None]) -> list[GeoInfo]:
        # Decoding allocates many short-lived dicts while the result list keeps growing: the cyclic GC's repeated
        # full passes would cost ~25% of a large batch, and nothing here creates reference cycles.
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            lookup = self.lookup
            return [lookup(ip) for ip in ips]
        finally:
            if gc_was_enabled:
                gc.enable()

    def _lookup(self, ip: str | None) -> GeoInfo:
        if not isinstance(ip, str):
            return GeoInfo(None, None, False, False, False, False)
        parsed = _parse_ip(ip.strip())
        if parsed is None:
            return GeoInfo(ip, None, False, False, False, False)
        version, value = parsed
        kind = classify_ip(version, value)
        if kind == "embed_v4":
            value &= 0xFFFFFFFF
            lookup_version = 4
            kind = classify_ip(4, value)
        else:
            lookup_version = version
        if kind == "private":
            return GeoInfo(ip, version, True, True, False, False)
        if kind == "reserved":
            return GeoInfo(ip, version, True, False, True, False)
        return GeoInfo(ip, version, True, False, False, *self._geo(lookup_version, value))

    def _geo(self, version: int, value: int) -> _GeoFields:
        bits = _BITS[version]
        levels = self._net_cache[version]
        for level, buckets in levels:
            bucket = buckets.get(value >> (bits - level))
            if bucket is not None:
                starts, ends, geos = bucket
                i = bisect_right(starts, value) - 1
                if i >= 0 and value <= ends[i]:
                    return geos[i]
        if version == 4:
            address = socket.inet_ntop(socket.AF_INET, value.to_bytes(4, "big"))
        else:
            address = socket.inet_ntop(socket.AF_INET6, value.to_bytes(16, "big"))
        try:
            record, plen = self._db.get_with_prefix_len(address)
        except ValueError:  # IPv6 address against an IPv4-only database
            return _NOT_FOUND
        geo = _geo_fields(record)
        # Database networks are disjoint leaves of one tree, so a cached network containing an address is the
        # network the database would return for it.
        if 0 < plen <= bits:
            if self._cached_networks >= self.max_cached_networks:
                self._net_cache = self._empty_net_cache()
                self._cached_networks = 0
                levels = self._net_cache[version]
            host_bits = bits - plen
            start = value >> host_bits << host_bits
            level, buckets = next((lv, b) for lv, b in levels if lv <= plen)
            starts, ends, geos = buckets.setdefault(start >> (bits - level), ([], [], []))
            i = bisect_right(starts, start)
            starts.insert(i, start)
            ends.insert(i, start | ((1 << host_bits) - 1))
            geos.insert(i, geo)
            self._cached_networks += 1
        return geo
