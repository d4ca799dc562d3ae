"""The composing pipeline: resolve parameters, plan chords, sample a melody, arrange, render.

Everything here is synchronous CPU work (the Discord adapter runs it in a thread pool) and free
of Discord and SQL; ``cadenza.app`` joins it to the store.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from cadenza.arrange import arrange, restyle_band, unswing
from cadenza.errors import ResourceError, UserError
from cadenza.harmony import plan_chords
from cadenza.models.errors import ModelError
from cadenza.models.grammar import plan_from_chords
from cadenza.models.registry import HARMONY_DIR
from cadenza.music.chord_infer import harmonize_melody
from cadenza.music.form import (
    UNKNOWN_FORM,
    FormError,
    Section,
    bar_features,
    default_form,
    echo_bars,
    form_for,
    lay_out,
    melody_form,
    parse_form,
)
from cadenza.music.midi_io import score_to_midi
from cadenza.music.motif import MAX_LINE_BARS, Motif
from cadenza.music.score import GRID, Meter, Note, Score
from cadenza.music.score import bar_ticks as bar_ticks_of
from cadenza.music.theory import Chord, Key
from cadenza.music.tokens import METERS
from cadenza.styles import STYLES, StyleSpec, pick_key, pick_meter
from cadenza.workers import current_token

log = logging.getLogger(__name__)

# the shipped chord-progression model (models/train_chords.py writes it) and the styles it
# learned from real changes; the others keep their rule-based plans
HARMONY_CHECKPOINT = HARMONY_DIR / "model.pt"
CHORD_MODEL_STYLES = ("jazz", "blues", "ragtime")

DEFAULT_STYLE = "jazz"
DEFAULT_BARS = 8
# in a melody's last bar, this much more logit for the chord's tones and as much less for the
# rest: the jazz and blues solos the models learned from go on past where their excerpts stop,
# so the lines stopped anywhere. Last lead note a tone of the final chord, 24 8-bar lstm clips
# a style (2026-12-07, plans ending at rest), jazz / blues / ragtime: 20 / 24 / 22 at 1.0;
# 11 / 14 / 20 at 0 (7 / 15 / 19 with the plans before, which could turn around); 1.5 gave
# no more than 1.0
ENDING_BIAS = 1.0
# the VAE's decoder is surer of itself (its logits further apart): 16 8-bar clips a style,
# jazz / blues / folk / celtic / classical / ragtime, 9 / 11 / 12 / 10 / 10 / 9 at 3.0,
# 11 / 6 / 4 / 9 / 7 / 4 at 0, 8-10 at 1.0 (the first with the plans before)
VAE_ENDING_BIAS = 3.0
# the GAN writes whole phrases and knows no last bar: every GAN compose (/compose, arena,
# parties, eval) draws up to this many clips and keeps the first that ends best
# (cadenza.models.gan: its own draw, the others only when that does not end at home, two at a
# time); of 32 8-bar clips a style one draw ended at home in jazz 3, blues 3, folk 14, celtic
# 18, classical 16, ragtime 11, with 8 in 29-32 (31-88 ms a clip on 2 cores when the other
# seven were drawn at once, 19 for one draw)
GAN_CANDIDATES = 8


@dataclass(frozen=True)
class ComposeRequest:
    """What a member asked for; unset fields are chosen from the seed."""

    style: str = DEFAULT_STYLE
    bars: int = DEFAULT_BARS
    tempo: int | None = None
    key: str | None = None
    temperature: float | None = None  # None: the style's (StyleSpec.temperature)
    seed: int | None = None
    model: str | None = None
    form: str | None = None  # section letters (aaba); None: the style's usual form

    @classmethod
    def from_options(cls, opts: Mapping[str, Any]) -> ComposeRequest:
        """From ``cadenza.options.parse_options('compose', ...)`` output."""
        return cls(**{k: v for k, v in opts.items() if v is not None})


@dataclass(frozen=True)
class Resolved:
    """Every parameter fixed: the same Resolved + checkpoint gives byte-identical MIDI."""

    style: str
    bars: int
    tempo: int
    key: str
    meter: Meter
    temperature: float
    seed: int
    model: str
    tempo_given: bool = False
    key_given: bool = False
    primer_bars: int = 0  # bars taken verbatim from a seed before the new ones
    form: str = ""  # section letters over the new bars ("" in rows from before forms: default)
    form_given: bool = False

    def __post_init__(self) -> None:
        if type(self.meter) is not Meter:  # (4, 4) from a caller: typed, so str() reads "4/4"
            object.__setattr__(self, "meter", Meter.parse(self.meter))

    @classmethod
    def from_params(cls, params: Mapping[str, Any], *, total_bars: int | None = None,
                    **columns: Any) -> Resolved:
        """The one reader of what ``params()`` wrote: a job's row or a clip's params.
        ``columns`` override the stored values (a clip row keeps style, tempo, key, meter ... in
        columns of its own, and old rows' params lack some). ``total_bars`` is a clip's whole
        length: a seed's own bars (``primer_bars``) are counted out of it. Without it (a job),
        ``primer_bars`` is not carried over: a retry counts a seed's bars again when it
        composes from the seed."""
        p = {**params, **columns}
        if total_bars is None:
            primer, bars = 0, p["bars"]
        else:
            primer = p.get("primer_bars", 0)
            primer = primer if isinstance(primer, int) and 0 <= primer < total_bars else 0
            bars = total_bars - primer
        form = p.get("form")
        return cls(p["style"], bars, int(p["tempo"]), p["key"], Meter.parse(p["meter"]),
                   p["temperature"], p["seed"], p["model"], bool(p.get("tempo_given")),
                   bool(p.get("key_given")), primer, form if isinstance(form, str) else "",
                   bool(p.get("form_given")))

    @property
    def sections(self) -> tuple[Section, ...]:
        """The form's sections over the new bars (after a seed's own bars)."""
        try:
            return form_for(self.style, self.bars, self.form or None)
        except FormError as e:
            raise UserError(str(e)) from None

    @property
    def total_bars(self) -> int:
        return self.primer_bars + self.bars

    def params(self) -> dict[str, Any]:
        """What a job row and a clip's params keep; ``from_params`` reads it back."""
        d = asdict(self)
        d["meter"] = str(self.meter)
        return d

    def with_seed(self, seed: int) -> Resolved:
        """Same options, new seed; tempo/key/meter the member did not fix are re-drawn."""
        req = ComposeRequest(self.style, self.bars, self.tempo if self.tempo_given else None,
                             self.key if self.key_given else None, self.temperature, seed,
                             self.model, self.form if self.form_given else None)
        return resolve(req, self.model)


