"""Peer quantizers for the quality bench, applied to exactly the tensors qpk quantizes.

Tensor selection (shared with the qpk runs): every rank-2 tensor whose name starts with
``encoder.layer.`` — per layer the query/key/value/attention-output projections (384×384), the
intermediate projection (1536×384) and the output projection (384×1536): 36 tensors, 10,616,832
weights for MiniLM-L6. Embedding tables, biases and LayerNorm vectors stay fp32. The qpk side
selects the same set with the globs in ``QPK_INCLUDE_GLOBS`` (checked against this rule at run time).

Peers (all group along the last axis, i.e. along the input dimension of a ``[out, in]`` weight):
- llama.cpp Q4_0, Q4_1, Q5_0, Q8_0 through the PyPI ``gguf`` package's numpy reference
  quantizers (``gguf.quants.quantize``/``dequantize``). Blocks of 32; bytes counted from the
  returned block arrays (Q4_0 = fp16 d + 16 nibble bytes per 32 weights = 4.5 bpw, ...).
- MLX-style affine (DESIGN §4): groups of 64, ``scale = (max − min)/(2^b − 1)``, ``bias = min``,
  both stored as fp16, ``code = round((w − bias)/scale)`` clipped to [0, 2^b − 1] and computed from
  the stored fp16 scale and bias; codes packed LSB-first into uint32 (widths that do not divide 32
  as one dense LSB-first bitstream); ``ŵ = code·scale + bias``.
- Plain round-to-nearest, two flavours:
  * "RTN min-max": the MLX formula above at other widths/groups (float offset = group minimum).
    This is the "plain RTN" of issue 4's context numbers (3-bit g128 ≈ 0.79 mean cosine).
  * "RTN int-zero": asymmetric with an integer zero point. ``scale = (max − min)/(2^b − 1)``, an integer zero
  point ``z = round(−min/scale)`` (so 0.0 is exactly
    representable), ``code = clip(round(w/scale) + z)``, ``ŵ = (code − z)·scale``; scale and zero
    stored as fp16; codes bit-packed densely LSB-first. Also per output row ("per-channel") at 4 bits.
    At equal SQNR it keeps noticeably more model-level fidelity than min-max (exact zero).

Every peer reports the bytes it actually stores for the selected tensors, so effective bits per
weight count codes, scales, zeros/biases and block headers alike.
"""
from __future__ import annotations

import fnmatch
import time
from dataclasses import dataclass, field
from typing import Callable, Mapping

import numpy as np

QPK_INCLUDE_GLOBS: tuple[str, ...] = (
    "encoder.layer.*.query.weight",
    "encoder.layer.*.key.weight",
    "encoder.layer.*.value.weight",
    "encoder.layer.*.dense.weight",
)


def select_quantized(weights: Mapping[str, np.ndarray]) -> list[str]:
    """Names of the tensors every method quantizes: rank-2 tensors under ``encoder.layer.``."""
    names = sorted(n for n, t in weights.items() if n.startswith("encoder.layer.") and t.ndim == 2)
    by_glob = sorted(n for n in weights if any(fnmatch.fnmatchcase(n, g) for g in QPK_INCLUDE_GLOBS))
    if names != by_glob:
        raise AssertionError(f"QPK_INCLUDE_GLOBS select {len(by_glob)} tensors, the rule selects {len(names)}")
    return names


@dataclass
class Quantized:
    """One tensor after a round trip: the dequantized values and the bytes the format stores."""
    dequantized: np.ndarray
    stored_bytes: int


@dataclass
class PeerOutcome:
    """A method applied to the whole selection."""
    name: str
    dequantized: dict[str, np.ndarray] = field(default_factory=dict)
    stored_bytes: int = 0
    params: int = 0
    seconds: float = 0.0

    @property
    def bpw(self) -> float:
        return 8.0 * self.stored_bytes / self.params


