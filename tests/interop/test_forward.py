"""qpk's BERT forward pass (`qpk embed`) against an independent numpy forward pass.

The reference is bench/quality/bert_numpy.py (float64, written from Devlin et al. 2019). qpk runs in
fp32 with OpenBLAS; the last hidden states must agree to 1e-4 relative (Frobenius norm of the
difference over the norm of the reference, per sentence), and so must the mean-pooled embeddings.
Checked on the real all-MiniLM-L6-v2 and, offline, on a small random BERT written here with numpy
and safetensors over the WordPiece fixture tokenizer.
"""
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import FIXTURES, ROOT, qpk_binary

sys.path.insert(0, str(ROOT / "bench" / "quality"))
from bert_numpy import BertConfig, BertEncoder  # noqa: E402
from sentences import SENTENCES  # noqa: E402

TOLERANCE = 1e-4
EXTRA = [
    "Short.",
    "A much longer sentence that goes on and on, with commas, numbers like 3.14 and 2,048, "
    "and accents (café, naïve), so that the batch mixes very different lengths and padding matters.",
    "東京 is a city; 🙂 is an emoji.",
]


def qpk_embed(model_dir, sentences, *flags):
    stdin = "".join(json.dumps(s) + "\n" for s in sentences)
    proc = subprocess.run([qpk_binary(), "embed", str(model_dir), "--json-lines", "--hidden-states", *flags],
                          input=stdin, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines()]


def relative(a, b):
    return float(np.linalg.norm(np.asarray(a, np.float64) - b) / np.linalg.norm(b))


def check_against_numpy(model_dir, sentences, *flags):
    from safetensors.numpy import load_file

    config = BertConfig.from_json(model_dir / "config.json")
    encoder = BertEncoder(config, load_file(str(model_dir / "model.safetensors")))
    results = qpk_embed(model_dir, sentences, *flags)
    assert len(results) == len(sentences)
    worst = 0.0
    for result in results:
        ids = np.array([result["tokens"]], dtype=np.int64)
        reference = encoder.hidden_states(ids, np.ones(ids.shape))[0]
        hidden = np.array(result["hidden_states"])
        assert hidden.shape == reference.shape
        worst = max(worst, relative(hidden, reference))
        assert relative(result["embedding"], reference.mean(axis=0)) < TOLERANCE
    assert worst < TOLERANCE, f"hidden states differ by {worst:.2e} relative"
    return results


def test_minilm_hidden_states_match_numpy(minilm):
    tokenizers = pytest.importorskip("tokenizers")
    model_dir = minilm.parent
    sentences = list(SENTENCES[:24]) + EXTRA
    results = check_against_numpy(model_dir, sentences, "--batch-size", "8")
    tok = tokenizers.Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tok.no_padding()
    assert [r["tokens"] for r in results] == [tok.encode(s).ids for s in sentences]


def test_minilm_normalized_embeddings_are_unit_vectors(minilm):
    results = qpk_embed(minilm.parent, EXTRA, "--normalize")
    for r in results:
        assert abs(np.linalg.norm(r["embedding"]) - 1) < 1e-5


