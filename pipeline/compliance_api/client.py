"""Production client of the Claude Compliance API (plain Python, httpx).

Usage::

    with ComplianceClient.from_env() as client:
        pages = client.iter_activity_pages(gte, lt)       # half-open [gte, lt), page by page, memory bounded
        for page in pages:
            store(page.body)                               # or page.records
        attest(pages.summary)                              # TraversalSummary: pages, records, cursors, request id

Behaviour (contract §1, §3, §7, §8):

* Auth: `x-api-key` + `anthropic-version: 2023-06-01`; key from `ANTHROPIC_COMPLIANCE_ACCESS_KEY`, base URL from
  `COMPLIANCE_API_BASE_URL` (default https://api.anthropic.com). One keep-alive `httpx.Client` per client.
* Retries: 429 waits `retry-after` (exponential 1 s -> 60 s with full jitter when absent) and pauses the whole process
  (see ratelimit.py); 429s do not use up `max_retries` but have their own generous cap (`max_rate_limit_retries`).
  500 is retried unless `x-should-retry: false`; 502/503/504/529, connection errors (incl. a peer closing mid-body),
  timeouts and truncated / non-JSON 2xx bodies get `max_retries` retries with full-jitter exponential backoff
  (`backoff_initial` doubling up to `backoff_max`). 400/401/403/404/409 raise typed errors at once (errors.py).
  A failed call never advances a cursor: page iterators update their state only after a page was received whole, and
  calling `next()` again after an error retries the same cursor.
* The key: held in `APIKey` (masked repr/str, not picklable), added to each request by an httpx auth hook, never put
  into log lines or exception text; httpx exceptions are replaced by key-free `TransportError`s (their request objects,
  which hold the headers, are not kept, and the original exception is not chained).
* Logging (`pipeline.compliance_api`): each request at DEBUG with method, path, status, request id and attempt;
  retries at WARNING with the reason and the wait.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import math
import os
import random
import re
import time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import orjson

from pipeline.compliance_api.errors import (
    API_KEY_ENV,
    ComplianceAPIError,
    ConfigurationError,
    InvalidResponseError,
    NotFoundError,
    PaginationError,
    RateLimitError,
    RetriesExhaustedError,
    TransportError,
    error_for_status,
)
from pipeline.compliance_api.hostile import RejectedRecord, decode_with_rejects, is_content_error
from pipeline.compliance_api.ratelimit import RequestBudget, shared_budget

logger = logging.getLogger("pipeline.compliance_api")

DEFAULT_BASE_URL = "https://api.anthropic.com"
BASE_URL_ENV = "COMPLIANCE_API_BASE_URL"
TIMEOUT_ENV = "COMPLIANCE_API_TIMEOUT_SECONDS"
MAX_RETRIES_ENV = "COMPLIANCE_API_MAX_RETRIES"
RPM_ENV = "COMPLIANCE_API_REQUESTS_PER_MINUTE"
ANTHROPIC_VERSION = "2023-06-01"

ACTIVITIES_PATH = "/v1/compliance/activities"
CHATS_PATH = "/v1/compliance/apps/chats"
ORGANIZATIONS_PATH = "/v1/compliance/organizations"

ACTIVITY_LIMIT_MAX = 5000
CHAT_LIMIT_MAX = 1000
DIRECTORY_LIMIT_MAX = 1000


def _package_version() -> str:
    try:
        from importlib.metadata import version

        return version("compliance-pipeline")
    except Exception:  # not installed as a distribution (plain checkout)
        return "0.1.0"


DEFAULT_USER_AGENT = f"compliance-pipeline/{_package_version()} (python-httpx/{httpx.__version__})"


# --------------------------------------------------------------------------------------------------------------------
# The key


_KEY_PREFIX = re.compile(r"^(sk-ant-[a-z]+\d*-)")
_KEY_CHARS = re.compile(r"[\x21-\x7e]+")


class APIKey:
    """The API key, masked everywhere it could be printed. `reveal()` is called only by the auth hook."""

    __slots__ = ("__value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise ConfigurationError("The API key must be a string.")
        value = value.strip()
        if not value:
            raise ConfigurationError(f"No Compliance API key: set {API_KEY_ENV}.")
        # A header value with spaces/control/non-ASCII characters makes httpx/h11 raise errors that quote the value.
        if not _KEY_CHARS.fullmatch(value):
            raise ConfigurationError(
                f"The API key (from {API_KEY_ENV}?) contains whitespace, control or non-ASCII characters; "
                "check for a pasting error.")
        self.__value = value

    def reveal(self) -> str:
        return self.__value

    @property
    def kind(self) -> str:
        v = self.__value
        if v.startswith("sk-ant-api01-"):
            return "compliance_access_key"
        if v.startswith("sk-ant-admin01-"):
            return "admin_api_key"
        if v.startswith("sk-ant-api03-"):
            return "claude_api_key"
        return "unknown"

    @property
    def masked(self) -> str:
        m = _KEY_PREFIX.match(self.__value)
        # The prefix (key type) is not secret and tells an operator which kind of key is configured.
        return f"{m.group(1) if m and len(self.__value) > len(m.group(1)) + 8 else ''}…(redacted)"

    def __repr__(self) -> str:
        return f"APIKey({self.masked!r})"

    __str__ = masked.fget  # type: ignore[assignment]

    def __format__(self, spec: str) -> str:
        return self.masked

    def __eq__(self, other: object) -> bool:
        return isinstance(other, APIKey) and hmac.compare_digest(self.__value, other.__value)

    __hash__ = None  # type: ignore[assignment]

    def __copy__(self) -> "APIKey":
        return self

    def __deepcopy__(self, memo: dict) -> "APIKey":
        return self

    def __reduce__(self):
        raise TypeError("APIKey is not picklable (it would write the key in clear)")


class _KeyAuth(httpx.Auth):
    """Adds `x-api-key` per request, so the key is neither a client default header nor a local of our frames."""

    def __init__(self, key: APIKey) -> None:
        self._key = key

    def auth_flow(self, request: httpx.Request):
        request.headers["x-api-key"] = self._key.reveal()
        yield request

    def __repr__(self) -> str:
        return f"<_KeyAuth {self._key!r}>"


# --------------------------------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True, slots=True)
class APIResponse:
    status_code: int
    headers: httpx.Headers = field(repr=False)  # response headers only (no key)
    body: bytes = field(repr=False)
    data: Any = field(repr=False)
    request_id: str | None
    attempts: int


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a cursor traversal.

    `records`: the parsed items of `data` in server order, minus ids repeated from the previous page (or earlier in
    this page). Items that are not objects or have no string `id` are kept as they are (the caller quarantines them).
    `body`: the raw response bytes, exactly as received (so including any repeated items; dedupe on `id` if you parse
    it yourself). `cursor`: the `after_id` sent for this page (None on a first page).

    Pages of a traversal started with `parse_records=False` carry `records=None`, `raw_count=None` and `data_json`:
    the bytes of the `data` array as received (repeats included, nothing parsed in Python). The caller deduplicates.
    """

    records: list[Any] | None
    raw_count: int | None
    duplicates_dropped: int
    first_id: str | None
    last_id: str | None
    has_more: bool
    request_id: str | None
    cursor: str | None
    page_number: int
    body: bytes = field(repr=False)
    malformed: int = 0  # items without a usable id (not deduplicated, still in `records`)
    data_json: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class ActivityPage(Page):
    pass


