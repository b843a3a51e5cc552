"""llama.cpp runs what qpk writes: GGUF from a model folder, loaded and run by llama.cpp itself.

Needs `llama-cpp-python` (PyPI; it builds llama.cpp from source, which takes long, so this is a
bench and not part of `make test`), plus numpy, safetensors, gguf, tokenizers.

1. **MiniLM-L6 (bert)**: `qpk convert MODEL_DIR x.gguf` at F32, Q4_0 and Q4_K; llama.cpp's own
   quantizer (`llama_model_quantize`, `pure`, from qpk's F32 GGUF) at Q4_0 and Q4_K. llama.cpp
   loads each file (`Llama(embedding=True)`, the file's mean pooling) and embeds the 64 sentences
   of bench/quality/sentences.py; each embedding is compared (cosine) with the fp32
   sentence-transformers embedding of the numpy BERT (bench/quality/bert_numpy.py). llama.cpp's
   tokenization of every sentence is compared with the Hugging Face `tokenizers` ids.
   Like for like: before comparing a qpk file with llama.cpp's, the bench checks that both store
   the same tensors in the same ggml types (qpk is run with `--exclude position_embd.weight`, as
   llama.cpp's quantizer never quantizes position or token-type embeddings), so equal types
   mean equal bytes.
2. **Tiny llama** (bench/runtime/tiny_llama.py: random weights, byte-level BPE tokenizer trained
   with `tokenizers`): `qpk convert` at F32 and Q8_0; llama.cpp's logits for every position of a
   few sentences against qpk's own forward pass (`qpk embed --hidden-states` times lm_head),
   and llama.cpp's tokens against qpk's.

Run: python3 bench/runtime/run.py        (writes bench/runtime/RESULTS.md and results.json)
"""
from __future__ import annotations

import ctypes
from importlib.metadata import version
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
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "bench" / "quality"))
sys.path.insert(0, str(HERE))
from bert_numpy import SentenceEmbedder  # noqa: E402
from machine import machine_info  # noqa: E402
from metrics import cosines, pooled_sqnr_db  # noqa: E402
from model_fetch import fetch_minilm  # noqa: E402
from qpk_cli import find_qpk  # noqa: E402
from sentences import SENTENCES  # noqa: E402
from tiny_llama import make_tiny_llama  # noqa: E402

import gguf  # noqa: E402
import llama_cpp  # noqa: E402

LLAMA_FTYPE = {"Q4_0": 2, "Q4_K": 15, "Q4_K_M": 15}  # LLAMA_FTYPE_MOSTLY_Q4_0, _Q4_K_M (with `pure`: Q4_K everywhere)
TINY_TEXTS = ["The quick brown fox jumps over the lazy dog.",
              "Quantization keeps the size small and the answers close.",
              "llama.cpp reads GGUF files written by qpk."]


