"""``python -m qpk FILE.qpk [--check-against SRC.safetensors] [--npz OUT.npz]``

Validates a QPK file (every rule of spec §8) and lists its tensors. ``--check-against`` compares
every tensor with the source checkpoint: raw tensors must be byte-identical, and for quantized
tensors the SQNR and max abs error measured here must agree with the values the writer recorded.
``--npz`` writes the dequantized tensors. Exit status: 0 when everything verifies, 1 otherwise.
"""
from __future__ import annotations

import argparse
import json
import struct
import sys
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ._dtypes import decode_raw
from ._errors import QPKError
from ._file import QPKFile, _float


def read_safetensors(path: str) -> Dict[str, Tuple[str, List[int], bytes]]:
    """A minimal safetensors reader: name -> (dtype, shape, raw bytes)."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack_from("<Q", data, 0)
    header = json.loads(data[8:8 + n])
    header.pop("__metadata__", None)
    base = 8 + n
    return {k: (v["dtype"], v["shape"], data[base + v["data_offsets"][0]:base + v["data_offsets"][1]])
            for k, v in header.items()}


def check_against(f: QPKFile, source_path: str, log=print) -> List[str]:
    """Compares every tensor with the source; returns one line per failure."""
    source = read_safetensors(source_path)
    failures = []
    for name in f.keys():
        t = f.entry(name)
        if name not in source:
            failures.append(f"{name}: not in the source")
            continue
        dtype, shape, raw = source[name]
        if dtype != t["dtype"] or list(shape) != t["shape"]:
            failures.append(f"{name}: source is {dtype}{shape}, QPK says {t['dtype']}{t['shape']}")
            continue
        if t["encoding"] == "raw":
            if bytes(f._blob(f._entry(name), "data")) != raw:
                failures.append(f"{name}: raw bytes differ from the source")
            else:
                log(f"{name}: raw {t['dtype']} identical")
            continue
        x = decode_raw(dtype, memoryview(raw), tuple(shape), widen=True).astype(np.float64).reshape(-1)
        y = f.get_tensor(name).astype(np.float64).reshape(-1)
        noise = float(np.sum((x - y) ** 2))
        sqnr = float("inf") if noise == 0 else float(10 * np.log10(np.sum(x * x) / noise))
        max_err = float(np.max(np.abs(x - y))) if x.size else 0.0
        q = t["quantization"]
        log(f"{name}: {q['scheme']} {q['bits']}-bit g{q['group_size']} sqnr {sqnr:.3f} dB, "
            f"max abs error {max_err:.6g}, {f.bits_per_weight(name):.3f} bpw")
        recorded = t.get("error")
        if recorded is not None:
            r_max, r_sqnr = _float(recorded["max_abs_error"]), _float(recorded["sqnr_db"])
            if abs(r_max - max_err) > 1e-6 + 1e-3 * abs(r_max):
                failures.append(f"{name}: max abs error {max_err:.6g} measured, {r_max:.6g} recorded")
            if np.isfinite(r_sqnr) and abs(r_sqnr - sqnr) > 0.01:
                failures.append(f"{name}: SQNR {sqnr:.4f} dB measured, {r_sqnr:.4f} recorded")
    return failures


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m qpk", description=__doc__.split("\n\n")[1])
    parser.add_argument("file")
    parser.add_argument("--check-against", metavar="SAFETENSORS")
    parser.add_argument("--npz", metavar="OUT", help="write the dequantized tensors to an .npz file")
    args = parser.parse_args(argv)
    try:
        f = QPKFile(args.file)
    except QPKError as e:
        print(e)
        return 1
    except OSError as e:
        print(f"{args.file}: cannot read: {e.strerror}")
        return 2
    with f:
        problems = f.validate()
        for p in problems:
            print(p)
        if problems:
            return 1
        print(f"{args.file}: valid QPK v{f.version}, {len(f)} tensors")
        failures: List[str] = []
        if args.check_against:
            failures = check_against(f, args.check_against)
            for line in failures:
                print(f"{args.file}: MISMATCH {line}")
        if args.npz:
            np.savez(args.npz, **{name: f.get_tensor(name, widen=True) for name in f.keys()})
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
