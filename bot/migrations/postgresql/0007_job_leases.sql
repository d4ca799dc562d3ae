-- Cadenza schema v7 for PostgreSQL (see ../0007_job_leases.sql): jobs belong to the store,
-- not to one process's memory. Several gateway
-- processes may share one database (PostgreSQL): each job names the process that runs it
-- (owner) and holds a lease it renews while alive; a process starting up takes over only jobs
-- whose lease has run out (their process died), never a live process's.
--
-- The member's answer (the clip, or one failure message) is claimed in a transaction before it
-- is posted (answer_owner) and recorded after (answered_at, answer_message_id): two processes
-- never both answer one job, and a job never ends unanswered.

ALTER TABLE jobs ADD COLUMN owner TEXT;          -- "host:pid:token" of the process running it
ALTER TABLE jobs ADD COLUMN lease_until TEXT;    -- NULL: no lease (a single-process Cadenza)
ALTER TABLE jobs ADD COLUMN answer_owner TEXT;   -- the process that claimed posting the answer
ALTER TABLE jobs ADD COLUMN answered_at TEXT;    -- when the member got the clip or the notice
ALTER TABLE jobs ADD COLUMN answer_message_id BIGINT;

-- Jobs finished before leases were answered then (live, or by the restart notice); interrupted
-- ones still waiting for their notice stay unanswered.
UPDATE jobs SET answered_at = coalesce(notified_at, finished_at)
WHERE finished_at IS NOT NULL AND NOT (interrupted = 1 AND notified_at IS NULL);

CREATE INDEX jobs_unanswered ON jobs (id) WHERE answered_at IS NULL;
