"""Simulated claude.ai chats and their message timelines (contract.md §4).

Everything is a pure function of (config.seed, UTC day, world) plus the hard deletes made through the DELETE endpoint
(kept in memory). Each UTC day's chats are generated together (from one RNG seeded by seed+day) the first time a view
needs that day, then cached; a chat's message *timestamps* are fixed at that point (the list view needs them for
`updated_at`), while message *content* is generated lazily per chat from its own RNG and kept in a bounded LRU.

Views are "as of now" (epoch microseconds):
  * a chat exists from `created_at`; messages appear at their `created_at`;
  * `updated_at` = max(created_at, last visible message, rename time, soft-delete time) over events <= now;
  * soft delete (~3%): `deleted_at` becomes non-null at its time, chat stays readable;
  * hard delete (~1% by retention at a planned time, or `hard_delete()`): from then on absent from lists, 404 on reads.
With a finite `config.end`, events at or after `end` are dropped, so a historical dataset is closed.

Returned dicts are shared with the caches: treat them as read-only.

Timestamps are RFC 3339 with microseconds and `Z` (`2025-06-07T08:09:10.123456Z`, same as config.iso_us); sort keys
are the same instants as ints, so `iso(us)` round-trips exactly.

Public API of ChatStore(config, world) (Dataset delegates here):
  chats_view(now) -> (chats, created_us, updated_us)   parallel lists sorted by (created_us, id)
  chat_rows(now) -> [(chat, created_us, updated_us)]   same, as tuples (the shape simulator.app accepts)
  chats_view_by_updated(now)                           like chats_view, sorted by (updated_us, id)
  get_chat(id, now) -> chat | None
  chat_messages_view(id, now) -> (chat, messages) | None   messages whole; the endpoint's caps: apply_truncation()
  hard_delete(id, now) -> bool
  ground_truth(now, updated_gte_us=None, updated_lt_us=None) -> [{id, created_at, updated_at, deleted_at,
      hard_deleted, hard_deleted_at, message_ids, user_id, organization_uuid}]
  users_view(org_uuid), project_ids(org_uuid), lifecycle_events(gte, lt) (claude_chat_created/updated/deleted facts)
"""
from __future__ import annotations

import bisect
import hashlib
import json
import random
import threading
import uuid as _uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from itertools import islice

US = 1_000_000
MIN_US = 60 * US
HOUR_US = 3600 * US
DAY_US = 86_400 * US
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

# Server-side cap applied when a client asks for "-1" (no limit) in the messages endpoint's *_max_chars params.
SERVER_MAX_CHARS = 1_000_000  # same as simulator.app MESSAGE_CAP_SERVER_MAX
DEFAULT_MAX_CHARS = 10_000

_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_TABLE = bytes(ord(_B58[b % 58]) for b in range(256))  # byte -> base58 char (the slight bias is harmless)


# ----------------------------------------------------------------------------------------------------------- helpers

