"""The blind A/B arena: two clips of one prompt by two hidden models, members' votes, and the
Bradley-Terry leaderboard (no Discord; storage through ``cadenza.store``).

``Cadenza.arena`` is the service. ``plan`` picks two models that can play the prompt's style
and meter, the least-voted pair first; the job queue runs ``compose_pair`` (both clips, then
the pair row); members ``vote`` (changeable until they ``reveal`` which model was which) and
``leaderboard`` fits Bradley-Terry ratings to the decisive votes.
"""

from __future__ import annotations

import logging
import random
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from itertools import combinations
from typing import Any

from cadenza import bradley_terry
from cadenza.bradley_terry import PROVISIONAL_VOTES, Rating
from cadenza.errors import ResourceError, UserError
from cadenza.exports import format_rows
from cadenza.library import ClipResult
from cadenza.members import UserRef, Where
from cadenza.runtime import Workers
from cadenza.service import DEFAULT_STYLE, Composer, ComposeRequest, Resolved
from cadenza.store import Store
from cadenza.store_rows import ARENA_CHOICES, ArenaVote, NewPair

# ``compose(resolved, user, where, progress=...)``: the application's whole clip pipeline
Compose = Callable[..., Awaitable[ClipResult]]

log = logging.getLogger(__name__)

DEFAULT_BARS = 4  # short clips: a member listens to both before voting
# A rater with at least this many A/B votes, every one for the same model, is flagged.
ONE_SIDED_MIN_VOTES = 3
BOOTSTRAP = 200  # resamples for the leaderboard's 95% intervals
CHOICE_WORDS = {"a": "A better", "b": "B better", "tie": "tie", "bad": "both bad"}
OUTCOMES = {"a": 1.0, "b": 0.0, "tie": 0.5}  # "bad" says nothing about the order
EXPORT_COLUMNS = (
    "pair_id", "user_id", "user_name", "choice", "winner", "voted_at", "updated_at",
    "revealed_at", "model_a", "model_b", "clip_a", "clip_b", "style", "bars", "tempo", "key",
    "meter", "seed", "requested_by", "pair_created_at",
)

# ``progress(stage, part)``: a stage of ``cadenza.app.STAGES`` begins for clip ``part`` (0 = A).
PairProgress = Callable[[str, int], None]


@dataclass(frozen=True)
class Matchup:
    """The two models of a pair, in the order shown (A first); kept with the job so a retry
    after a restart makes the same pair again."""

    model_a: str
    model_b: str

    def to_params(self) -> dict[str, str]:
        return {"a": self.model_a, "b": self.model_b}

    @classmethod
    def from_params(cls, params: Mapping[str, Any] | None) -> Matchup | None:
        """The matchup a job row stored (``job_params``); None for any other job."""
        if not params:
            return None
        a, b = params.get("a"), params.get("b")
        if not (isinstance(a, str) and isinstance(b, str) and a and b and a != b):
            raise UserError("this arena request was stored in a form Cadenza no longer reads")
        return cls(a, b)


@dataclass
class ArenaResult:
    """A made pair: the prompt (its ``model`` is A's) and both clips."""

    pair_id: int
    resolved: Resolved
    a: ClipResult
    b: ClipResult
    timings: dict[str, float] = field(default_factory=dict)

    def summary(self) -> str:
        """The prompt, without the models: 'arena #3: jazz, 4 bars, 120 bpm, key F, 4/4, ...'."""
        r = self.resolved
        bars = "bar" if r.bars == 1 else "bars"
        return (f"arena #{self.pair_id}: {r.style}, {r.bars} {bars}, {r.tempo} bpm, key {r.key}, "
                f"{r.meter}, temperature {r.temperature:g}, seed {r.seed}")


@dataclass(frozen=True)
class VoteResult:
    pair_id: int
    choice: str
    previous: str | None
    tally: dict[str, int]

    @property
    def votes(self) -> int:
        return sum(self.tally.values())

    def tally_text(self) -> str:
        """'A 3 · B 1 · tie 0 · both bad 1'."""
        names = {"a": "A", "b": "B", "tie": "tie", "bad": "both bad"}
        return " · ".join(f"{names[c]} {self.tally.get(c, 0)}" for c in ARENA_CHOICES)


@dataclass(frozen=True)
class Reveal:
    pair_id: int
    model_a: str
    model_b: str
    choice: str  # the member's (now final) vote

    @property
    def winner(self) -> str | None:
        """The model the member voted better (None for a tie or 'both bad')."""
        return {"a": self.model_a, "b": self.model_b}.get(self.choice)

    def text(self) -> str:
        """'arena #3: A was lstm, B was gru; your vote: A better (lstm)'."""
        winner = f" ({self.winner})" if self.winner else ""
        return (f"arena #{self.pair_id}: A was {self.model_a}, B was {self.model_b}; your vote: "
                f"{CHOICE_WORDS[self.choice]}{winner}")


