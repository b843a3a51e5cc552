"""Opening a QPK file (version 1 or 2): the structural rules 1–21, 26–28 and 31 on open, blobs read lazily from a memory map.

The decoded arrays and the dequantization live in :mod:`qpk._tensor`.

Written from spec/qpk-format.md alone; section numbers (§) refer to that document.
"""
from __future__ import annotations

import json
import mmap
import os
import struct
import zlib
from typing import Any, Dict, Iterator, List, Optional, Tuple, Union

import numpy as np

from ._dtypes import BITS, FLOATING, decode_raw
from ._errors import QPKError
from ._tensor import (Outliers, QuantizedTensor, decode_scale_codes, group_index_bits, matrix_shape, unpack_codes,
                      unpack_integers)

__all__ = ["QPKFile", "PathLike"]

MAGIC = bytes([0x89, 0x51, 0x50, 0x4B, 0x0D, 0x0A, 0x1A, 0x0A])  # §2
PREAMBLE = 64
ALIGN = 64
MAX_HEADER = 1 << 28
MAX_INT63 = (1 << 63) - 1
SCALE_BITS = range(2, 9)  # §5.8, rule 31
SCALE_OCTAVES = range(1, 33)
KINDS = ("rows", "columns", "elements")
PathLike = Union[str, "os.PathLike[str]"]


