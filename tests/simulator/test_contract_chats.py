"""Contract §4 / §12.3: chats list (org-wide vs per-user rules), chat messages, DELETE (hard delete → 404)."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime

import pytest

CHATS = "/v1/compliance/apps/chats"
USERDATA = "sk-ant-api01-sim-userdata"
CHAT_KEYS = {"id", "name", "created_at", "updated_at", "deleted_at", "href", "model", "organization_uuid",
             "organization_id", "project_id", "user"}


def ts(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


def ids(items):
    return [x["id"] for x in items]


def msgs_url(chat_id: str) -> str:
    return f"{CHATS}/{chat_id}/messages"


@pytest.fixture(scope="module")
def all_chats(api) -> list[dict]:
    body = api.get(CHATS, params={"limit": 1000}).json()
    assert body["has_more"] is False and len(body["data"]) > 100
    return body["data"]


@pytest.fixture(scope="module")
def top_user(all_chats) -> str:
    counts = Counter((c["user"] or {}).get("id") for c in all_chats if c["user"])
    return counts.most_common(1)[0][0]


@pytest.fixture(scope="module")
def messages_by_chat(api, all_chats) -> dict[str, dict]:
    out = {}
    for c in all_chats:
        r = api.get(msgs_url(c["id"]))
        assert r.status_code == 200
        out[c["id"]] = r.json()
    return out


# ------------------------------------------------------------------------------------------------ list: org-wide

def test_default_list_shape_order_and_limit(api, all_chats):
    body = api.get(CHATS).json()
    assert set(body) == {"data", "has_more", "first_id", "last_id"}
    assert len(body["data"]) == 100 and body["has_more"] is True
    assert ids(body["data"]) == ids(all_chats)[:100]
    for c in all_chats:
        assert set(c) == CHAT_KEYS
    keys = [(ts(c["created_at"]), c["id"]) for c in all_chats]
    assert keys == sorted(keys)


@pytest.mark.parametrize("order_by", ["created_at", "updated_at"])
def test_after_id_walk_reproduces_the_ordered_list(api, walker, all_chats, order_by):
    items, pages = walker(api, CHATS, {"limit": 9, "order_by": order_by})
    field = order_by
    expected = sorted(all_chats, key=lambda c: (ts(c[field]), c["id"]))
    assert ids(items) == ids(expected)
    assert len(pages) > 1 and pages[-1]["has_more"] is False


def test_cursors_are_opaque(api):
    body = api.get(CHATS, params={"limit": 2}).json()
    assert body["first_id"] != body["data"][0]["id"] and not body["first_id"].startswith("claude_chat_")


def test_empty_page(api):
    body = api.get(CHATS, params={"created_at.lt": "2020-01-01T00:00:00Z"}).json()
    assert body == {"data": [], "has_more": False, "first_id": None, "last_id": None}


def test_org_wide_time_filters_must_match_sort_key(api, check_error, all_chats):
    mid = all_chats[len(all_chats) // 2]
    ok = api.get(CHATS, params={"created_at.gte": mid["created_at"], "limit": 1000}).json()["data"]
    assert ids(ok) == [c["id"] for c in all_chats if ts(c["created_at"]) >= ts(mid["created_at"])]
    ok2 = api.get(CHATS, params={"order_by": "updated_at", "updated_at.gte": mid["updated_at"],
                                 "limit": 1000}).json()["data"]
    assert {c["id"] for c in ok2} == {c["id"] for c in all_chats if ts(c["updated_at"]) >= ts(mid["updated_at"])}
    check_error(api.get(CHATS, params={"updated_at.gte": mid["updated_at"]}), 400, "invalid_request_error")
    check_error(api.get(CHATS, params={"order_by": "updated_at", "created_at.gte": mid["created_at"]}), 400,
                "invalid_request_error")


def test_org_wide_rejects_before_id_and_project_ids(api, check_error, all_chats):
    body = api.get(CHATS, params={"limit": 5}).json()
    check_error(api.get(CHATS, params={"before_id": body["last_id"]}), 400, "invalid_request_error")
    proj = next(c["project_id"] for c in all_chats if c["project_id"])
    check_error(api.get(CHATS, params=[("project_ids[]", proj)]), 400, "invalid_request_error")


def test_cursor_is_bound_to_its_sort_key(api, check_error):
    c = api.get(CHATS, params={"limit": 3}).json()["last_id"]
    u = api.get(CHATS, params={"limit": 3, "order_by": "updated_at"}).json()["last_id"]
    check_error(api.get(CHATS, params={"after_id": c, "order_by": "updated_at"}), 400, "invalid_request_error")
    check_error(api.get(CHATS, params={"after_id": u}), 400, "invalid_request_error")
    assert api.get(CHATS, params={"after_id": u, "order_by": "updated_at"}).status_code == 200


def test_bad_cursor_and_parameters(api, check_error):
    check_error(api.get(CHATS, params={"after_id": "claude_chat_01nope"}), 400, "invalid_request_error")
    check_error(api.get(CHATS, params={"order_by": "name"}), 400, "invalid_request_error")
    check_error(api.get(CHATS, params={"created_at.gte": "2026-03-02"}), 400, "invalid_request_error",
                "The `created_at.gte` parameter contains an invalid timestamp format. Timestamps must be provided in "
                "RFC 3339 format e.g., \"2024-03-01T00:00:00Z\". Got \"2026-03-02\".")


@pytest.mark.parametrize("value", ["0", "1001"])
def test_limit_bounds(api, check_error, value):
    check_error(api.get(CHATS, params={"limit": value}), 400, "invalid_request_error",
                f"The limit parameter must be between 1 and 1000, inclusive. Got {value}.")


def test_organization_ids_by_uuid_or_org_id(api, all_chats):
    c0 = all_chats[0]
    a = api.get(CHATS, params=[("organization_ids[]", c0["organization_uuid"]), ("limit", 1000)]).json()["data"]
    b = api.get(CHATS, params=[("organization_ids[]", c0["organization_id"]), ("limit", 1000)]).json()["data"]
    assert a and ids(a) == ids(b)
    assert ids(a) == [c["id"] for c in all_chats if c["organization_uuid"] == c0["organization_uuid"]]


def test_soft_deleted_chats_stay_visible(api, all_chats):
    soft = [c for c in all_chats if c["deleted_at"] is not None]
    assert soft, "fixture data should contain soft-deleted chats"
    for c in soft:
        r = api.get(msgs_url(c["id"]))
        assert r.status_code == 200 and r.json()["deleted_at"] == c["deleted_at"]


# ------------------------------------------------------------------------------------------------ list: per-user

def test_per_user_list(api, walker, all_chats, top_user):
    expected = [c["id"] for c in all_chats if (c["user"] or {}).get("id") == top_user]
    items, pages = walker(api, CHATS, [("user_ids[]", top_user), ("limit", 5)])
    assert ids(items) == expected and len(pages) > 1


def test_per_user_before_id_walks_back(api, walker, all_chats, top_user):
    expected = [c["id"] for c in all_chats if (c["user"] or {}).get("id") == top_user]
    last = api.get(CHATS, params=[("user_ids[]", top_user), ("limit", 1000)]).json()
    items, pages = walker(api, CHATS, [("user_ids[]", top_user), ("limit", 4)], direction="before_id",
                          start_cursor=last["last_id"])
    got, pos = [], 0
    for p in pages:
        chunk = ids(items[pos:pos + p["n"]])
        pos += p["n"]
        assert chunk == sorted(chunk, key=expected.index)  # ascending within the page
        got = chunk + got
    assert got + [expected[-1]] == expected


def test_per_user_rules(api, check_error, all_chats, top_user):
    check_error(api.get(CHATS, params=[("user_ids[]", top_user), ("order_by", "updated_at")]), 400,
                "invalid_request_error")
    # updated_at.* with user_ids[] is rejected after 2026-09-22 (the simulator's clock is past that date)
    check_error(api.get(CHATS, params=[("user_ids[]", top_user), ("updated_at.gte", "2026-03-02T00:00:00Z")]),
                400, "invalid_request_error")
    eleven = [("user_ids[]", f"user_01fake{i:02d}") for i in range(11)]
    check_error(api.get(CHATS, params=eleven), 400, "invalid_request_error")
    assert api.get(CHATS, params=eleven[:10]).status_code == 200
    body = api.get(CHATS, params=[("user_ids[]", top_user), ("limit", 2)]).json()
    check_error(api.get(CHATS, params=[("user_ids[]", top_user), ("after_id", body["last_id"]),
                                       ("before_id", body["first_id"])]), 400, "invalid_request_error")


def test_per_user_project_filter(api, all_chats):
    c = next(c for c in all_chats if c["project_id"] and c["user"])
    uid = c["user"]["id"]
    got = api.get(CHATS, params=[("user_ids[]", uid), ("project_ids[]", c["project_id"]),
                                 ("limit", 1000)]).json()["data"]
    assert ids(got) == [x["id"] for x in all_chats if (x["user"] or {}).get("id") == uid
                        and x["project_id"] == c["project_id"]]


# ------------------------------------------------------------------------------------------------ messages

def test_messages_whole_chat_by_default(messages_by_chat, all_chats):
    for c in all_chats:
        body = messages_by_chat[c["id"]]
        assert CHAT_KEYS | {"chat_messages", "has_more", "first_id", "last_id"} == set(body)
        assert {k: body[k] for k in CHAT_KEYS} == c
        msgs = body["chat_messages"]
        assert body["has_more"] is False
        keys = [(ts(m["created_at"]), m["id"]) for m in msgs]
        assert keys == sorted(keys)
        for m in msgs:
            assert {"id", "role", "created_at", "content", "files", "generated_files", "artifacts"} <= set(m)
            assert m["role"] in ("user", "assistant")


def test_messages_paging_both_directions(api, walker, messages_by_chat):
    cid, full = max(messages_by_chat.items(), key=lambda kv: len(kv[1]["chat_messages"]))
    expected = ids(full["chat_messages"])
    assert len(expected) >= 6
    items, pages = walker(api, msgs_url(cid), {"limit": 2})
    assert ids(items) == expected and len(pages) == (len(expected) + 1) // 2
    items, _ = walker(api, msgs_url(cid), {"limit": 3, "order": "desc"})
    assert ids(items) == expected[::-1]
    anchor = api.get(msgs_url(cid), params={"limit": 1, "order": "desc"}).json()
    items, pages = walker(api, msgs_url(cid), {"limit": 2}, direction="before_id", start_cursor=anchor["first_id"])
    got, pos = [], 0
    for p in pages:
        got = ids(items[pos:pos + p["n"]]) + got
        pos += p["n"]
    assert got + [expected[-1]] == expected


def test_messages_cursor_of_another_chat_is_rejected(api, check_error, messages_by_chat):
    (a, ma), (b, _) = [(k, v) for k, v in messages_by_chat.items() if v["chat_messages"]][:2]
    check_error(api.get(msgs_url(b), params={"after_id": ma["last_id"]}), 400, "invalid_request_error")


def test_messages_created_at_filter(api, messages_by_chat):
    cid, full = max(messages_by_chat.items(), key=lambda kv: len(kv[1]["chat_messages"]))
    pivot = full["chat_messages"][3]["created_at"]
    got = api.get(msgs_url(cid), params={"created_at.gte": pivot}).json()["chat_messages"]
    assert ids(got) == [m["id"] for m in full["chat_messages"] if ts(m["created_at"]) >= ts(pivot)]


def test_messages_validation(api, check_error, messages_by_chat):
    cid = next(iter(messages_by_chat))
    check_error(api.get(msgs_url(cid), params={"limit": 0}), 400, "invalid_request_error",
                "The limit parameter must be between 1 and 1000, inclusive. Got 0.")
    check_error(api.get(msgs_url(cid), params={"order": "sideways"}), 400, "invalid_request_error")
    check_error(api.get(msgs_url(cid), params={"tool_result_max_chars": -2}), 400, "invalid_request_error")
    check_error(api.get(msgs_url(cid), params={"tool_use_input_max_chars": "x"}), 400, "invalid_request_error")
    check_error(api.get(msgs_url("claude_chat_01doesnotexist")), 404, "not_found_error",
                "Chat claude_chat_01doesnotexist not found.")


def _tool_blocks(body: dict, kind: str) -> list[dict]:
    return [b for m in body["chat_messages"] for b in m["content"] if b["type"] == kind]


def test_tool_truncation_parameters(api, messages_by_chat):
    cid = next(k for k, v in messages_by_chat.items()
               if any(len(b["input"]) > 40 for b in _tool_blocks(v, "tool_use"))
               and any(sum(len(x["text"]) for x in b["content"]) > 40 for b in _tool_blocks(v, "tool_result")))
    small = api.get(msgs_url(cid), params={"tool_use_input_max_chars": 20, "tool_result_max_chars": 30}).json()
    full = api.get(msgs_url(cid), params={"tool_use_input_max_chars": -1, "tool_result_max_chars": -1}).json()
    for s, f in zip(_tool_blocks(small, "tool_use"), _tool_blocks(full, "tool_use")):
        assert len(s["input"]) <= 20
        assert s["truncated"] is (len(f["input"]) > 20)
        assert f["input"].startswith(s["input"])
    for s, f in zip(_tool_blocks(small, "tool_result"), _tool_blocks(full, "tool_result")):
        assert sum(len(x["text"]) for x in s["content"]) <= 30
        assert s["truncated"] is (sum(len(x["text"]) for x in f["content"]) > 30)
    # untruncated inputs are valid JSON strings
    assert any(not f["truncated"] and json.loads(f["input"]) is not None for f in _tool_blocks(full, "tool_use"))
    default = messages_by_chat[cid]
    assert all(len(b["input"]) <= 10000 for b in _tool_blocks(default, "tool_use"))


# ------------------------------------------------------------------------------------------------ delete

def test_delete_needs_the_delete_scope(sim_mutable, make_client, check_error):
    with make_client(sim_mutable, USERDATA) as c:
        chat = c.get(CHATS, params={"limit": 1}).json()["data"][0]
        check_error(c.delete(f"{CHATS}/{chat['id']}"), 403, "permission_error",
                    "Missing required scopes. Got: ['read:compliance_user_data'] "
                    "Needed: ['delete:compliance_user_data']")
        assert c.get(msgs_url(chat["id"])).status_code == 200


def test_delete_then_404_and_gone_from_lists(sim_mutable, make_client, check_error):
    with make_client(sim_mutable) as c:
        before = c.get(CHATS, params={"limit": 1000}).json()["data"]
        victim = before[len(before) // 2]
        r = c.delete(f"{CHATS}/{victim['id']}")
        assert r.status_code == 200
        assert r.json() == {"id": victim["id"], "type": "claude_chat_deleted"}
        assert r.headers["request-id"].startswith("req_")
        check_error(c.get(msgs_url(victim["id"])), 404, "not_found_error", f"Chat {victim['id']} not found.")
        check_error(c.delete(f"{CHATS}/{victim['id']}"), 404, "not_found_error", f"Chat {victim['id']} not found.")
        after = c.get(CHATS, params={"limit": 1000}).json()["data"]
        assert ids(after) == [x for x in ids(before) if x != victim["id"]]
        upd = c.get(CHATS, params={"limit": 1000, "order_by": "updated_at"}).json()["data"]
        assert victim["id"] not in ids(upd)
        if victim["user"]:
            per_user = c.get(CHATS, params=[("user_ids[]", victim["user"]["id"]), ("limit", 1000)]).json()["data"]
            assert victim["id"] not in ids(per_user)
        gt = sim_mutable.ground_truth("2026-03-02T00:00:00Z", "2026-03-03T00:00:00Z")
        assert next(x for x in gt["chats"] if x["id"] == victim["id"])["hard_deleted"] is True


def test_delete_unknown_chat(sim_mutable, make_client, check_error):
    with make_client(sim_mutable) as c:
        check_error(c.delete(f"{CHATS}/claude_chat_01doesnotexist"), 404, "not_found_error",
                    "Chat claude_chat_01doesnotexist not found.")


def test_cursor_survives_deletion_of_its_chat(sim_mutable, make_client):
    with make_client(sim_mutable) as c:
        page = c.get(CHATS, params={"limit": 10}).json()
        rest_before = ids(c.get(CHATS, params={"limit": 1000, "after_id": page["last_id"]}).json()["data"])
        assert c.delete(f"{CHATS}/{page['data'][-1]['id']}").status_code == 200
        rest_after = ids(c.get(CHATS, params={"limit": 1000, "after_id": page["last_id"]}).json()["data"])
        assert rest_after == rest_before
