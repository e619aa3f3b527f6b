"""GeoIPLookup against the bundled GeoLite2-City database of 2018-07-03 (expected values read from that file)."""

from __future__ import annotations

import dataclasses
import ipaddress
import random
import struct
from datetime import datetime, timezone

import geoip2.database
import geoip2.errors
import pytest

from pipeline.enrichment.geo import (
    ENV_VAR,
    SPECIAL_NETWORKS,
    GeoInfo,
    GeoIPDatabaseError,
    GeoIPLookup,
    bundled_database_path,
)
from pipeline.settings import SettingsError


@pytest.fixture(scope="module")
def geo():
    # Explicit path: a developer's GEOIP_CITY_DB must not change what these facts are checked against.
    with GeoIPLookup(bundled_database_path()) as lookup:
        yield lookup


class _SpyDB:
    """Stands in for the maxminddb reader and records which addresses reached the database."""

    def __init__(self, inner):
        self.inner, self.calls = inner, []

    def get_with_prefix_len(self, address):
        self.calls.append(address)
        return self.inner.get_with_prefix_len(address)

    def close(self):
        self.inner.close()


# ip -> (country_iso, subdivision_iso, city), as stored in the 2018 database.
KNOWN = {
    "81.2.69.160": ("GB", "GB-ENG", "Willesden"),
    "2.125.160.216": ("GB", "GB-NIR", "Dromara"),
    "89.160.20.112": ("SE", "SE-AB", "Stockholm"),
    "193.0.6.139": ("NL", "NL-NH", "Amsterdam"),
    "8.8.8.8": ("US", None, None),
    "2001:4860:4860::8888": ("US", "US-CA", "Mountain View"),
    "2a00:1450:4001:80b::200e": ("DE", "DE-HE", "Frankfurt am Main"),
    "::ffff:81.2.69.160": ("GB", "GB-ENG", "Willesden"),  # IPv4-mapped: looked up as the IPv4 address
    "64:ff9b::5.59.104.1": ("UA", "UA-43", "Simferopol"),  # NAT64 well-known prefix: likewise
}

# Monitor 4's default embargo list as the 2018 database has it (found by scanning every network of the file:
# CU 410, IR 4838, KP 6, SY 273 networks; UA-43 164, UA-40 38, UA-14 562, UA-09 170; no RU-coded Crimea).
EMBARGOED = {
    "2.179.0.1": ("IR", "IR-32", "Karaj"),
    "200.55.128.1": ("CU", "CU-09", "La Habana"),
    "5.0.158.146": ("SY", "SY-LA", "Latakia"),
    "175.45.176.1": ("KP", None, None),
    "5.62.56.161": ("KP", "KP-04", "Manp'o"),
    "5.59.104.1": ("UA", "UA-43", "Simferopol"),
    "5.149.208.1": ("UA", "UA-40", "Sevastopol"),
    "5.56.24.1": ("UA", "UA-14", "Donetsk"),
    "31.40.144.1": ("UA", "UA-09", "Alchevs'k"),
    "2001:67c:26f8::1": ("UA", "UA-09", "Luhansk"),
}


@pytest.mark.parametrize("ip,expected", [*KNOWN.items(), *EMBARGOED.items()])
def test_public_ips_geolocate(geo, ip, expected):
    info = geo.lookup(ip)
    assert info.is_valid and info.found and not info.is_private and not info.is_reserved
    assert info.ip == ip
    assert info.ip_version == (6 if ":" in ip else 4)
    assert (info.country_iso, info.subdivision_iso, info.city) == expected
    assert info.country_name and info.latitude is not None and info.longitude is not None
    assert info.accuracy_radius and info.accuracy_radius > 0


def test_subdivision_fields_use_the_first_subdivision(geo):
    info = geo.lookup("81.2.69.160")  # England, then the London borough of Brent
    assert (info.country_name, info.subdivision_iso, info.subdivision_name) == ("United Kingdom", "GB-ENG", "England")
    crimea = geo.lookup("5.59.104.1")
    assert crimea.subdivision_name == "Autonomous Republic of Crimea"


