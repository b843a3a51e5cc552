"""Writes a small random llama model folder (config.json, tokenizer.json, model.safetensors).

The tokenizer is fixtures/tokenizers/bpe-llama3.json (byte-level BPE with llama-3's split, trained
with the `tokenizers` package by fixtures/gen_tokenizers.py), or bpe-gpt2.json with
`--tokenizer bpe-gpt2`. The weights are random (numpy, fixed seed), scaled so activations stay
O(1): 2 layers, hidden 64, 4 query heads over 2 key/value heads (grouped-query attention, head
width 16), SwiGLU width 128, untied lm_head. Every matrix row is a whole number of 32-value
blocks, so Q4_0/Q8_0 apply to every weight.

Used by bench/runtime/run.py (llama.cpp loads qpk's GGUF of it) and by
tests/interop/test_gguf_model.py (metadata and RoPE row order).

Run: python3 bench/runtime/tiny_llama.py OUT_DIR [--tokenizer bpe-llama3|bpe-gpt2] [--model-type llama|mistral]
"""
from __future__ import annotations

import argparse
import json
import pathlib
import shutil

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[2]
TOKENIZERS = ROOT / "fixtures" / "tokenizers"

HIDDEN, INTERMEDIATE, LAYERS, HEADS, KV_HEADS = 64, 128, 2, 4, 2


def make_tiny_llama(folder: pathlib.Path, tokenizer: str = "bpe-llama3", model_type: str = "llama", seed: int = 7):
    """Writes the folder; returns (config dict, {name: float32 array})."""
    from safetensors.numpy import save_file

    folder.mkdir(parents=True, exist_ok=True)
    source = TOKENIZERS / f"{tokenizer}.json"
    tok = json.loads(source.read_text(encoding="utf-8"))
    ids = list(tok["model"]["vocab"].values()) + [t["id"] for t in tok.get("added_tokens", [])]
    vocab = max(ids) + 1
    rng = np.random.default_rng(seed)
    d = HIDDEN // HEADS
    w = {"model.embed_tokens.weight": rng.normal(0, 1, (vocab, HIDDEN)),
         "model.norm.weight": 1 + rng.normal(0, 0.1, HIDDEN),
         "lm_head.weight": rng.normal(0, 1 / np.sqrt(HIDDEN), (vocab, HIDDEN))}
    for i in range(LAYERS):
        p = f"model.layers.{i}."
        for name, out, inp in [("self_attn.q_proj", HEADS * d, HIDDEN), ("self_attn.k_proj", KV_HEADS * d, HIDDEN),
                               ("self_attn.v_proj", KV_HEADS * d, HIDDEN), ("self_attn.o_proj", HIDDEN, HEADS * d),
                               ("mlp.gate_proj", INTERMEDIATE, HIDDEN), ("mlp.up_proj", INTERMEDIATE, HIDDEN),
                               ("mlp.down_proj", HIDDEN, INTERMEDIATE)]:
            w[p + name + ".weight"] = rng.normal(0, 1 / np.sqrt(inp), (out, inp))
        w[p + "input_layernorm.weight"] = 1 + rng.normal(0, 0.1, HIDDEN)
        w[p + "post_attention_layernorm.weight"] = 1 + rng.normal(0, 0.1, HIDDEN)
    w = {k: v.astype(np.float32) for k, v in w.items()}
    save_file(w, str(folder / "model.safetensors"))
    config = {"architectures": ["LlamaForCausalLM"], "model_type": model_type, "hidden_size": HIDDEN,
              "num_hidden_layers": LAYERS, "num_attention_heads": HEADS, "num_key_value_heads": KV_HEADS,
              "intermediate_size": INTERMEDIATE, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
              "max_position_embeddings": 256, "vocab_size": vocab, "hidden_act": "silu",
              "tie_word_embeddings": False}
    (folder / "config.json").write_text(json.dumps(config, indent=1))
    shutil.copy(source, folder / "tokenizer.json")
    return config, w


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=pathlib.Path)
    parser.add_argument("--tokenizer", default="bpe-llama3", choices=["bpe-llama3", "bpe-gpt2"])
    parser.add_argument("--model-type", default="llama", choices=["llama", "mistral"])
    args = parser.parse_args()
    make_tiny_llama(args.out, args.tokenizer, args.model_type)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