@dataclass(frozen=True, slots=True)
class ChatPage(Page):
    pass


@dataclass(frozen=True, slots=True)
class TraversalSummary:
    """Completeness attestation of a traversal (contract §3 pattern 4).

    `start_cursor`: the `after_id` the traversal began from (None = from the window edge). `first_cursor`: `first_id`
    of the first page. `last_cursor`: the terminal `last_id` (last non-null one). `final_request_id`: `request-id` of
    the last page. `records` counts records yielded (after dedupe, malformed items included). `complete` is True once
    a page with `has_more: false` was received.
    """

    gte: str | None
    lt: str | None
    pages: int = 0
    records: int = 0
    raw_records: int = 0
    duplicates_dropped: int = 0
    malformed: int = 0
    start_cursor: str | None = None
    first_cursor: str | None = None
    last_cursor: str | None = None
    final_request_id: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    complete: bool = False

    @property
    def duplicates(self) -> int:
        return self.duplicates_dropped


# --------------------------------------------------------------------------------------------------------------------
# Helpers


def format_timestamp(value: datetime | str, name: str = "timestamp") -> str:
    """RFC 3339 in UTC with `Z` (microseconds only when non-zero). Naive datetimes are refused: ambiguous."""
    if isinstance(value, str):
        try:
            dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise ValueError(f"{name} is not an RFC 3339 date-time: {value!r}") from None
        if "T" not in value.upper() and " " not in value.strip():
            raise ValueError(f"{name} needs a date, a time and a zone: {value!r}")
    elif isinstance(value, datetime):
        dt = value
    else:
        raise TypeError(f"{name} must be a datetime or an RFC 3339 string, not {type(value).__name__}")
    if dt.tzinfo is None:
        raise ValueError(f"{name} has no time zone (use an aware datetime, e.g. tzinfo=timezone.utc): {value!r}")
    dt = dt.astimezone(timezone.utc)
    fmt = "%Y-%m-%dT%H:%M:%S.%fZ" if dt.microsecond else "%Y-%m-%dT%H:%M:%SZ"
    return dt.strftime(fmt)


# The longest wait a server may impose: the API's budget is per minute, so a longer wait is an error of some kind,
# and a run waiting holds the single `duckdb` pool slot meanwhile.
MAX_SERVER_WAIT_SECONDS = 300.0


def _bounded_wait(seconds: float) -> float | None:
    """A server-given wait made safe: NaN and infinities are ignored (None), negatives are 0, the rest capped."""
    if not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), MAX_SERVER_WAIT_SECONDS)


def _parse_retry_after(headers: Mapping[str, str], now: float) -> float | None:
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            wait = _bounded_wait(float(ms) / 1000.0)
            if wait is not None:
                return wait
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - now
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    return _bounded_wait(seconds)


