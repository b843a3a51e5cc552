"""The worked example of spec/qpk-format.md §9, rebuilt byte for byte and read back."""
import zlib

import numpy as np
import pytest

import qpk
from qpk_build import Builder

EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


@pytest.fixture
def example(tmp_path):
    b = Builder()
    b.affine("w", [2, 3], codes=[0, 15, 7, 3, 1, 2], scales=[0.5, 1.0, 2.0, 0.25], zeros=[1, 0, 2, 8], bits=4,
             group_size=2, outliers=("elements", [4], [100.0]), error={"max_abs_error": 0.125, "sqnr_db": 40})
    b.raw("b", "F32", [2], np.array([1.0, -2.0], "<f4").tobytes())
    data = b.build(order=["b", "w"], metadata={"format": "pt"}, recipe={"bits": 4},
                   provenance={"created_by": "spec example", "qpk_version": "1.0.0",
                               "sources": [{"header_sha256": EMPTY_SHA256, "name": "m.safetensors", "size": 128}]})
    path = tmp_path / "example.qpk"
    path.write_bytes(data)
    return path, data


def test_the_rebuilt_example_is_the_spec_file_byte_for_byte(example):
    _, data = example
    assert len(data) == 1472
    assert zlib.crc32(data) == 0xB3F4F2F8


def test_load_file_dequantizes_and_restores_the_outlier(example):
    path, _ = example
    weights = qpk.load_file(path)
    assert list(weights) == ["b", "w"]
    np.testing.assert_array_equal(weights["w"], np.array([[-0.5, 7.0, 7.0], [2.0, 100.0, -1.5]], np.float32))
    assert weights["w"].dtype == np.float32
    np.testing.assert_array_equal(weights["b"], np.array([1.0, -2.0], np.float32))


def test_safe_open_exposes_codes_scales_zeros_and_outliers(example):
    path, _ = example
    with qpk.safe_open(path) as f:
        assert f.keys() == ["b", "w"]
        assert f.metadata() == {"format": "pt"}
        assert f.recipe() == {"bits": 4}
        assert f.provenance()["sources"][0]["name"] == "m.safetensors"
        q = f.get_quantized("w")
        np.testing.assert_array_equal(q.codes, [[0, 15, 7], [3, 1, 2]])
        np.testing.assert_array_equal(q.scales, np.array([[0.5, 1.0], [2.0, 0.25]], np.float16))
        np.testing.assert_array_equal(q.zeros, np.array([[1, 0], [2, 8]], np.float16))
        assert (q.bits, q.group_size, q.axis, q.layout["scheme"]) == (4, 2, -1, "affine")
        o = f.outliers("w")
        assert o.kind == "elements" and o.statistic == "abs_deviation" and o.threshold == 3.5
        np.testing.assert_array_equal(o.indices, [4])
        np.testing.assert_array_equal(o.values, [100.0])
        np.testing.assert_array_equal(q.outlier_mask(), [[False, False, False], [False, True, False]])
        np.testing.assert_array_equal(q.dequantize(outliers=False), [[-0.5, 7, 7], [2, -2, -1.5]])
        assert f.outliers("b") is None
        assert f.error("w") == {"max_abs_error": 0.125, "sqnr_db": 40.0}
        assert f.bits_per_weight("w") == 36.0
        with pytest.raises(ValueError, match="stored raw"):
            f.get_quantized("b")
        with pytest.raises(KeyError, match="no tensor named 'nope'"):
            f.get_tensor("nope")
        assert f.validate() == []


def test_arrays_outlive_the_file(example):
    path, _ = example
    f = qpk.safe_open(path)
    w = f.get_tensor("w")
    f.close()
    assert w[1, 1] == 100.0
    with pytest.raises(ValueError, match="closed"):
        f.get_tensor("w")
