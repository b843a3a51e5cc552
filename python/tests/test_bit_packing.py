"""§5.2: codes are one LSB-first bit stream, rows not padded."""
import numpy as np
import pytest

from qpk._tensor import unpack_codes
from qpk_build import pack_codes


@pytest.mark.parametrize("bits", [2, 3, 4, 8])
@pytest.mark.parametrize("count", [0, 1, 7, 8, 9, 1001])
def test_unpacking_inverts_the_naive_bit_by_bit_packing(bits, count):
    codes = np.random.default_rng(bits * 1000 + count).integers(0, 1 << bits, size=count)
    stream = pack_codes(codes.tolist(), bits)
    assert len(stream) == (count * bits + 7) // 8
    np.testing.assert_array_equal(unpack_codes(memoryview(stream), count, bits), codes)


def test_the_spec_consequences_hold():
    assert pack_codes([0, 15, 7, 3, 1, 2], 4) == bytes([0xF0, 0x37, 0x21])
    assert pack_codes([1, 2, 3, 0], 2) == bytes([0b00111001])
    np.testing.assert_array_equal(unpack_codes(memoryview(bytes([0xF0, 0x37, 0x21])), 6, 4), [0, 15, 7, 3, 1, 2])
    # 3 bits: 8 codes fill 3 bytes, code 2 straddles bytes 0 and 1
    np.testing.assert_array_equal(unpack_codes(memoryview(pack_codes(list(range(8)), 3)), 8, 3), range(8))
