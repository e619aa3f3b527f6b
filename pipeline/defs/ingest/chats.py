"""`raw/chats` (chats and messages, by update time), `raw/organization_users` (the directory) and
`raw/chats_reconciliation` (hard deletes the listing cannot show)."""


import time
from datetime import datetime, timezone

import dagster as dg

from pipeline.compliance_api import AuthenticationError, InvalidResponseError, NotFoundError, PermissionDeniedError
from pipeline.compliance_api.hostile import RejectedRecord
from pipeline.compliance_api.resume import resumable_pages, with_second_chances
from pipeline.config import Settings
from pipeline.defs.ingest.assets import BACKFILL_POLICY
from pipeline.defs.ingest.partitions import activity_partitions
from pipeline.defs.resources import ComplianceAPIResource, WarehouseResource
from pipeline.warehouse.chats import CHATS_DDL, FetchedChat, load_chat_window, validate_chat
from pipeline.warehouse.directory import replace_directory


def _fail_on_credentials(exc: Exception) -> None:
    if isinstance(exc, (AuthenticationError, PermissionDeniedError)):
        raise dg.Failure(description=str(exc), allow_retries=False) from exc


@dg.asset(
    key=dg.AssetKey(["raw", "chats"]),
    partitions_def=activity_partitions,
    backfill_policy=BACKFILL_POLICY,
    pool="duckdb",
    group_name="ingest",
    kinds={"duckdb", "python"},
    description="Chats whose updated_at falls in the window, with all their messages: upserted by chat and message "
                "id, soft deletes kept with deleted_at, hard deletes (404) marked. Message text only in the "
                "restricted schema, and only when COMPLIANCE_STORE_MESSAGE_TEXT is on.",
)
def raw_chats(context: dg.AssetExecutionContext, compliance_api: ComplianceAPIResource,
              warehouse: WarehouseResource) -> dg.MaterializeResult:
    window = context.partition_time_window
    start, end = window.start.astimezone(timezone.utc), window.end.astimezone(timezone.utc)
    store_text = Settings.from_env().store_message_text
    started = time.monotonic()
    by_id: dict[str, FetchedChat] = {}
    malformed: list = []
    messages = pages = 0
    last_cursor = final_request_id = None
    try:
        with compliance_api.client() as client:
            for page in resumable_pages(lambda cursor: client.iter_chat_pages(start, end, after_id=cursor)):
                for item in page.records:
                    if validate_chat(item):
                        malformed.append(item)
                        continue
                    try:
                        detail = with_second_chances(lambda chat_id=item["id"]: client.get_chat_messages(chat_id))
                    except NotFoundError:  # hard-deleted between the listing and now
                        by_id[item["id"]] = FetchedChat(item, None, hard_deleted=True)
                        continue
                    except InvalidResponseError as exc:
                        if exc.retryable:
                            raise
                        # A complete answer that cannot be decoded beyond its messages: the chat keeps its stored
                        # state and the answer goes to quarantine; the other chats of the window are stored.
                        malformed.append(RejectedRecord("messages_undecodable", getattr(exc, "body", b"")))
                        continue
                    messages += len(detail.get("chat_messages") or [])
                    by_id[item["id"]] = FetchedChat(item, detail)  # a chat listed twice: the later state wins
                pages += 1
                last_cursor, final_request_id = page.last_id or last_cursor, page.request_id
    except Exception as exc:
        _fail_on_credentials(exc)
        raise
    fetched = time.monotonic()
    with warehouse.connect() as conn:
        result = load_chat_window(conn, list(by_id.values()), malformed, start, end, run_id=context.run.run_id,
                                  fetched_at=datetime.now(timezone.utc), store_text=store_text)
    if result.quarantined:
        context.log.warning(f"{result.quarantined} chat record(s) quarantined: {result.quarantine_reasons}")
    return dg.MaterializeResult(metadata={
        "window_start": start.isoformat(), "window_end": end.isoformat(),
        "chats": result.chats_seen, "chats_inserted": result.chats_inserted, "chats_updated": result.chats_updated,
        "chats_hard_deleted": result.chats_hard_deleted, "messages_fetched": messages,
        "messages_inserted": result.messages_inserted, "messages_updated": result.messages_updated,
        "messages_removed": result.messages_removed, "text_stored": store_text,
        "quarantined": result.quarantined, "quarantine_reasons": dict(result.quarantine_reasons),
        "pages": pages, "last_cursor": last_cursor or "", "final_request_id": final_request_id or "",
        "fetch_seconds": round(fetched - started, 3),
        "messages_per_second": round(messages / max(time.monotonic() - started, 1e-6), 1),
    })


@dg.asset(
    key=dg.AssetKey(["raw", "organization_users"]),
    pool="duckdb",
    group_name="ingest",
    kinds={"duckdb", "python"},
    description="Organizations of the tenant and their current members (replaced when the directory changed).",
)
def raw_organization_users(compliance_api: ComplianceAPIResource,
                           warehouse: WarehouseResource) -> dg.MaterializeResult:
    try:
        with compliance_api.client() as client:
            orgs = list(client.iter_organizations())
            users = [{**user, "organization_uuid": org["uuid"]}
                     for org in orgs for user in client.iter_organization_users(org["uuid"])]
    except Exception as exc:
        _fail_on_credentials(exc)
        raise
    with warehouse.connect() as conn:
        changed = replace_directory(conn, orgs, users, datetime.now(timezone.utc))
    return dg.MaterializeResult(metadata={"organizations": len(orgs), "users": len(users), "changed": changed})


@dg.asset(
    key=dg.AssetKey(["raw", "chats_reconciliation"]),
    deps=[raw_chats],
    pool="duckdb",
    group_name="ingest",
    kinds={"duckdb", "python"},
    description="Finds stored chats that were hard-deleted (retention or the DELETE endpoint): they vanish from the "
                "listing without a new updated_at. One org-wide listing, then a 404 check of each missing chat.",
)
def raw_chats_reconciliation(compliance_api: ComplianceAPIResource,
                             warehouse: WarehouseResource) -> dg.MaterializeResult:
    with warehouse.connect() as conn:
        conn.execute(CHATS_DDL)
        live = {r[0] for r in conn.execute("SELECT id FROM raw.chats WHERE hard_deleted_at IS NULL").fetchall()}
    gone: list[str] = []
    try:
        with compliance_api.client() as client:
            since = datetime(2000, 1, 1, tzinfo=timezone.utc)
            listed = {item["id"]
                      for page in resumable_pages(lambda cursor: client.iter_chat_pages(since, after_id=cursor))
                      for item in page.records if isinstance(item, dict) and item.get("id")}
            for chat_id in sorted(live - listed):
                try:
                    with_second_chances(lambda chat_id=chat_id: client.get_chat_messages(chat_id, limit=1))
                except NotFoundError:
                    gone.append(chat_id)
    except Exception as exc:
        _fail_on_credentials(exc)
        raise
    if gone:
        with warehouse.connect() as conn:
            conn.execute("UPDATE raw.chats SET hard_deleted_at = $now WHERE id IN (SELECT unnest($ids))"
                         " AND hard_deleted_at IS NULL", {"now": datetime.now(timezone.utc), "ids": gone})
    return dg.MaterializeResult(metadata={"live_chats_checked": len(live), "hard_deleted_found": len(gone)})