@pytest.fixture()
def tiny_bert(tmp_path):
    """A random 2-layer BERT (hidden 32, 4 heads) over the WordPiece fixture's 700-token vocabulary."""
    from safetensors.numpy import save_file

    rng = np.random.default_rng(7)
    hidden, inter, layers, vocab, positions = 32, 48, 2, 700, 64
    w = {
        "embeddings.word_embeddings.weight": rng.normal(0, 0.5, (vocab, hidden)),
        "embeddings.position_embeddings.weight": rng.normal(0, 0.5, (positions, hidden)),
        "embeddings.token_type_embeddings.weight": rng.normal(0, 0.5, (2, hidden)),
        "embeddings.LayerNorm.weight": 1 + rng.normal(0, 0.1, hidden),
        "embeddings.LayerNorm.bias": rng.normal(0, 0.1, hidden),
    }
    for i in range(layers):
        p = f"encoder.layer.{i}."
        for name, out, inp in [("attention.self.query", hidden, hidden), ("attention.self.key", hidden, hidden),
                               ("attention.self.value", hidden, hidden), ("attention.output.dense", hidden, hidden),
                               ("intermediate.dense", inter, hidden), ("output.dense", hidden, inter)]:
            w[p + name + ".weight"] = rng.normal(0, 1 / np.sqrt(inp), (out, inp))
            w[p + name + ".bias"] = rng.normal(0, 0.1, out)
        for norm in ("attention.output.LayerNorm", "output.LayerNorm"):
            w[p + norm + ".weight"] = 1 + rng.normal(0, 0.1, hidden)
            w[p + norm + ".bias"] = rng.normal(0, 0.1, hidden)
    save_file({k: v.astype(np.float32) for k, v in w.items()}, str(tmp_path / "model.safetensors"))
    (tmp_path / "config.json").write_text(json.dumps({
        "model_type": "bert", "hidden_size": hidden, "num_hidden_layers": layers, "num_attention_heads": 4,
        "intermediate_size": inter, "layer_norm_eps": 1e-12, "max_position_embeddings": positions,
        "vocab_size": vocab, "type_vocab_size": 2, "hidden_act": "gelu", "pad_token_id": 0}))
    shutil.copy(FIXTURES / "tokenizers" / "wordpiece-bert.json", tmp_path / "tokenizer.json")
    return tmp_path


def test_random_bert_hidden_states_match_numpy(tiny_bert):
    check_against_numpy(tiny_bert, list(SENTENCES[:12]) + EXTRA, "--batch-size", "5")


def test_unsupported_architecture_is_one_line(tiny_bert):
    config = json.loads((tiny_bert / "config.json").read_text())
    config["model_type"] = "t5"
    (tiny_bert / "config.json").write_text(json.dumps(config))
    proc = subprocess.run([qpk_binary(), "embed", str(tiny_bert)], input="hello\n", capture_output=True, text=True)
    # An architecture (or tokenizer model) qpk does not implement is trouble, not an
    # invalid file: exit 2 (spec/cli.md §1).
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1
    assert '"t5"' in lines[0] and "bert" in lines[0] and "roberta" in lines[0] and "config.json" in lines[0]


# --- llama family ------------------------------------------------------------------------------