@dataclass
class Composition:
    resolved: Resolved
    score: Score
    midi: bytes
    model_style: str
    checkpoint_sha: str | None
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def duration_s(self) -> float:
        return self.score.duration_seconds


@dataclass(frozen=True)
class ClipFiles:
    mp3: Path
    mid: Path
    png: Path
    audio_seconds: float
    mp3_bytes: int


class _Drawing:
    """``fn(*args, **kwargs)`` on a thread of its own, its result or exception kept for
    ``result()``."""

    def __init__(self, fn: Callable[..., Path], *args: Any, **kwargs: Any) -> None:
        self._value: Path | None = None
        self._error: BaseException | None = None

        def run() -> None:
            try:
                self._value = fn(*args, **kwargs)
            except BaseException as e:  # noqa: BLE001 - re-raised by result()
                self._error = e

        self._thread = threading.Thread(target=run, name="cadenza-pianoroll", daemon=True)
        self._thread.start()

    def join(self) -> None:
        self._thread.join()

    def result(self) -> Path:
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._value is not None
        return self._value


def _no_stage(name: str) -> None:
    pass


def _idiom(spec: StyleSpec, key: Key):  # -> cadenza.models.generate.Idiom
    """The sampler's pitch bias for ``spec`` in ``key`` (blue notes, chord tones, off-scale
    notes), for composed melodies and their variations alike."""
    from cadenza.models.generate import Idiom

    return Idiom(tonic=key.tonic, scale=key.scale, tonic_bias=dict(spec.tonic_bias),
                 chord_tone_bias=spec.chord_tone_bias, off_scale_penalty=spec.off_scale_penalty,
                 ending_bias=ENDING_BIAS)


def _streams(seed: int) -> list[np.random.Generator]:
    """Independent RNG streams (meta, harmony, sampler, arrangement) from one seed, so a change
    in one stage never shifts the randomness of another."""
    return [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(4)]


