#!/usr/bin/env python3
"""A synthetic llama-shaped checkpoint, written twice: F32 safetensors and the same data as F32 GGUF.

    python3 bench/speed/synthetic_llama.py OUT_DIR [--scale 1.0] [--seed 0]

Shape (scale 1): vocabulary 32000, hidden 2048, 8 blocks, feed-forward 5632, 32 query heads and 4
key/value heads: 478 M parameters, 1.91 GB of F32. `--scale S` multiplies the block count (at
least 1 block); below 1/8 it also shrinks hidden size, feed-forward and vocabulary by sqrt(8·S)
(to multiples of 256), so `--scale 0.01` makes a few-MB model for smoke runs.

Values: N(0, 0.02) with rare large outliers (one in 10^4 weights is N(0, 0.02) × 25), RMS-norm
weights near 1. Deterministic for a given seed and shape (one generator per tensor, seeded from
the tensor's index), and streamed: one tensor is in memory at a time, so an 8 GB model needs no
8 GB of RAM.

The GGUF file carries llama-architecture metadata (general.architecture, llama.* hyperparameters)
and llama tensor names (token_embd, blk.N.attn_q, …), which is what llama.cpp's quantizer needs to
load it; the safetensors file uses the Hugging Face names (model.embed_tokens, model.layers.N.…).
Prints one JSON line describing what was written. Existing files with the same recipe are reused.
"""
from __future__ import annotations

import argparse
import json
import math
import struct
import sys
from pathlib import Path

import numpy as np

OUTLIER_RATE = 1e-4
OUTLIER_FACTOR = 25.0
STD = 0.02


def shape_for(scale: float) -> dict:
    blocks = max(1, round(8 * scale))
    shrink = math.sqrt(8 * scale) if scale < 0.125 else 1.0

    def mult256(x: float) -> int:
        return max(256, int(round(x / 256)) * 256)

    hidden = mult256(2048 * shrink)
    return {
        "vocab": mult256(32000 * shrink),
        "hidden": hidden,
        "blocks": blocks,
        "ffn": mult256(5632 * shrink),
        "heads": hidden // 64,
        "kv_heads": max(1, hidden // 512),
    }


def tensors(cfg: dict) -> list[tuple[str, str, tuple[int, ...]]]:
    """(safetensors name, GGUF name, numpy shape [out, in]) in file order."""
    h, f, v = cfg["hidden"], cfg["ffn"], cfg["vocab"]
    kv = cfg["kv_heads"] * 64
    out = [("model.embed_tokens.weight", "token_embd.weight", (v, h))]
    for b in range(cfg["blocks"]):
        hf, gg = f"model.layers.{b}.", f"blk.{b}."
        out += [
            (hf + "input_layernorm.weight", gg + "attn_norm.weight", (h,)),
            (hf + "self_attn.q_proj.weight", gg + "attn_q.weight", (h, h)),
            (hf + "self_attn.k_proj.weight", gg + "attn_k.weight", (kv, h)),
            (hf + "self_attn.v_proj.weight", gg + "attn_v.weight", (kv, h)),
            (hf + "self_attn.o_proj.weight", gg + "attn_output.weight", (h, h)),
            (hf + "post_attention_layernorm.weight", gg + "ffn_norm.weight", (h,)),
            (hf + "mlp.gate_proj.weight", gg + "ffn_gate.weight", (f, h)),
            (hf + "mlp.up_proj.weight", gg + "ffn_up.weight", (f, h)),
            (hf + "mlp.down_proj.weight", gg + "ffn_down.weight", (h, f)),
        ]
    out += [("model.norm.weight", "output_norm.weight", (h,)), ("lm_head.weight", "output.weight", (v, h))]
    return out


def values(index: int, shape: tuple[int, ...], seed: int) -> np.ndarray:
    rng = np.random.default_rng([seed, index])
    n = int(np.prod(shape))
    if len(shape) == 1:  # RMS-norm weight
        return (1.0 + 0.05 * rng.standard_normal(n, dtype=np.float32)).reshape(shape)
    x = rng.standard_normal(n, dtype=np.float32)
    x *= STD
    k = rng.binomial(n, OUTLIER_RATE)
    where = rng.integers(0, n, size=k)
    x[where] *= OUTLIER_FACTOR
    return x.reshape(shape)


def write_safetensors_header(fh, entries: list[tuple[str, tuple[int, ...]]]) -> None:
    header, offset = {}, 0
    for name, shape in entries:
        nbytes = 4 * int(np.prod(shape))
        header[name] = {"dtype": "F32", "shape": list(shape), "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)
    fh.write(struct.pack("<Q", len(blob)))
    fh.write(blob)


def generate(out_dir: Path, scale: float, seed: int, with_gguf: bool = True) -> dict:
    """Writes (or reuses) the model; `with_gguf=False` writes the safetensors file only."""
    import gguf

    cfg = shape_for(scale)
    tag = f"llama_h{cfg['hidden']}_b{cfg['blocks']}_v{cfg['vocab']}_s{seed}"
    st_path, gguf_path = out_dir / f"{tag}.safetensors", out_dir / f"{tag}.gguf"
    layout = tensors(cfg)
    params = sum(int(np.prod(s)) for _, _, s in layout)
    largest = max(4 * int(np.prod(s)) for _, _, s in layout)
    info = {"config": cfg, "parameters": params, "f32_bytes": 4 * params, "largest_tensor_bytes": largest,
            "safetensors": str(st_path), "gguf": str(gguf_path), "seed": seed, "scale": scale}
    done = out_dir / f"{tag}.json"
    if done.exists() and st_path.exists() and (gguf_path.exists() or not with_gguf):
        return info
    out_dir.mkdir(parents=True, exist_ok=True)
    if not with_gguf:
        info["gguf"] = None
        with open(st_path, "wb") as st:
            write_safetensors_header(st, [(n, s) for n, _, s in layout])
            for i, (_, _, shape) in enumerate(layout):
                st.write(values(i, shape, seed).tobytes())
        done.write_text(json.dumps(info))
        return info

    writer = gguf.GGUFWriter(str(gguf_path), arch="llama")
    writer.add_name("qpk synthetic llama")
    writer.add_context_length(4096)
    writer.add_embedding_length(cfg["hidden"])
    writer.add_block_count(cfg["blocks"])
    writer.add_feed_forward_length(cfg["ffn"])
    writer.add_head_count(cfg["heads"])
    writer.add_head_count_kv(cfg["kv_heads"])
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_rope_dimension_count(64)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    for _, name, shape in layout:
        writer.add_tensor_info(name, shape, np.dtype(np.float32), 4 * int(np.prod(shape)))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()

    with open(st_path, "wb") as st:
        write_safetensors_header(st, [(n, s) for n, _, s in layout])
        for i, (_, _, shape) in enumerate(layout):
            x = values(i, shape, seed)
            st.write(x.tobytes())
            writer.write_tensor_data(x)
    writer.close()
    done.write_text(json.dumps(info))
    return info


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-gguf", action="store_true", help="write the safetensors file only")
    args = ap.parse_args()
    print(json.dumps(generate(args.out_dir, args.scale, args.seed, with_gguf=not args.no_gguf)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
