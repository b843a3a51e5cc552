"""inspect --stats agrees with numpy; diff follows numpy.allclose and agrees with numpy's metrics."""
import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from conftest import FIXTURES, run_qpk, run_json

FRACAST = FIXTURES / "models" / "fracast" / "model.safetensors"


def numpy_stats(x):
    x = x.astype(np.float64).ravel()
    finite = x[np.isfinite(x)]
    mean = finite.mean()
    std = finite.std()
    centered = finite - mean
    m2 = np.mean(centered ** 2)
    kurt = np.mean(centered ** 4) / m2 ** 2 - 3 if m2 > 0 else None  # undefined: qpk writes null
    return {
        "min": finite.min(), "max": finite.max(), "mean": mean, "std": std,
        "absmax": np.abs(finite).max(), "l2_norm": np.sqrt(np.sum(finite ** 2)), "kurtosis": kurt,
        "nan": int(np.isnan(x).sum()), "pos_inf": int((x == np.inf).sum()), "neg_inf": int((x == -np.inf).sum()), "zeros": int((x == 0).sum()),
        "beyond_3sigma": int((np.abs(centered) > 3 * std).sum()),
        "beyond_6sigma": int((np.abs(centered) > 6 * std).sum()),
    }


def close(a, b, rel=1e-6):
    return abs(a - b) <= rel * max(abs(a), abs(b), 1e-30) + 1e-12


def check_stats(path, glob=None):
    args = ["inspect", path, "--stats"] + (["--tensor", glob] if glob else [])
    report = run_json(*args)
    arrays = load_file(str(path))
    assert report["tensors"]
    for t in report["tensors"]:
        want = numpy_stats(arrays[t["name"]])
        got = t["stats"]
        for key in ("min", "max", "mean", "std", "absmax", "l2_norm", "kurtosis"):
            if want[key] is None:
                assert got[key] is None, (t["name"], key, got[key])
            else:
                assert close(got[key], want[key]), (t["name"], key, got[key], want[key])
        for key in ("nan", "pos_inf", "neg_inf", "zeros", "beyond_3sigma", "beyond_6sigma"):
            assert got[key] == want[key], (t["name"], key, got[key], want[key])


def test_stats_match_numpy_on_the_demo_model():
    check_stats(FRACAST)


def test_stats_match_numpy_on_minilm(minilm):
    check_stats(minilm)


def test_stats_of_special_values(tmp_path):
    x = np.array([1.0, -2.0, np.nan, np.inf, -np.inf, 0.0, 0.0, 3.0], np.float32)
    src = tmp_path / "s.safetensors"
    save_file({"x": x, "scalar": np.array(2.5, np.float32), "empty": np.zeros((0,), np.float32)}, str(src))
    report = run_json("inspect", src, "--stats")
    stats = {t["name"]: t["stats"] for t in report["tensors"]}
    assert stats["x"]["nan"] == 1 and stats["x"]["pos_inf"] == 1 and stats["x"]["neg_inf"] == 1 and stats["x"]["zeros"] == 2
    assert close(stats["x"]["mean"], np.mean([1, -2, 0, 0, 3]))
    assert stats["scalar"]["mean"] == 2.5
    assert stats["empty"].get("count", 0) == 0


def pair(tmp_path, a, b):
    pa, pb = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    save_file(a, str(pa))
    save_file(b, str(pb))
    return pa, pb


@pytest.mark.parametrize("atol,rtol", [(1e-8, 1e-5), (1e-3, 0.0), (0.0, 1e-2)])
def test_diff_tolerance_is_numpy_allclose(tmp_path, atol, rtol):
    rng = np.random.default_rng(11)
    a = rng.standard_normal((64, 64)).astype(np.float32)
    b = a + (rng.standard_normal(a.shape) * 1e-3).astype(np.float32)
    pa, pb = pair(tmp_path, {"w": a}, {"w": b})
    want_equal = np.allclose(a, b, rtol=rtol, atol=atol)
    proc = run_qpk("diff", pa, pb, "--atol", atol, "--rtol", rtol, "--json", expect=0 if want_equal else 1)
    import json
    report = json.loads(proc.stdout)
    t = report["tensors"][0]
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    assert t["out_of_tolerance"] == int(np.sum(~np.isclose(a, b, rtol=rtol, atol=atol)))
    assert close(t["max_abs"], np.max(np.abs(a64 - b64)), 1e-6)
    assert close(t["sqnr_db"], 10 * np.log10(np.sum(a64 ** 2) / np.sum((a64 - b64) ** 2)), 1e-6)
    cos = np.sum(a64 * b64) / np.sqrt(np.sum(a64 ** 2) * np.sum(b64 ** 2))
    assert close(t["cosine"], cos, 1e-9)


def test_diff_reports_structure_changes(tmp_path):
    w = np.arange(12, dtype=np.float32).reshape(3, 4)
    changed = w.copy(); changed[2, 1] = 100
    pa, pb = pair(tmp_path,
                  {"same": w, "changed": w, "renamed_a": w, "reshaped": w, "retyped": w},
                  {"same": w, "changed": changed, "renamed_b": w, "reshaped": w.reshape(4, 3), "retyped": w.astype(np.float16)})
    import json
    report = json.loads(run_qpk("diff", pa, pb, "--json", expect=1).stdout)
    assert report["only_in_a"] == ["renamed_a"]
    assert report["only_in_b"] == ["renamed_b"]
    by_name = {t["name"]: t for t in report["tensors"]}
    assert by_name["same"]["status"] == "identical"
    assert by_name["retyped"]["status"] in ("identical", "equal") and by_name["retyped"]["dtype_a"] != by_name["retyped"]["dtype_b"]
    worst = by_name["changed"]["worst"]
    assert worst["index"] == [2, 1] and worst["a"] == 9.0 and worst["b"] == 100.0
    assert "reshaped" in [m["name"] for m in report["shape_mismatches"]]


def test_diff_map_lines_up_renamed_checkpoints(tmp_path):
    w = np.ones((2, 2), np.float32)
    pa, pb = pair(tmp_path, {"model.w": w}, {"w": w})
    run_qpk("diff", pa, pb, expect=1)
    run_qpk("diff", pa, pb, "--map", "model.:", expect=0)


def test_diff_of_a_checkpoint_against_itself_in_hdf5_is_equal(tmp_path):
    h5 = tmp_path / "m.h5"
    run_qpk("convert", FRACAST, h5)
    run_qpk("diff", FRACAST, h5, expect=0)
