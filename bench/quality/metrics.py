"""Fidelity metrics of the quality bench (all computed in float64).

- weight SQNR, pooled over every quantized tensor: 10·log10(Σw² / Σ(w − ŵ)²) dB;
- embedding cosine: per sentence ⟨e, ê⟩/(‖e‖‖ê‖), reported as mean and minimum;
- Spearman rank correlation between the upper triangles (diagonal excluded) of the fp32 and the
  quantized pairwise cosine-similarity matrices: the Pearson correlation of the ranks, ties given
  their average rank (scipy's definition; scipy is used when installed, numpy otherwise).
"""
from __future__ import annotations

from typing import Mapping

import numpy as np


def pooled_sqnr_db(reference: Mapping[str, np.ndarray], restored: Mapping[str, np.ndarray],
                   names: list[str]) -> float:
    signal = noise = 0.0
    for n in names:
        w = np.asarray(reference[n], dtype=np.float64)
        d = w - np.asarray(restored[n], dtype=np.float64)
        signal += float(np.dot(w.ravel(), w.ravel()))
        noise += float(np.dot(d.ravel(), d.ravel()))
    return float("inf") if noise == 0 else 10.0 * np.log10(signal / noise)


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def average_ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks with ties sharing their mean rank."""
    order = np.argsort(x, kind="mergesort")
    sorted_x = x[order]
    ranks = np.empty(len(x), dtype=np.float64)
    start = 0
    while start < len(x):
        end = start
        while end + 1 < len(x) and sorted_x[end + 1] == sorted_x[start]:
            end += 1
        ranks[order[start: end + 1]] = (start + end) / 2.0 + 1.0
        start = end + 1
    return ranks


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    try:
        from scipy.stats import spearmanr
    except ImportError:
        rx, ry = average_ranks(np.asarray(x)), average_ranks(np.asarray(y))
        return float(np.corrcoef(rx, ry)[0, 1])
    return float(spearmanr(x, y).statistic)


def similarity_spearman(reference: np.ndarray, other: np.ndarray) -> float:
    """Spearman between the upper triangles of the two cosine-similarity matrices."""
    iu = np.triu_indices(reference.shape[0], k=1)
    return spearman((reference @ reference.T)[iu], (other @ other.T)[iu])
