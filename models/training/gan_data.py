"""Training arrays for the GAN: band Scores -> key-normalised 4-bar phrase rolls with style ids.

Pure numpy (no torch, no ``bot``). The caller brings band Scores with role-tagged tracks: corpus
melodies arranged by ``cadenza.arrange`` (lead, chords, bass, drums), Bach chorales' four voices
(soprano as lead, alto and tenor as chords, bass as bass, no drums), users' MIDI files. Each
Score is cut into phrases of ``phrase_bars`` bars (every ``hop`` bars, plus one phrase ending on
the last bar so endings are seen) and, by default, transposed so its key signature is C major /
A minor: one pitch collection instead of twelve is far easier for a small GAN, and the sampler
moves its output to the requested key afterwards.

Arrays may be stored bit-packed along the pitch axis (``np.packbits``: 84 pitches -> 11 bytes),
which ``cadenza.models.training.train_gan`` accepts as they are and unpacks batch by batch.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cadenza.music.roll import (
    PITCHES,
    STEPS,
    STEPS_PER_BEAT,
    TRACKS,
    RollError,
    beat_positions,
    encode,
    onset_counts,
    transpose,
)
from cadenza.music.score import Score
from cadenza.music.theory import Key

log = logging.getLogger(__name__)

PACKED_PITCH_BYTES = (PITCHES + 7) // 8


@dataclass
class GANData:
    """Phrase rolls (N, P, TRACKS, STEPS, PITCHES) bool (or packed), style ids (N,), names."""

    rolls: np.ndarray
    style_ids: np.ndarray
    styles: tuple[str, ...]
    summary: dict = field(default_factory=dict)


def key_shift(key: Key) -> int:
    """Semitones (-6..5) that move ``key``'s signature to C major / A minor."""
    rel_major = key.tonic if key.mode == "major" else (key.tonic + 3) % 12
    s = -rel_major % 12
    return s - 12 if s > 5 else s


def score_phrases(score: Score, phrase_bars: int = 4, hop: int | None = None,
                  normalize_key: bool = True) -> np.ndarray:
    """Non-silent phrases of a Score: (n, phrase_bars, TRACKS, STEPS, PITCHES) bool."""
    rolls = encode(score)
    if normalize_key:
        rolls = transpose(rolls, key_shift(score.key))
    bars = len(rolls)
    if bars < phrase_bars:
        return np.zeros((0, phrase_bars, TRACKS, STEPS, PITCHES), dtype=bool)
    starts = list(range(0, bars - phrase_bars + 1, hop or phrase_bars))
    if starts[-1] != bars - phrase_bars:
        starts.append(bars - phrase_bars)
    out = [rolls[s:s + phrase_bars] for s in starts]
    out = [p for p in out if p.any()]
    if not out:
        return np.zeros((0, phrase_bars, TRACKS, STEPS, PITCHES), dtype=bool)
    return np.stack(out)


