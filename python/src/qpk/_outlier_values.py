"""The tuned-outlier-values file that ``qpk convert IN.qpk OUT.qpk --outlier-values FILE`` reads.

Convention (README, "Outlier masks for parameter-efficient fine-tuning"): a safetensors file with
one tensor per quantized tensor of the QPK file that has an outlier record, **named as in the QPK
file**, holding that tensor's outlier values as a **1-D F32** tensor of ``P`` values in the order
of spec §6 (``rows``: each listed row whole, in index order; ``columns``: row by row, the listed
columns of each row; ``elements``: one value per index, in index order; all in the §5.1 matrix
view of the tensor's quantization axis). No other tensors. ``P`` and the indices come from the
QPK file, so the file carries values only: the positions cannot change.
"""
from __future__ import annotations

import json
import os
import struct
from typing import Dict, Mapping

import numpy as np

from ._file import PathLike, QPKFile
from ._tensor import to_matrix

__all__ = ["outlier_values", "save_outlier_values"]


def outlier_values(qpk_path: PathLike, weights: Mapping[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """For every tensor of ``qpk_path`` with an outlier record, the values of ``weights[name]``
    (the full tensor, in its original shape, e.g. after fine-tuning) at the outlier positions,
    as a 1-D float32 array in §6 order. Raises ``KeyError`` when a tensor is missing and
    ``ValueError`` when its shape differs from the QPK file's."""
    result: Dict[str, np.ndarray] = {}
    with QPKFile(qpk_path) as f:
        for name in f.keys():
            if not f.is_quantized(name):
                continue
            o = f.outliers(name)
            if o is None:
                continue
            if name not in weights:
                raise KeyError(f"{qpk_path}: tensor '{name}' has outliers but is not in the weights")
            w = np.asarray(weights[name], dtype=np.float32)
            shape = tuple(f.entry(name)["shape"])
            if tuple(w.shape) != shape:
                raise ValueError(f"{qpk_path}: tensor '{name}' has shape {shape}, the weights {tuple(w.shape)}")
            m = to_matrix(w, int(f.entry(name)["quantization"]["axis"]))
            if o.kind == "rows":
                values = m[o.indices, :]
            elif o.kind == "columns":
                values = m[:, o.indices]
            else:
                values = m.reshape(-1)[o.indices]
            result[name] = np.ascontiguousarray(values, dtype=np.float32).reshape(-1)
    return result


def save_outlier_values(path: PathLike, values: Mapping[str, np.ndarray]) -> None:
    """Writes ``values`` (name -> 1-D float32) as a safetensors file (F32 tensors, names sorted),
    the input of ``qpk convert --outlier-values``. Needs no safetensors package."""
    header: Dict[str, object] = {}
    blobs = []
    offset = 0
    for name in sorted(values):
        v = np.ascontiguousarray(values[name], dtype="<f4").reshape(-1)
        header[name] = {"dtype": "F32", "shape": [int(v.size)], "data_offsets": [offset, offset + v.nbytes]}
        blobs.append(v.tobytes())
        offset += v.nbytes
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    tmp = os.fspath(path) + ".tmp"
    with open(tmp, "wb") as out:
        out.write(struct.pack("<Q", len(text)))
        out.write(text)
        for b in blobs:
            out.write(b)
    os.replace(tmp, path)
