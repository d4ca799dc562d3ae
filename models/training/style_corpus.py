"""Training pieces from the style corpus beside the checkout: jazz and blues solos of the Weimar
Jazz Database on a beat grid with their chords and form, Impro-Visor transcriptions, rags.

The corpus is read in place (``../shared/style-corpus``, ``CADENZA_STYLE_CORPUS`` or a folder the
user names), never copied. Sources and licences are in its MANIFEST.md: the WJD solos are ODbL
1.0 data (MIT-licensed conversion), the Impro-Visor lead sheets GPL-2.0, the Mutopia rags public
domain, the craigsapp Joplin edition **CC BY-NC-SA 4.0**, which is only read when asked for
(``include_nc``): shipped weights never learn from it, the evaluation uses it as reference.

Every loader returns ``(pieces, skipped)`` where ``skipped`` counts the files left out by reason;
a file that does not parse is counted, never a crash.
"""

from __future__ import annotations

import csv
import logging
import os
from collections import Counter
from dataclasses import replace
from pathlib import Path

from cadenza.models.chord_model import ChordSeq, bar_content, bar_units, bars_from_changes
from cadenza.models.training.charts import checked_bar_ticks
from cadenza.models.training.corpus import Piece, make_piece
from cadenza.music.chord_infer import key_from_chords, key_from_pitches
from cadenza.music.form import Section, infer_sections
from cadenza.music.midi_parse import MidiError, read_midi
from cadenza.music.score import GRID, unswing_tick
from cadenza.music.theory import Chord, Key, TheoryError
from cadenza.music.tokens import METERS

log = logging.getLogger(__name__)

STYLE_CORPUS_ENV = "CADENZA_STYLE_CORPUS"
WJD_JAZZ = "jazz/midi/wjd-solos-aligned"
WJD_BLUES = "blues/midi/wjd-blues-solos-aligned"
LEADSHEETS_JAZZ = "jazz/leadsheets/impro-visor-transcriptions"
LEADSHEETS_BLUES = "blues/leadsheets/impro-visor-transcriptions"
RAGS_PD = "ragtime/midi/mutopia"
RAGS_NC = "ragtime/midi/craigsapp-joplin-NC"
CHARTS_JAZZ = "jazz/chords/jcpc"
CHARTS_BLUES = "blues/chords/jcpc-blues"
MAX_NC_FRACTION = 0.5  # solos annotated without changes (free jazz) teach no harmony
SWING_FEELS = ("SWING", "TWOBEAT")  # WJD rhythm feels played with swung eighths
_META_MARKER, _META_CUE = 0x06, 0x07

# Licence and credit per source, for model cards and the README.
SOURCES: dict[str, str] = {
    "wjd": "Weimar Jazz Database solos (Pfleiderer et al. (eds.), *Inside the Jazzomat*, 2017; "
           "Jazzomat Research Project), ODbL 1.0, beat-aligned by the jazzodata package "
           "(K. Frieler et al., MIT)",
    "impro-visor": "Impro-Visor transcriptions (Robert Keller and Harvey Mudd College), GPL-2.0",
    "mutopia": "Mutopia Project rags (Joplin, Turpin, Hunter), public domain",
    "joplin-nc": "Craig Stuart Sapp's Joplin edition, CC BY-NC-SA 4.0 (non-commercial: "
                 "evaluation only, never in shipped weights)",
    "jcpc": "Jazz Chord Progressions Corpus (Bunks, Dixon, Weyde, Di Giorgi, ISMIR 2023), from "
            "Impro-Visor's Imaginary Book (GPL-2.0)",
}


def default_style_corpus() -> Path | None:
    """``CADENZA_STYLE_CORPUS``, else ``../shared/style-corpus`` beside the checkout (or the
    working directory); None when there is none."""
    if env := os.environ.get(STYLE_CORPUS_ENV):
        return Path(env)
    here = Path(__file__).resolve().parents[3] / "shared" / "style-corpus"
    for cand in (here, Path.cwd().parent / "shared" / "style-corpus"):
        if (cand / "MANIFEST.md").is_file():
            return cand
    return None


