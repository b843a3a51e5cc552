"""Quantization axis 0 (spec §4.3, §5.1): groups run along the leading axes.

The tensor [d0, …, dn] is viewed as the transpose of the usual matrix: R = dn rows and
C = d0·…·d(n−1) columns, element (r, c) being the original flat element c·dn + r. The files are
built by hand and the expected values computed element by element, independently of the reader.
"""
import numpy as np
import pytest

import qpk
from qpk_build import Builder

SHAPE = (2, 3, 4)          # R = 4 rows, C = 6 columns in the transposed view
R, C, GS = 4, 6, 4         # group size 4: each row has a full group of 4 and a short group of 2
G = 2


def _case(rng, bits):
    codes = rng.integers(0, 1 << bits, size=R * C)
    scales = rng.uniform(0.1, 1.0, size=R * G).astype(np.float16)
    zeros = rng.uniform(0, (1 << bits) - 1, size=R * G).astype(np.float16)
    return codes, scales, zeros


def _expected(codes, scales, zeros):
    """Dequantizes element by element with the §5.4 formula and the axis-0 index rule."""
    flat = np.zeros(int(np.prod(SHAPE)), np.float32)
    for r in range(R):
        for c in range(C):
            g = c // GS
            s, z = np.float32(scales[r * G + g]), np.float32(zeros[r * G + g])
            flat[c * SHAPE[-1] + r] = (np.float32(codes[r * C + c]) - z) * s
    return flat


@pytest.mark.parametrize("bits", [2, 3, 4, 8])
def test_axis0_dequantizes_through_the_transposed_view(tmp_path, bits):
    codes, scales, zeros = _case(np.random.default_rng(bits), bits)
    b = Builder()
    b.affine("t", SHAPE, codes, scales, zeros, bits=bits, group_size=GS, axis=0)
    path = tmp_path / "a.qpk"
    path.write_bytes(b.build())
    with qpk.safe_open(path) as f:
        q = f.get_quantized("t")
        assert q.codes.shape == (R, C) and q.scales.shape == (R, G) and q.axis == 0
        np.testing.assert_array_equal(q.codes.reshape(-1), codes)
        got = f.get_tensor("t")
        assert got.shape == SHAPE
        np.testing.assert_array_equal(got.reshape(-1), _expected(codes, scales, zeros))
        assert f.validate() == []


@pytest.mark.parametrize("kind,indices", [("rows", [1, 3]), ("columns", [0, 4, 5]), ("elements", [2, 7, 23])])
def test_axis0_outlier_indices_refer_to_the_transposed_view(tmp_path, kind, indices):
    codes, scales, zeros = _case(np.random.default_rng(7), 4)
    count = {"rows": len(indices) * C, "columns": len(indices) * R, "elements": len(indices)}[kind]
    values = 1000.0 + np.arange(count, dtype=np.float32)
    b = Builder()
    b.affine("t", SHAPE, codes, scales, zeros, bits=4, group_size=GS, axis=0, outliers=(kind, indices, values))
    path = tmp_path / "o.qpk"
    path.write_bytes(b.build())
    expected = _expected(codes, scales, zeros)
    # §6 order, row-major over the covered parameters of the R×C view
    covered = [(r, c) for r in range(R) for c in range(C)
               if (kind == "rows" and r in indices) or (kind == "columns" and c in indices)
               or (kind == "elements" and r * C + c in indices)]
    for (r, c), v in zip(covered, values):
        expected[c * SHAPE[-1] + r] = v
    mask = np.zeros(expected.shape, bool)
    for r, c in covered:
        mask[c * SHAPE[-1] + r] = True
    with qpk.safe_open(path) as f:
        np.testing.assert_array_equal(f.get_tensor("t").reshape(-1), expected)
        np.testing.assert_array_equal(f.get_quantized("t").outlier_mask().reshape(-1), mask)
        # extracting the values of the full tensor at the outlier positions gives them back in §6 order
        np.testing.assert_array_equal(qpk.outlier_values(path, {"t": f.get_tensor("t")})["t"], values)


def test_axis_other_than_minus_one_or_zero_is_invalid_quantization(tmp_path):
    codes, scales, zeros = _case(np.random.default_rng(1), 4)
    b = Builder()
    b.affine("t", SHAPE, codes, scales, zeros, bits=4, group_size=GS, axis=1)
    path = tmp_path / "bad.qpk"
    path.write_bytes(b.build())
    with pytest.raises(qpk.QPKError) as e:
        qpk.safe_open(path)
    assert e.value.rule == "invalid_quantization" and e.value.tensor == "t"


def test_a_vector_is_one_row_under_either_axis(tmp_path):
    """§5.1: a 1-D tensor [n] is R = 1, C = n whatever the axis."""
    b = Builder()
    b.affine("v", [5], codes=[0, 1, 2, 3, 4], scales=[1.0, 2.0], zeros=[0, 0], bits=4, group_size=3, axis=0)
    path = tmp_path / "v.qpk"
    path.write_bytes(b.build())
    with qpk.safe_open(path) as f:
        q = f.get_quantized("v")
        assert q.codes.shape == (1, 5) and q.scales.shape == (1, 2)
        np.testing.assert_array_equal(f.get_tensor("v"), [0, 1, 2, 6, 8])
    assert qpk.matrix_shape((5,), 0) == (1, 5) and qpk.matrix_shape((), 0) == (1, 1)
