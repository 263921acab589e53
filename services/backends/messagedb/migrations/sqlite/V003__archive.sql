-- The L1 side of the L2 archive (flarectl archive, services/archive/). The manifests in the
-- object store are the record of what was archived; these tables are their index, so sync
-- finds a conversation's archived seq ranges with one lookup and a killed run can resume.
CREATE TABLE archive_chunks (
    chunk_id     TEXT    PRIMARY KEY,
    state        TEXT    NOT NULL,  -- pending (being written) | archived | restored
    object_key   TEXT    NOT NULL,
    manifest_key TEXT    NOT NULL,
    row_count    INTEGER NOT NULL,
    sha256       TEXT    NOT NULL DEFAULT '',
    codec        TEXT    NOT NULL,
    before_ms    INTEGER NOT NULL,  -- the run's cutoff: every row is older
    created_at   INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE archive_ranges (
    conversation_id TEXT    NOT NULL,
    min_seq         INTEGER NOT NULL,
    max_seq         INTEGER NOT NULL,
    chunk_id        TEXT    NOT NULL REFERENCES archive_chunks (chunk_id),
    row_count       INTEGER NOT NULL,
    min_created_at  INTEGER NOT NULL,
    max_created_at  INTEGER NOT NULL,
    PRIMARY KEY (conversation_id, min_seq, chunk_id)
) WITHOUT ROWID;
CREATE INDEX archive_ranges_chunk ON archive_ranges (chunk_id);

-- An archived message leaves `messages`, but its keys stay: seq allocation (max seq) and the
-- uniqueness guards must hold across L1 and L2, as PostgreSQL's message_keys does.
CREATE TABLE archived_keys (
    msg_id          INTEGER PRIMARY KEY,
    conversation_id TEXT    NOT NULL,
    seq             INTEGER NOT NULL,
    sender_id       TEXT    NOT NULL,
    client_msg_id   TEXT    NOT NULL,
    chunk_id        TEXT    NOT NULL,
    UNIQUE (conversation_id, seq),
    UNIQUE (sender_id, client_msg_id)
);
CREATE TRIGGER messages_guard_archived BEFORE INSERT ON messages
BEGIN
    -- The same msg_id again (a re-consumed record): skipped, as for a row still in L1.
    SELECT RAISE(IGNORE) WHERE EXISTS (SELECT 1 FROM archived_keys WHERE msg_id = NEW.msg_id);
    SELECT RAISE(ABORT, 'UNIQUE constraint failed: archived_keys.conversation_id, archived_keys.seq')
    WHERE EXISTS (SELECT 1 FROM archived_keys WHERE conversation_id = NEW.conversation_id AND seq = NEW.seq);
    SELECT RAISE(ABORT, 'UNIQUE constraint failed: archived_keys.sender_id, archived_keys.client_msg_id')
    WHERE EXISTS (SELECT 1 FROM archived_keys WHERE sender_id = NEW.sender_id AND client_msg_id = NEW.client_msg_id);
END;
