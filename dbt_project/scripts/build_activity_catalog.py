"""Build seeds/activity_catalog.csv: every known activity type -> category, dashboards, resource kind, action, outcome.

Inputs (all committed):
  simulator/data/activity_types.tsv   the 514 known types (a copy of the Compliance API reference list)
  dbt_project/seeds/activity_type_rules.csv
                                      the selection column of product/dashboards.md as glob patterns, plus
                                      category-only rules for types no dashboard names
  dbt_project/seeds/activity_outcome_rules.csv
                                      outcome by action (failure: failed/denied/rejected/invalid/blocked; unknown:
                                      initiated/attempted/requested; any other action is a success)

The outcome of each type ends up in the catalog seed only (docs/outcomes.md explains it per type family). The same
outcome rules seed classifies *unknown* types at run time (model int_activity_types).

The same type rules classify *unknown* types at run time (model int_activity_types), so a type added to the API
next week lands where this script would have put it. Run after editing either input, then review the diff:

    .venv/bin/python dbt_project/scripts/build_activity_catalog.py          # rewrite the seed
    .venv/bin/python dbt_project/scripts/build_activity_catalog.py --check  # exit 1 if the seed is stale (CI)
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from fnmatch import fnmatchcase
from pathlib import Path

DBT_DIR = Path(__file__).resolve().parents[1]
ROOT = DBT_DIR.parent
TSV = ROOT / "simulator" / "data" / "activity_types.tsv"
RULES = DBT_DIR / "seeds" / "activity_type_rules.csv"
DASHBOARDS = DBT_DIR / "seeds" / "dashboards.csv"
OUTCOME_RULES = DBT_DIR / "seeds" / "activity_outcome_rules.csv"
OUT = DBT_DIR / "seeds" / "activity_catalog.csv"

# Outcome decided per row from a field (macro activity_outcome): status codes, result enums, failure flags, the
# `approved` flag of a decision.
DERIVED_OUTCOME = {"compliance_api_accessed", "github_token_import", "org_external_key_validated",
                   "ccr_agent_proxy_network_events_listed", "mcp_server_managed_auth_token_exchanged",
                   "org_join_proposal_decided"}
# Types whose success is not knowable from the record (an opaque `status` object).
UNKNOWN_OUTCOME = {"platform_app_attest_authentication", "platform_federated_authentication"}
# Failures whose action word does not say so (descriptions: "proceeded uninspected", "tripped after endpoint
# failures", "Failed bulk ... delete").
FAILURE_TYPES = {"inference_hooks_request_failed_open", "inference_hooks_circuit_breaker_tripped",
                 "claude_project_document_bulk_deletion_audit_truncated",
                 "claude_project_file_bulk_deletion_audit_truncated"}

# Names whose last token is not the verb.
ACTION_OVERRIDES = {
    "user_logged_out": ("user", "logged_out"),
    "github_token_import": ("github_token", "imported"),
    "platform_app_attest_authentication": ("platform_app_attest", "authenticated"),
    "platform_federated_authentication": ("platform_federation", "authenticated"),
    "org_user_invite_re_sent": ("user_invite", "resent"),
    "inference_hooks_request_failed_open": ("inference_hooks_request", "failed"),
    "seat_tiers_purchased": ("seat_tier", "purchased"),
    "org_deleted_via_bulk": ("org", "deleted"),
    "org_creation_blocked": ("org_creation", "blocked"),
    "sso_second_factor_magic_link": ("sso_second_factor", "requested"),
    "platform_billing_upgraded_to_prepaid": ("platform_billing", "upgraded"),
    "desktop_extension_removed_from_allowlist": ("desktop_extension", "removed_from_allowlist"),
    "lti_launch_success": ("lti_launch", "succeeded"),
}
# Qualifiers dropped from the resource when they sit before the verb ("claude_file_access_failed" -> file, failed).
VERB_QUALIFIERS = {"access", "deletion", "addition", "removal", "sharing", "instant", "bulk"}


def load_outcome_rules() -> dict[str, str]:
    """{action: outcome} of seeds/activity_outcome_rules.csv (actions not listed are successes)."""
    with open(OUTCOME_RULES, newline="") as fh:
        return {r["action"]: r["outcome"] for r in csv.DictReader(fh)}


def outcome_of(event_type: str, action: str, outcome_rules: dict[str, str]) -> str:
    """`derived` (decided per record by the macro activity_outcome), else by type, else by its action."""
    if event_type in DERIVED_OUTCOME:
        return "derived"
    if event_type in UNKNOWN_OUTCOME:
        return "unknown"
    if event_type in FAILURE_TYPES:
        return "failure"
    return outcome_rules.get(action, "success")


def resource_and_action(event_type: str) -> tuple[str, str]:
    """Generic split (mirrored for unknown types by the dbt macro `resource_kind_and_action`)."""
    if event_type in ACTION_OVERRIDES:
        return ACTION_OVERRIDES[event_type]
    tokens = event_type.split("_")
    action = tokens[-1]
    rest = tokens[:-1]
    if action == "updated" and rest and rest[-1] == "sharing":
        action = "shared"
    while len(rest) > 1 and rest[-1] in VERB_QUALIFIERS:
        rest = rest[:-1]
    resource = "_".join(rest) or event_type
    for prefix in ("claude_", "org_"):
        if resource.startswith(prefix) and len(resource) > len(prefix):
            resource = resource[len(prefix):]
            break
    return resource, action


def load_rules() -> list[dict]:
    with open(RULES, newline="") as fh:
        rules = list(csv.DictReader(fh))
    for r in rules:
        r["rule_order"] = int(r["rule_order"])
        r["fallback"] = r["fallback"].strip().lower() == "true"
    return sorted(rules, key=lambda r: r["rule_order"])


def load_precedence() -> dict[str, tuple[int, str]]:
    with open(DASHBOARDS, newline="") as fh:
        return {r["dashboard"]: (int(r["category_precedence"]), r["category"])
                for r in csv.DictReader(fh) if r["category_precedence"]}


def classify(event_type: str, rules: list[dict], precedence: dict) -> tuple[list[str], str, bool]:
    """(dashboards, category, is_reconnaissance); same semantics as the SQL of int_activity_types."""
    matched = [r for r in rules if fnmatchcase(event_type, r["pattern"])]
    specific = [r["dashboard"] for r in matched if r["dashboard"] and not r["fallback"]]
    dashboards = specific or [r["dashboard"] for r in matched if r["dashboard"] and r["fallback"]]
    dashboards = sorted(set(dashboards), key=lambda d: precedence[d][0])
    if dashboards:
        category = precedence[dashboards[0]][1]
    else:
        category = next((r["category"] for r in matched if r["category"]), "uncategorized")
    recon = any(r["note"] == "reconnaissance" for r in matched)
    return dashboards, category, recon


def build() -> str:
    rules, precedence, outcome_rules = load_rules(), load_precedence(), load_outcome_rules()
    with open(TSV, newline="") as fh:
        types = list(csv.DictReader(fh, delimiter="\t"))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["event_type", "category", "dashboards", "resource_kind", "action", "outcome",
                     "is_reconnaissance", "description"])
    for row in sorted(types, key=lambda r: r["type"]):
        t = row["type"]
        dashboards, category, recon = classify(t, rules, precedence)
        resource, action = resource_and_action(t)
        writer.writerow([t, category, " ".join(dashboards), resource, action, outcome_of(t, action, outcome_rules),
                         str(recon).lower(), row["description"].strip()])
    return out.getvalue()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="fail if the committed seed differs")
    args = parser.parse_args()
    text = build()
    if args.check:
        if OUT.read_text() != text:
            print(f"{OUT} is stale: run {Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text)
    rows = list(csv.DictReader(io.StringIO(text)))
    no_dashboard = sum(1 for r in rows if not r["dashboards"])
    print(f"wrote {OUT.relative_to(ROOT)}: {len(rows)} types, {no_dashboard} only in activity_overview")
    return 0


if __name__ == "__main__":
    sys.exit(main())
