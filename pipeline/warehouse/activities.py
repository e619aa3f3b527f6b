"""Transactional, idempotent writes of activity windows into `raw.activities`.

A run spools the delivered records to files (one JSON array per page) and DuckDB parses them, batch by batch, while
the next pages are still being fetched; no Python code touches individual records on this path. The stored range is
then made equal to what the API returned for `[start, end)`, in one transaction: rows of new ids are inserted, rows
the API no longer returns are removed and everything else is left untouched, so re-running a range changes nothing
and a crash (even SIGKILL) leaves the previous state of the range.

A range with no stored row takes the fresh load (`_load_fresh`, one pass) unless the delivery is out of the ordinary;
every other one the checked load (`_load_checked`). Both leave the same rows.
"""

from __future__ import annotations

import os
import queue
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

import duckdb
import orjson

from pipeline.warehouse.files import private_dir, private_file, process_alive
from pipeline.warehouse.schema import GEO_COLUMNS, UA_COLUMNS, ensure_schema
from pipeline.compliance_api.hostile import RejectedRecord
from pipeline.warehouse.screening import quarantine_entry, screen_page

WINDOW = "INTERVAL 5 MINUTE"

# One JSON parse per record and pass: the typed columns come from a single multi-path extraction. id and created_at
# come first: the staging pass extracts only those two.
_PATHS = [
    "$.id", "$.created_at", "$.type", "$.organization_id", "$.organization_uuid", "$.actor.type",
    "$.actor.user_id", "$.actor.email_address", "$.actor.api_key_id", "$.actor.admin_api_key_id",
    "$.actor.service_account_id", "$.actor.ip_address", "$.actor.user_agent",
]
# The fields the pipeline keys on and their JSON type by the contract (compliance-api/contract.md, "Activity object"):
# any other type (JSON null aside: read as missing) sends the record to quarantine as `wrong_type:<field>`. Other
# fields of another type are stored: as delivered in `raw`, as their JSON text in a typed column.
_KEY_FIELD_TYPES = {"$.id": "VARCHAR", "$.created_at": "VARCHAR", "$.type": "VARCHAR", "$.organization_id": "VARCHAR",
                    "$.actor": "OBJECT", "$.actor.type": "VARCHAR"}
_ROW_AFTER_ID = """f[3], created_at, f[4], f[5], f[6], f[7], f[8], f[9], f[10], f[11], f[12], f[13], json,
                   $start, $end, $fetched_at, $run_id, hash(json)"""
_ROW = f"f[1], {_ROW_AFTER_ID}"

# Pages per load statement when the pages are all there (a list of files): ~100k activities. Fed while fetching
# (`fetch_and_load`), the load takes whatever pages arrived while it loaded the previous batch, at least
# MIN_PAGES_PER_BATCH (each batch scans the ids staged before it) and at most PAGES_PER_BATCH (memory): it keeps pace
# with the fetch, so after the last page only the pages of one short batch are left to load.
PAGES_PER_BATCH = 20
MIN_PAGES_PER_BATCH = 8


@dataclass
class TraversalStats:
    pages: int = 0
    records: int = 0
    duplicates_dropped: int = 0
    first_cursor: str | None = None
    last_cursor: str | None = None
    final_request_id: str | None = None


@dataclass
class LoadResult:
    stored: int = 0            # rows of the range after the load
    inserted: int = 0
    removed: int = 0
    quarantined: int = 0
    quarantine_reasons: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0        # repeated ids inside the delivered pages
    conflicts: int = 0         # versions of a stored id (stored earlier or by this load) with another content:
                               # kept in quarantine, the stored row unchanged
    new_ips: int = 0
    new_user_agents: int = 0


REJECTED_SUFFIX = ".rejected"  # beside a page file: its records set aside by screening (JSON array)
STALE_SPOOL_SECONDS = 6 * 3600  # a spool of another live process is never this old (pool `duckdb`, max runtime)
KEEP_FAILED_SECONDS = 7 * 86400  # pages of a failed load are kept this long for inspection


def sweep_stale_spools(parent: Path) -> list[Path]:
    """Remove spools left by dead processes (a SIGKILLed run leaves its pages): their records hold message-free but
    still private data, and they only take disk. Kept pages of failed loads (`.failed-*`) go after a week."""
    swept = []
    for path in parent.glob(".failed-*"):
        try:
            if time.time() - path.stat().st_mtime > KEEP_FAILED_SECONDS:
                shutil.rmtree(path, ignore_errors=True)
                swept.append(path)
        except FileNotFoundError:
            continue
    for path in parent.glob(".spool-*"):
        parts = path.name.split("-")
        pid = int(parts[1]) if len(parts) > 2 and parts[1].isdigit() else None
        try:
            old = time.time() - path.stat().st_mtime > STALE_SPOOL_SECONDS
        except FileNotFoundError:
            continue
        if (pid is not None and pid != os.getpid() and not process_alive(pid)) or (pid is None and old):
            shutil.rmtree(path, ignore_errors=True)
            swept.append(path)
    return swept


