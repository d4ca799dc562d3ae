-- Cadenza schema v5 for PostgreSQL: clips numbered in their server (see ../0005_clip_scopes.sql).

ALTER TABLE clips ADD COLUMN scope BIGINT NOT NULL DEFAULT 0;
ALTER TABLE clips ADD COLUMN number BIGINT CHECK (number > 0);
ALTER TABLE clips ADD COLUMN public_id BIGINT CHECK (public_id > 0);

UPDATE clips
SET scope = CASE WHEN guild_id IS NOT NULL THEN guild_id
                 WHEN channel_id IS NOT NULL THEN -channel_id
                 ELSE 0 END,
    number = id;

CREATE UNIQUE INDEX clips_scope_number ON clips (scope, number);
CREATE UNIQUE INDEX clips_public_id ON clips (public_id) WHERE public_id IS NOT NULL;
