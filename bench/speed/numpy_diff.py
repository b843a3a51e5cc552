#!/usr/bin/env python3
"""The numpy side of the `qpk diff` speed bench: allclose plus the same per-tensor metrics.

    python3 bench/speed/numpy_diff.py A.safetensors B.safetensors [--atol 1e-8] [--rtol 1e-5] [--json OUT]

For every tensor present in both files (streamed one at a time through ``safe_open``), in float64:
bitwise equality, ``numpy.allclose(a, b, rtol, atol)`` (|a − b| ≤ atol + rtol·|b|), the count of
elements out of tolerance, max and mean |a − b|, relative L2 ‖a − b‖/‖a‖, cosine similarity,
SQNR = 10·log10(Σa²/Σ(a − b)²) dB, and the index and values of the worst element. Tensors only in
A or only in B and shape mismatches are listed. Exit code 0 if every common tensor is allclose and
the name sets match, 1 otherwise (diff(1) convention). Compute time goes to stderr.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time

import numpy as np
from safetensors import safe_open


def compare(a_raw: np.ndarray, b_raw: np.ndarray, atol: float, rtol: float) -> dict:
    a = a_raw.astype(np.float64, copy=False).ravel()
    b = b_raw.astype(np.float64, copy=False).ravel()
    out = {"dtype_a": str(a_raw.dtype), "dtype_b": str(b_raw.dtype),
           "bitwise_equal": bool(a_raw.dtype == b_raw.dtype and np.array_equal(a_raw, b_raw))}
    d = a - b
    absd = np.abs(d)
    bad = ~(absd <= atol + rtol * np.abs(b))
    out["allclose"] = bool(np.allclose(a, b, rtol=rtol, atol=atol))
    out["out_of_tolerance"] = int(bad.sum())
    if a.size == 0:
        return out
    worst = int(np.nanargmax(absd)) if not np.isnan(absd).all() else 0
    sig = float(np.dot(a, a))
    noise = float(np.dot(d, d))
    nb = math.sqrt(float(np.dot(b, b)))
    out.update(
        max_abs=float(absd[worst]), mean_abs=float(absd.mean()),
        rel_l2=math.sqrt(noise / sig) if sig > 0 else None,
        cosine=float(np.dot(a, b) / (math.sqrt(sig) * nb)) if sig > 0 and nb > 0 else None,
        sqnr_db=(10 * math.log10(sig / noise)) if noise > 0 and sig > 0 else None,
        worst_index=[int(i) for i in np.unravel_index(worst, a_raw.shape)] if a_raw.ndim else [],
        worst_a=float(a[worst]), worst_b=float(b[worst]),
    )
    return out


def file_diff(path_a: str, path_b: str, atol: float, rtol: float) -> dict:
    with safe_open(path_a, framework="numpy") as fa, safe_open(path_b, framework="numpy") as fb:
        names_a, names_b = set(fa.keys()), set(fb.keys())
        result = {"only_in_a": sorted(names_a - names_b), "only_in_b": sorted(names_b - names_a),
                  "shape_mismatch": [], "tensors": {}}
        for name in sorted(names_a & names_b):
            ta, tb = fa.get_tensor(name), fb.get_tensor(name)
            if ta.shape != tb.shape:
                result["shape_mismatch"].append(name)
                continue
            result["tensors"][name] = compare(ta, tb, atol, rtol)
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description="numpy allclose + metrics per tensor (speed-bench reference)")
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--atol", type=float, default=1e-8)
    ap.add_argument("--rtol", type=float, default=1e-5)
    ap.add_argument("--json")
    args = ap.parse_args()
    start = time.perf_counter()
    result = file_diff(args.a, args.b, args.atol, args.rtol)
    seconds = time.perf_counter() - start
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh)
    print(f"compute_seconds {seconds:.6f} tensors {len(result['tensors'])}", file=sys.stderr)
    equal = (not result["only_in_a"] and not result["only_in_b"] and not result["shape_mismatch"]
             and all(t["allclose"] for t in result["tensors"].values()))
    return 0 if equal else 1


if __name__ == "__main__":
    sys.exit(main())
