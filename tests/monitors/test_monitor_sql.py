"""The monitors' SQL on hand-made rows, loaded through the real window load into real DuckDB files (no HTTP)."""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from pipeline.monitors import load_config, run_monitors
from pipeline.monitors.alerts import read_alerts
from pipeline.monitors.config import DEFAULT_RULES, SEED_MONITOR_NAMES
from pipeline.warehouse.connection import open_warehouse
from tests.monitors.rows import activity, api, at, ip_in, load, unauth, user
from tests.unit.test_warehouse_load import snapshot

UTC = timezone.utc
DAY = datetime(2026, 3, 2, tzinfo=UTC)
NO_SEED = Path("/nonexistent/embargoed_regions.csv")


def config(env: dict | None = None):
    return load_config(env=env or {}, seed_path=NO_SEED)


@pytest.fixture
def conn(tmp_path):
    with open_warehouse(tmp_path / "w.duckdb") as c:
        yield c


def alerts_by_monitor(conn) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for a in read_alerts(conn):
        out.setdefault(a["monitor"], []).append(a)
    for v in out.values():
        v.sort(key=lambda a: a["first_event_at"])
    return out


def ids(records) -> list[str]:
    return [r["id"] for r in records]


def clean_traffic(start: datetime, hours: int = 24, n: int = 600) -> list[dict]:
    rng = random.Random(5)
    out = []
    for i in range(n):
        when = start + timedelta(seconds=rng.uniform(0, hours * 3600))
        kind = rng.choice(["claude_chat_created", "claude_chat_viewed", "sso_login_succeeded", "claude_file_uploaded"])
        actor = user(f"user{i % 9}@example.com", ip_in("US", i % 50 + 1))
        if kind == "sso_login_succeeded":
            actor = unauth(ip_in("GB", i % 20 + 1), f"user{i % 9}@example.com")
        out.append(activity(kind, when, actor=actor))
    return out


def test_ungrouped_monitors_one_alert_per_incident(conn, tmp_path):
    h = lambda hh, mm=0, ss=0: at(DAY, hh * 60 + mm, ss)  # noqa: E731
    keys_1 = [activity("admin_api_key_created", h(10, 2)), activity("platform_api_key_created", h(10, 9))]
    keys_2 = [activity("admin_api_key_created", h(11, 30))]              # a later, separate burst
    restriction = [activity("org_ip_restriction_deleted", h(12, 0, 0))]   # exactly on a window boundary
    destructive = [activity(t, h(13, i * 2)) for i, t in enumerate(
        ["org_deletion_requested", "org_bulk_delete_initiated", "org_deleted_via_bulk", "org_user_deleted",
         "org_taint_added"])]
    logging_off = [activity("org_compliance_api_settings_updated", h(14, 1), compliance_api_logging_enabled=False,
                            compliance_api_enabled=True)]
    api_off = [activity("org_compliance_api_settings_updated", h(16, 1), compliance_api_enabled=False)]
    benign = [activity("org_compliance_api_settings_updated", h(15, 1), compliance_api_logging_enabled=True,
                       compliance_api_enabled=True),
              activity("org_compliance_api_settings_updated", h(15, 20), compliance_api_logging_enabled=None),
              activity("org_user_invited", h(13, 1)), activity("api_key_created", h(9, 0))]
    records = keys_1 + keys_2 + restriction + destructive + logging_off + api_off + benign + clean_traffic(DAY)
    load(conn, tmp_path, records, DAY, DAY + timedelta(days=1))
    reports = run_monitors(conn, config(), DAY, DAY + timedelta(days=1))

    got = alerts_by_monitor(conn)
    assert [a["activity_ids"] for a in got["admin_or_platform_api_key_created"]] == [ids(keys_1), ids(keys_2)]
    assert [a["activity_ids"] for a in got["ip_restriction_deleted"]] == [ids(restriction)]
    assert [a["activity_ids"] for a in got["org_destructive_activity"]] == [ids(destructive)]
    assert [a["activity_ids"] for a in got["compliance_logging_disabled"]] == [ids(logging_off), ids(api_off)]
    assert set(got) == {"admin_or_platform_api_key_created", "ip_restriction_deleted", "org_destructive_activity",
                        "compliance_logging_disabled"}
    first = got["admin_or_platform_api_key_created"][0]
    assert (first["event_count"], first["group_key"], first["threshold"], first["severity"]) == \
        (2, None, 0.0, "critical")
    assert first["first_event_at"] == h(10, 2) and first["last_event_at"] == h(10, 9)
    assert reports["admin_or_platform_api_key_created"].fired and not reports["excessive_failed_auth"].fired
    assert reports["admin_or_platform_api_key_created"].sample[0]["id"] == keys_1[0]["id"]


