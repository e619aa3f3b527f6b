"""Typed errors of the Compliance API client.

Every error carries what support needs (HTTP status, the API's `error.type` and message, the `request-id`, method and
path) and never the API key: errors are built from strings only (no httpx request objects, whose headers hold the key),
and the client scrubs the key out of any text it puts here.

Hierarchy::

    ComplianceAPIError
    ├── ConfigurationError (also ValueError)   missing/invalid key or base URL
    ├── BadRequestError            400  invalid_request_error    no retry
    ├── AuthenticationError        401  authentication_error     no retry; says which env var to fix
    ├── PermissionDeniedError      403  permission_error         no retry; .granted_scopes / .missing_scopes
    ├── NotFoundError              404  not_found_error          no retry
    ├── ConflictError              409  conflict_error           no retry
    ├── RateLimitError             429  rate_limit_error         retried after `retry-after`
    ├── ServerError                5xx                           retried unless `x-should-retry: false`
    ├── UnexpectedStatusError      any other status              no retry
    ├── TransportError             connection errors, timeouts   retried
    ├── InvalidResponseError       2xx with a truncated / non-JSON / wrong-shape body   retried
    ├── PaginationError            the server broke the cursor protocol (e.g. has_more without last_id)
    └── RetriesExhaustedError      bounded retries used up; wraps the last cause (.last_error, __cause__)
"""

from __future__ import annotations

import ast
import re
from typing import Any

from pipeline.settings import API_KEY_ENV

# Which scope an endpoint needs (contract §1-§2): used when a 403 body does not say it.
_SCOPE_ACTIVITIES = "read:compliance_activities"
_SCOPE_USER_DATA = "read:compliance_user_data"
_SCOPE_ORG_DATA = "read:compliance_org_data"
_SCOPE_DELETE = "delete:compliance_user_data"


def required_scope_for(method: str, path: str) -> str | None:
    """Best guess of the scope an endpoint needs, from the contract's endpoint table."""
    path = path.split("?", 1)[0].rstrip("/")
    if path.endswith("/v1/compliance/activities"):
        return _SCOPE_ACTIVITIES
    if method.upper() == "DELETE":
        return _SCOPE_DELETE
    if "/v1/compliance/apps/" in path:
        return _SCOPE_USER_DATA
    if re.search(r"/v1/compliance/organizations/[^/]+/users$", path) or re.search(r"/groups/[^/]+/members$", path):
        return _SCOPE_USER_DATA
    if "/v1/compliance/organizations" in path or "/v1/compliance/groups" in path:
        return _SCOPE_ORG_DATA
    return None


class ComplianceAPIError(Exception):
    """Base class. `str(err)` is a complete, key-free explanation; the fields are for programs."""

    retryable: bool = False

    def __init__(self, message: str, *, status_code: int | None = None, error_type: str | None = None,
                 api_message: str | None = None, request_id: str | None = None, method: str | None = None,
                 path: str | None = None) -> None:
        self.status_code = status_code
        self.error_type = error_type
        self.api_message = api_message
        self.request_id = request_id
        self.method = method
        self.path = path
        # Set by the client when an earlier attempt of the same call may have reached the server (timeout or dropped
        # connection): lets callers treat e.g. a 404 on a retried DELETE as "already done".
        self.after_ambiguous_attempt = False
        super().__init__(self._compose(message))

    def _compose(self, message: str) -> str:
        parts = [message]
        if self.method and self.path and f"{self.method} {self.path}" not in message:
            parts.append(f"({self.method} {self.path})")
        if self.request_id and self.request_id not in message:
            parts.append(f"[request_id={self.request_id}]")
        return " ".join(parts)

    @property
    def message(self) -> str:
        return str(self)

    # Keyword-only constructors do not survive pickling by default (multiprocess executors pickle errors).
    def __reduce__(self):
        return (_restore, (type(self), self.args, self.__dict__.copy()))


def _restore(cls, args, state):
    obj = cls.__new__(cls)
    Exception.__init__(obj, *args)
    obj.__dict__.update(state)
    return obj


class ConfigurationError(ComplianceAPIError, ValueError):
    """The client cannot be built (missing key, malformed key, bad base URL). Never contains the key."""


class APIStatusError(ComplianceAPIError):
    """An HTTP error answer from the API (shared base of the status-specific classes)."""


class BadRequestError(APIStatusError):
    pass


class AuthenticationError(APIStatusError):
    pass


class PermissionDeniedError(APIStatusError):
    def __init__(self, message: str, *, granted_scopes: list[str] | None = None,
                 missing_scopes: list[str] | None = None, needed_scopes: list[str] | None = None, **kw: Any) -> None:
        self.granted_scopes = list(granted_scopes or [])
        self.needed_scopes = list(needed_scopes or [])
        self.missing_scopes = list(missing_scopes or [])
        super().__init__(message, **kw)


class NotFoundError(APIStatusError):
    pass


class ConflictError(APIStatusError):
    pass


class RateLimitError(APIStatusError):
    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kw)


class ServerError(APIStatusError):
    def __init__(self, message: str, *, retryable: bool = True, retry_after: float | None = None, **kw: Any) -> None:
        self.retryable = retryable
        self.retry_after = retry_after
        super().__init__(message, **kw)


class UnexpectedStatusError(APIStatusError):
    pass


