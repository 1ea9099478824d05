-- A PIPL Art. 47 deletion forgets more than the salt: the index's own record of which study
-- and which event an entry commits to (study UID and event fields) goes too, so that the
-- node itself can no longer link the entry. The tree is untouched (kind, time and
-- commitment stay), and nothing forgotten can be put back.
DROP TRIGGER ledger_entries_only_forget;
CREATE TRIGGER ledger_entries_only_forget BEFORE UPDATE ON ledger_entries
WHEN new.seq IS NOT old.seq OR new.kind IS NOT old.kind OR new.time IS NOT old.time
  OR new.commitment IS NOT old.commitment
  OR (new.study_uid IS NOT old.study_uid AND new.study_uid IS NOT NULL)
  OR (new.event IS NOT old.event AND new.event IS NOT '{}')
  OR new.salt IS NOT NULL
BEGIN
    SELECT RAISE(ABORT, 'ledger entries are append-only (only a deletion request may forget an entry''s salt, study and event)');
END;
