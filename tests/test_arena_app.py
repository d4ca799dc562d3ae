"""The arena in the application: fair pairing of two different models that can play the prompt,
both clips of one prompt with the models kept out of what members see, votes and reveals, the
leaderboard against ``cadenza.bradley_terry`` on a literal vote set, the job queue, and the console.
Real tiny checkpoints, real FluidSynth and ffmpeg, real SQLite files."""

from __future__ import annotations

import io
import random
import re
from pathlib import Path

import pytest
from test_arena_store import add_pair, literal_votes

from cadenza import bradley_terry
from cadenza.app import Cadenza
from cadenza.arena import ArenaResult, Matchup, build_leaderboard
from cadenza.console import Console
from cadenza.errors import UserError
from cadenza.jobs import Done, Stage, matchup_from_params
from cadenza.members import UserRef, Where
from cadenza.models.registry import ModelRegistry
from cadenza.service import Composer, ComposeRequest, Resolved
from cadenza.store import Store
from cadenza.wiring import job_queue

ALICE, BOB = UserRef(1, "alice"), UserRef(2, "bob")
HERE = Where(guild_id=10, channel_id=20)


def seed_with_meter(app: Cadenza, style: str, meter: tuple[int, int]) -> int:
    """A random seed whose prompt in ``style`` comes out in ``meter``."""
    return next(s for s in range(500)
                if app.composer.resolve(ComposeRequest(style=style, seed=s)).meter == meter)


@pytest.fixture
async def trio(tmp_path: Path, tiny_models: Path):
    """An application with only the lstm, gru and vae models."""
    registry = ModelRegistry({n: tiny_models / n / "model.pt" for n in ("lstm", "gru", "vae")})
    store = await Store.open(tmp_path / "trio.db")
    application = Cadenza(Composer(registry), store, output_dir=tmp_path / "out")
    yield application
    await application.close()
    await store.close()


# ---------------------------------------------------------------------------------------------
# Pairing


async def test_plan_picks_two_different_capable_models_for_one_prompt(app: Cadenza) -> None:
    assert app.composer.model_names() == ["gan", "gru", "lstm", "rnn", "vae"]
    three_four = seed_with_meter(app, "folk", (3, 4))
    prompt = app.composer.resolve(ComposeRequest(style="folk", bars=2, seed=three_four))
    # The GAN writes 4/4 only: it sits out a 3/4 prompt; in 4/4 everyone can play.
    assert capable(app, prompt) == ["gru", "lstm", "rnn", "vae"]
    jazz = app.composer.resolve(ComposeRequest(style="jazz", seed=1))
    assert capable(app, jazz) == ["gan", "gru", "lstm", "rnn", "vae"]

    seen = set()
    for k in range(12):
        app.arena.rng = random.Random(k)
        resolved, matchup = await app.arena.plan("folk", 2, seed=three_four)
        assert matchup.model_a != matchup.model_b and "gan" not in matchup.to_params().values()
        assert resolved.model == matchup.model_a
        # the prompt is fixed whichever models play it
        assert (resolved.style, resolved.bars, resolved.tempo, resolved.key, resolved.meter,
                resolved.seed, resolved.temperature) == (
            prompt.style, 2, prompt.tempo, prompt.key, (3, 4), three_four, 0.7)
        seen.add((matchup.model_a, matchup.model_b))
    assert len(seen) > 3  # at random, not always the same pair or order


def capable(app: Cadenza, prompt) -> list[str]:  # type: ignore[no-untyped-def]
    return app.arena.capable(prompt)  # blocking (loads checkpoints): fine in a test


async def test_least_voted_pair_first_then_fewest_posted(trio: Cadenza) -> None:
    store = trio.store
    # gru-lstm has two votes, gru-vae one, lstm-vae none yet (but was posted once).
    first = await add_pair(store, "gru", "lstm")
    second = await add_pair(store, "vae", "gru")
    await add_pair(store, "lstm", "vae")
    for pair_id, user_id in ((first, 5), (first, 6), (second, 5)):
        await store.set_arena_vote(pair_id, user_id, "a", f"user{user_id}")
    orders = set()
    for k in range(10):
        trio.arena.rng = random.Random(k)
        _, matchup = await trio.arena.plan("jazz", 1)
        assert {matchup.model_a, matchup.model_b} == {"lstm", "vae"}
        orders.add(matchup.model_a)
    assert orders == {"lstm", "vae"}  # A and B in random order
    # Votes equal (one each): the pair posted fewer times goes first.
    await store.set_arena_vote(3, 5, "bad", "user5")
    await store.set_arena_vote(first, 6, "tie", "user6")  # a change, not a new vote
    await add_pair(store, "gru", "vae")  # gru-vae now posted twice
    counts = {(c.first, c.second): (c.votes, c.pairs) for c in await store.arena_pair_counts()}
    assert counts == {("gru", "lstm"): (2, 1), ("gru", "vae"): (1, 2), ("lstm", "vae"): (1, 1)}
    _, matchup = await trio.arena.plan("jazz", 1)
    assert {matchup.model_a, matchup.model_b} == {"lstm", "vae"}


