"""The evaluation report on tiny random-weight models and a handful of literal corpus pieces:
real-reference selection and excerpts, the style classifier, and a full small run's report, JSON,
PNGs and listening page."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from cadenza.errors import UserError
from cadenza.evaluation import (
    METRICS,
    clip_from_score,
    cross_validate,
    is_reference,
    real_reference,
    run_evaluation,
    train_test,
)
from cadenza.evaluation.references import (
    NC_SAME_AS_MUTOPIA,
    arrange_excerpt,
    excerpt_starts,
    nc_title,
    spread,
)
from cadenza.models.registry import ModelRegistry
from cadenza.models.training.corpus import Piece
from cadenza.models.training.dataset import is_heldout
from cadenza.models.zoo.lead_metrics import LEAD_METRICS, lead_metrics, line_from_score
from cadenza.models.zoo.metrics import clip_metrics
from cadenza.music.roll import bar_steps, encode
from cadenza.music.theory import Chord, Key
from cadenza.service import Composer, ComposeRequest

STYLES = ["folk", "celtic", "jazz", "blues"]
CLIPS, BARS = 3, 2


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny models gain nothing from threads, and OpenMP spin-waits badly on a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _sources(prefix: str, heldout: bool, n: int) -> list[str]:
    return [s for s in (f"{prefix}-{i}" for i in range(1000)) if is_heldout(s) == heldout][:n]


def _piece(source: str, style: str, meter: tuple[int, int], bars: int, key: Key,
           pitches: list[int], chords: list[str], *, swing: bool = False,
           sections: tuple[tuple[int, int, str], ...] = ()) -> Piece:
    """Even notes filling ``bars`` bars (quarters in x/4, eighths in x/8; with ``swing``,
    eighths on steps 0 and 8 of each beat), one chord per bar."""
    bar = 48 * meter[0] // meter[1]
    if swing:
        ticks = [b * 12 + o for b in range(bars * bar // 12) for o in (0, 8)]
        notes = tuple((t, 8 if t % 12 == 0 else 4, pitches[i % len(pitches)])
                      for i, t in enumerate(ticks))
    else:
        step = 12 if meter[1] == 4 else 6
        notes = tuple((t, step, pitches[i % len(pitches)])
                      for i, t in enumerate(range(0, bars * bar, step)))
    return Piece(source, style, meter, key, bars, notes,
                 tuple((b * bar, chords[b % len(chords)]) for b in range(bars)), sections)


C_SCALE = [72, 74, 76, 77, 79, 81, 83, 84]  # C major, in the folk lead range (no octave shift)
D_TUNE = [74, 78, 81, 78, 76, 73, 74, 81, 79]  # D major
F_BEBOP = [65, 67, 69, 70, 72, 74, 75, 76, 77, 74, 72, 69, 68, 67]  # F with passing tones


@pytest.fixture(scope="module")
def pieces() -> list[Piece]:
    c, d = Key(0), Key(2)
    held, train = _sources("lit/folk", True, 3), _sources("lit/folk", False, 1)
    out = [_piece(s, "folk", (4, 4), 4, c, C_SCALE, ["C", "G", "F", "C"]) for s in held[:2]]
    out.append(_piece(train[0], "folk", (4, 4), 4, c, C_SCALE, ["C", "F"]))
    out.append(_piece(held[2] + "-98", "folk", (9, 8), 4, c, C_SCALE, ["C"]))  # roll can't hold
    out += [_piece(s, "celtic", (6, 8), 4, d, D_TUNE, ["D", "A", "G", "D"])
            for s in _sources("lit/celtic", True, 3)]
    out.append(_piece(_sources("lit/short", True, 1)[0], "folk", (4, 4), 1, c, C_SCALE, ["C"]))
    # jazz: held-out WJD-like solos with a pickup bar before the form, and a training one
    f = Key(5)
    changes = ["Gm7", "C7", "Fmaj7", "D7"]
    out += [_piece(src, "jazz", (4, 4), 9, f, F_BEBOP, changes, swing=True,
                   sections=((1, 4, "A"), (5, 4, "A")))
            for src in _sources("wjd:Fixture", True, 2)]
    out.append(_piece(_sources("wjd:Fixture", False, 1)[0], "jazz", (4, 4), 9, f, F_BEBOP,
                      changes, swing=True))
    return out


@pytest.fixture(scope="module")
def rags() -> list[Piece]:
    """A training Mutopia rag, the NC edition's copy of a Mutopia title, an NC rag no shipped
    model learns from, and an NC waltz (3/4: not a meter ragtime composes in)."""
    c = Key(0)
    tune = [72, 76, 79, 84, 83, 79, 76, 74]
    return [
        _piece(_sources("mutopia:JoplinS_", False, 1)[0], "ragtime", (2, 4), 8, c, tune, ["C"]),
        _piece("joplin-nc:Joplin_mapleleaf", "ragtime", (2, 4), 8, c, tune, ["C", "G7"]),
        _piece("joplin-nc:Joplin_leola", "ragtime", (2, 4), 8, c, tune, ["C", "A7", "D7", "G7"]),
        _piece("joplin-nc:Joplin_pleasant", "ragtime", (3, 4), 8, c, tune, ["C"]),
    ]


# ---------------------------------------------------------------- real reference


def test_real_reference_uses_heldout_pieces_first_and_skips_what_the_roll_cannot_hold(
        pieces: list[Piece]) -> None:
    ref = real_reference(pieces, "folk", 3, BARS, seed=0)
    assert len(ref.clips) == 3 and ref.reason is None
    assert ref.heldout_clips == 3 and ref.heldout_pieces == 2 and ref.training_pieces == 0
    assert ref.skipped_pieces == 1 and ref.short_pieces == 1  # the 9/8 piece, the 1-bar one
    assert (ref.available_heldout, ref.available_training) == (2, 1)
    # round robin: both held-out pieces give one excerpt before either gives a second; the
    # piece giving one of its two excerpts gives the later one (spread: the middle of each half)
    assert sorted(c.source.split(" bars ")[1] for c in ref.clips) == ["1-2", "3-4", "3-4"]
    assert sorted(ref.per_piece.values()) == [1, 2] and ref.sources == {"music21": 2}
    for clip in ref.clips:
        assert clip.meter == (4, 4) and clip.style == "folk"
        assert clip.metrics["scale_consistency"] == 1.0  # C major melody over C, F, G chords
        assert clip.metrics["empty_bars_drums"] == 0.0  # the folk arrangement adds percussion
        assert clip.lead["scale_consistency"] == 1.0  # the lead alone is in one major scale
        assert clip.lead["notes_per_bar"] == 4.0 and clip.lead["pitch_range"] == 12.0

    more = real_reference(pieces, "folk", 6, BARS, seed=0)
    assert len(more.clips) == 6  # 4 held-out excerpts, then the training piece's 2
    assert more.heldout_clips == 4 and more.training_pieces == 1

    assert real_reference(pieces, "celtic", 3, BARS).clips[0].meter == (6, 8)
    blues = real_reference(pieces, "blues", 3, BARS)
    assert blues.clips == [] and "no blues" in (blues.reason or "")


def test_jazz_excerpts_are_the_solos_own_lines_from_the_first_bar_of_their_form(
        pieces: list[Piece]) -> None:
    ref = real_reference(pieces, "jazz", 4, 4, seed=0)
    assert len(ref.clips) == 4 and ref.heldout_clips == 4 and ref.training_pieces == 0
    assert ref.sources == {"wjd": 2} and sorted(ref.per_piece.values()) == [2, 2]
    # bar 1 is a pickup: 4-bar excerpts are bars 2-5 and 6-9 of each solo
    assert sorted(c.source.split(" bars ")[1] for c in ref.clips) == ["2-5", "2-5", "6-9", "6-9"]
    for clip in ref.clips:
        # the line as the data has it: swung 2:1, not swung again by the arranger
        assert clip.lead["swing_ratio"] == pytest.approx(2.0)
        assert clip.lead["chord_vocabulary"] == 4.0 and clip.lead["notes_per_bar"] == 8.0
    assert ref.example is not None and ref.example.style == "jazz"


def test_notated_transcriptions_have_no_swing_ratio_of_their_own() -> None:
    """Impro-Visor writes straight eighths and plays them at the sheet's swing setting: no
    performed swing to compare with."""
    src = next(s for s in (f"impro-visor:Tester/Solo{i}.ls" for i in range(200))
               if is_heldout(s))
    sheet = _piece(src, "jazz", (4, 4), 8, Key(5), F_BEBOP, ["Gm7", "C7"], swing=True)
    ref = real_reference([sheet], "jazz", 2, 4, seed=0)
    assert len(ref.clips) == 2 and ref.sources == {"impro-visor": 1}
    for clip in ref.clips:
        assert math.isnan(clip.lead["swing_ratio"]) and clip.lead["notes_per_bar"] == 8.0
        assert math.isnan(clip.features["lead"][2])  # the classifier fills it in


def test_ragtime_reference_is_nc_joplin_outside_the_mutopia_titles(rags: list[Piece]) -> None:
    mutopia, overlap, leola, waltz = rags
    assert not is_reference(mutopia) and not is_reference(overlap)  # trained on / same title
    assert is_reference(leola) and is_reference(waltz)
    assert nc_title(overlap.source) == "mapleleaf" and "mapleleaf" in NC_SAME_AS_MUTOPIA
    ref = real_reference(rags, "ragtime", 4, 2, seed=0)
    assert ref.per_piece == {leola.source: 4} and ref.heldout_clips == 4
    assert ref.skipped_pieces == 1  # the 3/4 waltz
    assert (ref.available_heldout, ref.available_training) == (1, 1)  # never the NC overlap
    assert ref.sources == {"joplin-nc": 1}
    # asked for more than the held-out rag gives: the training rag fills in, and says so
    more = real_reference(rags, "ragtime", 6, 2, seed=0)
    assert len(more.clips) == 6 and more.heldout_clips == 4 and more.training_pieces == 1


def test_excerpts_start_on_bar_lines_and_spread_over_the_piece(pieces: list[Piece]) -> None:
    solo = next(p for p in pieces if p.source.startswith("wjd:") and p.sections)
    assert excerpt_starts(solo, 4) == [1, 5] and excerpt_starts(solo, 8) == [1]
    assert excerpt_starts(solo, 10) == []  # longer than the form
    folk = pieces[0]
    assert excerpt_starts(folk, 2) == [0, 2]
    # pieces with a rest: an excerpt needs MIN_EXCERPT_NOTES notes
    quiet = Piece("q", "folk", (4, 4), Key(0), 4, ((0, 12, 60), (12, 12, 62), (96, 12, 64),
                                                   (108, 12, 65), (120, 12, 67), (132, 12, 69)),
                  ((0, "C"),))
    assert excerpt_starts(quiet, 2) == [2]
    assert spread(10, 3) == [1, 5, 8] and spread(4, 4) == [0, 1, 2, 3] and spread(5, 0) == []
    assert spread(2, 1) == [1]


def test_an_excerpt_is_the_pieces_bars_arranged_with_the_chord_sounding_at_its_start(
        pieces: list[Piece]) -> None:
    p = pieces[0]
    score = arrange_excerpt(p, 2, 2, np.random.default_rng(0), tempo=100.0)
    lead = score.track("lead")
    assert lead is not None
    window = [(s - 96, d, pitch) for s, d, pitch in p.notes if 96 <= s < 192]
    # the arranger works at 4x the GRID; the melody keeps its pitches and onsets
    assert [(n.start // 4, n.pitch) for n in lead.notes] == [(s, pitch) for s, _, pitch in window]
    assert [c.chord for c in score.chords] == [Chord.parse("F"), Chord.parse("C")]
    assert score.bars == 2 and score.key == p.key and score.tempo == 100.0


# ---------------------------------------------------------------- classifier


def test_classifier_separates_separable_styles_and_is_at_chance_on_shuffled_labels() -> None:
    rng = np.random.default_rng(0)
    labels = ["a", "b", "c"]
    y = [labels[i % 3] for i in range(90)]
    centres = rng.normal(0, 1, (3, 6)) * 8
    x = np.array([centres[labels.index(v)] for v in y]) + rng.normal(0, 1, (90, 6))
    x[::7, 2] = np.nan  # missing values are filled, not fatal
    cv = cross_validate(x, y, folds=5, seed=0)
    assert cv is not None and cv.accuracy == 1.0 and cv.folds == 5
    assert (cv.confusion == np.diag([30, 30, 30])).all()

    noise = rng.normal(0, 1, (200, 8))
    shuffled = [labels[i % 3] for i in rng.permutation(200)]
    chance = cross_validate(noise, shuffled, seed=0)
    assert chance is not None
    assert abs(chance.accuracy - 1 / 3) < 0.12 and chance.confusion.sum() == 200

    # trained on one set, tested on another; test labels the training set lacks are ignored
    tt = train_test(x[:60], y[:60], np.vstack([x[60:], np.zeros((2, 6))]), [*y[60:], "z", "z"])
    assert tt is not None and tt.accuracy == 1.0 and tt.n == 30
    assert tt.chance == pytest.approx(1 / 3) and cv.chance == pytest.approx(1 / 3)
    assert cross_validate(x[:3], y[:3]) is None  # one clip per style: nothing to hold out


# ---------------------------------------------------------------- a whole run


def _with_meta(src: Path, dst: Path, heldout: dict[str, float]) -> Path:
    """A copy of a tiny checkpoint whose meta carries held-out figures, as training writes."""
    from cadenza.models.checkpoint import read_payload, save_payload

    payload = read_payload(src)
    payload["meta"] = {**payload["meta"], "heldout": heldout}
    save_payload(dst, payload)
    return dst


@pytest.fixture(scope="module")
def registry(tiny_models: Path, tmp_path_factory: pytest.TempPathFactory) -> ModelRegistry:
    from cadenza.models.gan import GANConfig, MuseGAN, save_gan

    root = tmp_path_factory.mktemp("eval-models")
    paths = {n: tiny_models / n / "model.pt" for n in ("gru", "rnn")}
    paths["lstm"] = _with_meta(tiny_models / "lstm" / "model.pt", root / "lstm" / "model.pt",
                               {"nll": 1.2345, "nll_sampled": 1.5, "tokens": 4321})
    paths["vae"] = _with_meta(tiny_models / "vae" / "model.pt", root / "vae" / "model.pt",
                              {"step_accuracy": 0.912, "onset_accuracy": 0.5,
                               "rest_accuracy": 0.75})
    torch.manual_seed(0)
    gan = MuseGAN(GANConfig(styles=("folk", "jazz"), phrase_bars=2, z_dim=8, style_dim=4,
                            g_channels=8, d_channels=4)).eval()
    with torch.no_grad():  # a fresh generator is near-silent; centred, it writes notes
        gan.generator.bar.out_bias.fill_(0.0)
    paths["gan"] = root / "gan" / "model.pt"
    save_gan(paths["gan"], gan, {"name": "gan", "family": "gan"})
    return ModelRegistry(paths)


@pytest.fixture(scope="module")
def run(registry: ModelRegistry, pieces: list[Piece],
        tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, list[str]]:
    out = tmp_path_factory.mktemp("eval") / "report"
    messages: list[str] = []
    report = run_evaluation(out, styles=STYLES, clips=CLIPS, bars=BARS, seed=0,
                            registry=registry, corpus=pieces, progress=messages.append,
                            baseline=True, form_clips=1)
    return report, json.loads((out / "results.json").read_text()), messages


def _row(text: str, section: str, label: str) -> list[str]:
    """Cells of the table row starting with ``label`` under the heading ``section``."""
    body = text.split(section, 1)[1]
    line = next(ln for ln in body.splitlines() if ln.startswith(f"| {label} |"))
    return [c.strip() for c in line.strip("|").split("|")]


def test_run_writes_the_report_sections_json_plots_and_listening_page(
        run: tuple[Path, dict, list[str]]) -> None:
    report, res, messages = run
    text = report.read_text()
    for heading in ("# Cadenza evaluation report", "## The bars", "## Summary",
                    "## Lead line against real lead lines",
                    "### Mean overlap on the lead features, per style",
                    "### Repetition rate: real mean ± sd beside each model's mean",
                    "### jazz: lead features",
                    "## Held-out likelihood per style (sequence models)", "### As recorded at "
                    "training", "### VAE held-out reconstruction", "## Real reference data",
                    "## Form: do returning sections come back?",
                    "## Band metrics (the whole arrangement)", "### folk", "### celtic",
                    "### jazz", "### blues", "## Style classifier",
                    "## How the figures are computed"):
        assert heading in text, heading
    assert "**No real reference for blues**" in text
    assert any(m.startswith("generating gan / celtic") for m in messages)
    jazz_form = res["form"]["models"]["lstm"]["jazz"]
    assert (jazz_form["form"], jazz_form["bars"], jazz_form["clips"]) == ("aaba", 32, 1)
    assert _row(text, "## Form:", "lstm")[STYLES.index("jazz") + 1].count(" / ") == 1
    out = report.parent
    pngs = ["features_folk", "features_celtic", "features_jazz", "lead_folk", "lead_jazz",
            "overlap", "lead_overlap", "nll", "nll_styles", "confusion_real",
            *(f"confusion_{m}" for m in ("gan", "gru", "lstm", "rnn", "vae"))]
    import matplotlib.image as mpimg

    for name in pngs:
        path = out / f"{name}.png"
        assert f"]({name}.png)" in text, name  # linked from the report
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        h, w = mpimg.imread(path).shape[:2]
        assert h > 150 and w > 150
    # every model wrote its clips for every style it can play; the tiny GAN knows no celtic
    for m in ("gan", "gru", "lstm", "rnn", "vae"):
        for s in STYLES:
            g = res["generated"][m][s]
            if m == "gan" and s not in ("folk", "jazz"):
                assert g["clips"] == 0 and f"no {s} style" in g["error"]
            else:
                assert g["clips"] == CLIPS and g["error"] is None, (m, s, g)
    band = text.split("## Band metrics")[1]
    assert "- gan: the gan model has no celtic style" in band.split("### celtic")[1]
    assert _row(band, "### celtic", "pitch-class entropy (bits)")[2] == "n/a (OA n/a)"
    assert _row(text, "### celtic: lead features", "swing ratio (long/short eighths)")[1] == \
        "n/a"  # 6/8 tunes have no eighth-note pairs
    # the listening page: a piano roll per style and model that played it, a real one per
    # style with a reference, each model's with the command that makes it again
    listen = (out / "listen.md").read_text()
    for s in STYLES:
        for m in ("gru", "lstm", "rnn", "vae"):
            png = out / "listen" / f"{s}_{m}.png"
            assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"(listen/{png.name})" in listen
            seed = res["listen"][f"{s}/{m}"]["seed"]
            assert f"`cadenza compose --style {s} --bars {BARS} --seed {seed} --model {m}`" \
                in listen
    assert (out / "listen" / "jazz_real.png").is_file() and "gan: no clip" not in listen
    assert not (out / "listen" / "blues_real.png").exists()
    assert "**gan**: no clip (the gan model has no celtic style)" in listen
    assert "[listen.md](listen.md)" in text
    assert "untrained" not in listen  # the baseline is no model a member can ask for


def test_the_untrained_twin_is_scored_beside_the_models_but_not_in_the_bars(
        run: tuple[Path, dict, list[str]], registry: ModelRegistry) -> None:
    report, res, messages = run
    text = report.read_text()
    assert res["settings"]["baseline"] == "untrained"
    assert res["settings"]["models"] == ["gan", "gru", "lstm", "rnn", "vae", "untrained"]
    twin = res["models"]["untrained"]
    assert twin["kind"] == "rnn" and twin["untrained_twin_of"] == "lstm"
    assert twin["sha256"] != res["models"]["lstm"]["sha256"]  # other weights, same shapes
    assert res["generated"]["untrained"]["folk"]["clips"] == CLIPS
    assert any("baseline: untrained, lstm's configuration" in m for m in messages)
    bars = text.split("## The bars")[1].split("## Summary")[0]
    assert "(untrained baseline " in bars and "takes no part in the bars" in bars
    assert "| untrained |" not in bars
    assert "untrained" not in _row(bars, "| bar |", "no model at chance (lead CV)")[1]
    assert _row(text, "## Summary", "untrained")[1] == "rnn"
    best = _row(text, "### Mean overlap on the lead features", "**best** (not untrained)")
    assert all("untrained" not in cell for cell in best[1:])


def test_report_figures_match_the_clips_and_the_checkpoints(
        run: tuple[Path, dict, list[str]], registry: ModelRegistry, pieces: list[Piece]) -> None:
    report, res, _ = run
    text = report.read_text()
    # the lstm's folk clips recomputed here: seeds 0, 1, 2 through the Composer
    composer = Composer(registry)
    values, leads = [], []
    for i in range(CLIPS):
        score = composer.compose(composer.resolve(ComposeRequest("folk", BARS, seed=i,
                                                                 model="lstm"))).score
        per_bar = bar_steps(score.time_signature)
        values.append(clip_metrics(encode(score)[:, :, :per_bar], steps_per_bar=per_bar))
        leads.append(lead_metrics(line_from_score(score)))
    for got, want, keys in ((res["generated"]["lstm"]["folk"]["metrics"], values, METRICS),
                            (res["generated"]["lstm"]["folk"]["lead"], leads, LEAD_METRICS)):
        for k in keys:
            v = [d[k] for d in want if not math.isnan(d[k])]
            assert got[k]["n"] == len(v)
            if v:
                assert got[k]["mean"] == pytest.approx(np.mean(v))
                assert got[k]["std"] == pytest.approx(np.std(v))
    # ... and the tables show them with the real figures beside them
    got = res["generated"]["lstm"]["folk"]["metrics"]
    real = res["real"]["folk"]["metrics"]["pitch_class_entropy"]
    cells = _row(text, "## Band metrics", "pitch-class entropy (bits)")
    assert cells[1] == f"{real['mean']:.3f} ± {real['std']:.3f}"
    lstm_cell = cells[1 + 1 + sorted(res["models"]).index("lstm")]
    g = got["pitch_class_entropy"]
    assert lstm_cell == f"{g['mean']:.3f} ± {g['std']:.3f} (OA {g['overlap']:.2f})"
    lead = res["generated"]["lstm"]["jazz"]["lead"]["notes_per_bar"]
    cells = _row(text, "### jazz: lead features", "notes per bar")
    assert cells[1] == "8.000 ± 0.000"  # the fixture solos: swung eighths throughout
    assert cells[1 + 1 + sorted(res["models"]).index("lstm")] == \
        f"{lead['mean']:.3f} ± {lead['std']:.3f} (OA {lead['overlap']:.2f})"
    # the per-style summary is the mean overlap of the seven lead features
    for m in res["models"]:
        for s in ("folk", "jazz"):
            oa = [res["generated"][m][s]["lead"][k]["overlap"] for k in LEAD_METRICS]
            oa = [x for x in oa if x is not None]
            want = f"{np.mean(oa):.2f}" if oa else "n/a"
            assert _row(text, "### Mean overlap on the lead features", m)[
                1 + STYLES.index(s)] == want
    # overlap areas: in [0, 1] against real data, absent for blues
    for m in res["generated"]:
        for k in METRICS:
            for s in ("folk", "celtic", "jazz"):
                oa = res["generated"][m][s]["metrics"][k]["overlap"]
                assert oa is None or 0.0 <= oa <= 1.0
            assert res["generated"][m]["blues"]["metrics"][k]["overlap"] is None
    # real reference provenance
    assert res["real"]["folk"]["heldout_clips"] == 3 and res["real"]["blues"]["clips"] == 0
    assert _row(text, "## Real reference data", "folk")[1:6] == ["3", "3", "2 / 2", "1-2",
                                                                 "music21 2"]
    assert _row(text, "## Real reference data", "jazz")[4:6] == ["1-2", "wjd 2"]
    # held-out figures from checkpoint meta: NLL in nats, bits, perplexity; VAE accuracy
    assert _row(text, "### As recorded at training", "lstm")[1:6] == [
        "1.2345", f"{1.2345 / math.log(2):.3f}", f"{math.exp(1.2345):.2f}", "1.5000", "4321"]
    assert "n/a (no held-out figure in the checkpoint)" in _row(text, "### As recorded", "gru")[1]
    assert _row(text, "### VAE held-out", "vae")[1:4] == ["0.912", "0.500", "0.750"]


def test_heldout_nll_per_style_is_computed_on_the_heldout_pieces(
        run: tuple[Path, dict, list[str]], registry: ModelRegistry, pieces: list[Piece]) -> None:
    from cadenza.models.training.heldout import style_nll

    report, res, _ = run
    text = report.read_text()
    # sequence models only, not the untrained twin (its NLL is about ln(vocabulary))
    assert set(res["nll"]) == {"gru", "lstm", "rnn"}
    assert "| untrained |" not in text.split("## Held-out likelihood per style")[1].split(
        "### As recorded")[0]
    held = [p for p in pieces if is_heldout(p.source)]
    want = style_nll(registry.get("lstm"), held)
    got = res["nll"]["lstm"]["heldout"]
    assert set(got) == {"folk", "celtic", "jazz"}  # no blues piece
    assert got["jazz"]["pieces"] == 2  # the held-out solos, not the training one
    # every held-out folk piece counts, also those too short or odd for an excerpt
    assert got["folk"]["pieces"] == sum(p.style == "folk" for p in held) == 3
    for s in got:
        assert got[s]["nll"] == pytest.approx(want[s]["nll"]) and got[s]["tokens"] > 0
        # a random 1-layer model of this vocabulary: about ln(vocabulary size) nats a token
        assert 4.0 < got[s]["nll"] < 7.0
    cells = _row(text, "## Held-out likelihood per style", "lstm")
    assert cells[1 + STYLES.index("jazz")] == (f"{got['jazz']['nll']:.3f} "
                                                f"({got['jazz']['nll_sampled']:.3f}), 2 pieces")
    assert cells[1 + STYLES.index("blues")] == "n/a"
    assert not registry.get("lstm").model.training  # left ready to sample


def test_classifier_results_cover_every_model_and_the_real_data(
        run: tuple[Path, dict, list[str]]) -> None:
    report, res, _ = run
    cls = res["classifier"]
    real_cv = cls["real"]["band"]["cv"]
    assert real_cv["labels"] == ["celtic", "folk", "jazz"] and real_cv["n"] == 9
    for m in ("gan", "gru", "lstm", "rnn", "vae"):
        played = ["folk", "jazz"] if m == "gan" else sorted(STYLES)
        for kind in ("band", "lead"):
            cv, tt = cls[m][kind]["cv"], cls[m][kind]["real_to_gen"]
            assert cv["labels"] == played and cv["n"] == len(played) * CLIPS
            for r in (cv, tt):  # accuracy is the confusion matrix's diagonal share
                assert np.array(r["confusion"]).sum() == r["n"]
                assert r["accuracy"] == pytest.approx(np.trace(r["confusion"]) / r["n"])
            # trained on real celtic, folk and jazz, tested on the model's clips of those
            assert tt["labels"] == ["celtic", "folk", "jazz"]
            assert tt["chance"] == pytest.approx(1 / 3)
            assert tt["n"] == len([s for s in played if s != "blues"]) * CLIPS
        c = cls[m]["lead"]["cv"]
        cell = _row(report.read_text(), "## Style classifier", m)[2]
        assert cell == f"{c['accuracy']:.2f} (chance {c['chance']:.2f}, n={c['n']})"


def test_same_seed_same_figures_whatever_else_is_evaluated(
        run: tuple[Path, dict, list[str]], registry: ModelRegistry, pieces: list[Piece],
        tmp_path: Path) -> None:
    _, res, _ = run
    report = run_evaluation(tmp_path / "one", models=["lstm"], styles=["folk"], clips=CLIPS,
                            bars=BARS, seed=0, registry=registry, corpus=lambda: pieces,
                            form_clips=0)
    alone = json.loads((report.parent / "results.json").read_text())
    assert alone["generated"]["lstm"]["folk"] == res["generated"]["lstm"]["folk"]
    assert alone["real"]["folk"] == res["real"]["folk"]
    assert "confusion_lstm.png" not in report.read_text()  # one style: nothing to classify


def test_bad_arguments_are_refused_before_anything_is_written(
        registry: ModelRegistry, tmp_path: Path) -> None:
    out = tmp_path / "never"
    with pytest.raises(UserError,
                       match=r"unknown model 'nope' \(available: gan, gru, lstm, rnn, vae\)"):
        run_evaluation(out, models=["nope"], registry=registry, corpus=[])
    with pytest.raises(UserError, match="unknown style 'polka'"):
        run_evaluation(out, styles=["polka"], registry=registry, corpus=[])
    with pytest.raises(UserError, match="clips must be 2-"):
        run_evaluation(out, clips=1, registry=registry, corpus=[])
    with pytest.raises(UserError, match="form clips must be 0-"):
        run_evaluation(out, form_clips=-1, registry=registry, corpus=[])
    assert not out.exists()


def test_clips_in_meters_the_roll_cannot_hold_are_skipped(pieces: list[Piece]) -> None:
    nine_eight = next(p for p in pieces if p.meter == (9, 8))
    assert clip_from_score(nine_eight.to_score(), "folk", "x") is None
    assert clip_from_score(pieces[0].to_score(), "folk", "x") is not None


def test_uninformative_features_are_left_out_of_the_mean_overlap() -> None:
    from cadenza.evaluation.results import mean_overlap, uninformative

    def m(mean: float, std: float, overlap: float = float("nan"), n: int = 4) -> dict:
        return {"mean": mean, "std": std, "n": n, "overlap": overlap}

    def results(second_a: dict) -> dict:
        return {"real": {"folk": {"metrics": {"a": m(0, 0), "b": m(1, 0.5)}}},
                "generated": {"x": {"folk": {"metrics": {"a": m(0, 0, 1.0), "b": m(1, 0.4, 0.4)}}},
                              "y": {"folk": {"metrics": {"a": second_a, "b": m(2, 1, 0.6)}}}}}

    same = results(m(0, 0, 1.0))  # "a": zero for the real data and for both models
    assert uninformative(same, "folk", "a") and not uninformative(same, "folk", "b")
    assert (mean_overlap(same, "x", ["folk"], ["a", "b"]),
            mean_overlap(same, "y", ["folk"], ["a", "b"])) == (0.4, 0.6)
    apart = results(m(0.2, 0.1, 0.2))  # model y leaves empty bars: "a" now tells it apart
    assert not uninformative(apart, "folk", "a")
    assert mean_overlap(apart, "x", ["folk"], ["a", "b"]) == pytest.approx(0.7)
    assert mean_overlap(apart, "y", ["folk"], ["a", "b"]) == pytest.approx(0.4)
