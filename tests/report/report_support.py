"""Helpers of the report tests: the qpk binary (QPK_BIN) and the bundled demo model."""
import os
import pathlib
import subprocess

import pytest


ROOT = pathlib.Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "fixtures" / "models" / "fracast" / "model.safetensors"


def qpk_binary():
    path = os.environ.get("QPK_BIN", str(ROOT / ".build" / "release" / "qpk"))
    if not pathlib.Path(path).exists():
        pytest.exit(f"qpk binary not found at {path}: run `make release` or set QPK_BIN", returncode=2)
    return path


def run_qpk(*args, expect=0):
    proc = subprocess.run([qpk_binary(), *map(str, args)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == expect, f"qpk {' '.join(map(str, args))} exited {proc.returncode}\n{proc.stderr}"
    return proc