def test_embargoed_location_grouped_by_ip_and_location(conn, tmp_path):
    t = at(DAY, 600)
    iran, crimea, donetsk = ip_in("IR", 3), ip_in("UA-43", 3), ip_in("UA-14", 3)
    iran_burst = [activity("claude_chat_created", at(t, 1), actor=user("a@example.com", iran)),
                  activity("sso_login_failed", at(t, 6), actor=unauth(iran))]
    other_iran = [activity("claude_chat_viewed", at(t, 2), actor=user("b@example.com", ip_in("IR", 9)))]
    crimea_event = [activity("claude_chat_viewed", at(t, 90), actor=user("c@example.com", crimea))]
    never = [activity("claude_chat_viewed", at(t, 120), actor=user("d@example.com", ip_in("UA-30", 3))),  # Kyiv
             activity("claude_chat_viewed", at(t, 121), actor=user("d@example.com", "10.1.2.3")),
             activity("claude_chat_viewed", at(t, 122), actor=user("d@example.com", "192.0.2.7")),
             activity("claude_chat_viewed", at(t, 123), actor=user("d@example.com", "not-an-ip")),
             activity("claude_chat_viewed", at(t, 124), actor={"type": "system_actor", "service": "x"})]
    donetsk_event = [activity("claude_chat_viewed", at(t, 200), actor=user("e@example.com", donetsk))]
    load(conn, tmp_path, iran_burst + other_iran + crimea_event + never + donetsk_event + clean_traffic(DAY),
         DAY, DAY + timedelta(days=1))
    # Donetsk embargoed only from the day after the event: it must not match
    cfg = config()
    from dataclasses import replace
    cfg = replace(cfg, embargo=tuple(replace(e, effective_from=DAY + timedelta(days=1)) if e.code == "UA-14" else e
                                     for e in cfg.embargo))
    run_monitors(conn, cfg, DAY, DAY + timedelta(days=1))
    got = [(a["group_key"], a["activity_ids"]) for a in alerts_by_monitor(conn)["embargoed_location"]]
    assert sorted(got) == sorted([(f"{iran}|IR", ids(iran_burst)), (f"{ip_in('IR', 9)}|IR", ids(other_iran)),
                                  (f"{crimea}|UA", ids(crimea_event))])


def test_excessive_failed_auth_groups_by_actor_identity(conn, tmp_path):
    t = at(DAY, 8 * 60)
    ip = ip_in("GB", 7)
    a = [activity("sso_login_failed", at(t, i * 2), actor=unauth(ip, "a@example.com")) for i in range(6)]
    b = [activity("magic_link_login_failed", at(t, 1 + i), actor=unauth(ip, "b@example.com")) for i in range(5)]
    # two actors (same IP, different emails) with 3 each: they do not add up
    c = [activity("sso_login_failed", at(t, 60 + i), actor=unauth(ip, "c@example.com")) for i in range(3)]
    d = [activity("sso_login_failed", at(t, 60 + i), actor=unauth(ip, "d@example.com")) for i in range(3)]
    # no email: the IP is the identity
    e = [activity("sso_login_failed", at(t, 120 + i), actor=unauth(ip_in("GB", 8))) for i in range(6)]
    # step-up failures of a signed-in user count for that user
    f = [activity("step_up_authentication_failed", at(t, 180 + i), actor=user("f@example.com"),
                  method="webauthn", reason="verification_failed") for i in range(6)]
    # 6 failures spread over 30 minutes: never more than 5 in one window
    g = [activity("sso_login_failed", at(t, 240 + i * 6), actor=unauth(ip, "g@example.com")) for i in range(6)]
    load(conn, tmp_path, a + b + c + d + e + f + g + clean_traffic(DAY), DAY, DAY + timedelta(days=1))
    run_monitors(conn, config(), DAY, DAY + timedelta(days=1))
    got = {x["group_key"]: x for x in alerts_by_monitor(conn)["excessive_failed_auth"]}
    assert set(got) == {"a@example.com", ip_in("GB", 8), "f@example.com"}
    assert got["a@example.com"]["activity_ids"] == ids(a)
    assert got[ip_in("GB", 8)]["activity_ids"] == ids(e)
    assert got["f@example.com"]["threshold"] == 5 and got["f@example.com"]["event_count"] == 6


