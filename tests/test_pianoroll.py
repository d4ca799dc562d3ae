"""Piano-roll PNGs: real files of the embed size, every part visible, no matplotlib, thread-safe."""

from __future__ import annotations

import struct
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cadenza.music.score import ChordEvent, Note, Score, Track
from cadenza.music.theory import Chord, Key
from cadenza.pianoroll import HEIGHT_PX, ROLE_COLOURS, WIDTH_PX, draw_pianoroll, drum_name

N = Note


def band(bars: int) -> Score:
    lead, keys, bass, drums, chords = [], [], [], [], []
    for b in range(bars):
        t = b * 48
        root = (0, 9, 5, 7)[b % 4]
        chords.append(ChordEvent(t, 48, Chord(root, "min" if root == 9 else "maj")))
        lead += [N(t + i * 6, 6, 72 + (i * 2 + b) % 12, 70 + i * 5) for i in range(8)]
        keys += [N(t, 46, 60 + (root + iv) % 12, 60) for iv in (0, 4, 7)]
        bass += [N(t + q * 12, 11, 36 + root, 100) for q in range(4)]
        drums += [N(t + i * 6, 3, 42, 70) for i in range(8)]
        drums += [N(t, 3, 36, 110), N(t + 24, 3, 36, 110), N(t + 12, 3, 38, 100),
                  N(t + 36, 3, 38, 100)]
    return Score(
        tracks=(Track("Lead", "lead", 73, False, tuple(lead)),
                Track("Keys", "chords", 4, False, tuple(keys)),
                Track("Bass", "bass", 33, False, tuple(bass)),
                Track("Drums", "drums", 0, True, tuple(drums))),
        chords=tuple(chords), tempo=96.0, key=Key.parse("C"), bars=bars, style="lo-fi",
    )


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def colour_pixels(path: Path, hex_colour: str, tol: int = 40) -> int:
    """Pixels close to ``hex_colour`` (notes are drawn with it at 45-100 % opacity)."""
    rgb = np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)
    target = np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)], dtype=np.int16)
    return int((np.abs(rgb - target).max(axis=2) <= tol).sum())


def test_band_roll_is_an_embed_sized_png_with_every_part(tmp_path: Path) -> None:
    path = draw_pianoroll(band(8), tmp_path / "roll.png", title="Sunday chords")
    assert path == tmp_path / "roll.png"
    assert png_size(path) == (WIDTH_PX, HEIGHT_PX) == (1200, 500)
    for role in ("lead", "chords", "bass", "drums"):
        assert colour_pixels(path, ROLE_COLOURS[role]) > 300, role
    # mostly light background with ink on it, not a blank or black canvas
    grey = np.asarray(Image.open(path).convert("L"))
    assert 150 < grey.mean() < 250 and (grey < 100).mean() > 0.005


def test_drums_get_their_own_lane(tmp_path: Path) -> None:
    """The kit is drawn below the pitched roll, not mixed into it."""
    path = draw_pianoroll(band(4), tmp_path / "roll.png")
    rgb = np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)
    grey = np.array([0x6F, 0x6F, 0x6F], dtype=np.int16)
    orange = np.array([0xE4, 0x57, 0x2E], dtype=np.int16)
    # rows holding many note-coloured pixels (text antialiasing only yields a few per row)
    drum_rows = np.nonzero((np.abs(rgb - grey).max(axis=2) <= 20).sum(axis=1) > 40)[0]
    lead_rows = np.nonzero((np.abs(rgb - orange).max(axis=2) <= 40).sum(axis=1) > 40)[0]
    drum_rows = drum_rows[drum_rows > 60]  # skip the legend swatches at the top
    lead_rows = lead_rows[lead_rows > 60]
    assert drum_rows.size and lead_rows.size
    assert drum_rows.min() > lead_rows.max()


@pytest.mark.parametrize("score", [
    Score(bars=2),
    Score(tracks=(Track("kit", "drums", 0, True, (N(0, 3, 36), N(12, 3, 81), N(24, 3, 99))),),
          bars=1),
    Score(tracks=(Track("solo", "lead", 0, False, (N(0, 48, 60),)),), bars=0,
          time_signature=(6, 8), chords=(ChordEvent(0, 36, Chord(0)),)),
    Score(tracks=tuple(Track(f"p{i}", "other", i, False, (N(i * 6, 6, 50 + i),))
                       for i in range(9)), bars=1),
], ids=["empty", "drums-only", "6-8-no-bars", "nine-parts"])
def test_unusual_scores_still_render(tmp_path: Path, score: Score) -> None:
    path = draw_pianoroll(score, tmp_path / "x.png")
    assert png_size(path) == (1200, 500)


def test_32_bar_score_renders_at_embed_size_to_its_last_bar(tmp_path: Path) -> None:
    # (render time is measured by bench/synth.py, not asserted here)
    path = draw_pianoroll(band(32), tmp_path / "long.png", title="32 bars")
    assert png_size(path) == (1200, 500)
    for role in ("lead", "chords", "bass", "drums"):
        assert colour_pixels(path, ROLE_COLOURS[role]) > 300, role
    # the lead's last bar is drawn: the plot spans about 8.5-98.5 % of the width
    rgb = np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)
    c = ROLE_COLOURS["lead"]
    lead = np.abs(rgb - [int(c[i:i + 2], 16) for i in (1, 3, 5)]).max(axis=2) <= 40
    lead[:60] = False  # the legend swatches at the top
    left, right = int(0.085 * WIDTH_PX), int(0.985 * WIDTH_PX)
    assert lead[:, left + (right - left) * 31 // 32:right].sum() > 50


def test_concurrent_renders_do_not_interfere(tmp_path: Path) -> None:
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = [pool.submit(draw_pianoroll, band(2 + i), tmp_path / f"t{i}.png",
                               f"thread {i}") for i in range(3)]
        paths = [f.result() for f in futures]  # re-raises anything a thread hit
    assert all(png_size(p) == (1200, 500) for p in paths)
    serial = draw_pianoroll(band(2), tmp_path / "serial.png", title="thread 0")
    assert serial.read_bytes() == paths[0].read_bytes()


def test_never_imports_matplotlib(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The roll is rastered with Pillow: a matplotlib figure per clip cost 5-10x more (and
    pyplot keeps global state)."""
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # importing it now fails
    path = draw_pianoroll(band(8), tmp_path / "p.png", title="Cadenza — jazz")
    assert png_size(path) == (1200, 500)
    for role in ("lead", "chords", "bass", "drums"):
        assert colour_pixels(path, ROLE_COLOURS[role]) > 300, role


def test_the_orchestra_kit_lane_names_its_timpani_not_the_gm_drums() -> None:
    # keys 41-53 of the classical band's kit are timpani F2-F3 (cadenza.drums)
    assert [drum_name(k, timpani=True) for k in (41, 47, 52, 53)] == [
        "Timpani F2", "Timpani B2", "Timpani E3", "Timpani F3"]
    assert (drum_name(52), drum_name(54, timpani=True), drum_name(26)) == (
        "China", "Tambourine", "Drum 26")