def is_style_corpus(root: Path) -> bool:
    return (root / "MANIFEST.md").is_file() and (root / WJD_JAZZ).is_dir()


def source_kind(source: str) -> str:
    """'wjd', 'impro-visor', 'mutopia', 'joplin-nc', 'jcpc' or '' for other sources."""
    head = source.split(":", 1)[0]
    return head if head in SOURCES else ""


# ---------------------------------------------------------------- WJD solos


def _index(folder: Path) -> dict[str, dict[str, str]]:
    path = folder / "index.csv"
    if not path.is_file():
        return {}
    with open(path, newline="", encoding="utf-8") as f:
        return {row["file"]: row for row in csv.DictReader(f)}


def _wjd_key(text: str) -> Key | None:
    tonic, _, mode = text.partition("-")
    if mode not in ("maj", "min"):
        return None  # chromatic, modal or blank: estimated from the notes
    try:
        return Key.parse(tonic + ("m" if mode == "min" else ""))
    except TheoryError:
        return None


def _chord_or_none(text: str) -> Chord | None:
    return None if text.strip() in ("N.C.", "NC", "") else Chord.parse(text)


def read_wjd(data: bytes, source: str, style: str, key: Key | None = None, *,
             swung: bool = False) -> tuple[Piece | None, str]:
    """One beat-aligned WJD file -> (Piece with chords and form sections, '') or (None, why).

    A ``swung`` solo is straightened (``cadenza.music.score.unswing_tick``): the arranger swings
    every jazz and blues line, as the notated Impro-Visor transcriptions are written, so the models
    learn one straight grid and the performed swing is not applied twice; triplets come back
    exactly when the arranger swings them again."""
    try:
        mf = read_midi(data)
    except MidiError as e:
        return None, f"unreadable MIDI ({e})"
    tpq = mf.ticks_per_quarter
    if not tpq or tpq % GRID:
        return None, "not on the 1/12-beat grid"
    scale = tpq // GRID
    meters: list[tuple[int, int]] = []
    marks: list[tuple[int, Chord | None]] = []
    cues: list[tuple[int, str]] = []
    spans: list[tuple[int, int, int]] = []
    for track in mf.tracks:
        open_at: dict[int, int] = {}
        for ev in track:
            t = round(ev.tick / scale)
            if ev.kind == "time_signature":
                meters.append((ev.a, ev.b))
            elif ev.kind == "text" and ev.a == _META_MARKER:
                try:
                    marks.append((t, _chord_or_none(ev.data.decode("latin-1"))))
                except TheoryError:
                    return None, "a chord marker that does not parse"
            elif ev.kind == "text" and ev.a == _META_CUE:
                cues.append((t, ev.data.decode("latin-1")))
            elif ev.kind == "note_on":
                open_at[ev.a] = t
            elif ev.kind == "note_off" and ev.a in open_at:
                s = open_at.pop(ev.a)
                spans.append((s, max(s + 1, t), ev.a))
    if len(set(meters)) != 1:
        return None, "no metre or a metre change"
    if swung:
        spans = [(unswing_tick(a, GRID), max(unswing_tick(a, GRID) + 1, unswing_tick(b, GRID)),
                  p) for a, b, p in spans]
    meter = meters[0]
    if meter not in METERS:
        return None, f"metre {meter[0]}/{meter[1]}"
    chords = [(t, c) for t, c in marks]
    piece = make_piece(source, style, meter, key, spans, chords=chords)
    if piece is None:
        return None, "too short"
    return replace(piece, sections=_cue_sections(cues, piece.bar_ticks, piece.bars)), ""


