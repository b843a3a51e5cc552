import Testing

@testable import Quantize
import QPKCore

@Suite("Bit packing: LSB-first code streams")
struct BitPackingTests {
    @Test("pack then unpack returns the codes, for every width and awkward lengths", arguments: [2, 3, 4, 8])
    func roundTrip(bits: Int) {
        var rng = SeededGenerator(seed: UInt64(bits))
        for count in [0, 1, 2, 3, 5, 7, 8, 9, 13, 63, 64, 65, 127, 1001] {
            let codes = (0..<count).map { _ in UInt8.random(in: 0...UInt8((1 << bits) - 1), using: &rng) }
            var packed = [UInt8](repeating: 0xAA, count: (count * bits + 7) / 8)
            codes.withUnsafeBufferPointer { src in
                packed.withUnsafeMutableBufferPointer { BitPacking.pack(src, bits: bits, into: $0) }
            }
            var back = [UInt8](repeating: 0, count: count)
            packed.withUnsafeBufferPointer { src in
                back.withUnsafeMutableBufferPointer { BitPacking.unpack(src, bits: bits, count: count, into: $0) }
            }
            #expect(back == codes, "bits \(bits), count \(count)")
        }
    }

    @Test("unpacking from any starting code reads the right codes", arguments: [2, 3, 4, 8])
    func unpackWithOffset(bits: Int) {
        var rng = SeededGenerator(seed: 99 + UInt64(bits))
        let count = 77
        let codes = (0..<count).map { _ in UInt8.random(in: 0...UInt8((1 << bits) - 1), using: &rng) }
        var packed = [UInt8](repeating: 0, count: (count * bits + 7) / 8)
        codes.withUnsafeBufferPointer { src in
            packed.withUnsafeMutableBufferPointer { BitPacking.pack(src, bits: bits, into: $0) }
        }
        for first in [0, 1, 3, 7, 8, 11, 40, 76] {
            let n = count - first
            var part = [UInt8](repeating: 0, count: n)
            packed.withUnsafeBufferPointer { src in
                part.withUnsafeMutableBufferPointer { BitPacking.unpack(src, bits: bits, first: first, count: n, into: $0) }
            }
            #expect(part == Array(codes[first...]), "bits \(bits), first \(first)")
        }
    }

    @Test("the documented layout: 4-bit element 2j is the low nibble, 3-bit codes straddle bytes")
    func layout() {
        var packed = [UInt8](repeating: 0, count: 1)
        [UInt8(0x3), 0xC].withUnsafeBufferPointer { src in
            packed.withUnsafeMutableBufferPointer { BitPacking.pack(src, bits: 4, into: $0) }
        }
        #expect(packed == [0xC3])
        var three = [UInt8](repeating: 0, count: 3)
        [UInt8](repeating: 7, count: 8).withUnsafeBufferPointer { src in
            three.withUnsafeMutableBufferPointer { BitPacking.pack(src, bits: 3, into: $0) }
        }
        #expect(three == [0xFF, 0xFF, 0xFF])
        var mixed = [UInt8](repeating: 0, count: 1)
        [UInt8(5), 6].withUnsafeBufferPointer { src in
            mixed.withUnsafeMutableBufferPointer { BitPacking.pack(src, bits: 3, into: $0) }
        }
        #expect(mixed == [0b0011_0101])
    }
}