def resolve(req: ComposeRequest, default_model: str = "lstm") -> Resolved:
    spec = STYLES.get(req.style)
    if spec is None:
        raise UserError(f"unknown style {req.style!r}: choose one of {', '.join(STYLES)}")
    seed = req.seed if req.seed is not None else int(np.random.SeedSequence().entropy % 2**31)
    meta = _streams(seed)[0]
    lo, hi = spec.tempo_range
    draws = meta.random(4)  # tempo, key, meter, form (a 4th draw leaves the first 3 unchanged)
    tempo = req.tempo if req.tempo is not None else int(lo + draws[0] * (hi - lo + 1))
    key = Key.parse(req.key).name if req.key else pick_key(spec, float(draws[1])).name
    meter = pick_meter(spec, float(draws[2]))
    try:
        form = parse_form(req.form) if req.form else default_form(spec.name, req.bars,
                                                                    float(draws[3]))
        lay_out(form, req.bars)
    except FormError as e:
        raise UserError(str(e)) from None
    temperature = spec.temperature if req.temperature is None else req.temperature
    return Resolved(spec.name, req.bars, int(tempo), key, meter, float(temperature), seed,
                    req.model or default_model, req.tempo is not None, req.key is not None,
                    form=form, form_given=req.form is not None)


MAX_TOTAL_BARS = 48


def _fit_motif(r: Resolved, motif: Motif) -> tuple[Resolved, Motif]:
    """The seed sets meter and key (transposed when the member asked for a key) and, unless the
    member gave one, the tempo."""
    key = Key.parse(r.key) if r.key_given else motif.key
    if r.key_given:
        # a minor seed asked for in a major key moves to the relative major's tonic, and back
        tonic = motif.key.tonic
        if motif.key.mode != key.mode:
            tonic = (tonic + (3 if motif.key.mode == "minor" else 9)) % 12
        shift = (key.tonic - tonic) % 12
        motif = motif.transpose(shift - 12 if shift > 6 else shift)
    motif, _ = motif.playable()  # seeds stored before seeds were moved into range
    tempo = r.tempo if r.tempo_given else round(motif.tempo)
    bars = min(r.bars, MAX_TOTAL_BARS - motif.bars)
    form = r.form
    if bars != r.bars and not r.form_given:
        form = default_form(r.style, bars)
    return replace(r, key=key.name, meter=motif.meter, tempo=tempo, bars=bars,
                   primer_bars=motif.bars, form=form), motif


