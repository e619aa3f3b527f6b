"""Columns that mean what an analyst reads into them (issue #16), on the shared build (tests/transform/marts_build.py):
outcome per type family, deleted chats, one actor identity for marts and monitors, and three panel fixes."""

from __future__ import annotations

import csv

import duckdb
import pytest

from pipeline.config import PROJECT_ROOT
from pipeline.monitors.identity import identity_sql
from pipeline.serving.panels import load_panels, run_panel

CATALOG = {r["event_type"] for r in csv.DictReader(open(PROJECT_ROOT / "dbt_project" / "seeds" /
                                                         "activity_catalog.csv"))}
FAILURE_WORDS = {"failed", "denied", "rejected", "invalid", "blocked"}
UNFINISHED_WORDS = {"initiated", "attempted", "requested"}
# Read from the record by the catalog's `derived` types other than the two checked here: not part of this oracle.
OTHER_DERIVED = {"github_token_import", "org_external_key_validated", "ccr_agent_proxy_network_events_listed",
                 "mcp_server_managed_auth_token_exchanged"}


# ------------------------------------------------------------------------------------------------ 1. outcome


def expected_outcome(record: dict) -> tuple[str, str] | None:
    """(family, outcome) from the raw record alone (independent of the catalog seed); None = not judged here."""
    t = record["type"]
    if t == "org_join_proposal_decided":
        return "decision", {True: "success", False: "failure"}.get(record.get("approved"), "unknown")
    if t == "compliance_api_accessed":
        code = record.get("status_code")
        return "http", "unknown" if code is None else "success" if 200 <= int(code) < 300 else "failure"
    if t in OTHER_DERIVED:
        return None
    word = t.rsplit("_", 1)[-1]
    if t in ("platform_app_attest_authentication", "platform_federated_authentication"):
        return "opaque status", "unknown"
    if word in FAILURE_WORDS or t.startswith("inference_hooks_request_failed") \
            or t == "inference_hooks_circuit_breaker_tripped" or t.endswith("_bulk_deletion_audit_truncated"):
        return f"*_{word}", "failure"
    if word in UNFINISHED_WORDS or t == "sso_second_factor_magic_link":
        return "*_requested" if t == "sso_second_factor_magic_link" else f"*_{word}", "unknown"
    if t not in CATALOG:
        return "unknown type", "unknown"
    return "other", "success"


def test_outcome_follows_what_happened_for_every_type_family(wh, built):
    from tests.transform.marts_build import raw_records

    outcomes = dict(wh.execute("SELECT activity_id, outcome FROM marts.activity_overview").fetchall())
    families: dict[str, set[str]] = {}
    wrong = []
    for record in raw_records(built.warehouse):
        judged = expected_outcome(record)
        if judged is None:
            continue
        family, outcome = judged
        families.setdefault(family, set()).add(outcome)
        if outcomes[record["id"]] != outcome:
            wrong.append((record["type"], outcomes[record["id"]], outcome))
    assert not wrong, wrong[:10]
    # every family is in the data, and decisions / HTTP calls go both ways
    assert {"*_failed", "*_denied", "*_rejected", "*_invalid", "*_blocked", "*_initiated", "*_attempted",
            "*_requested", "decision", "http", "opaque status", "unknown type", "other"} <= set(families)
    assert {"success", "failure"} <= families["decision"] and {"success", "failure"} <= families["http"]


def test_every_catalog_type_has_an_outcome_and_every_derived_one_is_read_from_its_record():
    """The catalog seed is where the outcome lives: each of the 514 types has one; `derived` names the types whose
    record says it, and exactly those have a branch in the macro that reads the record."""
    import re

    rows = list(csv.DictReader(open(PROJECT_ROOT / "dbt_project" / "seeds" / "activity_catalog.csv")))
    assert len(rows) == 514 and {r["outcome"] for r in rows} == {"success", "failure", "unknown", "derived"}
    macro = (PROJECT_ROOT / "dbt_project" / "macros" / "activity_logic.sql").read_text()
    body = macro[macro.index("macro activity_outcome"):macro.index("endmacro", macro.index("macro activity_outcome"))]
    assert set(re.findall(r"\{\{ event_type \}\} = '(\w+)'", body)) == \
        {r["event_type"] for r in rows if r["outcome"] == "derived"}


