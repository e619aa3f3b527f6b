"""The API key: held masked (repr, str, format, pickling), read from the environment, added per request.

The key is held in `APIKey` (masked repr/str, not picklable) and added to each request by an httpx auth hook
(`KeyAuth`), so it is neither a client default header nor a local of the request frames; it is never put into log
lines or exception text. It is the one setting read straight from the environment: it is no resource field, run
config or settings value that could be shown.
"""

from __future__ import annotations

import hmac
import os
import re

import httpx

from pipeline.compliance_api.errors import API_KEY_ENV, ConfigurationError

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



def key_from_env(env_name: str = API_KEY_ENV) -> APIKey:
    """The key held in variable `env_name`; a ConfigurationError naming it when unset or empty."""
    value = os.environ.get(env_name) or None
    if value is None:
        raise ConfigurationError(f"No Compliance API key: set {env_name} (or pass api_key=).")
    return APIKey(value)


class KeyAuth(httpx.Auth):
    """Adds `x-api-key` per request, so the key is neither a client default header nor a local of our frames."""

    def __init__(self, key: APIKey) -> None:
        self._key = key

    def auth_flow(self, request: httpx.Request):
        request.headers["x-api-key"] = self._key.reveal()
        yield request

    def __repr__(self) -> str:
        return f"<KeyAuth {self._key!r}>"

