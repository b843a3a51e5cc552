"""Agreement of qpk's JSON numbers with the numpy reference, checked while the speed bench runs.

The qpk JSON schemas are owned by the CLI, so this reads them generically: any JSON object with a
``name`` (or ``tensor``) string is a per-tensor record, and its numeric fields are matched to the
numpy statistic of the same normalised key (lower case, ``_``/``-`` removed, a few aliases such as
``l2norm`` → ``l2``). For every statistic present on both sides it reports the largest relative
deviation |q − n| / max(|n|, 1e-30) over all tensors (counts: the largest absolute difference), and
for diffs the largest |ΔSQNR| in dB (issue 5: within 0.01 dB).
"""
from __future__ import annotations

import math
from typing import Any

ALIASES = {
    "l2norm": "l2", "norm": "l2", "stddev": "std", "stdev": "std", "average": "mean",
    "nancount": "nan", "infcount": "inf", "zerocount": "zero", "subnormalcount": "subnormal",
    "beyond3sigma": "beyond3sigma", "over3sigma": "beyond3sigma", "outliers3sigma": "beyond3sigma",
    "beyond6sigma": "beyond6sigma", "over6sigma": "beyond6sigma", "outliers6sigma": "beyond6sigma",
    "sqnr": "sqnrdb", "maxabsdiff": "maxabs", "meanabsdiff": "meanabs", "relativel2": "rell2",
}
COUNTS = {"nan", "inf", "zero", "subnormal", "beyond3sigma", "beyond6sigma", "count", "outoftolerance"}


def _norm(key: str) -> str:
    k = key.lower().replace("_", "").replace("-", "")
    return ALIASES.get(k, k)


NESTED = ("stats", "statistics", "metrics", "percentiles", "error", "errors")


def per_tensor_records(report: Any, known: set[str]) -> dict[str, dict[str, float]]:
    """Numeric fields per tensor name, from records carrying a name, maps keyed by tensor name,
    and their nested ``stats``/``metrics``/``percentiles`` objects."""
    records: dict[str, dict[str, float]] = {}

    def visit(node: Any, current: str | None) -> None:
        if isinstance(node, list):
            for value in node:
                visit(value, None)
            return
        if not isinstance(node, dict):
            return
        own = node.get("name") or node.get("tensor")
        name = own if isinstance(own, str) else current
        if name is not None:
            rec = records.setdefault(name, {})
            for key, value in node.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    rec.setdefault(_norm(key), float(value))
        for key, value in node.items():
            if key in known:
                visit(value, key)
            elif name is not None and key.lower() in NESTED:
                visit(value, name)
            else:
                visit(value, None)

    visit(report, None)
    return {k: v for k, v in records.items() if v}


def compare(qpk_report: Any, numpy_stats: dict[str, dict]) -> dict[str, dict[str, float]]:
    """Per statistic: tensors compared and the worst deviation (relative, or absolute for counts)."""
    ours = per_tensor_records(qpk_report, set(numpy_stats))
    worst: dict[str, dict[str, float]] = {}
    for name, ref in numpy_stats.items():
        q = ours.get(name)
        if not q:
            continue
        ref_norm = {_norm(k): v for k, v in ref.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        if "percentiles" in ref and isinstance(ref["percentiles"], dict):
            ref_norm.update({_norm(k): v for k, v in ref["percentiles"].items()})
        for key, n in ref_norm.items():
            if key not in q or n is None or (isinstance(n, float) and math.isnan(n)):
                continue
            dev = abs(q[key] - n) if key in COUNTS or key == "sqnrdb" else abs(q[key] - n) / max(abs(n), 1e-30)
            slot = worst.setdefault(key, {"tensors": 0, "worst": 0.0, "worst_tensor": ""})
            slot["tensors"] += 1
            if dev > slot["worst"]:
                slot["worst"], slot["worst_tensor"] = dev, name
    return worst
