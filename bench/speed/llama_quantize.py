#!/usr/bin/env python3
"""llama.cpp's own quantizer, one call, as its own process (so it can be timed like `qpk convert`).

    python3 bench/speed/llama_quantize.py IN.gguf OUT.gguf --ftype Q4_0 [--threads 2] [--pure]

Calls `llama_model_quantize` from the `llama-cpp-python` package (PyPI; it ships llama.cpp's
library built from source), the same function the `llama-quantize` tool calls. Prints one JSON line
with the seconds spent inside the call (without interpreter start-up and the import).
"""
from __future__ import annotations

import argparse
import ctypes
import json
import sys
import time

# llama.cpp's `enum llama_ftype` values (include/llama.h) for the types the bench compares.
_SILENCE = None
FTYPES = {"F32": 0, "F16": 1, "Q4_0": 2, "Q8_0": 7, "Q4_K_S": 14, "Q4_K_M": 15, "Q6_K": 18}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("source")
    ap.add_argument("destination")
    ap.add_argument("--ftype", choices=sorted(FTYPES), required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--pure", action="store_true", help="every quantizable tensor gets the ftype's base type")
    args = ap.parse_args()

    start = time.perf_counter()
    import llama_cpp

    global _SILENCE  # the C callback must outlive the call that installs it
    _SILENCE = llama_cpp.llama_log_callback(lambda level, text, data: None)
    llama_cpp.llama_log_set(_SILENCE, ctypes.c_void_p(0))
    llama_cpp.llama_backend_init()
    imported = time.perf_counter()
    params = llama_cpp.llama_model_quantize_default_params()
    params.nthread = args.threads
    params.ftype = FTYPES[args.ftype]
    params.pure = args.pure
    status = llama_cpp.llama_model_quantize(args.source.encode(), args.destination.encode(), ctypes.byref(params))
    done = time.perf_counter()
    print(json.dumps({"status": int(status), "import_seconds": imported - start, "quantize_seconds": done - imported}))
    return 0 if status == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
