"""`qpk inspect --report` and `qpk diff --report` rendered by headless Chromium: the page loads with
no console message, no exception and no network request, shows its charts at a real size, in light
and dark schemes, and every figure it draws equals the JSON that `--json` prints (spec/report.md)."""
import base64
import json
import math
import struct
import zlib

import pytest

from cdp import Browser
from report_support import run_qpk

# Everything the tests compare, gathered in the page: the data block and the data-* attributes of
# the charts' marks, plus layout facts (sizes, overflow, colours).
COLLECT = r"""(() => {
  const data = el => Object.fromEntries([...el.attributes].filter(a => a.name.startsWith('data-'))
                                                          .map(a => [a.name.slice(5), a.value]));
  const all = selector => [...document.querySelectorAll(selector)].map(data);
  return {
    block: JSON.parse(document.getElementById('qpk-report-data').textContent),
    layers: all('#chart-layers g.row'),
    sqnr: all('#chart-sqnr circle.point'),
    bpw: all('#chart-bpw circle.point'),
    histograms: all('svg.histogram'),
    density: all('svg.density'),
    densityImages: [...document.querySelectorAll('svg.density image')].map(i => i.getAttribute('href')),
    recipe: [...document.querySelectorAll('#recipe-facts dd')].map(d => [d.dataset.recipeKey, d.textContent]),
    layerL2: all('#chart-layer-l2 circle.point'),
    layerCosine: all('#chart-layer-cosine circle.point'),
    kinds: all('#chart-kinds g.row'),
    layerKinds: all('#chart-layer-kinds circle.point'),
    ranking: all('#chart-ranking g.row'),
    worst: all('#worst-table span.worst'),
    charts: [...document.querySelectorAll('svg')].map(s => {
      const r = s.getBoundingClientRect();
      const ids = (s.getAttribute('aria-labelledby') || '').split(' ').filter(Boolean);
      return {id: s.id, width: r.width, height: r.height, role: s.getAttribute('role'),
              labels: ids.map(i => (document.getElementById(i) || {}).textContent || '')};
    }),
    sections: [...document.querySelectorAll('main > section')].map(s => s.id),
    scripts: [...document.scripts].map(s => s.type),
    overflow: document.documentElement.scrollWidth > window.innerWidth,
    background: getComputedStyle(document.documentElement).backgroundColor,
    verdict: (document.getElementById('verdict') || {}).textContent || null,
  };
})()"""


def number(value):
    """A data-* attribute or JSON value as a float (`"inf"`, `"nan"` included); None stays None."""
    return None if value in (None, "null") else float(value)


def same(a, b):
    a, b = number(a), number(b)
    if a is None or b is None:
        return a is b
    return (math.isnan(a) and math.isnan(b)) or a == b


def png_pixels(data_url):
    """(width, height, row-major gray levels) of an 8-bit grayscale PNG data: URL, read with zlib."""
    data = base64.b64decode(data_url.split(",", 1)[1])
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    position, idat, width, height = 8, b"", None, None
    while position < len(data):
        (length,) = struct.unpack(">I", data[position:position + 4])
        kind, body = data[position + 4:position + 8], data[position + 8:position + 8 + length]
        (crc,) = struct.unpack(">I", data[position + 8 + length:position + 12 + length])
        assert zlib.crc32(kind + body) == crc, f"bad CRC in {kind}"
        if kind == b"IHDR":
            width, height, depth, color = struct.unpack(">IIBB", body[:10])
            assert (depth, color) == (8, 0), "8-bit grayscale"
        elif kind == b"IDAT":
            idat += body
        position += 12 + length
    raw = zlib.decompress(idat)
    rows = [raw[r * (width + 1):(r + 1) * (width + 1)] for r in range(height)]
    assert all(row[0] == 0 for row in rows), "filter type None"
    return width, height, [p for row in rows for p in row[1:]]


