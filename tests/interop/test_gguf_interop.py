"""GGUF: the `gguf` Python package (0.19) and qpk read each other's files, bit for bit.

- Every file qpk writes (every type it writes) is read by `gguf.GGUFReader`: names, shapes
  (GGUF `ne` is the row-major shape reversed), ggml types and metadata; `gguf.quants.dequantize`
  of qpk's blocks equals qpk's own decoding (`qpk convert x.gguf y.safetensors --dtype f32`).
- qpk reads files written by `gguf.GGUFWriter`, including blocks from `gguf.quants.quantize`,
  and decodes them exactly as `gguf.quants.dequantize` does.
- On MiniLM, qpk's Q4_0 has a higher weight SQNR than `gguf.quants.quantize`'s Q4_0.
"""
import numpy as np
import pytest
import gguf
from gguf import GGMLQuantizationType as T
from safetensors.numpy import load_file, save_file

from conftest import FIXTURES, run_qpk, run_json

WRITABLE = ["F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q4_K", "Q6_K", "IQ4_NL"]
# Types gguf.quants can both quantize and dequantize (qpk must read what it writes).
GGUF_QUANTIZABLE = [T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0, T.BF16]


def sqnr_db(a, b):
    a = a.astype(np.float64); b = b.astype(np.float64)
    noise = np.sum((a - b) ** 2)
    return float("inf") if noise == 0 else 10 * np.log10(np.sum(a * a) / noise)


def gguf_values(tensor):
    """A gguf.ReaderTensor's values as float32 (integers as stored), in row-major shape."""
    shape = tuple(reversed([int(d) for d in tensor.shape]))
    if tensor.tensor_type in (T.I8, T.I16, T.I32, T.I64):
        return np.asarray(tensor.data).reshape(shape)
    if tensor.tensor_type == T.F64:
        return np.asarray(tensor.data).astype(np.float32).reshape(shape)
    return gguf.quants.dequantize(np.asarray(tensor.data), tensor.tensor_type).astype(np.float32).reshape(shape)


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    rng = np.random.default_rng(7)
    path = tmp_path_factory.mktemp("src") / "src.safetensors"
    tensors = {
        "blk.0.attn.weight": (rng.standard_normal((64, 512)) * 0.02).astype(np.float32),
        "blk.0.ffn.weight": (rng.standard_normal((32, 1024)) * 0.05 + rng.standard_t(3, (32, 1024)) * 0.002).astype(np.float32),
        "blk.0.norm": rng.standard_normal(512).astype(np.float32),
        "small.weight": rng.standard_normal((16, 32)).astype(np.float32),
        "odd.weight": rng.standard_normal((64, 96)).astype(np.float32),
        "zeros.weight": np.zeros((16, 512), np.float32),
        "positions": np.arange(12, dtype=np.int32).reshape(3, 4),
    }
    save_file(tensors, str(path), metadata={"note": "interop"})
    return path, tensors


@pytest.mark.parametrize("qtype", WRITABLE)
def test_gguf_package_reads_what_qpk_writes_bit_for_bit(tmp_path, source, qtype):
    src, tensors = source
    out = tmp_path / f"m-{qtype}.gguf"
    run_qpk("convert", src, out, "--type", qtype)
    reader = gguf.GGUFReader(str(out))
    assert {t.name for t in reader.tensors} == set(tensors)
    assert reader.fields["note"].contents() == "interop"
    back = tmp_path / "back.safetensors"
    run_qpk("convert", out, back, "--dtype", "f32")
    ours = load_file(str(back))
    block_types = set()
    for tensor in reader.tensors:
        assert tuple(reversed([int(d) for d in tensor.shape])) == tensors[tensor.name].shape, tensor.name
        theirs = gguf_values(tensor)
        mine = ours[tensor.name]
        assert theirs.dtype == mine.dtype and theirs.shape == mine.shape, tensor.name
        assert theirs.tobytes() == mine.tobytes(), f"{tensor.name}: gguf.quants.dequantize differs from qpk"
        if tensor.tensor_type not in (T.F32, T.F16, T.BF16, T.I32):
            block_types.add(tensor.tensor_type.name)
        if tensor.name == "blk.0.norm":
            assert tensor.tensor_type == T.F32, "1-D tensors stay F32, as llama.cpp keeps them"
    if qtype not in ("F32", "F16", "BF16"):
        assert block_types == {qtype, {"Q4_K": "Q5_0", "Q6_K": "Q8_0"}.get(qtype, qtype)}
        types = {t.name: t.tensor_type.name for t in reader.tensors}
        assert types["blk.0.attn.weight"] == qtype and types["small.weight"] == "F32"
        # Rows of 96 are whole 32-blocks, not 256-blocks: llama.cpp's fallback for K-quants.
        expected_odd = {"Q4_K": "Q5_0", "Q6_K": "Q8_0"}.get(qtype, qtype)
        assert types["odd.weight"] == expected_odd
        assert reader.fields["general.quantization_version"].contents() == 2


