"""llama.cpp's quantizer uses qpk's importance matrices: `llama-quantize --imatrix` on qpk's files.

`qpk calibrate` writes llama.cpp's imatrix GGUF under llama.cpp's tensor names (spec/gguf.md §9).
This bench hands such files to llama.cpp's own `llama-quantize` (the binary built from the
llama-cpp-python source package by bench/llama_cpp/build.sh) and measures what they change:

1. `qpk convert MODEL_DIR minilm-f32.gguf` (MiniLM-L6 as llama.cpp's `bert`, F32);
2. `qpk calibrate` on qpk's built-in text, and `qpk calibrate --random-tokens` (no data);
3. `llama-quantize [--imatrix F] minilm-f32.gguf out.gguf TYPE` for several types, without a
   matrix and with each of qpk's; llama-quantize's own log must say it loaded one entry per
   linear weight (36);
4. every file's 36 encoder linear weights, dequantized by the `gguf` package, go back into the
   fp32 model under their Hugging Face names (everything else stays fp32), and the bench's numpy
   BERT embeds the 64 evaluation sentences of bench/quality (never calibration text): mean and
   worst cosine to fp32, pooled weight SQNR.

Run: python3 bench/runtime/imatrix.py      (writes bench/runtime/IMATRIX.md and imatrix.json)
"""
from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "bench" / "quality"))
from bert_numpy import SentenceEmbedder  # noqa: E402
from machine import machine_info  # noqa: E402
from metrics import cosines, pooled_sqnr_db  # noqa: E402
from model_fetch import fetch_minilm  # noqa: E402
from qpk_cli import find_qpk  # noqa: E402
from sentences import SENTENCES  # noqa: E402

import gguf  # noqa: E402
from safetensors.numpy import load_file  # noqa: E402

TYPES = ["Q4_0", "Q4_K_M", "IQ4_NL", "Q3_K_S"]
# llama.cpp's names of BERT's linear weights (spec/gguf.md §8).
LLAMA_CPP = {"attention.self.query": "attn_q", "attention.self.key": "attn_k", "attention.self.value": "attn_v",
             "attention.output.dense": "attn_output", "intermediate.dense": "ffn_up", "output.dense": "ffn_down"}


def hf_names(weights: dict) -> dict[str, str]:
    """llama.cpp name → Hugging Face name of every encoder linear weight."""
    out = {}
    for name in weights:
        m = re.fullmatch(r"encoder\.layer\.(\d+)\.(.+)\.weight", name)
        if m and m.group(2) in LLAMA_CPP:
            out[f"blk.{m.group(1)}.{LLAMA_CPP[m.group(2)]}.weight"] = name
    return out


def llama_quantize_binary() -> Path:
    env = os.environ.get("LLAMA_QUANTIZE")
    if env:
        return Path(env)
    built = subprocess.run(["bash", str(ROOT / "bench" / "llama_cpp" / "build.sh")], capture_output=True, text=True)
    if built.returncode != 0:
        raise SystemExit("bench/llama_cpp/build.sh failed:\n" + built.stderr[-2000:])
    return Path(built.stdout.strip().splitlines()[-1])


def run(*args) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(a) for a in args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, args))} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc


def dequantized(path: Path, names: dict[str, str]) -> tuple[dict[str, np.ndarray], float, set[str]]:
    """The encoder linear weights of a GGUF under HF names, their bits per weight and ggml types."""
    out, bits, count, types = {}, 0, 0, set()
    for t in gguf.GGUFReader(str(path)).tensors:
        if t.name not in names:
            continue
        shape = tuple(reversed([int(d) for d in t.shape]))
        out[names[t.name]] = gguf.quants.dequantize(np.asarray(t.data), t.tensor_type).astype(np.float32).reshape(shape)
        bits += int(t.n_bytes) * 8
        count += int(t.n_elements)
        types.add(t.tensor_type.name)
    return out, bits / count, types


