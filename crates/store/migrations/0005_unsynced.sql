-- `synced = 0`: indexed while the object file's fsync was still running (the file sync and
-- the index commit run side by side; the sender is answered only after both). Set to 1
-- once the file is on disk, in the next transaction. At start-up each listed file is
-- checked against its SHA-256 and, if a power loss kept the index entry but not the
-- bytes, the instance is un-indexed: it was never acknowledged.
ALTER TABLE instances ADD COLUMN synced INTEGER NOT NULL DEFAULT 1;
CREATE INDEX instances_unsynced ON instances (path) WHERE synced = 0;

-- Counters and summaries stay right when an instance is un-indexed.
CREATE TRIGGER instances_counters_delete AFTER DELETE ON instances BEGIN
    UPDATE series SET num_instances =
        (SELECT count(*) FROM instances WHERE series_uid = OLD.series_uid)
     WHERE series_uid = OLD.series_uid;
    UPDATE studies SET
        num_series = (SELECT count(*) FROM series WHERE series.study_uid = OLD.study_uid),
        num_instances = (SELECT count(*) FROM instances WHERE instances.study_uid = OLD.study_uid),
        modalities = (SELECT coalesce(group_concat(m, '\'), '') FROM
            (SELECT DISTINCT modality AS m FROM series WHERE series.study_uid = OLD.study_uid AND modality != '' ORDER BY m)),
        sop_classes = (SELECT coalesce(group_concat(c, '\'), '') FROM
            (SELECT DISTINCT sop_class_uid AS c FROM instances WHERE instances.study_uid = OLD.study_uid ORDER BY c))
     WHERE study_uid = OLD.study_uid;
END;