class Composer:
    """Generates and renders clips; holds the model registry and the renderer settings."""

    def __init__(self, registry, *, soundfont: Path | None = None, bitrate: str = "192k",  # type: ignore[no-untyped-def]
                 default_model: str = "lstm", batcher=None,  # type: ignore[no-untyped-def]
                 render_cores: int = 1, chord_model: Path | None = HARMONY_CHECKPOINT) -> None:
        self.registry = registry
        self.soundfont = soundfont
        # FluidSynth threads per render: all cores for one clip at a time (cadenza compose),
        # one when every core has a job of its own (see cadenza.wiring.open_app)
        self.render_cores = render_cores
        self.bitrate = bitrate
        self.default_model = default_model
        self.batcher = batcher  # a MelodyBatcher: concurrent requests share sampling steps
        # the chord-progression model (None: rule-based plans for every style)
        self.chord_model_path = chord_model
        self._chords = None  # Loaded, once read
        self._chords_lock = threading.Lock()

    # ---- generation
    def resolve(self, req: ComposeRequest) -> Resolved:
        return resolve(req, self.default_model)

    def resolve_installed(self, req: ComposeRequest) -> Resolved:
        """Fix every parameter; a model that is not installed is refused here, before any
        work is queued."""
        resolved = self.resolve(req)
        self.check_model(resolved.model)
        return resolved

    def model_names(self) -> list[str]:
        return list(self.registry.names())

    def check_model(self, name: str) -> None:
        """ResourceError (the models installed named) for a model that is not installed."""
        try:
            self.registry.entry(name)
        except ModelError as e:
            raise ResourceError(str(e)) from None

    def can_play(self, name: str, style: str, meter: Meter) -> bool:
        """Whether model ``name`` can compose ``style`` in ``meter`` exactly as asked: sequence
        models need a style label for it, the GAN knows its styles and writes 4/4 only, the VAE
        plays anything. Loads the checkpoint (blocking)."""
        loaded = self._load(name)
        if loaded.kind == "rnn":
            return style in loaded.styles
        if loaded.kind == "gan":
            return meter == Meter(4, 4) and style in loaded.model.config.styles
        return loaded.kind == "vae"

    def writes_lines(self, name: str) -> bool:
        """Whether model ``name`` is a sequence model, the kind that continues and varies
        melodies (the VAE and the GAN do not). Loads the checkpoint (blocking)."""
        return self._load(name).kind == "rnn"

    def model_style(self, spec: StyleSpec, styles: tuple[str, ...]) -> str:
        """The checkpoint's label for the style: its own, never another style's."""
        if spec.name in styles:
            return spec.name
        raise UserError(f"this model was not trained on {spec.name}: it knows "
                        f"{', '.join(styles)}")

    def chord_model(self):  # type: ignore[no-untyped-def]
        """The chord-progression model, loaded once; None when it is not installed (the
        rule-based plans then serve every style) or unreadable (logged once)."""
        path = self.chord_model_path
        if path is None:
            return None
        with self._chords_lock:
            if self._chords is None:
                if not path.is_file():
                    log.info("no chord model at %s: rule-based chord plans", path)
                    self.chord_model_path = None
                    return None
                from cadenza.models.families import load

                try:
                    self._chords = load(path)
                except ModelError as e:
                    log.error("chord model unusable, rule-based plans instead: %s", e)
                    self.chord_model_path = None
                    return None
            return self._chords

    def _load(self, name: str):  # type: ignore[no-untyped-def]
        try:
            return self.registry.get(name)
        except ModelError as e:
            raise ResourceError(str(e)) from None

    def _caller(self) -> contextlib.AbstractContextManager[Any]:
        """Held while a request is being made: tells the batcher another request may be on
        its way (so a burst starts as one batch)."""
        return self.batcher if self.batcher is not None else contextlib.nullcontext()

    def _tokens(self, loaded, request: Any, make_row: Callable[..., Any]) -> list[int]:  # type: ignore[no-untyped-def]
        """``request`` sampled to its end: through the batcher when there is one (concurrent
        requests share each step), else alone under the model's lock."""
        if self.batcher is not None:
            return self.batcher.submit(loaded, request, make_row)
        from cadenza.models.generate import generate_tokens

        return generate_tokens(loaded, [request], make_row)[0]

    def compose(self, r: Resolved, motif: Motif | None = None) -> Composition:
        """Resolved parameters (and an optional seed motif to continue) -> arranged Score and
        MIDI bytes (no audio yet)."""
        with self._caller():
            return self._compose(r, motif)

    def _compose(self, r: Resolved, motif: Motif | None) -> Composition:
        t0 = time.perf_counter()
        loaded = self._load(r.model)
        if loaded.kind == "gan":
            return self._compose_gan(loaded, r, motif, t0)
        if motif is not None:
            r, motif = _fit_motif(r, motif)
        _meta, rng_h, rng_s, rng_a = _streams(r.seed)
        spec = STYLES[r.style]
        key = Key.parse(r.key)
        plan = self._plan(r, key, motif, rng_h)
        if loaded.kind == "rnn":
            lead, model_style = self._melody_rnn(loaded, r, spec, key, plan, motif, rng_s)
        elif loaded.kind == "vae":
            lead, plan = self._melody_vae(loaded, r, key, motif, plan, rng_s)
            model_style = "vae"
        else:
            raise UserError(f"model {r.model} ({loaded.kind}) cannot compose melodies")
        timings = {"generate": time.perf_counter() - t0}
        current_token().check()  # a job cancelled meanwhile (deadline, shutdown) stops here
        t1 = time.perf_counter()
        score = arrange(lead, plan, spec=spec, meter=r.meter, bars=r.total_bars,
                        tempo=r.tempo, key=key, rng=rng_a)
        midi = score_to_midi(score)
        timings["arrange"] = time.perf_counter() - t1
        return Composition(r, score, midi, model_style, loaded.sha256, timings)

    def _compose_gan(self, loaded, r: Resolved, motif: Motif | None,  # type: ignore[no-untyped-def]
                     t0: float) -> Composition:
        """The GAN writes all four parts at once (in 4/4, its phrases following the clip's
        form); the arranger's instrumentation path then gives them the style's sound."""
        from cadenza.models.gan import phrase_form
        from cadenza.models.gan import sample as gan_sample

        if motif is not None:
            raise UserError("the gan model continues no seeds: use model lstm for seeds")
        spec = STYLES[r.style]
        if r.style not in loaded.model.config.styles:
            raise UserError(f"the gan model has no {r.style} style")
        r = replace(r, meter=Meter(4, 4), primer_bars=0)
        _meta, _h, rng_s, rng_a = _streams(r.seed)
        form = phrase_form(r.sections, r.bars, loaded.model.config.phrase_bars)
        with loaded.lock:
            band = gan_sample(loaded.model, r.style, r.bars, int(rng_s.integers(2**63)),
                              key=Key.parse(r.key), tempo=float(r.tempo), form=form,
                              candidates=GAN_CANDIDATES)
        timings = {"generate": time.perf_counter() - t0}
        current_token().check()  # a job cancelled meanwhile (deadline, shutdown) stops here
        t1 = time.perf_counter()
        score = restyle_band(band, spec, rng_a)
        midi = score_to_midi(score)
        timings["arrange"] = time.perf_counter() - t1
        return Composition(r, score, midi, "gan", loaded.sha256, timings)

    def _plan(self, r: Resolved, key: Key, motif: Motif | None,
              rng: np.random.Generator) -> list[tuple[int, Chord]]:
        """The seed's own chords for its bars, then the new bars' plan in the requested form:
        from the chord model for the styles it learned from real changes, else the style's
        rule-based plan."""
        new = self._new_chords(r, key, rng)
        if motif is None:
            return new
        offset = motif.bars * motif.bar_ticks
        return [*(c for c in motif.chords if c[0] < offset),
                *((t + offset, c) for t, c in new)]

    def _new_chords(self, r: Resolved, key: Key, rng: np.random.Generator
                    ) -> list[tuple[int, Chord]]:
        loaded = self.chord_model() if r.style in CHORD_MODEL_STYLES else None
        if loaded is not None and r.style in loaded.styles and r.meter in METERS:
            from cadenza.models.chord_model import PlanRequest, choruses, plan_parts, plan_row

            req = PlanRequest(r.style, key, r.meter, r.bars, int(rng.integers(2**63)),
                              r.sections)
            # through the batcher, so concurrent composes share the chord model's steps too
            # (sampled one by one under its lock, plans were the queue's bottleneck); a blues
            # of whole choruses a chorus at a time
            parts = choruses(req)
            return plan_parts([self._tokens(loaded, p, plan_row) for p in parts],
                              loaded.vocab, parts)
        return plan_chords(r.style, key, r.bars, r.meter, rng, r.sections)

    def _melody_rnn(self, loaded, r: Resolved, spec: StyleSpec, key: Key,  # type: ignore[no-untyped-def]
                    plan: list[tuple[int, Chord]], motif: Motif | None,
                    rng: np.random.Generator) -> tuple[tuple[Note, ...], str]:
        from cadenza.models.generate import MelodyRequest, melody_row
        from cadenza.music.tokens import BAR, decode, encode

        bar_ticks = bar_ticks_of(r.meter)
        chord_plan = plan_from_chords([(t, c.reduced()) for t, c in plan], r.total_bars,
                                      bar_ticks)
        model_style = self.model_style(spec, loaded.styles)
        pitch_range = spec.lead_range
        primer = None
        if motif is not None:
            # the seed's bars are forced verbatim; the BAR after them is where the model starts
            primer = (*encode(motif.to_score(model_style), loaded.vocab, eos=False), BAR)
            mid = int(np.median([n.pitch for n in motif.notes]))
            pitch_range = (max(36, mid - 14), min(100, mid + 14))
        idiom = _idiom(spec, key)
        form = (UNKNOWN_FORM,) * r.primer_bars + tuple(bar_features(r.sections, r.bars))
        echo = (0,) * r.primer_bars + tuple(echo_bars(r.sections, r.bars))
        req = MelodyRequest(style=model_style, meter=r.meter, plan=chord_plan,
                            seed=int(rng.integers(2**63)), temperature=r.temperature,
                            pitch_range=pitch_range, idiom=idiom, primer=primer, form=form,
                            echo=echo, form_guidance=spec.form_guidance,
                            guidance=spec.style_guidance, stop=current_token())
        try:
            tokens = self._tokens(loaded, req, melody_row)
        except ModelError as e:
            raise UserError(str(e)) from None
        melody = decode(tokens, loaded.vocab, tempo=r.tempo, key=key)
        lead = melody.track("lead")
        return (lead.notes if lead else ()), model_style

    def _melody_vae(self, loaded, r: Resolved, key: Key, motif: Motif | None,  # type: ignore[no-untyped-def]
                    plan: list[tuple[int, Chord]], rng: np.random.Generator
                    ) -> tuple[tuple[Note, ...], list[tuple[int, Chord]]]:
        """Melody from the VAE's prior (a slow random walk in latent space, so consecutive
        two-bar phrases relate) over the clip's chord plan (the chord model's, for jazz and
        blues); a VAE from before chord conditioning writes the line alone and gets chords
        inferred from it in the key."""
        from cadenza.models.blend import follows_chords, vae_prior_melody

        if motif is not None:
            raise UserError("the vae model continues no seeds: use /seed blend, or model lstm")
        bar_ticks = bar_ticks_of(r.meter)
        notes = vae_prior_melody(loaded, r.total_bars * bar_ticks, key, r.temperature,
                                 int(rng.integers(2**63)), style=r.style,
                                 sections=r.sections, bar_ticks=bar_ticks, chords=plan,
                                 ending_bias=VAE_ENDING_BIAS)
        if follows_chords(loaded):
            return tuple(notes), plan
        return tuple(notes), harmonize_melody([(n.start, n.end, n.pitch) for n in notes], key,
                                              bar_ticks, r.total_bars)

    def variation(self, source: Score, r: Resolved) -> Composition:
        """Re-sample the melody's pitches over the same harmony and rhythm (``r`` carries the
        style, model, temperature and the new seed), with the style's idiom and guidance."""
        with self._caller():
            return self._variation(source, r)

    def _variation(self, source: Score, r: Resolved) -> Composition:
        from cadenza.models.generate import VariationRequest, variation_row
        from cadenza.music.tokens import decode, encode

        t0 = time.perf_counter()
        loaded = self._load(r.model)
        if loaded.kind != "rnn":
            raise UserError(f"variations need a sequence model (lstm, gru, rnn), not {r.model}")
        # the source fixes meter, key and tempo; only the seed (and model) are new
        r = replace(r, meter=source.time_signature, key=source.key.name,
                    tempo=round(source.tempo))
        spec = STYLES[r.style]
        _meta, _h, rng_s, rng_a = _streams(r.seed)
        motif, _ = Motif.from_score(unswing(source) if spec.swing else source,
                                    max_bars=min(source.bars or 1, MAX_LINE_BARS))
        # a bar the clip restates is a repeat of the new line too, not a fresh draw
        motif = motif.repeats_aligned()
        model_style = self.model_style(spec, loaded.styles)
        tokens = encode(motif.to_score(model_style), loaded.vocab)
        lo, hi = min(n.pitch for n in motif.notes), max(n.pitch for n in motif.notes)
        form, echo = melody_form([(n.start, n.duration, n.pitch) for n in motif.notes],
                                 motif.bar_ticks, motif.bars)
        req = VariationRequest(tuple(tokens), seed=int(rng_s.integers(2**63)),
                               temperature=r.temperature,
                               pitch_range=(max(21, lo - 4), min(108, hi + 4)),
                               idiom=_idiom(spec, Key.parse(r.key)),
                               guidance=spec.style_guidance, form=tuple(form),
                               echo=tuple(echo), form_guidance=spec.form_guidance,
                               stop=current_token())
        try:
            out = self._tokens(loaded, req, variation_row)
        except ModelError as e:
            raise UserError(str(e)) from None
        lead = decode(out, loaded.vocab).track("lead")
        timings = {"generate": time.perf_counter() - t0}
        current_token().check()  # a job cancelled meanwhile (deadline, shutdown) stops here
        t1 = time.perf_counter()
        plan = [(c.start * GRID // source.resolution, c.chord) for c in source.chords]
        score = arrange(lead.notes if lead else (), plan, spec=spec, meter=r.meter,
                        bars=motif.bars, tempo=r.tempo, key=Key.parse(r.key), rng=rng_a)
        timings["arrange"] = time.perf_counter() - t1
        r = replace(r, bars=motif.bars, primer_bars=0)
        return Composition(r, score, score_to_midi(score), model_style, loaded.sha256, timings)

    def blend(self, a: Motif, b: Motif, r: Resolved, vae_name: str = "vae") -> Composition:
        """Morph from motif A to motif B through the VAE's latent space (spherical
        interpolation), then arrange the result in ``r.style``."""
        from cadenza.models.blend import blend_melody

        t0 = time.perf_counter()
        loaded = self._load(vae_name)
        if loaded.kind != "vae":
            raise ResourceError(f"model {vae_name} is not a VAE")
        spec = STYLES[r.style]
        _meta, _rng_h, rng_s, rng_a = _streams(r.seed)
        key = a.key
        r = replace(r, key=key.name, meter=Meter(4, 4),
                    tempo=r.tempo if r.tempo_given else round(a.tempo), primer_bars=0)
        bar_ticks = GRID * 4
        notes = blend_melody(loaded, a, b, r.bars, r.temperature, int(rng_s.integers(2**63)),
                             style=r.style)
        plan = harmonize_melody([(n.start, n.end, n.pitch) for n in notes], key, bar_ticks,
                                r.bars)
        timings = {"generate": time.perf_counter() - t0}
        current_token().check()  # a job cancelled meanwhile (deadline, shutdown) stops here
        t1 = time.perf_counter()
        score = arrange(notes, plan, spec=spec, meter=r.meter, bars=r.bars, tempo=r.tempo,
                        key=key, rng=rng_a)
        timings["arrange"] = time.perf_counter() - t1
        return Composition(r, score, score_to_midi(score), "vae", loaded.sha256, timings)

    # ---- rendering
    def prepare_render(self) -> None:
        """Load what rendering needs (FluidSynth and the soundfont, the encoder, the piano
        roll's fonts) ahead of the first clip. A one-shot ``cadenza compose`` runs this in a
        thread beside generation: loading the soundfont is C code that runs while the model
        code imports torch on the other core."""
        from cadenza.audio import lame_ready
        from cadenza.pianoroll import load_fonts
        from cadenza.synth import get_synth

        try:
            get_synth(self.soundfont, cores=self.render_cores)
            lame_ready()
            load_fonts()
        except Exception:  # the render stage will report it where a member sees it
            log.debug("preparing the renderer failed", exc_info=True)

    def make_files(self, score: Score, midi: bytes, out_dir: Path, stem: str,
               title: str | None = None, timings: dict[str, float] | None = None,
               stage: Callable[[str], None] | None = None) -> ClipFiles:
        """Write ``stem``.mp3/.mid/.png under ``out_dir`` (FluidSynth audio, MP3 by LAME).

        ``stage(name)`` is called as render, encode and pianoroll begin: the render pool times
        each stage by it (``cadenza.clip_pool``, which runs this in a child process).
        """
        stage = stage or _no_stage
        from cadenza.audio import DISCORD_MAX_BYTES, encode_mp3, normalize, trim_trailing_silence
        from cadenza.pianoroll import draw_pianoroll
        from cadenza.synth import get_synth

        timings = timings if timings is not None else {}
        out_dir.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        stage("render")
        renderer = get_synth(self.soundfont, cores=self.render_cores)
        audio = renderer.synthesize(midi)
        audio = trim_trailing_silence(normalize(audio), renderer.sample_rate)
        timings["render"] = time.perf_counter() - t0
        # The piano roll is drawn on a thread while LAME encodes (lameenc lets go of the GIL),
        # on the core the render's second FluidSynth thread just left: off the clip's critical
        # path. The pianoroll stage (and its deadline) is what remains of it after the encode.
        t1 = time.perf_counter()
        stage("encode")
        drawing = _Drawing(draw_pianoroll, score, out_dir / f"{stem}.png", title=title)
        try:
            mp3 = encode_mp3(audio, renderer.sample_rate, out_dir / f"{stem}.mp3",
                             bitrate=self.bitrate, max_bytes=DISCORD_MAX_BYTES,
                             tags={"title": title or stem, "artist": "Cadenza"})
        finally:
            if sys.exc_info()[0] is not None:
                drawing.join()  # its file is finished before the caller cleans up
        t2 = time.perf_counter()
        timings["encode"] = t2 - t1
        stage("pianoroll")
        mid = out_dir / f"{stem}.mid"
        mid.write_bytes(midi)
        png = drawing.result()
        timings["pianoroll"] = time.perf_counter() - t2
        return ClipFiles(mp3, mid, png, len(audio) / renderer.sample_rate, mp3.stat().st_size)
