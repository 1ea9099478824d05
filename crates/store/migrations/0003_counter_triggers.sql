-- Keep the per-series and per-study counters and summaries in step with `instances` inside
-- the statement that changes it, so that ingest needs fewer round trips to the database.
CREATE TRIGGER instances_counters_insert AFTER INSERT ON instances BEGIN
    UPDATE series SET num_instances =
        (SELECT count(*) FROM instances WHERE series_uid = NEW.series_uid)
     WHERE series_uid = NEW.series_uid;
    UPDATE studies SET
        num_series = (SELECT count(*) FROM series WHERE series.study_uid = NEW.study_uid),
        num_instances = (SELECT count(*) FROM instances WHERE instances.study_uid = NEW.study_uid),
        modalities = (SELECT coalesce(group_concat(m, '\'), '') FROM
            (SELECT DISTINCT modality AS m FROM series WHERE series.study_uid = NEW.study_uid AND modality != '' ORDER BY m)),
        sop_classes = (SELECT coalesce(group_concat(c, '\'), '') FROM
            (SELECT DISTINCT sop_class_uid AS c FROM instances WHERE instances.study_uid = NEW.study_uid ORDER BY c))
     WHERE study_uid = NEW.study_uid;
END;

CREATE TRIGGER instances_counters_update AFTER UPDATE OF series_uid, study_uid, sop_class_uid ON instances BEGIN
    UPDATE series SET num_instances =
        (SELECT count(*) FROM instances WHERE instances.series_uid = series.series_uid)
     WHERE series_uid IN (OLD.series_uid, NEW.series_uid);
    UPDATE studies SET
        num_series = (SELECT count(*) FROM series WHERE series.study_uid = studies.study_uid),
        num_instances = (SELECT count(*) FROM instances WHERE instances.study_uid = studies.study_uid),
        modalities = (SELECT coalesce(group_concat(m, '\'), '') FROM
            (SELECT DISTINCT modality AS m FROM series WHERE series.study_uid = studies.study_uid AND modality != '' ORDER BY m)),
        sop_classes = (SELECT coalesce(group_concat(c, '\'), '') FROM
            (SELECT DISTINCT sop_class_uid AS c FROM instances WHERE instances.study_uid = studies.study_uid ORDER BY c))
     WHERE study_uid IN (OLD.study_uid, NEW.study_uid);
END;
