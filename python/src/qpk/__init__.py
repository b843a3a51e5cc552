"""qpk: read QPK packed-quantization checkpoints (spec/qpk-format.md) with numpy.

    import qpk
    weights = qpk.load_file("model.qpk")            # name -> numpy array, quantized ones dequantized
    with qpk.safe_open("model.qpk") as f:           # lazy, memory-mapped
        f.keys(); f.metadata(); f.recipe(); f.provenance()
        w = f.get_tensor("encoder.layer.0.attention.self.query.weight")
        q = f.get_quantized(name)                   # codes, scales, zeros, layout, outliers
        o = f.outliers(name)                        # kind, indices, values, statistic, threshold
    problems = qpk.validate("model.qpk")            # [] or one QPKError per broken rule
    state = qpk.torch.load_file("model.qpk")        # torch tensors (imports torch on first use)

Everything is written from the format specification alone; numpy is the only dependency.
``ml_dtypes`` (optional) gives BF16/F8 raw tensors their exact types; ``torch`` (optional) is used
only by :mod:`qpk.torch`.
"""
from __future__ import annotations

import importlib
from typing import Any, Dict, List

import numpy as np

from ._errors import RULES, QPKError
from ._file import PathLike, QPKFile
from ._tensor import Outliers, QuantizedTensor, matrix_shape, to_matrix, to_original
from ._outlier_values import outlier_values, save_outlier_values

__all__ = ["load_file", "safe_open", "validate", "QPKError", "QPKFile", "QuantizedTensor", "Outliers",
           "RULES", "matrix_shape", "outlier_values", "save_outlier_values", "to_matrix", "to_original", "__version__"]
__version__ = "0.1.0"


def safe_open(path: PathLike, framework: str = "numpy") -> QPKFile:
    """Opens a QPK file lazily: the structure is checked (spec §8 rules 1–21) and the blobs are
    memory-mapped; tensors are read, CRC-checked and decoded one at a time on request.

    ``framework`` is accepted for symmetry with ``safetensors.safe_open``; only ``"numpy"``
    (alias ``"np"``) is served here, use :func:`qpk.torch.load_file` for torch tensors.
    Raises :class:`QPKError` when the file breaks a structural rule.
    """
    if framework not in ("numpy", "np"):
        raise ValueError(f"framework {framework!r}: qpk.safe_open returns numpy arrays; use qpk.torch for torch")
    return QPKFile(path)


def load_file(path: PathLike, widen: bool = False) -> Dict[str, np.ndarray]:
    """Every tensor of a QPK file: quantized (``affine``) tensors dequantized to float32 with
    their outlier values restored, ``raw`` tensors in their stored dtype (``widen``: BF16 and F8
    as float32 even when ml_dtypes is installed). Raises :class:`QPKError` on a broken rule."""
    with QPKFile(path) as f:
        return {name: f.get_tensor(name, widen=widen) for name in f.keys()}


def validate(path: PathLike) -> List[QPKError]:
    """Every broken rule of spec §8: the first structural problem if the file cannot be opened,
    otherwise every content problem (CRCs, outlier indices, symmetric zero-points, padding).
    Empty when the file is valid. Rule names match ``qpk validate``."""
    try:
        f = QPKFile(path)
    except QPKError as e:
        return [e]
    with f:
        return f.validate()


def __getattr__(name: str) -> Any:
    # `qpk.torch` is imported on first use, so `import qpk` never imports torch.
    if name == "torch":
        return importlib.import_module(".torch", __name__)
    raise AttributeError(f"module 'qpk' has no attribute {name!r}")
