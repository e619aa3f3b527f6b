"""Chat routes (contract §4-§5): the chat listing (org-wide or per user), a chat's messages, hard delete."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from datetime import datetime, timezone
from typing import Any

from simulator.clock import dt_to_us, parse_rfc3339_us
from simulator.protocol import (Ctx, bad_request, decode_token, dump, encode_token, invalid_cursor, not_found,
                                public, redeliver)
from simulator.routes.directory import DirectoryRoutes

PER_USER_UPDATED_AT_REJECTED_FROM = dt_to_us(datetime(2026, 9, 23, tzinfo=timezone.utc))


class ChatRoutes:
    """`GET /apps/chats`, `GET /apps/chats/{id}/messages`, `DELETE /apps/chats/{id}`."""

    def __init__(self, dataset: Any, directory: DirectoryRoutes):
        self.dataset = dataset
        self.directory = directory

    def _chat_rows(self, now_us: int) -> list[tuple[int, int, str, dict]]:
        """(created_us, updated_us, id, chat) for every chat visible at now (data side decides visibility)."""
        view = self.dataset.chats_view(now_us)
        rows = []
        for item in view:
            if isinstance(item, tuple):  # (chat, created_us, updated_us) variant
                chat, c_us, u_us = item[0], item[1], item[2]
            else:
                chat = item
                c_us = chat.get("_created_us")
                u_us = chat.get("_updated_us")
                if c_us is None:
                    c_us = parse_rfc3339_us(chat["created_at"])
                if u_us is None:
                    u_us = parse_rfc3339_us(chat["updated_at"])
            rows.append((c_us, u_us, chat["id"], chat))
        return rows

    def chats(self, ctx: Ctx) -> tuple[int, bytes]:
        q = ctx.query
        user_ids = q.list("user_ids")
        if len(user_ids) > 10:
            raise bad_request(f"`user_ids[]` accepts at most 10 values. Got {len(user_ids)}.")
        orgs = self.directory.org_filter(q.list("organization_ids"))
        project_ids = q.list("project_ids")
        order_by = q.choice("order_by", ("created_at", "updated_at"), "created_at")
        c_gte, c_lt, c_given = q.time_range("created_at")
        u_gte, u_lt, u_given = q.time_range("updated_at")
        after_raw, before_raw = q.get("after_id"), q.get("before_id")
        per_user = bool(user_ids)
        if per_user:
            if order_by == "updated_at":
                raise bad_request("`order_by=updated_at` cannot be combined with `user_ids[]`: per-user queries are "
                                  "always sorted by `created_at`.")
            if u_given and ctx.now_us >= PER_USER_UPDATED_AT_REJECTED_FROM:
                raise bad_request("`updated_at` filters cannot be combined with `user_ids[]` (deprecated, rejected "
                                  "since 2026-09-22); use an org-wide query with `order_by=updated_at`.")
        else:
            if project_ids:
                raise bad_request("`project_ids[]` requires `user_ids[]`; it is not available for org-wide queries.")
            if before_raw is not None:
                raise bad_request("`before_id` is only supported for per-user queries (with `user_ids[]`).")
            if order_by == "created_at" and u_given:
                raise bad_request("Org-wide queries sorted by `created_at` accept only `created_at` filters; use "
                                  "`order_by=updated_at` to filter on `updated_at`.")
            if order_by == "updated_at" and c_given:
                raise bad_request("Org-wide queries sorted by `updated_at` accept only `updated_at` filters; use "
                                  "`order_by=created_at` to filter on `created_at`.")
        limit = q.int_param("limit", 100, 1, 1000)
        if after_raw is not None and before_raw is not None:
            raise bad_request("Only one of `after_id` or `before_id` may be set.")
        cursor = None
        param = "after_id" if after_raw is not None else "before_id"
        raw = after_raw if after_raw is not None else before_raw
        if raw is not None:
            tok = decode_token(raw)
            if not tok or tok.get("o") != "chat" or not isinstance(tok.get("t"), int) \
                    or not isinstance(tok.get("id"), str):
                raise invalid_cursor(param, "chat", raw)
            if tok.get("k") != order_by:
                raise bad_request(f"Invalid `{param}`: the cursor was issued for `order_by={tok.get('k')}` and cannot "
                                  f"be used with `order_by={order_by}`.")
            cursor = (tok["t"], tok["id"])

        by_updated = order_by == "updated_at"
        users = set(user_ids) if user_ids else None
        projects = set(project_ids) if project_ids else None
        rows = []
        for c_us, u_us, cid, chat in self._chat_rows(ctx.now_us):
            if users is not None and ((chat.get("user") or {}).get("id") not in users):
                continue
            if projects is not None and chat.get("project_id") not in projects:
                continue
            if orgs is not None and (chat.get("organization_uuid") not in orgs
                                     and chat.get("organization_id") not in orgs):
                continue
            if (c_gte is not None and c_us < c_gte) or (c_lt is not None and c_us >= c_lt):
                continue
            if (u_gte is not None and u_us < u_gte) or (u_lt is not None and u_us >= u_lt):
                continue
            rows.append(((u_us if by_updated else c_us, cid), chat))
        rows.sort(key=lambda x: x[0])
        keys = [k for k, _ in rows]
        if before_raw is not None and cursor is not None:
            end = bisect_left(keys, cursor)
            start = max(0, end - limit)
            chunk = rows[start:end]
            more = start > 0
            rep_at_end = True
        else:
            start = bisect_right(keys, cursor) if cursor is not None else 0
            chunk = rows[start: start + limit]
            more = start + limit < len(rows)
            rep_at_end = False
        if ctx.repeated and cursor is not None and limit >= 2:
            # at-least-once: re-deliver the record at the cursor (if it is still there)
            i = bisect_left(keys, cursor)
            if i < len(keys) and keys[i] == cursor:
                ctx.repeated_applied = True
                chunk, full = redeliver(chunk, rows[i], limit, at_end=rep_at_end)
                more = more or full

        def cur(k):
            return encode_token({"o": "chat", "k": order_by, "t": k[0], "id": k[1]})

        return 200, dump({"data": [public(c) for _, c in chunk], "has_more": more,
                           "first_id": cur(chunk[0][0]) if chunk else None,
                           "last_id": cur(chunk[-1][0]) if chunk else None})

    def messages(self, ctx: Ctx) -> tuple[int, bytes]:
        chat_id = ctx.path_args[0]
        q = ctx.query
        limit = q.int_param("limit", None, 1, 1000)
        order = q.choice("order", ("asc", "desc"), "asc")
        c_gte, c_lt, _ = q.time_range("created_at")
        q.time_range("updated_at")  # validated; messages carry no updated_at, so it filters nothing
        tr_cap = q.int_param("tool_result_max_chars", 10000, -1, 2**31)
        tu_cap = q.int_param("tool_use_input_max_chars", 10000, -1, 2**31)
        after_raw, before_raw = q.get("after_id"), q.get("before_id")
        if after_raw is not None and before_raw is not None:
            raise bad_request("Only one of `after_id` or `before_id` may be set.")
        # truncation (incl. `-1` = server max) is the data side's, so ground truth and API agree
        res = self.dataset.chat_messages_view(chat_id, ctx.now_us, tool_use_input_max_chars=tu_cap,
                                              tool_result_max_chars=tr_cap)
        if res is None:
            raise not_found(f"Chat {chat_id} not found.")
        chat, messages = res
        cursor = None
        param = "after_id" if after_raw is not None else "before_id"
        raw = after_raw if after_raw is not None else before_raw
        if raw is not None:
            tok = decode_token(raw)
            if (not tok or tok.get("k") != "message" or tok.get("chat") != chat_id or not isinstance(tok.get("t"), int)
                    or not isinstance(tok.get("id"), str)):
                raise invalid_cursor(param, "message", raw)
            cursor = (tok["t"], tok["id"])

        rows = []
        for m in messages:
            c_us = parse_rfc3339_us(m["created_at"])
            if (c_gte is not None and c_us < c_gte) or (c_lt is not None and c_us >= c_lt):
                continue
            rows.append(((c_us, m["id"]), m))
        rows.sort(key=lambda x: x[0])
        desc = order == "desc"
        if desc:
            rows.reverse()
        # position in result order: for desc compare with negated keys by walking
        keys = [k for k, _ in rows]

        def pos_after(c):  # index of first row strictly after c in result order
            if desc:
                return next((i for i, k in enumerate(keys) if k < c), len(keys))
            return bisect_right(keys, c)

        def pos_at_or_after(c):
            if desc:
                return next((i for i, k in enumerate(keys) if k <= c), len(keys))
            return bisect_left(keys, c)

        n = len(rows)
        lim = limit if limit is not None else n
        if before_raw is not None and cursor is not None:
            end = pos_at_or_after(cursor)
            start = max(0, end - lim)
            chunk = rows[start:end]
            more = start > 0
            rep_at_end = True
        else:
            start = pos_after(cursor) if cursor is not None else 0
            chunk = rows[start: start + lim]
            more = start + lim < n
            rep_at_end = False
        if ctx.repeated and cursor is not None and lim >= 2:
            i = pos_at_or_after(cursor)
            if i < n and keys[i] == cursor:
                ctx.repeated_applied = True
                chunk, full = redeliver(chunk, rows[i], lim, at_end=rep_at_end)
                more = more or full

        def cur(k):
            return encode_token({"k": "message", "chat": chat_id, "t": k[0], "id": k[1]})

        out = public(chat)
        out["chat_messages"] = [m for _, m in chunk]
        out["has_more"] = more
        out["first_id"] = cur(chunk[0][0]) if chunk else None
        out["last_id"] = cur(chunk[-1][0]) if chunk else None
        return 200, dump(out)

    def delete_chat(self, ctx: Ctx) -> tuple[int, bytes]:
        chat_id = ctx.path_args[0]
        if not self.dataset.hard_delete_chat(chat_id, ctx.now_us):
            raise not_found(f"Chat {chat_id} not found.")
        return 200, dump({"id": chat_id, "type": "claude_chat_deleted"})