@pytest.mark.parametrize("ip,private,reserved", [
    ("10.1.2.3", True, False),
    ("172.16.0.1", True, False),
    ("172.31.255.255", True, False),
    ("192.168.1.10", True, False),
    ("fd12:3456:789a::1", True, False),
    ("127.0.0.1", False, True),
    ("0.0.0.0", False, True),
    ("169.254.10.20", False, True),
    ("100.64.0.1", False, True),
    ("100.127.255.254", False, True),
    ("192.0.2.5", False, True),
    ("198.51.100.7", False, True),
    ("203.0.113.9", False, True),
    ("198.18.0.1", False, True),
    ("224.0.0.251", False, True),
    ("239.255.255.250", False, True),
    ("240.0.0.1", False, True),
    ("255.255.255.255", False, True),
    ("::", False, True),
    ("::1", False, True),
    ("fe80::1", False, True),
    ("fe80::1%eth0", False, True),
    ("ff02::1", False, True),
    ("2001:db8::1", False, True),
    ("3fff::1", False, True),
    ("::ffff:10.0.0.1", True, False),
    ("::ffff:127.0.0.1", False, True),
])
def test_private_and_reserved_are_flagged_and_not_looked_up(ip, private, reserved):
    with GeoIPLookup(bundled_database_path()) as lookup:
        spy = lookup._db = _SpyDB(lookup._db)
        info = lookup.lookup(ip)
    assert info.is_valid
    assert (info.is_private, info.is_reserved) == (private, reserved)
    assert not info.found and info.country_iso is None and info.latitude is None
    assert spy.calls == []


def test_public_addresses_next_to_special_ranges_are_looked_up(geo):
    for ip in ("100.63.255.255", "100.128.0.0", "172.32.0.1", "11.0.0.1", "223.255.255.1"):
        info = geo.lookup(ip)
        assert info.is_valid and not info.is_private and not info.is_reserved, ip


@pytest.mark.parametrize("value", [
    "", " ", "not-an-ip", "1.2.3", "256.1.1.1", "1.2.3.4.5", "01.2.3.4", "1.2.3.4/24", "::g", "1::2::3",
    "12345", "999.999.999.999", "10.0.0.1:443", None, 12345,
])
def test_garbage_is_invalid_not_an_exception(geo, value):
    info = geo.lookup(value)
    assert not info.is_valid
    assert info.ip_version is None
    assert not (info.found or info.is_private or info.is_reserved)
    assert info.country_iso is None


def test_surrounding_whitespace_is_tolerated(geo):
    info = geo.lookup(" 81.2.69.160\n")
    assert info.ip == " 81.2.69.160\n" and info.country_iso == "GB"


def _iana_global_exception(addr) -> bool:
    # Globally reachable exceptions inside reserved IANA blocks (e.g. 2001:1::1): older Pythons' ipaddress still
    # calls them non-global.
    return any(kind == "global" and ipaddress.ip_network(cidr).prefixlen > 3 and addr in ipaddress.ip_network(cidr)
               for cidr, kind in SPECIAL_NETWORKS if ipaddress.ip_network(cidr).version == addr.version)


def test_special_table_covers_every_address_ipaddress_calls_non_global():
    # The table is ours (speed, CGNAT/multicast/IETF space as "reserved"); it must never let through an address
    # that the standard library considers non-global.
    rng = random.Random(5)
    samples = [ipaddress.ip_address(rng.getrandbits(32)) for _ in range(20000)]
    samples += [ipaddress.ip_address(rng.getrandbits(128)) for _ in range(5000)]
    for cidr, _ in SPECIAL_NETWORKS:
        net = ipaddress.ip_network(cidr)
        samples += [net.network_address, net.broadcast_address, net.network_address + 1]
    with GeoIPLookup(bundled_database_path()) as lookup:
        lookup._db = _SpyDB(lookup._db)
        for addr in samples:
            info = lookup.lookup(str(addr))
            flagged = info.is_private or info.is_reserved
            if not addr.is_global or addr.is_multicast:
                mapped = getattr(addr, "ipv4_mapped", None)
                if mapped is not None and mapped.is_global and not mapped.is_multicast:
                    continue  # an IPv4-mapped public address is looked up as IPv4, on purpose
                assert flagged or _iana_global_exception(addr), str(addr)