def to_us(value) -> int | None:
    """datetime / RFC 3339 string / int µs -> epoch µs (naive datetimes are UTC)."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise TypeError("bool is not a time")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(round(value * US))
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        d = value - EPOCH
        return (d.days * 86_400 + d.seconds) * US + d.microseconds
    raise TypeError(f"cannot convert {type(value).__name__} to a time")


_DATE_CACHE: dict[int, str] = {}


def iso(us: int) -> str:
    days, rem = divmod(us, DAY_US)
    date = _DATE_CACHE.get(days)
    if date is None:
        date = _DATE_CACHE[days] = (EPOCH + timedelta(days=days)).strftime("%Y-%m-%d")
    secs, frac = divmod(rem, US)
    h, secs = divmod(secs, 3600)
    m, secs = divmod(secs, 60)
    return f"{date}T{h:02d}:{m:02d}:{secs:02d}.{frac:06d}Z"


def _digest(parts: tuple, size: int) -> bytes:
    return hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=size).digest()


def hid(prefix: str, *parts) -> str:
    """Deterministic ID `<prefix>01` + 24 base58 chars (the shape of contract §11), derived from `parts`."""
    return prefix + "01" + _digest(parts, 24).translate(_B58_TABLE).decode()


def huuid(*parts) -> str:
    return str(_uuid.UUID(bytes=_digest(parts, 16), version=4))


def file_bytes(file_id: str, size_bytes: int, mime_type: str | None = None) -> bytes:
    """Deterministic content of an uploaded/generated file; `md5` in the message objects is computed over this."""
    rng = random.Random("file:" + file_id)
    mime = mime_type or ""
    if mime.startswith("text/") or mime in ("application/json",):
        chunk = (" ".join(_sentence(rng) for _ in range(40)) + "\n").encode()
        reps = size_bytes // len(chunk) + 1
        return (chunk * reps)[:size_bytes]
    # A repeated 64 KiB random block: cheap to produce at any size, still opaque binary.
    head = _MAGIC.get(mime, b"")[:size_bytes]
    block = rng.randbytes(min(65_536, size_bytes))
    body = block * ((size_bytes - len(head)) // max(1, len(block)) + 1)
    return head + body[: size_bytes - len(head)]


_MAGIC = {
    "application/pdf": b"%PDF-1.7\n",
    "image/png": b"\x89PNG\r\n\x1a\n",
    "image/jpeg": b"\xff\xd8\xff\xe0",
}
_ZIP = b"PK\x03\x04"
for _m in ("application/vnd.openxmlformats-officedocument.wordprocessingml.document",
           "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
           "application/vnd.openxmlformats-officedocument.presentationml.presentation", "application/zip"):
    _MAGIC[_m] = _ZIP


# --------------------------------------------------------------------------------------------------------- word lists

TEAMS = ["Finance", "Legal", "Marketing", "Sales", "Engineering", "People", "Procurement", "Customer Success",
         "Security", "Operations", "Product", "Data"]
DOCS = ["memo", "executive summary", "project proposal", "email", "status report", "slide outline", "FAQ",
        "policy draft", "job description", "press release", "contract clause review", "RFP response", "SQL query",
        "Python script", "runbook", "meeting agenda", "risk assessment", "customer letter"]
CODE_DOCS = {"SQL query", "Python script"}
TOPICS = ["Q3 budget variance", "vendor onboarding", "customer churn", "pricing update", "board meeting prep",
          "GDPR data mapping", "quarterly business review", "hiring plan", "incident postmortem", "product launch",
          "renewal negotiation", "travel policy", "expense reconciliation", "SOC 2 audit evidence",
          "supply chain delays", "partner agreement", "market sizing", "onboarding checklist", "OKR planning",
          "data retention policy", "sales compensation plan", "office relocation", "cloud cost optimization",
          "accounts receivable aging", "brand guidelines", "support escalation process", "annual security training",
          "procurement policy", "EMEA expansion", "API deprecation notice"]
SUBJECTS = ["The finance team", "Our current process", "This proposal", "The vendor", "Each regional office",
            "The customer success team", "Legal", "The steering committee", "Our largest customer",
            "The new onboarding flow", "The Q3 forecast", "Procurement", "The security review", "The product roadmap",
            "Headcount planning", "The audit committee", "The sales team", "The revised plan"]
VERBS = ["should prioritize", "needs to reconcile", "will likely reduce", "is expected to improve", "must document",
         "has not yet approved", "can consolidate", "will need to revisit", "should clarify", "is currently tracking",
         "could accelerate", "depends on", "should review", "has flagged concerns about"]
OBJECTS = ["the quarterly forecast", "open purchase orders", "customer onboarding time", "quarterly access reviews",
           "the renewal pipeline", "vendor payment terms", "the data retention schedule", "the support ticket backlog",
           "the migration timeline", "regional pricing", "the hiring plan", "contract renewal dates",
           "the travel and expense policy", "incident response runbooks", "the marketing budget", "SLA commitments",
           "gross margin targets", "the implementation roadmap"]
QUALIFIERS = ["before the end of the quarter", "by roughly {pct}%", "across all business units",
              "in line with the updated policy", "without adding headcount", "for the EMEA region",
              "ahead of the board meeting", "once legal signs off", "over the next two sprints",
              "compared with last year", "within the approved budget", "for enterprise accounts", ""]
CONNECTORS = ["In addition,", "However,", "As a result,", "For context,", "Overall,", "Separately,", "Importantly,"]
PEOPLE = ["Priya", "Marcus", "Elena", "David", "Aisha", "Tom", "Sofia", "Kenji", "Laura", "Omar", "Grace", "Lukas"]
LANGS = ["German", "French", "Spanish", "Japanese", "Portuguese"]
COMPANIES = ["Northwind Analytics", "Globex Logistics", "Initech Software", "Umbrella Health", "Vandelay Imports",
             "Stark Components", "Contoso Retail"]
CODENAMES = ["Falcon", "Bluebird", "Atlas", "Juniper", "Orion", "Tidewater"]
SYSTEMS = ["staging VPN", "finance SFTP", "payroll portal", "admin console", "shared mailbox"]
ROLES = ["senior analyst", "engineering manager", "account executive", "data scientist", "paralegal"]

OPENERS = ["Here's a draft {doc} for the {team} team on {topic}.", "Sure. Here is a revised version.",
           "Good question. A few points to consider:", "I've reviewed what you shared; here is a summary.",
           "Here is an updated outline that reflects your notes.", "Below is a structured take on {topic}."]
CLOSERS = ["Let me know if you'd like me to adjust the tone or length.",
           "Want me to turn this into a slide outline?", "I can also draft a follow-up email if that helps.",
           "Happy to tighten any section further.", ""]
FIRST_ASKS = ["Can you help me draft {a_doc} for the {team} team about {topic}?",
              "I need {a_doc} on {topic} for tomorrow's {team} sync. Can you start one?",
              "Summarize the key risks around {topic} and suggest next steps for {team}.",
              "Please review my notes on {topic} and turn them into {a_doc}.",
              "What are the main considerations for {topic} in our EMEA entities?",
              "Write {a_doc} explaining {topic} to the wider {team} organization."]
FOLLOW_UPS = ["Thanks, can you make it shorter and more direct?", "Can you add a section on {topic2}?",
              "Please turn the key numbers into a table.",
              "Good. Now draft a short email to {person} summarizing this.", "What risks am I missing?",
              "Can you rewrite this for an executive audience?", "Use a more formal tone and cut it to one page.",
              "Double-check the math in the second section.", "Translate the summary into {lang}.",
              "Let's pick this back up. Where did we land on {obj}?", "Add concrete owners and due dates."]
SENSITIVE = ["Note: this is confidential and should not leave the {team} team.",
             "The temporary password for the shared {system} account is {pw}; please put it in the handover notes.",
             "Salary bands for the new {role} roles are ${lo}k to ${hi}k. Keep this internal.",
             "The benefits vendor needs the employee list with SSNs (for example {ssn}) by Friday.",
             "This relates to the planned acquisition of {company} (project {codename}), which is under NDA.",
             "The customer's credit card ending in {cc4} was charged twice; please draft the refund note.",
             "We are planning a reduction in force affecting {n} roles in {team}. Strictly confidential.",
             "Use our production API key {key} for the integration test."]

MODELS = [("claude-sonnet-4-5", 34), ("claude-opus-4-7", 18), ("claude-haiku-4-5", 12), ("claude-opus-4-1", 9),
          ("claude-sonnet-4", 9), ("claude-opus-4-5", 8), ("claude-3-7-sonnet-20250219", 4),
          ("claude-3-5-haiku-20241022", 3), (None, 3)]

_LIFE_TYPES = ("claude_chat_created", "claude_chat_updated", "claude_chat_deleted")
_MODEL_CUM = [sum(w for _, w in MODELS[: i + 1]) for i in range(len(MODELS))]
_NAME_FORMATS = ["{Topic} {doc}", "{Doc} for {team}", "Help with {topic}", "{Topic} analysis", "{team} {doc}: {topic}"]

# (extension, mime type, median size in bytes)
FILE_TYPES = [("pdf", "application/pdf", 250_000), ("docx", "application/vnd.openxmlformats-officedocument."
              "wordprocessingml.document", 60_000), ("xlsx", "application/vnd.openxmlformats-officedocument."
              "spreadsheetml.sheet", 90_000), ("csv", "text/csv", 40_000), ("png", "image/png", 300_000),
              ("jpg", "image/jpeg", 200_000), ("txt", "text/plain", 8_000), ("md", "text/markdown", 6_000),
              ("pptx", "application/vnd.openxmlformats-officedocument.presentationml.presentation", 900_000)]
GEN_FILE_TYPES = [("xlsx", FILE_TYPES[2][1], 30_000), ("csv", "text/csv", 12_000), ("png", "image/png", 80_000),
                  ("pdf", "application/pdf", 120_000), ("docx", FILE_TYPES[1][1], 25_000),
                  ("md", "text/markdown", 4_000)]
ARTIFACT_TYPES = ["text/markdown", "application/vnd.ant.code", "text/html", "application/vnd.ant.react",
                  "image/svg+xml", "application/vnd.ant.mermaid"]

# (tool name, integration_name, mcp_server_url, weight)
TOOLS = [("web_search", None, None, 30), ("web_fetch", None, None, 14), ("repl", None, None, 8),
         ("bash_tool", None, None, 8), ("create_file", None, None, 8), ("conversation_search", None, None, 4),
         ("google_drive_search", "Google Drive", None, 8),
         ("search_jira_issues_using_jql", "Atlassian", "https://mcp.atlassian.com/v1/sse", 7),
         ("asana_search_tasks", "Asana", "https://mcp.asana.com/sse", 4),
         ("list_issues", "Linear", "https://mcp.linear.app/sse", 4),
         ("slack_search_messages", "Slack", "https://mcp.slack.com/mcp", 5)]
FILE_TOOLS = {"bash_tool", "create_file"}

# Local-time activity shape (weekday office hours), indexed by local hour.
DIURNAL = [0.15, 0.1, 0.08, 0.07, 0.08, 0.15, 0.35, 0.7, 1.2, 1.6, 1.8, 1.7, 1.3, 1.5, 1.7, 1.6, 1.4, 1.1, 0.8, 0.6,
           0.5, 0.45, 0.35, 0.22]
_DIURNAL_CUM = [sum(DIURNAL[: i + 1]) for i in range(24)]
UTC_OFFSET_H = {"US": -6, "CA": -5, "MX": -6, "BR": -3, "AR": -3, "CL": -4, "CO": -5, "GB": 0, "IE": 0, "PT": 0,
                "FR": 1, "DE": 1, "ES": 1, "IT": 1, "NL": 1, "BE": 1, "SE": 1, "NO": 1, "DK": 1, "PL": 1, "CH": 1,
                "AT": 1, "CZ": 1, "FI": 2, "GR": 2, "IL": 2, "ZA": 2, "EG": 2, "UA": 2, "TR": 3, "RU": 3, "SA": 3,
                "IR": 3.5, "AE": 4, "PK": 5, "IN": 5.5, "BD": 6, "TH": 7, "VN": 7, "ID": 7, "SG": 8, "CN": 8,
                "HK": 8, "TW": 8, "PH": 8, "MY": 8, "JP": 9, "KR": 9, "KP": 9, "AU": 10, "NZ": 12, "CU": -5,
                "SY": 3, "NG": 1, "KE": 3}


def _sentence(rng: random.Random) -> str:
    q = rng.choice(QUALIFIERS).format(pct=rng.randint(3, 40))
    s = f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)}"
    return (s + " " + q if q else s) + "."


def _paragraph(rng: random.Random, n: int | None = None) -> str:
    n = n or rng.randint(2, 5)
    out = []
    for i in range(n):
        s = _sentence(rng)
        if i and rng.random() < 0.3:
            s = rng.choice(CONNECTORS) + " " + s[0].lower() + s[1:]
        out.append(s)
    return " ".join(out)


def _long_text(rng: random.Random, n_chars: int) -> str:
    parts, total = [], 0
    while total < n_chars:
        p = _paragraph(rng, rng.randint(3, 7))
        parts.append(p)
        total += len(p) + 2
    return "\n\n".join(parts)


# ------------------------------------------------------------------------------------------------------ world access

@dataclass(frozen=True, slots=True)
class _Owner:
    """What the chats need from a world user, normalised (attribute names of World.User may evolve)."""
    id: str
    email: str
    full_name: str
    organization_role: str
    created_us: int
    joined_us: int
    home_country: str | None
    org_uuid: str
    org_id: str
    weight: float          # how chatty this user is (heavy-tailed)
    index: int


@dataclass(frozen=True, slots=True)
class _SynthUser:
    id: str
    full_name: str
    email: str
    organization_role: str
    created_at: int
    joined_at: int
    home_country: str


@dataclass(frozen=True, slots=True)
class _SynthOrg:
    uuid: str
    id: str
    name: str


def _chat_orgs(world) -> list:
    """Linked claude.ai orgs: content endpoints serve claude.ai data only (no parent, no Console orgs)."""
    orgs = list(getattr(world, "orgs", None) or [])
    parent = getattr(world, "parent_org", None)
    out = []
    for o in orgs:
        if parent is not None and getattr(o, "uuid", None) == getattr(parent, "uuid", object()):
            continue
        kind = str(getattr(o, "kind", None) or "claude_ai").lower()  # World.Org.kind: claude_ai | console | parent
        if kind in ("console", "parent"):
            continue
        out.append(o)
    return out


# ----------------------------------------------------------------------------------------------------------- records

class _Chat:
    __slots__ = ("id", "href", "created_us", "created_iso", "owner", "user_obj", "project_id", "model", "name",
                 "rename_us", "new_name", "soft_us", "gone_us", "planned_gone_us", "msg_times", "msg_ids", "final_us",
                 "final", "theme")


class ChatStore:
    """Chats and messages of the simulated tenant; see the module docstring for the time semantics."""

    def __init__(self, config, world=None, *, message_cache_size: int = 2048):
        self.config = config
        self.seed = int(getattr(config, "seed", 0))
        self.start_us = to_us(getattr(config, "start"))
        self.end_us = to_us(getattr(config, "end", None))
        self.per_day = float(getattr(config, "chats_per_day", 400))
        self._world = world
        self._owners, self._orgs = self._load_owners(world)
        self._owners_by_join = sorted(self._owners, key=lambda o: (o.joined_us, o.id))
        self._join_keys = [o.joined_us for o in self._owners_by_join]
        self._join_cum = []
        acc = 0.0
        for o in self._owners_by_join:
            acc += o.weight
            self._join_cum.append(acc)
        self._user_objs = {o.id: {"id": o.id, "email_address": o.email} for o in self._owners}
        self._projects = {uuid: [hid("claude_proj_", self.seed, uuid, j) for j in range(max(2, n // 4))]
                          for uuid, n in self._org_sizes().items()}

        self._chats: list[_Chat] = []            # sorted by (created_us, id)
        self._created: list[int] = []            # parallel sort keys
        self._by_id: dict[str, _Chat] = {}
        self._events: list[int] = []             # every instant at which some view changes
        self._life: list[tuple] = []             # lifecycle events for the activity feed, sorted
        self._version = 0                        # bumps on generation and on API hard deletes
        self._next_day = self.start_us // DAY_US
        last = self.end_us - 1 if self.end_us is not None else None
        self._last_day = last // DAY_US if last is not None else None
        self._view_cache: tuple | None = None
        self._upd_cache: tuple | None = None
        self._rows_cache: tuple | None = None
        self._msg_cache: OrderedDict[str, list[dict]] = OrderedDict()
        self._msg_cache_size = message_cache_size
        self._lock = threading.RLock()  # generation, deletes and the LRU mutate shared state (server thread pools)

    # ------------------------------------------------------------------------------------------------ world loading
    def _load_owners(self, world):
        orgs = _chat_orgs(world) if world is not None else []
        users_by_org = dict(getattr(world, "users_by_org", None) or {}) if world is not None else {}
        if not orgs:
            orgs = [_SynthOrg(huuid(self.seed, "org", i), hid("org_", self.seed, "org", i), f"Sim Org {i + 1}")
                    for i in range(2)]
        owners: list[_Owner] = []
        synth_origin = self.start_us - 400 * DAY_US
        for org in orgs:
            users = list(users_by_org.get(org.uuid, ()))
            if not users and not any(users_by_org.values()):
                # No users in the world at all: a few synthetic ones so the chats have owners.
                users = [_SynthUser(hid("user_", self.seed, org.uuid, k), f"Sim User {k + 1}",
                                    f"sim.user{k + 1}@{org.uuid[:8]}.example.com", "user",
                                    synth_origin + k * DAY_US, synth_origin + k * DAY_US, "US") for k in range(6)]
            for u in users:
                created = to_us(getattr(u, "created_at", None))
                joined = to_us(getattr(u, "joined_at", None))
                if joined is None:
                    joined = created if created is not None else synth_origin
                if created is None:
                    created = joined
                # Same heavy users as in the activity feed when the world says who they are.
                w = getattr(u, "weight", None) or random.Random(f"chatty:{self.seed}:{u.id}").paretovariate(1.6)
                owners.append(_Owner(u.id, getattr(u, "email", None) or getattr(u, "email_address", ""),
                                     getattr(u, "full_name", "") or "", getattr(u, "organization_role", "user"),
                                     created, joined, getattr(u, "home_country", None), org.uuid,
                                     getattr(org, "id", None) or "org_" + org.uuid.replace("-", "")[:24],
                                     min(w, 25.0), len(owners)))
        return owners, orgs

    def _org_sizes(self) -> dict[str, int]:
        sizes = {o.uuid: 0 for o in self._orgs}
        for ow in self._owners:
            sizes[ow.org_uuid] = sizes.get(ow.org_uuid, 0) + 1
        return sizes

    # --------------------------------------------------------------------------------------------------- generation
    def _ensure(self, now_us: int) -> None:
        day = now_us // DAY_US
        if self._last_day is not None:
            day = min(day, self._last_day)
        if day < self._next_day:
            return
        with self._lock:
            if day >= self._next_day:
                self._generate_through(day)

    def _generate_through(self, day: int) -> None:
        new_events: list[int] = []
        new_life: list[tuple] = []
        while self._next_day <= day:
            for c in self._gen_day(self._next_day):
                for kind, t in enumerate((c.created_us, c.rename_us, c.soft_us)):
                    if t is not None and (c.planned_gone_us is None or t < c.planned_gone_us):
                        new_life.append((t, c.id, kind, c))
                self._chats.append(c)
                self._created.append(c.created_us)
                self._by_id[c.id] = c
                new_events.append(c.created_us)
                new_events.extend(c.msg_times)
                for t in (c.rename_us, c.soft_us, c.planned_gone_us):
                    if t is not None:
                        new_events.append(t)
            self._next_day += 1
        self._events = sorted(self._events + new_events)  # swapped whole: readers never see a half-sorted list
        self._life = sorted(self._life + new_life)  # (time, chat id, kind, chat): unique before the chat object
        self._version += 1

    def _gen_day(self, day: int) -> list[_Chat]:
        rng = random.Random(f"chats:{self.seed}:{day}")
        d0 = day * DAY_US
        weekday = (day + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
        factor = 1.2 if weekday < 5 else 0.5  # weekly mean 1.0
        n = int(round(self.per_day * factor * rng.uniform(0.9, 1.1)))
        k = bisect.bisect_left(self._join_keys, d0 + DAY_US)
        if k == 0:
            return []
        pool, cum = self._owners_by_join[:k], self._join_cum[:k]
        lo = self.start_us
        hi = self.end_us if self.end_us is not None else 1 << 62
        out = []
        for i in range(n):
            owner = rng.choices(pool, cum_weights=cum)[0]
            hour = bisect.bisect_left(_DIURNAL_CUM, rng.random() * _DIURNAL_CUM[-1])
            off = UTC_OFFSET_H.get((owner.home_country or "").upper(), 0)
            t = d0 + int(((hour - off) % 24) * HOUR_US) + rng.randrange(HOUR_US)
            t = d0 + (t - d0) % DAY_US
            c = self._gen_chat(rng, day, i, owner, t)  # always draw, so the day's RNG stream never depends on filters
            if lo <= t < hi and t >= owner.joined_us:
                out.append(c)
        out.sort(key=lambda c: (c.created_us, c.id))
        return out

    def _gen_chat(self, rng: random.Random, day: int, i: int, owner: _Owner, t0: int) -> _Chat:
        c = _Chat()
        c.id = hid("claude_chat_", self.seed, day, i)
        c.href = "https://claude.ai/chat/" + huuid(self.seed, "chat", day, i)
        c.created_us = t0
        c.created_iso = iso(t0)
        c.owner = owner
        c.user_obj = None if rng.random() < 0.004 else self._user_objs[owner.id]  # user null: rare, contract allows
        projects = self._projects.get(owner.org_uuid) or []
        if projects and rng.random() < 0.28:
            favourites = [(owner.index * 7 + j * 3) % len(projects) for j in range(3)]
            c.project_id = projects[rng.choice(favourites)]
        else:
            c.project_id = None
        c.model = MODELS[bisect.bisect_right(_MODEL_CUM, rng.random() * _MODEL_CUM[-1])][0]
        rnd = rng.random
        theme = (int(rnd() * len(TOPICS)), int(rnd() * len(TEAMS)), int(rnd() * len(DOCS)))
        c.theme = theme
        topic, team, doc = TOPICS[theme[0]], TEAMS[theme[1]], DOCS[theme[2]]
        c.name = _NAME_FORMATS[int(rnd() * len(_NAME_FORMATS))].format(
            Topic=topic[0].upper() + topic[1:], topic=topic, Doc=doc[0].upper() + doc[1:], doc=doc, team=team)
        if rng.random() < 0.02:
            c.name = "Untitled"

        # Message timeline: user/assistant turns in sessions separated by gaps of minutes to days.
        turns = min(30, 1 + int(rng.expovariate(1 / 3.5)))
        n = 2 * turns
        if n < 60 and rng.random() < 0.04:
            n += 1  # last user message still unanswered
        resumes = rng.random() < 0.45
        # float draws: this loop runs ~10x per chat, randint is several times slower
        times, t = [], t0 + 200_000 + int(rnd() * 20 * US)
        for m in range(n):
            if m & 1:
                t += 3 * US + int(rnd() * 87 * US)  # assistant created_at = generation finished
            elif m:
                if resumes and rnd() < 0.3:
                    r = rnd()
                    if r < 0.45:
                        gap = 30 * MIN_US + int(rnd() * (6 * HOUR_US - 30 * MIN_US))
                    elif r < 0.85:
                        gap = 6 * HOUR_US + int(rnd() * 24 * HOUR_US)
                    else:
                        gap = 30 * HOUR_US + int(rnd() * (4 * DAY_US - 30 * HOUR_US))
                else:
                    gap = int(min(30 * MIN_US, max(8 * US, rng.lognormvariate(4.5, 0.9) * US)))
                t += gap
            times.append(t)
        last = times[-1]
        c.rename_us = c.new_name = c.soft_us = c.planned_gone_us = None
        if c.name == "Untitled" or rng.random() < 0.06:
            c.rename_us = t0 + rng.randint(MIN_US, max(MIN_US + 1, last - t0 + DAY_US))
            c.new_name = rng.choice([f"{topic[0].upper()}{topic[1:]} ({team}, final)", f"{team}: {topic} v2",
                                     f"{doc[0].upper()}{doc[1:]} - {topic} - reviewed"])
        if rng.random() < 0.03:
            c.soft_us = max(last, c.rename_us or 0) + rng.randint(10 * MIN_US, 3 * DAY_US)
        if rng.random() < 0.01:
            c.planned_gone_us = rng.randint(t0 + 30 * MIN_US, max(last, t0 + HOUR_US) + 3 * DAY_US)
        if self.end_us is not None:  # closed historical dataset: nothing happens at or after `end`
            end = self.end_us
            times = [x for x in times if x < end] or [min(times[0], end - 1)]
            if c.rename_us is not None and c.rename_us >= end:
                c.rename_us = c.new_name = None
            if c.soft_us is not None and c.soft_us >= end:
                c.soft_us = None
            if c.planned_gone_us is not None and c.planned_gone_us >= end:
                c.planned_gone_us = None
        c.msg_times = times
        c.msg_ids = None
        c.gone_us = c.planned_gone_us
        c.final_us = max(times[-1], c.rename_us or 0, c.soft_us or 0, t0)
        c.final = None
        return c

    # --------------------------------------------------------------------------------------------------- chat state
    def _state(self, c: _Chat, now_us: int) -> tuple[dict, int]:
        """(Chat object, updated_us) as of now (ignores hard deletion)."""
        if now_us >= c.final_us and c.final is not None:
            return c.final
        upd = c.created_us
        k = bisect.bisect_right(c.msg_times, now_us)
        if k and c.msg_times[k - 1] > upd:
            upd = c.msg_times[k - 1]
        name = c.name
        if c.rename_us is not None and c.rename_us <= now_us:
            name = c.new_name
            upd = max(upd, c.rename_us)
        deleted = None
        if c.soft_us is not None and c.soft_us <= now_us:
            deleted = iso(c.soft_us)
            upd = max(upd, c.soft_us)
        obj = {"id": c.id, "name": name, "created_at": c.created_iso, "updated_at": iso(upd), "deleted_at": deleted,
               "href": c.href, "model": c.model, "organization_uuid": c.owner.org_uuid,
               "organization_id": c.owner.org_id, "project_id": c.project_id, "user": c.user_obj}
        if now_us >= c.final_us:
            c.final = (obj, upd)
        return obj, upd

    def _visible(self, c: _Chat | None, now_us: int) -> bool:
        return c is not None and c.created_us <= now_us and (c.gone_us is None or c.gone_us > now_us)

    # -------------------------------------------------------------------------------------------------------- views
    def chats_view(self, now_us: int) -> tuple[list[dict], list[int], list[int]]:
        """Chats visible at now, sorted by (created_us, id): (Chat objects, created_us keys, updated_us keys)."""
        self._ensure(now_us)
        key = (bisect.bisect_right(self._events, now_us), self._version)
        if self._view_cache is not None and self._view_cache[0] == key:
            return self._view_cache[1]
        objs, cks, uks = [], [], []
        k = bisect.bisect_right(self._created, now_us)
        state = self._state
        for c in islice(self._chats, k):
            g = c.gone_us
            if g is not None and g <= now_us:
                continue
            f = c.final
            if f is not None and now_us >= c.final_us:
                o, u = f
            else:
                o, u = state(c, now_us)
            objs.append(o)
            cks.append(c.created_us)
            uks.append(u)
        result = (objs, cks, uks)
        self._view_cache = (key, result)
        return result

    def chat_rows(self, now_us: int) -> list[tuple[dict, int, int]]:
        """chats_view as (chat, created_us, updated_us) tuples, the shape simulator.app's chat listing accepts."""
        view = self.chats_view(now_us)
        cached = self._rows_cache
        if cached is not None and cached[0] is view:
            return cached[1]
        rows = list(zip(*view))
        self._rows_cache = (view, rows)
        return rows

    def chats_view_by_updated(self, now_us: int) -> tuple[list[dict], list[int], list[int]]:
        """Same as chats_view but sorted by (updated_us, id), for `order_by=updated_at`."""
        view = self.chats_view(now_us)
        if self._upd_cache is not None and self._upd_cache[0] is view:
            return self._upd_cache[1]
        objs, cks, uks = view
        order = sorted(range(len(objs)), key=lambda i: (uks[i], objs[i]["id"]))
        result = ([objs[i] for i in order], [cks[i] for i in order], [uks[i] for i in order])
        self._upd_cache = (view, result)
        return result

    def get_chat(self, chat_id: str, now_us: int) -> dict | None:
        """Chat object as of now, or None (404)."""
        self._ensure(now_us)
        c = self._by_id.get(chat_id)
        return self._state(c, now_us)[0] if self._visible(c, now_us) else None

    def chat_messages_view(self, chat_id: str, now_us: int, *, tool_use_input_max_chars: int | None = None,
                           tool_result_max_chars: int | None = None) -> tuple[dict, list[dict]] | None:
        """(Chat object as of now, messages with created_at <= now ordered by (created_at, id)); None -> 404.

        Messages are returned whole by default (the server applies the endpoint's caps); pass
        `tool_use_input_max_chars` / `tool_result_max_chars` (API semantics: -1 = no limit up to SERVER_MAX_CHARS) to
        get them cut here instead, with `truncated: true` on cut blocks (a cut `input` is invalid JSON).
        """
        self._ensure(now_us)
        c = self._by_id.get(chat_id)
        if not self._visible(c, now_us):
            return None
        obj, _ = self._state(c, now_us)
        k = bisect.bisect_right(c.msg_times, now_us)
        msgs = self._messages(c)[:k]
        if tool_use_input_max_chars is not None or tool_result_max_chars is not None:
            msgs = apply_truncation(msgs, tool_use_input_max_chars, tool_result_max_chars)
        return obj, msgs

    def hard_delete(self, chat_id: str, now_us: int) -> bool:
        """DELETE endpoint: the chat is gone from `now_us` on. False if it is not visible at now (404)."""
        self._ensure(now_us)
        with self._lock:
            c = self._by_id.get(chat_id)
            if not self._visible(c, now_us):
                return False
            c.gone_us = now_us
            events = list(self._events)
            bisect.insort(events, now_us)
            self._events = events
            self._version += 1
            self._msg_cache.pop(chat_id, None)
            return True

    def ground_truth(self, now_us: int, updated_gte_us: int | None = None, updated_lt_us: int | None = None, *,
                     created_gte_us: int | None = None, created_lt_us: int | None = None) -> list[dict]:
        """Every chat created <= now (hard-deleted ones flagged), sorted by (created_us, id).

        For live chats, fields are as the API shows them at now; for hard-deleted ones, as they were just before the
        deletion (what an archive could have captured). Optional filters: updated_at and/or created_at in [gte, lt).
        """
        self._ensure(now_us)
        out = []
        a = bisect.bisect_left(self._created, created_gte_us) if created_gte_us is not None else 0
        k = bisect.bisect_right(self._created, now_us)
        if created_lt_us is not None:
            k = min(k, bisect.bisect_left(self._created, created_lt_us))
        for c in islice(self._chats, a, k):
            hard = c.gone_us is not None and c.gone_us <= now_us
            t = c.gone_us - 1 if hard else now_us
            obj, upd = self._state(c, t)
            if updated_gte_us is not None and upd < updated_gte_us:
                continue
            if updated_lt_us is not None and upd >= updated_lt_us:
                continue
            n = bisect.bisect_right(c.msg_times, t)
            out.append({"id": c.id, "created_at": c.created_iso, "updated_at": obj["updated_at"],
                        "deleted_at": obj["deleted_at"], "hard_deleted": hard,
                        "hard_deleted_at": iso(c.gone_us) if hard else None,
                        "message_ids": self._message_ids(c)[:n], "user_id": c.user_obj["id"] if c.user_obj else None,
                        "organization_uuid": c.owner.org_uuid})
        return out

    def users_view(self, org_uuid: str) -> list[dict]:
        """API User objects of an org (contract §6), sorted by join date ascending (World.users_api when it has it)."""
        api = getattr(self._world, "users_api", None)
        listed = api(org_uuid) if api is not None else None
        if listed:
            return listed
        owners = sorted((o for o in self._owners if o.org_uuid == org_uuid), key=lambda o: (o.joined_us, o.id))
        return [{"id": o.id, "full_name": o.full_name, "email": o.email, "organization_role": o.organization_role,
                 "created_at": iso(o.created_us)} for o in owners]

    def project_ids(self, org_uuid: str) -> list[str]:
        """The `claude_proj_…` ids chats of this org may reference (for a projects endpoint)."""
        return list(self._projects.get(org_uuid, ()))

    def lifecycle_events(self, gte_us: int, lt_us: int) -> list[dict]:
        """Chat lifecycle facts in [gte, lt) for the activity generator, sorted by (time, chat id):
        `claude_chat_created` at created_at, `claude_chat_updated` at a rename, `claude_chat_deleted` at a soft delete
        (the user deleting it in claude.ai). Planned and API hard deletes are not included (their activity is
        UNCONFIRMED in the contract). Independent of API deletes, so activity generation stays deterministic."""
        self._ensure(lt_us - 1)
        life = self._life
        i = bisect.bisect_left(life, (gte_us,))
        j = bisect.bisect_left(life, (lt_us,))
        out = []
        for t, cid, kind, c in life[i:j]:
            o = c.owner
            out.append({"type": _LIFE_TYPES[kind], "created_us": t, "claude_chat_id": cid,
                        "claude_project_id": c.project_id, "user_id": o.id, "email": o.email,
                        "organization_uuid": o.org_uuid, "organization_id": o.org_id, "model": c.model})
        return out

    # ----------------------------------------------------------------------------------------------------- messages
    def _message_ids(self, c: _Chat) -> list[str]:
        if c.msg_ids is None:
            c.msg_ids = [hid("claude_chat_msg_", self.seed, c.id, i) for i in range(len(c.msg_times))]
        return c.msg_ids

    def _messages(self, c: _Chat) -> list[dict]:
        with self._lock:
            msgs = self._msg_cache.get(c.id)
            if msgs is not None:
                self._msg_cache.move_to_end(c.id)
                return msgs
        msgs = _Conversation(self.seed, c, self._message_ids(c)).build()
        with self._lock:
            self._msg_cache[c.id] = msgs
            if len(self._msg_cache) > self._msg_cache_size:
                self._msg_cache.popitem(last=False)
        return msgs


