"""Injected faults (DESIGN.md HTTP): each kind observed with its effect; seeded; never on /_sim/*; no data advances.

The fixture simulator starts with no faults; each test sets rates through POST /_sim/faults (100 % of one kind makes
the effect certain) and resets them afterwards.
"""

from __future__ import annotations

import httpx
import orjson
import pytest

ACT = "/v1/compliance/activities"
CHATS = "/v1/compliance/apps/chats"


@pytest.fixture
def faults(sim_faults):
    """Set fault rates for one test; always cleared afterwards."""
    def set_rates(rates, reseed: bool = False):
        return sim_faults.set_faults(rates, reseed=reseed)

    yield set_rates
    sim_faults.set_faults({})


@pytest.fixture(scope="module")
def fc(sim_faults, make_client):
    with make_client(sim_faults) as c:
        yield c


def injected(sim, kind: str) -> int:
    return sim.stats()["faults_injected"].get(kind, 0)


@pytest.mark.parametrize("status,etype", [(500, "api_error"), (502, "api_error"), (503, "overloaded_error"),
                                          (504, "timeout_error"), (529, "overloaded_error")])
def test_server_errors(sim_faults, fc, faults, check_error, status, etype):
    faults({str(status): 1.0})
    before = injected(sim_faults, str(status))
    for _ in range(3):
        check_error(fc.get(ACT, params={"limit": 5}), status, etype)
    assert injected(sim_faults, str(status)) == before + 3


def test_500_half_carry_should_retry_false(fc, faults):
    faults({"500": 1.0})
    flags = [fc.get(ACT).headers.get("x-should-retry") for _ in range(30)]
    assert "false" in flags and None in flags
    assert set(flags) <= {"false", None}


def test_injected_429(fc, faults, check_error):
    faults({"429": 1.0})
    r = fc.get(ACT)
    check_error(r, 429, "rate_limit_error")
    assert r.headers["retry-after"] == "1"


def test_admin_endpoints_are_never_faulted(sim_faults, faults):
    faults({"500": 0.5, "drop": 0.5})
    with httpx.Client(base_url=sim_faults.base_url, timeout=10) as c:
        for path in ("/_sim/health", "/_sim/stats", "/_sim/config", "/_sim/clock", "/_sim/faults"):
            assert c.get(path).status_code == 200


def test_auth_errors_are_not_faulted(sim_faults, faults, check_error):
    faults({"503": 1.0})
    with httpx.Client(base_url=sim_faults.base_url, timeout=10) as c:
        check_error(c.get(ACT, headers={"x-api-key": "sk-ant-api01-nope"}), 401, "authentication_error")


def test_slow_answers_normally_after_the_stall(sim_faults, make_client, faults):
    faults({"slow": 1.0})
    before = injected(sim_faults, "slow")
    # the stall (1 s in this fixture) always outlasts a 0.2 s read timeout
    with make_client(sim_faults, timeout=httpx.Timeout(10.0, read=0.2)) as c:
        with pytest.raises(httpx.ReadTimeout):
            c.get(ACT, params={"limit": 3})
    with make_client(sim_faults, timeout=30) as c:
        r = c.get(ACT, params={"limit": 3})
        assert r.status_code == 200 and len(r.json()["data"]) == 3
    assert injected(sim_faults, "slow") == before + 2


def test_drop_closes_the_connection_mid_body(sim_faults, fc, faults):
    faults({"drop": 1.0})
    before = injected(sim_faults, "drop")
    with pytest.raises(httpx.RemoteProtocolError):
        fc.get(ACT, params={"limit": 50})
    assert injected(sim_faults, "drop") == before + 1
    faults({})
    assert fc.get(ACT, params={"limit": 50}).status_code == 200  # the server is fine afterwards


def test_truncated_is_a_complete_response_with_cut_json(sim_faults, fc, faults):
    faults({"truncated": 1.0})
    r = fc.get(ACT, params={"limit": 50})
    assert r.status_code == 200
    assert int(r.headers["content-length"]) == len(r.content)
    assert r.content.startswith(b'{"data":[')
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(r.content)
    faults({})
    full = fc.get(ACT, params={"limit": 50}).content
    assert full.startswith(r.content) and len(full) > len(r.content)


