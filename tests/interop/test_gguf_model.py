"""GGUF from a Hugging Face model folder: llama.cpp's tensor names and model metadata.

`qpk convert FOLDER out.gguf` writes what llama.cpp's loader looks up (spec/gguf.md §8), read back
here with the `gguf` Python package: every key with its GGUF type, the exact tensor-name set of
llama.cpp's `bert` and `llama` graphs, one token per embedding row, token types, merges, special
ids, and the query/key row order llama.cpp's RoPE expects (checked against an independent numpy
reshape of the Hugging Face weights). That llama.cpp itself loads and runs these files is shown
by bench/runtime (it needs the llama-cpp-python build, too slow for `make test`).
"""
import json
import sys

import numpy as np
import pytest
import gguf
from gguf import GGMLQuantizationType as T
from gguf import GGUFValueType as V

from conftest import FIXTURES, ROOT, run_qpk
from test_forward import tiny_bert  # noqa: F401  (a pytest fixture)

sys.path.insert(0, str(ROOT / "bench" / "runtime"))
from tiny_llama import make_tiny_llama  # noqa: E402


def fields(path):
    reader = gguf.GGUFReader(str(path))
    out = {}
    for key, field in reader.fields.items():
        if key.startswith("GGUF."):
            continue
        out[key] = (field.types, field.contents())
    return reader, out


def values(reader):
    """name -> row-major float array of each tensor (F32/F16 or dequantized blocks)."""
    out = {}
    for t in reader.tensors:
        shape = tuple(reversed([int(d) for d in t.shape]))
        out[t.name] = gguf.quants.dequantize(np.asarray(t.data), t.tensor_type).astype(np.float32).reshape(shape)
    return out


def bert_names(layers):
    names = {f"{p}.{s}" for p in ("token_embd_norm",) for s in ("weight", "bias")}
    names |= {"token_embd.weight", "position_embd.weight", "token_types.weight"}
    for i in range(layers):
        for part in ("attn_q", "attn_k", "attn_v", "attn_output", "attn_output_norm", "ffn_up", "ffn_down",
                     "layer_output_norm"):
            names |= {f"blk.{i}.{part}.weight", f"blk.{i}.{part}.bias"}
    return names


