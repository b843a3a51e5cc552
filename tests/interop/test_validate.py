"""`qpk validate`: every broken file is named with its rule, exit codes follow diff(1)."""
import json

import pytest

from conftest import FIXTURES, run_qpk

INVALID = FIXTURES / "safetensors" / "invalid"


def snake_case(reference_name):
    """qpk's rule name for a reference error variant: HeaderTooLarge -> header_too_large."""
    return "".join("_" + c.lower() if c.isupper() and i else c.lower() for i, c in enumerate(reference_name))


def expected_rules():
    """The Python reference's verdict per broken file (recorded by fixtures/generate.py), as
    qpk names the rule."""
    return sorted((name, snake_case(rule)) for name, rule in
                  json.loads((INVALID / "expected.json").read_text()).items())


@pytest.mark.parametrize("name,rule", expected_rules())
def test_each_broken_safetensors_file_names_its_rule(name, rule):
    path = INVALID / name
    proc = run_qpk("validate", path, expect=1)
    lines = proc.stdout.strip().splitlines()
    problem = [l for l in lines if name in l]
    assert problem, proc.stdout
    assert rule in problem[0], problem[0]
    report = json.loads(run_qpk("validate", path, "--json", expect=1).stdout)
    rules = [p["rule"] for f in report["files"] for p in f["problems"]]
    assert rule in rules


def test_valid_files_exit_zero():
    files = sorted((FIXTURES / "safetensors").glob("*.safetensors"))
    run_qpk("validate", *files, FIXTURES / "models" / "fracast" / "model.safetensors", expect=0)


def test_missing_file_is_trouble_not_invalid(tmp_path):
    proc = run_qpk("validate", tmp_path / "nope.safetensors", expect=2)
    assert "nope.safetensors" in proc.stderr + proc.stdout


def test_a_flipped_byte_in_a_qpk_blob_names_the_tensor(tmp_path):
    out = tmp_path / "m.qpk"
    run_qpk("convert", FIXTURES / "models" / "fracast" / "model.safetensors", out)
    report = json.loads(run_qpk("inspect", out, "--json").stdout)
    run_qpk("validate", out, expect=0)
    data = bytearray(out.read_bytes())
    # Flip a byte in the middle of the payload, away from preamble and header.
    size = len(data)
    position = size // 3
    data[position] ^= 0x5A
    out.write_bytes(bytes(data))
    proc = run_qpk("validate", out, expect=1)
    names = [t["name"] for t in report["tensors"]]
    assert any(f"'{n}'" in proc.stdout or n in proc.stdout for n in names), proc.stdout
    assert "CRC" in proc.stdout.upper() or "checksum" in proc.stdout.lower()