def _should_retry_header(headers: Mapping[str, str]) -> bool | None:
    value = headers.get("x-should-retry")
    if value is None:
        return None
    value = value.strip().lower()
    return True if value == "true" else False if value == "false" else None


def _list_params(name: str, values: Iterable[str] | str | None) -> list[tuple[str, str]]:
    if values is None:
        return []
    if isinstance(values, str):  # a bare string would otherwise be split into characters
        values = [values]
    return [(f"{name}[]", str(v)) for v in values]


_DATA_HEAD = b'{"data":['
_TAIL_MARK = b'],"has_more":'


def decode_envelope_lazily(body: bytes) -> dict[str, Any]:
    """Decode a cursor envelope without parsing its records when it is laid out `{"data":[...],"has_more":...}`:
    `data_json` holds the array's bytes and only the small tail is parsed. Any other layout is parsed whole (and
    `data_json` is None). A body cut inside `data` cannot end in a parseable tail, so truncation is still detected;
    whoever reads `data_json` parses it and fails loudly on anything else."""
    if body.startswith(_DATA_HEAD):
        mark = body.rfind(_TAIL_MARK)
        if mark > 0:
            try:
                tail = orjson.loads(b"{" + body[mark + 2:])
            except orjson.JSONDecodeError:
                tail = None
            if isinstance(tail, dict) and isinstance(tail.get("has_more"), bool):
                return {**tail, "data": None, "data_json": body[len(_DATA_HEAD) - 1:mark + 1]}
    data = orjson.loads(body)
    _validate_cursor_envelope(data)
    return {**data, "data_json": None}


def _validate_lazy_envelope(data: Any) -> None:
    if data.get("data_json") is None:
        _validate_cursor_envelope(data)


def _validate_cursor_envelope(data: Any) -> None:
    if not isinstance(data, dict):
        raise InvalidResponseError(f"expected a JSON object, got {type(data).__name__}")
    if not isinstance(data.get("data"), list):
        raise InvalidResponseError("response has no `data` array")
    if not isinstance(data.get("has_more", False), bool):
        raise InvalidResponseError("`has_more` is not a boolean")
    for key in ("first_id", "last_id"):
        if data.get(key) is not None and not isinstance(data.get(key), str):
            raise InvalidResponseError(f"`{key}` is not a string or null")


def _validate_object(data: Any) -> None:
    if not isinstance(data, dict):
        raise InvalidResponseError(f"expected a JSON object, got {type(data).__name__}")


ALLOWED_HOSTS_ENV = "COMPLIANCE_API_ALLOWED_HOSTS"


def allowed_hosts(env: Mapping[str, str] | None = None) -> set[str]:
    """Hosts the key may be sent to: the host of COMPLIANCE_API_BASE_URL (default api.anthropic.com) and those listed
    in COMPLIANCE_API_ALLOWED_HOSTS (comma-separated). Set on the host, never from the UI."""
    env = os.environ if env is None else env
    configured = urllib.parse.urlsplit((env.get(BASE_URL_ENV) or DEFAULT_BASE_URL).strip()).hostname
    listed = {h.strip().lower() for h in (env.get(ALLOWED_HOSTS_ENV) or "").split(",") if h.strip()}
    return {h for h in {configured, *listed} if h}


def check_base_url(base_url: str, env: Mapping[str, str] | None = None) -> str:
    """`base_url` if its host is allowed, else a ConfigurationError naming the settings (a base URL changed from run
    config to another host must not receive the key)."""
    host = (urllib.parse.urlsplit(base_url.strip()).hostname or "").lower()
    if host not in allowed_hosts(env):
        raise ConfigurationError(
            f"Compliance API base URL host {host or base_url!r} is not allowed: the key is only sent to the host of "
            f"{BASE_URL_ENV} or one listed in {ALLOWED_HOSTS_ENV} (set in the environment, not in run config).")
    return base_url


def _is_loopback(host: str) -> bool:
    if host in ("localhost",) or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


# Transport failures where the request may have reached the server (so a retried DELETE can find the work done).
_AMBIGUOUS = (httpx.ReadTimeout, httpx.WriteTimeout, httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError)
_RETRYABLE_TRANSPORT = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError, httpx.DecodingError)


# --------------------------------------------------------------------------------------------------------------------
# The client


