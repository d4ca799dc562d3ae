"""MuseGAN-style multi-track GAN over bar-level piano rolls, conditioned on style, with its sampler.

Model (Dong et al. 2018, "hybrid" variant, at CPU size). A phrase is ``phrase_bars`` bars of
the 4-lane roll of ``cadenza.music.roll`` (lead, chords, bass, drums; 48 steps x 84 pitches per
bar).

* Latents, each ``z_dim`` wide: a shared time-independent ``z``; a shared temporal ``z_t`` that
  the temporal generator turns into one code per bar; per track, a time-independent ``z_i`` and
  a temporal ``z_i,t`` with its own temporal generator; per track, a rhythm code ``r_i``.
  Style is an embedding.
* The rhythm generator maps the rhythm codes and the style to a gate and a hold per track over
  a bar's 48 steps, the same for every bar (MuseGAN's time-invariant latent, for rhythm): the
  bar generator's notes change only where their track's hold lets go and sound only where its
  gate is open, so the band keeps its groove from bar to bar and a chord's voices start and
  stop together.
* The bar generator runs once per bar. Its shared trunk reads (z, bar code of z_t, style) and
  upsamples (beats x octaves -> sixteenths x octaves); each track then gets the trunk features
  modulated (FiLM) by its own (z_i, bar code of z_i,t, r_i) and a private pair of streams,
  pitch-time and time-pitch (octave -> semitones, sixteenth -> GRID steps, in either order),
  whose summed logits are the track's 48 x 84 bar. The private streams are per-track batched
  matmuls (the kernel == stride transposed convolutions of MuseGAN, without the CPU cost of
  grouped ``ConvTranspose2d``). A sigmoid gives note probabilities; its bias starts at -4, so a
  fresh generator is about as sparse as real rolls instead of half full.
* The critic sees whole phrases: a track-private then shared convolutional stream on the roll,
  a chroma stream (pitch classes per beat), an onset stream (note starts per step) and a
  groove stream (where each track's onsets differ from the bar before), joined by a linear
  head over all bars; style enters by projection (Miyato & Koyama 2018).
* Trained with WGAN-GP (``critic_loss``, ``generator_loss``, ``gradient_penalty``) by
  ``cadenza.models.training.train_gan``.

Sampling. ``sample`` writes any number of bars in phrases: each phrase draws its own
time-independent latents, held for its bars as in training; the temporal latents follow a phrase
form (default AABA: phrases with the same letter share their bar-to-bar plan, and their
time-independent latents start from the letter's first statement's, moved part of the way to their
own: a returning phrase comes back varied); one rhythm code serves the whole clip. Probabilities
are binarised by a threshold (or Bernoulli draws), lead and bass are made monophonic (highest /
lowest pitch), each track's notes are moved to start on the steps of the beat its style's training
data uses (``GANConfig.onset_grid``; the generator alone starts up to half of them on steps the
data never uses), specks shorter than ``min_steps`` are removed, the result is moved to the
requested key and chord symbols are read off the chords and bass lanes. Latents come from a numpy
RNG seeded by the request alone and the generator runs in eval mode (batch-norm running
statistics), so a seed gives the same clip whatever else is in the batch, and (with one
candidate) a longer clip starts like a shorter one. A request may ask for several
``candidates``: its own draw first, and only when that does not end at home (on its key's
tonic, in a quality that rests there: ``_ending_rank``) the others, from seeds of its own,
``CANDIDATE_CHUNK`` at a time until one does; the first that ends best is kept. The generator
writes whole phrases with no notion of a last bar: one draw ended at home in 3 of 32 8-bar jazz
clips.

Data: whatever rolls the caller passes ``cadenza.models.training.train_gan`` (see
``cadenza.models.training.gan_data``): real melodies of each style arranged into bands over their
own chords (``cadenza.gan_bands``), users' MIDI.
"""

from __future__ import annotations

import logging
import math
import string
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from cadenza.models.checkpoint import FORMAT, read_payload, save_payload
from cadenza.models.errors import ModelError
from cadenza.music.chord_infer import best_chord, key_from_pitches
from cadenza.music.roll import (
    BASS,
    CHORDS,
    DRUMS,
    LEAD,
    LOWEST,
    PITCHES,
    STEPS,
    STEPS_PER_BEAT,
    TRACKS,
    bar_steps,
    decode,
    drop_short,
    skyline,
    snap_onsets,
    timeline,
    transpose,
)
from cadenza.music.score import GRID, ChordEvent, Score
from cadenza.music.theory import Chord, Key, rests
from cadenza.music.tokens import DEFAULT_STYLES

log = logging.getLogger(__name__)

KIND = "gan"
OCTAVES = PITCHES // 12  # 7
BEATS = STEPS // GRID  # 4 quarter-note beats per bar lane
SUB = 4  # sixteenths per beat
TICKS_PER_SUB = GRID // SUB  # 3 roll steps per sixteenth
MAX_BARS = 512  # a request's rolls are 64 KB of floats per bar


