"""Dataset facade: the contract between the data side (generator, world, chats) and the HTTP server.

Public API (all times are epoch microseconds, UTC):

    Dataset(config: SimConfig)
    .config: SimConfig              .world: World (.parent_org, .orgs, .users_by_org)   .catalog: Catalog
    .iter_activities(gte_us, lt_us, *, after: tuple[int, str] | None = None, descending: bool = False)
        -> Iterator[ActivityRecord]
        Every record with created_us in [gte_us, lt_us) (clamped to the data range) regardless of visibility,
        sorted by (created_us, id) ascending, or descending when `descending`; `after` = a (created_us, id) key:
        only records strictly after it in the iteration direction. Positions by bisecting hour buckets.
        In live mode (config.end None) `lt_us` is clamped to now + 1 hour (nothing later could be visible).
    .get_activity_key(activity_id, created_us_hint=None) -> (created_us, id) | None    existence check / cursor key
    .record_api_call(*, now_us, key_id, ip, user_agent, method, url, status_code, request_id) -> None
        Appends a dynamic `compliance_api_accessed` (actor api_actor, organization null) created at now_us,
        indexed 1..max_lag_seconds later. No-op unless config.emit_access_events, or when now_us is outside
        [start, end) (a historical dataset stays closed). Thread-safe; merged into iteration in order.
    .known_activity_types() -> frozenset[str]      the 514 documented types
    .organizations() -> list[dict]                 {uuid, name, created_at, id} of the linked orgs, by created_at
    .users(org_uuid) -> list[dict] | None          API User objects sorted by join date; None = unknown org
    .chats_view(now_us) -> list[(chat, created_us, updated_us)]   sorted by (created_us, id); [] without chats.py
    .chat_messages_view(chat_id, now_us, **caps) -> (chat, messages) | None
    .hard_delete_chat(chat_id, now_us) -> bool
    .chat_store -> simulator.chats.ChatStore | None
    .incidents(gte_us, lt_us) -> list[dict]        planted incidents / near misses whose first event is in range
    .ground_truth(gte_us, lt_us, now_us=None) -> dict   manifest (DESIGN.md); with now_us: only records indexed
        by then (what the API can return at now) and incidents whose last event is indexed by then
    .manifest_to_file(path, gte_us=None, lt_us=None, now_us=None) -> dict
    .stats() -> dict

ActivityRecord (simulator.generator) is a NamedTuple: created_us, id, indexed_us, type, organization_id,
organization_uuid, actor_id, json (the exact item bytes; malformed on purpose for a malformed_rate share).
"""

from __future__ import annotations

import bisect
import hashlib
import heapq
import threading
from collections import Counter
from pathlib import Path
from typing import Iterator

import orjson

from simulator.catalog import B58_TABLE, Catalog
from simulator.config import DAY_US, HOUR_US, US, SimConfig, iso_us
from simulator.generator import ActivityRecord, Generator, hour_code, hour_of_id
from simulator.world import World

__all__ = ["ActivityRecord", "Dataset"]

_INF = float("inf")
_new_record = tuple.__new__


def _rec_key(r) -> tuple:
    return (r[0], r[1])


