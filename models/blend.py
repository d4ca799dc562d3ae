"""VAE melody generation: blends between two motifs and walks through the prior."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from cadenza.models.checkpoint import Loaded
from cadenza.models.vae import MelodyVAE, slerp
from cadenza.music.form import Section
from cadenza.music.motif import Motif
from cadenza.music.score import GRID, Note, window_changes
from cadenza.music.steps import (
    SEG_STEPS,
    STEP_TICKS,
    chord_tone_signs,
    chords_to_steps,
    notes_to_steps,
    steps_to_notes,
)
from cadenza.music.theory import Chord, Key

SEG_TICKS = SEG_STEPS * STEP_TICKS  # two 4/4 bars


def _model(loaded: Loaded) -> MelodyVAE:
    if not isinstance(loaded.model, MelodyVAE):
        raise TypeError("not a melody VAE")
    return loaded.model


def _style_ids(model: MelodyVAE, style: str | None, device: torch.device) -> torch.Tensor:
    return torch.tensor([model.config.style_index(style)], dtype=torch.long, device=device)


def window_chords(chords: Sequence[tuple[int, Chord | None]], offset: int = 0
                  ) -> list[tuple[int, Chord | None]]:
    """Chord changes (tick, chord) over the two bars from ``offset``, in ticks from there:
    first the chord sounding at ``offset`` (None: none), then the changes inside."""
    return window_changes(chords, offset, offset + SEG_TICKS, None)


def encode_motif(loaded: Loaded, motif: Motif, *, from_end: bool = False,
                 style: str | None = None) -> np.ndarray:
    """Posterior mean of the motif's first (or last) two 4/4 bars (read with their chords by
    a VAE whose encoder reads chords)."""
    total = motif.bars * motif.bar_ticks
    offset = max(0, total - SEG_TICKS) if from_end else 0
    steps = notes_to_steps(motif.notes, SEG_STEPS, offset=offset)
    model = _model(loaded)
    chords = None
    if model.config.chord_dim and model.config.encoder_chords:
        chords = torch.from_numpy(chords_to_steps(motif.chords, SEG_STEPS, offset=offset))[None]
    with loaded.lock, torch.no_grad():
        mu, _ = model.encode(torch.from_numpy(steps)[None].to(loaded.device),
                             _style_ids(model, style, loaded.device),
                             None if chords is None else chords.to(loaded.device))
    return mu[0].cpu().numpy()


def follows_chords(loaded: Loaded) -> bool:
    """Whether the VAE decodes over a chord plan (checkpoints from before it do not)."""
    return bool(_model(loaded).config.chord_dim)


def _ending_bias(feats: np.ndarray, offset: int, ending: tuple[int, int, float]
                 ) -> torch.Tensor | None:
    """Per step of a segment starting at tick ``offset`` (its chord features ``feats``),
    ``weight`` more logit for the sounding chord's tones and as much less for other pitches
    where the step lies in ``[start, end)`` ticks (a clip's last bar); None when no step
    does."""
    start, end, weight = ending
    ticks = offset + np.arange(SEG_STEPS) * STEP_TICKS
    inside = (ticks >= start) & (ticks < end)
    if not inside.any():
        return None
    return torch.from_numpy(weight * chord_tone_signs(feats) * inside[:, None].astype(np.float32))


def _decode(loaded: Loaded, zs: np.ndarray, temperatures: list[float], seed: int,
            style: str | None = None,
            chords: Sequence[tuple[int, Chord | None]] | None = None,
            replay: dict[int, int] | None = None,
            ending: tuple[int, int, float] | None = None) -> list[Note]:
    """Two-bar segments from their codes, one after another; over ``chords`` (changes in
    ticks from the first segment's start) when given, else over no chord. A segment in
    ``replay`` (segment -> an earlier one) draws the sampling noise that earlier segment drew,
    from a generator of its own, so a code near the earlier one decodes to a phrase near it
    and the segments after it draw what they would have drawn without it. ``ending``
    (start, end, weight): over chords, the steps in [start, end) ticks lean to their chord's
    tones (``_ending_bias``), so the line comes to rest on its last chord."""
    model = _model(loaded)
    gen = torch.Generator(device="cpu").manual_seed(seed % 2**63)
    notes: list[Note] = []
    replay = replay or {}
    replayed = set(replay.values())
    states: dict[int, torch.Tensor] = {}
    with loaded.lock, torch.no_grad():
        for i, (z, temp) in enumerate(zip(zs, temperatures, strict=True)):
            if i in replayed:
                states[i] = gen.get_state()
            draw = gen
            if i in replay and replay[i] in states:
                draw = torch.Generator(device="cpu")
                draw.set_state(states[replay[i]])
            # the model decodes on its device; MelodyVAE.decode draws on the CPU generator's
            on = torch.from_numpy(np.asarray(z, dtype=np.float32))[None].to(loaded.device)
            steps_chords = None if chords is None or not model.config.chord_dim else \
                chords_to_steps(chords, SEG_STEPS, offset=i * SEG_TICKS)
            # (MelodyVAE.decode moves the chords beside the latent)
            feats = None if steps_chords is None else torch.from_numpy(steps_chords)[None]
            bias = None if steps_chords is None or ending is None else \
                _ending_bias(steps_chords, i * SEG_TICKS, ending)
            steps = model.decode(on, temperature=temp, generator=draw,
                                 style=_style_ids(model, style, on.device), chords=feats,
                                 bias=bias)[0]
            notes += steps_to_notes(steps.tolist(), offset=i * SEG_TICKS)
    return notes


def blend_melody(loaded: Loaded, a: Motif, b: Motif, bars: int, temperature: float,
                 seed: int, style: str | None = None) -> list[Note]:
    """``bars`` 4/4 bars morphing from A's opening to B's opening: two-bar segments decoded from
    points spaced evenly on the great circle between their codes. The first and last segments
    are decoded greedily so they stay recognisable; the ones between are sampled gently. A
    chord-conditioned VAE decodes the first half of the segments over A's opening chords and
    the rest over B's (a code read with its chords is decoded over them: without, the shipped
    VAE's blends ended no nearer A than an unrelated phrase)."""
    if b.key.tonic != a.key.tonic:
        shift = (a.key.tonic - b.key.tonic) % 12
        b = b.transpose(shift - 12 if shift > 6 else shift)
    za, zb = encode_motif(loaded, a, style=style), encode_motif(loaded, b, style=style)
    k = max(1, -(-bars // 2))
    zs = np.stack([slerp(za, zb, i / (k - 1)) if k > 1 else za for i in range(k)])
    temps = [0.0 if i in (0, k - 1) else 0.5 * temperature for i in range(k)]
    end = bars * GRID * 4
    chords = None
    if follows_chords(loaded):
        ca, cb = window_chords(a.chords), window_chords(b.chords)
        chords = [(i * SEG_TICKS + t, c) for i in range(k)
                  for t, c in (ca if 2 * i < k else cb)]
    return [Note(n.start, min(n.duration, end - n.start), n.pitch, n.velocity)
            for n in _decode(loaded, zs, temps, seed, style, chords) if n.start < end]


def _to_tonic(key: Key, notes: Sequence[Note]) -> int:
    """Semitones (-5..6) moving the line's most sounded pitch class onto the key's tonic."""
    if not notes:
        return 0
    weights = np.zeros(12)
    for n in notes:
        weights[n.pitch % 12] += n.duration
    shift = (key.tonic - int(np.argmax(weights))) % 12
    return shift - 12 if shift > 6 else shift


def vae_prior_melody(loaded: Loaded, total_ticks: int, key: Key, temperature: float,
                     seed: int, *, style: str | None = None,
                     sections: Sequence[Section] = (), bar_ticks: int = GRID * 4,
                     chords: Sequence[tuple[int, Chord | None]] | None = None,
                     ending_bias: float = 0.0) -> list[Note]:
    """A melody from the prior in ``style``: z walks slowly (each phrase keeps 70% of the
    last); a phrase in a section that comes back (the second A of AABA) decodes again from
    the code and the sampling noise that phrase had the first time (over the chords it has
    now), where the section's phrases start at the same places as the first time; the
    section's last phrase, with that noise too, decodes from a code nudged 10% towards fresh
    noise: a return with a new ending. (Every phrase nudged 10 % with fresh noise restated only
    0.11-0.38 of its bars in ``cadenza eval``'s form check.) The line is transposed so its
    most sounded pitch class sits on the key's tonic; a chord-conditioned VAE given
    ``chords`` (the clip's plan: changes in ticks) decodes over them, moved to the line's own
    key first; its last bar then leans ``ending_bias`` to the chords' tones (``_decode``)."""
    model = _model(loaded)
    rng = np.random.default_rng(seed)
    k = max(1, -(-total_ticks // SEG_TICKS))
    zs = [rng.standard_normal(model.config.n_latent)]
    for _ in range(k - 1):
        zs.append(slerp(zs[-1], rng.standard_normal(model.config.n_latent), 0.3))
    temps = [0.7 * temperature] * k
    first_at: dict[tuple[str, int], int] = {}
    replay: dict[int, int] = {}
    for start, length, letter in sorted(sections):  # a letter's first statement first
        lo, hi = start * bar_ticks, (start + length) * bar_ticks
        for i in range(k):
            if not lo <= i * SEG_TICKS < hi:
                continue
            # a phrase's place in its section, in ticks: a return is heard where the
            # section's phrases start at the same places (two 4/4 bars, four 2/4 bars: not
            # 4-bar sections of 3/4, whose second statement starts mid-phrase)
            place = (letter, i * SEG_TICKS - lo)
            if place in first_at:  # the section came back: its phrase comes back too
                first = first_at[place]
                replay[i] = first
                # the section's last phrase is its new ending: a code near the first's (the
                # decoder is so sensitive that 3 % of the angle to fresh noise already loses
                # half the bars); the others are the first's code (over their own chords)
                ending = (i + 1) * SEG_TICKS >= hi
                zs[i] = slerp(zs[first], rng.standard_normal(model.config.n_latent),
                              0.1) if ending else zs[first]
            else:
                first_at[place] = i
    codes = np.stack(zs)
    if chords is not None and follows_chords(loaded):
        # a code from the prior carries a line in a key of its own (training transposed the
        # windows at random): a greedy sketch over no chord finds it, the plan is moved there
        # for decoding, and line and plan come back to the key together, so they still agree
        shift = _to_tonic(key, _decode(loaded, codes, [0.0] * k, seed, style))
        moved = [(t, c.transpose(-shift) if c is not None else None) for t, c in chords]
        last_bar = (total_ticks - bar_ticks, total_ticks, ending_bias) if ending_bias else None
        notes = _decode(loaded, codes, temps, seed, style, moved, replay, last_bar)
    else:
        notes = _decode(loaded, codes, temps, seed, style, replay=replay)
        shift = _to_tonic(key, notes)
    notes = [Note(n.start, n.duration, n.pitch + shift, n.velocity) for n in notes]
    return [Note(n.start, min(n.duration, total_ticks - n.start), n.pitch, n.velocity)
            for n in notes if n.start < total_ticks]
