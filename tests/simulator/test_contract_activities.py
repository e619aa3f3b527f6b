"""Contract §3 / §12.2: GET /v1/compliance/activities — ordering, cursors both ways, limits, filters, validation."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

ACT = "/v1/compliance/activities"
START = "2026-03-02T00:00:00Z"
END = "2026-03-03T00:00:00Z"


def ts(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


def key(a: dict) -> tuple[datetime, str]:
    return ts(a["created_at"]), a["id"]


def iso(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


@pytest.fixture(scope="module")
def truth(sim) -> dict:
    return sim.ground_truth(START, END)


@pytest.fixture(scope="module")
def everything(api) -> list[dict]:
    """The whole day, newest first, in one page."""
    r = api.get(ACT, params={"limit": 5000})
    assert r.status_code == 200
    body = r.json()
    assert body["has_more"] is False  # the fixture day is small enough for one page
    return body["data"]


def ids(items: list[dict]) -> list[str]:
    return [a["id"] for a in items]


# ------------------------------------------------------------------------------------------------ envelope & order

def test_envelope_and_default_limit(api):
    r = api.get(ACT)
    body = r.json()
    assert r.status_code == 200
    assert set(body) == {"data", "has_more", "first_id", "last_id"}
    assert len(body["data"]) == 100  # default limit
    assert body["has_more"] is True
    for a in body["data"]:
        assert {"id", "created_at", "organization_id", "organization_uuid", "actor", "type"} <= set(a)


def test_full_feed_matches_ground_truth(everything, truth):
    assert len(everything) == truth["activity_count"] == len(set(ids(everything)))
    assert set(ids(everything)) == set(truth["activity_ids"])


def test_default_order_is_newest_first_ties_by_id(everything):
    keys = [key(a) for a in everything]
    assert keys == sorted(keys, reverse=True)
    assert len(set(keys)) == len(keys)


def test_order_asc_is_the_exact_reverse(api, everything):
    r = api.get(ACT, params={"limit": 5000, "order": "asc"})
    assert ids(r.json()["data"]) == ids(everything)[::-1]


def test_order_desc_explicit_equals_default(api, everything):
    assert ids(api.get(ACT, params={"limit": 5000, "order": "desc"}).json()["data"]) == ids(everything)


def test_invalid_order(api, check_error):
    check_error(api.get(ACT, params={"order": "newest"}), 400, "invalid_request_error")


# ------------------------------------------------------------------------------------------------ cursors

@pytest.mark.parametrize("order", ["desc", "asc"])
def test_after_id_paging_reproduces_the_ordered_set(api, walker, everything, order):
    expected = ids(everything) if order == "desc" else ids(everything)[::-1]
    items, pages = walker(api, ACT, {"limit": 700, "order": order})
    assert ids(items) == expected
    assert [p["has_more"] for p in pages] == [True] * (len(pages) - 1) + [False]
    assert all(p["n"] == 700 for p in pages[:-1])


def test_first_and_last_id_are_cursors_of_first_and_last_item(api):
    page = api.get(ACT, params={"limit": 5}).json()
    # first_id of a page re-anchors exactly at its first item: before_id=first_id gives the items just before it,
    # after_id=first_id gives the rest of the page.
    rest = api.get(ACT, params={"limit": 4, "after_id": page["first_id"]}).json()
    assert ids(rest["data"]) == ids(page["data"])[1:]
    nxt = api.get(ACT, params={"limit": 5, "after_id": page["last_id"]}).json()
    assert ids(nxt["data"])[0] != page["data"][-1]["id"]


def test_cursors_are_opaque_not_ids(api):
    body = api.get(ACT, params={"limit": 3}).json()
    for cur, item in ((body["first_id"], body["data"][0]), (body["last_id"], body["data"][-1])):
        assert cur != item["id"]
        assert not cur.startswith("activity_")


@pytest.mark.parametrize("order", ["desc", "asc"])
def test_before_id_walk_from_the_far_end_reproduces_the_set(api, walker, everything, order):
    """Catch-up pattern: anchor at the first item in the opposite direction, loop before_id=<first_id>."""
    expected = ids(everything) if order == "desc" else ids(everything)[::-1]
    # the item that comes last in `order`, and its cursor
    anchor = api.get(ACT, params={"limit": 1, "order": "asc" if order == "desc" else "desc"}).json()
    assert anchor["data"][0]["id"] == expected[-1]
    items, pages = walker(api, ACT, {"limit": 600, "order": order}, direction="before_id",
                          start_cursor=anchor["first_id"])
    # pages arrive from the anchor outwards; within each page the order is still `order`
    got: list[str] = []
    pos = 0
    for p in pages:
        chunk = ids(items[pos:pos + p["n"]])
        pos += p["n"]
        got = chunk + got
    assert got + [expected[-1]] == expected
    first_page = ids(items[:pages[0]["n"]])
    assert first_page == expected[-1 - 600:-1]  # immediately adjacent to the cursor
    assert pages[-1]["has_more"] is False and all(p["has_more"] for p in pages[:-1])


def test_before_id_page_is_newest_first_and_adjacent(api, everything):
    mid = api.get(ACT, params={"limit": 1000}).json()  # newest 1000
    r = api.get(ACT, params={"limit": 10, "after_id": mid["last_id"]}).json()  # the next (older) 10
    back = api.get(ACT, params={"limit": 10, "before_id": r["first_id"]}).json()
    assert ids(back["data"]) == ids(everything)[990:1000]
    assert back["has_more"] is True


def test_has_more_is_per_direction(api, everything):
    n = len(everything)
    assert api.get(ACT, params={"limit": n}).json()["has_more"] is False
    assert api.get(ACT, params={"limit": n - 1}).json()["has_more"] is True
    newest = api.get(ACT, params={"limit": 1}).json()
    # nothing newer than the newest item
    none_newer = api.get(ACT, params={"before_id": newest["first_id"]}).json()
    assert none_newer == {"data": [], "has_more": False, "first_id": None, "last_id": None}


def test_empty_page_has_null_ids(api):
    body = api.get(ACT, params={"created_at.lt": "2026-01-01T00:00:00Z"}).json()
    assert body == {"data": [], "has_more": False, "first_id": None, "last_id": None}


def test_bad_cursors(api, check_error, everything):
    a_id = everything[0]["id"]
    check_error(api.get(ACT, params={"after_id": a_id}), 400, "invalid_request_error",
                f"Invalid `after_id`. No activity found for `after_id` \"{a_id}\"")
    check_error(api.get(ACT, params={"after_id": "activity_invalid123"}), 400, "invalid_request_error",
                "Invalid `after_id`. No activity found for `after_id` \"activity_invalid123\"")
    check_error(api.get(ACT, params={"before_id": "garbage!!"}), 400, "invalid_request_error",
                "Invalid `before_id`. No activity found for `before_id` \"garbage!!\"")


def test_cursor_of_a_nonexistent_record_is_rejected(api, check_error):
    import base64
    import json

    forged = base64.urlsafe_b64encode(json.dumps(
        {"k": "activity", "t": 1772452800000000, "id": "activity_01forgedforgedforgedforged"}).encode()).decode()
    check_error(api.get(ACT, params={"after_id": forged}), 400, "invalid_request_error")


def test_only_one_cursor(api, check_error):
    body = api.get(ACT, params={"limit": 2}).json()
    check_error(api.get(ACT, params={"after_id": body["last_id"], "before_id": body["first_id"]}), 400,
                "invalid_request_error")


# ------------------------------------------------------------------------------------------------ limit

@pytest.mark.parametrize("value", ["0", "5001", "-1", "abc", "1.5"])
def test_limit_out_of_range(api, check_error, value):
    check_error(api.get(ACT, params={"limit": value}), 400, "invalid_request_error",
                f"The limit parameter must be between 1 and 5000, inclusive. Got {value}.")


def test_limit_bounds_accepted(api):
    assert len(api.get(ACT, params={"limit": 1}).json()["data"]) == 1
    assert api.get(ACT, params={"limit": 5000}).status_code == 200


# ------------------------------------------------------------------------------------------------ time filters

@pytest.mark.parametrize("param", ["created_at.gte", "created_at.gt", "created_at.lte", "created_at.lt"])
@pytest.mark.parametrize("value", ["2024-01-01", "2026-03-02T10:00:00", "2026-03-02T10:00Z", "yesterday",
                                   "2026-13-02T10:00:00Z", "1772445600"])
def test_bad_timestamp_message(api, check_error, param, value):
    check_error(api.get(ACT, params={param: value}), 400, "invalid_request_error",
                f"The `{param}` parameter contains an invalid timestamp format. Timestamps must be provided in "
                f"RFC 3339 format e.g., \"2024-03-01T00:00:00Z\". Got \"{value}\".")


def test_time_bounds_inclusive_and_exclusive(api, everything):
    a = everything[len(everything) // 2]
    t = a["created_at"]

    def got(**params):
        return set(ids(api.get(ACT, params={"limit": 5000, **params}).json()["data"]))

    assert a["id"] in got(**{"created_at.gte": t})
    assert a["id"] not in got(**{"created_at.gt": t})
    assert a["id"] in got(**{"created_at.lte": t})
    assert a["id"] not in got(**{"created_at.lt": t})
    window = got(**{"created_at.gte": t, "created_at.lte": t})
    assert a["id"] in window and all(x["created_at"] == t for x in everything if x["id"] in window)


def test_window_tiling_has_no_gaps_or_overlap(api, everything):
    edges = ["2026-03-02T00:00:00Z", "2026-03-02T06:00:00Z", "2026-03-02T09:30:00+00:00",
             "2026-03-02T15:00:00+02:00", "2026-03-02T20:00:00.5Z", "2026-03-03T00:00:00Z"]
    seen: list[str] = []
    for lo, hi in zip(edges, edges[1:]):
        page = api.get(ACT, params={"created_at.gte": lo, "created_at.lt": hi, "limit": 5000}).json()
        for a in page["data"]:
            assert ts(lo) <= ts(a["created_at"]) < ts(hi)
        seen += ids(page["data"])
    assert sorted(seen) == sorted(ids(everything))


def test_offset_timestamps_are_equivalent(api):
    z = api.get(ACT, params={"created_at.lt": "2026-03-02T12:00:00Z", "limit": 50}).json()
    off = api.get(ACT, params={"created_at.lt": "2026-03-02T14:00:00+02:00", "limit": 50}).json()
    assert ids(z["data"]) == ids(off["data"]) and z["data"]


def test_cursor_paging_inside_a_window(api, walker, everything):
    lo, hi = "2026-03-02T08:00:00Z", "2026-03-02T16:00:00Z"
    expected = [a["id"] for a in everything if ts(lo) <= ts(a["created_at"]) < ts(hi)]
    items, _ = walker(api, ACT, {"created_at.gte": lo, "created_at.lt": hi, "limit": 250, "order": "asc"})
    assert ids(items) == expected[::-1]


# ------------------------------------------------------------------------------------------------ filters

def test_activity_types_include(api, truth, everything):
    counts = truth["type_counts"]
    top = sorted(counts, key=lambda t: -counts[t])[:2]
    data = api.get(ACT, params=[("activity_types[]", top[0]), ("activity_types[]", top[1]),
                                ("limit", 5000)]).json()["data"]
    assert {a["type"] for a in data} == set(top)
    assert len(data) == counts[top[0]] + counts[top[1]]


def test_activity_types_exclude(api, truth, everything):
    counts = truth["type_counts"]
    top = max(counts, key=lambda t: counts[t])
    data = api.get(ACT, params=[("exclude_activity_types[]", top), ("limit", 5000)]).json()["data"]
    assert top not in {a["type"] for a in data}
    assert len(data) == len(everything) - counts[top]


def test_include_and_exclude_are_mutually_exclusive(api, check_error):
    check_error(api.get(ACT, params=[("activity_types[]", "claude_chat_created"),
                                     ("exclude_activity_types[]", "claude_chat_viewed")]),
                400, "invalid_request_error")


def test_unknown_activity_type_is_400(api, check_error):
    check_error(api.get(ACT, params=[("activity_types[]", "definitely_not_a_type")]), 400, "invalid_request_error")
    check_error(api.get(ACT, params=[("exclude_activity_types[]", "definitely_not_a_type")]), 400,
                "invalid_request_error")


def test_retired_type_is_accepted(api):
    r = api.get(ACT, params=[("activity_types[]", "environment_created")])
    assert r.status_code == 200


def test_actor_ids_and_user_ids_are_merged(api, everything):
    users: dict[str, int] = {}
    for a in everything:
        uid = (a.get("actor") or {}).get("user_id")
        if uid:
            users[uid] = users.get(uid, 0) + 1
    u1, u2 = sorted(users, key=lambda u: -users[u])[:2]
    only1 = api.get(ACT, params=[("actor_ids[]", u1), ("limit", 5000)]).json()["data"]
    assert {a["actor"]["user_id"] for a in only1} == {u1} and len(only1) == users[u1]
    only2 = api.get(ACT, params=[("user_ids[]", u2), ("limit", 5000)]).json()["data"]
    assert {a["actor"]["user_id"] for a in only2} == {u2} and len(only2) == users[u2]
    both = api.get(ACT, params=[("actor_ids[]", u1), ("user_ids[]", u2), ("limit", 5000)]).json()["data"]
    assert set(ids(both)) == set(ids(only1)) | set(ids(only2))


def test_organization_ids_accept_org_id_or_uuid(api, everything):
    org = next(a for a in everything if a.get("organization_id"))
    by_id = api.get(ACT, params=[("organization_ids[]", org["organization_id"]), ("limit", 5000)]).json()["data"]
    by_uuid = api.get(ACT, params=[("organization_ids[]", org["organization_uuid"]), ("limit", 5000)]).json()["data"]
    assert by_id and ids(by_id) == ids(by_uuid)
    assert all(a["organization_uuid"] == org["organization_uuid"] for a in by_id)
    expected = [a["id"] for a in everything if a.get("organization_uuid") == org["organization_uuid"]]
    assert ids(by_id) == expected


def test_filters_combine_with_cursor_paging(api, walker, everything):
    org = next(a for a in everything if a.get("organization_id"))["organization_uuid"]
    expected = [a["id"] for a in everything if a.get("organization_uuid") == org]
    items, pages = walker(api, ACT, [("organization_ids[]", org), ("limit", 97)])
    assert ids(items) == expected and len(pages) > 1


def test_time_range_limits_are_clamped_to_data(api, everything):
    r = api.get(ACT, params={"created_at.gte": "2020-01-01T00:00:00Z", "created_at.lt": "2030-01-01T00:00:00Z",
                             "limit": 5000})
    assert ids(r.json()["data"]) == ids(everything)
    later = iso(ts(everything[0]["created_at"]) + timedelta(microseconds=1))
    assert api.get(ACT, params={"created_at.gte": later}).json()["data"] == []