def load(path, dark=False):
    with Browser() as browser:
        url = browser.open(path, dark=dark)
        page = browser.evaluate(COLLECT)
        # The page's own load and its inline `data:` images (the outlier maps) are not requests
        # for anything outside the file; everything else is.
        return page, browser.problems(), [u[:120] for u in browser.requests() if u != url and not u.startswith("data:")]


def check_page(page, problems, requests):
    assert problems == [], f"console/log problems: {problems}"
    assert requests == [], f"the page requested {requests}"
    assert page["scripts"] == ["application/json"], "the only script element is the data block"
    assert not page["overflow"], "the page is wider than the window"
    assert page["charts"], "no chart drawn"
    for chart in page["charts"]:
        assert chart["role"] == "img" and all(chart["labels"]), f"chart {chart['id']} has no accessible label"
        assert chart["width"] > 100 and chart["height"] > 50, f"chart {chart['id']} is drawn {chart['width']}×{chart['height']}"


def test_inspect_report_matches_json(models, tmp_path):
    _, qpk = models
    html = tmp_path / "inspect.html"
    expected = json.loads(run_qpk("inspect", qpk, "--report", html, "--json").stdout)
    page, problems, requests = load(html)
    check_page(page, problems, requests)
    assert page["sections"] == ["layers", "quantization", "recipe", "outliers", "histograms", "tensors"]
    assert page["block"]["report"] == "inspect" and page["block"]["inspect"] == expected

    assert [r["layer"] for r in page["layers"]] == [l["prefix"] for l in expected["layers"]]
    assert [int(r["parameters"]) for r in page["layers"]] == [l["parameters"] for l in expected["layers"]]
    assert [int(r["bytes"]) for r in page["layers"]] == [l["bytes"] for l in expected["layers"]]

    quantized = {t["name"]: t["quantization"] for t in expected["tensors"] if t["quantization"]}
    assert quantized, "the fixture's QPK has quantized tensors"
    for chart in ("sqnr", "bpw"):
        assert sorted(p["tensor"] for p in page[chart]) == sorted(quantized)
        for point in page[chart]:
            q = quantized[point["tensor"]]
            assert same(point["sqnr-db"], q["sqnr_db"]) and same(point["bits-per-weight"], q["bits_per_weight"])

    stats = {t["name"]: t["stats"] for t in expected["tensors"]}
    assert len(page["histograms"]) == len(expected["tensors"])
    for h in page["histograms"]:
        s = stats[h["tensor"]]
        assert [int(c) for c in h["counts"].split()] == s["histogram"]["counts"]
        assert len(s["histogram"]["counts"]) == 64, "--report draws 64-bin histograms by default"
        assert same(h["lower"], s["histogram"]["lower"]) and same(h["upper"], s["histogram"]["upper"])
        assert same(h["mean"], s["mean"]) and same(h["std"], s["std"])
        assert int(h["beyond-3sigma"]) == s["beyond_3sigma"] and int(h["beyond-6sigma"]) == s["beyond_6sigma"]

    # Outlier maps: one per tensor with outliers, every outlier parameter counted once.
    with_outliers = {n: q["outliers"] for n, q in quantized.items() if q["outliers"] > 0}
    assert {m["tensor"] for m in page["density"]} == set(with_outliers)
    for m in page["density"]:
        cells = [int(c) for c in m["cells"].split()]
        assert len(cells) == int(m["grid-rows"]) * int(m["grid-columns"])
        assert sum(cells) == int(m["parameters"]) == with_outliers[m["tensor"]]
    assert page["block"]["outlier_maps"][0]["cells"] == [int(c) for c in page["density"][0]["cells"].split()]
    # The map's picture is the cells: a lit pixel exactly where a cell holds outliers.
    assert len(page["densityImages"]) == len(page["density"])
    for m, url in zip(page["density"], page["densityImages"]):
        width, height, pixels = png_pixels(url)
        assert (width, height) == (int(m["grid-columns"]), int(m["grid-rows"]))
        assert [p > 0 for p in pixels] == [int(c) > 0 for c in m["cells"].split()]

    recipe = expected["quantized_file"]["recipe"]
    assert {k for k, _ in page["recipe"]} == set(recipe)
    assert dict(page["recipe"])["bits"] == str(recipe["bits"])


