"""examples/prequant_finetune.py: only the masked entries move, weight decay included.

A tiny stand-in encoder (bag of word vectors, then a projection) replaces MiniLM so the test runs
in a second; `train_masked` does not know the difference. Skipped without torch.
"""
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from prequant_finetune import TrainConfig, load_task, pair_loss, roc_auc, train_masked  # noqa: E402

TASK = Path(__file__).resolve().parents[1] / "data" / "who_did_what.jsonl"


class TinyEncoder:
    """Word vectors averaged with position weights, then projected: order-aware, so trainable."""

    def __init__(self, sentences):
        words = sorted({w for s in sentences for w in s.lower().rstrip(".").split()})
        self.vocab = {w: i + 1 for i, w in enumerate(words)}

    def batch(self, sentences):
        seqs = [[self.vocab.get(w, 0) for w in s.lower().rstrip(".").split()] for s in sentences]
        length = max(len(s) for s in seqs)
        ids = torch.zeros((len(seqs), length), dtype=torch.long)
        mask = torch.zeros((len(seqs), length))
        for row, seq in enumerate(seqs):
            ids[row, : len(seq)] = torch.tensor(seq)
            mask[row, : len(seq)] = 1
        return ids, mask

    def embed(self, w, ids, mask):
        h = w["emb"][ids] * w["pos"][: ids.shape[1]][None] * mask[..., None]
        return torch.nn.functional.normalize(h.flatten(1) @ w["proj"][:, : h.shape[1] * h.shape[2]].T, dim=-1)


def test_only_masked_entries_move_and_the_loss_falls():
    train, _ = load_task(TASK)
    train = train[:128]
    model = TinyEncoder([s for a, b, _ in train for s in (a, b)])
    gen = torch.Generator().manual_seed(0)
    weights = {"emb": torch.randn(len(model.vocab) + 1, 8, generator=gen),
               "pos": torch.randn(16, 8, generator=gen), "proj": torch.randn(8, 128, generator=gen) * 0.1}
    masks = {"proj": torch.rand(8, 128, generator=gen) < 0.1, "pos": torch.rand(16, 8, generator=gen) < 0.1}

    def loss_of(w):
        ids, mask = model.batch([a for a, _, _ in train] + [b for _, b, _ in train])
        e = model.embed(w, ids, mask)
        return float(pair_loss((e[: len(train)] * e[len(train):]).sum(-1), torch.tensor([float(l) for *_, l in train])))

    # A large weight decay: with AdamW's own decay the frozen entries would shrink visibly.
    tuned = train_masked(model, weights, masks, train, TrainConfig(epochs=3, batch_size=32, lr=1e-2, weight_decay=0.5),
                         log=lambda _: None)
    for name, mask in masks.items():
        assert torch.equal(tuned[name][~mask], weights[name][~mask]), name   # frozen: bit for bit
        assert not torch.equal(tuned[name][mask], weights[name][mask]), name  # trained: moved
    assert torch.equal(tuned["emb"], weights["emb"])                          # untouched tensor
    assert loss_of(tuned) < loss_of(weights)


def test_pair_loss_and_auc_on_known_values():
    labels = torch.tensor([1.0, 0.0])
    assert float(pair_loss(torch.tensor([0.9, 0.1]), labels)) < float(pair_loss(torch.tensor([0.1, 0.9]), labels))
    assert float(pair_loss(torch.tensor([0.5, 0.5]), torch.tensor([1.0, 1.0]))) == 0.0   # no (different, same) pair
    import numpy as np
    assert roc_auc(np.array([0.9, 0.8, 0.1]), np.array([1, 0, 0])) == 1.0
    assert roc_auc(np.array([0.5, 0.5]), np.array([1, 0])) == 0.5
