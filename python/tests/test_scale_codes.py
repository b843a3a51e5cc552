"""QPK v2 log-coded group scales (spec/qpk-format.md §5.8, rules 26, 31, 32), read from files
built by hand: the magnitude table pinned to values computed with 200-bit arithmetic, the decoded
scales and values equal to a hand computation, and every rule named.

Needs no qpk binary (tests/interop/test_qpk_v2.py compares this reader with qpk's own decoding).
"""
import json
import struct
import zlib

import numpy as np
import pytest

import qpk
from qpk._tensor import decode_scale_codes, scale_magnitudes
from qpk_build import Builder

#: m[k] bit patterns for a few (K, O, k), checked with mpmath at 200 bits: the binary32 nearest to
#: 2^(−k·O/k_max). m[0] = 1 and m[k_max] = 2^(−O) are exact.
PINNED = {
    (8, 8): {0: 0x3F800000, 1: 0x3F751016, 64: 0x3D7A78C3, 127: 0x3B800000},
    (6, 6): {0: 0x3F800000, 1: 0x3F5FDC1B, 16: 0x3DEF6420, 31: 0x3C800000},
    (3, 2): {0: 0x3F800000, 1: 0x3F214518, 2: 0x3ECB2FF5, 3: 0x3E800000},
}


def f32(pattern):
    return np.array([pattern], np.uint32).view(np.float32)[0]


@pytest.mark.parametrize("bits, octaves", list(PINNED))
def test_magnitude_table_pinned(bits, octaves):
    table = scale_magnitudes(bits, octaves)
    assert table.dtype == np.float32 and len(table) == 2 ** (bits - 1)
    for k, pattern in PINNED[(bits, octaves)].items():
        assert table[k].view(np.uint32) == pattern, k


def test_magnitude_tables_span_their_octaves():
    for bits in range(2, 9):
        for octaves in range(1, 33):
            table = scale_magnitudes(bits, octaves)
            assert table[0] == 1 and table[-1] == np.float32(2.0 ** -octaves), (bits, octaves)
            assert np.all(np.diff(table) < 0), (bits, octaves)


def test_decode_sign_last_and_exact():
    # K = 3: codes 0..3 positive, 4..7 the same magnitudes negative; d_r = 0.1 (fp16) widened exactly.
    d = np.array([0.1, 0.0], np.float16)
    codes = np.array([[0, 1, 2, 3, 4, 5, 6, 7], [0, 4, 3, 7, 1, 5, 2, 6]])
    s = decode_scale_codes(codes, d, 3, 2)
    assert s.dtype == np.float32
    m = [f32(PINNED[(3, 2)][k]) for k in range(4)]
    expected0 = [np.float32(np.float32(d[0]) * m[u % 4]) * (-1 if u >= 4 else 1) for u in codes[0]]
    np.testing.assert_array_equal(s[0], np.array(expected0, np.float32))
    assert np.all(s[1] == 0) and np.signbit(s[1][1]) and not np.signbit(s[1][0])


# (name, shape, group size, K, O, row scales): 3-bit codes, an odd number of groups per row so
# that the scale codes straddle bytes (a: 9 × 6 = 54 bits, c: 9 × 3 = 27 bits).
CASES = [
    ("a", (3, 10), 4, 6, 6, [0.5, 0.1, -3.0]),
    ("b", (5, 9), 3, 8, 8, [0.5, 0.1, 3.0, 0.0, 1000.0]),
    ("c", (3, 5), 2, 3, 2, [1.0, 0.25, 7.0]),
]


def scale_code(i, bits, octaves):
    """The pinned steps in turn, the sign bit on every third group."""
    steps = sorted(PINNED[(bits, octaves)])
    return steps[i % len(steps)] | ((1 << (bits - 1)) if i % 3 == 1 else 0)


