-- The AI job queue: one row per CT series. A series is analysed once it has received no
-- instance for the quiet period; jobs survive restarts, retry with backoff, and end as
-- done or failed with a reason.
CREATE TABLE ai_jobs (
    series_uid        TEXT PRIMARY KEY NOT NULL,
    study_uid         TEXT NOT NULL,
    state             TEXT NOT NULL,              -- waiting | running | done | failed | skipped
    attempts          INTEGER NOT NULL DEFAULT 0,
    last_instance_at  INTEGER NOT NULL,           -- ms since epoch
    not_before        INTEGER NOT NULL DEFAULT 0, -- ms since epoch (retry backoff)
    reason            TEXT,
    result            TEXT,                       -- JSON summary of the analysis
    updated_at        INTEGER NOT NULL
);
CREATE INDEX ai_jobs_study ON ai_jobs(study_uid);
CREATE INDEX ai_jobs_state ON ai_jobs(state);
