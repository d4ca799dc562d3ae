"""The storage layer's row types: what ``cadenza.store`` takes and returns (no SQL here)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

log = logging.getLogger(__name__)

CONSOLE_SCOPE = 0  # the offline console and the CLI share one scope
# A published clip's id: 12 digits, far from any server's own numbers, and drawn at random so
# it cannot be guessed from another.
PUBLIC_ID_MIN, PUBLIC_ID_MAX = 10**11, 10**12 - 1


def scope_of(guild_id: int | None, channel_id: int | None) -> int:
    """Where clips are numbered and seen: a server (its id), a direct-message channel (minus
    its id), or the console (0)."""
    if guild_id is not None:
        return guild_id
    if channel_id is not None:
        return -channel_id
    return CONSOLE_SCOPE


def ref_in(viewer: int, scope: int, number: int, public_id: int | None) -> int | None:
    """The number naming a clip of ``scope`` (``number`` there) for a viewer in ``viewer``."""
    if viewer == scope:
        return number
    return public_id

NODE_KINDS = ("clip", "seed")
RELATIONS = ("continues", "varies", "rerolls", "blends", "shares")


@dataclass(frozen=True)
class Parent:
    """What a new clip or seed is built on: ``kind`` 'clip' or 'seed', its id, the relation
    (one of ``RELATIONS``) and, for blends, which end it is ('a' or 'b')."""

    kind: str
    id: int
    relation: str
    role: str | None = None


@dataclass(frozen=True, kw_only=True)
class NewClip:
    """A generated clip to store; ``params`` is the full resolved request (JSON-serialisable)."""

    style: str
    bars: int
    tempo: float
    key: str
    meter: str
    temperature: float
    seed: int
    model: str
    midi: bytes = field(repr=False)
    duration_s: float
    user_id: int
    params: Mapping[str, Any] = field(default_factory=dict)
    checkpoint_sha: str | None = None
    guild_id: int | None = None
    channel_id: int | None = None
    message_id: int | None = None
    # When set, the author is created or renamed in the same transaction as the clip.
    user_name: str | None = None
    # None means "now"; naive datetimes are taken as UTC.
    created_at: datetime | None = None
    # Lineage links, written in the same transaction as the clip.
    parents: Sequence[Parent] = ()


@dataclass(frozen=True, kw_only=True)
class Clip:
    """A stored clip with its rating summary (the author's own votes are not counted)."""

    id: int
    style: str
    bars: int
    tempo: float
    key: str
    meter: str
    temperature: float
    seed: int
    model: str
    checkpoint_sha: str | None
    params: dict[str, Any]
    midi: bytes = field(repr=False)
    duration_s: float
    user_id: int
    user_name: str
    guild_id: int | None
    channel_id: int | None
    message_id: int | None
    created_at: datetime
    rating_count: int
    rating_mean: float | None
    scope: int = CONSOLE_SCOPE  # where it was made (``scope_of``); it is numbered there
    number: int = 0  # "#12" in its scope (existing clips: their id)
    public_id: int | None = None  # set while its owner has it published: works everywhere

    def ref_in(self, scope: int) -> int | None:
        """The number that names this clip in ``scope``: its own there, its public id
        elsewhere while published; None where it cannot be seen."""
        return ref_in(scope, self.scope, self.number, self.public_id)


@dataclass(frozen=True, kw_only=True)
class TopEntry:
    """One line of the chart: ``score`` is the Bayesian average used for ranking."""

    rank: int
    clip_id: int
    number: int  # what members of its server call it ("#12")
    style: str
    model: str
    bars: int
    tempo: float
    key: str
    meter: str
    user_id: int
    user_name: str
    guild_id: int | None
    channel_id: int | None
    message_id: int | None
    created_at: datetime
    rating_count: int
    rating_mean: float
    score: float


JOB_STATUSES = ("queued", "running", "done", "failed", "cancelled")


@dataclass(frozen=True, kw_only=True)
class JobRow:
    """A persisted compose job (``cadenza.jobs`` keeps the live ones in memory)."""

    id: int
    status: str
    user_id: int
    user_name: str
    guild_id: int | None
    channel_id: int | None
    message_id: int | None
    params: dict[str, Any]
    clip_id: int | None
    error: str | None
    interrupted: bool
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    notified_at: datetime | None
    # Schema v7: the process running it and until when (None: no lease), and the member's
    # answer (the clip or the failure notice) once posted.
    owner: str | None = None
    lease_until: datetime | None = None
    answered_at: datetime | None = None
    answer_message_id: int | None = None


@dataclass(frozen=True, kw_only=True)
class GroupStats:
    """Listening-test numbers for one model or style; self-votes are excluded throughout.

    ``mos`` is the mean opinion score (mean of the counted star votes) and ``ci95`` the
    half-width of its 95% Student-t confidence interval over those votes (None below 2 votes).
    """

    group: str
    clips: int
    rated_clips: int
    raters: int
    votes: int
    mos: float | None
    sd: float | None
    ci95: float | None


SEED_NAME_MAX = 32
SEED_SOURCES = ("clip", "upload", "notes")


@dataclass(frozen=True, kw_only=True)
class NewSeed:
    """A seed to store: its motif (``Motif.to_json()``) and where it came from."""

    name: str
    user_id: int
    user_name: str
    guild_id: int | None
    public: bool
    source_kind: str  # one of SEED_SOURCES
    source_ref: str
    motif_json: str = field(repr=False)
    parents: Sequence[Parent] = ()
    created_at: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class Seed:
    id: int
    name: str
    guild_id: int | None
    user_id: int
    user_name: str
    public: bool
    source_kind: str
    source_ref: str
    motif_json: str = field(repr=False)
    created_at: datetime
    deleted_at: datetime | None
    deleted_by: int | None

    @property
    def deleted(self) -> bool:
        return self.deleted_at is not None


@dataclass(frozen=True, kw_only=True)
class SeedPage:
    """One page of a seed list; ``total`` counts every match, ``page`` is 1-based."""

    seeds: list[Seed]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


@dataclass(frozen=True, kw_only=True)
class Node:
    """A clip or a seed in a lineage: ``label`` is the clip's style or the seed's name; a clip
    also carries what names it where (``Clip.ref_in``)."""

    kind: str
    id: int
    label: str
    user_id: int
    user_name: str
    deleted: bool = False
    scope: int = 0
    number: int | None = None
    public_id: int | None = None

    def ref_in(self, scope: int | None) -> int | None:
        """A clip's number as seen from ``scope`` (None: its own number)."""
        number = self.number if self.number is not None else self.id
        if scope is None:
            return number
        return ref_in(scope, self.scope, number, self.public_id)


@dataclass(frozen=True, kw_only=True)
class Link:
    """``child`` was built on ``parent``; ``depth`` is the child's distance from the start of
    the walk (0: the clip or seed asked about, for ancestors; its children are 1 below a seed)."""

    child: Node
    parent: Node
    relation: str
    role: str | None
    depth: int


ARENA_CHOICES = ("a", "b", "tie", "bad")  # A better, B better, tie, both bad


@dataclass(frozen=True, kw_only=True)
class NewPair:
    """An arena pair to store: two stored clips of one prompt, as shown (A first)."""

    clip_a: int
    clip_b: int
    model_a: str
    model_b: str
    style: str
    user_id: int
    user_name: str
    guild_id: int | None = None
    channel_id: int | None = None
    created_at: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class ArenaPair:
    id: int
    clip_a: int
    clip_b: int
    model_a: str
    model_b: str
    style: str
    user_id: int
    user_name: str
    guild_id: int | None
    channel_id: int | None
    message_id: int | None
    created_at: datetime


@dataclass(frozen=True, kw_only=True)
class ArenaVote:
    """One member's vote on a pair, with the pair's models (for the leaderboard)."""

    pair_id: int
    user_id: int
    choice: str  # one of ARENA_CHOICES
    model_a: str
    model_b: str
    style: str
    revealed: bool


@dataclass(frozen=True, kw_only=True)
class VoteChange:
    """What ``Store.set_arena_vote`` did: the previous choice (None for a first vote) and the
    pair's tally afterwards, by choice."""

    previous: str | None
    tally: dict[str, int]


@dataclass(frozen=True, kw_only=True)
class PairCount:
    """How often two models (in name order) met in the arena: pairs posted and votes cast."""

    first: str
    second: str
    pairs: int
    votes: int


QUEUE_STATUSES = ("queued", "playing", "played", "skipped", "stopped")
PARTY_KINDS = ("compose", "arena")


@dataclass(frozen=True)
class QueueEntry:
    """A clip in a server's play queue (or its history), with what a listener sees of it."""

    id: int
    guild_id: int
    clip_id: int
    number: int | None  # what names the clip in that server (None: withdrawn since queued)
    user_id: int  # who queued it
    user_name: str
    party_id: int | None
    status: str
    style: str
    bars: int
    tempo: float
    key: str
    duration_s: float

    @property
    def label(self) -> str:
        """'clip #12' in that server, or what is left to say of a withdrawn one."""
        return f"clip #{self.number}" if self.number is not None else "a clip no longer shared"


@dataclass(frozen=True)
class Party:
    id: int
    guild_id: int
    channel_id: int
    voice_channel_id: int
    user_id: int
    user_name: str
    kind: str
    style: str
    bars: int
    count: int
    status: str
    job_id: int | None
    pair_id: int | None
    message_id: int | None
    composed: int  # clips composed for it so far


@dataclass(frozen=True)
class PartyRank:
    """One clip of a party in its ranking: mean of the counted stars (not its maker's)."""

    rank: int
    clip_id: int
    number: int
    position: int  # 1 = played first
    votes: int
    mean: float | None


@dataclass(frozen=True)
class PlayerRow:
    guild_id: int
    voice_channel_id: int | None
    text_channel_id: int | None
    message_id: int | None
