-- The archive index on PostgreSQL: the schema of the SQLite migrations 0001..0025
-- (crates/store/migrations) as it stands after all of them, written for PostgreSQL.
-- The semantics are the same: the column names and meanings, the counters kept by triggers,
-- and the append-only and immutability rules (audit trail, signed reports, ledger, patient
-- links) enforced by the database itself.
--
-- Differences of form only:
-- * integers are BIGINT (the store reads every integer as i64), flags 0/1 as in SQLite;
--   row ids are identity columns; blobs are BYTEA; JSON documents are TEXT, as in SQLite
--   (read with `::jsonb` where SQL looks inside them).
-- * text columns that queries compare, range-scan or sort are COLLATE "C": byte order, as
--   SQLite's BINARY collation, so that listing order and the pushdown's prefix ranges
--   (query_sql.rs) mean the same on both, whatever the database's locale.
-- * the audit column `user` is a reserved word in PostgreSQL: SQL names it "user" (quoted,
--   which SQLite accepts too).

CREATE TABLE studies (
    study_uid      TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    patient_id     TEXT COLLATE "C" NOT NULL,
    study_date     TEXT COLLATE "C" NOT NULL,
    attrs          TEXT NOT NULL,
    modalities     TEXT COLLATE "C" NOT NULL DEFAULT '',
    sop_classes    TEXT COLLATE "C" NOT NULL DEFAULT '',
    num_series     BIGINT NOT NULL DEFAULT 0,
    num_instances  BIGINT NOT NULL DEFAULT 0,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    pn_alphabetic  TEXT COLLATE "C",
    pn_ideographic TEXT COLLATE "C",
    pn_phonetic    TEXT COLLATE "C",
    accession      TEXT COLLATE "C",
    study_time     TEXT COLLATE "C" NOT NULL DEFAULT '',
    description    TEXT COLLATE "C",
    ai_state       TEXT COLLATE "C" NOT NULL DEFAULT 'none',
    ai_lung_rads   TEXT COLLATE "C",
    org            TEXT COLLATE "C" NOT NULL DEFAULT ''
);
CREATE INDEX studies_patient ON studies(patient_id);
CREATE INDEX studies_pn_alphabetic ON studies(pn_alphabetic);
CREATE INDEX studies_pn_ideographic ON studies(pn_ideographic);
CREATE INDEX studies_pn_phonetic ON studies(pn_phonetic);
CREATE INDEX studies_accession ON studies(accession);
CREATE INDEX studies_order ON studies(study_date, study_time, created_at, study_uid);
CREATE INDEX studies_ai ON studies(ai_state);
CREATE INDEX studies_org_order ON studies(org, study_date, study_time, created_at, study_uid);

CREATE TABLE series (
    series_uid     TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    study_uid      TEXT COLLATE "C" NOT NULL REFERENCES studies(study_uid),
    modality       TEXT COLLATE "C" NOT NULL,
    attrs          TEXT NOT NULL,
    num_instances  BIGINT NOT NULL DEFAULT 0,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);
CREATE INDEX series_study ON series(study_uid);
CREATE INDEX series_order ON series(created_at);

