#!/usr/bin/env python3
"""The independent QPK reader, as a command: a shim over the `qpk` Python package (python/).

The reader itself lives in python/src/qpk (written from spec/qpk-format.md alone; numpy only).
This script keeps the old command line working for the Swift interop tests and by hand:

    python3 tests/interop/qpk_read.py FILE.qpk [--check-against SRC.safetensors] [--npz OUT.npz]

It is `python -m qpk` with the repository's copy of the package first on the path, so it runs
the reader of this checkout even when another version is installed.
"""
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "python" / "src"))

from qpk import QPKError as QPKFormatError, QPKFile  # noqa: E402,F401  (the old module's names)
from qpk.__main__ import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
