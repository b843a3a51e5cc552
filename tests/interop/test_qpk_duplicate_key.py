"""QPK rule 10a (duplicate_key): qpk and the spec's own Python reader both reject a header with
a key twice in one object, so no two readers can see different files in the same bytes."""
import json
import struct
import sys
import zlib

import pytest

from conftest import FIXTURES, ROOT, run_qpk

sys.path.insert(0, str(ROOT / "tests" / "interop"))
from qpk_read import QPKFile, QPKFormatError  # noqa: E402

FRACAST = FIXTURES / "models" / "fracast" / "model.safetensors"


def with_second_tensors_key(src, dst):
    data = bytearray(src.read_bytes())
    offset, length = struct.unpack_from("<QQ", data, 16)
    header = bytes(data[offset:offset + length])
    assert header.endswith(b"}")
    header = header[:-1] + b',"tensors":[]}'
    data = data[:offset] + header
    struct.pack_into("<QI", data, 24, len(header), zlib.crc32(header))
    struct.pack_into("<I", data, 60, zlib.crc32(bytes(data[:60])))
    dst.write_bytes(bytes(data))


def test_duplicate_key_is_rejected_by_qpk_and_by_the_spec_reader(tmp_path):
    q = tmp_path / "m.qpk"
    run_qpk("convert", FRACAST, q, "--method", "rtn")
    QPKFile(q)  # the original is valid for the spec reader
    dup = tmp_path / "dup.qpk"
    with_second_tensors_key(q, dup)
    # Plain json silently keeps the last "tensors" (an empty file); Foundation kept the first.
    data = dup.read_bytes()
    offset, length = struct.unpack_from("<QQ", data, 16)
    assert json.loads(data[offset:offset + length])["tensors"] == []
    with pytest.raises(QPKFormatError) as error:
        QPKFile(dup)
    assert error.value.rule == "duplicate_key"
    proc = run_qpk("validate", dup, "--json", expect=1)
    assert json.loads(proc.stdout)["files"][0]["problems"][0]["rule"] == "duplicate_key"
