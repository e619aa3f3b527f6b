"""The marts on a generated day: every activity once, every type where its catalog row says, unknown types kept,
the incremental window, every panel, and exact numbers per dashboard against the raw JSON (computed in Python)."""

from __future__ import annotations

import csv
import importlib.util
from collections import Counter
from datetime import datetime
from fnmatch import fnmatchcase

import duckdb
import pytest

from pipeline.config import PROJECT_ROOT
from pipeline.enrichment.useragent import parse_user_agent
from pipeline.serving.panels import load_panels, run_panel
from tests.transform.marts_build import EXTRA_WINDOW, NEW_UNKNOWN_TYPE, RECON_ACTOR, raw_records

DBT = PROJECT_ROOT / "dbt_project"
CATALOG = {r["event_type"]: r for r in csv.DictReader(open(DBT / "seeds" / "activity_catalog.csv"))}
ACTIVITY_MARTS = ["billing_monitoring", "api_key_monitoring", "artifacts_marketplace_projects", "skills_plugins",
                  "claude_usage", "compliance_api_access", "data_access_exfiltration", "identity_access_auth",
                  "mcp_integrations_github", "org_policy_config", "sso_directory_sync", "session_management",
                  "user_config_invites"]  # + activity_overview (all) and user_agent_analysis (all with a UA)


