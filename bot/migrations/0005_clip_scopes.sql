-- Cadenza schema v5: clips belong to the server (or DM, or the offline console) they were made
-- in, numbered there: "#12" is the twelfth clip of this server, and another server's clips
-- cannot be reached by number at all. A clip its owner publishes gets a random public id,
-- which works everywhere.
--
-- scope: the guild id; for a direct message, minus the channel id; 0 for the console and CLI.
-- number: existing clips keep their id as their number, so every posted button
-- (rate:<clip>:<stars>, reroll:<clip> ...) and every "#12" already shown still names the same
-- clip in its server. Nothing is deleted or rewritten but these new columns.

ALTER TABLE clips ADD COLUMN scope INTEGER NOT NULL DEFAULT 0;
ALTER TABLE clips ADD COLUMN number INTEGER CHECK (number > 0);
ALTER TABLE clips ADD COLUMN public_id INTEGER CHECK (public_id > 0);

UPDATE clips
SET scope = CASE WHEN guild_id IS NOT NULL THEN guild_id
                 WHEN channel_id IS NOT NULL THEN -channel_id
                 ELSE 0 END,
    number = id;

CREATE UNIQUE INDEX clips_scope_number ON clips (scope, number);
CREATE UNIQUE INDEX clips_public_id ON clips (public_id) WHERE public_id IS NOT NULL;
