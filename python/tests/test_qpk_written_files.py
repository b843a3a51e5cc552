"""The package reads what qpk writes: every bit width, every outlier kind, both schemes, raw dtypes.

The reference is qpk itself: `qpk convert m.qpk r.safetensors --dtype f32` dequantizes with the
Swift implementation; the package must agree bit for bit (both compute (q − z)·s in f32), and
outliers must come back as the source's exact values.
"""
import numpy as np
import pytest
from safetensors.numpy import load_file as st_load

import qpk
from qpk_testpaths import FIXTURES, FRACAST

RECIPES = [
    ("rtn-2", ["--method", "rtn", "--bits", "2", "--group-size", "32"]),
    ("rtn-3", ["--method", "rtn", "--bits", "3", "--group-size", "64"]),
    ("rtn-8-symmetric", ["--method", "rtn", "--bits", "8", "--scheme", "symmetric", "--group-size", "row"]),
    ("pq-4-elements", ["--bits", "4", "--outlier-kind", "elements", "--outlier-budget", "1%"]),
    ("pq-3-rows", ["--bits", "3", "--outlier-kind", "rows", "--outlier-budget", "2%"]),
    ("pq-2-columns", ["--bits", "2", "--outlier-kind", "columns", "--outlier-budget", "2%"]),
    ("pq-8-elements", ["--bits", "8", "--outlier-kind", "elements", "--outlier-budget", "0.5%"]),
]


@pytest.fixture(scope="module", params=RECIPES, ids=[r[0] for r in RECIPES])
def converted(request, run, tmp_path_factory):
    name, args = request.param
    d = tmp_path_factory.mktemp(name)
    q = d / "m.qpk"
    run("convert", FRACAST, q, *args)
    restored = d / "r.safetensors"
    run("convert", q, restored, "--dtype", "f32")
    return name, args, q, st_load(str(restored))


def test_load_file_equals_qpks_own_dequantization(converted):
    _, _, q, restored = converted
    ours = qpk.load_file(q)
    assert list(ours) == list(st_load(str(FRACAST)))
    for name, values in restored.items():
        assert ours[name].shape == values.shape, name
        np.testing.assert_array_equal(ours[name], values, err_msg=name)


def test_the_recipe_is_what_was_asked_and_outliers_are_exact(converted, run_json):
    label, args, q, _ = converted
    source = st_load(str(FRACAST))
    bits = int(args[args.index("--bits") + 1])
    kind = args[args.index("--outlier-kind") + 1] if "--outlier-kind" in args else None
    report = {t["name"]: t for t in run_json("inspect", q)["tensors"]}
    extracted = qpk.outlier_values(q, source)  # the source's values at the outlier positions, §6 order
    with qpk.safe_open(q) as f:
        quantized = [n for n in f.keys() if f.is_quantized(n)]
        assert quantized
        with_outliers = 0
        for name in quantized:
            qt = f.get_quantized(name)
            assert qt.bits == bits and qt.codes.max() < (1 << bits)
            if "symmetric" in label:
                assert np.all(qt.zeros == 2 ** (bits - 1))
            o = f.outliers(name)
            if o is None or len(o.indices) == 0:
                continue
            with_outliers += 1
            assert o.kind == kind
            mask = qt.outlier_mask()
            np.testing.assert_array_equal(f.get_tensor(name)[mask], source[name][mask], err_msg=name)
            np.testing.assert_array_equal(extracted[name], o.values)
        assert (with_outliers > 0) == (kind is not None), label
        assert f.validate() == []
    assert qpk.validate(q) == []


def test_recorded_error_matches_the_measured_error(converted):
    _, _, q, _ = converted
    from qpk.__main__ import check_against
    with qpk.safe_open(q) as f:
        assert check_against(f, str(FRACAST), log=lambda _: None) == []


RAW_DTYPES = sorted(p.stem.split("_", 1)[1] for p in (FIXTURES / "safetensors").glob("dtype_*.safetensors"))


@pytest.mark.parametrize("dtype", RAW_DTYPES)
def test_raw_tensors_of_every_dtype_come_back_exactly(tmp_path, run, dtype):
    src = FIXTURES / "safetensors" / f"dtype_{dtype}.safetensors"
    q = tmp_path / "d.qpk"
    run("convert", src, q, "--exclude", "*")
    with qpk.safe_open(q) as f:
        assert not f.is_quantized("x")
        got = f.get_tensor("x")
        if dtype == "F4":  # sub-byte: the packed bytes, as stored
            assert got.dtype == np.uint8
            assert got.tobytes() == _raw_bytes(src)
            return
        want = _reference(dtype, src)
        assert got.dtype == want.dtype and got.shape == want.shape
        assert got.tobytes() == want.tobytes()
        widened = f.get_tensor("x", widen=True)
        if dtype == "BF16" or dtype.startswith("F8"):
            assert widened.dtype == np.float32
            np.testing.assert_array_equal(widened, want.astype(np.float32))


def _reference(dtype, src):
    """The fixture's tensor as the reference libraries read it (ml_dtypes for BF16 and F8)."""
    import ml_dtypes
    from qpk._dtypes import ML_DTYPES_NAMES
    if dtype in ML_DTYPES_NAMES:
        return np.frombuffer(_raw_bytes(src), getattr(ml_dtypes, ML_DTYPES_NAMES[dtype])).reshape(2, 4)
    return st_load(str(src))["x"]


def _raw_bytes(path):
    import json, struct
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    info = json.loads(data[8:8 + n])["x"]
    return data[8 + n + info["data_offsets"][0]: 8 + n + info["data_offsets"][1]]


@pytest.mark.parametrize("kind", ["elements", "rows", "columns"])
def test_a_keras_kernel_quantized_along_its_inputs_axis_0(tmp_path, run, kind):
    """qpk quantizes Keras [in, out] kernels with axis 0 (§5.1): the package must agree with qpk's
    own dequantization bit for bit, and outliers must be the source's exact values."""
    h5py = pytest.importorskip("h5py")
    kernel = np.random.default_rng(3).standard_normal((256, 96)).astype(np.float32)
    kernel[::37, ::11] *= 8  # a few large weights, so there are outliers
    src = tmp_path / "k.weights.h5"
    with h5py.File(src, "w") as f:
        g = f.create_group("layers/dense/vars")
        g.attrs["name"] = "dense"
        g.create_dataset("0", data=kernel)
        g.create_dataset("1", data=np.zeros(96, np.float32))
    q = tmp_path / "k.qpk"
    run("convert", src, q, "--outlier-kind", kind, "--outlier-budget", "2%")
    restored = tmp_path / "r.safetensors"
    run("convert", q, restored, "--dtype", "f32")
    name = "layers/dense/vars/0"
    with qpk.safe_open(q) as f:
        assert f.entry(name)["quantization"]["axis"] == 0
        qt = f.get_quantized(name)
        assert qt.codes.shape == (96, 256)          # the transposed view: R = dn, C = d0
        got = f.get_tensor(name)
        np.testing.assert_array_equal(got, st_load(str(restored))[name])
        o = f.outliers(name)
        assert o is not None and o.kind == kind and len(o.indices)
        mask = qt.outlier_mask()
        np.testing.assert_array_equal(got[mask], kernel[mask])
        np.testing.assert_array_equal(qpk.outlier_values(q, {name: kernel})[name], o.values)
