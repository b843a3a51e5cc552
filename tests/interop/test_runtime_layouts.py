"""Runtime layouts (issue 9 parts 4-6): `qpk convert model/ out/ --layout mlx|gptq` writes model
folders that the runtimes' own code reads, and qpk reads them back exactly as the runtimes do.

- MLX: `mlx.core.dequantize` of the folder's packed weights equals qpk's reading of the folder,
  bit for bit, and the config carries MLX's `quantization` description.
- GPTQ: a numpy dequantizer written here from AutoGPTQ's formula (int32 words packed along the
  input, zeros along the output, v1 storing zero - 1) equals qpk's reading, for v1 and for the
  same weights re-packed as v2.
"""
import json
import shutil

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from conftest import FIXTURES, run_json, run_qpk

mx = pytest.importorskip("mlx.core", reason="mlx[cpu] is in requirements-dev.txt")


def minilm_folder(minilm):
    return minilm.parent


def unpack_stream(words, bits, count):
    """Codes of an LSB-first bit stream over uint32 words (the last axis)."""
    words = words.astype(np.uint64)
    out = np.zeros(words.shape[:-1] + (count,), np.uint32)
    for i in range(count):
        bit = i * bits
        w, s = divmod(bit, 32)
        value = words[..., w] >> np.uint64(s)
        if s + bits > 32:
            value |= words[..., w + 1] << np.uint64(32 - s)
        out[..., i] = (value & np.uint64((1 << bits) - 1)).astype(np.uint32)
    return out


def pack_stream(codes, bits):
    """The inverse of unpack_stream along the last axis."""
    n = codes.shape[-1] * bits // 32
    words = np.zeros(codes.shape[:-1] + (n,), np.uint64)
    for i in range(codes.shape[-1]):
        bit = i * bits
        w, s = divmod(bit, 32)
        words[..., w] |= (codes[..., i].astype(np.uint64) << np.uint64(s)) & np.uint64(0xFFFFFFFF)
        if s + bits > 32:
            words[..., w + 1] |= codes[..., i].astype(np.uint64) >> np.uint64(32 - s)
    return words.astype(np.uint32)


@pytest.mark.parametrize("bits,group", [(4, 64), (3, 32), (8, 128)])
def test_mlx_dequantize_equals_qpk(minilm, tmp_path, bits, group):
    out = tmp_path / "mlx"
    summary = run_json("convert", minilm_folder(minilm), f"{out}/", "--layout", "mlx", "--bits", bits,
                       "--group-size", group)
    quantized = [t["name"] for t in summary["tensors"] if t["action"] == "quantize"]
    assert len(quantized) >= 36
    config = json.loads((out / "config.json").read_text())
    assert config["quantization"]["bits"] == bits and config["quantization"]["group_size"] == group
    assert config["quantization"]["mode"] == "affine"
    assert (out / "tokenizer.json").read_bytes() == (minilm.parent / "tokenizer.json").read_bytes()

    packed = mx.load(str(out / "model.safetensors"))
    restored = tmp_path / "restored.safetensors"
    run_qpk("convert", f"{out}/", restored)
    mine = load_file(str(restored))
    original = load_file(str(minilm))
    for name in quantized:
        base = name[: -len(".weight")]
        assert packed[base + ".weight"].dtype == mx.uint32
        theirs = np.array(mx.dequantize(packed[base + ".weight"], packed[base + ".scales"], packed[base + ".biases"],
                                        group_size=group, bits=bits))
        assert theirs.shape == original[name].shape
        assert np.array_equal(theirs, mine[name]), name
        x = original[name].astype(np.float64)
        error = x - theirs
        sqnr = 10 * np.log10(np.sum(x * x) / np.sum(error * error))
        assert sqnr > {3: 12, 4: 18, 8: 40}[bits], (name, sqnr)


def test_mlx_leaves_undividable_layers_float_and_says_so(tmp_path):
    """The demo model has 133-wide inputs that no MLX group divides: they stay float and the
    config maps them to false, as mlx_lm's per-layer overrides do."""
    out = tmp_path / "mlx"
    summary = run_json("convert", FIXTURES / "models" / "fracast" / "model.safetensors", f"{out}/", "--layout", "mlx")
    config = json.loads((out / "config.json").read_text())["quantization"]
    skipped = [t["name"] for t in summary["tensors"]
               if t["action"] != "quantize" and len(t["shape"]) == 2 and t["shape"][1] % 64 != 0
               and t["name"].endswith(".weight")]
    assert skipped
    for name in skipped:
        assert config[name[: -len(".weight")]] is False


