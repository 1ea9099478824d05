-- Patient cloud film (云胶片, issue 13): short-lived links that open a read-only viewer of one
-- study and its signed report without an account. The link's token is a secret handed out
-- once; the index keeps only its SHA-256 (as it does for session tokens). `id` is a random,
-- non-secret name of the link (for listing, revoking and the audit trail).
CREATE TABLE patient_links (
    id         TEXT    PRIMARY KEY NOT NULL,
    token_hash TEXT    NOT NULL UNIQUE,
    study_uid  TEXT    NOT NULL,
    org        TEXT    NOT NULL,
    created_by TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER,
    revoked_by TEXT,
    CHECK (expires_at > created_at)
);
CREATE INDEX patient_links_study ON patient_links (study_uid, created_at);

-- A link is never deleted; the only changes allowed are its revocation, once, and an
-- earlier expiry (a link's life is shortened, never extended).
CREATE TRIGGER patient_links_no_delete BEFORE DELETE ON patient_links BEGIN
    SELECT RAISE(ABORT, 'patient links are kept (revoke them instead)');
END;
CREATE TRIGGER patient_links_only_revoke BEFORE UPDATE ON patient_links
WHEN new.id IS NOT old.id OR new.token_hash IS NOT old.token_hash
  OR new.study_uid IS NOT old.study_uid OR new.org IS NOT old.org
  OR new.created_by IS NOT old.created_by OR new.created_at IS NOT old.created_at
  OR new.expires_at > old.expires_at
  OR (old.revoked_at IS NOT NULL AND (new.revoked_at IS NOT old.revoked_at
      OR new.revoked_by IS NOT old.revoked_by))
  OR (new.revoked_at IS NULL AND new.revoked_by IS NOT NULL) BEGIN
    SELECT RAISE(ABORT, 'a patient link can only be revoked once or expire earlier');
END;
