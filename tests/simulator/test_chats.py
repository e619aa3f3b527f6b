"""Chats + messages generator (simulator/chats.py): determinism, contract shapes, timelines, deletes, ground truth.

Pure in-process tests (no HTTP): the endpoint behaviour is covered by the server's contract tests.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pytest

from simulator.chats import (DAY_US, HOUR_US, MODELS, US, ChatStore, apply_truncation, file_bytes, iso, to_us)

START = datetime(2025, 6, 2, tzinfo=timezone.utc)  # a Monday
DAYS = 6
END = START + timedelta(days=DAYS)
START_US, END_US = to_us(START), to_us(END)
AFTER_END = END_US + 10 * DAY_US

CHAT_KEYS = ["id", "name", "created_at", "updated_at", "deleted_at", "href", "model", "organization_uuid",
             "organization_id", "project_id", "user"]
MSG_KEYS = {"id", "role", "created_at", "content", "files", "generated_files", "artifacts"}
HREF_RE = re.compile(r"^https://claude\.ai/chat/[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
ISO_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")
B58 = r"[1-9A-HJ-NP-Za-km-z]"


def idre(prefix: str) -> re.Pattern:
    return re.compile(rf"^{prefix}01{B58}{{24}}$")


# ---------------------------------------------------------------------------------------------------- stand-ins
# Minimal stand-ins for simulator.config.SimConfig / simulator.world.World (only the attributes chats.py reads).

@dataclass
class Cfg:
    seed: int = 11
    start: datetime = START
    end: datetime | None = END
    chats_per_day: int = 40


@dataclass
class Org:
    uuid: str
    id: str
    name: str
    kind: str = "claude_ai"


@dataclass
class User:
    id: str
    full_name: str
    email: str
    organization_role: str
    created_at: datetime
    joined_at: datetime
    home_country: str


@dataclass
class World:
    orgs: list
    users_by_org: dict
    parent_org: Org | None = None


def make_world(countries=("US", "DE", "IN", "GB"), n_users=12) -> World:
    parent = Org("99999999-0000-4000-8000-000000000000", "org_01Parent", "Parent", "parent")
    orgs = [Org(f"0000000{i}-1111-4222-8333-444444444444", f"org_01Linked{i}", f"Linked {i}") for i in range(2)]
    console = Org("0000000c-1111-4222-8333-444444444444", "org_01Console", "Console", "console")
    users = {}
    for o in orgs + [console]:
        users[o.uuid] = [User(f"user_01{o.id[-7:]}{k:03d}", f"Person {k}", f"person{k}@{o.id.lower()}.example.com",
                              "user" if k else "primary_owner", START - timedelta(days=300 - k),
                              START - timedelta(days=200 - k), countries[k % len(countries)]) for k in range(n_users)]
    # One user joins mid-window: must own no chat before joining.
    late = orgs[0]
    users[late.uuid].append(User("user_01LateJoiner000", "Late Joiner", "late@example.com", "user",
                                 START + timedelta(days=3), START + timedelta(days=3, hours=12), "US"))
    return World([parent] + orgs + [console], users, parent)


WORLD = make_world()


@pytest.fixture(scope="module")
def store() -> ChatStore:
    s = ChatStore(Cfg(), WORLD)
    s.chats_view(AFTER_END)
    return s


@pytest.fixture(scope="module")
def big() -> ChatStore:
    """More chats (metadata only is cheap) so rare behaviours (1% retention deletes, 3% soft deletes) surely occur."""
    s = ChatStore(BIG, WORLD)
    s.chats_view(AFTER_END)
    return s


BIG = Cfg(chats_per_day=250)


def all_messages(s: ChatStore, now: int) -> dict[str, list[dict]]:
    objs, _, _ = s.chats_view(now)
    return {o["id"]: s.chat_messages_view(o["id"], now)[1] for o in objs}


def find(s: ChatStore, pred):
    for c in s._chats:  # internal records: only to locate chats with a given planned behaviour
        if pred(c):
            return c
    raise AssertionError("no chat with the wanted behaviour in the test window")


# ------------------------------------------------------------------------------------------------- determinism

def test_same_seed_same_data_different_seed_different_data(store):
    other = ChatStore(Cfg(), WORLD)
    a, b = store.chats_view(AFTER_END), other.chats_view(AFTER_END)
    assert json.dumps(a) == json.dumps(b)
    for o in a[0][::7]:
        assert json.dumps(store.chat_messages_view(o["id"], AFTER_END)) == \
            json.dumps(other.chat_messages_view(o["id"], AFTER_END))
    assert json.dumps(store.ground_truth(AFTER_END)) == json.dumps(other.ground_truth(AFTER_END))
    reseeded = ChatStore(Cfg(seed=12), WORLD).chats_view(AFTER_END)[0]
    assert not {o["id"] for o in reseeded} & {o["id"] for o in a[0]}


def test_independent_of_access_order_and_live_mode():
    cfg_live = Cfg(end=None)
    day2 = START_US + 2 * DAY_US
    early = ChatStore(cfg_live, WORLD)
    early_view = early.chats_view(day2 + HOUR_US)          # generates days 0..2 only
    late = ChatStore(cfg_live, WORLD)
    # read messages of a late chat first, then look back
    late_view = late.chats_view(START_US + 5 * DAY_US)
    late.chat_messages_view(late_view[0][-1]["id"], START_US + 5 * DAY_US)
    ids_early = [o["id"] for o in early_view[0] if o["created_at"] < iso(day2)]
    ids_late = [o["id"] for o in late.chats_view(day2 + HOUR_US)[0] if o["created_at"] < iso(day2)]
    assert ids_early and ids_early == ids_late
    cid = ids_early[3]
    assert late.chat_messages_view(cid, AFTER_END) == early.chat_messages_view(cid, AFTER_END)
    # live mode: chats keep being created after the historical end, lazily per day
    assert late.chats_view(START_US + 20 * DAY_US)[1][-1] > START_US + 19 * DAY_US


# ---------------------------------------------------------------------------------------------- contract shapes

def test_chat_objects_follow_the_contract(store):
    objs, cks, uks = store.chats_view(AFTER_END)
    assert len(objs) == len(cks) == len(uks) > 100
    users = {u.id: (o.uuid, u.email) for o in WORLD.orgs for u in WORLD.users_by_org.get(o.uuid, [])}
    linked = {o.uuid: o.id for o in WORLD.orgs[1:3]}
    models = {m for m, _ in MODELS}
    seen_models, hrefs = set(), set()
    for o, ck, uk in zip(objs, cks, uks):
        assert list(o) == CHAT_KEYS
        assert idre("claude_chat_").match(o["id"])
        assert isinstance(o["name"], str) and o["name"]
        assert ISO_RE.match(o["created_at"]) and ISO_RE.match(o["updated_at"])
        assert to_us(o["created_at"]) == ck and to_us(o["updated_at"]) == uk and ck <= uk
        assert START_US <= ck < END_US
        assert o["deleted_at"] is None or (ISO_RE.match(o["deleted_at"]) and o["deleted_at"] <= o["updated_at"])
        assert HREF_RE.match(o["href"])
        hrefs.add(o["href"])
        assert o["model"] in models
        seen_models.add(o["model"])
        assert linked.get(o["organization_uuid"]) == o["organization_id"]  # linked claude.ai orgs only
        assert o["project_id"] is None or idre("claude_proj_").match(o["project_id"])
        assert o["project_id"] is None or o["project_id"] in store.project_ids(o["organization_uuid"])
        if o["user"] is not None:
            assert set(o["user"]) == {"id", "email_address"}
            assert users[o["user"]["id"]] == (o["organization_uuid"], o["user"]["email_address"])
            if o["user"]["id"] == "user_01LateJoiner000":
                assert o["created_at"] >= "2025-06-05T12:00:00"
    assert len(hrefs) == len(objs)
    assert {"claude-opus-4-7", "claude-sonnet-4-5", "claude-haiku-4-5"} <= seen_models
    assert any(o["project_id"] for o in objs) and any(o["project_id"] is None for o in objs)


def _check_block(b: dict, role: str, open_tools: dict) -> None:
    t = b["type"]
    if t == "text":
        assert set(b) == {"type", "text", "thinking_redacted", "truncated"}
        assert isinstance(b["text"], str) and b["text"]
        assert b["truncated"] is False
        assert isinstance(b["thinking_redacted"], bool)
        if role == "user":
            assert b["thinking_redacted"] is False
    elif t == "tool_use":
        assert role == "assistant"
        assert set(b) == {"type", "id", "name", "input", "integration_name", "mcp_server_url", "truncated"}
        assert b["id"] is None or re.match(rf"^toolu_01{B58}{{22}}$", b["id"])
        assert isinstance(b["input"], str)
        assert b["truncated"] is False  # stored whole; the endpoint caps cut it
        assert isinstance(json.loads(b["input"]), dict)
        assert (b["mcp_server_url"] is None) or (b["integration_name"] and b["mcp_server_url"].startswith("https://"))
        open_tools[b["id"]] = b["name"]
    elif t == "tool_result":
        assert set(b) == {"type", "tool_use_id", "name", "content", "is_error", "integration_name", "mcp_server_url",
                          "truncated"}
        assert open_tools.get(b["tool_use_id"]) == b["name"]
        assert isinstance(b["is_error"], bool) and b["truncated"] is False
        for item in b["content"]:
            assert set(item) == {"type", "text"} and item["type"] == "text" and isinstance(item["text"], str)
    else:
        raise AssertionError(f"unknown block type {t}")


def test_messages_follow_the_contract(store):
    msgs_by_chat = all_messages(store, AFTER_END)
    counts = [len(m) for m in msgs_by_chat.values()]
    assert min(counts) >= 1 and max(counts) <= 60 and sum(c >= 2 for c in counts) > 0.95 * len(counts)
    kinds, artifact_versions, file_ids = set(), {}, set()
    n_files = n_gen = 0
    for cid, msgs in msgs_by_chat.items():
        open_tools: dict = {}
        for i, m in enumerate(msgs):
            assert set(m) == MSG_KEYS
            assert idre("claude_chat_msg_").match(m["id"])
            assert m["role"] == ("user" if i % 2 == 0 else "assistant")
            assert ISO_RE.match(m["created_at"])
            assert m["content"]
            for b in m["content"]:
                _check_block(b, m["role"], open_tools)
                kinds.add(b["type"])
            if m["role"] == "user":
                assert m["generated_files"] is None and m["artifacts"] is None
                for f in m["files"] or []:
                    n_files += 1
                    assert set(f) == {"id", "filename", "mime_type", "size_bytes", "md5", "created_at"}
                    assert idre("claude_file_").match(f["id"]) and f["id"] not in file_ids
                    file_ids.add(f["id"])
                    assert f["created_at"] <= m["created_at"] and ISO_RE.match(f["created_at"])
                    assert f["md5"] is None or re.match(r"^[0-9a-f]{32}$", f["md5"])
                    if f["md5"] and f["size_bytes"] and f["mime_type"]:
                        assert hashlib.md5(file_bytes(f["id"], f["size_bytes"], f["mime_type"])).hexdigest() == f["md5"]
            else:
                assert m["files"] is None
                for g in m["generated_files"] or []:
                    n_gen += 1
                    assert set(g) == {"id", "filename", "mime_type", "size_bytes", "md5"}
                    assert idre("claude_gen_file_").match(g["id"]) and re.match(r"^[0-9a-f]{32}$", g["md5"])
                for a in m["artifacts"] or []:
                    assert set(a) == {"id", "version_id", "title", "artifact_type"}
                    assert idre("claude_artifact_").match(a["id"])
                    assert idre("claude_artifact_version_").match(a["version_id"])
                    artifact_versions.setdefault((cid, a["id"]), []).append(a["version_id"])
    assert kinds == {"text", "tool_use", "tool_result"}
    assert n_files > 10 and n_gen > 0
    all_versions = [v for vs in artifact_versions.values() for v in vs]
    assert len(all_versions) == len(set(all_versions))  # every revision gets a new version_id
    assert any(len(vs) > 1 for vs in artifact_versions.values())  # ...and some artifacts are revised (same id)


def test_text_is_prose_with_some_sensitive_terms(store):
    texts = [b["text"] for msgs in all_messages(store, AFTER_END).values() for m in msgs for b in m["content"]
             if b["type"] == "text"]
    joined = "\n".join(texts).lower()
    for term in ("confidential", "password", "salary"):
        assert term in joined
    sensitive = sum(any(t in x.lower() for t in ("confidential", "password", "salary")) for x in texts)
    assert 0 < sensitive < 0.2 * len(texts)  # present, but not everywhere
    assert all(re.search(r"[A-Za-z]{3,} [a-z]{2,}", x) for x in texts)


def test_truncation_caps(store):
    big_use = big_res = None
    for msgs in all_messages(store, AFTER_END).values():
        for m in msgs:
            for b in m["content"]:
                if b["type"] == "tool_use" and len(b["input"]) > 10_000:
                    big_use = big_use or (m, b)
                if b["type"] == "tool_result" and sum(len(x["text"]) for x in b["content"]) > 10_000:
                    big_res = big_res or (m, b)
    assert big_use and big_res, "some tool payloads exceed the default 10000-char cap"
    (m1, u), (m2, r) = big_use, big_res
    cut = apply_truncation([m1, m2])  # API defaults: 10000
    u2 = next(b for b in cut[0]["content"] if b.get("id") == u["id"] and b["type"] == "tool_use")
    r2 = next(b for b in cut[1]["content"] if b["type"] == "tool_result" and b.get("tool_use_id") == r["tool_use_id"])
    assert u2["truncated"] is True and len(u2["input"]) == 10_000
    with pytest.raises(ValueError):
        json.loads(u2["input"])
    assert r2["truncated"] is True and sum(len(x["text"]) for x in r2["content"]) == 10_000
    assert u["truncated"] is False and len(u["input"]) > 10_000  # the cached originals are untouched
    whole = apply_truncation([m1, m2], -1, -1)
    assert whole[0] is m1 and whole[1] is m2
    tiny = apply_truncation([m1], 5, 5)[0]
    assert all(len(b["input"]) <= 5 for b in tiny["content"] if b["type"] == "tool_use")
    # the same caps through the view
    chat_id = next(cid for cid, msgs in all_messages(store, AFTER_END).items() if m1 in msgs)
    _, via_view = store.chat_messages_view(chat_id, AFTER_END, tool_use_input_max_chars=10_000)
    assert any(b.get("truncated") for mm in via_view for b in mm["content"])


# ------------------------------------------------------------------------------------------------------ ordering

def test_ordering(store):
    for now in (START_US + 2 * DAY_US + 7 * HOUR_US, AFTER_END):
        objs, cks, uks = store.chats_view(now)
        keys = [(c, o["id"]) for c, o in zip(cks, objs)]
        assert keys == sorted(keys) and len(set(keys)) == len(keys)
        by_upd, ucks, uuks = store.chats_view_by_updated(now)
        ukeys = [(u, o["id"]) for u, o in zip(uuks, by_upd)]
        assert ukeys == sorted(ukeys) and {o["id"] for o in by_upd} == {o["id"] for o in objs}
        assert all(to_us(o["updated_at"]) == u for o, u in zip(by_upd, uuks))
        for o in objs[::5]:
            _, msgs = store.chat_messages_view(o["id"], now)
            mkeys = [(to_us(m["created_at"]), m["id"]) for m in msgs]
            assert mkeys == sorted(mkeys) and all(k[0] <= now for k in mkeys)


# ------------------------------------------------------------------------------------------------------ timelines

def test_chats_gain_messages_later_and_updated_at_moves(store):
    resumed = [c for c in store._chats if len(c.msg_times) >= 4 and c.msg_times[-1] - c.created_us > 3 * HOUR_US
               and c.soft_us is None and c.rename_us is None and c.gone_us is None]
    assert len(resumed) > 0.05 * len(store._chats)  # a good share changes hours/days after creation
    c = resumed[0]
    gap_at = next(i for i in range(1, len(c.msg_times)) if c.msg_times[i] - c.msg_times[i - 1] > 20 * 60 * US)
    t1 = c.msg_times[gap_at - 1] + US
    t2 = c.msg_times[-1]
    chat1, msgs1 = store.chat_messages_view(c.id, t1)
    chat2, msgs2 = store.chat_messages_view(c.id, t2)
    assert len(msgs1) == gap_at < len(msgs2) == len(c.msg_times)
    assert [m["id"] for m in msgs2[:gap_at]] == [m["id"] for m in msgs1]
    assert chat1["updated_at"] == msgs1[-1]["created_at"] < chat2["updated_at"] == msgs2[-1]["created_at"]
    # the list view agrees, so an updated_at-incremental export sees the chat again
    def listed(now):
        objs, _, uks = store.chats_view(now)
        i = [o["id"] for o in objs].index(c.id)
        return objs[i]["updated_at"], uks[i]
    assert listed(t1) == (chat1["updated_at"], to_us(chat1["updated_at"]))
    assert listed(t2) == (chat2["updated_at"], to_us(chat2["updated_at"]))
    # before creation: nowhere
    assert store.chat_messages_view(c.id, c.created_us - 1) is None
    assert c.id not in {o["id"] for o in store.chats_view(c.created_us - 1)[0]}
    assert store.chat_messages_view(c.id, c.created_us)[1] == []  # created, first message not sent yet


def test_rename_changes_name_and_updated_at(big):
    store = big
    c = find(store, lambda c: c.rename_us is not None and c.gone_us is None and c.rename_us > c.msg_times[-1])
    before = store.get_chat(c.id, c.rename_us - 1)
    after = store.get_chat(c.id, c.rename_us)
    assert before["name"] == c.name and after["name"] == c.new_name != c.name
    assert after["updated_at"] == iso(c.rename_us) > before["updated_at"]


def test_soft_delete_stays_readable(big):
    c = find(big, lambda c: c.soft_us is not None and c.gone_us is None)
    store = ChatStore(BIG, WORLD)  # fresh: nothing cached as "final" yet, so the boundary is really computed
    before = store.chat_messages_view(c.id, c.soft_us - 1)
    after = store.chat_messages_view(c.id, c.soft_us)
    assert before is not None and before[0]["deleted_at"] is None
    assert after is not None and after[0]["deleted_at"] == iso(c.soft_us) == after[0]["updated_at"]
    assert len(after[1]) == len(c.msg_times)
    listed = {o["id"]: o for o in store.chats_view(c.soft_us)[0]}
    assert listed[c.id]["deleted_at"] == iso(c.soft_us)
    assert 0.01 < sum(x.soft_us is not None for x in big._chats) / len(big._chats) < 0.06
    assert 0.002 < sum(x.planned_gone_us is not None for x in big._chats) / len(big._chats) < 0.03


def test_retention_hard_delete_disappears(big):
    store = big
    c = find(store, lambda c: c.planned_gone_us is not None and c.gone_us == c.planned_gone_us)
    g = c.gone_us
    assert c.id in {o["id"] for o in store.chats_view(g - 1)[0]}
    assert store.chat_messages_view(c.id, g - 1) is not None
    assert c.id not in {o["id"] for o in store.chats_view(g)[0]}
    assert store.chat_messages_view(c.id, g) is None and store.get_chat(c.id, g) is None
    gt = {x["id"]: x for x in store.ground_truth(g)}
    assert gt[c.id]["hard_deleted"] is True and gt[c.id]["hard_deleted_at"] == iso(g)
    assert gt[c.id]["message_ids"] == [m["id"] for m in store.chat_messages_view(c.id, g - 1)[1]]
    assert store.hard_delete(c.id, g) is False


def test_api_hard_delete():
    s = ChatStore(Cfg(), WORLD)
    now = START_US + 4 * DAY_US
    objs, _, _ = s.chats_view(now)
    victim = next(o for o in objs if o["deleted_at"] is None)
    assert s.hard_delete(victim["id"], now) is True
    assert victim["id"] not in {o["id"] for o in s.chats_view(now)[0]}  # cached view invalidated
    assert s.chat_messages_view(victim["id"], now) is None
    assert s.chat_messages_view(victim["id"], AFTER_END) is None
    assert s.hard_delete(victim["id"], now + US) is False
    assert s.hard_delete("claude_chat_01DoesNotExist000000000000", now) is False
    future = next(c for c in s._chats if c.created_us > now + HOUR_US)
    assert s.hard_delete(future.id, now) is False  # not created yet -> 404
    gt = {x["id"]: x for x in s.ground_truth(AFTER_END)}
    assert gt[victim["id"]]["hard_deleted"] is True and gt[victim["id"]]["hard_deleted_at"] == iso(now)
    assert len(gt) == len(s.ground_truth(AFTER_END))
    # deletes are in-memory state of this store only
    assert ChatStore(Cfg(), WORLD).chat_messages_view(victim["id"], now) is not None


# --------------------------------------------------------------------------------------------------- ground truth

def test_ground_truth_matches_views(store):
    for now in (START_US + 3 * DAY_US + 15 * HOUR_US, AFTER_END):
        gt = store.ground_truth(now)
        objs, _, _ = store.chats_view(now)
        live = [x for x in gt if not x["hard_deleted"]]
        assert [x["id"] for x in live] == [o["id"] for o in objs]
        for x, o in zip(live, objs):
            assert (x["created_at"], x["updated_at"], x["deleted_at"], x["organization_uuid"]) == \
                (o["created_at"], o["updated_at"], o["deleted_at"], o["organization_uuid"])
            assert x["user_id"] == (o["user"] or {}).get("id")
        for x, o in list(zip(live, objs))[::4]:
            assert x["message_ids"] == [m["id"] for m in store.chat_messages_view(o["id"], now)[1]]
        assert all(x["hard_deleted_at"] <= iso(now) for x in gt if x["hard_deleted"])
        assert all(set(x) == {"id", "created_at", "updated_at", "deleted_at", "hard_deleted", "hard_deleted_at",
                              "message_ids", "user_id", "organization_uuid"} for x in gt)


def test_ground_truth_updated_window(store):
    now = AFTER_END
    full = store.ground_truth(now)
    gte, lt = START_US + 2 * DAY_US, START_US + 4 * DAY_US
    window = store.ground_truth(now, updated_gte_us=gte, updated_lt_us=lt)
    expect = [x for x in full if gte <= to_us(x["updated_at"]) < lt]
    assert window == expect and 0 < len(window) < len(full)
    assert store.ground_truth(now, updated_gte_us=lt) == [x for x in full if to_us(x["updated_at"]) >= lt]
    created = store.ground_truth(now, created_gte_us=gte, created_lt_us=lt)
    assert created == [x for x in full if gte <= to_us(x["created_at"]) < lt] and 0 < len(created) < len(full)


# ------------------------------------------------------------------------------------------------- volume / shape

def test_volume_weekly_and_diurnal_shape():
    world = make_world(countries=("GB",), n_users=30)  # one time zone (UTC) so the local-hour shape is visible
    s = ChatStore(Cfg(chats_per_day=200, end=START + timedelta(days=7)), world)
    objs, cks, _ = s.chats_view(AFTER_END)
    per_day = [sum(1 for c in cks if START_US + d * DAY_US <= c < START_US + (d + 1) * DAY_US) for d in range(7)]
    assert 0.8 * 1400 < sum(per_day) < 1.2 * 1400
    assert min(per_day[:5]) > max(per_day[5:])  # Mon-Fri busier than the weekend
    hours = [int(o["created_at"][11:13]) for o in objs]
    assert hours.count(10) > 3 * hours.count(3)


def test_no_world_users_falls_back_to_synthetic_owners():
    empty = World([Org("0000000a-1111-4222-8333-444444444444", "org_01Only", "Only")], {})
    for world in (empty, None):
        s = ChatStore(Cfg(), world)
        objs, _, _ = s.chats_view(AFTER_END)
        assert len(objs) > 50
        assert all(o["user"] is None or o["user"]["id"].startswith("user_") for o in objs)
    assert {o["organization_uuid"] for o in ChatStore(Cfg(), empty).chats_view(AFTER_END)[0]} == \
        {"0000000a-1111-4222-8333-444444444444"}


def test_users_view(store):
    org = WORLD.orgs[1]
    users = store.users_view(org.uuid)
    assert len(users) == len(WORLD.users_by_org[org.uuid])
    assert all(list(u) == ["id", "full_name", "email", "organization_role", "created_at"] for u in users)
    joined = {u.id: u.joined_at for u in WORLD.users_by_org[org.uuid]}
    assert [joined[u["id"]] for u in users] == sorted(joined[u["id"]] for u in users)
    assert store.users_view("no-such-org") == []


def test_time_helpers():
    for s in ("2025-06-01T00:48:46.784658Z", "1999-12-31T23:59:59.000001Z", "2026-02-28T00:00:00.000000Z"):
        assert iso(to_us(s)) == s
    assert to_us(START) == to_us("2025-06-02T00:00:00Z") == to_us(datetime(2025, 6, 2))


def test_lifecycle_events_for_the_activity_feed(store):
    gte, lt = START_US + DAY_US, START_US + 3 * DAY_US
    ev = store.lifecycle_events(gte, lt)
    created = [e["claude_chat_id"] for e in ev if e["type"] == "claude_chat_created"]
    in_view = [o["id"] for o, c in zip(*store.chats_view(AFTER_END)[:2]) if gte <= c < lt]
    assert set(in_view) <= set(created)  # chats hard-deleted later were still created
    assert all(gte <= e["created_us"] < lt for e in ev)
    keys = [(e["created_us"], e["claude_chat_id"]) for e in ev]
    assert keys == sorted(keys)
    gt = {x["id"]: x for x in store.ground_truth(AFTER_END)}
    for e in ev:
        if e["type"] == "claude_chat_deleted":
            assert gt[e["claude_chat_id"]]["deleted_at"] == iso(e["created_us"])
    assert {"claude_chat_created", "claude_chat_updated"} <= {e["type"] for e in ev}


def test_with_the_real_world():
    config_mod = pytest.importorskip("simulator.config")
    world_mod = pytest.importorskip("simulator.world")
    cfg = config_mod.SimConfig.historical(START, days=3, chats_per_day=60, activities_per_day=20_000)
    world = world_mod.World(cfg)
    s = ChatStore(cfg, world)
    objs, _, _ = s.chats_view(AFTER_END)
    assert len(objs) > 100
    claude_ai = {o.uuid: o.id for o in world.orgs if o.kind == "claude_ai"}
    users = {u.id: u for u in world.users}
    for o in objs:
        assert claude_ai[o["organization_uuid"]] == o["organization_id"]  # never the console org or the parent
        if o["user"] is not None:
            u = users[o["user"]["id"]]
            assert (u.email, u.org_uuid) == (o["user"]["email_address"], o["organization_uuid"])
            assert to_us(u.joined_at) <= to_us(o["created_at"])
    assert len({o["organization_uuid"] for o in objs}) == len(claude_ai)
    org = world.main_org.uuid
    assert s.users_view(org) == world.users_api(org)


def test_chat_rows_shape(store):
    rows = store.chat_rows(AFTER_END)
    objs, cks, uks = store.chats_view(AFTER_END)
    assert rows == list(zip(objs, cks, uks)) and rows is store.chat_rows(AFTER_END)
