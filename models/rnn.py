"""Style- and chord-conditioned recurrent melody model (LSTM, GRU or vanilla RNN cell).

Every step sees the token embedding plus embeddings of the side features from
``cadenza.models.grammar`` (style, meter, current chord, position in bar, bars left, form, the
previous note's pitch), so conditioning never fades over long sequences, the chord plan steers
the melody and the next interval is relative to a pitch the model is told, not one it recalls.
"""

from __future__ import annotations

from collections.abc import Callable
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
# (rows of the joined embedding table (B, 1 + F), state, average_style rows)
#   -> (logits (B, V), new state)
IndexStep = Callable[[torch.Tensor, State, "torch.Tensor | None"], tuple[torch.Tensor, State]]


@dataclass(frozen=True)
class Stepper:
    """A model's step with its weights looked up (``SequenceModel.stepper``). ``indexed``
    takes the joined table's rows directly: token + ``offsets[0]``, then each of the first
    ``n_feat`` feature columns + its offset, which a caller holding its tokens and features
    in numpy adds up there (a sampler: two fewer torch calls a step, each a chance for the
    composing threads to take the GIL from the batching thread)."""

    indexed: IndexStep
    offsets: torch.Tensor
    n_feat: int

    def __call__(self, x: torch.Tensor, features: torch.Tensor, state: State = None,
                 average_style: torch.Tensor | None = None) -> tuple[torch.Tensor, State]:
        # a checkpoint made before a feature column was added reads the columns it knows
        idx = torch.cat([x[:, None], features[:, : self.n_feat]], 1) + self.offsets
        return self.indexed(idx, state, average_style)


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
        """x, targets: (B, T) token ids; features: (B, T, F). Returns (logits (B,T,V), loss).

        F may exceed the config's feature count: the model reads the first columns (those it
        was trained with; ``cadenza.models.grammar.FEATURES`` only ever grows at the end)."""
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
        self, x: torch.Tensor, features: torch.Tensor, state: State = None,
        average_style: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, State]:
        """One step for sampling: x (B,), features (B, F) -> logits (B, V), new state.

        ``average_style`` (row indices) reads, for those rows, the mean of the learned style
        embeddings instead of their style column: a style-neutral twin of a row, the
        reference that style guidance (``cadenza.models.sample``) steers away from.

        The same arithmetic as ``forward`` on one position, to the bit (tested), at a third of
        the cost for one row: the token and feature embeddings are gathered from one joined
        table in one call, and each layer is one fused cell op (``torch.lstm_cell`` and kin)
        on the RNN's own weights instead of a call of the module, whose argument checks and
        weight bookkeeping cost more than the arithmetic of a single step.
        """
        return self.stepper()(x, features, state, average_style)

    def stepper(self) -> Stepper:
        """``step`` with its weights looked up now, for a caller that steps many times while
        the weights stay as they are (a ``Sampler``, for its lifetime; call it under
        ``torch.no_grad()``). Looking them up (the joined table's validity, the RNN's weight
        lists, module attributes) cost ~35 us of Python a step, a tenth of a lone row's step."""
        table, offsets = self._step_table()
        layers = [tuple(w) for w in self.rnn.all_weights]
        head_w, head_b = self.head.weight, self.head.bias
        n_feat, mean_row = len(self.feat_emb), len(table) - 1
        lstm = self.config.cell == "lstm"
        cell = _CELLS.get(self.config.cell)
        hidden, p_drop = self.rnn.hidden_size, self.rnn.dropout
        drop = self.drop if self.training else None

        def run(idx: torch.Tensor, state: State = None,
                average_style: torch.Tensor | None = None) -> tuple[torch.Tensor, State]:
            if average_style is not None:
                idx[average_style, 1] = mean_row  # the mean style row, after every table
            h = F.embedding(idx, table).sum(1)  # token + every feature, summed in that order
            if drop is not None:
                h = drop(h)
            if state is None:
                zeros = h.new_zeros(len(layers), h.shape[0], hidden)
                state = (zeros, zeros) if lstm else zeros
            if lstm:
                h0s, c0s = state[0].unbind(0), state[1].unbind(0)
            else:
                h0s, c0s = state.unbind(0), ()
            hs, cs = [], []
            for layer, w in enumerate(layers):
                if layer and drop is not None:
                    h = F.dropout(h, p_drop, True)
                if lstm:
                    h, c = torch.lstm_cell(h, (h0s[layer], c0s[layer]), *w)
                    cs.append(c)
                else:
                    h = cell(h, h0s[layer], *w)
                hs.append(h)
            new: State = (torch.stack(hs), torch.stack(cs)) if lstm else torch.stack(hs)
            return F.linear(h, head_w, head_b), new

        return Stepper(run, offsets, n_feat)

    def _step_table(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The token and feature embedding tables joined (rows offset per table) and, last,
        the mean of the learned style rows (row 0, no style, is never trained); rebuilt
        whenever a weight changed: training updates them in place (bumping their version),
        ``.to()`` swaps their storage, loading assigns new parameters."""
        cached = self.__dict__.get("_joined")
        if cached is not None:
            weights, key, table, offsets = cached
            if weights[0] is self.tok_emb.weight and key == _versions(weights):
                return table, offsets
        weights = (self.tok_emb.weight, *(e.weight for e in self.feat_emb))
        sizes = [w.shape[0] for w in weights[:-1]]
        offsets = torch.tensor([0, *sizes], device=weights[0].device).cumsum(0)
        styles = self.feat_emb[0].weight.detach()
        table = torch.cat([*(w.detach() for w in weights), styles[1:].mean(0, keepdim=True)])
        self.__dict__["_joined"] = (weights, _versions(weights), table, offsets)  # not saved
        return table, offsets


def _versions(weights: tuple[torch.Tensor, ...]) -> tuple[tuple[int, int], ...]:
    return tuple((w.data_ptr(), w._version) for w in weights)


_CELLS = {"gru": torch.gru_cell, "rnn": torch.rnn_tanh_cell}


def build(payload: dict) -> tuple[SequenceModel, Vocab]:
    """An untrained model shaped by a 'rnn' checkpoint, with its vocabulary
    (``cadenza.models.families``)."""
    return SequenceModel(RNNConfig(**payload["config"])), Vocab(tuple(payload["styles"]))
