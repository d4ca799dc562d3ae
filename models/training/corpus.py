"""Offline training data: melodies with chords from music21's corpus and from user MIDI folders.

Each source becomes ``Piece`` records (one monophonic melody on the GRID, its meter, key, bar
count and chord changes). Parsing music21's corpus takes minutes, so results are cached as gzipped
JSON lines keyed by the source list and ``EXTRACTOR_VERSION``.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import math
import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from cadenza.music.chord_infer import harmonize_melody, harmonize_voices, key_from_pitches
from cadenza.music.form import bar_onsets, infer_sections, melody_form
from cadenza.music.score import GRID, ChordEvent, Meter, Note, Score, Track, bar_ticks
from cadenza.music.score import bar_ticks as bar_ticks_of
from cadenza.music.theory import Chord, Key, TheoryError
from cadenza.music.tokens import METERS

log = logging.getLogger(__name__)

EXTRACTOR_VERSION = 3
MIN_NOTES = 8
MIN_BARS = 2

# music21 corpus groups and the style label they train
CORPUS_SOURCES: dict[str, tuple[str, ...]] = {
    "classical": ("bach",),
    "folk": ("essenFolksong", "leadSheet/fosterBrownHair.mxl"),
    "celtic": ("oneills1850", "ryansMammoth", "airdsAirs"),
    "ragtime": ("joplin", "leadSheet/berlinAlexandersRagtime.mxl"),
}

Span = tuple[int, int, int]


NO_CHORD = "NC"  # a chord name that ends the sounding chord without starting another


@dataclass(frozen=True)
class Piece:
    """One training melody: notes as (start, duration, pitch) ticks, chords as (tick, name)
    (``NC`` for none), and its form as sections of bars when the source says so (otherwise
    ``form_sections`` infers them from the melody's own repetitions)."""

    source: str
    style: str
    meter: Meter
    key: Key
    bars: int
    notes: tuple[tuple[int, int, int], ...]
    chords: tuple[tuple[int, str], ...]
    sections: tuple[tuple[int, int, str], ...] = ()

    def __post_init__(self) -> None:
        if type(self.meter) is not Meter:  # (4, 4) from a caller
            object.__setattr__(self, "meter", Meter.parse(self.meter))

    @property
    def bar_ticks(self) -> int:
        return bar_ticks(self.meter)

    def chord_changes(self) -> list[tuple[int, Chord | None]]:
        """The chord changes as Chords: None for ``NC`` and for a name that does not parse (a
        chord the data misspells is no chord, not a lost piece)."""
        out: list[tuple[int, Chord | None]] = []
        for tick, name in self.chords:
            try:
                out.append((tick, None if name == NO_CHORD else Chord.parse(name)))
            except TheoryError:
                out.append((tick, None))
        return out

    def to_score(self, tempo: float = 120.0) -> Score:
        end = self.bars * self.bar_ticks
        events = []
        changes = self.chord_changes()
        for i, (tick, chord) in enumerate(changes):
            stop = changes[i + 1][0] if i + 1 < len(changes) else end
            if stop > tick and chord is not None:
                events.append(ChordEvent(tick, stop - tick, chord))
        notes = tuple(Note(s, d, p, 88) for s, d, p in self.notes)
        return Score(
            tracks=(Track("Lead", role="lead", notes=notes),),
            chords=tuple(events),
            tempo=tempo,
            time_signature=self.meter,
            key=self.key,
            bars=self.bars,
            style=self.style,
        )

    def form_sections(self) -> tuple[tuple[int, int, str], ...]:
        """The source's sections, else sections inferred from repeated melody phrases."""
        if self.sections:
            return self.sections
        return infer_sections(bar_onsets(self.notes, self.bar_ticks, self.bars))

    def melody_form(self) -> tuple[list[tuple[int, int, int, int]], list[int]]:
        """Per bar, the form rows of ``form_sections`` and the echoes of the melody's own
        repetitions, the phrases compared once (``cadenza.music.form.melody_form``): where
        the echo features say a phrase comes back, the melody does (a solo over an AABA
        chorus rarely brings its line back, so echoes from the source's sections would teach
        that a return means nothing)."""
        return melody_form(self.notes, self.bar_ticks, self.bars, self.sections)

    def to_json(self) -> str:
        return json.dumps({
            "source": self.source, "style": self.style, "meter": list(self.meter),
            "key": [self.key.tonic, self.key.mode], "bars": self.bars,
            "notes": [list(n) for n in self.notes], "chords": [list(c) for c in self.chords],
            "sections": [list(s) for s in self.sections],
        }, separators=(",", ":"))

    @classmethod
    def from_json(cls, line: str) -> Piece:
        d = json.loads(line)
        return cls(
            d["source"], d["style"], tuple(d["meter"]), Key(*d["key"]), d["bars"],
            tuple(tuple(n) for n in d["notes"]), tuple((t, c) for t, c in d["chords"]),
            tuple(tuple(x) for x in d.get("sections", ())),
        )


# ---------------------------------------------------------------- melody helpers (pure)


def monophonic(spans: Iterable[Span]) -> list[Span]:
    """Highest note per onset, each cut where the next begins (a skyline)."""
    by_start: dict[int, Span] = {}
    for s, e, p in spans:
        if e > s and (s not in by_start or p > by_start[s][2]):
            by_start[s] = (s, e, p)
    out = [by_start[s] for s in sorted(by_start)]
    return [(s, min(e, out[i + 1][0]) if i + 1 < len(out) else e, p)
            for i, (s, e, p) in enumerate(out)]


def make_piece(
    source: str, style: str, meter: tuple[int, int], key: Key | None, melody: Sequence[Span],
    chords: list[tuple[int, Chord | None]] | None = None, harmony: Sequence[Span] | None = None,
) -> Piece | None:
    """Validate a melody and attach chords (given, from harmony voices, or inferred)."""
    if tuple(meter) not in METERS:
        return None
    mel = monophonic(melody)
    if len(mel) < MIN_NOTES:
        return None
    bar_ticks = bar_ticks_of(meter)
    end = max(e for _, e, _ in mel)
    bars = math.ceil(end / bar_ticks)
    if bars < MIN_BARS:
        return None
    key = key or key_from_pitches(list(harmony or mel))
    if chords is None:
        if harmony:
            chords = harmonize_voices(harmony, bars * bar_ticks, step=min(12, bar_ticks))
        else:
            split = meter in ((4, 4), (6, 8), (12, 8))
            chords = harmonize_melody(mel, key, bar_ticks, bars, split=split)
    return Piece(
        source, style, tuple(meter), key, bars,
        tuple((s, e - s, p) for s, e, p in mel),
        tuple((t, c.name() if c else NO_CHORD) for t, c in chords if t < bars * bar_ticks),
    )


# ---------------------------------------------------------------- music21 extraction


def _m21_key(score) -> Key | None:  # type: ignore[no-untyped-def]
    from music21 import key as m21key

    for k in score.recurse().getElementsByClass(m21key.KeySignature):
        try:
            kk = k if isinstance(k, m21key.Key) else k.asKey("major")
        except Exception:  # noqa: BLE001 - odd key signatures: fall back to estimation
            return None
        mode = {"major": "major", "ionian": "major", "mixolydian": "major", "lydian": "major",
                "minor": "minor", "aeolian": "minor", "dorian": "minor", "phrygian": "minor",
                "locrian": "minor"}.get(str(kk.mode), "major")
        return Key(kk.tonic.pitchClass, mode)
    return None


def _part_spans(part, shift: float) -> tuple[list[Span], float | None]:  # type: ignore[no-untyped-def]
    """Note spans of one part in GRID ticks, and the offset where the meter first changes."""
    from music21 import meter as m21meter

    flat = part.stripTies().flatten()
    first_change = None
    first = None
    for ts in flat.getElementsByClass(m21meter.TimeSignature):
        if first is None:
            first = ts.ratioString
        elif ts.ratioString != first:
            first_change = float(ts.offset)
            break
    spans = []
    for n in flat.notes:
        ql = float(n.quarterLength)
        if ql <= 0:
            continue  # grace notes
        off = float(n.offset)
        if first_change is not None and off >= first_change:
            break
        s = round((off + shift) * GRID)
        e = max(s + 1, round((off + shift + ql) * GRID))
        for p in n.pitches:
            spans.append((s, e, int(p.midi)))
    return spans, first_change


def _score_meter_shift(score) -> tuple[tuple[int, int] | None, float]:  # type: ignore[no-untyped-def]
    """First time signature of a score and the pickup shift that puts downbeats on bar lines."""
    from music21 import meter as m21meter

    ts = next(iter(score.recurse().getElementsByClass(m21meter.TimeSignature)), None)
    if ts is None:
        return None, 0.0
    meter = (int(ts.numerator), int(ts.denominator))
    part = score.parts[0] if score.parts else score
    measures = part.getElementsByClass("Measure")
    shift = 0.0
    if measures:
        m0 = measures[0]
        bar_q = ts.barDuration.quarterLength
        if m0.duration.quarterLength < bar_q:
            shift = float(bar_q - m0.duration.quarterLength)
    return meter, shift


def _chord_symbols(score, shift: float) -> list[tuple[int, Chord]] | None:  # type: ignore[no-untyped-def]
    from music21 import harmony

    from cadenza.music.chord_infer import best_chord

    out = []
    for cs in score.flatten().getElementsByClass(harmony.ChordSymbol):
        pcs = [0.0] * 12
        for p in cs.pitches:
            pcs[p.pitchClass] += 1.0
        root = cs.root()
        chord = best_chord(pcs, root.midi if root is not None else None)
        if chord is not None:
            out.append((round((float(cs.offset) + shift) * GRID), chord))
    return out or None


def extract_m21_score(score, source: str, style: str) -> Piece | None:  # type: ignore[no-untyped-def]
    meter, shift = _score_meter_shift(score)
    if meter is None or not score.parts:
        return None
    parts = list(score.parts)
    key = _m21_key(score)
    if len(parts) >= 2:
        # melody = top part's skyline; harmony from every part (chorales, piano)
        mel, change = _part_spans(parts[0], shift)
        harmony = list(mel)
        for p in parts[1:]:
            spans, _ = _part_spans(p, shift)
            harmony += [s for s in spans if change is None or s[0] < change * GRID]
        chords = _chord_symbols(score, shift)
        return make_piece(source, style, meter, None, mel, chords=chords, harmony=harmony)
    mel, _ = _part_spans(parts[0], shift)
    if key is not None and mel:
        # ABC K: fields often name only the tonic (Essen's "K: A" over an A-minor tune)
        key = key_from_pitches(mel, tonic=key.tonic)
    return make_piece(source, style, meter, key, mel, chords=_chord_symbols(score, shift))


def _extract_file(job: tuple[str, str]) -> list[str]:
    """Worker: one corpus file (a score or an opus of tunes) -> Piece JSON lines."""
    path, style = job
    from music21 import converter, stream
    from music21.common import getCorpusFilePath

    try:
        obj = converter.parse(Path(getCorpusFilePath()) / path)
    except Exception as e:  # noqa: BLE001 - one bad file must not stop a 10-minute extraction
        log.warning("skipping %s: %s", path, e)
        return []
    scores = list(obj.scores) if isinstance(obj, stream.Opus) else [obj]
    out = []
    for i, sc in enumerate(scores):
        try:
            piece = extract_m21_score(sc, f"{path}#{i}", style)
        except Exception as e:  # noqa: BLE001
            log.debug("skipping %s#%d: %s", path, i, e)
            continue
        if piece is not None:
            out.append(piece.to_json())
    return out


def corpus_jobs(styles: Sequence[str] | None = None) -> list[tuple[str, str]]:
    """(path relative to music21's corpus folder, style) for every file of the chosen styles."""
    from music21 import corpus
    from music21.common import getCorpusFilePath

    root = Path(getCorpusFilePath())
    jobs = []
    for style, groups in CORPUS_SOURCES.items():
        if styles and style not in styles:
            continue
        for g in groups:
            paths = [root / g] if "/" in g else [Path(p) for p in corpus.getComposer(g)]
            for p in paths:
                if g == "bach" and p.suffix not in (".mxl", ".xml", ".musicxml"):
                    continue
                jobs.append((str(p.relative_to(root)), style))
    return sorted(set(jobs))


def _bach_is_chorale(piece: Piece) -> bool:
    return piece.meter in ((4, 4), (3, 4)) and piece.bars <= 40


# ---------------------------------------------------------------- user MIDI folders


def midi_folder_pieces(root: Path) -> list[Piece]:
    """Pieces from ``root/<style>/*.mid``: the sub-folder name is the style label."""
    from cadenza.music.midi_import import extract_melody, import_midi

    pieces = []
    for style_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        for f in sorted(style_dir.rglob("*")):
            if f.suffix.lower() not in (".mid", ".midi", ".kar", ".rmi"):
                continue
            try:
                result = import_midi(f.read_bytes())
            except Exception as e:  # noqa: BLE001 - report and go on with the rest
                log.warning("skipping %s: %s", f, e)
                continue
            score = result.score
            lead = extract_melody(score, guessed_lead=True)
            mel = [(n.start, n.end, n.pitch) for n in lead.notes]
            harmony = [(n.start, n.end, n.pitch) for t in score.tracks if not t.is_drum
                       for n in t.notes]
            piece = make_piece(str(f), style_dir.name, score.time_signature, None, mel,
                               harmony=harmony)
            if piece is not None:
                pieces.append(piece)
    return pieces


# ---------------------------------------------------------------- cache


def default_cache_dir() -> Path:
    base = os.environ.get("CADENZA_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "cadenza"
    )
    return Path(base)


def load_corpus(
    styles: Sequence[str] | None = None,
    *,
    cache_dir: Path | None = None,
    workers: int = 2,
    limit_files: int | None = None,
) -> list[Piece]:
    """All corpus pieces for the styles, from the cache when it is current."""
    jobs = corpus_jobs(styles)
    if limit_files:
        jobs = jobs[:limit_files]
    digest = hashlib.sha256(
        json.dumps([EXTRACTOR_VERSION, jobs]).encode()
    ).hexdigest()[:16]
    cache = (cache_dir or default_cache_dir()) / f"corpus-{digest}.jsonl.gz"
    if cache.exists():
        with gzip.open(cache, "rt") as f:
            pieces = [Piece.from_json(line) for line in f if line.strip()]
        log.info("loaded %d pieces from %s", len(pieces), cache)
        return pieces
    log.info("extracting %d corpus files with %d workers (cached afterwards)", len(jobs), workers)
    lines: list[str] = []
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            for i, out in enumerate(pool.map(_extract_file, jobs, chunksize=1)):
                lines += out
                if i % 50 == 0:
                    log.info("  %d/%d files, %d pieces", i, len(jobs), len(lines))
    else:
        for job in jobs:
            lines += _extract_file(job)
    pieces = [Piece.from_json(line) for line in lines]
    pieces = [p for p in pieces if p.style != "classical" or _bach_is_chorale(p)]
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp")
    with gzip.open(tmp, "wt") as f:
        for p in pieces:
            f.write(p.to_json() + "\n")
    tmp.replace(cache)
    return pieces