# ------------------------------------------------------------------------------------------------- message content

class _Slots(dict):
    """Template values drawn only when a template uses them (keeps the RNG cost of plain templates low)."""

    def __init__(self, conv: "_Conversation"):
        super().__init__()
        self.conv = conv

    def __missing__(self, key: str) -> str:
        cv, r = self.conv, self.conv.rng
        doc = cv.doc
        value = {
            "doc": lambda: doc, "team": lambda: cv.team, "topic": lambda: cv.topic,
            "a_doc": lambda: ("an " if doc[0] in "aeiouAEIOUFRS" else "a ") + doc,
            "topic2": lambda: r.choice(TOPICS), "person": lambda: r.choice(PEOPLE), "lang": lambda: r.choice(LANGS),
            "obj": lambda: r.choice(OBJECTS), "system": lambda: r.choice(SYSTEMS), "role": lambda: r.choice(ROLES),
            "pw": lambda: f"{r.choice(['Spring', 'Harbor', 'Maple'])}{r.randint(2019, 2026)}{r.choice('!#$%')}",
            "lo": lambda: r.randint(90, 150), "hi": lambda: r.randint(160, 240),
            "ssn": lambda: f"9{r.randint(0, 99):02d}-{r.randint(10, 99)}-{r.randint(1000, 9999)}",  # 9xx: never valid
            "company": lambda: r.choice(COMPANIES), "codename": lambda: r.choice(CODENAMES),
            "cc4": lambda: f"{r.randint(0, 9999):04d}", "n": lambda: r.randint(8, 120),
            "key": lambda: "sk-live-" + "".join(r.choices("0123456789abcdef", k=24)),
        }[key]()
        self[key] = value
        return value


