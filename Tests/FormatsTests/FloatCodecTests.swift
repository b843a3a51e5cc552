import Testing
@testable import Formats
@testable import QPKCore

@Suite("FloatCodec: exact conversions")
struct FloatCodecTests {
    @Test("bfloat16 rounds to nearest even and keeps NaN and Inf")
    func bfloat16Rounding() {
        #expect(FloatCodec.bfloat16Bits(from: 1.0) == 0x3F80)
        // 1 + 2^-8 is exactly halfway between two bf16 values: ties go to the even one (1.0).
        #expect(FloatCodec.bfloat16Bits(from: Float(bitPattern: 0x3F80_8000)) == 0x3F80)
        #expect(FloatCodec.bfloat16Bits(from: Float(bitPattern: 0x3F81_8000)) == 0x3F82)
        #expect(FloatCodec.bfloat16Bits(from: Float(bitPattern: 0x3F80_8001)) == 0x3F81)
        #expect(FloatCodec.bfloat16Bits(from: .infinity) == 0x7F80)
        #expect(FloatCodec.bfloat16Bits(from: -.infinity) == 0xFF80)
        #expect(FloatCodec.float(fromBFloat16: FloatCodec.bfloat16Bits(from: .nan)).isNaN)
        // A NaN whose payload sits only in the low bits must not become Inf.
        #expect(FloatCodec.float(fromBFloat16: FloatCodec.bfloat16Bits(from: Float(bitPattern: 0x7F80_0001))).isNaN)
    }

