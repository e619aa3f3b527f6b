"""The activity feed route (contract §3): filters, `after_id`/`before_id` cursors, pages of pre-serialized records."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from simulator.protocol import Ctx, bad_request, decode_token, encode_token, invalid_cursor, redeliver
from simulator.routes.directory import DirectoryRoutes

RETIRED_TYPES = ("environment_archived", "environment_created", "environment_deleted", "environment_token_minted",
                 "environment_token_revoked", "environment_updated", "design_project_viewed")


class ActivityRoutes:
    """`GET /activities`. Pages are assembled from each record's JSON bytes, never re-serialized (>100k records/s)."""

    def __init__(self, dataset: Any, directory: DirectoryRoutes, start_us: int, end_us: int | None):
        self.dataset = dataset
        self.directory = directory
        self._start_us = start_us
        self._end_us = end_us
        self._known_types: frozenset[str] | None = None

    def known_types(self) -> frozenset[str]:
        if self._known_types is None:
            types: set[str] = set(RETIRED_TYPES)
            getter = getattr(self.dataset, "known_activity_types", None)
            try:  # types the generator emits beyond the documented list ("new types appear every week")
                from simulator.generator import UNKNOWN_TYPES

                types.update(UNKNOWN_TYPES)
            except ImportError:
                pass
            if callable(getter):
                types.update(getter())
            else:
                tsv = Path(__file__).parents[1] / "data" / "activity_types.tsv"
                if tsv.exists():
                    for line in tsv.read_text().splitlines()[1:]:
                        if line.strip():
                            types.add(line.split("\t", 1)[0])
            types.add("compliance_api_accessed")
            self._known_types = frozenset(types)
        return self._known_types

    def _activity_cursor(self, param: str, raw: str | None) -> tuple[int, str] | None:
        if raw is None:
            return None
        tok = decode_token(raw)
        key = None
        if tok and tok.get("k") == "activity" and isinstance(tok.get("t"), int) and isinstance(tok.get("id"), str):
            key = self.dataset.get_activity_key(tok["id"], tok["t"])
        if key is None:
            raise invalid_cursor(param, "activity", raw)
        return key

    @staticmethod
    def _cursor_of(rec) -> str:
        return encode_token({"k": "activity", "t": rec.created_us, "id": rec.id})

    def activities(self, ctx: Ctx) -> tuple[int, bytes]:
        q = ctx.query
        include = q.list("activity_types")
        exclude = q.list("exclude_activity_types")
        if include and exclude:
            raise bad_request("`activity_types[]` and `exclude_activity_types[]` cannot be used together; "
                              "provide only one of them.")
        known = self.known_types()
        for name, vals in (("activity_types[]", include), ("exclude_activity_types[]", exclude)):
            unknown = [v for v in vals if v not in known]
            if unknown:
                raise bad_request(f"Invalid value for `{name}`: unknown activity type \"{unknown[0]}\".")
        actors = set(q.list("actor_ids")) | set(q.list("user_ids"))
        orgs = self.directory.org_filter(q.list("organization_ids"))
        gte, lt, _ = q.time_range("created_at")
        limit = q.int_param("limit", 100, 1, 5000)
        order = q.choice("order", ("asc", "desc"), "desc")
        after_raw, before_raw = q.get("after_id"), q.get("before_id")
        if after_raw is not None and before_raw is not None:
            raise bad_request("Only one of `after_id` or `before_id` may be set.")
        after = self._activity_cursor("after_id", after_raw)
        before = self._activity_cursor("before_id", before_raw)

        now = ctx.now_us
        lo = self._start_us if gte is None else max(gte, self._start_us)
        hi = now + 1 if lt is None else min(lt, now + 1)
        if self._end_us is not None:
            hi = min(hi, self._end_us)

        inc = frozenset(include) if include else None
        exc = frozenset(exclude) if exclude else None
        act = frozenset(actors) if actors else None

        def pred(r) -> bool:
            if inc is not None and r.type not in inc:
                return False
            if exc is not None and r.type in exc:
                return False
            if act is not None and r.actor_id not in act:
                return False
            if orgs is not None and r.organization_id not in orgs and r.organization_uuid not in orgs:
                return False
            return True

        filtered = inc is not None or exc is not None or act is not None or orgs is not None
        desc = order == "desc"
        cursor = before or after
        # before_id = the page adjacent to the cursor on the other side: walk away from the cursor, then flip the page
        walk_desc = (not desc) if before else desc
        page: list = []
        more = False
        if lo < hi:
            it = self.dataset.iter_activities(lo, hi, after=cursor, descending=walk_desc)
            append = page.append
            if filtered:
                for r in it:
                    if r.indexed_us <= now and pred(r):
                        if len(page) >= limit:
                            more = True
                            break
                        append(r)
            else:
                for r in it:
                    if r.indexed_us <= now:
                        if len(page) >= limit:
                            more = True
                            break
                        append(r)
        if before:
            page.reverse()

        if ctx.repeated and cursor is not None and limit >= 2:
            rec = self._find_record(cursor)
            if rec is not None:
                ctx.repeated_applied = True
                page, full = redeliver(page, rec, limit, at_end=before)
                more = more or full

        if page:
            first = b'"' + self._cursor_of(page[0]).encode() + b'"'
            last = b'"' + self._cursor_of(page[-1]).encode() + b'"'
        else:
            first = last = b"null"
        body = b"".join((b'{"data":[', b",".join([r.json for r in page]), b'],"has_more":',
                         b"true" if more else b"false", b',"first_id":', first, b',"last_id":', last, b"}"))
        return 200, body

    def _find_record(self, key: tuple[int, str]):
        t, rid = key
        for r in self.dataset.iter_activities(t, t + 1):
            if r.id == rid:
                return r
        return None