# -- llama.cpp block formats via gguf-py ---------------------------------------------------------

def gguf_quantizer(type_name: str) -> Callable[[np.ndarray], Quantized]:
    from gguf import GGMLQuantizationType
    from gguf.quants import dequantize, quantize

    qtype = GGMLQuantizationType[type_name]

    def run(w: np.ndarray) -> Quantized:
        if w.shape[-1] % 32:
            raise ValueError(f"{type_name}: last axis {w.shape[-1]} is not a multiple of the 32-value block")
        blocks = quantize(w.astype(np.float32), qtype)
        return Quantized(dequantize(blocks, qtype).reshape(w.shape).astype(np.float32), int(blocks.nbytes))

    return run


# -- bit packing ---------------------------------------------------------------------------------

def pack_bits_lsb_first(codes: np.ndarray, bits: int) -> np.ndarray:
    """Pack unsigned ``bits``-wide codes into a dense little-endian bitstream (first code in bit 0)."""
    flat = codes.astype(np.uint32).reshape(-1)
    bitplanes = ((flat[:, None] >> np.arange(bits, dtype=np.uint32)) & 1).astype(np.uint8)
    return np.packbits(bitplanes.reshape(-1), bitorder="little")


def unpack_bits_lsb_first(packed: np.ndarray, bits: int, count: int) -> np.ndarray:
    planes = np.unpackbits(packed, bitorder="little")[: count * bits].reshape(count, bits).astype(np.uint32)
    return (planes << np.arange(bits, dtype=np.uint32)).sum(axis=1).astype(np.uint32)


def pack_uint32_lsb_first(codes: np.ndarray, bits: int) -> np.ndarray:
    """MLX layout: 32/bits codes per uint32, the first code in the least significant bits."""
    per_word = 32 // bits
    flat = codes.astype(np.uint32).reshape(-1, per_word)
    shifts = (np.arange(per_word, dtype=np.uint32) * bits)
    return np.bitwise_or.reduce(flat << shifts, axis=1)


def unpack_uint32_lsb_first(words: np.ndarray, bits: int) -> np.ndarray:
    per_word = 32 // bits
    shifts = (np.arange(per_word, dtype=np.uint32) * bits)
    return ((words[:, None] >> shifts) & np.uint32((1 << bits) - 1)).reshape(-1)


def _groups(w: np.ndarray, group: int) -> np.ndarray:
    if w.shape[-1] % group:
        raise ValueError(f"last axis {w.shape[-1]} is not a multiple of group size {group}")
    return w.astype(np.float32).reshape(-1, group)


# -- MLX-style affine ----------------------------------------------------------------------------

def mlx_affine_quantizer(bits: int, group: int) -> Callable[[np.ndarray], Quantized]:
    levels = (1 << bits) - 1

    def run(w: np.ndarray) -> Quantized:
        g = _groups(w, group)
        lo, hi = g.min(axis=1, keepdims=True), g.max(axis=1, keepdims=True)
        scale16 = np.maximum((hi - lo) / levels, 1e-8).astype(np.float16)
        bias16 = lo.astype(np.float16)
        scale, bias = scale16.astype(np.float32), bias16.astype(np.float32)
        codes = np.clip(np.rint((g - bias) / scale), 0, levels).astype(np.uint32)
        if 32 % bits == 0:
            words = pack_uint32_lsb_first(codes, bits)
            unpacked = unpack_uint32_lsb_first(words, bits)
        else:  # 3/5/6-bit codes: one dense LSB-first bitstream
            words = pack_bits_lsb_first(codes, bits)
            unpacked = unpack_bits_lsb_first(words, bits, codes.size)
        restored = unpacked.reshape(g.shape).astype(np.float32) * scale + bias
        stored = words.nbytes + scale16.nbytes + bias16.nbytes
        return Quantized(restored.reshape(w.shape), int(stored))

    return run


# -- plain round-to-nearest asymmetric with integer zero point -----------------------------------

