-- squawk-ignore-file require-concurrent-index-creation
-- (messages is created in this file, inside the DO block where squawk cannot see it.)
-- Messages (L1), split by created_at: a TimescaleDB hypertable when the extension is
-- available, otherwise native range partitions (one per month, made ahead of the clock by
-- the adapter's start, messagedb/postgres/partitions.py) plus a default partition.
-- A unique index on a partitioned table must contain the partition column, so the guards
-- the store relies on live in the small unpartitioned message_keys table, written in the
-- same transaction as the row; it also answers max seq and point lookups.
CREATE TABLE messagedb_meta (key text PRIMARY KEY, value text NOT NULL);

CREATE TABLE message_keys (
    msg_id          bigint      PRIMARY KEY,
    conversation_id text        NOT NULL,
    seq             bigint      NOT NULL,
    sender_id       text        NOT NULL,
    client_msg_id   text        NOT NULL,
    created_at      timestamptz NOT NULL,  -- locates the row's partition
    CONSTRAINT message_keys_conversation_seq UNIQUE (conversation_id, seq),
    CONSTRAINT message_keys_sender_client_msg UNIQUE (sender_id, client_msg_id)
);

DO $migration$
DECLARE
    columns text := $columns$
        msg_id          bigint      NOT NULL,
        conversation_id text        NOT NULL,
        seq             bigint      NOT NULL,
        sender_id       text        NOT NULL,
        sender_device   text        NOT NULL,
        client_msg_id   text        NOT NULL,
        content_type    text        NOT NULL,
        body            json        NOT NULL,  -- json, not jsonb: kept as written (\u0000 included)
        created_at      timestamptz NOT NULL,
        flags           integer     NOT NULL DEFAULT 0
    $columns$;
BEGIN
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb') THEN
        EXECUTE 'CREATE EXTENSION IF NOT EXISTS timescaledb';
        EXECUTE format('CREATE TABLE messages (%s)', columns);
        EXECUTE $q$SELECT create_hypertable('messages', 'created_at', chunk_time_interval => interval '7 days')$q$;
        INSERT INTO messagedb_meta (key, value) VALUES ('storage_mode', 'timescaledb');
    ELSE
        EXECUTE format('CREATE TABLE messages (%s) PARTITION BY RANGE (created_at)', columns);
        EXECUTE 'CREATE TABLE messages_default PARTITION OF messages DEFAULT';
        INSERT INTO messagedb_meta (key, value) VALUES ('storage_mode', 'native-partitions');
    END IF;
END
$migration$;

-- The table is new and empty here, so plain (non-concurrent) index builds lock nothing anyone waits on.
CREATE INDEX messages_conversation_seq ON messages (conversation_id, seq);
CREATE INDEX messages_created_conversation ON messages (created_at, conversation_id);
CREATE INDEX messages_sender_created ON messages (sender_id, created_at);
CREATE INDEX messages_msg_id ON messages (msg_id);