def _cue_sections(cues: list[tuple[int, str]], bar_ticks: int, bars: int) -> tuple[Section, ...]:
    """Form parts ('A1 chorus 2', 'B1 ...') as sections; intros and unlabelled stretches are
    left out (unknown form)."""
    out: list[Section] = []
    cues = sorted(cues)
    for i, (tick, text) in enumerate(cues):
        start = round(tick / bar_ticks)
        stop = round(cues[i + 1][0] / bar_ticks) if i + 1 < len(cues) else bars
        letter = text[:1].upper()
        if letter in "ABCD" and stop > start:
            out.append((start, min(stop, bars) - start, letter))
    return tuple(out)


def wjd_pieces(root: Path, *, performed: bool = False) -> tuple[list[Piece], Counter[str]]:
    """Jazz and blues solos: a solo of the blues subset is blues, every other one jazz. With
    ``performed`` the swung solos keep their performed timing (the evaluation's real lines)
    instead of being straightened for the models."""
    skipped: Counter[str] = Counter()
    blues = set(_index(root / WJD_BLUES))
    index = _index(root / WJD_JAZZ)
    pieces: list[Piece] = []
    folder = root / WJD_JAZZ
    for f in sorted(folder.glob("*.mid")) if folder.is_dir() else []:
        row = index.get(f.name, {})
        try:
            if float(row.get("nc_fraction") or 0) > MAX_NC_FRACTION:
                skipped["wjd: no chord annotation"] += 1
                continue
        except ValueError:
            pass
        style = "blues" if f.name in blues else "jazz"
        swung = not performed and row.get("rhythmfeel", "SWING") in SWING_FEELS
        piece, why = read_wjd(f.read_bytes(), f"wjd:{f.stem}", style,
                              _wjd_key(row.get("key", "")), swung=swung)
        if piece is None:
            skipped[f"wjd: {why}"] += 1
            continue
        pieces.append(piece)
    return pieces, skipped


# ---------------------------------------------------------------- Impro-Visor lead sheets


def leadsheet_pieces(root: Path) -> tuple[list[Piece], Counter[str]]:
    """Transcribed solos with their changes; the blues subset's files are blues."""
    from cadenza.models.training.leadsheet import load_leadsheets

    if not (root / LEADSHEETS_JAZZ).is_dir():
        return [], Counter()
    sheets, skipped = load_leadsheets(root / LEADSHEETS_JAZZ)
    skipped = Counter({f"impro-visor: {k}": v for k, v in skipped.items()})
    blues_dir = root / LEADSHEETS_BLUES
    blues = {p.name for p in blues_dir.rglob("*.ls")} if blues_dir.is_dir() else set()
    pieces = []
    for sheet in sheets:
        name = Path(sheet.source).name
        if tuple(sheet.meter) not in METERS:
            skipped[f"impro-visor: metre {sheet.meter[0]}/{sheet.meter[1]}"] += 1
            continue
        style = "blues" if name in blues else "jazz"
        rel = "/".join(Path(sheet.source).parts[-2:])
        end = sheet.bars * checked_bar_ticks(sheet.meter)
        key = key_from_chords(list(sheet.chords), end, sheet.key)  # half say (key 0)
        piece = make_piece(f"impro-visor:{rel}", style, tuple(sheet.meter), key,
                           [(s, s + d, p) for s, d, p in sheet.melody],
                           chords=list(sheet.chords))
        if piece is None:
            skipped["impro-visor: too short"] += 1
            continue
        pieces.append(piece)
    return pieces, skipped


# ---------------------------------------------------------------- rags