class PageSpool:
    """Delivered records on local disk, beside the warehouse, until the load statement has read them. Owner-only;
    when the load fails (a DuckDB error) the pages are kept (`keep()`) for inspection instead of being deleted."""

    def __init__(self, parent: Path):
        private_dir(parent)
        sweep_stale_spools(parent)
        self.directory = Path(tempfile.mkdtemp(prefix=f".spool-{os.getpid()}-", dir=parent))  # mode 0700
        self.files: list[str] = []
        self.kept: Path | None = None

    def add(self, records: list | bytes) -> str:
        """One JSON array of records per page (DuckDB reads arrays faster than the API's envelope): the parsed
        records, or the bytes of the page's `data` array as received. Returns the file's path."""
        path = self.directory / f"page-{len(self.files):06d}.json"
        private_file(path, records if isinstance(records, bytes) else orjson.dumps(records))
        self.files.append(str(path))
        return str(path)

    def add_rejected(self, page_path: str, entries: list[dict]) -> None:
        private_file(Path(page_path + REJECTED_SUFFIX), orjson.dumps(entries))

    def keep(self) -> Path:
        """Keep the pages of a failed load: renamed to `.failed-<time>-<pid>` beside the spool (owner-only)."""
        target = self.directory.with_name(f".failed-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}")
        self.directory.rename(target)
        self.directory = self.kept = target
        return target

    def clear(self) -> None:
        """Delete the pages (a traversal given up: the next one starts afresh)."""
        for path in self.files:
            for name in (path, path + REJECTED_SUFFIX):
                Path(name).unlink(missing_ok=True)
        self.files = []

    def close(self) -> None:
        if self.kept is None:
            shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> "PageSpool":
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if exc_type is not None and issubclass(exc_type, duckdb.Error) and self.files and self.kept is None:
            self.keep()  # the load failed on these pages (a failed fetch leaves nothing worth inspecting)
        self.close()


# The text json_extract_string gives for a value that is not a JSON string: true/false, a number (DuckDB also reads
# NaN, inf and Infinity, in any case), an array or object.
_NOT_STRING_TEXT = r"(?is)true|false|[+-]?(nan|inf|infinity)|[+-]?[0-9][0-9.e+-]*|[\[{].*"


def _types_in_doubt(paths: list[str], types: dict[str, str]) -> str | None:
    """SQL: true when the extracted fields `f` (of `paths`) leave a key field's JSON type in doubt; None when
    `paths` do not cover the key fields. A string field extracted as text that cannot be a non-string value (most
    text: an id, a timestamp) is a string; an object's fields are all missing unless it is one. For the few records
    in doubt (and every record, without it) json_type parses the record once more, a fifth of a one-pass load."""
    doubts = []
    for path, expected in types.items():
        if expected == "VARCHAR" and path in paths:
            doubts.append(f"regexp_full_match(f[{paths.index(path) + 1}], '{_NOT_STRING_TEXT}')")
        elif expected == "OBJECT" and any(p.startswith(path + ".") for p in paths):
            fields = ", ".join(f"f[{i}]" for i, p in enumerate(paths, start=1) if p.startswith(path + "."))
            doubts.append(f"coalesce({fields}) IS NULL")
        else:
            return None
    return " OR ".join(doubts)


def _records(source: str, paths: list[str], types: dict[str, str] = _KEY_FIELD_TYPES) -> str:
    """SQL of the records of `source` (rows of filename, json, pos) with their extracted fields `f` and the reason
    each one cannot be stored (NULL = a valid activity). Every pass over the pages uses this text, so they agree on
    what is valid. A field of `types` with another JSON type than the contract's is a `wrong_type:<field>` (a number
    as id would be stored as a string id the API never sent). Each JSON function parses the record again: the types
    come from one multi-path call, only for records whose fields leave a type in doubt when `paths` cover the key
    fields (`_types_in_doubt`), and an object is recognised by its first character. The staging pass of the checked
    load and the fresh load run it; the checked load's bulk insert takes its verdict (`_staged_valid`)."""
    wrong_types = "\n".join(
        f"                    WHEN t[{i}] NOT IN ('{expected}', 'NULL') THEN 'wrong_type:{path[2:]}'"
        for i, (path, expected) in enumerate(types.items(), start=1))
    doubt = _types_in_doubt(paths, types)
    json_types = f"json_type(json, {list(types)!r})"
    return f"""
        SELECT filename, pos, json, f, created_at,
               CASE WHEN left(ltrim(json::VARCHAR), 1) <> '{{' THEN 'not_an_object'
                    WHEN f[1] IS NULL OR f[1] = '' THEN 'missing_id'
{wrong_types}
                    WHEN created_at IS NULL THEN 'bad_created_at'
                    WHEN created_at < $start OR created_at >= $end THEN 'outside_window'
               END AS reason
        FROM (SELECT *, TRY_CAST(f[2] AS TIMESTAMPTZ) AS created_at,
                     {json_types if doubt is None else f"CASE WHEN {doubt} THEN {json_types} END"} AS t
              FROM (SELECT filename, pos, json, json_extract_string(json, {paths!r}) AS f
                    FROM ({source})))"""


def _staged_valid(files: list[str], any_invalid: bool = True) -> str:
    """SQL of the records of a staged batch (`$batch`) the staging pass found valid, with their fields `f` (all
    `_PATHS`) and `created_at`: the staging pass's verdict, not a second one. A record is invalid exactly when the
    same text was staged with a reason (a tiny set: matched by hash, then text), so this pass parses each record
    once (the id's type check of `_records` is a second parse: a fifth of the load). `any_invalid=False` (the batch's
    pages hold no invalid record, the common case) leaves the match out."""
    valid = f"""SELECT json, json_extract_string(json, {_PATHS!r}) AS f FROM ({_pages(files)})"""
    if any_invalid:
        valid = f"""
            SELECT r.json, r.f
            FROM ({valid}) r
            LEFT JOIN (SELECT payload_hash, payload FROM staged WHERE batch = $batch AND reason IS NOT NULL) bad
                   ON bad.payload_hash = hash(r.json) AND bad.payload = r.json
            WHERE bad.payload_hash IS NULL"""
    return f"SELECT json, f, f[2]::TIMESTAMPTZ AS created_at FROM ({valid})"