def test_the_issue_s_seven_types_are_no_longer_successes(wh):
    got = dict(wh.execute("""SELECT event_type, list(DISTINCT outcome ORDER BY outcome) FROM marts.activity_overview
                             WHERE event_type IN ('org_creation_blocked', 'sso_login_initiated',
                                   'magic_link_login_initiated', 'anonymous_mobile_login_attempted',
                                   'domain_claim_initiated', 'end_user_invite_requested', 'lti_launch_initiated')
                             GROUP BY 1""").fetchall())
    assert got.pop("org_creation_blocked") == ["failure"]
    assert len(got) == 6 and all(v == ["unknown"] for v in got.values()), got


# ------------------------------------------------------------------------------------------------ 2. deleted chats


def test_deleted_chats_are_flagged_left_out_of_panels_and_listed_in_deletions(wh, serving, built):
    deleted = built.hard_deleted_chat
    rows = wh.execute("SELECT is_chat_deleted, chat_deletion_kind, chat_deletion_at IS NOT NULL, count(*) "
                      "FROM marts.chats WHERE chat_id = ? GROUP BY ALL", [deleted]).fetchall()
    assert len(rows) == 1 and rows[0][:3] == (True, "hard", True) and rows[0][3] > 0
    live_messages, all_messages, deleted_flags = wh.execute(
        "SELECT count(*) FILTER (WHERE NOT is_chat_deleted), count(*), "
        "count(*) FILTER (WHERE is_chat_deleted <> (chat_deletion_at IS NOT NULL)) FROM marts.chats").fetchone()
    assert deleted_flags == 0 and live_messages < all_messages

    users, chats, messages = run_panel(serving, "chats", "active_users")[0]
    assert messages == live_messages
    assert sum(r[1] for r in run_panel(serving, "chats", "messages_by_role")) == live_messages
    assert sum(r[2] for r in run_panel(serving, "chats", "top_models")) == live_messages
    assert deleted not in {r[0] for r in run_panel(serving, "chats", "conversation_summaries")}
    listed = {r[0]: r for r in run_panel(serving, "chats", "deleted_chats")}
    assert deleted in listed and listed[deleted][4] == "hard" and listed[deleted][5] is not None


def test_every_chat_panel_leaves_deleted_chats_out_and_one_lists_them(wh, built):
    """Each panel of the Chats dashboard answers the same with and without the deleted chats' rows and text (they are
    left out by default: none can count them), except deleted_chats, which lists every one, soft and hard. The
    message search is checked with a word of a deleted chat's text."""
    deleted = dict(wh.execute("SELECT chat_id, any_value(chat_deletion_kind) FROM marts.chats WHERE is_chat_deleted "
                              "GROUP BY 1").fetchall())
    assert deleted == {built.hard_deleted_chat: "hard", built.soft_deleted_chat: "soft"}, deleted
    # the soft delete came after the chat's rows were built: the incremental run rewrote every one of them
    assert wh.execute("SELECT bool_and(is_chat_deleted AND chat_deletion_at IS NOT NULL), count(*) FROM marts.chats "
                      "WHERE chat_id = ?", [built.soft_deleted_chat]).fetchone()[0]
    deleted_text = wh.execute("SELECT text FROM restricted.chat_message_text WHERE block_type = 'text' "
                              "AND list_contains(?, chat_id) ORDER BY length(text) DESC LIMIT 1",
                              [list(deleted)]).fetchone()[0]
    term = max(deleted_text.split(), key=len)
    params, definition = wh.execute("SELECT parameters, macro_definition FROM duckdb_functions() "
                                    "WHERE function_name = 'search_messages' AND function_type = 'table_macro'"
                                    ).fetchone()

    def chats_copy(with_deleted: bool) -> duckdb.DuckDBPyConnection:
        conn = duckdb.connect()
        conn.execute(f"ATTACH '{built.warehouse}' AS w (READ_ONLY)")
        conn.execute("CREATE TABLE chats AS SELECT * FROM w.marts.chats WHERE ? OR NOT is_chat_deleted",
                     [with_deleted])
        conn.execute("CREATE SCHEMA restricted")
        conn.execute("CREATE TABLE restricted.chat_message_text AS SELECT * FROM w.restricted.chat_message_text "
                     "WHERE ? OR NOT list_contains(?, chat_id)", [with_deleted, list(deleted)])
        conn.execute(f"CREATE MACRO search_messages({', '.join(params)}) AS TABLE {definition}")
        conn.execute("DETACH w")
        return conn

    everything, live = chats_copy(True), chats_copy(False)
    assert everything.execute("SELECT count(*) FROM search_messages(?) WHERE list_contains(?, chat_id)",
                              [term, list(deleted)]).fetchone()[0] > 0
    panels = sorted(load_panels()["chats"])
    for panel in panels:
        full, without = (sorted(map(repr, run_panel(c, "chats", panel, {"term": term}, schema="main")))
                         for c in (everything, live))
        if panel == "deleted_chats":
            assert {r[0]: r[4] for r in run_panel(everything, "chats", panel)} == deleted and without == []
        else:
            assert full == without, panel
    assert len(panels) == 13


