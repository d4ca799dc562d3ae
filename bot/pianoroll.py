"""Piano-roll PNG of a Score (Agg backend only), sized for a Discord embed."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from models.score import Score, Track
from models.theory import pitch_name

log = logging.getLogger(__name__)

WIDTH_PX, HEIGHT_PX, DPI = 1200, 500, 100

# One hue per role so a member learns "orange is the melody"; extra tracks take the spares.
ROLE_COLOURS = {
    "lead": "#e4572e", "chords": "#4c78a8", "bass": "#54a24b", "drums": "#6f6f6f",
    "other": "#b279a2",
}
SPARE_COLOURS = ("#f2a541", "#17becf", "#9d755d", "#e377c2", "#bcbd22", "#8c564b", "#1f77b4")

# Short General MIDI percussion names for the drum lane (key 35-81).
GM_DRUMS = {
    35: "Kick 2", 36: "Kick", 37: "Stick", 38: "Snare", 39: "Clap", 40: "Snare 2",
    41: "Lo floor tom", 42: "Closed hat", 43: "Hi floor tom", 44: "Pedal hat", 45: "Lo tom",
    46: "Open hat", 47: "Lo-mid tom", 48: "Hi-mid tom", 49: "Crash", 50: "Hi tom",
    51: "Ride", 52: "China", 53: "Ride bell", 54: "Tambourine", 55: "Splash", 56: "Cowbell",
    57: "Crash 2", 58: "Vibraslap", 59: "Ride 2", 60: "Hi bongo", 61: "Lo bongo",
    62: "Mute conga", 63: "Open conga", 64: "Lo conga", 65: "Hi timbale", 66: "Lo timbale",
    67: "Hi agogo", 68: "Lo agogo", 69: "Cabasa", 70: "Maracas", 71: "Whistle",
    72: "Long whistle", 73: "Short guiro", 74: "Long guiro", 75: "Claves", 76: "Hi block",
    77: "Lo block", 78: "Mute cuica", 79: "Open cuica", 80: "Mute triangle",
    81: "Open triangle",
}
_BLACK_KEYS = {1, 3, 6, 8, 10}
_BG, _GRID, _TEXT = "#fbfbfd", "#d5d8de", "#2b2d33"


def _colours(tracks: tuple[Track, ...]) -> list[str]:
    used: set[str] = set()
    spares = iter(SPARE_COLOURS)
    out = []
    for t in tracks:
        colour = ROLE_COLOURS[t.role]
        if colour in used:
            colour = next(spares, "#333333")
        used.add(colour)
        out.append(colour)
    return out


def _note_verts(notes: Any, bar_ticks: int, row: Any, min_width: float = 0.0) -> list:
    """Rectangles in (bars, row) coordinates for a PolyCollection."""
    verts = []
    for n in notes:
        x0 = n.start / bar_ticks
        x1 = max(n.end / bar_ticks, x0 + min_width)
        y = row(n.pitch)
        verts.append(((x0, y - 0.42), (x0, y + 0.42), (x1, y + 0.42), (x1, y - 0.42)))
    return verts


def _rgba(colour: str, velocity: int) -> tuple[float, float, float, float]:
    from matplotlib.colors import to_rgb

    r, g, b = to_rgb(colour)
    return (r, g, b, 0.45 + 0.55 * velocity / 127)  # louder notes are more opaque


def _bar_grid(ax: Any, score: Score, end_bars: float) -> None:
    beats_per_bar = score.bar_ticks / score.beat_ticks
    step = 1 / beats_per_bar if beats_per_bar.is_integer() else None
    if step and end_bars <= 16:  # beat lines only while they stay readable
        beats = [i * step for i in range(int(end_bars / step) + 1) if i % beats_per_bar]
        ax.vlines(beats, 0, 1, transform=ax.get_xaxis_transform(), colors=_GRID,
                  linewidths=0.4, alpha=0.6, zorder=1)
    ax.vlines(range(int(end_bars) + 1), 0, 1, transform=ax.get_xaxis_transform(),
              colors="#9aa0aa", linewidths=0.9, zorder=1)
    ax.set_xlim(0, end_bars)
    ax.set_facecolor(_BG)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.tick_params(labelsize=8, colors=_TEXT, length=2)


def render_pianoroll(score: Score, path: str | Path, title: str | None = None) -> Path:
    """Draw ``score`` to a 1200x500 PNG at ``path`` and return the path.

    Pitched tracks share the main roll (one colour each, opacity from velocity), drums get their
    own lane below with one labelled row per instrument, bars are numbered and chord symbols run
    along the top. Only matplotlib's object API with the Agg canvas is used: no pyplot state, so
    concurrent calls from a thread pool are independent.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.collections import PolyCollection
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch
    from matplotlib.transforms import blended_transform_factory

    path = Path(path)
    bar = score.bar_ticks
    colours = _colours(score.tracks)
    pitched = [(t, c) for t, c in zip(score.tracks, colours, strict=True)
               if not t.is_drum and t.notes]
    drums = [(t, c) for t, c in zip(score.tracks, colours, strict=True) if t.is_drum and t.notes]
    last_tick = max((n.end for t in score.tracks for n in t.notes), default=0)
    end_bars = max(score.bars, -(-last_tick // bar), 1)

    fig = Figure(figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI, facecolor="white")
    FigureCanvasAgg(fig)
    layout = {"left": 0.085, "right": 0.985, "top": 0.80, "bottom": 0.085, "hspace": 0.06}
    if pitched and drums:
        grid = fig.add_gridspec(2, 1, height_ratios=(3.0, 1.0), **layout)
        ax_roll = fig.add_subplot(grid[0])
        ax_drums = fig.add_subplot(grid[1], sharex=ax_roll)
    else:
        grid = fig.add_gridspec(1, 1, **layout)
        ax = fig.add_subplot(grid[0])
        ax_roll, ax_drums = (None, ax) if drums else (ax, None)

    if ax_roll is not None:
        _bar_grid(ax_roll, score, end_bars)
        pitches = [n.pitch for t, _ in pitched for n in t.notes] or [60]
        lo, hi = min(pitches) - 2, max(pitches) + 2
        if hi - lo < 24:  # keep a two-octave window so a narrow melody is not stretched tall
            mid = (lo + hi) // 2
            lo, hi = mid - 12, mid + 12
        black = [((0, p - 0.5), (end_bars, p - 0.5), (end_bars, p + 0.5), (0, p + 0.5))
                 for p in range(lo, hi + 1) if p % 12 in _BLACK_KEYS]
        ax_roll.add_collection(PolyCollection(black, facecolors="#eef0f4", edgecolors="none",
                                              zorder=0))
        for track, colour in pitched:
            verts = _note_verts(track.notes, bar, float)
            faces = [_rgba(colour, n.velocity) for n in track.notes]
            ax_roll.add_collection(PolyCollection(verts, facecolors=faces, edgecolors=colour,
                                                  linewidths=0.5, zorder=3))
        ax_roll.set_ylim(lo - 0.5, hi + 0.5)
        cs = [p for p in range(lo, hi + 1) if p % 12 == 0]
        ax_roll.set_yticks(cs, [pitch_name(p) for p in cs])
        _chord_labels(ax_roll, score, end_bars, blended_transform_factory)

    if ax_drums is not None:
        _bar_grid(ax_drums, score, end_bars)
        keys = sorted({n.pitch for t, _ in drums for n in t.notes})
        rows = {p: i for i, p in enumerate(keys)}
        for track, colour in drums:
            verts = _note_verts(track.notes, bar, rows.__getitem__, min_width=0.02)
            faces = [_rgba(colour, n.velocity) for n in track.notes]
            ax_drums.add_collection(PolyCollection(verts, facecolors=faces, edgecolors=colour,
                                                   linewidths=0.5, zorder=3))
        ax_drums.set_ylim(-0.6, len(keys) - 0.4)
        ax_drums.set_yticks(range(len(keys)), [GM_DRUMS.get(p, f"Drum {p}") for p in keys])
        ax_drums.tick_params(axis="y", labelsize=7 if len(keys) > 4 else 8)
        if ax_roll is None:
            _chord_labels(ax_drums, score, end_bars, blended_transform_factory)

    bottom = ax_drums if ax_drums is not None else ax_roll
    every = 1 if end_bars <= 16 else 2 if end_bars <= 32 else 4
    ticks = list(range(0, int(end_bars), every))
    bottom.set_xticks([t + 0.5 for t in ticks], [str(t + 1) for t in ticks])
    bottom.set_xlabel("bar", fontsize=8, color=_TEXT, labelpad=1)
    if ax_roll is not None and ax_drums is not None:
        ax_roll.tick_params(axis="x", labelbottom=False, length=0)

    heading = title or "Cadenza"
    fig.text(0.085, 0.955, heading, fontsize=14, fontweight="bold", color=_TEXT, va="center")
    meter = f"{score.time_signature[0]}/{score.time_signature[1]}"
    facts = [score.key.name, f"{score.tempo:g} bpm", meter]
    if score.bars:
        facts.append(f"{score.bars} bar{'s' if score.bars != 1 else ''}")
    if score.style:
        facts.append(score.style)
    fig.text(0.085, 0.895, "  ·  ".join(facts), fontsize=9, color="#5a5e66", va="center")
    handles = [Patch(facecolor=c, edgecolor=c, label=t.name)
               for t, c in zip(score.tracks, colours, strict=True)]
    if handles:
        fig.legend(handles=handles, loc="upper right", bbox_to_anchor=(0.985, 0.985),
                   ncol=min(len(handles), 5), frameon=False, fontsize=9, handlelength=1.2,
                   columnspacing=1.2)
    if not score.note_count():
        (ax_roll or ax_drums).text(0.5, 0.5, "no notes", transform=(ax_roll or ax_drums).transAxes,
                                   ha="center", va="center", color="#888888")

    fig.savefig(path, format="png", dpi=DPI, facecolor="white")
    return path


def _chord_labels(ax: Any, score: Score, end_bars: float, blend: Any) -> None:
    """Chord names along the top edge, skipping any that would overlap the previous one."""
    transform = blend(ax.transData, ax.transAxes)
    axes_px = WIDTH_PX * (ax.get_position().x1 - ax.get_position().x0)
    px_per_bar = axes_px / end_bars
    free_from = -1.0  # x in px where the next label may start
    for ev in score.chords:
        x = ev.start / score.bar_ticks
        if x >= end_bars:
            break
        name = ev.chord.name(score.key)
        x_px = x * px_per_bar
        if x_px < free_from:
            continue
        ax.text(x + 0.03, 1.015, name, transform=transform, fontsize=9, color=_TEXT,
                ha="left", va="bottom", fontweight="bold", clip_on=False)
        ax.vlines(x, 0.985, 1.0, transform=transform, colors=_TEXT, linewidths=0.8)
        free_from = x_px + 8.0 * len(name) + 10  # bold 9 pt is under 8 px per character