def _pages(files: list[str]) -> str:
    return f"""SELECT filename, NULL::BIGINT AS pos, json
               FROM read_json_objects({_sql_list(files)}, format = 'array', filename = true)"""


def _pages_in_order(files: list[str]) -> str:
    """Numbers the records in delivery order (run single-threaded: files in list order, each from its start): to find
    the first copy of an id repeated inside a batch. The text of each record stays exactly as delivered."""
    return f"""SELECT filename, ordinality AS pos, json
               FROM read_json_objects({_sql_list(files)}, format = 'array', filename = true) WITH ORDINALITY"""


def _sql_list(files: list[str]) -> str:
    return "[" + ", ".join("'" + f.replace("'", "''") + "'" for f in files) + "]"


def _batches(files: Iterable[str], size: int) -> Iterator[list[str]]:
    if hasattr(files, "batches"):  # a _PageFeed, a _Replay
        yield from files.batches(size)
        return
    batch: list[str] = []
    for path in files:
        batch.append(path)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def load_activity_range(conn: duckdb.DuckDBPyConnection, files: Iterable[str], start: datetime, end: datetime, *,
                        run_id: str, fetched_at: datetime, traversal: TraversalStats,
                        enricher: "Enricher | None" = None, pages_per_batch: int = PAGES_PER_BATCH) -> LoadResult:
    """Make `[start, end)` of the warehouse equal to the delivered records, atomically.

    `files` hold JSON arrays of records (the spool's page files); they may still be arriving (an iterator fed by the
    fetch, see `fetch_and_load`): each full batch is loaded at once. `traversal` is read once `files` is exhausted.
    """
    ensure_schema(conn)
    conn.execute("SET preserve_insertion_order = false")  # lets large loads stream within the memory limit
    # The validity filter must stay above the projection that parses each record once: pushed below it, DuckDB
    # repeats the JSON extraction for every reference to a field (3x slower). Set outside the transaction: a SET
    # inside an aborted one fails and would hide the load's real error.
    previous, threads = conn.execute(
        "SELECT current_setting('disabled_optimizers'), current_setting('threads')").fetchone()
    conn.execute(f"SET disabled_optimizers = '{','.join(filter(None, [previous, 'filter_pushdown']))}'")
    try:
        return _load_range(conn, files, start, end, run_id=run_id, fetched_at=fetched_at, traversal=traversal,
                           enricher=enricher, pages_per_batch=pages_per_batch, threads=int(threads))
    finally:
        conn.execute(f"SET disabled_optimizers = '{previous}'")
        conn.execute(f"SET threads = {int(threads)}")


def _load_range(conn, files, start, end, **load) -> LoadResult:
    stored = conn.execute("SELECT EXISTS (SELECT 1 FROM raw.activities WHERE created_at >= $start AND created_at < $end)",
                          {"start": start, "end": end}).fetchone()[0]
    if not stored and getattr(files, "fresh", True):  # the pool `duckdb`: no other writer meanwhile
        disposable = getattr(files, "disposable", False)
        pages = files if disposable else _Replay(files)
        result = _load_fresh(conn, pages, start, end, **load)
        if result is not None:
            return result
        if disposable:  # the pages it read are gone
            raise _TraverseAgain
        files = pages.again()
    return _load_checked(conn, files, start, end, **load)


class _TraverseAgain(Exception):
    """The fresh load gave up on a feed whose loaded pages it deleted: `fetch_and_load` traverses the range again,
    for the checked load."""


class _Unusual(Exception):
    """What the fresh load leaves to the checked one (see `_load_fresh`)."""


# The fresh load's guard: DuckDB aborts the statement at the first record the checked load has to handle.
_UNUSUAL = "pipeline: a record for the checked load"


def _load_fresh(conn, files, start, end, *, run_id, fetched_at, traversal, enricher, pages_per_batch,
                threads: int) -> LoadResult | None:
    """The load of a range that holds no activity yet (a backfill, the newest window), in one pass: each batch of
    pages is inserted straight from its files, each record parsed once. The checked load parses every record twice
    and keeps every delivered id beside, which only a delivery out of the ordinary needs. So this one holds while the
    delivery is ordinary: valid records, an id delivered again only as the same text (at-least-once delivery: the
    copies are dropped, as the checked load drops them). At the first record that is not (one for quarantine, one
    screening set aside, another version of an id), it rolls back and returns None: the checked load then loads
    the range, from the same pages (or, when the feed's loaded pages were deleted, from a new traversal:
    `_TraverseAgain`). The validity rules are the checked load's own (`_records`)."""
    params = {"start": start, "end": end}
    result = LoadResult()
    conn.execute("BEGIN TRANSACTION")
    try:
        for batch in _batches(files, pages_per_batch):
            if any(os.path.exists(f + REJECTED_SUFFIX) for f in batch):
                raise _Unusual
            _set_threads(conn, files, threads)
            result.inserted += conn.execute(f"""
                INSERT INTO raw.activities
                SELECT CASE WHEN reason IS NULL THEN f[1] ELSE error('{_UNUSUAL}') END, {_ROW_AFTER_ID}
                FROM ({_records(_pages(batch), _PATHS)})
            """, {**params, "fetched_at": fetched_at, "run_id": run_id}).fetchone()[0]
            if getattr(files, "disposable", False):
                for path in batch:  # page cache freed at once is reused by the next pages (cheaper writes)
                    os.unlink(path)
        conn.execute(f"SET threads = {threads}")
        delivered = result.inserted
        result.duplicates = _drop_identical_repeats(conn, params)
        result.inserted -= result.duplicates
        _create_staged(conn)  # nothing for quarantine
        _settle(conn, start, end, fetched_at, run_id, traversal, enricher, result, delivered)
    except (_Unusual, duckdb.Error) as exc:
        conn.execute("ROLLBACK")
        if isinstance(exc, duckdb.Error) and _UNUSUAL not in str(exc):
            raise
        return None
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return result


