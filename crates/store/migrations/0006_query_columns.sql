-- Query pushdown: the attributes QIDO-RS, C-FIND and the worklist match on most become
-- indexed columns, so that a query reads the rows it returns rather than a whole level.
-- Values are kept as the matcher (lumen_dicom::query) compares them: trimmed; person names
-- lower-cased per component group (matching is case-insensitive, PS3.18 8.3.4.6); dates
-- as YYYYMMDD ('' when absent or malformed). NULL means absent.
ALTER TABLE studies ADD COLUMN pn_alphabetic TEXT;
ALTER TABLE studies ADD COLUMN pn_ideographic TEXT;
ALTER TABLE studies ADD COLUMN pn_phonetic TEXT;
ALTER TABLE studies ADD COLUMN accession TEXT;
ALTER TABLE studies ADD COLUMN study_time TEXT NOT NULL DEFAULT '';
ALTER TABLE studies ADD COLUMN description TEXT;
-- The study's AI state (none | queued | running | done | failed | skipped, as
-- lumen_model::ai::AiState::of_jobs computes it) and the highest Lung-RADS category of its
-- finished AI jobs, kept by the triggers below.
ALTER TABLE studies ADD COLUMN ai_state TEXT NOT NULL DEFAULT 'none';
ALTER TABLE studies ADD COLUMN ai_lung_rads TEXT;
-- The category of a finished job, written with its result.
ALTER TABLE ai_jobs ADD COLUMN lung_rads TEXT;

UPDATE ai_jobs SET lung_rads = json_extract(result, '$.analysis.lung_rads')
 WHERE state = 'done' AND result IS NOT NULL;

-- Existing rows get the study columns from Store::open, in Rust, with the code that ingest
-- uses (SQLite's lower() folds ASCII only): the marker below asks for it.
CREATE TABLE index_backfill (name TEXT PRIMARY KEY NOT NULL);
INSERT INTO index_backfill (name) VALUES ('study_columns');

CREATE INDEX studies_pn_alphabetic ON studies(pn_alphabetic);
CREATE INDEX studies_pn_ideographic ON studies(pn_ideographic);
CREATE INDEX studies_accession ON studies(accession);
-- The order in which studies are listed (newest first), so that a page is read in order.
DROP INDEX studies_date;
CREATE INDEX studies_order ON studies(study_date, study_time, created_at, study_uid);
CREATE INDEX studies_ai ON studies(ai_state);
CREATE INDEX series_order ON series(created_at);
-- The few rows still marked unsynced, found without a scan (setting the flag looks a row
-- up by path among them; a full index on path would cost every ingest an index write).
DROP INDEX instances_unsynced;
CREATE INDEX instances_unsynced ON instances(synced) WHERE synced = 0;
CREATE INDEX reports_status ON reports(status);

-- A study's AI state from its jobs, the rule of lumen_model::ai::AiState::of_jobs.
CREATE VIEW study_ai AS
SELECT study_uid,
       CASE WHEN sum(state = 'running') > 0 THEN 'running'
            WHEN sum(state = 'waiting') > 0 THEN 'queued'
            WHEN sum(state = 'done') > 0 THEN 'done'
            WHEN sum(state = 'failed') > 0 THEN 'failed'
            ELSE 'skipped' END AS ai_state,
       max(CASE WHEN state = 'done' THEN lung_rads END) AS ai_lung_rads
  FROM ai_jobs GROUP BY study_uid;

CREATE TRIGGER ai_jobs_study_insert AFTER INSERT ON ai_jobs BEGIN
    UPDATE studies SET
        ai_state = coalesce((SELECT ai_state FROM study_ai WHERE study_uid = NEW.study_uid), 'none'),
        ai_lung_rads = (SELECT ai_lung_rads FROM study_ai WHERE study_uid = NEW.study_uid)
     WHERE study_uid = NEW.study_uid;
END;
CREATE TRIGGER ai_jobs_study_update AFTER UPDATE OF state, lung_rads, study_uid ON ai_jobs BEGIN
    UPDATE studies SET
        ai_state = coalesce((SELECT ai_state FROM study_ai WHERE study_uid = studies.study_uid), 'none'),
        ai_lung_rads = (SELECT ai_lung_rads FROM study_ai WHERE study_uid = studies.study_uid)
     WHERE study_uid IN (OLD.study_uid, NEW.study_uid);
END;
CREATE TRIGGER ai_jobs_study_delete AFTER DELETE ON ai_jobs BEGIN
    UPDATE studies SET
        ai_state = coalesce((SELECT ai_state FROM study_ai WHERE study_uid = OLD.study_uid), 'none'),
        ai_lung_rads = (SELECT ai_lung_rads FROM study_ai WHERE study_uid = OLD.study_uid)
     WHERE study_uid = OLD.study_uid;
END;
-- Existing studies take their state from their jobs.
UPDATE studies SET
    ai_state = coalesce((SELECT ai_state FROM study_ai WHERE study_uid = studies.study_uid), 'none'),
    ai_lung_rads = (SELECT ai_lung_rads FROM study_ai WHERE study_uid = studies.study_uid);

-- Counters kept incrementally on insert: the triggers of migration 0003 counted the whole
-- study again for every instance, so a study of n instances cost n^2/2 row reads to
-- import. Updates and deletes (rare: replace policy, un-indexing) still recount.
DROP TRIGGER instances_counters_insert;
CREATE TRIGGER instances_counters_insert AFTER INSERT ON instances BEGIN
    UPDATE series SET num_instances = num_instances + 1 WHERE series_uid = NEW.series_uid;
    UPDATE studies SET
        num_instances = num_instances + 1,
        num_series = num_series + (SELECT count(*) FROM series
            WHERE series_uid = NEW.series_uid AND num_instances = 1),
        modalities = CASE
            WHEN instr('\' || modalities || '\', '\' || (SELECT modality FROM series
                WHERE series_uid = NEW.series_uid) || '\') > 0 THEN modalities
            ELSE (SELECT coalesce(group_concat(m, '\'), '') FROM
                (SELECT DISTINCT modality AS m FROM series WHERE series.study_uid = NEW.study_uid
                 AND modality != '' ORDER BY m)) END,
        sop_classes = CASE
            WHEN instr('\' || sop_classes || '\', '\' || NEW.sop_class_uid || '\') > 0 THEN sop_classes
            ELSE (SELECT coalesce(group_concat(c, '\'), '') FROM
                (SELECT DISTINCT sop_class_uid AS c FROM instances
                 WHERE instances.study_uid = NEW.study_uid ORDER BY c)) END
     WHERE study_uid = NEW.study_uid;
END;
