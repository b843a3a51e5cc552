"""A minimal QPK writer for tests: builds files by hand, byte by byte, from spec/qpk-format.md.

It lets the tests cover what qpk itself may not write (axis 0, corrupt files) and pin the spec's
worked example (§9). Blobs are laid out in the order given, each at the next multiple of 64.
"""
from __future__ import annotations

import json
import struct
import zlib
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

MAGIC = bytes([0x89, 0x51, 0x50, 0x4B, 0x0D, 0x0A, 0x1A, 0x0A])


def pack_codes(codes: Sequence[int], bits: int) -> bytes:
    """§5.2: an LSB-first bit stream, written bit by bit (deliberately naive)."""
    out = bytearray((len(codes) * bits + 7) // 8)
    for i, q in enumerate(codes):
        assert 0 <= q < (1 << bits)
        for b in range(bits):
            if (q >> b) & 1:
                k = i * bits + b
                out[k // 8] |= 1 << (k % 8)
    return bytes(out)


class Builder:
    """Accumulates blobs and tensor entries, then emits the file."""

    def __init__(self) -> None:
        self.body = bytearray(b"\0" * 64)
        self.tensors: List[Dict[str, Any]] = []

    def blob(self, data: bytes) -> Dict[str, int]:
        self.body += b"\0" * (-len(self.body) % 64)
        ref = {"offset": len(self.body), "length": len(data), "crc32": zlib.crc32(data)}
        self.body += data
        return ref

    def raw(self, name: str, dtype: str, shape: Sequence[int], data: bytes) -> Dict[str, Any]:
        entry = {"name": name, "dtype": dtype, "shape": list(shape), "encoding": "raw",
                 "blobs": {"data": self.blob(data)}}
        self.tensors.append(entry)
        return entry

    def affine(self, name: str, shape: Sequence[int], codes: Sequence[int], scales: Sequence[float],
               zeros: Sequence[float], bits: int, group_size: int, axis: int = -1, scheme: str = "affine",
               outliers: Optional[Tuple[str, Sequence[int], Sequence[float]]] = None, dtype: str = "F32",
               error: Optional[Dict[str, Any]] = None, statistic: str = "abs_deviation",
               threshold: float = 3.5,
               scale_codes: Optional[Tuple[int, int, Sequence[float]]] = None) -> Dict[str, Any]:
        """An ``affine`` tensor. With ``scale_codes = (K, O, row_scales)`` (v2, §5.8) ``scales`` are
        the unsigned ``K``-bit scale codes, packed like codes, and ``row_scales`` the fp16 ``d_r``."""
        stored_scales = pack_codes(scales, scale_codes[0]) if scale_codes else np.asarray(scales, "<f2").tobytes()
        blobs = {"codes": self.blob(pack_codes(codes, bits)),
                 "scales": self.blob(stored_scales),
                 "zeros": self.blob(np.asarray(zeros, "<f2").tobytes())}
        if scale_codes:
            blobs["row_scales"] = self.blob(np.asarray(scale_codes[2], "<f2").tobytes())
        record = None
        if outliers is not None:
            kind, indices, values = outliers
            blobs["outlier_indices"] = self.blob(np.asarray(indices, "<u4").tobytes())
            blobs["outlier_values"] = self.blob(np.asarray(values, "<f4").tobytes())
            record = {"count": len(indices), "kind": kind, "statistic": statistic, "threshold": threshold}
        entry = {"name": name, "dtype": dtype, "shape": list(shape), "encoding": "affine", "blobs": blobs,
                 "quantization": {"axis": axis, "bits": bits, "group_size": group_size, "method": "minmax",
                                  "scheme": scheme},
                 "error": error, "outliers": record}
        if scale_codes:
            entry["quantization"]["scale_codes"] = {"bits": scale_codes[0], "octaves": scale_codes[1]}
        self.tensors.append(entry)
        return entry

    def header(self, order: Optional[Sequence[str]] = None, metadata: Optional[Dict[str, str]] = None,
               recipe: Optional[Dict[str, Any]] = None, provenance: Optional[Dict[str, Any]] = None,
               totals: Optional[Dict[str, int]] = None, version: int = 1) -> Dict[str, Any]:
        by_name = {t["name"]: t for t in self.tensors}
        tensors = [by_name[n] for n in (order or [t["name"] for t in self.tensors])]
        if totals is None:
            params = quantized = 0
            for t in tensors:
                if t["encoding"] != "affine":
                    continue
                n = int(np.prod(t["shape"])) if t["shape"] else 1
                quantized += n
                o = t["outliers"]
                if o:
                    shape = t["shape"]
                    lead = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
                    last = shape[-1] if shape else 1
                    rows, cols = (lead, last) if t["quantization"]["axis"] == -1 else (last, lead)
                    params += {"rows": o["count"] * cols, "columns": o["count"] * rows, "elements": o["count"]}[o["kind"]]
            totals = {"parameters": params, "quantized_parameters": quantized}
        return {"format": "qpk", "version": version, "tensors": tensors, "metadata": metadata or {},
                "recipe": recipe or {}, "outliers": totals,
                "provenance": provenance or {"created_by": "test", "qpk_version": "test", "sources": []}}

    def build(self, header: Optional[Dict[str, Any]] = None, **kwargs: Any) -> bytes:
        header = header if header is not None else self.header(**kwargs)
        text = json.dumps(header, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        body = bytearray(self.body)
        body += b"\0" * (-len(body) % 64)
        offset = len(body)
        pre = bytearray(MAGIC + struct.pack("<IIQQI", header["version"], 0, offset, len(text), zlib.crc32(text)) + b"\0" * 24)
        pre += struct.pack("<I", zlib.crc32(bytes(pre)))
        body[:64] = pre
        return bytes(body + text)
