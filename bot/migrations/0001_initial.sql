-- Cadenza schema v1: users, generated clips and their star ratings.
--
-- The store runs each migration file inside one BEGIN IMMEDIATE transaction together with
-- the `PRAGMA user_version` bump, so a file must not contain BEGIN/COMMIT or PRAGMAs that
-- are ignored inside a transaction (foreign_keys, journal_mode).
-- Timestamps are ISO-8601 UTC text with fixed width ("2024-05-01T12:00:00.000000Z"), so
-- text order is time order. STRICT tables make SQLite reject wrongly typed values instead
-- of silently storing them (needs SQLite >= 3.37).

CREATE TABLE users (
    id         INTEGER PRIMARY KEY CHECK (id >= 0),  -- Discord snowflake; the offline console uses 0
    name       TEXT    NOT NULL CHECK (length(name) > 0),
    created_at TEXT    NOT NULL
) STRICT;

CREATE TABLE clips (
    -- AUTOINCREMENT: ids are shown to members ("#12") and must never be reused, even if the
    -- newest clip were ever deleted.
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    style          TEXT    NOT NULL CHECK (length(style) > 0),
    bars           INTEGER NOT NULL CHECK (bars > 0),
    tempo          REAL    NOT NULL CHECK (tempo > 0),
    key            TEXT    NOT NULL CHECK (length(key) > 0),
    meter          TEXT    NOT NULL CHECK (meter GLOB '[1-9]*/[1-9]*'),
    temperature    REAL    NOT NULL CHECK (temperature >= 0),
    seed           INTEGER NOT NULL CHECK (seed >= 0),
    model          TEXT    NOT NULL CHECK (length(model) > 0),
    checkpoint_sha TEXT,   -- NULL for models without weights (rule-based generators)
    duration_s     REAL    NOT NULL CHECK (duration_s >= 0),
    user_id        INTEGER NOT NULL REFERENCES users (id),
    guild_id       INTEGER,  -- NULL outside Discord (console, CLI)
    channel_id     INTEGER,
    message_id     INTEGER,  -- set once the clip has been posted
    created_at     TEXT    NOT NULL,
    -- The bulky columns go last: a row larger than a page spills into an overflow chain, and
    -- SQLite would walk that chain to reach any column stored after it (charts read user_id
    -- and created_at of every rated clip).
    params_json    TEXT    NOT NULL,  -- the full resolved request, JSON object
    -- Every stored clip must be a Standard MIDI File, whatever the caller hands over.
    midi           BLOB    NOT NULL CHECK (substr(midi, 1, 4) = X'4D546864')
) STRICT;

CREATE INDEX clips_style ON clips (style);
CREATE INDEX clips_model ON clips (model);
CREATE INDEX clips_created_at ON clips (created_at);
CREATE INDEX clips_user_id ON clips (user_id);
-- Covering index for the charts: telling self-votes apart needs every rated clip's author, and
-- reading it here avoids loading each clip's row (with its MIDI) just for user_id.
CREATE INDEX clips_id_user ON clips (id, user_id);
-- Reactions and button presses arrive with a message id; most clips of the console have none.
CREATE INDEX clips_message_id ON clips (message_id) WHERE message_id IS NOT NULL;

-- No ON DELETE CASCADE anywhere: deleting a rated clip or a user who rated must fail rather
-- than make ratings silently vanish.
CREATE TABLE ratings (
    clip_id    INTEGER NOT NULL REFERENCES clips (id),
    user_id    INTEGER NOT NULL REFERENCES users (id),
    stars      INTEGER NOT NULL CHECK (stars BETWEEN 1 AND 5),
    created_at TEXT    NOT NULL,
    updated_at TEXT    NOT NULL,
    PRIMARY KEY (clip_id, user_id)
) STRICT, WITHOUT ROWID;  -- clustered by clip: a clip's votes sit together, in key order

-- The primary key covers lookups by clip; this one serves foreign-key checks on users.
CREATE INDEX ratings_user_id ON ratings (user_id);
