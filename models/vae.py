"""MusicVAE-style melody VAE: bidirectional LSTM encoder, LSTM decoder, spherical interpolation.

Input is a two-bar melody as 32 sixteenth-step classes (``cadenza.music.steps``). The encoder's
final states give the posterior mean and log-variance of ``z``; the decoder starts from ``tanh(W
z)`` and sees ``z`` and the previous step at every step (teacher forcing in training). Sampling a
new melody draws ``z`` from the prior; blending two seeds decodes points on the great circle between
their codes (``slerp``).

It is a conditional VAE: a style embedding joins the encoder's and the decoder's inputs (and the
decoder's initial state), so ``z`` need not carry the style and a code drawn from the prior
decodes in the style asked for. ``config.styles`` lists them; index 0 of the embedding means
"no style" (checkpoints from before styles have none).

It is chord-conditioned when ``config.chord_dim`` is set: the decoder (and, with
``encoder_chords``, the encoder) reads beside each step's input the chord sounding at that
step (``cadenza.music.steps.chords_to_steps``: pitch classes and root), so a melody drawn from
the prior follows a given chord plan, the chord model's ii-V and 12-bar changes included.
All-zero features mean "no chord" (training drops a share of windows' chords to teach it;
blends read their seeds' chords). Checkpoints from before it have none.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from cadenza.music.steps import CHORD_FEATURES, HOLD, N_CLASSES, REST, SEG_STEPS


@dataclass
class VAEConfig:
    n_classes: int = N_CLASSES
    seg_steps: int = SEG_STEPS
    n_embd: int = 64
    enc_hidden: int = 256
    dec_hidden: int = 384
    n_latent: int = 64
    dropout: float = 0.1
    beta: float = 0.3  # KL weight after warm-up
    free_bits: float = 64.0  # nats of KL not penalised: room for the code to carry the melody
    styles: tuple[str, ...] = ()
    style_dim: int = 16
    chord_dim: int = CHORD_FEATURES  # chord features the decoder reads per step (0: none)
    # the encoder reads them too, so the code keeps what the line adds to its chords
    encoder_chords: bool = True

    def __post_init__(self) -> None:
        self.styles = tuple(self.styles)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["styles"] = list(self.styles)
        return d

    def style_index(self, style: str | None) -> int:
        """1 + the style's position, or 0 (no style) for None or a style it never saw."""
        return 1 + self.styles.index(style) if style in self.styles else 0


