"""Seed music: motifs from scores, continuation keeps the seed verbatim, variations, VAE blends."""

from __future__ import annotations

import pytest

from cadenza.music.midi_io import midi_to_score
from cadenza.music.motif import Motif, MotifError
from cadenza.music.notation import parse_notes
from cadenza.music.score import COMMON_TIME, GRID, Meter, Note, Score, Track
from cadenza.music.theory import Chord, Key
from cadenza.service import Composer, ComposeRequest
from cadenza.styles import STYLES


def motif_from(text: str, meter: Meter = COMMON_TIME) -> Motif:
    return Motif.from_score(parse_notes(text, meter=meter))[0]


def test_motif_from_typed_notes_infers_chords_and_round_trips_json() -> None:
    m = motif_from("C4/4 E G C5 | A4/2 G/2 | F/4 A C5 A4 | G/1")
    assert m.bars == 4 and m.meter == (4, 4) and m.notes[0] == Note(0, 12, 60, m.notes[0].velocity)
    assert m.chords and m.chords[0][0] == 0
    assert Motif.from_json(m.to_json()) == m


def test_motif_bar_range_and_errors() -> None:
    score = Score(tracks=(Track("Lead", notes=tuple(Note(b * 48, 24, 60 + b, 80)
                                                    for b in range(6))),),
                  chords=(), bars=6)
    m, warnings = Motif.from_score(score, (2, 3))
    assert m.bars == 2 and [n.pitch for n in m.notes] == [61, 62] and m.notes[0].start == 0
    assert not warnings
    m, warnings = Motif.from_score(score, (1, 6), max_bars=4)
    assert m.bars == 4 and "kept bars 1-4 of 1-6" in warnings[0]
    with pytest.raises(MotifError, match="bar 9 is past the end"):
        Motif.from_score(score, (9, 10))
    with pytest.raises(MotifError, match="no melody notes"):
        Motif.from_score(Score(tracks=(Track("x", notes=(Note(0, 12, 60, 80),)),), bars=3),
                         (2, 3))