def test_bert_folder_names_keys_and_wordpiece_vocabulary(tiny_bert, tmp_path):
    (tiny_bert / "modules.json").write_text(json.dumps(
        [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
         {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]))
    (tiny_bert / "1_Pooling").mkdir()
    (tiny_bert / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_mean_tokens": True}))
    out = tmp_path / "bert.gguf"
    proc = run_qpk("convert", tiny_bert, out, "--type", "Q8_0")
    assert "llama.cpp model: architecture bert, tokenizer bert (700 tokens)" in proc.stdout

    reader, kv = fields(out)
    assert {t.name for t in reader.tensors} == bert_names(2)
    expected = {
        "general.architecture": ([V.STRING], "bert"),
        "bert.context_length": ([V.UINT32], 64),
        "bert.embedding_length": ([V.UINT32], 32),
        "bert.block_count": ([V.UINT32], 2),
        "bert.feed_forward_length": ([V.UINT32], 48),
        "bert.attention.head_count": ([V.UINT32], 4),
        "bert.attention.causal": ([V.BOOL], False),
        "bert.pooling_type": ([V.UINT32], 1),
        "tokenizer.ggml.token_type_count": ([V.UINT32], 2),
        "tokenizer.ggml.model": ([V.STRING], "bert"),
        "tokenizer.ggml.add_bos_token": ([V.BOOL], True),
        "tokenizer.ggml.add_sep_token": ([V.BOOL], True),
        "tokenizer.ggml.add_eos_token": ([V.BOOL], False),
        "tokenizer.ggml.normalizer.lowercase": ([V.BOOL], True),
        "tokenizer.ggml.normalizer.strip_accents": ([V.BOOL], True),
        "general.quantization_version": ([V.UINT32], 2),
    }
    for key, value in expected.items():
        assert kv[key] == value, key
    assert kv["bert.attention.layer_norm_epsilon"][0] == [V.FLOAT32]
    assert kv["bert.attention.layer_norm_epsilon"][1] == pytest.approx(1e-12)

    tok = json.loads((FIXTURES / "tokenizers" / "wordpiece-bert.json").read_text(encoding="utf-8"))
    vocab = tok["model"]["vocab"]
    specials = {t["content"]: t["id"] for t in tok["added_tokens"]}
    types, tokens = kv["tokenizer.ggml.tokens"]
    assert types == [V.ARRAY, V.STRING] and len(tokens) == 700 == len(set(tokens))
    ttypes, token_types = kv["tokenizer.ggml.token_type"]
    assert ttypes == [V.ARRAY, V.INT32] and len(token_types) == 700
    for text, i in vocab.items():
        if text in specials:
            assert tokens[i] == text and token_types[i] == 3  # control, spelled as is
        elif text.startswith("##"):
            assert tokens[i] == text[2:] and token_types[i] == 1  # continuation: bare
        else:
            assert tokens[i] == "\u2581" + text and token_types[i] == 1  # word start: ▁ prefix
    for key, token in [("bos", "[CLS]"), ("cls", "[CLS]"), ("seperator", "[SEP]"), ("unknown", "[UNK]"),
                       ("padding", "[PAD]"), ("mask", "[MASK]")]:
        assert kv[f"tokenizer.ggml.{key}_token_id"] == ([V.UINT32], specials[token]), key

    # Q8_0 applies to the selected matrices (≥ 4096 elements); 1-D and smaller tensors stay F32.
    stored = {t.name: t.tensor_type for t in reader.tensors}
    assert stored["token_embd.weight"] == T.Q8_0
    assert stored["blk.0.ffn_up.weight"] == T.F32 and stored["blk.0.attn_q.bias"] == T.F32


def test_minilm_folder_keeps_101_tensors_and_30522_tokens(minilm, tmp_path):
    out = tmp_path / "minilm.gguf"
    proc = run_qpk("convert", minilm.parent, out, "--type", "Q4_0")
    assert "dropped 3 it does not use: embeddings.position_ids, pooler.dense.bias, pooler.dense.weight" in proc.stdout
    reader, kv = fields(out)
    assert {t.name for t in reader.tensors} == bert_names(6)
    tokens = kv["tokenizer.ggml.tokens"][1]
    assert len(tokens) == 30522 and tokens[101] == "[CLS]" and tokens[7592] == "\u2581hello"
    assert kv["bert.pooling_type"] == ([V.UINT32], 1)
    assert kv["tokenizer.ggml.bos_token_id"][1] == 101 and kv["tokenizer.ggml.seperator_token_id"][1] == 102


def rope_order(w, heads):
    """Each head's rows (rotate-half pairs i, i + d/2) interleaved to adjacent pairs (2i, 2i + 1)."""
    rows = w.shape[0]
    return w.reshape(heads, 2, rows // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


@pytest.mark.parametrize("tokenizer, pre", [("bpe-llama3", "llama-bpe"), ("bpe-gpt2", "gpt-2")])
def test_llama_folder_names_keys_bpe_vocabulary_and_rope_row_order(tmp_path, tokenizer, pre):
    folder = tmp_path / "tiny"
    config, w = make_tiny_llama(folder, tokenizer)
    out = tmp_path / "tiny.gguf"
    run_qpk("convert", folder, out)
    reader, kv = fields(out)
    names = {"token_embd.weight", "output_norm.weight", "output.weight"}
    for i in range(config["num_hidden_layers"]):
        names |= {f"blk.{i}.{p}.weight" for p in ("attn_norm", "attn_q", "attn_k", "attn_v", "attn_output",
                                                  "ffn_norm", "ffn_gate", "ffn_up", "ffn_down")}
    assert {t.name for t in reader.tensors} == names
    heads, kv_heads = config["num_attention_heads"], config["num_key_value_heads"]
    expected = {
        "general.architecture": ([V.STRING], "llama"),
        "llama.context_length": ([V.UINT32], 256),
        "llama.embedding_length": ([V.UINT32], 64),
        "llama.block_count": ([V.UINT32], 2),
        "llama.feed_forward_length": ([V.UINT32], 128),
        "llama.attention.head_count": ([V.UINT32], heads),
        "llama.attention.head_count_kv": ([V.UINT32], kv_heads),
        "llama.rope.dimension_count": ([V.UINT32], 16),
        "llama.rope.freq_base": ([V.FLOAT32], 10000.0),
        "llama.vocab_size": ([V.UINT32], config["vocab_size"]),
        "tokenizer.ggml.model": ([V.STRING], "gpt2"),
        "tokenizer.ggml.pre": ([V.STRING], pre),
    }
    for key, value in expected.items():
        assert kv[key] == value, key
    assert kv["llama.attention.layer_norm_rms_epsilon"][1] == pytest.approx(1e-5)

    tok = json.loads((FIXTURES / "tokenizers" / f"{tokenizer}.json").read_text(encoding="utf-8"))
    tokens = kv["tokenizer.ggml.tokens"][1]
    assert len(tokens) == config["vocab_size"]
    for text, i in tok["model"]["vocab"].items():
        assert tokens[i] == text
    merges = [m if isinstance(m, str) else " ".join(m) for m in tok["model"]["merges"]]
    assert kv["tokenizer.ggml.merges"] == ([V.ARRAY, V.STRING], merges)
    token_types = kv["tokenizer.ggml.token_type"][1]
    for added in tok["added_tokens"]:
        assert token_types[added["id"]] == (3 if added["special"] else 4)
    if tokenizer == "bpe-llama3":  # its template prepends <|begin_of_text|>
        assert kv["tokenizer.ggml.bos_token_id"][1] == tok["added_tokens"][0]["id"]
        assert kv["tokenizer.ggml.add_bos_token"][1] is True
    else:  # ByteLevel post-processing adds nothing
        assert kv["tokenizer.ggml.add_bos_token"][1] is False

    stored = values(reader)
    for i in range(config["num_hidden_layers"]):
        p = f"model.layers.{i}.self_attn."
        np.testing.assert_array_equal(stored[f"blk.{i}.attn_q.weight"], rope_order(w[p + "q_proj.weight"], heads))
        np.testing.assert_array_equal(stored[f"blk.{i}.attn_k.weight"], rope_order(w[p + "k_proj.weight"], kv_heads))
        np.testing.assert_array_equal(stored[f"blk.{i}.attn_v.weight"], w[p + "v_proj.weight"])
        assert not np.array_equal(stored[f"blk.{i}.attn_q.weight"], w[p + "q_proj.weight"])
    np.testing.assert_array_equal(stored["output.weight"], w["lm_head.weight"])


def test_weights_file_without_folder_keeps_names_and_says_so(tmp_path):
    folder = tmp_path / "tiny"
    make_tiny_llama(folder)
    out = tmp_path / "plain.gguf"
    proc = run_qpk("convert", folder / "model.safetensors", out)
    assert "tensor names and metadata kept as given" in proc.stdout
    reader, kv = fields(out)
    assert "general.architecture" not in kv
    assert "model.layers.0.self_attn.q_proj.weight" in {t.name for t in reader.tensors}


def test_folder_of_an_architecture_llama_cpp_mapping_lacks_is_one_line(tmp_path):
    folder = tmp_path / "tiny"
    make_tiny_llama(folder)
    config = json.loads((folder / "config.json").read_text())
    config["model_type"] = "qwen2"
    (folder / "config.json").write_text(json.dumps(config))
    proc = run_qpk("convert", folder, tmp_path / "x.gguf", expect=2)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "qwen2" in lines[0] and "bert, llama, mistral" in lines[0]
    assert not (tmp_path / "x.gguf").exists()


def test_folder_tensor_without_llama_cpp_name_is_one_line(tmp_path):
    from safetensors.numpy import load_file, save_file

    folder = tmp_path / "tiny"
    make_tiny_llama(folder)
    w = load_file(str(folder / "model.safetensors"))
    w["model.extra_adapter.weight"] = np.zeros((4, 4), np.float32)
    save_file(w, str(folder / "model.safetensors"))
    proc = run_qpk("convert", folder, tmp_path / "x.gguf", expect=2)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "model.extra_adapter.weight" in lines[0] and "llama" in lines[0]
