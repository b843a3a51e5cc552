"""A small numpy BERT encoder for sentence embeddings (all-MiniLM-L6-v2 and any BertModel).

The forward pass is the standard post-LayerNorm BERT encoder (Devlin et al., 2018):

    h0  = LayerNorm(word[ids] + position[0..T) + token_type[0])
    for each layer:
        a   = softmax(Q Kᵀ / sqrt(d_head) + mask) V          (per head; padded keys masked out)
        h   = LayerNorm(h + a Wₒᵀ + bₒ)
        h   = LayerNorm(h + GELU(h W₁ᵀ + b₁) W₂ᵀ + b₂)        (GELU with the exact erf)

followed by the sentence-transformers head of this model (modules.json: Transformer → Pooling →
Normalize): the mean of the last hidden states over real (non-padding) tokens, then L2
normalisation. Linear weights are stored PyTorch-style as ``[out, in]``.

Everything runs in float64, so the only error left in a comparison between two weight sets is the
error of the weights themselves.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np

try:  # scipy's erf is vectorised C; fall back to math.erf through np.vectorize.
    from scipy.special import erf as _erf
except ImportError:  # pragma: no cover - scipy is optional
    _erf = np.vectorize(math.erf, otypes=[np.float64])


@dataclass(frozen=True)
class BertConfig:
    hidden_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int
    layer_norm_eps: float
    max_positions: int

    @classmethod
    def from_json(cls, path: str | Path) -> "BertConfig":
        cfg = json.loads(Path(path).read_text())
        if cfg.get("hidden_act", "gelu") != "gelu":
            raise ValueError(f"{path}: hidden_act {cfg['hidden_act']!r} unsupported (only exact gelu)")
        if cfg.get("position_embedding_type", "absolute") != "absolute":
            raise ValueError(f"{path}: only absolute position embeddings are supported")
        return cls(
            hidden_size=cfg["hidden_size"],
            num_layers=cfg["num_hidden_layers"],
            num_heads=cfg["num_attention_heads"],
            intermediate_size=cfg["intermediate_size"],
            layer_norm_eps=cfg["layer_norm_eps"],
            max_positions=cfg["max_position_embeddings"],
        )


def gelu(x: np.ndarray) -> np.ndarray:
    """GELU with the exact Gaussian CDF: x · Φ(x) = x · (1 + erf(x/√2)) / 2."""
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def layer_norm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


class BertEncoder:
    """Sentence embeddings from a BERT weight dictionary (names as in HF ``BertModel``)."""

    def __init__(self, config: BertConfig, weights: Mapping[str, np.ndarray]) -> None:
        self.config = config
        self.w = {k: np.asarray(v, dtype=np.float64) for k, v in weights.items()
                  if not k.endswith("position_ids")}
        missing = [k for k in self._required_names() if k not in self.w]
        if missing:
            raise KeyError(f"weights lack {len(missing)} BERT tensors, e.g. {missing[0]!r}")

    def _required_names(self) -> list[str]:
        names = ["embeddings.word_embeddings.weight", "embeddings.position_embeddings.weight",
                 "embeddings.token_type_embeddings.weight", "embeddings.LayerNorm.weight",
                 "embeddings.LayerNorm.bias"]
        for i in range(self.config.num_layers):
            p = f"encoder.layer.{i}."
            for sub in ("attention.self.query", "attention.self.key", "attention.self.value",
                        "attention.output.dense", "intermediate.dense", "output.dense"):
                names += [p + sub + ".weight", p + sub + ".bias"]
            for ln in ("attention.output.LayerNorm", "output.LayerNorm"):
                names += [p + ln + ".weight", p + ln + ".bias"]
        return names

    def _linear(self, x: np.ndarray, name: str) -> np.ndarray:
        # One 2-D GEMM over all tokens: batched 3-D matmul issues a small GEMM per sentence,
        # which is far slower with a threaded BLAS on a busy machine.
        flat = x.reshape(-1, x.shape[-1]) @ self.w[name + ".weight"].T + self.w[name + ".bias"]
        return flat.reshape(*x.shape[:-1], flat.shape[-1])

    def hidden_states(self, ids: np.ndarray, mask: np.ndarray, layer_inputs: list | None = None) -> np.ndarray:
        """Last-layer hidden states ``[batch, T, hidden]`` for padded ``ids`` and its 0/1 ``mask``
        (``layer_inputs``, when given, receives each layer's input hidden states)."""
        cfg = self.config
        batch, length = ids.shape
        if length > cfg.max_positions:
            raise ValueError(f"sequence length {length} exceeds {cfg.max_positions} positions")
        w = self.w
        h = (w["embeddings.word_embeddings.weight"][ids]
             + w["embeddings.position_embeddings.weight"][:length][None]
             + w["embeddings.token_type_embeddings.weight"][0][None, None])
        h = layer_norm(h, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], cfg.layer_norm_eps)
        for i in range(cfg.num_layers):
            p = f"encoder.layer.{i}."
            if layer_inputs is not None:
                layer_inputs.append(h)
            attn = self.attention_output(h, mask, i)
            h = layer_norm(h + attn, w[p + "attention.output.LayerNorm.weight"],
                           w[p + "attention.output.LayerNorm.bias"], cfg.layer_norm_eps)
            ff = self._linear(gelu(self._linear(h, p + "intermediate.dense")), p + "output.dense")
            h = layer_norm(h + ff, w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"],
                           cfg.layer_norm_eps)
        return h

    def attention_output(self, h: np.ndarray, mask: np.ndarray, i: int) -> np.ndarray:
        """Layer ``i``'s multi-head attention on ``h`` through its output projection (before the
        residual and LayerNorm)."""
        cfg = self.config
        batch, length = mask.shape
        heads = cfg.num_heads
        d_head = cfg.hidden_size // heads
        p = f"encoder.layer.{i}."
        # Additive mask: padded keys get a large negative score, so their softmax weight is 0.
        key_bias = np.where(mask[:, None, None, :] > 0, 0.0, -1e30)

        def split(t: np.ndarray) -> np.ndarray:
            return t.reshape(batch, length, heads, d_head).transpose(0, 2, 1, 3)

        q = split(self._linear(h, p + "attention.self.query"))
        k = split(self._linear(h, p + "attention.self.key"))
        v = split(self._linear(h, p + "attention.self.value"))
        scores = np.einsum("bhqd,bhkd->bhqk", q, k) / math.sqrt(d_head) + key_bias
        scores -= scores.max(axis=-1, keepdims=True)
        probs = np.exp(scores)
        probs /= probs.sum(axis=-1, keepdims=True)
        ctx = np.einsum("bhqk,bhkd->bqhd", probs, v).reshape(batch, length, cfg.hidden_size)
        return self._linear(ctx, p + "attention.output.dense")

    def embed_ids(self, sequences: list[list[int]], pad_id: int = 0) -> np.ndarray:
        """Mean-pooled, L2-normalised embeddings ``[n, hidden]`` for token-id sequences."""
        length = max(len(s) for s in sequences)
        ids = np.full((len(sequences), length), pad_id, dtype=np.int64)
        mask = np.zeros((len(sequences), length), dtype=np.float64)
        for row, seq in enumerate(sequences):
            ids[row, : len(seq)] = seq
            mask[row, : len(seq)] = 1.0
        h = self.hidden_states(ids, mask)
        pooled = (h * mask[..., None]).sum(axis=1) / np.maximum(mask.sum(axis=1, keepdims=True), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return pooled / np.maximum(norms, 1e-12)


class SentenceEmbedder:
    """Tokenizer + encoder: ``embed(sentences)`` → unit vectors, as sentence-transformers gives."""

    def __init__(self, model_dir: str | Path, weights: Mapping[str, np.ndarray] | None = None) -> None:
        from wordpiece import WordPieceTokenizer  # local module, sibling of this file

        model_dir = Path(model_dir)
        self.config = BertConfig.from_json(model_dir / "config.json")
        max_len = 256
        st_cfg = model_dir / "sentence_bert_config.json"
        if st_cfg.exists():
            max_len = int(json.loads(st_cfg.read_text()).get("max_seq_length", max_len))
        self.tokenizer = WordPieceTokenizer.from_tokenizer_json(model_dir / "tokenizer.json", max_length=max_len)
        if weights is None:
            from safetensors.numpy import load_file

            weights = load_file(str(model_dir / "model.safetensors"))
        self.encoder = BertEncoder(self.config, weights)

    def with_weights(self, weights: Mapping[str, np.ndarray]) -> "SentenceEmbedder":
        """The same tokenizer and config over another weight set (e.g. a dequantized one)."""
        clone = object.__new__(SentenceEmbedder)
        clone.config = self.config
        clone.tokenizer = self.tokenizer
        clone.encoder = BertEncoder(self.config, weights)
        return clone

    def embed(self, sentences: list[str], batch_size: int = 32) -> np.ndarray:
        seqs = [self.tokenizer.encode(s) for s in sentences]
        parts = [self.encoder.embed_ids(seqs[i: i + batch_size], self.tokenizer.pad_id)
                 for i in range(0, len(seqs), batch_size)]
        return np.concatenate(parts, axis=0)
