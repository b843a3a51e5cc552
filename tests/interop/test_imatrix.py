"""Importance matrices (spec/gguf.md §9): `qpk calibrate` writes llama.cpp's imatrix GGUF under
llama.cpp's tensor names, which the `gguf` package reads and whose sums equal an independent numpy
forward pass; `qpk convert --imatrix` reads qpk's files and llama.cpp's (GGUF written here with
`gguf.GGUFWriter` as llama-imatrix writes it, and the legacy .dat form), under either naming."""
import struct
import sys

import gguf
import numpy as np
import pytest
from safetensors.numpy import load_file

from conftest import ROOT, run_json, run_qpk

sys.path.insert(0, str(ROOT / "bench" / "quality"))
from bert_numpy import BertConfig, BertEncoder  # noqa: E402

# Passages that are neither qpk's built-in calibration text nor bench/quality's sentences.
PASSAGES = [
    "The lighthouse keeper wrote the weather in a ledger every morning at six.",
    "Copper pipes expand in the heat, so the plumber left a little slack at each joint.",
    "A flock of starlings turned over the marsh like smoke before settling in the reeds.",
    "The court adjourned after the defence asked for more time to examine the new evidence.",
    "She tuned the violin by ear, then checked each string against the piano's A.",
]
ENCODER_2D = ("--include", "encoder.layer.*.weight", "--exclude", "*LayerNorm*")
# How llama.cpp names BERT's linear weights (spec/gguf.md §8).
LLAMA_CPP = {"attention.self.query": "attn_q", "attention.self.key": "attn_k", "attention.self.value": "attn_v",
             "attention.output.dense": "attn_output", "intermediate.dense": "ffn_up", "output.dense": "ffn_down"}


def llama_cpp_name(hf_name):
    _, _, layer, rest = hf_name.split(".", 3)
    return f"blk.{layer}.{LLAMA_CPP[rest.removesuffix('.weight')]}.weight"


