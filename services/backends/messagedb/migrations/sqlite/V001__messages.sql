-- Messages (L1). The uniqueness guards live in the schema so they hold whoever writes.
CREATE TABLE messages (
    msg_id          INTEGER PRIMARY KEY,
    conversation_id TEXT    NOT NULL,
    seq             INTEGER NOT NULL,
    sender_id       TEXT    NOT NULL,
    sender_device   TEXT    NOT NULL,
    client_msg_id   TEXT    NOT NULL,
    content_type    TEXT    NOT NULL,
    body            TEXT    NOT NULL,  -- JSON
    created_at      INTEGER NOT NULL,  -- ms since the Unix epoch
    flags           INTEGER NOT NULL DEFAULT 0,
    UNIQUE (conversation_id, seq),
    UNIQUE (sender_id, client_msg_id)
);
CREATE INDEX messages_created_at ON messages (created_at);
CREATE INDEX messages_sender_created_at ON messages (sender_id, created_at);
