"""The §5 matrix view of a quantized tensor: its stored arrays, bit unpacking and dequantization.

Section numbers (§) refer to spec/qpk-format.md.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

import numpy as np

__all__ = ["QuantizedTensor", "Outliers", "matrix_shape", "to_matrix", "to_original", "unpack_codes",
           "hadamard_inverse", "scale_magnitudes", "decode_scale_codes"]


def _product(values: Tuple[int, ...]) -> int:
    result = 1
    for v in values:
        result *= v
    return result


def matrix_shape(shape: Tuple[int, ...], axis: int = -1) -> Tuple[int, int]:
    """§5.1: the (rows R, columns C) matrix view of a tensor.

    ``axis = -1``: the leading axes are rows, the last axis is columns. ``axis = 0`` (groups run
    along the leading axes): the transpose of that matrix, ``R = dn`` and ``C = d0·…·d(n−1)``.
    A 1-D tensor ``[n]`` is ``1 × n`` and a scalar ``1 × 1`` under either axis.
    """
    if len(shape) < 2:
        return 1, (shape[0] if shape else 1)
    lead, last = _product(tuple(shape[:-1])), shape[-1]
    return (lead, last) if axis == -1 else (last, lead)


def _transposed(shape: Tuple[int, ...], axis: int) -> bool:
    return axis == 0 and len(shape) >= 2


@dataclass(frozen=True)
class Outliers:
    """A tensor's outlier record (§6).

    ``indices`` are row numbers, column numbers or flat element indices ``r·C + c`` of the
    quantization matrix view (§5.1; transposed for ``axis = 0``); ``values`` are the
    full-precision values in row-major order of the parameters they cover (1-D float32).
    """

    kind: str
    indices: np.ndarray
    values: np.ndarray
    statistic: str
    threshold: float

    def mask(self, rows: int, columns: int) -> np.ndarray:
        """A boolean ``rows × columns`` matrix, true exactly at the covered parameters."""
        m = np.zeros((rows, columns), dtype=bool)
        if self.kind == "rows":
            m[self.indices, :] = True
        elif self.kind == "columns":
            m[:, self.indices] = True
        else:
            m.reshape(-1)[self.indices] = True
        return m


@dataclass(frozen=True)
class QuantizedTensor:
    """The stored arrays of an ``affine`` tensor (§5), in the quantization matrix view.

    ``codes`` is ``rows × columns`` (uint8 codes unpacked from the bit stream), ``scales`` and
    ``zeros`` are ``rows × groups`` float16 (zero-points decoded from any §5.3 storage); with
    log-coded scales (§5.8) ``scales`` is float32, decoded from ``scale_codes`` (int64,
    ``rows × groups``) and ``row_scales`` (float16, one per row), which are ``None`` otherwise.
    ``layout`` is the header's ``quantization`` object (scheme, bits, group_size, axis, method, and
    the v2 keys). ``shape`` is the tensor's original shape. The v2 side tables: ``group_index``
    (int64, one group per column, §5.5), ``codebook`` (float16, ``2^bits`` values, §5.7) and
    ``transform_signs`` (bool, one per column, true for −1, §5.6), each ``None`` when absent.
    """

    name: str
    dtype: str
    shape: Tuple[int, ...]
    layout: Dict[str, Any]
    codes: np.ndarray
    scales: np.ndarray
    zeros: np.ndarray
    outliers: Optional[Outliers]
    group_index: Optional[np.ndarray] = None
    codebook: Optional[np.ndarray] = None
    transform_signs: Optional[np.ndarray] = None
    scale_codes: Optional[np.ndarray] = None
    row_scales: Optional[np.ndarray] = None

    @property
    def bits(self) -> int:
        return int(self.layout["bits"])

    @property
    def group_size(self) -> int:
        return int(self.layout["group_size"])

    @property
    def axis(self) -> int:
        return int(self.layout.get("axis", -1))

    @property
    def transform(self) -> Optional[Dict[str, Any]]:
        """The v2 transform object (``{"kind": "hadamard", "block_size": B}``), or ``None``."""
        return self.layout.get("transform")

    def dequantize(self, outliers: bool = True) -> np.ndarray:
        """§5.4: ``(v(q) − z)·s`` per element in float32 (``v(q)`` the code, or its codebook
        value), each row transformed back (§5.6) if there is a transform, then (with
        ``outliers``) the outlier values at their positions; returned in the tensor's original
        shape."""
        rows, columns = self.codes.shape
        if self.group_index is not None:
            group_of_column = self.group_index
        else:
            group_of_column = np.arange(columns) // self.group_size
        values = self.codes.astype(np.float32) if self.codebook is None \
            else self.codebook.astype(np.float32)[self.codes]
        x = (values - self.zeros.astype(np.float32)[:, group_of_column]) \
            * self.scales.astype(np.float32)[:, group_of_column]
        if self.transform is not None and self.transform_signs is not None:
            x = hadamard_inverse(x, int(self.transform["block_size"]), self.transform_signs)
        if outliers and self.outliers is not None:
            o = self.outliers
            if o.kind == "rows":
                x[o.indices, :] = o.values.reshape(len(o.indices), columns)
            elif o.kind == "columns":
                x[:, o.indices] = o.values.reshape(rows, len(o.indices))
            else:
                x.reshape(-1)[o.indices] = o.values
        return to_original(x, self.shape, self.axis)

    def outlier_mask(self) -> np.ndarray:
        """A boolean array of the tensor's original shape, true exactly where an outlier value
        replaces the dequantized value (all false without outliers)."""
        rows, columns = self.codes.shape
        m = self.outliers.mask(rows, columns) if self.outliers is not None else np.zeros((rows, columns), bool)
        return to_original(m, self.shape, self.axis)


def hadamard_inverse(x: np.ndarray, block: int, signs: np.ndarray) -> np.ndarray:
    """§5.6: ``x·H·D`` for every row of the float32 matrix ``x``, in the reference order: the
    butterflies ``h = 1, 2, …, B/2`` (pairs ``(j, j+h)`` within runs of ``2h`` columns), then the
    scale ``f32(1/√B)``, then the signs. Bit-identical to qpk."""
    rows, columns = x.shape
    x = np.array(x, dtype=np.float32, copy=True)
    h = 1
    while h < block:
        v = x.reshape(rows, columns // (2 * h), 2, h)
        a = v[:, :, 0, :].copy()
        b = v[:, :, 1, :]
        v[:, :, 0, :] = a + b
        v[:, :, 1, :] = a - b
        h *= 2
    x *= np.float32(1.0 / np.sqrt(np.float64(block)))
    x[:, signs] = -x[:, signs]
    return x


def scale_magnitudes(bits: int, octaves: int) -> np.ndarray:
    """§5.8: the magnitude table ``m[k]``, ``k = 0 … k_max`` (``k_max = 2^(bits−1) − 1``): ``2^(−k·O/k_max)``
    computed in float64 and rounded once to float32 (``m[0] = 1`` exactly)."""
    k_max = (1 << (bits - 1)) - 1
    k = np.arange(k_max + 1, dtype=np.float64)
    return np.exp2(-k * octaves / k_max).astype(np.float32)


def decode_scale_codes(codes: np.ndarray, row_scales: np.ndarray, bits: int, octaves: int) -> np.ndarray:
    """§5.8: the ``rows × groups`` float32 group scales of log-coded ``codes`` (``rows × groups``
    unsigned ``bits``-bit integers) below ``row_scales`` (one float16 ``d_r`` per row):
    ``σ · (f32(d_r) · m[u mod 2^(bits−1)])`` in float32, the sign ``σ`` (bit ``bits − 1`` of ``u``) applied last."""
    half = 1 << (bits - 1)
    codes = np.asarray(codes, dtype=np.int64)
    magnitude = row_scales.astype(np.float32)[:, None] * scale_magnitudes(bits, octaves)[codes % half]
    return np.where(codes >= half, -magnitude, magnitude).astype(np.float32)


def to_original(matrix: np.ndarray, shape: Tuple[int, ...], axis: int) -> np.ndarray:
    """The tensor of ``shape`` whose §5.1 matrix view (for ``axis``) is ``matrix``."""
    if _transposed(tuple(shape), axis):
        matrix = matrix.T
    return np.ascontiguousarray(matrix).reshape(shape)


def to_matrix(tensor: np.ndarray, axis: int) -> np.ndarray:
    """The §5.1 matrix view (for ``axis``) of ``tensor``: inverse of :func:`to_original`."""
    shape = tuple(tensor.shape)
    rows, columns = matrix_shape(shape, axis)
    if _transposed(shape, axis):
        return np.ascontiguousarray(tensor.reshape(columns, rows).T)
    return tensor.reshape(rows, columns)


def group_index_bits(groups: int) -> int:
    """§5.5: the width of one group-index entry, the bit length of ``groups - 1`` (at least 1)."""
    return max(1, (groups - 1).bit_length())


def unpack_integers(stream: memoryview, count: int, bits: int) -> np.ndarray:
    """§5.2's LSB-first bit stream of ``bits``-bit unsigned integers, any width up to 63 (int64)."""
    stream_bits = np.unpackbits(np.frombuffer(stream, np.uint8), bitorder="little")[: count * bits]
    weights = np.left_shift(np.int64(1), np.arange(bits, dtype=np.int64))
    return stream_bits.reshape(count, bits).astype(np.int64) @ weights


def unpack_codes(stream: memoryview, count: int, bits: int) -> np.ndarray:
    """§5.2: the first ``count`` codes of an LSB-first bit stream of ``bits``-bit codes (uint8)."""
    raw = np.frombuffer(stream, np.uint8)
    if bits == 8:
        return raw[:count].copy()
    if bits in (2, 4):
        shifts = np.arange(0, 8, bits, dtype=np.uint8)
        return ((raw[:, None] >> shifts) & ((1 << bits) - 1)).reshape(-1)[:count].astype(np.uint8)
    stream_bits = np.unpackbits(raw, bitorder="little")[: count * bits].reshape(count, bits)
    return np.packbits(stream_bits, axis=1, bitorder="little")[:, 0]
