"""Deterministic activity generation per hour bucket, planted monitor incidents and malformed records.

Determinism: hour H is a pure function of (config, H). Two independent random streams per hour:
- the *skeleton* stream decides how many records, their types, times, ids, actors, lags and malformed reasons
  (everything the ground truth needs, cheap to compute);
- the *render* stream decides field values and serialises JSON (only needed to serve the records).
Planted incidents and the daily coverage events come from a per-day plan (a pure function of (config, day)).

Clean background traffic never fires a monitor of monitors.md:
- monitor-only types (admin/platform key creation, IP restriction deletion, org destructive types,
  `anonymous_mobile_login_attempted`) appear only in planted incidents;
- failed sign-ins: at most 1 per user per hour (<= 2 in any 15 min), always with the user's email;
- resource deletions: user actors only, at most 2 per user per hour (floor of monitor 8 is 5);
- 401/403 compliance calls: at most 1 per key per hour;
- `org_compliance_api_settings_updated` only with true/omitted values; no embargoed IPs (users' home countries
  exclude them); `unauthenticated_user_actor` only on the sign-in flow types excluded by monitor 9.
"""

from __future__ import annotations

import bisect
import gc
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import NamedTuple

import orjson

from simulator.catalog import (B58_TABLE, OMIT, SHARED_ENTITIES, Catalog, Synth)
from simulator.config import DAY_US, HOUR_US, US, SimConfig, from_us, iso_us
from simulator.world import (COUNTRIES, SCANNER_UAS, TZ_OFFSET, User, World, b58id, browser_ua, rng_for)

MIN_US = 60 * US


class ActivityRecord(NamedTuple):
    """One feed item. A tuple so that sorting / bisecting on (created_us, id) is native and construction is cheap."""
    created_us: int           # sort key part 1 (the created_at the record is indexed under)
    id: str                   # sort key part 2 (for malformed records a synthetic key id is still here)
    indexed_us: int           # visible when indexed_us <= now_us
    type: str | None
    organization_id: str | None
    organization_uuid: str | None
    actor_id: str | None      # actor.user_id for user actors, else None
    json: bytes               # exact serialized item (may be malformed on purpose)


_new_record = tuple.__new__

# ---- monitor type sets (monitors.md defaults) ------------------------------------------------------------------
M1_TYPES = ("admin_api_key_created", "platform_api_key_created")
M3_TYPES = ("org_ip_restriction_deleted",)
M5_TYPES = ("sso_login_failed", "magic_link_login_failed", "step_up_authentication_failed")
M7_TYPES = ("org_deletion_requested", "org_bulk_delete_initiated", "org_deleted_via_bulk", "org_user_deleted",
            "org_taint_added")
M8_TYPES = ("claude_chat_deleted", "claude_project_deleted", "claude_file_deleted", "claude_project_file_deleted",
            "claude_project_document_deleted")
SIGNIN_FLOW = frozenset({"sso_login_initiated", "sso_login_failed", "sso_login_succeeded", "magic_link_login_initiated",
                         "magic_link_login_failed", "magic_link_login_succeeded", "phone_code_sent",
                         "phone_code_verified", "sso_second_factor_magic_link", "social_login_succeeded"})
# Types of the peers' rules that fire on a single event (pipeline/monitors/config.py PEER_RULES): planted only, so
# that background traffic never fires them.
PEER_PLANTED_ONLY = ("role_assignment_granted", "primary_owner_transferred", "org_sso_toggled",
                     "org_sso_connection_deactivated", "org_sso_connection_deleted",
                     "org_magic_link_second_factor_toggled", "admin_api_key_deleted", "service_key_created",
                     "service_key_revoked", "mcp_server_created", "org_data_export_started")
PLANTED_ONLY = frozenset(M1_TYPES + M3_TYPES + M7_TYPES + PEER_PLANTED_ONLY + ("anonymous_mobile_login_attempted",))
CAPPED_AUTH = frozenset(M5_TYPES)
CAPPED_DELETE = frozenset(M8_TYPES)
# Covered every day by planted incidents / near misses, so the coverage pass leaves them alone (keeps caps exact).
COVERED_BY_PLAN = PLANTED_ONLY | CAPPED_AUTH | CAPPED_DELETE | {"org_compliance_api_settings_updated"}

# Events not tied to an org (contract §3: sign-in, sign-out, Compliance API calls).
NULL_ORG_TYPES = frozenset(SIGNIN_FLOW | {"user_logged_out", "compliance_api_accessed",
                                          "anonymous_mobile_login_attempted", "abuse_decision_received",
                                          "age_verified"})
CONSOLE_PREFIXES = ("platform_", "api_key_", "admin_api_key_", "scoped_api_key_", "service_key_", "workspace_",
                    "service_created", "service_deleted")
CODE_PREFIXES = ("claude_code_", "ccr_", "claude_command_", "cowork_")

UNKNOWN_TYPES = {
    "claude_hologram_created": lambda r: {"hologram_id": "holo_01" + b58id(r), "resolution": r.choice(["4k", "8k"])},
    "claude_teleport_session_started": lambda r: {"session_id": "cse_01" + b58id(r), "destination": "mars-base-1"},
    "org_quantum_policy_updated": lambda r: {"policy": {"entanglement": r.random() < 0.5}, "qubits": 128},
}
UNKNOWN_EXTRA_FIELDS = [("client_platform", "web"), ("request_region", "us-east-1"), ("risk_score", 0.12),
                        ("experiment_flags", ["fast_path", "new_ui"])]

# Relative background weights; every other known type gets DEFAULT_WEIGHT. Chat / Claude Code usage dominates.
WEIGHTS = {
    "claude_chat_viewed": 16, "claude_chat_created": 9, "claude_chat_updated": 5, "claude_chat_settings_updated": 0.3,
    "claude_chat_snapshot_created": 0.3, "claude_chat_snapshot_viewed": 0.4, "claude_chat_access_failed": 0.1,
    "claude_chat_deleted": 0.6, "claude_chat_deletion_failed": 0.02, "claude_file_uploaded": 3,
    "claude_file_viewed": 3.5, "claude_file_exported": 0.2, "claude_file_deleted": 0.15,
    "claude_file_access_failed": 0.05, "claude_artifact_created": 2, "claude_artifact_viewed": 2.5,
    "claude_artifact_published": 0.05, "claude_artifact_sharing_updated": 0.1, "claude_project_viewed": 3,
    "claude_project_created": 0.3, "claude_project_document_uploaded": 0.8, "claude_project_document_viewed": 1.2,
    "claude_project_file_uploaded": 0.4, "claude_project_deleted": 0.03, "claude_project_document_deleted": 0.1,
    "claude_project_file_deleted": 0.05, "claude_project_sharing_updated": 0.1,
    "ccr_session_created": 2.5, "ccr_session_updated": 4, "cowork_session_updated": 3,
    "claude_code_user_settings_updated": 0.8, "claude_code_user_memory_updated": 1.2,
    "claude_code_team_memory_updated": 0.4, "claude_code_user_plugins_updated": 0.3,
    "claude_code_user_marketplaces_updated": 0.1, "claude_command_created": 0.2, "claude_command_replaced": 0.1,
    "platform_agent_session_created": 0.8, "platform_agent_session_updated": 1.2,
    "platform_agent_deployment_run_triggered": 0.3,
    "sso_login_initiated": 2.8, "sso_login_succeeded": 2.5, "magic_link_login_initiated": 0.5,
    "magic_link_login_succeeded": 0.45, "social_login_succeeded": 0.3, "user_logged_out": 0.7,
    "sso_login_failed": 0.12, "magic_link_login_failed": 0.04, "step_up_authentication_succeeded": 0.2,
    "step_up_authentication_failed": 0.02, "phone_code_sent": 0.08, "phone_code_verified": 0.08,
    "session_revoked": 0.05, "sso_second_factor_magic_link": 0.03,
    "compliance_api_accessed": 3.0,
    "mcp_server_managed_auth_token_exchanged": 0.4, "integration_user_connected": 0.08,
    "integration_user_disconnected": 0.02, "claude_gdrive_integration_updated": 0.05,
    "claude_github_integration_updated": 0.05, "claude_skill_enabled": 0.08, "claude_skill_created": 0.04,
    "claude_plugin_enabled": 0.06, "platform_file_uploaded": 0.4, "platform_file_content_downloaded": 0.4,
    "platform_usage_report_messages_viewed": 0.05, "scim_user_updated": 0.25, "scim_user_created": 0.04,
    "scim_user_deleted": 0.02, "org_users_listed": 0.05, "group_viewed": 0.05, "group_member_list_viewed": 0.03,
    "org_user_viewed": 0.05, "session_share_created": 0.05, "session_share_accessed": 0.1,
    "design_project_viewed": 0.1, "org_compliance_api_settings_updated": 0.01,
}
DEFAULT_WEIGHT = 0.012
UNKNOWN_TYPE_WEIGHT = 0.02

# Local-hour activity shape (weekday); weekends scaled by WEEKEND_FACTOR.
LOCAL_SHAPE = [0.10, 0.06, 0.04, 0.03, 0.03, 0.05, 0.15, 0.40, 0.80, 1.20, 1.40, 1.40, 1.10, 1.30, 1.40, 1.35,
               1.20, 0.90, 0.60, 0.45, 0.40, 0.35, 0.25, 0.15]
WEEKEND_FACTOR = 0.3

MALFORMED_REASONS = ("missing_id", "bad_created_at", "not_an_object", "outside_window")

API = "https://api.anthropic.com"


def hour_code(h: int) -> bytes:
    """4 base58 chars encoding the hour index, so an activity id tells which hour bucket holds it."""
    out = bytearray(4)
    for i in range(3, -1, -1):
        h, rem = divmod(h, 58)
        out[i] = B58_TABLE[rem]
    return bytes(out)


def hour_of_id(activity_id: str) -> int | None:
    """Inverse of hour_code for ids made by this simulator ("activity_01" + code + 20 chars)."""
    if len(activity_id) != 35 or not activity_id.startswith("activity_01"):
        return None
    h = 0
    for ch in activity_id[11:15]:
        v = _B58_INDEX.get(ch)
        if v is None:
            return None
        h = h * 58 + v
    return h


_B58_INDEX = {chr(c): i for i, c in enumerate(B58_TABLE[:58])}


# ---- small helpers -----------------------------------------------------------------------------------------------
class _Ctx:
    """Value-synthesis context for one hour (render stream)."""
    __slots__ = ("r", "world", "t", "scratch", "entities", "ent_size")

    def __init__(self, r, world: World, ent_size: int):
        self.r = r
        self.world = world
        self.t = ""
        self.scratch: dict = {}
        self.entities: dict[str, list[str]] = {}
        self.ent_size = ent_size

    def entity(self, prefix: str) -> str:
        if prefix in SHARED_ENTITIES:
            pool = self.entities.get(prefix)
            if pool is None:
                raw = self.r.randbytes(24 * self.ent_size).translate(B58_TABLE).decode()
                pool = self.entities[prefix] = [f"{prefix}01{raw[i:i + 24]}" for i in range(0, len(raw), 24)]
            return pool[int(self.r.random() * len(pool))]
        if len(prefix) <= 4 and prefix[:1].isupper():     # Slack style ids (C0123ABC, T0123ABC)
            return prefix + "%09X" % self.r.getrandbits(36)
        return f"{prefix}01{b58id(self.r)}"

    def user(self) -> User:
        u = self.scratch.get("user")
        if u is None:
            users = self.world.users
            u = self.scratch["user"] = users[int(self.r.random() * len(users))]
        return u


