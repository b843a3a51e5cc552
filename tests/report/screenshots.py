"""Renders the README's pictures of the HTML reports with headless Chromium:

    python3 tests/report/screenshots.py MODEL.safetensors      # MiniLM-L6 for the committed ones

quantizes MODEL with qpk's default recipe, writes `qpk inspect MODEL.qpk --report` and
`qpk diff MODEL MODEL.qpk --report`, and saves the top of each page as docs/report-inspect.png and
docs/report-diff.png (QPK_BIN picks the binary, as in the tests)."""
import pathlib
import subprocess
import sys
import tempfile

from cdp import Browser
from report_support import ROOT, qpk_binary


def main(model):
    out = ROOT / "docs"
    out.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        # Relative names, as a user types them, so the pages' titles read model.qpk.
        (tmp / "model.safetensors").symlink_to(pathlib.Path(model).resolve())
        run = lambda *args, check=True: subprocess.run([qpk_binary(), *args], cwd=tmp, check=check)
        run("convert", "model.safetensors", "model.qpk")
        run("inspect", "model.qpk", "--report", "inspect.html")
        run("diff", "model.safetensors", "model.qpk", "--report", "diff.html", check=False)
        inspect, diff = tmp / "inspect.html", tmp / "diff.html"
        for html, name, height in ((inspect, "report-inspect.png", 1450), (diff, "report-diff.png", 1500)):
            with Browser(width=1100, height=height) as browser:
                browser.open(html)
                assert browser.problems() == [], browser.problems()
                browser.screenshot(out / name, width=1100, height=height)
            print(f"wrote {out / name} ({(out / name).stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main(sys.argv[1])
