"""HDF5 interop: h5py reads what qpk writes and qpk reads what h5py writes, losslessly."""
import subprocess
import sys

import h5py
import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from conftest import FIXTURES, ROOT, raw_tensors, run_qpk

H5_FIXTURES = sorted(p for p in (FIXTURES / "hdf5").glob("*.h5") if "truncated" not in p.name)
CHECK = ROOT / "tests" / "interop" / "check_hdf5_roundtrip.py"


def h5_datasets(path):
    out = {}
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset) and obj.dtype.kind in "fiub" or (
                    isinstance(obj, h5py.Dataset) and obj.dtype.kind == "V" and obj.dtype.itemsize == 2):
                out[name] = obj[()]
        f.visititems(visit)
    return out


def check_roundtrip(a, b):
    proc = subprocess.run([sys.executable, str(CHECK), str(a), str(b)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("fixture", H5_FIXTURES, ids=lambda p: p.name)
def test_hdf5_to_safetensors_to_hdf5_is_lossless(fixture, tmp_path):
    st = tmp_path / "x.safetensors"
    back = tmp_path / "x.h5"
    run_qpk("convert", fixture, st)
    run_qpk("convert", st, back)
    if fixture.name != "dtypes.h5":  # dtypes.h5 holds a big-endian and a string dataset on purpose
        check_roundtrip(fixture, back)
    # and the safetensors in the middle holds the same numbers h5py sees
    tensors, _ = raw_tensors(st)
    for name, value in h5_datasets(fixture).items():
        assert name in tensors, name
        little = np.ascontiguousarray(value)
        if little.dtype.byteorder == ">":
            little = little.astype(little.dtype.newbyteorder("<"))
        assert tensors[name][2] == little.tobytes(), name


def test_safetensors_to_hdf5_to_safetensors_is_lossless(tmp_path):
    rng = np.random.default_rng(3)
    tensors = {
        "encoder.layer.0.attention.self.query.weight": rng.standard_normal((16, 16)).astype(np.float32),
        "embeddings/word": rng.standard_normal((10, 4)).astype(np.float16),
        "counts": rng.integers(0, 9, size=(7,), dtype=np.int32),
        "flags": rng.random(5) > 0.5,
    }
    src = tmp_path / "a.safetensors"
    save_file(tensors, str(src), metadata={"format": "pt", "origin": "test"})
    h5 = tmp_path / "a.h5"
    run_qpk("convert", src, h5)
    with h5py.File(h5, "r") as f:
        assert np.array_equal(f["encoder.layer.0.attention.self.query.weight"][()], tensors["encoder.layer.0.attention.self.query.weight"])
        assert np.array_equal(f["embeddings/word"][()], tensors["embeddings/word"])
    back = tmp_path / "b.safetensors"
    run_qpk("convert", h5, back)
    got = load_file(str(back))
    assert {k: v.tobytes() for k, v in got.items()} == {k: v.tobytes() for k, v in tensors.items()}
    from safetensors import safe_open
    with safe_open(str(back), framework="numpy") as f:
        assert f.metadata() == {"format": "pt", "origin": "test"}
    # diff across formats says equal
    run_qpk("diff", src, h5, expect=0)


def test_quantize_straight_from_hdf5_and_back(tmp_path):
    src = FIXTURES / "hdf5" / "keras2_model.h5"
    if not src.exists():
        pytest.skip("fixture missing")
    q = tmp_path / "m.qpk"
    run_qpk("convert", src, q, "--bits", "4", "--include", "*kernel*")
    back = tmp_path / "m.h5"
    run_qpk("convert", q, back)
    run_qpk("validate", back, expect=0)
    with h5py.File(back, "r") as f, h5py.File(src, "r") as g:
        assert dict(f.attrs).keys() == dict(g.attrs).keys()


def test_truncated_hdf5_is_reported_cleanly():
    path = FIXTURES / "hdf5" / "truncated.h5"
    proc = run_qpk("validate", path, expect=1)
    assert "truncated.h5" in proc.stdout
    assert "HDF5-DIAG" not in proc.stdout + proc.stderr
    assert "#000" not in proc.stdout + proc.stderr


def test_fer_keras_model_round_trips_through_safetensors(fer_model, tmp_path):
    st = tmp_path / "fer.safetensors"
    back = tmp_path / "fer.h5"
    run_qpk("convert", fer_model, st)
    run_qpk("convert", st, back)
    check_roundtrip(fer_model, back)
    run_qpk("diff", fer_model, back, expect=0)
