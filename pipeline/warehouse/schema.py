"""DDL of the raw layer and the enrichment dimensions. Idempotent: run at the start of every write step."""

from __future__ import annotations

import duckdb

DDL = """
CREATE SCHEMA IF NOT EXISTS raw;
CREATE SCHEMA IF NOT EXISTS enrichment;

-- One row per activity id, lossless: `raw` keeps the whole object as delivered (unknown types, fields and actor
-- types included); the typed columns are what the staging models and monitors filter on. `raw` is stored with zstd:
-- on these long JSON texts it writes ~1.5x faster than the default dictionary/FSST and takes ~2.4x less disk.
CREATE TABLE IF NOT EXISTS raw.activities (
    id                       VARCHAR NOT NULL,
    type                     VARCHAR,
    created_at               TIMESTAMPTZ NOT NULL,
    organization_id          VARCHAR,
    organization_uuid        VARCHAR,
    actor_type               VARCHAR,
    actor_user_id            VARCHAR,
    actor_email_address      VARCHAR,
    actor_api_key_id         VARCHAR,
    actor_admin_api_key_id   VARCHAR,
    actor_service_account_id VARCHAR,
    ip_address               VARCHAR,
    user_agent               VARCHAR,
    raw                      JSON NOT NULL USING COMPRESSION zstd,
    -- ingestion metadata: the run's requested range, when the record was first stored, and by which run
    ingest_window_start      TIMESTAMPTZ NOT NULL,
    ingest_window_end        TIMESTAMPTZ NOT NULL,
    fetched_at               TIMESTAMPTZ NOT NULL,
    run_id                   VARCHAR NOT NULL
);

-- Records that cannot be stored as activities, with the reason and the payload exactly as delivered.
CREATE TABLE IF NOT EXISTS raw.activities_quarantine (
    window_start  TIMESTAMPTZ NOT NULL,
    window_end    TIMESTAMPTZ NOT NULL,
    reason        VARCHAR NOT NULL,   -- not_an_object | missing_id | wrong_type:<field> (e.g. wrong_type:created_at)
                                      -- | bad_created_at | outside_window | invalid_utf8 | invalid_unicode_escape
                                      -- | invalid_json | conflicting_duplicate
    record_id     VARCHAR,
    payload       JSON NOT NULL,
    payload_hash  UBIGINT NOT NULL,
    occurrence    INTEGER NOT NULL,   -- identical payloads delivered more than once in one traversal
    fetched_at    TIMESTAMPTZ NOT NULL,
    run_id        VARCHAR NOT NULL
);

-- hash() of `raw` as stored: a later delivery of a stored id is compared with it (the range's rows only, without
-- reading their payloads). Rows stored before this column existed get it from the first load of their range.
ALTER TABLE raw.activities ADD COLUMN IF NOT EXISTS raw_hash UBIGINT;

-- The record's exact bytes as delivered, base64 (payload is a readable rendering when they are not valid JSON text).
ALTER TABLE raw.activities_quarantine ADD COLUMN IF NOT EXISTS raw_base64 VARCHAR;

-- Completeness attestation per 5-minute window (the API's integration guide, pattern 4): how many records the
-- window holds and the traversal that produced them (pages, first/last cursor, request id of the final page).
CREATE TABLE IF NOT EXISTS raw.activity_attestations (
    window_start        TIMESTAMPTZ NOT NULL,
    window_end          TIMESTAMPTZ NOT NULL,
    record_count        BIGINT NOT NULL,
    quarantined_count   BIGINT NOT NULL,
    traversal_start     TIMESTAMPTZ NOT NULL,
    traversal_end       TIMESTAMPTZ NOT NULL,
    traversal_pages     BIGINT NOT NULL,
    traversal_records   BIGINT NOT NULL,
    duplicates_dropped  BIGINT NOT NULL,
    first_cursor        VARCHAR,
    last_cursor         VARCHAR,
    final_request_id    VARCHAR,
    attested_at         TIMESTAMPTZ NOT NULL,
    run_id              VARCHAR NOT NULL
);

-- Enrichment, computed once per distinct value.
CREATE TABLE IF NOT EXISTS enrichment.ip_geolocation (
    ip               VARCHAR NOT NULL,
    ip_version       INTEGER,
    is_valid         BOOLEAN,
    is_private       BOOLEAN,
    is_reserved      BOOLEAN,
    found            BOOLEAN,
    country_iso      VARCHAR,
    country_name     VARCHAR,
    subdivision_iso  VARCHAR,
    subdivision_name VARCHAR,
    city             VARCHAR,
    latitude         DOUBLE,
    longitude        DOUBLE,
    accuracy_radius  INTEGER,
    geo_database     VARCHAR,
    enriched_at      TIMESTAMPTZ NOT NULL
);

CREATE TABLE IF NOT EXISTS enrichment.user_agents (
    user_agent       VARCHAR NOT NULL,
    browser_family   VARCHAR,
    browser_version  VARCHAR,
    os_family        VARCHAR,
    os_version       VARCHAR,
    device_family    VARCHAR,
    platform         VARCHAR,
    client_category  VARCHAR,
    client_name      VARCHAR,
    is_automated     BOOLEAN,
    enriched_at      TIMESTAMPTZ NOT NULL
);
-- which parser answered (useragent.parser_identity): a stored parse made by another one is redone once
ALTER TABLE enrichment.user_agents ADD COLUMN IF NOT EXISTS ua_parser VARCHAR;
"""

GEO_COLUMNS = ["ip", "ip_version", "is_valid", "is_private", "is_reserved", "found", "country_iso", "country_name",
               "subdivision_iso", "subdivision_name", "city", "latitude", "longitude", "accuracy_radius"]
UA_COLUMNS = ["user_agent", "browser_family", "browser_version", "os_family", "os_version", "device_family",
              "platform", "client_category", "client_name", "is_automated"]


def ensure_schema(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute(DDL)
