"""torch tensors from QPK files. torch is imported when a function here is called, not before.

    import qpk
    state = qpk.torch.load_file("model.qpk")     # name -> torch.Tensor
    model.load_state_dict(state, strict=False)
"""
from __future__ import annotations

import importlib
from typing import Any, Dict

import numpy as np

from ._file import PathLike, QPKFile

__all__ = ["load_file", "outlier_masks", "to_torch"]


def _torch() -> Any:
    try:
        return importlib.import_module("torch")
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("qpk.torch needs PyTorch: pip install torch (or pip install 'qpk[torch]')") from e


def to_torch(array: np.ndarray) -> Any:
    """A torch tensor with the array's values. ml_dtypes bfloat16 becomes torch.bfloat16 and the
    float8 types their torch equivalents where torch has them (else float32)."""
    torch = _torch()
    name = array.dtype.name
    if name == "bfloat16":
        return torch.from_numpy(array.view(np.uint16).astype(np.int16)).view(torch.bfloat16)
    f8 = {"float8_e4m3fn": "float8_e4m3fn", "float8_e5m2": "float8_e5m2",
          "float8_e4m3fnuz": "float8_e4m3fnuz", "float8_e5m2fnuz": "float8_e5m2fnuz"}.get(name)
    if f8 is not None:
        kind = getattr(torch, f8, None)
        if kind is not None:
            return torch.from_numpy(array.view(np.uint8).copy()).view(kind)
        return torch.from_numpy(array.astype(np.float32))
    if array.dtype.kind == "V" or name.startswith("float8") or name.startswith("float4"):
        return torch.from_numpy(array.astype(np.float32))
    return torch.from_numpy(np.ascontiguousarray(array))


def load_file(path: PathLike, device: str = "cpu") -> Dict[str, Any]:
    """Every tensor of the file as a torch tensor on ``device``: quantized tensors dequantized to
    float32 (outliers restored), raw tensors in their dtype (BF16 as torch.bfloat16)."""
    with QPKFile(path) as f:
        return {name: to_torch(f.get_tensor(name)).to(device) for name in f.keys()}


def outlier_masks(path: PathLike, device: str = "cpu") -> Dict[str, Any]:
    """For every quantized tensor that has outliers, a torch.bool tensor of its shape, true
    exactly where an outlier value (kept at full precision) replaces the dequantized value."""
    torch = _torch()
    with QPKFile(path) as f:
        masks = {}
        for name in f.keys():
            if f.is_quantized(name) and f.entry(name).get("outliers") is not None:
                masks[name] = torch.from_numpy(f.get_quantized(name).outlier_mask()).to(device)
        return masks
