"""The simulated tenant: parent org + linked orgs, users (home country, IPs, user agents) and every non-user actor.

Deterministic from (seed, activities_per_day). User IPs come from simulator/data/ip_pool.json: networks that the
bundled GeoLite2-City (2018) database places in the user's home country (verified when the file was built).
Actors are pre-rendered to JSON bytes here because the generator splices them into records at high speed.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import orjson

from simulator.catalog import B58
from simulator.config import UTC, SimConfig

DATA = Path(__file__).with_name("data")
DOMAIN = "northwind-labs.com"

# Home-country mix of users: (ISO code, weight, UTC offset in hours used for the diurnal shape).
COUNTRIES = [
    ("US", 30, -6), ("GB", 9, 0), ("DE", 8, 1), ("FR", 5, 1), ("IN", 9, 5), ("JP", 4, 9), ("BR", 4, -3),
    ("CA", 5, -5), ("AU", 3, 10), ("NL", 3, 1), ("ES", 3, 1), ("SG", 3, 8), ("IE", 2, 0), ("SE", 2, 1),
    ("PL", 3, 1), ("IT", 2, 1), ("MX", 2, -6), ("KR", 2, 9), ("CH", 1, 1), ("IL", 2, 2),
]
TZ_OFFSET = {c: tz for c, _, tz in COUNTRIES}
EMBARGOED_COUNTRIES = ("CU", "IR", "KP", "SY")
EMBARGOED_REGIONS = ("UA-43", "UA-40", "UA-14", "UA-09")
# Countries whose cloud ranges host integrations, scanners and other non-human actors.
CLOUD_COUNTRIES = ("US", "IE", "DE", "SG", "NL")

FIRST = ["James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David", "Elizabeth",
         "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Daniel", "Karen",
         "Oliver", "Amelia", "Harry", "Isla", "George", "Ava", "Noah", "Emily", "Lukas", "Hannah", "Felix", "Lea",
         "Maximilian", "Sophie", "Louis", "Camille", "Hugo", "Chloe", "Arthur", "Manon", "Aarav", "Priya", "Vivaan",
         "Ananya", "Aditya", "Diya", "Rohan", "Kavya", "Haruto", "Yui", "Sota", "Hina", "Ren", "Sakura", "Miguel",
         "Julia", "Davi", "Beatriz", "Gabriel", "Larissa", "Liam", "Olivia", "Ethan", "Chloé", "Jack", "Charlotte",
         "Lars", "Sanne", "Daan", "Emma", "Pablo", "Lucía", "Alejandro", "Carmen", "Wei", "Mei", "Jun", "Xin",
         "Sean", "Aoife", "Erik", "Astrid", "Jakub", "Zofia", "Marco", "Giulia", "Diego", "Valentina", "Min-jun",
         "Seo-yeon", "Noam", "Yael", "Omar", "Layla", "Mateo", "Sofia", "Ivan", "Olga", "Kofi", "Amara", "Tariq",
         "Nadia", "Chen", "Ling", "Arjun", "Meera", "Tomás", "Inés", "Niko", "Elin", "Samuel", "Grace"]
LAST = ["Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
        "Wilson", "Anderson", "Taylor", "Thomas", "Moore", "Jackson", "Martin", "Lee", "Thompson", "White", "Evans",
        "Walker", "Wright", "Roberts", "Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner",
        "Dubois", "Bernard", "Moreau", "Laurent", "Lefebvre", "Sharma", "Patel", "Gupta", "Singh", "Iyer", "Reddy",
        "Nair", "Sato", "Suzuki", "Takahashi", "Tanaka", "Watanabe", "Silva", "Santos", "Oliveira", "Souza",
        "Pereira", "Tremblay", "Roy", "Gagnon", "Nguyen", "Kelly", "de Jong", "Jansen", "de Vries", "Bakker",
        "Fernández", "López", "González", "Sánchez", "Tan", "Lim", "Ng", "Murphy", "O'Brien", "Walsh",
        "Andersson", "Johansson", "Nowak", "Kowalski", "Wiśniewski", "Rossi", "Russo", "Ferrari", "Hernández",
        "Kim", "Park", "Choi", "Huber", "Keller", "Cohen", "Levi", "Mizrahi", "Chen", "Wang", "Zhang", "Liu",
        "Okafor", "Mensah", "Haddad", "Khan", "Ali", "Costa", "Novak", "Horvat", "Popescu", "Ivanova", "Berg",
        "Lindqvist", "Moretti", "Ricci", "Flores", "Ramos", "Ortiz", "Castro", "Bose", "Kapoor", "Das", "Ito"]

# ---- user agents by client category ------------------------------------------------------------------------------
CHROME_V = ["124.0.0.0", "125.0.0.0", "126.0.0.0", "127.0.0.0", "128.0.0.0", "129.0.0.0", "130.0.0.0"]
OS_UA = {
    "windows": "Windows NT 10.0; Win64; x64",
    "macos": "Macintosh; Intel Mac OS X 10_15_7",
    "linux": "X11; Linux x86_64",
}


def browser_ua(r: random.Random, os_name: str) -> str:
    plat = OS_UA[os_name]
    roll = r.random()
    v = r.choice(CHROME_V)
    if os_name == "macos" and roll < 0.30:
        sv = r.choice(["17.4.1", "17.5", "17.6", "18.0", "18.1"])
        return f"Mozilla/5.0 ({plat}) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/{sv} Safari/605.1.15"
    if os_name == "windows" and roll < 0.30:
        return f"Mozilla/5.0 ({plat}) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v} Safari/537.36 Edg/{v}"
    if roll > 0.85:
        fv = r.choice(["125.0", "126.0", "127.0", "128.0", "129.0"])
        ffplat = {"windows": "Windows NT 10.0; Win64; x64", "macos": "Macintosh; Intel Mac OS X 10.15",
                  "linux": "X11; Linux x86_64"}[os_name]
        return f"Mozilla/5.0 ({ffplat}; rv:{fv}) Gecko/20100101 Firefox/{fv}"
    return f"Mozilla/5.0 ({plat}) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v} Safari/537.36"


def desktop_ua(r: random.Random, os_name: str) -> str:
    plat = OS_UA["windows" if os_name == "linux" else os_name]
    av = r.choice(["0.9.3", "0.10.14", "0.11.6", "0.12.28", "0.13.11"])
    ev = r.choice(["31.3.1", "32.2.0", "33.2.1"])
    return (f"Mozilla/5.0 ({plat}) AppleWebKit/537.36 (KHTML, like Gecko) Claude/{av} "
            f"Chrome/128.0.6613.186 Electron/{ev} Safari/537.36")


def mobile_ua(r: random.Random) -> str:
    if r.random() < 0.6:
        return f"Claude/{r.choice(['1.240521', '1.241015', '1.250304'])}.{r.randint(0, 9)} (iPhone; iOS " \
               f"{r.choice(['17.5', '17.6.1', '18.0', '18.1'])}; Scale/3.00)"
    return f"Claude/{r.choice(['1.240521', '1.241015', '1.250304'])} (Android " \
           f"{r.choice(['13', '14', '15'])}; {r.choice(['Pixel 8', 'SM-S918B', 'Pixel 7a', 'SM-A546B'])}) okhttp/4.12.0"


def claude_code_ua(r: random.Random) -> str:
    return f"claude-cli/{r.choice(['1.0.98', '2.0.14', '2.0.31', '2.1.4'])} (external, cli)"


SDK_UAS = ["Anthropic/Python 0.52.0", "Anthropic/Python 0.49.0", "Anthropic/JS 0.54.0", "Anthropic/JS 0.39.0"]
SCRIPT_UAS = ["python-requests/2.32.3", "python-httpx/0.27.0", "curl/8.7.1", "Go-http-client/2.0", "axios/1.7.2",
              "okhttp/4.12.0", "python-requests/2.31.0", "curl/8.5.0"]
SCANNER_UAS = [
    "sqlmap/1.8.3#stable (https://sqlmap.org)",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/74.0.3729.169 "
    "Safari/537.36 Nuclei - Open-source project (github.com/projectdiscovery/nuclei)",
    "Mozilla/5.0 zgrab/0.x",
    "masscan/1.3 (https://github.com/robertdavidgraham/masscan)",
    "Mozilla/5.0 (compatible; Nmap Scripting Engine; https://nmap.org/book/nse.html)",
]


# ---- deterministic helpers ---------------------------------------------------------------------------------------
def rng_for(*parts) -> random.Random:
    h = hashlib.blake2b(repr(parts).encode(), digest_size=16).digest()
    return random.Random(int.from_bytes(h, "big"))


def b58id(r: random.Random, n: int = 24) -> str:
    return "".join(r.choices(B58, k=n))


def make_uuid(r: random.Random) -> str:
    h = "%032x" % r.getrandbits(128)
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:32]}"


def dumps_actor(d: dict) -> bytes:
    return orjson.dumps(d)


# ---- IP pool ----------------------------------------------------------------------------------------------------
class IpPool:
    def __init__(self, path: Path = DATA / "ip_pool.json"):
        doc = json.loads(path.read_text())
        self.doc = doc
        self.nets: dict[str, dict[str, list]] = {}
        for group in ("countries", "regions"):
            for key, fam in doc[group].items():
                self.nets[key] = {v: [ipaddress.ip_network(n) for n in fam.get(v, [])] for v in ("v4", "v6")}

    def ip(self, key: str, r: random.Random, v6: bool = False) -> str:
        fam = self.nets[key]
        nets = fam["v6"] if v6 and fam["v6"] else fam["v4"]
        net = r.choice(nets)
        n = net.num_addresses
        off = r.randint(1, n - 2) if n > 4 else 1
        if net.version == 6:
            off = r.randint(1, min(n - 2, 2 ** 64 - 1))
        return str(net.network_address + off)


# ---- world objects ----------------------------------------------------------------------------------------------
@dataclass(slots=True)
class Org:
    uuid: str
    id: str
    name: str
    created_at: datetime
    kind: str = "claude_ai"          # "claude_ai" | "console" | "parent"
    scim_directory_id: str | None = None
    idp_connection_type: str | None = None

    def to_api(self) -> dict:
        return {"uuid": self.uuid, "name": self.name, "created_at": _iso(self.created_at)}


@dataclass(slots=True)
class User:
    id: str
    full_name: str
    email: str
    organization_role: str
    created_at: datetime
    joined_at: datetime
    home_country: str
    ips: list[str]
    user_agents: list[str]
    org_uuid: str = ""
    index: int = 0
    weight: float = 1.0
    web_actors: list[bytes] = field(default_factory=list)    # user_actor JSON per (ip, browser/desktop/mobile UA)
    code_actors: list[bytes] = field(default_factory=list)   # user_actor JSON with the claude-code UA

    def to_api(self) -> dict:
        return {"id": self.id, "full_name": self.full_name, "email": self.email,
                "organization_role": self.organization_role, "created_at": _iso(self.created_at)}

    def actor(self, ip: str | None = None, ua: str | None = None) -> dict:
        return {"type": "user_actor", "email_address": self.email, "user_id": self.id,
                "ip_address": ip or self.ips[0], "user_agent": ua or self.user_agents[0]}


@dataclass(slots=True)
class KeyActor:
    """An API / admin API key, service account or other credential with a fixed client."""
    kind: str              # actor type
    id: str
    name: str
    ip: str | None
    user_agent: str | None
    org_uuid: str
    json: bytes = b""


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def n_users_for(activities_per_day: int) -> int:
    return max(5, min(20_000, round(activities_per_day * 50 / 10_000)))


class World:
    def __init__(self, config: SimConfig, ip_pool: IpPool | None = None):
        self.config = config
        self.seed = config.seed
        self.ip_pool = ip_pool or IpPool()
        r = rng_for("world", config.seed)
        # Dates are anchored at a fixed point (not at `start`) so live runs on different days see the same tenant.
        anchor = min(datetime(2026, 1, 1, tzinfo=UTC), config.start.replace(hour=0, minute=0, second=0,
                                                                           microsecond=0))
        self.anchor = anchor
        org_created = anchor - timedelta(days=540 + r.randint(0, 90), seconds=r.randint(0, 86399))
        self.parent_org = Org(make_uuid(r), "org_01" + b58id(r), "Northwind Labs (parent)", org_created, "parent")
        specs = [("Northwind Labs", "claude_ai", "OktaSCIMV2"), ("Northwind Research", "claude_ai", "AzureSCIMV2"),
                 ("Northwind Platform", "console", None)]
        self.orgs: list[Org] = []
        for i, (name, kind, idp) in enumerate(specs):
            o = Org(make_uuid(r), "org_01" + b58id(r), name, org_created + timedelta(days=1 + 37 * i, hours=3 * i),
                    kind, "directory_01" + b58id(r, 26), idp)
            self.orgs.append(o)
        self.org_by_uuid = {o.uuid: o for o in self.orgs}
        self.org_by_id = {o.id: o for o in self.orgs}
        self.main_org, self.research_org, self.console_org = self.orgs
        self.org_fragment = {o.uuid: orjson.dumps({"organization_id": o.id, "organization_uuid": o.uuid})[1:-1] + b","
                             for o in self.orgs}
        self.null_org_fragment = b'"organization_id":null,"organization_uuid":null,'
        self._build_users(config, anchor)
        self._build_key_actors()

    # ---- users --------------------------------------------------------------------------------------------------
    def _build_users(self, config: SimConfig, anchor: datetime) -> None:
        n = n_users_for(config.activities_per_day)
        r = rng_for("users", config.seed, n)
        codes = [c for c, _, _ in COUNTRIES]
        cw = [w for _, w, _ in COUNTRIES]
        seen_emails: set[str] = set()
        self.users: list[User] = []
        self.users_by_org: dict[str, list[User]] = {o.uuid: [] for o in self.orgs}
        org_cycle = [self.main_org] * 7 + [self.research_org] * 2 + [self.console_org]
        for i in range(n):
            org = self.orgs[i] if i < 3 else r.choice(org_cycle)   # every org has members
            first, last = r.choice(FIRST), r.choice(LAST)
            local = _ascii(f"{first}.{last}".lower())
            email = f"{local}@{DOMAIN}"
            k = 2
            while email in seen_emails:
                email = f"{local}{k}@{DOMAIN}"
                k += 1
            seen_emails.add(email)
            country = codes[0] if i == 0 else r.choices(codes, cw)[0]
            days_member = r.randint(5, int((anchor - org.created_at).days) - 1)
            joined = anchor - timedelta(days=days_member, seconds=r.randint(0, 86399))
            created = joined - timedelta(days=r.choice([0, 0, 0, 1, 12, 90, 400]), seconds=r.randint(0, 3600))
            u = User(id="user_01" + b58id(r), full_name=f"{first} {last}", email=email, organization_role="user",
                     created_at=created, joined_at=joined, home_country=country, ips=[], user_agents=[],
                     org_uuid=org.uuid, index=i, weight=r.lognormvariate(0, 0.8))
            self._give_network(u, r, i)
            self.users.append(u)
            self.users_by_org[org.uuid].append(u)
        for org_uuid, members in self.users_by_org.items():
            members.sort(key=lambda u: u.joined_at)
            self._assign_roles(members, rng_for("roles", config.seed, org_uuid))
        self.user_by_id = {u.id: u for u in self.users}
        self.user_by_email = {u.email: u for u in self.users}

    @staticmethod
    def _assign_roles(members: list[User], r: random.Random) -> None:
        for j, u in enumerate(members):
            if j == 0:
                u.organization_role = "primary_owner"
                continue
            if j <= 2:
                u.organization_role = "owner" if j == 1 else "admin"
                continue
            u.organization_role = r.choices(
                ["user", "developer", "claude_code_user", "admin", "membership_admin", "billing", "managed"],
                [62, 16, 10, 4, 2, 1, 5])[0]

    def _give_network(self, u: User, r: random.Random, i: int) -> None:
        pool = self.ip_pool
        u.ips.append(pool.ip(u.home_country, r))
        if r.random() < 0.35:
            u.ips.append(pool.ip(u.home_country, r))
        if r.random() < 0.25:
            u.ips.append(pool.ip(u.home_country, r, v6=True))
        roll = r.random()
        # Private / reserved addresses: VPN, office NAT, CGNAT, local proxies (never geolocate).
        if roll < 0.05:
            u.ips.append(f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{(i & 255) or 1}")
        elif roll < 0.06:
            u.ips.append(f"192.168.{(i >> 8) & 255}.{(i & 255) or 1}")
        elif roll < 0.07:
            u.ips.append(f"100.64.{(i >> 8) & 255}.{(i & 255) or 1}")
        elif roll < 0.075:
            u.ips.append(f"fc00::{i:x}")
        elif roll < 0.078:
            u.ips.append("::1")
        os_name = r.choices(["windows", "macos", "linux"], [55, 35, 10])[0]
        web = [browser_ua(r, os_name)]
        if r.random() < 0.4:
            web.append(desktop_ua(r, os_name))
        if r.random() < 0.35:
            web.append(mobile_ua(r))
        code = [claude_code_ua(r)] if r.random() < 0.45 else []
        u.user_agents = web + code
        u.web_actors = [dumps_actor(u.actor(ip, ua)) for ip in u.ips for ua in web]
        u.code_actors = [dumps_actor(u.actor(ip, ua)) for ip in u.ips for ua in code] or u.web_actors

    # ---- non-user actors ----------------------------------------------------------------------------------------
    def _build_key_actors(self) -> None:
        r = rng_for("keys", self.seed)
        pool = self.ip_pool
        main = self.main_org.uuid
        cons = self.console_org.uuid

        def key(kind, prefix, name, ua, org, country=None):
            ip = pool.ip(country or r.choice(CLOUD_COUNTRIES), r)
            return KeyActor(kind, prefix + b58id(r), name, ip, ua, org)

        # Compliance API consumers (background traffic of `compliance_api_accessed`).
        self.compliance_keys = [
            key("api_actor", "apikey_01", "siem-export", "python-httpx/0.27.0", main, "US"),
            key("api_actor", "apikey_01", "legal-archive", "Go-http-client/2.0", main, "IE"),
            key("api_actor", "apikey_01", "ediscovery-vendor", "axios/1.7.2", main, "US"),
            key("api_actor", "apikey_01", "security-notebook", "python-requests/2.32.3", main, "DE"),
            key("api_actor", "apikey_01", "dlp-scanner", "okhttp/4.12.0", main, "NL"),
        ]
        # Customer API keys acting on the org (SDK / scripts).
        self.api_keys = [key("api_actor", "apikey_01", f"backend-{i}", ua, cons)
                         for i, ua in enumerate(SDK_UAS + ["curl/8.7.1", "python-httpx/0.27.0"])]
        self.admin_keys = [key("admin_api_key_actor", "apikey_01", n, ua, cons) for n, ua in
                           [("terraform-admin", "Terraform/1.9.5 terraform-provider-anthropic/0.4.1"),
                            ("okta-workflows", "okhttp/4.12.0"), ("ops-script", "python-httpx/0.27.0")]]
        self.service_accounts = [key("service_account_actor", "svcacct_01", n, ua, cons) for n, ua in
                                 [("ci-deployer", "Anthropic/Python 0.52.0"), ("data-sync", "Go-http-client/2.0"),
                                  ("support-bot", "Anthropic/JS 0.54.0")]]
        for k in self.compliance_keys + self.api_keys:
            k.json = dumps_actor({"type": "api_actor", "api_key_id": k.id, "ip_address": k.ip,
                                  "user_agent": k.user_agent})
        for k in self.admin_keys:
            k.json = dumps_actor({"type": "admin_api_key_actor", "admin_api_key_id": k.id, "ip_address": k.ip,
                                  "user_agent": k.user_agent})
        for k in self.service_accounts:
            k.json = dumps_actor({"type": "service_account_actor", "service_account_id": k.id, "ip_address": k.ip,
                                  "user_agent": k.user_agent})
        self.anthropic_actor = dumps_actor({"type": "anthropic_actor", "email_address": None})
        self.system_actors = [dumps_actor({"type": "system_actor", "service": s}) for s in
                              ["data-retention", "scheduled-export", "billing-sync", "directory-sync", None]]
        gh = "https://token.actions.githubusercontent.com"
        self.federated_identity_actors = [
            dumps_actor({"type": "federated_identity_actor", "issuer": gh,
                         "subject": f"repo:northwind-labs/{repo}:ref:refs/heads/main",
                         "audience": ["https://api.anthropic.com"], "ip_address": pool.ip("US", r),
                         "user_agent": "Anthropic/Python 0.52.0"})
            for repo in ("web-app", "infra-terraform")] + [
            dumps_actor({"type": "federated_identity_actor", "issuer": "https://northwind.okta.com/oauth2/default",
                         "subject": "0oa1b2c3d4e5f6g7h8i9", "ip_address": None, "user_agent": None})]
        self.federated_actors = [
            dumps_actor({"type": "federated_actor", "provider": {"type": "aws", "account_id": "418273645091",
                         "signed_principal": "arn:aws:sts::418273645091:assumed-role/claude-batch/i-0a1b2c3d4e5f"},
                         "subject": "AROAWX4EXAMPLE:i-0a1b2c3d4e5f", "ip_address": pool.ip("US", r),
                         "user_agent": "Anthropic/Python 0.52.0"}),
            dumps_actor({"type": "federated_actor", "provider": {"type": "azure",
                         "subscription_id": "6f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f"},
                         "subject": None, "ip_address": pool.ip("IE", r), "user_agent": "Anthropic/JS 0.54.0"}),
            dumps_actor({"type": "federated_actor", "provider": {"type": "gcp", "project_number": "804112345678"},
                         "subject": "svc-claude@nwl-ml.iam.gserviceaccount.com", "ip_address": None,
                         "user_agent": None}),
            dumps_actor({"type": "federated_actor", "provider": {"type": "oidc", "issuer": None},
                         "subject": "spiffe://nwl/ns/prod/sa/agent", "ip_address": pool.ip("DE", r),
                         "user_agent": "Go-http-client/2.0"}),
        ]
        self.attested_device_actors = [
            dumps_actor({"type": "attested_device_actor", "external_client_id": f"ios-{make_uuid(r)}",
                         "kid_hash": "%064x" % r.getrandbits(256),
                         "ip_address": pool.ip(c, r) if i else None,
                         "user_agent": mobile_ua(r) if i else None})
            for i, c in enumerate(["US", "GB", "JP"])]
        # Unknown future actor type: the pipeline must keep it (never used on monitor-relevant types).
        self.unknown_actors = [dumps_actor({"type": "quantum_actor", "entanglement_id": "qe_01" + b58id(r),
                                            "ip_address": pool.ip("US", r), "user_agent": "qclient/0.1"})]
        self.scanner_ips = [pool.ip(r.choice(CLOUD_COUNTRIES), r) for _ in range(48)]

    def scim_actor(self, org: Org, event_id: str) -> bytes:
        return dumps_actor({"type": "scim_directory_sync_actor", "directory_id": org.scim_directory_id,
                            "workos_event_id": event_id, "idp_connection_type": org.idp_connection_type})

    # ---- API views ----------------------------------------------------------------------------------------------
    def organizations(self) -> list[dict]:
        return [o.to_api() for o in sorted(self.orgs, key=lambda o: o.created_at)]

    def users_api(self, org_uuid: str) -> list[dict] | None:
        members = self.users_by_org.get(org_uuid)
        return None if members is None else [u.to_api() for u in members]


def _ascii(s: str) -> str:
    import unicodedata
    s = unicodedata.normalize("NFKD", s).encode("ascii", "ignore").decode()
    return "".join(ch for ch in s if ch.isalnum() or ch in ".-").replace(" ", "")