def qpk(binary: Path, *args) -> str:
    proc = subprocess.run([str(binary), *map(str, args)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"qpk {' '.join(map(str, args))} failed:\n{proc.stderr}")
    return proc.stdout


def llama_quantize(source: Path, out: Path, type_name: str, pure: bool = True) -> float:
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = LLAMA_FTYPE[type_name]
    params.pure = pure
    params.nthread = 2
    started = time.time()
    status = llama_cpp.llama_model_quantize(str(source).encode(), str(out).encode(), ctypes.byref(params))
    if status != 0:
        raise SystemExit(f"llama_model_quantize({type_name}) failed with {status}")
    return time.time() - started


def tensor_types(path: Path) -> dict[str, str]:
    return {t.name: t.tensor_type.name for t in gguf.GGUFReader(str(path)).tensors}


def gguf_values(path: Path) -> dict[str, np.ndarray]:
    out = {}
    for t in gguf.GGUFReader(str(path)).tensors:
        shape = tuple(reversed([int(d) for d in t.shape]))
        out[t.name] = gguf.quants.dequantize(np.asarray(t.data), t.tensor_type).astype(np.float32).reshape(shape)
    return out


def quantized_bpw(path: Path) -> tuple[float, list[str]]:
    """Bits per weight over the block-quantized tensors, and their names."""
    bits = count = 0
    names = []
    for t in gguf.GGUFReader(str(path)).tensors:
        if t.tensor_type.name in ("F32", "F16", "BF16"):
            continue
        bits += int(t.n_bytes) * 8
        count += int(t.n_elements)
        names.append(t.name)
    return bits / count, names


def qpk_reads(binary: Path, path: Path, f32: Path, work: Path) -> dict:
    """What qpk makes of a GGUF llama.cpp wrote: validate, inspect --stats, diff against the F32
    source, and convert to safetensors, whose values must equal the gguf package's dequantization."""
    from safetensors.numpy import load_file

    def status(*args):
        return subprocess.run([str(binary), *map(str, args)], capture_output=True, text=True)

    validate = status("validate", path)
    inspect = status("inspect", path, "--stats", "--json")
    diff = status("diff", f32, path, "--json")
    restored = work / (path.stem + ".safetensors")
    convert = status("convert", path, restored, "--force")
    exact = False
    if convert.returncode == 0:
        ours, theirs = load_file(str(restored)), gguf_values(path)
        exact = set(ours) == set(theirs) and all(np.array_equal(ours[n], theirs[n]) for n in theirs)
    return {"validate_exit": validate.returncode, "inspect_exit": inspect.returncode,
            "inspect_tensors": len(json.loads(inspect.stdout)["tensors"]) if inspect.returncode == 0 else None,
            "diff_exit": diff.returncode, "convert_exit": convert.returncode, "dequantized_equal_to_gguf": exact}


def llama_embeddings(path: Path, sentences, reference_ids):
    llm = llama_cpp.Llama(model_path=str(path), embedding=True, n_ctx=512, n_batch=512, n_ubatch=512,
                          n_threads=2, verbose=False)
    token_mismatches = sum(llm.tokenize(s.encode(), add_bos=True, special=False) != ids
                           for s, ids in zip(sentences, reference_ids))
    vectors = np.array([llm.embed(s) for s in sentences], dtype=np.float64)
    llm.close()
    return vectors, token_mismatches


def minilm_rows(binary: Path, work: Path) -> tuple[list[dict], dict]:
    from tokenizers import Tokenizer

    model = fetch_minilm()
    sentences = list(SENTENCES)
    reference = SentenceEmbedder(model).embed(sentences)
    hf = Tokenizer.from_file(str(model / "tokenizer.json"))
    hf.no_padding()  # MiniLM's tokenizer.json pads to 128
    reference_ids = [hf.encode(s).ids for s in sentences]

    files = {}
    files["qpk F32"] = work / "minilm-f32.gguf"
    qpk(binary, "convert", model, files["qpk F32"], "--force")
    seconds = {}
    for type_name in ("Q4_0", "Q4_K"):
        path = work / f"minilm-qpk-{type_name}.gguf"
        started = time.time()
        qpk(binary, "convert", model, path, "--type", type_name, "--exclude", "position_embd.weight", "--force")
        seconds[f"qpk {type_name}"] = time.time() - started
        files[f"qpk {type_name}"] = path
        path = work / f"minilm-llama-{type_name}.gguf"
        seconds[f"llama.cpp {type_name}"] = llama_quantize(files["qpk F32"], path, type_name)
        files[f"llama.cpp {type_name}"] = path

    f32 = gguf_values(files["qpk F32"])
    rows = []
    for label, path in files.items():
        emb, mismatches = llama_embeddings(path, sentences, reference_ids)
        c = cosines(emb, reference)
        row = {"file": label, "bytes": path.stat().st_size, "mean_cosine": float(c.mean()),
               "min_cosine": float(c.min()), "token_mismatches": int(mismatches),
               "seconds": seconds.get(label)}
        if label != "qpk F32":
            bpw, names = quantized_bpw(path)
            restored = gguf_values(path)
            row.update(bpw=bpw, quantized_tensors=len(names), weight_sqnr_db=pooled_sqnr_db(f32, restored, names),
                       types=sorted(set(tensor_types(path)[n] for n in names)))
        rows.append(row)
    like_for_like = {t: tensor_types(files[f"qpk {t}"]) == tensor_types(files[f"llama.cpp {t}"]) for t in ("Q4_0", "Q4_K")}
    # llama.cpp's default mix (Q4_K_M: Q4_K, Q5_0, Q6_K, Q8_0 by tensor) as well as the pure files.
    files["llama.cpp Q4_K_M"] = work / "minilm-llama-Q4_K_M.gguf"
    llama_quantize(files["qpk F32"], files["llama.cpp Q4_K_M"], "Q4_K_M", pure=False)
    read_back = {label: qpk_reads(binary, path, files["qpk F32"], work)
                 for label, path in files.items() if label.startswith("llama.cpp")}
    return rows, {"model": str(model), "like_for_like": like_for_like, "sentences": len(sentences),
                  "qpk_reads_llama_cpp": read_back}


def tiny_llama_rows(binary: Path, work: Path) -> list[dict]:
    from safetensors.numpy import load_file, save_file

    folder = work / "tiny-llama"
    make_tiny_llama(folder)
    lm_head = load_file(str(folder / "model.safetensors"))["lm_head.weight"].astype(np.float64)
    stdin = "".join(json.dumps(t) + "\n" for t in TINY_TEXTS)
    proc = subprocess.run([str(binary), "embed", str(folder), "--json-lines", "--hidden-states"],
                          input=stdin, capture_output=True, text=True, check=True)
    forward = [json.loads(line) for line in proc.stdout.splitlines()]
    # Control: a folder whose q/k rows are pre-arranged so that qpk's reordering leaves them in
    # Hugging Face's order in the GGUF, i.e. the file without the RoPE reordering.
    control = work / "tiny-llama-control"
    make_tiny_llama(control)
    weights = load_file(str(control / "model.safetensors"))
    for name, heads in [("q_proj", 4), ("k_proj", 2)]:
        for key in [k for k in weights if k.endswith(f"{name}.weight")]:
            w = weights[key]
            weights[key] = np.ascontiguousarray(
                w.reshape(heads, w.shape[0] // heads // 2, 2, -1).swapaxes(1, 2).reshape(w.shape))
    save_file(weights, str(control / "model.safetensors"))
    rows = []
    for type_name, source in [("F32", folder), ("Q8_0", folder), ("Q4_0", folder), ("F32 without RoPE reordering (control)", control)]:
        path = work / f"tiny-{type_name.split()[0]}-{source.name}.gguf"
        qpk(binary, "convert", source, path, *(["--type", type_name] if type_name in ("Q8_0", "Q4_0") else []), "--force")
        llm = llama_cpp.Llama(model_path=str(path), logits_all=True, n_ctx=256, n_threads=2, verbose=False)
        worst = 0.0
        agree = total = mismatches = 0
        cos = []
        for text, result in zip(TINY_TEXTS, forward):
            tokens = result["tokens"]
            mismatches += llm.tokenize(text.encode(), add_bos=True, special=False) != tokens
            llm.reset()
            llm.eval(tokens)
            got = np.array(llm.scores[: len(tokens)], dtype=np.float64)
            want = np.array(result["hidden_states"], dtype=np.float64) @ lm_head.T
            worst = max(worst, float(np.abs(got - want).max() / np.abs(want).max()))
            agree += int((got.argmax(1) == want.argmax(1)).sum())
            total += len(tokens)
            cos += list(cosines(got, want))
        llm.close()
        rows.append({"file": f"qpk {type_name}", "bytes": path.stat().st_size, "positions": total,
                     "max_rel_error": worst, "argmax_agreement": agree / total, "min_cosine": float(min(cos)),
                     "token_mismatches": int(mismatches)})
    return rows


def fmt(x, digits):
    return "–" if x is None else f"{x:.{digits}f}"


def write_results(minilm, info, tiny, machine):
    lines = ["# llama.cpp runs qpk's GGUF", "",
             f"Generated by `python3 bench/runtime/run.py` on {dt.date.today().isoformat()}; "
             f"llama-cpp-python {llama_cpp.__version__} (llama.cpp built from its sdist), gguf {version('gguf')}; "
             f"{machine.get('cpu', '')}.", "",
             "## MiniLM-L6 (bert): sentence embeddings computed by llama.cpp", "",
             f"{info['sentences']} sentences of bench/quality/sentences.py; cosine of llama.cpp's mean-pooled "
             "embedding to the fp32 sentence-transformers embedding (numpy BERT). `tokens ≠` counts sentences "
             "whose llama.cpp tokens differ from the Hugging Face tokenizer's. bpw and weight SQNR are over the "
             "block-quantized tensors (SQNR against the F32 GGUF).", "",
             "| file | bytes | quantized tensors (types) | bpw | weight SQNR dB | mean cosine | min cosine | tokens ≠ |",
             "|---|---:|---|---:|---:|---:|---:|---:|"]
    for r in minilm:
        types = f"{r['quantized_tensors']} ({', '.join(r['types'])})" if "types" in r else "none (F32)"
        lines.append(f"| {r['file']} | {r['bytes']:,} | {types} | {fmt(r.get('bpw'), 3)} | "
                     f"{fmt(r.get('weight_sqnr_db'), 2)} | {r['mean_cosine']:.5f} | {r['min_cosine']:.5f} | "
                     f"{r['token_mismatches']} |")
    lines += ["", "Like for like: " + "; ".join(
        f"{t}: qpk's and llama.cpp's files store {'the same tensors in the same ggml types' if same else 'DIFFERENT tensor types'}"
        for t, same in info["like_for_like"].items()) + " (so their sizes are equal byte for byte in the data).",
        "llama.cpp's files come from `llama_model_quantize` with `pure` (one type for every quantized tensor) "
        "on qpk's F32 GGUF; for Q4_K, tensors whose rows are not whole 256-value super-blocks take Q5_0 in both "
        "(llama.cpp's fallback, which qpk applies too), so on MiniLM only `ffn_down` (rows of 1536) is Q4_K. "
        "The files differ by 32 bytes of metadata: llama.cpp's quantizer adds `general.file_type`.", "",
        "Reading: at equal size qpk's file gives the higher mean cosine for both types (its block search "
        "minimises each block's squared error; llama.cpp without an importance matrix uses ggml's reference "
        "rule for Q4_0/Q5_0 and its own searched Q4_K); for the Q4_K file the margin is small and the worst "
        "sentence (min cosine) is slightly better in llama.cpp's file. F32: llama.cpp's embeddings equal the "
        "fp32 reference to about 1e-6 and its WordPiece tokens equal the Hugging Face tokenizer's for every "
        "sentence, so names, hyper-parameters, pooling and vocabulary are read as intended.", "",
        "## qpk reads what llama.cpp writes", "",
        "Each GGUF llama.cpp's quantizer wrote above (and its default mix Q4_K_M) through qpk: `validate`, "
        "`inspect --stats --json`, `diff` against the F32 source (exit 1: different, as expected), and `convert` "
        "to safetensors, whose values are compared with the `gguf` package's dequantization.", "",
        "| file | validate exit | inspect exit (tensors) | diff exit | convert exit | values equal to gguf's |",
        "|---|---:|---:|---:|---:|---|"]
    for label, r in info["qpk_reads_llama_cpp"].items():
        lines.append(f"| {label} | {r['validate_exit']} | {r['inspect_exit']} ({r['inspect_tensors']}) | "
                     f"{r['diff_exit']} | {r['convert_exit']} | {'yes, bit for bit' if r['dequantized_equal_to_gguf'] else 'NO'} |")
    lines += ["",
        "## Tiny llama (random weights): logits computed by llama.cpp", "",
        "bench/runtime/tiny_llama.py (2 layers, hidden 64, 4 query / 2 key-value heads, byte-level BPE with "
        "llama-3's split). llama.cpp's logits at every position of "
        f"{len(TINY_TEXTS)} sentences against qpk's forward pass (`qpk embed --hidden-states` × lm_head, fp32, from the "
        "Hugging Face weights); `max rel error` is the largest absolute logit difference over the largest |logit|. "
        "F32's 4e-4 is llama.cpp's own arithmetic (not investigated further; its default key/value cache is F16); the agreement shows the query/key rows are in llama.cpp's "
        "RoPE order (spec/gguf.md §8.1); the control row, the same weights with the rows left in Hugging Face's "
        "order, does not match. Q8_0 and Q4_0 rows show "
        "the quantization error itself (random weights have no structure to spare, so Q4_0 moves them a lot).", "",
        "| file | bytes | positions | max rel error | argmax agreement | min cosine | tokens ≠ |",
        "|---|---:|---:|---:|---:|---:|---:|"]
    for r in tiny:
        lines.append(f"| {r['file']} | {r['bytes']:,} | {r['positions']} | {r['max_rel_error']:.2e} | "
                     f"{r['argmax_agreement']:.3f} | {r['min_cosine']:.6f} | {r['token_mismatches']} |")
    (HERE / "RESULTS.md").write_text("\n".join(lines) + "\n")
    (HERE / "results.json").write_text(json.dumps(
        {"minilm": minilm, "minilm_info": info, "tiny_llama": tiny, "machine": machine}, indent=1) + "\n")


def main() -> int:
    binary = find_qpk()
    if binary is None:
        print("qpk binary not found: run `swift build -c release` or set QPK", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="qpk-runtime-") as tmp:
        work = Path(tmp)
        tiny = tiny_llama_rows(binary, work)
        for r in tiny:
            print(r)
        minilm, info = minilm_rows(binary, work)
        for r in minilm:
            print(r)
        print(info)
    write_results(minilm, info, tiny, machine_info())
    return 0


if __name__ == "__main__":
    sys.exit(main())
