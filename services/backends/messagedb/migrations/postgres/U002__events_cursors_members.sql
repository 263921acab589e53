-- Undo of V002: drops events, cursors and membership (their rows are lost).
DROP TABLE members;
DROP TABLE cursors;
DROP TABLE events;
DROP TABLE event_counters;
