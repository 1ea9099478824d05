-- The ledger's entries (issue 12): one row per recorded event, appended in the transaction
-- of the event itself. `seq` is the entry's index in the Merkle tree (0-based, gap-free:
-- each insert takes max + 1 inside its transaction). The published entry is
-- "lumen/v1 <kind> <time> <hex commitment>"; the commitment is SHA-256(salt || canonical
-- event). The event's fields and the salt stay here, never on the log; deleting the salt
-- (PIPL Art. 47) makes the entry unlinkable without changing the tree.
CREATE TABLE ledger_entries (
    seq        INTEGER PRIMARY KEY,
    kind       TEXT    NOT NULL,
    time       INTEGER NOT NULL,
    commitment BLOB    NOT NULL CHECK (length(commitment) = 32),
    salt       BLOB             CHECK (salt IS NULL OR length(salt) = 32),
    study_uid  TEXT,
    event      TEXT    NOT NULL
);
CREATE INDEX ledger_entries_study ON ledger_entries (study_uid);

CREATE TRIGGER ledger_entries_no_delete BEFORE DELETE ON ledger_entries BEGIN
    SELECT RAISE(ABORT, 'ledger entries are append-only');
END;
-- The only change allowed is forgetting the salt.
CREATE TRIGGER ledger_entries_only_forget BEFORE UPDATE ON ledger_entries
WHEN new.seq IS NOT old.seq OR new.kind IS NOT old.kind OR new.time IS NOT old.time
  OR new.commitment IS NOT old.commitment OR new.study_uid IS NOT old.study_uid
  OR new.event IS NOT old.event OR new.salt IS NOT NULL BEGIN
    SELECT RAISE(ABORT, 'ledger entries are append-only (only the salt may be deleted)');
END;