class MelodyVAE(nn.Module):
    def __init__(self, config: VAEConfig) -> None:
        super().__init__()
        c = self.config = config
        self.emb = nn.Embedding(c.n_classes + 1, c.n_embd)  # last id = "start" token
        s = c.style_dim if c.styles else 0
        self.style_emb = nn.Embedding(len(c.styles) + 1, s) if s else None
        enc_chords = c.chord_dim if c.encoder_chords else 0
        self.encoder = nn.LSTM(c.n_embd + s + enc_chords, c.enc_hidden, batch_first=True,
                               bidirectional=True)
        self.to_mu = nn.Linear(2 * c.enc_hidden, c.n_latent)
        self.to_logvar = nn.Linear(2 * c.enc_hidden, c.n_latent)
        self.z_to_state = nn.Linear(c.n_latent + s, 2 * c.dec_hidden)
        self.decoder = nn.LSTM(c.n_embd + c.n_latent + s + c.chord_dim, c.dec_hidden,
                               batch_first=True)
        self.drop = nn.Dropout(c.dropout)
        self.head = nn.Linear(c.dec_hidden, c.n_classes)

    @property
    def start_id(self) -> int:
        return self.config.n_classes

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def _style(self, style: torch.Tensor | None, b: int, device: torch.device
               ) -> torch.Tensor | None:
        """(B, style_dim) embeddings of style ids (0 = none), or None for a style-less model."""
        if self.style_emb is None:
            return None
        if style is None:
            style = torch.zeros(b, dtype=torch.long, device=device)
        return self.style_emb(style)

    def _chords(self, chords: torch.Tensor | None, b: int, t: int, device: torch.device
                ) -> torch.Tensor | None:
        """(B, T, chord_dim) chord features, zeros (no chord) when not given; None for a model
        without chords."""
        if not self.config.chord_dim:
            return None
        if chords is None:
            return torch.zeros(b, t, self.config.chord_dim, device=device)
        return chords.to(device=device, dtype=torch.float32)

    @staticmethod
    def _with(x: torch.Tensor, extra: torch.Tensor | None) -> torch.Tensor:
        """Concatenate a per-sequence vector to every step of (B, T, D) (or to (B, D))."""
        if extra is None:
            return x
        if x.dim() == 3:
            extra = extra[:, None, :].expand(-1, x.size(1), -1)
        return torch.cat([x, extra], dim=-1)

    def encode(self, x: torch.Tensor, style: torch.Tensor | None = None,
               chords: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, T) step classes (and style ids (B,), chord features (B, T, chord_dim)) ->
        (mu, logvar), each (B, n_latent)."""
        s = self._style(style, x.size(0), x.device)
        inp = self._with(self.emb(x), s)
        if self.config.encoder_chords:
            ch = self._chords(chords, x.size(0), x.size(1), x.device)
            if ch is not None:
                inp = torch.cat([inp, ch], dim=-1)
        _, (h, _) = self.encoder(inp)
        h = torch.cat([h[0], h[1]], dim=-1)
        return self.to_mu(h), self.to_logvar(h).clamp(-10, 6)

    def _init_state(self, z: torch.Tensor, s: torch.Tensor | None
                    ) -> tuple[torch.Tensor, torch.Tensor]:
        h, c = torch.tanh(self.z_to_state(self._with(z, s))).chunk(2, dim=-1)
        return h[None].contiguous(), c[None].contiguous()

    def decode_logits(self, z: torch.Tensor, x: torch.Tensor,
                      style: torch.Tensor | None = None,
                      chords: torch.Tensor | None = None) -> torch.Tensor:
        """Teacher-forced logits (B, T, C) for targets x given z (and style ids (B,), chord
        features (B, T, chord_dim))."""
        s = self._style(style, x.size(0), x.device)
        ch = self._chords(chords, x.size(0), x.size(1), x.device)
        start = torch.full((x.size(0), 1), self.start_id, dtype=x.dtype, device=x.device)
        inp = self.drop(self.emb(torch.cat([start, x[:, :-1]], dim=1)))
        zs = z[:, None, :].expand(-1, x.size(1), -1)
        inp = self._with(torch.cat([inp, zs], dim=-1), s)
        if ch is not None:
            inp = torch.cat([inp, ch], dim=-1)
        out, _ = self.decoder(inp, self._init_state(z, s))
        return self.head(self.drop(out))

    def forward(
        self, x: torch.Tensor, targets: torch.Tensor | None = None, *, beta: float | None = None,
        style: torch.Tensor | None = None, chords: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x (B, T) -> (logits (B, T, C), loss = reconstruction NLL + beta * max(KL, free bits))."""
        mu, logvar = self.encode(x, style, chords)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if self.training else mu
        logits = self.decode_logits(z, x, style, chords)
        if targets is None:
            return logits, None
        rec = F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1),
                              reduction="sum") / x.size(0)
        kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=-1).mean()
        b = self.config.beta if beta is None else beta
        loss = rec + b * torch.clamp(kl, min=self.config.free_bits)
        self.last_stats = {"rec": float(rec.detach()), "kl": float(kl.detach())}
        return logits, loss

    @torch.no_grad()
    def decode(
        self, z: torch.Tensor, *, temperature: float = 0.0,
        generator: torch.Generator | None = None, style: torch.Tensor | None = None,
        chords: torch.Tensor | None = None, bias: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Autoregressive decoding: (B, n_latent) (and chord features (B, T, chord_dim)) ->
        (B, T) step classes (argmax at T=0). ``bias`` (T, N_CLASSES) is added to each step's
        logits before the temperature, as the sequence models' sampler adds its bias. The
        draws are made on ``generator``'s device (a CPU generator gives the same random
        stream whether the model runs on the CPU or on CUDA)."""
        b = z.size(0)
        s = self._style(style, b, z.device)
        ch = self._chords(chords, b, self.config.seg_steps, z.device)
        h0, c0 = self._init_state(z, s)
        h, c = h0[0], c0[0]
        # one fused cell op a step on the decoder's own weights, not a call of the nn.LSTM:
        # its one-step calls went through oneDNN's RNN kernel, 325 us a step here against
        # ~40 for the cell (an 8-bar VAE clip's melody 103 ms -> 29). The cell is what the
        # module computes on PyTorch's own kernels, to the bit (tested); oneDNN's differed
        # from it by rounding (1e-7 in the logits): the shipped VAE's MIDI stayed the same in
        # 144 clips (six styles, 8-32 bars) and the vae pins hold
        (w_ih, w_hh, b_ih, b_hh), = self.decoder.all_weights
        tok = torch.full((b,), self.start_id, dtype=torch.long, device=z.device)
        if bias is not None:  # beside the logits, wherever the head computes them
            bias = bias.to(self.head.weight.device)
        out = []
        for t in range(self.config.seg_steps):
            inp = self._with(torch.cat([self.emb(tok), z], dim=-1), s)
            if ch is not None:
                inp = torch.cat([inp, ch[:, t]], dim=-1)
            h, c = torch.lstm_cell(inp, (h, c), w_ih, w_hh, b_ih, b_hh)
            logits = self.head(h)
            if bias is not None:
                logits = logits + bias[t]
            if t == 0:
                logits[:, HOLD] = -1e9  # a segment starts with a note or an explicit rest
            if temperature <= 0:
                tok = logits.argmax(-1)
            else:
                probs = F.softmax(logits / temperature, dim=-1)
                if generator is not None and generator.device != probs.device:
                    probs = probs.to(generator.device)
                tok = torch.multinomial(probs, 1, generator=generator)[:, 0].to(z.device)
            out.append(tok)
        return torch.stack(out, dim=1)


def slerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """Spherical interpolation between latent codes (falls back to lerp when nearly parallel)."""
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 or nb == 0:
        return (1 - t) * a + t * b
    cos = float(np.clip(np.dot(a / na, b / nb), -1.0, 1.0))
    omega = np.arccos(cos)
    if omega < 1e-4:
        return (1 - t) * a + t * b
    return (np.sin((1 - t) * omega) * a + np.sin(t * omega) * b) / np.sin(omega)


@torch.no_grad()
def reconstruction_accuracy(model: MelodyVAE, x: torch.Tensor,
                            style: torch.Tensor | None = None,
                            chords: torch.Tensor | None = None) -> dict[str, float]:
    """Greedy decode from the posterior mean: per-step accuracy and per-note-onset accuracy."""
    model.eval()
    mu, _ = model.encode(x, style, chords)
    y = model.decode(mu, style=style, chords=chords)
    correct = (y == x).float()
    onsets = x >= 2
    return {
        "step_accuracy": float(correct.mean()),
        "onset_accuracy": float(correct[onsets].mean()) if onsets.any() else float("nan"),
        "rest_accuracy": float(correct[x == REST].mean()) if (x == REST).any() else float("nan"),
    }


def build(payload: dict) -> tuple[MelodyVAE, None]:
    """An untrained model shaped by a 'vae' checkpoint (``cadenza.models.families``)."""
    # checkpoints from before chord conditioning have no chord_dim: they read no chords
    # (and those from before the encoder read them have no encoder_chords)
    return MelodyVAE(VAEConfig(**{"chord_dim": 0, "encoder_chords": False,
                                  **payload["config"]})), None
