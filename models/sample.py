"""Grammar-constrained, batched sampling with temperature and top-k for the sequence models.

A ``Sampler`` steps the model once for all its rows (sequences). Each row has its own
``Constraint`` (plan, length, primer), numpy RNG, temperature, top-k and logit bias, so a row's
output depends only on its own seed, whatever it is batched with; rows join and leave between
any two steps (continuous batching: a request arriving mid-batch need not wait for it, and a
short one is handed back as soon as it ends). The per-token work is array work over the whole
batch: masks from the constraints' MaskSpecs, bias, temperature, top-k and the inverse-CDF draw,
in float64 numpy from the model's logits, row by row the same arithmetic as for a row alone,
which keeps results reproducible for a given seed and checkpoint on one machine.

Style guidance (a row's ``guidance`` w > 0), after classifier-free guidance: the row has a twin
in the batch that reads the mean of the learned style embeddings instead of its style and is fed
the row's own tokens; the row samples from ``logits + w * (logits - twin's logits)``, its
style's difference from the average style amplified. The twins sit after the rows in the
model's batch, with their own RNN state; a row alone then costs a batch of two (for the shipped
lstm on one CPU thread, 1.4 times a lone row's step: the weights are read once, but a batch
takes the matrix-matrix path), which is why only the styles that gain from it use it.

Form guidance (``twin="form"``): the same with a twin that reads no echo (the earlier
statement of a returning section, ``cadenza.models.grammar``): what the model learned a return
does to a line, amplified, for the styles whose models bring a phrase back too seldom
(``cadenza.styles`` says which and why), so the model's pull toward the first A becomes
audible. A row with style guidance has no form twin; nor has a row whose form has no
return, or one of a checkpoint without the echo columns.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from cadenza.models.grammar import ECHO_COL, Constraint, masks
from cadenza.models.rnn import SequenceModel, State

log = logging.getLogger(__name__)

BiasFn = Callable[[Constraint], "np.ndarray | None"]
MAX_STEPS = 20_000
TWINS = ("style", "form")


class SamplingStopped(Exception):
    """A row's ``stop()`` said to give up (its caller's deadline passed, or it shut down)."""


@dataclass(eq=False)
class Row:
    """One sequence being sampled; ``tag`` is the caller's handle (e.g. a future)."""

    constraint: Constraint
    rng: np.random.Generator
    temperature: float = 1.0
    top_k: int | None = 24
    bias: BiasFn | None = None
    tag: Any = None
    steps: int = 0
    stop: Callable[[], bool] | None = None  # checked before each step: True ends the row
    # guidance: logits + w * (logits - the twin's), 0 for none; the twin reads the mean style
    # instead of the row's (style guidance) or no echo (form guidance), as ``twin`` says
    guidance: float = 0.0
    twin: str = "style"
    error: BaseException | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.twin not in TWINS:
            raise ValueError(f"a twin is one of {TWINS}, not {self.twin!r}")

    @property
    def tokens(self) -> list[int]:
        return list(self.constraint.tokens)

    @property
    def width(self) -> int:
        """Rows it takes in the model's batch: itself, and with guidance its twin."""
        return 2 if self.guidance > 0 else 1


