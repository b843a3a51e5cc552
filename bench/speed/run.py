#!/usr/bin/env python3
"""Speed bench: qpk against numpy doing the same job on the same file, in the same session.

    python3 bench/speed/run.py [--repeats 5] [--scale 1] [--file X.safetensors]

Jobs (each side is a separate process, timed from start to exit, best and median of N after one
untimed warm-up run, so the page cache is warm for both; the sides' runs alternate, so a swing in
machine load hits both alike):
  (a) stats:   `qpk inspect FILE --stats --json`  vs  bench/speed/numpy_stats.py FILE
  (b) diff:    `qpk diff A B --json`              vs  bench/speed/numpy_diff.py A B   (allclose + metrics)
  (c) convert: `qpk convert A x.qpk` (default recipe, and rtn 4-bit g64) on the bench tensor selection
               vs  bench/speed/numpy_q4_0.py A (gguf-py Q4_0), both read → quantize → write.
Peak RSS comes from `/usr/bin/time -v` (falls back to getrusage of children). Throughput is file
bytes / best wall time. A is MiniLM-L6 fp32 (or --file); B is A with every selected encoder
weight replaced by its Q8_0 round trip. `--scale K` concatenates K renamed copies of A into a
bigger file first. The numpy commands run with OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE removed from
their environment (recorded in the results); qpk runs with the environment as is.
Writes bench/speed/NUMPY.md and bench/speed/numpy.json (bench/speed/peer.py writes RESULTS.md). Without the qpk binary ($QPK, default
.build/release/qpk) only the numpy side runs and the qpk rows are marked pending.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import resource
import shlex
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
QUALITY = HERE.parent / "quality"
sys.path.insert(0, str(QUALITY))

from agreement import compare as compare_with_numpy  # noqa: E402
from model_fetch import CACHE_DIR, fetch_minilm  # noqa: E402
from peers import QPK_INCLUDE_GLOBS, gguf_quantizer, select_quantized  # noqa: E402
from qpk_cli import REPO_ROOT, find_qpk, include_args  # noqa: E402
from machine import machine_info  # noqa: E402

WORK = CACHE_DIR / "speed"
NUMPY_ENV_DROP = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
TIME_BIN = Path("/usr/bin/time")


def rel(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def numpy_env() -> tuple[dict, list[str]]:
    env = dict(os.environ)
    dropped = [k for k in NUMPY_ENV_DROP if k in env]
    for k in dropped:
        del env[k]
    return env, dropped


def run_once(argv: list[str], env: dict | None, ok_codes: tuple[int, ...]) -> tuple[float, int | None, float | None]:
    """Wall seconds, peak RSS (KiB) and the child's own compute_seconds line (numpy scripts)."""
    use_time = TIME_BIN.exists()
    full = [str(TIME_BIN), "-v", *argv] if use_time else argv
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    proc = subprocess.run(full, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - start
    if proc.returncode not in ok_codes:
        raise RuntimeError(f"`{' '.join(argv)}` exited {proc.returncode}: {proc.stderr.strip()[-400:]}")
    rss = None
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
    if m:
        rss = int(m.group(1))
    else:
        after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        rss = after if after > before else None
    c = re.search(r"compute_seconds ([0-9.]+)", proc.stderr)
    return wall, rss, float(c.group(1)) if c else None


@dataclass
class Side:
    """One tool doing a job: its command, environment and accepted exit codes."""
    tool: str
    argv: list[str]
    env: dict | None = None
    ok_codes: tuple[int, ...] = (0,)
    env_note: str = "unchanged"


def measure_job(job: str, sides: list[Side], repeats: int, nbytes: int) -> list[dict]:
    """Best/median wall time per side, the sides' runs interleaved so load swings hit them alike."""
    for side in sides:
        run_once(side.argv, side.env, side.ok_codes)  # warm-up: page cache, interpreter caches
    samples = {side.tool: ([], [], []) for side in sides}
    for _ in range(repeats):
        for side in sides:
            wall, rss, compute = run_once(side.argv, side.env, side.ok_codes)
            walls, rsss, computes = samples[side.tool]
            walls.append(wall)
            if rss:
                rsss.append(rss)
            if compute is not None:
                computes.append(compute)
    rows = []
    for side in sides:
        walls, rsss, computes = samples[side.tool]
        best = min(walls)
        shown = ["python3" if a == sys.executable else a for a in side.argv]
        row = {"job": job, "tool": side.tool, "command": shlex.join(shown).replace(str(REPO_ROOT) + "/", ""),
               "best_s": best, "median_s": statistics.median(walls), "runs": walls,
               "gb_per_s": nbytes / best / 1e9, "peak_rss_mib": max(rsss) / 1024 if rsss else None,
               "compute_best_s": min(computes) if computes and side.tool.startswith("numpy") else None,
               "env": side.env_note}
        print(f"{job:8s} {side.tool:34s} best {best:7.3f}s  median {row['median_s']:7.3f}s  "
              f"{row['gb_per_s']:6.3f} GB/s  RSS {row['peak_rss_mib'] or 0:7.1f} MiB")
        rows.append(row)
    return rows


def make_inputs(model: Path, scale: int) -> tuple[Path, Path]:
    """A (model, or `scale` renamed copies of it) and B (selected weights through Q8_0)."""
    from safetensors.numpy import load_file, save_file

    WORK.mkdir(parents=True, exist_ok=True)
    a_path = model if scale == 1 else WORK / f"a_x{scale}.safetensors"
    b_path = WORK / f"b_x{scale}_q8_0.safetensors"
    if a_path.exists() and b_path.exists() and b_path.stat().st_mtime >= a_path.stat().st_mtime:
        return a_path, b_path
    base = load_file(str(model))
    if scale == 1:
        a = base
    else:
        a = {}
        for k in range(scale):
            for name, t in base.items():
                a[name if k == 0 else f"copy{k}.{name}"] = t
        save_file(a, str(a_path))
    q8 = gguf_quantizer("Q8_0")
    sel = set(select_quantized(base))
    b = {}
    for name, t in a.items():
        base_name = name.split(".", 1)[1] if name.startswith("copy") else name
        b[name] = q8(t).dequantized if base_name in sel else t
    save_file(b, str(b_path))
    return a_path, b_path


def check_agreement(qpk: Path, a_path: Path, b_path: Path, stats_only: bool) -> dict:
    """qpk's inspect/diff JSON against the numpy JSON written during the timed runs."""
    out = {}
    jobs = [("inspect --stats", [str(qpk), "inspect", str(a_path), "--stats", "--json"], WORK / "numpy_stats.json")]
    if not stats_only:
        jobs.append(("diff", [str(qpk), "diff", str(a_path), str(b_path), "--json"], WORK / "numpy_diff.json"))
    for label, argv, numpy_json in jobs:
        proc = subprocess.run(argv, capture_output=True, text=True)
        try:
            report = json.loads(proc.stdout)
        except json.JSONDecodeError as exc:
            out[label] = {"error": f"qpk output is not JSON ({exc})"}
            continue
        reference = json.loads(numpy_json.read_text())
        if label == "diff":
            reference = reference["tensors"]
        out[label] = compare_with_numpy(report, reference)
    return out


def write_results(rows: list[dict], pending: list[str], info: dict, qpk_note: str, a_path: Path,
                  b_path: Path, dropped: list[str], repeats: int, agreement: dict) -> None:
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    (HERE / "numpy.json").write_text(json.dumps(
        {"date": now, "machine": info, "qpk": qpk_note, "file_a": rel(a_path), "file_b": rel(b_path),
         "file_a_bytes": a_path.stat().st_size, "numpy_env_removed": dropped, "repeats": repeats,
         "rows": rows, "pending": pending, "agreement": agreement}, indent=2) + "\n")
    by_job: dict[str, dict[str, dict]] = {}
    for r in rows:
        by_job.setdefault(r["job"], {})[r["tool"]] = r
    lines = [
        "# Speed bench: qpk vs numpy on the same file, same session",
        "",
        f"Generated {now} by `python3 bench/speed/run.py --repeats {repeats}` (git {info['git_commit']}).",
        "",
        f"Machine: {info['cpu']}, {info['cores']} cores, {info['memory']}; {info['platform']}. "
        + ", ".join(f"{k} {v}" for k, v in info["versions"].items()) + ".",
        "",
        f"qpk: {qpk_note}",
        "",
        *([f"**Partial results: {len(pending)} qpk row(s) pending; rerun once the qpk binary exists.**", ""]
          if pending else []),
        f"Load average (1/5/15 min) before {info['load_average_before']}, after {info['load_average_after']}: "
        "absolute times on a shared 2-core machine move with the load; the two sides of each job ran "
        "interleaved in the same session, so their ratio is the figure to read.",
        "",
        f"File A: `{rel(a_path)}` ({a_path.stat().st_size / 1e6:.1f} MB, fp32). File B: `{rel(b_path)}` "
        "(A with the 36 encoder weights through a Q8_0 round trip).",
        f"Numpy commands ran with {', '.join(dropped) if dropped else 'nothing'} removed from the "
        f"environment (of {', '.join(NUMPY_ENV_DROP)}); qpk ran with the environment as is.",
        f"Each command: one untimed warm-up, then best/median of {repeats} (process start to exit, warm page "
        "cache). GB/s = file A bytes / best wall time. Peak RSS from `/usr/bin/time -v`. "
        "\"numpy compute\" is the numpy script's own time without interpreter start-up and imports.",
        "",
        "| Job | Tool | best (s) | median (s) | GB/s | peak RSS (MiB) | numpy compute (s) | speed-up vs numpy |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for job, tools in by_job.items():
        ref = next((r for t, r in tools.items() if t.startswith("numpy")), None)
        for tool, r in tools.items():
            speedup = f"{ref['best_s'] / r['best_s']:.1f}×" if ref and not tool.startswith("numpy") else "—"
            lines.append(f"| {job} | {tool} | {r['best_s']:.3f} | {r['median_s']:.3f} | {r['gb_per_s']:.3f} | "
                         f"{r['peak_rss_mib']:.1f} | "
                         f"{'—' if r['compute_best_s'] is None else format(r['compute_best_s'], '.3f')} | {speedup} |")
    for p in pending:
        lines.append(f"| {p} | pending | pending | pending | pending | — | pending |")
    if agreement:
        lines += ["", "## Agreement with numpy (same files)", "",
                  "Worst deviation over all tensors per statistic found in both JSON outputs (relative; "
                  "counts and SQNR absolute). Kurtosis is Fisher's excess on both sides (scipy's default). "
                  "qpk's percentiles are exact (numpy's linear interpolation).", "",
                  "| Command | statistic | tensors | worst deviation | worst tensor |", "|---|---|---:|---:|---|"]
        for label, stats in agreement.items():
            if "error" in stats:
                lines.append(f"| {label} | — | — | {stats['error']} | — |")
                continue
            for key, v in sorted(stats.items()):
                lines.append(f"| {label} | {key} | {v['tensors']} | {v['worst']:.3g} | {v['worst_tensor'] or '—'} |")
    lines += ["", "Commands:", "", "```"] + [f"{r['command']}" for r in rows] + ["```", "",
              "Target (issue 5): `inspect --stats` at least 5× faster than the numpy script.", ""]
    (HERE / "NUMPY.md").write_text("\n".join(lines))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--scale", type=int, default=1, help="concatenate K renamed copies of the model into file A")
    ap.add_argument("--file", type=Path, help="bench this safetensors file instead of MiniLM-L6 (stats only)")
    args = ap.parse_args()

    model = args.file or fetch_minilm() / "model.safetensors"
    a_path, b_path = make_inputs(model, args.scale) if not args.file else (model, model)
    nbytes = a_path.stat().st_size
    env, dropped = numpy_env()
    env_note = f"removed {','.join(dropped)}" if dropped else "unchanged"
    py = sys.executable
    WORK.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    pending: list[str] = []
    qpk = find_qpk()
    load_before = [round(x, 2) for x in os.getloadavg()]

    inc = include_args(QPK_INCLUDE_GLOBS)
    jobs: list[tuple[str, Side, list[Side]]] = [
        ("stats", Side("numpy (safetensors.numpy)", [py, str(HERE / "numpy_stats.py"), str(a_path), "--json",
                                                    str(WORK / "numpy_stats.json")], env, env_note=env_note),
         [Side("qpk inspect --stats --json", [str(qpk), "inspect", str(a_path), "--stats", "--json"])]),
    ]
    if not args.file:
        jobs += [
            ("diff", Side("numpy allclose + metrics", [py, str(HERE / "numpy_diff.py"), str(a_path), str(b_path),
                                                      "--json", str(WORK / "numpy_diff.json")], env, (0, 1),
                          env_note),
             [Side("qpk diff --json", [str(qpk), "diff", str(a_path), str(b_path), "--json"], ok_codes=(0, 1))]),
            ("convert", Side("numpy gguf-py Q4_0", [py, str(HERE / "numpy_q4_0.py"), str(a_path),
                                                    str(WORK / "q4_0.safetensors")], env, env_note=env_note),
             [Side("qpk convert (default recipe)",
                   [str(qpk), "convert", str(a_path), str(WORK / "default.qpk"), *inc, "--force"]),
              Side("qpk convert --method rtn g64",
                   [str(qpk), "convert", str(a_path), str(WORK / "rtn.qpk"), "--method", "rtn", "--bits", "4",
                    "--group-size", "64", *inc, "--force"])]),
        ]
    for job, numpy_side, qpk_sides in jobs:
        if qpk:
            rows += measure_job(job, [numpy_side, *qpk_sides], args.repeats, nbytes)
        else:
            rows += measure_job(job, [numpy_side], args.repeats, nbytes)
            pending += [f"{job} | {side.tool}" for side in qpk_sides]

    agreement = {}
    if qpk:
        agreement = check_agreement(qpk, a_path, b_path, bool(args.file))
    if qpk:
        version = subprocess.run([str(qpk), "--version"], capture_output=True, text=True).stdout.strip()
        qpk_note = f"{rel(qpk)} {version}".strip()
    else:
        qpk_note = (f"binary not found (QPK={os.environ.get('QPK', '.build/release/qpk')}); "
                    "qpk rows are PENDING, only the numpy side ran.")
        print("qpk binary not found: numpy side only; qpk rows pending")
    info = machine_info()
    info["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    info["load_average_before"] = load_before
    write_results(rows, pending, info, qpk_note, a_path, b_path, dropped, args.repeats, agreement)
    print(f"wrote {rel(HERE / 'NUMPY.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