# ------------------------------------------------------------------------------------------------ 4. identity


def test_marts_and_monitors_share_one_actor_identity_on_every_actor_type(wh):
    """The monitors' grouping expression (rendered from dbt_project/macros/actor_identity.sql) over raw.activities
    gives the marts' actor_identity for every row of every actor type."""
    per_type = wh.execute(f"""
        SELECT r.actor_type, count(*), count(*) FILTER (WHERE m.actor_identity IS DISTINCT FROM {identity_sql('r')})
        FROM raw.activities r JOIN marts.activity_overview m ON m.activity_id = r.id
        GROUP BY 1 ORDER BY 1""").fetchall()
    assert all(bad == 0 for _, _, bad in per_type), per_type
    # every actor type of the API contract is in the data
    assert {t for t, _, _ in per_type} >= {
        "user_actor", "api_actor", "admin_api_key_actor", "service_account_actor", "unauthenticated_user_actor",
        "system_actor", "anthropic_actor", "scim_directory_sync_actor", "federated_actor"}, per_type


def test_monitor_alert_groups_are_the_marts_actor_identities(wh):
    """The alerts the monitors raised on the day (Dagster asset checks), grouped by actor: each group is the
    actor_identity of every one of its events in the marts."""
    rows = wh.execute("""
        SELECT a.monitor, a.group_key, list(DISTINCT m.actor_identity)
        FROM monitors.alerts a, unnest(a.activity_ids) AS u(activity_id)
        JOIN marts.activity_overview m ON m.activity_id = u.activity_id
        WHERE a.monitor IN ('excessive_failed_auth', 'resource_deletion_outlier')
        GROUP BY ALL""").fetchall()
    assert rows, "the planted incidents raise grouped alerts"
    assert all(identities == [group] for _, group, identities in rows), rows


# ------------------------------------------------------------------------------------------------ 5. panels


def test_active_mcp_servers_is_the_state_at_the_range_end_never_negative(serving):
    """A range that starts after a server's creation and holds its deletion: 0 active, not -1."""
    conn = duckdb.connect()
    conn.execute(f"ATTACH '{serving.execute('PRAGMA database_list').fetchall()[0][2]}' AS s (READ_ONLY)")
    conn.execute("CREATE TABLE mcp_integrations_github AS SELECT * FROM s.mcp_integrations_github LIMIT 0")
    events = [  # (server id, name, delta, hour): the BI range is hours >= 12, so the 10:00 rows are filtered out
        ("srv_a", "alpha", 1, 10), ("srv_a", "alpha", -1, 14),          # created before, deleted in range -> 0
        ("srv_b", "beta", 1, 13),                                        # created in range -> 1
        ("srv_c", "gamma", -1, 12), ("srv_c", "gamma", 1, 15),          # deleted, then re-created -> 1
        ("srv_d", "gamma", 1, 10), ("srv_d", "gamma", 0, 16),           # created before, updated in range -> 0
    ]
    for n, (server, name, delta, hour) in enumerate(events):
        conn.execute("""INSERT INTO mcp_integrations_github BY NAME
                        SELECT $id AS activity_id, make_timestamptz(2026, 11, 2, $h, 0, 0) AS created_at,
                               $server AS mcp_server_id, $name AS mcp_server_name, $delta AS mcp_server_delta""",
                     {"id": f"act_{n}", "h": hour, "server": server, "name": name, "delta": delta})
    conn.execute("DELETE FROM mcp_integrations_github WHERE hour(created_at) < 12")  # the range filter
    got = {name: active for name, active, _, _ in run_panel(conn, "mcp_integrations_github", "active_mcp_servers",
                                                             schema="main")}
    assert got == {"alpha": 0, "beta": 1, "gamma": 1}