def test_continuation_keeps_the_seed_verbatim_then_adds_the_new_bars(composer: Composer) -> None:
    seed = motif_from("D4/8 F# A D5 | C#5/4 A4/4 B/2")
    r = composer.resolve(ComposeRequest(style="folk", bars=4, seed=3, key="D"))
    comp = composer.compose(r, motif=seed)
    assert comp.resolved.primer_bars == 2 and comp.resolved.total_bars == 6
    assert comp.score.bars == 6 and comp.score.time_signature == (4, 4)
    lead = comp.score.track("lead")
    scale = comp.score.resolution // GRID
    first = [(n.start // scale, n.pitch) for n in lead.notes if n.start < 2 * 48 * scale]
    assert first == [(n.start, n.pitch) for n in seed.notes]
    assert any(n.start >= 2 * 48 * scale for n in lead.notes)
    # same seed music + parameters + checkpoint -> identical MIDI
    assert composer.compose(r, motif=seed).midi == comp.midi


def test_continuation_transposes_the_seed_to_a_requested_key(composer: Composer) -> None:
    seed = motif_from("C4/4 E G C5")
    comp = composer.compose(composer.resolve(ComposeRequest(style="jazz", bars=1, key="Eb",
                                                            seed=1)), motif=seed)
    assert comp.resolved.key == "Eb"
    lead_pitches = [n.pitch for n in comp.score.track("lead").notes][:4]
    assert lead_pitches == [63, 67, 70, 75]


def test_variation_keeps_harmony_and_rhythm_and_changes_pitches(composer: Composer) -> None:
    r = composer.resolve(ComposeRequest(style="classical", bars=4, seed=8))
    src = midi_to_score(composer.compose(r).midi)
    variants = [composer.variation(src, r.with_seed(s)) for s in (1, 2, 3)]
    src_lead = src.track("lead").notes
    for v in variants:
        got_score = midi_to_score(v.midi)
        got = got_score.track("lead").notes
        # onsets exactly; lengths up to the token grid's rounding (DURATIONS)
        assert [n.start for n in got] == [n.start for n in src_lead]
        assert all(abs(a.duration - b.duration) <= 2 for a, b in zip(got, src_lead, strict=True))
        assert [(c.start, c.chord) for c in got_score.chords] == [(c.start, c.chord)
                                                          for c in src.chords]
    assert len({tuple(n.pitch for n in midi_to_score(v.midi).track("lead").notes)
                for v in variants}) > 1


def test_blend_is_deterministic_for_a_seed_and_fills_the_bars(composer: Composer) -> None:
    a = motif_from("C4/8 D E F G A B C5 | C5/2 G4/2")
    b = motif_from("A4/4 G F E | D/2 C/2", meter=Meter(4, 4)).transpose(2)
    r = composer.resolve(ComposeRequest(style="folk", bars=6, seed=5, model="vae"))
    one, two = composer.blend(a, b, r), composer.blend(a, b, r)
    assert one.midi == two.midi and one.score.bars == 6 and one.resolved.key == a.key.name
    # a tiny random model may agree for two seeds, but not for all of these
    assert len({composer.blend(a, b, r.with_seed(s)).midi for s in (6, 7, 8)} | {one.midi}) > 1
    assert all(n.start < 6 * one.score.bar_ticks for n in one.score.track("lead").notes)


def test_vae_prior_composes_a_full_clip(composer: Composer) -> None:
    comp = composer.compose(composer.resolve(ComposeRequest(style="jazz", bars=4, seed=2,
                                                            model="vae")))
    assert comp.model_style == "vae" and comp.score.bars == 4
    assert comp.score.chords and isinstance(comp.score.chords[0].chord, Chord)
    assert Key.parse(comp.resolved.key) == comp.score.key


def test_a_variation_is_sampled_as_compose_samples_its_style(  # type: ignore[no-untyped-def]
        tiny_registry, monkeypatch: pytest.MonkeyPatch) -> None:
    """/vary goes through the batcher like compose (the same MIDI as alone) and samples with
    the style's idiom bias and guidance: a folk variation's row has a style-neutral twin."""
    from concurrent.futures import ThreadPoolExecutor

    from cadenza.batching import MelodyBatcher
    from cadenza.models.sample import Sampler

    plain = Composer(tiny_registry)
    r = plain.resolve(ComposeRequest(style="folk", bars=2, seed=8))
    src = midi_to_score(plain.compose(r).midi)
    alone = [plain.variation(src, r.with_seed(s)).midi for s in (1, 2, 3)]
    widths: list[tuple[int, int]] = []
    original_step = Sampler.step

    def step(self: Sampler):  # type: ignore[no-untyped-def]
        widths.append((len(self.rows), self.width))
        return original_step(self)

    monkeypatch.setattr(Sampler, "step", step)
    batcher = MelodyBatcher(window_s=0.5)
    batched = Composer(tiny_registry, batcher=batcher)
    try:
        with ThreadPoolExecutor(3) as pool:
            together = list(pool.map(lambda s: batched.variation(src, r.with_seed(s)).midi,
                                     (1, 2, 3)))
    finally:
        batcher.close()
    assert together == alone
    assert max(batcher.batches) > 2  # the variations shared steps
    assert all(width == 2 * rows for rows, width in widths)  # every folk row had its twin


def test_a_variation_reads_the_form_of_the_line_it_varies(  # type: ignore[no-untyped-def]
        composer: Composer, monkeypatch: pytest.MonkeyPatch) -> None:
    """A line whose second phrase restates its first (bar 8 changed): the variation's
    sampler reads that phrase's echo, so its new pitches can come back as the source's did,
    and a style with form guidance (jazz) steers it from a twin that reads no echo."""
    from cadenza.models.grammar import ECHO_PITCH_COL
    from cadenza.models.sample import Sampler
    from cadenza.music.tokens import PITCH_MIN

    phrase = "C4/4 E G C5 | A4/2 G/2 | F/4 A C5 A4 | "
    src = parse_notes(phrase + "G/1 | " + phrase + "E/1")
    rows: list[tuple[tuple[int, ...], str, float]] = []
    echo_pitches: set[int] = set()  # what bar 8's echo feature offered while it was sampled
    original_add, original_step = Sampler.add, Sampler.step

    def add(self: Sampler, row):  # type: ignore[no-untyped-def]
        rows.append((row.constraint.tracker.echo, row.twin, row.guidance))
        original_add(self, row)

    def step(self: Sampler):  # type: ignore[no-untyped-def]
        for row in self.rows:
            if row.constraint.tracker.bar == 7 and (p := row.constraint.features()[
                    ECHO_PITCH_COL]):
                echo_pitches.add(p - 1 + PITCH_MIN)
        return original_step(self)

    monkeypatch.setattr(Sampler, "add", add)
    monkeypatch.setattr(Sampler, "step", step)
    r = composer.resolve(ComposeRequest(style="jazz", bars=8, seed=1))
    score = midi_to_score(composer.variation(src, r).midi)
    assert rows == [((0, 0, 0, 0, 4, 4, 4, 4), "form", STYLES["jazz"].form_guidance)]
    bar, got = score.bar_ticks, score.track("lead").notes
    # bar 8's echo is bar 4 of the variation (its new pitch), not the source's G
    assert echo_pitches == {n.pitch for n in got if 3 * bar <= n.start < 4 * bar}
    # bars 5-7 equal bars 1-3 in the source, so they repeat the new pitches too
    first = [(n.start, n.pitch) for n in got if n.start < 3 * bar]
    again = [(n.start - 4 * bar, n.pitch) for n in got if 4 * bar <= n.start < 7 * bar]
    assert first and first == again


def test_a_restated_bar_takes_its_first_statements_velocities_so_it_encodes_as_a_repeat(
        ) -> None:
    from cadenza.music.tokens import Vocab, encode

    bar = 48
    riff = [(0, 12, 60), (12, 12, 64), (24, 24, 67)]
    played = [Note(b * bar + s, d, p, 70 + 7 * b + i) for b in (0, 2) for i, (s, d, p)
              in enumerate(riff)] + [Note(bar, 48, 62, 80)]  # humanised: no two alike
    m = Motif(tuple(sorted(played, key=lambda n: n.start)), ((0, Chord(0, "maj")),),
              COMMON_TIME, Key(0), 120.0, 3)
    aligned = m.repeats_aligned()
    assert [n.velocity for n in aligned.notes if n.start >= 2 * bar] == [70, 71, 72]
    assert [(n.start, n.pitch, n.duration) for n in aligned.notes] == [
        (n.start, n.pitch, n.duration) for n in m.notes]
    v = Vocab()
    assert v.rep(2) in encode(aligned.to_score("folk"), v)
    assert v.rep(2) not in encode(m.to_score("folk"), v)
    assert aligned.repeats_aligned() is aligned  # nothing left to align