def _drop_identical_repeats(conn, params: dict) -> int:
    """Ids the fresh load stored more than once (the range held none before): copies of the same text are one
    delivery repeated, all but one deleted (returns how many); another version of an id needs the checked load,
    which knows the order of delivery (`_Unusual`)."""
    in_range = "created_at >= $start AND created_at < $end"
    if not conn.execute(f"SELECT count(*) - count(DISTINCT id) FROM raw.activities WHERE {in_range}",
                        params).fetchone()[0]:
        return 0
    conn.execute(f"""CREATE OR REPLACE TEMP TABLE repeated_ids AS
                     SELECT id FROM raw.activities WHERE {in_range} GROUP BY id HAVING count(*) > 1""", params)
    versions = conn.execute(f"""
        SELECT count(*) FROM (SELECT id FROM raw.activities WHERE {in_range} AND id IN (SELECT id FROM repeated_ids)
                              GROUP BY id HAVING count(DISTINCT raw::VARCHAR) > 1)""", params).fetchone()[0]
    if versions:
        raise _Unusual
    dropped = conn.execute(f"""
        DELETE FROM raw.activities WHERE rowid IN (
            SELECT rowid FROM raw.activities WHERE {in_range} AND id IN (SELECT id FROM repeated_ids)
            QUALIFY row_number() OVER (PARTITION BY id ORDER BY rowid) > 1)""", params).fetchone()[0]
    conn.execute("DROP TABLE repeated_ids")
    return dropped


class _Replay:
    """A load's pages, and the same pages again for a second load when the fresh one gave up (`again()`): those it
    read first, then the rest of the feed (still arriving, or the rest of a list)."""

    def __init__(self, files: Iterable[str], read: Iterable[str] = ()) -> None:
        self._source = files if hasattr(files, "batches") else iter(files)
        self._pending = list(read)
        self.read: list[str] = []

    @property
    def over(self) -> bool:  # the fetch has ended (see `_set_threads`)
        return getattr(self._source, "over", True)

    def batches(self, most: int) -> Iterator[list[str]]:
        while self._pending:
            batch, self._pending = self._pending[:most], self._pending[most:]
            self.read += batch
            yield batch
        for batch in _batches(self._source, most):
            self.read += batch
            yield batch

    def again(self) -> "_Replay":
        return _Replay(self._source, self.read)


def _load_checked(conn, files, start, end, *, run_id, fetched_at, traversal, enricher, pages_per_batch,
                  threads: int) -> LoadResult:
    """The load of any range: every delivered id is kept beside (`staged`), so that a record stored before, a
    repeat, a conflicting version, a record for quarantine or a stored record the API no longer returns is each
    handled as such."""
    result = LoadResult()
    params = {"start": start, "end": end}
    conn.execute("BEGIN TRANSACTION")
    try:
        # Rows stored before `raw_hash` existed get it once, when their range is loaded again (schema.py).
        conn.execute("""UPDATE raw.activities SET raw_hash = hash(raw)
                        WHERE created_at >= $start AND created_at < $end AND raw_hash IS NULL""", params)
        # Only the ids present before the load can go missing: new rows are, by construction, delivered ones.
        conn.execute("""CREATE OR REPLACE TEMP TABLE existing_ids AS
                        SELECT id FROM raw.activities WHERE created_at >= $start AND created_at < $end""", params)
        _create_staged(conn)
        all_files: list[str] = []
        for number, batch in enumerate(_batches(files, pages_per_batch)):
            all_files += batch
            _set_threads(conn, files, threads)
            result.inserted += _load_batch(conn, number, batch, start, end, fetched_at, run_id)
        result.duplicates = conn.execute(
            "SELECT count(*) - count(DISTINCT id) FROM staged WHERE reason IS NULL").fetchone()[0]
        # A conflict needs an id delivered twice or stored before: a first load of a range (a backfill) skips the pass.
        redelivered = result.duplicates or conn.execute("""
            SELECT EXISTS (SELECT 1 FROM staged WHERE reason IS NULL AND id IN (SELECT id FROM existing_ids))
        """).fetchone()[0]
        result.conflicts = _stage_conflicting_duplicates(conn, all_files, params) if redelivered else 0
        stored_before = conn.execute("SELECT count(*) FROM existing_ids").fetchone()[0]
        result.removed = conn.execute("""
            DELETE FROM raw.activities
            WHERE created_at >= $start AND created_at < $end
              AND id IN (SELECT id FROM existing_ids EXCEPT SELECT id FROM staged WHERE reason IS NULL)
        """, params).fetchone()[0] if stored_before else 0  # a first load of the range (a backfill) removes nothing
        conn.execute("DROP TABLE existing_ids")
        # What this load received, whether or not the client parsed it: every delivered item and every repeat.
        delivered = conn.execute("SELECT count(*) FROM staged WHERE batch >= 0").fetchone()[0]
        _settle(conn, start, end, fetched_at, run_id, traversal, enricher, result, delivered)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return result