async def test_too_few_capable_models_is_refused_before_any_work(tmp_path: Path,
                                                                 tiny_models: Path) -> None:
    registry = ModelRegistry({n: tiny_models / n / "model.pt" for n in ("lstm", "gan")})
    store = await Store.open(tmp_path / "duo.db")
    app = Cadenza(Composer(registry), store, output_dir=tmp_path / "out")
    try:
        seed = seed_with_meter(app, "folk", (3, 4))
        with pytest.raises(UserError, match=r"^the arena needs two models that can play folk in "
                                            r"3/4; only lstm can: try another style$"):
            await app.arena.plan("folk", 1, seed=seed)
        _, matchup = await app.arena.plan("jazz", 1)  # 4/4: the GAN joins in
        assert {matchup.model_a, matchup.model_b} == {"lstm", "gan"}
        lone = Cadenza(Composer(ModelRegistry({"lstm": tiny_models / "lstm" / "model.pt"})),
                       store, output_dir=tmp_path / "out")
        with pytest.raises(UserError, match=r"^the arena needs at least two models "
                                            r"\(installed: lstm\)$"):
            await lone.arena.plan("jazz")
        await lone.close()
    finally:
        await app.close()
        await store.close()
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------------------------
# Making, voting, revealing


async def test_compose_pair_stores_two_clips_of_one_prompt_and_the_pair(app: Cadenza) -> None:
    app.arena.rng = random.Random(4)
    resolved, matchup = await app.arena.plan("jazz", 1, seed=321)
    stages: list[tuple[str, int]] = []
    result = await app.arena.compose_pair(resolved, matchup, ALICE, HERE,
                                          progress=lambda stage, part: stages.append(
                                              (stage, part)))
    assert isinstance(result, ArenaResult) and result.pair_id == 1
    assert [part for _, part in stages] == [0] * 5 + [1] * 5
    assert [stage for stage, _ in stages[:5]] == ["generate", "render", "encode", "pianoroll",
                                                  "store"]
    rows = [await app.store.get_clip(i) for i in (result.a.clip_id, result.b.clip_id)]
    a, b = rows
    assert a is not None and b is not None
    assert (a.model, b.model) == (matchup.model_a, matchup.model_b) and a.model != b.model
    prompt = [(c.style, c.bars, c.tempo, c.key, c.meter, c.seed, c.temperature) for c in rows]
    assert prompt[0] == prompt[1] == ("jazz", 1, float(resolved.tempo), resolved.key, "4/4", 321,
                                      1.0)
    assert a.midi[:4] == b"MThd" and a.midi != b.midi  # two models, two pieces
    for clip in (result.a, result.b):
        assert clip.files.mp3.stat().st_size > 1000
    pair = await app.store.get_pair(result.pair_id)
    assert pair is not None
    assert (pair.clip_a, pair.clip_b, pair.model_a, pair.model_b, pair.user_id,
            pair.guild_id, pair.channel_id) == (1, 2, matchup.model_a, matchup.model_b, 1, 10,
                                                20)
    # What members are shown names the prompt, never the models.
    summary = result.summary()
    assert summary == (f"arena #1: jazz, 1 bar, {resolved.tempo} bpm, key {resolved.key}, 4/4, "
                       "temperature 1, seed 321")
    assert not any(name in summary for name in app.composer.model_names())


