#!/usr/bin/env python3
"""An independent numpy GPTQ, to check qpk's `--method gptq` on the same calibration passages.

Written from the GPTQ paper (Frantar, Ashkboos, Hoefler, Alistarh 2022, arXiv 2210.17323) and the
documented behaviour of the authors' algorithm, not from any repository's code:

* per linear layer, H = 2/n · Σ x xᵀ in float64 over the real (non-padding) tokens of its input;
* dead columns (H_jj = 0): H_jj = 1 and the weights of that column set to 0;
* act-order: columns swept in order of decreasing diag H (stable sort, ties by column index);
* dampening: λ = 0.01 · mean(diag H) added to the diagonal;
* U = the upper Cholesky factor of H⁻¹ (H⁻¹ = Uᵀ U); column j's error e = (w − q)/U_jj, the
  later columns of its lazy batch (128 columns) take −e·U[j, j+1:] at once, the columns after the
  batch −E·U[batch, after] at the batch's end;
* groups of g consecutive columns *of the sweep order* (the reference's static_groups=False), each
  fitted when the sweep reaches its first column (see --group-fit for on which weights);
* the min-max asymmetric grid of the reference: xmin = min(min w, 0), xmax = max(max w, 0)
  (both 0 → −1, +1), scale = (xmax − xmin)/(2^b − 1), zero = round(−xmin/scale),
  q = clamp(round(w/scale) + zero, 0, 2^b − 1), ŵ = scale·(q − zero); numpy rounds half to even
  as torch.round does.

Sequential calibration: block by block, each block's inputs come from the already quantized
earlier blocks. --sequential block (the default; the reference's default, and what qpk does)
quantizes every linear layer of a block from the inputs of one pass of the *unquantized* block;
--sequential groups (the reference's --true-sequential) quantizes [query, key, value], then
[attention output], then [FFN up], then [FFN down], re-running the block with the groups already
quantized before collecting each group's inputs.

Calibration passages are chosen as qpk chooses them (Sources/Convert/CalibratedConversion.swift:
the text's blank-line separated paragraphs with whitespace collapsed, `samples` of them evenly
spread, passages[i·N/samples]); --sample-offset k takes passages[(i·N/samples + k) mod N] and
--seed s a uniform random choice instead, to measure how much the result moves with the sample.
They are tokenized by the `tokenizers` library from the model's tokenizer.json (special tokens
added, cut to --seq-len tokens, no padding), as qpk's tokenizer does; --check-tokens compares
the per-column input energies and token count with `qpk calibrate` (an imatrix) on the same text.

    python3 bench/quality/reference_gptq.py --bits 4 --group-size 64           # one run
    python3 bench/quality/reference_gptq.py --table --offsets 0,1,2,3 --qpk /tmp/qpk-base
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bert_numpy import BertEncoder, gelu, layer_norm  # noqa: E402
from run import (CALIBRATION_TEXT, SENTENCES, SentenceEmbedder, evaluate, fetch_minilm,  # noqa: E402
                 run_qpk_recipe, select_quantized)
from qpk_cli import REPO_ROOT  # noqa: E402

RESULTS_JSON = HERE / "reference_gptq.json"
SETTINGS = ((4, 64), (4, 128), (3, 64), (2, 64))
# The reference points of issue 10 (the issue author's numpy GPTQ, own 128-passage sample).
ISSUE_POINTS = {(4, 64): 0.985, (4, 128): 0.982, (3, 64): 0.936, (2, 64): 0.66}
SUBLAYERS = ("attention.self.query", "attention.self.key", "attention.self.value",
             "attention.output.dense", "intermediate.dense", "output.dense")
# The reference's true-sequential groups.
SEQUENTIAL_GROUPS = (SUBLAYERS[:3], SUBLAYERS[3:4], SUBLAYERS[4:5], SUBLAYERS[5:6])


# ---------------------------------------------------------------- calibration passages (as qpk)

def passages(text: str) -> list[str]:
    """qpk's CalibrationText.passages: blank-line separated paragraphs, whitespace collapsed."""
    result, current = [], []
    for line in text.split("\n"):
        words = line.split()
        if not words:
            if current:
                result.append(" ".join(current))
            current = []
        else:
            current += words
    if current:
        result.append(" ".join(current))
    return result


