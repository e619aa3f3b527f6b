"""Directory routes: organizations and their users, paged with opaque `page` tokens (contract §6)."""

from __future__ import annotations

from typing import Any

from simulator.protocol import Ctx, bad_request, decode_token, dump, encode_token, not_found, public


class DirectoryRoutes:
    """`GET /organizations`, `GET /organizations/{uuid}/users`; also resolves org identifiers for the other routes."""

    def __init__(self, dataset: Any):
        self.dataset = dataset

    def org_lookup(self) -> dict[str, tuple[str | None, str | None]]:
        """Any accepted org identifier (org_… or uuid) -> (org_id, uuid)."""
        out: dict[str, tuple[str | None, str | None]] = {}
        for org in self.dataset.organizations():
            uuid = org.get("uuid")
            oid = org.get("id") or org.get("organization_id")
            if oid is None:
                world = getattr(self.dataset, "world", None)
                for o in (getattr(world, "orgs", None) or []):
                    if getattr(o, "uuid", None) == uuid:
                        oid = getattr(o, "id", None)
            for ident in (uuid, oid):
                if ident:
                    out[ident] = (oid, uuid)
        return out

    def org_filter(self, values: list[str]) -> set[str] | None:
        if not values:
            return None
        lookup = self.org_lookup()
        accepted: set[str] = set()
        for v in values:
            accepted.add(v)
            oid, uuid = lookup.get(v, (None, None))
            if oid:
                accepted.add(oid)
            if uuid:
                accepted.add(uuid)
        return accepted

    def _page_offset(self, raw: str | None, kind: str, scope_id: str | None = None) -> int:
        if raw is None:
            return 0
        tok = decode_token(raw[5:]) if raw.startswith("page_") else None
        if (not tok or tok.get("k") != kind or not isinstance(tok.get("o"), int) or tok["o"] < 0
                or tok.get("s") != scope_id):
            raise bad_request(f"Invalid `page` token \"{raw}\".")
        return tok["o"]

    @staticmethod
    def _page_token(kind: str, offset: int, scope_id: str | None = None) -> str:
        return "page_" + encode_token({"k": kind, "o": offset, "s": scope_id})

    def _paged(self, items: list, offset: int, limit: int, kind: str, scope_id: str | None = None) -> bytes:
        chunk = items[offset: offset + limit]
        more = offset + limit < len(items)
        return dump({"data": [public(x) for x in chunk], "has_more": more,
                      "next_page": self._page_token(kind, offset + limit, scope_id) if more else None})

    def organizations(self, ctx: Ctx) -> tuple[int, bytes]:
        q = ctx.query
        limit = q.int_param("limit", 1000, 1, 1000)
        offset = self._page_offset(q.get("page"), "organizations")
        orgs = [{"uuid": o["uuid"], "name": o["name"], "created_at": o["created_at"]}
                for o in self.dataset.organizations()]
        return 200, self._paged(orgs, offset, limit, "organizations")

    def users(self, ctx: Ctx) -> tuple[int, bytes]:
        org_uuid = ctx.path_args[0]
        users = self.dataset.users(org_uuid)
        if users is None:
            raise not_found(f"The \"{org_uuid}\" organization does not exist or the requester is not authorized to "
                            f"access it.")
        q = ctx.query
        limit = q.int_param("limit", 500, 1, 1000)
        offset = self._page_offset(q.get("page"), "users", org_uuid)
        return 200, self._paged(users, offset, limit, "users", org_uuid)
