"""The storage layer's row types: what ``bot.store`` takes and returns (no SQL here)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

log = logging.getLogger(__name__)

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


@dataclass(frozen=True, kw_only=True)
class TopEntry:
    """One line of the chart: ``score`` is the Bayesian average used for ranking."""

    rank: int
    clip_id: int
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
    """A persisted compose job (``bot.jobs`` keeps the live ones in memory)."""

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
    """A clip or a seed in a lineage: ``label`` is the clip's style or the seed's name."""

    kind: str
    id: int
    label: str
    user_id: int
    user_name: str
    deleted: bool = False


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
