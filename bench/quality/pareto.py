"""The bpw–fidelity Pareto chart of bench/quality (issue 15): every row of results.json between 2.5
and 5.5 bits per weight, mean embedding cosine against bits per weight, one colour per family, each
family's Pareto frontier drawn as a step line.

Families: qpk without data (weight-only recipes, and calibration on random tokens), qpk calibrated on
text (GPTQ, BoA, imatrix from the built-in text), and the peers (llama.cpp, MLX, plain RTN).

Run: python3 bench/quality/pareto.py      (reads results.json, writes pareto.svg; run.py calls it)
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from xml.sax.saxutils import escape

HERE = Path(__file__).resolve().parent
LOW, HIGH = 2.5, 5.5
FLOOR = 0.80  # rows below are listed beside the chart, not drawn
FAMILIES = [  # (key, legend, colour, marker)
    ("free", "qpk, no data (weights only, or random tokens)", "#1f77b4", "circle"),
    ("text", "qpk, calibrated on text (GPTQ, BoA, imatrix)", "#2ca02c", "square"),
    ("peer", "peers (llama.cpp, MLX, RTN)", "#d62728", "diamond"),
]


def family(method: str) -> str:
    if not method.startswith("qpk"):
        return "peer"
    if "no data" in method or not any(k in method for k in ("gptq", "boa", "imatrix")):
        return "free"
    return "text"


def frontier(points: list[tuple[float, float, str]]) -> list[tuple[float, float, str]]:
    """The points no other point beats on both axes (fewer bits and higher cosine), by bpw."""
    best, out = -math.inf, []
    for p in sorted(points, key=lambda p: (p[0], -p[1])):
        if p[1] > best:
            out.append(p)
            best = p[1]
    return out


def chart(rows: list[dict]) -> str:
    rows = [r for r in rows if LOW - 1e-9 <= r["bpw"] <= HIGH + 1e-9]
    hidden = [r for r in rows if r["mean_cosine"] < FLOOR]
    rows = [r for r in rows if r["mean_cosine"] >= FLOOR]
    low_cos = FLOOR
    width, height, left, right, top, bottom = 1000, 720, 70, 330, 30, 60
    plot_w, plot_h = width - left - right, height - top - bottom

    def x(bpw):
        return left + (bpw - LOW) / (HIGH - LOW) * plot_w

    def y(cos):
        return top + (1 - (cos - low_cos) / (1 - low_cos)) * plot_h

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{left}" y="18" font-size="14">MiniLM-L6: mean embedding cosine to fp32 against bits per weight '
           f'(bench/quality)</text>']
    for i in range(7):  # x grid every 0.5 bpw
        b = LOW + 0.5 * i
        out.append(f'<line x1="{x(b):.1f}" y1="{top}" x2="{x(b):.1f}" y2="{top + plot_h}" stroke="#ddd"/>')
        out.append(f'<text x="{x(b):.1f}" y="{top + plot_h + 18}" text-anchor="middle">{b:.1f}</text>')
    steps = int(round((1 - low_cos) / 0.025))
    for i in range(steps + 1):
        c = low_cos + 0.025 * i
        out.append(f'<line x1="{left}" y1="{y(c):.1f}" x2="{left + plot_w}" y2="{y(c):.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{left - 6}" y="{y(c) + 4:.1f}" text-anchor="end">{c:.3f}</text>')
    out.append(f'<text x="{left + plot_w / 2}" y="{height - 15}" text-anchor="middle">bits per weight '
               f'(everything stored)</text>')
    out.append(f'<text transform="translate(18 {top + plot_h / 2}) rotate(-90)" text-anchor="middle">mean cosine</text>')
    for key, legend, colour, marker in FAMILIES:
        points = [(r["bpw"], r["mean_cosine"], r["method"]) for r in rows if family(r["method"]) == key]
        if not points:
            continue
        line = frontier(points)
        path = " ".join(f"{'M' if i == 0 else 'L'}{x(b):.1f},{y(c):.1f}" for i, (b, c, _) in enumerate(line))
        out.append(f'<path d="{path}" fill="none" stroke="{colour}" stroke-width="1.5" opacity="0.7"/>')
        for b, c, method in points:
            title = f"<title>{escape(method)}: {b:.3f} bpw, {c:.4f}</title>"
            cx, cy = x(b), y(c)
            if marker == "circle":
                shape = f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="4" fill="{colour}">{title}</circle>'
            elif marker == "square":
                shape = f'<rect x="{cx - 4:.1f}" y="{cy - 4:.1f}" width="8" height="8" fill="{colour}">{title}</rect>'
            else:
                shape = (f'<path d="M{cx:.1f},{cy - 5:.1f} L{cx + 5:.1f},{cy:.1f} L{cx:.1f},{cy + 5:.1f} '
                         f'L{cx - 5:.1f},{cy:.1f} Z" fill="{colour}">{title}</path>')
            out.append(shape)
        for b, c, method in line:  # label the frontier
            out.append(f'<text x="{x(b) + 7:.1f}" y="{y(c) - 5:.1f}" font-size="9" fill="{colour}">'
                       f'{escape(method.removeprefix("qpk "))}</text>')
    for i, (_, legend, colour, _) in enumerate(FAMILIES):
        ly = top + 220 + 20 * i
        out.append(f'<rect x="{left + plot_w + 20}" y="{ly - 8}" width="10" height="10" fill="{colour}"/>')
        out.append(f'<text x="{left + plot_w + 36}" y="{ly + 1}">{escape(legend)}</text>')
    out.append(f'<text x="{left + plot_w + 20}" y="{top + 300}" font-size="10">Lines: each family\'s Pareto frontier.</text>')
    for i, r in enumerate(sorted(hidden, key=lambda r: -r["mean_cosine"])):
        out.append(f'<text x="{left + plot_w + 20}" y="{top + 330 + 14 * i}" font-size="10">'
                   f'below {FLOOR}: {escape(r["method"])} {r["bpw"]:.2f} bpw, {r["mean_cosine"]:.4f}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main() -> None:
    rows = json.loads((HERE / "results.json").read_text())["rows"]
    (HERE / "pareto.svg").write_text(chart(rows))


if __name__ == "__main__":
    main()
