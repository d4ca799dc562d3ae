"""Style- and chord-conditioned recurrent melody model (LSTM, GRU or vanilla RNN cell).

Every step sees the token embedding plus embeddings of the side features from
``cadenza.models.grammar`` (style, meter, current chord, position in bar, bars left), so
conditioning never fades over long sequences and the chord plan steers the melody.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from cadenza.music.tokens import PAD, Vocab

CELLS = ("lstm", "gru", "rnn")


@dataclass
class RNNConfig:
    vocab_size: int
    feature_sizes: tuple[int, ...]
    cell: str = "lstm"
    n_layer: int = 2
    n_embd: int = 128
    n_hidden: int = 256
    dropout: float = 0.1

    def __post_init__(self) -> None:
        if self.cell not in CELLS:
            raise ValueError(f"cell must be one of {CELLS}, got {self.cell!r}")
        self.feature_sizes = tuple(int(s) for s in self.feature_sizes)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["feature_sizes"] = list(self.feature_sizes)
        return d


State = torch.Tensor | tuple[torch.Tensor, torch.Tensor] | None


class SequenceModel(nn.Module):
    def __init__(self, config: RNNConfig) -> None:
        super().__init__()
        self.config = config
        self.tok_emb = nn.Embedding(config.vocab_size, config.n_embd)
        self.feat_emb = nn.ModuleList(nn.Embedding(n, config.n_embd) for n in config.feature_sizes)
        self.drop = nn.Dropout(config.dropout)
        rnn_cls = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[config.cell]
        kwargs = {"nonlinearity": "tanh"} if config.cell == "rnn" else {}
        self.rnn = rnn_cls(
            config.n_embd,
            config.n_hidden,
            num_layers=config.n_layer,
            batch_first=True,
            dropout=config.dropout if config.n_layer > 1 else 0.0,
            **kwargs,
        )
        self.head = nn.Linear(config.n_hidden, config.vocab_size)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def _embed(self, x: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        h = self.tok_emb(x)
        for i, emb in enumerate(self.feat_emb):
            h = h + emb(features[..., i])
        return self.drop(h)

    def forward(
        self,
        x: torch.Tensor,
        targets: torch.Tensor | None = None,
        *,
        features: torch.Tensor,
        state: State = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x, targets: (B, T) token ids; features: (B, T, F). Returns (logits (B,T,V), loss)."""
        out, _ = self.rnn(self._embed(x, features), state)
        logits = self.head(self.drop(out))
        loss = None
        if targets is not None:
            loss = F.cross_entropy(
                logits.reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=PAD
            )
        return logits, loss

    @torch.no_grad()
    def step(
        self, x: torch.Tensor, features: torch.Tensor, state: State = None
    ) -> tuple[torch.Tensor, State]:
        """One step for sampling: x (B,), features (B, F) -> logits (B, V), new state.

        The same operations as ``forward`` on one position, called as functions: the module
        call machinery cost a tenth of a step for the eight small modules.
        """
        h = F.embedding(x[:, None], self.tok_emb.weight)
        for i, emb in enumerate(self.feat_emb):
            h = h + F.embedding(features[:, None, i], emb.weight)
        if self.training:
            h = self.drop(h)
        out, state = self.rnn(h, state)
        return F.linear(out[:, -1], self.head.weight, self.head.bias), state


def build(payload: dict) -> tuple[SequenceModel, Vocab]:
    """An untrained model shaped by a 'rnn' checkpoint, with its vocabulary
    (``cadenza.models.families``)."""
    return SequenceModel(RNNConfig(**payload["config"])), Vocab(tuple(payload["styles"]))