@dataclass(frozen=True)
class Leaderboard:
    """Bradley-Terry ratings from the decisive votes (A better, B better, tie; best first) and
    what stays outside the fit: 'both bad' votes, and raters who only ever vote one way."""

    style: str | None
    ratings: list[Rating]
    bad: dict[str, int]  # 'both bad' votes per model
    unrated: list[str]  # models with 'both bad' votes only
    decisive: int
    ties: int
    bad_votes: int
    raters: int
    one_sided: int  # raters with >= ONE_SIDED_MIN_VOTES A/B votes, all for one model

    def lines(self, *, markdown: bool = False) -> list[str]:
        """One line per model: '1. lstm 1087 (1012–1160), 23 vote(s), 14 win(s), 2 both bad'.

        ``markdown`` bolds the rank and rating and separates fields with '·' (Discord embeds).
        """
        b = (lambda t: f"**{t}**") if markdown else (lambda t: t)
        sep = " · " if markdown else ", "
        out = []
        for rank, r in enumerate(self.ratings, start=1):
            head = (f"{b(f'{rank}.')} {r.model} — {b(f'{r.rating:.0f}')}" if markdown
                    else f"{rank}. {r.model} {r.rating:.0f}")
            fields = [f"{head} ({r.low:.0f}–{r.high:.0f})", f"{r.votes} vote(s)",
                      f"{r.wins:g} win(s)"]
            if self.bad.get(r.model):
                fields.append(f"{self.bad[r.model]} both bad")
            if r.provisional:
                fields.append("*provisional*" if markdown else "provisional")
            out.append(sep.join(fields))
        for model in self.unrated:
            head = f"{b('–')} {model} — " if markdown else f"–. {model}: "
            out.append(f"{head}no decisive votes yet{sep}{self.bad[model]} both bad")
        return out

    def footnote(self) -> str:
        """How to read it, with the counts left out of the fit."""
        text = (f"Bradley–Terry ratings on an Elo-like scale (1000 = average; 400 points = 10:1 "
                f"odds) with 95% bootstrap intervals, from {self.decisive} vote(s) by "
                f"{self.raters} member(s); a tie counts half a win each way. Provisional: "
                f"fewer than {PROVISIONAL_VOTES} votes. 'Both bad' votes ({self.bad_votes}) "
                "are counted but left out of the ratings.")
        if self.one_sided:
            text += (f" {self.one_sided} rater(s) voted for one model only (at least "
                     f"{ONE_SIDED_MIN_VOTES} votes, every one for the same model).")
        return text


def build_leaderboard(votes: Sequence[ArenaVote], style: str | None = None, *,
                      boot: int = BOOTSTRAP, seed: int = 0) -> Leaderboard:
    """The leaderboard for ``votes`` (CPU work: run it off the event loop)."""
    decisive = [(v.model_a, v.model_b, OUTCOMES[v.choice]) for v in votes if v.choice in OUTCOMES]
    fitted = bradley_terry.ratings(decisive, boot=boot, seed=seed)
    bad: Counter[str] = Counter()
    winners: defaultdict[int, set[str]] = defaultdict(set)
    counted: Counter[int] = Counter()
    for v in votes:
        if v.choice == "bad":
            bad.update((v.model_a, v.model_b))
        elif v.choice in ("a", "b"):
            winners[v.user_id].add(v.model_a if v.choice == "a" else v.model_b)
            counted[v.user_id] += 1
    one_sided = sum(1 for user, won in winners.items()
                    if len(won) == 1 and counted[user] >= ONE_SIDED_MIN_VOTES)
    rated = {r.model for r in fitted}
    return Leaderboard(
        style=style, ratings=fitted, bad=dict(bad), unrated=sorted(set(bad) - rated),
        decisive=len(decisive), ties=sum(1 for v in votes if v.choice == "tie"),
        bad_votes=sum(1 for v in votes if v.choice == "bad"),
        raters=len({v.user_id for v in votes}), one_sided=one_sided)


def format_arena(rows: list[dict], fmt: str) -> str:
    """Rows from ``Store.export_arena`` as CSV or a JSON array."""
    return format_rows(rows, fmt, EXPORT_COLUMNS)