def _catalog_script():
    spec = importlib.util.spec_from_file_location("catalog_script", DBT / "scripts" / "build_activity_catalog.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SCRIPT = _catalog_script()
RULES, PRECEDENCE = SCRIPT.load_rules(), SCRIPT.load_precedence()


def dashboards_of(event_type: str) -> set[str]:
    """Known types: the catalog row; unknown ones: the rules (Python implementation of the same rules)."""
    if event_type in CATALOG:
        return set(CATALOG[event_type]["dashboards"].split())
    return set(SCRIPT.classify(event_type, RULES, PRECEDENCE)[0])


@pytest.fixture(scope="module")
def raw(built) -> list[dict]:
    return raw_records(built.warehouse)


def ids(conn, table: str) -> list[str]:
    return [r[0] for r in conn.execute(f"SELECT activity_id FROM {table}").fetchall()]


# ------------------------------------------------------------------------------------------------ completeness


def test_every_activity_appears_in_activity_overview_exactly_once(wh, raw):
    stored = ids(wh, "marts.activity_overview")
    assert len(stored) == len(set(stored))
    assert set(stored) == {r["id"] for r in raw}
    assert len(raw) > 2000


def test_the_dataset_has_every_known_type_and_unknown_ones(raw):
    types = {r["type"] for r in raw}
    assert set(CATALOG) <= types, f"missing: {sorted(set(CATALOG) - types)[:10]}"
    assert types - set(CATALOG), "the simulator plants unknown types"


def test_each_type_feeds_exactly_the_marts_its_catalog_row_names(wh, raw):
    for mart in ACTIVITY_MARTS:
        expected = {r["id"] for r in raw if mart in dashboards_of(r["type"])}
        got = ids(wh, f"marts.{mart}")
        assert len(got) == len(set(got)), mart
        assert set(got) == expected, (mart, sorted({r["type"] for r in raw if r["id"] in set(got) ^ expected})[:5])
        assert expected, mart
    # every known type reaches each of its dashboards
    for event_type, row in CATALOG.items():
        for mart in row["dashboards"].split():
            assert wh.execute(f"SELECT count(*) FROM marts.{mart} WHERE event_type = ?", [event_type]).fetchone()[0], \
                (event_type, mart)


def test_user_agent_analysis_has_every_activity_with_a_user_agent(wh, raw):
    expected = {r["id"] for r in raw if (r.get("actor") or {}).get("user_agent")}
    assert set(ids(wh, "marts.user_agent_analysis")) == expected


def test_unknown_types_are_kept_categorised_by_rule_or_uncategorized(wh, raw):
    unknown = {r["type"] for r in raw} - set(CATALOG)
    assert NEW_UNKNOWN_TYPE in unknown
    rows = dict(wh.execute("SELECT event_type, category FROM marts.activity_overview WHERE NOT is_known_type "
                           "GROUP BY ALL").fetchall())
    assert set(rows) == unknown
    for event_type in unknown:
        assert rows[event_type] == SCRIPT.classify(event_type, RULES, PRECEDENCE)[1]
    assert rows[NEW_UNKNOWN_TYPE] == "uncategorized"
    assert "uncategorized" in set(rows.values()) and set(rows.values()) != {"uncategorized"}


def test_geo_ua_and_embargo_columns_come_from_the_enrichment_tables(wh):
    missing_geo = wh.execute("""
        SELECT count(*) FROM marts.activity_overview a JOIN enrichment.ip_geolocation g ON g.ip = a.ip_address
        WHERE g.found AND a.geo_country_iso IS DISTINCT FROM g.country_iso""").fetchone()[0]
    assert missing_geo == 0
    embargoed = dict(wh.execute("SELECT embargo_region, count(*) FROM marts.activity_overview WHERE is_embargoed "
                                "GROUP BY ALL").fetchall())
    assert "IR" in embargoed and any(k.startswith("UA-") for k in embargoed)
    assert wh.execute("SELECT count(*) FROM marts.activity_overview WHERE is_embargoed AND ip_is_private"
                      ).fetchone()[0] == 0


# ------------------------------------------------------------------------------------------------ incremental


def test_a_new_window_rewrites_only_its_window_plus_the_forward_horizon(wh, built):
    lo, hi = built.incremental_vars["min_date"], built.incremental_vars["max_date"]
    for table in ["staging.stg_activities", "intermediate.int_activities", "marts.activity_overview",
                  *(f"marts.{m}" for m in ACTIVITY_MARTS), "marts.user_agent_analysis"]:
        rows = wh.execute(f"""
            SELECT created_at >= '{lo}'::TIMESTAMPTZ AND created_at < '{hi}'::TIMESTAMPTZ AS inside,
                   dbt_invocation_id, count(*) FROM {table} GROUP BY ALL""").fetchall()
        by = {(inside, inv): n for inside, inv, n in rows}
        assert set(by) <= {(False, built.full_invocation), (True, built.incremental_invocation)}, (table, by)
    new = wh.execute("SELECT count(*) FROM marts.activity_overview WHERE activity_id IN (SELECT unnest(?))",
                     [built.extra_ids]).fetchone()[0]
    assert new == len(built.extra_ids)
    assert EXTRA_WINDOW == "2026-11-03-00:00"


def test_recon_then_privileged_change_is_flagged(wh):
    rows = wh.execute("""SELECT event_type, recon_events_prior_1h FROM marts.identity_access_auth
                         WHERE is_recon_then_privileged_change AND actor_identity = ?""", [RECON_ACTOR]).fetchall()
    assert rows == [("claude_user_role_updated", 2)]


def test_alerts_mart_mirrors_monitor_alerts_and_feeds_the_threat_panel(wh, serving):
    alerts = wh.execute("SELECT count(*) FROM monitors.alerts").fetchone()[0]
    assert alerts > 0, "the planted incidents raise alerts"
    assert wh.execute("SELECT count(*) FROM marts.alerts").fetchone()[0] == alerts
    threat_events, raised = run_panel(serving, "activity_overview", "threat_count")[0]
    assert raised == alerts and threat_events > 0


# ------------------------------------------------------------------------------------------------ panels

ALL_PANELS = [(d, p) for d, panels in load_panels().items() for p in panels]


def test_there_is_a_panel_file_per_dashboard():
    marts = {"activity_overview", "user_agent_analysis", "chats", *ACTIVITY_MARTS}
    assert set(load_panels()) == marts
    assert len(ALL_PANELS) >= 100


def test_panels_read_their_mart_alone():
    for dashboard, panel in ALL_PANELS:
        sql = load_panels()[dashboard][panel].sql.lower()
        assert " join " not in sql and "->>" not in sql and "json" not in sql, (dashboard, panel)
        tables = {dashboard, "alerts"} if dashboard == "activity_overview" else {dashboard}
        others = {m for m in (*ACTIVITY_MARTS, "activity_overview", "user_agent_analysis", "chats", "alerts")
                  if f"from {m}" in sql and m not in tables}
        assert not others, (dashboard, panel, others)


@pytest.fixture(scope="module")
def search_term(wh) -> str:
    text = wh.execute("SELECT text FROM restricted.chat_message_text WHERE block_type = 'text' "
                      "AND length(text) > 40 LIMIT 1").fetchone()[0]
    return max(text.split(), key=len)


@pytest.mark.parametrize("dashboard, panel", ALL_PANELS)
def test_every_panel_runs_and_returns_rows_on_the_serving_file(serving, search_term, dashboard, panel):
    rows = run_panel(serving, dashboard, panel, {"term": search_term})
    assert rows, f"{dashboard}.{panel} returned no rows"


def test_panels_also_run_on_the_warehouse(wh):
    assert run_panel(wh, "billing_monitoring", "billing_events_by_type")


# ------------------------------------------------------------------------------------------------ exact numbers


def _types(raw, mart):
    return [r for r in raw if mart in dashboards_of(r["type"])]


def _hour(ts: str) -> datetime:
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).replace(minute=0, second=0, microsecond=0)


