"""Chats and messages: upserts by id, soft and hard deletes, and the privacy split of message text.

Chats are discovered by `updated_at` windows, but a chat moves to a later window whenever it changes, so windows are
only how changes are found: storage is an upsert by chat id and message id, never "replace the window". Rows whose
content did not change are left untouched (re-running any window changes nothing).

Privacy (product/dashboards.md): message text never lands in `raw.chat_messages`. Each message is split into a
*shape* (block types, lengths, tool names, file and artifact metadata) and its text, which goes to
`restricted.chat_message_text` only when text storage is on (COMPLIANCE_STORE_MESSAGE_TEXT).
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from datetime import datetime

import duckdb
import orjson
import pyarrow as pa

from pipeline.compliance_api.hostile import RejectedRecord

CHATS_DDL = """
CREATE SCHEMA IF NOT EXISTS raw;
CREATE SCHEMA IF NOT EXISTS restricted;

CREATE TABLE IF NOT EXISTS raw.chats (
    id                 VARCHAR NOT NULL,
    name               VARCHAR,
    model              VARCHAR,
    project_id         VARCHAR,
    user_id            VARCHAR,
    user_email         VARCHAR,
    href               VARCHAR,
    organization_uuid  VARCHAR,
    organization_id    VARCHAR,
    created_at         TIMESTAMPTZ,
    updated_at         TIMESTAMPTZ,
    deleted_at         TIMESTAMPTZ,      -- soft delete by the user: still readable
    hard_deleted_at    TIMESTAMPTZ,      -- when we found it gone (404): kept, never shown as live
    message_count      INTEGER,
    raw                JSON NOT NULL,    -- the chat object without its messages
    content_hash       UBIGINT NOT NULL,
    fetched_at         TIMESTAMPTZ NOT NULL,
    run_id             VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS raw.chat_messages (
    id               VARCHAR NOT NULL,
    chat_id          VARCHAR NOT NULL,
    position         INTEGER NOT NULL,
    role             VARCHAR,
    created_at       TIMESTAMPTZ,
    block_types      VARCHAR[],
    text_chars       INTEGER,         -- characters of text blocks (the text itself is never here)
    tool_names       VARCHAR[],
    has_error        BOOLEAN,         -- a tool_result with is_error
    files            JSON,
    generated_files  JSON,
    artifacts        JSON,
    content_shape    JSON,            -- the content blocks without their text, input or result content
    content_hash     UBIGINT NOT NULL,
    fetched_at       TIMESTAMPTZ NOT NULL,
    run_id           VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS restricted.chat_message_text (
    message_id   VARCHAR NOT NULL,
    chat_id      VARCHAR NOT NULL,
    block_index  INTEGER NOT NULL,
    block_type   VARCHAR NOT NULL,    -- text | tool_use_input | tool_result
    text         VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS raw.chats_quarantine (
    window_start  TIMESTAMPTZ NOT NULL,
    window_end    TIMESTAMPTZ NOT NULL,
    reason        VARCHAR NOT NULL,
    chat_id       VARCHAR,
    payload       JSON NOT NULL,
    payload_hash  UBIGINT NOT NULL,
    fetched_at    TIMESTAMPTZ NOT NULL,
    run_id        VARCHAR NOT NULL
);
-- The record's bytes as delivered (base64; payload is a readable rendering when they are not valid JSON text).
ALTER TABLE raw.chats_quarantine ADD COLUMN IF NOT EXISTS raw_base64 VARCHAR;
"""

_TEXT_KEYS = {"text": "text", "input": "tool_use_input", "content": "tool_result"}


def _parse_ts(value) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _hash(obj) -> int:
    return int.from_bytes(hashlib.blake2b(orjson.dumps(obj, option=orjson.OPT_SORT_KEYS), digest_size=8).digest(),
                          "little")


def split_message(message: dict) -> tuple[dict, list[tuple[int, str, str]]]:
    """A message's shape (no text) and its text pieces as (block_index, block_type, text)."""
    shape_blocks, texts, types, tools = [], [], [], []
    text_chars, has_error = 0, False
    for index, block in enumerate(message.get("content") or []):
        if not isinstance(block, dict):
            shape_blocks.append({"type": "invalid"})
            continue
        kind = block.get("type")
        types.append(kind)
        shape = {}
        for key, value in block.items():
            if key in _TEXT_KEYS and key != "type":
                piece = value if isinstance(value, str) else "\n".join(
                    item.get("text", "") for item in (value or []) if isinstance(item, dict))
                if piece:
                    texts.append((index, _TEXT_KEYS[key], piece))
                shape[f"{key}_chars"] = len(piece)
                if key == "text":
                    text_chars += len(piece)
            else:
                shape[key] = value
        if kind in ("tool_use", "tool_result") and block.get("name"):
            tools.append(block["name"])
        has_error = has_error or bool(block.get("is_error"))
        shape_blocks.append(shape)
    row = {
        "role": message.get("role"),
        "created_at": _parse_ts(message.get("created_at")),
        "block_types": types,
        "text_chars": text_chars,
        "tool_names": tools,
        "has_error": has_error,
        "files": orjson.dumps(message.get("files")).decode(),
        "generated_files": orjson.dumps(message.get("generated_files")).decode(),
        "artifacts": orjson.dumps(message.get("artifacts")).decode(),
        "content_shape": orjson.dumps(shape_blocks).decode(),
    }
    return row, texts


@dataclass
class FetchedChat:
    """What one window run learned about one chat."""

    listed: dict                       # the list item
    detail: dict | None = None         # the messages response (chat fields + chat_messages), None if 404
    hard_deleted: bool = False


@dataclass
class ChatLoadResult:
    chats_seen: int = 0
    chats_inserted: int = 0
    chats_updated: int = 0
    chats_hard_deleted: int = 0
    messages_inserted: int = 0
    messages_updated: int = 0
    messages_removed: int = 0
    text_rows: int = 0
    quarantined: int = 0
    quarantine_reasons: dict[str, int] = field(default_factory=dict)


# orjson (hashes, stored JSON) serialises at most 255 levels: anything deeper cannot be stored as delivered.
MAX_NESTING = 255
_CHAT_STRINGS = ("name", "model", "project_id", "href", "organization_uuid", "organization_id", "created_at",
                 "updated_at", "deleted_at")
_BLOCK_STRINGS = ("type", "name", "id")


def _too_deep(obj, limit: int = MAX_NESTING) -> bool:
    stack = [(obj, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, (dict, list)):
            if depth > limit:
                return True
            stack.extend((v, depth + 1) for v in (value.values() if isinstance(value, dict) else value))
    return False


def _wrong_string_fields(obj: dict, names) -> bool:
    return any(obj.get(n) is not None and not isinstance(obj.get(n), str) for n in names)


def validate_chat(item) -> str | None:
    """Why a chat (list item, or list item merged with the messages response) cannot be stored (None: it can)."""
    if isinstance(item, RejectedRecord):
        return item.reason
    if not isinstance(item, dict):
        return "not_an_object"
    if not item.get("id"):
        return "missing_id"
    if not isinstance(item["id"], str) or _wrong_string_fields(item, _CHAT_STRINGS):
        return "wrong_type"
    user = item.get("user")
    if user is not None and (not isinstance(user, dict) or _wrong_string_fields(user, ("id", "email_address"))):
        return "wrong_type"
    if _parse_ts(item.get("updated_at")) is None:
        return "bad_updated_at"
    if _too_deep(item):
        return "nesting_too_deep"
    return None


def validate_message(message) -> str | None:
    if isinstance(message, RejectedRecord):
        return f"message_{message.reason}"
    if not isinstance(message, dict):
        return "message_not_an_object"
    if not message.get("id"):
        return "message_missing_id"
    if not isinstance(message["id"], str) or _wrong_string_fields(message, ("role", "created_at")):
        return "message_wrong_type"
    content = message.get("content")
    if content is not None and not isinstance(content, list):
        return "message_wrong_type"
    for block in content or []:
        if isinstance(block, dict):
            if _wrong_string_fields(block, _BLOCK_STRINGS):
                return "message_wrong_type"
            for key in _TEXT_KEYS:
                value = block.get(key) if key != "type" else None
                if value is not None and not isinstance(value, (str, dict)) and not (
                        isinstance(value, list) and all(not isinstance(i, dict) or isinstance(i.get("text", ""), str)
                                                        for i in value)):
                    return "message_wrong_type"
    if _parse_ts(message.get("created_at")) is None:
        return "message_bad_created_at"
    if _too_deep(message):
        return "message_nesting_too_deep"
    return None


def _quarantined(reason: str, chat_id: str | None, item) -> dict:
    """A quarantine row: a readable JSON payload and the exact (or, for parsed items, re-encoded) bytes."""
    if isinstance(item, RejectedRecord):
        raw = item.raw
        payload = orjson.dumps(raw.decode("utf-8", "backslashreplace")).decode()
    else:
        try:
            raw = orjson.dumps(item)
            payload = raw.decode()
        except (TypeError, orjson.JSONEncodeError):  # nested beyond what orjson writes
            raw = repr(item).encode("utf-8", "backslashreplace")
            payload = orjson.dumps(raw.decode()).decode()
    digest = int.from_bytes(hashlib.blake2b(repr([chat_id, raw]).encode(), digest_size=8).digest(), "little")
    return {"reason": reason, "chat_id": chat_id, "payload": payload, "payload_hash": digest,
            "raw_base64": base64.b64encode(raw).decode("ascii")}


def _chat_row(chat: dict, message_count: int | None, now: datetime, run_id: str, hard_deleted: bool) -> dict:
    meta = {k: v for k, v in chat.items() if k not in ("chat_messages", "has_more", "first_id", "last_id")}
    user = meta.get("user") if isinstance(meta.get("user"), dict) else {}
    return {
        "id": meta["id"], "name": meta.get("name"), "model": meta.get("model"), "project_id": meta.get("project_id"),
        "user_id": user.get("id"), "user_email": user.get("email_address"), "href": meta.get("href"),
        "organization_uuid": meta.get("organization_uuid"), "organization_id": meta.get("organization_id"),
        "created_at": _parse_ts(meta.get("created_at")), "updated_at": _parse_ts(meta.get("updated_at")),
        "deleted_at": _parse_ts(meta.get("deleted_at")), "hard_deleted_at": now if hard_deleted else None,
        "message_count": message_count, "raw": orjson.dumps(meta).decode(),
        "content_hash": _hash([meta, hard_deleted]), "fetched_at": now, "run_id": run_id,
    }


def _table(rows: list[dict], schema: pa.Schema) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=schema)


_CHAT_SCHEMA = pa.schema([
    ("id", pa.string()), ("name", pa.string()), ("model", pa.string()), ("project_id", pa.string()),
    ("user_id", pa.string()), ("user_email", pa.string()), ("href", pa.string()),
    ("organization_uuid", pa.string()), ("organization_id", pa.string()),
    ("created_at", pa.timestamp("us", tz="UTC")), ("updated_at", pa.timestamp("us", tz="UTC")),
    ("deleted_at", pa.timestamp("us", tz="UTC")), ("hard_deleted_at", pa.timestamp("us", tz="UTC")),
    ("message_count", pa.int32()), ("raw", pa.string()), ("content_hash", pa.uint64()),
    ("fetched_at", pa.timestamp("us", tz="UTC")), ("run_id", pa.string()),
])
_MESSAGE_SCHEMA = pa.schema([
    ("id", pa.string()), ("chat_id", pa.string()), ("position", pa.int32()), ("role", pa.string()),
    ("created_at", pa.timestamp("us", tz="UTC")), ("block_types", pa.list_(pa.string())),
    ("text_chars", pa.int32()), ("tool_names", pa.list_(pa.string())), ("has_error", pa.bool_()),
    ("files", pa.string()), ("generated_files", pa.string()), ("artifacts", pa.string()),
    ("content_shape", pa.string()), ("content_hash", pa.uint64()), ("fetched_at", pa.timestamp("us", tz="UTC")),
    ("run_id", pa.string()),
])
_TEXT_SCHEMA = pa.schema([("message_id", pa.string()), ("chat_id", pa.string()), ("block_index", pa.int32()),
                          ("block_type", pa.string()), ("text", pa.string())])
_QUARANTINE_SCHEMA = pa.schema([("reason", pa.string()), ("chat_id", pa.string()), ("payload", pa.string()),
                                ("payload_hash", pa.uint64()), ("raw_base64", pa.string())])


def load_chat_window(conn: duckdb.DuckDBPyConnection, fetched: list[FetchedChat], malformed: list, start: datetime,
                     end: datetime, *, run_id: str, fetched_at: datetime, store_text: bool) -> ChatLoadResult:
    """Upsert the chats and messages a window run fetched, in one transaction."""
    conn.execute(CHATS_DDL)
    result = ChatLoadResult(chats_seen=len(fetched))
    chats, messages, texts, quarantine = [], [], [], []
    for item in malformed:
        quarantine.append(_quarantined(validate_chat(item) or "invalid", _id_of(item), item))
    for f in fetched:
        chat_id = f.listed["id"]
        if f.hard_deleted or f.detail is None:
            chats.append(_chat_row(f.listed, None, fetched_at, run_id, hard_deleted=True))
            continue
        chat_messages = f.detail.get("chat_messages") or []
        if not isinstance(chat_messages, list):
            chat_messages = [chat_messages]
        good = 0
        message_ids: set[str] = set()
        for position, message in enumerate(chat_messages):
            reason = validate_message(message)
            if not reason and message["id"] in message_ids:  # repeated with other content: the first one is kept
                reason = "message_conflicting_duplicate"
            if reason:
                quarantine.append(_quarantined(reason, chat_id, message))
                continue
            good += 1
            message_ids.add(message["id"])
            row, pieces = split_message(message)
            messages.append({"id": message["id"], "chat_id": chat_id, "position": position, **row,
                             "content_hash": _hash([row["content_shape"], row["files"], row["generated_files"],
                                                    row["artifacts"], row["role"], message.get("created_at"),
                                                    pieces if store_text else None]),
                             "fetched_at": fetched_at, "run_id": run_id})
            if store_text:
                texts.extend({"message_id": message["id"], "chat_id": chat_id, "block_index": i, "block_type": t,
                              "text": text} for i, t, text in pieces)
        detail = {**f.listed, **{k: v for k, v in f.detail.items() if k != "chat_messages"}}
        reason = validate_chat(detail)
        if reason:  # the messages response's chat fields are hostile: the list item's stand, they go to quarantine
            quarantine.append(_quarantined(f"detail_{reason}", chat_id,
                                           {k: v for k, v in f.detail.items() if k != "chat_messages"}))
            detail = f.listed
        chats.append(_chat_row(detail, good, fetched_at, run_id, hard_deleted=False))

    conn.execute("BEGIN TRANSACTION")
    try:
        conn.register("new_chats", _table(chats, _CHAT_SCHEMA))
        conn.register("new_messages", _table(messages, _MESSAGE_SCHEMA))
        conn.register("new_texts", _table(texts, _TEXT_SCHEMA))
        conn.register("new_quarantine", _table(quarantine, _QUARANTINE_SCHEMA))
        # Chats: replace a row only when its content changed; a 404 keeps the stored row and marks it hard-deleted.
        marked = conn.execute("""
            UPDATE raw.chats c SET hard_deleted_at = n.hard_deleted_at, fetched_at = n.fetched_at, run_id = n.run_id
            FROM new_chats n WHERE c.id = n.id AND n.hard_deleted_at IS NOT NULL AND c.hard_deleted_at IS NULL
        """).fetchone()[0]
        new_gone = conn.execute("""
            SELECT count(*) FROM new_chats n
            WHERE n.hard_deleted_at IS NOT NULL AND NOT EXISTS (SELECT 1 FROM raw.chats c WHERE c.id = n.id)
        """).fetchone()[0]
        result.chats_updated = conn.execute("""
            DELETE FROM raw.chats c USING new_chats n
            WHERE c.id = n.id AND n.hard_deleted_at IS NULL AND c.content_hash <> n.content_hash
        """).fetchone()[0]
        inserted = conn.execute("""
            INSERT INTO raw.chats SELECT * FROM new_chats n
            WHERE NOT EXISTS (SELECT 1 FROM raw.chats c WHERE c.id = n.id)
        """).fetchone()[0]
        result.chats_hard_deleted = marked + new_gone
        result.chats_inserted = inserted - result.chats_updated - new_gone
        # Messages of every chat fetched in full: the API's current set replaces ours, changed rows only.
        conn.execute("""
            CREATE OR REPLACE TEMP TABLE fetched_chat_ids AS
            SELECT id FROM new_chats WHERE hard_deleted_at IS NULL
        """)
        conn.execute("""
            CREATE OR REPLACE TEMP TABLE stale_messages AS
            SELECT m.id FROM raw.chat_messages m JOIN fetched_chat_ids f ON m.chat_id = f.id
            WHERE NOT EXISTS (SELECT 1 FROM new_messages n WHERE n.id = m.id AND n.content_hash = m.content_hash)
        """)
        stale = conn.execute("SELECT count(*) FROM stale_messages").fetchone()[0]
        conn.execute("DELETE FROM raw.chat_messages WHERE id IN (SELECT id FROM stale_messages)")
        conn.execute("DELETE FROM restricted.chat_message_text WHERE message_id IN (SELECT id FROM stale_messages)")
        new_messages = conn.execute("""
            INSERT INTO raw.chat_messages SELECT * FROM new_messages n
            WHERE NOT EXISTS (SELECT 1 FROM raw.chat_messages m WHERE m.id = n.id)
        """).fetchone()[0]
        result.messages_updated = min(stale, new_messages)
        result.messages_removed = stale - result.messages_updated
        result.messages_inserted = new_messages - result.messages_updated
        result.text_rows = conn.execute("""
            INSERT INTO restricted.chat_message_text SELECT * FROM new_texts t
            WHERE NOT EXISTS (SELECT 1 FROM restricted.chat_message_text r WHERE r.message_id = t.message_id)
        """).fetchone()[0]
        if not store_text:
            conn.execute("DELETE FROM restricted.chat_message_text")
        conn.execute("""
            INSERT INTO raw.chats_quarantine
            SELECT $start, $end, q.reason, q.chat_id, q.payload, q.payload_hash, $now, $run_id, q.raw_base64
            FROM new_quarantine q
            WHERE NOT EXISTS (SELECT 1 FROM raw.chats_quarantine r WHERE r.payload_hash = q.payload_hash)
        """, {"start": start, "end": end, "now": fetched_at, "run_id": run_id})
        for name in ("new_chats", "new_messages", "new_texts", "new_quarantine"):
            conn.unregister(name)
        conn.execute("DROP TABLE fetched_chat_ids")
        conn.execute("DROP TABLE stale_messages")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    for q in quarantine:
        result.quarantine_reasons[q["reason"]] = result.quarantine_reasons.get(q["reason"], 0) + 1
    result.quarantined = len(quarantine)
    return result


def _id_of(item) -> str | None:
    return item.get("id") if isinstance(item, dict) and isinstance(item.get("id"), str) else None
