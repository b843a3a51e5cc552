import QPKCore

/// Packs and unpacks quantization codes as an LSB-first bit stream (spec/qpk-format.md §codes).
///
/// Code `i` of a `b`-bit stream occupies bits `[i·b, (i+1)·b)` of the stream, where bit `k` is
/// bit `k mod 8` of byte `k / 8`. For 4 bits this puts element `2j` in the low nibble of byte `j`;
/// for 3 bits eight codes fill three bytes.
public enum BitPacking {
    /// Packs `codes` (each `< 2^bits`) into `destination`, which must hold
    /// `(codes.count · bits + 7) / 8` bytes and is overwritten.
    public static func pack(
        _ codes: UnsafeBufferPointer<UInt8>, bits: Int, into destination: UnsafeMutableBufferPointer<UInt8>
    ) {
        let count = codes.count
        precondition(destination.count >= (count * bits + 7) / 8)
        switch bits {
        case 8:
            for i in 0..<count { destination[i] = codes[i] }
        case 4:
            var i = 0
            #if _endian(little)
            if let source = codes.baseAddress, let target = destination.baseAddress {
                // 32 codes at a time: each pair (c₀, c₁) read as the little-endian c₀ | c₁·2⁸
                // becomes the byte c₀ | c₁·2⁴, exactly the scalar step below.
                let from = UnsafeRawPointer(source), to = UnsafeMutableRawPointer(target)
                while i + 32 <= count {
                    let pairs = from.loadUnaligned(fromByteOffset: i, as: SIMD16<UInt16>.self)
                    let bytes = (pairs & 0x00FF) | ((pairs &>> 8) &<< 4)
                    to.storeBytes(of: SIMD16<UInt8>(truncatingIfNeeded: bytes), toByteOffset: i >> 1, as: SIMD16<UInt8>.self)
                    i += 32
                }
            }
            #endif
            while i + 1 < count {
                destination[i >> 1] = codes[i] | (codes[i + 1] << 4)
                i += 2
            }
            if i < count { destination[i >> 1] = codes[i] }
        case 2:
            let whole = count / 4
            for j in 0..<whole {
                let b = j * 4
                destination[j] = codes[b] | codes[b + 1] << 2 | codes[b + 2] << 4 | codes[b + 3] << 6
            }
            if whole * 4 < count {
                var byte: UInt8 = 0
                for k in (whole * 4)..<count { byte |= codes[k] << UInt8((k - whole * 4) * 2) }
                destination[whole] = byte
            }
        default:
            for j in 0..<((count * bits + 7) / 8) { destination[j] = 0 }
            var bitPosition = 0
            for i in 0..<count {
                let value = UInt32(codes[i])
                let byte = bitPosition >> 3
                let shift = bitPosition & 7
                destination[byte] |= UInt8(truncatingIfNeeded: value << shift)
                if shift + bits > 8 { destination[byte + 1] |= UInt8(truncatingIfNeeded: value >> (8 - shift)) }
                bitPosition += bits
            }
        }
    }

    /// Unpacks `count` codes starting at code index `first` of the stream `packed`.
    public static func unpack(
        _ packed: UnsafeBufferPointer<UInt8>, bits: Int, first: Int = 0, count: Int,
        into destination: UnsafeMutableBufferPointer<UInt8>
    ) {
        precondition(destination.count >= count)
        precondition(((first + count) * bits + 7) / 8 <= packed.count)
        let mask = UInt32((1 << bits) - 1)
        switch bits {
        case 8:
            for i in 0..<count { destination[i] = packed[first + i] }
        case 4:
            for i in 0..<count {
                let k = first + i
                destination[i] = (packed[k >> 1] >> UInt8((k & 1) << 2)) & 0x0F
            }
        default:
            var bitPosition = first * bits
            for i in 0..<count {
                let byte = bitPosition >> 3
                let shift = bitPosition & 7
                var word = UInt32(packed[byte])
                if shift + bits > 8 { word |= UInt32(packed[byte + 1]) << 8 }
                destination[i] = UInt8(truncatingIfNeeded: (word >> shift) & mask)
                bitPosition += bits
            }
        }
    }
}
