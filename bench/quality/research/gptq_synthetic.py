"""Research: GPTQ (Frantar et al. 2023) with a *synthetic* Hessian H = XᵀX, X = inputs of each
linear layer when the fp32 model reads random word pieces (no data). 4-bit affine, group params
fitted (MSE clipping) on the error-updated weights when a group starts; no outliers.

Run: python3 bench/quality/research/gptq_synthetic.py [group] [source: random|data] [damp]
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from bert_numpy import BertEncoder, SentenceEmbedder  # noqa: E402
from metrics import cosines, pooled_sqnr_db, similarity_spearman  # noqa: E402
from peers import select_quantized  # noqa: E402
from recipes import MODEL_DIR, affine_params, quant_err  # noqa: E402
from sentences import SENTENCES  # noqa: E402


def group_params(x, top):
    """MSE-clipped affine params for columns block x (out, g) -> s, z (out,)."""
    lo, hi = x.min(1), x.max(1)
    R = hi - lo
    best_e = np.full(x.shape[0], np.inf); bs = np.zeros(x.shape[0], np.float32); bz = bs.copy()
    grid = [i / 40 for i in range(9)]
    for a in grid:
        for b in grid:
            s, z = affine_params(lo + a * R, hi - b * R, top, False)
            _, e = quant_err(x, s, z, top, None)
            better = e < best_e
            best_e = np.where(better, e, best_e); bs = np.where(better, s, bs); bz = np.where(better, z, bz)
    return bs, bz


def gptq(W, H, group, bits=4, damp=0.01):
    W = W.astype(np.float64).copy()
    n = W.shape[1]
    top = 2 ** bits - 1
    H = H.copy()
    dead = np.diag(H) == 0
    H[dead, dead] = 1
    H += damp * np.mean(np.diag(H)) * np.eye(n)
    Hinv = np.linalg.cholesky(np.linalg.inv(H)).T  # upper
    Q = np.zeros_like(W)
    s = z = None
    for i in range(n):
        if i % group == 0:
            s, z = group_params(W[:, i:i + group].astype(np.float32), top)
            s = s.astype(np.float64); z = z.astype(np.float64)
        w = W[:, i]
        q = np.clip(np.rint(w / s + z), 0, top)
        qh = (q - z) * s
        Q[:, i] = qh
        err = (w - qh) / Hinv[i, i]
        W[:, i + 1:] -= np.outer(err, Hinv[i, i + 1:])
    return Q.astype(np.float32)


def main():
    from safetensors.numpy import load_file
    group = int(sys.argv[1]) if len(sys.argv) > 1 else 64
    source = sys.argv[2] if len(sys.argv) > 2 else "random"
    damp = float(sys.argv[3]) if len(sys.argv) > 3 else 0.01
    weights = load_file(str(MODEL_DIR / "model.safetensors"))
    sel = select_quantized(weights)
    emb = SentenceEmbedder(MODEL_DIR, weights)
    ref = emb.embed(list(SENTENCES))
    hess = {}
    original = BertEncoder._linear

    def record(self, x, name):
        flat = x.reshape(-1, x.shape[-1]).astype(np.float64)
        key = name + ".weight"
        hess[key] = hess.get(key, 0) + flat.T @ flat
        return original(self, x, name)

    BertEncoder._linear = record
    if source == "random":
        rng = np.random.default_rng(0)
        seqs = [[101] + list(rng.integers(1996, 30522, size=int(rng.integers(8, 24)))) + [102] for _ in range(int(__import__("os").environ.get("NSEQ", "128")))]
        enc = emb.with_weights(weights).encoder
        for i in range(0, len(seqs), 32):
            enc.embed_ids(seqs[i:i + 32], 0)
    else:
        emb.with_weights(weights).embed(list(SENTENCES))
    BertEncoder._linear = original
    t = time.time()
    restored = dict(weights)
    for n in sel:
        restored[n] = gptq(weights[n], hess[n], group, damp=damp)
    e = emb.with_weights(restored).embed(list(SENTENCES))
    c = cosines(ref, e)
    bpw = 4 + 32 / group
    row = dict(recipe=f"gptq g{group} hessian={source} damp={damp} nseq={__import__('os').environ.get('NSEQ', '128')}", bpw=bpw,
               sqnr=round(pooled_sqnr_db(weights, restored, sel), 2), cos=round(float(c.mean()), 4),
               min_cos=round(float(c.min()), 4), spearman=round(similarity_spearman(ref, e), 4),
               seconds=round(time.time() - t, 1))
    print(json.dumps(row))
    with open(HERE / "results.jsonl", "a") as f:
        f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