def test_diff_report_matches_json(models, tmp_path):
    source, qpk = models
    html = tmp_path / "diff.html"
    # Exit 1: the quantized model differs from its source; the report is written all the same.
    expected = json.loads(run_qpk("diff", source, qpk, "--report", html, "--json", expect=1).stdout)
    page, problems, requests = load(html)
    check_page(page, problems, requests)
    assert page["block"]["report"] == "diff" and page["block"]["diff"] == expected
    assert page["verdict"] == "DIFFERENT"

    layers = {l["prefix"]: l for l in expected["layers"]}
    drawn_l2 = [p for p in page["layerL2"]]
    assert [p["layer"] for p in drawn_l2] == [l["prefix"] for l in expected["layers"] if l["relative_l2"] is not None]
    for p in drawn_l2 + page["layerCosine"]:
        layer = layers[p["layer"]]
        assert same(p["relative-l2"], layer["relative_l2"]) and same(p["cosine"], layer["cosine"])
        assert int(p["changed"]) == layer["changed"]
    changed = [l for l in expected["layers"] if l["changed"] > 0]
    assert changed and all(0 < l["relative_l2"] < 1 and 0.9 < l["cosine"] < 1 for l in changed)

    kinds = [k for k in expected["kinds"] if k["changed"] > 0]
    assert [r["kind"] for r in page["kinds"]] == [k["kind"] for k in kinds]
    for row, k in zip(page["kinds"], kinds):
        assert same(row["relative-l2"], k["relative_l2"]) and same(row["sqnr-db"], k["sqnr_db"])
    by_layer_kind = {(g["prefix"], g["kind"]): g for g in expected["layer_kinds"]}
    for p in page["layerKinds"]:
        assert same(p["relative-l2"], by_layer_kind[(p["layer"], p["kind"])]["relative_l2"])

    ranked = [t for t in expected["tensors"] if t["status"] != "identical" and t["relative_l2"] is not None]
    assert [r["tensor"] for r in page["ranking"]] == [t["name"] for t in ranked[:40]]
    for row, t in zip(page["ranking"], ranked):
        assert same(row["relative-l2"], t["relative_l2"]) and same(row["max-abs"], t["max_abs"])

    worst = {t["name"]: t["worst"] for t in expected["tensors"] if t["worst"]}
    assert page["worst"] and len(page["worst"]) == min(25, len(worst))
    for w in page["worst"]:
        assert int(w["flat-index"]) == worst[w["tensor"]]["flat_index"]
        assert same(w["a"], worst[w["tensor"]]["a"]) and same(w["b"], worst[w["tensor"]]["b"])


@pytest.mark.parametrize("command", ["inspect", "diff"])
def test_dark_scheme_loads_cleanly(models, tmp_path, command):
    source, qpk = models
    html = tmp_path / f"{command}.html"
    args = ["inspect", qpk] if command == "inspect" else ["diff", source, qpk]
    run_qpk(*args, "--report", html, expect=0 if command == "inspect" else 1)
    light, _, _ = load(html)
    page, problems, requests = load(html, dark=True)
    check_page(page, problems, requests)
    assert page["background"] != light["background"], "prefers-color-scheme: dark changes the colours"


def test_safetensors_report_without_quantization(models, tmp_path):
    """A plain checkpoint: layers, histograms and the table, no quantization sections."""
    source, _ = models
    html = tmp_path / "plain.html"
    expected = json.loads(run_qpk("inspect", source, "--report", html, "--json", "--bins", "32").stdout)
    page, problems, requests = load(html)
    check_page(page, problems, requests)
    assert page["sections"] == ["layers", "histograms", "tensors"]
    assert page["block"]["inspect"] == expected and page["block"]["outlier_maps"] == []
    assert all(len(h["counts"].split()) == 32 for h in page["histograms"])
