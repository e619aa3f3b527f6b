"""User-agent parsing for the activity marts (plain Python, no Dagster).

Two stages:

1. `CLIENT_RULES`, an ordered table (first match wins) for the clients that matter to a Claude compliance review and
   that generic parsers miss or misfile: Claude desktop and mobile apps, Anthropic SDKs, Claude Code, scripting
   libraries and HTTP tools, and scanners. A rule fixes the client name, category, automation and (usually) platform.
2. `ua-parser` (uap-core regexes) for everything else and for the OS/device of rule-matched apps. A device family of
   "Spider" (uap-core's crawler catch-all) marks a bot.

Decisions:
- `is_automated`: True for SDKs/CLIs, scripting libraries, bots and scanners, and for headless/driven browsers; False
  for browsers, desktop and mobile apps; None (unknown) whenever `client_category` is "unknown", which includes an
  empty or missing UA. A missing UA on an API call suggests a script, but it is not evidence of one, and a NULL keeps
  "automated vs human" panels honest.
- Families ua-parser reports as "Other" become None, so unknown is NULL everywhere.
- A string that matches no rule and does not look like a browser (browsers all send "Mozilla/5.0 ...") is
  "unknown", even when ua-parser names a family for it.

Speed: the rule table costs microseconds; ua-parser's pure-Python resolver costs ~1 ms per distinct browser UA
(regexes tried one by one). `ua_parser` picks a faster resolver by itself when `ua-parser-rs` or `google-re2` is
installed (~25x faster here). Results are cached per distinct string (`parse_user_agent` is an lru_cache).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import astuple, dataclass, fields
from functools import cache, lru_cache
from typing import Any, ClassVar

import ua_parser
from ua_parser import Domain

BROWSER = "browser"
DESKTOP_APP = "desktop_app"
MOBILE_APP = "mobile_app"
SDK_CLI = "sdk_cli"
SCRIPTING_LIBRARY = "scripting_library"
BOT_SCANNER = "bot_scanner"
UNKNOWN = "unknown"
CLIENT_CATEGORIES = (BROWSER, DESKTOP_APP, MOBILE_APP, SDK_CLI, SCRIPTING_LIBRARY, BOT_SCANNER, UNKNOWN)
PLATFORMS = ("desktop", "mobile", "tablet", "server", "unknown")

_NONE = Domain(0)
_OS = Domain.OS
_ALL = Domain.ALL

# (regex, searched case-sensitively; an optional group "v" is the client version,
#  client_name (None: keep ua-parser's browser family), client_category, is_automated,
#  platform (None: derive from the parsed OS/device), ua-parser domains still to resolve)
# Order matters: scanners first (several send a Mozilla prefix), then Claude clients, then generic tools.
# Patterns start with a literal (no \b, no IGNORECASE) so that `re` can skip ahead with a substring search: the
# whole table then costs a few microseconds per UA instead of ~50.
CLIENT_RULES: tuple[tuple[str, str | None, str, bool, str | None, Domain], ...] = (
    # Scanners and attack tools.
    (r"sqlmap/(?P<v>[\w.]+)", "sqlmap", BOT_SCANNER, True, "server", _NONE),
    (r"Nuclei(?:/v?(?P<v>\d[\w.]*))?", "nuclei", BOT_SCANNER, True, "server", _NONE),
    (r"zgrab/(?P<v>[\w.]+)", "zgrab", BOT_SCANNER, True, "server", _NONE),
    (r"masscan/(?P<v>[\w.]+)", "masscan", BOT_SCANNER, True, "server", _NONE),
    (r"Nmap Scripting Engine", "nmap", BOT_SCANNER, True, "server", _NONE),
    (r"Nikto/(?P<v>[\w.]+)", "nikto", BOT_SCANNER, True, "server", _NONE),
    (r"WPScan v(?P<v>[\w.]+)", "wpscan", BOT_SCANNER, True, "server", _NONE),
    (r"^gobuster/(?P<v>[\w.]+)", "gobuster", BOT_SCANNER, True, "server", _NONE),
    (r"^Fuzz Faster U Fool(?: v(?P<v>[\w.-]+))?", "ffuf", BOT_SCANNER, True, "server", _NONE),
    (r"DirBuster(?:-(?P<v>[\w.-]+))?", "dirbuster", BOT_SCANNER, True, "server", _NONE),
    (r"CensysInspect/(?P<v>[\w.]+)", "censys", BOT_SCANNER, True, "server", _NONE),
    (r"^Expanse[ ,]", "expanse", BOT_SCANNER, True, "server", _NONE),
    (r"Nessus", "nessus", BOT_SCANNER, True, "server", _NONE),
    (r"OpenVAS", "openvas", BOT_SCANNER, True, "server", _NONE),
    (r"Acunetix", "acunetix", BOT_SCANNER, True, "server", _NONE),
    # Claude apps. Desktop = Electron with a " Claude/x.y.z" product token (ClaudeBot does not match "Claude/").
    (r" Claude/(?P<v>\d[\w.]*).* Electron/", "Claude desktop", DESKTOP_APP, False, "desktop", _ALL),
    (r"^Claude/(?P<v>\d[\w.]*) \((?:iPhone|iPod)\b", "Claude iOS", MOBILE_APP, False, "mobile", _ALL),
    (r"^Claude/(?P<v>\d[\w.]*) \(iPad\b", "Claude iOS", MOBILE_APP, False, "tablet", _ALL),
    (r"^Claude/(?P<v>\d[\w.]*) .*\bAndroid\b", "Claude Android", MOBILE_APP, False, "mobile", _ALL),
    (r"com\.anthropic\.claude\b", "Claude Android", MOBILE_APP, False, "mobile", _ALL),
    # Claude Code and the Anthropic SDKs (hand-written "anthropic-<lang>/x" and Stainless "Anthropic/<Lang> x").
    (r"^claude-(?:cli|code)/(?P<v>[\w.]+)", "claude-code", SDK_CLI, True, "desktop", _NONE),
    (r"^anthropic-python/(?P<v>[\w.]+)", "anthropic-python", SDK_CLI, True, "server", _NONE),
    (r"^Anthropic/Python (?P<v>[\w.]+)", "anthropic-python", SDK_CLI, True, "server", _NONE),
    (r"^anthropic-(?:typescript|node)/(?P<v>[\w.]+)", "anthropic-typescript", SDK_CLI, True, "server", _NONE),
    (r"^Anthropic/JS (?P<v>[\w.]+)", "anthropic-typescript", SDK_CLI, True, "server", _NONE),
    (r"^Anthropic/Go (?P<v>[\w.]+)", "anthropic-go", SDK_CLI, True, "server", _NONE),
    (r"^Anthropic/Java (?P<v>[\w.]+)", "anthropic-java", SDK_CLI, True, "server", _NONE),
    # HTTP libraries and tools.
    (r"^python-requests/(?P<v>[\w.]+)", "python-requests", SCRIPTING_LIBRARY, True, "server", _NONE),
    (r"^python-httpx/(?P<v>[\w.]+)", "python-httpx", SCRIPTING_LIBRARY, True, "server", _NONE),
    (r"^Python-urllib/(?P<v>[\w.]+)", "python-urllib", SCRIPTING_LIBRARY, True, "server", _NONE),
    (r"^python-urllib3/(?P<v>[\w.]+)", "python-urllib3", SCRIPTING_LIBRARY, True, "server", _NONE),
    (r"aiohttp/(?P<v>[\w.]+)", "aiohttp", SCRIPTING_LIBRARY, True, "server", _NONE),
    (r"^curl/(?P<v>[\w.]+)", "curl", SCRIPTING_LIBRARY, True, "server", _NONE),
    (r"^[Ww]get/(?P<v>[\w.]+)", "wget", SCRIPTING_LIBRARY, True, "server", _NONE),
    (r"^Go-http-client/(?P<v>[\w.]+)", "go-http-client", SCRIPTING_LIBRARY, True, "server", _NONE),
    (r"^axios/(?P<v>[\w.]+)", "axios", SCRIPTING_LIBRARY, True, "server", _NONE),
    (r"^node-fetch(?:/(?P<v>[\w.]+))?", "node-fetch", SCRIPTING_LIBRARY, True, "server", _NONE),
    (r"^(?:undici|node)(?:/(?P<v>[\w.]+))?$", "node-fetch", SCRIPTING_LIBRARY, True, "server", _NONE),
    (r"^okhttp/(?P<v>[\w.]+)", "okhttp", SCRIPTING_LIBRARY, True, "server", _NONE),
    (r"^Java-http-client/(?P<v>[\w.]+)", "java-httpclient", SCRIPTING_LIBRARY, True, "server", _NONE),
    (r"^Apache-HttpClient/(?P<v>[\w.]+)", "apache-httpclient", SCRIPTING_LIBRARY, True, "server", _NONE),
    (r"^Java/(?P<v>[\w.]+)", "java", SCRIPTING_LIBRARY, True, "server", _NONE),
    (r"^PostmanRuntime/(?P<v>[\w.]+)", "postman", SCRIPTING_LIBRARY, True, "server", _NONE),
    (r"PowerShell/(?P<v>[\w.]+)", "powershell", SCRIPTING_LIBRARY, True, None, _OS),
    (r"^GuzzleHttp/(?P<v>[\w.]+)", "guzzle", SCRIPTING_LIBRARY, True, "server", _NONE),
    (r"^libwww-perl/(?P<v>[\w.]+)", "libwww-perl", SCRIPTING_LIBRARY, True, "server", _NONE),
    (r"^Faraday v(?P<v>[\w.]+)", "faraday", SCRIPTING_LIBRARY, True, "server", _NONE),
    # Generic Electron apps and driven browsers: ua-parser names the family.
    (r"Electron/(?P<v>[\w.]+)", None, DESKTOP_APP, False, "desktop", _ALL),
    (r"HeadlessChrome/", None, BROWSER, True, None, _ALL),
    (r"PhantomJS/", None, BROWSER, True, None, _ALL),
)

_COMPILED_RULES = tuple((re.compile(p), *rest) for p, *rest in CLIENT_RULES)

_MOBILE_OS = frozenset({"iOS", "Android", "Windows Phone", "BlackBerry OS", "KaiOS", "Firefox OS", "HarmonyOS",
                        "Tizen", "Symbian OS", "Sailfish"})
_DESKTOP_OS = frozenset({"Windows", "Mac OS X", "macOS", "Linux", "Ubuntu", "Chrome OS", "ChromeOS", "Fedora",
                         "Debian", "FreeBSD", "OpenBSD", "NetBSD", "Red Hat", "CentOS", "SUSE", "openSUSE", "Mint",
                         "Linux Mint", "Arch Linux", "Gentoo", "Kubuntu", "Slackware", "Solaris"})
_TABLET_DEVICE = re.compile(r"iPad|Tablet|Kindle|\bTab\b", re.IGNORECASE)
_BROWSER_PREFIX = re.compile(r"^(?:Mozilla|Opera)/")


@dataclass(frozen=True, slots=True)
class UserAgentInfo:
    raw: str | None
    browser_family: str | None
    browser_version: str | None
    os_family: str | None
    os_version: str | None
    device_family: str | None
    platform: str                 # desktop | mobile | tablet | server | unknown
    client_category: str          # one of CLIENT_CATEGORIES
    is_automated: bool | None     # None iff client_category == "unknown"
    client_name: str | None       # e.g. "claude-code", "anthropic-python", "curl", "Claude desktop", "Googlebot"

    # Column name -> DuckDB type, in `as_row()` order, for the dimension table.
    COLUMNS: ClassVar[tuple[tuple[str, str], ...]] = (
        ("raw", "VARCHAR"), ("browser_family", "VARCHAR"), ("browser_version", "VARCHAR"), ("os_family", "VARCHAR"),
        ("os_version", "VARCHAR"), ("device_family", "VARCHAR"), ("platform", "VARCHAR"),
        ("client_category", "VARCHAR"), ("is_automated", "BOOLEAN"), ("client_name", "VARCHAR"),
    )

    def as_row(self) -> tuple:
        return astuple(self)

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@cache
def _resolver() -> ua_parser.Resolver:
    # Same choice as ua_parser's global parser (fast native resolver when installed) but without its own cache:
    # parse_user_agent's lru_cache is the cache.
    fast = ua_parser.RegexResolver or ua_parser.Re2Resolver
    matchers = ua_parser.load_lazy_builtins() if fast else ua_parser.load_builtins()
    return ua_parser.BestAvailableResolver(matchers)


def _version(*parts: str | None) -> str | None:
    out = []
    for part in parts:
        if part is None:
            break
        out.append(part)
    return ".".join(out) or None


def _family(value: Any) -> str | None:
    family = getattr(value, "family", None)
    return None if family in (None, "Other") else family


def _derive_platform(ua: str, os_family: str | None, device: Any) -> str:
    device_family = getattr(device, "family", None) or ""
    if device_family == "Spider":
        return "server"
    if _TABLET_DEVICE.search(device_family) or getattr(device, "brand", None) == "Generic_Android_Tablet":
        return "tablet"
    if os_family in _MOBILE_OS:
        # Android tablets drop the "Mobile" token that phones send.
        return "tablet" if os_family == "Android" and "Mobile" not in ua else "mobile"
    if os_family in _DESKTOP_OS:
        return "desktop"
    return "unknown"


_EMPTY = UserAgentInfo(None, None, None, None, None, None, "unknown", UNKNOWN, None, None)


@lru_cache(maxsize=100_000)
def parse_user_agent(ua: str | None) -> UserAgentInfo:
    """Parse one user-agent string. Never raises; cached per distinct string."""
    if not isinstance(ua, str) or not ua.strip():
        return UserAgentInfo(ua if isinstance(ua, str) else None, *astuple(_EMPTY)[1:])
    for regex, name, category, automated, platform, domains in _COMPILED_RULES:
        m = regex.search(ua)
        if m is None:
            continue
        version = m.groupdict().get("v")
        parsed = _resolver()(ua, domains) if domains else None
        agent = parsed.user_agent if parsed is not None and Domain.USER_AGENT in domains else None
        os_ = parsed.os if parsed is not None else None
        device = parsed.device if parsed is not None and Domain.DEVICE in domains else None
        os_family = _family(os_)
        if name is None:  # generic rule: ua-parser names the client
            family = _family(agent)
            version = _version(agent.major, agent.minor, agent.patch) if family else version
        else:
            family = name
        return UserAgentInfo(
            raw=ua, browser_family=family, browser_version=version,
            os_family=os_family, os_version=_version(os_.major, os_.minor, os_.patch) if os_family else None,
            device_family=_family(device),
            platform=platform or _derive_platform(ua, os_family, device),
            client_category=category, is_automated=automated, client_name=name,
        )

    parsed = _resolver()(ua, _ALL)
    agent, os_, device = parsed.user_agent, parsed.os, parsed.device
    family, os_family, device_family = _family(agent), _family(os_), _family(device)
    if device_family == "Spider":
        category, automated, client_name = BOT_SCANNER, True, family
    elif family is not None and _BROWSER_PREFIX.match(ua):
        category, automated, client_name = BROWSER, False, None
    else:
        category, automated, client_name = UNKNOWN, None, None
    return UserAgentInfo(
        raw=ua, browser_family=family,
        browser_version=_version(agent.major, agent.minor, agent.patch) if family else None,
        os_family=os_family, os_version=_version(os_.major, os_.minor, os_.patch) if os_family else None,
        device_family=device_family,
        platform=_derive_platform(ua, os_family, device),
        client_category=category, is_automated=automated, client_name=client_name,
    )


def parse_many(uas: Iterable[str | None]) -> list[UserAgentInfo]:
    return [parse_user_agent(ua) for ua in uas]


@cache
def parser_identity() -> str:
    """Which parser answers: this module's rules and the installed ua-parser with its regexes. The ingestion parses
    again, once, every stored user agent parsed by another one (pipeline/warehouse/activities.py, `Enricher`)."""
    import hashlib
    from importlib.metadata import PackageNotFoundError, version
    from pathlib import Path

    def installed(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "-"

    rules = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:12]
    return f"rules-{rules}+ua-parser-{installed('ua-parser')}+{installed('ua-parser-builtins')}"