@dataclass
class GANConfig:
    styles: tuple[str, ...] = DEFAULT_STYLES
    phrase_bars: int = 4
    z_dim: int = 32
    style_dim: int = 16
    g_channels: int = 32
    d_channels: int = 32
    meter: tuple[int, int] = (4, 4)
    rhythm_dim: int = 16  # per-track rhythm latent (0: none, as checkpoints before it)
    groove_critic: bool = True  # the critic compares consecutive bars' onsets
    # per style, per track: the steps within a beat where the training data's notes start
    # (``cadenza.music.roll.beat_positions``); the sampler moves onsets onto them. None:
    # onsets stay where the generator put them (checkpoints before it)
    onset_grid: dict[str, list[list[int]]] | None = None

    def __post_init__(self) -> None:
        self.styles = tuple(str(s) for s in self.styles)
        self.meter = (int(self.meter[0]), int(self.meter[1]))
        if not self.styles or len(set(self.styles)) != len(self.styles):
            raise ValueError(f"styles must be distinct and non-empty, got {self.styles}")
        if self.phrase_bars < 1:
            raise ValueError("phrase_bars must be >= 1")
        if self.g_channels % 2 or self.g_channels < 8 or self.d_channels < 4:
            raise ValueError("g_channels must be even and >= 8, d_channels >= 4")
        if self.rhythm_dim < 0:
            raise ValueError("rhythm_dim must be >= 0")
        bar_steps(self.meter)  # raises for meters the roll cannot hold
        if self.onset_grid is not None:
            grid = {str(k): [[int(p) for p in lane] for lane in v]
                    for k, v in self.onset_grid.items()}
            for style, lanes in grid.items():
                if style not in self.styles or len(lanes) != TRACKS or not all(
                        0 <= p < STEPS_PER_BEAT for lane in lanes for p in lane):
                    raise ValueError(f"onset_grid for {style!r} must name a style and give "
                                     f"{TRACKS} lists of steps 0-{STEPS_PER_BEAT - 1}")
            self.onset_grid = grid

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["styles"], d["meter"] = list(self.styles), list(self.meter)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GANConfig:
        # checkpoints written before the rhythm code and the groove critic have neither
        old = {"rhythm_dim": 0, "groove_critic": False, "onset_grid": None}
        return cls(**{**old, **d, "styles": tuple(d["styles"]), "meter": tuple(d["meter"])})


class Latents(NamedTuple):
    """One phrase's latents per batch item: (B, z), (B, z), (B, TRACKS, z), (B, TRACKS, z) and
    the rhythm code (B, TRACKS, rhythm_dim)."""

    shared: torch.Tensor
    shared_temporal: torch.Tensor
    tracks: torch.Tensor
    tracks_temporal: torch.Tensor
    rhythm: torch.Tensor


def random_latents(batch: int, config: GANConfig, device: torch.device | str = "cpu",
                   generator: torch.Generator | None = None) -> Latents:
    z = config.z_dim

    def n(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=generator, device=device)

    return Latents(n(batch, z), n(batch, z), n(batch, TRACKS, z), n(batch, TRACKS, z),
                   n(batch, TRACKS, config.rhythm_dim))


# ---------------------------------------------------------------- generator


class TemporalGenerator(nn.Module):
    """z -> one code per bar of a phrase (MuseGAN's temporal generator)."""

    def __init__(self, z_dim: int, bars: int) -> None:
        super().__init__()
        self.bars, self.z_dim = bars, z_dim
        self.net = nn.Sequential(nn.Linear(z_dim, 4 * z_dim), nn.ReLU(),
                                 nn.Linear(4 * z_dim, bars * z_dim))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(-1, self.bars, self.z_dim)