def choose(logits: np.ndarray, mask: np.ndarray, u: np.ndarray, temperature: np.ndarray,
           top_k: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
    """One token id per row from masked logits (n, V): ``u`` is each row's uniform draw (unused
    where its temperature is ~0: argmax), ``top_k`` 0 for none. Every operation is row-wise, so
    a row gets the same token whatever the other rows are."""
    z = logits.astype(np.float64)
    if bias is not None:
        z += bias
    z[~mask] = -np.inf
    out = np.empty(len(z), dtype=np.int64)
    greedy = temperature <= 1e-6
    if greedy.any():
        out[greedy] = np.argmax(z[greedy], axis=1)
        if greedy.all():
            return out
        rows = np.flatnonzero(~greedy)
        z, mask, u, temperature, top_k = z[rows], mask[rows], u[rows], temperature[rows], \
            top_k[rows]
    else:
        rows = slice(None)
    z /= temperature[:, None]
    allowed = mask.sum(axis=1)
    cut = top_k[(top_k > 0) & (top_k < allowed)]
    for kk in (cut[:1] if (cut == cut[:1]).all() else np.unique(cut)):  # usually one k
        sel = (top_k == kk) & (kk < allowed)
        part = z if sel.all() else z[sel]  # a view of every row, else a copy written back
        # each row's k-th largest among its allowed values: the rest are -inf and k is below
        # the allowed count, so it is the k-th largest of the whole row. One sort of every row
        # took 8 us for 16 rows of 364 here; np.partition of whole rows full of -inf 23 us a
        # row, of each row's allowed values 2 us a row (the same values, one call per row)
        kth = np.sort(part, axis=1)[:, -kk]
        part[part < kth[:, None]] = -np.inf
        if part is not z:
            z[sel] = part
    z -= z.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    # inverse CDF with one uniform draw: cheaper than rng.choice and stable across numpy
    # versions; counting cdf <= u is searchsorted(cdf, u, side="right") for every row at once
    below = (np.cumsum(p, axis=1) <= u[:, None]).sum(axis=1)
    out[rows] = np.minimum(below, z.shape[1] - 1)
    return out


def _take(state: State, keep: torch.Tensor) -> State:
    """The state of the rows ``keep`` (dim 1 is the batch in an RNN state)."""
    if state is None:
        return None
    if isinstance(state, tuple):
        return tuple(s.index_select(1, keep) for s in state)  # type: ignore[return-value]
    return state.index_select(1, keep)


def _grow(state: State, n: int) -> State:
    """Zero state for ``n`` new rows after the current ones (what ``None`` means to the RNN)."""
    if state is None or n == 0:
        return state
    if isinstance(state, tuple):
        return tuple(torch.cat([s, s.new_zeros(s.shape[0], n, s.shape[2])], 1)
                     for s in state)  # type: ignore[return-value]
    return torch.cat([state, state.new_zeros(state.shape[0], n, state.shape[2])], 1)


def _join(a: State, b: State, rows_b: int) -> State:
    """Two batches' states as one (rows of ``a``, then the ``rows_b`` of ``b``); None is a
    zero state (before a batch's first step, or twins added since)."""
    if a is None:
        return None  # nothing stepped yet: the twins are new too
    if b is None:
        return _grow(a, rows_b)
    if isinstance(a, tuple):
        return tuple(torch.cat([x, y], 1) for x, y in zip(a, b, strict=True))  # type: ignore[arg-type,return-value]
    return torch.cat([a, b], 1)  # type: ignore[list-item]


def _split(state: State, n: int) -> tuple[State, State]:
    """``_join`` undone: the first ``n`` rows, the rest."""
    if isinstance(state, tuple):
        return (tuple(s[:, :n] for s in state),  # type: ignore[return-value]
                tuple(s[:, n:] for s in state))
    return state[:, :n], state[:, n:]  # type: ignore[index]


class Sampler:
    """Rows sampled together; ``add`` rows at any time, ``step`` until ``rows`` is empty.

    ``lock`` (e.g. the checkpoint's) is held only around each model step, so other users of
    the model get in between steps.
    """

    def __init__(self, model: SequenceModel, *, device: torch.device | str = "cpu",
                 lock: Any = None, max_steps: int = MAX_STEPS) -> None:
        self._step = model.eval().stepper()  # the weights stay as they are while we sample
        self.device = torch.device(device)
        self.lock = lock if lock is not None else contextlib.nullcontext()
        self.max_steps = max_steps
        self.rows: list[Row] = []
        self._state: State = None
        self._tokens = np.zeros(0, dtype=np.int64)
        self._nf = self._step.n_feat  # the feature columns this checkpoint reads
        self._offsets = self._step.offsets.cpu().numpy()  # of its joined embedding table
        self._feats = np.zeros((0, self._nf), dtype=np.int64)
        self._twin_of: list[int] = []  # per twin, the index of its row in ``rows``
        self._twin_state: State = None

    @property
    def width(self) -> int:
        """Rows in the model's batch at the next step: the rows and their guidance twins."""
        return len(self.rows) + len(self._twin_of)

    def add(self, row: Row) -> None:
        """Start ``row``: its first (forced) token is fed now, the model sees it next step."""
        c = row.constraint
        tok = c.forced()
        c.feed(tok)
        self.rows.append(row)
        self._tokens = np.append(self._tokens, tok)
        self._feats = np.vstack([self._feats, np.asarray(c.features()[: self._nf], dtype=np.int64)])
        self._state = _grow(self._state, 1)
        if row.width == 2:
            self._twin_of.append(len(self.rows) - 1)
            self._twin_state = _grow(self._twin_state, 1)

    def step(self) -> list[Row]:
        """One model step for every row; returns the rows that ended (done, or failed with
        ``row.error`` set), already removed from the batch."""
        if not self.rows:
            return []
        logits_np = self._logits()
        rows = self.rows
        n = len(rows)
        new = np.zeros(n, dtype=np.int64)
        failed: dict[int, BaseException] = {}
        picks, specs = [], []
        for i, row in enumerate(rows):
            row.steps += 1
            if row.stop is not None and row.stop():
                failed[i] = SamplingStopped()
                continue
            try:
                tok = row.constraint.forced()
                if tok is None:
                    specs.append(row.constraint.allowed())
                    picks.append(i)
                else:
                    new[i] = tok
            except Exception as e:  # noqa: BLE001 - a broken row must not take the batch down
                failed[i] = e
        if picks:
            new[picks] = self._choose(logits_np, picks, specs)
        for i, row in enumerate(rows):
            if i in failed:
                continue
            c = row.constraint
            try:
                c.feed(int(new[i]))
                self._feats[i] = c.features()[: self._nf]
            except Exception as e:  # noqa: BLE001
                failed[i] = e
                continue
            if not c.done and row.steps >= self.max_steps:
                failed[i] = RuntimeError(f"sampling did not finish in {self.max_steps} steps")
        self._tokens = new
        ended = [i for i, row in enumerate(rows) if i in failed or row.constraint.done]
        for i, e in failed.items():
            rows[i].error = e
        if ended:
            gone = set(ended)
            keep = [i for i in range(n) if i not in gone]
            self.rows = [rows[i] for i in keep]
            self._tokens = self._tokens[keep]
            self._feats = self._feats[keep]
            self._state = _take(self._state, torch.tensor(keep, device=self.device)) \
                if keep else None
            if self._twin_of:
                new_index = {old: j for j, old in enumerate(keep)}
                twins = [t for t, i in enumerate(self._twin_of) if i in new_index]
                self._twin_of = [new_index[self._twin_of[t]] for t in twins]
                self._twin_state = _take(self._twin_state,
                                         torch.tensor(twins, device=self.device)) \
                    if twins else None
        return [rows[i] for i in ended]

    def _logits(self) -> np.ndarray:
        """One model step for the rows (and their twins, stepped in the same batch); the
        rows' logits, guided where they have a twin."""
        tokens, feats, n = self._tokens, self._feats, len(self.rows)
        twins, state, average = self._twin_of, self._state, None
        if twins:
            tokens = np.concatenate([tokens, tokens[twins]])
            twin_feats = feats[twins]
            formless = [t for t, i in enumerate(twins) if self.rows[i].twin == "form"]
            # (an empty slice for a checkpoint without the echo columns)
            twin_feats[formless, ECHO_COL:] = 0
            feats = np.concatenate([feats, twin_feats])
            state = _join(state, self._twin_state, len(twins))
            styled = [n + t for t, i in enumerate(twins) if self.rows[i].twin == "style"]
            average = torch.tensor(styled, dtype=torch.long, device=self.device) \
                if styled else None
        # the table rows in numpy: every torch call releases the GIL, and the composing
        # threads may keep it for a switch interval before this thread gets it back
        idx = torch.from_numpy(np.concatenate([tokens[:, None], feats], 1) + self._offsets)
        if self.device.type != "cpu":
            idx = idx.to(self.device)
        with self.lock, torch.no_grad():
            logits, state = self._step.indexed(idx, state, average)
        if twins:
            self._state, self._twin_state = _split(state, n)
        else:
            self._state = state
        out = logits.float().cpu().numpy()
        if not twins:
            return out
        w = np.array([self.rows[i].guidance for i in twins], dtype=np.float32)[:, None]
        own = out[twins]
        out[twins] = own + w * (own - out[n:])
        return out[:n]

    def _choose(self, logits: np.ndarray, picks: list[int],
                specs: list[tuple[int, ...]]) -> np.ndarray:
        rows = [self.rows[i] for i in picks]
        size = logits.shape[1]
        bias = None
        for j, row in enumerate(rows):
            b = row.bias(row.constraint) if row.bias is not None else None
            if b is not None:
                if bias is None:
                    bias = np.zeros((len(rows), size))
                bias[j] = b
        temperature = np.array([r.temperature for r in rows], dtype=np.float64)
        top_k = np.array([r.top_k or 0 for r in rows], dtype=np.int64)
        # one draw per sampled token, from the row's own generator (none for argmax)
        u = np.array([r.rng.random() if t > 1e-6 else 0.0 for r, t in zip(rows, temperature,
                                                                           strict=True)])
        return choose(logits[picks], masks(specs, size), u, temperature, top_k, bias)


def run(model: SequenceModel, rows: Sequence[Row], *, device: torch.device | str = "cpu",
        max_steps: int = MAX_STEPS) -> list[list[int]]:
    """Sample ``rows`` together to completion; the first row error is raised."""
    sampler = Sampler(model, device=device, max_steps=max_steps)
    for row in rows:
        sampler.add(row)
    while sampler.rows:
        for row in sampler.step():
            if row.error is not None:
                raise row.error
    return [row.tokens for row in rows]
