"""Listening together (no Discord): each server's play queue, kept in the store so a restart
loses nothing, and listening parties (a host's clips composed through the job queue, played in
turn, ranked by the votes cast while they played).

The Discord adapter plays the audio (``cadenza.discord.player``); this module decides what plays
and remembers it. ``Cadenza.listening`` is the service.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from cadenza import playback
from cadenza.errors import UserError
from cadenza.library import Library
from cadenza.members import UserRef, Where
from cadenza.runtime import Workers
from cadenza.service import Composer, ComposeRequest, Resolved
from cadenza.store import Store
from cadenza.store_rows import Clip, JobRow, Party, PartyRank, PlayerRow, QueueEntry

log = logging.getLogger(__name__)

IDLE_SECONDS = 120.0  # a player with nothing to play leaves voice after this
VOICE_NEEDS_DISCORD = ("voice needs Discord: the console has no voice channel to play in "
                       "(/play clip:<number> names a clip's MP3 to play here)")


def entry_line(entry: QueueEntry) -> str:
    """'clip #12 · jazz · 8 bars · F · 120 bpm · 18 s'."""
    bars = "bar" if entry.bars == 1 else "bars"
    return (f"{entry.label} · {entry.style} · {entry.bars} {bars} · {entry.key} · "
            f"{entry.tempo:g} bpm · {entry.duration_s:.0f} s")


def ranking_lines(ranks: Sequence[PartyRank]) -> list[str]:
    """'1. clip #14 — 4.50★ from 2 vote(s) (played 3rd)' per clip, best first."""
    lines = []
    for r in ranks:
        score = f"{r.mean:.2f}★ from {r.votes} vote(s)" if r.mean is not None else "no votes"
        lines.append(f"{r.rank}. clip #{r.number} — {score} (played {_ordinal(r.position)})")
    return lines


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


@dataclass
class Listening:
    """Play queues and parties (``Cadenza.listening``)."""

    store: Store  # keeps queues, parties and players
    composer: Composer  # plans party clips
    workers: Workers  # decodes clips for voice
    library: Library  # finds the clips, made again from their MIDI when gone

    # ---- the play queue
    async def clip_to_play(self, ref: int | None, where: Where, viewer: UserRef) -> Clip:
        """The clip ``/play`` means: ``ref`` as everywhere else, or with no ref the newest clip
        made in this channel."""
        if ref is not None:
            return await self.library.visible_clip(ref, where, viewer)
        clip = await self.store.newest_clip(where.scope, where.channel_id)
        if clip is None:
            raise UserError("no clip has been made in this channel yet: /compose one, or "
                            "/play clip:<number>")
        return clip

    async def enqueue(self, clip: Clip, user: UserRef, guild_id: int, *,
                      party_id: int | None = None) -> QueueEntry:
        return await self.store.enqueue_clip(guild_id, clip.id, user.id, user.name,
                                             party_id=party_id)

    async def queue(self, guild_id: int) -> list[QueueEntry]:
        return await self.store.open_queue(guild_id)

    async def next(self, guild_id: int) -> QueueEntry | None:
        return await self.store.start_next(guild_id)

    async def finish(self, entry: QueueEntry, status: str) -> None:
        await self.store.finish_entry(entry.id, status)

    async def stop(self, guild_id: int) -> int:
        """Empty the queue and stop the server's open parties; returns the entries dropped."""
        return await self.store.stop_queue(guild_id)

    async def pcm(self, entry: QueueEntry) -> bytes:
        """The entry's audio as voice PCM (``cadenza.playback``): its clip's MP3 (found by the
        clip's id: another server's published clip has another number there), rendered again
        from its MIDI if its files are gone, decoded under the 'upload' deadline."""
        row = await self.store.get_clip(entry.clip_id)
        if row is None:
            raise UserError(f"{entry.label} is gone")
        files = await self.library.clip_files(row)
        return await self.workers.run_quick(playback.decode, files.mp3, stage="upload")

    # ---- parties
    def plan_party_clip(self, party: Party) -> Resolved:
        """A new prompt for the party's next clip: its style and bars, a fresh random seed."""
        return self.composer.resolve_installed(ComposeRequest(style=party.style, bars=party.bars))

    async def ranking(self, party_id: int) -> list[PartyRank]:
        return await self.store.party_ranking(party_id)

    async def claim_party_jobs(self, jobs: Sequence[JobRow]) -> list[JobRow]:
        """Interrupted jobs minus those a party was composing (it composes them again)."""
        return await self.store.claim_party_jobs(jobs)

    async def open_parties(self, guild_id: int | None = None) -> list[Party]:
        """The parties still open (in ``guild_id``, or everywhere)."""
        return await self.store.open_parties(guild_id)

    async def add_party(self, *, guild_id: int, channel_id: int, voice_channel_id: int,
                        user: UserRef, kind: str, style: str, bars: int, count: int) -> Party:
        return await self.store.add_party(
            guild_id=guild_id, channel_id=channel_id, voice_channel_id=voice_channel_id,
            user_id=user.id, user_name=user.name, kind=kind, style=style, bars=bars,
            count=count)

    async def party(self, party_id: int) -> Party | None:
        return await self.store.get_party(party_id)

    async def update_party(self, party_id: int, **values: int | str | None) -> None:
        """Set a party's ``job_id``, ``pair_id``, ``message_id`` or ``status``."""
        await self.store.update_party(party_id, **values)

    async def party_entries(self, party_id: int) -> list[QueueEntry]:
        return await self.store.party_entries(party_id)

    # ---- players (which voice channel and message each server's player uses)
    async def queued_guilds(self) -> list[int]:
        """Servers with clips waiting in their queue (their players resume after a restart)."""
        return await self.store.queued_guilds()

    async def player(self, guild_id: int) -> PlayerRow | None:
        return await self.store.get_player(guild_id)

    async def set_player(self, guild_id: int, *, voice_channel_id: int | None,
                         text_channel_id: int | None, message_id: int | None) -> None:
        await self.store.set_player(guild_id, voice_channel_id=voice_channel_id,
                                    text_channel_id=text_channel_id, message_id=message_id)
