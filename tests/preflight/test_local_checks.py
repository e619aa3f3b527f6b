"""Warehouse / serving paths and the GeoIP database (no simulator needed)."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

import duckdb
import pytest

from pipeline.config import Settings
from pipeline.enrichment.geo import GeoIPLookup, bundled_database_path
from pipeline.preflight import FAIL, OK, WARN, check_geoip, check_path, main
from simulator.process import free_port


def warehouse_check(settings: Settings):
    return check_path("warehouse path", "COMPLIANCE_WAREHOUSE_PATH", settings.warehouse_path,
                      settings.warehouse_path, "the warehouse")


def test_unwritable_warehouse_path(env, monkeypatch, tmp_path):
    # Tests run as root, so a read-only directory would not stop a write: put a regular file where a directory must be.
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    monkeypatch.setenv("COMPLIANCE_WAREHOUSE_PATH", str(blocker / "data" / "warehouse.duckdb"))
    result = warehouse_check(Settings.from_env())
    assert result.status == FAIL
    assert f"cannot create directory {blocker / 'data'}: {blocker} is a file, not a directory" in result.message
    assert "Set COMPLIANCE_WAREHOUSE_PATH to a file path in a writable directory" in result.message
    assert blocker.read_text() == "x"


def test_warehouse_path_that_is_a_directory(env, monkeypatch, tmp_path):
    monkeypatch.setenv("COMPLIANCE_WAREHOUSE_PATH", str(tmp_path))
    result = warehouse_check(Settings.from_env())
    assert result.status == FAIL and "is a directory. Set COMPLIANCE_WAREHOUSE_PATH" in result.message


@pytest.fixture
def holder(env):
    """Another process holding the warehouse file open read-write, as a running pipeline would."""
    env.mkdir()
    path = env / "warehouse.duckdb"
    duckdb.connect(str(path)).close()
    proc = subprocess.Popen([sys.executable, "-c", "import duckdb, sys; c = duckdb.connect(sys.argv[1]); "
                             "print('locked', flush=True); sys.stdin.read()", str(path)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        yield proc
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)


def test_locked_warehouse_names_the_process(env, holder):
    before = sorted(p.name for p in env.iterdir())
    result = warehouse_check(Settings.from_env())
    assert result.status == FAIL
    assert f"is locked by process {holder.pid} (" in result.message and "stop it" in result.message
    holder.stdin.close()
    holder.wait(timeout=30)
    result = warehouse_check(Settings.from_env())
    assert result.status == OK and "exists, not locked" in result.message
    assert sorted(p.name for p in env.iterdir()) == before  # nothing left behind


def test_serving_path_must_differ_from_the_warehouse(env, monkeypatch, capsys):
    # refused by the settings themselves (pipeline.settings): the preflight reports it and stops
    monkeypatch.setenv("COMPLIANCE_API_BASE_URL", f"http://127.0.0.1:{free_port()}")  # fails fast, not under test
    monkeypatch.setenv("COMPLIANCE_SERVING_PATH", str(env / "warehouse.duckdb"))
    assert main() == 1
    out = capsys.readouterr().out
    assert out.startswith("FAIL  settings") and "COMPLIANCE_SERVING_PATH=" in out and "separate file" in out


def test_missing_geoip_file(env, monkeypatch, tmp_path, capsys):
    missing = tmp_path / "GeoLite2-City.mmdb"
    monkeypatch.setenv("GEOIP_CITY_DB", str(missing))
    assert main() == 1  # refused by the settings (pipeline.settings), named with its value
    assert f"GEOIP_CITY_DB={str(missing)!r}" in capsys.readouterr().out
    result = check_geoip(str(missing))  # the check itself, for a file removed after the settings were read
    assert result.status == FAIL
    assert f"GeoIP City database not found: {str(missing)!r}" in result.message
    assert "Fix GEOIP_CITY_DB or unset it" in result.message


def test_unreadable_geoip_file(env, monkeypatch, tmp_path):
    garbage = tmp_path / "city.mmdb"
    garbage.write_bytes(b"not a maxmind database")
    monkeypatch.setenv("GEOIP_CITY_DB", str(garbage))
    result = check_geoip(Settings.from_env().geoip_city_db)
    assert result.status == FAIL and "unreadable" in result.message


def test_bundled_geoip_warns_with_its_build_date(env):
    result = check_geoip(Settings.from_env().geoip_city_db)
    assert result.status == WARN
    assert result.message.startswith("bundled GeoLite2-City")
    assert "GeoLite2-City built 2018-07-03" in result.message
    assert "set GEOIP_CITY_DB to its path" in result.message


def test_current_geoip_file_is_ok(env, monkeypatch):
    path = bundled_database_path()
    with GeoIPLookup(path) as geo:
        built = geo.database_info()["build_epoch"]
    monkeypatch.setenv("GEOIP_CITY_DB", path)
    result = check_geoip(Settings.from_env().geoip_city_db, now=built + timedelta(days=10))
    assert result.status == OK
    assert result.message == f"GEOIP_CITY_DB={path}: GeoLite2-City built {built:%Y-%m-%d} (10 days ago)."
    assert check_geoip(path, now=built + timedelta(days=36)).status == WARN
