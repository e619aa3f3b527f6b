"""Key, reachability and scope checks against the real simulator over loopback HTTP, and the command's exit code."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time

import pytest

from pipeline.config import Settings
from pipeline.preflight import FAIL, OK, WARN, main, run_checks
from simulator.process import PROJECT_ROOT, free_port
from tests.preflight.conftest import ACTIVITIES, ADMIN, FULL, USERDATA, by_name

KEY_ENV = "ANTHROPIC_COMPLIANCE_ACCESS_KEY"
SCOPES = ["scope read:compliance_activities", "scope read:compliance_user_data", "scope read:compliance_org_data"]
ALL_CHECKS = ["access key", "API reachable", "API key", *SCOPES, "warehouse path", "serving path", "GeoIP database"]
# A key the simulator does not know, assembled at run time (secret scanners); its secret part must never be printed.
SECRET = "q7Wm2pXz9LkR4vBn" + "8TyU3cD6"
UNKNOWN_KEY = "sk-ant-api01-" + SECRET


@pytest.fixture
def api_env(env, sim, monkeypatch):
    monkeypatch.setenv("COMPLIANCE_API_BASE_URL", sim.base_url)
    return env


def checks(key: str | None, monkeypatch) -> dict:
    if key is None:
        monkeypatch.delenv(KEY_ENV, raising=False)
    else:
        monkeypatch.setenv(KEY_ENV, key)
    return by_name(run_checks(Settings.from_env()))


def test_full_key_passes_every_check_and_leaves_only_the_directory(api_env, monkeypatch):
    results = checks(FULL, monkeypatch)
    assert list(results) == ALL_CHECKS
    assert {n: r.status for n, r in results.items() if n != "GeoIP database"} == {n: OK for n in ALL_CHECKS[:-1]}
    assert "will be created" in results["warehouse path"].message
    # the bundled 2018 GeoLite2 is the only remark
    assert results["GeoIP database"].status == WARN
    assert api_env.is_dir() and list(api_env.iterdir()) == []  # probe files removed, no DuckDB file created


def test_main_prints_one_line_per_check_and_exits_0(api_env, monkeypatch, capsys):
    monkeypatch.setenv(KEY_ENV, FULL)
    assert main() == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith(os.environ["COMPLIANCE_API_BASE_URL"])
    for name in ALL_CHECKS:
        [line] = [ln for ln in lines if f"  {name}  " in ln]
        assert line.startswith("WARN" if name == "GeoIP database" else "OK")
    assert lines[-1] == "0 FAIL, 1 WARN: ready."


def test_missing_key_fails_and_skips_the_api_checks(api_env, monkeypatch, capsys):
    results = checks(None, monkeypatch)
    key = results["access key"]
    assert key.status == FAIL
    assert f"{KEY_ENV} is not set: set {KEY_ENV} to a Compliance Access Key (sk-ant-api01-…)" in key.message
    assert "claude.ai › Organization settings › API" in key.message
    assert results["API reachable"].status == OK  # checked without a key
    assert "API key" not in results and not set(SCOPES) & set(results)
    assert main() == 1
    assert capsys.readouterr().out.splitlines()[-1].startswith("1 FAIL")


def test_unknown_key_is_rejected_with_401(api_env, monkeypatch):
    results = checks(UNKNOWN_KEY, monkeypatch)
    assert results["access key"].status == OK  # well-formed Compliance Access Key
    api_key = results["API key"]
    assert api_key.status == FAIL
    assert "rejected the key in ANTHROPIC_COMPLIANCE_ACCESS_KEY (401: wrong or revoked" in api_key.message
    assert "starts with sk-ant-api01-" in api_key.message and "Organization settings › API" in api_key.message
    assert "request_id=req_" in api_key.message
    assert not set(SCOPES) & set(results)


def test_unknown_admin_key_gets_the_admin_message(api_env, monkeypatch):
    results = checks("sk-ant-admin01-" + SECRET, monkeypatch)
    assert results["access key"].status == WARN and "Admin API key (sk-ant-admin01-…)" in results["access key"].message
    msg = results["API key"].message
    assert results["API key"].status == FAIL
    assert "rejected the Admin API key (sk-ant-admin01-…)" in msg and "Claude Console › Settings › Admin keys" in msg
    assert "Compliance Access Key (sk-ant-api01-…)" in msg


def test_admin_key_reads_the_feed_only(api_env, monkeypatch):
    results = checks(ADMIN, monkeypatch)
    assert results["API key"].status == OK and results["scope read:compliance_activities"].status == OK
    for name in SCOPES[1:]:
        assert results[name].status == FAIL
        assert "Admin API keys reach the Activity Feed only" in results[name].message


def test_key_without_the_activities_scope(api_env, monkeypatch):
    results = checks(USERDATA, monkeypatch)
    assert results["API key"].status == OK  # a 403 means the key is known
    activities = results["scope read:compliance_activities"]
    assert activities.status == FAIL
    assert activities.message.startswith("missing (the key has: read:compliance_user_data)")
    assert "raw/activities" in activities.message and "Scopes are fixed when a key is created" in activities.message
    assert "read:compliance_activities, read:compliance_user_data and read:compliance_org_data" in activities.message
    assert results["scope read:compliance_user_data"].status == OK
    assert results["scope read:compliance_org_data"].status == FAIL


def test_activities_only_key_names_the_features_that_stop(api_env, monkeypatch):
    results = checks(ACTIVITIES, monkeypatch)
    assert results["scope read:compliance_activities"].status == OK
    user_data, org_data = results["scope read:compliance_user_data"], results["scope read:compliance_org_data"]
    assert user_data.status == org_data.status == FAIL
    assert "(the key has: read:compliance_activities)" in user_data.message
    assert "raw/chats" in user_data.message and "raw/organization_users" in user_data.message
    assert "organization list" in org_data.message


def test_unreachable_base_url_fails_fast(env, monkeypatch):
    url = f"http://127.0.0.1:{free_port()}"  # bound once, then closed: nothing listens there
    monkeypatch.setenv("COMPLIANCE_API_BASE_URL", url)
    started = time.monotonic()
    results = checks(FULL, monkeypatch)
    assert time.monotonic() - started < 5
    reach = results["API reachable"]
    assert reach.status == FAIL
    assert f"cannot reach {url}: connection refused" in reach.message
    assert f"Fix COMPLIANCE_API_BASE_URL (now {url}" in reach.message
    assert "API key" not in results


def test_key_never_appears_in_output_logs_or_reprs(api_env, monkeypatch, capsys, caplog):
    caplog.set_level(logging.DEBUG)
    texts = []
    for key in (UNKNOWN_KEY, "sk-ant-admin01-" + SECRET, " " + UNKNOWN_KEY + " ", FULL):
        monkeypatch.setenv(KEY_ENV, key)
        texts.append(repr(run_checks(Settings.from_env())))
        main()
        captured = capsys.readouterr()
        texts += [captured.out, captured.err]
    texts.append(caplog.text)
    everything = "\n".join(texts)
    assert SECRET not in everything and "sim-full" not in everything
    assert "request_id=req_" in everything  # the API was really asked


def test_command_exit_code_and_no_key_in_output(api_env, tmp_path):
    env = {**os.environ, KEY_ENV: UNKNOWN_KEY, "PYTHONPATH": str(PROJECT_ROOT)}
    proc = subprocess.run([sys.executable, "-m", "pipeline.preflight"], env=env, capture_output=True, text=True,
                          timeout=60, cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "FAIL  API key" in proc.stdout
    assert SECRET not in proc.stdout + proc.stderr


def test_dotenv_of_the_working_directory_is_read_like_dagster_dev(api_env, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv(KEY_ENV, UNKNOWN_KEY)  # `.env` wins, as in `dagster dev`; monkeypatch restores the variable
    (tmp_path / ".env").write_text(f"{KEY_ENV}={FULL}\n")
    assert main() == 0
    out = capsys.readouterr().out
    assert f"as `dagster dev` does: {KEY_ENV})" in out and "sim-full" not in out


@pytest.mark.parametrize("faults, reason", [("429=100%", "rate limited (429)"), ("5xx=100%", "server error (5")])
def test_rate_limits_and_server_errors_warn_without_retrying(api_env, sim, monkeypatch, faults, reason):
    before = sim.stats()["requests_total"]
    sim.set_faults(faults)
    try:
        started = time.monotonic()
        results = checks(FULL, monkeypatch)
        elapsed = time.monotonic() - started
    finally:
        sim.set_faults("")
    assert sim.stats()["requests_total"] - before == 4  # one request per endpoint plus the unauthenticated probe
    assert elapsed < 3  # no retry-after or backoff waits
    assert results["API key"].status == OK  # 401 comes before rate limiting and faults
    for name in SCOPES:
        assert results[name].status == WARN and results[name].message.startswith(f"not verified: {reason}")
