-- Undo of V002: drops events, cursors and membership (their rows are lost).
DROP INDEX members_user;
DROP TABLE members;
DROP TABLE cursors;
DROP TABLE events;
