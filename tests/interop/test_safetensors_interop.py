"""safetensors interop: Python's `safetensors` reads what qpk writes, and qpk reads what it writes."""
import json
import struct

import numpy as np
import pytest
from safetensors import safe_open
from safetensors.numpy import load_file, save_file

from conftest import FIXTURES, raw_tensors, run_qpk, run_json

VALID = sorted(p for p in (FIXTURES / "safetensors").glob("*.safetensors"))


@pytest.mark.parametrize("fixture", VALID, ids=lambda p: p.name)
def test_copy_is_bit_identical_and_python_reads_it(fixture, tmp_path):
    out = tmp_path / "copy.safetensors"
    run_qpk("convert", fixture, out)
    original, meta_a = raw_tensors(fixture)
    copied, meta_b = raw_tensors(out)
    assert original == copied
    assert meta_a == meta_b
    with safe_open(str(out), framework="numpy") as f:  # the reference parser accepts it
        assert set(f.keys()) == set(original)
    header_len = struct.unpack("<Q", out.read_bytes()[:8])[0]
    assert header_len % 8 == 0


def test_python_written_file_is_read_exactly(tmp_path):
    rng = np.random.default_rng(7)
    tensors = {
        "a.weight": rng.standard_normal((33, 65)).astype(np.float32),
        "b.f16": rng.standard_normal((17,)).astype(np.float16),
        "c.i64": rng.integers(-2**40, 2**40, size=(5, 3), dtype=np.int64),
        "d.u8": rng.integers(0, 255, size=(9,), dtype=np.uint8),
        "e.bool": rng.random((4, 4)) > 0.5,
        "f.scalar": np.array(3.5, dtype=np.float64),
        "g.empty": np.zeros((0, 4), dtype=np.float32),
    }
    src = tmp_path / "py.safetensors"
    save_file(tensors, str(src), metadata={"format": "np", "note": "a/b"})
    report = run_json("inspect", src)
    by_name = {t["name"]: t for t in report["tensors"]}
    assert set(by_name) == set(tensors)
    for name, array in tensors.items():
        assert by_name[name]["shape"] == list(array.shape)
        assert by_name[name]["parameters"] == array.size
    out = tmp_path / "back.safetensors"
    run_qpk("convert", src, out)
    back = load_file(str(out))
    for name, array in tensors.items():
        assert back[name].dtype == array.dtype and back[name].shape == array.shape
        assert back[name].tobytes() == array.tobytes()
    with safe_open(str(out), framework="numpy") as f:
        assert f.metadata() == {"format": "np", "note": "a/b"}


def bf16_bits_rne(x: np.ndarray) -> np.ndarray:
    bits = x.astype(np.float32).view(np.uint32).astype(np.uint64)
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)
    nan = np.isnan(x)
    rounded[nan] = ((bits[nan] >> 16) | 0x40).astype(np.uint16)
    return rounded


def test_cast_to_f16_and_bf16_rounds_like_numpy(tmp_path):
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.standard_normal(4000).astype(np.float32) * 100,
                        np.array([np.inf, -np.inf, np.nan, 0.0, -0.0, 65504.0, 1e-8, 70000.0], np.float32)])
    src = tmp_path / "x.safetensors"
    save_file({"x": x.reshape(8, -1)}, str(src))
    run_qpk("convert", src, tmp_path / "h.safetensors", "--dtype", "f16")
    half = load_file(str(tmp_path / "h.safetensors"))["x"].ravel()
    assert half.dtype == np.float16
    assert np.array_equal(half.view(np.uint16)[~np.isnan(x)], x.astype(np.float16).view(np.uint16)[~np.isnan(x)])
    assert np.isnan(half[np.isnan(x)]).all()
    run_qpk("convert", src, tmp_path / "b.safetensors", "--dtype", "bf16")
    tensors, _ = raw_tensors(tmp_path / "b.safetensors")
    dtype, shape, raw = tensors["x"]
    assert dtype == "BF16"
    assert np.array_equal(np.frombuffer(raw, np.uint16), bf16_bits_rne(x))


def test_sharded_fixture_merges_into_one_file(tmp_path):
    shard_dir = FIXTURES / "safetensors" / "sharded"
    index = json.loads(next(shard_dir.glob("*.index.json")).read_text())
    merged = tmp_path / "merged.safetensors"
    run_qpk("convert", shard_dir, merged)
    expected = {}
    for shard in sorted(set(index["weight_map"].values())):
        expected.update(load_file(str(shard_dir / shard)))
    got = load_file(str(merged))
    assert set(got) == set(index["weight_map"])
    for name, array in expected.items():
        assert got[name].tobytes() == array.tobytes()


def test_split_into_shards_writes_a_hugging_face_index(tmp_path):
    src = FIXTURES / "models" / "fracast" / "model.safetensors"
    out = tmp_path / "shards"
    run_qpk("convert", src, out, "--max-shard-size", "100KB")
    index = json.loads((out / "model.safetensors.index.json").read_text())
    shards = sorted(set(index["weight_map"].values()))
    assert len(shards) >= 3
    original = load_file(str(src))
    assert index["metadata"]["total_size"] == sum(a.nbytes for a in original.values())
    for shard in shards:
        assert (out / shard).stat().st_size <= 100_000 + 8192  # header included, one tensor may exceed alone
    rebuilt = {}
    for shard in shards:
        part = load_file(str(out / shard))
        for name in part:
            assert index["weight_map"][name] == shard
        rebuilt.update(part)
    assert set(rebuilt) == set(original)
    for name in original:
        assert rebuilt[name].tobytes() == original[name].tobytes()
    # and back through the index file
    merged = tmp_path / "merged.safetensors"
    run_qpk("convert", out / "model.safetensors.index.json", merged)
    assert {k: v.tobytes() for k, v in load_file(str(merged)).items()} == {k: v.tobytes() for k, v in original.items()}


def test_existing_output_is_not_overwritten_without_force(tmp_path):
    src = FIXTURES / "models" / "fracast" / "model.safetensors"
    out = tmp_path / "out.safetensors"
    out.write_bytes(b"precious")
    proc = run_qpk("convert", src, out, expect=2)
    assert "--force" in proc.stderr
    assert out.read_bytes() == b"precious"
    run_qpk("convert", src, out, "--force")
    assert load_file(str(out)).keys() == load_file(str(src)).keys()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "temporary files left behind"


def test_failed_conversion_leaves_nothing(tmp_path):
    broken = tmp_path / "broken.safetensors"
    data = (FIXTURES / "models" / "fracast" / "model.safetensors").read_bytes()
    broken.write_bytes(data[: len(data) // 2])
    out = tmp_path / "out.qpk"
    proc = run_qpk("convert", broken, out, expect=1)
    assert "broken.safetensors" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == [broken]