    @Test("every F8_E4M3 code round-trips, 448 is the largest finite value")
    func e4m3RoundTrip() {
        for code in 0...255 {
            let value = FloatCodec.float(fromFloat8: UInt8(code), dtype: .f8e4m3)
            let back = FloatCodec.float8Code(from: value, dtype: .f8e4m3)
            if value.isNaN { #expect(FloatCodec.float(fromFloat8: back, dtype: .f8e4m3).isNaN) }
            else { #expect(back == UInt8(code), "code \(code) value \(value)") }
        }
        #expect(FloatCodec.float(fromFloat8: 0x7E, dtype: .f8e4m3) == 448)
        #expect(FloatCodec.float(fromFloat8: 0x01, dtype: .f8e4m3) == Float(sign: .plus, exponent: -9, significand: 1))
        #expect(FloatCodec.float8Code(from: 1000, dtype: .f8e4m3) == 0x7F)  // overflow is NaN: no Inf
    }

    @Test("every F8_E5M2 code round-trips, with infinities")
    func e5m2RoundTrip() {
        for code in 0...255 {
            let value = FloatCodec.float(fromFloat8: UInt8(code), dtype: .f8e5m2)
            let back = FloatCodec.float8Code(from: value, dtype: .f8e5m2)
            if value.isNaN { #expect(FloatCodec.float(fromFloat8: back, dtype: .f8e5m2).isNaN) }
            else { #expect(back == UInt8(code), "code \(code) value \(value)") }
        }
        #expect(FloatCodec.float(fromFloat8: 0x7C, dtype: .f8e5m2) == .infinity)
        #expect(FloatCodec.float(fromFloat8: 0x7B, dtype: .f8e5m2) == 57344)
        #expect(FloatCodec.float8Code(from: 1e6, dtype: .f8e5m2) == 0x7C)
    }

    @Test("F8 encoding rounds ties to even")
    func e4m3TiesToEven() {
        // 1.0625 lies halfway between 1.0 (mantissa 000) and 1.125 (001): the even one wins.
        #expect(FloatCodec.float8Code(from: 1.0625, dtype: .f8e4m3) == 0x38)
        // 1.1875 lies halfway between 1.125 (001) and 1.25 (010).
        #expect(FloatCodec.float8Code(from: 1.1875, dtype: .f8e4m3) == 0x3A)
    }

    @Test("bulk decode and encode agree for every convertible dtype", arguments: DType.allCases.filter(\.isConvertibleToFloat))
    func bulkRoundTrip(dtype: DType) {
        let values: [Float] = [0, 1, -2, 3, 0.5, 7, 100, -100].map { dtype == .bool ? ($0 != 0 ? 1 : 0) : $0 }
        let representable = values.map { v -> Float in
            switch dtype {
            case .u8, .u16, .u32, .u64: return max(v, 0).rounded()
            case .i8, .i16, .i32, .i64: return v.rounded()
            case .f8e8m0: return v > 0 ? Float(sign: .plus, exponent: Int(v.exponent), significand: 1) : .nan
            default: return v
            }
        }
        let byteCount = dtype.byteCount(elementCount: values.count)!
        var encoded = [UInt8](repeating: 0, count: byteCount)
        representable.withUnsafeBufferPointer { src in
            encoded.withUnsafeMutableBytes { FloatCodec.encode(src, as: dtype, into: $0) }
        }
        var decoded = [Float](repeating: -1, count: values.count)
        encoded.withUnsafeBytes { raw in
            decoded.withUnsafeMutableBufferPointer { FloatCodec.decode(raw, dtype: dtype, count: values.count, into: $0) }
        }
        for (a, b) in zip(representable, decoded) {
            if a.isNaN { #expect(b.isNaN) } else if dtype == .f8e4m3 || dtype == .f8e5m2 || dtype == .f8e4m3fnuz || dtype == .f8e5m2fnuz {
                #expect(b == Float(FloatCodec.float(fromFloat8: FloatCodec.float8Code(from: a, dtype: dtype), dtype: dtype)))
            } else { #expect(a == b, "\(dtype): \(a) became \(b)") }
        }
    }
}

/// A small deterministic generator (SplitMix64), so a failing pattern can be reproduced.
private struct CodecRandom: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// `count` float32 bit patterns weighted toward the hard cases of narrowing to a type that keeps
/// `keptMantissaBits`: exact ties and their neighbours, NaNs with random payloads (quiet and
/// signaling, both signs), infinities, zeros, float subnormals and the target's overflow edge.
private func hardFloatPatterns(count: Int, keptMantissaBits: UInt32, seed: UInt64) -> [Float] {
    var random = CodecRandom(state: seed)
    let dropped = 23 - keptMantissaBits
    return (0..<count).map { _ in
        let word = UInt32(truncatingIfNeeded: random.next())
        let sign = word & 0x8000_0000
        let bits: UInt32 = switch random.next() % 8 {
        case 0, 1: word
        case 2:  // a tie at the target precision, or one ulp either side of it
            (word & 0xFFFF_FFFF << dropped) | 1 << (dropped - 1) &+ UInt32(random.next() % 3) &- 1
        case 3: sign | 0x7F80_0000 | UInt32.random(in: 1...0x7F_FFFF, using: &random)  // NaN
        case 4: sign | (word & 0x7F_FFFF)  // zero or a float subnormal
        case 5: sign | [0x7F80_0000, 0, 0x477F_E000, 0x477F_F000, 0x4380_0000, 0x4768_0000][Int(random.next() % 6)]
        default: sign | UInt32.random(in: 0x3000_0000...0x4800_0000, using: &random)  // target's range
        }
        return Float(bitPattern: bits)
    }
}

/// The bytes `encode` writes for `values`, at `offset` bytes into the output (0 or 1).
private func fastEncoding(_ values: [Float], as dtype: DType, offset: Int = 0) -> [UInt8] {
    let byteCount = dtype.byteCount(elementCount: values.count)!
    var bytes = [UInt8](repeating: 0xA5, count: byteCount + offset)
    values.withUnsafeBufferPointer { source in
        bytes.withUnsafeMutableBytes { FloatCodec.encode(source, as: dtype, into: UnsafeMutableRawBufferPointer(rebasing: $0[offset...])) }
    }
    return Array(bytes[offset...])
}

/// The bytes the element-by-element reference writes for `values`.
private func referenceEncoding(_ values: [Float], as dtype: DType) -> [UInt8] {
    var bytes = [UInt8](repeating: 0x5A, count: dtype.byteCount(elementCount: values.count)!)
    values.withUnsafeBufferPointer { source in
        bytes.withUnsafeMutableBytes { FloatCodec.referenceEncode(source, as: dtype, into: $0) }
    }
    return bytes
}

/// The `Float` bit patterns `decode` (or the reference) produces for `bytes`, read from `offset`.
private func decodedBits(_ bytes: [UInt8], as dtype: DType, offset: Int = 0, reference: Bool = false) -> [UInt32] {
    let count = (bytes.count - offset) * 8 / dtype.bitWidth
    var floats = [Float](repeating: -7, count: count)
    bytes.withUnsafeBytes { raw in
        let source = UnsafeRawBufferPointer(rebasing: raw[offset...])
        floats.withUnsafeMutableBufferPointer {
            if reference { FloatCodec.referenceDecode(source, dtype: dtype, count: count, into: $0) }
            else { FloatCodec.decode(source, dtype: dtype, count: count, into: $0) }
        }
    }
    return floats.map(\.bitPattern)
}

/// The first index where two arrays differ, for a readable failure.
private func firstMismatch<T: Equatable>(_ a: [T], _ b: [T]) -> Int? {
    zip(a, b).enumerated().first { $0.element.0 != $0.element.1 }?.offset
}

@Suite("FloatCodec: the fast bulk paths equal the scalar reference bit for bit")
struct FloatCodecFastPathTests {
    static let narrowTypes: [DType] = [.f16, .bf16, .f8e4m3, .f8e5m2, .f8e4m3fnuz, .f8e5m2fnuz, .f8e8m0,
                                       .bool, .u8, .i8, .u16, .i16]

    @Test("every 16-bit pattern decodes like the reference and encodes back like it", arguments: [DType.f16, .bf16, .u16, .i16])
    func everySixteenBitPattern(dtype: DType) {
        // Offset 1 makes the source unaligned for half of the runs.
        for offset in 0...1 {
            let bytes = [UInt8](repeating: 0, count: offset) + (0...0xFFFF).flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] }
            let fast = decodedBits(bytes, as: dtype, offset: offset)
            let reference = decodedBits(bytes, as: dtype, offset: offset, reference: true)
            let mismatch = firstMismatch(fast, reference)
            #expect(mismatch == nil, "\(dtype) decode of pattern \(mismatch.map { String($0, radix: 16) } ?? "")")

            let values = reference.map(Float.init(bitPattern:))
            let encoded = fastEncoding(values, as: dtype, offset: offset)
            let expected = referenceEncoding(values, as: dtype)
            let encodeMismatch = firstMismatch(encoded, expected)
            #expect(encodeMismatch == nil, "\(dtype) encode of \(encodeMismatch.map { values[$0 / 2] } ?? 0)")
        }
    }

    @Test("every 16-bit float that is not NaN round-trips to its own pattern", arguments: [DType.f16, .bf16])
    func sixteenBitRoundTrip(dtype: DType) {
        let patterns = (0...0xFFFF).map(UInt16.init)
        let bytes = patterns.flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] }
        let values = decodedBits(bytes, as: dtype).map(Float.init(bitPattern:))
        let back = fastEncoding(values, as: dtype)
        for (pattern, value) in zip(patterns, values) where !value.isNaN {
            let index = Int(pattern) * 2
            #expect(UInt16(back[index]) | UInt16(back[index + 1]) << 8 == pattern, "\(dtype) \(String(pattern, radix: 16))")
        }
    }

    @Test("every byte decodes like the reference, aligned or not", arguments: narrowTypes.filter { $0.bitWidth == 8 })
    func everyByte(dtype: DType) {
        let bytes: [UInt8] = [0x33] + (0...255).map(UInt8.init)
        #expect(decodedBits(bytes, as: dtype) == decodedBits(bytes, as: dtype, reference: true))
        #expect(decodedBits(bytes, as: dtype, offset: 1) == decodedBits(bytes, as: dtype, offset: 1, reference: true))
    }

    @Test("two million float32 patterns (ties, NaN payloads, Inf, subnormals) encode to f16 and bf16 like the reference",
          arguments: [(DType.f16, UInt32(10)), (.bf16, 7)])
    func millionsOfPatterns(dtype: DType, keptMantissaBits: UInt32) {
        for chunk in 0..<2 {
            let values = hardFloatPatterns(count: 1_000_000, keptMantissaBits: keptMantissaBits, seed: UInt64(chunk) << 8 | UInt64(dtype.bitWidth))
            let fast = fastEncoding(values, as: dtype, offset: chunk & 1)
            let reference = referenceEncoding(values, as: dtype)
            let mismatch = firstMismatch(fast, reference)
            #expect(mismatch == nil, "\(dtype): float bits \(mismatch.map { String(values[$0 / 2].bitPattern, radix: 16) } ?? "")")
            if mismatch != nil { return }
        }
    }

    @Test("a million float32 patterns encode to the 8-bit floats and the integers like the reference",
          arguments: DType.allCases.filter { $0.isConvertibleToFloat && $0 != .f16 && $0 != .bf16 })
    func millionPatterns(dtype: DType) {
        let kept: UInt32 = switch dtype {
        case .f8e4m3, .f8e4m3fnuz: 3
        case .f8e5m2, .f8e5m2fnuz: 2
        default: 1
        }
        var values = hardFloatPatterns(count: 1_000_000, keptMantissaBits: kept, seed: 0xF8 &+ UInt64(dtype.bitWidth))
        // Integers: halves and the clamping edges of every width.
        var random = CodecRandom(state: 42)
        for index in stride(from: 0, to: values.count, by: 3) {
            values[index] = Float(Int64(bitPattern: random.next()) >> (random.next() % 64)) / [1, 2, 4][index % 3]
        }
        let fast = fastEncoding(values, as: dtype, offset: 1)
        let reference = referenceEncoding(values, as: dtype)
        let width = max(1, dtype.bitWidth / 8)
        let mismatch = firstMismatch(fast, reference)
        #expect(mismatch == nil, "\(dtype): float \(mismatch.map { values[$0 / width] } ?? 0) bits \(mismatch.map { String(values[$0 / width].bitPattern, radix: 16) } ?? "")")
    }

    @Test("short and odd-length buffers convert every element", arguments: [1, 3, 7, 17, 33])
    func shortBuffers(count: Int) {
        let values = hardFloatPatterns(count: count, keptMantissaBits: 10, seed: UInt64(count))
        for dtype in DType.allCases where dtype.isConvertibleToFloat {
            let encoded = fastEncoding(values, as: dtype, offset: 1)
            #expect(encoded == referenceEncoding(values, as: dtype), "\(dtype) × \(count)")
            let padded = [0x11] + encoded
            #expect(decodedBits(padded, as: dtype, offset: 1) == decodedBits(padded, as: dtype, offset: 1, reference: true), "\(dtype) × \(count)")
        }
    }

    @Test("IEEE half-precision edges")
    func halfEdges() {
        func half(_ value: Float) -> UInt16 {
            let bytes = fastEncoding([value], as: .f16)
            return UInt16(bytes[0]) | UInt16(bytes[1]) << 8
        }
        #expect(half(65504) == 0x7BFF)
        #expect(half(65519.996) == 0x7BFF)  // just below the midpoint to Inf
        #expect(half(65520) == 0x7C00)  // the midpoint rounds to even, which is Inf
        #expect(half(Float(sign: .plus, exponent: -24, significand: 1)) == 0x0001)  // smallest subnormal
        #expect(half(Float(sign: .plus, exponent: -25, significand: 1)) == 0x0000)  // half of it: tie to even (zero)
        #expect(half(Float(sign: .minus, exponent: -25, significand: 1.5)) == 0x8001)
        #expect(half(Float(bitPattern: 0x7F80_0001)) & 0x7E00 == 0x7E00)  // a NaN stays a (quiet) NaN
        #expect(decodedBits([0x01, 0x00], as: .f16) == [Float(sign: .plus, exponent: -24, significand: 1).bitPattern])
        #expect(decodedBits([0x01, 0x7C], as: .f16).map { Float(bitPattern: $0).isNaN } == [true])
    }

    @Test("E8M0 rounds to the nearer power of two in log space")
    func e8m0Edges() {
        // The first Float significand at or above √2 rounds up, the one below rounds down.
        #expect(fastEncoding([Float(bitPattern: 0x3FB5_04F4)], as: .f8e8m0) == [128])
        #expect(fastEncoding([Float(bitPattern: 0x3FB5_04F3)], as: .f8e8m0) == [127])
        #expect(fastEncoding([.greatestFiniteMagnitude, 0, -1, .infinity, .nan], as: .f8e8m0) == [254, 0xFF, 0xFF, 0xFF, 0xFF])
        #expect(fastEncoding([Float(bitPattern: 0x005A_827A), Float(bitPattern: 0x005A_8279)], as: .f8e8m0) == [1, 0])
    }
}

@Suite("DType: the safetensors dtype table")
struct DTypeTests {
    @Test("bit widths match safetensors 0.8")
    func bitWidths() {
        let expected: [DType: Int] = [
            .bool: 8, .f4: 4, .f6e2m3: 6, .f6e3m2: 6, .u8: 8, .i8: 8, .f8e5m2: 8, .f8e4m3: 8,
            .f8e8m0: 8, .f8e4m3fnuz: 8, .f8e5m2fnuz: 8, .i16: 16, .u16: 16, .f16: 16, .bf16: 16,
            .i32: 32, .u32: 32, .f32: 32, .c64: 64, .f64: 64, .i64: 64, .u64: 64,
        ]
        #expect(expected.count == DType.allCases.count)
        for (dtype, bits) in expected { #expect(dtype.bitWidth == bits, "\(dtype)") }
    }

    @Test("sub-byte tensors must fill whole bytes")
    func subByteSizes() {
        #expect(DType.f4.byteCount(elementCount: 3) == nil)
        #expect(DType.f4.byteCount(elementCount: 4) == 2)
        #expect(DType.f6e2m3.byteCount(elementCount: 4) == 3)
        #expect(DType.f32.byteCount(elementCount: Int.max / 2) == nil)
    }

    @Test("user-facing names parse")
    func userNames() {
        #expect(DType(userName: "f32") == .f32)
        #expect(DType(userName: "bfloat16") == .bf16)
        #expect(DType(userName: "F16") == .f16)
        #expect(DType(userName: "half") == .f16)
        #expect(DType(userName: "nope") == nil)
    }
}
