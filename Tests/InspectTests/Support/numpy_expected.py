"""Prints the numpy reference values embedded in StatisticsReferenceTests.swift.

Run: python3 Tests/InspectTests/Support/numpy_expected.py
Every statistic follows TensorStatistics' documented conventions: computed in float64 on the
finite float32 values x = a[np.isfinite(a)].
"""
import numpy as np

def bf16_round(a32):
    bits = a32.view(np.uint32).astype(np.uint64)
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16) << 16
    return (rounded.astype(np.uint32)).view(np.float32)

def stats(name, a, tiny, bins=0):
    a = np.asarray(a)
    a32 = a.astype(np.float32)
    x = a32[np.isfinite(a32)].astype(np.float64)
    out = {
        "count": a32.size,
        "nan": int(np.isnan(a32).sum()),
        "pos_inf": int(np.isposinf(a32).sum()),
        "neg_inf": int(np.isneginf(a32).sum()),
        "zeros": int((x == 0).sum()),
        "subnormals": int(((x != 0) & (np.abs(x) < tiny)).sum()),
    }
    if x.size:
        mean, std = x.mean(), x.std()
        m2 = ((x - mean) ** 2).mean(); m4 = ((x - mean) ** 4).mean()
        out.update(min=x.min(), max=x.max(), mean=mean, std=std, absmax=np.abs(x).max(),
                   l2=np.sqrt((x * x).sum()),
                   kurtosis=(m4 / m2 ** 2 - 3) if m2 > 0 else None,
                   b3=int((np.abs(x - mean) > 3 * std).sum()),
                   b6=int((np.abs(x - mean) > 6 * std).sum()))
        p = np.percentile(x, [1, 50, 99])
        out.update(p1=p[0], p50=p[1], p99=p[2])
        if bins:
            out["hist"] = np.histogram(x, bins=bins, range=(x.min(), x.max()))[0].tolist()
    print(name, {k: (repr(float(v)) if isinstance(v, (float, np.floating)) else v) for k, v in out.items()})

F32_TINY = float(np.finfo(np.float32).tiny)
mixed = np.array([1.5, -2.25, 0, 3, np.nan, np.inf, -np.inf, 1e-40, -0.0, 7.75], dtype=np.float32)
stats("mixed", mixed, F32_TINY, bins=4)
stats("empty", np.array([], dtype=np.float32), F32_TINY)
stats("scalar", np.array(42.5, dtype=np.float32), F32_TINY)
stats("constant", np.full(10, 3.0, dtype=np.float32), F32_TINY, bins=3)

# 1M elements around 1e4 with unit-scale noise and a sparse heavy tail: float32 naive sums fail here.
i = np.arange(1_000_000, dtype=np.uint64)
u = ((i * np.uint64(2654435761)) & np.uint64(0xFFFFFFFF)).astype(np.float64) / 4294967296.0
big = (10000.0 + (u - 0.5) + np.where(i % 997 == 0, 60.0 * (u - 0.5), 0.0)).astype(np.float32)
stats("offset1M", big, F32_TINY, bins=8)
print("naive float32 cumulative mean:", float(np.cumsum(big, dtype=np.float32)[-1] / big.size))

# A crowded fine bin: 1.5M small values and two far outliers force percentile narrowing.
j = np.arange(1_500_000, dtype=np.uint64)
w = ((j * np.uint64(40503) + np.uint64(12345)) % np.uint64(65521)).astype(np.float64) / 65521.0
crowd = (1e-3 * (w - 0.5)).astype(np.float32)
crowd[7] = 1000.0; crowd[1_000_003] = -1000.0
stats("crowded", crowd, F32_TINY)

f16 = np.array([0.5, -1.25, 65504, 1e-6, -3e-7, 0, np.inf, 2.0009765625, 0.1], dtype=np.float16)
stats("f16", f16, float(np.finfo(np.float16).tiny), bins=5)

bf = bf16_round(np.array([3.14159265, -2.71828, 1e-39, 0.0, 1e30, -7.5, 0.333333], dtype=np.float32))
print("bf16 values:", [repr(float(v)) for v in bf])
stats("bf16", bf, F32_TINY)