def test_unauthorized_compliance_api_groups_by_key_then_ip(conn, tmp_path):
    t = at(DAY, 9 * 60)
    call = lambda key, minute, status, ip="81.2.69.161": activity(  # noqa: E731
        "compliance_api_accessed", at(t, minute), actor=api(key, ip), request_id="req_1", request_method="GET",
        status_code=status, url="https://api.anthropic.com/v1/compliance/activities")
    k1 = [call("apikey_01", i, 401 if i % 2 else 403) for i in range(6)]
    ok = [call("apikey_02", i, 200) for i in range(8)]
    split = [call("apikey_03", 30 + i, 401) for i in range(3)] + [call("apikey_04", 30 + i, 401) for i in range(3)]
    by_ip = [call(None, 60 + i, 401, ip="81.2.69.200") for i in range(6)]
    exactly_5 = [call("apikey_05", 90 + i, 403) for i in range(5)]
    load(conn, tmp_path, k1 + ok + split + by_ip + exactly_5, DAY, DAY + timedelta(days=1))
    run_monitors(conn, config(), DAY, DAY + timedelta(days=1))
    got = {x["group_key"]: x["activity_ids"] for x in alerts_by_monitor(conn)["excessive_unauthorized_compliance_api"]}
    assert got == {"apikey_01": ids(k1), "81.2.69.200": ids(by_ip)}


def test_unauthenticated_activity_excludes_the_sign_in_flow(conn, tmp_path):
    t = at(DAY, 7 * 60)
    ip = ip_in("DE", 4)
    flow = [activity(x, at(t, i), actor=unauth(ip, "z@example.com")) for i, x in enumerate(
        ["sso_login_initiated", "sso_login_failed", "sso_login_succeeded", "magic_link_login_initiated",
         "phone_code_sent", "phone_code_verified", "sso_second_factor_magic_link", "social_login_succeeded"])]
    odd = [activity("anonymous_mobile_login_attempted", at(t, 40), actor=unauth(ip))]
    signed_in = [activity("anonymous_mobile_login_attempted", at(t, 80), actor=user("y@example.com"))]
    load(conn, tmp_path, flow + odd + signed_in, DAY, DAY + timedelta(days=1))
    run_monitors(conn, config(), DAY, DAY + timedelta(days=1))
    got = alerts_by_monitor(conn)
    assert [a["activity_ids"] for a in got["unauthenticated_activity"]] == [ids(odd)]
    assert "excessive_failed_auth" not in got


def deletions(email: str, hour: datetime, n: int, kind: str = "claude_chat_deleted") -> list[dict]:
    return [activity(kind, hour + timedelta(minutes=1 + i * 50 / max(n, 1)), actor=user(email)) for i in range(n)]