def build_dataset(
    scores: Iterable[Score],
    styles: tuple[str, ...],
    *,
    phrase_bars: int = 4,
    hop: int | Mapping[str, int] | None = None,
    meter: tuple[int, int] = (4, 4),
    normalize_key: bool = True,
    max_per_style: int | None = None,
    seed: int = 0,
    pack: bool = False,
) -> GANData:
    """Phrases of every Score in ``meter`` whose style is in ``styles``.

    ``hop`` (bars between phrase starts; default ``phrase_bars``) may be given per style.
    ``max_per_style`` keeps a seeded random subset per style (memory: 64.5 KB per phrase
    unpacked, 8 KB packed).
    """
    chunks: dict[int, list[np.ndarray]] = {}
    skipped: Counter[str] = Counter()
    pieces: Counter[str] = Counter()
    for sc in scores:
        if sc.style not in styles:
            skipped["style not trained"] += 1
            continue
        if tuple(sc.time_signature) != tuple(meter):
            skipped[f"meter {sc.time_signature[0]}/{sc.time_signature[1]}"] += 1
            continue
        try:
            step = hop.get(sc.style) if isinstance(hop, Mapping) else hop
            ph = score_phrases(sc, phrase_bars, step, normalize_key)
        except RollError:
            skipped["does not fit the roll"] += 1
            continue
        if len(ph):
            pieces[sc.style] += 1
            chunks.setdefault(styles.index(sc.style), []).append(
                np.packbits(ph, axis=-1) if pack else ph)
    rng = np.random.default_rng(seed)
    rolls, ids, summary = [], [], {}
    for sid in sorted(chunks):
        arr = np.concatenate(chunks[sid])
        if max_per_style and len(arr) > max_per_style:
            arr = arr[np.sort(rng.choice(len(arr), max_per_style, replace=False))]
        rolls.append(arr)
        ids.append(np.full(len(arr), sid, dtype=np.int64))
        summary[styles[sid]] = {"pieces": pieces[styles[sid]], "phrases": len(arr)}
    width = PACKED_PITCH_BYTES if pack else PITCHES
    if not rolls:
        empty = np.zeros((0, phrase_bars, TRACKS, STEPS, width), np.uint8 if pack else bool)
        return GANData(empty, np.zeros(0, np.int64), styles, {"skipped": dict(skipped)})
    log.info("GAN data: %s; skipped %s", summary, dict(skipped))
    summary = {"styles": summary, "skipped": dict(skipped), "phrase_bars": phrase_bars,
               "hop": dict(hop) if isinstance(hop, Mapping) else hop or phrase_bars,
               "meter": list(meter), "key_normalized": normalize_key}
    return GANData(np.concatenate(rolls), np.concatenate(ids), styles, summary)


def unpack(rolls: np.ndarray) -> np.ndarray:
    """Bit-packed rolls (last axis 11 bytes) -> bool with PITCHES on the last axis."""
    return np.unpackbits(rolls, axis=-1, count=PITCHES).astype(bool)


def is_packed(rolls: np.ndarray) -> bool:
    return rolls.dtype == np.uint8 and rolls.shape[-1] == PACKED_PITCH_BYTES


def save_dataset(path: Path, data: GANData) -> None:
    """One .npz file, rolls bit-packed (readable by ``load_dataset`` and the train_gan CLI)."""
    import json

    rolls = data.rolls if is_packed(data.rolls) else np.packbits(data.rolls, axis=-1)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, rolls=rolls, style_ids=data.style_ids,
                        styles=np.array(data.styles), summary=json.dumps(data.summary))


def load_dataset(path: Path) -> GANData:
    """What ``save_dataset`` wrote; rolls stay bit-packed."""
    import json

    with np.load(path) as f:
        return GANData(f["rolls"], f["style_ids"], tuple(str(s) for s in f["styles"]),
                       json.loads(str(f["summary"])))


def onset_grid(rolls: np.ndarray, style_ids: np.ndarray, styles: tuple[str, ...],
               min_share: float = 0.01, chunk: int = 256) -> dict[str, list[list[int]]]:
    """Per style, per track: the steps within a beat on which at least ``min_share`` of the
    track's attacks (``cadenza.music.roll.onset_counts``) fall in these phrase rolls (bool or
    bit-packed), for ``GANConfig.onset_grid``. A track with no notes in a style gets every step
    (its onsets are left alone)."""
    grid: dict[str, list[list[int]]] = {}
    for sid, style in enumerate(styles):
        idx = np.nonzero(np.asarray(style_ids) == sid)[0]
        if not len(idx):
            continue
        counts = np.zeros((TRACKS, STEPS_PER_BEAT), dtype=np.int64)
        for lo in range(0, len(idx), chunk):  # unpacked, 256 phrases are 66 MB
            part = rolls[idx[lo:lo + chunk]]
            part = unpack(part) if is_packed(part) else np.asarray(part, dtype=bool)
            n, bars = part.shape[:2]
            for lane in range(TRACKS):
                # one silent beat after each phrase: notes of two phrases never join
                flat = np.zeros((n, bars * STEPS + STEPS_PER_BEAT, PITCHES), dtype=bool)
                flat[:, :bars * STEPS] = part[:, :, lane].reshape(n, bars * STEPS, PITCHES)
                counts[lane] += onset_counts(flat.reshape(-1, PITCHES))
        grid[style] = [list(beat_positions(c, min_share)) for c in counts]
    return grid