def build(path, version=2, edit=None):
    rng = np.random.default_rng(5)
    b = Builder()
    b.raw("bias", "F32", [2], np.array([1, -2], "<f4").tobytes())
    for name, shape, group, bits, octaves, rows in CASES:
        r, c = shape
        groups = -(-c // group)
        codes = rng.integers(0, 8, r * c)
        zeros = rng.integers(0, 8, r * groups).astype(float)
        scale_codes = [scale_code(i, bits, octaves) for i in range(r * groups)]
        b.affine(name, shape, codes, scale_codes, zeros, 3, group, scale_codes=(bits, octaves, rows))
    header = b.header(version=version)
    if edit:
        edit(header)
    path.write_bytes(b.build(header))
    return b


def expected(name, codes, zeros):
    """(q − z)·s by hand, s = σ·(f32(d_r)·m[k]) from the pinned table."""
    _, shape, group, bits, octaves, rows = next(c for c in CASES if c[0] == name)
    r, c = shape
    groups = -(-c // group)
    scales = np.zeros((r, groups), np.float32)
    for i in range(r * groups):
        u = scale_code(i, bits, octaves)
        half = 1 << (bits - 1)
        magnitude = np.float32(np.float32(np.float16(rows[i // groups])) * f32(PINNED[(bits, octaves)][u % half]))
        scales.reshape(-1)[i] = -magnitude if u >= half else magnitude
    g = np.arange(c) // group
    return scales, (codes.astype(np.float32) - zeros.astype(np.float32)[:, g]) * scales[:, g]


def test_hand_built_file_decodes_to_hand_computed_values(tmp_path):
    path = tmp_path / "s.qpk"
    build(path)
    assert qpk.validate(path) == []
    with qpk.safe_open(path) as f:
        assert f.version == 2
        for name, shape, group, bits, octaves, rows in CASES:
            t = f.get_quantized(name)
            r, c = shape
            groups = -(-c // group)
            entry = f.entry(name)
            assert entry["blobs"]["scales"]["length"] == (r * groups * bits + 7) // 8
            assert entry["blobs"]["row_scales"]["length"] == 2 * r
            assert t.scale_codes.tolist() == [[scale_code(i * groups + j, bits, octaves) for j in range(groups)] for i in range(r)]
            np.testing.assert_array_equal(t.row_scales, np.array(rows, np.float16))
            scales, values = expected(name, t.codes, t.zeros)
            assert t.scales.dtype == np.float32
            np.testing.assert_array_equal(t.scales.view(np.uint32), scales.view(np.uint32))
            np.testing.assert_array_equal(f.get_tensor(name).view(np.uint32), values.reshape(shape).view(np.uint32))
            # §7: every stored byte over the parameters.
            stored = (r * c * 3 + 7) // 8 + (r * groups * bits + 7) // 8 + 2 * r + 2 * r * groups
            assert f.bits_per_weight(name) == 8 * stored / (r * c)


def _quantization(name, update):
    def edit(header):
        q = next(t for t in header["tensors"] if t["name"] == name)["quantization"]
        update(q)
    return edit


@pytest.mark.parametrize("value", [
    {"bits": 9, "octaves": 8}, {"bits": 1, "octaves": 8}, {"bits": 8, "octaves": 0}, {"bits": 8, "octaves": 33},
    {"bits": 8}, {"octaves": 8}, {"bits": "8", "octaves": 8}, {"bits": 8, "octaves": 2.5}, True,
])
def test_rule_31_invalid_scale_codes(value, tmp_path):
    path = tmp_path / "s.qpk"
    build(path, edit=_quantization("b", lambda q: q.update(scale_codes=value)))
    problems = qpk.validate(path)
    assert [(p.rule, p.tensor) for p in problems] == [("invalid_scale_codes", "b")], problems


@pytest.mark.parametrize("pattern", [0x7E00, 0x7C00, 0xFC00])
def test_rule_32_row_scale_not_finite(pattern, tmp_path):
    path = tmp_path / "s.qpk"
    build(path)
    data = bytearray(path.read_bytes())
    offset, length = struct.unpack_from("<QQ", data, 16)
    header = json.loads(data[offset:offset + length])
    blob = next(t for t in header["tensors"] if t["name"] == "b")["blobs"]["row_scales"]
    struct.pack_into("<H", data, blob["offset"] + 6, pattern)  # row 3
    blob["crc32"] = zlib.crc32(bytes(data[blob["offset"]:blob["offset"] + blob["length"]]))
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    data = data[:offset] + text
    struct.pack_into("<QQI", data, 16, offset, len(text), zlib.crc32(text))
    struct.pack_into("<I", data, 60, zlib.crc32(bytes(data[:60])))
    path.write_bytes(bytes(data))
    problems = qpk.validate(path)
    assert [(p.rule, p.tensor) for p in problems] == [("row_scale_not_finite", "b")]
    assert "row scale 3" in str(problems[0])
    with qpk.safe_open(path) as f:
        f.get_tensor("a")
        with pytest.raises(qpk.QPKError) as e:
            f.get_tensor("b")
        assert e.value.rule == "row_scale_not_finite"


def test_rule_26_scale_codes_in_a_version_1_file(tmp_path):
    path = tmp_path / "s.qpk"
    build(path, version=1)
    problems = qpk.validate(path)
    assert [p.rule for p in problems] == ["v2_feature_in_v1"]


def test_scales_blob_of_the_fp16_length_is_blob_length(tmp_path):
    path = tmp_path / "s.qpk"

    def edit(header):
        t = next(t for t in header["tensors"] if t["name"] == "a")
        t["blobs"]["scales"]["length"] = 18  # 2·R·G
    build(path, edit=edit)
    assert [p.rule for p in qpk.validate(path)] == ["blob_length"]


def test_row_scales_without_scale_codes_is_blob_set(tmp_path):
    path = tmp_path / "s.qpk"
    build(path, edit=_quantization("c", lambda q: q.pop("scale_codes")))
    assert [p.rule for p in qpk.validate(path)] == ["blob_set"]