async def test_votes_change_until_the_reveal_and_the_reveal_needs_a_vote(trio: Cadenza) -> None:
    pair_id = await add_pair(trio.store, "gru", "vae")
    first = await trio.arena.vote(pair_id, BOB, "tie")
    assert (first.previous, first.votes, first.tally_text()) == (None, 1,
                                                                 "A 0 · B 0 · tie 1 · both bad 0")
    again = await trio.arena.vote(pair_id, BOB, "b")
    assert (again.previous, again.tally_text()) == ("tie", "A 0 · B 1 · tie 0 · both bad 0")
    with pytest.raises(UserError, match=r"^vote on arena #1 first: the models stay hidden until "
                                        r"you have voted$"):
        await trio.arena.reveal(pair_id, ALICE)
    with pytest.raises(UserError, match=r"^no arena #5$"):
        await trio.arena.reveal(5, ALICE)
    reveal = await trio.arena.reveal(pair_id, BOB)
    assert reveal.text() == "arena #1: A was gru, B was vae; your vote: B better (vae)"
    with pytest.raises(UserError, match="so your vote there is final"):
        await trio.arena.vote(pair_id, BOB, "a")
    # the pair was posted in server 5: a vote from elsewhere (another server, a DM) is refused
    for elsewhere in (Where(guild_id=99, channel_id=1), Where()):
        with pytest.raises(UserError, match=r"^arena #1 was posted in another server: vote "
                                            r"there$"):
            await trio.arena.vote(pair_id, ALICE, "a", elsewhere)
    there = await trio.arena.vote(pair_id, ALICE, "a", Where(guild_id=5, channel_id=6))
    assert there.votes == 2


# ---------------------------------------------------------------------------------------------
# Leaderboard


async def test_leaderboard_is_bradley_terry_on_the_decisive_votes(trio: Cadenza) -> None:
    await literal_votes(trio.store)
    board = await trio.arena.leaderboard()
    # The same fit by hand: a = 1, b = 0, tie = 0.5; 'both bad' says nothing about the order.
    decisive = [
        ("lstm", "gru", 1.0), ("lstm", "gru", 1.0), ("lstm", "gru", 0.5), ("lstm", "gru", 1.0),
        ("gru", "vae", 1.0), ("gru", "vae", 0.0),
        ("vae", "lstm", 0.0), ("vae", "lstm", 0.0), ("vae", "lstm", 1.0), ("vae", "lstm", 0.0),
        ("lstm", "vae", 1.0), ("lstm", "vae", 0.5), ("lstm", "vae", 1.0),
    ]
    assert board.ratings == bradley_terry.ratings(decisive, boot=200, seed=0)
    # lstm: pair 1 3.5 of 4, pair 3 3 of 4, pair 4 2.5 of 3; vae 2.5 of 9; gru 1.5 of 6.
    assert [(r.model, r.votes, r.wins) for r in board.ratings] == [
        ("lstm", 11, 9.0), ("vae", 9, 2.5), ("gru", 6, 1.5)]
    assert all(r.provisional for r in board.ratings)
    assert (board.decisive, board.ties, board.bad_votes, board.raters) == (13, 2, 3, 6)
    # Bad votes: pair 1 (lstm, gru), pair 2 (gru, vae), pair 5 (rnn, lstm).
    assert board.bad == {"lstm": 2, "gru": 2, "vae": 1, "rnn": 1}
    assert board.unrated == ["rnn"]
    assert board.one_sided == 1  # member 15: three votes, all for lstm
    best = board.ratings[0]
    assert board.lines()[0] == (f"1. lstm {best.rating:.0f} ({best.low:.0f}–{best.high:.0f}), "
                                "11 vote(s), 9 win(s), 2 both bad, provisional")
    assert board.lines()[-1] == "–. rnn: no decisive votes yet, 1 both bad"
    assert "'Both bad' votes (3) are counted but left out of the ratings." in board.footnote()
    assert board.footnote().endswith("1 rater(s) voted for one model only (at least 3 votes, "
                                     "every one for the same model).")

    folk = await trio.arena.leaderboard("folk")
    assert folk.ratings == bradley_terry.ratings(
        [("lstm", "vae", 1.0), ("lstm", "vae", 0.5), ("lstm", "vae", 1.0)], boot=200, seed=0)
    assert (folk.style, folk.raters, folk.one_sided, folk.unrated) == ("folk", 3, 0, [])
    empty = build_leaderboard([], "ragtime")
    assert (empty.ratings, empty.lines(), empty.decisive) == ([], [], 0)


# ---------------------------------------------------------------------------------------------
# Through the job queue, and the console


async def test_an_arena_job_reports_both_clips_and_keeps_its_matchup(app: Cadenza) -> None:
    queue = job_queue(app)
    await queue.start()
    try:
        app.arena.rng = random.Random(2)
        resolved, matchup = await app.arena.plan("blues", 1, seed=8)
        job = await queue.submit(resolved, BOB, HERE, matchup=matchup)
        events = [e async for e in job.events()]
    finally:
        await queue.close()
    stages = [e for e in events if isinstance(e, Stage)]
    assert all((s.total, s.parts) == (10, 2) for s in stages)
    assert [s.index for s in stages] == sorted({s.index for s in stages})
    assert {s.part for s in stages} == {0, 1} and stages[-1].index == 10
    done = events[-1]
    assert isinstance(done, Done) and isinstance(done.result, ArenaResult)
    row = await app.store.get_job(job.id)  # type: ignore[arg-type]
    assert row is not None and row.status == "done" and row.clip_id == done.result.a.clip_id
    assert row.params["arena"] == matchup.to_params()
    # A retry after a restart rebuilds the same request.
    assert matchup_from_params(row.params) == matchup
    assert Resolved.from_params(row.params) == resolved
    assert matchup_from_params({"style": "jazz"}) is None
    with pytest.raises(UserError, match="no longer reads"):
        Matchup.from_params({"a": "lstm", "b": "lstm"})