class TransportError(ComplianceAPIError):
    """No usable HTTP answer: connection refused/reset, peer closed mid-body, timeout. `.kind` is the httpx class."""

    retryable = True

    def __init__(self, message: str, *, kind: str = "", retryable: bool = True, **kw: Any) -> None:
        self.kind = kind
        self.retryable = retryable
        super().__init__(message, **kw)


class InvalidResponseError(ComplianceAPIError):
    """A 2xx answer whose body is truncated, not JSON, or not the documented envelope."""

    retryable = True


class PaginationError(ComplianceAPIError):
    """The server broke the cursor protocol; continuing could loop forever or silently skip data."""


class RetriesExhaustedError(ComplianceAPIError):
    """All bounded retries failed. `.last_error` (also `__cause__`) is the final typed cause."""

    def __init__(self, message: str, *, last_error: ComplianceAPIError, attempts: int, **kw: Any) -> None:
        self.last_error = last_error
        self.attempts = attempts
        kw.setdefault("status_code", last_error.status_code)
        kw.setdefault("error_type", last_error.error_type)
        kw.setdefault("api_message", last_error.api_message)
        kw.setdefault("request_id", last_error.request_id)
        kw.setdefault("method", last_error.method)
        kw.setdefault("path", last_error.path)
        super().__init__(message, **kw)
        self.__cause__ = last_error


_GOT_NEEDED = re.compile(r"Got:\s*(\[[^\]]*\])\s*\.?\s*Needed:\s*(\[[^\]]*\])", re.IGNORECASE | re.DOTALL)


def _parse_list(text: str) -> list[str]:
    try:
        value = ast.literal_eval(text)
        if isinstance(value, (list, tuple)):
            return [str(v) for v in value]
    except (ValueError, SyntaxError):
        pass
    inner = text.strip()[1:-1]
    return [s.strip().strip("'\"") for s in inner.split(",") if s.strip().strip("'\"")]


def parse_scopes(api_message: str | None) -> tuple[list[str], list[str]] | None:
    """`Missing required scopes. Got: ['a'] Needed: ['b']` -> (['a'], ['b']); None when the pattern is absent."""
    if not api_message:
        return None
    m = _GOT_NEEDED.search(api_message)
    if not m:
        return None
    return _parse_list(m.group(1)), _parse_list(m.group(2))


_STATUS_CLASSES: dict[int, type[APIStatusError]] = {
    400: BadRequestError, 401: AuthenticationError, 403: PermissionDeniedError, 404: NotFoundError,
    409: ConflictError, 429: RateLimitError,
}


def error_for_status(status: int, *, error_type: str | None, api_message: str | None, request_id: str | None,
                     method: str, path: str, should_retry: bool | None = None, retry_after: float | None = None,
                     key_kind: str | None = None, key_env: str = API_KEY_ENV) -> APIStatusError:
    """Build the typed error for an HTTP error answer (the client has already scrubbed `api_message`)."""
    common = dict(status_code=status, error_type=error_type, api_message=api_message, request_id=request_id,
                  method=method, path=path)
    label = f"{status} {error_type}" if error_type else str(status)
    detail = f": {api_message}" if api_message else ""

    if status == 401:
        hint = (f"The Compliance API key is wrong or has been revoked: set {key_env} to a valid Compliance Access Key "
                f"(sk-ant-api01-…) or an Admin API key (sk-ant-admin01-…, Activity Feed only).")
        if key_kind == "claude_api_key":
            hint += " The configured key looks like a regular Claude API key (sk-ant-api03-…), which is not accepted."
        return AuthenticationError(f"Authentication failed ({label}{detail}). {hint}", **common)

    if status == 403:
        parsed = parse_scopes(api_message)
        granted, needed = parsed if parsed else ([], [])
        if not needed:
            guess = required_scope_for(method, path)
            needed = [guess] if guess else []
        missing = [s for s in needed if s not in granted] or list(needed)
        if missing:
            have = f" (the key has: {', '.join(granted)})" if parsed else ""
            hint = (f"The API key in {key_env} lacks scope {', '.join(missing)}{have}. Scopes are fixed when a key is "
                    f"created: create a Compliance Access Key with {', '.join(missing)} and put it in {key_env}.")
        else:
            hint = f"The API key in {key_env} is not allowed to call this endpoint."
        if key_kind == "admin_api_key" and not path.rstrip("/").endswith("/activities"):
            hint += " Admin API keys (sk-ant-admin01-…) reach only the Activity Feed."
        return PermissionDeniedError(f"Permission denied ({label}{detail}). {hint}", granted_scopes=granted,
                                     needed_scopes=needed, missing_scopes=missing, **common)

    if status == 429:
        return RateLimitError(f"Rate limited ({label}{detail})", retry_after=retry_after, **common)

    if status >= 500:
        # 501/505 are permanent; everything else 5xx is transient unless the server says otherwise.
        retryable = status not in (501, 505)
        if should_retry is not None:
            retryable = should_retry
        return ServerError(f"Server error ({label}{detail})", retryable=retryable, retry_after=retry_after, **common)

    cls = _STATUS_CLASSES.get(status, UnexpectedStatusError)
    names = {BadRequestError: "Bad request", NotFoundError: "Not found", ConflictError: "Conflict"}
    return cls(f"{names.get(cls, 'Unexpected HTTP status')} ({label}{detail})", **common)