def test_top_ten_types_are_ranked_among_the_filtered_rows(serving):
    sql = load_panels()["activity_overview"]["events_over_time_by_type"].sql
    assert sql.count("WHERE true") == 1  # the one place a filter goes
    everything = [r[0] for r in serving.execute(
        "SELECT event_type FROM activity_overview GROUP BY 1 ORDER BY count(*) DESC, event_type LIMIT 10").fetchall()]
    for actor_type in ("api_actor", "unauthenticated_user_actor", "admin_api_key_actor", "system_actor"):
        top = [r[0] for r in serving.execute(
            "SELECT event_type FROM activity_overview WHERE actor_type = ? GROUP BY 1 "
            "ORDER BY count(*) DESC, event_type LIMIT 10", [actor_type]).fetchall()]
        if set(top) != set(everything):
            break
    else:
        pytest.fail("no filter changes the top 10")
    filtered = sql.replace("WHERE true", f"WHERE actor_type = '{actor_type}'")
    serving.execute("SET search_path = 'main'")
    shown = {r[1] for r in serving.execute(filtered).fetchall()} - {"other"}
    assert shown == set(top)


def test_privilege_escalation_includes_rbac_role_assignments(serving, wh):
    assigned = wh.execute("SELECT count(*) FROM raw.activities WHERE type = 'rbac_role_assigned'").fetchone()[0]
    rows = run_panel(serving, "identity_access_auth", "privilege_escalation")
    assert assigned > 0 and sum(1 for r in rows if r[1] == "rbac_role_assigned") == assigned
    assert all(r[3] is not None for r in rows if r[1] == "rbac_role_assigned")  # the principal it was assigned to


def test_the_monitors_identity_gives_the_dbt_unit_test_s_answer_for_every_actor_type():
    """The dbt unit test `actor_identity_takes_the_first_known_identifier` (stg_activities, one row per actor type and
    fallback) replayed through the monitors' rendering of the same macro."""
    import yaml

    spec = yaml.safe_load((PROJECT_ROOT / "dbt_project" / "models" / "staging" / "stg_activities.yml").read_text())
    test = next(t for t in spec["unit_tests"] if t["name"] == "actor_identity_takes_the_first_known_identifier")
    rows, expected = test["given"][0]["rows"], {r["activity_id"]: r["actor_identity"] for r in test["expect"]["rows"]}
    columns = ["id", "actor_type", "actor_email_address", "actor_admin_api_key_id", "actor_api_key_id",
               "actor_service_account_id", "ip_address", "raw"]
    conn = duckdb.connect()
    conn.execute("CREATE SCHEMA raw; CREATE TABLE raw.activities (id VARCHAR, actor_type VARCHAR, "
                 "actor_email_address VARCHAR, actor_admin_api_key_id VARCHAR, actor_api_key_id VARCHAR, "
                 "actor_service_account_id VARCHAR, ip_address VARCHAR, raw JSON)")
    conn.executemany("INSERT INTO raw.activities VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                     [[r.get(c) for c in columns] for r in rows])
    got = dict(conn.execute(f"SELECT a.id, {identity_sql('a')} FROM raw.activities a").fetchall())
    assert got == expected
    assert {r["actor_type"] for r in rows} >= {
        "user_actor", "unauthenticated_user_actor", "admin_api_key_actor", "api_actor", "service_account_actor",
        "federated_actor", "scim_directory_sync_actor", "system_actor", "anthropic_actor", "attested_device_actor"}
