"""Every rule of spec §8 is reported under the same name as `qpk validate` reports it.

Each case breaks one rule of a qpk-written file (keeping the checks before it intact, e.g. by
recomputing the CRCs) and asserts that the package names that rule, with the tensor where there
is one, and that `qpk validate --json` names the same rule.
"""
import json
import struct
import zlib

import numpy as np
import pytest

import qpk
from qpk_testpaths import FRACAST


def _preamble_crc(d):
    d[60:64] = struct.pack("<I", zlib.crc32(bytes(d[:60])))


def _rewrite_header(data, mutate):
    d = bytearray(data)
    off, length = struct.unpack_from("<QQ", d, 16)
    header = json.loads(d[off:off + length])
    mutate(header)
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    d = d[:off] + text
    struct.pack_into("<QQI", d, 16, off, len(text), zlib.crc32(text))
    _preamble_crc(d)
    return bytes(d)


def _tensor(h, pred):
    return next(t for t in h["tensors"] if pred(t))


def _affine_with_outliers(h):
    return _tensor(h, lambda t: t["encoding"] == "affine" and t.get("outliers") and t["outliers"]["count"] >= 2)


def _blob_bytes(data, t, kind):
    b = t["blobs"][kind]
    return b["offset"], b["length"]


def _header(data):
    off, length = struct.unpack_from("<QQ", data, 16)
    return json.loads(data[off:off + length])


def _set(d, offset, value):
    d[offset] = value
    return d


def _flip_blob(data):
    d = bytearray(data)
    t = _affine_with_outliers(_header(data))
    off, _ = _blob_bytes(data, t, "codes")
    d[off] ^= 0xFF
    return bytes(d), t["name"]


def _swap_indices(data):
    d = bytearray(data)
    h = _header(data)
    t = _affine_with_outliers(h)
    off, _ = _blob_bytes(data, t, "outlier_indices")
    a, b = struct.unpack_from("<II", d, off)
    struct.pack_into("<II", d, off, b, a)
    t["blobs"]["outlier_indices"]["crc32"] = zlib.crc32(bytes(d[off:off + t["blobs"]["outlier_indices"]["length"]]))
    return _rewrite_header(bytes(d), lambda hh: hh.update(tensors=h["tensors"])), t["name"]


def _dirty_padding(data):
    d = bytearray(data)
    h = _header(data)
    ends = sorted(b["offset"] + b["length"] for t in h["tensors"] for b in t["blobs"].values())
    starts = {b["offset"] for t in h["tensors"] for b in t["blobs"].values()}
    gap = next(e for e in ends if e % 64 and e not in starts)
    d[gap] = 1
    return bytes(d), None


def _version(d):
    d = bytearray(d); struct.pack_into("<I", d, 8, 3); _preamble_crc(d); return bytes(d)


def _reserved(d, fix_crc):
    d = bytearray(d); d[40] = 7
    if fix_crc:
        _preamble_crc(d)
    return bytes(d)


def _misplace(d):
    d = bytearray(d); off = struct.unpack_from("<Q", d, 16)[0]; struct.pack_into("<Q", d, 16, off + 8); _preamble_crc(d)
    return bytes(d)


def _second_tensors_key(data):
    """Appends a second "tensors" key to the header object (rule 10a), CRCs fixed."""
    d = bytearray(data)
    off, length = struct.unpack_from("<QQ", d, 16)
    text = bytes(d[off:off + length])[:-1] + b',"tensors":[]}'
    d = d[:off] + text
    struct.pack_into("<QQI", d, 16, off, len(text), zlib.crc32(text))
    _preamble_crc(d)
    return bytes(d)


def _h(mutate):
    return lambda data: (_rewrite_header(data, mutate), None)


def _ht(select, mutate):
    """Mutates the first tensor `select` picks; the case names that tensor."""
    def case(data):
        name = []
        def m(h):
            t = select(h)
            name.append(t["name"])
            mutate(h, t)
        return _rewrite_header(data, m), name[0]
    return case


def _affine(h):
    return _tensor(h, lambda t: t["encoding"] == "affine")


def _raw(h):
    return _tensor(h, lambda t: t["encoding"] == "raw")


def _overlap(h, t):
    other = _raw(h)
    t["blobs"]["codes"]["offset"] = other["blobs"]["data"]["offset"]


