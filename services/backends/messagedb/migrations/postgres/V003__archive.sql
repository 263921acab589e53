-- The L1 side of the L2 archive (flarectl archive, services/archive/). The manifests in the
-- object store are the record of what was archived; these tables are their index, so sync
-- finds a conversation's archived seq ranges with one lookup and a killed run can resume.
-- An archived message leaves `messages` but keeps its message_keys row: seq allocation and
-- the uniqueness guards hold across L1 and L2.
CREATE TABLE archive_chunks (
    chunk_id     text   PRIMARY KEY,
    state        text   NOT NULL,  -- pending (being written) | archived | restored
    object_key   text   NOT NULL,
    manifest_key text   NOT NULL,
    row_count    bigint NOT NULL,
    sha256       text   NOT NULL DEFAULT '',
    codec        text   NOT NULL,
    before_ms    bigint NOT NULL,  -- the run's cutoff: every row is older
    created_at   bigint NOT NULL
);
CREATE TABLE archive_ranges (
    conversation_id text   NOT NULL,
    min_seq         bigint NOT NULL,
    max_seq         bigint NOT NULL,
    chunk_id        text   NOT NULL REFERENCES archive_chunks (chunk_id),
    row_count       bigint NOT NULL,
    min_created_at  bigint NOT NULL,
    max_created_at  bigint NOT NULL,
    PRIMARY KEY (conversation_id, min_seq, chunk_id)
);
CREATE INDEX archive_ranges_chunk ON archive_ranges (chunk_id);
