"""Measures `qpk convert` with arbitrary recipe flags, exactly as bench/quality/run.py does.

Run: QPK=/path/to/qpk python3 bench/quality/research/qpk_eval.py "label" --importance none ...
Appends a row to bench/quality/research/results.jsonl.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import run as bench  # noqa: E402
from safetensors.numpy import load_file  # noqa: E402


def main() -> None:
    label, flags = sys.argv[1], sys.argv[2:]
    model_dir = bench.fetch_minilm()
    model_path = model_dir / "model.safetensors"
    weights = load_file(str(model_path))
    selection = bench.select_quantized(weights)
    embedder = bench.SentenceEmbedder(model_dir, weights)
    reference = embedder.embed(list(bench.SENTENCES))
    qpk = Path(os.environ["QPK"])
    restored, details = bench.run_qpk_recipe(qpk, label, flags, model_path, weights, selection)
    row = bench.evaluate(label, embedder, reference, weights, restored, selection)
    row.update(recipe="qpk " + " ".join(flags), bpw=details["bpw_inspect"] or details["bpw_file"],
               seconds=details["seconds"])
    print(json.dumps(row))
    with open(HERE / "results.jsonl", "a") as f:
        f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