def _set_threads(conn, files, threads: int) -> None:
    """While pages still arrive the load only has to keep pace, on one thread (a 1M-activity day from files: 9.5 CPU
    s instead of 12.1 on two, and the fetch keeps a core); what is left after the last page gets every thread."""
    fetching = not getattr(files, "over", True)
    conn.execute(f"SET threads = {1 if fetching else threads}")


def _create_staged(conn) -> None:
    # What was delivered, small: no payload except for records that go to quarantine.
    conn.execute("""CREATE OR REPLACE TEMP TABLE staged (batch INTEGER, filename VARCHAR, id VARCHAR,
                    reason VARCHAR, payload JSON, payload_hash UBIGINT, raw_base64 VARCHAR)""")


def _settle(conn, start, end, fetched_at, run_id, traversal: TraversalStats, enricher, result: LoadResult,
            delivered: int) -> None:
    """The end of a load, inside its transaction: the range's count, its quarantine, its attestations and the new
    enrichment values, then COMMIT."""
    params = {"start": start, "end": end}
    result.stored = conn.execute(
        "SELECT count(*) FROM raw.activities WHERE created_at >= $start AND created_at < $end", params
    ).fetchone()[0]
    _merge_quarantine(conn, start, end, fetched_at, run_id, result)
    _attest(conn, start, end, fetched_at, run_id,
            replace(traversal, records=delivered, duplicates_dropped=traversal.duplicates_dropped + result.duplicates))
    if enricher is not None:
        # The range now holds exactly the delivered activities (a view cannot take parameters: literals).
        conn.execute(f"""
            CREATE OR REPLACE TEMP VIEW staged_activities AS
            SELECT ip_address, user_agent FROM raw.activities
            WHERE created_at >= '{start.isoformat()}'::TIMESTAMPTZ
              AND created_at < '{end.isoformat()}'::TIMESTAMPTZ
        """)
        result.new_ips, result.new_user_agents = enricher.enrich_new_values(conn, fetched_at)
        conn.execute("DROP VIEW staged_activities")
    conn.execute("DROP TABLE staged")
    conn.execute("COMMIT")


def _load_batch(conn, number: int, files: list[str], start, end, fetched_at, run_id) -> int:
    """Stage the batch (ids and reasons), then insert its valid records not stored yet, each id once: one statement
    straight from the files, so the payloads never pass through a temporary table."""
    params = {"start": start, "end": end}
    conn.execute(f"""
        INSERT INTO staged
        SELECT $batch, filename, f[1], reason, CASE WHEN reason IS NOT NULL THEN json END, hash(json),
               CASE WHEN reason IS NOT NULL THEN to_base64(encode(json)) END
        FROM ({_records(_pages(files), _PATHS[:2])})
    """, {**params, "batch": number})
    rejected = [f + REJECTED_SUFFIX for f in files if os.path.exists(f + REJECTED_SUFFIX)]
    if rejected:  # records screening set aside (invalid text): quarantined with their exact bytes
        conn.execute(f"""
            INSERT INTO staged
            SELECT $batch, NULL, record_id, reason, to_json(text), hash(raw_base64), raw_base64
            FROM read_json({_sql_list(rejected)}, format = 'array', columns = {{
                reason: 'VARCHAR', record_id: 'VARCHAR', raw_base64: 'VARCHAR', text: 'VARCHAR'}})
        """, {"batch": number})
    # Ids of this batch not to insert in bulk: already stored or delivered by an earlier batch, or repeated within
    # this batch (at-least-once delivery, rare), whose first copy is inserted separately. (A record staged with a
    # reason, e.g. wrong-typed, is left out of the bulk insert by `_staged_valid` itself.) The batch's ids are the
    # small side of the semi join: the earlier ones (up to the whole range) are only scanned.
    conn.execute("""
        CREATE OR REPLACE TEMP TABLE batch_skip AS
        WITH batch_ids AS (SELECT id, count(*) AS n FROM staged WHERE batch = $batch AND reason IS NULL GROUP BY id),
             seen AS (SELECT id FROM batch_ids SEMI JOIN (
                          SELECT id FROM existing_ids
                          UNION ALL SELECT id FROM staged WHERE batch < $batch AND reason IS NULL) earlier USING (id))
        SELECT id, n > 1 AND id NOT IN (SELECT id FROM seen) AS take_first
        FROM batch_ids WHERE n > 1 OR id IN (SELECT id FROM seen)
    """, {"batch": number})
    # Only the pages holding a record to insert are read again (a rerun or a re-pull of stored windows: few or none).
    to_read, any_skipped, any_invalid = conn.execute("""
        SELECT list(DISTINCT filename) FILTER (WHERE reason IS NULL AND id NOT IN (SELECT id FROM batch_skip)),
               EXISTS (SELECT 1 FROM batch_skip),
               bool_or(reason IS NOT NULL AND filename IS NOT NULL)
        FROM staged WHERE batch = $batch
    """, {"batch": number}).fetchone()
    row_params = {**params, "fetched_at": fetched_at, "run_id": run_id}
    inserted = 0
    if to_read:
        skip = "WHERE f[1] NOT IN (SELECT id FROM batch_skip)  -- not NOT EXISTS: 1.7x the CPU here" if any_skipped else ""
        inserted = conn.execute(f"""
            INSERT INTO raw.activities
            SELECT {_ROW} FROM ({_staged_valid(sorted(to_read, key=files.index), bool(any_invalid))}) r
            {skip}
        """, {**row_params, **({"batch": number} if any_invalid else {})}).fetchone()[0]
    repeated_in = [r[0] for r in conn.execute("""
        SELECT DISTINCT filename FROM staged s JOIN batch_skip k ON k.take_first AND k.id = s.id
        WHERE s.batch = $batch
    """, {"batch": number}).fetchall()]
    if repeated_in:
        threads = conn.execute("SELECT current_setting('threads')").fetchone()[0]
        conn.execute("SET threads = 1")
        try:
            inserted += conn.execute(f"""
                INSERT INTO raw.activities
                SELECT {_ROW} FROM ({_records(_pages_in_order(sorted(repeated_in, key=files.index)), _PATHS)}) r
                WHERE reason IS NULL AND f[1] IN (SELECT id FROM batch_skip WHERE take_first)
                QUALIFY row_number() OVER (PARTITION BY f[1] ORDER BY pos) = 1
            """, row_params).fetchone()[0]
        finally:
            conn.execute(f"SET threads = {int(threads)}")
    conn.execute("DROP TABLE batch_skip")
    return inserted