class Dataset:
    def __init__(self, config: SimConfig):
        self.config = config
        self.catalog = Catalog()
        self.world = World(config)
        self._chat_lock = threading.Lock()
        self._chats = None
        self.generator = Generator(config, self.catalog, self.world, chat_source=self.chat_store)
        self._dyn: dict[int, list[ActivityRecord]] = {}
        self._dyn_lock = threading.Lock()
        self._dyn_count = 0

    # ---- chats ----------------------------------------------------------------------------------------------
    @property
    def chat_store(self):
        if self._chats is None:
            with self._chat_lock:
                if self._chats is None:
                    try:
                        from simulator import chats as _chats_mod
                        self._chats = _chats_mod.ChatStore(self.config, self.world)
                    except ImportError:
                        self._chats = False
        return self._chats or None

    def chats_view(self, now_us: int) -> list[tuple[dict, int, int]]:
        store = self.chat_store
        return store.chat_rows(now_us) if store is not None else []

    def chat_messages_view(self, chat_id: str, now_us: int, **caps):
        store = self.chat_store
        return store.chat_messages_view(chat_id, now_us, **caps) if store is not None else None

    def hard_delete_chat(self, chat_id: str, now_us: int) -> bool:
        store = self.chat_store
        return store.hard_delete(chat_id, now_us) if store is not None else False

    # ---- directory --------------------------------------------------------------------------------------------
    def known_activity_types(self) -> frozenset[str]:
        return self.catalog.type_set

    def organizations(self) -> list[dict]:
        return [dict(o.to_api(), id=o.id) for o in sorted(self.world.orgs, key=lambda o: o.created_at)]

    def users(self, org_uuid: str) -> list[dict] | None:
        return self.world.users_api(org_uuid)

    # ---- activities -------------------------------------------------------------------------------------------
    def _clamp(self, gte_us: int, lt_us: int, now_us: int | None = None) -> tuple[int, int]:
        cfg = self.config
        lo = max(gte_us, cfg.start_us)
        end = cfg.end_us
        if end is None:
            end = (cfg.now_us() if now_us is None else now_us) + HOUR_US
        return lo, min(lt_us, end)

    def iter_activities(self, gte_us: int, lt_us: int, *, after: tuple[int, str] | None = None,
                        descending: bool = False) -> Iterator[ActivityRecord]:
        lo, hi = self._clamp(gte_us, lt_us)
        if lo >= hi:
            return
        h0, h1 = lo // HOUR_US, (hi - 1) // HOUR_US
        gen = self.generator
        if not descending:
            if after is not None:
                if after[0] >= hi:
                    return
                h0 = max(h0, after[0] // HOUR_US)
            for h in range(h0, h1 + 1):
                recs = gen.bucket(h).records
                i = bisect.bisect_left(recs, (lo,)) if lo > h * HOUR_US else 0
                if after is not None and after[0] // HOUR_US == h:
                    i = max(i, bisect.bisect_right(recs, (after[0], after[1], _INF)))
                j = bisect.bisect_left(recs, (hi,)) if hi < (h + 1) * HOUR_US else len(recs)
                dyn = self._dyn_slice(h, lo, hi, after, False)
                if dyn:
                    yield from heapq.merge(recs[i:j], dyn)
                else:
                    for k in range(i, j):
                        yield recs[k]
        else:
            if after is not None:
                if after[0] < lo:
                    return
                h1 = min(h1, after[0] // HOUR_US)
            for h in range(h1, h0 - 1, -1):
                recs = gen.bucket(h).records
                i = bisect.bisect_left(recs, (lo,)) if lo > h * HOUR_US else 0
                j = bisect.bisect_left(recs, (hi,)) if hi < (h + 1) * HOUR_US else len(recs)
                if after is not None and after[0] // HOUR_US == h:
                    j = min(j, bisect.bisect_left(recs, (after[0], after[1])))
                dyn = self._dyn_slice(h, lo, hi, after, True)
                if dyn:
                    yield from heapq.merge(recs[i:j][::-1], dyn[::-1], reverse=True)
                else:
                    for k in range(j - 1, i - 1, -1):
                        yield recs[k]

    def _dyn_slice(self, h: int, lo: int, hi: int, after, descending: bool) -> list[ActivityRecord]:
        lst = self._dyn.get(h)
        if not lst:
            return []
        with self._dyn_lock:
            i = bisect.bisect_left(lst, (lo,))
            j = bisect.bisect_left(lst, (hi,))
            if after is not None:
                if descending:
                    j = min(j, bisect.bisect_left(lst, (after[0], after[1])))
                else:
                    i = max(i, bisect.bisect_right(lst, (after[0], after[1], _INF)))
            return lst[i:j]

    def get_activity_key(self, activity_id: str, created_us_hint: int | None = None) -> tuple[int, str] | None:
        hours = []
        h = hour_of_id(activity_id)
        if h is not None:
            hours.append(h)
        if created_us_hint is not None and created_us_hint // HOUR_US not in hours:
            hours.append(created_us_hint // HOUR_US)
        for h in hours:
            if self.generator.hour_in_range(h):
                c = self.generator.bucket(h).id_index().get(activity_id)
                if c is not None:
                    return (c, activity_id)
            lst = self._dyn.get(h)
            if lst:
                with self._dyn_lock:
                    for r in lst:
                        if r[1] == activity_id:
                            return (r[0], r[1])
        return None

    def record_api_call(self, *, now_us: int, key_id: str | None, ip: str | None, user_agent: str | None,
                        method: str, url: str, status_code: int, request_id: str) -> None:
        cfg = self.config
        if not cfg.emit_access_events:
            return
        end = cfg.end_us
        if now_us < cfg.start_us or (end is not None and now_us >= end):
            return
        hour = now_us // HOUR_US
        with self._dyn_lock:
            self._dyn_count += 1
            n = self._dyn_count
        digest = hashlib.blake2b(f"{cfg.seed}:{request_id}:{n}".encode(), digest_size=24).digest()
        rid = (b"activity_01" + hour_code(hour) + digest[:20].translate(B58_TABLE)).decode()
        lag = US + int.from_bytes(digest[20:24], "big") % max(1, int((cfg.max_lag_seconds - 1) * US))
        doc = {"id": rid, "created_at": iso_us(now_us), "organization_id": None, "organization_uuid": None,
               "actor": {"type": "api_actor", "api_key_id": key_id, "ip_address": ip, "user_agent": user_agent},
               "type": "compliance_api_accessed", "request_id": request_id, "request_method": method,
               "status_code": status_code, "url": url}
        rec = _new_record(ActivityRecord, (now_us, rid, now_us + lag, "compliance_api_accessed", None, None, None,
                                           orjson.dumps(doc)))
        with self._dyn_lock:
            lst = self._dyn.get(hour)
            if lst is None:
                lst = self._dyn[hour] = []
            if not lst or lst[-1] < rec:
                lst.append(rec)
            else:
                bisect.insort(lst, rec)

    # ---- ground truth -----------------------------------------------------------------------------------------
    def incidents(self, gte_us: int, lt_us: int, now_us: int | None = None) -> list[dict]:
        lo, hi = self._clamp(gte_us, lt_us, now_us)
        out = []
        if lo >= hi:
            return out
        for day in range(lo // DAY_US, (hi - 1) // DAY_US + 1):
            for inc in self.generator.incidents(day):
                if lo <= inc.first_us < hi and (now_us is None or inc.last_indexed_us <= now_us):
                    out.append(inc.manifest(lo))
        out.sort(key=lambda d: (d["first_event"], d["id"]))
        return out

    def ground_truth(self, gte_us: int, lt_us: int, now_us: int | None = None) -> dict:
        """Manifest of [gte_us, lt_us) (DESIGN.md). Hour buckets already cached are reused; others are computed in
        skeleton mode (ids, types, times only), which is several times faster than rendering."""
        lo, hi = self._clamp(gte_us, lt_us, now_us)
        ids: list[str] = []
        types: list[str] = []
        malformed: list[dict] = []
        if lo < hi:
            for h in range(lo // HOUR_US, (hi - 1) // HOUR_US + 1):
                sk = self.generator.skeleton(h)
                dyn = self._dyn.get(h)
                created = sk.created
                if dyn or (created and (created[0] < lo or created[-1] >= hi or now_us is not None)):
                    rows = sk.rows
                    if dyn:
                        with self._dyn_lock:
                            rows = sorted(rows + [(r[0], r[1], r[2], r[3], None) for r in dyn])
                    rows = [row for row in rows if lo <= row[0] < hi and (now_us is None or row[2] <= now_us)]
                    h_ids = [row[1] for row in rows]
                    h_types = [row[3] for row in rows]
                    h_bad = [row[4] for row in rows]
                else:
                    h_ids, h_types, h_bad = sk.ids, sk.types, sk.bad
                if any(h_bad):
                    for rid, t, reason in zip(h_ids, h_types, h_bad):
                        if reason is None:
                            ids.append(rid)
                            types.append(t)
                        else:
                            malformed.append({"key": rid, "reason": reason})
                else:
                    ids.extend(h_ids)
                    types.extend(h_types)
        counts = Counter(types)
        store = self.chat_store
        chats = store.ground_truth(now_us if now_us is not None else self.config.now_us()) if store else []
        return {"range": {"gte": iso_us(gte_us), "lt": iso_us(lt_us)}, "seed": self.config.seed,
                "now": iso_us(now_us) if now_us is not None else None,
                "activity_ids": ids, "activity_count": len(ids), "type_counts": dict(sorted(counts.items())),
                "malformed": malformed, "incidents": self.incidents(gte_us, lt_us, now_us), "chats": chats}

    def manifest_to_file(self, path: str | Path, gte_us: int | None = None, lt_us: int | None = None,
                         now_us: int | None = None) -> dict:
        cfg = self.config
        gte = cfg.start_us if gte_us is None else gte_us
        lt = lt_us if lt_us is not None else (cfg.end_us if cfg.end_us is not None else cfg.now_us())
        m = self.ground_truth(gte, lt, now_us)
        Path(path).write_bytes(orjson.dumps(m, option=orjson.OPT_INDENT_2) + b"\n")
        return m

    def stats(self) -> dict:
        gen = self.generator
        return {"cached_hours": len(gen._hours), "cached_days": len(gen._plans), "dynamic_events": self._dyn_count,
                "users": len(self.world.users), "orgs": len(self.world.orgs)}
