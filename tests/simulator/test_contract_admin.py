"""Simulator admin endpoints (/_sim/*) and the `compliance_api_accessed` trail emitted per authenticated call."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import httpx

ACT = "/v1/compliance/activities"
FULL = "sk-ant-api01-sim-full"
USERDATA = "sk-ant-api01-sim-userdata"


def ts(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


def iso(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def test_health_and_config_never_show_key_material(sim):
    with httpx.Client(base_url=sim.base_url, timeout=10) as c:
        h = c.get("/_sim/health")
        assert h.status_code == 200 and h.json()["status"] == "ok"
        cfg = c.get("/_sim/config")
        assert cfg.status_code == 200
        assert "sk-ant-api01-sim-full" not in cfg.text and "sk-ant-admin01-sim-admin" not in cfg.text
        body = cfg.json()
        assert body["seed"] == 7 and body["activities_per_day"] == 4000
        keys = body["server"]["keys"]
        assert {k["name"] for k in keys} >= {"sim-full", "sim-admin"}
        assert all(k["id"].startswith("apikey_") for k in keys)
        assert body["server"]["rate_limit_per_minute"] == 0


def test_stats_count_by_endpoint_and_status(sim, make_client):
    before = sim.stats()["by_endpoint"]
    with make_client(sim) as c:
        c.get(ACT, params={"limit": 1})
        c.get(ACT, params={"limit": 0})
        c.get("/v1/compliance/organizations")
    with make_client(sim, "sk-ant-api01-nope") as c:
        c.get(ACT)
    after = sim.stats()["by_endpoint"]

    def delta(ep, status):
        return after.get(ep, {}).get(status, 0) - before.get(ep, {}).get(status, 0)

    assert (delta("activities", "200"), delta("activities", "400"), delta("activities", "401")) == (1, 1, 1)
    assert delta("organizations", "200") == 1


def test_ground_truth_endpoint(sim):
    gt = sim.ground_truth("2026-03-02T06:00:00Z", "2026-03-02T07:00:00Z")
    assert {"range", "seed", "activity_ids", "activity_count", "type_counts", "malformed", "incidents",
            "chats"} <= set(gt)
    assert gt["activity_count"] == len(gt["activity_ids"]) == sum(gt["type_counts"].values())
    with httpx.Client(base_url=sim.base_url, timeout=10) as c:
        assert c.get("/_sim/ground-truth", params={"gte": "yesterday"}).status_code == 400
        assert c.get("/_sim/nope").status_code == 404


def test_access_events_are_emitted_per_authenticated_call(sim_access, make_client):
    cfg = sim_access.config()
    key_ids = {k["name"]: k["id"] for k in cfg["server"]["keys"]}
    t0 = datetime.now(timezone.utc) - timedelta(seconds=5)
    with make_client(sim_access) as c:
        ok = c.get(ACT, params={"limit": 1})
        assert ok.status_code == 200
        bad = c.get(ACT, params={"limit": 0})
        assert bad.status_code == 400
    with make_client(sim_access, USERDATA) as c:
        forbidden = c.get(ACT)
        assert forbidden.status_code == 403
    with make_client(sim_access, "sk-ant-api01-nope") as c:
        unauth = c.get(ACT)
        assert unauth.status_code == 401
    sim_access.set_clock(advance_seconds=120)  # past the indexing lag
    try:
        with make_client(sim_access) as c:
            events = c.get(ACT, params=[("activity_types[]", "compliance_api_accessed"), ("limit", 5000),
                                        ("created_at.gte", iso(t0))]).json()["data"]
    finally:
        sim_access.set_clock(wall=True)
    by_rid = {e["request_id"]: e for e in events}
    e = by_rid[ok.headers["request-id"]]
    assert e["type"] == "compliance_api_accessed"
    assert e["organization_id"] is None and e["organization_uuid"] is None
    assert e["actor"]["type"] == "api_actor" and e["actor"]["api_key_id"] == key_ids["sim-full"]
    assert e["request_method"] == "GET" and e["status_code"] == 200 and "/v1/compliance/activities" in e["url"]
    assert by_rid[bad.headers["request-id"]]["status_code"] == 400
    f = by_rid[forbidden.headers["request-id"]]
    assert f["status_code"] == 403 and f["actor"]["api_key_id"] == key_ids["sim-userdata"]
    assert unauth.headers["request-id"] not in by_rid  # unauthenticated calls leave no trail


def test_simulator_process_accepts_a_simconfig(make_client):
    from simulator.config import SimConfig
    from simulator.process import SimulatorProcess

    cfg = SimConfig.historical("2026-03-02T00:00:00Z", 1, seed=9, activities_per_day=300, chats_per_day=5,
                               rate_limit=2, emit_access_events=False)
    with SimulatorProcess(cfg) as sim2:
        body = sim2.config()
        assert body["seed"] == 9 and body["server"]["rate_limit_per_minute"] == 2
        with make_client(sim2) as c:
            assert [c.get(ACT).status_code for _ in range(3)] == [200, 200, 429]
    assert sim2.proc.poll() is not None  # terminated on exit