def _present(record: dict, field: str):
    value = record.get(field)
    return value if value not in (None, "") else None


def _expected_and_actual(dashboard: str, raw: list[dict], conn, built) -> tuple[object, object]:
    panel = lambda name: run_panel(conn, dashboard, name)  # noqa: E731
    if dashboard == "activity_overview":
        got = (panel("total_events")[0][0], {r[0]: r[1] for r in panel("events_by_actor_type")})
        return (len({r["id"] for r in raw}), Counter(r["actor"]["type"] for r in raw)), got
    if dashboard == "billing_monitoring":
        got = Counter({t: n for _, t, n in panel("billing_events_by_type")})
        return Counter(r["type"] for r in _types(raw, dashboard)), got
    if dashboard == "api_key_monitoring":
        def kind(t):
            for prefix, k in [("admin_api_key_", "admin"), ("service_key_", "service"),
                              ("platform_signing_key_", "signing"), ("org_external_key_", "external")]:
                if t.startswith(prefix):
                    return k
            return "api"

        def life(t):
            verb = t.rsplit("_", 1)[1]
            return "created" if verb == "created" else "deleted" if verb in ("deleted", "revoked") else "updated"
        expected = Counter((kind(r["type"]), life(r["type"])) for r in _types(raw, dashboard))
        return expected, Counter({(k, lc): n for k, lc, n in panel("created_vs_deleted_vs_updated")})
    if dashboard == "artifacts_marketplace_projects":
        rows = _types(raw, dashboard)
        expected = tuple(len({_present(r, f) for r in rows} - {None}) for f in
                         ("claude_artifact_id", "claude_project_id", "design_project_id", "marketplace_id"))
        expected += (len({(r["actor"].get("user_id") or None) for r in rows} - {None}),)
        return expected, tuple(panel("active_counts")[0])
    if dashboard == "skills_plugins":
        rows = _types(raw, dashboard)
        expected = (len({_present(r, "skill_id") or _present(r, "skill_name") for r in rows} - {None}),
                    len({_present(r, "plugin_id") or _present(r, "plugin_name") for r in rows} - {None}),
                    len({_present(r, "extension_id") for r in rows} - {None}))
        return expected, tuple(panel("unique_counts")[0])
    if dashboard == "claude_usage":
        expected = Counter((_present(r, "command_name"), r["type"]) for r in raw if r["type"].startswith("claude_command_"))
        return expected, Counter({(c, t): n for c, t, n, _ in panel("command_events")})
    if dashboard == "compliance_api_access":
        expected = Counter(r.get("status_code") for r in raw if r["type"] == "compliance_api_accessed")
        return expected, Counter({code: n for code, _, n in panel("http_status_distribution")})
    if dashboard == "data_access_exfiltration":
        expected = Counter(r["type"] for r in raw if r["type"] in
                           ("group_viewed", "group_list_viewed", "group_member_list_viewed", "claude_project_viewed"))
        return expected, Counter({t: n for t, n, _ in panel("group_and_project_views")})
    if dashboard == "identity_access_auth":
        ok = {"sso_login_succeeded", "magic_link_login_succeeded", "social_login_succeeded",
              "step_up_authentication_succeeded", "phone_code_verified"}
        bad = {"sso_login_failed", "magic_link_login_failed", "step_up_authentication_failed"}
        expected = Counter((_hour(r["created_at"]), "success" if r["type"] in ok else "failure")
                           for r in raw if r["type"] in ok | bad)
        return expected, Counter({(h, res): n for h, res, n in panel("login_success_vs_failure_trend")})
    if dashboard == "mcp_integrations_github":
        # active: servers (id, else name) whose latest creation/deletion is a creation
        counts: dict = {}
        servers: dict = {}
        last: dict = {}
        for r in sorted(_types(raw, dashboard), key=lambda r: (r["created_at"], r["id"])):
            name = _present(r, "mcp_server_name") or _present(r, "mcp_directory_server_name")
            if name:
                server = _present(r, "mcp_server_id") or _present(r, "mcp_directory_server_id") or name
                delta = {"mcp_server_created": 1, "mcp_server_deleted": -1}.get(r["type"], 0)
                c, d = counts.get(name, (0, 0))
                counts[name] = (c + (delta == 1), d + (delta == -1))
                servers.setdefault(name, set()).add(server)
                if delta:
                    last[server] = delta
        expected = {name: (sum(1 for s in servers[name] if last.get(s) == 1), c, d)
                    for name, (c, d) in counts.items()}
        return expected, {name: (a, c, d) for name, a, c, d in panel("active_mcp_servers")}
    if dashboard == "org_policy_config":
        management = {"org_deletion_requested", "org_bulk_delete_initiated", "org_deleted_via_bulk",
                      "org_creation_blocked", "org_parent_join_proposal_created", "org_parent_search_performed"}
        expected = Counter(r["type"] for r in raw
                           if r["type"] in management or r["type"].startswith("organization_"))
        return expected, Counter(dict(panel("org_management_actions")))
    if dashboard == "sso_directory_sync":
        expected = Counter(r["type"] for r in raw if any(fnmatchcase(r["type"], p) for p in
                                                        ("org_sso_*", "org_directory_*", "scim_user_*")))
        return expected, Counter({t: n for _, t, n in panel("event_distribution")})
    if dashboard == "session_management":
        expected = Counter((r["type"].rsplit("_", 1)[1], _present(r, "access_level") or "unspecified")
                           for r in raw if r["type"].startswith("session_share_"))
        return expected, Counter({(a, lvl): n for a, lvl, n in panel("shares")})
    if dashboard == "user_agent_analysis":
        def origin(ua):
            automated = parse_user_agent(ua).is_automated
            return "automated" if automated else "human" if automated is False else "unknown"
        expected = Counter(origin(r["actor"]["user_agent"]) for r in raw if (r.get("actor") or {}).get("user_agent"))
        return expected, Counter(dict(panel("automated_vs_human")))
    if dashboard == "user_config_invites":
        links = {"org_invite_link_generated": "generated", "org_invite_link_regenerated": "regenerated",
                 "org_invite_link_disabled": "disabled", "org_user_invite_accepted": "accepted"}
        expected = Counter(links[r["type"]] for r in raw if r["type"] in links)
        return expected, Counter(dict(panel("invite_link_usage")))
    if dashboard == "chats":
        return _chat_roles_from_the_api(built), Counter(dict(panel("messages_by_role")))
    raise AssertionError(dashboard)


def _chat_roles_from_the_api(built) -> Counter:
    """Message roles of every chat the ingested day holds that is not deleted (the panels leave deleted chats out),
    read from the Compliance API (simulator) directly."""
    import httpx

    from tests.support.sim import FULL_KEY

    roles: Counter = Counter()
    with duckdb.connect(str(built.warehouse), read_only=True) as conn:
        chat_ids = [r[0] for r in conn.execute("SELECT id FROM raw.chats WHERE hard_deleted_at IS NULL "
                                               "AND deleted_at IS NULL").fetchall()]
        assert built.hard_deleted_chat and built.hard_deleted_chat not in chat_ids
    with httpx.Client(base_url=built.base_url, headers={"x-api-key": FULL_KEY}, timeout=30) as http:
        for chat_id in chat_ids:
            body = http.get(f"/v1/compliance/apps/chats/{chat_id}/messages").json()
            roles.update(m["role"] for m in body["chat_messages"])
    return roles


@pytest.mark.parametrize("dashboard", sorted(load_panels()))
def test_exact_numbers_against_the_raw_json(dashboard, raw, serving, built):
    expected, actual = _expected_and_actual(dashboard, raw, serving, built)
    assert expected and actual == expected
