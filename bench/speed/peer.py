#!/usr/bin/env python3
"""Speed bench against the real peer: qpk vs llama.cpp's quantizer on a synthetic llama checkpoint.

    python3 bench/speed/peer.py [--scale 1] [--repeats 3] [--jobs rtn4,rtn8,...] [--memory 0.25,1,4]

The model (bench/speed/synthetic_llama.py) is written as F32 safetensors for qpk and as the same
data in F32 GGUF for llama.cpp. llama.cpp's quantizer is `llama_model_quantize` from the
`llama-cpp-python` package, run by bench/speed/llama_quantize.py as its own process, or, when that
package is not importable, llama.cpp's `llama-quantize` tool ($LLAMA_QUANTIZE, else the binary
bench/llama_cpp/build.sh builds into bench/.cache/llama.cpp). Every command
is a separate process timed from start to exit under `/usr/bin/time -v` (wall, user + sys CPU,
peak RSS); the page cache is warmed first and the sides of a job alternate run by run (the side
that goes first alternates too), so a swing in machine load hits both alike. Medians of
`--repeats` runs. Throughput = F32 input bytes (or parameters) / median wall.

Jobs (2 threads on both sides unless said):
  rtn4     qpk --method rtn --scheme symmetric --group-size 32 --scale-search minmax  vs  Q4_0 --pure
  rtn8     qpk --method rtn --bits 8 (same grouping)                                   vs  Q8_0 --pure
  default  qpk default recipe (PreQuant 4-bit, MSE search, norm importance)           vs  Q4_0 --pure, Q4_K_M
  gguf     qpk --type Q4_0 / --type Q4_K to .gguf                                      vs  Q4_0 --pure / Q4_K_M --pure
  threads  qpk rtn4 with --threads 1                                                   vs  qpk rtn4 --threads 2
  read     qpk inspect --stats, qpk diff A B                                           vs  dd reading the same bytes
`--memory S1,S2,…` also converts models of those scales (rtn4) under a memory limit (a cgroup v1
child of this process's memory cgroup, or cgroup v2 / systemd-run where those work) and reports
peak RSS against the bound 3 × largest tensor + 100 MB.

Writes bench/speed/RESULTS.md and bench/speed/results.json (ratios first).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "quality"))
sys.path.insert(0, str(HERE))

from machine import machine_info  # noqa: E402
from model_fetch import CACHE_DIR  # noqa: E402
from qpk_cli import REPO_ROOT, find_qpk  # noqa: E402
import synthetic_llama  # noqa: E402

WORK = CACHE_DIR / "speed"
MODELS = WORK / "synthetic"
OUT = WORK / "out"
TIME_BIN = "/usr/bin/time"
RTN4 = ["--method", "rtn", "--scheme", "symmetric", "--group-size", "32", "--scale-search", "minmax"]
ALL_JOBS = ["rtn4", "rtn8", "default", "gguf", "threads", "read"]


def parse_time_v(stderr: str) -> dict:
    def grab(pattern: str) -> float | None:
        m = re.search(pattern, stderr)
        return float(m.group(1)) if m else None

    return {"user_s": grab(r"User time \(seconds\): ([0-9.]+)"), "sys_s": grab(r"System time \(seconds\): ([0-9.]+)"),
            "rss_kib": grab(r"Maximum resident set size \(kbytes\): (\d+)")}


def run_once(argv: list[str], ok_codes: tuple[int, ...] = (0,)) -> dict:
    """One timed process: wall, CPU, peak RSS, and the JSON line it printed last (if any)."""
    full = [TIME_BIN, "-v", *argv]
    start = time.perf_counter()
    proc = subprocess.run(full, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - start
    if proc.returncode not in ok_codes:
        raise RuntimeError(f"`{shlex.join(argv)}` exited {proc.returncode}: {proc.stderr.strip()[-600:]}")
    sample = {"wall_s": wall, **parse_time_v(proc.stderr)}
    sample["cpu_s"] = (sample["user_s"] or 0) + (sample["sys_s"] or 0)
    last = proc.stdout.strip().splitlines()[-1:] or [""]
    try:
        inner = json.loads(last[0])
        if isinstance(inner, dict) and "quantize_seconds" in inner:
            sample["inner_s"] = inner["quantize_seconds"]
    except json.JSONDecodeError:
        pass
    return sample


class Side:
    def __init__(self, tool: str, argv: list[str], output: Path | None = None, ok_codes: tuple[int, ...] = (0,)):
        self.tool, self.argv, self.output, self.ok_codes = tool, argv, output, ok_codes

    def run(self) -> dict:
        if self.output is not None and self.output.exists():
            self.output.unlink()
        return run_once(self.argv, self.ok_codes)


def summarize(job: str, side: Side, samples: list[dict], nbytes: int, params: int) -> dict:
    med = lambda key: statistics.median(s[key] for s in samples) if all(s.get(key) is not None for s in samples) else None  # noqa: E731
    wall, cpu = med("wall_s"), med("cpu_s")
    row = {"job": job, "tool": side.tool,
           "command": shlex.join(side.argv).replace(str(REPO_ROOT) + "/", "").replace(sys.executable, "python3"),
           "median_wall_s": wall, "median_cpu_s": cpu, "cpu_percent": 100 * cpu / wall if cpu else None,
           "peak_rss_mib": max(s["rss_kib"] for s in samples) / 1024 if samples[0].get("rss_kib") else None,
           "gb_per_s": nbytes / wall / 1e9, "mparams_per_s": params / wall / 1e6,
           "walls": [s["wall_s"] for s in samples], "input_bytes": nbytes}
    if med("inner_s") is not None:
        row["median_inner_s"] = med("inner_s")
    print(f"  {job:10s} {side.tool:44s} wall {wall:7.3f}s cpu {cpu or 0:7.2f}s "
          f"({row['cpu_percent'] or 0:4.0f}%) RSS {row['peak_rss_mib'] or 0:7.1f} MiB  {row['gb_per_s']:.3f} GB/s",
          flush=True)
    return row


def binding_available() -> bool:
    return subprocess.run([sys.executable, "-c", "import llama_cpp"], capture_output=True).returncode == 0


def llama_quantize_binary() -> Path | None:
    """llama.cpp's `llama-quantize` tool: $LLAMA_QUANTIZE, or the one bench/llama_cpp/build.sh built."""
    for candidate in [os.environ.get("LLAMA_QUANTIZE"), REPO_ROOT / "bench/.cache/llama.cpp/build/bin/llama-quantize"]:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return Path(candidate)
    return None


