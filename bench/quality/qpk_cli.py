"""Running the qpk CLI from the bench: locate the binary, convert, dequantize, read inspect JSON.

Contract used (DESIGN §1):
    qpk convert IN.safetensors OUT.qpk <recipe args> --include GLOB... --force
    qpk convert OUT.qpk restored.safetensors --dtype f32 --force
    qpk inspect OUT.qpk --json
The binary is ``$QPK`` (default ``.build/release/qpk``), resolved against the current directory
first and the repository root second.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]


def find_qpk() -> Path | None:
    wanted = os.environ.get("QPK", ".build/release/qpk")
    candidates = [Path(wanted), REPO_ROOT / wanted]
    if os.sep not in wanted:
        which = shutil.which(wanted)
        if which:
            candidates.insert(0, Path(which))
    for c in candidates:
        if c.is_file() and os.access(c, os.X_OK):
            return c.resolve()
    return None


@dataclass
class CommandRun:
    argv: list[str]
    seconds: float
    stdout: str
    stderr: str

    @property
    def shell(self) -> str:
        import shlex

        return " ".join(shlex.quote(a) for a in self.argv)


def run(argv: list[str], check: bool = True) -> CommandRun:
    start = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if check and proc.returncode != 0:
        raise RuntimeError(f"`{' '.join(argv)}` exited {proc.returncode}: {proc.stderr.strip()[:500]}")
    return CommandRun(argv, seconds, proc.stdout, proc.stderr)


def include_args(globs: tuple[str, ...]) -> list[str]:
    args: list[str] = []
    for g in globs:
        args += ["--include", g]
    return args


def bpw_from_inspect(report: Any, selection: set[str], params: dict[str, int]) -> float | None:
    """Parameter-weighted effective bpw over ``selection`` from ``qpk inspect --json``, if present.

    The inspect schema is owned by the CLI; this walks the JSON for objects that carry a tensor
    name in ``selection`` and a numeric field whose key mentions bpw / bits-per-weight.
    """
    found: dict[str, float] = {}

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            name = node.get("name") or node.get("tensor")
            if isinstance(name, str) and name in selection:
                for key, value in node.items():
                    k = key.lower().replace("_", "").replace("-", "")
                    if isinstance(value, (int, float)) and ("bpw" in k or "bitsperweight" in k):
                        found[name] = float(value)
                        break
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(report)
    if set(found) != selection:
        return None
    total = sum(params[n] for n in selection)
    return sum(found[n] * params[n] for n in selection) / total


def inspect_json(qpk: Path, path: Path) -> tuple[Any, CommandRun]:
    r = run([str(qpk), "inspect", str(path), "--json"])
    return json.loads(r.stdout), r
