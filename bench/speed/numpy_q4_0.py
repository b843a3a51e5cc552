#!/usr/bin/env python3
"""The numpy side of the convert speed bench: llama.cpp Q4_0 through gguf-py, end to end.

    python3 bench/speed/numpy_q4_0.py IN.safetensors OUT.safetensors

Reads the checkpoint, quantizes the same tensors qpk quantizes in the bench (rank-2
``encoder.layer.*`` weights, see bench/quality/peers.py) with ``gguf.quants.quantize(…, Q4_0)``,
and writes a safetensors file holding the Q4_0 blocks (uint8) and the untouched tensors, so both
sides do read → quantize → write. Compute time goes to stderr.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
from gguf import GGMLQuantizationType
from gguf.quants import quantize
from safetensors.numpy import load_file, save_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "quality"))
from peers import select_quantized  # noqa: E402


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    start = time.perf_counter()
    weights = load_file(sys.argv[1])
    selection = set(select_quantized(weights))
    out = {}
    for name, tensor in weights.items():
        if name in selection:
            out[name + ".q4_0"] = quantize(np.ascontiguousarray(tensor, dtype=np.float32), GGMLQuantizationType.Q4_0)
        else:
            out[name] = tensor
    save_file(out, sys.argv[2])
    print(f"compute_seconds {time.perf_counter() - start:.6f} tensors {len(selection)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
