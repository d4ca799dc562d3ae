-- Cadenza schema v4: the blind A/B arena. A pair is two clips of one prompt (same style, bars,
-- tempo, key, meter and random seed) by two different models, posted as A and B with the
-- models hidden; members vote which is better, one vote each per pair, changeable until they
-- ask to see which model was which (revealed_at).
--
-- No ON DELETE CASCADE: deleting a clip or a user with arena history must fail rather than
-- make pairs or votes silently vanish.

CREATE TABLE arena_pairs (
    -- AUTOINCREMENT: pair ids are shown to members ("arena #3") and sit in button custom_ids
    -- ("arena:3:a"), so they must never point at a different pair later.
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    clip_a     INTEGER NOT NULL REFERENCES clips (id),  -- the clip shown as A
    clip_b     INTEGER NOT NULL REFERENCES clips (id),  -- the clip shown as B
    -- The models are the clips' own (the store checks), kept here so the leaderboard and
    -- the pairing read one narrow table instead of every clip's row.
    model_a    TEXT    NOT NULL CHECK (length(model_a) > 0),
    model_b    TEXT    NOT NULL CHECK (length(model_b) > 0),
    style      TEXT    NOT NULL CHECK (length(style) > 0),
    user_id    INTEGER NOT NULL REFERENCES users (id),  -- the member who asked for it
    guild_id   INTEGER,  -- NULL outside Discord
    channel_id INTEGER,
    message_id INTEGER,  -- set once posted
    created_at TEXT    NOT NULL,
    CHECK (clip_a <> clip_b),
    CHECK (model_a <> model_b)
) STRICT;

-- A clip is made for one pair; the unique indexes also serve foreign-key checks on clips.
CREATE UNIQUE INDEX arena_pairs_clip_a ON arena_pairs (clip_a);
CREATE UNIQUE INDEX arena_pairs_clip_b ON arena_pairs (clip_b);
CREATE INDEX arena_pairs_style ON arena_pairs (style);
CREATE INDEX arena_pairs_user_id ON arena_pairs (user_id);

CREATE TABLE arena_votes (
    pair_id     INTEGER NOT NULL REFERENCES arena_pairs (id),
    user_id     INTEGER NOT NULL REFERENCES users (id),
    -- a = A is better, b = B is better, tie, bad = both are bad (counted, but says nothing
    -- about which model is better, so it stays out of the Bradley-Terry fit).
    choice      TEXT    NOT NULL CHECK (choice IN ('a', 'b', 'tie', 'bad')),
    created_at  TEXT    NOT NULL,
    updated_at  TEXT    NOT NULL,
    revealed_at TEXT,   -- when the member saw which model was which; the vote is final then
    PRIMARY KEY (pair_id, user_id)
) STRICT, WITHOUT ROWID;  -- clustered by pair: a pair's votes sit together

CREATE INDEX arena_votes_user_id ON arena_votes (user_id);
