"""Tuned outlier values round trip: package helpers → `qpk convert --outlier-values` → package.

The values file convention (README, "Outlier masks for parameter-efficient fine-tuning"): one 1-D
F32 tensor per quantized tensor with outliers, named as in the QPK file, in spec §6 order.
"""
import hashlib
import json

import numpy as np
import pytest

import qpk
from qpk_testpaths import FRACAST


@pytest.fixture(scope="module", params=["elements", "rows", "columns"])
def base(request, run, tmp_path_factory):
    d = tmp_path_factory.mktemp(request.param)
    q = d / "m.qpk"
    run("convert", FRACAST, q, "--outlier-kind", request.param, "--outlier-budget", "2%")
    return d, q


def test_tuned_values_are_written_back_and_read_back(base, run, run_json):
    d, q = base
    weights = qpk.load_file(q)
    with qpk.safe_open(q) as f:
        masks = {n: f.get_quantized(n).outlier_mask() for n in f.keys()
                 if f.is_quantized(n) and f.outliers(n) is not None}
    assert masks
    tuned = dict(weights)
    for name, mask in masks.items():      # "fine-tune": move only the outlier entries
        tuned[name] = weights[name] + np.where(mask, np.float32(0.125), np.float32(0))
    values = qpk.outlier_values(q, tuned)
    assert set(values) == set(masks)
    out = d / "tuned.safetensors"
    qpk.save_outlier_values(out, values)
    t = d / "t.qpk"
    run("convert", q, t, "--outlier-values", out, "--force")
    run("validate", t)
    back = qpk.load_file(t)
    for name in weights:
        np.testing.assert_array_equal(back[name], tuned[name], err_msg=name)
    with qpk.safe_open(q) as a, qpk.safe_open(t) as b:
        for name in masks:
            qa, qb = a.get_quantized(name), b.get_quantized(name)
            assert np.array_equal(qa.codes, qb.codes) and np.array_equal(qa.scales, qb.scales)
            assert np.array_equal(qa.zeros, qb.zeros) and np.array_equal(qa.outliers.indices, qb.outliers.indices)
        tuned_from = b.provenance()["tuned_outliers_from"]
        assert "tuned_outliers_from" not in a.provenance()
    assert tuned_from["name"] == "tuned.safetensors"
    assert tuned_from["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert tuned_from["values"] == tuned_from["changed"] == sum(v.size for v in values.values())
    assert "tuned_outliers_from" in json.dumps(run_json("inspect", t))
    assert "tuned: outlier values replaced from tuned.safetensors" in run("inspect", t).stdout


@pytest.mark.parametrize("breakage,rule", [
    ("missing", "missing_tensor"), ("extra", "unexpected_tensor"), ("short", "length"), ("nan", "non_finite")])
def test_a_mismatched_values_file_is_one_line_and_exit_2(base, run, breakage, rule):
    d, q = base
    values = qpk.outlier_values(q, qpk.load_file(q))
    name = sorted(values)[0]
    if breakage == "missing":
        values.pop(name)
    elif breakage == "extra":
        values["not.a.tensor"] = np.zeros(1, np.float32)
        name = "not.a.tensor"
    elif breakage == "short":
        values[name] = values[name][:-1]
    else:
        values[name] = values[name].copy()
        values[name][0] = np.nan
    bad = d / f"{breakage}.safetensors"
    qpk.save_outlier_values(bad, values)
    proc = run("convert", q, d / "x.qpk", "--outlier-values", bad, expect=2)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and str(bad) in lines[0] and f"'{name}'" in lines[0] and f": {rule}: " in lines[0], proc.stderr
    assert not (d / "x.qpk").exists()


def test_options_that_would_do_nothing_are_a_usage_error(base, run):
    d, q = base
    values = d / "same.safetensors"
    qpk.save_outlier_values(values, qpk.outlier_values(q, qpk.load_file(q)))
    proc = run("convert", q, d / "y.qpk", "--outlier-values", values, "--bits", "3", expect=2)
    assert "--bits would do nothing" in proc.stderr and not (d / "y.qpk").exists()
