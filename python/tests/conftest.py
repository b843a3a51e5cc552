"""Fixtures for the qpk package tests: the qpk binary that writes the files under test.

Tests that need real qpk-written files use `qpk_bin`. It is `$QPK_BIN` when set (and must then
exist: `make test` sets it), else `.build/release/qpk` of the repository holding this folder;
when neither exists those tests are skipped (a bare `pip install ./python` checkout).
"""
import json
import os
import pathlib
import subprocess
import sys

import pytest

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from qpk_testpaths import ROOT  # noqa: E402


@pytest.fixture(scope="session")
def qpk_bin() -> str:
    env = os.environ.get("QPK_BIN")
    if env:
        assert pathlib.Path(env).exists(), f"QPK_BIN={env} does not exist"
        return env
    path = ROOT / ".build" / "release" / "qpk"
    if not path.exists():
        pytest.skip("no qpk binary: build it (swift build -c release --product qpk) or set QPK_BIN")
    return str(path)


@pytest.fixture(scope="session")
def run(qpk_bin):
    """run(*args, expect=0) -> CompletedProcess; fails the test on another exit code."""
    def _run(*args, expect=0):
        proc = subprocess.run([qpk_bin, *map(str, args)], capture_output=True, text=True, timeout=600)
        assert proc.returncode == expect, f"qpk {' '.join(map(str, args))} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        return proc
    return _run


@pytest.fixture(scope="session")
def run_json(run):
    return lambda *args, expect=0: json.loads(run(*args, "--json", expect=expect).stdout)