CASES = {
    "file_too_small": lambda d: (d[:10], None),
    "bad_magic": lambda d: (b"\x89QPX" + d[4:], None),
    "unsupported_version": lambda d: (_version(d), None),
    "preamble_checksum": lambda d: (_reserved(d, fix_crc=False), None),
    "reserved_not_zero": lambda d: (_reserved(d, fix_crc=True), None),
    "header_misplaced": lambda d: (_misplace(d), None),
    "truncated": lambda d: (d[:-1], None),
    "trailing_bytes": lambda d: (d + b"\0", None),
    "header_checksum": lambda d: (d[:-2] + bytes([d[-2] ^ 1]) + d[-1:], None),
    "invalid_header": _h(lambda h: h.update(format="qpz")),
    "duplicate_key": lambda d: (_second_tensors_key(d), None),
    "duplicate_tensor": _ht(lambda h: h["tensors"][0], lambda h, t: h["tensors"][1].update(name=t["name"])),
    "unknown_dtype": _ht(_raw, lambda h, t: t.update(dtype="F12")),
    "invalid_shape": _ht(_raw, lambda h, t: t.update(shape=[-1] + t["shape"][1:])),
    "unknown_encoding": _ht(_raw, lambda h, t: t.update(encoding="zstd")),
    "invalid_quantization": _ht(_affine, lambda h, t: t["quantization"].update(bits=5)),
    "blob_set": _ht(_affine, lambda h, t: t["blobs"].pop("zeros")),
    "blob_misaligned": _ht(_affine, lambda h, t: t["blobs"]["codes"].update(offset=t["blobs"]["codes"]["offset"] + 1)),
    "blob_out_of_bounds": _ht(_affine, lambda h, t: t["blobs"]["codes"].update(offset=1 << 40)),
    "blob_overlap": _ht(_affine, _overlap),
    "blob_length": _ht(_affine, lambda h, t: t["blobs"]["scales"].update(length=t["blobs"]["scales"]["length"] - 2)),
    "invalid_outlier_record": _ht(_affine_with_outliers, lambda h, t: t["outliers"].update(kind="diagonal")),
    "blob_checksum": _flip_blob,
    "outlier_indices": _swap_indices,
    "nonzero_padding": _dirty_padding,
}


@pytest.fixture(scope="module")
def pristine(run, tmp_path_factory):
    q = tmp_path_factory.mktemp("v") / "m.qpk"
    # The uniform v1 layout: every rule of the list applies to it (v2 rules have their own tests).
    run("convert", FRACAST, q, "--bits", "4", "--outlier-budget", "1%", "--codebook", "none")
    return q.read_bytes()


@pytest.mark.parametrize("rule", list(CASES))
def test_each_broken_rule_is_named_like_qpk_validate_names_it(rule, pristine, run, tmp_path):
    data, tensor = CASES[rule](pristine)
    path = tmp_path / "broken.qpk"
    path.write_bytes(data)
    problems = qpk.validate(path)
    assert problems, rule
    assert problems[0].rule == rule, str(problems[0])
    assert problems[0].tensor == tensor, str(problems[0])
    assert str(problems[0]).startswith(f"{path}: ") and "\n" not in str(problems[0])
    report = json.loads(run("validate", path, "--json", expect=1).stdout)
    assert rule in [p["rule"] for f in report["files"] for p in f["problems"]]


def test_symmetric_zero_point(run, tmp_path):
    q = tmp_path / "s.qpk"
    run("convert", FRACAST, q, "--method", "rtn", "--scheme", "symmetric", "--bits", "4")
    data = bytearray(q.read_bytes())
    h = _header(bytes(data))
    t = _affine(h)
    off, length = _blob_bytes(data, t, "zeros")
    data[off:off + 2] = np.float16(3.0).tobytes()
    t["blobs"]["zeros"]["crc32"] = zlib.crc32(bytes(data[off:off + length]))
    q.write_bytes(_rewrite_header(bytes(data), lambda hh: hh.update(tensors=h["tensors"])))
    problems = qpk.validate(q)
    assert [p.rule for p in problems] == ["symmetric_zero_point"] and problems[0].tensor == t["name"]
    report = json.loads(run("validate", q, "--json", expect=1).stdout)
    assert "symmetric_zero_point" in [p["rule"] for f in report["files"] for p in f["problems"]]


def test_opening_is_lazy_a_corrupt_blob_fails_only_its_tensor(pristine, tmp_path):
    data, broken = _flip_blob(pristine)
    path = tmp_path / "lazy.qpk"
    path.write_bytes(data)
    with qpk.safe_open(path) as f:
        others = [n for n in f.keys() if n != broken]
        for name in others:
            f.get_tensor(name)
        with pytest.raises(qpk.QPKError) as e:
            f.get_tensor(broken)
        assert e.value.rule == "blob_checksum" and e.value.tensor == broken
    with pytest.raises(qpk.QPKError, match="blob_checksum"):
        qpk.load_file(path)
