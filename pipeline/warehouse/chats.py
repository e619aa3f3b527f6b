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
from pipeline.sql_files import queries_beside

SQL = queries_beside(__file__)
CHATS_DDL = SQL["ddl"]

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


@dataclass
class ChatWindowRows:
    """The rows a window run stores, shaped (no database yet)."""

    chats: list[dict] = field(default_factory=list)
    messages: list[dict] = field(default_factory=list)
    texts: list[dict] = field(default_factory=list)
    quarantine: list[dict] = field(default_factory=list)


def shape_messages(chat_id: str, chat_messages: list, *, run_id: str, fetched_at: datetime,
                   store_text: bool) -> ChatWindowRows:
    """One chat's message rows (shape only), text rows (when stored) and quarantined messages."""
    rows = ChatWindowRows()
    message_ids: set[str] = set()
    for position, message in enumerate(chat_messages):
        reason = validate_message(message)
        if not reason and message["id"] in message_ids:  # repeated with other content: the first one is kept
            reason = "message_conflicting_duplicate"
        if reason:
            rows.quarantine.append(_quarantined(reason, chat_id, message))
            continue
        message_ids.add(message["id"])
        row, pieces = split_message(message)
        rows.messages.append({"id": message["id"], "chat_id": chat_id, "position": position, **row,
                              "content_hash": _hash([row["content_shape"], row["files"], row["generated_files"],
                                                     row["artifacts"], row["role"], message.get("created_at"),
                                                     pieces if store_text else None]),
                              "fetched_at": fetched_at, "run_id": run_id})
        if store_text:
            rows.texts.extend({"message_id": message["id"], "chat_id": chat_id, "block_index": i, "block_type": t,
                               "text": text} for i, t, text in pieces)
    return rows


def shape_chat_window(fetched: list[FetchedChat], malformed: list, *, run_id: str, fetched_at: datetime,
                      store_text: bool) -> ChatWindowRows:
    """Every row a window run stores: chats, their messages and texts, and the quarantined records with reasons."""
    rows = ChatWindowRows()
    for item in malformed:
        rows.quarantine.append(_quarantined(validate_chat(item) or "invalid", _id_of(item), item))
    for f in fetched:
        if f.hard_deleted or f.detail is None:
            rows.chats.append(_chat_row(f.listed, None, fetched_at, run_id, hard_deleted=True))
            continue
        chat_id = f.listed["id"]
        chat_messages = f.detail.get("chat_messages") or []
        if not isinstance(chat_messages, list):
            chat_messages = [chat_messages]
        shaped = shape_messages(chat_id, chat_messages, run_id=run_id, fetched_at=fetched_at, store_text=store_text)
        rows.messages += shaped.messages
        rows.texts += shaped.texts
        rows.quarantine += shaped.quarantine
        detail_fields = {k: v for k, v in f.detail.items() if k != "chat_messages"}
        detail = {**f.listed, **detail_fields}
        reason = validate_chat(detail)
        if reason:  # the messages response's chat fields are hostile: the list item's stand, they go to quarantine
            rows.quarantine.append(_quarantined(f"detail_{reason}", chat_id, detail_fields))
            detail = f.listed
        rows.chats.append(_chat_row(detail, len(shaped.messages), fetched_at, run_id, hard_deleted=False))
    return rows


def chat_load_result(counts: dict[str, int], quarantine: list[dict], chats_seen: int) -> ChatLoadResult:
    """The run's figures from the row counts of the apply's statements."""
    updated = min(counts["stale_messages"], counts["inserted_messages"])
    reasons: dict[str, int] = {}
    for q in quarantine:
        reasons[q["reason"]] = reasons.get(q["reason"], 0) + 1
    return ChatLoadResult(
        chats_seen=chats_seen, chats_updated=counts["changed_chats"],
        chats_inserted=counts["inserted_chats"] - counts["changed_chats"] - counts["new_gone_chats"],
        chats_hard_deleted=counts["marked_hard_deleted"] + counts["new_gone_chats"],
        messages_updated=updated, messages_removed=counts["stale_messages"] - updated,
        messages_inserted=counts["inserted_messages"] - updated, text_rows=counts["inserted_texts"],
        quarantined=len(quarantine), quarantine_reasons=reasons)


def load_chat_window(conn: duckdb.DuckDBPyConnection, fetched: list[FetchedChat], malformed: list, start: datetime,
                     end: datetime, *, run_id: str, fetched_at: datetime, store_text: bool) -> ChatLoadResult:
    """Upsert the chats and messages a window run fetched, in one transaction."""
    conn.execute(CHATS_DDL)
    rows = shape_chat_window(fetched, malformed, run_id=run_id, fetched_at=fetched_at, store_text=store_text)
    counts = apply_chat_rows(conn, rows, {"start": start, "end": end, "now": fetched_at, "run_id": run_id},
                             store_text=store_text)
    return chat_load_result(counts, rows.quarantine, len(fetched))


def apply_chat_rows(conn: duckdb.DuckDBPyConnection, rows: ChatWindowRows, window: dict, *,
                    store_text: bool) -> dict[str, int]:
    """Store shaped rows in one transaction (statements in chats.sql): chats replaced only when their content
    changed, a 404 marks the stored row hard-deleted, the messages of every chat fetched in full replaced by the API's
    current set (changed rows only). Returns each statement's row count."""
    def count(name: str, params: dict | None = None) -> int:
        return conn.execute(SQL[name], params).fetchone()[0]

    staged = {"new_chats": (rows.chats, _CHAT_SCHEMA), "new_messages": (rows.messages, _MESSAGE_SCHEMA),
              "new_texts": (rows.texts, _TEXT_SCHEMA), "new_quarantine": (rows.quarantine, _QUARANTINE_SCHEMA)}
    conn.execute("BEGIN TRANSACTION")
    try:
        for name, (table_rows, schema) in staged.items():
            conn.register(name, _table(table_rows, schema))
        counts = {name: count(name) for name in ("marked_hard_deleted", "new_gone_chats", "changed_chats",
                                                 "inserted_chats")}
        conn.execute(SQL["stage_stale_messages"])
        counts["stale_messages"] = count("stale_messages")
        conn.execute(SQL["delete_stale_messages"])
        counts["inserted_messages"] = count("inserted_messages")
        counts["inserted_texts"] = count("inserted_texts")
        if not store_text:
            conn.execute(SQL["delete_all_texts"])
        conn.execute(SQL["insert_quarantine"], window)
        for name in staged:
            conn.unregister(name)
        conn.execute(SQL["drop_staging"])
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return counts


def _id_of(item) -> str | None:
    return item.get("id") if isinstance(item, dict) and isinstance(item.get("id"), str) else None