class Arena:
    """The arena (``Cadenza.arena``): ``store`` keeps pairs and votes, ``composer`` knows the
    models, ``workers`` run blocking steps, ``compose`` makes and stores each clip; ``rng``
    picks pairs and orders."""

    def __init__(self, store: Store, composer: Composer, workers: Workers, compose: Compose,
                 rng: random.Random | None = None) -> None:
        self.store = store
        self.composer = composer
        self.workers = workers
        self.compose = compose
        self.rng = rng or random.Random()

    # ---- making a pair
    def capable(self, r: Resolved) -> list[str]:
        """The installed models that can play ``r``'s style in its meter. Blocking: loads each
        checkpoint once (the registry keeps them), so run it in a thread.

        """
        names = []
        for name in self.composer.model_names():
            try:
                if self.composer.can_play(name, r.style, r.meter):
                    names.append(name)
            except UserError as e:  # a corrupt or missing checkpoint: leave it out
                log.warning("arena: skipping model %s: %s", name, e)
        return names

    async def plan(self, style: str | None = None, bars: int | None = None, *,
                   seed: int | None = None) -> tuple[Resolved, Matchup]:
        """The prompt (style, bars, tempo, key, meter and seed fixed; its model is A's) and two
        different models for it: of the pairs that can play it, one that has drawn the fewest
        votes in this style (then the fewest posts), at random; A and B in random order."""
        installed = self.composer.model_names()
        if len(installed) < 2:
            raise ResourceError(f"the arena needs at least two models (installed: "
                                f"{', '.join(installed) or 'none'})")
        prompt = self.composer.resolve(ComposeRequest(
            style=style or DEFAULT_STYLE, bars=bars or DEFAULT_BARS, seed=seed))
        names = await self.workers.run_quick(self.capable, prompt, stage="generate")
        if len(names) < 2:
            raise UserError(f"the arena needs two models that can play {prompt.style} in "
                            f"{prompt.meter}; only {' and '.join(names) or 'none'} can: "
                            "try another style")
        seen = {(c.first, c.second): (c.votes, c.pairs)
                for c in await self.store.arena_pair_counts(style=prompt.style)}
        pairs = list(combinations(sorted(names), 2))
        fewest = min(seen.get(p, (0, 0)) for p in pairs)
        first, second = self.rng.choice([p for p in pairs if seen.get(p, (0, 0)) == fewest])
        if self.rng.random() < 0.5:
            first, second = second, first
        return replace(prompt, model=first), Matchup(first, second)

    def check(self, matchup: Matchup) -> None:
        """Refuse a stored matchup whose models are gone (e.g. before a retry)."""
        for name in (matchup.model_a, matchup.model_b):
            self.composer.check_model(name)

    async def compose_pair(self, r: Resolved, matchup: Matchup, user: UserRef, where: Where, *,
                           progress: PairProgress | None = None) -> ArenaResult:
        """Compose, render and store A, then B (the same prompt, each its own model), then the
        pair. A failure after A leaves clip A stored without a pair."""
        clips = []
        for part, model in enumerate((matchup.model_a, matchup.model_b)):
            report = None if progress is None else _part_progress(progress, part)
            clips.append(await self.compose(replace(r, model=model), user, where,
                                                progress=report))
        a, b = clips
        pair_id = await self.store.add_pair(NewPair(
            clip_a=a.clip_id, clip_b=b.clip_id, model_a=matchup.model_a,
            model_b=matchup.model_b, style=r.style, user_id=user.id, user_name=user.name,
            guild_id=where.guild_id, channel_id=where.channel_id))
        log.info("%s got arena #%d (%s vs %s, %s)", user.name, pair_id, matchup.model_a,
                 matchup.model_b, r.style)
        timings = {k: a.timings.get(k, 0.0) + b.timings.get(k, 0.0)
                   for k in {*a.timings, *b.timings}}
        return ArenaResult(pair_id, replace(r, model=matchup.model_a), a, b, timings)

    # ---- votes
    async def vote(self, pair_id: int, user: UserRef, choice: str,
                   where: Where | None = None) -> VoteResult:
        """One vote per member per pair; a new vote replaces the old one until revealed. With
        ``where``, a pair posted in another server is refused: its voters have not heard it."""
        if where is not None:
            pair = await self.store.get_pair(pair_id)
            if pair is not None and pair.guild_id is not None and pair.guild_id != where.guild_id:
                raise UserError(f"arena #{pair_id} was posted in another server: vote there")
        change = await self.store.set_arena_vote(pair_id, user.id, choice, user.name)
        return VoteResult(pair_id, choice, change.previous, change.tally)

    async def reveal(self, pair_id: int, user: UserRef) -> Reveal:
        """Which model made A and which B, for a member who has voted (their vote is final)."""
        vote = await self.store.reveal_arena(pair_id, user.id)
        if vote is None:
            if await self.store.get_pair(pair_id) is None:
                raise UserError(f"no arena #{pair_id}")
            raise UserError(f"vote on arena #{pair_id} first: the models stay hidden until you "
                            "have voted")
        return Reveal(pair_id, vote.model_a, vote.model_b, vote.choice)

    async def set_message(self, pair_id: int, *, guild_id: int | None,
                          channel_id: int | None, message_id: int) -> None:
        """Where the pair was posted."""
        await self.store.set_pair_message(pair_id, guild_id=guild_id, channel_id=channel_id,
                                          message_id=message_id)

    async def leaderboard(self, style: str | None = None) -> Leaderboard:
        votes = await self.store.arena_votes(style=style)
        return await self.workers.run_quick(build_leaderboard, votes, style, stage="other")

    async def export(self, fmt: str) -> str:
        """Every arena vote with its pair as CSV or JSON text."""
        if fmt not in ("csv", "json"):
            raise UserError(f"unknown export format {fmt!r}: use csv or json")
        return format_arena(await self.store.export_arena(), fmt)


def _part_progress(progress: PairProgress, part: int) -> Callable[[str], None]:
    return lambda stage: progress(stage, part)
