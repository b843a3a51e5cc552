"""GPTQ end to end: a model folder and text in, a calibrated QPK out that beats the data-free default
on text it was not calibrated on."""
import json
import shutil
import subprocess

import numpy as np
import pytest
from safetensors.numpy import load_file

from conftest import qpk_binary, run_qpk, run_json

ENCODER_2D = ("--include", "encoder.layer.*.weight", "--exclude", "*LayerNorm*")

# Held out: neither qpk's calibration text nor bench/quality's evaluation sentences.
HELD_OUT = [
    "The ferry left the harbour an hour late because of the fog over the bay.",
    "She repaired the old radio with a soldering iron and a box of spare valves.",
    "Interest rates rose again this quarter, and mortgage lenders tightened their rules.",
    "A sudden frost killed most of the tomato seedlings in the greenhouse overnight.",
    "The committee postponed its vote until the auditors had finished their report.",
    "He learned to juggle three oranges while waiting for the train to Glasgow.",
    "Volcanic ash grounded flights across northern Europe for almost a week.",
    "The recipe calls for two cups of flour, a pinch of salt and cold butter.",
]


def restore(qpk_file, model_dir, folder):
    """A model folder with the dequantized weights of `qpk_file` and the original config/tokenizer."""
    folder.mkdir()
    for name in ("config.json", "tokenizer.json"):
        shutil.copy(model_dir / name, folder / name)
    run_qpk("convert", qpk_file, folder / "model.safetensors", "--dtype", "f32")
    return folder


def embeddings(folder, tmp_path):
    out = qpk_stdin(["embed", folder, "--normalize"], "\n".join(HELD_OUT) + "\n")
    return np.array([json.loads(line)["embedding"] for line in out.splitlines()], dtype=np.float64)


