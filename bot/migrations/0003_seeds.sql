-- Cadenza schema v3: seeds (short motifs members share) and lineage (what each clip and seed
-- was built on), so credits survive however the music is reused.
--
-- Nothing here is ever deleted: a deleted seed is marked (deleted_at, deleted_by) and keeps its
-- row, so the clips built on it still name it and credit its owner; only its name is freed.

CREATE TABLE seeds (
    -- AUTOINCREMENT: seed ids are stored in jobs and lineage and must never be reused.
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT    NOT NULL CHECK (length(name) BETWEEN 1 AND 32),
    -- The name case-folded by the application (SQLite's lower() knows only ASCII): "Riff" and
    -- "RIFF" are one name.
    name_key    TEXT    NOT NULL CHECK (length(name_key) > 0),
    guild_id    INTEGER,  -- NULL outside Discord (console)
    user_id     INTEGER NOT NULL REFERENCES users (id),
    public      INTEGER NOT NULL DEFAULT 0 CHECK (public IN (0, 1)),
    source_kind TEXT    NOT NULL CHECK (source_kind IN ('clip', 'upload', 'notes')),
    source_ref  TEXT    NOT NULL,  -- "clip #12, bars 1-4", the uploaded file's name, the notes
    created_at  TEXT    NOT NULL,
    deleted_at  TEXT,
    deleted_by  INTEGER REFERENCES users (id),
    motif_json  TEXT    NOT NULL,  -- models.motif.Motif.to_json()
    CHECK ((deleted_at IS NULL) = (deleted_by IS NULL))
) STRICT;

-- One live seed per name and guild; a deleted seed's name can be taken again. ifnull: NULLs are
-- distinct in a unique index, and the console's seeds (no guild) must be unique too.
CREATE UNIQUE INDEX seeds_live_name ON seeds (ifnull(guild_id, 0), name_key)
    WHERE deleted_at IS NULL;
CREATE INDEX seeds_user_id ON seeds (user_id);
CREATE INDEX seeds_deleted_by ON seeds (deleted_by) WHERE deleted_by IS NOT NULL;

-- One row per (child, parent) link. The child is a clip or a seed, so is the parent; four
-- nullable foreign keys keep every link checked by SQLite, and the generated (kind, id) columns
-- let one recursive query walk clips and seeds alike.
CREATE TABLE lineage (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    child_clip_id  INTEGER REFERENCES clips (id),
    child_seed_id  INTEGER REFERENCES seeds (id),
    parent_clip_id INTEGER REFERENCES clips (id),
    parent_seed_id INTEGER REFERENCES seeds (id),
    -- continues = a clip continuing a seed or a clip, varies = new pitches over a clip's
    -- harmony and rhythm, rerolls = a clip's request again with a new random seed, blends = a
    -- clip morphing between two seeds (role a, role b), shares = a seed cut from a clip.
    relation       TEXT    NOT NULL
                   CHECK (relation IN ('continues', 'varies', 'rerolls', 'blends', 'shares')),
    role           TEXT    CHECK (role IN ('a', 'b')),
    created_at     TEXT    NOT NULL,
    child_kind     TEXT    GENERATED ALWAYS AS
                   (CASE WHEN child_clip_id IS NULL THEN 'seed' ELSE 'clip' END) VIRTUAL,
    child_id       INTEGER GENERATED ALWAYS AS (coalesce(child_clip_id, child_seed_id)) VIRTUAL,
    parent_kind    TEXT    GENERATED ALWAYS AS
                   (CASE WHEN parent_clip_id IS NULL THEN 'seed' ELSE 'clip' END) VIRTUAL,
    parent_id      INTEGER GENERATED ALWAYS AS (coalesce(parent_clip_id, parent_seed_id)) VIRTUAL,
    CHECK ((child_clip_id IS NULL) <> (child_seed_id IS NULL)),
    CHECK ((parent_clip_id IS NULL) <> (parent_seed_id IS NULL)),
    CHECK (child_clip_id IS NULL OR parent_clip_id IS NULL OR child_clip_id > parent_clip_id),
    CHECK (child_seed_id IS NULL OR parent_seed_id IS NULL OR child_seed_id > parent_seed_id),
    -- Which links make sense, so no bug can record a seed that "rerolls" something.
    CHECK (relation <> 'shares' OR (child_seed_id IS NOT NULL AND parent_clip_id IS NOT NULL)),
    CHECK (relation <> 'blends' OR (child_clip_id IS NOT NULL AND parent_seed_id IS NOT NULL)),
    CHECK (relation NOT IN ('varies', 'rerolls')
           OR (child_clip_id IS NOT NULL AND parent_clip_id IS NOT NULL)),
    CHECK (relation <> 'continues' OR child_clip_id IS NOT NULL),
    CHECK ((relation = 'blends') = (role IS NOT NULL))
) STRICT;

CREATE INDEX lineage_child ON lineage (child_kind, child_id);
CREATE INDEX lineage_parent ON lineage (parent_kind, parent_id);
CREATE UNIQUE INDEX lineage_once ON lineage (child_kind, child_id, parent_kind, parent_id,
                                             relation);
