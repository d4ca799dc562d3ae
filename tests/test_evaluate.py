"""The evaluation report on tiny random-weight models and a handful of literal corpus pieces:
real-reference excerpts, the style classifier, and a full small run's report, JSON and PNGs."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from bot.errors import UserError
from bot.evaluation import (
    METRICS,
    clip_from_score,
    cross_validate,
    real_reference,
    run_evaluation,
    train_test,
)
from bot.evaluation.data import _excerpt
from bot.service import Composer, ComposeRequest
from models.corpus import Piece
from models.dataset import is_heldout
from models.metrics import clip_metrics
from models.registry import ModelRegistry
from models.roll import bar_steps, encode
from models.theory import Chord, Key

STYLES = ["folk", "celtic", "jazz"]
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
           pitches: list[int], chords: list[str]) -> Piece:
    """Even notes filling ``bars`` bars (quarters in x/4, eighths in x/8), one chord per bar."""
    bar = 48 * meter[0] // meter[1]
    step = 12 if meter[1] == 4 else 6
    notes = tuple((t, step, pitches[i % len(pitches)])
                  for i, t in enumerate(range(0, bars * bar, step)))
    return Piece(source, style, meter, key, bars, notes,
                 tuple((b * bar, chords[b % len(chords)]) for b in range(bars)))


C_SCALE = [72, 74, 76, 77, 79, 81, 83, 84]  # C major, in the folk lead range (no octave shift)
D_TUNE = [74, 78, 81, 78, 76, 73, 74, 81, 79]  # D major


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
    return out


# ---------------------------------------------------------------- real reference


def test_real_reference_uses_heldout_pieces_first_and_skips_what_the_roll_cannot_hold(
        pieces: list[Piece]) -> None:
    ref = real_reference(pieces, "folk", 3, BARS, seed=0)
    assert len(ref.clips) == 3 and ref.reason is None
    assert ref.heldout_clips == 3 and ref.heldout_pieces == 2 and ref.training_pieces == 0
    assert ref.skipped_pieces == 2  # the 9/8 piece and the one-bar piece
    assert (ref.available_heldout, ref.available_training) == (2, 1)
    # round robin: both held-out pieces give their first excerpt before either gives a second
    assert sorted(c.source.split(" bars ")[1] for c in ref.clips) == ["1-2", "1-2", "3-4"]
    for clip in ref.clips:
        assert clip.meter == (4, 4) and clip.style == "folk"
        assert clip.metrics["scale_consistency"] == 1.0  # C major melody over C, F, G chords
        assert clip.metrics["empty_bars_drums"] == 0.0  # the folk arrangement adds percussion
        assert clip.features["lead"][1] == 1.0  # the lead alone is in one major scale too

    more = real_reference(pieces, "folk", 6, BARS, seed=0)
    assert len(more.clips) == 6  # 4 held-out excerpts, then the training piece's 2
    assert more.heldout_clips == 4 and more.training_pieces == 1

    assert real_reference(pieces, "celtic", 3, BARS).clips[0].meter == (6, 8)
    jazz = real_reference(pieces, "jazz", 3, BARS)
    assert jazz.clips == [] and "no jazz" in (jazz.reason or "")


def test_an_excerpt_is_the_pieces_bars_arranged_with_the_chord_sounding_at_its_start(
        pieces: list[Piece]) -> None:
    p = pieces[0]
    score = _excerpt(p, 2, 2, np.random.default_rng(0), tempo=100.0)
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
    from models.checkpoint import read_payload, save_payload

    payload = read_payload(src)
    payload["meta"] = {**payload["meta"], "heldout": heldout}
    save_payload(dst, payload)
    return dst


@pytest.fixture(scope="module")
def registry(tiny_models: Path, tmp_path_factory: pytest.TempPathFactory) -> ModelRegistry:
    from models.gan import GANConfig, MuseGAN, save_gan

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
                            registry=registry, corpus=pieces, progress=messages.append)
    return report, json.loads((out / "results.json").read_text()), messages


def _row(text: str, section: str, label: str) -> list[str]:
    """Cells of the table row starting with ``label`` under the heading ``section``."""
    body = text.split(section, 1)[1]
    line = next(ln for ln in body.splitlines() if ln.startswith(f"| {label} |"))
    return [c.strip() for c in line.strip("|").split("|")]


def test_run_writes_the_report_sections_json_and_plots(run: tuple[Path, dict, list[str]]) -> None:
    report, res, messages = run
    text = report.read_text()
    for heading in ("# Cadenza evaluation report", "## Summary",
                    "## Held-out likelihood (sequence models)", "### VAE held-out reconstruction",
                    "## Real reference data", "## Objective metrics", "### folk", "### celtic",
                    "### jazz", "## Style classifier", "## How the figures are computed"):
        assert heading in text, heading
    assert "**No real reference for jazz**" in text
    assert any(m.startswith("generating gan / celtic") for m in messages)
    out = report.parent
    pngs = ["features_folk", "features_celtic", "features_jazz", "overlap", "nll",
            "confusion_real", *(f"confusion_{m}" for m in ("gan", "gru", "lstm", "rnn", "vae"))]
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
            if (m, s) == ("gan", "celtic"):
                assert g["clips"] == 0 and "no celtic style" in g["error"]
            else:
                assert g["clips"] == CLIPS and g["error"] is None, (m, s, g)
    assert "- gan: the gan model has no celtic style" in text.split("### celtic")[1]
    assert _row(text, "### celtic", "pitch-class entropy (bits)")[2] == "n/a (OA n/a)"


def test_report_figures_match_the_clips_and_the_checkpoints(
        run: tuple[Path, dict, list[str]], registry: ModelRegistry, pieces: list[Piece]) -> None:
    report, res, _ = run
    text = report.read_text()
    # the lstm's folk clips recomputed here: seeds 0, 1, 2 through the Composer
    composer = Composer(registry)
    values = []
    for i in range(CLIPS):
        score = composer.compose(composer.resolve(ComposeRequest("folk", BARS, seed=i,
                                                                 model="lstm"))).score
        per_bar = bar_steps(score.time_signature)
        values.append(clip_metrics(encode(score)[:, :, :per_bar], steps_per_bar=per_bar))
    got = res["generated"]["lstm"]["folk"]["metrics"]
    for k in METRICS:
        v = [d[k] for d in values if not math.isnan(d[k])]
        assert got[k]["n"] == len(v)
        if v:
            assert got[k]["mean"] == pytest.approx(np.mean(v)) and got[k]["std"] == \
                pytest.approx(np.std(v))
    # ... and the table shows them with the real figures beside them
    real = res["real"]["folk"]["metrics"]["pitch_class_entropy"]
    cells = _row(text, "### folk", "pitch-class entropy (bits)")
    assert cells[1] == f"{real['mean']:.3f} ± {real['std']:.3f}"
    lstm_cell = cells[1 + 1 + sorted(res["models"]).index("lstm")]
    g = got["pitch_class_entropy"]
    assert lstm_cell == f"{g['mean']:.3f} ± {g['std']:.3f} (OA {g['overlap']:.2f})"
    # overlap areas: in [0, 1] against real data, absent for jazz
    for m in res["generated"]:
        for k in METRICS:
            for s in ("folk", "celtic"):
                oa = res["generated"][m][s]["metrics"][k]["overlap"]
                assert oa is None or 0.0 <= oa <= 1.0
            assert res["generated"][m]["jazz"]["metrics"][k]["overlap"] is None
    # real reference provenance
    assert res["real"]["folk"]["heldout_clips"] == 3 and res["real"]["jazz"]["clips"] == 0
    assert _row(text, "## Real reference data", "folk")[1:4] == ["3", "3", "2 / 2"]
    # held-out figures from checkpoint meta: NLL in nats, bits, perplexity; VAE accuracy
    assert _row(text, "## Held-out likelihood", "lstm")[1:6] == [
        "1.2345", f"{1.2345 / math.log(2):.3f}", f"{math.exp(1.2345):.2f}", "1.5000", "4321"]
    assert "n/a (no held-out figure in the checkpoint)" in _row(text, "## Held-out", "gru")[1]
    assert _row(text, "### VAE held-out", "vae")[1:4] == ["0.912", "0.500", "0.750"]


def test_classifier_results_cover_every_model_and_the_real_data(
        run: tuple[Path, dict, list[str]]) -> None:
    report, res, _ = run
    cls = res["classifier"]
    real_cv = cls["real"]["band"]["cv"]
    assert real_cv["labels"] == ["celtic", "folk"] and real_cv["n"] == 6
    for m in ("gan", "gru", "lstm", "rnn", "vae"):
        played = ["folk", "jazz"] if m == "gan" else sorted(STYLES)
        for kind in ("band", "lead"):
            cv, tt = cls[m][kind]["cv"], cls[m][kind]["real_to_gen"]
            assert cv["labels"] == played and cv["n"] == len(played) * CLIPS
            for r in (cv, tt):  # accuracy is the confusion matrix's diagonal share
                assert np.array(r["confusion"]).sum() == r["n"]
                assert r["accuracy"] == pytest.approx(np.trace(r["confusion"]) / r["n"])
            # trained on real celtic and folk, tested on the model's clips of those (no jazz)
            assert tt["labels"] == ["celtic", "folk"] and tt["chance"] == 0.5
            assert tt["n"] == (len(played) - 1) * CLIPS
        c = cls[m]["lead"]["cv"]
        cell = _row(report.read_text(), "## Style classifier", m)[2]
        assert cell == f"{c['accuracy']:.2f} (chance {c['chance']:.2f}, n={c['n']})"


def test_same_seed_same_figures_whatever_else_is_evaluated(
        run: tuple[Path, dict, list[str]], registry: ModelRegistry, pieces: list[Piece],
        tmp_path: Path) -> None:
    _, res, _ = run
    report = run_evaluation(tmp_path / "one", models=["lstm"], styles=["folk"], clips=CLIPS,
                            bars=BARS, seed=0, registry=registry, corpus=lambda: pieces)
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
    assert not out.exists()


def test_clips_in_meters_the_roll_cannot_hold_are_skipped(pieces: list[Piece]) -> None:
    nine_eight = next(p for p in pieces if p.meter == (9, 8))
    assert clip_from_score(nine_eight.to_score(), "folk", "x") is None
    assert clip_from_score(pieces[0].to_score(), "folk", "x") is not None


def test_uninformative_features_are_left_out_of_the_mean_overlap() -> None:
    from bot.evaluation.results import mean_overlap, uninformative

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
