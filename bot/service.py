"""The composing pipeline: resolve parameters, plan chords, sample a melody, arrange, render.

Everything here is synchronous CPU work (the Discord adapter runs it in a thread pool) and free
of Discord and SQL; ``bot.app`` joins it to the store.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bot.arrange import arrange
from bot.errors import ResourceError, UserError
from bot.harmony import plan_chords
from bot.midi_io import score_to_midi
from bot.styles import STYLES, StyleSpec, pick_key, pick_meter
from models.errors import ModelError
from models.grammar import plan_from_chords
from models.score import GRID, Score
from models.theory import Key

log = logging.getLogger(__name__)

DEFAULT_STYLE = "jazz"
DEFAULT_BARS = 8
DEFAULT_TEMPERATURE = 1.0


@dataclass(frozen=True)
class ComposeRequest:
    """What a member asked for; unset fields are chosen from the seed."""

    style: str = DEFAULT_STYLE
    bars: int = DEFAULT_BARS
    tempo: int | None = None
    key: str | None = None
    temperature: float = DEFAULT_TEMPERATURE
    seed: int | None = None
    model: str | None = None

    @classmethod
    def from_options(cls, opts: Mapping[str, Any]) -> ComposeRequest:
        """From ``bot.options.parse_options('compose', ...)`` output."""
        return cls(**{k: v for k, v in opts.items() if v is not None})


@dataclass(frozen=True)
class Resolved:
    """Every parameter fixed: the same Resolved + checkpoint gives byte-identical MIDI."""

    style: str
    bars: int
    tempo: int
    key: str
    meter: tuple[int, int]
    temperature: float
    seed: int
    model: str
    tempo_given: bool = False
    key_given: bool = False

    @property
    def meter_str(self) -> str:
        return f"{self.meter[0]}/{self.meter[1]}"

    def params(self) -> dict[str, Any]:
        d = asdict(self)
        d["meter"] = self.meter_str
        return d

    def with_seed(self, seed: int) -> Resolved:
        """Same options, new seed; tempo/key/meter the member did not fix are re-drawn."""
        req = ComposeRequest(self.style, self.bars, self.tempo if self.tempo_given else None,
                             self.key if self.key_given else None, self.temperature, seed,
                             self.model)
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
class RenderedClip:
    mp3: Path
    mid: Path
    png: Path
    audio_seconds: float
    mp3_bytes: int


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
    draws = meta.random(3)
    tempo = req.tempo if req.tempo is not None else int(lo + draws[0] * (hi - lo + 1))
    key = Key.parse(req.key).name if req.key else pick_key(spec, float(draws[1])).name
    meter = pick_meter(spec, float(draws[2]))
    return Resolved(spec.name, req.bars, int(tempo), key, meter, float(req.temperature), seed,
                    req.model or default_model, req.tempo is not None, req.key is not None)


class Composer:
    """Generates and renders clips; holds the model registry and the renderer settings."""

    def __init__(self, registry, *, soundfont: Path | None = None, bitrate: str = "192k",  # type: ignore[no-untyped-def]
                 default_model: str = "lstm") -> None:
        self.registry = registry
        self.soundfont = soundfont
        self.bitrate = bitrate
        self.default_model = default_model

    # ---- generation
    def resolve(self, req: ComposeRequest) -> Resolved:
        return resolve(req, self.default_model)

    def model_style(self, spec: StyleSpec, styles: tuple[str, ...]) -> str:
        for s in spec.model_styles:
            if s in styles:
                return s
        raise UserError(f"model cannot play {spec.name}: it knows {', '.join(styles)}")

    def compose(self, r: Resolved) -> Composition:
        """Resolved parameters -> arranged Score and MIDI bytes (no audio yet)."""
        from models.generate import Idiom, MelodyRequest, generate_tokens
        from models.tokens import decode

        spec = STYLES[r.style]
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        try:
            loaded = self.registry.get(r.model)
        except ModelError as e:
            raise ResourceError(str(e)) from None
        _meta, rng_h, rng_s, rng_a = _streams(r.seed)
        key = Key.parse(r.key)
        plan = plan_chords(r.style, key, r.bars, r.meter, rng_h)
        bar_ticks = GRID * 4 * r.meter[0] // r.meter[1]
        chord_plan = plan_from_chords([(t, c.reduced()) for t, c in plan], r.bars, bar_ticks)
        model_style = self.model_style(spec, loaded.styles)
        idiom = Idiom(tonic=key.tonic, scale=key.scale, tonic_bias=dict(spec.tonic_bias),
                      chord_tone_bias=spec.chord_tone_bias,
                      off_scale_penalty=spec.off_scale_penalty)
        req = MelodyRequest(style=model_style, meter=r.meter, plan=chord_plan,
                            seed=int(rng_s.integers(2**63)), temperature=r.temperature,
                            pitch_range=spec.lead_range, idiom=idiom)
        try:
            tokens = generate_tokens(loaded, [req])[0]
        except ModelError as e:
            raise UserError(str(e)) from None
        melody = decode(tokens, loaded.vocab, tempo=r.tempo, key=key)
        timings["generate"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        lead = melody.track("lead")
        score = arrange(lead.notes if lead else (), plan, spec=spec, meter=r.meter, bars=r.bars,
                        tempo=r.tempo, key=key, rng=rng_a)
        midi = score_to_midi(score)
        timings["arrange"] = time.perf_counter() - t1
        return Composition(r, score, midi, model_style, loaded.sha256, timings)

    # ---- rendering
    def render(self, score: Score, midi: bytes, out_dir: Path, stem: str,
               title: str | None = None, timings: dict[str, float] | None = None) -> RenderedClip:
        """Write ``stem``.mp3/.mid/.png under ``out_dir`` (MP3 from FluidSynth via ffmpeg)."""
        from bot.audio import DISCORD_MAX_BYTES, encode_mp3, normalize, trim_trailing_silence
        from bot.pianoroll import render_pianoroll
        from bot.render import get_renderer

        timings = timings if timings is not None else {}
        out_dir.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        renderer = get_renderer(self.soundfont)
        audio = renderer.render_midi(midi)
        audio = trim_trailing_silence(normalize(audio), renderer.sample_rate)
        timings["render"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        mp3 = encode_mp3(audio, renderer.sample_rate, out_dir / f"{stem}.mp3",
                         bitrate=self.bitrate, max_bytes=DISCORD_MAX_BYTES,
                         tags={"title": title or stem, "artist": "Cadenza"})
        timings["encode"] = time.perf_counter() - t1
        t2 = time.perf_counter()
        mid = out_dir / f"{stem}.mid"
        mid.write_bytes(midi)
        png = render_pianoroll(score, out_dir / f"{stem}.png", title=title)
        timings["pianoroll"] = time.perf_counter() - t2
        return RenderedClip(mp3, mid, png, len(audio) / renderer.sample_rate, mp3.stat().st_size)