# How the peer runs: "binding" (llama-cpp-python's llama_model_quantize, via llama_quantize.py),
# "binary" (the llama-quantize tool itself, the issue's exact peer) or None (rows pending).
PEER_MODE = "binding" if binding_available() else ("binary" if llama_quantize_binary() else None)


def llama_available() -> bool:
    return PEER_MODE is not None


HAVE_LLAMA = None


def measure(job: str, sides: list[Side], repeats: int, nbytes: int, params: int) -> list[dict]:
    global HAVE_LLAMA
    if HAVE_LLAMA is None:
        HAVE_LLAMA = llama_available()
    if not HAVE_LLAMA:  # the peer's rows are reported pending, qpk's still run
        sides = [s for s in sides if not s.tool.startswith("llama.cpp")]
    samples: list[list[dict]] = [[] for _ in sides]
    for r in range(repeats):
        order = list(range(len(sides)))
        if r % 2:
            order.reverse()
        for i in order:
            samples[i].append(sides[i].run())
    for side in sides:
        if side.output is not None and side.output.exists():
            side.output.unlink()
    return [summarize(job, s, x, nbytes, params) for s, x in zip(sides, samples)]


def warm(*paths: Path) -> None:
    for p in paths:
        subprocess.run(["cat", str(p)], stdout=subprocess.DEVNULL, check=True)


def peer(model: dict, ftype: str, pure: bool, threads: int = 2) -> Side:
    out = OUT / f"llama_{ftype}{'_pure' if pure else ''}.gguf"
    if PEER_MODE == "binary":  # llama-quantize [--pure] IN.gguf OUT.gguf TYPE NTHREADS
        argv = [str(llama_quantize_binary()), *(["--pure"] if pure else []), model["gguf"], str(out), ftype, str(threads)]
    else:
        argv = [sys.executable, str(HERE / "llama_quantize.py"), model["gguf"], str(out), "--ftype", ftype,
                "--threads", str(threads), *(["--pure"] if pure else [])]
    return Side(f"llama.cpp {ftype}{' --pure' if pure else ''}", argv, out)


