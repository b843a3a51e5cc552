"""The HTML report seen in a real browser: fixtures for a headless Chromium and a quantized model."""
import pytest

from cdp import chromium_binary
from report_support import FIXTURE, run_qpk


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
