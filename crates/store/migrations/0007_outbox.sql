-- The routing outbox: one row per stored instance and destination AE that a routing rule
-- chose. Rows are written in the index transaction that stores the instance, so an
-- acknowledged instance is never stored without its routing (nor routed without being
-- stored). A worker claims due rows (`claimed_ms`, released at start-up), sends them and
-- deletes each one the peer accepted; a row that failed is retried with backoff
-- (`attempts`, `next_attempt_ms`, `last_error`), and one the peer refused stays as `failed`
-- until an operator puts it back in line (`lumen queue --retry-failed`). It replaces the
-- `outbound.sqlite` file of earlier versions, whose rows are imported once.
CREATE TABLE outbox (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    sop_uid          TEXT NOT NULL,
    series_uid       TEXT NOT NULL,
    study_uid        TEXT NOT NULL,
    destination      TEXT NOT NULL,              -- peer AE title
    origin           TEXT NOT NULL,              -- c-store | stow-rs | import | ai | report | retrieve | outbound.sqlite
    state            TEXT NOT NULL DEFAULT 'pending', -- pending | failed
    attempts         INTEGER NOT NULL DEFAULT 0,
    queued_ms        INTEGER NOT NULL,           -- ms since epoch
    next_attempt_ms  INTEGER NOT NULL,           -- ms since epoch (retry backoff)
    claimed_ms       INTEGER,                    -- set while a worker sends the row
    last_error       TEXT,
    UNIQUE (sop_uid, destination)
);
CREATE INDEX outbox_due ON outbox (next_attempt_ms) WHERE state = 'pending';
