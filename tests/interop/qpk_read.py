#!/usr/bin/env python3
"""An independent reader for QPK v1 files, written from spec/qpk-format.md alone.

It uses only the standard library and numpy, so it proves the spec is complete: if qpk's Swift
writer and this reader ever disagree, one of them does not follow the spec.

    python3 tests/interop/qpk_read.py FILE.qpk                       # verify, list tensors
    python3 tests/interop/qpk_read.py FILE.qpk --check-against SRC.safetensors
    python3 tests/interop/qpk_read.py FILE.qpk --npz OUT.npz         # dequantized arrays

--check-against compares every tensor with the source checkpoint: raw tensors must be
byte-identical, and for quantized tensors the SQNR and max abs error measured here must agree
with the values the writer recorded. Exit status: 0 when everything verifies, 1 otherwise.
"""

import argparse
import json
import struct
import sys
import zlib

import numpy as np

MAGIC = bytes([0x89, 0x51, 0x50, 0x4B, 0x0D, 0x0A, 0x1A, 0x0A])  # §2
PREAMBLE = 64
ALIGN = 64
MAX_HEADER = 1 << 28

# §4.2: dtype name -> (bit width, little-endian numpy dtype or None when numpy has no such type).
DTYPES = {
    "BOOL": (8, "?"), "F4": (4, None), "F6_E2M3": (6, None), "F6_E3M2": (6, None),
    "U8": (8, "u1"), "I8": (8, "i1"), "F8_E5M2": (8, None), "F8_E4M3": (8, None),
    "F8_E8M0": (8, None), "F8_E4M3FNUZ": (8, None), "F8_E5M2FNUZ": (8, None),
    "I16": (16, "<i2"), "U16": (16, "<u2"), "F16": (16, "<f2"), "BF16": (16, None),
    "I32": (32, "<i4"), "U32": (32, "<u4"), "F32": (32, "<f4"), "C64": (64, "<c8"),
    "F64": (64, "<f8"), "I64": (64, "<i8"), "U64": (64, "<u8"),
}
FLOATING = {"F4", "F6_E2M3", "F6_E3M2", "F8_E5M2", "F8_E4M3", "F8_E8M0", "F8_E4M3FNUZ",
            "F8_E5M2FNUZ", "F16", "BF16", "F32", "F64"}


class QPKFormatError(Exception):
    """A broken rule of spec §8: (rule, tensor or None, message)."""

    def __init__(self, rule, message, tensor=None):
        super().__init__(f"[{rule}] " + (f"tensor '{tensor}': " if tensor else "") + message)
        self.rule, self.tensor = rule, tensor


def _float(value):
    """§4: a float field is a number or one of the strings inf, -inf, nan."""
    if isinstance(value, str):
        return {"inf": float("inf"), "-inf": float("-inf"), "nan": float("nan")}[value]
    return float(value)


def matrix_shape(shape):
    """§5.1: leading axes are rows, the last axis is columns; a scalar is 1×1."""
    if not shape:
        return 1, 1
    rows = 1
    for d in shape[:-1]:
        rows *= d
    return rows, shape[-1]


