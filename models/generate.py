"""Melody generation requests for the sequence models: plan + idiom in, token sequences out."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cadenza.models.checkpoint import Loaded
from cadenza.models.errors import ModelError
from cadenza.models.grammar import (
    ECHO_COL,
    ChordPlan,
    Constraint,
    FormRows,
    SkeletonConstraint,
)
from cadenza.models.sample import Row, run
from cadenza.music.tokens import PITCH_MAX, PITCH_MIN, Vocab, index_chord


@dataclass(frozen=True)
class Idiom:
    """Light logit bonuses on pitches: relative to the key tonic, chord tones, off-scale notes;
    in a line's last bar ``ending_bias`` more for the chord's tones and as much less for the
    rest, so the line comes to rest on its final chord."""

    tonic: int = 0
    scale: tuple[int, ...] = (0, 2, 4, 5, 7, 9, 11)  # absolute pitch classes
    tonic_bias: dict[int, float] = field(default_factory=dict)
    chord_tone_bias: float = 0.0
    off_scale_penalty: float = 0.0
    ending_bias: float = 0.0

    def is_neutral(self) -> bool:
        return not (self.tonic_bias or self.chord_tone_bias or self.off_scale_penalty
                    or self.ending_bias)


@dataclass(frozen=True)
class MelodyRequest:
    style: str  # a style label of the checkpoint's vocabulary
    meter: tuple[int, int]
    plan: ChordPlan
    seed: int
    temperature: float = 1.0
    top_k: int | None = 24
    primer: tuple[int, ...] | None = None
    pitch_range: tuple[int, int] = (55, 88)
    idiom: Idiom = field(default_factory=Idiom)
    form: tuple[tuple[int, int, int, int], ...] | None = None  # per bar (cadenza.music.form)
    echo: tuple[int, ...] | None = None  # per bar: bars back to its echo (form.echo_bars)
    guidance: float = 0.0  # style guidance weight (cadenza.models.sample), 0 for none
    # form guidance weight, for a request without style guidance whose form has a return
    form_guidance: float = 0.0
    # asked between sampling steps; True stops the request (SamplingStopped): a deadline passed
    stop: Callable[[], bool] | None = field(default=None, compare=False, repr=False)


class _BiasCache:
    """A request's bias vector for the constraint's state: one per chord class and for the
    last bar or not, shared by every request with the same idiom (``_bias_vector``)."""

    def __init__(self, vocab: Vocab, idiom: Idiom) -> None:
        self.layout = (vocab.pitch0, len(vocab))
        self.neutral = idiom.is_neutral()
        self.idiom = None if self.neutral else _idiom_key(idiom)

    def __call__(self, c: Constraint) -> np.ndarray | None:
        if self.neutral or c.phase not in ("pos", "open", "vel"):
            return None
        return _bias_vector(self.layout, self.idiom, c.tracker.chord, c.bar == c.bars - 1)


IdiomKey = tuple[int, tuple[int, ...], tuple[tuple[int, float], ...], float, float, float]


def _idiom_key(idiom: Idiom) -> IdiomKey:
    """``idiom``'s fields as a hashable key (its tonic biases are a dict)."""
    return (idiom.tonic, tuple(idiom.scale), tuple(sorted(idiom.tonic_bias.items())),
            idiom.chord_tone_bias, idiom.off_scale_penalty, idiom.ending_bias)


# a style's idiom in one key meets a few dozen chord classes: every request of that style and
# key asked for the same vectors, 50 us each, ~8 a clip (0.4 ms, 4 % of a batched clip's
# sampling), before they were shared
@functools.lru_cache(maxsize=4096)
def _bias_vector(layout: tuple[int, int], idiom: IdiomKey, chord_idx: int,
                 ending: bool) -> np.ndarray:
    """The logit bias of ``idiom`` over a vocabulary (``layout``: its first pitch id and its
    size) while ``chord_idx`` sounds, in the last bar (``ending``) or not; read-only, shared."""
    pitch0, size = layout
    tonic, scale_pcs, tonic_items, chord_tone_bias, off_scale_penalty, ending_bias = idiom
    tonic_bias = dict(tonic_items)
    bias = np.zeros(size)
    chord = index_chord(chord_idx)
    chord_pcs = set(chord.pitch_classes) if chord else set()
    scale = set(scale_pcs)
    for p in range(PITCH_MIN, PITCH_MAX + 1):
        pc = p % 12
        b = tonic_bias.get((pc - tonic) % 12, 0.0)
        if pc in chord_pcs:
            b += chord_tone_bias
        elif pc not in scale and (pc - tonic) % 12 not in tonic_bias:
            b -= off_scale_penalty
        if ending and chord_pcs:
            b += ending_bias if pc in chord_pcs else -ending_bias
        bias[pitch0 + p - PITCH_MIN] = b
    bias.setflags(write=False)
    return bias