def rag_pieces(root: Path, *, include_nc: bool = False, nc_only: bool = False
               ) -> tuple[list[Piece], Counter[str]]:
    """Rags: the right hand's top line over chords read from both hands. Public-domain Mutopia
    files always; the non-commercial Joplin edition only with ``include_nc`` (or ``nc_only``)."""
    from cadenza.music.midi_import import extract_melody, import_midi

    folders = [] if nc_only else [(root / RAGS_PD, "mutopia")]
    if include_nc or nc_only:
        folders.append((root / RAGS_NC, "joplin-nc"))
    pieces: list[Piece] = []
    skipped: Counter[str] = Counter()
    for folder, tag in folders:
        for f in sorted(folder.glob("*.mid")) if folder.is_dir() else []:
            try:
                score = import_midi(f.read_bytes()).score
            except (MidiError, ValueError) as e:
                log.debug("skipping %s: %s", f, e)
                skipped[f"{tag}: unreadable"] += 1
                continue
            if tuple(score.time_signature) not in METERS:
                skipped[f"{tag}: metre"] += 1
                continue
            lead = extract_melody(score, guessed_lead=True)
            mel = [(n.start, n.end, n.pitch) for n in lead.notes]
            harmony = [(n.start, n.end, n.pitch) for t in score.tracks if not t.is_drum
                       for n in t.notes]
            key = key_from_pitches(harmony) if harmony else None
            piece = make_piece(f"{tag}:{f.stem}", "ragtime", score.time_signature, key, mel,
                               harmony=harmony)
            if piece is None:
                skipped[f"{tag}: too short"] += 1
                continue
            pieces.append(piece)
    return pieces, skipped


def style_corpus_pieces(root: Path, *, include_nc: bool = False
                        ) -> tuple[list[Piece], Counter[str]]:
    """Every melody the style corpus offers for training (jazz, blues, ragtime)."""
    pieces: list[Piece] = []
    skipped: Counter[str] = Counter()
    for loader in (wjd_pieces, leadsheet_pieces):
        got, why = loader(root)
        pieces += got
        skipped += why
    got, why = rag_pieces(root, include_nc=include_nc)
    pieces += got
    skipped += why
    log.info("style corpus %s: %d pieces (%s); skipped %s", root, len(pieces),
             dict(Counter(p.style for p in pieces)), dict(skipped))
    return pieces, skipped


# ---------------------------------------------------------------- chord progressions


def chord_sequences(root: Path, *, include_nc: bool = False
                    ) -> tuple[list[ChordSeq], Counter[str]]:
    """Progressions for the chord model: jazz-standard charts (the 12-bar subset as blues) and
    the chords of the rags, each with its form inferred from its own repeated phrases."""
    from cadenza.models.training.charts import load_charts

    skipped: Counter[str] = Counter()
    out: list[ChordSeq] = []
    charts, why = load_charts(root / CHARTS_JAZZ) if (root / CHARTS_JAZZ).is_dir() else ([], {})
    skipped += Counter({f"jcpc: {k}": v for k, v in why.items()})
    blues_dir = root / CHARTS_BLUES
    blues = {p.name for p in blues_dir.glob("*.txt")} if blues_dir.is_dir() else set()
    for chart in charts:
        meter = (4, 4) if tuple(chart.meter) == (2, 2) else tuple(chart.meter)
        if meter not in METERS or bar_units(meter) > 12:
            skipped[f"jcpc: metre {chart.meter[0]}/{chart.meter[1]}"] += 1
            continue
        name = Path(chart.source).name
        bars = bars_from_changes(chart.changes(), len(chart.bars), meter)
        # chords are learned relative to the tonic: a placeholder signature would teach noise
        length = len(chart.bars) * checked_bar_ticks(meter)
        key = key_from_chords(chart.changes(), length, chart.key)
        out.append(ChordSeq(f"jcpc:{Path(name).stem}", "blues" if name in blues else "jazz",
                            meter, key, tuple(bars), infer_sections(bar_content(bars))))
    rags, why = rag_pieces(root, include_nc=include_nc)
    skipped += why
    for p in rags:
        bars = bars_from_changes(p.chord_changes(), p.bars, p.meter)
        out.append(ChordSeq(p.source, "ragtime", p.meter, p.key, tuple(bars), p.form_sections()))
    return out, skipped