@dataclass
class Incident:
    id: str
    monitor: str
    should_fire: bool
    kind: str               # "incident" | "near_miss"
    variant: str
    group_key: str | None
    records: list = field(default_factory=list)
    extra: dict = field(default_factory=dict)
    history: list = field(default_factory=list)    # earlier events of the same (fresh) actor, e.g. a baseline

    def manifest(self, gte_us: int | None = None) -> dict:
        """Manifest entry. For a deletion-outlier item with a baseline history, the truth depends on how much of
        that history a pipeline evaluating from `gte_us` can see, so it is recomputed for that range."""
        recs = sorted(self.records)
        should_fire, kind, variant = self.should_fire, self.kind, self.variant
        if self.history and gte_us is not None and self.history[0].created_us < gte_us:
            if _outlier_fires(self.history, recs, gte_us):
                should_fire, kind, variant = True, "incident", variant + "_history_not_in_range"
        d = {"id": self.id, "monitor": self.monitor, "should_fire": should_fire, "kind": kind,
             "variant": variant, "group_key": self.group_key, "activity_ids": [r.id for r in recs],
             "first_event": iso_us(recs[0].created_us), "last_event": iso_us(recs[-1].created_us)}
        d.update(self.extra)
        return d

    @property
    def first_us(self) -> int:
        return min(r.created_us for r in self.records)

    @property
    def last_indexed_us(self) -> int:
        return max(r.indexed_us for r in self.records)


