-- Accounts, organisations, sessions and the audit trail (issue 11).

-- The organisations a node serves. The node's own one is created at open (StoreConfig).
CREATE TABLE orgs (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

-- Users: one organisation and one role each; the password as an argon2id PHC string.
CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    role TEXT NOT NULL,
    org TEXT NOT NULL REFERENCES orgs(id),
    password_hash TEXT NOT NULL,
    must_change_password INTEGER NOT NULL DEFAULT 0,
    disabled INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    password_changed_at INTEGER NOT NULL
);

-- Sessions: a login's token (kept as its SHA-256 only) for the cookie and the bearer
-- header, with the CSRF token of the cookie's state-changing requests.
CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY NOT NULL,
    user_id INTEGER NOT NULL REFERENCES users(id),
    csrf TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE INDEX sessions_user ON sessions(user_id);

-- Every study belongs to one organisation ('' until the store fills in the node's own at
-- open, for studies indexed before accounts existed).
ALTER TABLE studies ADD COLUMN org TEXT NOT NULL DEFAULT '';
CREATE INDEX studies_org_order ON studies(org, study_date, study_time, created_at, study_uid);

-- Studies per organisation, kept by triggers: the worklist's unfiltered total.
CREATE TABLE org_counts (org TEXT PRIMARY KEY NOT NULL, n INTEGER NOT NULL);
INSERT INTO org_counts (org, n) SELECT org, count(*) FROM studies GROUP BY org;
CREATE TRIGGER studies_org_count_insert AFTER INSERT ON studies BEGIN
    INSERT INTO org_counts (org, n) VALUES (new.org, 1)
        ON CONFLICT(org) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER studies_org_count_delete AFTER DELETE ON studies BEGIN
    UPDATE org_counts SET n = n - 1 WHERE org = old.org;
END;
CREATE TRIGGER studies_org_count_update AFTER UPDATE OF org ON studies
WHEN old.org <> new.org BEGIN
    UPDATE org_counts SET n = n - 1 WHERE org = old.org;
    INSERT INTO org_counts (org, n) VALUES (new.org, 1)
        ON CONFLICT(org) DO UPDATE SET n = n + 1;
END;

-- The audit trail: append-only. Rows are never changed, and removed only once older than
-- six months (the minimum retention of 网络安全法 Art. 21), by the retention sweep.
CREATE TABLE audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    time TEXT NOT NULL,
    time_ms INTEGER NOT NULL,
    user TEXT NOT NULL,
    role TEXT NOT NULL,
    org TEXT NOT NULL,
    action TEXT NOT NULL,
    outcome TEXT NOT NULL,
    channel TEXT NOT NULL,
    source TEXT,
    study_uid TEXT,
    series_uid TEXT,
    patient_id TEXT,
    patient_name TEXT,
    detail TEXT NOT NULL
);
CREATE INDEX audit_study ON audit(study_uid, seq);
CREATE INDEX audit_user ON audit(user, seq);
CREATE INDEX audit_time ON audit(time_ms);
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit BEGIN
    SELECT RAISE(ABORT, 'the audit trail is append-only');
END;
CREATE TRIGGER audit_no_early_delete BEFORE DELETE ON audit
WHEN old.time_ms > (CAST(strftime('%s', 'now') AS INTEGER) - 183 * 86400) * 1000 BEGIN
    SELECT RAISE(ABORT, 'audit entries are kept at least six months');
END;

-- How far the audit trail has been forwarded to the hospital's audit repository.
CREATE TABLE audit_forwarded (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL
);