CREATE TABLE instances (
    sop_uid              TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    series_uid           TEXT COLLATE "C" NOT NULL REFERENCES series(series_uid),
    study_uid            TEXT COLLATE "C" NOT NULL,
    sop_class_uid        TEXT COLLATE "C" NOT NULL,
    transfer_syntax_uid  TEXT NOT NULL,
    instance_number      BIGINT,
    frames               BIGINT NOT NULL,
    path                 TEXT COLLATE "C" NOT NULL,
    size                 BIGINT NOT NULL,
    content_hash         TEXT NOT NULL,
    attrs                TEXT NOT NULL,
    metadata             TEXT NOT NULL,
    received_at          BIGINT NOT NULL,
    synced               BIGINT NOT NULL DEFAULT 1
);
-- Instances without a number come first, as in SQLite (the archive's listing order).
CREATE INDEX instances_series ON instances(series_uid, instance_number NULLS FIRST, sop_uid);
CREATE INDEX instances_study ON instances(study_uid);
CREATE INDEX instances_unsynced ON instances(synced) WHERE synced = 0;

CREATE TABLE ai_jobs (
    series_uid        TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    study_uid         TEXT COLLATE "C" NOT NULL,
    state             TEXT NOT NULL,              -- waiting | running | done | failed | skipped
    attempts          BIGINT NOT NULL DEFAULT 0,
    last_instance_at  BIGINT NOT NULL,
    not_before        BIGINT NOT NULL DEFAULT 0,
    reason            TEXT,
    result            TEXT,
    updated_at        BIGINT NOT NULL,
    lung_rads         TEXT COLLATE "C"
);
CREATE INDEX ai_jobs_study ON ai_jobs(study_uid);
CREATE INDEX ai_jobs_state ON ai_jobs(state);

-- Marker table of the SQLite backfill (0006); a PostgreSQL index starts with the columns.
CREATE TABLE index_backfill (name TEXT PRIMARY KEY NOT NULL);

-- The study's modalities and SOP classes, backslash-joined in byte order (SQLite's
-- group_concat over an ordered DISTINCT subquery).
CREATE FUNCTION lumen_study_modalities(uid TEXT) RETURNS TEXT LANGUAGE sql STABLE AS $$
    SELECT coalesce(string_agg(m, '\' ORDER BY m), '') FROM
        (SELECT DISTINCT modality AS m FROM series WHERE study_uid = uid AND modality <> '') d
$$;
CREATE FUNCTION lumen_study_sop_classes(uid TEXT) RETURNS TEXT LANGUAGE sql STABLE AS $$
    SELECT coalesce(string_agg(c, '\' ORDER BY c), '') FROM
        (SELECT DISTINCT sop_class_uid AS c FROM instances WHERE study_uid = uid) d
$$;
-- Recounts a study from its rows (updates and deletes: rare).
CREATE FUNCTION lumen_recount_study(uid TEXT) RETURNS void LANGUAGE sql AS $$
    UPDATE studies SET
        num_series = (SELECT count(*) FROM series WHERE series.study_uid = uid),
        num_instances = (SELECT count(*) FROM instances WHERE instances.study_uid = uid),
        modalities = lumen_study_modalities(uid),
        sop_classes = lumen_study_sop_classes(uid)
     WHERE study_uid = uid
$$;

-- Counters kept incrementally on insert (migration 0006), recounted on update and delete.
CREATE FUNCTION instances_counters_insert() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    series_modality TEXT;
BEGIN
    UPDATE series SET num_instances = num_instances + 1 WHERE series_uid = NEW.series_uid;
    SELECT modality INTO series_modality FROM series WHERE series_uid = NEW.series_uid;
    UPDATE studies SET
        num_instances = num_instances + 1,
        num_series = num_series + (SELECT count(*) FROM series
            WHERE series_uid = NEW.series_uid AND num_instances = 1),
        modalities = CASE
            WHEN strpos('\' || modalities || '\', '\' || series_modality || '\') > 0 THEN modalities
            ELSE lumen_study_modalities(NEW.study_uid) END,
        sop_classes = CASE
            WHEN strpos('\' || sop_classes || '\', '\' || NEW.sop_class_uid || '\') > 0 THEN sop_classes
            ELSE lumen_study_sop_classes(NEW.study_uid) END
     WHERE study_uid = NEW.study_uid;
    RETURN NULL;
END $$;
CREATE TRIGGER instances_counters_insert AFTER INSERT ON instances
    FOR EACH ROW EXECUTE FUNCTION instances_counters_insert();

CREATE FUNCTION instances_counters_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE series SET num_instances =
        (SELECT count(*) FROM instances WHERE instances.series_uid = series.series_uid)
     WHERE series_uid IN (OLD.series_uid, NEW.series_uid);
    PERFORM lumen_recount_study(OLD.study_uid);
    IF NEW.study_uid <> OLD.study_uid THEN
        PERFORM lumen_recount_study(NEW.study_uid);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER instances_counters_update AFTER UPDATE OF series_uid, study_uid, sop_class_uid
    ON instances FOR EACH ROW EXECUTE FUNCTION instances_counters_update();

CREATE FUNCTION instances_counters_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE series SET num_instances =
        (SELECT count(*) FROM instances WHERE series_uid = OLD.series_uid)
     WHERE series_uid = OLD.series_uid;
    PERFORM lumen_recount_study(OLD.study_uid);
    RETURN NULL;
END $$;
CREATE TRIGGER instances_counters_delete AFTER DELETE ON instances
    FOR EACH ROW EXECUTE FUNCTION instances_counters_delete();

-- A study's AI state from its jobs, the rule of lumen_model::ai::AiState::of_jobs.
CREATE VIEW study_ai AS
SELECT study_uid,
       CASE WHEN count(*) FILTER (WHERE state = 'running') > 0 THEN 'running'
            WHEN count(*) FILTER (WHERE state = 'waiting') > 0 THEN 'queued'
            WHEN count(*) FILTER (WHERE state = 'done') > 0 THEN 'done'
            WHEN count(*) FILTER (WHERE state = 'failed') > 0 THEN 'failed'
            ELSE 'skipped' END AS ai_state,
       max(CASE WHEN state = 'done' THEN lung_rads END) AS ai_lung_rads
  FROM ai_jobs GROUP BY study_uid;

CREATE FUNCTION lumen_study_ai(uid TEXT) RETURNS void LANGUAGE sql AS $$
    UPDATE studies SET
        ai_state = coalesce((SELECT ai_state FROM study_ai WHERE study_uid = uid), 'none'),
        ai_lung_rads = (SELECT ai_lung_rads FROM study_ai WHERE study_uid = uid)
     WHERE study_uid = uid
$$;
CREATE FUNCTION ai_jobs_study() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM lumen_study_ai(OLD.study_uid);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM lumen_study_ai(NEW.study_uid);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER ai_jobs_study_insert AFTER INSERT ON ai_jobs
    FOR EACH ROW EXECUTE FUNCTION ai_jobs_study();
CREATE TRIGGER ai_jobs_study_update AFTER UPDATE OF state, lung_rads, study_uid ON ai_jobs
    FOR EACH ROW EXECUTE FUNCTION ai_jobs_study();
CREATE TRIGGER ai_jobs_study_delete AFTER DELETE ON ai_jobs
    FOR EACH ROW EXECUTE FUNCTION ai_jobs_study();

-- Raises `message`: the body of every rule below that refuses a change.
CREATE FUNCTION lumen_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '%', TG_ARGV[0] USING ERRCODE = 'restrict_violation';
END $$;

-- Review and report (0004): the AI's original is kept; signed reports and their versions
-- are immutable; finding history is append-only.
CREATE TABLE finding_reviews (
    study_uid   TEXT COLLATE "C" NOT NULL,
    finding_id  TEXT COLLATE "C" NOT NULL,
    origin      TEXT NOT NULL,
    status      TEXT NOT NULL,
    ai          TEXT,
    current     TEXT NOT NULL,
    note        TEXT,
    edited_by   TEXT,
    edited_at   BIGINT,
    PRIMARY KEY (study_uid, finding_id)
);

CREATE TABLE finding_history (
    id          BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    study_uid   TEXT COLLATE "C" NOT NULL,
    finding_id  TEXT COLLATE "C" NOT NULL,
    status      TEXT NOT NULL,
    current     TEXT NOT NULL,
    note        TEXT,
    actor       TEXT NOT NULL,
    at          BIGINT NOT NULL
);
CREATE INDEX finding_history_finding ON finding_history(study_uid, finding_id);

CREATE TABLE reports (
    study_uid   TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    status      TEXT COLLATE "C" NOT NULL,
    lang        TEXT NOT NULL,
    sections    TEXT,
    lung_rads   TEXT,
    edited_by   TEXT,
    updated_at  BIGINT NOT NULL,
    pending     TEXT
);
CREATE INDEX reports_status ON reports(status);

CREATE TABLE report_versions (
    study_uid     TEXT COLLATE "C" NOT NULL,
    version       BIGINT NOT NULL,
    kind          TEXT NOT NULL,
    lang          TEXT NOT NULL,
    content       TEXT NOT NULL,
    signer_id     TEXT NOT NULL,
    signer        TEXT NOT NULL,
    signed_at     BIGINT NOT NULL,
    pdf_sop_uid   TEXT NOT NULL,
    sr_sop_uid    TEXT NOT NULL,
    PRIMARY KEY (study_uid, version)
);

CREATE TRIGGER finding_reviews_ai_kept BEFORE UPDATE ON finding_reviews FOR EACH ROW
    WHEN (OLD.ai IS DISTINCT FROM NEW.ai OR OLD.origin IS DISTINCT FROM NEW.origin)
    EXECUTE FUNCTION lumen_refuse('the AI original of a finding is never changed');
CREATE FUNCTION finding_reviews_signed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM reports WHERE status = 'signed' AND study_uid =
               CASE WHEN TG_OP = 'INSERT' THEN NEW.study_uid ELSE OLD.study_uid END) THEN
        RAISE EXCEPTION 'report is signed' USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER finding_reviews_signed_insert BEFORE INSERT ON finding_reviews
    FOR EACH ROW EXECUTE FUNCTION finding_reviews_signed();
CREATE TRIGGER finding_reviews_signed_update BEFORE UPDATE ON finding_reviews
    FOR EACH ROW EXECUTE FUNCTION finding_reviews_signed();
CREATE TRIGGER finding_reviews_no_delete BEFORE DELETE ON finding_reviews
    FOR EACH ROW EXECUTE FUNCTION lumen_refuse('finding reviews are never deleted');
CREATE TRIGGER finding_history_no_update BEFORE UPDATE ON finding_history
    FOR EACH ROW EXECUTE FUNCTION lumen_refuse('finding history is append-only');
CREATE TRIGGER finding_history_no_delete BEFORE DELETE ON finding_history
    FOR EACH ROW EXECUTE FUNCTION lumen_refuse('finding history is append-only');
CREATE TRIGGER reports_signed_final BEFORE UPDATE ON reports FOR EACH ROW
    WHEN (OLD.status = 'signed' AND (NEW.status IS DISTINCT FROM 'signed'
        OR NEW.sections IS DISTINCT FROM OLD.sections OR NEW.lang IS DISTINCT FROM OLD.lang
        OR NEW.lung_rads IS DISTINCT FROM OLD.lung_rads))
    EXECUTE FUNCTION lumen_refuse('report is signed');
CREATE TRIGGER reports_signed_no_delete BEFORE DELETE ON reports FOR EACH ROW
    WHEN (OLD.status = 'signed') EXECUTE FUNCTION lumen_refuse('report is signed');
CREATE TRIGGER report_versions_no_update BEFORE UPDATE ON report_versions
    FOR EACH ROW EXECUTE FUNCTION lumen_refuse('signed report versions are immutable');
CREATE TRIGGER report_versions_no_delete BEFORE DELETE ON report_versions
    FOR EACH ROW EXECUTE FUNCTION lumen_refuse('signed report versions are immutable');

-- The routing outbox (0007).
CREATE TABLE outbox (
    id               BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    sop_uid          TEXT COLLATE "C" NOT NULL,
    series_uid       TEXT COLLATE "C" NOT NULL,
    study_uid        TEXT COLLATE "C" NOT NULL,
    destination      TEXT COLLATE "C" NOT NULL,
    origin           TEXT NOT NULL,
    state            TEXT NOT NULL DEFAULT 'pending',
    attempts         BIGINT NOT NULL DEFAULT 0,
    queued_ms        BIGINT NOT NULL,
    next_attempt_ms  BIGINT NOT NULL,
    claimed_ms       BIGINT,
    last_error       TEXT,
    UNIQUE (sop_uid, destination)
);
CREATE INDEX outbox_due ON outbox (next_attempt_ms) WHERE state = 'pending';

-- The number of studies, in all and per organisation, kept by triggers (0008, 0009).
CREATE TABLE index_counts (name TEXT PRIMARY KEY NOT NULL, n BIGINT NOT NULL);
INSERT INTO index_counts (name, n) VALUES ('studies', 0);
CREATE TABLE org_counts (org TEXT COLLATE "C" PRIMARY KEY NOT NULL, n BIGINT NOT NULL);
CREATE FUNCTION studies_counts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE index_counts SET n = n + 1 WHERE name = 'studies';
        INSERT INTO org_counts (org, n) VALUES (NEW.org, 1)
            ON CONFLICT (org) DO UPDATE SET n = org_counts.n + 1;
    ELSIF TG_OP = 'DELETE' THEN
        UPDATE index_counts SET n = n - 1 WHERE name = 'studies';
        UPDATE org_counts SET n = n - 1 WHERE org = OLD.org;
    ELSIF OLD.org <> NEW.org THEN
        UPDATE org_counts SET n = n - 1 WHERE org = OLD.org;
        INSERT INTO org_counts (org, n) VALUES (NEW.org, 1)
            ON CONFLICT (org) DO UPDATE SET n = org_counts.n + 1;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER studies_count_insert AFTER INSERT ON studies
    FOR EACH ROW EXECUTE FUNCTION studies_counts();
CREATE TRIGGER studies_count_delete AFTER DELETE ON studies
    FOR EACH ROW EXECUTE FUNCTION studies_counts();
CREATE TRIGGER studies_org_count_update AFTER UPDATE OF org ON studies
    FOR EACH ROW EXECUTE FUNCTION studies_counts();

-- Accounts, organisations, sessions and the audit trail (0009).
CREATE TABLE orgs (
    id TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE users (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    username TEXT COLLATE "C" NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    role TEXT NOT NULL,
    org TEXT COLLATE "C" NOT NULL REFERENCES orgs(id),
    password_hash TEXT NOT NULL,
    must_change_password BIGINT NOT NULL DEFAULT 0,
    disabled BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    password_changed_at BIGINT NOT NULL
);

CREATE TABLE sessions (
    token_hash TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    user_id BIGINT NOT NULL REFERENCES users(id),
    csrf TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX sessions_user ON sessions(user_id);

-- The audit trail: append-only; rows are removed only once older than six months.
CREATE TABLE audit (
    seq BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    time TEXT NOT NULL,
    time_ms BIGINT NOT NULL,
    "user" TEXT COLLATE "C" NOT NULL,
    role TEXT NOT NULL,
    org TEXT COLLATE "C" NOT NULL,
    action TEXT NOT NULL,
    outcome TEXT NOT NULL,
    channel TEXT NOT NULL,
    source TEXT,
    study_uid TEXT COLLATE "C",
    series_uid TEXT COLLATE "C",
    patient_id TEXT,
    patient_name TEXT,
    detail TEXT NOT NULL
);
CREATE INDEX audit_study ON audit(study_uid, seq);
CREATE INDEX audit_user ON audit("user", seq);
CREATE INDEX audit_time ON audit(time_ms);
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
    FOR EACH ROW EXECUTE FUNCTION lumen_refuse('the audit trail is append-only');
CREATE TRIGGER audit_no_early_delete BEFORE DELETE ON audit FOR EACH ROW
    WHEN (OLD.time_ms > (floor(extract(epoch FROM now()))::bigint - 183 * 86400) * 1000)
    EXECUTE FUNCTION lumen_refuse('audit entries are kept at least six months');
-- TRUNCATE would bypass the row triggers: refused as well.
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit
    FOR EACH STATEMENT EXECUTE FUNCTION lumen_refuse('the audit trail is append-only');

CREATE TABLE audit_forwarded (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    seq BIGINT NOT NULL
);

-- The ledger's entries (0010, 0013): append-only; only a deletion request may forget an
-- entry's salt, study and event.
CREATE TABLE ledger_entries (
    seq        BIGINT PRIMARY KEY,
    kind       TEXT   NOT NULL,
    time       BIGINT NOT NULL,
    commitment BYTEA  NOT NULL CHECK (length(commitment) = 32),
    salt       BYTEA           CHECK (salt IS NULL OR length(salt) = 32),
    study_uid  TEXT COLLATE "C",
    event      TEXT   NOT NULL
);
CREATE INDEX ledger_entries_study ON ledger_entries (study_uid);
CREATE TRIGGER ledger_entries_no_delete BEFORE DELETE ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION lumen_refuse('ledger entries are append-only');
CREATE TRIGGER ledger_entries_no_truncate BEFORE TRUNCATE ON ledger_entries
    FOR EACH STATEMENT EXECUTE FUNCTION lumen_refuse('ledger entries are append-only');
CREATE TRIGGER ledger_entries_only_forget BEFORE UPDATE ON ledger_entries FOR EACH ROW
    WHEN (NEW.seq IS DISTINCT FROM OLD.seq OR NEW.kind IS DISTINCT FROM OLD.kind
      OR NEW.time IS DISTINCT FROM OLD.time OR NEW.commitment IS DISTINCT FROM OLD.commitment
      OR (NEW.study_uid IS DISTINCT FROM OLD.study_uid AND NEW.study_uid IS NOT NULL)
      OR (NEW.event IS DISTINCT FROM OLD.event AND NEW.event IS DISTINCT FROM '{}')
      OR NEW.salt IS NOT NULL)
    EXECUTE FUNCTION lumen_refuse('ledger entries are append-only (only a deletion request may forget an entry''s salt, study and event)');

CREATE TABLE witness_state (
    origin TEXT   PRIMARY KEY,
    size   BIGINT NOT NULL,
    root   BYTEA  NOT NULL CHECK (length(root) = 32)
);

-- Sharing between consortium nodes (0014, 0025).
CREATE TABLE shares (
    id            TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    study_uid     TEXT COLLATE "C" NOT NULL,
    to_member     TEXT NOT NULL,
    purpose       TEXT NOT NULL,
    consent       TEXT NOT NULL,
    status        TEXT NOT NULL,
    created_by    TEXT NOT NULL,
    org           TEXT NOT NULL,
    created_ms    BIGINT NOT NULL,
    revoked_by    TEXT,
    revoked_ms    BIGINT,
    reported_by   TEXT,
    reported_ms   BIGINT
);
CREATE INDEX shares_study ON shares (study_uid);

CREATE TABLE grants (
    origin        TEXT COLLATE "C" NOT NULL,
    share_id      TEXT COLLATE "C" NOT NULL,
    study_uid     TEXT COLLATE "C" NOT NULL,
    origin_name   TEXT NOT NULL,
    purpose       TEXT NOT NULL,
    consent       TEXT NOT NULL,
    status        TEXT NOT NULL,
    created_ms    BIGINT NOT NULL,
    checked_ms    BIGINT NOT NULL,
    revoked_ms    BIGINT,
    expected_instances BIGINT,
    PRIMARY KEY (origin, share_id)
);
CREATE INDEX grants_study ON grants (study_uid);

CREATE TABLE share_outbox (
    id               BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    member           TEXT COLLATE "C" NOT NULL,
    kind             TEXT COLLATE "C" NOT NULL,
    share_id         TEXT COLLATE "C" NOT NULL,
    study_uid        TEXT COLLATE "C" NOT NULL,
    sop_uid          TEXT COLLATE "C" NOT NULL DEFAULT '',
    priority         BIGINT NOT NULL,
    state            TEXT NOT NULL DEFAULT 'pending',
    attempts         BIGINT NOT NULL DEFAULT 0,
    queued_ms        BIGINT NOT NULL,
    next_attempt_ms  BIGINT NOT NULL,
    claimed_ms       BIGINT,
    last_error       TEXT,
    UNIQUE (member, kind, share_id, sop_uid)
);
CREATE INDEX share_outbox_due ON share_outbox (priority, id) WHERE state = 'pending';

-- Patient cloud film links (0020): never deleted; only revoked once or shortened.
CREATE TABLE patient_links (
    id         TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    token_hash TEXT COLLATE "C" NOT NULL UNIQUE,
    study_uid  TEXT COLLATE "C" NOT NULL,
    org        TEXT COLLATE "C" NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT,
    revoked_by TEXT,
    CHECK (expires_at > created_at)
);
CREATE INDEX patient_links_study ON patient_links (study_uid, created_at);
CREATE TRIGGER patient_links_no_delete BEFORE DELETE ON patient_links
    FOR EACH ROW EXECUTE FUNCTION lumen_refuse('patient links are kept (revoke them instead)');
CREATE TRIGGER patient_links_only_revoke BEFORE UPDATE ON patient_links FOR EACH ROW
    WHEN (NEW.id IS DISTINCT FROM OLD.id OR NEW.token_hash IS DISTINCT FROM OLD.token_hash
      OR NEW.study_uid IS DISTINCT FROM OLD.study_uid OR NEW.org IS DISTINCT FROM OLD.org
      OR NEW.created_by IS DISTINCT FROM OLD.created_by
      OR NEW.created_at IS DISTINCT FROM OLD.created_at
      OR NEW.expires_at > OLD.expires_at
      OR (OLD.revoked_at IS NOT NULL AND (NEW.revoked_at IS DISTINCT FROM OLD.revoked_at
          OR NEW.revoked_by IS DISTINCT FROM OLD.revoked_by))
      OR (NEW.revoked_at IS NULL AND NEW.revoked_by IS NOT NULL))
    EXECUTE FUNCTION lumen_refuse('a patient link can only be revoked once or expire earlier');

-- The consortium patient index (0025).
CREATE TABLE patient_xref (
    issuer         TEXT COLLATE "C" NOT NULL,
    patient_id     TEXT COLLATE "C" NOT NULL,
    consortium_id  TEXT COLLATE "C" NOT NULL,
    how            TEXT NOT NULL,
    linked_by      TEXT NOT NULL,
    created_ms     BIGINT NOT NULL,
    PRIMARY KEY (issuer, patient_id)
);
CREATE INDEX patient_xref_consortium ON patient_xref (consortium_id);

CREATE TABLE grant_patients (
    origin         TEXT COLLATE "C" NOT NULL,
    share_id       TEXT COLLATE "C" NOT NULL,
    consortium_id  TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (origin, share_id)
);

-- The milliseconds since the epoch of an ISO 8601 time, NULL when it cannot be read (the
-- audit's `time_ms`; SQLite computes it with julianday(), which answers NULL likewise).
CREATE FUNCTION lumen_time_ms(t TEXT) RETURNS BIGINT LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN round(extract(epoch FROM t::timestamptz) * 1000)::bigint;
EXCEPTION WHEN others THEN
    RETURN NULL;
END $$;
