CREATE TABLE events (
    conversation_id TEXT    NOT NULL,
    event_id        INTEGER NOT NULL,  -- 1, 2, … per conversation
    sync_type       TEXT    NOT NULL,
    msg_id          INTEGER NOT NULL,
    seq             INTEGER NOT NULL,
    actor_id        TEXT    NOT NULL,
    timestamp       INTEGER NOT NULL,
    for_user        TEXT,              -- NULL: visible to every member
    payload         TEXT    NOT NULL,  -- JSON object
    PRIMARY KEY (conversation_id, event_id)
) WITHOUT ROWID;
CREATE TABLE cursors (
    user_id         TEXT    NOT NULL,
    device_id       TEXT    NOT NULL,
    conversation_id TEXT    NOT NULL,
    seq             INTEGER NOT NULL DEFAULT 0,
    event_id        INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, device_id, conversation_id)
) WITHOUT ROWID;
CREATE TABLE members (
    conversation_id TEXT NOT NULL,
    user_id         TEXT NOT NULL,
    PRIMARY KEY (conversation_id, user_id)
) WITHOUT ROWID;
CREATE INDEX members_user ON members (user_id, conversation_id);