def rtn_quantizer(bits: int, group: int | None) -> Callable[[np.ndarray], Quantized]:
    """``group=None`` means one group per output row (per-channel)."""
    levels = (1 << bits) - 1

    def run(w: np.ndarray) -> Quantized:
        g = _groups(w, group if group else w.shape[-1])
        lo = np.minimum(g.min(axis=1, keepdims=True), 0.0)
        hi = np.maximum(g.max(axis=1, keepdims=True), 0.0)
        scale16 = np.maximum((hi - lo) / levels, 1e-8).astype(np.float16)
        scale = scale16.astype(np.float32)
        zero16 = np.clip(np.rint(-lo / scale), 0, levels).astype(np.float16)
        zero = zero16.astype(np.float32)
        codes = np.clip(np.rint(g / scale) + zero, 0, levels).astype(np.uint32)
        packed = pack_bits_lsb_first(codes, bits)
        unpacked = unpack_bits_lsb_first(packed, bits, codes.size).reshape(g.shape).astype(np.float32)
        restored = (unpacked - zero) * scale
        stored = packed.nbytes + scale16.nbytes + zero16.nbytes
        return Quantized(restored.reshape(w.shape), int(stored))

    return run


PEERS: dict[str, tuple[str, Callable[[np.ndarray], Quantized]]] = {
    "llama.cpp Q4_0": ("gguf-py numpy reference, block 32, fp16 d", gguf_quantizer("Q4_0")),
    "llama.cpp Q4_1": ("gguf-py numpy reference, block 32, fp16 d+m", gguf_quantizer("Q4_1")),
    "llama.cpp Q5_0": ("gguf-py numpy reference, block 32, fp16 d", gguf_quantizer("Q5_0")),
    "llama.cpp Q8_0": ("gguf-py numpy reference, block 32, fp16 d", gguf_quantizer("Q8_0")),
    "MLX affine 4-bit g64": ("min-max affine, fp16 scale+bias, codes in uint32", mlx_affine_quantizer(4, 64)),
    "RTN min-max 4-bit g128": ("min-max affine (MLX formula), fp16 scale+bias", mlx_affine_quantizer(4, 128)),
    "RTN min-max 3-bit g64": ("min-max affine (MLX formula), fp16 scale+bias", mlx_affine_quantizer(3, 64)),
    "RTN min-max 3-bit g128": ("min-max affine (MLX formula), fp16 scale+bias", mlx_affine_quantizer(3, 128)),
    "RTN int-zero 4-bit g64": ("asymmetric, integer zero point, fp16 scale+zero", rtn_quantizer(4, 64)),
    "RTN int-zero 4-bit g128": ("asymmetric, integer zero point, fp16 scale+zero", rtn_quantizer(4, 128)),
    "RTN int-zero 4-bit per-row": ("asymmetric, integer zero point, one group per output row", rtn_quantizer(4, None)),
    "RTN int-zero 3-bit g64": ("asymmetric, integer zero point, fp16 scale+zero", rtn_quantizer(3, 64)),
    "RTN int-zero 3-bit g128": ("asymmetric, integer zero point, fp16 scale+zero", rtn_quantizer(3, 128)),
}
QUICK_PEERS = ("llama.cpp Q4_0", "MLX affine 4-bit g64", "RTN min-max 3-bit g128")


def run_peer(name: str, weights: Mapping[str, np.ndarray], selection: list[str]) -> PeerOutcome:
    """Quantize and dequantize every selected tensor with peer ``name``, timing the whole pass."""
    _, quantize = PEERS[name]
    out = PeerOutcome(name)
    start = time.perf_counter()
    for tensor in selection:
        q = quantize(weights[tensor])
        out.dequantized[tensor] = q.dequantized
        out.stored_bytes += q.stored_bytes
        out.params += weights[tensor].size
    out.seconds = time.perf_counter() - start
    return out