def _float(value: Any) -> float:
    """§4: a float field is a JSON number or one of the strings inf, -inf, nan."""
    if isinstance(value, str):
        return {"inf": float("inf"), "-inf": float("-inf"), "nan": float("nan")}[value]
    return float(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _product(values: List[int]) -> int:
    result = 1
    for v in values:
        result *= v
    return result


class QPKFile:
    """An open QPK file: the header parsed and checked (rules 1–21), the blobs memory-mapped.

    Use it as a context manager (``with qpk.safe_open(path) as f:``) or call :meth:`close`.
    Arrays it returns are copies, so they stay valid after the file is closed.
    """

    def __init__(self, path: PathLike) -> None:
        self.path = os.fspath(path)
        self._handle = open(self.path, "rb")
        try:
            size = os.fstat(self._handle.fileno()).st_size
            self._map: Optional[mmap.mmap] = (
                mmap.mmap(self._handle.fileno(), 0, access=mmap.ACCESS_READ) if size else None)
            self._size = size
            self._view = memoryview(self._map) if self._map is not None else memoryview(b"")
            self._check_preamble()
            self._parse_header()
        except BaseException:
            self.close()
            raise

    # -- lifetime -----------------------------------------------------------------------------

    def close(self) -> None:
        """Unmaps the file. Arrays returned earlier stay valid (they are copies)."""
        view = getattr(self, "_view", None)
        mapping = getattr(self, "_map", None)
        self._map = None
        try:
            if view is not None:
                view.release()
            if mapping is not None:
                mapping.close()
        except BufferError:  # a caller still holds a view: the mapping goes when it does
            pass
        self._handle.close()

    def __enter__(self) -> "QPKFile":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- §2 preamble: rules 1–9 -----------------------------------------------------------------

    def _fail(self, rule: str, detail: str, tensor: Optional[str] = None) -> QPKError:
        return QPKError(rule, self.path, detail, tensor)

    def _check_preamble(self) -> None:
        d = self._view
        if self._size < PREAMBLE:
            raise self._fail("file_too_small", f"only {self._size} bytes, a QPK file has a 64-byte preamble")
        if bytes(d[:8]) != MAGIC:
            raise self._fail("bad_magic", "does not start with the QPK magic 89 51 50 4B 0D 0A 1A 0A")
        version, flags, h_off, h_len, h_crc = struct.unpack_from("<IIQQI", d, 8)
        (p_crc,) = struct.unpack_from("<I", d, 60)
        if version not in (1, 2):
            raise self._fail("unsupported_version", f"QPK version {version}, this reader reads versions 1 and 2")
        # Checked before the reserved bytes, as qpk does: a flipped reserved bit in an otherwise
        # intact preamble is corruption first.
        computed = zlib.crc32(d[:60])
        if computed != p_crc:
            raise self._fail("preamble_checksum", f"preamble CRC-32 is {computed:#010x}, recorded {p_crc:#010x}")
        if flags != 0 or any(bytes(d[36:60])):
            raise self._fail("reserved_not_zero", "reserved preamble bytes are not zero")
        if h_off < PREAMBLE or h_off % ALIGN or h_len == 0 or h_len > MAX_HEADER:
            raise self._fail("header_misplaced", f"header offset {h_off} / length {h_len}")
        if h_off + h_len > self._size:
            raise self._fail("truncated", f"the header ends at byte {h_off + h_len} but the file has {self._size} bytes")
        if h_off + h_len < self._size:
            raise self._fail("trailing_bytes", f"{self._size} bytes where the header says the file ends at {h_off + h_len}")
        computed = zlib.crc32(d[h_off:h_off + h_len])
        if computed != h_crc:
            raise self._fail("header_checksum", f"JSON header CRC-32 is {computed:#010x}, recorded {h_crc:#010x}")
        self.header_offset, self.header_length = h_off, h_len
        self.version = version

    # -- §4 header: rules 10–21 -----------------------------------------------------------------

    def _parse_header(self) -> None:
        raw = bytes(self._view[self.header_offset:self.header_offset + self.header_length])
        if raw.startswith(b"\xef\xbb\xbf"):
            raise self._fail("invalid_header", "header starts with a byte-order mark")

        def no_constants(name: str) -> Any:
            raise ValueError(f"{name} is not JSON")

        class DuplicateKey(Exception):
            pass

        def unique_members(pairs: List[Tuple[str, Any]]) -> Dict[str, Any]:
            # Rule 10a: a key twice in one object means two things to two parsers.
            seen = set()
            for key, _ in pairs:
                if key in seen:
                    raise DuplicateKey(key)
                seen.add(key)
            return dict(pairs)

        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise self._fail("invalid_header", f"not UTF-8: {e}") from None
        try:
            header = json.loads(text, parse_constant=no_constants, object_pairs_hook=unique_members)
        except DuplicateKey as e:
            raise self._fail("duplicate_key", f'the key "{e.args[0]}" appears twice in one object') from None
        except ValueError as e:
            raise self._fail("invalid_header", f"not JSON: {e}") from None
        if not isinstance(header, dict):
            raise self._fail("invalid_header", "the header is not a JSON object")
        expected_types = {"format": str, "version": int, "tensors": list, "metadata": dict, "recipe": dict,
                          "outliers": dict, "provenance": dict}
        for key, kind in expected_types.items():
            if key not in header:
                raise self._fail("invalid_header", f"missing key '{key}'")
            if not isinstance(header[key], kind) or (kind is int and not _is_int(header[key])):
                raise self._fail("invalid_header", f"'{key}' is not a {kind.__name__}")
        if header["format"] != "qpk":
            raise self._fail("invalid_header", f"'format' is '{header['format']}', not 'qpk'")
        if header["version"] != self.version:
            raise self._fail("invalid_header",
                             f"header version {header['version']} differs from preamble version {self.version}")
        if not all(isinstance(v, str) for v in header["metadata"].values()):
            raise self._fail("invalid_header", "a metadata value is not a string")
        totals = header["outliers"]
        if not all(_is_int(totals.get(k)) for k in ("parameters", "quantized_parameters")):
            raise self._fail("invalid_header", "'outliers' lacks integer 'parameters' / 'quantized_parameters'")
        for t in header["tensors"]:
            self._check_entry_types(t)
        self._header = header
        self._tensors: Dict[str, Dict[str, Any]] = {}
        spans: List[Tuple[int, int, str, str]] = []
        outlier_params = quantized_params = 0
        for t in header["tensors"]:
            name = t["name"]
            if name in self._tensors:
                raise self._fail("duplicate_tensor", "the name appears more than once", name)
            self._tensors[name] = t
            expected = self._expected_blobs(t)
            if set(t["blobs"]) != set(expected):
                raise self._fail("blob_set", f"blobs {sorted(t['blobs'])}, expected {sorted(expected)}", name)
            for kind in sorted(expected):
                b = t["blobs"][kind]
                off, ln = b["offset"], b["length"]
                if off < 0 or ln < 0:
                    raise self._fail("blob_out_of_bounds", f"blob '{kind}' has a negative offset or length", name)
                if off % ALIGN:
                    raise self._fail("blob_misaligned", f"blob '{kind}' at offset {off}", name)
                if off < PREAMBLE or off + ln > self.header_offset:
                    raise self._fail("blob_out_of_bounds",
                                     f"blob '{kind}' spans [{off}, {off + ln}), outside [64, {self.header_offset})", name)
                if ln != expected[kind]:
                    raise self._fail("blob_length", f"blob '{kind}' has {ln} bytes, expected {expected[kind]}", name)
                if ln:
                    spans.append((off, off + ln, name, kind))
            if t["encoding"] == "affine":
                quantized_params += self._elements(t)
                if t.get("outliers") is not None:
                    outlier_params += self._covered(t)
        spans.sort()
        furthest: Optional[Tuple[int, str, str]] = None
        for start, end, name, kind in spans:  # rule 19
            if furthest is not None and start < furthest[0]:
                raise self._fail("blob_overlap", f"blob '{kind}' overlaps {furthest[1]}.{furthest[2]}", name)
            if furthest is None or end > furthest[0]:
                furthest = (end, name, kind)
        if totals["parameters"] != outlier_params or totals["quantized_parameters"] != quantized_params:
            raise self._fail("invalid_outlier_record",
                             f"file-wide totals say {totals['parameters']} outlier / {totals['quantized_parameters']} "
                             f"quantized parameters, the tensors have {outlier_params} / {quantized_params}")
        self._spans = spans

    def _check_entry_types(self, t: Any) -> None:
        """Rule 10 for one tensor entry: required keys with the right JSON types."""
        if not isinstance(t, dict):
            raise self._fail("invalid_header", "a tensor entry is not an object")
        name = t.get("name")
        if not isinstance(name, str):
            raise self._fail("invalid_header", "a tensor entry lacks a string 'name'")
        for key, kind in (("dtype", str), ("shape", list), ("encoding", str), ("blobs", dict)):
            if not isinstance(t.get(key), kind):
                raise self._fail("invalid_header", f"tensor '{name}': '{key}' is missing or not a {kind.__name__}")
        if not all(_is_int(s) for s in t["shape"]):
            raise self._fail("invalid_header", f"tensor '{name}': shape {t['shape']} is not a list of integers")
        for kind, b in t["blobs"].items():
            if not isinstance(b, dict) or not all(_is_int(b.get(k)) for k in ("offset", "length", "crc32")):
                raise self._fail("invalid_header", f"tensor '{name}': blob '{kind}' lacks integer offset/length/crc32")
        q = t.get("quantization")
        if q is not None and not isinstance(q, dict):
            raise self._fail("invalid_header", f"tensor '{name}': 'quantization' is not an object")
        o = t.get("outliers")
        if o is not None and (not isinstance(o, dict) or not isinstance(o.get("kind"), str)
                              or not _is_int(o.get("count"))):
            raise self._fail("invalid_header", f"tensor '{name}': 'outliers' lacks a string kind and integer count")

    def _elements(self, t: Dict[str, Any]) -> int:
        return _product(t["shape"])

    def _axis(self, t: Dict[str, Any]) -> int:
        return int(t["quantization"].get("axis", -1)) if t.get("quantization") else -1

    def _covered(self, t: Dict[str, Any]) -> int:
        """§6: parameters covered by the outlier record."""
        rows, cols = matrix_shape(tuple(t["shape"]), self._axis(t))
        o = t["outliers"]
        return {"rows": o["count"] * cols, "columns": o["count"] * rows, "elements": o["count"]}[o["kind"]]

    def _expected_blobs(self, t: Dict[str, Any]) -> Dict[str, int]:
        """Rules 12–16, 20–21: blob name -> required length (§4.2, §5, §6)."""
        name = t["name"]
        if t["dtype"] not in BITS:
            raise self._fail("unknown_dtype", f"dtype '{t['dtype']}' is not a safetensors 0.8 dtype name", name)
        shape = t["shape"]
        if any(s < 0 for s in shape):
            raise self._fail("invalid_shape", f"negative dimension in {shape}", name)
        n = _product(shape)
        bits = BITS[t["dtype"]]
        if n > MAX_INT63 or n * bits > MAX_INT63 or (n * bits) % 8:
            raise self._fail("invalid_shape", f"shape {shape} of {t['dtype']} overflows or is not a whole number of bytes", name)
        if t["encoding"] == "raw":
            return {"data": n * bits // 8}
        if t["encoding"] != "affine":
            raise self._fail("unknown_encoding", f"encoding '{t['encoding']}' is neither raw nor affine", name)
        q = t.get("quantization")
        if q is None:
            raise self._fail("invalid_quantization", "affine tensor without 'quantization'", name)
        if q.get("scheme") not in ("affine", "symmetric"):
            raise self._fail("invalid_quantization", f"unknown scheme {q.get('scheme')!r}", name)
        if not _is_int(q.get("bits")) or q["bits"] not in (2, 3, 4, 8):
            raise self._fail("invalid_quantization", f"bits {q.get('bits')!r}", name)
        if not _is_int(q.get("group_size")) or q["group_size"] < 1:
            raise self._fail("invalid_quantization", f"group_size {q.get('group_size')!r}", name)
        if not _is_int(q.get("axis")) or q["axis"] not in (-1, 0):
            raise self._fail("invalid_quantization", f"axis {q.get('axis')!r}", name)
        if t["dtype"] not in FLOATING:
            raise self._fail("invalid_quantization", f"dtype {t['dtype']} is not floating point", name)
        rows, cols = matrix_shape(tuple(shape), q["axis"])
        groups = -(-cols // q["group_size"])
        blobs = {"codes": (n * q["bits"] + 7) // 8, "scales": 2 * rows * groups}
        # v2 features (§5.3, §5.5–§5.8): rules 27, 28, 31, then 26.
        zero_points = q.get("zero_points", "f16")
        if zero_points not in ("f16", "packed", "none"):
            raise self._fail("invalid_zero_points", f"unknown zero_points {zero_points!r}", name)
        if zero_points == "none" and q["scheme"] != "symmetric":
            raise self._fail("invalid_zero_points", f"zero_points 'none' with scheme '{q['scheme']}', not 'symmetric'", name)
        for key in ("group_index", "codebook"):
            if key in q and not isinstance(q[key], bool):
                raise self._fail("invalid_header", f"tensor '{name}': '{key}' is not a boolean")
        transform = q.get("transform")
        if transform is not None:
            if not isinstance(transform, dict) or not isinstance(transform.get("kind"), str) \
                    or not _is_int(transform.get("block_size")):
                raise self._fail("invalid_header", f"tensor '{name}': 'transform' lacks a string kind and integer block_size")
            if transform["kind"] != "hadamard":
                raise self._fail("invalid_transform", f"unknown transform kind '{transform['kind']}'", name)
            b = transform["block_size"]
            if b < 2 or b & (b - 1) or cols == 0 or cols % b:
                raise self._fail("invalid_transform",
                                 f"block_size {b} is not a power of two ≥ 2 dividing the {cols} columns", name)
        scale_codes = self._scale_codes(q, name)
        v2 = zero_points != "f16" or q.get("group_index") is True or q.get("codebook") is True or transform is not None \
            or scale_codes is not None
        if v2 and self.version < 2:
            raise self._fail("v2_feature_in_v1", "uses a QPK v2 feature in a version-1 file", name)
        if zero_points == "f16":
            blobs["zeros"] = 2 * rows * groups
        elif zero_points == "packed":
            blobs["zeros"] = (rows * groups * q["bits"] + 7) // 8
        if q.get("group_index") is True:
            blobs["group_index"] = (cols * group_index_bits(groups) + 7) // 8
        if q.get("codebook") is True:
            blobs["codebook"] = 2 << q["bits"]
        if transform is not None:
            blobs["transform_signs"] = (cols + 7) // 8
        if scale_codes is not None:
            blobs["scales"] = (rows * groups * scale_codes[0] + 7) // 8
            blobs["row_scales"] = 2 * rows
        o = t.get("outliers")
        if o is not None:
            if o["kind"] not in KINDS:
                raise self._fail("invalid_outlier_record", f"unknown kind '{o['kind']}'", name)
            bound = {"rows": rows, "columns": cols, "elements": n}[o["kind"]]
            if o["count"] < 0:
                raise self._fail("invalid_outlier_record", f"negative count {o['count']}", name)
            if o["count"] > bound:
                raise self._fail("invalid_outlier_record", f"{o['count']} {o['kind']} in a {rows}×{cols} tensor", name)
            if bound - 1 > 0xFFFFFFFF:
                raise self._fail("invalid_outlier_record", f"{o['kind']} indices up to {bound - 1} do not fit in u32", name)
            blobs["outlier_indices"] = 4 * o["count"]
            blobs["outlier_values"] = 4 * self._covered(t)
        return blobs

    def _scale_codes(self, q: Dict[str, Any], name: str) -> Optional[Tuple[int, int]]:
        """Rule 31: ``scale_codes`` (§5.8) as ``(bits, octaves)``, or ``None`` when absent."""
        sc = q.get("scale_codes")
        if sc is None:
            return None
        if not isinstance(sc, dict):
            raise self._fail("invalid_scale_codes", "scale_codes is not an object", name)
        for key, allowed in (("bits", SCALE_BITS), ("octaves", SCALE_OCTAVES)):
            if key not in sc:
                raise self._fail("invalid_scale_codes", f"scale_codes lacks '{key}'", name)
            if not _is_int(sc[key]) or sc[key] not in allowed:
                raise self._fail("invalid_scale_codes",
                                 f"scale_codes {key} {sc[key]!r} is not an integer in {allowed[0]} … {allowed[-1]}", name)
        return sc["bits"], sc["octaves"]

    # -- blobs: rules 22–25 --------------------------------------------------------------------

    def _entry(self, name: str) -> Dict[str, Any]:
        try:
            return self._tensors[name]
        except KeyError:
            raise KeyError(f"{self.path}: no tensor named '{name}'") from None

    def _blob(self, t: Dict[str, Any], kind: str, verify: bool = True) -> memoryview:
        """A view of the blob's bytes in the mapping, after checking its CRC-32 (rule 22)."""
        if self._map is None:
            raise ValueError(f"{self.path}: the file is closed")
        b = t["blobs"][kind]
        data = self._view[b["offset"]:b["offset"] + b["length"]]
        if verify:
            computed = zlib.crc32(data)
            if computed != b["crc32"]:
                raise self._fail("blob_checksum",
                                 f"blob '{kind}' CRC-32 is {computed:#010x}, recorded {b['crc32']:#010x}", t["name"])
        return data

    def _outliers(self, t: Dict[str, Any]) -> Optional[Outliers]:
        o = t.get("outliers")
        if o is None:
            return None
        rows, cols = matrix_shape(tuple(t["shape"]), self._axis(t))
        indices = np.frombuffer(self._blob(t, "outlier_indices"), "<u4").astype(np.int64)
        bound = {"rows": rows, "columns": cols, "elements": rows * cols}[o["kind"]]
        if len(indices):  # rule 23
            steps = np.nonzero(np.diff(indices) <= 0)[0]
            if len(steps):
                raise self._fail("outlier_indices", f"index {indices[steps[0] + 1]} at position {steps[0] + 1} does not increase", t["name"])
            if indices[-1] >= bound:
                raise self._fail("outlier_indices", f"index {indices[-1]} is ≥ {bound}", t["name"])
        values = np.frombuffer(self._blob(t, "outlier_values"), "<f4").astype(np.float32)
        return Outliers(o["kind"], indices, values, str(o.get("statistic", "")), _float(o.get("threshold", "nan")))

    # -- public API ----------------------------------------------------------------------------

    def keys(self) -> List[str]:
        """Tensor names in the file's order."""
        return list(self._tensors)

    def __iter__(self) -> Iterator[str]:
        return iter(self._tensors)

    def __contains__(self, name: object) -> bool:
        return name in self._tensors

    def __len__(self) -> int:
        return len(self._tensors)

    def metadata(self) -> Dict[str, str]:
        """The source checkpoint's ``__metadata__`` (§4.1)."""
        return dict(self._header["metadata"])

    def recipe(self) -> Dict[str, Any]:
        """How the file was made (§4.5), any JSON object."""
        return dict(self._header["recipe"])

    def provenance(self) -> Dict[str, Any]:
        """Where the file came from (§4.7): qpk_version, created_by, sources, and
        ``tuned_outliers_from`` when the outlier values were replaced after quantization."""
        return json.loads(json.dumps(self._header["provenance"]))

    def header(self) -> Dict[str, Any]:
        """The whole parsed JSON header (a deep copy)."""
        return json.loads(json.dumps(self._header))

    def entry(self, name: str) -> Dict[str, Any]:
        """The header entry of one tensor (a deep copy): dtype, shape, encoding, blobs, …"""
        return json.loads(json.dumps(self._entry(name)))

    def is_quantized(self, name: str) -> bool:
        """Whether the tensor is stored ``affine``."""
        return self._entry(name)["encoding"] == "affine"

    def get_tensor(self, name: str, widen: bool = False) -> np.ndarray:
        """The tensor's values, after checking its blobs' CRC-32s.

        ``affine`` tensors are dequantized to float32 (§5.4, outliers restored). ``raw`` tensors
        come back in their dtype (see :mod:`qpk._dtypes` for BF16, F8 and sub-byte types; with
        ``widen`` BF16/F8 are always float32).
        """
        t = self._entry(name)
        if t["encoding"] == "raw":
            return decode_raw(t["dtype"], self._blob(t, "data"), tuple(t["shape"]), widen)
        return self.get_quantized(name).dequantize()

    def get_quantized(self, name: str) -> QuantizedTensor:
        """The stored arrays of an ``affine`` tensor: codes, scales, zero-points, outliers.

        Raises ``ValueError`` for a ``raw`` tensor, :class:`QPKError` for a bad CRC or bad
        outlier indices.
        """
        t = self._entry(name)
        if t["encoding"] != "affine":
            raise ValueError(f"{self.path}: tensor '{name}' is stored raw ({t['dtype']}), not quantized")
        q = t["quantization"]
        axis = int(q["axis"])
        rows, cols = matrix_shape(tuple(t["shape"]), axis)
        groups = -(-cols // q["group_size"])
        codes = unpack_codes(self._blob(t, "codes"), rows * cols, q["bits"]).reshape(rows, cols)
        scales, scale_codes, row_scales = self._scales(t, rows, groups)
        zeros = self._zeros(t, rows, groups)
        group_index, codebook = self._side_tables(t, groups, cols)
        signs = None
        if q.get("transform") is not None:
            raw = np.unpackbits(np.frombuffer(self._blob(t, "transform_signs"), np.uint8), bitorder="little")[:cols]
            signs = raw.astype(bool)
        return QuantizedTensor(name, t["dtype"], tuple(t["shape"]), dict(q), codes, scales, zeros, self._outliers(t),
                               group_index, codebook, signs, scale_codes, row_scales)

    def _scales(self, t: Dict[str, Any], rows: int, groups: int) -> Tuple[np.ndarray, Optional[np.ndarray], Optional[np.ndarray]]:
        """The ``rows × groups`` group scales (§5.3: float16), or with ``scale_codes`` (§5.8, rule 32)
        the float32 scales decoded from their codes and row scales, plus those codes and row scales."""
        q = t["quantization"]
        data = self._blob(t, "scales")
        if q.get("scale_codes") is None:
            return np.frombuffer(data, "<f2").astype(np.float16).reshape(rows, groups), None, None
        bits, octaves = q["scale_codes"]["bits"], q["scale_codes"]["octaves"]
        row_scales = np.frombuffer(self._blob(t, "row_scales"), "<f2").astype(np.float16)
        bad = np.nonzero(~np.isfinite(row_scales))[0]
        if len(bad):
            raise self._fail("row_scale_not_finite", f"row scale {bad[0]} is not finite", t["name"])
        codes = unpack_integers(data, rows * groups, bits).reshape(rows, groups)
        return decode_scale_codes(codes, row_scales, bits, octaves), codes, row_scales

    def _zeros(self, t: Dict[str, Any], rows: int, groups: int, verify: bool = True) -> np.ndarray:
        """§5.3: the ``rows × groups`` zero-points as float16, whatever their storage."""
        q = t["quantization"]
        storage = q.get("zero_points", "f16")
        if storage == "none":
            return np.full((rows, groups), 2.0 ** (q["bits"] - 1), np.float16)
        data = self._blob(t, "zeros", verify)
        if storage == "packed":
            return unpack_codes(data, rows * groups, q["bits"]).astype(np.float16).reshape(rows, groups)
        return np.frombuffer(data, "<f2").astype(np.float16).reshape(rows, groups)

    def _side_tables(self, t: Dict[str, Any], groups: int, columns: int) -> Tuple[Optional[np.ndarray], Optional[np.ndarray]]:
        """The group index (§5.5, rule 29) and codebook (§5.7, rule 30), or ``None`` each."""
        q = t["quantization"]
        group_index = codebook = None
        if q.get("group_index") is True:
            group_index = unpack_integers(self._blob(t, "group_index"), columns, group_index_bits(groups))
            bad = np.nonzero(group_index >= groups)[0]
            if len(bad):
                raise self._fail("group_index", f"column {bad[0]} is in group {group_index[bad[0]]}, the row has {groups} groups",
                                 t["name"])
            counts = np.bincount(group_index, minlength=groups)
            if len(counts) and counts.max() > q["group_size"]:
                raise self._fail("group_index", f"group {int(counts.argmax())} has more than group_size {q['group_size']} columns",
                                 t["name"])
        if q.get("codebook") is True:
            codebook = np.frombuffer(self._blob(t, "codebook"), "<f2").astype(np.float16)
            bad = np.nonzero(~np.isfinite(codebook))[0]
            if len(bad):
                raise self._fail("codebook_not_finite", f"codebook entry {bad[0]} is not finite", t["name"])
        return group_index, codebook

    def outliers(self, name: str) -> Optional[Outliers]:
        """The tensor's outlier record with its indices and values, or ``None`` (raw tensors and
        quantized tensors without outliers)."""
        t = self._entry(name)
        return self._outliers(t) if t["encoding"] == "affine" else None

    def error(self, name: str) -> Optional[Dict[str, float]]:
        """The recorded quantization error (§4.4): ``sqnr_db`` and ``max_abs_error``, or ``None``."""
        e = self._entry(name).get("error")
        return None if e is None else {k: _float(v) for k, v in e.items()}

    def bits_per_weight(self, name: str) -> float:
        """§7: every stored byte of the tensor over its parameters."""
        t = self._entry(name)
        n = self._elements(t)
        return 8 * sum(b["length"] for b in t["blobs"].values()) / n if n else 0.0

    def validate(self) -> List[QPKError]:
        """Every content rule (22–25, 29–30, 32) for every tensor, as ``qpk validate`` checks them.

        Returns one :class:`QPKError` per problem (empty when the file is valid); the structural
        rules 1–21, 26–28 and 31 were checked when the file was opened.
        """
        problems: List[QPKError] = []
        for t in self._tensors.values():
            bad = False
            for kind in sorted(t["blobs"]):
                try:
                    self._blob(t, kind)
                except QPKError as e:
                    problems.append(e)
                    bad = True
            if bad or t["encoding"] != "affine":
                continue
            try:
                self._outliers(t)
            except QPKError as e:
                problems.append(e)
            q = t["quantization"]
            rows, cols = matrix_shape(tuple(t["shape"]), int(q["axis"]))
            groups = -(-cols // q["group_size"])
            try:
                self._side_tables(t, groups, cols)
            except QPKError as e:
                problems.append(e)
            try:
                self._scales(t, rows, groups)
            except QPKError as e:
                problems.append(e)
            if q["scheme"] == "symmetric" and q.get("zero_points", "f16") != "none":
                zeros = self._zeros(t, rows, groups, verify=False).reshape(-1)
                expected = 2.0 ** (q["bits"] - 1)
                off = np.nonzero(zeros != expected)[0]
                if len(off):
                    problems.append(self._fail("symmetric_zero_point",
                                               f"zero-point {float(zeros[off[0]])}, expected {expected}", t["name"]))
        cursor = PREAMBLE
        for start, end, _, _ in self._spans + [(self.header_offset, self.header_offset, "", "")]:
            if start > cursor:
                gap = np.frombuffer(self._view[cursor:start], np.uint8)
                nonzero = np.flatnonzero(gap)
                if len(nonzero):
                    problems.append(self._fail("nonzero_padding", f"padding byte {cursor + int(nonzero[0])} is not zero"))
            cursor = max(cursor, end)
        return problems