def _city_via_geoip2(reader: geoip2.database.Reader, ip: str):
    try:
        c = reader.city(ip)
    except geoip2.errors.AddressNotFoundError:
        return (False, None, None, None, None, None, None, None, None)
    sub = c.subdivisions[0] if c.subdivisions else None
    return (True, c.country.iso_code, c.country.names.get("en"),
            f"{c.country.iso_code}-{sub.iso_code}" if sub is not None and c.country.iso_code else None,
            sub.names.get("en") if sub is not None else None, c.city.names.get("en"),
            c.location.latitude, c.location.longitude, c.location.accuracy_radius)


@pytest.mark.parametrize("max_networks", [500_000, 7])
def test_network_cache_agrees_with_geoip2_models(max_networks):
    # Addresses clustered in a few networks exercise the per-network cache (and its eviction when tiny).
    rng = random.Random(11)
    bases = [rng.getrandbits(32) & ~0xFFFF for _ in range(60)]
    ips = [str(ipaddress.IPv4Address(rng.choice(bases) | rng.getrandbits(16))) for _ in range(1500)]
    ips += [str(ipaddress.IPv6Address((0x2A00 << 112) | rng.getrandbits(100) << 12)) for _ in range(300)]
    reader = geoip2.database.Reader(bundled_database_path())
    with GeoIPLookup(bundled_database_path()) as lookup:
        lookup.max_cached_networks = max_networks
        infos = lookup.lookup_many(ips)
    checked = 0
    for ip, info in zip(ips, infos):
        if info.is_private or info.is_reserved:
            continue
        got = (info.found, info.country_iso, info.country_name, info.subdivision_iso, info.subdivision_name,
               info.city, info.latitude, info.longitude, info.accuracy_radius)
        assert got == _city_via_geoip2(reader, ip), ip
        checked += 1
    reader.close()
    assert checked > 1500


def test_lookup_many_keeps_order_and_caches(geo):
    ips = ["81.2.69.160", "10.0.0.1", "garbage", "81.2.69.160", "2.179.0.1"]
    infos = geo.lookup_many(ips)
    assert [i.ip for i in infos] == ips
    assert infos[0] is infos[3]
    assert [i.country_iso for i in infos] == ["GB", None, None, "GB", "IR"]


def test_geoinfo_is_frozen_and_row_shaped(geo):
    info = geo.lookup("81.2.69.160")
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.country_iso = "US"
    names = [name for name, _ in GeoInfo.COLUMNS]
    assert names == [f.name for f in dataclasses.fields(GeoInfo)]
    assert info.as_row() == tuple(info.as_dict()[n] for n in names)
    assert info.as_dict()["subdivision_iso"] == "GB-ENG"


def test_database_info_reports_the_bundled_2018_build(geo):
    info = geo.database_info(now=datetime(2026, 7, 3, 21, 26, 56, tzinfo=timezone.utc))
    assert info["path"] == bundled_database_path()
    assert info["database_type"] == "GeoLite2-City"
    assert info["build_epoch"] == datetime(2018, 7, 3, 21, 26, 56, tzinfo=timezone.utc)
    assert info["age_days"] == 2922  # eight years, two of them leap
    assert info["source"] == "argument"


def test_env_var_selects_the_database(monkeypatch):
    monkeypatch.setenv(ENV_VAR, bundled_database_path())
    with GeoIPLookup() as lookup:
        assert lookup.database_info()["source"] == "env"
        assert lookup.lookup("81.2.69.160").country_iso == "GB"