def gptq_dequantize(tensors, base, bits, v1=True):
    """AutoGPTQ's formula, written from its description: w[:, i] = scale[g] * (q - zero[g])."""
    qweight = tensors[base + ".qweight"].view(np.uint32)
    qzeros = tensors[base + ".qzeros"].view(np.uint32)
    scales = tensors[base + ".scales"]
    g_idx = tensors[base + ".g_idx"]
    columns = g_idx.shape[0]
    q = unpack_stream(qweight.T, bits, columns)            # [out, in]
    zeros = unpack_stream(qzeros, bits, scales.shape[1])   # [groups, out]
    if v1:
        zeros = zeros + 1
    diff = (q.astype(np.int32) - zeros[g_idx].T.astype(np.int32)).astype(np.float16)
    return (scales[g_idx].T * diff).astype(np.float16)


@pytest.mark.parametrize("bits", [4, 3])
def test_gptq_numpy_dequantizer_equals_qpk_v1_and_v2(minilm, tmp_path, bits):
    out = tmp_path / "gptq"
    summary = run_json("convert", minilm_folder(minilm), f"{out}/", "--layout", "gptq", "--bits", bits,
                       "--group-size", 128)
    quantized = [t["name"] for t in summary["tensors"] if t["action"] == "quantize"]
    assert not any("embed" in n for n in quantized) and len(quantized) >= 36
    for config_name in ["quantize_config.json", "config.json"]:
        config = json.loads((out / config_name).read_text())
        config = config.get("quantization_config", config)
        assert config["bits"] == bits and config["group_size"] == 128 and config["checkpoint_format"] == "gptq"
        assert config["quant_method"] == "gptq" and config["sym"] is False and config["desc_act"] is False
    packed = load_file(str(out / "model.safetensors"))
    restored = tmp_path / "restored.safetensors"
    run_qpk("convert", f"{out}/", restored)
    mine = load_file(str(restored))
    original = load_file(str(minilm))
    for name in quantized:
        base = name[: -len(".weight")]
        assert packed[base + ".qweight"].dtype == np.int32 and packed[base + ".scales"].dtype == np.float16
        theirs = gptq_dequantize(packed, base, bits)
        assert np.array_equal(theirs, mine[name]), name
        x = original[name].astype(np.float64)
        error = x - theirs.astype(np.float64)
        assert 10 * np.log10(np.sum(x * x) / np.sum(error * error)) > {3: 12, 4: 18}[bits]

    # The same weights as a v2 checkpoint (zeros stored as they are) read the same.
    v2 = tmp_path / "gptq_v2"
    shutil.copytree(out, v2)
    repacked = dict(packed)
    for name in quantized:
        base = name[: -len(".weight")]
        stored = unpack_stream(packed[base + ".qzeros"].view(np.uint32), bits, packed[base + ".scales"].shape[1])
        repacked[base + ".qzeros"] = pack_stream(stored + 1, bits).view(np.int32)
        assert np.array_equal(gptq_dequantize(repacked, base, bits, v1=False), mine[name])
    save_file(repacked, str(v2 / "model.safetensors"), metadata={"format": "pt"})
    config = json.loads((v2 / "quantize_config.json").read_text())
    config["checkpoint_format"] = "gptq_v2"
    (v2 / "quantize_config.json").write_text(json.dumps(config))
    full = json.loads((v2 / "config.json").read_text())
    full["quantization_config"]["checkpoint_format"] = "gptq_v2"
    (v2 / "config.json").write_text(json.dumps(full))
    restored_v2 = tmp_path / "restored_v2.safetensors"
    run_qpk("convert", f"{v2}/", restored_v2)
    again = load_file(str(restored_v2))
    for name in quantized:
        assert np.array_equal(again[name], mine[name]), name


def test_force_replaces_only_what_qpk_writes(minilm, tmp_path):
    out = tmp_path / "mlx"
    run_qpk("convert", minilm_folder(minilm), f"{out}/", "--layout", "mlx")
    (out / "notes.txt").write_text("mine")
    again = run_qpk("convert", minilm_folder(minilm), f"{out}/", "--layout", "mlx", expect=2)
    assert "exists" in again.stderr
    run_qpk("convert", minilm_folder(minilm), f"{out}/", "--layout", "mlx", "--force")
    assert (out / "notes.txt").read_text() == "mine"