class _Conversation:
    """Generates one chat's messages from its own RNG (independent of the order chats are read in)."""

    def __init__(self, seed: int, c: _Chat, ids: list[str]):
        self.seed, self.c, self.ids = seed, c, ids
        self.rng = random.Random(f"messages:{seed}:{c.id}")
        self.topic, self.team, self.doc = TOPICS[c.theme[0]], TEAMS[c.theme[1]], DOCS[c.theme[2]]
        self.artifacts: list[list] = []      # [artifact_id, title, type, versions]
        self.wants_artifact = self.rng.random() < (0.45 if self.doc in CODE_DOCS else 0.22)
        self.n_tool = 0

    def _fill(self, template: str) -> str:
        return template.format_map(_Slots(self))

    def build(self) -> list[dict]:
        out = []
        for i, t in enumerate(self.c.msg_times):
            if i % 2 == 0:
                out.append(self._user(i, t))
            else:
                out.append(self._assistant(i, t))
        return out

    # -- user turns
    def _user(self, i: int, t: int) -> dict:
        r = self.rng
        text = self._fill(r.choice(FIRST_ASKS) if i == 0 else r.choice(FOLLOW_UPS))
        if r.random() < 0.35:
            text += " " + _paragraph(r, r.randint(1, 3))
        if r.random() < 0.07:
            text += " " + self._fill(r.choice(SENSITIVE))
        files = None
        if r.random() < (0.25 if i == 0 else 0.1):
            files = [self._upload(i, j, t) for j in range(1 if r.random() < 0.75 else r.randint(2, 3))]
        return {"id": self.ids[i], "role": "user", "created_at": iso(t),
                "content": [{"type": "text", "text": text, "thinking_redacted": False, "truncated": False}],
                "files": files, "generated_files": None, "artifacts": None}

    def _upload(self, i: int, j: int, t: int) -> dict:
        r = self.rng
        ext, mime, median = r.choice(FILE_TYPES)
        fid = hid("claude_file_", self.seed, self.c.id, i, j)
        slug = self.topic.replace(" ", "_")
        name = r.choice([f"{slug}_v{r.randint(1, 5)}.{ext}", f"{self.team} - {self.topic}.{ext}",
                         f"{slug}_{r.choice(['draft', 'final', 'notes', 'redlines'])}.{ext}",
                         f"Screenshot {iso(t)[:10]} at {iso(t)[11:19].replace(':', '.')}.{ext}",
                         f"Überblick {self.topic}.{ext}", f"résumé_{r.choice(PEOPLE).lower()}.{ext}"])
        size = max(200, min(12_000_000, int(r.lognormvariate(0, 0.9) * median)))
        data = file_bytes(fid, size, mime)
        return {"id": fid, "filename": name, "mime_type": None if r.random() < 0.02 else mime,
                "size_bytes": None if r.random() < 0.01 else size,
                "md5": None if r.random() < 0.01 else hashlib.md5(data).hexdigest(),
                "created_at": iso(max(self.c.created_us, t - r.randint(US, 60 * US)))}

    # -- assistant turns
    def _assistant(self, i: int, t: int) -> dict:
        r = self.rng
        content: list[dict] = []
        generated, artifacts = None, None
        redacted = r.random() < 0.08
        if r.random() < 0.3:
            content.append(self._text(r.choice(["Let me look into that.", "I'll check a few sources first.",
                                                "Let me pull the relevant data."]), redacted))
            redacted = False
            for _ in range(1 if r.random() < 0.75 else r.randint(2, 3)):
                name, integ, url = self._pick_tool()
                use, res, gen = self._tool_pair(i, name, integ, url)
                content += [use, res]
                if gen:
                    generated = (generated or []) + gen
        body = self._fill(r.choice(OPENERS)) + "\n\n" + "\n\n".join(_paragraph(r) for _ in range(r.randint(1, 4)))
        if r.random() < 0.4:
            body += "\n\n**Key points**\n" + "\n".join("- " + _sentence(r) for _ in range(r.randint(2, 5)))
        if self.doc in CODE_DOCS and r.random() < 0.7:
            body += "\n\n" + self._code()
        if r.random() < 0.03:
            body += "\n\n" + self._fill(r.choice(SENSITIVE))
        closer = r.choice(CLOSERS)
        if closer:
            body += "\n\n" + closer
        art = self._artifact_turn(i)
        if art is not None:
            use, res, meta = art
            content += [use, res]
            artifacts = [meta]
        content.append(self._text(body, redacted))
        return {"id": self.ids[i], "role": "assistant", "created_at": iso(t), "content": content, "files": None,
                "generated_files": generated, "artifacts": artifacts}

    @staticmethod
    def _text(text: str, redacted: bool) -> dict:
        return {"type": "text", "text": text, "thinking_redacted": redacted, "truncated": False}

    def _pick_tool(self):
        name, integ, url, _ = self.rng.choices(TOOLS, weights=[w for *_, w in TOOLS])[0]
        return name, integ, url

    def _code(self) -> str:
        if self.doc == "SQL query":
            return ("```sql\nSELECT region, SUM(amount) AS total\nFROM invoices\n"
                    "WHERE invoice_date >= DATE '2025-01-01'"
                    "\nGROUP BY region\nORDER BY total DESC;\n```")
        return ("```python\nimport pandas as pd\n\ndf = pd.read_csv('export.csv')\nsummary = df.groupby('team')"
                "['amount'].sum().sort_values(ascending=False)\nprint(summary.head(10))\n```")

    def _tool_pair(self, i: int, name: str, integ, url):
        r = self.rng
        self.n_tool += 1
        tid = None if r.random() < 0.01 else hid("toolu_", self.seed, self.c.id, i, self.n_tool)[:30]
        q = f"{self.topic} {r.choice(['benchmarks', 'best practices', '2025', 'policy', 'template'])}"
        gen = None
        if name == "web_search":
            inp = {"query": q}
            result = "\n".join(f"{k + 1}. {r.choice(TOPICS).title()} | https://www.example.com/{q.replace(' ', '-')}/"
                               f"{k}\n{_sentence(r)}" for k in range(r.randint(3, 8)))
        elif name == "web_fetch":
            inp = {"url": f"https://www.example.com/insights/{self.topic.replace(' ', '-')}"}
            result = _long_text(r, r.randint(11_000, 26_000) if r.random() < 0.3 else r.randint(800, 6000))
        elif name == "repl":
            inp = {"code": "const rows = await window.fs.readFile('data.csv', {encoding: 'utf8'});\n"
                           "console.log(rows.split('\\n').length);"}
            result = f"{r.randint(120, 90000)}"
        elif name in FILE_TOOLS:
            big = r.random() < 0.1
            code = _long_text(r, r.randint(11_000, 18_000)) if big else _paragraph(r, 3)
            if name == "bash_tool":
                inp = {"command": "python3 /tmp/build_report.py --out /mnt/user-data/outputs/", "description":
                       f"Build the {self.doc} output", "script": code}
            else:
                inp = {"path": f"/mnt/user-data/outputs/{self.topic.replace(' ', '_')}.md", "file_text": code}
            result = "File created successfully" if name == "create_file" else "Done. Wrote 1 file."
            if r.random() < 0.6:
                gen = [self._gen_file(i, k) for k in range(1 if r.random() < 0.8 else 2)]
        elif name == "conversation_search":
            inp = {"query": self.topic, "max_results": 5}
            result = "Found 2 related conversations:\n" + _paragraph(r, 2)
        elif name == "google_drive_search":
            inp = {"api_query": f"name contains '{self.topic}'", "semantic_query": q, "page_size": 10}
            result = "\n".join(f"{self.topic.title()} {k} (Google Doc) modified 2025-0{k + 1}-1{k}" for k in range(3))
        else:
            inp = {"query": q, "limit": r.choice([10, 25, 50])}
            if name == "search_jira_issues_using_jql":
                inp = {"jql": f"project = {self.team[:3].upper()} AND text ~ \"{self.topic}\" ORDER BY updated DESC"}
            result = "\n".join(f"{self.team[:3].upper()}-{r.randint(100, 999)}: {_sentence(r)}"
                               for _ in range(r.randint(1, 6)))
        is_error = r.random() < 0.04
        if is_error:
            result = r.choice(["Error: the request timed out after 30 seconds.", "Error: 403 Forbidden",
                               "Tool execution failed: permission denied for this resource."])
        use = {"type": "tool_use", "id": tid, "name": name, "input": json.dumps(inp, ensure_ascii=False),
               "integration_name": integ, "mcp_server_url": url, "truncated": False}
        items = [] if (not is_error and r.random() < 0.02) else [{"type": "text", "text": result}]  # non-text dropped
        res = {"type": "tool_result", "tool_use_id": tid, "name": name, "content": items, "is_error": is_error,
               "integration_name": integ, "mcp_server_url": url, "truncated": False}
        return use, res, gen

    def _gen_file(self, i: int, k: int) -> dict:
        r = self.rng
        ext, mime, median = r.choice(GEN_FILE_TYPES)
        gid = hid("claude_gen_file_", self.seed, self.c.id, i, k)
        size = max(100, min(5_000_000, int(r.lognormvariate(0, 0.8) * median)))
        return {"id": gid, "filename": f"{self.topic.replace(' ', '_')}_{r.choice(['summary', 'chart', 'export'])}"
                f".{ext}", "mime_type": mime, "size_bytes": size,
                "md5": hashlib.md5(file_bytes(gid, size, mime)).hexdigest()}

    def _artifact_turn(self, i: int):
        r = self.rng
        if not self.wants_artifact:
            return None
        if self.artifacts and r.random() < 0.35:
            a = self.artifacts[-1] if r.random() < 0.8 else r.choice(self.artifacts)
            command = r.choice(["update", "rewrite"])
        elif (not self.artifacts and r.random() < 0.6) or (self.artifacts and r.random() < 0.05):
            n = len(self.artifacts)
            atype = "application/vnd.ant.code" if self.doc in CODE_DOCS else r.choice(ARTIFACT_TYPES)
            title = None if r.random() < 0.03 else f"{self.topic[0].upper()}{self.topic[1:]} {self.doc}"
            a = [hid("claude_artifact_", self.seed, self.c.id, n), title, atype, 0]
            self.artifacts.append(a)
            command = "create"
        else:
            return None
        a[3] += 1
        version_id = hid("claude_artifact_version_", self.seed, a[0], a[3])
        text = self._code() if a[2] == "application/vnd.ant.code" else _long_text(r, r.randint(600, 4000))
        inp = {"id": a[0].removeprefix("claude_artifact_").lower()[:12], "command": command, "type": a[2],
               "title": a[1], "content": text}
        tid = hid("toolu_", self.seed, self.c.id, i, "artifact")[:30]
        use = {"type": "tool_use", "id": tid, "name": "artifacts", "input": json.dumps(inp, ensure_ascii=False),
               "integration_name": None, "mcp_server_url": None, "truncated": False}
        res = {"type": "tool_result", "tool_use_id": tid, "name": "artifacts", "content": [{"type": "text",
               "text": "OK"}], "is_error": False, "integration_name": None, "mcp_server_url": None, "truncated": False}
        return use, res, {"id": a[0], "version_id": version_id, "title": a[1], "artifact_type": a[2]}


