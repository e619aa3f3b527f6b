-- Chats and messages of the chat windows (pipeline/warehouse/chats.py loads these by name).

-- name: ddl
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

-- name: marked_hard_deleted
-- A 404 keeps the stored row and marks it hard-deleted.
UPDATE raw.chats c SET hard_deleted_at = n.hard_deleted_at, fetched_at = n.fetched_at, run_id = n.run_id
FROM new_chats n WHERE c.id = n.id AND n.hard_deleted_at IS NOT NULL AND c.hard_deleted_at IS NULL;

-- name: new_gone_chats
SELECT count(*) FROM new_chats n
WHERE n.hard_deleted_at IS NOT NULL AND NOT EXISTS (SELECT 1 FROM raw.chats c WHERE c.id = n.id);

-- name: changed_chats
-- A chat row is replaced only when its content changed.
DELETE FROM raw.chats c USING new_chats n
WHERE c.id = n.id AND n.hard_deleted_at IS NULL AND c.content_hash <> n.content_hash;

-- name: inserted_chats
INSERT INTO raw.chats SELECT * FROM new_chats n
WHERE NOT EXISTS (SELECT 1 FROM raw.chats c WHERE c.id = n.id);

-- name: stage_stale_messages
-- Messages of every chat fetched in full: the API's current set replaces ours, changed rows only.
CREATE OR REPLACE TEMP TABLE fetched_chat_ids AS
SELECT id FROM new_chats WHERE hard_deleted_at IS NULL;
CREATE OR REPLACE TEMP TABLE stale_messages AS
SELECT m.id FROM raw.chat_messages m JOIN fetched_chat_ids f ON m.chat_id = f.id
WHERE NOT EXISTS (SELECT 1 FROM new_messages n WHERE n.id = m.id AND n.content_hash = m.content_hash);

-- name: stale_messages
SELECT count(*) FROM stale_messages;

-- name: delete_stale_messages
DELETE FROM raw.chat_messages WHERE id IN (SELECT id FROM stale_messages);
DELETE FROM restricted.chat_message_text WHERE message_id IN (SELECT id FROM stale_messages);

-- name: inserted_messages
INSERT INTO raw.chat_messages SELECT * FROM new_messages n
WHERE NOT EXISTS (SELECT 1 FROM raw.chat_messages m WHERE m.id = n.id);

-- name: inserted_texts
INSERT INTO restricted.chat_message_text SELECT * FROM new_texts t
WHERE NOT EXISTS (SELECT 1 FROM restricted.chat_message_text r WHERE r.message_id = t.message_id);

-- name: delete_all_texts
-- Text storage is off: no text is kept, also none stored before.
DELETE FROM restricted.chat_message_text;

-- name: insert_quarantine
INSERT INTO raw.chats_quarantine
SELECT $start, $end, q.reason, q.chat_id, q.payload, q.payload_hash, $now, $run_id, q.raw_base64
FROM new_quarantine q
WHERE NOT EXISTS (SELECT 1 FROM raw.chats_quarantine r WHERE r.payload_hash = q.payload_hash);

-- name: drop_staging
DROP TABLE fetched_chat_ids;
DROP TABLE stale_messages;
