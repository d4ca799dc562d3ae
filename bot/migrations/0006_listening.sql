-- Cadenza schema v6: listening together in voice. Each server's player keeps its queue here,
-- so a restart loses neither what was playing nor what was waiting; a listening party keeps
-- its settings and which clip its host is composing, and its clips are its queue entries.
--
-- Nothing is deleted: played, skipped and stopped entries stay as the history of what was
-- heard (a party's ranking reads them); only the open ones ('queued', 'playing') are the queue.

CREATE TABLE parties (
    -- AUTOINCREMENT: party ids are shown ("party #3") and must never name another later.
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    guild_id         INTEGER NOT NULL,
    channel_id       INTEGER NOT NULL,  -- the text channel its messages go to
    voice_channel_id INTEGER NOT NULL,
    user_id          INTEGER NOT NULL REFERENCES users (id),  -- the host
    kind             TEXT    NOT NULL CHECK (kind IN ('compose', 'arena')),
    style            TEXT    NOT NULL CHECK (length(style) > 0),
    bars             INTEGER NOT NULL CHECK (bars > 0),
    count            INTEGER NOT NULL CHECK (count > 0),  -- clips to compose (an arena: 2)
    status           TEXT    NOT NULL CHECK (status IN ('open', 'done', 'stopped')),
    job_id           INTEGER REFERENCES jobs (id),  -- the request composing its next clip
    pair_id          INTEGER REFERENCES arena_pairs (id),  -- an arena party's pair
    message_id       INTEGER,  -- its live "now playing" message
    created_at       TEXT    NOT NULL,
    finished_at      TEXT
) STRICT;

CREATE INDEX parties_open ON parties (guild_id) WHERE status = 'open';
CREATE INDEX parties_user_id ON parties (user_id);

CREATE TABLE play_queue (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,  -- the order clips play in, per server
    guild_id    INTEGER NOT NULL,
    clip_id     INTEGER NOT NULL REFERENCES clips (id),
    user_id     INTEGER NOT NULL REFERENCES users (id),  -- who queued it
    party_id    INTEGER REFERENCES parties (id),
    status      TEXT    NOT NULL
                CHECK (status IN ('queued', 'playing', 'played', 'skipped', 'stopped')),
    queued_at   TEXT    NOT NULL,
    started_at  TEXT,
    finished_at TEXT
) STRICT;

-- The open queue of one server, in play order, however long the history grows.
CREATE INDEX play_queue_open ON play_queue (guild_id, id) WHERE status IN ('queued', 'playing');
CREATE INDEX play_queue_clip_id ON play_queue (clip_id);
CREATE INDEX play_queue_user_id ON play_queue (user_id);
CREATE INDEX play_queue_party_id ON play_queue (party_id) WHERE party_id IS NOT NULL;

-- Where each server's player plays and shows what it plays.
CREATE TABLE players (
    guild_id         INTEGER PRIMARY KEY,
    voice_channel_id INTEGER,  -- NULL once it has left voice
    text_channel_id  INTEGER,
    message_id       INTEGER,  -- its "now playing" message
    updated_at       TEXT    NOT NULL
) STRICT;
