"""Hostile records served among valid ones (opt-in): `POST /_sim/hostile {"enabled": true}` or SIMULATOR_HOSTILE=1.

Each first page (no cursor) of the activity feed, of the org-wide chat listing and of a chat's messages gets one
record of each kind below inserted at the front of its record array, with timestamps taken from the page's own first
record (so they fall inside the requested window) and ids derived from them: the same request gets the same bytes,
so reruns see the same hostile records. Cursors and `has_more` are untouched (they point at real records).

Kinds: a lone surrogate escape, raw invalid UTF-8, nesting deeper than 1,024, a number where an id string belongs,
an object where a name/email string belongs, a missing id; activities also get a conflicting duplicate (the page's
first id again with other content) and one record per field of a wrong JSON type (WRONG_TYPED_ACTIVITIES).

`{"altered": true}` (independent of `enabled`) serves the first record of each such activity page with other content
(an extra field) under its own id: a later run then gets a stored id again with another content.
"""

from __future__ import annotations

import os
import re
import threading
import zlib

KINDS = ("lone_surrogate", "invalid_utf8", "deep_nesting", "number_id", "object_as_name", "missing_id")
DEPTH = 1100
# Activities only: the fields after the id of one record per wrong-typed field (`@` = the page's timestamp): the
# fields the pipeline keys on, then two context fields (a number as IP address, an array as user agent).
WRONG_TYPED_ACTIVITIES = {
    "created_at_number": b'"created_at":1762160000,"type":"user_signed_in","actor":{"type":"user_actor"}',
    "type_object": b'"created_at":"@","type":{"name":"user_signed_in"},"actor":{"type":"user_actor"}',
    "organization_id_number": b'"created_at":"@","type":"user_signed_in","organization_id":12345,'
                              b'"actor":{"type":"user_actor"}',
    "actor_string": b'"created_at":"@","type":"user_signed_in","actor":"user_01"',
    "actor_array": b'"created_at":"@","type":"user_signed_in","actor":[{"type":"user_actor"}]',
    "actor_type_number": b'"created_at":"@","type":"user_signed_in","actor":{"type":7,"user_id":"user_01"}',
    "ip_address_number": b'"created_at":"@","type":"user_signed_in","actor":{"type":"user_actor","user_id":"user_01",'
                         b'"ip_address":3232235777,"user_agent":"Mozilla/5.0"}',
    "user_agent_array": b'"created_at":"@","type":"user_signed_in","actor":{"type":"user_actor","user_id":"user_01",'
                        b'"ip_address":"81.2.69.160","user_agent":["Mozilla/5.0"]}',
}
_FIELD = {name: re.compile(rb'"' + name.encode() + rb'":"([^"]*)"') for name in ("id", "created_at", "updated_at")}


def _hostile(kind: str, rid: str, stamp_field: bytes, stamp: bytes, extra: bytes) -> bytes:
    head = b'{"id":"' + rid.encode() + b'",' + stamp_field + b':"' + stamp + b'",' + extra
    if kind == "lone_surrogate":
        return head + b'"name":"hidden \\ud800 text"}'
    if kind == "invalid_utf8":
        return head + b'"name":"bad \xff\xfe bytes"}'
    if kind == "deep_nesting":
        return head + b'"name":"deep","payload":' + b"[" * DEPTH + b"]" * DEPTH + b"}"
    if kind == "number_id":
        return b'{"id":' + str(zlib.crc32(rid.encode())).encode() + b"," + stamp_field + b':"' + stamp + b'",' + extra[:-1] + b"}"
    if kind == "object_as_name":
        return head + b'"name":{"first":"x"},"actor":{"type":"user_actor","email_address":{"a":1}},"role":{"a":1}}'
    if kind == "missing_id":
        return b"{" + stamp_field + b':"' + stamp + b'",' + extra + b'"name":"no id"}'
    raise ValueError(kind)


class HostileRecords:
    def __init__(self, enabled: bool | None = None):
        self.enabled = (os.environ.get("SIMULATOR_HOSTILE", "") not in ("", "0", "false")) if enabled is None \
            else enabled
        self.altered = False
        self.served: dict[str, int] = {}
        self._lock = threading.Lock()

    def snapshot(self) -> dict:
        return {"enabled": self.enabled, "altered": self.altered, "kinds": list(KINDS), "served": dict(self.served)}

    def apply(self, endpoint: str, has_cursor: bool, body: bytes) -> bytes:
        """The response body with the hostile records inserted (unchanged when off, paged on or empty)."""
        if not (self.enabled or self.altered) or has_cursor:
            return body
        key = {"activities": b'"data":[', "chats": b'"data":[', "chat_messages": b'"chat_messages":['}.get(endpoint)
        at = body.find(key) if key else -1
        if at < 0 or body[at + len(key):at + len(key) + 1] != b"{":
            return body
        at += len(key)
        first = body[at:body.find(b"}", at) + 1]
        stamp_name = "updated_at" if endpoint == "chats" else "created_at"
        found, first_id = _FIELD[stamp_name].search(body, at), _FIELD["id"].search(first)
        if not found or not first_id:
            return body
        if endpoint == "activities" and self.altered:
            body = body[:at] + b'{"altered_copy":true,' + body[at + 1:]
        if not self.enabled:
            return body
        stamp = found.group(1)
        extra = b'"type":"user_signed_in",' if endpoint == "activities" else (
            b'"role":"user","content":[],' if endpoint == "chat_messages" else b'"created_at":"' + stamp + b'",')
        base = f"hostile-{endpoint}-{first_id.group(1).decode()}"
        items = [_hostile(k, f"{base}-{k}", b'"' + stamp_name.encode() + b'"', stamp, extra) for k in KINDS]
        if endpoint == "activities":  # the page's first id again, with other content
            items.append(b'{"id":"' + first_id.group(1) + b'","created_at":"' + stamp
                         + b'","type":"user_signed_in","conflicting_copy":true}')
            items += [b'{"id":"' + f"{base}-{kind}".encode() + b'",' + fields.replace(b"@", stamp) + b"}"
                      for kind, fields in WRONG_TYPED_ACTIVITIES.items()]
        with self._lock:
            self.served[endpoint] = self.served.get(endpoint, 0) + len(items)
        return body[:at] + b",".join(items) + b"," + body[at:]