def _stage_conflicting_duplicates(conn, files: list[str], params: dict) -> int:
    """Versions of a stored id delivered with other contents, in this traversal or in a later one (a re-pull, a rerun
    of the range): the stored row (the first copy, or the one stored before) stays, each other version goes to
    quarantine; an identical re-delivery changes nothing. The delivered hashes are compared with the range's stored
    `raw_hash` (no payload is read); only pages holding a differing version are read again, and a version that is the
    stored record in another serialisation (e.g. other escapes or spacing) is no conflict. Returns the versions
    quarantined."""
    conn.execute("""
        CREATE OR REPLACE TEMP TABLE conflicting AS
        SELECT DISTINCT s.id, s.payload_hash, s.filename
        FROM staged s JOIN raw.activities a ON a.id = s.id
        WHERE a.created_at >= $start AND a.created_at < $end
          AND s.reason IS NULL AND s.payload_hash <> a.raw_hash
    """, params)
    pages = [r[0] for r in conn.execute("SELECT DISTINCT filename FROM conflicting").fetchall()]
    conflicts = 0
    if pages:
        conflicts = conn.execute(f"""
            INSERT INTO staged
            SELECT DISTINCT ON (r.json) -1, r.filename, r.f[1], 'conflicting_duplicate', r.json, hash(r.json),
                   to_base64(encode(r.json))
            FROM ({_records(_pages(sorted(pages, key=files.index)), _PATHS[:2])}) r
            JOIN (SELECT DISTINCT id, payload_hash FROM conflicting) c ON c.id = r.f[1] AND c.payload_hash = hash(r.json)
            JOIN raw.activities a ON a.id = c.id AND a.created_at >= $start AND a.created_at < $end
            WHERE r.reason IS NULL AND json(r.json) <> json(a.raw)
        """, params).fetchone()[0]
    conn.execute("DROP TABLE conflicting")
    return conflicts


def _merge_quarantine(conn, start, end, fetched_at, run_id, result: LoadResult) -> None:
    """Identical bad payloads (e.g. two `null`s) are distinct deliveries: they are keyed by occurrence."""
    conn.execute("""
        CREATE OR REPLACE TEMP TABLE staged_quarantine AS
        SELECT reason, id AS record_id, payload, raw_base64, hash(payload::VARCHAR) AS payload_hash,
               row_number() OVER (PARTITION BY reason, hash(payload::VARCHAR) ORDER BY rowid) AS occurrence
        FROM staged WHERE reason IS NOT NULL
    """)
    params = {"start": start, "end": end}
    match = "s.payload_hash = q.payload_hash AND s.reason = q.reason AND s.occurrence = q.occurrence"
    conn.execute(f"""
        DELETE FROM raw.activities_quarantine q
        WHERE q.window_start >= $start AND q.window_end <= $end
          AND NOT EXISTS (SELECT 1 FROM staged_quarantine s WHERE {match})
    """, params)
    conn.execute(f"""
        INSERT INTO raw.activities_quarantine
        SELECT $start, $end, s.reason, s.record_id, s.payload, s.payload_hash, s.occurrence, $fetched_at, $run_id,
               s.raw_base64
        FROM staged_quarantine s
        WHERE NOT EXISTS (SELECT 1 FROM raw.activities_quarantine q
                          WHERE {match} AND q.window_start >= $start AND q.window_end <= $end)
    """, {**params, "fetched_at": fetched_at, "run_id": run_id})
    rows = conn.execute("SELECT reason, count(*) FROM staged_quarantine GROUP BY ALL ORDER BY 1").fetchall()
    result.quarantine_reasons = dict(rows)
    result.quarantined = sum(result.quarantine_reasons.values())
    conn.execute("DROP TABLE staged_quarantine")


