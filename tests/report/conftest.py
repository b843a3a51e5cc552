"""The HTML report seen in a real browser: the qpk binary, a headless Chromium, a fixture model."""
import os
import pathlib
import subprocess

import pytest

from cdp import chromium_binary

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


@pytest.fixture(scope="session", autouse=True)
def chromium():
    if chromium_binary() is None:
        pytest.fail("no chromium: `make deps` installs Debian's chromium (or set CHROMIUM=/path/to/chrome)")


@pytest.fixture(scope="session")
def models(tmp_path_factory):
    """The bundled demo model and its default QPK quantization."""
    folder = tmp_path_factory.mktemp("report-models")
    qpk = folder / "model.qpk"
    run_qpk("convert", FIXTURE, qpk)
    return FIXTURE, qpk