def test_resource_deletion_outlier_against_each_actors_baseline(conn, tmp_path):
    start = DAY - timedelta(days=3)
    hot = DAY + timedelta(hours=10)
    records = []
    # steady: seen for 3 days, 1 deletion every third hour -> mean ~0.33, floor decides: 6 fires
    records += [activity("claude_chat_created", start + timedelta(minutes=5), actor=user("steady@example.com"))]
    for hh in range(0, 80, 3):
        records += deletions("steady@example.com", start + timedelta(hours=hh), 1, "claude_file_deleted")
    steady_hot = deletions("steady@example.com", hot, 6)
    # heavy: 4 and 12 deletions in alternate hours for 2 days -> mean 8, sigma 4, bar 16: 15 does not fire
    heavy_start = hot - timedelta(hours=48)
    for hh in range(48):
        records += deletions("heavy@example.com", heavy_start + timedelta(hours=hh), 4 if hh % 2 else 12,
                             "claude_project_document_deleted")
    heavy_hot = deletions("heavy@example.com", hot, 15)
    # newcomer (under 24 h of history): the floor alone -> 5 fires, 4 does not
    newcomer = [activity("claude_chat_created", hot - timedelta(minutes=30), actor=user("new@example.com"))]
    newcomer_hot = deletions("new@example.com", hot, 5, "claude_project_deleted")
    new4 = deletions("new4@example.com", hot, 4)
    # first seen 30 h earlier as an unauthenticated sign-in (its identity is in the JSON): 30 h of zero history
    signin = [activity("sso_login_initiated", hot - timedelta(hours=30),
                       actor=unauth(ip_in("GB", 3), "late@example.com"))]
    late_hot = deletions("late@example.com", hot, 5)
    # two actors with 3 each in the same hour do not add up
    pair = deletions("p1@example.com", hot, 3) + deletions("p2@example.com", hot, 3)
    records += steady_hot + heavy_hot + newcomer + newcomer_hot + new4 + pair + signin + late_hot
    records += clean_traffic(start, 96, 800)
    load(conn, tmp_path, records, start, DAY + timedelta(days=1))
    reports = run_monitors(conn, config(), DAY, DAY + timedelta(days=1))

    got = {a["group_key"]: a for a in alerts_by_monitor(conn).get("resource_deletion_outlier", [])}
    assert set(got) == {"steady@example.com", "new@example.com", "late@example.com"}, \
        reports["resource_deletion_outlier"]
    assert json.loads(got["late@example.com"]["details"])["history_hours"] == 30
    assert got["steady@example.com"]["activity_ids"] == ids(steady_hot)
    assert got["new@example.com"]["activity_ids"] == ids(newcomer_hot)
    assert got["new@example.com"]["threshold"] == 4  # floor alone: count > 4
    details = json.loads(got["steady@example.com"]["details"])
    assert details["history_hours"] == 24 * 3 + 10
    assert details["baseline_mean"] == pytest.approx(27 / 82, abs=1e-3)

    # one more deletion for heavy in the same hour: 16 is still not > 16, 17 is
    extra = [activity("claude_chat_deleted", hot + timedelta(minutes=58, seconds=i), actor=user("heavy@example.com"))
             for i in range(2)]
    load(conn, tmp_path, records + extra[:1], start, DAY + timedelta(days=1))
    run_monitors(conn, config(), DAY, DAY + timedelta(days=1))
    assert "heavy@example.com" not in {a["group_key"] for a in read_alerts(conn)}
    load(conn, tmp_path, records + extra, start, DAY + timedelta(days=1))
    run_monitors(conn, config(), DAY, DAY + timedelta(days=1))
    heavy = [a for a in read_alerts(conn) if a["group_key"] == "heavy@example.com"]
    assert len(heavy) == 1 and heavy[0]["event_count"] == 17 and heavy[0]["threshold"] == pytest.approx(16)


def incident_rows(tmp_path) -> tuple[list[dict], datetime, datetime]:
    t = at(DAY, 6 * 60)
    ip = ip_in("GB", 11)
    records = clean_traffic(DAY, 12, 400)
    records += [activity("sso_login_failed", at(t, 3 + i), actor=unauth(ip, "x@example.com")) for i in range(7)]
    records += [activity("org_user_deleted", at(t, 61)), activity("org_user_deleted", at(t, 74))]
    records += [activity("claude_chat_viewed", at(t, 130 + i), actor=user("k@example.com", ip_in("KP", 2)))
                for i in range(3)]
    records += deletions("fresh@example.com", t + timedelta(hours=3), 9)
    return records, DAY, DAY + timedelta(hours=12)


def alert_state(conn) -> list[tuple]:
    return sorted((a["alert_id"], a["monitor"], a["group_key"], a["event_count"], tuple(a["activity_ids"]),
                   a["first_window_end"], a["last_window_end"]) for a in read_alerts(conn))