def _attest(conn, start, end, fetched_at, run_id, t: TraversalStats) -> None:
    """One row per 5-minute window; rewritten only when the window's content changed, so reruns change nothing.
    A quarantined record counts in the window of its `created_at` when it has one inside the range (also read from
    the text of records that are not valid JSON), else in the traversal's first window: the windows' counts add up to
    the range's quarantine."""
    conn.execute(f"""
        CREATE OR REPLACE TEMP TABLE new_attestations AS
        WITH windows AS (
            SELECT unnest(generate_series($start::TIMESTAMPTZ, $end::TIMESTAMPTZ - {WINDOW}, {WINDOW})) AS window_start
        ), counts AS (
            SELECT time_bucket({WINDOW}, created_at, $start::TIMESTAMPTZ) AS window_start, count(*) AS n
            FROM raw.activities WHERE created_at >= $start AND created_at < $end GROUP BY 1
        ), quarantined AS (
            SELECT CASE WHEN ts >= $start AND ts < $end THEN time_bucket({WINDOW}, ts, $start::TIMESTAMPTZ)
                        ELSE $start::TIMESTAMPTZ END AS window_start, count(*) AS n
            FROM (SELECT coalesce(TRY_CAST(json_extract_string(payload, '$.created_at') AS TIMESTAMPTZ),
                                  TRY_CAST(regexp_extract(json_extract_string(payload, '$'),
                                                          '"created_at"\\s*:\\s*"([^"]+)"', 1) AS TIMESTAMPTZ)) AS ts
                  FROM raw.activities_quarantine WHERE window_start >= $start AND window_end <= $end)
            GROUP BY 1
        )
        SELECT w.window_start, w.window_start + {WINDOW} AS window_end, coalesce(c.n, 0) AS record_count,
               coalesce(q.n, 0) AS quarantined_count
        FROM windows w LEFT JOIN counts c USING (window_start) LEFT JOIN quarantined q USING (window_start)
    """, {"start": start, "end": end})
    conn.execute("""
        DELETE FROM raw.activity_attestations a USING new_attestations n
        WHERE a.window_start = n.window_start
          AND (a.record_count <> n.record_count OR a.quarantined_count <> n.quarantined_count)
    """)
    conn.execute("""
        INSERT INTO raw.activity_attestations
        SELECT n.window_start, n.window_end, n.record_count, n.quarantined_count, $start, $end, $pages, $records,
               $dups, $first_cursor, $last_cursor, $request_id, $fetched_at, $run_id
        FROM new_attestations n
        WHERE NOT EXISTS (SELECT 1 FROM raw.activity_attestations a WHERE a.window_start = n.window_start)
    """, {"start": start, "end": end, "pages": t.pages,
          "records": t.records, "dups": t.duplicates_dropped, "first_cursor": t.first_cursor,
          "last_cursor": t.last_cursor, "request_id": t.final_request_id, "fetched_at": fetched_at,
          "run_id": run_id})
    conn.execute("DROP TABLE new_attestations")


class Enricher:
    """Adds geolocation and parsed user agents for values not yet in the enrichment dimensions."""

    def __init__(self, geo_lookup, parse_user_agent, ua_parser: str | None = None):
        self.geo = geo_lookup
        self.parse_user_agent = parse_user_agent
        if ua_parser is None:
            from pipeline.enrichment.useragent import parser_identity

            ua_parser = parser_identity()
        self.ua_parser = ua_parser
        info = geo_lookup.database_info()
        self.geo_database = f"{Path(str(info.get('path'))).name}@{info.get('build_epoch')}"

    def enrich_new_values(self, conn: duckdb.DuckDBPyConnection, now: datetime) -> tuple[int, int]:
        ips = _new_values(conn, "ip_address", "ip_geolocation", "ip")
        new_ips = len(ips)
        ips += _outdated(conn, "ip_geolocation", "ip", "geo_database", self.geo_database)
        if ips:
            _insert_rows(conn, "ip_geolocation", [
                {**{c: getattr(i, c) for c in GEO_COLUMNS}, "geo_database": self.geo_database}
                for i in self.geo.lookup_many(ips)], now)
        uas = _new_values(conn, "user_agent", "user_agents", "user_agent")
        new_uas = len(uas)
        uas += _outdated(conn, "user_agents", "user_agent", "ua_parser", self.ua_parser)
        if uas:
            rows = []
            for ua in uas:
                info = self.parse_user_agent(ua)
                rows.append({"user_agent": ua, **{c: getattr(info, c) for c in UA_COLUMNS[1:]},
                             "ua_parser": self.ua_parser})
            _insert_rows(conn, "user_agents", rows, now)
        return new_ips, new_uas


def _new_values(conn: duckdb.DuckDBPyConnection, column: str, table: str, key: str) -> list[str]:
    """The staged values of `column` the dimension enrichment.`table` does not hold yet."""
    return [r[0] for r in conn.execute(f"""
        SELECT DISTINCT {column} FROM staged_activities s
        WHERE {column} IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM enrichment.{table} d WHERE d.{key} = s.{column})
    """).fetchall()]


def _outdated(conn: duckdb.DuckDBPyConnection, table: str, key: str, source_column: str, source: str) -> list[str]:
    """Keys of enrichment.`table` answered by another source than `source` (GEOIP_CITY_DB now points at a newer
    database; the user-agent rules or ua-parser were upgraded): removed here, to be looked up again once, so monitors
    and marts see today's answer (the marts rebuild those keys' rows: docs/reference-changes.md)."""
    outdated = [r[0] for r in conn.execute(f"""
        SELECT {key} FROM enrichment.{table} GROUP BY {key}
        HAVING arg_max({source_column}, enriched_at) IS DISTINCT FROM $source
    """, {"source": source}).fetchall()]
    if outdated:
        conn.execute(f"DELETE FROM enrichment.{table} WHERE {key} IN (SELECT unnest($keys))", {"keys": outdated})
    return outdated


