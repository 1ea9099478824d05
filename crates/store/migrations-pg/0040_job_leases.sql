-- AI jobs are claimed under a lease (see ../migrations/0040_job_leases.sql): the holder of a
-- claim and its end (ms since epoch), renewed while the job runs; a running job whose lease
-- passed is claimed again (FOR UPDATE SKIP LOCKED), and only the current holder finishes it.
ALTER TABLE ai_jobs ADD COLUMN lease_until BIGINT NOT NULL DEFAULT 0;
ALTER TABLE ai_jobs ADD COLUMN claimed_by TEXT;
