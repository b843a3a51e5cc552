"""QPK: an independent numpy reader agrees with qpk, and the real-model quality bars hold."""
import json
import subprocess
import sys

import numpy as np
import pytest
from safetensors.numpy import load_file

import qpk
from qpk.__main__ import check_against

from conftest import FIXTURES, ROOT, run_qpk, run_json

FRACAST = FIXTURES / "models" / "fracast" / "model.safetensors"
ENCODER_2D = ("--include", "encoder.layer.*.weight", "--exclude", "*LayerNorm*")


def sqnr_db(a, b):
    a = a.astype(np.float64); b = b.astype(np.float64)
    noise = np.sum((a - b) ** 2)
    return float("inf") if noise == 0 else 10 * np.log10(np.sum(a * a) / noise)


def test_spec_reader_matches_qpk_dequantization(tmp_path):
    """The `qpk` Python package (python/) reads QPK from the spec alone: its dequantization must
    equal qpk's, and the error it measures against the source must equal the recorded error."""
    q = tmp_path / "m.qpk"
    run_qpk("convert", FRACAST, q, "--bits", "4", "--group-size", "64")
    restored = tmp_path / "r.safetensors"
    run_qpk("convert", q, restored, "--dtype", "f32")
    assert qpk.validate(q) == []
    with qpk.safe_open(q) as f:
        assert check_against(f, str(FRACAST), log=lambda _: None) == []
    ours = load_file(str(restored))
    theirs = qpk.load_file(q)
    assert set(theirs) == set(ours)
    for name in ours:
        np.testing.assert_array_equal(theirs[name].astype(np.float32), ours[name], err_msg=name)


def test_reader_command_still_works(tmp_path):
    """tests/interop/qpk_read.py (used by the Swift interop tests) runs the package's reader."""
    q = tmp_path / "m.qpk"
    run_qpk("convert", FRACAST, q)
    reader = ROOT / "tests" / "interop" / "qpk_read.py"
    proc = subprocess.run([sys.executable, str(reader), str(q), "--check-against", str(FRACAST)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "valid QPK v2" in proc.stdout and "MISMATCH" not in proc.stdout


@pytest.mark.parametrize("bits", [2, 3, 4, 8])
def test_every_bit_width_round_trips_with_recorded_error(tmp_path, bits):
    q = tmp_path / f"m{bits}.qpk"
    summary = run_json("convert", FRACAST, q, "--bits", bits, "--method", "rtn", "--group-size", "64")
    restored = tmp_path / "r.safetensors"
    run_qpk("convert", q, restored, "--dtype", "f32")
    a, b = load_file(str(FRACAST)), load_file(str(restored))
    report = run_json("inspect", q)
    quantized = [t for t in report["tensors"] if t.get("quantization")]
    assert quantized, "default selection quantized nothing"
    for t in quantized:
        name = t["name"]
        assert t["quantization"]["bits"] == bits
        measured = sqnr_db(a[name], b[name])
        assert abs(measured - t["quantization"]["sqnr_db"]) < 0.05, (name, measured, t["quantization"])
    untouched = [n for n in a if n not in {t["name"] for t in quantized}]
    for n in untouched:
        assert a[n].tobytes() == b[n].tobytes()


def test_outlier_mask_export_marks_exactly_the_recorded_outliers(tmp_path):
    q = tmp_path / "m.qpk"
    run_qpk("convert", FRACAST, q, "--method", "prequant", "--outlier-budget", "1%")
    out = tmp_path / "peft.safetensors"
    run_qpk("convert", q, out, "--outlier-mask")
    tensors = load_file(str(out))
    report = run_json("inspect", q)
    for t in report["tensors"]:
        if not t.get("quantization"):
            assert t["name"] + ".outlier_mask" not in tensors
            continue
        mask = tensors[t["name"] + ".outlier_mask"]
        assert mask.dtype == np.bool_ and mask.shape == tuple(t["shape"])
        assert int(mask.sum()) == t["quantization"]["outliers"]
    original = load_file(str(FRACAST))
    for name, mask in ((k[: -len(".outlier_mask")], v) for k, v in tensors.items() if k.endswith(".outlier_mask")):
        # outliers are stored at full precision: they come back exactly
        assert np.array_equal(tensors[name][mask], original[name][mask])


def test_minilm_rtn_4bit_group64_meets_the_foundation_bar(minilm, tmp_path):
    q = tmp_path / "minilm.qpk"
    summary = run_json("convert", minilm, q, "--method", "rtn", "--bits", "4", "--group-size", "64",
                       *ENCODER_2D)
    restored = tmp_path / "minilm.safetensors"
    run_qpk("convert", q, restored, "--dtype", "f32")
    a, b = load_file(str(minilm)), load_file(str(restored))
    names = [t["name"] for t in summary["tensors"] if t["action"] == "quantize"]
    assert len(names) == 36
    assert all(a[n].ndim == 2 for n in names)
    num = sum(np.sum(a[n].astype(np.float64) ** 2) for n in names)
    den = sum(np.sum((a[n].astype(np.float64) - b[n]) ** 2) for n in names)
    pooled = 10 * np.log10(num / den)
    assert pooled >= 20.4, pooled
    assert summary["quantized_bits_per_weight"] <= 4.55
    # `qpk diff` agrees with numpy on the per-tensor SQNR within 0.01 dB
    diff = json.loads(run_qpk("diff", minilm, q, "--json", expect=1).stdout)
    by_name = {t["name"]: t for t in diff["tensors"]}
    for n in names:
        assert abs(by_name[n]["sqnr_db"] - sqnr_db(a[n], b[n])) < 0.01, n


def test_minilm_default_recipe_beats_round_to_nearest(minilm, tmp_path):
    rtn = run_json("convert", minilm, tmp_path / "rtn.qpk", "--method", "rtn", "--bits", "4",
                   "--group-size", "64", *ENCODER_2D)
    default = run_json("convert", minilm, tmp_path / "pq.qpk", *ENCODER_2D)
    assert default["quantized_bits_per_weight"] <= 4.5 + 1e-9
    assert default["sqnr_db"] > rtn["sqnr_db"]