def write_gguf_package_file(path, rng):
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("written by gguf-py")
    writer.add_uint32("llama.block_count", 2)
    writer.add_array("tokenizer.ggml.tokens", [f"t{i}" for i in range(100)])
    values = (rng.standard_normal((8, 256)) * 0.03).astype(np.float32)
    expected = {}
    writer.add_tensor("plain.f32", values)
    expected["plain.f32"] = values
    writer.add_tensor("plain.f16", values.astype(np.float16))
    expected["plain.f16"] = values.astype(np.float16).astype(np.float32)
    for qtype in GGUF_QUANTIZABLE:
        blocks = gguf.quants.quantize(values, qtype)
        writer.add_tensor(f"q.{qtype.name}", blocks, raw_shape=blocks.shape, raw_dtype=qtype)
        expected[f"q.{qtype.name}"] = gguf.quants.dequantize(blocks, qtype)
    writer.add_tensor("ints", np.arange(24, dtype=np.int16).reshape(2, 3, 4))
    expected["ints"] = np.arange(24, dtype=np.int16).reshape(2, 3, 4)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return expected


def test_qpk_reads_what_the_gguf_package_writes(tmp_path):
    path = tmp_path / "py.gguf"
    expected = write_gguf_package_file(path, np.random.default_rng(3))
    assert run_json("validate", path)["files"][0]["valid"]
    report = run_json("inspect", path)
    assert report["format"] == "gguf"
    assert report["metadata"]["general.name"] == "written by gguf-py"
    assert report["metadata"]["llama.block_count"] == "2"
    assert report["metadata"]["tokenizer.ggml.tokens"].startswith('[100 × string: "t0", "t1"')
    dtypes = {t["name"]: t["dtype"] for t in report["tensors"]}
    assert dtypes["q.Q4_0"] == "Q4_0" and dtypes["plain.f16"] == "F16" and dtypes["ints"] == "I16"
    shapes = {t["name"]: t["shape"] for t in report["tensors"]}
    assert shapes["q.Q8_0"] == [8, 256] and shapes["ints"] == [2, 3, 4]
    out = tmp_path / "py.safetensors"
    run_qpk("convert", path, out, "--dtype", "f32")
    ours = load_file(str(out))
    for name, values in expected.items():
        assert ours[name].dtype == values.dtype, name
        assert ours[name].tobytes() == values.tobytes(), f"{name}: qpk's decoding differs from gguf.quants.dequantize"


def test_committed_fixture_decodes_like_the_gguf_package(tmp_path):
    """fixtures/gguf/types.gguf holds every type qpk decodes, K-quants and IQ4 included."""
    out = tmp_path / "types.safetensors"
    run_qpk("convert", FIXTURES / "gguf" / "types.gguf", out, "--dtype", "f32")
    ours = load_file(str(out))
    reader = gguf.GGUFReader(str(FIXTURES / "gguf" / "types.gguf"))
    assert len(reader.tensors) == 20
    for tensor in reader.tensors:
        theirs = gguf_values(tensor)
        assert ours[tensor.name].tobytes() == theirs.tobytes(), tensor.name


def test_diff_reports_the_quantization_error_of_a_gguf(tmp_path, source):
    src, _ = source
    out = tmp_path / "m.gguf"
    run_qpk("convert", src, out, "--type", "Q4_0")
    diff = run_json("diff", src, out, expect=1)
    assert diff, "diff printed no JSON"