class Expand(nn.Module):
    """Transposed convolution with kernel == stride, as one matmul: every input cell becomes a
    ``k`` patch (several times faster than ``nn.ConvTranspose2d`` on CPU)."""

    def __init__(self, c_in: int, c_out: int, k: tuple[int, int]) -> None:
        super().__init__()
        self.k, self.c_out = k, c_out
        bound = 1 / math.sqrt(c_in)
        self.weight = nn.Parameter(torch.empty(c_in, c_out * k[0] * k[1]).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.zeros(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        kh, kw = self.k
        y = torch.einsum("nchw,cd->ndhw", x, self.weight)
        y = y.reshape(n, self.c_out, kh, kw, h, w).permute(0, 1, 4, 2, 5, 3)
        return y.reshape(n, self.c_out, h * kh, w * kw) + self.bias[:, None, None]


class Reduce(nn.Module):
    """Convolution with kernel == stride, as one matmul (the critic's patch embedding)."""

    def __init__(self, c_in: int, c_out: int, k: tuple[int, int], groups: int = 1) -> None:
        super().__init__()
        self.k, self.groups, self.c_out = k, groups, c_out
        fan_in = c_in // groups * k[0] * k[1]
        bound = 1 / math.sqrt(fan_in)
        self.weight = nn.Parameter(
            torch.empty(groups, fan_in, c_out // groups).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.zeros(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        (kh, kw), g = self.k, self.groups
        x = x.reshape(n, g, c // g, h // kh, kh, w // kw, kw).permute(0, 1, 2, 4, 6, 3, 5)
        y = torch.einsum("ngchw,gcd->ngdhw", x.reshape(n, g, -1, h // kh, w // kw), self.weight)
        return y.reshape(n, self.c_out, h // kh, w // kw) + self.bias[:, None, None]


def _up(c_in: int, c_out: int, k: tuple[int, int]) -> list[nn.Module]:
    """An upsampling step with batch-norm and ReLU."""
    return [Expand(c_in, c_out, k), nn.BatchNorm2d(c_out), nn.ReLU()]


class Grouped(nn.Module):
    """One linear map per track, applied to (TRACKS, rows, c_in) in a single batched matmul."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        bound = 1 / math.sqrt(c_in)
        self.weight = nn.Parameter(torch.empty(TRACKS, c_in, c_out).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.zeros(TRACKS, 1, c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, self.weight)


class RhythmGenerator(nn.Module):
    """Rhythm codes -> per track and step of a bar, a gate (may a note sound here?) and a hold
    (does the step carry on what sounded the step before, or may notes change?), each
    (M, TRACKS, STEPS) in (0, 1).

    MuseGAN's time-invariant latent, for rhythm alone: both depend on the tracks' rhythm codes
    and the style only, so every bar that shares a code shares them. The bar generator proposes
    notes at every step; the hold carries them over the steps it covers (``hold_weights``), so
    notes start only where a track's hold lets go, and the gate silences the steps it closes,
    so a chord's voices start and stop together. Bars then keep one groove, while the bar
    latents choose the pitches and whether an opening is used. Without it every bar of a
    phrase drew its own rhythm (groove consistency 0.71 against the data's 0.95).
    """

    def __init__(self, cfg: GANConfig) -> None:
        super().__init__()
        hidden = 8 * cfg.rhythm_dim
        self.net = nn.Sequential(nn.Linear(TRACKS * cfg.rhythm_dim + cfg.style_dim, hidden),
                                 nn.ReLU(), nn.Linear(hidden, 2 * TRACKS * STEPS))
        # open and not holding at the start (sigmoid(+-3) = 0.95 / 0.05), so training begins
        # as a plain bar generator
        bias = self.net[-1].bias.data.view(2, TRACKS * STEPS)
        bias[0], bias[1] = 3.0, -3.0

    def forward(self, rhythm: torch.Tensor, style: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """rhythm (M, TRACKS, r), style embedding (M, style_dim) -> gate, hold, each
        (M, TRACKS, STEPS)."""
        x = torch.cat([rhythm.flatten(1), style], dim=1)
        gate, hold = torch.sigmoid(self.net(x)).view(-1, 2, TRACKS, STEPS).unbind(1)
        return gate, hold


def hold_weights(hold: torch.Tensor) -> torch.Tensor:
    """Holds (..., STEPS) -> weights W (..., STEPS, STEPS): what sounds at step t is
    sum_k W[t, k] * proposed[k], with W[t, k] = (1 - h_k) * h_(k+1) * ... * h_t for k <= t.

    A sample-and-hold: with holds near 1 the step repeats the one before, near 0 it takes its
    own proposal. The first step of a bar never holds, so every row sums to 1 (a convex mix).
    """
    h = torch.cat([torch.zeros_like(hold[..., :1]), hold[..., 1:]], dim=-1)
    cum = torch.log(h.clamp_min(1e-6)).cumsum(-1)  # L_t = sum_(j <= t) log h_j
    span = cum[..., :, None] - cum[..., None, :]  # L_t - L_k = log of h_(k+1) ... h_t
    lower = torch.ones(STEPS, STEPS, dtype=torch.bool, device=hold.device).tril()
    span = span.masked_fill(~lower, float("-inf"))
    return (1 - h)[..., None, :] * torch.exp(span)


class BarGenerator(nn.Module):
    """Per-bar latents -> the four lanes of one bar, probabilities (M, TRACKS, STEPS, PITCHES)."""

    def __init__(self, cfg: GANConfig) -> None:
        super().__init__()
        c, z, t = cfg.g_channels, cfg.z_dim, TRACKS
        track_in = 2 * z + cfg.rhythm_dim
        self.c = c
        self.fc = nn.Linear(2 * z + cfg.style_dim, 4 * c * BEATS)
        self.bn0 = nn.BatchNorm2d(4 * c)
        self.trunk = nn.Sequential(
            *_up(4 * c, 2 * c, (1, OCTAVES)),  # (2c, beats, octaves)
            *_up(2 * c, 2 * c, (SUB, 1)),  # (2c, sixteenths, octaves)
            nn.Conv2d(2 * c, 2 * c, 3, padding=1), nn.BatchNorm2d(2 * c), nn.ReLU(),
        )
        # per-track scale and shift of the trunk features, from that track's latents
        self.film = nn.Conv1d(t * track_in, t * 2 * 2 * c, 1, groups=t)
        # Private streams, per track and per (sixteenth, octave) cell. pitch-time: 12 semitones
        # of hp features, each -> 3 steps; time-pitch: 3 steps of ht features, each -> 12
        # semitones. Both are upsampling transposed convolutions with kernel == stride, written
        # as batched matmuls in a channels-last layout because that avoids the big copies
        # (and the slow grouped kernels) of nn.ConvTranspose2d on CPU.
        self.hp, self.ht = max(4, c // 4), max(4, c // 2)
        self.pt1, self.pt2 = Grouped(2 * c, 12 * self.hp), Grouped(self.hp, TICKS_PER_SUB)
        self.tp1, self.tp2 = Grouped(2 * c, TICKS_PER_SUB * self.ht), Grouped(self.ht, 12)
        # start near the sparsity of real rolls (~2% of cells on) instead of 50%
        self.out_bias = nn.Parameter(torch.full((t, 1, 1), -4.0))

    def forward(self, shared: torch.Tensor, tracks: torch.Tensor,
                rhythm: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """shared: (M, 2z + style_dim); tracks: (M, TRACKS, 2z + rhythm_dim); rhythm: None or
        (gate, hold), each (M, TRACKS, STEPS) -> (M, TRACKS, STEPS, PITCHES)."""
        m, c, t = shared.shape[0], self.c, TRACKS
        x = F.relu(self.bn0(self.fc(shared).view(m, 4 * c, BEATS, 1)))
        x = self.trunk(x).permute(0, 2, 3, 1)  # (M, 16, 7, 2c)
        gb = self.film(tracks.reshape(m, -1, 1)).view(m, t, 2, 1, 1, 2 * c).transpose(0, 1)
        h = x[None] * (1 + gb[:, :, 0]) + gb[:, :, 1]  # (T, M, 16, 7, 2c)
        cells = m * BEATS * SUB * OCTAVES
        h = h.reshape(t, cells, 2 * c)
        pt = F.relu(self.pt1(h)).view(t, cells * 12, self.hp)
        pt = self.pt2(pt).view(t, m, BEATS * SUB, OCTAVES, 12, TICKS_PER_SUB)
        tp = F.relu(self.tp1(h)).view(t, cells * TICKS_PER_SUB, self.ht)
        tp = self.tp2(tp).view(t, m, BEATS * SUB, OCTAVES, TICKS_PER_SUB, 12)
        # both to (M, T, sixteenth, step, octave, semitone) = (M, T, STEPS, PITCHES)
        logits = pt.permute(1, 0, 2, 5, 3, 4) + tp.permute(1, 0, 2, 4, 3, 5)
        probs = torch.sigmoid(logits.reshape(m, t, STEPS, PITCHES) + self.out_bias)
        if rhythm is None:
            return probs
        gate, hold = rhythm
        return (hold_weights(hold) @ probs) * gate[..., None]


class Generator(nn.Module):
    def __init__(self, cfg: GANConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.style = nn.Embedding(len(cfg.styles), cfg.style_dim)
        self.temporal = TemporalGenerator(cfg.z_dim, cfg.phrase_bars)
        self.track_temporal = nn.ModuleList(
            TemporalGenerator(cfg.z_dim, cfg.phrase_bars) for _ in range(TRACKS))
        self.rhythm = RhythmGenerator(cfg) if cfg.rhythm_dim else None
        self.bar = BarGenerator(cfg)

    def codes(self, shared_t: torch.Tensor, tracks_t: torch.Tensor
              ) -> tuple[torch.Tensor, torch.Tensor]:
        """Temporal latents (B, z), (B, T, z) -> bar codes (B, P, z), (B, P, T, z)."""
        per_track = [g(tracks_t[:, i]) for i, g in enumerate(self.track_temporal)]
        return self.temporal(shared_t), torch.stack(per_track, dim=2)

    def bars(self, shared: torch.Tensor, shared_code: torch.Tensor, tracks: torch.Tensor,
             tracks_code: torch.Tensor, rhythm: torch.Tensor, style: torch.Tensor
             ) -> torch.Tensor:
        """Per-bar inputs (M, z), (M, z), (M, T, z), (M, T, z), (M, T, rhythm_dim), (M,) ->
        (M, T, STEPS, PITCHES)."""
        emb = self.style(style)
        s = torch.cat([shared, shared_code, emb], dim=1)
        beat = None if self.rhythm is None else self.rhythm(rhythm, emb)
        return self.bar(s, torch.cat([tracks, tracks_code, rhythm], dim=2), beat)

    def forward(self, lat: Latents, style: torch.Tensor) -> torch.Tensor:
        """A phrase per batch item: (B, P, TRACKS, STEPS, PITCHES) note probabilities."""
        b, p = lat.shared.shape[0], self.cfg.phrase_bars
        code, tcode = self.codes(lat.shared_temporal, lat.tracks_temporal)

        def per_bar(x: torch.Tensor) -> torch.Tensor:  # repeat a phrase latent for each bar
            return x[:, None].expand(b, p, *x.shape[1:]).reshape(b * p, *x.shape[1:])

        out = self.bars(per_bar(lat.shared), code.reshape(b * p, -1), per_bar(lat.tracks),
                        tcode.reshape(b * p, TRACKS, -1), per_bar(lat.rhythm), per_bar(style))
        return out.view(b, p, TRACKS, STEPS, PITCHES)


# ---------------------------------------------------------------- critic


class Discriminator(nn.Module):
    """WGAN critic over phrases (B, P, TRACKS, STEPS, PITCHES) -> (B,) scores."""

    def __init__(self, cfg: GANConfig) -> None:
        super().__init__()
        c, t, p = cfg.d_channels, TRACKS, cfg.phrase_bars
        self.p = p
        act = nn.LeakyReLU(0.2)
        self.main = nn.Sequential(
            Reduce(t, t * 8, (1, 12), t), act,  # per track: shapes within each octave
            Reduce(t * 8, t * 8, (TICKS_PER_SUB, 1), t), act,  # per track: sixteenths
            Reduce(t * 8, 2 * c, (SUB, 1)), act,  # tracks meet: (2c, beats, octaves)
            Reduce(2 * c, 2 * c, (1, OCTAVES)), act,
            Reduce(2 * c, 4 * c, (BEATS, 1)), act,  # (4c, bars, 1)
        )
        self.chroma = nn.Sequential(
            nn.Conv2d(t, c, (1, 12)), act,  # (c, beats, 1)
            nn.Conv2d(c, 2 * c, (BEATS, 1), (BEATS, 1)), act,
        )
        self.onset = nn.Sequential(
            nn.Conv1d(t, c, TICKS_PER_SUB, TICKS_PER_SUB), act,
            nn.Conv1d(c, c, SUB, SUB), act,
            nn.Conv1d(c, 2 * c, BEATS, BEATS), act,
        )
        # groove: where each track's onsets differ from the bar before, per step; real bands
        # keep their comping, bass and drum rhythms from bar to bar
        self.groove = nn.Sequential(
            nn.Conv1d(t, c, TICKS_PER_SUB, TICKS_PER_SUB), act,
            nn.Conv1d(c, 2 * c, SUB * BEATS, SUB * BEATS), act,
        ) if cfg.groove_critic and p > 1 else None
        groove_width = 2 * c * (p - 1) if self.groove is not None else 0
        self.fc = nn.Sequential(nn.Linear(8 * c * p + groove_width, 4 * c), act)
        self.out = nn.Linear(4 * c, 1)
        self.style = nn.Embedding(len(cfg.styles), 4 * c)

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        b, p = x.shape[0], self.p
        x = x.permute(0, 2, 1, 3, 4).reshape(b, TRACKS, p * STEPS, PITCHES)
        chroma = x.view(b, TRACKS, p * STEPS, OCTAVES, 12).sum(3)
        chroma = F.avg_pool2d(chroma, (GRID, 1))  # (B, T, beats, 12)
        onset = F.relu(torch.diff(x, dim=2, prepend=torch.zeros_like(x[:, :, :1]))).sum(3)
        parts = [self.main(x).flatten(1), self.chroma(chroma).flatten(1),
                 self.onset(onset).flatten(1)]
        if self.groove is not None:
            per_bar = onset.view(b, TRACKS, p, STEPS)
            change = (per_bar[:, :, 1:] - per_bar[:, :, :-1]).abs()  # (B, T, p - 1, STEPS)
            change = change.transpose(1, 2).reshape(b * (p - 1), TRACKS, STEPS)
            parts.append(self.groove(change).view(b, -1))
        h = torch.cat(parts, dim=1)
        h = self.fc(h)
        return self.out(h).squeeze(1) + (self.style(style) * h).sum(1)


class MuseGAN(nn.Module):
    """Generator and critic together, so a checkpoint can resume training; sampling uses G."""

    def __init__(self, config: GANConfig) -> None:
        super().__init__()
        self.config = config
        self.generator = Generator(config)
        self.discriminator = Discriminator(config)

    def forward(self, lat: Latents, style: torch.Tensor) -> torch.Tensor:
        return self.generator(lat, style)

    def num_params(self, part: str | None = None) -> int:
        mod = getattr(self, part) if part else self
        return sum(p.numel() for p in mod.parameters())

    def style_index(self, style: str | int) -> int:
        styles = self.config.styles
        if isinstance(style, int) and not isinstance(style, bool):
            if not 0 <= style < len(styles):
                raise ModelError(f"style index {style} out of range (0-{len(styles) - 1})")
            return style
        if style not in styles:
            raise ModelError(f"this GAN has no style {style!r} (it knows {', '.join(styles)})")
        return styles.index(style)


# ---------------------------------------------------------------- WGAN-GP


def critic_loss(d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    """Wasserstein critic loss (minimised): E[D(fake)] - E[D(real)]."""
    return d_fake.mean() - d_real.mean()


def generator_loss(d_fake: torch.Tensor) -> torch.Tensor:
    return -d_fake.mean()


def gradient_penalty(disc: Discriminator, real: torch.Tensor, fake: torch.Tensor,
                     style: torch.Tensor, weight: float = 10.0) -> torch.Tensor:
    """Gulrajani et al. 2017: weight * E[(||grad D(x_hat)|| - 1)^2] on random interpolates."""
    eps = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device)
    x_hat = (eps * real + (1 - eps) * fake.detach()).requires_grad_(True)
    (grad,) = torch.autograd.grad(disc(x_hat, style).sum(), x_hat, create_graph=True)
    return weight * ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()


# ---------------------------------------------------------------- checkpoints


def save_gan(path: Path, model: MuseGAN, meta: dict[str, Any]) -> None:
    save_payload(path, {
        "format": FORMAT,
        "kind": KIND,
        "config": model.config.to_dict(),
        "styles": list(model.config.styles),
        "meta": meta,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    })


def set_onset_grid(path: Path, grid: dict[str, list[list[int]]], note: str) -> None:
    """Write ``grid`` into the config of the GAN checkpoint at ``path`` (weights unchanged),
    with ``note`` (how it was measured) in its meta: for checkpoints trained before it."""
    payload = read_payload(path)
    if payload.get("kind") != KIND:
        raise ModelError(f"{path} is not a GAN checkpoint")
    cfg = GANConfig.from_dict({**payload["config"], "onset_grid": grid})
    payload["config"] = cfg.to_dict()
    payload["meta"] = {**payload.get("meta", {}), "onset_grid": note}
    save_payload(path, payload)


def build(payload: dict[str, Any]) -> tuple[MuseGAN, None]:
    """An untrained model shaped by a 'gan' checkpoint (``cadenza.models.families``)."""
    return MuseGAN(GANConfig.from_dict(payload["config"])), None


# ---------------------------------------------------------------- sampling


@dataclass(frozen=True)
class GANRequest:
    """One clip to generate; its output depends only on these fields and the checkpoint."""

    style: str | int
    bars: int
    seed: int
    key: Key | None = None  # None: wherever the model writes (C major / A minor if trained so)
    tempo: float = 120.0
    threshold: float = 0.5
    bernoulli: bool = False  # draw notes with their probabilities instead of thresholding
    form: str = "AABA"  # phrase letters, cycled; equal letters share a temporal plan
    # how far a returning phrase's own latents move from its first statement's: 0 plays it
    # again, 1 draws them afresh (the temporal plan alone then brings nothing audible back)
    restate: float = 0.2
    min_steps: int = 2  # pitched notes shorter than this many steps are dropped
    snap: bool = True  # onsets onto the style's grid, when the checkpoint has one
    # clips drawn to choose the ending from (this request's first, then seeds drawn from its
    # own): the first that ends best is kept (``_ending_rank``)
    candidates: int = 1


def phrase_form(sections: Sequence[tuple[int, int, str]], bars: int, phrase_bars: int) -> str:
    """A request's ``form`` (one letter per phrase) from a clip's sections (start bar, bars,
    letter): a phrase is named by the section it starts in and its place there, so an A
    section that comes back replays the first A's bar-to-bar plan, phrase for phrase."""
    names: dict[tuple[str, int], str] = {}
    out = []
    for start in range(0, bars, phrase_bars):
        sec = next(((s, letter) for s, n, letter in sections if s <= start < s + n), None)
        # outside every section a phrase is new material
        token = ("?", start) if sec is None else (sec[1], (start - sec[0]) // phrase_bars)
        if token not in names:
            names[token] = string.ascii_letters[len(names) % len(string.ascii_letters)]
        out.append(names[token])
    return "".join(out) or "A"


def _plan(cfg: GANConfig, req: GANRequest) -> dict[str, np.ndarray]:
    """Per-bar latents of a request (numpy, from its seed alone; prefix-stable in bars).

    As in training, the time-independent latents hold still for a phrase (drifting them bar by
    bar, as this sampler once did, gave every bar its own rhythm); the rhythm code holds for
    the whole clip.
    """
    if not 1 <= req.bars <= MAX_BARS:
        raise ModelError(f"bars must be 1-{MAX_BARS}, got {req.bars}")
    if not req.form or not req.form.isalpha():
        raise ModelError(f"form must be letters like AABA, got {req.form!r}")
    p, z = cfg.phrase_bars, cfg.z_dim
    n = -(-req.bars // p)
    anchors_rng = np.random.default_rng([req.seed, 0])
    letters_rng = np.random.default_rng([req.seed, 1])
    anchors = [anchors_rng.standard_normal((1 + TRACKS, z)) for _ in range(n)]
    letters = [req.form[k % len(req.form)] for k in range(n)]
    # a phrase whose letter came before starts from that letter's first statement, turned
    # toward its own draw by ``restate`` of a right angle (a unit-variance normal still)
    first: dict[str, int] = {}
    angle = min(1.0, max(0.0, req.restate)) * math.pi / 2
    for k, letter in enumerate(letters):
        if letter in first:
            anchors[k] = math.cos(angle) * anchors[first[letter]] + math.sin(angle) * anchors[k]
        else:
            first[letter] = k
    order = list(dict.fromkeys(letters))
    temporal = np.stack([letters_rng.standard_normal((1 + TRACKS, z)) for _ in order])
    bars = np.stack([anchors[b // p] for b in range(n * p)])  # (n*p, 1+T, z)
    rhythm = np.random.default_rng([req.seed, 3]).standard_normal((TRACKS, cfg.rhythm_dim))
    return {"shared": bars[:, 0], "tracks": bars[:, 1:], "temporal": temporal,
            "rhythm": np.broadcast_to(rhythm, (n * p, TRACKS, cfg.rhythm_dim)),
            "phrase_letter": np.array([order.index(c) for c in letters])}


@torch.no_grad()
def sample_probabilities(model: MuseGAN, requests: Sequence[GANRequest]) -> list[np.ndarray]:
    """Note probabilities (bars, TRACKS, STEPS, PITCHES) per request, in one generator batch."""
    g = model.generator
    was_training = g.training
    g.eval()  # batch-norm running statistics: each request's bars are independent of the batch
    try:
        return _probabilities(model, requests)
    finally:
        g.train(was_training)


def _probabilities(model: MuseGAN, requests: Sequence[GANRequest]) -> list[np.ndarray]:
    g = model.generator
    dev = next(model.parameters()).device
    cfg, p = model.config, model.config.phrase_bars
    plans = [_plan(cfg, r) for r in requests]
    styles = [model.style_index(r.style) for r in requests]

    def cat(key: str) -> torch.Tensor:
        return torch.from_numpy(np.concatenate([pl[key] for pl in plans])).float().to(dev)

    temporal = cat("temporal")  # (letters total, 1+T, z)
    code, tcode = g.codes(temporal[:, 0], temporal[:, 1:])
    offsets = np.cumsum([0] + [len(pl["temporal"]) for pl in plans])
    idx = torch.from_numpy(np.concatenate(
        [pl["phrase_letter"] + off for pl, off in zip(plans, offsets, strict=False)])).to(dev)
    code = code[idx].reshape(-1, cfg.z_dim)  # (bars total, z)
    tcode = tcode[idx].reshape(-1, TRACKS, cfg.z_dim)
    style = torch.tensor(np.concatenate([[s] * len(pl["shared"]) for s, pl in
                                         zip(styles, plans, strict=True)]), dtype=torch.long,
                         device=dev)
    out = g.bars(cat("shared"), code, cat("tracks"), tcode, cat("rhythm"), style)
    out = out.float().cpu().numpy()
    res, start = [], 0
    for r, pl in zip(requests, plans, strict=True):
        res.append(out[start:start + r.bars])
        start += len(pl["shared"])
    assert start == len(out) and all(len(pl["shared"]) % p == 0 for pl in plans)
    return res


def binarize(probs: np.ndarray, req: GANRequest) -> np.ndarray:
    """Notes on/off from probabilities: threshold, or Bernoulli draws seeded by the request."""
    if req.bernoulli:
        rng = np.random.default_rng([req.seed, 2])
        return rng.random(probs.shape) < probs
    return probs > req.threshold


def clean(active: np.ndarray, min_steps: int = 2,
          grid: Sequence[Sequence[int]] | None = None) -> np.ndarray:
    """Monophonic lead (top) and bass (bottom), onsets moved onto each track's ``grid``
    positions when given (``GANConfig.onset_grid``), pitched specks shorter than min_steps
    removed."""
    out = active.copy()
    for lane, top in ((LEAD, True), (BASS, False), (CHORDS, None), (DRUMS, None)):
        flat = out[:, lane].reshape(-1, PITCHES)
        if top is not None:
            flat = skyline(flat, highest=top)
        if grid is not None:
            flat = snap_onsets(flat, grid[lane], monophonic=top)
        if lane != DRUMS:  # a drum hit is one step long
            flat = drop_short(flat, min_steps)
        out[:, lane] = flat.reshape(out.shape[0], STEPS, PITCHES)
    return out


def _chroma(lanes: np.ndarray) -> np.ndarray:
    """Active steps per pitch class over (..., steps, PITCHES) lanes -> (..., 12)."""
    per_pitch = lanes.sum(axis=-2).reshape(*lanes.shape[:-2], OCTAVES, 12)
    return np.roll(per_pitch.sum(axis=-2), LOWEST % 12, axis=-1).astype(float)


def read_key(active: np.ndarray, meter: tuple[int, int]) -> Key:
    """Krumhansl-Schmuckler key of the pitched lanes (duration-weighted, as the corpus uses)."""
    w = _chroma(timeline(active[:, :DRUMS], meter))
    w = w.sum(axis=0)
    # key_from_pitches weighs each span by its length: one span per pitch class carries w
    return key_from_pitches([(0, int(c), pc) for pc, c in enumerate(w) if c > 0])


def read_chords(active: np.ndarray, meter: tuple[int, int]) -> list[tuple[int, Chord]]:
    """Chord changes (GRID tick, chord) from the chords and bass lanes, one per half bar
    (``chord_infer.harmonize_voices`` on the roll: pitch-class weights, lowest pitch at the
    window start as the bass)."""
    per_bar = bar_steps(meter)
    window = max(GRID, per_bar // 2)
    flat = timeline(active[:, [CHORDS, BASS]], meter).any(axis=0)  # (steps, PITCHES)
    changes: list[tuple[int, Chord]] = []
    current = None
    for lo in range(0, len(flat), window):
        w = _chroma(flat[lo:lo + window])
        low = np.nonzero(flat[lo])[0]
        chord = best_chord(list(w), int(low[0]) + LOWEST if len(low) else None)
        if chord is not None and chord != current:
            changes.append((lo, chord))
            current = chord
    return changes


def to_score(active: np.ndarray, req: GANRequest, style: str, meter: tuple[int, int]) -> Score:
    """A binary band roll -> Score at GRID in the requested key, with chords read off it."""
    key = found = read_key(active, meter)
    if req.key is not None:
        # move the clip's key signature onto the requested one, by the shortest way
        def rel_major(k: Key) -> int:
            return k.tonic if k.mode == "major" else (k.tonic + 3) % 12

        shift = (rel_major(req.key) - rel_major(found)) % 12
        active = transpose(active, shift - 12 if shift > 6 else shift)
        key = req.key
    end = req.bars * bar_steps(meter)
    changes = read_chords(active, meter)
    chords = tuple(ChordEvent(t, (changes[i + 1][0] if i + 1 < len(changes) else end) - t, c)
                   for i, (t, c) in enumerate(changes))
    return decode(active, meter=meter, tempo=req.tempo, style=style, key=key, chords=chords)


def _candidates(req: GANRequest) -> list[GANRequest]:
    """The clips a request chooses its ending from: itself, then ``candidates - 1`` more, their
    seeds drawn from its own."""
    if req.candidates < 1:
        raise ModelError(f"candidates must be 1 or more, got {req.candidates}")
    if req.candidates == 1:
        return [req]
    seeds = np.random.default_rng([req.seed, 4]).integers(2**63, size=req.candidates - 1)
    return [req, *(replace(req, seed=int(s), candidates=1) for s in seeds)]


def _ending_rank(score: Score) -> int:
    """How a clip ends: 2 on its key's tonic in a quality that rests there
    (``cadenza.music.theory.rests``), 1 on the tonic otherwise (an I7, a sus4), 0 elsewhere."""
    if not score.chords:
        return 0
    last = score.chords[-1].chord
    if last.root != score.key.tonic:
        return 0
    return 2 if rests(last.quality, score.key.mode, score.style) else 1


# candidates drawn per request in each batch after the first draws: most requests whose own
# draw is not at home find a candidate that is within the next two or three; an 8-bar compose
# through the shipped GAN (2 threads, 16 seeds a style, two rounds) took jazz 50-59 ms with the
# other seven drawn at once, 51-52 two at a time, blues 41-42 / 36, folk 39-45 / 35-38 (one
# at a time: jazz 51-66), the same MIDI every time
CANDIDATE_CHUNK = 2


def sample_many(model: MuseGAN, requests: Sequence[GANRequest]) -> list[Score]:
    """Generate several clips in one batch (each as if alone: see the module docstring); a
    request with ``candidates`` keeps the first of them that ends best. Its own draw comes
    first, alone in the batch of first draws: only a request whose draw does not end at home
    draws the others, ``CANDIDATE_CHUNK`` at a time (in a batch with the other requests'),
    until one does. Which clip is kept does not depend on the chunk: each draw is the clip it
    is alone, and they are read in order."""
    candidates = [_candidates(r) for r in requests]  # (checked before anything is drawn)
    best = [_to_score(model, r, p)
            for r, p in zip(requests, sample_probabilities(model, requests), strict=True)]
    ranks = [_ending_rank(score) for score in best]
    left = {i: cs[1:] for i, cs in enumerate(candidates) if ranks[i] < 2 and len(cs) > 1}
    while left:
        chunk = [(i, c) for i, cs in left.items() for c in cs[:CANDIDATE_CHUNK]]
        probs = sample_probabilities(model, [c for _, c in chunk])
        for (i, req), p in zip(chunk, probs, strict=True):
            if ranks[i] == 2:
                continue  # an earlier candidate of this request ended at home
            score = _to_score(model, req, p)
            rank = _ending_rank(score)
            if rank > ranks[i]:
                best[i], ranks[i] = score, rank
        left = {i: cs[CANDIDATE_CHUNK:] for i, cs in left.items()
                if ranks[i] < 2 and len(cs) > CANDIDATE_CHUNK}
    return best


def _to_score(model: MuseGAN, req: GANRequest, probs: np.ndarray) -> Score:
    """A request's probabilities -> its cleaned Score in its key."""
    cfg = model.config
    style = cfg.styles[model.style_index(req.style)]
    grid = (cfg.onset_grid or {}).get(style) if req.snap else None
    return to_score(clean(binarize(probs, req), req.min_steps, grid), req, style, cfg.meter)


def sample(model: MuseGAN, style: str | int, bars: int, seed: int, **options: Any) -> Score:
    """One clip of ``bars`` bars; ``options`` are the other ``GANRequest`` fields."""
    return sample_many(model, [GANRequest(style, bars, seed, **options)])[0]


def sample_rolls(model: MuseGAN, n: int, style: str | int, seed: int,
                 threshold: float = 0.5) -> np.ndarray:
    """``n`` binarised phrases (n, P, TRACKS, STEPS, PITCHES), uncleaned, for evaluation."""
    reqs = [GANRequest(style, model.config.phrase_bars, seed * 100_003 + i, threshold=threshold)
            for i in range(n)]
    return np.stack([binarize(p, r) for p, r in zip(sample_probabilities(model, reqs), reqs,
                                                       strict=True)])