# ------------------------------------------------------------------------------------------------------ truncation

def _limit(v: int | None) -> int:
    return SERVER_MAX_CHARS if v is None or v < 0 else min(int(v), SERVER_MAX_CHARS)


def apply_truncation(messages: list[dict], tool_use_input_max_chars: int | None = DEFAULT_MAX_CHARS,
                     tool_result_max_chars: int | None = DEFAULT_MAX_CHARS) -> list[dict]:
    """Messages with tool_use inputs / tool_result texts cut to the limits (None or -1: SERVER_MAX_CHARS); copies
    only where something changed."""
    lim_in, lim_res = _limit(tool_use_input_max_chars), _limit(tool_result_max_chars)
    out = []
    for m in messages:
        blocks = m["content"]
        new_blocks = None
        for bi, b in enumerate(blocks):
            nb = None
            if b["type"] == "tool_use" and len(b["input"]) > lim_in:
                nb = dict(b, input=b["input"][:lim_in], truncated=True)
            elif b["type"] == "tool_result" and b["content"]:
                total = sum(len(x["text"]) for x in b["content"])
                if total > lim_res:
                    items, left = [], lim_res
                    for x in b["content"]:
                        if left <= 0:
                            break
                        items.append({"type": "text", "text": x["text"][:left]})
                        left -= len(x["text"])
                    nb = dict(b, content=items, truncated=True)
            if nb is not None:
                if new_blocks is None:
                    new_blocks = list(blocks)
                new_blocks[bi] = nb
        out.append(m if new_blocks is None else dict(m, content=new_blocks))
    return out
