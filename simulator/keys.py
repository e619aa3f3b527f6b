"""The simulator's API keys: scopes, the default key set, and the key store loaded from the configuration."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

SCOPE_ACTIVITIES = "read:compliance_activities"
SCOPE_USER_DATA = "read:compliance_user_data"
SCOPE_ORG_DATA = "read:compliance_org_data"
SCOPE_DELETE = "delete:compliance_user_data"

COMPLIANCE_KEY_PREFIX = "sk-ant-api01-"
ADMIN_KEY_PREFIX = "sk-ant-admin01-"

DEFAULT_KEYS: dict[str, list[str]] = {
    "sk-ant-api01-sim-full": [SCOPE_ACTIVITIES, SCOPE_USER_DATA, SCOPE_ORG_DATA, SCOPE_DELETE],
    "sk-ant-api01-sim-activities": [SCOPE_ACTIVITIES],
    "sk-ant-api01-sim-userdata": [SCOPE_USER_DATA],
    "sk-ant-api01-sim-orgdata": [SCOPE_ORG_DATA],
    "sk-ant-admin01-sim-admin": [SCOPE_ACTIVITIES],
}

_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def b58(data: bytes, length: int) -> str:
    n = int.from_bytes(data, "big")
    out = []
    for _ in range(length):
        n, r = divmod(n, 58)
        out.append(_B58[r])
    return "".join(out)


def key_id_for(key: str) -> str:
    """Stable `apikey_…` id for a key string (what `actor.api_key_id` shows); never reveals the key."""
    import hashlib

    return "apikey_01" + b58(hashlib.sha256(key.encode()).digest(), 24)


@dataclasses.dataclass(frozen=True, slots=True)
class ApiKey:
    key: str
    id: str
    scopes: tuple[str, ...]
    name: str = ""

    @property
    def is_admin(self) -> bool:
        return self.key.startswith(ADMIN_KEY_PREFIX)

    def masked(self) -> str:
        # the key type prefix only: no secret characters ever leave the process
        return (ADMIN_KEY_PREFIX if self.is_admin else COMPLIANCE_KEY_PREFIX) + "…"


class KeyStore:
    def __init__(self, keys: Iterable[ApiKey]):
        self._by_key = {k.key: k for k in keys}

    @classmethod
    def default(cls) -> "KeyStore":
        return cls(ApiKey(k, key_id_for(k), tuple(s), k.rsplit("-", 1)[-1]) for k, s in DEFAULT_KEYS.items())

    @classmethod
    def from_obj(cls, obj: Any) -> "KeyStore":
        """Accepts {"keys": [...]}, a list of {"key", "scopes", "id"?, "name"?}, or a mapping key -> scopes | {...}."""
        if isinstance(obj, Mapping) and "keys" in obj:
            obj = obj["keys"]
        items: list[ApiKey] = []
        if isinstance(obj, Mapping):
            for k, v in obj.items():
                spec = v if isinstance(v, Mapping) else {"scopes": v}
                items.append(ApiKey(str(k), str(spec.get("id") or key_id_for(str(k))), tuple(spec.get("scopes") or ()),
                                    str(spec.get("name") or "")))
        elif isinstance(obj, list):
            for spec in obj:
                k = str(spec["key"])
                items.append(ApiKey(k, str(spec.get("id") or key_id_for(k)), tuple(spec.get("scopes") or ()),
                                    str(spec.get("name") or "")))
        else:
            raise ValueError("keys file: expected a list or an object")
        return cls(items)

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> "KeyStore":
        return cls.from_obj(json.loads(Path(path).read_text()))

    def lookup(self, key: str | None) -> ApiKey | None:
        # Only Compliance Access Keys and Admin API keys are ever accepted (sk-ant-api03-… → 401).
        if not key or not (key.startswith(COMPLIANCE_KEY_PREFIX) or key.startswith(ADMIN_KEY_PREFIX)):
            return None
        return self._by_key.get(key)

    def describe(self) -> list[dict]:
        return [{"id": k.id, "name": k.name, "key_prefix": k.masked(), "admin": k.is_admin, "scopes": list(k.scopes)}
                for k in self._by_key.values()]

    def __iter__(self):
        return iter(self._by_key.values())