async def test_console_arena_lines(trio: Cadenza, tmp_path: Path) -> None:
    out = io.StringIO()
    console = Console(trio, UserRef(0, "console"), out=out)
    trio.arena.rng = random.Random(0)
    for line in ("/arena style:celtic bars:1", "/arena vote 1 tie", "/arena vote pair:1 choice:A",
                 "/arena reveal pair:1", "/arena vote pair:1 choice:b", "/arena leaderboard",
                 "/arena leaderboard style:blues", "/arena jazz", "/arena vote pair:1 choice:c",
                 "/arena reveal pair:2"):
        await console.execute(line)
    lines = out.getvalue().splitlines()
    pair = await trio.store.get_pair(1)
    assert pair is not None
    assert re.fullmatch(r"composing an arena pair: 1 bar of celtic by two hidden models "
                        r"\(seed \d+\)…", lines[0])
    assert re.fullmatch(r"arena #1: celtic, 1 bar, \d+ bpm, key \w+, \d/\d, temperature 0.7, "
                        r"seed \d+", lines[1])
    out_dir = tmp_path / "out"
    assert lines[2] == f"  A: {out_dir / 'clip-1.mp3'}  {out_dir / 'clip-1.mid'}  " \
                       f"{out_dir / 'clip-1.png'}"
    assert lines[3].startswith(f"  B: {out_dir / 'clip-2.mp3'}")
    assert lines[4] == "  vote: /arena vote pair:1 choice:a|b|tie|bad"
    assert not any(name in "\n".join(lines[:5]) for name in trio.composer.model_names())
    assert lines[5:9] == [
        "your vote on arena #1: tie; 1 vote(s) so far: A 0 · B 0 · tie 1 · both bad 0",
        "  see which model made A and B: /arena reveal pair:1 (your vote is final then)",
        "your vote on arena #1: A better (was tie); 1 vote(s) so far: A 1 · B 0 · tie 0 · "
        "both bad 0",
        "  see which model made A and B: /arena reveal pair:1 (your vote is final then)",
    ]
    assert lines[9] == (f"arena #1: A was {pair.model_a}, B was {pair.model_b}; your vote: "
                        f"A better ({pair.model_a}); your vote is final")
    assert lines[10] == ("error: you have seen which model made A and B on arena #1, so your "
                         "vote there is final")
    assert lines[11] == "arena leaderboard:"
    assert re.fullmatch(rf"  1\. {pair.model_a} \d+ \(\d+–\d+\), 1 vote\(s\), 1 win\(s\), "
                        "provisional", lines[12])
    assert lines[14].startswith("Bradley–Terry ratings on an Elo-like scale")
    assert lines[15:] == [
        "no arena votes yet for blues: start one with /arena new",
        "error: /arena has no subcommand 'jazz': use new, vote, reveal, leaderboard",
        "error: unknown choice 'c': choose one of a, b, tie, bad",
        "error: no arena #2",
    ]
    # Another member has not revealed pair 1: its clips stay blind for them (nothing is made);
    # the console member has revealed it and sees clip A as usual.
    guest_out = io.StringIO()
    clips = await trio.store.clip_count()
    guest = Console(trio, UserRef(9, "guest"), out=guest_out)
    for line in ("/clip clip:1", "/continue clip:2", "/reroll clip:1", "/vary clip:2"):
        await guest.execute(line)
    assert guest_out.getvalue().splitlines() == [
        "error: clip #1 is A of arena #1: its model stays hidden until you have voted on the "
        "pair and revealed it",
        *(f"error: clip #{c} is {s} of arena #1: its model stays hidden until you have voted on "
          "the pair and revealed it" for c, s in ((2, "B"), (1, "A"), (2, "B"))),
    ]
    assert await trio.store.clip_count() == clips == 2
    before = out.tell()
    await console.execute("/clip clip:1")
    assert f"model {pair.model_a}" in out.getvalue()[before:]