def choose(all_passages: list[str], count: int, offset: int = 0, seed: int | None = None) -> list[str]:
    """qpk's CalibrationText.spread (offset 0, no seed), shifted by `offset`, or a seeded random
    choice (kept in text order)."""
    n = len(all_passages)
    if n <= count or count <= 0:
        return list(all_passages)
    if seed is not None:
        picked = np.sort(np.random.default_rng(seed).choice(n, size=count, replace=False))
        return [all_passages[i] for i in picked]
    return [all_passages[(i * n // count + offset) % n] for i in range(count)]


def tokenize(model_dir: Path, texts: list[str], seq_len: int) -> list[list[int]]:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(max_length=seq_len)
    seqs = [tok.encode(t).ids for t in texts]
    return [s for s in seqs if s]


def batches(seqs: list[list[int]], size: int = 16, pad_id: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    out = []
    for start in range(0, len(seqs), size):
        part = seqs[start:start + size]
        length = max(len(s) for s in part)
        ids = np.full((len(part), length), pad_id, dtype=np.int64)
        mask = np.zeros((len(part), length))
        for r, s in enumerate(part):
            ids[r, :len(s)] = s
            mask[r, :len(s)] = 1.0
        out.append((ids, mask))
    return out


# ---------------------------------------------------------------- the model, block by block

class Recorder:
    """Wraps BertEncoder._linear to accumulate Σ x xᵀ (real tokens only) of chosen layers' inputs."""

    def __init__(self, encoder: BertEncoder) -> None:
        self.encoder = encoder
        self.original = encoder._linear
        self.wanted: set[str] = set()
        self.mask: np.ndarray | None = None
        self.sums: dict[str, np.ndarray] = {}
        self.counts: dict[str, int] = {}
        encoder._linear = self  # instance attribute shadows the method

    def __call__(self, x: np.ndarray, name: str) -> np.ndarray:
        if name in self.wanted and self.mask is not None:
            rows = x.reshape(-1, x.shape[-1])[self.mask.reshape(-1) > 0]
            self.sums[name] = self.sums.get(name, 0) + rows.T @ rows
            self.counts[name] = self.counts.get(name, 0) + rows.shape[0]
        return self.original(x, name)

    def hessian(self, name: str) -> np.ndarray:
        return 2.0 / self.counts[name] * self.sums[name]


def embed_input(encoder: BertEncoder, ids: np.ndarray) -> np.ndarray:
    w, cfg = encoder.w, encoder.config
    h = (w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:ids.shape[1]][None]
         + w["embeddings.token_type_embeddings.weight"][0][None, None])
    return layer_norm(h, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], cfg.layer_norm_eps)


def block_forward(encoder: BertEncoder, h: np.ndarray, mask: np.ndarray, i: int) -> np.ndarray:
    """Layer i of BertEncoder.hidden_states (the same operations, one layer)."""
    w, eps, p = encoder.w, encoder.config.layer_norm_eps, f"encoder.layer.{i}."
    h = layer_norm(h + encoder.attention_output(h, mask, i), w[p + "attention.output.LayerNorm.weight"],
                   w[p + "attention.output.LayerNorm.bias"], eps)
    ff = encoder._linear(gelu(encoder._linear(h, p + "intermediate.dense")), p + "output.dense")
    return layer_norm(h + ff, w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], eps)


# ---------------------------------------------------------------- GPTQ

def fp16(x):
    return np.asarray(x, np.float64).astype(np.float16).astype(np.float64)


def fit_reference(x: np.ndarray, maxq: int, fp16_scales: bool, widen: bool = True):
    """Per-row min-max parameters of the reference grid for the group `x` (rows × g)."""
    xmin, xmax = x.min(axis=1), x.max(axis=1)
    # Without widening a constant group is still widened to include 0 (else its range is empty).
    widened = np.ones_like(xmin, dtype=bool) if widen else xmax == xmin
    xmin, xmax = np.where(widened, np.minimum(xmin, 0), xmin), np.where(widened, np.maximum(xmax, 0), xmax)
    both = (xmin == 0) & (xmax == 0)
    xmin, xmax = np.where(both, -1.0, xmin), np.where(both, 1.0, xmax)
    scale = (xmax - xmin) / maxq
    zero = np.round(-xmin / scale)
    if fp16_scales:
        scale = fp16(scale)
    return scale, zero


def fit_qpk(x: np.ndarray, maxq: int):
    """qpk's GPTQ fit with --scale-search minmax --zero-points packed (GroupFit.affine, then the
    zero-point rounded half to even and clamped): s = fp16((hi − lo)/maxq), z = round(fp16(−lo/s)),
    lo/hi the group's own min/max (not widened to 0). Float32 arithmetic as in Swift."""
    lo, hi = x.min(axis=1).astype(np.float32), x.max(axis=1).astype(np.float32)
    scale = ((hi - lo) / np.float32(maxq)).astype(np.float16).astype(np.float32)
    scale = np.where(scale == 0, np.float32(np.float16(6e-8)), scale)
    zero = (-lo / scale).astype(np.float16).astype(np.float32)
    # constant groups: s = |c|, z = 0 (c > 0) or 1 (c < 0)
    const = ~(hi > lo)
    scale = np.where(const, np.abs(lo).astype(np.float16).astype(np.float32), scale)
    zero = np.where(const, np.where(lo > 0, 0, 1).astype(np.float32), zero)
    zero = np.clip(np.round(zero), 0, maxq)
    return scale.astype(np.float64), zero.astype(np.float64)


def quantize_column(w: np.ndarray, scale: np.ndarray, zero: np.ndarray, maxq: int, grid: str) -> np.ndarray:
    if grid == "qpk":  # q = clamp(round(w·(1/s) + z)) in float32
        w32, s32 = w.astype(np.float32), scale.astype(np.float32)
        inv = np.where(s32 == 0, np.float32(0), np.float32(1) / np.where(s32 == 0, 1, s32))
        q = np.clip(np.round(w32 * inv + zero.astype(np.float32)), 0, maxq)
        return ((q - zero.astype(np.float32)) * s32).astype(np.float64)
    q = np.clip(np.round(w / scale) + zero, 0, maxq)
    return scale * (q - zero)


def gptq(weight: np.ndarray, hessian: np.ndarray, bits: int, group_size: int, *, act_order: bool = True,
         damp: float = 0.01, block_size: int = 128, fp16_scales: bool = False, group_fit: str = "current",
         grid: str = "reference", widen: bool = True) -> np.ndarray:
    """The dequantized GPTQ weight ([out, in], float64) for `weight` and its input Hessian."""
    W = np.array(weight, dtype=np.float64)
    H = np.array(hessian, dtype=np.float64)
    n = W.shape[1]
    maxq = 2 ** bits - 1
    if block_size % group_size:
        raise ValueError("the lazy batch must hold whole groups (block size a multiple of the group size)")
    dead = np.diag(H) == 0
    H[dead, dead] = 1.0
    W[:, dead] = 0.0
    perm = np.argsort(-np.diag(H), kind="stable") if act_order else np.arange(n)
    W, H = W[:, perm], H[np.ix_(perm, perm)]
    H[np.diag_indices(n)] += damp * np.mean(np.diag(H))
    L = np.linalg.cholesky(H)
    Linv = np.linalg.solve(L, np.eye(n))
    Hinv = Linv.T @ Linv
    U = np.linalg.cholesky(Hinv).T  # upper, Hinv = Uᵀ U
    Q = np.zeros_like(W)
    scale = zero = None
    for i1 in range(0, n, block_size):
        i2 = min(i1 + block_size, n)
        W1 = W[:, i1:i2].copy()
        E1 = np.zeros_like(W1)
        for i in range(i2 - i1):
            j = i1 + i
            if j % group_size == 0:
                # current: the group's weights with every update so far (this batch's too);
                # block-start: as the batch began (W is updated only at batch ends).
                source = W1[:, i:i + group_size] if group_fit == "current" else W[:, j:j + group_size]
                if grid == "qpk":
                    scale, zero = fit_qpk(source, maxq)
                else:
                    scale, zero = fit_reference(source, maxq, fp16_scales, widen)
            w = W1[:, i]
            q = quantize_column(w, scale, zero, maxq, grid)
            Q[:, j] = q
            err = (w - q) / U[j, j]
            W1[:, i:] -= np.outer(err, U[j, j:i2])
            E1[:, i] = err
        W[:, i2:] -= E1 @ U[i1:i2, i2:]
    out = np.empty_like(Q)
    out[:, perm] = Q
    return out


# ---------------------------------------------------------------- sequential quantization

def quantize_model(model_dir: Path, weights: dict, seqs: list[list[int]], bits: int, group_size: int,
                   sequential: str = "block", **options) -> dict:
    """Every 2-D encoder weight quantized by GPTQ, block by block; returns the restored weights."""
    encoder = BertEncoder(SentenceEmbedder(model_dir, weights).config, weights)
    recorder = Recorder(encoder)
    data = batches(seqs)
    hidden = [embed_input(encoder, ids) for ids, _ in data]
    groups = (SUBLAYERS,) if sequential == "block" else SEQUENTIAL_GROUPS
    for i in range(encoder.config.num_layers):
        p = f"encoder.layer.{i}."
        for group in groups:
            recorder.wanted = {p + s for s in group}
            recorder.sums, recorder.counts = {}, {}
            for (ids, mask), h in zip(data, hidden):
                recorder.mask = mask
                block_forward(encoder, h, mask, i)
            recorder.wanted, recorder.mask = set(), None
            for s in group:
                name = p + s
                encoder.w[name + ".weight"] = gptq(encoder.w[name + ".weight"], recorder.hessian(name), bits,
                                                   group_size, **options)
        hidden = [block_forward(encoder, h, mask, i) for (ids, mask), h in zip(data, hidden)]
    restored = dict(weights)
    for name in select_quantized(weights):
        restored[name] = encoder.w[name].astype(np.float32)
    return restored


# ---------------------------------------------------------------- checks and runs

def check_tokens(qpk: Path, model_dir: Path, weights: dict, texts: list[str], seqs: list[list[int]],
                 calibration_file: Path | None) -> dict:
    """Compares Σx² per input column of every linear layer (fp32 model) and the token count with
    `qpk calibrate` on the same text: equal only if qpk read the same token ids."""
    import gguf

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "m.imatrix.gguf"
        cmd = [str(qpk), "calibrate", str(model_dir), "-o", str(out), "--samples", str(len(texts)), "--force"]
        if calibration_file:
            cmd += ["--calibration", str(calibration_file)]
        subprocess.run(cmd, check=True, capture_output=True, text=True)
        reader = gguf.GGUFReader(str(out))
        theirs = {t.name: np.array(t.data, dtype=np.float64).ravel() for t in reader.tensors}
    encoder = BertEncoder(SentenceEmbedder(model_dir, weights).config, weights)
    recorder = Recorder(encoder)
    gg = dict(zip(SUBLAYERS, ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_up", "ffn_down")))
    worst = 0.0
    count_ok = True
    total = sum(len(s) for s in seqs)
    for i in range(encoder.config.num_layers):
        p = f"encoder.layer.{i}."
        recorder.wanted, recorder.sums, recorder.counts = {p + s for s in SUBLAYERS}, {}, {}
        data = batches(seqs)
        hidden = [embed_input(encoder, ids) for ids, _ in data] if i == 0 else hidden
        for (ids, mask), h in zip(data, hidden):
            recorder.mask = mask
            block_forward(encoder, h, mask, i)
        recorder.mask = None
        hidden = [block_forward(encoder, h, mask, i) for (ids, mask), h in zip(data, hidden)]
        for s in SUBLAYERS:
            mine = np.diag(recorder.sums[p + s])
            key = f"blk.{i}.{gg[s]}.weight"
            worst = max(worst, float(np.max(np.abs(mine - theirs[key + ".in_sum2"]) / np.maximum(np.abs(mine), 1e-12))))
            count_ok &= int(theirs[key + ".counts"][0]) == recorder.counts[p + s] == total
    return {"passages": len(seqs), "tokens": total, "counts_equal": bool(count_ok),
            "max_relative_difference_sum_x2": worst}


def write_passages(texts: list[str], path: Path) -> None:
    path.write_text("\n\n".join(texts) + "\n")


def sample_label(offset: int, seed: int | None) -> str:
    return f"seed {seed}" if seed is not None else ("qpk's sample (offset 0)" if offset == 0 else f"offset {offset}")


def markdown(payload: dict) -> str:
    """The comparison table of a results file: reference and qpk on qpk's sample, and the spread of
    each over every sample measured."""
    runs = payload["runs"]
    lines = ["| setting | reference, qpk's sample | qpk, qpk's sample | qpk − reference | "
             "reference over samples (min–max, mean) | qpk over samples (min–max, mean) | "
             "qpk − reference, same sample | issue |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    base = "qpk's sample (offset 0)"
    for bits, group in SETTINGS:
        def pick(who, sample=None):
            return [r for r in runs if r["who"] == who and r["bits"] == bits and r["group_size"] == group
                    and not r["variant"] and (sample is None or r["sample"] == sample)]
        ref, qpk = pick("reference", base), pick("qpk", base)
        cells = [f"{bits}-bit g{group}"]
        cells.append(f"{ref[0]['mean_cosine']:.4f}" if ref else "—")
        cells.append(f"{qpk[0]['mean_cosine']:.4f}" if qpk else "—")
        cells.append(f"{qpk[0]['mean_cosine'] - ref[0]['mean_cosine']:+.4f}" if ref and qpk else "—")
        for who in ("reference", "qpk"):
            values = [r["mean_cosine"] for r in pick(who)]
            cells.append(f"{min(values):.4f}–{max(values):.4f}, {np.mean(values):.4f} ({len(values)} samples)"
                         if values else "—")
        ref_by = {r["sample"]: r["mean_cosine"] for r in pick("reference")}
        diffs = [r["mean_cosine"] - ref_by[r["sample"]] for r in pick("qpk") if r["sample"] in ref_by]
        cells.append(f"{min(diffs):+.4f} to {max(diffs):+.4f} ({len(diffs)} samples)" if diffs else "—")
        cells.append(f"{ISSUE_POINTS[(bits, group)]}")
        lines.append("| " + " | ".join(cells) + " |")
    variants = sorted({(r["sample"], r["variant"]) for r in runs if r["variant"]})
    if variants:
        lines += ["", "| sample | setting | reference | " + " | ".join(sorted({v for _, v in variants})) + " | qpk |",
                  "|---|---|---:|" + "---:|" * len({v for _, v in variants}) + "---:|"]
        for sample in sorted({s for s, _ in variants}):
            for bits, group in SETTINGS:
                def cos(who, variant):
                    hit = [r["mean_cosine"] for r in runs if r["who"] == who and r["sample"] == sample
                           and r["bits"] == bits and r["group_size"] == group and r["variant"] == variant]
                    return f"{hit[0]:.4f}" if hit else "—"
                row = [sample, f"{bits}-bit g{group}", cos("reference", "")]
                row += [cos("reference", v) for v in sorted({v for _, v in variants})] + [cos("qpk", "")]
                if any(c != "—" for c in row[3:-1]):
                    lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bits", type=int, default=4)
    ap.add_argument("--group-size", type=int, default=64)
    ap.add_argument("--samples", type=int, default=128)
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--sample-offset", type=int, default=0, help="shift of the evenly spread passages (0: qpk's)")
    ap.add_argument("--seed", type=int, default=None, help="a seeded random choice of passages instead")
    ap.add_argument("--damp", type=float, default=0.01)
    ap.add_argument("--no-act-order", action="store_true")
    ap.add_argument("--fp16-scales", action="store_true", help="round the group scales to fp16 (zero from fp32)")
    ap.add_argument("--no-widen", action="store_true", help="min-max of the group only, not widened to include 0")
    ap.add_argument("--group-fit", choices=("current", "block-start"), default="current",
                    help="fit a group on fully updated weights, or on the weights as its lazy batch began")
    ap.add_argument("--grid", choices=("reference", "qpk"), default="reference",
                    help="qpk: emulate qpk's min-max fit (fp16 scale, zero from it, no widening, float32 rounding)")
    ap.add_argument("--sequential", choices=("block", "groups"), default="block")
    ap.add_argument("--check-tokens", action="store_true", help="compare with `qpk calibrate` on the same passages")
    ap.add_argument("--table", action="store_true", help="the four settings on every --offsets sample; writes JSON")
    ap.add_argument("--offsets", default="0", help="--table: comma-separated sample offsets")
    ap.add_argument("--seeds", default="", help="--table: comma-separated seeds (random samples)")
    ap.add_argument("--variants", default="", help="--table: extra reference variants on every sample "
                    "(comma list of fp16,nowiden,blockstart,qpkgrid,groups)")
    ap.add_argument("--settings", default="4:64,4:128,3:64,2:64", help="--table: bits:group pairs")
    ap.add_argument("--variants-only", action="store_true", help="--table: skip the plain reference runs")
    ap.add_argument("--qpk", type=Path, default=None, help="also run qpk at the same settings on each sample")
    ap.add_argument("--json", type=Path, default=RESULTS_JSON)
    ap.add_argument("--markdown", action="store_true", help="print the comparison table of --json and stop")
    args = ap.parse_args()
    if args.markdown:
        print(markdown(json.loads(args.json.read_text())))
        return 0

    model_dir = fetch_minilm()
    from safetensors.numpy import load_file

    weights = load_file(str(model_dir / "model.safetensors"))
    selection = select_quantized(weights)
    embedder = SentenceEmbedder(model_dir, weights)
    reference = embedder.embed(list(SENTENCES))
    all_passages = passages(CALIBRATION_TEXT.read_text(encoding="utf-8"))

    def sample(offset: int, seed: int | None) -> tuple[list[str], list[list[int]]]:
        texts = choose(all_passages, args.samples, offset, seed)
        joined = " ".join(" ".join(texts).split())
        shared = [x for x in SENTENCES if " ".join(x.split()) in joined]
        if shared:
            raise SystemExit(f"the calibration sample contains an evaluation sentence: {shared[0]!r}")
        return texts, tokenize(model_dir, texts, args.seq_len)

    def options(variant: set[str]) -> dict:
        return dict(act_order=not args.no_act_order, damp=args.damp,
                    fp16_scales=args.fp16_scales or "fp16" in variant,
                    widen=not (args.no_widen or "nowiden" in variant),
                    group_fit="block-start" if "blockstart" in variant else args.group_fit,
                    grid="qpk" if "qpkgrid" in variant else args.grid)

    def reference_row(seqs, bits, group, variant: set[str]) -> dict:
        t0 = time.perf_counter()
        sequential = "groups" if "groups" in variant else args.sequential
        restored = quantize_model(model_dir, weights, seqs, bits, group, sequential, **options(variant))
        row = evaluate("reference", embedder, reference, weights, restored, selection)
        row["seconds"] = time.perf_counter() - t0
        return row

    if not args.table:
        texts, seqs = sample(args.sample_offset, args.seed)
        print(f"{len(seqs)} passages, {sum(map(len, seqs))} tokens ({sample_label(args.sample_offset, args.seed)})")
        if args.check_tokens:
            qpk = args.qpk or Path("/tmp/qpk-base")
            file = None
            if args.sample_offset or args.seed is not None:
                file = Path(tempfile.mkdtemp()) / "calibration.txt"
                write_passages(texts, file)
            print("token check:", check_tokens(qpk, model_dir, weights, texts, seqs, file))
            return 0
        variant = set()
        if args.sequential == "groups":
            variant.add("groups")
        row = reference_row(seqs, args.bits, args.group_size, variant)
        print(f"RESULT reference {args.bits}-bit g{args.group_size}: cos {row['mean_cosine']:.4f} "
              f"min {row['min_cosine']:.4f} sqnr {row['sqnr_db']:.2f} ({row['seconds']:.0f} s)")
        return 0

    payload = json.loads(args.json.read_text()) if args.json.exists() else {"runs": []}
    runs = payload["runs"]

    def record(entry: dict) -> None:
        runs[:] = [r for r in runs if {k: r[k] for k in ("who", "sample", "bits", "group_size", "variant")}
                   != {k: entry[k] for k in ("who", "sample", "bits", "group_size", "variant")}]
        runs.append(entry)
        payload.update(date=dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                       model=str(model_dir.name), samples=args.samples, seq_len=args.seq_len,
                       issue_points={f"{b}-bit g{g}": v for (b, g), v in ISSUE_POINTS.items()})
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
        print(f"RESULT {entry['who']:9s} {entry['sample']:24s} {entry['bits']}-bit g{entry['group_size']:<4d} "
              f"{entry['variant'] or '-':12s} cos {entry['mean_cosine']:.4f} min {entry['min_cosine']:.4f} "
              f"sqnr {entry['sqnr_db']:.2f}", flush=True)

    samples = [(int(o), None) for o in args.offsets.split(",") if o != ""]
    samples += [(0, int(s)) for s in args.seeds.split(",") if s != ""]
    variants = [v for v in args.variants.split(",") if v]
    for offset, seed in samples:
        label = sample_label(offset, seed)
        texts, seqs = sample(offset, seed)
        base = {"sample": label, "passages": len(seqs), "tokens": sum(map(len, seqs))}
        for bits, group in [tuple(map(int, x.split(":"))) for x in args.settings.split(",")]:
            plain = [] if args.variants_only else [""]
            for variant in plain + variants:
                row = reference_row(seqs, bits, group, set(variant.split("+")) if variant else set())
                record({"who": "reference", **base, "bits": bits, "group_size": group, "variant": variant,
                        **{k: row[k] for k in ("mean_cosine", "min_cosine", "sqnr_db", "spearman", "seconds")}})
            if args.qpk:
                recipe = ["--method", "gptq", "--bits", str(bits), "--codebook", "none", "--group-size", str(group),
                          "--scale-search", "minmax", "--outlier-budget", "0", "--importance", "none", "--act-order",
                          "--zero-points", "packed", "--samples", str(args.samples), "--seq-len", str(args.seq_len)]
                if (offset, seed) != (0, None):
                    file = REPO_ROOT / "bench" / ".cache" / "quality" / f"calibration-{label.replace(' ', '-')}.txt"
                    file.parent.mkdir(parents=True, exist_ok=True)
                    write_passages(texts, file)
                    recipe += ["--calibration", str(file)]
                restored, details = run_qpk_recipe(args.qpk, f"refgptq qpk {label} {bits} {group}", recipe,
                                                   model_dir, weights, selection)
                row = evaluate("qpk", embedder, reference, weights, restored, selection)
                record({"who": "qpk", **base, "bits": bits, "group_size": group, "variant": "",
                        "command": details["commands"][0].replace(str(REPO_ROOT) + "/", ""),
                        **{k: row[k] for k in ("mean_cosine", "min_cosine", "sqnr_db", "spearman")},
                        "seconds": details["seconds"]})
    return 0


if __name__ == "__main__":
    sys.exit(main())