def qpk_stdin(args, text):
    proc = subprocess.run([qpk_binary(), *map(str, args)], input=text, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.fixture(scope="module")
def converted(minilm, tmp_path_factory):
    model_dir = minilm.parent
    tmp = tmp_path_factory.mktemp("gptq")
    gptq = tmp / "gptq.qpk"
    default = tmp / "default.qpk"
    summary = run_json("convert", model_dir, gptq, "--method", "gptq", *ENCODER_2D)
    # The recipe GPTQ solves, without calibration (the uniform grid; the data-free default's fitted
    # table is a different family: bench/quality compares them).
    run_qpk("convert", minilm, default, "--codebook", "none", *ENCODER_2D)
    return model_dir, tmp, gptq, default, summary


def test_gptq_output_validates_and_records_the_method(converted):
    _, _, gptq, _, summary = converted
    run_qpk("validate", gptq)
    report = run_json("inspect", gptq)
    quantized = [t for t in report["tensors"] if t.get("quantization")]
    assert len(quantized) == 36
    assert all(t["quantization"]["method"].startswith("gptq+") for t in quantized), quantized[0]
    written = [t for t in summary["tensors"] if t["action"] == "quantize"]
    assert len(written) == 36 and all(t["decision"]["method"] == "gptq" for t in written), written[0]


def test_gptq_beats_its_recipe_without_data_on_held_out_text(converted, tmp_path):
    model_dir, tmp, gptq, default, _ = converted
    reference = embeddings(model_dir, tmp_path)
    ours = embeddings(restore(gptq, model_dir, tmp / "gptq_model"), tmp_path)
    data_free = embeddings(restore(default, model_dir, tmp / "default_model"), tmp_path)
    cos_gptq = np.sum(reference * ours, axis=1)
    cos_default = np.sum(reference * data_free, axis=1)
    assert cos_gptq.mean() > cos_default.mean(), (cos_gptq.mean(), cos_default.mean())
    # The layer's own objective, ‖(W − Ŵ) X‖², on the held-out activations of layer 0.
    w = load_file(str(model_dir / "model.safetensors"))
    gq = load_file(str(tmp / "gptq_model" / "model.safetensors"))
    df = load_file(str(tmp / "default_model" / "model.safetensors"))
    x = held_out_layer0_input(model_dir, w)
    for proj in ("query", "key", "value"):
        name = next(n for n in w if n.endswith(f"encoder.layer.0.attention.self.{proj}.weight"))
        err_gptq = np.sum(((w[name] - gq[name]) @ x.T) ** 2)
        err_default = np.sum(((w[name] - df[name]) @ x.T) ** 2)
        assert err_gptq < err_default, (proj, err_gptq, err_default)


def held_out_layer0_input(model_dir, w):
    out = qpk_stdin(["tokenize", model_dir / "tokenizer.json"], "\n".join(HELD_OUT) + "\n")
    ids = [json.loads(line) for line in out.splitlines()]
    prefix = next(n for n in w if n.endswith("embeddings.word_embeddings.weight"))[: -len("embeddings.word_embeddings.weight")]
    rows = []
    for seq in ids:
        e = (w[prefix + "embeddings.word_embeddings.weight"][seq] + w[prefix + "embeddings.position_embeddings.weight"][: len(seq)]
             + w[prefix + "embeddings.token_type_embeddings.weight"][0])
        mean = e.mean(axis=1, keepdims=True)
        var = e.var(axis=1, keepdims=True)
        rows.append((e - mean) / np.sqrt(var + 1e-12) * w[prefix + "embeddings.LayerNorm.weight"] + w[prefix + "embeddings.LayerNorm.bias"])
    return np.concatenate(rows).astype(np.float64)


def test_a_bare_weights_file_is_refused_in_one_line(minilm, tmp_path):
    bare = tmp_path / "model.safetensors"
    shutil.copy(minilm, bare)
    proc = run_qpk("convert", bare, tmp_path / "out.qpk", "--method", "gptq", expect=2)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "config.json" in lines[0] and "tokenizer.json" in lines[0], proc.stderr


@pytest.mark.parametrize("case", ["missing", "empty", "not_utf8"])
def test_bad_calibration_text_is_one_line(minilm, tmp_path, case):
    text = tmp_path / "calib.txt"
    if case == "empty":
        text.write_text("\n\n  \n")
    elif case == "not_utf8":
        text.write_bytes(b"caf\xe9 au lait\n")
    proc = run_qpk("convert", minilm.parent, tmp_path / "out.qpk", "--calibration", text, expect=2)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and str(text) in lines[0], proc.stderr
    assert not (tmp_path / "out.qpk").exists()


def test_calibration_flags_need_a_calibrated_method(minilm, tmp_path):
    proc = run_qpk("convert", minilm, tmp_path / "out.qpk", "--method", "rtn", "--damp", "0.1", expect=2)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "--damp" in lines[0] and "gptq" in lines[0], proc.stderr


def test_user_calibration_text_and_settings_are_used(minilm, tmp_path):
    """A given text, fewer samples and act-order: still a valid file, quantized by BoA (the
    default calibrated method: attention projections) and GPTQ (the rest)."""
    text = tmp_path / "calib.txt"
    text.write_text("\n\n".join(f"Passage number {i} talks about rivers, mountains and the weather in spring." for i in range(40)))
    out = tmp_path / "small.qpk"
    run_qpk("convert", minilm.parent, out, "--calibration", text, "--samples", 8, "--seq-len", 32, "--damp", 0.05,
            "--act-order", "--bits", 3, *ENCODER_2D)
    run_qpk("validate", out)
    report = run_json("inspect", out)
    methods = {t["quantization"]["method"] for t in report["tensors"] if t.get("quantization")}
    assert methods == {"boa+mse", "gptq+mse"}


def test_act_order_groups_are_a_group_index_the_numpy_reader_decodes(minilm, tmp_path):
    """`--act-order` makes each group consecutive columns of the sweep order and records them as
    the QPK v2 group index (spec/quantization.md §11, spec/qpk-format.md §5.5); the spec's numpy
    reader decodes the file to the same values as `qpk convert`. `--static-groups` keeps v1."""
    import qpk

    text = tmp_path / "calib.txt"
    text.write_text("\n\n".join(f"Passage {i}: the orchard's pears ripened late after a wet and windy August." for i in range(24)))
    common = ["--method", "gptq", "--calibration", text, "--samples", 8, "--seq-len", 32, "--act-order",
              "--codebook", "none", "--group-size", 64, "--scale-search", "minmax", "--outlier-budget", 0, "--importance", "none",
              "--include", "encoder.layer.0.*.weight", "--exclude", "*LayerNorm*"]
    indexed, static = tmp_path / "indexed.qpk", tmp_path / "static.qpk"
    run_qpk("convert", minilm.parent, indexed, *common)
    run_qpk("convert", minilm.parent, static, *common, "--static-groups")
    run_qpk("validate", indexed, static)
    restored = tmp_path / "indexed.safetensors"
    run_qpk("convert", indexed, restored, "--dtype", "f32")
    ours = load_file(str(restored))
    with qpk.safe_open(indexed) as f:
        assert f.version == 2
        with_index = 0
        for name in f.keys():
            np.testing.assert_array_equal(f.get_tensor(name), ours[name], err_msg=name)
            try:
                t = f.get_quantized(name)
            except ValueError:  # stored raw
                continue
            if t.group_index is not None:
                with_index += 1
                columns = t.codes.shape[1]
                counts = np.bincount(t.group_index, minlength=columns // 64)
                assert (counts == 64).all(), name
                assert (t.group_index != np.arange(columns) // 64).any(), name
        assert with_index == 6  # query, key, value, attention output, FFN up and down
    with qpk.safe_open(static) as f:
        assert f.version == 1
    # The packed index costs a few hundred bytes per tensor, not 4 per column.
    sizes = {t["name"]: t for t in run_json("inspect", indexed)["tensors"]}
    q = sizes["encoder.layer.0.attention.self.query.weight"]
    assert q["bits_per_weight"] < 4.5 + 8 * 3 * 384 / 8 / (384 * 384) + 1e-9, q["bits_per_weight"]
