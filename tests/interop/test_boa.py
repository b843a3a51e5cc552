"""BoA end to end: `--method boa` writes a valid QPK whose query/key/value projections are BoA's
(attention-aware Hessians) and whose other layers are GPTQ's, read back by the Python reader."""
import numpy as np
import pytest

from conftest import run_qpk, run_json

ENCODER_2D = ("--include", "encoder.layer.*.weight", "--exclude", "*LayerNorm*")
SETTINGS = ("--bits", "3", "--samples", "32", "--seq-len", "64")


@pytest.fixture(scope="module")
def converted(minilm, tmp_path_factory):
    model_dir = minilm.parent
    tmp = tmp_path_factory.mktemp("boa")
    boa, gptq = tmp / "boa.qpk", tmp / "gptq.qpk"
    summary = run_json("convert", model_dir, boa, "--method", "boa", *SETTINGS, *ENCODER_2D)
    run_qpk("convert", model_dir, gptq, "--method", "gptq", *SETTINGS, *ENCODER_2D)
    return boa, gptq, summary


def test_boa_records_boa_for_the_attention_projections_and_gptq_for_the_rest(converted):
    boa, _, summary = converted
    run_qpk("validate", boa)
    report = run_json("inspect", boa)
    methods = {t["name"]: t["quantization"]["method"] for t in report["tensors"] if t.get("quantization")}
    assert len(methods) == 36
    for name, method in methods.items():
        attention = any(f"attention.self.{p}." in name for p in ("query", "key", "value"))
        assert method.split("+")[0] == ("boa" if attention else "gptq"), (name, method)
    decisions = {t["decision"]["method"] for t in summary["tensors"] if t["action"] == "quantize"}
    assert decisions == {"boa", "gptq"}


def test_only_the_attention_projections_differ_from_gptq_in_the_first_block(converted):
    """Block 0's statistics come from the fp32 embeddings in both runs, so its output projection and
    FFN are the same GPTQ problem; query, key and value are solved with BoA's Hessians."""
    import qpk  # the Python reader written from the spec

    boa, gptq, _ = converted
    a, b = qpk.load_file(boa), qpk.load_file(gptq)
    checked = 0
    for name in a:
        if ".layer.0." not in name or not name.endswith(".weight") or "LayerNorm" in name:
            continue
        same = np.array_equal(a[name], b[name])
        attention = any(f"attention.self.{p}." in name for p in ("query", "key", "value"))
        assert same != attention, name
        checked += 1
    assert checked == 6


def test_boa_needs_a_model_folder(minilm, tmp_path):
    import shutil

    bare = tmp_path / "model.safetensors"
    shutil.copy(minilm, bare)
    proc = run_qpk("convert", bare, tmp_path / "out.qpk", "--method", "boa", expect=2)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "config.json" in lines[0] and "tokenizer.json" in lines[0], proc.stderr
    assert not (tmp_path / "out.qpk").exists()


def test_calibration_flags_with_a_data_free_method_name_both_calibrated_methods(minilm, tmp_path):
    proc = run_qpk("convert", minilm, tmp_path / "out.qpk", "--method", "prequant", "--samples", "8", expect=2)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "--samples" in lines[0] and "boa" in lines[0] and "gptq" in lines[0], proc.stderr
