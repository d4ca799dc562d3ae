-- Cadenza schema v2: the compose queue's jobs, so that work in flight survives a restart as
-- a visible failure ("interrupted") instead of vanishing.
--
-- A job is written when a member's request is admitted and updated as it runs; on start-up
-- every job still 'queued' or 'running' belongs to a process that died, so it is marked
-- failed with interrupted = 1 and its member is told (notified_at records that they were).

CREATE TABLE jobs (
    -- AUTOINCREMENT: job ids appear in button custom_ids ("cancel:7", "retry:7") and must
    -- never point at a different job later.
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    status      TEXT    NOT NULL
                CHECK (status IN ('queued', 'running', 'done', 'failed', 'cancelled')),
    user_id     INTEGER NOT NULL REFERENCES users (id),
    guild_id    INTEGER,  -- NULL outside Discord
    channel_id  INTEGER,
    message_id  INTEGER,  -- the progress message, once Discord has created it
    params_json TEXT    NOT NULL,  -- the resolved request (bot.service.Resolved.params())
    clip_id     INTEGER REFERENCES clips (id),  -- set when done
    error       TEXT,     -- what the member was told when it failed
    interrupted INTEGER NOT NULL DEFAULT 0 CHECK (interrupted IN (0, 1)),
    created_at  TEXT    NOT NULL,
    started_at  TEXT,
    finished_at TEXT,
    notified_at TEXT,     -- when an interrupted job's member was told, outside any interaction
    CHECK (status <> 'done' OR clip_id IS NOT NULL)
) STRICT;

-- Start-up scans only the unfinished jobs, however long the history grows.
CREATE INDEX jobs_open ON jobs (status) WHERE status IN ('queued', 'running');
CREATE INDEX jobs_to_notify ON jobs (id) WHERE interrupted = 1 AND notified_at IS NULL;
CREATE INDEX jobs_user_id ON jobs (user_id);