def main() -> int:
    qpk = find_qpk()
    quantize = llama_quantize_binary()
    model = fetch_minilm()
    weights = load_file(str(model / "model.safetensors"))
    names = hf_names(weights)
    assert len(names) == 36, len(names)
    embedder = SentenceEmbedder(model, weights)
    reference = embedder.embed(list(SENTENCES))
    rows = []
    with tempfile.TemporaryDirectory(prefix="qpk-imatrix-") as tmp:
        work = Path(tmp)
        f32 = work / "minilm-f32.gguf"
        run(qpk, "convert", model, f32, "--force")
        matrices = {"none": None, "qpk built-in text": work / "text.imatrix.gguf",
                    "qpk random tokens (no data)": work / "random.imatrix.gguf"}
        run(qpk, "calibrate", model, "-o", matrices["qpk built-in text"], "--force")
        run(qpk, "calibrate", model, "--random-tokens", "-o", matrices["qpk random tokens (no data)"], "--force")
        for type_name in TYPES:
            for label, matrix in matrices.items():
                out = work / f"{type_name}-{label.split()[-1]}.gguf"
                args = [quantize] + (["--imatrix", matrix] if matrix else []) + [f32, out, type_name, "2"]
                log = run(*args)
                text = log.stdout + log.stderr
                loaded = re.search(r"loaded (\d+) importance matrix entries", text)
                entries = int(loaded.group(1)) if loaded else 0
                restored, bpw, types = dequantized(out, names)
                merged = dict(weights)
                merged.update(restored)
                c = cosines(reference, embedder.with_weights(merged).embed(list(SENTENCES)))
                rows.append({"type": type_name, "imatrix": label, "entries_loaded": entries, "bpw": bpw,
                             "ggml_types": sorted(types), "weight_sqnr_db": pooled_sqnr_db(weights, merged, list(restored)),
                             "mean_cosine": float(c.mean()), "min_cosine": float(c.min())})
                print(json.dumps(rows[-1]), flush=True)
    info = machine_info()
    (HERE / "imatrix.json").write_text(json.dumps({"rows": rows, "machine": info}, indent=1) + "\n")
    lines = [
        "# llama.cpp's quantizer with qpk's importance matrices",
        "",
        f"Generated {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC by `python3 bench/runtime/imatrix.py`; "
        f"llama-quantize from the llama-cpp-python sdist (bench/llama_cpp/build.sh).",
        "",
        "MiniLM-L6 as llama.cpp's `bert` GGUF (F32, written by qpk) quantized by `llama-quantize` without an "
        "imatrix and with the two written by `qpk calibrate` (its built-in text; random tokens, no data). "
        "`entries` is what llama-quantize's log says it loaded. Fidelity: the 36 encoder linear weights "
        "dequantized (gguf package) into the fp32 model, 64 evaluation sentences of bench/quality, "
        "cosine to fp32; bpw over those weights.",
        "",
        "| type | imatrix | entries | bpw | ggml types | weight SQNR dB | mean cos | min cos |",
        "|---|---|---:|---:|---|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['type']} | {r['imatrix']} | {r['entries_loaded']} | {r['bpw']:.3f} | {', '.join(r['ggml_types'])} | "
                     f"{r['weight_sqnr_db']:.2f} | {r['mean_cosine']:.4f} | {r['min_cosine']:.4f} |")
    lines += ["", "What it shows:", ""]
    for type_name in TYPES:
        by = {r["imatrix"]: r for r in rows if r["type"] == type_name}
        base = by["none"]
        lines.append(f"- {type_name}: mean cos {base['mean_cosine']:.4f} without a matrix, "
                     + ", ".join(f"{by[k]['mean_cosine']:.4f} with {k}" for k in by if k != "none")
                     + f"; llama-quantize loaded {', '.join(str(by[k]['entries_loaded']) for k in by if k != 'none')} entries.")
    lines += ["", "k-quants need rows whose length is a multiple of 256: on MiniLM's 384-wide weights llama-quantize "
              "uses a fallback type (the `ggml types` column), so only the 1536-wide FFN-down weights are in Q3_K "
              "in the Q3_K_S file. Calibration text and evaluation sentences share nothing (bench/quality checks it)."]
    (HERE / "IMATRIX.md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
