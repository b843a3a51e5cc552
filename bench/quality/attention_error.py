"""The error BoA minimises, measured: per layer, the attention output's relative error when only
that layer's query, key and value projections are quantized, on the fp32 model's own inputs to the
layer (the evaluation sentences), averaged over the layers.

    err_i = Σ ‖MHA_i(h_i; Ŵ_q, Ŵ_k, Ŵ_v, W_o) − MHA_i(h_i; W)‖² / Σ ‖MHA_i(h_i; W)‖²   over real tokens

GPTQ minimises each projection's own output error; BoA (arXiv 2406.13474) minimises (a Kronecker
approximation of) this one.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from bert_numpy import BertEncoder, SentenceEmbedder


def attention_output_error(embedder: SentenceEmbedder, weights: Mapping[str, np.ndarray],
                           restored: Mapping[str, np.ndarray], sentences: list[str]) -> float:
    tok = embedder.tokenizer
    seqs = [tok.encode(s) for s in sentences]
    length = max(len(s) for s in seqs)
    ids = np.full((len(seqs), length), tok.pad_id, dtype=np.int64)
    mask = np.zeros((len(seqs), length), dtype=np.float64)
    for row, seq in enumerate(seqs):
        ids[row, : len(seq)] = seq
        mask[row, : len(seq)] = 1.0
    reference = BertEncoder(embedder.config, weights)
    inputs: list[np.ndarray] = []
    reference.hidden_states(ids, mask, layer_inputs=inputs)
    # Layer i's attention reads only layer i's weights: one encoder with every q/k/v quantized.
    mixed = dict(weights)
    for name in weights:
        if ".attention.self." in name and name.endswith(".weight"):
            mixed[name] = restored[name]
    quantized = BertEncoder(embedder.config, mixed)
    errors = []
    for i, h in enumerate(inputs):
        exact = reference.attention_output(h, mask, i)
        approx = quantized.attention_output(h, mask, i)
        real = mask[..., None]
        errors.append(float((((approx - exact) * real) ** 2).sum() / ((exact * real) ** 2).sum()))
    return float(np.mean(errors))