class QPKFile:
    def __init__(self, path):
        self.path = path
        with open(path, "rb") as f:
            self.data = f.read()
        self._parse_preamble()
        self._parse_header()

    # §2
    def _parse_preamble(self):
        d = self.data
        if len(d) < PREAMBLE:
            raise QPKFormatError("file_too_small", f"{len(d)} bytes")
        if d[:8] != MAGIC:
            raise QPKFormatError("bad_magic", "not a QPK file")
        version, flags, h_off, h_len, h_crc = struct.unpack_from("<IIQQI", d, 8)
        (p_crc,) = struct.unpack_from("<I", d, 60)
        if version != 1:
            raise QPKFormatError("unsupported_version", str(version))
        if zlib.crc32(d[:60]) != p_crc:
            raise QPKFormatError("preamble_checksum", "preamble CRC mismatch")
        if flags != 0 or any(d[36:60]):
            raise QPKFormatError("reserved_not_zero", "reserved bytes set")
        if h_off < PREAMBLE or h_off % ALIGN or h_len == 0 or h_len > MAX_HEADER:
            raise QPKFormatError("header_misplaced", f"offset {h_off} length {h_len}")
        if h_off + h_len > len(d):
            raise QPKFormatError("truncated", f"header ends at {h_off + h_len}, file has {len(d)} bytes")
        if h_off + h_len < len(d):
            raise QPKFormatError("trailing_bytes", f"file has {len(d)} bytes, header ends at {h_off + h_len}")
        if zlib.crc32(d[h_off:h_off + h_len]) != h_crc:
            raise QPKFormatError("header_checksum", "header CRC mismatch")
        self.header_offset, self.header_length = h_off, h_len

    # §4
    def _parse_header(self):
        raw = self.data[self.header_offset:self.header_offset + self.header_length]
        def unique_members(pairs):
            # Rule 10a: a key twice in one object makes the file ambiguous (json keeps the last).
            seen = set()
            for key, _ in pairs:
                if key in seen:
                    raise QPKFormatError("duplicate_key", f'the key "{key}" appears twice in one object')
                seen.add(key)
            return dict(pairs)

        try:
            header = json.loads(raw.decode("utf-8"), object_pairs_hook=unique_members)
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise QPKFormatError("invalid_header", str(e))
        if not isinstance(header, dict) or header.get("format") != "qpk" or header.get("version") != 1:
            raise QPKFormatError("invalid_header", "not a QPK v1 header object")
        for key in ("tensors", "metadata", "recipe", "outliers", "provenance"):
            if key not in header:
                raise QPKFormatError("invalid_header", f"missing key '{key}'")
        if not all(isinstance(v, str) for v in header["metadata"].values()):
            raise QPKFormatError("invalid_header", "metadata values must be strings")
        self.header = header
        self.tensors = {}
        spans = []
        outlier_params = quantized_params = 0
        for t in header["tensors"]:
            name = t["name"]
            if name in self.tensors:
                raise QPKFormatError("duplicate_tensor", "name repeated", name)
            self.tensors[name] = t
            if t["dtype"] not in DTYPES:
                raise QPKFormatError("unknown_dtype", t["dtype"], name)
            shape = t["shape"]
            if any((not isinstance(s, int)) or s < 0 for s in shape):
                raise QPKFormatError("invalid_shape", str(shape), name)
            n = int(np.prod(shape, dtype=object)) if shape else 1
            bits = DTYPES[t["dtype"]][0]
            if (n * bits) % 8:
                raise QPKFormatError("invalid_shape", "not a whole number of bytes", name)
            expected = self._expected_blobs(t, n)
            if set(t["blobs"]) != set(expected):
                raise QPKFormatError("blob_set", f"blobs {sorted(t['blobs'])}, expected {sorted(expected)}", name)
            for kind, length in expected.items():
                b = t["blobs"][kind]
                off, ln = b["offset"], b["length"]
                if off < 0 or ln < 0:
                    raise QPKFormatError("blob_out_of_bounds", f"{kind} negative", name)
                if off % ALIGN:
                    raise QPKFormatError("blob_misaligned", f"{kind} at {off}", name)
                if off < PREAMBLE or off + ln > self.header_offset:
                    raise QPKFormatError("blob_out_of_bounds", f"{kind} [{off}, {off + ln})", name)
                if ln != length:
                    raise QPKFormatError("blob_length", f"{kind} has {ln} bytes, expected {length}", name)
                if ln:
                    spans.append((off, off + ln, name, kind))
            if t["encoding"] == "affine":
                quantized_params += n
                if t.get("outliers") is not None:
                    outlier_params += self._covered(t)
        spans.sort()
        for (s0, e0, n0, k0), (s1, e1, n1, k1) in zip(spans, spans[1:]):
            if s1 < e0:
                raise QPKFormatError("blob_overlap", f"{k1} overlaps {n0}.{k0}", n1)
        totals = header["outliers"]
        if totals["parameters"] != outlier_params or totals["quantized_parameters"] != quantized_params:
            raise QPKFormatError("invalid_outlier_record", "file-wide outlier totals are wrong")
        self.spans = spans

    def _covered(self, t):
        """§6: parameters covered by the outlier record."""
        rows, cols = matrix_shape(t["shape"])
        o = t["outliers"]
        return {"rows": o["count"] * cols, "columns": o["count"] * rows, "elements": o["count"]}[o["kind"]]

    def _expected_blobs(self, t, n):
        """§4.2, §5, §6: blob name -> required length."""
        name = t["name"]
        if t["encoding"] == "raw":
            return {"data": n * DTYPES[t["dtype"]][0] // 8}
        if t["encoding"] != "affine":
            raise QPKFormatError("unknown_encoding", t["encoding"], name)
        q = t.get("quantization")
        if (q is None or q.get("scheme") not in ("affine", "symmetric") or q.get("bits") not in (2, 3, 4, 8)
                or not isinstance(q.get("group_size"), int) or q["group_size"] < 1 or q.get("axis") != -1
                or t["dtype"] not in FLOATING):
            raise QPKFormatError("invalid_quantization", json.dumps(q), name)
        rows, cols = matrix_shape(t["shape"])
        groups = -(-cols // q["group_size"])
        blobs = {"codes": (n * q["bits"] + 7) // 8, "scales": 2 * rows * groups, "zeros": 2 * rows * groups}
        o = t.get("outliers")
        if o is not None:
            bound = {"rows": rows, "columns": cols, "elements": n}.get(o.get("kind"))
            if bound is None or not isinstance(o.get("count"), int) or not 0 <= o["count"] <= bound or bound > 1 << 32:
                raise QPKFormatError("invalid_outlier_record", json.dumps(o), name)
            blobs["outlier_indices"] = 4 * o["count"]
            blobs["outlier_values"] = 4 * self._covered(t)
        return blobs

    def blob(self, t, kind):
        """The blob's bytes after checking its CRC-32 (rule 22)."""
        b = t["blobs"][kind]
        data = self.data[b["offset"]:b["offset"] + b["length"]]
        if zlib.crc32(data) != b["crc32"]:
            raise QPKFormatError("blob_checksum", f"blob '{kind}' CRC mismatch", t["name"])
        return data

    def validate(self):
        """Every content rule (22–25) for every tensor; returns a list of QPKFormatError."""
        problems = []
        for t in self.tensors.values():
            try:
                self.tensor(t["name"])
                if t["encoding"] == "affine" and t["quantization"]["scheme"] == "symmetric":
                    zeros = np.frombuffer(self.blob(t, "zeros"), "<f2")
                    if np.any(zeros != 2.0 ** (t["quantization"]["bits"] - 1)):
                        problems.append(QPKFormatError("symmetric_zero_point", "zero-point ≠ 2^(bits-1)", t["name"]))
            except QPKFormatError as e:
                problems.append(e)
        cursor = PREAMBLE
        for start, end, _, _ in self.spans + [(self.header_offset, self.header_offset, None, None)]:
            if start > cursor and any(self.data[cursor:start]):
                problems.append(QPKFormatError("nonzero_padding", f"between {cursor} and {start}"))
            cursor = max(cursor, end)
        return problems

    def raw_bytes(self, name):
        return self.blob(self.tensors[name], "data")

    def tensor(self, name):
        """The tensor's values: the stored array for raw tensors (uint8 bytes when numpy lacks the
        dtype; BF16 widened to float32), float32 dequantized values for affine ones (§5.4)."""
        t = self.tensors[name]
        shape = tuple(t["shape"])
        if t["encoding"] == "raw":
            data = self.blob(t, "data")
            if t["dtype"] == "BF16":
                return (np.frombuffer(data, "<u2").astype(np.uint32) << 16).view(np.float32).reshape(shape)
            np_dtype = DTYPES[t["dtype"]][1]
            if np_dtype is None:
                return np.frombuffer(data, np.uint8)
            return np.frombuffer(data, np_dtype).reshape(shape)
        return self._dequantize(t).reshape(shape)

    def _dequantize(self, t):
        q = t["quantization"]
        bits, gs = q["bits"], q["group_size"]
        rows, cols = matrix_shape(t["shape"])
        n = rows * cols
        # §5.2: LSB-first bit stream; code i is stream bits [i*bits, (i+1)*bits).
        stream = np.unpackbits(np.frombuffer(self.blob(t, "codes"), np.uint8), bitorder="little")
        weights = (1 << np.arange(bits)).astype(np.uint32)
        codes = (stream[: n * bits].reshape(n, bits).astype(np.uint32) * weights).sum(axis=1)
        groups = -(-cols // gs) if cols else 0
        # §5.3: fp16 little-endian, row-major (row, group).
        scales = np.frombuffer(self.blob(t, "scales"), "<f2").astype(np.float32).reshape(rows, groups)
        zeros = np.frombuffer(self.blob(t, "zeros"), "<f2").astype(np.float32).reshape(rows, groups)
        group_of_column = np.arange(cols) // gs
        x = (codes.reshape(rows, cols).astype(np.float32) - zeros[:, group_of_column]) * scales[:, group_of_column]
        o = t.get("outliers")
        if o is not None:
            indices = np.frombuffer(self.blob(t, "outlier_indices"), "<u4").astype(np.int64)
            values = np.frombuffer(self.blob(t, "outlier_values"), "<f4")
            bound = {"rows": rows, "columns": cols, "elements": n}[o["kind"]]
            if len(indices) and (np.any(np.diff(indices) <= 0) or indices[-1] >= bound):
                raise QPKFormatError("outlier_indices", "not strictly increasing or out of range", t["name"])
            # §6: values in row-major order of the parameters they cover.
            if o["kind"] == "rows":
                x[indices, :] = values.reshape(len(indices), cols)
            elif o["kind"] == "columns":
                x[:, indices] = values.reshape(rows, len(indices))
            else:
                x.reshape(-1)[indices] = values
        return x.reshape(-1)

    def bits_per_weight(self, name):
        """§7: every stored byte of the tensor over its parameters."""
        t = self.tensors[name]
        n = int(np.prod(t["shape"])) if t["shape"] else 1
        return 8 * sum(b["length"] for b in t["blobs"].values()) / n if n else 0.0


def read_safetensors(path):
    """A minimal safetensors reader: name -> (dtype, shape, raw bytes)."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack_from("<Q", data, 0)
    header = json.loads(data[8:8 + n])
    header.pop("__metadata__", None)
    base = 8 + n
    return {k: (v["dtype"], v["shape"], data[base + v["data_offsets"][0]:base + v["data_offsets"][1]])
            for k, v in header.items()}


def as_float32(dtype, shape, raw):
    if dtype == "BF16":
        return (np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view(np.float32).reshape(shape)
    return np.frombuffer(raw, DTYPES[dtype][1]).astype(np.float32).reshape(shape)


def check_against(qpk, source_path):
    """Compares every tensor with the source; returns a list of one-line failures."""
    source = read_safetensors(source_path)
    failures = []
    for name, t in qpk.tensors.items():
        if name not in source:
            failures.append(f"{name}: not in the source")
            continue
        dtype, shape, raw = source[name]
        if dtype != t["dtype"] or list(shape) != t["shape"]:
            failures.append(f"{name}: source is {dtype}{shape}, QPK says {t['dtype']}{t['shape']}")
            continue
        if t["encoding"] == "raw":
            if qpk.raw_bytes(name) != raw:
                failures.append(f"{name}: raw bytes differ from the source")
            else:
                print(f"{name}: raw {t['dtype']} identical")
            continue
        x = as_float32(dtype, shape, raw).astype(np.float64).reshape(-1)
        y = qpk.tensor(name).astype(np.float64).reshape(-1)
        noise = np.sum((x - y) ** 2)
        sqnr = float("inf") if noise == 0 else 10 * np.log10(np.sum(x * x) / noise)
        max_err = float(np.max(np.abs(x - y))) if x.size else 0.0
        q = t["quantization"]
        print(f"{name}: {q['scheme']} {q['bits']}-bit g{q['group_size']} sqnr {sqnr:.3f} dB, "
              f"max abs error {max_err:.6g}, {qpk.bits_per_weight(name):.3f} bpw")
        recorded = t.get("error")
        if recorded is not None:
            r_max, r_sqnr = _float(recorded["max_abs_error"]), _float(recorded["sqnr_db"])
            if abs(r_max - max_err) > 1e-6 + 1e-3 * abs(r_max):
                failures.append(f"{name}: max abs error {max_err:.6g} measured, {r_max:.6g} recorded")
            if np.isfinite(r_sqnr) and abs(r_sqnr - sqnr) > 0.01:
                failures.append(f"{name}: SQNR {sqnr:.4f} dB measured, {r_sqnr:.4f} recorded")
    return failures


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file")
    parser.add_argument("--check-against", metavar="SAFETENSORS")
    parser.add_argument("--npz", metavar="OUT", help="write the dequantized tensors to an .npz file")
    args = parser.parse_args(argv)
    try:
        qpk = QPKFile(args.file)
    except QPKFormatError as e:
        print(f"{args.file}: {e}")
        return 1
    problems = qpk.validate()
    for p in problems:
        print(f"{args.file}: {p}")
    if problems:
        return 1
    print(f"{args.file}: valid QPK v1, {len(qpk.tensors)} tensors")
    failures = []
    if args.check_against:
        failures = check_against(qpk, args.check_against)
        for f in failures:
            print(f"{args.file}: MISMATCH {f}")
    if args.npz:
        np.savez(args.npz, **{name: qpk.tensor(name) for name in qpk.tensors})
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