def _insert_rows(conn: duckdb.DuckDBPyConnection, table: str, rows: list[dict], now: datetime) -> None:
    """Rows handed over as one JSON document typed by the table's own columns (no pyarrow: building a table with
    it imports pandas, seconds per run)."""
    types = dict(conn.execute("""SELECT column_name, data_type FROM duckdb_columns()
                                 WHERE schema_name = 'enrichment' AND table_name = $t""", {"t": table}).fetchall())
    shape = orjson.dumps([{c: types[c] for c in rows[0]}]).decode()
    conn.execute(f"""
        INSERT INTO enrichment.{table} BY NAME
        SELECT unnest(r), $now AS enriched_at FROM (SELECT unnest(from_json($rows, $shape)) AS r)
    """, {"rows": orjson.dumps(rows).decode(), "shape": shape, "now": now})


def _spool_page(page, spool: PageSpool, stats: TraversalStats) -> str:
    """Write one page body to the spool and keep the attestation facts. `page` is a client ActivityPage: either
    parsed `records` (repeats across the page boundary already dropped, malformed items kept) or, unparsed, the
    `data_json` bytes; first_id, last_id, request_id."""
    if page.records is None:  # unparsed page: the load parses and deduplicates
        data, rejected = screen_page(page.data_json)
        path = spool.add(data)
        if rejected:
            spool.add_rejected(path, rejected)
    else:
        rejected = [r for r in page.records if isinstance(r, RejectedRecord)]
        path = spool.add([r for r in page.records if not isinstance(r, RejectedRecord)] if rejected else page.records)
        if rejected:
            spool.add_rejected(path, [quarantine_entry(r.reason, r.raw) for r in rejected])
        stats.records += page.raw_count - page.duplicates_dropped
        stats.duplicates_dropped += page.duplicates_dropped
    stats.pages += 1
    if stats.pages == 1:
        stats.first_cursor = page.first_id
    if page.last_id is not None:
        stats.last_cursor = page.last_id
    stats.final_request_id = page.request_id
    return path


class _FetchFailed(Exception):
    """Ends the load's file feed when the fetch failed: the load rolls back, the fetch's own error is raised."""


class _PageFeed:
    """Page files handed from the fetch to the load's thread. Iterated, one file at a time; `batches(most)`: every
    file that arrived while the previous batch was loading (at least MIN_PAGES_PER_BATCH unless the fetch is over,
    at most `most`), so the load keeps pace with the fetch instead of falling a fixed batch behind. `over` is set
    as soon as the fetch ends: what is still queued then loads on every thread (`_set_threads`)."""

    def __init__(self, *, disposable: bool = False, fresh: bool = True) -> None:
        self._queue: queue.Queue = queue.Queue()
        self.over = False  # the fetch has ended: every page was handed over (some may still be queued)
        self._drained = False  # every page was taken
        self.disposable = disposable  # a page may be deleted once loaded (`_load_range`)
        self.fresh = fresh  # the fresh load may be tried (else the checked load at once)

    def put(self, item) -> None:
        if item is None:  # the end: known to the load at once, before it reaches the pages still queued
            self.over = True
        self._queue.put(item)

    def _take(self, block: bool):
        item = self._queue.get(block=block)
        if isinstance(item, _FetchFailed):
            raise item
        return item

    def __iter__(self) -> Iterator[str]:
        while (item := self._take(True)) is not None:
            yield item

    def batches(self, most: int) -> Iterator[list[str]]:
        batch: list[str] = []
        done = self._drained  # a second reader (`_Replay.again`) after the end: nothing more
        while not done:
            while len(batch) < most:
                try:  # wait for the minimum; beyond it take only what is already there
                    item = self._take(block=len(batch) < MIN_PAGES_PER_BATCH)
                except queue.Empty:
                    break
                if item is None:
                    done = self._drained = True
                    break
                batch.append(item)
            if batch:
                yield batch
                batch = []


def fetch_and_load(traverse: Callable[[], Iterable], spool: PageSpool,
                   load: Callable[[Iterable[str], TraversalStats], LoadResult]) -> tuple[TraversalStats, LoadResult]:
    """Spool the pages of `traverse()` in this thread while `load(files, traversal)` (load_activity_range) runs in
    another one, fed each page file as it is written: DuckDB parses a batch while the next pages are still on the
    wire. Logging and the fetch stay in the calling thread; the connection is used by the load's thread only. A
    failure on either side rolls the load back and is raised here.

    The fresh load deletes each page once loaded (`_PageFeed.disposable`). When it gives up (a delivery out of the
    ordinary, `_TraverseAgain`), the range is traversed a second time, its pages kept, for the checked load."""
    stats, result = _fetch_and_load(traverse(), spool, load, _PageFeed(disposable=True))
    if result is None:
        spool.clear()
        stats, result = _fetch_and_load(traverse(), spool, load, _PageFeed(fresh=False))
    return stats, result


def _fetch_and_load(pages: Iterable, spool: PageSpool, load, feed: _PageFeed) -> tuple[TraversalStats, LoadResult | None]:
    stats = TraversalStats()
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["result"] = load(feed, stats)
        except BaseException as exc:
            outcome["error"] = exc

    worker = threading.Thread(target=run, name="activity-load", daemon=True)
    worker.start()
    try:
        for page in pages:
            feed.put(_spool_page(page, spool, stats))
            if not worker.is_alive():  # the load failed or gave up: no use fetching on
                break
    except BaseException:
        feed.put(_FetchFailed())
        worker.join()
        raise
    feed.put(None)
    worker.join()
    if isinstance(outcome.get("error"), _TraverseAgain):
        return stats, None
    if "error" in outcome:
        raise outcome["error"]
    return stats, outcome["result"]
