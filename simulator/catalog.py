"""Activity type catalog (simulator/data/activity_types.tsv + activity_types_schema.json) and field value synthesis.

- 514 known types; 467 with a full per-field schema (type, optional, nullable, enum, nested fields / variants,
  allowed actor types), 47 newer ones with only the first known field name(s).
- `Synth` makes plausible values for a field from its name and schema type (ids with the right prefixes, filenames,
  emails, URLs, enums, nested objects). Optional fields are sometimes omitted and nullable ones sometimes null.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

DATA = Path(__file__).with_name("data")

ACTOR_TYPES = (
    "user_actor", "api_actor", "admin_api_key_actor", "unauthenticated_user_actor", "anthropic_actor", "system_actor",
    "service_account_actor", "scim_directory_sync_actor", "federated_identity_actor", "federated_actor",
    "attested_device_actor",
)
COMMON_FIELDS = frozenset({"id", "created_at", "organization_id", "organization_uuid", "type"})

B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
# byte -> base58 char (slightly biased; fine for synthetic ids). Used with bytes.translate for speed.
B58_TABLE = bytes(B58[i % 58].encode()[0] for i in range(256))


@dataclass(frozen=True, slots=True)
class FieldSpec:
    name: str
    type: str                 # schema type string, e.g. "string or null", "array of object {}"
    optional: bool
    nullable: bool
    enum: tuple | None
    raw: dict                 # full schema node (nested "fields" / "variants")


@dataclass(frozen=True, slots=True)
class TypeInfo:
    name: str
    description: str
    fields: tuple[FieldSpec, ...]    # type-specific fields only, schema order
    actor_types: tuple[str, ...] | None   # None = not in the schema (summary-only types): any actor
    level: str                       # "full" | "summary" | "list"


def _field_spec(name: str, node: dict) -> FieldSpec:
    t = node.get("type", "string")
    nullable = bool(node.get("nullable")) or t.endswith(" or null")
    enum = tuple(node["enum"]) if node.get("enum") else None
    return FieldSpec(name, t, bool(node.get("optional")), nullable, enum, node)


class Catalog:
    def __init__(self, data_dir: Path = DATA):
        schema = json.loads((data_dir / "activity_types_schema.json").read_text())
        with open(data_dir / "activity_types.tsv", newline="") as fh:
            rows = list(csv.DictReader(fh, delimiter="\t"))
        self.types: list[str] = [r["type"] for r in rows]
        self.info: dict[str, TypeInfo] = {}
        for r in rows:
            t = r["type"]
            node = schema.get(t, {})
            if "fields" in node:
                fields = tuple(_field_spec(k, v) for k, v in node["fields"].items() if k not in COMMON_FIELDS)
                actors = tuple(node.get("actor_types") or ACTOR_TYPES)
                level = "full"
            else:
                names = node.get("known_extra_fields")
                if names is None:
                    names = [f for f in (r.get("extra_fields") or "").split(",") if f][:1]
                # Unknown field types: a string that is sometimes null, never omitted (we only know the name).
                fields = tuple(FieldSpec(f, "string or null", False, False, None, {}) for f in names)
                actors = None
                level = "summary" if names or node.get("source", "").find("summary") >= 0 else "list"
            self.info[t] = TypeInfo(t, r.get("description", ""), fields, actors, level)
        self.type_set = frozenset(self.types)

    def allowed_actors(self, t: str) -> tuple[str, ...]:
        info = self.info.get(t)
        return ACTOR_TYPES if info is None or info.actor_types is None else info.actor_types


# --------------------------------------------------------------------------------------------------------------
# value synthesis

SKILLS = ["pdf-report-builder", "sql-query-reviewer", "brand-voice", "contract-redliner", "data-cleaning",
          "incident-postmortem", "release-notes", "excel-modeler", "pitch-deck", "security-review",
          "api-docs-writer", "onboarding-guide", "meeting-minutes", "translation-qa", "financial-close"]
PLUGINS = ["github-pr-tools", "jira-sync", "commit-commands", "feature-dev", "security-guidance", "pr-review-toolkit",
           "frontend-design", "code-simplifier", "sentry-triage", "terraform-helper", "notion-export", "datadog-ops"]
COMMANDS = ["/review-pr", "/fix-issue", "/write-tests", "/changelog", "/deploy-check", "/explain", "/refactor",
            "/security-scan", "/standup", "/migrate-db", "/lint-fix", "/release"]
MCP_SERVERS = ["github", "linear", "atlassian", "notion", "slack", "sentry", "asana", "google-drive", "salesforce",
               "snowflake", "datadog", "stripe", "postgres-internal", "zendesk", "figma"]
INTEGRATION_TYPES = ["mcp", "mcp_remote", "google_drive", "github", "gmail", "google_calendar", "slack", "ms365"]
REPO_OWNERS = ["northwind-labs", "northwind-research", "nwl-platform", "nwl-data"]
REPOS = ["web-app", "payments-service", "data-pipeline", "mobile-ios", "mobile-android", "infra-terraform",
         "ml-platform", "design-system", "auth-gateway", "billing-engine", "docs-site", "analytics-dbt",
         "search-indexer", "customer-portal", "etl-jobs", "api-gateway"]
TRIGGER_MODES = ["automatic", "manual", "on_mention", "on_pull_request", "scheduled"]
FILE_STEMS = ["Q3-board-deck", "customer-list-2026", "salary-bands", "roadmap-h2", "incident-report", "contract-draft",
              "architecture-overview", "sales-pipeline", "security-audit", "onboarding-checklist", "budget-forecast",
              "meeting-notes", "product-spec", "user-research", "invoice-0423", "vendor-assessment", "api-design",
              "churn-analysis", "pricing-model", "org-chart", "release-plan", "data-dictionary", "test-results",
              "marketing-brief", "legal-memo", "expense-report", "hiring-plan", "okrs-2026", "runbook", "screenshot"]
FILE_EXTS = [".pdf", ".docx", ".xlsx", ".csv", ".pptx", ".md", ".txt", ".png", ".json", ".py", ".sql", ".jpg"]
MODELS = ["claude-opus-4-7", "claude-sonnet-4-6", "claude-haiku-4-5", "claude-opus-4-5", "claude-sonnet-4-5"]
ORG_ROLES = ["user", "admin", "developer", "claude_code_user", "billing", "membership_admin", "owner", "managed"]
PLANS = ["team", "team_premium", "enterprise", "enterprise_premium", "max"]
SEAT_TIERS = ["standard", "premium", "claude_code"]
CONNECTION_TYPES = ["OktaSAML", "AzureSAML", "GoogleSAML", "GenericSAML", "OktaOIDC", "GoogleOAuth"]
ACCESS_LEVELS = ["view", "comment", "edit", "org_view", "org_edit", "private"]
LIMIT_TYPES = ["monthly", "organization", "per_user", "workspace", "daily"]
SCOPE_SETS = [["org:read"], ["org:read", "org:write"], ["workspaces:read", "workspaces:write"],
              ["api_keys:write", "org:read"], ["usage:read", "cost:read"], ["admin"]]
API_SCOPE_SETS = [["messages:write"], ["messages:write", "files:write"], ["batches:write", "messages:write"],
                  ["models:read"]]
GROUPS = ["Engineering", "Sales", "Legal", "Finance", "Data Science", "Support", "Marketing", "Security",
          "Platform", "Executives", "Contractors", "Research"]
EXTERNAL_DOMAINS = ["gmail.com", "outlook.com", "contractor-co.io", "partnerfirm.com", "yahoo.com", "proton.me"]
WORDS = ["alpha", "beacon", "cobalt", "delta", "ember", "falcon", "granite", "harbor", "iris", "juniper", "kestrel",
         "lumen", "meridian", "nova", "onyx", "prism", "quartz", "raven", "summit", "tundra", "umber", "vector",
         "willow", "xenon", "yarrow", "zephyr"]

# field name -> id prefix (contract §11 where known; others follow the same <stem>_01<base58> convention).
ID_PREFIX = {
    "claude_chat_id": "claude_chat_", "claude_file_id": "claude_file_", "claude_project_id": "claude_proj_",
    "claude_project_ids": "claude_proj_", "claude_project_document_id": "claude_proj_doc_",
    "claude_artifact_id": "claude_artifact_", "claude_artifact_version_id": "claude_artifact_version_",
    "claude_chat_snapshot_id": "claude_chat_snapshot_", "claude_published_artifact_id": "claude_pub_artifact_",
    "user_id": "user_", "deleted_user_id": "user_", "requester_user_id": "user_", "submitted_by_user_id": "user_",
    "new_owner_id": "user_", "previous_owner_id": "user_", "invitee_user_id": "user_",
    "invited_rbac_group_ids": "rbac_group_",
    "admin_api_key_id": "apikey_", "api_key_id": "apikey_", "service_key_id": "svckey_",
    "workspace_id": "wrkspc_", "group_id": "rbac_group_", "role_id": "rbac_role_", "member_ids": "user_",
    "session_id": "cse_", "cowork_session_id": "cse_", "agent_id": "agent_", "agent_ids": "agent_",
    "cascaded_agent_ids": "agent_", "cascaded_from_agent_id": "agent_", "skill_id": "skill_", "plugin_id": "plugin_",
    "marketplace_id": "mkt_", "mcp_server_id": "mcpsrv_", "mcp_directory_server_id": "mcpdir_",
    "service_account_id": "svcacct_", "invite_id": "invite_", "scan_id": "scan_", "scan_project_id": "scanproj_",
    "trusted_device_id": "tdev_", "file_id": "file_", "memory_id": "mem_", "memory_store_id": "memstore_",
    "memory_version_id": "memver_", "runner_id": "runner_", "runner_pool_id": "rpool_", "deployment_id": "deploy_",
    "design_project_id": "dproj_", "spend_limit_id": "splim_", "share_id": "share_", "link_id": "link_",
    "tunnel_id": "tunnel_", "tunnel_token_id": "tuntok_", "webhook_id": "whk_", "destination_id": "dest_",
    "credential_id": "cred_", "previous_credential_id": "cred_", "profile_id": "prof_", "rule_id": "rule_",
    "federation_issuer_id": "fediss_", "federation_rule_id": "fedrule_", "oauth_app_id": "oauthapp_",
    "signing_key_id": "sigkey_", "new_signing_key_id": "sigkey_", "old_signing_key_id": "sigkey_",
    "external_key_id": "extkey_", "integration_id": "intg_", "config_id": "cfg_", "ghe_configuration_id": "ghecfg_",
    "gitlab_configuration_id": "glcfg_", "thread_id": "thread_", "environment_id": "env_", "dream_id": "dream_",
    "conversation_id": "claude_chat_", "connection_id": "conn_", "directory_id": "directory_",
    "claude_chat_sync_source_id": "syncsrc_", "claude_project_sync_source_id": "syncsrc_", "command_id": "cmd_",
    "consent_id": "consent_", "verification_id": "verif_", "submission_id": "subm_", "certificate_id": "cert_",
    "token_id": "tok_", "extension_id": "ext_", "lti_platform_id": "lti_", "abuse_session_id": "abs_",
    "spend_limit_increase_request_id": "slir_", "request_id": "req_", "guide_id": "guide_", "source_project_id":
    "claude_proj_", "principal_id": "rbac_role_", "scope_id": "wrkspc_", "resource_id": "res_", "target_id": "res_",
    "entity_id": "res_", "excluded_runner_id": "runner_", "cascade_trigger_credential_id": "cred_",
    "slack_channel_id": "C", "slack_team_id": "T", "github_app_client_id": "Iv1.", "folder_id": "fld_",
}
# Entities shared across types within an hour (a chat created is also viewed / updated).
SHARED_ENTITIES = {"claude_chat_", "claude_file_", "claude_proj_", "claude_proj_doc_", "claude_artifact_",
                   "claude_artifact_version_", "cse_", "agent_", "skill_", "plugin_", "mcpsrv_", "wrkspc_"}

_LITERAL = re.compile(r'^"([^"]*)"( or null)?$')


class Synth:
    """Per-field value synthesis. `ctx` supplies randomness and world lookups:

    ctx.r (random.Random), ctx.entity(prefix) -> id str, ctx.user() -> world User (cached per fragment as
    ctx.scratch["user"]), ctx.world (World), ctx.t (activity type being rendered).
    """

    OMIT_P = 0.12   # optional field omitted
    NULL_P = 0.10   # nullable field null

    def __init__(self) -> None:
        self.name_rules: dict[str, Callable[[Any, FieldSpec], Any]] = self._name_rules()

    # ---- top level --------------------------------------------------------------------------------------------
    def fields(self, info: TypeInfo, ctx, overrides: dict | None = None) -> dict:
        out: dict = {}
        r = ctx.r
        for f in info.fields:
            if overrides and f.name in overrides:
                v = overrides[f.name]
                if v is not OMIT:
                    out[f.name] = v
                continue
            if f.optional and r.random() < self.OMIT_P:
                continue
            if f.nullable and r.random() < self.NULL_P:
                out[f.name] = None
                continue
            out[f.name] = self.value(f.name, f.raw or {"type": f.type}, ctx)
        return out

    def value(self, name: str, node: dict, ctx, depth: int = 0) -> Any:
        t = node.get("type", "string")
        base = t[:-8] if t.endswith(" or null") else t
        r = ctx.r
        if node.get("enum"):
            enum = node["enum"]
            # "unspecified" exists in many enums; real data rarely carries it.
            good = [e for e in enum if e != "unspecified"] or enum
            return r.choice(good)
        m = _LITERAL.match(t)
        if m:
            return m.group(1)
        if "variants" in node:
            variant = r.choice(list(node["variants"].values()))
            obj = self._object(variant, ctx, depth)
            return [obj] if base.startswith("array") else obj
        rule = self.name_rules.get(name)
        if rule is not None and depth == 0:
            return rule(ctx, node)
        if base.startswith("array of object"):
            return [self._object(node.get("fields") or {}, ctx, depth, hint=name) for _ in range(r.randint(1, 2))]
        if base.startswith("object") or base.startswith("map"):
            if node.get("fields"):
                return self._object(node["fields"], ctx, depth)
            if "number" in base:
                return {r.choice(SEAT_TIERS): r.randint(1, 200)}
            return {"source": r.choice(WORDS), "enabled": r.random() < 0.5}
        if base.startswith("array of string"):
            if name.endswith("_ids"):
                return [ctx.entity(ID_PREFIX.get(name, name[:-4] + "_")) for _ in range(r.randint(1, 3))]
            if "email" in name:
                return [self._email(ctx) for _ in range(r.randint(1, 2))]
            if "url" in name:
                return [f"https://docs.{r.choice(WORDS)}.example.com/" for _ in range(r.randint(1, 2))]
            return [r.choice(WORDS) for _ in range(r.randint(1, 3))]
        if base.startswith("boolean"):
            return r.random() < 0.5
        if base.startswith("number"):
            return self._number(name, r)
        return self._string(name, ctx)

    def _object(self, fields: dict, ctx, depth: int, hint: str = "") -> dict:
        if depth > 3:
            return {}
        out = {}
        for k, node in fields.items():
            if node.get("optional") and ctx.r.random() < 0.3:
                continue
            out[k] = self.value(k, node, ctx, depth + 1)
        if not fields:
            if hint in ("updates",):
                return {"field": ctx.r.choice(WORDS), "previous_value": None, "new_value": ctx.r.choice(WORDS)}
            return {"type": ctx.r.choice(WORDS), "id": ctx.entity("res_")}
        return out

    # ---- leaf values --------------------------------------------------------------------------------------------
    @staticmethod
    def _number(name: str, r) -> int | float:
        if "usd" in name or "amount" in name:
            return r.choice([100, 250, 500, 1000, 2500, 5000, 10000])
        if name.endswith("_ms"):
            return r.choice([500, 1000, 2000, 5000])
        if "percentage" in name:
            return r.choice([5, 10, 25, 50, 100])
        if name == "port" or name.endswith("_port"):
            return r.choice([443, 8443, 3000, 8080])
        if "count" in name or "seats" in name or "quantity" in name:
            return r.randint(1, 60)
        return r.randint(1, 20)

    def _email(self, ctx) -> str:
        r = ctx.r
        if r.random() < 0.7:
            return ctx.user().email
        return f"{r.choice(WORDS)}.{r.choice(WORDS)}@{r.choice(EXTERNAL_DOMAINS)}"

    def _string(self, name: str, ctx) -> str:
        r = ctx.r
        if name in ID_PREFIX:
            return ctx.entity(ID_PREFIX[name])
        if name.endswith("_id"):
            return ctx.entity(name[:-3] + "_")
        if "email" in name:
            return self._email(ctx)
        if name.endswith("_url") or name == "url":
            return f"https://{r.choice(WORDS)}.northwind-labs.com/hooks/{r.randint(1, 999)}"
        if name.endswith("_at") or name.endswith("_date"):
            return f"2026-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}T{r.randint(0, 23):02d}:00:00Z"
        if "checksum" in name or "hash" in name or "fingerprint" in name:
            return "%064x" % r.getrandbits(256)
        if "jti" in name or "uuid" in name:
            return "%08x-%04x-4%03x-a%03x-%012x" % (r.getrandbits(32), r.getrandbits(16), r.getrandbits(12),
                                                   r.getrandbits(12), r.getrandbits(48))
        if "role" in name:
            return r.choice(ORG_ROLES)
        if "seat_tier" in name:
            return r.choice(SEAT_TIERS)
        if name.endswith("model"):
            return r.choice(MODELS)
        if "name" in name or name in ("label", "title", "slug"):
            return f"{r.choice(WORDS)}-{r.choice(WORDS)}"
        if "mode" in name or "policy" in name or "permission" in name:
            return r.choice(["enabled", "disabled", "restricted", "allow", "ask"])
        if "version" in name:
            return f"{r.randint(0, 4)}.{r.randint(0, 20)}.{r.randint(0, 9)}"
        if "domain" in name or "hostname" in name:
            return r.choice(["northwind-labs.com", "nwl.io", "ghe.northwind-labs.com", "research.northwind-labs.com"])
        if "issuer" in name:
            return r.choice(["https://token.actions.githubusercontent.com", "https://northwind.okta.com",
                             "https://accounts.google.com"])
        if "reason" in name or "message" in name or "description" in name:
            return r.choice(["policy update", "requested by security", "cleanup", "quarterly review", "offboarding"])
        return r.choice(WORDS)

    def _name_rules(self) -> dict:
        def pick(seq):
            return lambda ctx, node: ctx.r.choice(seq)

        def filename(ctx, node):
            r = ctx.r
            return r.choice(FILE_STEMS) + (f"-v{r.randint(2, 5)}" if r.random() < 0.2 else "") + r.choice(FILE_EXTS)

        def user_id(ctx, node):
            return ctx.user().id

        def user_email(ctx, node):
            return ctx.user().email

        def repository_name(ctx, node):
            return f"{ctx.r.choice(REPO_OWNERS)}/{ctx.r.choice(REPOS)}"

        def scopes(ctx, node):
            if ctx.t in ("api_key_created", "scoped_api_key_deleted"):
                return list(ctx.r.choice(API_SCOPE_SETS))
            return list(ctx.r.choice(SCOPE_SETS))

        def invited_email(ctx, node):
            r = ctx.r
            if r.random() < 0.6:
                return f"{r.choice(WORDS)}.{r.choice(WORDS)}{r.randint(1, 99)}@northwind-labs.com"
            return f"{r.choice(WORDS)}.{r.choice(WORDS)}@{r.choice(EXTERNAL_DOMAINS)}"

        def status(ctx, node):
            if ctx.t == "claude_code_review_repository_updated":
                return ctx.r.choice(["active", "paused", "disabled"])
            if ctx.t == "platform_signing_key_created":
                return "active"
            return ctx.r.choice(["submitted", "in_review", "approved", "rejected"])

        def group_name(ctx, node):
            return ctx.r.choice(GROUPS)

        def display_name(ctx, node):
            return f"{ctx.r.choice(WORDS).title()} {ctx.r.choice(['runner pool', 'agent', 'profile', 'credential'])}"

        return {
            "filename": filename, "user_id": user_id, "user_email": user_email,
            "skill_name": pick(SKILLS), "plugin_name": pick(PLUGINS), "command_name": pick(COMMANDS),
            "mcp_server_name": pick(MCP_SERVERS), "mcp_directory_server_name": pick(MCP_SERVERS),
            "integration_type": pick(INTEGRATION_TYPES), "repository_name": repository_name,
            "repo_owner": pick(REPO_OWNERS), "repo_name": pick(REPOS), "repo": repository_name,
            "trigger_mode": pick(TRIGGER_MODES), "connection_type": pick(CONNECTION_TYPES),
            "access_level": pick(ACCESS_LEVELS), "previous_access_level": pick(ACCESS_LEVELS),
            "invited_email": invited_email, "invitee_email": invited_email,
            "invited_role": pick(["user", "user", "user", "developer", "admin", "claude_code_user"]),
            "previous_role": pick(ORG_ROLES), "current_role": pick(ORG_ROLES),
            "plan_type": pick(PLANS), "new_plan": pick(PLANS), "old_plan": pick(PLANS),
            "billing_interval": pick(["monthly", "annual"]),
            "seat_count": lambda ctx, node: ctx.r.choice([25, 50, 100, 150, 250, 500, 1000]),
            "added_seats": lambda ctx, node: ctx.r.choice([1, 5, 10, 25, 50]),
            "new_quantity": lambda ctx, node: ctx.r.choice([50, 100, 150, 250, 300, 500]),
            "previous_quantity": lambda ctx, node: ctx.r.choice([25, 50, 100, 200]),
            "amount": lambda ctx, node: ctx.r.choice([50, 100, 200, 500, 1000, 2500, 5000]),
            "limit_type": pick(LIMIT_TYPES), "scopes": scopes, "status": status,
            "model": pick(MODELS), "default_model": pick(MODELS), "previous_model": pick(MODELS),
            "group_name": group_name, "role_name": pick(["Project Admin", "Billing Viewer", "Security Auditor",
                                                         "Workspace Developer", "Read Only"]),
            "display_name": display_name, "service_name": pick(["ci-bot", "data-sync", "support-triage", "etl"]),
            "key_name": pick(["prod-signing", "ci-deploy", "backend-prod", "analytics"]),
            "api_key_name": pick(["backend-prod", "staging", "notebook", "ci"]),
            "tool_name": pick(["web_search", "code_execution", "bash", "str_replace_based_edit_tool", "web_fetch"]),
            "provider": pick(["google_drive", "github", "onedrive", "confluence"]),
            "organization_name": pick(["Northwind Labs", "Northwind Research", "Northwind Platform"]),
            "taint": pick(["abuse_review", "payment_risk", "legal_hold"]),
            "artifact_type": pick(["text/markdown", "application/vnd.ant.code", "text/html",
                                   "application/vnd.ant.react"]),
            "surface": pick(["claude_ai", "claude_code", "cowork", "api"]),
            "source": pick(["github_cli", "gh_token", "manual"]),
            "github_username": lambda ctx, node: f"{ctx.r.choice(WORDS)}-{ctx.r.choice(WORDS)}",
            "hostname": pick(["ghe.northwind-labs.com", "github.nwl.io"]),
            "domain": pick(["northwind-labs.com", "nwl.io", "research.northwind-labs.com"]),
            "action": lambda ctx, node: ctx.r.choice(["created", "updated", "set", "shared", "allow", "deny"]),
            "outcome": pick(["success", "success", "success", "failure"]),
            "managed_auth_mode": pick(["oauth_token_exchange", "jwt_bearer", "none"]),
            "credential_type": pick(["runner_token", "session_token"]),
            "limit_action": pick(["block", "alert"]),
            "request_type": pick(["plugin_install", "connector_enable", "seat_upgrade", "model_access"]),
            # fields of the summary-only types (no schema type known): plausible JSON types by name
            "enabled": lambda ctx, node: ctx.r.random() < 0.6,
            "applies_to_all_workspaces": lambda ctx, node: ctx.r.random() < 0.3,
            "resource_count": lambda ctx, node: ctx.r.randint(1, 40),
            "step": pick(["configure_sso", "invite_members", "set_data_retention", "enable_compliance_api",
                          "connect_directory", "review_model_access"]),
            "organization_role": pick(["user", "developer", "admin"]),
            "fail_mode": pick(["open", "closed"]),
        }


class _Omit:
    def __repr__(self) -> str:
        return "OMIT"


OMIT = _Omit()   # override value meaning "leave this field out"
