CREATE TABLE event_counters (
    conversation_id text   PRIMARY KEY,
    last_event_id   bigint NOT NULL
);
CREATE TABLE events (
    conversation_id text    NOT NULL,
    event_id        bigint  NOT NULL,  -- 1, 2, … per conversation
    sync_type       text    NOT NULL,
    msg_id          bigint  NOT NULL,
    seq             bigint  NOT NULL,
    actor_id        text    NOT NULL,
    timestamp       bigint  NOT NULL,  -- ms since the Unix epoch
    for_user        text,              -- NULL: visible to every member
    payload         json    NOT NULL,
    PRIMARY KEY (conversation_id, event_id)
);
CREATE TABLE cursors (
    user_id         text   NOT NULL,
    device_id       text   NOT NULL,
    conversation_id text   NOT NULL,
    seq             bigint NOT NULL DEFAULT 0,
    event_id        bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, device_id, conversation_id)
);
CREATE TABLE members (
    conversation_id text NOT NULL,
    user_id         text NOT NULL,
    PRIMARY KEY (conversation_id, user_id)
);
CREATE INDEX members_user ON members (user_id, conversation_id);