@dataclass(frozen=True)
class VariationRequest:
    """New pitches for a whole token sequence (BOS STYLE METER ...) over its own rhythm and
    chords: what ``/vary`` samples."""

    tokens: tuple[int, ...]
    seed: int
    temperature: float = 1.0
    top_k: int | None = 24
    pitch_range: tuple[int, int] = (48, 91)
    idiom: Idiom = field(default_factory=Idiom)
    guidance: float = 0.0
    # the line's own form (``cadenza.music.form.melody_form``): a restated phrase's new
    # pitches can follow its earlier statement's, as they do in a composed melody
    form: FormRows | None = None
    echo: tuple[int, ...] = ()
    form_guidance: float = 0.0
    stop: Callable[[], bool] | None = field(default=None, compare=False, repr=False)


def _sequence_vocab(loaded: Loaded) -> Vocab:
    if loaded.vocab is None or loaded.kind != "rnn":
        raise ModelError(f"model {loaded.path.name} is not a sequence model")
    return loaded.vocab


def variation_row(loaded: Loaded, request: VariationRequest, tag: Any = None) -> Row:
    """A sampler row re-sampling ``request.tokens``' pitches, with the same idiom bias and
    style or form guidance a composed melody of that style gets; it reads the line's own form
    and echoes (``request.form``, ``request.echo``)."""
    vocab = _sequence_vocab(loaded)
    constraint = SkeletonConstraint(vocab, list(request.tokens),
                                    pitch_range=request.pitch_range, form=request.form,
                                    echo=request.echo)
    guidance, twin = _guidance(loaded, request)
    return Row(constraint, np.random.default_rng(request.seed), request.temperature,
               request.top_k, _BiasCache(vocab, request.idiom), tag, stop=request.stop,
               guidance=guidance, twin=twin)


def _guidance(loaded: Loaded, request: MelodyRequest | VariationRequest) -> tuple[float, str]:
    """A row's guidance and the twin it steers from: style guidance when the style has it,
    else form guidance for a line with echoes (none for a checkpoint without the echo
    columns)."""
    if not request.guidance and request.form_guidance > 0 and any(request.echo or ()) and \
            len(loaded.model.config.feature_sizes) > ECHO_COL:
        return request.form_guidance, "form"
    return request.guidance, "style"


def melody_row(loaded: Loaded, request: MelodyRequest, tag: Any = None) -> Row:
    """A sampler row for ``request`` (its own constraint, RNG and idiom bias)."""
    vocab = _sequence_vocab(loaded)
    if request.style not in vocab.styles:
        raise ModelError(f"this model does not know the style {request.style!r}")
    constraint = Constraint(vocab, style=request.style, meter=request.meter, plan=request.plan,
                            prefix=list(request.primer) if request.primer else None,
                            pitch_range=request.pitch_range, form=request.form,
                            echo=request.echo)
    guidance, twin = _guidance(loaded, request)
    return Row(constraint, np.random.default_rng(request.seed), request.temperature,
               request.top_k, _BiasCache(vocab, request.idiom), tag, stop=request.stop,
               guidance=guidance, twin=twin)


def generate_tokens(loaded: Loaded, requests: Sequence[Any],
                    make_row: Callable[[Loaded, Any], Row] = melody_row) -> list[list[int]]:
    """Sample every request (a ``MelodyRequest``, or what ``make_row`` takes) in one batch,
    each with its own RNG, temperature and top-k, so batching never changes a result."""
    rows = [make_row(loaded, r) for r in requests]
    with loaded.lock:
        return run(loaded.model, rows, device=loaded.device)