def ggml_reference_q4_k(x):
    """ggml's reference Q4_K quantizer (quantize_row_q4_K_ref with make_qkx2_quants), written in
    numpy from its description, decoded back to float32: per 32-value sub-block a weighted search
    (weights rms + |x|, 21 inverse scales, weighted least squares, minimum <= 0), then 6-bit
    sub-scales against d = max scale / 63 and dmin = max min / 63 and nearest codes."""
    f32 = np.float32
    x = x.reshape(-1, 8, 32).astype(f32)
    w = np.sqrt((x * x).sum(-1, keepdims=True) / f32(32)) + np.abs(x)
    lo = np.minimum(x.min(-1, keepdims=True), f32(0))
    hi = x.max(-1, keepdims=True)
    span = np.where(hi > lo, hi - lo, f32(1))
    sum_w = w.sum(-1, keepdims=True)
    sum_x = (w * x).sum(-1, keepdims=True)

    def codes(inverse):
        return np.clip(np.rint(inverse * (x - lo)), 0, 15).astype(f32)

    scale = span / f32(15)
    minimum = lo.copy()
    best = (w * (scale * codes(f32(15) / span) + minimum - x) ** 2).sum(-1, keepdims=True)
    for k in range(21):
        q = codes((f32(-1) + f32(0.1) * f32(k) + f32(15)) / span)
        sum_l = (w * q).sum(-1, keepdims=True)
        sum_l2 = (w * q * q).sum(-1, keepdims=True)
        sum_xl = (w * q * x).sum(-1, keepdims=True)
        det = sum_w * sum_l2 - sum_l * sum_l
        with np.errstate(divide="ignore", invalid="ignore"):
            this_scale = (sum_w * sum_xl - sum_x * sum_l) / det
            this_min = (sum_l2 * sum_x - sum_l * sum_xl) / det
            clamp = this_min > 0
            this_scale = np.where(clamp, sum_xl / sum_l2, this_scale)
            this_min = np.where(clamp, f32(0), this_min)
            err = (w * (this_scale * q + this_min - x) ** 2).sum(-1, keepdims=True)
        better = (det > 0) & (err < best) & (hi > lo)
        best = np.where(better, err, best)
        scale = np.where(better, this_scale, scale)
        minimum = np.where(better, this_min, minimum)
    scale = np.where(hi > lo, scale, f32(0))
    mins = -minimum
    max_scale = scale.max(1, keepdims=True)
    max_min = mins.max(1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        ls = np.minimum(np.rint(np.where(max_scale > 0, f32(63) / max_scale, f32(0)) * scale), 63)
        lm = np.minimum(np.rint(np.where(max_min > 0, f32(63) / max_min, f32(0)) * mins), 63)
    d = (max_scale / f32(63)).astype(np.float16).astype(f32)
    dmin = (max_min / f32(63)).astype(np.float16).astype(f32)
    dj, dm = d * ls, dmin * lm
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.where(dj > 0, np.clip(np.rint((x + dm) / dj), 0, 15), f32(0))
    return (dj * q - dm).reshape(-1)


def test_minilm_qpk_blocks_beat_the_gguf_package_quantizer(tmp_path, minilm):
    """Weight SQNR over the tensors qpk puts in blocks, against gguf.quants.quantize's Q4_0
    (ggml's reference rule) on the same tensors at the same 4.5 bits per weight; no block may be
    worse than the reference's. The gguf package
    cannot quantize Q4_K, so qpk's Q4_K is held to a numpy port of ggml's reference Q4_K
    quantizer (`ggml_reference_q4_k`) on its tensors (MiniLM's rows of 384 are not whole
    256-blocks: only the six 1536-wide output projections take Q4_K)."""
    source = load_file(str(minilm))
    results = {}
    for qtype, minimum in (("Q4_0", 36), ("Q4_K", 6)):
        out = tmp_path / f"minilm-{qtype}.gguf"
        run_qpk("convert", minilm, out, "--type", qtype)
        reader = gguf.GGUFReader(str(out))
        blocks = [t for t in reader.tensors if t.tensor_type.name == qtype]
        assert len(blocks) >= minimum, [t.name for t in blocks]
        signal = noise = ref_noise = 0.0
        for tensor in blocks:
            x = source[tensor.name].astype(np.float32)
            x64 = x.astype(np.float64)
            if qtype == "Q4_0":
                ref = gguf.quants.dequantize(gguf.quants.quantize(x, T.Q4_0), T.Q4_0)
            else:
                ref = ggml_reference_q4_k(x).reshape(x.shape)
            mine = gguf_values(tensor)
            block = 32 if qtype == "Q4_0" else 256
            mine_blocks = ((x64 - mine) ** 2).reshape(-1, block).sum(1)
            ref_blocks = ((x64 - ref) ** 2).reshape(-1, block).sum(1)
            worse = int(np.sum(mine_blocks > ref_blocks * (1 + 1e-6)))
            assert worse == 0, f"{tensor.name}: {worse} {qtype} blocks worse than the reference rule"
            signal += float(np.sum(x64 ** 2))
            noise += float(mine_blocks.sum())
            ref_noise += float(ref_blocks.sum())
        results[qtype] = (10 * np.log10(signal / noise), 10 * np.log10(signal / ref_noise), len(blocks))
    print("MiniLM weight SQNR dB (qpk, reference on the same tensors, tensors):", results)
    assert results["Q4_0"][0] > results["Q4_0"][1] + 0.3
    assert results["Q4_K"][0] > results["Q4_K"][1]
