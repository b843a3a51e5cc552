"""qpk.torch: torch is imported only when used, and gives the same values as the numpy API."""
import subprocess
import sys

import numpy as np
import pytest

import qpk
from qpk_build import Builder


def test_importing_qpk_does_not_import_torch():
    code = "import sys, qpk; qpk.load_file; assert 'torch' not in sys.modules, 'torch imported'"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_torch_load_file_matches_numpy(tmp_path):
    torch = pytest.importorskip("torch")
    b = Builder()
    b.affine("w", [2, 3], codes=[0, 15, 7, 3, 1, 2], scales=[0.5, 1.0, 2.0, 0.25], zeros=[1, 0, 2, 8], bits=4,
             group_size=2, outliers=("elements", [4], [100.0]))
    b.raw("i", "I64", [3], np.array([1, -2, 3], "<i8").tobytes())
    b.raw("h", "BF16", [2], np.array([0x3F80, 0xC000], "<u2").tobytes())  # 1.0, -2.0
    path = tmp_path / "t.qpk"
    path.write_bytes(b.build())
    state = qpk.torch.load_file(path)
    assert state["w"].dtype == torch.float32
    assert torch.equal(state["w"], torch.tensor([[-0.5, 7.0, 7.0], [2.0, 100.0, -1.5]]))
    assert state["i"].dtype == torch.int64 and state["i"].tolist() == [1, -2, 3]
    assert state["h"].dtype == torch.bfloat16 and state["h"].float().tolist() == [1.0, -2.0]
    masks = qpk.torch.outlier_masks(path)
    assert list(masks) == ["w"] and masks["w"].dtype == torch.bool
    assert masks["w"].nonzero().tolist() == [[1, 1]]
