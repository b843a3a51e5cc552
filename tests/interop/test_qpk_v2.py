"""QPK v2 (spec/qpk-format.md §2, §5.3, §5.5–§5.7): files qpk writes with packed or implicit
zero-points and the Hadamard transform are read by the independent numpy reader (python/) exactly as
qpk decodes them, v2 files built here from the spec alone (group index, codebook) are read by qpk
as the numpy reader decodes them, and v1 files still read."""
import json
import struct
import zlib

import numpy as np
import pytest
from safetensors.numpy import load_file

import qpk
from qpk._tensor import hadamard_inverse

from conftest import FIXTURES, run_qpk, run_json

FRACAST = FIXTURES / "models" / "fracast" / "model.safetensors"


def header(path):
    data = open(path, "rb").read()
    offset, length = struct.unpack_from("<QQ", data, 16)
    return struct.unpack_from("<I", data, 8)[0], json.loads(data[offset:offset + length])


def qpk_decoded(q, tmp_path):
    """What qpk itself decodes: `qpk convert X.qpk Y.safetensors --dtype f32`, read by safetensors."""
    out = tmp_path / (q.stem + ".safetensors")
    run_qpk("convert", q, out, "--dtype", "f32", "--force")
    return load_file(str(out))


def tolerance(x_rotated, block):
    """§5.6: a reader that evaluates x·H·D another way stays within (log2 B + 2)·2^−23·‖x_blk‖₂."""
    rows, columns = x_rotated.shape
    norms = np.linalg.norm(x_rotated.reshape(rows, columns // block, block).astype(np.float64), axis=2)
    return (np.log2(block) + 2) * 2.0 ** -23 * np.repeat(norms, block, axis=1)


@pytest.mark.parametrize("flags, zero_points, transform", [
    (("--zero-points", "packed", "--group-size", "32"), "packed", False),
    (("--scheme", "symmetric", "--zero-points", "none", "--group-size", "32"), "none", False),
    (("--transform", "hadamard"), None, True),
    (("--transform", "hadamard", "--transform-block", "16", "--zero-points", "packed", "--method", "rtn"), "packed", True),
    (("--codebook", "nf4",), None, False),
    (("--codebook", "nf4", "--scheme", "symmetric", "--zero-points", "none", "--transform", "hadamard"), "none", True),
])
def test_qpk_v2_files_read_by_numpy_as_qpk_decodes_them(flags, zero_points, transform, tmp_path):
    q = tmp_path / "m.qpk"
    run_qpk("convert", FRACAST, q, *flags)
    version, h = header(q)
    assert version == 2 and h["version"] == 2
    assert run_qpk("validate", q).returncode == 0
    assert qpk.validate(q) == []
    ours = qpk_decoded(q, tmp_path)
    affine = [t for t in h["tensors"] if t["encoding"] == "affine"]
    assert affine
    rotated = 0
    with qpk.safe_open(q) as f:
        assert f.version == 2
        for t in affine:
            layout = t["quantization"]
            assert layout.get("zero_points") == zero_points
            columns = qpk.matrix_shape(tuple(t["shape"]), layout["axis"])[1]
            if transform and columns % 2 == 0:
                assert layout["transform"]["kind"] == "hadamard"
                assert "transform_signs" in t["blobs"]
                rotated += 1
            elif transform:  # odd column counts cannot be rotated (spec/quantization.md §14)
                assert "transform" not in layout
            if "nf4" in flags:
                assert layout["codebook"] is True and t["blobs"]["codebook"]["length"] == 32
            if zero_points == "none":
                assert "zeros" not in t["blobs"]
            if zero_points == "packed":
                bits = layout["bits"]
                rows, _ = qpk.matrix_shape(tuple(t["shape"]), layout["axis"])
                groups = -(-columns // layout["group_size"])
                assert t["blobs"]["zeros"]["length"] == (rows * groups * bits + 7) // 8
                z = f.get_quantized(t["name"]).zeros.astype(np.float32)
                assert np.all((z == np.round(z)) & (z >= 0) & (z < 2 ** bits))
        for name in f.keys():
            theirs = f.get_tensor(name, widen=True).astype(np.float32)
            # The numpy reader follows the spec's reference order: bit-identical to qpk.
            np.testing.assert_array_equal(theirs, ours[name], err_msg=name)
    if transform:
        assert rotated > 0
    # QPK → QPK copies every tensor, the v2 blobs and keys included.
    copy = tmp_path / "copy.qpk"
    run_qpk("convert", q, copy)
    copy_version, copied = header(copy)
    assert copy_version == 2
    assert [(t["name"], t.get("quantization"), {k: b["crc32"] for k, b in t["blobs"].items()}) for t in copied["tensors"]] \
        == [(t["name"], t.get("quantization"), {k: b["crc32"] for k, b in t["blobs"].items()}) for t in h["tensors"]]


def test_hadamard_dense_product_within_stated_tolerance(tmp_path):
    """§5.6's tolerance: the transform evaluated as a float64 dense product H·D stays within the
    stated bound of qpk's (reference-order) result."""
    q = tmp_path / "h.qpk"
    run_qpk("convert", FRACAST, q, "--transform", "hadamard", "--method", "rtn")
    ours = qpk_decoded(q, tmp_path)
    checked = 0
    with qpk.safe_open(q) as f:
        for name in f.keys():
            if not f.is_quantized(name):
                continue
            t = f.get_quantized(name)
            if t.transform is None or t.outliers is not None:
                continue
            block = t.transform["block_size"]
            rows, columns = t.codes.shape
            g = np.arange(columns) // t.group_size
            x = (t.codes.astype(np.float32) - t.zeros.astype(np.float32)[:, g]) * t.scales.astype(np.float32)[:, g]
            i = np.arange(block)
            h = np.where(np.bitwise_count(i[:, None] & i[None, :]) % 2 == 0, 1.0, -1.0) / np.sqrt(block) \
                if hasattr(np, "bitwise_count") else \
                np.array([[(-1.0) ** bin(a & b).count("1") for b in i] for a in i]) / np.sqrt(block)
            dense = np.kron(np.eye(columns // block), h) * np.where(t.transform_signs, -1.0, 1.0)[None, :]
            exact = x.astype(np.float64) @ dense
            got = ours[name].reshape(rows, columns) if t.axis == -1 else ours[name].T
            assert np.all(np.abs(got - exact) <= tolerance(x, block)), name
            np.testing.assert_array_equal(hadamard_inverse(x, block, t.transform_signs), got)
            checked += 1
    assert checked > 0


# -- v2 files written here, from the spec alone, read by qpk --------------------------------------

def pack(values, bits):
    """§5.2 LSB-first bit stream."""
    out = bytearray((len(values) * bits + 7) // 8)
    for i, v in enumerate(values):
        for b in range(bits):
            if int(v) >> b & 1:
                k = i * bits + b
                out[k // 8] |= 1 << (k % 8)
    return bytes(out)


def write_qpk(path, tensors, version=2):
    """A minimal QPK writer (§2–§4): `tensors` is a list of (entry without blobs, {blob: bytes})."""
    body = bytearray(64)
    entries = []
    for entry, blobs in tensors:
        refs = {}
        for kind, data in blobs.items():
            body += bytes(-len(body) % 64)
            refs[kind] = {"crc32": zlib.crc32(data), "length": len(data), "offset": len(body)}
            body += data
        entries.append(dict(entry, blobs=refs))
    body += bytes(-len(body) % 64)
    quantized = sum(int(np.prod(e["shape"])) for e in entries if e["encoding"] == "affine")
    head = json.dumps({"format": "qpk", "metadata": {}, "outliers": {"parameters": 0, "quantized_parameters": quantized},
                       "provenance": {"created_by": "test_qpk_v2", "qpk_version": "test", "sources": []},
                       "recipe": {}, "tensors": entries, "version": version},
                      sort_keys=True, separators=(",", ":")).encode()
    pre = bytearray(b"\x89QPK\r\n\x1a\n" + struct.pack("<IIQQI", version, 0, len(body), len(head), zlib.crc32(head)) + bytes(24))
    pre += struct.pack("<I", zlib.crc32(bytes(pre)))
    body[:64] = pre
    path.write_bytes(bytes(body) + head)


def group_index_blob(gidx, groups):
    """§5.5: the entries packed in max(1, ceil(log2 G)) bits each, like codes."""
    return pack(np.asarray(gidx), max(1, (groups - 1).bit_length()))


def side_table_tensor(rng, group_index=True, codebook=True, transform=False, zero_points="packed", columns=16):
    rows, bits, group = 3, 3, 4
    groups = columns // group
    codes = rng.integers(0, 2 ** bits, rows * columns)
    scales = rng.uniform(0.01, 0.1, rows * groups).astype("<f2")
    quantization = {"axis": -1, "bits": bits, "group_size": group, "method": "test", "scheme": "affine",
                    "zero_points": zero_points}
    zeros = rng.integers(0, 2 ** bits, rows * groups)
    blobs = {"codes": pack(codes, bits), "scales": scales.tobytes(),
             "zeros": pack(zeros, bits) if zero_points == "packed" else zeros.astype("<f2").tobytes()}
    if zero_points == "f16":
        del quantization["zero_points"]
    if group_index:
        quantization["group_index"] = True
        blobs["group_index"] = group_index_blob(rng.permutation(np.arange(columns) // group), groups)
    if codebook:
        quantization["codebook"] = True
        blobs["codebook"] = np.sort(rng.normal(size=2 ** bits) * 3).astype("<f2").tobytes()
    if transform:
        quantization["transform"] = {"block_size": 8 if columns % 8 == 0 else 4, "kind": "hadamard"}
        blobs["transform_signs"] = bytes(rng.integers(0, 256, (columns + 7) // 8, dtype=np.uint8))
    entry = {"dtype": "F32", "encoding": "affine", "error": None, "outliers": None, "quantization": quantization,
             "shape": [rows, columns]}
    return entry, blobs


def test_group_index_and_codebook_written_from_the_spec_read_by_qpk(tmp_path):
    rng = np.random.default_rng(7)
    tensors = []
    for name, kwargs in (("gc", {}), ("g", {"codebook": False, "zero_points": "f16"}),
                         ("c", {"group_index": False}), ("all", {"transform": True})):
        entry, blobs = side_table_tensor(rng, **kwargs)
        tensors.append((dict(entry, name=name), blobs))
    q = tmp_path / "side.qpk"
    write_qpk(q, tensors)
    assert run_qpk("validate", q).returncode == 0
    ours = qpk_decoded(q, tmp_path)
    with qpk.safe_open(q) as f:
        for name in f.keys():
            np.testing.assert_array_equal(f.get_tensor(name), ours[name], err_msg=name)
        t = f.get_quantized("gc")
        g = t.group_index
        expected = (t.codebook.astype(np.float32)[t.codes] - t.zeros.astype(np.float32)[:, g]) * t.scales.astype(np.float32)[:, g]
        np.testing.assert_array_equal(ours["gc"], expected)
    info = run_json("inspect", q)
    by_name = {t["name"]: t["quantization"] for t in info["tensors"]}
    assert by_name["gc"]["group_index"] and by_name["gc"]["codebook"] and by_name["gc"]["zero_points"] == "packed"
    assert by_name["all"]["transform"] == {"kind": "hadamard", "block_size": 8}


@pytest.mark.parametrize("breakage, rule", [
    ("version1", "v2_feature_in_v1"),
    ("group_too_big", "group_index"),
    ("group_out_of_range", "group_index"),
    ("codebook_nan", "codebook_not_finite"),
    ("zero_points_none_affine", "invalid_zero_points"),
    ("transform_block", "invalid_transform"),
])
def test_broken_v2_files_named_alike_by_qpk_and_numpy(breakage, rule, tmp_path):
    rng = np.random.default_rng(3)
    # 12 columns in groups of 4: G = 3, so 2-bit group-index entries can hold an out-of-range 3.
    entry, blobs = side_table_tensor(rng, transform=True, columns=12 if breakage == "group_out_of_range" else 16)
    version = 2
    if breakage == "version1":
        version = 1
    elif breakage == "group_too_big":
        blobs["group_index"] = group_index_blob((np.arange(16) // 4 == 0).astype(int), 4)  # group 0 gets 12 columns
    elif breakage == "group_out_of_range":
        gidx = np.arange(12) // 4
        gidx[5] = 3
        blobs["group_index"] = group_index_blob(gidx, 3)
    elif breakage == "codebook_nan":
        table = np.frombuffer(blobs["codebook"], "<f2").copy(); table[2] = np.nan
        blobs["codebook"] = table.tobytes()
    elif breakage == "zero_points_none_affine":
        entry["quantization"]["zero_points"] = "none"
        del blobs["zeros"]
    elif breakage == "transform_block":
        entry["quantization"]["transform"]["block_size"] = 6
    q = tmp_path / "bad.qpk"
    write_qpk(q, [(dict(entry, name="w"), blobs)], version=version)
    proc = run_qpk("validate", q, check=False)
    assert proc.returncode != 0 and rule in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    try:
        with qpk.safe_open(q) as f:
            problems = f.validate()
    except qpk.QPKError as e:
        problems = [e]
    assert [p.rule for p in problems] == [rule]


def test_v1_files_still_read_and_stay_version_1(tmp_path):
    q = tmp_path / "v1.qpk"
    run_qpk("convert", FRACAST, q, "--bits", "4", "--group-size", "32")
    version, h = header(q)
    assert version == 1 and h["version"] == 1
    assert all(set(t["quantization"]) >= {"scheme", "bits"} and "zero_points" not in t["quantization"]
               for t in h["tensors"] if t["encoding"] == "affine")
    ours = qpk_decoded(q, tmp_path)
    with qpk.safe_open(q) as f:
        assert f.version == 1
        for name in f.keys():
            np.testing.assert_array_equal(f.get_tensor(name, widen=True).astype(np.float32), ours[name])


def test_zero_points_none_needs_symmetric():
    proc = run_qpk("convert", FRACAST, "/tmp/never.qpk", "--zero-points", "none", check=False)
    assert proc.returncode != 0 and "--scheme symmetric" in proc.stderr
