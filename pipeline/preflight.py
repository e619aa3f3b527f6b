"""Preflight: check the configuration before pointing the pipeline at the real API (`make preflight`).

    python -m pipeline.preflight        # one line per check (OK / WARN / FAIL); exit code 1 if anything FAILs

Reads the same environment as the pipeline (`Settings.from_env()` and the key variable; `main()` first loads `.env`
of the working directory, like `dagster dev`) and checks: the key is set, the API is reachable, the API accepts the
key, the key has the scopes the pipeline needs (one `limit=1` request per endpoint), the warehouse and serving paths
are writable and not locked, and which GeoIP City database is used and how old it is. Plain Python (no Dagster).
Fails fast: short timeouts, no retries, never waits for a rate limit.

The key never appears in the output: messages name the key type by its fixed prefix only (`sk-ant-api01-…`), API
messages come through the client (which scrubs the key), and `main()` scrubs the printed text once more.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import time
import urllib.parse
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import httpx

from pipeline.compliance_api import (
    ACTIVITIES_PATH,
    API_KEY_ENV,
    APIKey,
    AuthenticationError,
    ComplianceAPIError,
    ComplianceClient,
    ConfigurationError,
    InvalidResponseError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RequestBudget,
    RetriesExhaustedError,
    ServerError,
    TransportError,
)
from pipeline.compliance_api.endpoints import CHATS_PATH, ORGANIZATIONS_PATH
from pipeline.compliance_api.transport import BASE_URL_ENV, _is_loopback
from pipeline.config import DEFAULT_BASE_URL, Settings
from pipeline.enrichment.geo import ENV_VAR as GEOIP_ENV
from pipeline.enrichment.geo import GeoIPDatabaseError, GeoIPLookup, bundled_database_path
from pipeline.warehouse.connection import LOCK_CONFLICT

OK, WARN, FAIL = "OK", "WARN", "FAIL"
TIMEOUT_SECONDS = 10.0
GEOIP_MAX_AGE_DAYS = 35

WAREHOUSE_ENV = "COMPLIANCE_WAREHOUSE_PATH"
SERVING_ENV = "COMPLIANCE_SERVING_PATH"

COMPLIANCE_PREFIX, ADMIN_PREFIX, CLAUDE_API_PREFIX = "sk-ant-api01-", "sk-ant-admin01-", "sk-ant-api03-"
PIPELINE_SCOPES = "read:compliance_activities, read:compliance_user_data and read:compliance_org_data"
NEW_KEY = (f"a Compliance Access Key ({COMPLIANCE_PREFIX}…) with {PIPELINE_SCOPES}, created in claude.ai › "
           "Organization settings › API by the primary owner or an org owner")

# (endpoint, scope, what stops working without it), in request order.
SCOPE_PROBES = (
    (ACTIVITIES_PATH, "read:compliance_activities",
     "nothing can be ingested: the Activity Feed (raw/activities), every mart and all 9 monitors depend on it"),
    (CHATS_PATH, "read:compliance_user_data",
     "chat ingestion (raw/chats, raw/chats_reconciliation, the chats mart) and the organization users of the "
     "directory (raw/organization_users) fail at every run"),
    (ORGANIZATIONS_PATH, "read:compliance_org_data",
     "the directory refresh (raw/organization_users needs the organization list) fails at every run, so user "
     "names, emails and roles are missing from the marts"),
)


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: str  # OK | WARN | FAIL
    message: str


# ----------------------------------------------------------------------------------------------------------------
# The key and the API


def check_key(raw: str | None) -> tuple[CheckResult, APIKey | None]:
    """The key variable: set, pasteable, and of a type the Compliance API accepts. Returns the key for the API checks
    (None when they cannot run)."""
    name = "access key"
    fix = f"set {API_KEY_ENV} to {NEW_KEY}"
    if not raw or not raw.strip():
        return CheckResult(name, FAIL, f"{API_KEY_ENV} is not set: {fix}. API checks skipped."), None
    try:
        key = APIKey(raw)
    except ConfigurationError as exc:
        return CheckResult(name, FAIL, f"{exc} Paste the key again or {fix}. API checks skipped."), None
    if key.kind == "claude_api_key":
        return CheckResult(name, FAIL, f"{API_KEY_ENV} holds a regular Claude API key ({CLAUDE_API_PREFIX}…), which "
                                       f"the Compliance API does not accept: {fix}. API checks skipped."), None
    if key.kind == "admin_api_key":
        return CheckResult(name, WARN, f"{API_KEY_ENV} holds an Admin API key ({ADMIN_PREFIX}…): it reaches the "
                                       f"Activity Feed only, so chats and the directory cannot be ingested; "
                                       f"{fix}."), key
    if key.kind == "unknown":
        return CheckResult(name, WARN, f"{API_KEY_ENV} does not start with {COMPLIANCE_PREFIX} (Compliance Access Key)"
                                       f" or {ADMIN_PREFIX} (Admin API key); the API will probably refuse it: "
                                       f"{fix}."), key
    return CheckResult(name, OK, f"{API_KEY_ENV} is set: a Compliance Access Key ({COMPLIANCE_PREFIX}…)."), key


def _transport_reason(exc: Exception) -> str:
    text = str(exc)
    if isinstance(exc, httpx.TimeoutException) or (isinstance(exc, TransportError) and "Timeout" in exc.kind):
        return f"no answer within {TIMEOUT_SECONDS:g} s (timeout)"
    if "refused" in text.lower():
        return "connection refused (nothing listens at that host and port)"
    if re.search(r"name or service not known|nodename nor servname|name resolution|getaddrinfo|errno -[235]\]",
                 text, re.IGNORECASE):
        return "the host name does not resolve (DNS)"
    if "certificate" in text.lower():
        return f"TLS certificate verification failed ({text}); behind a TLS-intercepting proxy set SSL_CERT_FILE"
    return text or type(exc).__name__


def check_reachable(base_url: str) -> CheckResult:
    """One request without a key: any HTTP answer proves the URL is reachable (401 costs no rate-limit unit)."""
    name = "API reachable"
    fix = f"Fix {BASE_URL_ENV} (now {base_url}; the real API is {DEFAULT_BASE_URL}) or the network, proxy or firewall"
    parsed = urllib.parse.urlsplit(base_url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        return CheckResult(name, FAIL, f"{BASE_URL_ENV}={base_url!r} is not an http(s)://host[:port] URL. {fix}.")
    started = time.monotonic()
    try:
        with httpx.Client(timeout=httpx.Timeout(TIMEOUT_SECONDS, connect=5.0), follow_redirects=False) as http:
            resp = http.get(base_url + ACTIVITIES_PATH, params={"limit": "1"})
    except httpx.HTTPError as exc:
        return CheckResult(name, FAIL, f"cannot reach {base_url}: {_transport_reason(exc)}. {fix}. "
                                       "Key and scope checks skipped.")
    took = f"{(time.monotonic() - started) * 1000:.0f} ms"
    if resp.status_code != 401:
        return CheckResult(name, WARN, f"{base_url} answered HTTP {resp.status_code} to a request without a key "
                                       f"(the Compliance API answers 401) in {took}: is {BASE_URL_ENV} the API's "
                                       f"origin, without a path?")
    if parsed.scheme == "http" and not _is_loopback(parsed.hostname):
        return CheckResult(name, WARN, f"{base_url} answered in {took}, but over plain http: the key would travel "
                                       f"unencrypted; use https in {BASE_URL_ENV}.")
    return CheckResult(name, OK, f"{base_url} answered in {took}.")


def _probe(client: ComplianceClient, path: str) -> ComplianceAPIError | None:
    """GET path?limit=1 once; the typed error or None."""
    try:
        client.request("GET", path, params={"limit": "1"})
        return None
    except RetriesExhaustedError as exc:  # with max_retries=0: the first retryable failure
        return exc.last_error
    except ComplianceAPIError as exc:
        return exc


def _rid(err: ComplianceAPIError) -> str:
    return f" [request_id={err.request_id}]" if err.request_id else ""


def _unauthorized(key: APIKey, err: ComplianceAPIError) -> str:
    if key.kind == "admin_api_key":
        return (f"the API rejected the Admin API key ({ADMIN_PREFIX}…) in {API_KEY_ENV} (401): it is wrong or was "
                f"deleted (Admin keys live in Claude Console › Settings › Admin keys){_rid(err)}. Admin keys reach "
                f"only the Activity Feed anyway: set {API_KEY_ENV} to {NEW_KEY}.")
    return (f"the API rejected the key in {API_KEY_ENV} (401: wrong or revoked; a Compliance Access Key starts with "
            f"{COMPLIANCE_PREFIX} and does not expire, so a key that used to work was deleted){_rid(err)}. "
            f"Set {API_KEY_ENV} to {NEW_KEY}.")


def _scope_result(key: APIKey, scope: str, feature: str, err: ComplianceAPIError | None) -> CheckResult:
    name = f"scope {scope}"
    if err is None:
        return CheckResult(name, OK, "granted.")
    if isinstance(err, PermissionDeniedError):
        has = f" (the key has: {', '.join(err.granted_scopes)})" if err.granted_scopes else ""
        if key.kind != "admin_api_key":
            why = "Scopes are fixed when a key is created"
        elif scope == "read:compliance_activities":
            why = "An Admin API key carries it only if the Compliance API was enabled when the key was created"
        else:
            why = "Admin API keys reach the Activity Feed only"
        return CheckResult(name, FAIL, f"missing{has}{_rid(err)}: {feature}. {why}: set {API_KEY_ENV} to a new key: "
                                       f"{NEW_KEY}.")
    if isinstance(err, RateLimitError):
        return CheckResult(name, WARN, f"not verified: rate limited (429){_rid(err)}; the organization's 600 "
                                       "requests/min are used up by other workers or keys. Run the preflight again "
                                       "in a minute.")
    if isinstance(err, ServerError):
        return CheckResult(name, WARN, f"not verified: server error ({err.status_code}){_rid(err)}. Run the "
                                       "preflight again later.")
    if isinstance(err, TransportError):
        return CheckResult(name, FAIL, f"not verified: {_transport_reason(err)}. Check {BASE_URL_ENV} and the "
                                       "network.")
    if isinstance(err, (NotFoundError, InvalidResponseError)):
        return CheckResult(name, FAIL, f"not verified: {err}. {BASE_URL_ENV} does not look like the Compliance "
                                       f"API: set it to the API's origin without a path ({DEFAULT_BASE_URL}).")
    return CheckResult(name, FAIL, f"not verified: {err}")


def check_api(base_url: str, key: APIKey) -> list[CheckResult]:
    """The key is known (401 or not) and has each scope the pipeline needs: one `limit=1` request per endpoint."""
    results: list[CheckResult] = []
    # No retries, no waiting on the budget or a 429: the preflight reports, the pipeline retries.
    budget = RequestBudget(None, sleep=lambda _seconds: None)
    with ComplianceClient(key, base_url, timeout=TIMEOUT_SECONDS, max_retries=0, max_rate_limit_retries=0,
                          budget=budget) as client:
        for i, (path, scope, feature) in enumerate(SCOPE_PROBES):
            err = _probe(client, path)
            if i == 0:  # the first answer tells whether the key is known (401 comes before scopes and rate limits)
                if isinstance(err, AuthenticationError):
                    return [CheckResult("API key", FAIL, _unauthorized(key, err) + " Scope checks skipped.")]
                if isinstance(err, TransportError):
                    return [CheckResult("API key", FAIL, f"not verified: {_transport_reason(err)}. Check "
                                                         f"{BASE_URL_ENV} and the network.")]
                results.append(CheckResult("API key", OK, "accepted by the API."))
            results.append(_scope_result(key, scope, feature, err))
    return results


# ----------------------------------------------------------------------------------------------------------------
# Local files


def _blocking_file(directory: Path) -> Path | None:
    """The first existing ancestor of `directory` when it is not a directory (so nothing can be created below)."""
    for p in (directory, *directory.parents):
        if p.exists():
            return None if p.is_dir() else p
    return None


def _lock_problem(db_file: Path, what: str) -> str | None:
    """Open an existing DuckDB file read-write, as the pipeline does; say who holds it if it is locked."""
    try:
        duckdb.connect(str(db_file)).close()
        return None
    except duckdb.Error as exc:
        text = str(exc)
    if LOCK_CONFLICT not in text:
        return f"{what} {db_file} cannot be opened by DuckDB {duckdb.__version__}: {text}"
    m = re.search(r"held in (.+?) \(PID (\d+)\)", text)
    holder = f"process {m.group(2)} ({m.group(1)})" if m else "another process (DuckDB did not say which)"
    return (f"{what} {db_file} is locked by {holder}: stop it before running the pipeline (a running pipeline or "
            f"`dagster dev`, a DuckDB CLI, a notebook or a BI tool). BI tools belong on {SERVING_ENV}.")


def check_path(name: str, env: str, path: Path, lock_file: Path | None, what: str) -> CheckResult:
    """The parent directory can be created and written to (the probe file is removed), `lock_file` (if any) is not
    locked."""
    fix = f"Set {env} to a file path in a writable directory"
    if path.is_dir():
        return CheckResult(name, FAIL, f"{path} is a directory. {fix}.")
    blocker = _blocking_file(path.parent)
    if blocker is not None:
        return CheckResult(name, FAIL, f"cannot create directory {path.parent}: {blocker} is a file, not a "
                                       f"directory. {fix}.")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".preflight-", dir=path.parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        return CheckResult(name, FAIL, f"cannot write in {path.parent} ({exc.strerror or exc}). {fix}.")
    if lock_file is not None and lock_file.is_file():
        problem = _lock_problem(lock_file, what)
        if problem:
            return CheckResult(name, FAIL, problem)
    state = "exists, not locked" if path.exists() else "will be created"
    return CheckResult(name, OK, f"{path} is writable ({state}).")


def check_geoip(configured: str | None, now: datetime | None = None) -> CheckResult:
    """Which City database the enrichment uses, its build date, and whether it is too old or unusable."""
    name = "GeoIP database"
    if configured:
        source, path = f"{GEOIP_ENV}={configured}", configured
    else:
        source, path = "bundled GeoLite2-City (maxminddb-geolite2 package)", None
    try:
        with GeoIPLookup(path or bundled_database_path()) as geo:
            info = geo.database_info(now or datetime.now(timezone.utc))
    except GeoIPDatabaseError as exc:
        hint = f" Fix {GEOIP_ENV} or unset it to use the bundled (old) database." if configured else ""
        return CheckResult(name, FAIL, f"{exc}.{hint}")
    built = f"{info['database_type']} built {info['build_epoch']:%Y-%m-%d} ({info['age_days']} days ago)"
    if info["age_days"] > GEOIP_MAX_AGE_DAYS:
        return CheckResult(name, WARN, (
            f"{source}: {built}. IP locations drift, so the embargoed-regions monitor and the geolocation panels get "
            f"less reliable: download a current GeoLite2-City .mmdb (free MaxMind account: "
            f"https://www.maxmind.com/en/geolite2/signup, or `geoipupdate` with EditionIDs GeoLite2-City; MaxMind "
            f"updates it twice a week) and set {GEOIP_ENV} to its path."))
    return CheckResult(name, OK, f"{source}: {built}.")


# ----------------------------------------------------------------------------------------------------------------
# Entry points


def _safely(name: str, check, *args) -> list[CheckResult]:
    """A check that raises is reported as a FAIL: the preflight reports, it does not crash."""
    try:
        result = check(*args)
    except Exception as exc:  # noqa: BLE001
        return [CheckResult(name, FAIL, f"the check itself failed: {type(exc).__name__}: {exc}")]
    return result if isinstance(result, list) else [result]


def run_checks(settings: Settings, *, now: datetime | None = None) -> list[CheckResult]:
    """All checks, in order. The key is read from the environment here (Settings never holds it)."""
    key_result, key = check_key(os.environ.get(API_KEY_ENV))
    results = [key_result, *_safely("API reachable", check_reachable, settings.base_url)]
    if key is not None and results[-1].status != FAIL:
        results += _safely("API key", check_api, settings.base_url, key)
    results += _safely("warehouse path", check_path, "warehouse path", WAREHOUSE_ENV, settings.warehouse_path,
                       settings.warehouse_path, "the warehouse")
    if settings.serving_path.resolve() == settings.warehouse_path.resolve():
        results.append(CheckResult("serving path", FAIL, f"{SERVING_ENV} and {WAREHOUSE_ENV} are the same file "
                                                         f"({settings.serving_path}): give BI tools their own file."))
    else:
        # The publisher writes new Parquet files and replaces the serving catalog by rename, never opening it:
        # no lock a reader holds can block it.
        results += _safely("serving path", check_path, "serving path", SERVING_ENV, settings.serving_path,
                           None, "the serving catalog")
    results += _safely("GeoIP database", check_geoip, settings.geoip_city_db, now)
    return results


def _redact(text: str, secret: str | None) -> str:
    secret = (secret or "").strip()
    return text.replace(secret, "…(redacted)") if len(secret) >= 8 else text


def load_dotenv_like_dagster(directory: Path) -> list[str]:
    """`dagster dev` loads `.env` of its working directory over the environment: do the same, so the preflight sees
    the pipeline's settings. Returns the variable names (never the values)."""
    env_file = directory / ".env"
    if not env_file.is_file():
        return []
    from dotenv import dotenv_values  # a dependency of dagster

    values = {k: v for k, v in dotenv_values(env_file).items() if v is not None}
    os.environ.update(values)
    return sorted(values)


def main() -> int:
    loaded = load_dotenv_like_dagster(Path.cwd())
    try:
        settings = Settings.from_env()
    except ValueError as exc:
        print(f"FAIL  settings  cannot read the settings: {exc}. Check the COMPLIANCE_* variables (README: "
              "Configuration).")
        return 1
    results = run_checks(settings)
    width = max(len(r.name) for r in results)
    lines = [f"Preflight of the compliance pipeline against {settings.base_url}"]
    if loaded:
        lines.append(f"(read {Path.cwd() / '.env'}, as `dagster dev` does: {', '.join(loaded)})")
    lines += [f"{r.status:<4}  {r.name:<{width}}  {r.message}" for r in results]
    fails, warns = (sum(r.status == s for r in results) for s in (FAIL, WARN))
    verdict = "fix the FAIL lines before running the pipeline" if fails else "ready"
    lines.append(f"{fails} FAIL, {warns} WARN: {verdict}.")
    print(_redact("\n".join(lines), os.environ.get(API_KEY_ENV)))
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