def test_repeated_redelivers_the_record_at_the_cursor(fc, faults):
    first = fc.get(ACT, params={"limit": 10}).json()
    clean_next = fc.get(ACT, params={"limit": 10, "after_id": first["last_id"]}).json()
    faults({"repeated": 1.0})
    rep = fc.get(ACT, params={"limit": 10, "after_id": first["last_id"]}).json()
    assert rep["data"][0] == first["data"][-1]  # the last record of the previous page, again
    assert len(rep["data"]) == 10
    assert [a["id"] for a in rep["data"][1:]] == [a["id"] for a in clean_next["data"][:9]]
    assert rep["has_more"] is True
    # no cursor, nothing to repeat
    assert fc.get(ACT, params={"limit": 10}).json() == first


def test_repeated_walk_is_at_least_once(fc, walker, faults):
    expected = [a["id"] for a in fc.get(ACT, params={"limit": 5000}).json()["data"]]
    faults({"repeated": 1.0})
    items, pages = walker(fc, ACT, {"limit": 400})
    got = [a["id"] for a in items]
    assert len(got) > len(expected)              # duplicates were delivered ...
    assert list(dict.fromkeys(got)) == expected  # ... and deduplicating on id restores the exact ordered set


def test_repeated_on_before_id_and_chats(fc, faults):
    mid = fc.get(ACT, params={"limit": 30}).json()
    older = fc.get(ACT, params={"limit": 10, "after_id": mid["last_id"]}).json()
    faults({"repeated": 1.0})
    back = fc.get(ACT, params={"limit": 10, "before_id": older["first_id"]}).json()
    assert back["data"][-1] == older["data"][0]  # the cursor record, at the end in result order
    c1 = fc.get(CHATS, params={"limit": 5}).json()
    c2 = fc.get(CHATS, params={"limit": 5, "after_id": c1["last_id"]}).json()
    assert c2["data"][0] == c1["data"][-1]


def test_faulted_responses_do_not_advance_anything(fc, faults):
    first = fc.get(ACT, params={"limit": 10}).json()
    faults({"503": 1.0})
    assert fc.get(ACT, params={"limit": 10, "after_id": first["last_id"]}).status_code == 503
    faults({})
    again = fc.get(ACT, params={"limit": 10}).json()
    assert again == first


def test_faults_are_seeded_and_deterministic(fc, faults):
    def sequence():
        return [fc.get(ACT, params={"limit": 1}).status_code for _ in range(40)]

    faults({"500": 0.3, "503": 0.3}, reseed=True)
    a = sequence()
    faults({"500": 0.3, "503": 0.3}, reseed=True)
    b = sequence()
    assert a == b
    assert {200, 500, 503} == set(a)


def test_fault_spec_strings(sim_faults, faults):
    snap = faults("429=5%,5xx=4%,truncated=1%,slow=0.01,repeated=2%,drop=1%,malformed=3%")
    rates = snap["rates"]
    assert rates["429"] == pytest.approx(0.05)
    for code in ("500", "502", "503", "529"):
        assert rates[code] == pytest.approx(0.01)
    assert "504" not in rates and "malformed" not in rates  # malformed is a data-generation rate
    assert rates["slow"] == pytest.approx(0.01) and rates["repeated"] == pytest.approx(0.02)
    with httpx.Client(base_url=sim_faults.base_url, timeout=10) as c:
        assert c.post("/_sim/faults", json={"spec": "teapot=5%"}).status_code == 400
        assert c.post("/_sim/faults", json={"429": 0.8, "500": 0.8}).status_code == 400  # sum > 1


def test_mixed_faults_over_many_requests(sim_faults, fc, faults):
    """A realistic mix: every request either succeeds with a valid page or fails visibly."""
    faults({"429": 0.1, "5xx": 0.1, "truncated": 0.1, "repeated": 0.1}, reseed=True)
    outcomes = set()
    cursor = None
    for _ in range(60):
        params = {"limit": 20} | ({"after_id": cursor} if cursor else {})
        r = fc.get(ACT, params=params)
        if r.status_code != 200:
            outcomes.add(r.status_code)
            assert r.json()["type"] == "error"
            continue
        try:
            body = orjson.loads(r.content)
        except orjson.JSONDecodeError:
            outcomes.add("truncated")
            continue
        outcomes.add(200)
        cursor = body["last_id"]
    assert {200, 429, "truncated"} <= outcomes and outcomes & {500, 502, 503, 529}