def _outlier_fires(history: list, records: list, gte_us: int) -> bool:
    """Monitor 8 for one actor whose only activity is `history` + `records` (all in one hour), as seen by a
    pipeline holding data from gte_us on: count >= 5 and (history < 24 h -> floor alone, else > mean + 2 sigma)."""
    seen = [r.created_us // HOUR_US for r in history if r.created_us >= gte_us]
    hour = records[0].created_us // HOUR_US
    first = min(seen + [hour])
    if len(records) < 5:
        return False
    if hour - first < 24:
        return True
    counts = [0] * (hour - max(first, hour - 720))
    base = hour - len(counts)
    for h in seen:
        if h >= base:
            counts[h - base] += 1
    mean = sum(counts) / len(counts)
    sd = (sum((c - mean) ** 2 for c in counts) / len(counts)) ** 0.5
    return len(records) > mean + 2 * sd


@dataclass
class DayPlan:
    day: int
    incidents: list[Incident]
    planted_by_hour: dict[int, list[ActivityRecord]]     # includes history events placed in the previous day
    coverage_by_hour: dict[int, list[tuple]]             # (offset_us_in_hour, type, actor_kind, extra_fields|None)


@dataclass
class HourBucket:
    hour: int
    records: list[ActivityRecord]
    malformed: dict[str, str]           # record id -> reason
    _ids: dict | None = None

    def id_index(self) -> dict[str, int]:
        if self._ids is None:
            self._ids = {r[1]: r[0] for r in self.records}
        return self._ids


@dataclass
class Skeleton:
    """What the ground truth needs about one hour, as parallel columns sorted by (created_us, id)."""
    hour: int
    created: list[int]
    ids: list[str]
    indexed: list[int]
    types: list[str | None]
    bad: list[str | None]      # malformed reason or None

    @property
    def rows(self) -> list[tuple]:
        return list(zip(self.created, self.ids, self.indexed, self.types, self.bad))


_TAB3 = [b"%03d" % i for i in range(1000)]
_SLOT = "@@entity-slot@@"
_SLOT_BYTES = b'"@@entity-slot@@"'


def _entity_pool(r, prefix: str, size: int) -> list[bytes]:
    """`size` JSON-quoted ids '"<prefix>01<24 base58>"' from the render stream."""
    raw = r.randbytes(24 * size).translate(B58_TABLE)
    head = b'"' + prefix.encode() + b"01"
    return [head + raw[i:i + 24] + b'"' for i in range(0, 24 * size, 24)]


class _RenderState:
    """Slow-path rendering of one hour (non-user actors, forced fields, malformed records, compliance calls)."""

    def __init__(self, gen: "Generator", hour: int, r, ctx: _Ctx):
        self.gen = gen
        self.w = gen.world
        self.r = r
        self.rnd = r.random
        self.ctx = ctx
        self.hour_start = hour * HOUR_US
        ts_prefix = from_us(self.hour_start).strftime("%Y-%m-%dT%H:").encode()
        self.ts_tab = [b"%s%02d:%02d." % (ts_prefix, s // 60, s % 60) for s in range(3600)]
        self.sec_tab = [b'","created_at":"' + x for x in self.ts_tab]
        self.tinfo: dict = {}
        self.comp = None
        self.unauth_used: set = set()
        self.malformed: dict[str, str] = {}

    def render_one(self, k, types, created, ids, picks, kinds, indexed, bad, fk, utab) -> ActivityRecord:
        gen, w, rnd = self.gen, self.w, self.rnd
        t = types[k]
        kind = kinds[k]
        tp, mode, fl = self.tinfo[t]
        f = fk[k]
        if kind == "user_web" or kind == "user_code":
            ui = picks[k]
            if f is None or f[2] is None:
                ident, to_console, to_claude = gen._remaps
                if mode == 2:
                    ui = to_console[ui]
                elif mode == 0 and t not in CAPPED_AUTH and t not in CAPPED_DELETE:
                    ui = to_claude[ui]
            webs, codes, actor_id, org, ofrag = utab[ui]
            acts = webs if kind == "user_web" else codes
            actor = acts[int(rnd() * len(acts))]
        else:
            actor, org, actor_id = gen._other_actor(kind, picks[k], rnd, self.r)
            ofrag = None
        if mode == 1:
            ofrag = w.null_org_fragment
            org = None
        elif ofrag is None:
            if org is None:
                org = w.console_org if mode == 2 else w.main_org
            ofrag = w.org_fragment[org.uuid]
        if f is not None and f[3] is not None:
            tail = tp + b"," + orjson.dumps(f[3])[1:-1] + b"}"
        elif fl is not None:
            before, pool, after = fl[int(rnd() * len(fl))]
            tail = before + pool[int(rnd() * len(pool))] + after
        else:
            kid = actor[actor.index(b'"api_key_id":"') + 14:].split(b'"', 1)[0]
            st, body = self.comp[int(rnd() * len(self.comp))]
            if st == 401 or st == 403:
                if kid in self.unauth_used:
                    body = self.comp[0][1]
                else:
                    self.unauth_used.add(kid)
            tail = tp + body + b"}"
        if f is not None and f[1]:
            tail = tail[:-1] + b"," + orjson.dumps(f[1])[1:-1] + b"}"
        cu = created[k]
        sec, us = divmod(cu - self.hour_start, 1_000_000)
        rid = ids[k]
        reason = bad[k]
        if reason is None:
            js = b"".join((b'{"id":"', rid.encode(), self.sec_tab[sec], b"%06d" % us, b'Z",', ofrag, b'"actor":',
                           actor, tail))
        else:
            ts = self.ts_tab[sec] + b"%06dZ" % us
            js = gen._malformed_json(reason, rid, ts, cu, ofrag, actor, b"", tail[:-1], self.r)
            self.malformed[rid] = reason
            if reason == "not_an_object":
                t = None
        if org is None:
            return _new_record(ActivityRecord, (cu, rid, indexed[k], t, None, None, actor_id, js))
        return _new_record(ActivityRecord, (cu, rid, indexed[k], t, org.id, org.uuid, actor_id, js))


class Generator:
    def __init__(self, config: SimConfig, catalog: Catalog | None = None, world: World | None = None,
                 chat_source=None):
        self.config = config
        self.catalog = catalog or Catalog()
        self.world = world or World(config)
        # Optional simulator.chats.ChatStore: its chat lifecycle (created / renamed / soft-deleted) is mirrored in
        # the feed so activity chat ids match the chats data. Deterministic, independent of API hard deletes.
        self.chat_source = chat_source
        self.synth = Synth()
        self._lock = threading.Lock()
        self._hours: OrderedDict[int, HourBucket] = OrderedDict()
        self._plans: OrderedDict[int, DayPlan] = OrderedDict()
        self._user_cum: dict[int, list[int]] = {}
        self._utab: tuple | None = None
        self._tail_cache: OrderedDict = OrderedDict()
        self._unauth_cache: dict[int, tuple] = {}
        self._remaps: tuple = ((), (), ())
        # [start, end) in µs, fixed for the generator's life (hour contents depend on it).
        self._lo, self._hi = config.start_us, config.end_us
        self._setup_mix()
        self._setup_profile()
        self._kind_to_atype = {
            "user_web": "user_actor", "user_code": "user_actor", "unauth": "unauthenticated_user_actor",
            "unauth_email": "unauthenticated_user_actor", "scanner": "unauthenticated_user_actor",
            "api": "api_actor", "compliance": "api_actor", "admin": "admin_api_key_actor",
            "svc": "service_account_actor", "anthropic": "anthropic_actor", "system": "system_actor",
            "scim": "scim_directory_sync_actor", "fed_id": "federated_identity_actor", "fed": "federated_actor",
            "attested": "attested_device_actor", "unknown": "quantum_actor"}
        w = self.world
        self._console_users = [u for u in w.users if u.org_uuid == w.console_org.uuid] or w.users
        self._claude_users = [u for u in w.users if u.org_uuid != w.console_org.uuid] or w.users

    # ---- static setup -------------------------------------------------------------------------------------------
    def _setup_mix(self) -> None:
        cat = self.catalog
        types, weights = [], []
        for t in cat.types:
            if t in PLANTED_ONLY:
                continue
            types.append(t)
            weights.append(WEIGHTS.get(t, DEFAULT_WEIGHT))
        for t in UNKNOWN_TYPES:
            types.append(t)
            weights.append(UNKNOWN_TYPE_WEIGHT)
        total = sum(weights)
        cum, acc = [], 0.0
        for wt in weights:
            acc += wt / total
            cum.append(acc)
        cum[-1] = 1.0
        self.bg_types, self.bg_cum = types, cum
        # Sampling table (each type repeated ~p * 2^17 times, at least once): unweighted random.choices over it
        # is ~3x faster than bisecting cumulative weights, at the cost of quantising probabilities to 2^-17.
        self._type_table = [t for t, wt in zip(types, weights) for _ in range(max(1, round(wt / total * (1 << 17))))]
        self.actor_plan = {t: self._actor_plan(t) for t in types}
        self._type_share = {t: wt / total for t, wt in zip(types, weights)}
        self._plan_first = {t: p[0][0] for t, p in self.actor_plan.items()}
        self._plan_p0 = {t: p[1][0] for t, p in self.actor_plan.items()}
        self._capped = CAPPED_AUTH | CAPPED_DELETE
        self.code_types = frozenset(t for t in types if t.startswith(CODE_PREFIXES))
        self.console_types = frozenset(t for t in types if t.startswith(CONSOLE_PREFIXES))
        self.type_prefix = {t: orjson.dumps(t).join((b',"type":', b"")) for t in types}
        for t in list(PLANTED_ONLY) + list(UNKNOWN_TYPES):
            self.type_prefix[t] = orjson.dumps(t).join((b',"type":', b""))

    def _actor_plan(self, t: str) -> tuple[tuple[str, ...], tuple[float, ...]]:
        """(kinds, cumulative probabilities) of background actors for a type, within the schema's allowed set."""
        allowed = set(self.catalog.allowed_actors(t)) if t in self.catalog.type_set else {"user_actor"}
        user = "user_code" if t.startswith(CODE_PREFIXES) else "user_web"
        if t == "compliance_api_accessed":
            plan = [("compliance", 1.0)]
        elif "user_actor" not in allowed and allowed == {"api_actor"}:
            plan = [("api", 1.0)]
        elif t in ("sso_login_initiated", "magic_link_login_initiated"):
            plan = [("unauth", 0.97), ("scanner", 0.03)]
        elif t in ("sso_login_failed", "magic_link_login_failed"):
            plan = [("unauth_email", 1.0)]
        elif t in CAPPED_AUTH or t in CAPPED_DELETE:
            plan = [("user_web", 1.0)]
        elif t in ("phone_code_sent", "sso_second_factor_magic_link"):
            plan = [("unauth", 0.5), ("user_web", 0.5)]
        elif t == "platform_app_attest_authentication":
            plan = [("attested", 0.9), ("user_web", 0.1)]
        elif t == "platform_federated_authentication":
            plan = [("fed_id", 0.6), ("fed", 0.4)]
        elif t.startswith("scim_user_") and "scim_directory_sync_actor" in allowed:
            plan = [("scim", 0.75), (user, 0.25)]
        else:
            extra = {"api_actor": ("api", 0.008), "admin_api_key_actor": ("admin", 0.006),
                     "service_account_actor": ("svc", 0.006), "anthropic_actor": ("anthropic", 0.004),
                     "system_actor": ("system", 0.004), "scim_directory_sync_actor": ("scim", 0.002),
                     "federated_identity_actor": ("fed_id", 0.002), "federated_actor": ("fed", 0.003),
                     "attested_device_actor": ("attested", 0.002)}
            if t.startswith(CONSOLE_PREFIXES):
                extra.update({"admin_api_key_actor": ("admin", 0.08), "service_account_actor": ("svc", 0.06),
                              "federated_actor": ("fed", 0.03)})
            plan = [(k, p) for a, (k, p) in extra.items() if a in allowed]
            if t in self.catalog.type_set and len(allowed) == 11 and t != "org_compliance_api_settings_updated":
                plan.append(("unknown", 0.0008))
            if "user_actor" in allowed:
                plan.insert(0, (user, 1.0 - sum(p for _, p in plan)))
            elif not plan:
                plan = [("anthropic", 1.0)]
        kinds = tuple(k for k, _ in plan)
        tot = sum(p for _, p in plan)
        cum, acc = [], 0.0
        for _, p in plan:
            acc += p / tot
            cum.append(acc)
        cum[-1] = 1.0
        return kinds, tuple(cum)

    def _setup_profile(self) -> None:
        tot_w = sum(w for _, w, _ in COUNTRIES)
        prof = []
        for h in range(24):
            prof.append(sum(w * LOCAL_SHAPE[(h + tz) % 24] for _, w, tz in COUNTRIES) / tot_w)
        s = sum(prof)
        self.profile = [p / s for p in prof]    # fraction of a weekday's volume in each UTC hour

    def _user_weights(self, hod: int) -> list[int]:
        """Sampling table of user indices for a UTC hour of day: weight = activity level x local-hour shape."""
        table = self._user_cum.get(hod)
        if table is None:
            users = self.world.users
            ws = [u.weight * LOCAL_SHAPE[(hod + TZ_OFFSET[u.home_country]) % 24] for u in users]
            size = min(1 << 17, max(256, 16 * len(users)))
            scale = size / (sum(ws) or 1.0)
            table = [i for i, wt in enumerate(ws) for _ in range(round(wt * scale))] or list(range(len(users)))
            self._user_cum[hod] = table
        return table

    # ---- public ------------------------------------------------------------------------------------------------
    def expected_count(self, hour: int) -> float:
        dt = from_us(hour * HOUR_US)
        f = WEEKEND_FACTOR if dt.weekday() >= 5 else 1.0
        return self.config.activities_per_day * self.profile[dt.hour] * f

    def hour_in_range(self, hour: int) -> bool:
        lo, hi = self._lo, self._hi
        return (hour + 1) * HOUR_US > lo and (hi is None or hour * HOUR_US < hi)

    def bucket(self, hour: int) -> HourBucket:
        with self._lock:
            b = self._hours.get(hour)
            if b is not None:
                self._hours.move_to_end(hour)
                return b
        b = self._generate_hour(hour)
        with self._lock:
            self._hours[hour] = b
            while len(self._hours) > self.config.cache_hours:
                self._hours.popitem(last=False)
        return b

    def cached_bucket(self, hour: int) -> HourBucket | None:
        with self._lock:
            return self._hours.get(hour)

    def skeleton(self, hour: int) -> Skeleton:
        """Ids / types / times / malformed reasons of an hour without rendering JSON (ground truth)."""
        b = self.cached_bucket(hour)
        if b is not None:
            recs = b.records
            ids = [r[1] for r in recs]
            mal = b.malformed
            return Skeleton(hour, [r[0] for r in recs], ids, [r[2] for r in recs], [r[3] for r in recs],
                            [mal.get(i) for i in ids] if mal else [None] * len(ids))
        if not self.hour_in_range(hour):
            return Skeleton(hour, [], [], [], [], [])
        sk = self._skeleton(hour)
        keep = sk["keep"]
        cols = [sk["created"], sk["ids"], sk["indexed"], sk["types"], sk["bad"]]
        if len(keep) != len(cols[0]):
            cols = [[col[k] for k in keep] for col in cols]
        created, ids = cols[0], cols[1]
        for p in sorted(x for x in self._planted(hour) if self._in_range(x.created_us)):
            pos = bisect.bisect_left(created, p.created_us)
            while pos < len(created) and created[pos] == p.created_us and ids[pos] < p.id:
                pos += 1
            for col, v in zip(cols, (p.created_us, p.id, p.indexed_us, p.type, None)):
                col.insert(pos, v)
        return Skeleton(hour, *cols)

    def day_plan(self, day: int) -> DayPlan:
        with self._lock:
            p = self._plans.get(day)
            if p is not None:
                self._plans.move_to_end(day)
                return p
        p = Planner(self, day).build()
        with self._lock:
            self._plans[day] = p
            while len(self._plans) > 8:
                self._plans.popitem(last=False)
        return p

    def incidents(self, day: int) -> list[Incident]:
        return self.day_plan(day).incidents

    # ---- hour generation ---------------------------------------------------------------------------------------
    def _in_range(self, created_us: int) -> bool:
        return created_us >= self._lo and (self._hi is None or created_us < self._hi)

    def _planted(self, hour: int) -> list[ActivityRecord]:
        day = hour // 24
        out = list(self.day_plan(day).planted_by_hour.get(hour, ()))
        out.extend(self.day_plan(day + 1).planted_by_hour.get(hour, ()))
        return out

    def _skeleton(self, hour: int) -> dict:
        """Skeleton stream of one hour. Background types are i.i.d., so sorting the times alone is equivalent to
        sorting (time, type) pairs; forced events (coverage, chat lifecycle) are merged in afterwards."""
        cfg = self.config
        r = rng_for("skel", cfg.seed, hour)
        rnd = r.random
        expected = self.expected_count(hour)
        n = int(expected * (0.9 + 0.2 * rnd()))
        if rnd() < expected - int(expected) and n == int(expected * 0.9):
            n += 1   # keeps tiny volumes (e.g. 100/day) from always rounding down
        types = r.choices(self._type_table, k=n)
        offs = sorted([int(rnd() * HOUR_US) for _ in range(n)])
        users = self.world.users
        nu = len(users)
        picks = r.choices(self._user_weights(from_us(hour * HOUR_US).hour), k=n) if nu else [0] * n
        forced = [(off, t, kind, extra, None, None)
                  for off, t, kind, extra in self.day_plan(hour // 24).coverage_by_hour.get(hour, ())]
        forced.extend(self._lifecycle(hour))
        fk: list = [None] * n            # forced info per record: (kind, extra, user index, fields) or None
        if forced:
            forced.sort(key=lambda x: x[0])
            for off, t, kind, extra, uidx, fields in reversed(forced):
                pos = bisect.bisect_right(offs, off)
                offs.insert(pos, off)
                types.insert(pos, t)
                picks.insert(pos, uidx if uidx is not None else (picks[pos % len(picks)] if picks else 0))
                fk.insert(pos, (kind, extra, uidx, fields))
        m = len(types)
        base = hour * HOUR_US
        # strictly increasing times: (created_us, id) order is then created_us order, for buckets and skeletons alike
        if any(a >= b for a, b in zip(offs, offs[1:])):
            for k in range(1, m):
                if offs[k] <= offs[k - 1]:
                    offs[k] = offs[k - 1] + 1
            for k in range(m - 1, -1, -1):
                if offs[k] < HOUR_US - (m - 1 - k):
                    break
                offs[k] = HOUR_US - (m - k)
        created = [base + o for o in offs]
        pfx = "activity_01" + hour_code(hour).decode()
        raw = r.randbytes(20 * m).translate(B58_TABLE).decode()
        ids = [pfx + raw[i:i + 20] for i in range(0, 20 * m, 20)]
        # actor kinds: first kind of the type's plan unless the draw falls past its probability
        first, p0 = self._plan_first, self._plan_p0
        xs = [rnd() for _ in range(m)]
        kinds = [first[t] if x < p0[t] else self._plan_kind(t, x) for t, x in zip(types, xs)]
        for k in range(m) if forced else ():
            f = fk[k]
            if f is not None and f[0]:
                kinds[k] = f[0]
        # indexing lag: uniform in [0, max_lag] for most, late_minutes for a late_share sample
        max_lag = cfg.max_lag_seconds * US
        indexed = [c + int(rnd() * max_lag) for c in created]
        if cfg.late_share > 0 and m:
            lo_late = cfg.late_minutes[0] * MIN_US
            span_late = (cfg.late_minutes[1] - cfg.late_minutes[0]) * MIN_US
            for k in r.sample(range(m), _count(r, m, cfg.late_share)):
                indexed[k] = created[k] + int(lo_late + span_late * rnd())
        bad: list = [None] * m
        if cfg.malformed_rate > 0 and m:
            for k in r.sample(range(m), _count(r, m, cfg.malformed_rate)):
                if fk[k] is None:
                    bad[k] = MALFORMED_REASONS[int(rnd() * 4)]
        # caps (module docstring); forced chat-lifecycle deletions count first and are never moved
        capped = self._capped
        ck = [k for k, t in enumerate(types) if t in capped]
        dropped = set()
        if ck:
            auth_used: set = set()
            del_used: dict = {}
            for k in ck:
                f = fk[k]
                if f is not None and f[2] is not None and types[k] in CAPPED_DELETE:
                    del_used[f[2]] = del_used.get(f[2], 0) + 1
            for k in ck:
                f = fk[k]
                if f is not None and f[2] is not None:
                    continue
                u = picks[k]
                tries = 0
                if types[k] in CAPPED_AUTH:
                    while u in auth_used and tries < nu:
                        u = (u + 1) % nu
                        tries += 1
                    if tries >= nu:
                        dropped.add(k)
                        continue
                    auth_used.add(u)
                else:
                    while del_used.get(u, 0) >= 2 and tries < nu:
                        u = (u + 1) % nu
                        tries += 1
                    if tries >= nu:
                        dropped.add(k)
                        continue
                    del_used[u] = del_used.get(u, 0) + 1
                picks[k] = u
        if self._lo <= base and (self._hi is None or base + HOUR_US <= self._hi):
            keep = [k for k in range(m) if k not in dropped] if dropped else list(range(m))
        else:
            lo, hi = self._lo, self._hi
            keep = [k for k in range(m) if k not in dropped and created[k] >= lo and (hi is None or created[k] < hi)]
        return {"types": types, "created": created, "ids": ids, "picks": picks, "kinds": kinds,
                "indexed": indexed, "bad": bad, "keep": keep, "fk": fk}

    def _plan_kind(self, t: str, x: float) -> str:
        ks, kc = self.actor_plan[t]
        j = 0
        while kc[j] < x:
            j += 1
        return ks[j]

    def _lifecycle(self, hour: int) -> list[tuple]:
        src = self.chat_source
        if src is None:
            return []
        lo, hi = hour * HOUR_US, (hour + 1) * HOUR_US
        lo, hi = max(lo, self._lo), hi if self._hi is None else min(hi, self._hi)
        if lo >= hi:
            return []
        by_id = self.world.user_by_id
        out = []
        for e in src.lifecycle_events(lo, hi):
            u = by_id.get(e["user_id"])
            if u is None:
                continue
            fields = {"claude_chat_id": e["claude_chat_id"]}
            if e.get("claude_project_id"):
                fields["claude_project_id"] = e["claude_project_id"]
            out.append((e["created_us"] - hour * HOUR_US, e["type"], "user_web", None, u.index, fields))
        return out

    def _generate_hour(self, hour: int) -> HourBucket:
        if not self.hour_in_range(hour):
            return HourBucket(hour, [], {})
        # Records are NamedTuples, which CPython's cyclic GC never untracks: with millions cached, every full
        # collection walks all of them (measured 5x slower generation and slower serving). They hold no cycles, so
        # the GC is paused while generating and the new objects are moved to the permanent generation
        # (gc.freeze); refcounting still frees them when the LRU drops a bucket.
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            sk = self._skeleton(hour)
            recs, malformed = self._render(hour, sk)
        finally:
            gc.freeze()
            if was_enabled:
                gc.enable()
        planted = [p for p in self._planted(hour) if self._in_range(p.created_us)]
        if planted:
            recs.extend(planted)
        recs.sort()   # already sorted except planted events and equal-time ties: Timsort is ~linear here
        return HourBucket(hour, recs, malformed)

    def _render(self, hour: int, sk: dict) -> tuple[list[ActivityRecord], dict]:
        """JSON for every kept skeleton record. User-actor records without forced fields (~90 %) take an inlined
        fast path that splices pre-rendered byte strings; everything else goes through `_render_one`."""
        cfg = self.config
        w = self.world
        r = rng_for("render", cfg.seed, hour)
        rnd = r.random
        keep = sk["keep"]
        types, created, ids, picks, kinds = sk["types"], sk["created"], sk["ids"], sk["picks"], sk["kinds"]
        indexed, bad, fk = sk["indexed"], sk["bad"], sk["fk"]
        n = len(keep)
        ctx = _Ctx(r, w, max(4, min(20_000, n // 12)))
        counts: dict[str, int] = {}
        for k in keep:
            t = types[k]
            counts[t] = counts.get(t, 0) + 1
        utab, ptab = self._user_table()
        ident, to_console, to_claude = self._remaps
        day = hour // 24
        st = _RenderState(self, hour, r, ctx)
        # entity pools of the hour, sized by how many records reference each kind (ids recur ~4x per hour)
        uses: dict[str, int] = {}
        tails_of = {}
        for t, c in counts.items():
            if t == "compliance_api_accessed":
                st.comp = self._compliance_fragments(c, ctx, hour)
                continue
            tl = tails_of[t] = self._tails(day, t)
            for pre in {x[1] for x in tl}:
                if pre is not None:
                    uses[pre] = uses.get(pre, 0) + c
        pools = {pre: _entity_pool(r, pre, max(4, c // 4)) for pre, c in sorted(uses.items())}
        pools[None] = [b""]
        # per type: (templates with their entity pool, user remap table, prefix slot (0 own org / 2 null org))
        tinfo: dict = {}
        for t, c in counts.items():
            mode = 1 if t in NULL_ORG_TYPES else (2 if t in self.console_types else 0)
            if t == "compliance_api_accessed":
                st.tinfo[t] = (self.type_prefix[t], mode, None)
                continue
            tails = [(b, pools[pre], a) for b, pre, a in tails_of[t]]
            st.tinfo[t] = (self.type_prefix[t], mode, tails)
            remap = to_console if mode == 2 else (ident if t in CAPPED_AUTH or t in CAPPED_DELETE else to_claude)
            ftails = [(b, pl, len(pl), a) for b, pl, a in tails]
            tinfo[t] = (ftails, len(ftails), remap, 2 if mode == 1 else 0)
        hour_start = hour * HOUR_US
        sec_tab = st.sec_tab
        tab3 = _TAB3
        head = b'{"id":"'
        out: list = []
        append = out.append
        new = _new_record
        AR = ActivityRecord
        render_one = st.render_one
        for k in keep:
            kind = kinds[k]
            if (kind == "user_web" or kind == "user_code") and fk[k] is None and bad[k] is None:
                t = types[k]
                tails, nt, remap, slot = tinfo[t]
                pw, pc, uid, oid, ouuid = ptab[remap[picks[k]]]
                pres, npres = pw[slot] if kind == "user_web" else pc[slot]
                x = rnd() * npres
                ai = int(x)
                cu = created[k]
                sec, us = divmod(cu - hour_start, 1_000_000)
                rid = ids[k]
                before, pool, npool, after = tails[int((x - ai) * nt)]
                js = b"".join((head, rid.encode(), sec_tab[sec], tab3[us // 1000], tab3[us % 1000], pres[ai],
                               before, pool[int(rnd() * npool)], after))
                if slot:
                    append(new(AR, (cu, rid, indexed[k], t, None, None, uid, js)))
                else:
                    append(new(AR, (cu, rid, indexed[k], t, oid, ouuid, uid, js)))
            else:
                append(render_one(k, types, created, ids, picks, kinds, indexed, bad, fk, utab))
        return out, st.malformed

    def _user_table(self) -> tuple[list[tuple], list[tuple]]:
        """utab[i] = (web_actors, code_actors, user_id, org, org_fragment); ptab[i] = pre-rendered
        'Z",<org fields>"actor":{…}' prefixes per (own org | null org) for web / code actors + ids."""
        if self._utab is None:
            w = self.world
            cons, cla = self._console_users, self._claude_users
            utab, ptab = [], []
            to_console, to_claude = [], []
            for u in w.users:
                org = w.org_by_uuid[u.org_uuid]
                ofrag = w.org_fragment[org.uuid]
                utab.append((u.web_actors, u.code_actors, u.id, org, ofrag))

                def pre(acts, of):
                    lst = [b'Z",' + of + b'"actor":' + a for a in acts]
                    return lst, len(lst)

                pw = (pre(u.web_actors, ofrag), None, pre(u.web_actors, w.null_org_fragment))
                pc = (pre(u.code_actors, ofrag), None, pre(u.code_actors, w.null_org_fragment))
                ptab.append((pw, pc, u.id, org.id, org.uuid))
                to_console.append(u.index if u.org_uuid == w.console_org.uuid else cons[u.index % len(cons)].index)
                to_claude.append(u.index if u.org_uuid != w.console_org.uuid else cla[u.index % len(cla)].index)
            self._utab = (utab, ptab)
            self._remaps = (list(range(len(w.users))), to_console, to_claude)
        return self._utab

    def _other_actor(self, kind: str, pick: int, rnd, r) -> tuple[bytes, object, str | None]:
        """(actor JSON, org or None, actor_id) for the non-user actor kinds."""
        w = self.world
        if kind == "unauth" or kind == "unauth_email":
            variants = self._unauth_cache.get(pick)
            if variants is None:
                u = w.users[pick]
                webs = [ua for ua in u.user_agents if not ua.startswith("claude-cli")] or u.user_agents
                variants = self._unauth_cache[pick] = tuple(
                    [orjson.dumps(dict({"type": "unauthenticated_user_actor", "ip_address": ip, "user_agent": ua},
                                       **em)) for ip in u.ips for ua in webs]
                    for em in ({"unauthenticated_email_address": u.email},
                               {"unauthenticated_email_address": None}, {}))
            x = rnd()
            # with the user's email (always for failures: monitor 5 groups by it), null, or omitted
            lst = variants[0 if kind == "unauth_email" or x < 0.6 else (1 if x < 0.85 else 2)]
            return lst[int(rnd() * len(lst))], None, None
        if kind == "compliance":
            return w.compliance_keys[int(rnd() * len(w.compliance_keys))].json, None, None
        if kind == "scanner":
            return orjson.dumps({"type": "unauthenticated_user_actor",
                                 "ip_address": w.scanner_ips[int(rnd() * len(w.scanner_ips))],
                                 "user_agent": SCANNER_UAS[int(rnd() * len(SCANNER_UAS))]}), None, None
        if kind in ("api", "admin", "svc"):
            keys = w.api_keys if kind == "api" else (w.admin_keys if kind == "admin" else w.service_accounts)
            key = keys[int(rnd() * len(keys))]
            return key.json, w.org_by_uuid[key.org_uuid], None
        if kind == "anthropic":
            return w.anthropic_actor, None, None
        if kind == "system":
            return w.system_actors[int(rnd() * len(w.system_actors))], None, None
        if kind == "scim":
            org = w.orgs[0] if rnd() < 0.7 else w.orgs[1]
            return w.scim_actor(org, "event_01" + b58id(r, 26)), org, None
        pool = {"fed_id": w.federated_identity_actors, "fed": w.federated_actors,
                "attested": w.attested_device_actors}.get(kind, w.unknown_actors)
        return pool[int(rnd() * len(pool))], None, None

    @staticmethod
    def _malformed_json(reason, rid, ts, cu, ofrag, actor, tprefix, body, r) -> bytes:
        if reason == "missing_id":
            return b"".join((b'{"created_at":"', ts, b'",', ofrag, b'"actor":', actor, tprefix, body, b"}"))
        if reason == "bad_created_at":
            bad_ts = r.choice([b"not-a-timestamp", b"2026-13-45T25:61:61Z", b"", b"yesterday 10am"])
            return b"".join((b'{"id":"', rid.encode(), b'","created_at":"', bad_ts, b'",', ofrag, b'"actor":', actor,
                             tprefix, body, b"}"))
        if reason == "not_an_object":
            return r.choice([b"null", b'"' + rid.encode() + b'"', b"[" + actor + b"]", b"42"])
        shifted = cu + r.choice([-1, 1]) * r.randint(3, 30) * HOUR_US   # outside_window
        return b"".join((b'{"id":"', rid.encode(), b'","created_at":"', iso_us(shifted).encode(), b'",', ofrag,
                         b'"actor":', actor, tprefix, body, b"}"))

    def _tails(self, day: int, t: str) -> list[tuple[bytes, str | None, bytes]]:
        """Templates of the type-specific part of a record for one day: (before, entity prefix | None, after).

        before = ',"type":"t",<fields…>' up to the slot, after = the rest + '}'. The slot is the type's first shared
        entity id (claude_chat_id, claude_file_id, …), filled per record from the hour's entity pool, so ids vary
        per record while the expensive value synthesis runs only a few dozen times per type and day. A pure
        function of (seed, day, type) like everything else.
        """
        key = (day, t)
        with self._lock:
            got = self._tail_cache.get(key)
            if got is not None:
                return got
        exp = self.config.activities_per_day * self._type_share.get(t, 0.0)
        v = max(2, min(96, math.ceil(exp / 40)))
        r = rng_for("frag", self.config.seed, day, t)
        ctx = _Ctx(r, self.world, 64)
        ctx.t = t
        info = self.catalog.info.get(t)
        tp = self.type_prefix[t]
        out = []
        for _ in range(v):
            ctx.scratch = {}
            if info is None:
                fields = UNKNOWN_TYPES[t](r)
            else:
                fields = self.synth.fields(info, ctx, _overrides(t, ctx))
            if r.random() < 0.01:     # rare unknown extra field (future schema additions)
                name, val = UNKNOWN_EXTRA_FIELDS[int(r.random() * len(UNKNOWN_EXTRA_FIELDS))]
                fields[name] = val
            slot = None
            for k, val in fields.items():
                if k.endswith("_id") and isinstance(val, str):
                    pre = val[:-26] if len(val) > 26 and val[-26:-24] == "01" else None
                    if pre in SHARED_ENTITIES:
                        fields[k] = _SLOT
                        slot = pre
                        break
            body = tp + (b"," + orjson.dumps(fields)[1:-1] if fields else b"") + b"}"
            if slot is None:
                out.append((body, None, b""))
            else:
                before, after = body.split(_SLOT_BYTES, 1)
                out.append((before, slot, after))
        with self._lock:
            self._tail_cache[key] = out
            while len(self._tail_cache) > 4 * 600:
                self._tail_cache.popitem(last=False)
        return out

    def _compliance_fragments(self, count: int, ctx: _Ctx, hour: int) -> list[tuple[int, bytes]]:
        """(status, fragment) pool for background compliance_api_accessed; index 0 is always a 200."""
        v = max(24, min(512, math.ceil(count / 2)))   # large enough that the status mix holds
        r = ctx.r
        out = []
        for i in range(v):
            st = 200 if i == 0 else _pick_status(r)
            method, url = _compliance_url(r, ctx, self.world, hour, st)
            d = {"request_id": "req_01" + b58id(r), "request_method": method, "status_code": st, "url": url}
            if r.random() < 0.3:
                d["request_body"] = None
            out.append((st, orjson.dumps(d)[1:-1].join((b",", b""))))
        if count and r.random() < 0.2:   # the occasional misconfigured key: one 401/403 this hour
            st = 401 if r.random() < 0.6 else 403
            method, url = _compliance_url(r, ctx, self.world, hour, st)
            d = {"request_id": "req_01" + b58id(r), "request_method": method, "status_code": st, "url": url}
            out.append((st, orjson.dumps(d)[1:-1].join((b",", b""))))
        return out


def _count(r, m: int, p: float) -> int:
    """How many of m records get a property of probability p (normal approximation of the binomial)."""
    mu = m * p
    if mu < 20:
        return sum(1 for _ in range(m) if r.random() < p) if m < 2000 else min(m, max(0, round(r.gauss(mu, mu ** .5))))
    return min(m, max(0, round(r.gauss(mu, (mu * (1 - p)) ** 0.5))))


def _pick_status(r) -> int:
    x = r.random()
    if x < 0.93:
        return 200
    if x < 0.975:
        return 404
    if x < 0.985:
        return 400
    if x < 0.995:
        return 429
    return r.choice([500, 503])


def _compliance_url(r, ctx: _Ctx, world: World, hour: int, status: int) -> tuple[str, str]:
    hs = from_us(hour * HOUR_US)
    gte = hs.strftime("%Y-%m-%dT%H:00:00Z")
    org = r.choice(world.orgs)
    x = r.random()
    if status == 404:
        x = 0.35 + 0.45 * x      # id based endpoints
    if x < 0.30:
        q = r.choice([f"limit=1000&order=asc&created_at.gte={gte}",
                      f"limit=5000&after_id=activity_01{b58id(r)}",
                      f"limit=5000&before_id=activity_01{b58id(r)}",
                      "limit=100"])
        return "GET", f"{API}/v1/compliance/activities?{q}"
    if x < 0.42:
        return "GET", f"{API}/v1/compliance/apps/chats?order_by=updated_at&updated_at.gte={gte}&limit=1000"
    if x < 0.55:
        return "GET", f"{API}/v1/compliance/apps/chats/{ctx.entity('claude_chat_')}/messages"
    if x < 0.62:
        suffix = "/content" if r.random() < 0.5 else ""
        return "GET", f"{API}/v1/compliance/apps/chats/files/{ctx.entity('claude_file_')}{suffix}"
    if x < 0.67:
        return "GET", f"{API}/v1/compliance/apps/artifacts/{ctx.entity('claude_artifact_version_')}"
    if x < 0.72:
        return "GET", f"{API}/v1/compliance/apps/projects/{ctx.entity('claude_proj_')}"
    if x < 0.76:
        return "GET", f"{API}/v1/compliance/apps/sessions/local/clls_01{b58id(r)}/messages"
    if x < 0.79:
        return "DELETE", f"{API}/v1/compliance/apps/chats/{ctx.entity('claude_chat_')}"
    if x < 0.84:
        return "GET", f"{API}/v1/compliance/organizations/{org.uuid}/users?limit=1000"
    if x < 0.87:
        return "GET", f"{API}/v1/compliance/organizations"
    if x < 0.90:
        return "GET", f"{API}/v1/compliance/groups?limit=500"
    if x < 0.93:
        return "GET", f"{API}/v1/compliance/organizations/{org.uuid}/roles"
    if x < 0.96:
        return "GET", f"{API}/v1/compliance/organizations/{org.uuid}/settings"
    if x < 0.98:
        return "GET", f"{API}/v1/compliance/apps/projects?limit=100"
    return "GET", f"{API}/v1/compliance/apps/sessions/remote?limit=100"


def _overrides(t: str, ctx: _Ctx) -> dict | None:
    """Coupled / monitor-sensitive fields of a few types (background values)."""
    r = ctx.r
    if t == "org_compliance_api_settings_updated":
        # Benign only: never false (monitor 2); at least one of the two present.
        a, b = (True, OMIT) if r.random() < 0.5 else ((OMIT, True) if r.random() < 0.5 else (True, True))
        return {"compliance_api_enabled": a, "compliance_api_logging_enabled": b}
    if t in ("claude_artifact_sharing_updated", "claude_project_sharing_updated"):
        # Background shares stay inside the organization (public shares are planted: resource_shared_publicly).
        kinds = ["organization", "users"] if t == "claude_artifact_sharing_updated" else ["organization"]
        return {"audience": {"type": r.choice(kinds)}}
    if t == "claude_user_role_updated":
        u = ctx.user()
        roles = ["user", "developer", "admin", "claude_code_user", "billing", "membership_admin", "owner"]
        prev = r.choice(roles)
        cur = r.choice([x for x in roles if x != prev])
        return {"user_id": u.id, "user_email": u.email, "previous_role": prev, "current_role": cur}
    if t == "subscription_upgraded":
        plans = ["team", "team_premium", "enterprise", "enterprise_premium"]
        i = r.randrange(len(plans) - 1)
        return {"old_plan": plans[i], "new_plan": plans[r.randrange(i + 1, len(plans))]}
    if t == "subscription_quantity_updated":
        prev = r.choice([50, 100, 150, 200, 250])
        add = r.choice([1, 5, 10, 25, 50])
        return {"previous_quantity": prev, "added_seats": add, "new_quantity": prev + add}
    return None


# ======================================================================================================================
# planted incidents
# ======================================================================================================================

MONITORS = ("admin_or_platform_api_key_created", "compliance_logging_disabled", "ip_restriction_deleted",
            "embargoed_location", "excessive_failed_auth", "excessive_unauthorized_compliance_api",
            "org_destructive_activity", "resource_deletion_outlier", "unauthenticated_activity")


def _t(hh: int, mm: int, ss: int = 10) -> int:
    """Offset in the day (µs) of hh:mm:ss."""
    return ((hh * 60 + mm) * 60 + ss) * US


class Planner:
    """Builds the plan of one UTC day: incidents / near misses for the 9 monitors + coverage events.

    Every incident is placed at a fixed time of day (same-monitor items >= 45 min apart), spans <= 10 minutes
    (so one aligned 15-minute window holds all its events) and, except where the variant needs it, stays within one
    hour bucket. Identities that must group cleanly (monitors 5, 6, 8) are fresh per day.
    """

    def __init__(self, gen: Generator, day: int):
        self.gen = gen
        self.cfg = gen.config
        self.world = gen.world
        self.day = day
        self.day_us = day * DAY_US
        self.r = rng_for("plan", self.cfg.seed, day)
        self.incidents: list[Incident] = []
        self.planted: dict[int, list[ActivityRecord]] = {}
        self._planted_ids: set[str] = set()
        self.date_tag = from_us(self.day_us).strftime("%Y%m%d")

    # ---- record factory ---------------------------------------------------------------------------------------
    def rec(self, at_us: int, t: str, actor: dict, fields: dict | None = None, org=..., actor_id=None
            ) -> ActivityRecord:
        r = self.r
        hour = at_us // HOUR_US
        rid = (b"activity_01" + hour_code(hour)).decode() + b58id(r, 20)
        if org is ...:
            org = None if t in NULL_ORG_TYPES else self.world.main_org
        if actor.get("type") == "user_actor":
            actor_id = actor.get("user_id")
        d = {"id": rid, "created_at": iso_us(at_us),
             "organization_id": org.id if org else None, "organization_uuid": org.uuid if org else None,
             "actor": actor, "type": t}
        if fields:
            d.update(fields)
        lag = int((1 + r.random() * max(0.0, self.cfg.max_lag_seconds - 1)) * US)
        return _new_record(ActivityRecord, (at_us, rid, at_us + lag, t, org.id if org else None,
                                            org.uuid if org else None, actor_id, orjson.dumps(d)))

    def add(self, monitor: str, should_fire: bool, variant: str, group_key: str | None,
            records: list[ActivityRecord], extra: dict | None = None, history: list[ActivityRecord] = ()) -> None:
        if not records:
            return
        lo, hi = self.cfg.start_us, self.cfg.end_us
        every = list(records) + list(history)
        # Only incidents entirely inside [start, end) exist (a full day always qualifies).
        if not self.cfg.incidents or any(x.created_us < lo or (hi is not None and x.created_us >= hi) for x in every):
            return
        n = sum(1 for i in self.incidents if i.monitor == monitor)
        inc = Incident(f"inc-{self.date_tag}-{monitor}-{n + 1}", monitor, should_fire,
                       "incident" if should_fire else "near_miss", variant, group_key, list(records), extra or {},
                       sorted(history) if self.history_matters(monitor, history) else [])
        self.incidents.append(inc)
        for x in every:
            if x.id in self._planted_ids:   # one record declared for several monitors is planted once
                continue
            self._planted_ids.add(x.id)
            self.planted.setdefault(x.created_us // HOUR_US, []).append(x)

    @staticmethod
    def history_matters(monitor: str, history) -> bool:
        # only the deletion-outlier baseline depends on earlier events (sign-ins before an incident do not)
        return monitor == MONITORS[7] and len(history) > 1

    # ---- actors -------------------------------------------------------------------------------------------------
    def pick_user(self, role_pref=("admin", "owner", "primary_owner")) -> User:
        users = self.world.users
        cands = [u for u in users if u.organization_role in role_pref and u.org_uuid == self.world.main_org.uuid]
        return self.r.choice(cands or users)

    def user_actor(self, u: User, ip: str | None = None, ua: str | None = None) -> dict:
        return u.actor(ip or u.ips[0], ua or u.user_agents[0])

    def fresh_email(self, tag: str) -> str:
        r = self.r
        from simulator.catalog import WORDS
        return f"{r.choice(WORDS)}.{r.choice(WORDS)}{r.randint(100, 999)}.{tag}@northwind-labs.com"

    def fresh_user(self, tag: str) -> dict:
        r = self.r
        return {"type": "user_actor", "email_address": self.fresh_email(tag), "user_id": "user_01" + b58id(r),
                "ip_address": self.world.ip_pool.ip(r.choice(["US", "GB", "DE"]), r),
                "user_agent": browser_ua(r, r.choice(["windows", "macos"]))}

    def unauth(self, ip: str, ua: str, email=...) -> dict:
        d = {"type": "unauthenticated_user_actor", "ip_address": ip, "user_agent": ua}
        if email is not ...:
            d["unauthenticated_email_address"] = email
        return d

    def api_actor(self, key_id: str, ip: str, ua: str) -> dict:
        return {"type": "api_actor", "api_key_id": key_id, "ip_address": ip, "user_agent": ua}

    def clean_ip(self, country: str | None = None) -> str:
        return self.world.ip_pool.ip(country or self.r.choice(["US", "DE", "NL", "SG", "IE"]), self.r)

    def at(self, hh: int, mm: int, ss: int = 10) -> int:
        return self.day_us + _t(hh, mm, ss)

    def spread(self, start_us: int, n: int, span_s: float) -> list[int]:
        """n increasing times within [start, start + span_s)."""
        r = self.r
        return sorted(start_us + int(r.random() * span_s * US) for _ in range(n))

    # ---- plan -------------------------------------------------------------------------------------------------
    def build(self) -> DayPlan:
        self.m1()
        self.m2()
        self.m3()
        self.m4()
        self.m5()
        self.m6()
        self.m7()
        self.m8()
        self.m9()
        if self.cfg.peer_incidents:
            self.peers()
        coverage = self.coverage()
        for lst in self.planted.values():
            lst.sort()
        return DayPlan(self.day, self.incidents, self.planted, coverage)

    # monitor 1 --------------------------------------------------------------------------------------------------
    def m1(self) -> None:
        name = MONITORS[0]
        r = self.r
        admin = self.pick_user()
        a = self.user_actor(admin)
        self.add(name, True, "admin_key", None, [self.rec(self.at(2, 10), "admin_api_key_created", a, {
            "admin_api_key_id": "apikey_01" + b58id(r), "scopes": ["org:read", "org:write"]})])
        tf = self.world.admin_keys[0]
        ak = {"type": "admin_api_key_actor", "admin_api_key_id": tf.id, "ip_address": tf.ip,
              "user_agent": tf.user_agent}
        self.add(name, True, "platform_key", None, [self.rec(self.at(13, 40), "platform_api_key_created", ak, {
            "api_key_id": "apikey_01" + b58id(r)}, org=self.world.console_org)])
        # benign variants: key updated / deleted, ordinary API key created
        benign = [
            self.rec(self.at(7, 25), "admin_api_key_updated", a, {
                "admin_api_key_id": "apikey_01" + b58id(r), "updates": [{"field": "name", "previous_value": "ops",
                                                                        "new_value": "ops-2"}]}),
            self.rec(self.at(7, 27), "admin_api_key_deleted", a, {"admin_api_key_id": "apikey_01" + b58id(r)})]
        self.add(name, False, "benign", None, benign)
        if self.cfg.peer_incidents:   # a deleted admin key is what the peers' access_key_changed rule reports
            self.add("access_key_changed", True, "admin_key_deleted", None, benign[1:])
        self.add(name, False, "benign", None, [
            self.rec(self.at(19, 5), "api_key_created", a, {"api_key_id": "apikey_01" + b58id(r),
                                                             "scopes": ["messages:write"]}),
            self.rec(self.at(19, 7), "platform_api_key_updated", ak, {
                "api_key_id": "apikey_01" + b58id(r), "updates": [{"field": "status", "previous_value": "active",
                                                                 "new_value": "inactive"}]},
                     org=self.world.console_org)])

    # monitor 2 --------------------------------------------------------------------------------------------------
    def m2(self) -> None:
        name = MONITORS[1]
        a = self.user_actor(self.pick_user())
        t = "org_compliance_api_settings_updated"
        self.add(name, True, "logging_disabled", None, [self.rec(self.at(4, 35), t, a, {
            "compliance_api_enabled": True, "compliance_api_logging_enabled": False})])
        self.add(name, True, "api_disabled", None, [self.rec(self.at(15, 20), t, a, {
            "compliance_api_enabled": False})])
        self.add(name, False, "benign", None, [self.rec(self.at(9, 5), t, a, {
            "compliance_api_enabled": True, "compliance_api_logging_enabled": True})])
        self.add(name, False, "benign_null", None, [self.rec(self.at(21, 50), t, a, {
            "compliance_api_enabled": True, "compliance_api_logging_enabled": None})])

    # monitor 3 --------------------------------------------------------------------------------------------------
    def m3(self) -> None:
        name = MONITORS[2]
        a = self.user_actor(self.pick_user())
        self.add(name, True, "deleted", None, [self.rec(self.at(11, 15), "org_ip_restriction_deleted", a)])
        self.add(name, False, "benign", None, [self.rec(self.at(17, 30), "org_ip_restriction_created", a),
                                               self.rec(self.at(17, 32), "org_ip_restriction_updated", a)])

    # monitor 4 --------------------------------------------------------------------------------------------------
    def m4(self) -> None:
        name = MONITORS[3]
        r = self.r
        pool = self.world.ip_pool
        sched = [("IR", 1, 5), ("KP", 5, 50), ("CU", 8, 20), ("SY", 12, 5), ("UA-43", 14, 35), ("UA-40", 18, 10),
                 ("UA-14", 20, 40), ("UA-09", 23, 5)]
        for key, hh, mm in sched:
            if key not in pool.nets or not pool.nets[key]["v4"]:
                continue
            u = r.choice(self.world.users)
            ip = pool.ip(key, r)
            a = self.user_actor(u, ip, u.user_agents[0])
            org = self.world.org_by_uuid[u.org_uuid]
            times = self.spread(self.at(hh, mm, 0), r.randint(1, 3), 240)
            recs = [self.rec(times[0], "sso_login_succeeded", a, {"auth_method": "sso", "mfa_method": None})]
            for tt in times[1:]:
                recs.append(self.rec(tt, r.choice(["claude_chat_created", "claude_chat_viewed"]), a,
                                     {"claude_chat_id": "claude_chat_01" + b58id(r)}, org=org))
            country = key.split("-")[0]
            extra = {"region": key} if "-" in key else {}
            self.add(name, True, "embargoed_ip", f"{ip}|{country}", recs, extra)
        # near misses: benign Ukrainian region, Russia, private / reserved / ULA addresses
        for variant, ipf, hh, mm in [
                ("benign_region_UA-30", lambda: pool.ip("UA-30", r), 3, 15),
                ("benign_private_ip", lambda: f"10.{r.randint(0, 255)}.{r.randint(0, 255)}.{r.randint(1, 254)}",
                 10, 40),
                ("benign_reserved_ip", lambda: f"100.64.{r.randint(0, 255)}.{r.randint(1, 254)}", 16, 15),
                ("benign_ipv6_ula", lambda: f"fc00::{r.randint(1, 65535):x}", 19, 20),
                ("benign_country_RU", lambda: pool.ip("RU", r), 22, 0)]:
            u = r.choice(self.world.users)
            a = self.user_actor(u, ipf(), u.user_agents[0])
            org = self.world.org_by_uuid[u.org_uuid]
            self.add(name, False, variant, None, [
                self.rec(self.at(hh, mm), "sso_login_succeeded", a, {"auth_method": "sso"}),
                self.rec(self.at(hh, mm + 2), "claude_chat_viewed", a, {"claude_chat_id": "claude_chat_01" + b58id(r)},
                         org=org)])

    # monitor 5 --------------------------------------------------------------------------------------------------
    def _failures(self, email: str, ip: str, ua: str, times: list[int], types: list[str]) -> list[ActivityRecord]:
        out = []
        uid = "user_01" + b58id(self.r)
        for tt, t in zip(times, types):
            if t == "step_up_authentication_failed":
                a = {"type": "user_actor", "email_address": email, "user_id": uid, "ip_address": ip,
                     "user_agent": ua}
                out.append(self.rec(tt, t, a, {"method": self.r.choice(["webauthn", "device_key"]),
                                               "reason": "verification_failed"}))
            else:
                out.append(self.rec(tt, t, self.unauth(ip, ua, email)))
        return out

    def m5(self) -> None:
        name = MONITORS[4]
        r = self.r
        ua = browser_ua(r, "windows")
        # incident: 7 mixed failures (all three types) for one identity within ~3 minutes
        e1 = self.fresh_email("m5a")
        types = ["sso_login_failed"] * 3 + ["magic_link_login_failed"] * 2 + ["step_up_authentication_failed"] * 2
        r.shuffle(types)
        recs = self._failures(e1, self.clean_ip("US"), ua, self.spread(self.at(6, 5, 5), 7, 180), types)
        self.add(name, True, "burst", e1, recs)
        # incident: credential stuffing from a scanner UA, 9 sso failures
        e2 = self.fresh_email("m5b")
        recs = self._failures(e2, self.clean_ip("NL"), SCANNER_UAS[1], self.spread(self.at(16, 50, 5), 9, 200),
                              ["sso_login_failed"] * 9)
        self.add(name, True, "scanner_burst", e2, recs)
        # threshold exactly met: 5
        e3 = self.fresh_email("m5c")
        recs = self._failures(e3, self.clean_ip("GB"), ua, self.spread(self.at(9, 40, 5), 5, 200),
                              ["sso_login_failed"] * 4 + ["magic_link_login_failed"])
        self.add(name, False, "threshold_met", e3, recs)
        # two actors each at the threshold in the same window, same source IP
        ip = self.clean_ip("DE")
        for tag in ("m5d", "m5e"):
            e = self.fresh_email(tag)
            recs = self._failures(e, ip, ua, self.spread(self.at(12, 50, 5), 5, 200), ["sso_login_failed"] * 5)
            self.add(name, False, "two_actors_under", e, recs)
        # outside window: 5 in one 5-minute slot, the 6th 17 minutes later (no 15-minute window holds 6)
        e6 = self.fresh_email("m5f")
        times = self.spread(self.at(19, 30, 5), 5, 80) + [self.at(19, 47, 0)]
        recs = self._failures(e6, self.clean_ip("US"), ua, times, ["sso_login_failed"] * 6)
        self.add(name, False, "outside_window", e6, recs)
        # benign: many initiations + a success for one identity (not failures)
        e7 = self.fresh_email("m5g")
        ip7 = self.clean_ip("FR")
        recs = [self.rec(tt, "sso_login_initiated", self.unauth(ip7, ua, e7))
                for tt in self.spread(self.at(22, 35, 5), 8, 200)]
        recs.append(self.rec(self.at(22, 39, 0), "sso_login_succeeded", self.fresh_user("m5g") | {
            "email_address": e7, "ip_address": ip7, "user_agent": ua}, {"auth_method": "sso"}))
        self.add(name, False, "benign", e7, recs)

    # monitor 6 --------------------------------------------------------------------------------------------------
    def _calls(self, key_id: str, ip: str, ua: str, times: list[int], statuses: list[int]) -> list[ActivityRecord]:
        r = self.r
        a = self.api_actor(key_id, ip, ua)
        out = []
        for tt, st in zip(times, statuses):
            org = r.choice(self.world.orgs)
            url = r.choice([f"{API}/v1/compliance/activities?limit=1000",
                            f"{API}/v1/compliance/organizations/{org.uuid}/users",
                            f"{API}/v1/compliance/apps/chats?limit=100",
                            f"{API}/v1/compliance/apps/chats/claude_chat_01{b58id(r)}/messages"])
            out.append(self.rec(tt, "compliance_api_accessed", a, {
                "request_id": "req_01" + b58id(r), "request_method": "GET", "status_code": st, "url": url}))
        return out

    def m6(self) -> None:
        name = MONITORS[5]
        r = self.r

        def kid():
            return "apikey_01" + b58id(r)

        k = kid()
        self.add(name, True, "revoked_key_burst", k, self._calls(
            k, self.clean_ip("US"), "python-requests/2.31.0", self.spread(self.at(3, 40, 5), 8, 150), [401] * 8))
        k = kid()
        self.add(name, True, "missing_scope_burst", k, self._calls(
            k, self.clean_ip("DE"), SCANNER_UAS[0], self.spread(self.at(18, 55, 5), 6, 150), [403] * 6))
        k = kid()
        self.add(name, False, "threshold_met", k, self._calls(
            k, self.clean_ip("GB"), "curl/8.7.1", self.spread(self.at(7, 55, 5), 5, 150), [403, 401, 403, 401, 403]))
        ip = self.clean_ip("US")
        for _ in range(2):
            k = kid()
            self.add(name, False, "two_actors_under", k, self._calls(
                k, ip, "Go-http-client/2.0", self.spread(self.at(11, 50, 5), 5, 150), [401] * 5))
        k = kid()
        times = self.spread(self.at(14, 5, 5), 5, 80) + [self.at(14, 22, 0)]
        self.add(name, False, "outside_window", k, self._calls(k, self.clean_ip("IE"), "axios/1.7.2", times, [401] * 6))
        k = kid()
        self.add(name, False, "benign", k, self._calls(
            k, self.clean_ip("NL"), "python-httpx/0.27.0", self.spread(self.at(21, 10, 5), 9, 150), [404] * 9))

    # monitor 7 --------------------------------------------------------------------------------------------------
    def m7(self) -> None:
        name = MONITORS[6]
        r = self.r
        admin = self.user_actor(self.pick_user())
        anth = {"type": "anthropic_actor", "email_address": None}
        victims = r.sample(self.world.users, min(2, len(self.world.users)))
        self.add(name, True, "user_deleted", None, [
            self.rec(self.at(3, 0) + i * 40 * US, "org_user_deleted", admin,
                     {"deleted_user_email": v.email, "deleted_user_id": v.id}) for i, v in enumerate(victims)])
        self.add(name, True, "taint_added", None, [self.rec(self.at(9, 55), "org_taint_added", anth, {
            "taint": "abuse_review", "workspace_id": None})])
        org = self.world.research_org
        self.add(name, True, "bulk_deletion", None, [
            self.rec(self.at(16, 0), "org_deletion_requested", admin, org=org),
            self.rec(self.at(16, 2), "org_bulk_delete_initiated", admin, org=org),
            self.rec(self.at(16, 5), "org_deleted_via_bulk", admin, org=org)])
        self.add(name, False, "benign", None, [self.rec(self.at(6, 40), "org_taint_removed", anth, {
            "taint": "abuse_review"})])
        v = r.choice(self.world.users)
        self.add(name, False, "benign", None, [
            self.rec(self.at(13, 10), "org_user_invite_deleted", admin),
            self.rec(self.at(13, 12), "scim_user_deleted", self.world_scim(), {"user_id": v.id})])

    def world_scim(self) -> dict:
        o = self.world.main_org
        return {"type": "scim_directory_sync_actor", "directory_id": o.scim_directory_id,
                "workos_event_id": "event_01" + b58id(self.r, 26), "idp_connection_type": o.idp_connection_type}

    # monitor 8 --------------------------------------------------------------------------------------------------
    def _deletions(self, actor: dict, times: list[int], types: list[str]) -> list[ActivityRecord]:
        r = self.r
        out = []
        for tt, t in zip(times, types):
            proj = "claude_proj_01" + b58id(r)
            f = {"claude_chat_deleted": {"claude_chat_id": "claude_chat_01" + b58id(r)},
                 "claude_project_deleted": {"claude_project_id": proj},
                 "claude_file_deleted": {"claude_file_id": "claude_file_01" + b58id(r),
                                         "filename": r.choice(["salary-bands.xlsx", "customer-list-2026.csv",
                                                               "roadmap-h2.pdf"])},
                 "claude_project_file_deleted": {"claude_file_id": "claude_file_01" + b58id(r),
                                                 "claude_project_id": proj},
                 "claude_project_document_deleted": {"claude_project_document_id": "claude_proj_doc_01" + b58id(r),
                                                     "claude_project_id": proj, "filename": "notes.md"}}[t]
            out.append(self.rec(tt, t, actor, f))
        return out

    def _signin(self, actor: dict, at_us: int) -> ActivityRecord:
        return self.rec(at_us, "sso_login_succeeded", actor, {"auth_method": "sso"})

    def m8(self) -> None:
        name = MONITORS[7]
        r = self.r
        # incident: fresh actor (< 24 h history -> floor alone), 8 deletions of all five types in 10 minutes
        a = self.fresh_user("m8a")
        types = list(M8_TYPES) + ["claude_chat_deleted", "claude_file_deleted", "claude_project_document_deleted"]
        r.shuffle(types)
        recs = self._deletions(a, self.spread(self.at(2, 30, 5), 8, 600), types)
        self.add(name, True, "mass_deletion", a["email_address"], recs, history=[self._signin(a, self.at(2, 25))])
        # incident: 12 chat deletions in 20 minutes
        a = self.fresh_user("m8b")
        recs = self._deletions(a, self.spread(self.at(15, 35, 5), 12, 1200), ["claude_chat_deleted"] * 12)
        self.add(name, True, "mass_chat_deletion", a["email_address"], recs,
                 history=[self._signin(a, self.at(15, 31))])
        # under the floor: 4 in an hour
        a = self.fresh_user("m8c")
        types = ["claude_chat_deleted", "claude_file_deleted", "claude_chat_deleted", "claude_project_deleted"]
        self.add(name, False, "under_floor", a["email_address"],
                 self._deletions(a, self.spread(self.at(5, 10, 5), 4, 900), types))
        # two actors with 4 each in the same hour bucket
        for tag in ("m8d", "m8e"):
            a = self.fresh_user(tag)
            self.add(name, False, "two_actors_under", a["email_address"],
                     self._deletions(a, self.spread(self.at(8, 40, 5), 4, 600), ["claude_chat_deleted"] * 4))
        # 6 deletions in 5 minutes split 3 / 3 across an hour boundary
        a = self.fresh_user("m8f")
        times = self.spread(self.at(17, 57, 0), 3, 170) + self.spread(self.at(18, 0, 5), 3, 110)
        self.add(name, False, "outside_window", a["email_address"],
                 self._deletions(a, times, ["claude_chat_deleted"] * 6))
        # benign: 7 failed deletions (not a deletion)
        a = self.fresh_user("m8g")
        self.add(name, False, "benign", a["email_address"], [
            self.rec(tt, "claude_chat_deletion_failed", a, {"claude_chat_id": "claude_chat_01" + b58id(r)})
            for tt in self.spread(self.at(21, 20, 5), 7, 500)])
        # baseline: a cleanup account deleting 4 every other hour since yesterday 10:00 (25 h of history),
        # then 5 at 11:xx today: >= floor but <= mean + 2 sigma (mean 2.08, sigma ~2.0 -> ~6.1)
        a = self.fresh_user("m8h")
        a["user_agent"] = "python-requests/2.32.3"
        hist = []
        first = self.day_us - DAY_US + _t(10, 0, 5)
        for h in range(0, 25, 2):
            hs = first + h * HOUR_US
            hist.extend(self._deletions(a, self.spread(hs + 60 * US, 4, 1800), ["claude_chat_deleted"] * 4))
        counts = [4 if h % 2 == 0 else 0 for h in range(25)]
        mean = sum(counts) / len(counts)
        sd = (sum((c - mean) ** 2 for c in counts) / len(counts)) ** 0.5
        recs = self._deletions(a, self.spread(self.at(11, 10, 5), 5, 900), ["claude_chat_deleted"] * 5)
        self.add(name, False, "baseline_absorbs", a["email_address"], recs,
                 {"history_from": iso_us(first), "baseline_mean": round(mean, 4),
                  "baseline_stddev": round(sd, 4)}, history=hist)

    # monitor 9 --------------------------------------------------------------------------------------------------
    def m9(self) -> None:
        name = MONITORS[8]
        r = self.r
        ip = self.clean_ip("US")
        ua = "Claude/1.250304.2 (iPhone; iOS 18.1; Scale/3.00)"
        self.add(name, True, "anonymous_mobile", None, [
            self.rec(tt, "anonymous_mobile_login_attempted", self.unauth(ip, ua))
            for tt in self.spread(self.at(4, 10, 5), 2, 120)])
        ip2 = self.clean_ip("SG")
        ua2 = SCANNER_UAS[4]
        proj = "claude_proj_01" + b58id(r)
        org = self.world.main_org
        self.add(name, True, "unauthenticated_project_access", None, [
            self.rec(self.at(14, 50), "claude_project_file_access_failed", self.unauth(ip2, ua2, None), {
                "claude_file_id": "claude_file_01" + b58id(r), "claude_project_id": proj}, org=org),
            self.rec(self.at(14, 52), "claude_project_file_uploaded", self.unauth(ip2, ua2, None), {
                "claude_file_id": "claude_file_01" + b58id(r), "claude_project_id": proj,
                "filename": "payload.html"}, org=org)])
        ip3 = self.clean_ip("GB")
        e = self.fresh_email("m9c")
        ua3 = browser_ua(r, "macos")
        self.add(name, False, "benign_signin_flow", None, [
            self.rec(self.at(8, 5), "sso_login_initiated", self.unauth(ip3, ua3, e)),
            self.rec(self.at(8, 6), "magic_link_login_initiated", self.unauth(ip3, ua3, e)),
            self.rec(self.at(8, 7), "phone_code_sent", self.unauth(ip3, ua3, None)),
            self.rec(self.at(8, 8), "sso_second_factor_magic_link", self.unauth(ip3, ua3, e))])
        e = self.fresh_email("m9d")
        self.add(name, False, "benign_signin_failure", None, [
            self.rec(self.at(19, 45), "magic_link_login_initiated", self.unauth(ip3, ua3, e)),
            self.rec(self.at(19, 46), "magic_link_login_failed", self.unauth(ip3, ua3, e))])

    # peers' rules (pipeline/monitors/config.py PEER_RULES) ------------------------------------------------------
    def peer_user(self, tag: str, ua: str | None = None) -> dict:
        a = self.fresh_user(tag)
        if ua:
            a["user_agent"] = ua
        return a

    def peers(self) -> None:
        """An incident and a near miss for every peer rule, each by fresh actors (so that no two rules share an
        actor by chance); a record that two rules report is declared for both."""
        r = self.r
        one = self.add
        # admin_role_granted
        a = self.peer_user("p1a")
        one("admin_role_granted", True, "admin_granted", None, [self.rec(self.at(5, 20), "role_assignment_granted", a, {
            "role": "admin", "target_id": "user_01" + b58id(r), "target_type": "user", "resource_type": "organization",
            "resource_id": self.world.main_org.uuid})])
        one("admin_role_granted", False, "user_role_granted", None, [self.rec(
            self.at(10, 20), "role_assignment_granted", a, {"role": "user", "target_id": "user_01" + b58id(r),
                                                            "target_type": "user", "resource_type": "organization",
                                                            "resource_id": self.world.main_org.uuid})])
        # primary_owner_transferred
        a = self.peer_user("p2a")
        one("primary_owner_transferred", True, "transferred", None, [self.rec(
            self.at(12, 25), "primary_owner_transferred", a, {"previous_owner_id": "user_01" + b58id(r),
                                                              "new_owner_id": "user_01" + b58id(r)})])
        one("primary_owner_transferred", False, "owner_role_updated", None, [self.rec(
            self.at(18, 25), "claude_user_role_updated", a, {"user_id": "user_01" + b58id(r),
                                                             "user_email": self.fresh_email("p2b"),
                                                             "previous_role": "user", "current_role": "developer"})])
        # sso_disabled / sso_connection_removed / magic_link_second_factor_disabled
        a = self.peer_user("p3a")
        one("sso_disabled", True, "sso_off", None, [self.rec(self.at(6, 50), "org_sso_toggled", a, {"enabled": False})])
        one("sso_disabled", False, "sso_on", None, [self.rec(self.at(14, 10), "org_sso_toggled", a, {"enabled": True})])
        conn_id = "conn_01" + b58id(r)
        one("sso_connection_removed", True, "deactivated_and_deleted", None, [
            self.rec(self.at(8, 25), "org_sso_connection_deactivated", a, {"connection_id": conn_id}),
            self.rec(self.at(8, 27), "org_sso_connection_deleted", a, {"connection_id": conn_id})])
        one("sso_connection_removed", False, "activated", None, [self.rec(
            self.at(20, 35), "org_sso_connection_activated", a, {"connection_id": "conn_01" + b58id(r)})])
        one("magic_link_second_factor_disabled", True, "second_factor_off", None, [self.rec(
            self.at(9, 10), "org_magic_link_second_factor_toggled", a, {"enabled": False})])
        one("magic_link_second_factor_disabled", False, "second_factor_on", None, [self.rec(
            self.at(17, 10), "org_magic_link_second_factor_toggled", a, {"enabled": True})])
        # resource_shared_publicly: an object audience and a list of audiences
        a = self.peer_user("p6a")
        art = {"claude_artifact_id": "claude_artifact_01" + b58id(r),
               "claude_artifact_version_id": "claude_artifact_version_01" + b58id(r)}
        one("resource_shared_publicly", True, "artifact_anyone_with_link", None, [self.rec(
            self.at(10, 50), "claude_artifact_sharing_updated", a,
            art | {"audience": {"type": "anyone_with_link"}, "previous_mode": "organization",
                   "new_mode": "anyone_with_link"})])
        one("resource_shared_publicly", True, "project_public", None, [self.rec(
            self.at(15, 50), "claude_project_sharing_updated", a, {
                "claude_project_id": "claude_proj_01" + b58id(r),
                "audience": [{"type": "organization"}, {"type": "public"}]})])
        one("resource_shared_publicly", False, "artifact_organization", None, [self.rec(
            self.at(21, 40), "claude_artifact_sharing_updated", a, art | {"audience": {"type": "organization"}})])
        # access_key_changed (also: the admin key deletion of monitor 1's near miss)
        a = self.peer_user("p7a")
        one("access_key_changed", True, "service_key_created_and_revoked", None, [
            self.rec(self.at(1, 40), "service_key_created", a, {"service_key_id": "service_key_01" + b58id(r)}),
            self.rec(self.at(1, 43), "service_key_revoked", a, {"service_key_id": "service_key_01" + b58id(r)})])
        one("access_key_changed", False, "scoped_key_deleted", None, [self.rec(
            self.at(22, 50), "scoped_api_key_deleted", a, {"scoped_api_key_id": "apikey_01" + b58id(r)})])
        # mcp_server_created
        one("mcp_server_created", True, "created", None, [self.rec(
            self.at(3, 35), "mcp_server_created", a, {"mcp_server_id": "mcpsrv_01" + b58id(r),
                                                      "mcp_server_name": "crm-connector"})])
        one("mcp_server_created", False, "updated", None, [self.rec(
            self.at(16, 35), "mcp_server_updated", a, {"mcp_server_id": "mcpsrv_01" + b58id(r)})])
        # first_data_export: the actor's first export fires, the second the same day does not
        a = self.peer_user("p9a")
        one("first_data_export", True, "first_export", a["email_address"], [self.rec(
            self.at(4, 5), "org_data_export_started", a, {"export_type": "full"})])
        one("first_data_export", False, "second_export", a["email_address"], [self.rec(
            self.at(19, 55), "org_data_export_started", a, {"export_type": "full"})])
        # impossible_travel (disabled by default): US then Singapore 30 minutes later; Germany then the US 12 h later
        a = self.peer_user("p10a")
        one("impossible_travel", True, "us_then_singapore", a["email_address"], [
            self.rec(self.at(7, 40), "sso_login_succeeded", a | {"ip_address": self.clean_ip("US")},
                     {"auth_method": "sso"}),
            self.rec(self.at(8, 10), "sso_login_succeeded", a | {"ip_address": self.clean_ip("SG")},
                     {"auth_method": "sso"})])
        a = self.peer_user("p10b")
        one("impossible_travel", False, "plausible_flight", a["email_address"], [
            self.rec(self.at(7, 45), "sso_login_succeeded", a | {"ip_address": self.clean_ip("DE")},
                     {"auth_method": "sso"}),
            self.rec(self.at(19, 45), "sso_login_succeeded", a | {"ip_address": self.clean_ip("US")},
                     {"auth_method": "sso"})])
        # automated_privileged_action: SSO settings changed by a script; the same by a browser, and a script's chat
        a = self.peer_user("p11a", "python-requests/2.32.3")
        one("automated_privileged_action", True, "script_changes_sso", a["email_address"], [self.rec(
            self.at(11, 35), "org_sso_toggled", a, {"enabled": True})])
        b = self.peer_user("p11b")
        one("automated_privileged_action", False, "browser_changes_sso", b["email_address"], [self.rec(
            self.at(13, 35), "org_sso_toggled", b, {"enabled": True})])
        one("automated_privileged_action", False, "script_creates_chat", a["email_address"], [self.rec(
            self.at(13, 37), "claude_chat_created", a, {"claude_chat_id": "claude_chat_01" + b58id(r)})])
        # excessive_chat_deletions: 31 / 29 in a day, at most 3 an hour (under the deletion-outlier floor of 5)
        for tag, n, fire, variant in (("p12a", 31, True, "31_in_a_day"), ("p12b", 29, False, "29_in_a_day")):
            a = self.peer_user(tag)
            times = [self.at(1 + k // 3, 5 + (k % 3) * 15 + (2 if fire else 7)) for k in range(n)]
            one("excessive_chat_deletions", fire, variant, a["email_address"],
                self._deletions(a, times, ["claude_chat_deleted"] * n))
        # excessive_chat_access_failures: 55 in 6 minutes / 49 in 4 minutes
        for tag, n, hh, mm, span, fire, variant in (("p13a", 55, 14, 31, 360, True, "55_in_6_minutes"),
                                                    ("p13b", 49, 20, 11, 220, False, "49_in_4_minutes")):
            a = self.peer_user(tag)
            one("excessive_chat_access_failures", fire, variant, a["email_address"], [
                self.rec(tt, "claude_chat_access_failed", a, {"claude_chat_id": "claude_chat_01" + b58id(r)})
                for tt in self.spread(self.at(hh, mm, 0), n, span)])
        # logging_disabled_then_privileged_change: 30 minutes later (fires; the disable is also monitor 2's and the
        # MCP server the peers' mcp_server_created), 70 minutes later (only monitor 2 fires)
        seq = "logging_disabled_then_privileged_change"
        a = self.peer_user("p14a")
        off = self.rec(self.at(5, 50), "org_compliance_api_settings_updated", a, {
            "compliance_api_enabled": True, "compliance_api_logging_enabled": False})
        mcp = self.rec(self.at(6, 20), "mcp_server_created", a, {"mcp_server_id": "mcpsrv_01" + b58id(r),
                                                                 "mcp_server_name": "exfil-bridge"})
        one(seq, True, "mcp_server_30_minutes_later", a["email_address"], [off, mcp])
        one(MONITORS[1], True, "logging_disabled_before_privileged_change", None, [off])
        one("mcp_server_created", True, "after_logging_disabled", None, [mcp])
        b = self.peer_user("p14b")
        off = self.rec(self.at(21, 0), "org_compliance_api_settings_updated", b, {"compliance_api_enabled": False})
        late = self.rec(self.at(22, 10), "role_assignment_granted", b, {
            "role": "user", "target_id": "user_01" + b58id(r), "target_type": "user",
            "resource_type": "organization", "resource_id": self.world.main_org.uuid})
        one(seq, False, "role_change_70_minutes_later", b["email_address"], [off, late])
        one(MONITORS[1], True, "api_disabled_without_follow_up", None, [off])

    # coverage ---------------------------------------------------------------------------------------------------
    def coverage(self) -> dict[int, list[tuple]]:
        """One background event per known type (except those the plan covers) and per actor type, a few
        unknown types and unknown extra fields, at random times of the day (filtered to [start, end) later)."""
        r = rng_for("coverage", self.cfg.seed, self.day)
        gen = self.gen
        items: list[tuple[int, str, str | None, dict | None]] = []
        for t in gen.catalog.types:
            if t in COVERED_BY_PLAN:
                continue
            items.append((int(r.random() * DAY_US), t, None, None))
        for t in UNKNOWN_TYPES:
            items.append((int(r.random() * DAY_US), t, "user_web", None))
        # every actor kind at least once, on a type that allows it
        wanted = ["api", "admin", "svc", "anthropic", "system", "scim", "fed_id", "fed", "attested", "unknown",
                  "unauth", "user_web", "user_code"]
        for kind in wanted:
            atype = gen._kind_to_atype[kind]
            cands = [t for t in gen.bg_types if t in gen.catalog.type_set and t not in COVERED_BY_PLAN
                     and t != "compliance_api_accessed"
                     and (atype in gen.catalog.allowed_actors(t) or kind == "unknown")
                     and (kind != "unknown" or len(gen.catalog.allowed_actors(t)) == 11)
                     and (atype != "unauthenticated_user_actor" or t in SIGNIN_FLOW)
                     and (kind != "user_code" or t.startswith(CODE_PREFIXES))]
            if atype == "api_actor":
                cands = [t for t in cands if t not in NULL_ORG_TYPES] or cands
            items.append((int(r.random() * DAY_US), r.choice(cands), kind, None))
        for i, (fname, val) in enumerate(UNKNOWN_EXTRA_FIELDS):
            t = r.choice(["claude_chat_viewed", "claude_project_viewed", "claude_file_viewed", "claude_chat_created"])
            items.append((int(r.random() * DAY_US), t, "user_web", {fname: val}))
        by_hour: dict[int, list[tuple]] = {}
        base_hour = self.day * 24
        for off, t, kind, extra in items:
            h = base_hour + off // HOUR_US
            by_hour.setdefault(h, []).append((off % HOUR_US, t, kind, extra))
        return by_hour
