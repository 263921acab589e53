-- Groups with an owner, roles, a join policy and a history rule (docs/protocol.md §9). The
-- `groups` row outlives the last member, so a group id can never be taken over with its
-- history; `members` learns each member's role and what it may see (history "joined").
CREATE TABLE groups (
    conversation_id text   PRIMARY KEY,
    join_policy     text   NOT NULL,  -- invite | open
    history         text   NOT NULL,  -- joined | shared
    created_at      bigint NOT NULL
);
ALTER TABLE members ADD COLUMN role text NOT NULL DEFAULT 'member';
ALTER TABLE members ADD COLUMN visible_after_seq bigint NOT NULL DEFAULT 0;
ALTER TABLE members ADD COLUMN visible_after_event bigint NOT NULL DEFAULT 0;
ALTER TABLE members ADD COLUMN joined_at bigint NOT NULL DEFAULT 0;
-- Groups made before roles existed: invite-only, shared history, every member an admin.
INSERT INTO groups (conversation_id, join_policy, history, created_at)
    SELECT DISTINCT conversation_id, 'invite', 'shared', 0 FROM members WHERE conversation_id LIKE 'group:%';
UPDATE members SET role = 'admin' WHERE conversation_id LIKE 'group:%';