class ComplianceClient:
    """Client of the Compliance API. Thread-safe for concurrent calls; use as a context manager or call `close()`."""

    def __init__(self, api_key: str | APIKey | None = None, base_url: str | None = None, *, timeout: float = 30.0,
                 max_retries: int = 8, requests_per_minute: int | None = 600, backoff_initial: float = 1.0,
                 backoff_max: float = 60.0, transport: httpx.BaseTransport | None = None,
                 user_agent: str = DEFAULT_USER_AGENT, max_rate_limit_retries: int = 100,
                 budget: RequestBudget | None = None, sleep: Callable[[float], None] = time.sleep,
                 api_key_env: str = API_KEY_ENV) -> None:
        self._key_env = api_key_env
        if api_key is None:
            api_key = os.environ.get(api_key_env) or None
            if api_key is None:
                raise ConfigurationError(f"No Compliance API key: set {api_key_env} (or pass api_key=).")
        self._key = api_key if isinstance(api_key, APIKey) else APIKey(api_key)
        base_url = (base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL).rstrip("/")
        parsed = urllib.parse.urlsplit(base_url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ConfigurationError(f"Invalid Compliance API base URL {base_url!r} (expected http(s)://host[:port]).")
        if parsed.scheme == "http" and not _is_loopback(parsed.hostname):
            raise ConfigurationError(f"Compliance API base URL {base_url!r} is plain http to a host that is not "
                                     "loopback: the key would travel unencrypted. Use https.")
        if timeout <= 0 or max_retries < 0 or backoff_initial < 0 or backoff_max < backoff_initial:
            raise ConfigurationError("timeout must be > 0, max_retries >= 0 and 0 <= backoff_initial <= backoff_max.")
        self.base_url = base_url
        self.timeout = float(timeout)
        self.max_retries = int(max_retries)
        self.max_rate_limit_retries = int(max_rate_limit_retries)
        self.backoff_initial = float(backoff_initial)
        self.backoff_max = float(backoff_max)
        self.requests_per_minute = requests_per_minute or None
        self.budget = budget if budget is not None else shared_budget(self.requests_per_minute)
        self._sleep = sleep
        self._rng = random.Random()
        self._http = httpx.Client(
            base_url=base_url,
            auth=_KeyAuth(self._key),
            headers={"anthropic-version": ANTHROPIC_VERSION, "user-agent": user_agent, "accept": "application/json"},
            timeout=httpx.Timeout(self.timeout),
            transport=transport,
            # A redirect could carry the key to another host; the API does not redirect.
            follow_redirects=False,
            limits=httpx.Limits(max_connections=20, max_keepalive_connections=10, keepalive_expiry=30.0),
        )

    @classmethod
    def from_env(cls, **overrides: Any) -> "ComplianceClient":
        """Build from the environment: key, base URL, timeout, max retries and requests/minute (overrides win)."""
        env = os.environ

        def number(name: str, conv: Callable[[str], Any]) -> Any:
            raw = env.get(name)
            if raw in (None, ""):
                return None
            try:
                return conv(raw)
            except ValueError:
                raise ConfigurationError(f"{name}={raw!r} is not a number.") from None

        kwargs: dict[str, Any] = {}
        for name, param, conv in ((TIMEOUT_ENV, "timeout", float), (MAX_RETRIES_ENV, "max_retries", int),
                                  (RPM_ENV, "requests_per_minute", int)):
            value = number(name, conv)
            if value is not None:
                kwargs[param] = value
        kwargs.update(overrides)
        return cls(**kwargs)

    # -- lifecycle ----------------------------------------------------------------------------------------------------

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "ComplianceClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ComplianceClient(base_url={self.base_url!r}, api_key={self._key!r})"

    @property
    def api_key(self) -> APIKey:
        return self._key

    # -- core request loop ------------------------------------------------------------------------------------------

    def _scrub(self, text: str | None) -> str | None:
        if text is None:
            return None
        secret = self._key.reveal()
        return text.replace(secret, self._key.masked) if secret in text else text

    def _backoff(self, attempt: int) -> float:
        # Full jitter: uniform over [0, min(max, initial * 2^(n-1))].
        ceiling = min(self.backoff_max, self.backoff_initial * (2 ** max(attempt - 1, 0)))
        return self._rng.uniform(0.0, ceiling)

    def _error_from_response(self, resp: httpx.Response, method: str, path: str) -> ComplianceAPIError:
        error_type = api_message = None
        request_id = resp.headers.get("request-id")
        try:
            payload = orjson.loads(resp.content)
        except orjson.JSONDecodeError:
            payload = None
        if isinstance(payload, dict):
            err = payload.get("error")
            if isinstance(err, dict):
                error_type = err.get("type") if isinstance(err.get("type"), str) else None
                api_message = err.get("message") if isinstance(err.get("message"), str) else None
            request_id = request_id or (payload.get("request_id") if isinstance(payload.get("request_id"), str)
                                        else None)
        if api_message is None and payload is None and resp.content:
            api_message = resp.content[:200].decode("utf-8", "replace")
        return error_for_status(
            resp.status_code, error_type=error_type, api_message=self._scrub(api_message), request_id=request_id,
            method=method, path=path, should_retry=_should_retry_header(resp.headers),
            retry_after=_parse_retry_after(resp.headers, time.time()), key_kind=self._key.kind,
            key_env=self._key_env)

    def request(self, method: str, path: str, *, params: list[tuple[str, str]] | Mapping[str, Any] | None = None,
                validate: Callable[[Any], None] | None = _validate_object, parse_json: bool = True,
                decode: Callable[[bytes], Any] = orjson.loads) -> APIResponse:
        """One API call with budget, retries and typed errors. `decode` turns the body into `data` and `validate`
        checks it; either one raising (JSON error or InvalidResponseError) retries the call like a truncated body."""
        method = method.upper()
        failures = 0
        rate_limited = 0
        attempt = 0
        ambiguous = False
        while True:
            attempt += 1
            self.budget.acquire()
            err: ComplianceAPIError | None = None
            fatal: ComplianceAPIError | None = None
            resp: httpx.Response | None = None
            started = time.monotonic()
            try:
                resp = self._http.request(method, path, params=params)
            except _RETRYABLE_TRANSPORT as exc:
                ambiguous = ambiguous or isinstance(exc, _AMBIGUOUS)
                err = TransportError(f"{type(exc).__name__}: {self._scrub(str(exc)) or 'no detail'}",
                                     kind=type(exc).__name__, method=method, path=path)
            except httpx.HTTPError as exc:  # e.g. UnsupportedProtocol, LocalProtocolError: a bug, not transient
                fatal = TransportError(f"{type(exc).__name__}: {self._scrub(str(exc)) or 'no detail'}",
                                       kind=type(exc).__name__, retryable=False, method=method, path=path)
            # Raised outside the except blocks so the httpx exception (and its request headers) is not chained.
            if fatal is not None:
                raise fatal
            retry_after: float | None = None
            if resp is not None:
                request_id = resp.headers.get("request-id")
                logger.debug("%s %s %s request_id=%s attempt=%d %.3fs", method, path, resp.status_code, request_id,
                             attempt, time.monotonic() - started)
                self.budget.observe_headers(resp.headers)
                if 200 <= resp.status_code < 300:
                    data: Any = None
                    try:
                        if parse_json:
                            data = decode(resp.content)
                            if validate is not None:
                                validate(data)
                        return APIResponse(resp.status_code, resp.headers, resp.content, data, request_id, attempt)
                    except orjson.JSONDecodeError as exc:
                        if not is_content_error(exc):
                            err = InvalidResponseError(
                                f"Invalid JSON body ({len(resp.content)} bytes, truncated?): {exc}",
                                status_code=resp.status_code, request_id=request_id, method=method, path=path)
                        else:
                            # A complete body whose records include undecodable ones: the same bytes would come
                            # back on a retry. Its records are decoded one by one, hostile ones marked for quarantine.
                            data = decode_with_rejects(resp.content)
                            if data is None:
                                fatal = InvalidResponseError(
                                    f"Undecodable JSON body ({len(resp.content)} bytes, complete): {exc}",
                                    status_code=resp.status_code, request_id=request_id, method=method, path=path)
                                fatal.retryable = False
                                fatal.body = resp.content  # for the caller's quarantine; never in the message
                                raise fatal from None
                            if decode is decode_envelope_lazily:
                                data["data_json"] = None
                            try:
                                if validate is not None:
                                    validate(data)
                                return APIResponse(resp.status_code, resp.headers, resp.content, data, request_id,
                                                   attempt)
                            except InvalidResponseError as shape:
                                err = InvalidResponseError(f"Unexpected response shape: {shape.args[0]}",
                                                           status_code=resp.status_code, request_id=request_id,
                                                           method=method, path=path)
                    except InvalidResponseError as exc:
                        err = InvalidResponseError(f"Unexpected response shape: {exc.args[0]}",
                                                   status_code=resp.status_code, request_id=request_id,
                                                   method=method, path=path)
                else:
                    err = self._error_from_response(resp, method, path)
                    retry_after = getattr(err, "retry_after", None)
                    if not err.retryable:
                        err.after_ambiguous_attempt = ambiguous
                        raise err
            assert err is not None
            if isinstance(err, RateLimitError):
                rate_limited += 1
                if rate_limited > self.max_rate_limit_retries:
                    raise RetriesExhaustedError(
                        f"{method} {path} still rate limited after {rate_limited} attempts; last error: {err}",
                        last_error=err, attempts=attempt)
                # A floor that doubles with each consecutive 429 (half the backoff ceiling): a storm of
                # `retry-after: 0` answers must not turn into hundreds of requests a second.
                floor = min(self.backoff_max, self.backoff_initial * 2 ** min(rate_limited - 1, 16)) / 2
                wait = max(retry_after if retry_after is not None else self._backoff(rate_limited), floor)
                logger.warning("rate limited on %s %s (request_id=%s); waiting %.2fs (429 #%d, attempt %d)",
                               method, path, err.request_id, wait, rate_limited, attempt)
                # The budget is org-wide: every thread of the process waits, not just this one.
                self.budget.pause_for(wait)
                continue
            failures += 1
            if failures > self.max_retries:
                raise RetriesExhaustedError(
                    f"{method} {path} failed after {attempt} attempts; last error: {err}",
                    last_error=err, attempts=attempt)
            wait = retry_after if retry_after is not None else self._backoff(failures)
            logger.warning("retrying %s %s after %s; waiting %.2fs (retry %d/%d)", method, path,
                           _reason(err), wait, failures, self.max_retries)
            if wait > 0:
                self._sleep(wait)

    def request_json(self, method: str, path: str, *, params: list[tuple[str, str]] | Mapping[str, Any] | None = None
                     ) -> Any:
        """Escape hatch for endpoints without a dedicated method: the parsed JSON object."""
        return self.request(method, path, params=params).data

    # -- activity feed ----------------------------------------------------------------------------------------------

    def iter_activity_pages(self, gte: datetime | str, lt: datetime | str, *,
                            activity_types: Iterable[str] | None = None,
                            exclude_activity_types: Iterable[str] | None = None,
                            organization_ids: Iterable[str] | None = None, actor_ids: Iterable[str] | None = None,
                            limit: int = ACTIVITY_LIMIT_MAX, after_id: str | None = None,
                            parse_records: bool = True) -> "ActivityPageIterator":
        """Pages of the half-open window [gte, lt) (default newest-first order; `order` is never sent), following
        `after_id=<last_id>` until `has_more` is false. Returns an iterator whose `.summary` is the TraversalSummary.
        `after_id` resumes a traversal from a saved cursor. `parse_records=False` leaves the records as the bytes of
        each page's `data` array (`Page.data_json`) for a loader that parses them itself (and deduplicates)."""
        gte_s, lt_s = format_timestamp(gte, "gte"), format_timestamp(lt, "lt")
        if _as_dt(gte) >= _as_dt(lt):
            raise ValueError(f"empty window: gte {gte_s} must be before lt {lt_s}")
        if activity_types is not None and exclude_activity_types is not None:
            raise ValueError("activity_types and exclude_activity_types cannot be combined (contract §3)")
        if not 1 <= int(limit) <= ACTIVITY_LIMIT_MAX:
            raise ValueError(f"limit must be between 1 and {ACTIVITY_LIMIT_MAX}")
        params = [("created_at.gte", gte_s), ("created_at.lt", lt_s)]
        params += _list_params("activity_types", activity_types)
        params += _list_params("exclude_activity_types", exclude_activity_types)
        params += _list_params("organization_ids", organization_ids)
        params += _list_params("actor_ids", actor_ids)
        params.append(("limit", str(int(limit))))
        return ActivityPageIterator(self, ACTIVITIES_PATH, params, start_cursor=after_id, gte=gte_s, lt=lt_s,
                                    parse_records=parse_records)

    def traverse_activities(self, gte: datetime | str, lt: datetime | str, *,
                            on_page: Callable[[ActivityPage], None] | None = None, **filters: Any) -> TraversalSummary:
        """Walk the whole window, calling `on_page` for each page; return the completeness summary."""
        pages = self.iter_activity_pages(gte, lt, **filters)
        for page in pages:
            if on_page is not None:
                on_page(page)
        return pages.summary

    # -- chats ------------------------------------------------------------------------------------------------------

    def iter_chat_pages(self, updated_gte: datetime | str, updated_lt: datetime | str | None = None, *,
                        organization_ids: Iterable[str] | None = None, limit: int = CHAT_LIMIT_MAX,
                        after_id: str | None = None) -> "ChatPageIterator":
        """Org-wide chat metadata ordered by `updated_at` ascending over [updated_gte, updated_lt), walking forward with
        `after_id`. Never sends `user_ids[]` (not allowed with `updated_at` filters). A chat modified during the walk
        can reappear later with a newer `updated_at`: upsert by id (only exact repeats are dropped)."""
        params = [("order_by", "updated_at"), ("updated_at.gte", format_timestamp(updated_gte, "updated_gte"))]
        if updated_lt is not None:
            params.append(("updated_at.lt", format_timestamp(updated_lt, "updated_lt")))
        params += _list_params("organization_ids", organization_ids)
        if not 1 <= int(limit) <= CHAT_LIMIT_MAX:
            raise ValueError(f"limit must be between 1 and {CHAT_LIMIT_MAX}")
        params.append(("limit", str(int(limit))))
        return ChatPageIterator(self, CHATS_PATH, params, start_cursor=after_id, gte=params[1][1],
                                lt=format_timestamp(updated_lt, "updated_lt") if updated_lt is not None else None)

    def get_chat_messages(self, chat_id: str, *, limit: int | None = None, tool_result_max_chars: int | None = None,
                          tool_use_input_max_chars: int | None = None) -> dict[str, Any]:
        """The chat object with all its messages in `chat_messages` (oldest first). Without `limit` the API returns
        the whole chat at once; whenever `has_more` is true, pages are followed with `after_id` and merged."""
        path = f"{CHATS_PATH}/{_quote(chat_id)}/messages"
        base: list[tuple[str, str]] = []
        if limit is not None:
            if not 1 <= int(limit) <= CHAT_LIMIT_MAX:
                raise ValueError(f"limit must be between 1 and {CHAT_LIMIT_MAX}")
            base.append(("limit", str(int(limit))))
        if tool_result_max_chars is not None:
            base.append(("tool_result_max_chars", str(int(tool_result_max_chars))))
        if tool_use_input_max_chars is not None:
            base.append(("tool_use_input_max_chars", str(int(tool_use_input_max_chars))))
        chat: dict[str, Any] | None = None
        messages: list[Any] = []
        seen: dict[str, Any] = {}
        cursor: str | None = None
        while True:
            params = base + ([("after_id", cursor)] if cursor else [])
            data = self.request("GET", path, params=params, validate=_validate_messages).data
            for msg in data.get("chat_messages") or []:
                mid = msg.get("id") if isinstance(msg, dict) else None
                if isinstance(mid, str):
                    if mid in seen:
                        if seen[mid] != msg:  # same id, other content: kept for the caller to quarantine
                            messages.append(msg)
                        continue
                    seen[mid] = msg
                messages.append(msg)
            if chat is None:
                chat = {k: v for k, v in data.items() if k != "chat_messages"}
            last_id = data.get("last_id")
            if not data.get("has_more"):  # also followed without `limit`: never return a chat cut short
                break
            if not last_id or last_id == cursor:
                raise PaginationError(f"messages of {chat_id}: has_more without a new last_id", method="GET",
                                      path=path)
            cursor = last_id
        assert chat is not None
        chat["chat_messages"] = messages
        chat["has_more"] = False
        if cursor is not None:  # several pages: the cursors describe the merged result
            chat["last_id"] = data.get("last_id")
        return chat

    def delete_chat(self, chat_id: str) -> dict[str, Any]:
        """Hard-delete a chat (irreversible; archive first). A 404 after an attempt that may have reached the server
        (timeout / dropped connection) means that attempt did the delete: reported as success."""
        path = f"{CHATS_PATH}/{_quote(chat_id)}"
        try:
            return self.request("DELETE", path).data
        except NotFoundError as exc:
            if not exc.after_ambiguous_attempt:
                raise
            logger.warning("DELETE %s: 404 after an interrupted attempt; the chat was already deleted (request_id=%s)",
                           path, exc.request_id)
            return {"id": chat_id, "type": "claude_chat_deleted"}

    # -- directory ---------------------------------------------------------------------------------------------------

    def _iter_page_token(self, path: str, params: list[tuple[str, str]]) -> Iterator[Any]:
        token: str | None = None
        seen_tokens: set[str] = set()
        while True:
            page_params = params + ([("page", token)] if token else [])
            data = self.request("GET", path, params=page_params, validate=_validate_page_envelope).data
            yield from data["data"]
            next_page = data.get("next_page")
            if data.get("has_more") is False or not next_page:
                if data.get("has_more") is True:
                    raise PaginationError("has_more is true but next_page is missing", method="GET", path=path)
                return
            if next_page in seen_tokens:
                raise PaginationError(f"next_page token repeated ({next_page!r})", method="GET", path=path)
            seen_tokens.add(next_page)
            token = next_page

    def iter_organizations(self, limit: int = DIRECTORY_LIMIT_MAX) -> Iterator[dict[str, Any]]:
        """Every organization of the tenant (`{uuid, name, created_at}`), following `page`/`next_page`."""
        return self._iter_page_token(ORGANIZATIONS_PATH, [("limit", str(int(limit)))])

    def iter_organization_users(self, org_uuid: str, limit: int = DIRECTORY_LIMIT_MAX) -> Iterator[dict[str, Any]]:
        """Current members of one organization (scope read:compliance_user_data), following `page`/`next_page`."""
        if not 1 <= int(limit) <= DIRECTORY_LIMIT_MAX:
            raise ValueError(f"limit must be between 1 and {DIRECTORY_LIMIT_MAX}")
        return self._iter_page_token(f"{ORGANIZATIONS_PATH}/{_quote(org_uuid)}/users", [("limit", str(int(limit)))])


def _reason(err: ComplianceAPIError) -> str:
    if isinstance(err, TransportError):
        return f"{err.kind or 'transport error'}"
    if isinstance(err, InvalidResponseError):
        return f"invalid body (request_id={err.request_id})"
    label = f"{err.status_code} {err.error_type}" if err.error_type else str(err.status_code)
    return f"{label} (request_id={err.request_id})"


def _quote(segment: str) -> str:
    if not isinstance(segment, str) or not segment:
        raise ValueError("an id must be a non-empty string")
    return urllib.parse.quote(segment, safe="")


def _as_dt(value: datetime | str) -> datetime:
    return datetime.fromisoformat(format_timestamp(value).replace("Z", "+00:00"))


def _validate_page_envelope(data: Any) -> None:
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise InvalidResponseError("response has no `data` array")


def _validate_messages(data: Any) -> None:
    if not isinstance(data, dict):
        raise InvalidResponseError("expected a JSON object")
    if data.get("chat_messages") is not None and not isinstance(data.get("chat_messages"), list):
        raise InvalidResponseError("`chat_messages` is not an array")


# --------------------------------------------------------------------------------------------------------------------
# Cursor traversal


def _content_key(item: Any) -> tuple[str, bytes]:
    """Dedup key of an id-less record: its exact bytes (a rejected one) or its canonical JSON."""
    if isinstance(item, RejectedRecord):
        return ("raw", item.raw)
    try:
        return ("json", orjson.dumps(item, option=orjson.OPT_SORT_KEYS))
    except (TypeError, orjson.JSONEncodeError):  # not re-encodable: compare its repr
        return ("repr", repr(item).encode())


class _CursorPageIterator:
    """Iterator over `after_id` pages. State changes only after a page arrived whole, so after an exception the
    traversal can be continued (`next()` again) from the same cursor; `cursor` is the resume point."""

    _page_cls: type[Page] = Page

    def __init__(self, client: ComplianceClient, path: str, params: list[tuple[str, str]], *,
                 start_cursor: str | None, gte: str | None, lt: str | None, parse_records: bool = True) -> None:
        self._client = client
        self._parse_records = parse_records
        self._path = path
        self._params = params
        self.cursor = start_cursor
        self._done = False
        self._prev_keys: set[Any] = set()
        self._summary = TraversalSummary(gte=gte, lt=lt, start_cursor=start_cursor)

    @property
    def summary(self) -> TraversalSummary:
        return self._summary

    @property
    def done(self) -> bool:
        return self._done

    @staticmethod
    def _key(item: Any) -> Any:
        """Dedup key of an item, or None when it has no usable id (kept, counted as malformed)."""
        rid = item.get("id") if isinstance(item, dict) else None
        return rid if isinstance(rid, str) and rid else None

    def __iter__(self) -> "_CursorPageIterator":
        return self

    def __next__(self) -> Page:
        if self._done:
            raise StopIteration
        cursor = self.cursor
        params = self._params + ([("after_id", cursor)] if cursor else [])
        started = datetime.now(timezone.utc)
        if self._parse_records:
            resp = self._client.request("GET", self._path, params=params, validate=_validate_cursor_envelope)
        else:
            resp = self._client.request("GET", self._path, params=params, validate=_validate_lazy_envelope,
                                        decode=decode_envelope_lazily)
        data = resp.data
        has_more = bool(data.get("has_more", False))
        first_id, last_id = data.get("first_id"), data.get("last_id")
        if has_more and (not last_id or last_id == cursor):
            # Continuing would repeat this page forever (or stop early): refuse rather than loop or lose data.
            raise PaginationError(f"has_more is true but last_id is {last_id!r} (cursor {cursor!r})",
                                  request_id=resp.request_id, method="GET", path=self._path)
        if not self._parse_records:
            return self._unparsed_page(resp, data, cursor, has_more, first_id, last_id, started)
        items: list[Any] = data["data"]
        records: list[Any] = []
        keys: set[Any] = set()
        dropped = malformed = 0
        for item in items:
            key = self._key(item)
            # A record without a usable id is still handed over (counted as malformed), but an at-least-once
            # re-delivery of it (the cursor record repeated on the next page) is recognised by its exact content.
            dedup_key = key if key is not None else _content_key(item)
            if dedup_key in self._prev_keys or dedup_key in keys:
                dropped += 1
                continue
            keys.add(dedup_key)
            records.append(item)
            if key is None:
                malformed += 1
        s = self._summary
        number = s.pages + 1
        page = self._page_cls(records=records, raw_count=len(items), duplicates_dropped=dropped, first_id=first_id,
                              last_id=last_id, has_more=has_more, request_id=resp.request_id, cursor=cursor,
                              page_number=number, body=resp.body, malformed=malformed)
        # Commit the traversal state only now that the page is whole.
        self._prev_keys = keys  # bounded memory: only the previous page is remembered
        self._summary = replace(
            s, pages=number, records=s.records + len(records), raw_records=s.raw_records + len(items),
            duplicates_dropped=s.duplicates_dropped + dropped, malformed=s.malformed + malformed,
            first_cursor=first_id if number == 1 else s.first_cursor,
            last_cursor=last_id if last_id is not None else s.last_cursor, final_request_id=resp.request_id,
            started_at=s.started_at or started, finished_at=datetime.now(timezone.utc), complete=not has_more)
        if has_more:
            self.cursor = last_id
        else:
            self._done = True
        return page


    def _unparsed_page(self, resp: APIResponse, data: dict, cursor: str | None, has_more: bool, first_id: Any,
                       last_id: Any, started: datetime) -> Page:
        data_json = data["data_json"]
        if data_json is None:  # an envelope of another layout was parsed anyway: hand its array over as bytes
            data_json = b"[" + b",".join(r.raw if isinstance(r, RejectedRecord) else orjson.dumps(r)
                                         for r in data["data"]) + b"]"
        s = self._summary
        number = s.pages + 1
        page = self._page_cls(records=None, raw_count=None, duplicates_dropped=0, first_id=first_id, last_id=last_id,
                              has_more=has_more, request_id=resp.request_id, cursor=cursor, page_number=number,
                              body=resp.body, data_json=data_json)
        self._summary = replace(
            s, pages=number, first_cursor=first_id if number == 1 else s.first_cursor,
            last_cursor=last_id if last_id is not None else s.last_cursor, final_request_id=resp.request_id,
            started_at=s.started_at or started, finished_at=datetime.now(timezone.utc), complete=not has_more)
        if has_more:
            self.cursor = last_id
        else:
            self._done = True
        return page


class ActivityPageIterator(_CursorPageIterator):
    _page_cls = ActivityPage


class ChatPageIterator(_CursorPageIterator):
    _page_cls = ChatPage

    @staticmethod
    def _key(item: Any) -> Any:
        # A chat updated during the walk legitimately comes back with a newer updated_at: only exact repeats drop.
        if not isinstance(item, dict) or not isinstance(item.get("id"), str) or not item.get("id"):
            return None
        return (item["id"], item.get("updated_at"))
