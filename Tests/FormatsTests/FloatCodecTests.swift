import Testing
@testable import Formats

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