def llama_numpy_hidden_states(config, w, ids):
    """Independent float64 llama forward pass for one sequence (HF LlamaModel semantics):
    pre-RMSNorm blocks, RoPE with rotate-half pairs (i, i + d/2), causal grouped-query attention,
    SwiGLU MLP, final RMSNorm."""
    hidden, heads, kv = config["hidden_size"], config["num_attention_heads"], config["num_key_value_heads"]
    d, eps, theta = hidden // heads, config["rms_norm_eps"], config.get("rope_theta", 10000.0)
    T = len(ids)
    bias = config["model_type"] == "qwen2"

    def rms(x, g):
        return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * g

    def linear(x, name, with_bias=False):
        y = x @ w[name + ".weight"].T
        return y + w[name + ".bias"] if with_bias else y

    inv = theta ** (-np.arange(0, d, 2) / d)
    angles = np.arange(T)[:, None] * inv[None]
    cos = np.cos(np.concatenate([angles, angles], -1))[:, None]
    sin = np.sin(np.concatenate([angles, angles], -1))[:, None]

    def rope(x, n):
        x = x.reshape(T, n, d)
        rotated = np.concatenate([-x[..., d // 2:], x[..., : d // 2]], -1)
        return x * cos + rotated * sin

    x = w["model.embed_tokens.weight"][ids]
    causal = np.triu(np.full((T, T), -np.inf), 1)
    for i in range(config["num_hidden_layers"]):
        p = f"model.layers.{i}."
        n = rms(x, w[p + "input_layernorm.weight"])
        q = rope(linear(n, p + "self_attn.q_proj", bias), heads)
        k = rope(linear(n, p + "self_attn.k_proj", bias), kv)
        v = linear(n, p + "self_attn.v_proj", bias).reshape(T, kv, d)
        out = np.empty((T, heads, d))
        for h in range(heads):
            g = h // (heads // kv)
            s = q[:, h] @ k[:, g].T / np.sqrt(d) + causal
            s = np.exp(s - s.max(-1, keepdims=True))
            out[:, h] = (s / s.sum(-1, keepdims=True)) @ v[:, g]
        x = x + linear(out.reshape(T, hidden), p + "self_attn.o_proj")
        m = rms(x, w[p + "post_attention_layernorm.weight"])
        gate = linear(m, p + "mlp.gate_proj")
        x = x + linear(gate / (1 + np.exp(-gate)) * linear(m, p + "mlp.up_proj"), p + "mlp.down_proj")
    return rms(x, w["model.norm.weight"])


@pytest.fixture(params=["llama", "qwen2"])
def tiny_llama(tmp_path, request):
    """A random 2-layer llama (hidden 32, 4 query heads over 2 key/value heads) over the llama-3-style
    BPE fixture's vocabulary; the qwen2 variant adds q/k/v biases."""
    from safetensors.numpy import save_file

    tok = json.loads((FIXTURES / "tokenizers" / "bpe-llama3.json").read_text(encoding="utf-8"))
    vocab = max(max(tok["model"]["vocab"].values()), max(t["id"] for t in tok["added_tokens"])) + 1
    rng = np.random.default_rng(11)
    hidden, inter, layers, heads, kv = 32, 56, 2, 4, 2
    d = hidden // heads
    w = {"model.embed_tokens.weight": rng.normal(0, 1, (vocab, hidden)),
         "model.norm.weight": 1 + rng.normal(0, 0.1, hidden)}
    for i in range(layers):
        p = f"model.layers.{i}."
        for name, out, inp in [("self_attn.q_proj", heads * d, hidden), ("self_attn.k_proj", kv * d, hidden),
                               ("self_attn.v_proj", kv * d, hidden), ("self_attn.o_proj", hidden, heads * d),
                               ("mlp.gate_proj", inter, hidden), ("mlp.up_proj", inter, hidden),
                               ("mlp.down_proj", hidden, inter)]:
            w[p + name + ".weight"] = rng.normal(0, 1 / np.sqrt(inp), (out, inp))
            if request.param == "qwen2" and name.split(".")[-1] in ("q_proj", "k_proj", "v_proj"):
                w[p + name + ".bias"] = rng.normal(0, 0.2, out)
        w[p + "input_layernorm.weight"] = 1 + rng.normal(0, 0.1, hidden)
        w[p + "post_attention_layernorm.weight"] = 1 + rng.normal(0, 0.1, hidden)
    w = {k: v.astype(np.float32) for k, v in w.items()}
    save_file(w, str(tmp_path / "model.safetensors"))
    config = {"model_type": request.param, "hidden_size": hidden, "num_hidden_layers": layers,
              "num_attention_heads": heads, "num_key_value_heads": kv, "intermediate_size": inter,
              "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "max_position_embeddings": 256,
              "vocab_size": vocab, "hidden_act": "silu"}
    (tmp_path / "config.json").write_text(json.dumps(config))
    shutil.copy(FIXTURES / "tokenizers" / "bpe-llama3.json", tmp_path / "tokenizer.json")
    return tmp_path, config, {k: v.astype(np.float64) for k, v in w.items()}


def test_random_llama_hidden_states_match_numpy(tiny_llama):
    model_dir, config, weights = tiny_llama
    sentences = list(SENTENCES[:10]) + EXTRA
    results = qpk_embed(model_dir, sentences, "--batch-size", "4")
    assert len(results) == len(sentences)
    worst = 0.0
    for result in results:
        reference = llama_numpy_hidden_states(config, weights, np.array(result["tokens"]))
        hidden = np.array(result["hidden_states"])
        assert hidden.shape == reference.shape
        worst = max(worst, relative(hidden, reference))
        assert relative(result["embedding"], reference.mean(axis=0)) < TOLERANCE
    assert worst < TOLERANCE, f"hidden states differ by {worst:.2e} relative"
