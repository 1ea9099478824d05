-- AI jobs are claimed under a lease, so that several processes (front ends with `[ai]
-- enabled`, `lumen worker`s) can share one queue: a claim names its holder and lasts until
-- `lease_until` (ms since epoch), renewed while the job runs. A running job whose lease
-- passed (its worker died) is claimed again; only the holder of the current claim can finish
-- it. (PostgreSQL: ../migrations-pg/0040_job_leases.sql.)
ALTER TABLE ai_jobs ADD COLUMN lease_until INTEGER NOT NULL DEFAULT 0;
ALTER TABLE ai_jobs ADD COLUMN claimed_by TEXT;
