-- The archive index: the patient/study/series/instance hierarchy and where each object lies.
-- Attribute maps are DICOM JSON (PS3.18 Annex F); counters are kept in the ingest transaction.
CREATE TABLE studies (
    study_uid      TEXT PRIMARY KEY NOT NULL,
    patient_id     TEXT NOT NULL,
    study_date     TEXT NOT NULL,
    attrs          TEXT NOT NULL,
    modalities     TEXT NOT NULL DEFAULT '',
    sop_classes    TEXT NOT NULL DEFAULT '',
    num_series     INTEGER NOT NULL DEFAULT 0,
    num_instances  INTEGER NOT NULL DEFAULT 0,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);
CREATE INDEX studies_patient ON studies(patient_id);
CREATE INDEX studies_date ON studies(study_date);

CREATE TABLE series (
    series_uid     TEXT PRIMARY KEY NOT NULL,
    study_uid      TEXT NOT NULL REFERENCES studies(study_uid),
    modality       TEXT NOT NULL,
    attrs          TEXT NOT NULL,
    num_instances  INTEGER NOT NULL DEFAULT 0,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);
CREATE INDEX series_study ON series(study_uid);

CREATE TABLE instances (
    sop_uid              TEXT PRIMARY KEY NOT NULL,
    series_uid           TEXT NOT NULL REFERENCES series(series_uid),
    study_uid            TEXT NOT NULL,
    sop_class_uid        TEXT NOT NULL,
    transfer_syntax_uid  TEXT NOT NULL,
    instance_number      INTEGER,
    frames               INTEGER NOT NULL,
    path                 TEXT NOT NULL,
    size                 INTEGER NOT NULL,
    sha256               TEXT NOT NULL,
    attrs                TEXT NOT NULL,
    metadata             TEXT NOT NULL,
    received_at          INTEGER NOT NULL
);
CREATE INDEX instances_series ON instances(series_uid, instance_number);
CREATE INDEX instances_study ON instances(study_uid);
