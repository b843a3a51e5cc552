#!/usr/bin/env python3
"""The numpy side of the `qpk inspect --stats` speed bench: the same per-tensor statistics.

    python3 bench/speed/numpy_stats.py FILE.safetensors [--json OUT]

Streams tensor by tensor through ``safetensors.safe_open(..., framework="numpy")`` and computes, in
float64: count, min, max, mean, std (population), absmax, L2 norm, kurtosis (Fisher's excess, m4/m2² − 3,
as scipy.stats.kurtosis and qpk), NaN / Inf / zero / subnormal counts, the counts with |x − mean| > 3σ and > 6σ, and
the 1st/50th/99th percentiles (numpy's default linear interpolation). Non-finite values are excluded
from the moments and percentiles and only counted. Prints the compute time (file open to last
statistic) on stderr, so a caller can separate interpreter start-up from the work itself.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
from safetensors import safe_open


def tensor_stats(raw: np.ndarray) -> dict:
    x = raw.astype(np.float64, copy=False).ravel()
    finite_mask = np.isfinite(x)
    all_finite = bool(finite_mask.all())
    nan = 0 if all_finite else int(np.isnan(x).sum())
    inf = 0 if all_finite else int(np.isinf(x).sum())
    finite = x if all_finite else x[finite_mask]
    out = {"dtype": str(raw.dtype), "shape": list(raw.shape), "count": int(x.size), "nan": nan, "inf": inf,
           "zero": int(np.count_nonzero(x == 0))}
    absval = np.abs(finite)
    if np.issubdtype(raw.dtype, np.floating):
        tiny = np.finfo(raw.dtype).tiny
        out["subnormal"] = int(np.count_nonzero((absval < tiny) & (absval > 0)))
    else:
        out["subnormal"] = 0
    if finite.size == 0:
        return out
    mean = finite.mean()
    centred = finite - mean
    sq = centred * centred
    m2 = sq.sum() / finite.size
    m4 = float(np.dot(sq, sq)) / finite.size
    std = float(np.sqrt(m2))
    p1, p50, p99 = np.percentile(finite, [1, 50, 99])
    out.update(
        min=float(finite.min()), max=float(finite.max()), mean=float(mean), std=std,
        absmax=float(absval.max()), l2=float(np.sqrt(np.dot(finite, finite))),
        kurtosis=float(m4 / (m2 * m2)) - 3.0 if m2 > 0 else None,
        beyond_3sigma=int(np.count_nonzero(sq > 9 * m2)), beyond_6sigma=int(np.count_nonzero(sq > 36 * m2)),
        p1=float(p1), p50=float(p50), p99=float(p99),
    )
    return out


def file_stats(path: str) -> dict:
    stats = {}
    with safe_open(path, framework="numpy") as f:
        for name in f.keys():
            stats[name] = tensor_stats(f.get_tensor(name))
    return stats


def main() -> int:
    ap = argparse.ArgumentParser(description="per-tensor statistics with numpy (speed-bench reference)")
    ap.add_argument("file")
    ap.add_argument("--json", help="write the statistics here")
    args = ap.parse_args()
    start = time.perf_counter()
    stats = file_stats(args.file)
    seconds = time.perf_counter() - start
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(stats, fh)
    print(f"compute_seconds {seconds:.6f} tensors {len(stats)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
