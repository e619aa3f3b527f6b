"""Contract §1, §7, §12.1/§12.6: authentication, scopes, error shape and request-id on every response."""

from __future__ import annotations

import httpx
import pytest

FULL = "sk-ant-api01-sim-full"
ACTIVITIES = "sk-ant-api01-sim-activities"
USERDATA = "sk-ant-api01-sim-userdata"
ORGDATA = "sk-ant-api01-sim-orgdata"
ADMIN = "sk-ant-admin01-sim-admin"

INVALID_KEY = "The API key provided is invalid or has been revoked."

ACT = "/v1/compliance/activities"
ORGS = "/v1/compliance/organizations"
CHATS = "/v1/compliance/apps/chats"

SCOPES = {
    FULL: ["read:compliance_activities", "read:compliance_user_data", "read:compliance_org_data",
           "delete:compliance_user_data"],
    ACTIVITIES: ["read:compliance_activities"],
    USERDATA: ["read:compliance_user_data"],
    ORGDATA: ["read:compliance_org_data"],
    ADMIN: ["read:compliance_activities"],
}


@pytest.fixture(scope="module")
def org_uuid(sim, make_client) -> str:
    with make_client(sim) as c:
        return c.get(ORGS).json()["data"][0]["uuid"]


def _endpoints(org_uuid: str) -> dict[str, tuple[str, str, str]]:
    """name -> (method, path, needed scope)"""
    return {
        "activities": ("GET", ACT, "read:compliance_activities"),
        "organizations": ("GET", ORGS, "read:compliance_org_data"),
        "users": ("GET", f"{ORGS}/{org_uuid}/users", "read:compliance_user_data"),
        "chats": ("GET", CHATS, "read:compliance_user_data"),
        "messages": ("GET", f"{CHATS}/claude_chat_01doesnotexist/messages", "read:compliance_user_data"),
        "delete": ("DELETE", f"{CHATS}/claude_chat_01doesnotexist", "delete:compliance_user_data"),
    }


@pytest.mark.parametrize("headers", [
    {},
    {"x-api-key": ""},
    {"x-api-key": "sk-ant-api01-not-a-real-key"},
    {"x-api-key": "sk-ant-api03-" + "regular-claude-api-key"},
    {"x-api-key": FULL + "x"},
    {"authorization": "Bearer sk-ant-api01-unknown"},
    {"authorization": "Basic c2stYW50LWFwaTAxLXNpbS1mdWxs"},
], ids=["missing", "empty", "unknown", "claude-api-key", "near-miss", "bearer-unknown", "basic-auth"])
def test_invalid_keys_get_401(sim, headers, check_error):
    with httpx.Client(base_url=sim.base_url, timeout=10) as c:
        for path in (ACT, ORGS, CHATS):
            check_error(c.get(path, headers=headers), 401, "authentication_error", INVALID_KEY)


def test_bearer_header_is_accepted(sim):
    with httpx.Client(base_url=sim.base_url, timeout=10) as c:
        r = c.get(ACT, params={"limit": 1}, headers={"authorization": f"Bearer {FULL}"})
        assert r.status_code == 200
        assert len(r.json()["data"]) == 1


def test_anthropic_version_is_optional_and_accepted(api):
    a = api.get(ACT, params={"limit": 3})
    b = api.get(ACT, params={"limit": 3}, headers={"anthropic-version": "2023-06-01"})
    assert a.status_code == b.status_code == 200
    assert a.json()["data"] == b.json()["data"]


@pytest.mark.parametrize("key", [FULL, ACTIVITIES, USERDATA, ORGDATA, ADMIN])
def test_scopes_per_key_and_endpoint(sim, org_uuid, key, make_client, check_error):
    with make_client(sim, key) as c:
        for name, (method, path, needed) in _endpoints(org_uuid).items():
            r = c.request(method, path)
            allowed = needed in SCOPES[key] and not (key == ADMIN and name != "activities")
            if allowed:
                # allowed: anything but 401/403 (the message/delete probes use unknown ids -> 404)
                assert r.status_code in (200, 404), (key, name, r.text)
                if r.status_code == 404:
                    check_error(r, 404, "not_found_error", "Chat claude_chat_01doesnotexist not found.")
            else:
                check_error(r, 403, "permission_error",
                             f"Missing required scopes. Got: {SCOPES[key]!r} Needed: {[needed]!r}")


