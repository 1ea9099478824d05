-- The radiologist's review and report (web app). The AI's original finding is kept beside the
-- doctor's version; every edit appends a history row; a signed report and its addenda are
-- immutable (triggers refuse UPDATE and DELETE), and a signed study refuses review changes.
CREATE TABLE finding_reviews (
    study_uid   TEXT NOT NULL,
    finding_id  TEXT NOT NULL,               -- ai-<n> | dr-<n>
    origin      TEXT NOT NULL,               -- ai | doctor
    status      TEXT NOT NULL,               -- pending | accepted | rejected | corrected | added
    ai          TEXT,                        -- the AI's original measures (JSON), never changed
    current     TEXT NOT NULL,               -- the doctor's version (JSON)
    note        TEXT,
    edited_by   TEXT,
    edited_at   INTEGER,                     -- ms since epoch
    PRIMARY KEY (study_uid, finding_id)
);

CREATE TABLE finding_history (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    study_uid   TEXT NOT NULL,
    finding_id  TEXT NOT NULL,
    status      TEXT NOT NULL,
    current     TEXT NOT NULL,
    note        TEXT,
    actor       TEXT NOT NULL,
    at          INTEGER NOT NULL
);
CREATE INDEX finding_history_finding ON finding_history(study_uid, finding_id);

-- One row per study once a doctor has touched it: the working draft and the signature state.
CREATE TABLE reports (
    study_uid   TEXT PRIMARY KEY NOT NULL,
    status      TEXT NOT NULL,               -- draft | signed
    lang        TEXT NOT NULL,
    sections    TEXT,                        -- edited draft (JSON), NULL while the AI draft stands
    lung_rads   TEXT,                        -- highest category of the reviewed findings
    edited_by   TEXT,
    updated_at  INTEGER NOT NULL,
    pending     TEXT                         -- a signature or addendum being stored (JSON)
);

-- Signed versions: the report itself (kind 'report', version 1) and each addendum.
CREATE TABLE report_versions (
    study_uid     TEXT NOT NULL,
    version       INTEGER NOT NULL,
    kind          TEXT NOT NULL,             -- report | addendum
    lang          TEXT NOT NULL,
    content       TEXT NOT NULL,             -- JSON: sections (report) or {"text"} (addendum)
    signer_id     TEXT NOT NULL,
    signer        TEXT NOT NULL,
    signed_at     INTEGER NOT NULL,          -- ms since epoch
    pdf_sop_uid   TEXT NOT NULL,
    sr_sop_uid    TEXT NOT NULL,
    PRIMARY KEY (study_uid, version)
);

CREATE TRIGGER finding_reviews_ai_kept BEFORE UPDATE ON finding_reviews
WHEN OLD.ai IS NOT NEW.ai OR OLD.origin IS NOT NEW.origin BEGIN
    SELECT RAISE(ABORT, 'the AI original of a finding is never changed');
END;
CREATE TRIGGER finding_reviews_signed_insert BEFORE INSERT ON finding_reviews
WHEN EXISTS (SELECT 1 FROM reports WHERE study_uid = NEW.study_uid AND status = 'signed') BEGIN
    SELECT RAISE(ABORT, 'report is signed');
END;
CREATE TRIGGER finding_reviews_signed_update BEFORE UPDATE ON finding_reviews
WHEN EXISTS (SELECT 1 FROM reports WHERE study_uid = OLD.study_uid AND status = 'signed') BEGIN
    SELECT RAISE(ABORT, 'report is signed');
END;
CREATE TRIGGER finding_reviews_no_delete BEFORE DELETE ON finding_reviews BEGIN
    SELECT RAISE(ABORT, 'finding reviews are never deleted');
END;
CREATE TRIGGER finding_history_no_update BEFORE UPDATE ON finding_history BEGIN
    SELECT RAISE(ABORT, 'finding history is append-only');
END;
CREATE TRIGGER finding_history_no_delete BEFORE DELETE ON finding_history BEGIN
    SELECT RAISE(ABORT, 'finding history is append-only');
END;
CREATE TRIGGER reports_signed_final BEFORE UPDATE ON reports
WHEN OLD.status = 'signed' AND (NEW.status IS NOT 'signed' OR NEW.sections IS NOT OLD.sections
    OR NEW.lang IS NOT OLD.lang OR NEW.lung_rads IS NOT OLD.lung_rads) BEGIN
    SELECT RAISE(ABORT, 'report is signed');
END;
CREATE TRIGGER reports_signed_no_delete BEFORE DELETE ON reports WHEN OLD.status = 'signed' BEGIN
    SELECT RAISE(ABORT, 'report is signed');
END;
CREATE TRIGGER report_versions_no_update BEFORE UPDATE ON report_versions BEGIN
    SELECT RAISE(ABORT, 'signed report versions are immutable');
END;
CREATE TRIGGER report_versions_no_delete BEFORE DELETE ON report_versions BEGIN
    SELECT RAISE(ABORT, 'signed report versions are immutable');
END;
