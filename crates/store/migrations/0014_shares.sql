-- Sharing between consortium nodes (issue 13).
--
-- `shares`: the studies this node (the origin) shares with members. A share is revoked,
-- never deleted; `reported_by` names the member whose signed report came back.
CREATE TABLE shares (
    id            TEXT PRIMARY KEY NOT NULL,
    study_uid     TEXT NOT NULL,
    to_member     TEXT NOT NULL,
    purpose       TEXT NOT NULL,
    consent       TEXT NOT NULL,             -- consent | emergency | recorded-at-registration
    status        TEXT NOT NULL,             -- active | revoked
    created_by    TEXT NOT NULL,
    org           TEXT NOT NULL,             -- the study's organisation
    created_ms    INTEGER NOT NULL,
    revoked_by    TEXT,
    revoked_ms    INTEGER,
    reported_by   TEXT,                      -- the reading member's name
    reported_ms   INTEGER
);
CREATE INDEX shares_study ON shares (study_uid);

-- `grants`: the studies members shared with this node (the recipient). While a grant is
-- active the study is served to this node's users; once revoked its instances are purged.
CREATE TABLE grants (
    origin        TEXT NOT NULL,             -- the origin member's id
    share_id      TEXT NOT NULL,             -- the share's id at the origin
    study_uid     TEXT NOT NULL,
    origin_name   TEXT NOT NULL,
    purpose       TEXT NOT NULL,
    consent       TEXT NOT NULL,
    status        TEXT NOT NULL,             -- active | revoked
    created_ms    INTEGER NOT NULL,
    checked_ms    INTEGER NOT NULL,          -- last confirmed active by the origin
    revoked_ms    INTEGER,
    PRIMARY KEY (origin, share_id)
);
CREATE INDEX grants_study ON grants (study_uid);

-- `share_outbox`: what this node owes members: a share's notice and instances, a
-- revocation, a signed report's objects. Sent by the share worker, retried with backoff,
-- deleted once the member accepted it; `failed` when the member refused it.
CREATE TABLE share_outbox (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    member           TEXT NOT NULL,
    kind             TEXT NOT NULL,          -- notice | instance | revoke | report
    share_id         TEXT NOT NULL,
    study_uid        TEXT NOT NULL,
    sop_uid          TEXT NOT NULL DEFAULT '',
    priority         INTEGER NOT NULL,       -- lower first: notices, CT, others
    state            TEXT NOT NULL DEFAULT 'pending', -- pending | failed
    attempts         INTEGER NOT NULL DEFAULT 0,
    queued_ms        INTEGER NOT NULL,
    next_attempt_ms  INTEGER NOT NULL,
    claimed_ms       INTEGER,
    last_error       TEXT,
    UNIQUE (member, kind, share_id, sop_uid)
);
CREATE INDEX share_outbox_due ON share_outbox (priority, id) WHERE state = 'pending';