def test_scope_message_format_matches_contract_example(sim, make_client, check_error):
    with make_client(sim, USERDATA) as c:
        check_error(c.get(ACT), 403, "permission_error",
                     "Missing required scopes. Got: ['read:compliance_user_data'] "
                     "Needed: ['read:compliance_activities']")


def test_admin_key_reads_the_feed_only(sim, make_client, check_error):
    with make_client(sim, ADMIN) as c:
        r = c.get(ACT, params={"limit": 2})
        assert r.status_code == 200 and len(r.json()["data"]) == 2
        check_error(c.get(ORGS), 403, "permission_error")
        check_error(c.get(CHATS), 403, "permission_error")


def test_request_id_on_every_response(sim, org_uuid, make_client):
    seen = set()
    with make_client(sim) as c:
        responses = [
            c.get(ACT, params={"limit": 1}),                      # 200
            c.get(ACT, params={"limit": 0}),                      # 400
            c.get(ACT, headers={"x-api-key": "nope"}),            # 401
            c.get(ORGS, headers={"x-api-key": USERDATA}),         # 403
            c.get(f"{ORGS}/00000000-0000-4000-8000-000000000000/users"),  # 404
            c.get("/v1/compliance/no-such-endpoint"),             # 404 route
            c.get(f"{ORGS}/{org_uuid}/users"),
            c.get(CHATS, params={"limit": 1}),
            c.get("/_sim/health"),
            c.get("/not-the-api"),
        ]
    for r in responses:
        rid = r.headers.get("request-id")
        assert rid and rid.startswith("req_"), (r.request.url, r.status_code)
        seen.add(rid)
        if r.status_code >= 400:
            assert r.json()["request_id"] == rid
    assert len(seen) == len(responses)  # unique per response


def test_unknown_route_is_404_after_auth(sim, check_error):
    with httpx.Client(base_url=sim.base_url, timeout=10) as c:
        check_error(c.get("/v1/compliance/no-such-endpoint"), 401, "authentication_error")
        check_error(c.get("/v1/compliance/no-such-endpoint", headers={"x-api-key": FULL}), 404, "not_found_error")


def test_keys_file_replaces_the_default_keys(tmp_path_factory, make_client, check_error):
    """--keys FILE (here through its env fallback SIMULATOR_KEYS_FILE): custom keys and scopes, defaults gone."""
    import json

    from simulator.process import SimulatorProcess

    path = tmp_path_factory.mktemp("keys") / "keys.json"
    path.write_text(json.dumps([
        {"key": "sk-ant-api01-custom-feed-and-org", "name": "custom",
         "scopes": ["read:compliance_activities", "read:compliance_org_data"]},
        {"key": "sk-ant-admin01-custom-admin", "scopes": ["read:compliance_activities"]},
    ]))
    args = ["--start", "2026-03-02T00:00:00Z", "--days", "1", "--volume", "500", "--chats-per-day", "5",
            "--rate-limit", "0"]
    with SimulatorProcess(args, env={"SIMULATOR_KEYS_FILE": str(path)}) as sim2:
        with make_client(sim2, "sk-ant-api01-custom-feed-and-org") as c:
            assert c.get(ACT, params={"limit": 1}).status_code == 200
            assert c.get(ORGS).status_code == 200
            check_error(c.get(CHATS), 403, "permission_error",
                        "Missing required scopes. Got: ['read:compliance_activities', 'read:compliance_org_data'] "
                        "Needed: ['read:compliance_user_data']")
        with make_client(sim2, "sk-ant-admin01-custom-admin") as c:
            assert c.get(ACT, params={"limit": 1}).status_code == 200
        with make_client(sim2, FULL) as c:
            check_error(c.get(ACT), 401, "authentication_error", INVALID_KEY)
        assert "custom-feed" not in sim2.config().__repr__()