def test_ranged_run_equals_partition_by_partition_and_rerun_changes_nothing(tmp_path):
    records, start, end = incident_rows(tmp_path)
    with open_warehouse(tmp_path / "ranged.duckdb") as ranged, \
            open_warehouse(tmp_path / "single.duckdb") as single:
        load(ranged, tmp_path, records, start, end)
        load(single, tmp_path, records, start, end)
        start, end = start + timedelta(hours=5, minutes=55), start + timedelta(hours=9, minutes=10)  # the incidents
        run_monitors(ranged, config(), start, end)
        t = start
        while t < end:  # every 5-minute partition on its own, as the live schedule does
            run_monitors(single, config(), t, t + timedelta(minutes=5))
            t += timedelta(minutes=5)
        assert alert_state(ranged) == alert_state(single)
        assert {a[1] for a in alert_state(ranged)} == {"excessive_failed_auth", "org_destructive_activity",
                                                       "embargoed_location", "resource_deletion_outlier"}
        before = snapshot(ranged)
        run_monitors(ranged, config(), start, end, run_id="rerun")
        run_monitors(ranged, config(), start + timedelta(minutes=5), start + timedelta(minutes=65),
                     run_id="rerun2")
        assert snapshot(ranged) == before


def test_late_event_joins_the_existing_alert(conn, tmp_path):
    t = at(DAY, 300)
    first = [activity("org_taint_added", at(t, 1), taint="x", workspace_id="w")]
    late = [activity("org_user_deleted", at(t, 9))]
    load(conn, tmp_path, first, DAY, DAY + timedelta(hours=12))
    run_monitors(conn, config(), at(t, 0), at(t, 5), now=at(t, 7))
    (alert,) = read_alerts(conn)
    load(conn, tmp_path, first + late, DAY, DAY + timedelta(hours=12))   # the late re-pull finds one more
    run_monitors(conn, config(), at(t, 0), at(t, 15), now=at(t, 20))
    (merged,) = read_alerts(conn)
    assert merged["alert_id"] == alert["alert_id"] and merged["raised_at"] == alert["raised_at"]
    assert merged["activity_ids"] == ids(first + late) and merged["updated_at"] == at(t, 20)
    # a burst after a quiet window is a new alert
    later = [activity("org_user_deleted", at(t, 40))]
    load(conn, tmp_path, first + late + later, DAY, DAY + timedelta(hours=12))
    run_monitors(conn, config(), at(t, 0), at(t, 60))
    got = sorted(read_alerts(conn), key=lambda a: a["first_event_at"])
    assert [a["activity_ids"] for a in got] == [ids(first + late), ids(later)]


def brute_force(events: list[tuple[str, datetime, str]], width: int, step: int, threshold: int,
                start: datetime, end: datetime) -> set[tuple[str, tuple[str, ...]]]:
    """Reference: every window on the grid overlapping [start, end), islands of consecutive firing ends."""
    s, w = timedelta(minutes=step), timedelta(minutes=width)
    k = start.replace(minute=start.minute - start.minute % step, second=0, microsecond=0) + s
    ends = []
    while k < end + w:
        ends.append(k)
        k += s
    out = set()
    for group in {g for g, _, _ in events}:
        mine = [(t, i) for g, t, i in events if g == group]
        firing = [e for e in ends if sum(e - w <= t < e for t, _ in mine) > threshold]
        islands, cur = [], []
        for e in firing:
            if cur and e - cur[-1] != s:
                islands.append(cur)
                cur = []
            cur.append(e)
        if cur:
            islands.append(cur)
        for isl in islands:
            members = sorted((t, i) for t, i in mine if isl[0] - w <= t < isl[-1])
            out.add((group, tuple(i for _, i in members)))
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sliding_windows_match_a_brute_force_reference(conn, tmp_path, seed):
    rng = random.Random(seed)
    start, end = DAY + timedelta(hours=2), DAY + timedelta(hours=6)
    records = []
    for _ in range(160):  # bursty failures of 4 actors
        who = rng.choice(["a", "b", "c", "d"])
        centre = rng.choice([2.5, 3.1, 4.0, 4.4, 5.2])
        when = DAY + timedelta(hours=centre, minutes=rng.gauss(0, 6))
        records.append(activity("sso_login_failed", when, actor=unauth("81.2.69.1", f"{who}@example.com")))
    load(conn, tmp_path, records, DAY, DAY + timedelta(hours=8))
    run_monitors(conn, config(), start, end, monitors=["excessive_failed_auth"])
    got = {(a["group_key"], tuple(a["activity_ids"])) for a in read_alerts(conn)}
    events = [(r["actor"]["unauthenticated_email_address"],
               datetime.fromisoformat(r["created_at"].replace("Z", "+00:00")), r["id"]) for r in records]
    # the engine orders ties by id; so does the reference
    assert got == brute_force(events, 15, 5, 5, start, end)
    assert got, "the random bursts should fire at least once"