def test_env_var_pointing_at_a_missing_file_is_a_clear_error(monkeypatch, tmp_path):
    missing = tmp_path / "GeoLite2-City.mmdb"
    monkeypatch.setenv(ENV_VAR, str(missing))
    with pytest.raises(SettingsError) as err:  # read through pipeline.settings, validated with the others
        GeoIPLookup()
    assert ENV_VAR in str(err.value) and str(missing) in str(err.value)
    assert "no such file" in str(err.value)


def test_explicit_path_wins_over_env(monkeypatch, tmp_path):
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "missing.mmdb"))
    with GeoIPLookup(bundled_database_path()) as lookup:
        assert lookup.database_info()["source"] == "argument"


def test_a_file_that_is_not_a_maxmind_database_is_a_clear_error(monkeypatch, tmp_path):
    bogus = tmp_path / "city.mmdb"
    bogus.write_bytes(b"this is not a MaxMind database" * 100)
    monkeypatch.setenv(ENV_VAR, str(bogus))
    with pytest.raises(GeoIPDatabaseError) as err:
        GeoIPLookup()
    assert ENV_VAR in str(err.value) and "unreadable" in str(err.value)


def _mmdb_value(value) -> bytes:
    """Minimal MaxMind DB data-section encoder (strings, uints, maps, arrays) for a test database."""
    if isinstance(value, str):
        raw = value.encode()
        return bytes([(2 << 5) | len(raw)]) + raw
    if isinstance(value, tuple):  # (bits, int): libmaxminddb checks each metadata field's exact uint type
        bits, number = value
        raw = number.to_bytes(bits // 8, "big").lstrip(b"\0")
        if bits == 16:
            return bytes([(5 << 5) | len(raw)]) + raw
        if bits == 32:
            return bytes([(6 << 5) | len(raw)]) + raw
        return bytes([len(raw), 2]) + raw  # uint64: extended type 9, stored as 9 - 7
    if isinstance(value, dict):
        out = bytes([(7 << 5) | len(value)])
        for k, v in value.items():
            out += _mmdb_value(k) + _mmdb_value(v)
        return out
    if isinstance(value, list):
        return bytes([len(value), 4]) + b"".join(_mmdb_value(v) for v in value)  # extended type 11 (array)
    raise TypeError(value)


def _write_mmdb(path, database_type: str) -> None:
    # One-node IPv4 tree: 0.0.0.0/1 -> the record, 128.0.0.0/1 -> no data. 24-bit records.
    node_count = 1
    tree = struct.pack(">I", node_count + 16)[1:] + struct.pack(">I", node_count)[1:]
    data = _mmdb_value({"country": {"iso_code": "US"}})
    meta = _mmdb_value({
        "binary_format_major_version": (16, 2), "binary_format_minor_version": (16, 0),
        "build_epoch": (64, 1_700_000_000), "database_type": database_type, "description": {"en": "test"},
        "ip_version": (16, 4), "languages": ["en"], "node_count": (32, node_count), "record_size": (16, 24),
    })
    path.write_bytes(tree + b"\0" * 16 + data + b"\xab\xcd\xefMaxMind.com" + meta)


def test_a_database_that_is_not_a_city_database_is_a_clear_error(monkeypatch, tmp_path):
    country_db = tmp_path / "GeoLite2-Country.mmdb"
    _write_mmdb(country_db, "GeoLite2-Country")
    monkeypatch.setenv(ENV_VAR, str(country_db))
    with pytest.raises(GeoIPDatabaseError) as err:
        GeoIPLookup()
    assert ENV_VAR in str(err.value) and "GeoLite2-Country" in str(err.value) and "not a City" in str(err.value)


def test_a_minimal_city_database_is_accepted(tmp_path):
    city_db = tmp_path / "Test-City.mmdb"
    _write_mmdb(city_db, "GeoIP2-City")
    with GeoIPLookup(str(city_db)) as lookup:
        assert lookup.lookup("1.2.3.4").country_iso == "US"
        assert not lookup.lookup("200.1.1.1").found  # 128.0.0.0/1 has no data
        assert lookup.database_info()["database_type"] == "GeoIP2-City"