def qpk_convert(qpk: Path, model: dict, label: str, args: list[str], suffix: str = "qpk", threads: int = 2,
                tool: str = "qpk") -> Side:
    out = OUT / f"{tool.replace(' ', '_')}_{re.sub(r'[^A-Za-z0-9]+', '_', label)}.{suffix}"
    argv = [str(qpk), "convert", model["safetensors"], str(out), *args, "--threads", str(threads), "--force"]
    return Side(f"{tool} {label}", argv, out)


def ratio_rows(rows: list[dict]) -> list[dict]:
    by = {(r["job"], r["tool"]): r for r in rows}
    pairs = [
        ("4-bit RTN g32 symmetric vs Q4_0 --pure", ("rtn4", "qpk rtn4"), ("rtn4", "llama.cpp Q4_0 --pure"), 2.0),
        ("8-bit RTN g32 symmetric vs Q8_0 --pure", ("rtn8", "qpk rtn8"), ("rtn8", "llama.cpp Q8_0 --pure"), None),
        ("default recipe vs Q4_0 --pure", ("default", "qpk default recipe"), ("default", "llama.cpp Q4_0 --pure"), 1.0),
        ("default recipe vs Q4_K_M", ("default", "qpk default recipe"), ("default", "llama.cpp Q4_K_M"), None),
        ("--type Q4_0 GGUF vs Q4_0 --pure", ("gguf", "qpk --type Q4_0"), ("gguf", "llama.cpp Q4_0 --pure"), None),
        ("--type Q4_K GGUF vs Q4_K_M --pure", ("gguf", "qpk --type Q4_K"), ("gguf", "llama.cpp Q4_K_M --pure"), None),
        ("rtn4: this branch vs qpk before (speed-up)", ("rtn4", "qpk rtn4"), ("rtn4", "qpk before rtn4"), None),
        ("rtn4 --threads 2 vs --threads 1 (speed-up)", ("threads", "qpk rtn4 --threads 2"), ("threads", "qpk rtn4 --threads 1"), None),
        ("inspect --stats vs dd (share of page-cache read)", ("read", "qpk inspect --stats"), ("read", "dd A"), 0.5),
        ("diff A B vs dd A B (share of page-cache read)", ("read", "qpk diff A B"), ("read", "dd A B"), 0.5),
    ]
    out = []
    for label, a, b, target in pairs:
        if a in by and b in by:
            qa, pb = by[a], by[b]
            ratio = pb["median_wall_s"] / qa["median_wall_s"]
            entry = {"comparison": label, "ratio": ratio, "target": target,
                     "qpk_cpu_percent": qa["cpu_percent"]}
            if "median_inner_s" in pb:
                entry["ratio_vs_inner_call"] = pb["median_inner_s"] / qa["median_wall_s"]
            strict = min(ratio, entry.get("ratio_vs_inner_call", ratio))
            entry["met"] = None if target is None else strict >= target
            out.append(entry)
    return out