def test_configuration_from_file_and_environment(tmp_path):
    cfg_file = tmp_path / "monitors.yaml"
    cfg_file.write_text("monitors:\n  excessive_failed_auth:\n    threshold: 9\n    window_minutes: 30\n"
                        "embargo:\n  - {code: ir, effective_from: 2020-01-01}\n")
    cfg = load_config(env={"COMPLIANCE_MONITORS_CONFIG": str(cfg_file),
                           "COMPLIANCE_MONITOR__EXCESSIVE_FAILED_AUTH__THRESHOLD": "12",
                           "COMPLIANCE_MONITOR__UNAUTHENTICATED_ACTIVITY__ENABLED": "false",
                           "COMPLIANCE_MONITOR__ORG_DESTRUCTIVE_ACTIVITY__TYPES": "org_deleted_via_bulk"},
                      seed_path=NO_SEED)
    rule = cfg.rule("excessive_failed_auth")
    assert (rule.threshold, rule.window_minutes) == (12, 30)          # the environment wins over the file
    assert not cfg.rule("unauthenticated_activity").enabled
    assert cfg.rule("org_destructive_activity").types == ("org_deleted_via_bulk",)
    assert [(e.code, e.effective_from.year) for e in cfg.embargo] == [("IR", 2020)]
    with pytest.raises(ValueError, match="unknown monitor"):
        load_config(env={"COMPLIANCE_MONITOR__NO_SUCH__THRESHOLD": "1"}, seed_path=NO_SEED)
    with pytest.raises(ValueError, match="window_minutes"):
        load_config(env={"COMPLIANCE_MONITOR__EXCESSIVE_FAILED_AUTH__WINDOW_MINUTES": "7"}, seed_path=NO_SEED)
    with pytest.raises(ValueError, match="unknown setting"):
        load_config(env={"COMPLIANCE_MONITOR__EXCESSIVE_FAILED_AUTH__TRESHOLD": "7"}, seed_path=NO_SEED)


def test_embargo_list_precedence_seed_over_default_override_over_seed(tmp_path):
    seed = tmp_path / "embargoed_regions.csv"
    seed.write_text("country_iso,subdivision_iso,name,effective_from\nIR,,Iran,1995-05-06\nUA,UA-43,Crimea,"
                    "2014-12-19\nRU,,Test,2030-01-01\n")
    assert [e.code for e in config().embargo] == ["CU", "IR", "KP", "SY", "UA-43", "UA-40", "UA-14", "UA-09"]
    from_seed = load_config(env={}, seed_path=seed)
    assert [e.code for e in from_seed.embargo] == ["IR", "UA-43", "RU"] and from_seed.embargo_source == str(seed)
    other = tmp_path / "mine.csv"
    other.write_text("code,effective_from\nKP,\n")
    override = load_config(env={"COMPLIANCE_MONITORS_EMBARGO_FILE": str(other)}, seed_path=seed)
    assert [(e.code, e.effective_from) for e in override.embargo] == [("KP", None)]


def test_defaults_are_those_of_monitors_md():
    assert SEED_MONITOR_NAMES == ("admin_or_platform_api_key_created", "compliance_logging_disabled",
                             "ip_restriction_deleted", "embargoed_location", "excessive_failed_auth",
                             "excessive_unauthorized_compliance_api", "org_destructive_activity",
                             "resource_deletion_outlier", "unauthenticated_activity")
    rules = {r.name: r for r in DEFAULT_RULES}
    assert all(r.window_minutes == 15 and r.step_minutes == 5 for n, r in rules.items()
               if n != "resource_deletion_outlier")
    assert {n: r.threshold for n, r in rules.items() if r.threshold} == {
        "excessive_failed_auth": 5, "excessive_unauthorized_compliance_api": 5}
    m8 = rules["resource_deletion_outlier"]
    assert (m8.window_minutes, m8.floor, m8.sigmas, m8.baseline_days, m8.min_history_hours) == (60, 5, 2.0, 30, 24)