@pytest.fixture(scope="module")
def calibrated(minilm, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("imatrix")
    text = tmp / "calib.txt"
    text.write_text("\n\n".join(PASSAGES) + "\n")
    out = tmp / "minilm.imatrix.gguf"
    run_qpk("calibrate", minilm.parent, "--calibration", text, "--seq-len", "32", "-o", out)
    return minilm.parent, tmp, out


def numpy_sums(model_dir, sequences):
    """Σ x² per input column and the token count of every linear layer, from the numpy BERT."""
    config = BertConfig.from_json(model_dir / "config.json")
    encoder = BertEncoder(config, load_file(str(model_dir / "model.safetensors")))
    length = max(len(s) for s in sequences)
    ids = np.zeros((len(sequences), length), dtype=np.int64)
    mask = np.zeros((len(sequences), length))
    for row, seq in enumerate(sequences):
        ids[row, : len(seq)] = seq
        mask[row, : len(seq)] = 1
    sums = {}
    original = encoder._linear

    def observed(x, name):
        flat = x.reshape(-1, x.shape[-1])[mask.reshape(-1) > 0].astype(np.float64)
        sums[name + ".weight"] = (flat**2).sum(axis=0)
        return original(x, name)

    encoder._linear = observed
    encoder.hidden_states(ids, mask)
    return sums, int(mask.sum())


def test_the_gguf_package_reads_what_qpk_calibrate_writes(calibrated):
    _, _, out = calibrated
    reader = gguf.GGUFReader(out)
    fields = {name: field for name, field in reader.fields.items()}
    assert fields["general.type"].contents() == "imatrix"
    assert fields["imatrix.datasets"].contents() == ["calib.txt"]
    assert fields["imatrix.chunk_count"].contents() == len(PASSAGES)
    names = [t.name for t in reader.tensors]
    assert names == sorted(names, key=lambda n: (n.rsplit(".", 1)[0], n.endswith(".counts")))
    layers = {n[: -len(".in_sum2")] for n in names if n.endswith(".in_sum2")}
    assert len(layers) == 36  # six layers × (query, key, value, attention output, FFN up, FFN down)
    tensor = {t.name: t for t in reader.tensors}
    q = tensor["blk.0.attn_q.weight.in_sum2"]
    assert q.tensor_type == gguf.GGMLQuantizationType.F32 and list(q.shape) == [384, 1]
    assert list(tensor["blk.0.ffn_down.weight.in_sum2"].shape) == [1536, 1]


def test_the_sums_equal_an_independent_numpy_forward_pass(calibrated):
    model_dir, _, out = calibrated
    from tokenizers import Tokenizer

    # The ids as Hugging Face's tokenizer makes them (qpk's own tokenizer is tested to match it).
    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(32)
    ids = [tokenizer.encode(p).ids for p in PASSAGES]
    expected, tokens = numpy_sums(model_dir, ids)
    reader = gguf.GGUFReader(out)
    tensor = {t.name: np.asarray(t.data, dtype=np.float64).reshape(-1) for t in reader.tensors}
    assert len(expected) == 36
    for hf_name, sums in expected.items():
        name = llama_cpp_name(hf_name)
        assert tensor[name + ".counts"].tolist() == [tokens], name
        got = tensor[name + ".in_sum2"]
        assert np.linalg.norm(got - sums) / np.linalg.norm(sums) < 1e-4, name


def test_convert_with_qpks_imatrix_records_measured_importance(calibrated):
    model_dir, tmp, out = calibrated
    summary = run_json("convert", model_dir / "model.safetensors", tmp / "weighted.qpk", *ENCODER_2D,
                       "--imatrix", out, "--force")
    quantized = [t for t in summary["tensors"] if t["action"] == "quantize"]
    assert len(quantized) == 36
    assert {t["decision"]["importance"] for t in quantized} == {"calibration"}
    run_qpk("validate", tmp / "weighted.qpk")


def write_llama_cpp_style(path, entries):
    """An imatrix as llama-imatrix writes it, through the reference gguf writer."""
    writer = gguf.GGUFWriter(str(path), arch="", endianess=gguf.GGUFEndian.LITTLE)
    # llama-imatrix writes no architecture; the gguf package always adds general.architecture.
    writer.add_string("general.type", "imatrix")
    writer.add_array("imatrix.datasets", ["wiki.train.raw"])
    writer.add_uint32("imatrix.chunk_count", 10)
    writer.add_uint32("imatrix.chunk_size", 512)
    for name, (sums, count) in sorted(entries.items()):
        writer.add_tensor(name + ".in_sum2", np.asarray(sums, dtype=np.float32).reshape(1, -1))
        writer.add_tensor(name + ".counts", np.asarray([[count]], dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def test_convert_reads_a_llama_cpp_imatrix_and_its_legacy_form(minilm, tmp_path):
    # The GGUF form keyed by llama.cpp's name, the legacy form by the checkpoint's own name.
    name = "encoder.layer.2.intermediate.dense.weight"
    sums = np.linspace(1, 100, 384).astype(np.float32)
    modern = tmp_path / "llama.imatrix.gguf"
    write_llama_cpp_style(modern, {"blk.2.ffn_up.weight": (sums * 5120, 5120)})
    legacy = tmp_path / "llama.imatrix.dat"
    with open(legacy, "wb") as f:
        f.write(struct.pack("<i", 1))
        f.write(struct.pack("<i", len(name)) + name.encode())
        f.write(struct.pack("<ii", 10, 384))
        f.write((sums * 10).astype("<f4").tobytes())
        f.write(struct.pack("<i", 10) + struct.pack("<i", 14) + b"wiki.train.raw")
    outputs = []
    for source in (modern, legacy):
        out = tmp_path / (source.suffix[1:] + ".qpk")
        summary = run_json("convert", minilm, out, *ENCODER_2D, "--imatrix", source)
        by_name = {t["name"]: t for t in summary["tensors"]}
        assert by_name[name]["decision"]["importance"] == "calibration"
        assert by_name["encoder.layer.2.output.dense.weight"]["decision"]["importance"] == "norm"
        outputs.append(out)
    # Same means, same weights: the two forms give the same values in every tensor.
    run_qpk("diff", *outputs, expect=0)


def test_a_mismatched_or_unusable_imatrix_is_refused(minilm, tmp_path):
    bad = tmp_path / "narrow.imatrix.gguf"
    write_llama_cpp_style(bad, {"blk.0.attn_q.weight": (np.ones(96), 1)})
    proc = run_qpk("convert", minilm, tmp_path / "a.qpk", *ENCODER_2D, "--imatrix", bad, check=False)
    assert proc.returncode == 2 and "encoder.layer.0.attention.self.query.weight" in proc.stderr
    assert "96 columns" in proc.stderr and not (tmp_path / "a.qpk").exists()
    other = tmp_path / "other.imatrix.gguf"
    write_llama_cpp_style(other, {"model.layers.0.self_attn.q_proj.weight": (np.ones(384), 1)})
    proc = run_qpk("convert", minilm, tmp_path / "b.qpk", *ENCODER_2D, "--imatrix", other, check=False)
    assert proc.returncode == 2 and "--imatrix has no effect" in proc.stderr
    proc = run_qpk("convert", minilm, tmp_path / "c.safetensors", "--imatrix", other, check=False)
    assert proc.returncode == 2 and "--imatrix" in proc.stderr
    model = tmp_path / "model.gguf"
    run_qpk("convert", minilm, model)
    proc = run_qpk("convert", minilm, tmp_path / "d.qpk", "--imatrix", model, check=False)
    assert proc.returncode != 0 and "not_importance_matrix" in proc.stderr
    assert proc.stderr.count("\n") == 1