def make_limited_group(limit_bytes: int) -> Path | None:
    """A cgroup v1 memory child of this process's own memory cgroup, limited to `limit_bytes`."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            group = Path("/sys/fs/cgroup/memory") / path.lstrip("/") / f"qpk-bench-{os.getpid()}"
            try:
                group.mkdir(exist_ok=True)
                (group / "memory.limit_in_bytes").write_text(str(limit_bytes))
                return group
            except OSError:
                return None
    return None


def memory_runs(qpk: Path, scales: list[float], limit_gb: float) -> list[dict]:
    rows = []
    limit = int(limit_gb * 1024**3)
    group = make_limited_group(limit)
    how = (f"cgroup v1 memory child {group} (memory.limit_in_bytes = {limit}), page cache included"
           if group else "no memory limit available (peak RSS only)")
    for scale in scales:
        model = synthetic_llama.generate(MODELS, scale, 0, with_gguf=False)
        out = OUT / f"mem_{scale}.qpk"
        if out.exists():
            out.unlink()
        argv = [str(qpk), "convert", model["safetensors"], str(out), *RTN4, "--threads", "2", "--force"]
        # Cold start for the file: the limit applies to page cache too, so run it under the group.
        script = f"echo $$ > {group}/cgroup.procs && exec {shlex.join([TIME_BIN, '-v', *argv])}" if group else None
        start = time.perf_counter()
        proc = subprocess.run(["sh", "-c", script] if script else [TIME_BIN, "-v", *argv],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wall = time.perf_counter() - start
        info = parse_time_v(proc.stderr)
        peak_group = int((group / "memory.max_usage_in_bytes").read_text()) if group else None
        failcnt = int((group / "memory.failcnt").read_text()) if group else None
        bound = 3 * model["largest_tensor_bytes"] + 100e6
        row = {"scale": scale, "f32_bytes": model["f32_bytes"], "largest_tensor_bytes": model["largest_tensor_bytes"],
               "exit": proc.returncode, "wall_s": wall, "peak_rss_mib": (info["rss_kib"] or 0) / 1024,
               "bound_mib": bound / 2**20, "within_bound": (info["rss_kib"] or 0) * 1024 <= bound,
               "cgroup_peak_mib": peak_group / 2**20 if peak_group else None, "cgroup_failcnt": failcnt,
               "limit": how, "stderr_tail": proc.stderr.strip().splitlines()[-1:] if proc.returncode else []}
        print(f"  memory scale {scale}: {model['f32_bytes'] / 1e9:.2f} GB, exit {proc.returncode}, "
              f"wall {wall:.1f}s, peak RSS {row['peak_rss_mib']:.0f} MiB (bound {row['bound_mib']:.0f})", flush=True)
        rows.append(row)
        if out.exists():
            out.unlink()
        if group:  # reset the group's peak for the next model
            try:
                (group / "memory.max_usage_in_bytes").write_text("0")
            except OSError:
                pass
    if group:
        try:
            group.rmdir()
        except OSError:
            pass
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--jobs", default=",".join(ALL_JOBS))
    ap.add_argument("--default-repeats", type=int, help="repeats of the (slow) default-recipe job; default --repeats")
    ap.add_argument("--memory", default="", help="scales for the memory-limit runs, e.g. 0.25,1,4")
    ap.add_argument("--memory-limit-gb", type=float, default=2.0)
    ap.add_argument("--results", type=Path, default=HERE / "RESULTS.md")
    ap.add_argument("--baseline", type=Path, help="another qpk binary (e.g. main's) timed beside, as 'qpk before'")
    args = ap.parse_args()
    qpk = find_qpk()
    if qpk is None:
        print("no qpk binary: build with `swift build -c release` or set QPK", file=sys.stderr)
        return 1
    jobs = [j for j in args.jobs.split(",") if j]
    OUT.mkdir(parents=True, exist_ok=True)
    load_before = list(os.getloadavg())
    model = synthetic_llama.generate(MODELS, args.scale, 0)
    nbytes, params = model["f32_bytes"], model["parameters"]
    print(f"model: {params / 1e6:.0f} M parameters, {nbytes / 1e9:.2f} GB F32 ({model['safetensors']})", flush=True)
    warm(Path(model["safetensors"]), Path(model["gguf"]))
    rows: list[dict] = []
    R = args.repeats
    before = ([qpk_convert(args.baseline, model, "rtn4", RTN4, tool="qpk before")] if args.baseline else [])
    if "rtn4" in jobs:
        rows += measure("rtn4", [qpk_convert(qpk, model, "rtn4", RTN4), peer(model, "Q4_0", True), *before], R, nbytes, params)
    if "rtn8" in jobs:
        rows += measure("rtn8", [qpk_convert(qpk, model, "rtn8", [*RTN4, "--bits", "8"]), peer(model, "Q8_0", True)],
                        R, nbytes, params)
    if "default" in jobs:
        rows += measure("default", [qpk_convert(qpk, model, "default recipe", []), peer(model, "Q4_0", True),
                                    peer(model, "Q4_K_M", False)], args.default_repeats or R, nbytes, params)
    if "gguf" in jobs:
        rows += measure("gguf", [qpk_convert(qpk, model, "--type Q4_0", ["--type", "Q4_0"], "gguf"),
                                 peer(model, "Q4_0", True),
                                 qpk_convert(qpk, model, "--type Q4_K", ["--type", "Q4_K"], "gguf"),
                                 peer(model, "Q4_K_M", True)], R, nbytes, params)
    if "threads" in jobs:
        rows += measure("threads", [qpk_convert(qpk, model, "rtn4 --threads 2", RTN4, threads=2),
                                    qpk_convert(qpk, model, "rtn4 --threads 1", RTN4, threads=1)], R, nbytes, params)
    if "read" in jobs:
        other = synthetic_llama.generate(MODELS, args.scale, 1, with_gguf=False)
        a, b = model["safetensors"], other["safetensors"]
        warm(Path(a), Path(b))
        # Older binaries have --threads on convert only.
        t = ["--threads", "2"] if "--threads" in subprocess.run([str(qpk), "inspect", "--help"], capture_output=True, text=True).stdout else []
        rows += measure("read", [Side("qpk inspect --stats", [str(qpk), "inspect", a, "--stats", "--json", *t]),
                                 Side("dd A", ["dd", f"if={a}", "of=/dev/null", "bs=16M"])], R, nbytes, params)
        rows += measure("read", [Side("qpk diff A B", [str(qpk), "diff", a, b, "--json", *t], ok_codes=(0, 1)),
                                 Side("dd A B", ["sh", "-c", f"dd if={a} of=/dev/null bs=16M && dd if={b} of=/dev/null bs=16M"])],
                        R, 2 * nbytes, 2 * params)
    memory = memory_runs(qpk, [float(s) for s in args.memory.split(",") if s], args.memory_limit_gb) if args.memory else []
    load_after = list(os.getloadavg())
    ratios = ratio_rows(rows)
    write(args, qpk, model, rows, ratios, memory, load_before, load_after)
    return 0


def llama_cpp_version() -> str:
    if PEER_MODE == "binary":
        return f"llama-quantize binary {llama_quantize_binary()} (bench/llama_cpp/build.sh, llama-cpp-python " \
               f"{os.environ.get('LLAMA_CPP_PYTHON_VERSION', '0.3.36')} source package)"
    try:
        from importlib.metadata import version

        return version("llama-cpp-python")
    except Exception:
        return "not installed"


def write(args, qpk: Path, model: dict, rows, ratios, memory, load_before, load_after) -> None:
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    info = machine_info()
    info["versions"]["llama-cpp-python"] = llama_cpp_version()
    info["load_average_before"], info["load_average_after"] = [round(x, 2) for x in load_before], [round(x, 2) for x in load_after]
    qpk_version = subprocess.run([str(qpk), "--version"], capture_output=True, text=True).stdout.strip()
    command = "python3 bench/speed/peer.py " + " ".join(
        a for a in [f"--scale {args.scale}", f"--repeats {args.repeats}",
                    f"--baseline {args.baseline}" if args.baseline else "",
                    f"--default-repeats {args.default_repeats}" if args.default_repeats else "",
                    f"--jobs {args.jobs}" if args.jobs != ",".join(ALL_JOBS) else "",
                    f"--memory {args.memory}" if args.memory else ""] if a)
    model_note = {k: model[k] for k in ("config", "parameters", "f32_bytes", "largest_tensor_bytes", "seed", "scale")}
    data = {"date": now, "command": command, "machine": info, "qpk": f"{qpk} {qpk_version}", "model": model_note,
            "ratios": ratios, "rows": rows, "memory": memory}
    json_path = args.results.with_name("results.json") if args.results.name == "RESULTS.md" else args.results.with_suffix(".json")
    json_path.write_text(json.dumps(data, indent=2) + "\n")

    def f(x, spec):
        return "—" if x is None else format(x, spec)

    lines = ["# Speed bench: qpk vs llama.cpp's quantizer", "",
             f"Generated {now} by `{command}` (git {info['git_commit']}).", "",
             "## Ratios (throughput of qpk / throughput of the other side; medians, interleaved runs)", "",
             "| comparison | ratio (whole processes) | ratio vs llama.cpp's call alone | target | met (stricter ratio) | qpk CPU % |",
             "|---|---:|---:|---:|---|---:|"]
    for r in ratios:
        target = "—" if r["target"] is None else (f"≥ {r['target']:.0%}" if r["target"] < 1 else f"≥ {r['target']:g}×")
        shown = f"{r['ratio']:.0%}" if "share" in r["comparison"] else f"{r['ratio']:.2f}×"
        inner = f"{r['ratio_vs_inner_call']:.2f}×" if "ratio_vs_inner_call" in r else "—"
        strict = min(r["ratio"], r.get("ratio_vs_inner_call", r["ratio"]))
        met = "—" if r["target"] is None else ("yes" if strict >= r["target"] else "**no**")
        lines.append(f"| {r['comparison']} | {shown} | {inner} | {target} | {met} | {f(r['qpk_cpu_percent'], '.0f')} |")
    if not any(r["tool"].startswith("llama.cpp") for r in rows):
        lines += ["", "**llama.cpp rows pending: neither `llama-cpp-python` nor a `llama-quantize` binary "
                  "(bench/llama_cpp/build.sh, or $LLAMA_QUANTIZE) was available when this ran.**"]
    if PEER_MODE == "binary":
        lines += ["", "llama.cpp is its own `llama-quantize` tool (`llama-quantize [--pure] IN.gguf OUT.gguf TYPE 2`, "
                  "built by bench/llama_cpp/build.sh for the native CPU), timed as a whole process like `qpk convert`; "
                  "there is no separate in-process figure, so both ratio columns are the same comparison.", ""]
    else:
        lines += ["", "llama.cpp's wall time includes starting Python and importing `llama_cpp` "
                  "(the quantizer runs as its own process, like `qpk convert`); "
                  "the second ratio compares qpk's whole process against the `llama_model_quantize` call alone "
                  "(timed inside that process), the stricter figure; a target counts as met only on it.", ""]
    cfg = model["config"]
    lines += ["## Setup", "",
              f"Model: synthetic llama (bench/speed/synthetic_llama.py, scale {model['scale']}): vocabulary {cfg['vocab']}, "
              f"hidden {cfg['hidden']}, {cfg['blocks']} blocks, feed-forward {cfg['ffn']}; "
              f"{model['parameters'] / 1e6:.0f} M parameters, {model['f32_bytes'] / 1e9:.2f} GB F32, "
              f"largest tensor {model['largest_tensor_bytes'] / 1e6:.0f} MB. qpk reads the F32 safetensors, "
              "llama.cpp the same data as F32 GGUF. Page cache warm.", "",
              f"Machine: {info['cpu']}, {info['cores']} cores, {info['memory']}; {info['platform']}. "
              + ", ".join(f"{k} {v}" for k, v in info["versions"].items()) + ".", "",
              f"qpk: {qpk_version}. Load average (1/5/15 min) before {info['load_average_before']}, after "
              f"{info['load_average_after']}: the machine is shared, absolute times move with the load; ratios come "
              "from interleaved runs.", "",
              "## All rows", "",
              "| job | tool | median wall (s) | median CPU (s) | CPU % | peak RSS (MiB) | GB/s F32 | Mparams/s |",
              "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['job']} | {r['tool']} | {r['median_wall_s']:.3f} | {f(r['median_cpu_s'], '.2f')} | "
                     f"{f(r['cpu_percent'], '.0f')} | {f(r['peak_rss_mib'], '.0f')} | {r['gb_per_s']:.3f} | {r['mparams_per_s']:.0f} |")
    lines += ["", "Commands:", ""]
    seen = set()
    for r in rows:
        if r["tool"] not in seen:
            seen.add(r["tool"])
            lines.append(f"- {r['tool']}: `{r['command']}`")
    if memory:
        lines += ["", "## Memory: converting under a limit (rtn4, cold page cache for the limit's sake)", "",
                  f"Limit: {memory[0]['limit']}. Bound: 3 × largest tensor + 100 MB.", "",
                  "| model (GB F32) | largest tensor (MB) | exit | wall (s) | peak RSS (MiB) | bound (MiB) | within | cgroup peak (MiB) |",
                  "|---:|---:|---:|---:|---:|---:|---|---:|"]
        for m in memory:
            lines.append(f"| {m['f32_bytes'] / 1e9:.2f} | {m['largest_tensor_bytes'] / 1e6:.0f} | {m['exit']} | {m['wall_s']:.1f} | "
                         f"{m['peak_rss_mib']:.0f} | {m['bound_mib']:.0f} | {'yes' if m['within_bound'] else '**no**'} | "
                         f"{f(m['cgroup_peak_mib'], '.0f')} |")
    args.results.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.results} and {json_path}")


if __name__ == "__main__":
    sys.exit(main())
