"""Transport: the HTTP session, budget, retries with backoff, typed errors and validation of response bodies.

Behaviour (contract §1, §7, §8):

* Auth: `x-api-key` (key.py) + `anthropic-version: 2023-06-01`; base URL from `COMPLIANCE_API_BASE_URL` (default
  https://api.anthropic.com). One keep-alive `httpx.Client` per client; redirects are not followed.
* Retries: 429 waits `retry-after` (exponential 1 s -> 60 s with full jitter when absent) and pauses the whole process
  (see ratelimit.py); 429s do not use up `max_retries` but have their own generous cap (`max_rate_limit_retries`).
  500 is retried unless `x-should-retry: false`; 502/503/504/529, connection errors (incl. a peer closing mid-body),
  timeouts and truncated / non-JSON 2xx bodies get `max_retries` retries with full-jitter exponential backoff
  (`backoff_initial` doubling up to `backoff_max`). 400/401/403/404/409 raise typed errors at once (errors.py).
* httpx exceptions are replaced by key-free `TransportError`s (their request objects, which hold the headers, are not
  kept, and the original exception is not chained).
* Logging (`pipeline.compliance_api`): each request at DEBUG with method, path, status, request id and attempt;
  retries at WARNING with the reason and the wait.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import random
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, Self

import httpx
import orjson

from pipeline.compliance_api.errors import (
    API_KEY_ENV,
    ComplianceAPIError,
    ConfigurationError,
    InvalidResponseError,
    RateLimitError,
    RetriesExhaustedError,
    TransportError,
    error_for_status,
)
from pipeline.compliance_api.hostile import decode_with_rejects, is_content_error
from pipeline.compliance_api.key import APIKey, KeyAuth, key_from_env
from pipeline.compliance_api.ratelimit import RequestBudget, shared_budget
from pipeline.settings import DEFAULT_BASE_URL, PipelineSettings, load_settings

logger = logging.getLogger("pipeline.compliance_api")

# The variables' names, from the settings that read them (one definition each).
BASE_URL_ENV = PipelineSettings.model_fields["api_base_url"].validation_alias
TIMEOUT_ENV = PipelineSettings.model_fields["api_timeout_seconds"].validation_alias
MAX_RETRIES_ENV = PipelineSettings.model_fields["api_max_retries"].validation_alias
RPM_ENV = PipelineSettings.model_fields["api_requests_per_minute"].validation_alias
ANTHROPIC_VERSION = "2023-06-01"


def _package_version() -> str:
    try:
        from importlib.metadata import version

        return version("compliance-pipeline")
    except Exception:  # not installed as a distribution (plain checkout)
        return "0.1.0"


DEFAULT_USER_AGENT = f"compliance-pipeline/{_package_version()} (python-httpx/{httpx.__version__})"


@dataclass(frozen=True, slots=True)
class APIResponse:
    status_code: int
    headers: httpx.Headers = field(repr=False)  # response headers only (no key)
    body: bytes = field(repr=False)
    data: Any = field(repr=False)
    request_id: str | None
    attempts: int



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


ALLOWED_HOSTS_ENV = PipelineSettings.model_fields["api_allowed_hosts"].validation_alias


def allowed_hosts(env: Mapping[str, str] | None = None) -> set[str]:
    """Hosts the key may be sent to: the host of COMPLIANCE_API_BASE_URL (default api.anthropic.com) and those listed
    in COMPLIANCE_API_ALLOWED_HOSTS (comma-separated). Set on the host, never from the UI. `env` (variable -> value)
    stands in for the validated settings."""
    if env is None:
        settings = load_settings()
        env = {BASE_URL_ENV: settings.api_base_url, ALLOWED_HOSTS_ENV: settings.api_allowed_hosts or ""}
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



class ComplianceTransport:
    """One API call at a time, done right: budget, retries, typed errors, validated bodies. `ComplianceClient`
    (endpoints.py) adds the endpoints. Thread-safe for concurrent calls; use as a context manager or call `close()`."""

    def __init__(self, api_key: str | APIKey | None = None, base_url: str | None = None, *, timeout: float = 30.0,
                 max_retries: int = 8, requests_per_minute: int | None = 600, backoff_initial: float = 1.0,
                 backoff_max: float = 60.0, transport: httpx.BaseTransport | None = None,
                 user_agent: str = DEFAULT_USER_AGENT, max_rate_limit_retries: int = 100,
                 budget: RequestBudget | None = None, sleep: Callable[[float], None] = time.sleep,
                 api_key_env: str = API_KEY_ENV) -> None:
        self._key_env = api_key_env
        if api_key is None:
            api_key = key_from_env(api_key_env)
        self._key = api_key if isinstance(api_key, APIKey) else APIKey(api_key)
        base_url = (base_url or load_settings().api_base_url).rstrip("/")
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
            auth=KeyAuth(self._key),
            headers={"anthropic-version": ANTHROPIC_VERSION, "user-agent": user_agent, "accept": "application/json"},
            timeout=httpx.Timeout(self.timeout),
            transport=transport,
            # A redirect could carry the key to another host; the API does not redirect.
            follow_redirects=False,
            limits=httpx.Limits(max_connections=20, max_keepalive_connections=10, keepalive_expiry=30.0),
        )

    @classmethod
    def from_env(cls, **overrides: Any) -> Self:
        """Build from the environment: key (key.py), then base URL, timeout, max retries and requests/minute from the
        validated settings (pipeline.settings; overrides win)."""
        settings = load_settings()
        kwargs: dict[str, Any] = {"base_url": settings.api_base_url, "timeout": settings.api_timeout_seconds,
                                  "max_retries": settings.api_max_retries,
                                  "requests_per_minute": settings.api_requests_per_minute}
        kwargs.update(overrides)
        return cls(**kwargs)

    # -- lifecycle ----------------------------------------------------------------------------------------------------

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r}, api_key={self._key!r})"

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


def _reason(err: ComplianceAPIError) -> str:
    if isinstance(err, TransportError):
        return f"{err.kind or 'transport error'}"
    if isinstance(err, InvalidResponseError):
        return f"invalid body (request_id={err.request_id})"
    label = f"{err.status_code} {err.error_type}" if err.error_type else str(err.status_code)
    return f"{label} (request_id={err.request_id})"

