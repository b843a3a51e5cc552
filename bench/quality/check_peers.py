"""Self-checks of the peer quantizers and metrics (run: python3 bench/quality/check_peers.py).

Each check states a property that must hold; the script exits 1 if any fails.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from metrics import average_ranks, pooled_sqnr_db, spearman  # noqa: E402
from peers import (PEERS, gguf_quantizer, mlx_affine_quantizer, pack_bits_lsb_first,  # noqa: E402
                   pack_uint32_lsb_first, rtn_quantizer, unpack_bits_lsb_first, unpack_uint32_lsb_first)


def main() -> int:
    rng = np.random.default_rng(7)
    failures: list[str] = []

    def check(ok: bool, what: str) -> None:
        print(f"{'ok  ' if ok else 'FAIL'} {what}")
        if not ok:
            failures.append(what)

    for bits in range(1, 9):
        codes = rng.integers(0, 1 << bits, size=640, dtype=np.uint32)
        packed = pack_bits_lsb_first(codes, bits)
        check(packed.nbytes == 640 * bits // 8 and np.array_equal(unpack_bits_lsb_first(packed, bits, 640), codes),
              f"dense {bits}-bit packing round-trips in exactly {bits}/8 bytes per code")
    first = pack_bits_lsb_first(np.array([1, 0, 0, 0, 0, 0, 0, 0], np.uint32), 1)
    check(first[0] == 1, "dense packing puts the first code in bit 0")
    for bits in (2, 4, 8):
        codes = rng.integers(0, 1 << bits, size=512, dtype=np.uint32)
        words = pack_uint32_lsb_first(codes, bits)
        check(np.array_equal(unpack_uint32_lsb_first(words, bits), codes) and words[0] & ((1 << bits) - 1) == codes[0],
              f"uint32 {bits}-bit packing round-trips, first code in the low bits")

    w = rng.standard_normal((64, 256)).astype(np.float32)
    expected_bpw = {"llama.cpp Q4_0": 4.5, "llama.cpp Q4_1": 5.0, "llama.cpp Q5_0": 5.5, "llama.cpp Q8_0": 8.5,
                    "MLX affine 4-bit g64": 4.5, "RTN min-max 4-bit g128": 4.25, "RTN min-max 3-bit g64": 3.5,
                    "RTN int-zero 3-bit g128": 3.25}
    for name, bpw in expected_bpw.items():
        q = PEERS[name][1](w)
        check(abs(8 * q.stored_bytes / w.size - bpw) < 1e-12, f"{name} stores {bpw} bits per weight")

    q = mlx_affine_quantizer(4, 64)(w)
    g = w.reshape(-1, 64)
    step = ((g.max(1) - g.min(1)) / 15)[:, None]
    err = np.abs(q.dequantized.reshape(-1, 64) - g)
    check(bool((err <= step * 0.5 + 1e-3 * step + 1e-6).all()), "MLX affine error ≤ half a step (+fp16 rounding)")

    sparse = w.copy()
    sparse[:, ::3] = 0.0
    q = rtn_quantizer(4, 64)(sparse)
    check(bool((q.dequantized[:, ::3] == 0).all()), "RTN int-zero reproduces exact zeros")

    q8 = gguf_quantizer("Q8_0")(w)
    d = np.abs(w.reshape(-1, 32)).max(1, keepdims=True) / 127
    # gguf-py computes codes with the fp32 scale and stores d as fp16, so a code of up to 127 also
    # carries 127 × the fp16 rounding of d (relative 2^-11).
    check(bool((np.abs(q8.dequantized.reshape(-1, 32) - w.reshape(-1, 32)) <= d * (0.5 + 127 * 2.0**-11) + 1e-7).all()),
          "Q8_0 error ≤ half a step + 127 × fp16 rounding of the scale")
    try:
        gguf_quantizer("Q4_0")(np.ones((2, 48), np.float32))
        check(False, "Q4_0 rejects rows that are not a multiple of 32")
    except ValueError:
        check(True, "Q4_0 rejects rows that are not a multiple of 32")

    check(abs(pooled_sqnr_db({"a": np.array([3.0, 4.0])}, {"a": np.array([3.0, 3.0])}, ["a"])
              - 10 * np.log10(25.0)) < 1e-12, "pooled SQNR of a known pair is 10·log10(25)")
    check(np.array_equal(average_ranks(np.array([10.0, 20.0, 20.0, 5.0])), np.array([2.0, 3.5, 3.5, 1.0])),
          "ties share their mean rank")
    x, y = rng.standard_normal(200), rng.standard_normal(200)
    y[:50] = x[:50]
    fallback = float(np.corrcoef(average_ranks(x), average_ranks(y))[0, 1])
    check(abs(spearman(x, y) - fallback) < 1e-12, "Spearman matches the rank-Pearson definition")

    if failures:
        print(f"{len(failures)} check(s) FAILED")
        return 1
    print("all peer checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
