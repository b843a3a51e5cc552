"""The dtypes of spec/qpk-format.md §4.2 and how each becomes a numpy array.

numpy has native types for ``BOOL``, the integers, ``F16``, ``F32``, ``F64`` and ``C64``.
``BF16`` and the five 8-bit float types have none: when the optional ``ml_dtypes`` package is
installed they are returned in its exact types (``bfloat16``, ``float8_e4m3fn``, …), otherwise
they are decoded exactly to ``float32`` (every BF16 and F8 value is a float32 value). The sub-byte
types ``F4``, ``F6_E2M3`` and ``F6_E3M2`` are returned as their packed bytes (``uint8``, 1-D):
neither QPK nor safetensors fixes the order of the packed codes inside a byte.
"""
from __future__ import annotations

from typing import Dict, Optional, Tuple

import numpy as np

__all__ = ["BITS", "FLOATING", "NUMPY", "ML_DTYPES_NAMES", "decode_raw", "f8_table"]

#: dtype name -> bit width (§4.2).
BITS: Dict[str, int] = {
    "BOOL": 8, "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8,
    "F8_E8M0": 8, "F8_E4M3FNUZ": 8, "F8_E5M2FNUZ": 8, "I16": 16, "U16": 16, "F16": 16, "BF16": 16,
    "I32": 32, "U32": 32, "F32": 32, "C64": 64, "F64": 64, "I64": 64, "U64": 64,
}

#: The floating-point dtypes: the only ones an ``affine`` tensor may have (§4.2).
FLOATING = frozenset({"F4", "F6_E2M3", "F6_E3M2", "F8_E5M2", "F8_E4M3", "F8_E8M0", "F8_E4M3FNUZ",
                      "F8_E5M2FNUZ", "F16", "BF16", "F32", "F64"})

#: dtype name -> little-endian numpy dtype, for the types numpy has.
NUMPY: Dict[str, str] = {
    "BOOL": "?", "U8": "u1", "I8": "i1", "I16": "<i2", "U16": "<u2", "F16": "<f2", "I32": "<i4",
    "U32": "<u4", "F32": "<f4", "C64": "<c8", "F64": "<f8", "I64": "<i8", "U64": "<u8",
}

#: dtype name -> the ml_dtypes type name with the same encoding.
ML_DTYPES_NAMES: Dict[str, str] = {
    "BF16": "bfloat16", "F8_E5M2": "float8_e5m2", "F8_E4M3": "float8_e4m3fn",
    "F8_E4M3FNUZ": "float8_e4m3fnuz", "F8_E5M2FNUZ": "float8_e5m2fnuz", "F8_E8M0": "float8_e8m0fnu",
}

#: (exponent bits, mantissa bits, bias, style) of the 8-bit floats; style says how NaN/inf work.
_F8: Dict[str, Tuple[int, int, int, str]] = {
    "F8_E5M2": (5, 2, 15, "ieee"),       # IEEE-like: exponent all ones is inf (m = 0) or NaN
    "F8_E4M3": (4, 3, 7, "fn"),          # finite only: S.1111.111 is NaN, no inf
    "F8_E4M3FNUZ": (4, 3, 8, "fnuz"),    # finite only, no -0: 0x80 is NaN
    "F8_E5M2FNUZ": (5, 2, 16, "fnuz"),
}

_tables: Dict[str, np.ndarray] = {}


def f8_table(dtype: str) -> np.ndarray:
    """The float32 value of each of the 256 codes of an 8-bit float dtype (exact)."""
    if dtype in _tables:
        return _tables[dtype]
    codes = np.arange(256, dtype=np.uint32)
    if dtype == "F8_E8M0":
        # Unsigned, exponent only: 2^(e - 127); 0xFF is NaN.
        values = np.ldexp(np.float64(1.0), codes.astype(np.int64) - 127)
        values[255] = np.nan
    else:
        e_bits, m_bits, bias, style = _F8[dtype]
        sign = np.where(codes >> 7, -1.0, 1.0)
        exponent = ((codes >> m_bits) & ((1 << e_bits) - 1)).astype(np.int64)
        mantissa = (codes & ((1 << m_bits) - 1)).astype(np.float64)
        normal = np.ldexp(1.0 + mantissa / (1 << m_bits), exponent - bias)
        subnormal = np.ldexp(mantissa / (1 << m_bits), 1 - bias)
        values = sign * np.where(exponent == 0, subnormal, normal)
        top = (1 << e_bits) - 1
        if style == "ieee":
            values[(exponent == top) & (mantissa == 0)] = sign[(exponent == top) & (mantissa == 0)] * np.inf
            values[(exponent == top) & (mantissa != 0)] = np.nan
        elif style == "fn":
            values[(codes & 0x7F) == 0x7F] = np.nan
        else:
            values[128] = np.nan
    table = values.astype(np.float32)
    table.setflags(write=False)
    _tables[dtype] = table
    return table


def _ml_dtype(dtype: str) -> Optional[np.dtype]:
    name = ML_DTYPES_NAMES.get(dtype)
    if name is None:
        return None
    try:
        import ml_dtypes  # optional
    except ImportError:
        return None
    kind = getattr(ml_dtypes, name, None)
    return None if kind is None else np.dtype(kind)


def decode_raw(dtype: str, data: memoryview, shape: Tuple[int, ...], widen: bool = False) -> np.ndarray:
    """The values of a ``raw`` blob as a new numpy array of ``shape`` (see the module doc).

    With ``widen`` BF16 and F8 are always decoded to float32, even when ml_dtypes is installed.
    """
    if dtype in NUMPY:
        return np.frombuffer(data, NUMPY[dtype]).reshape(shape).copy()
    if dtype == "BF16":
        exotic = None if widen else _ml_dtype(dtype)
        if exotic is not None:
            return np.frombuffer(data, "<u2").view(exotic).reshape(shape).copy()
        return (np.frombuffer(data, "<u2").astype(np.uint32) << 16).view(np.float32).reshape(shape)
    if dtype in ML_DTYPES_NAMES:
        exotic = None if widen else _ml_dtype(dtype)
        if exotic is not None:
            return np.frombuffer(data, np.uint8).view(exotic).reshape(shape).copy()
        return f8_table(dtype)[np.frombuffer(data, np.uint8)].reshape(shape)
    return np.frombuffer(data, np.uint8).copy()  # F4, F6_*: packed bytes
