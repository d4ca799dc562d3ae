"""The sampling step's fused path computes what the RNN module computes on one position."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from cadenza.models.rnn import RNNConfig, SequenceModel


def module_step(model: SequenceModel, x: torch.Tensor, features: torch.Tensor, state):  # type: ignore[no-untyped-def]
    """The reference: embeddings summed one table at a time, the nn.LSTM/GRU/RNN module run
    on a sequence of length one, the head."""
    h = F.embedding(x[:, None], model.tok_emb.weight)
    for i, emb in enumerate(model.feat_emb):
        h = h + F.embedding(features[:, None, i], emb.weight)
    out, state = model.rnn(h, state)
    return F.linear(out[:, -1], model.head.weight, model.head.bias), state


@pytest.fixture(autouse=True)
def _onednn_off():  # type: ignore[no-untyped-def]
    """As the sampler runs the step (oneDNN's RNN kernels round differently)."""
    was = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = False
    yield
    torch.backends.mkldnn.enabled = was


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("batch", [1, 4])
def test_step_matches_the_module_bit_for_bit(cell: str, batch: int) -> None:
    torch.manual_seed(0)
    sizes = (3, 5, 7)
    model = SequenceModel(RNNConfig(40, sizes, cell=cell, n_layer=2, n_embd=16,
                                    n_hidden=24)).eval()
    ours = ref = None
    with torch.no_grad():
        for _ in range(12):
            x = torch.randint(0, 40, (batch,))
            f = torch.stack([torch.randint(0, n, (batch,)) for n in sizes], 1)
            got, ours = model.step(x, f, ours)
            want, ref = module_step(model, x, f, ref)
            assert torch.equal(got, want)
    flat = (lambda s: s) if cell != "lstm" else (lambda s: torch.cat(s))
    assert torch.equal(flat(ours), flat(ref))


def test_step_sees_weights_changed_in_place() -> None:
    torch.manual_seed(0)
    model = SequenceModel(RNNConfig(20, (4,), n_layer=1, n_embd=8, n_hidden=8)).eval()
    x, f = torch.tensor([3]), torch.tensor([[1]])
    before, _ = model.step(x, f)
    with torch.no_grad():
        model.tok_emb.weight[3] += 1.0  # what an optimizer step does to a row
    after, _ = model.step(x, f)
    want, _ = module_step(model, x, f, None)
    assert not torch.equal(before, after) and torch.equal(after, want)


def test_a_checkpoint_from_before_a_new_feature_column_reads_the_columns_it_knows() -> None:
    """FEATURES only grows at the end: a model with fewer feature tables ignores the rest,
    in forward and in step alike (the shipped checkpoints predate prev_pitch)."""
    from cadenza.models.grammar import feature_sizes
    from cadenza.music.tokens import Vocab

    v = Vocab()
    torch.manual_seed(0)
    old = SequenceModel(RNNConfig(len(v), feature_sizes(v)[:-1], n_layer=1, n_embd=8,
                                  n_hidden=16, dropout=0.0)).eval()
    x = torch.randint(0, len(v), (2, 5))
    full = torch.stack([torch.randint(0, n, (2, 5)) for n in feature_sizes(v)], -1)
    known = full[..., :-1]
    assert torch.equal(old(x, features=full)[0], old(x, features=known)[0])
    a, _ = old.step(x[:, 0], full[:, 0])
    b, _ = old.step(x[:, 0], known[:, 0])
    assert torch.equal(a, b)


def test_average_style_rows_read_the_mean_of_the_learned_styles() -> None:
    """Style guidance's neutral twin: the style column is replaced by the mean of the style
    rows the model learned (row 0, no style, never trained, is left out)."""
    torch.manual_seed(0)
    sizes = (4, 5)  # three styles + "none"
    model = SequenceModel(RNNConfig(30, sizes, n_layer=2, n_embd=8, n_hidden=16)).eval()
    x = torch.tensor([3, 3])
    f = torch.tensor([[2, 1], [2, 1]])
    got, _ = model.step(x, f, None, torch.tensor([1]))
    mean = model.feat_emb[0].weight[1:].mean(0)
    h = model.tok_emb.weight[3] + mean + model.feat_emb[1].weight[1]
    out, _ = model.rnn(h[None, None], None)
    want = F.linear(out[:, -1], model.head.weight, model.head.bias)[0]
    assert torch.allclose(got[1], want, atol=1e-5)
    plain, _ = model.step(x[:1], f[:1])
    assert torch.allclose(got[0], plain[0], atol=1e-6)  # the other row: its own style
    assert not torch.allclose(got[1], plain[0], atol=1e-3)


def test_the_indexed_step_with_rows_added_up_in_numpy_is_the_step() -> None:
    """The sampler adds each column's offset into the joined table in numpy and calls
    ``Stepper.indexed``: the same logits and state as the step on tokens and features."""
    import numpy as np

    torch.manual_seed(1)
    sizes = (3, 5, 7)
    model = SequenceModel(RNNConfig(40, sizes, n_layer=2, n_embd=16, n_hidden=24)).eval()
    step = model.stepper()
    offsets = step.offsets.numpy()
    assert step.n_feat == len(sizes) and len(offsets) == 1 + len(sizes)
    rng = np.random.default_rng(0)
    a = b = None
    with torch.no_grad():
        for _ in range(6):
            x = rng.integers(0, 40, 4)
            f = np.stack([rng.integers(0, n, 4) for n in sizes], 1)
            want, a = step(torch.from_numpy(x), torch.from_numpy(f), a)
            got, b = step.indexed(torch.from_numpy(np.concatenate([x[:, None], f], 1)
                                                   + offsets), b)
            assert torch.equal(got, want)
    assert torch.equal(torch.cat(a), torch.cat(b))
