/// Exact conversions between tensor element encodings and `Float`.
///
/// Every narrowing conversion rounds to nearest, ties to even, and keeps NaN and ±Inf where the
/// target type has them. The 8-bit float formats follow the OCP FP8 specification (E4M3 "FN":
/// no infinities, NaN = S.1111.111; E5M2: IEEE-like) and the AMD/Graphcore "FNUZ" variants
/// (bias one higher, a single NaN at 0x80, no negative zero). Values beyond the largest finite
/// number of a type without infinities become NaN, as in `ml_dtypes` (non-saturating casts).
public enum FloatCodec {

    // MARK: bfloat16

    /// The bfloat16 bit pattern nearest to `value` (round to nearest even; NaN stays a quiet NaN).
    @inlinable
    public static func bfloat16Bits(from value: Float) -> UInt16 {
        let bits = value.bitPattern
        if value.isNaN { return UInt16(truncatingIfNeeded: bits >> 16) | 0x0040 }
        let rounding: UInt32 = 0x7FFF + ((bits >> 16) & 1)
        return UInt16(truncatingIfNeeded: (bits &+ rounding) >> 16)
    }

    /// The `Float` whose top 16 bits are `bits`.
    @inlinable
    public static func float(fromBFloat16 bits: UInt16) -> Float {
        Float(bitPattern: UInt32(bits) << 16)
    }

    // MARK: 8-bit floats

    /// The parameters of one 8-bit (or narrower) float format.
    public struct MinifloatFormat: Sendable {
        public var exponentBits: Int
        public var mantissaBits: Int
        public var bias: Int
        /// Whether the all-ones exponent encodes ±Inf (IEEE-like) rather than finite values.
        public var hasInfinity: Bool
        /// FNUZ formats: 0x80 is the only NaN and there is no negative zero.
        public var isFNUZ: Bool

        static let e4m3fn = MinifloatFormat(exponentBits: 4, mantissaBits: 3, bias: 7, hasInfinity: false, isFNUZ: false)
        static let e5m2 = MinifloatFormat(exponentBits: 5, mantissaBits: 2, bias: 15, hasInfinity: true, isFNUZ: false)
        static let e4m3fnuz = MinifloatFormat(exponentBits: 4, mantissaBits: 3, bias: 8, hasInfinity: false, isFNUZ: true)
        static let e5m2fnuz = MinifloatFormat(exponentBits: 5, mantissaBits: 2, bias: 16, hasInfinity: false, isFNUZ: true)

        /// Decodes one code.
        func decode(_ code: UInt8) -> Float {
            let sign: Float = code & 0x80 != 0 ? -1 : 1
            let magnitude = Int(code & 0x7F)
            let exponentField = magnitude >> mantissaBits
            let mantissa = magnitude & ((1 << mantissaBits) - 1)
            let maxExponentField = (1 << exponentBits) - 1
            if isFNUZ {
                if code == 0x80 { return .nan }
            } else if hasInfinity {
                if exponentField == maxExponentField {
                    return mantissa == 0 ? sign * .infinity : .nan
                }
            } else if magnitude == 0x7F {
                return .nan
            }
            if exponentField == 0 {
                return sign * Float(mantissa) * Float(sign: .plus, exponent: 1 - bias - mantissaBits, significand: 1)
            }
            let significand = 1 + Float(mantissa) / Float(1 << mantissaBits)
            return sign * Float(sign: .plus, exponent: exponentField - bias, significand: significand)
        }

        /// The largest finite magnitude code.
        var maxFiniteMagnitude: Int {
            if hasInfinity { return ((1 << exponentBits) - 1) << mantissaBits - 1 }
            if isFNUZ { return 0x7F }
            return 0x7E
        }

        var nanCode: UInt8 { isFNUZ ? 0x80 : 0x7F }

        /// Encodes `value`, rounding to nearest even.
        func encode(_ value: Float) -> UInt8 {
            if value.isNaN { return isFNUZ ? 0x80 : (value.sign == .minus ? 0xFF : 0x7F) }
            let signBit: UInt8 = value.sign == .minus ? 0x80 : 0
            if value.isInfinite {
                if hasInfinity { return signBit | UInt8(((1 << exponentBits) - 1) << mantissaBits) }
                return nanCode
            }
            let magnitude = Double(value.magnitude)
            if magnitude == 0 { return isFNUZ ? 0 : signBit }
            let minExponent = 1 - bias
            let exponent = max(Int(magnitude.exponent), minExponent)
            let quantum = Double(sign: .plus, exponent: exponent - mantissaBits, significand: 1)
            var steps = Int((magnitude / quantum).rounded(.toNearestOrEven))
            var exponentField: Int
            if exponent == minExponent && steps < (1 << mantissaBits) {
                exponentField = 0
            } else {
                exponentField = exponent + bias
                if steps == (2 << mantissaBits) {
                    exponentField += 1
                    steps = 1 << mantissaBits
                }
                steps -= 1 << mantissaBits
            }
            let code = exponentField << mantissaBits | steps
            if code > maxFiniteMagnitude {
                if hasInfinity { return signBit | UInt8(((1 << exponentBits) - 1) << mantissaBits) }
                return nanCode
            }
            if code == 0 { return isFNUZ ? 0 : signBit }
            return signBit | UInt8(code)
        }
    }

    static func decodeTable(_ format: MinifloatFormat) -> [Float] {
        (0..<256).map { format.decode(UInt8($0)) }
    }

    static let e4m3Table = decodeTable(.e4m3fn)
    static let e5m2Table = decodeTable(.e5m2)
    static let e4m3fnuzTable = decodeTable(.e4m3fnuz)
    static let e5m2fnuzTable = decodeTable(.e5m2fnuz)
    static let e8m0Table: [Float] = (0..<256).map {
        $0 == 0xFF ? .nan : Float(sign: .plus, exponent: $0 - 127, significand: 1)
    }

    /// Decodes one 8-bit float code of `dtype` (one of the `F8_*` types).
    public static func float(fromFloat8 code: UInt8, dtype: DType) -> Float {
        switch dtype {
        case .f8e4m3: e4m3Table[Int(code)]
        case .f8e5m2: e5m2Table[Int(code)]
        case .f8e4m3fnuz: e4m3fnuzTable[Int(code)]
        case .f8e5m2fnuz: e5m2fnuzTable[Int(code)]
        case .f8e8m0: e8m0Table[Int(code)]
        default: .nan
        }
    }

    /// Encodes `value` as an 8-bit float code of `dtype` (one of the `F8_*` types).
    public static func float8Code(from value: Float, dtype: DType) -> UInt8 {
        switch dtype {
        case .f8e4m3: MinifloatFormat.e4m3fn.encode(value)
        case .f8e5m2: MinifloatFormat.e5m2.encode(value)
        case .f8e4m3fnuz: MinifloatFormat.e4m3fnuz.encode(value)
        case .f8e5m2fnuz: MinifloatFormat.e5m2fnuz.encode(value)
        case .f8e8m0: encodeE8M0(value)
        default: 0
        }
    }

    /// E8M0 is a bare exponent (bias 127, 0xFF = NaN): the nearest power of two, in log space.
    static func encodeE8M0(_ value: Float) -> UInt8 {
        guard value.isFinite, value > 0 else { return 0xFF }
        let exponent = Int(Double(value).exponent)
        let lower = Double(sign: .plus, exponent: exponent, significand: 1)
        let rounded = Double(value) >= lower * 2.0.squareRoot() ? exponent + 1 : exponent
        return UInt8(clamping: max(0, min(254, rounded + 127)))
    }

    // MARK: Bulk conversion

    /// Decodes `count` elements of `dtype` from `source` into `destination` as `Float`.
    ///
    /// `source` may be unaligned. Integers convert to the nearest `Float`; booleans to 0 or 1.
    /// - Precondition: `dtype.isConvertibleToFloat`, `source` holds at least `count` elements and
    ///   `destination.count >= count`.
    public static func decode(
        _ source: UnsafeRawBufferPointer, dtype: DType, count: Int,
        into destination: UnsafeMutableBufferPointer<Float>
    ) {
        precondition(dtype.isConvertibleToFloat, "\(dtype) has no Float view")
        precondition(destination.count >= count)
        guard count > 0, let base = source.baseAddress, let out = destination.baseAddress else { return }
        switch dtype {
        case .f32:
            out.withMemoryRebound(to: UInt8.self, capacity: count * 4) {
                $0.update(from: base.assumingMemoryBound(to: UInt8.self), count: count * 4)
            }
        case .f16:
            for i in 0..<count { out[i] = Float(Float16(bitPattern: base.loadUnaligned(fromByteOffset: i &* 2, as: UInt16.self))) }
        case .bf16:
            for i in 0..<count { out[i] = Float(bitPattern: UInt32(base.loadUnaligned(fromByteOffset: i &* 2, as: UInt16.self)) << 16) }
        case .f64:
            for i in 0..<count { out[i] = Float(base.loadUnaligned(fromByteOffset: i &* 8, as: Double.self)) }
        case .f8e4m3, .f8e5m2, .f8e4m3fnuz, .f8e5m2fnuz, .f8e8m0:
            let table: [Float] = switch dtype {
            case .f8e4m3: e4m3Table
            case .f8e5m2: e5m2Table
            case .f8e4m3fnuz: e4m3fnuzTable
            case .f8e5m2fnuz: e5m2fnuzTable
            default: e8m0Table
            }
            let bytes = base.assumingMemoryBound(to: UInt8.self)
            table.withUnsafeBufferPointer { t in
                for i in 0..<count { out[i] = t[Int(bytes[i])] }
            }
        case .bool:
            let bytes = base.assumingMemoryBound(to: UInt8.self)
            for i in 0..<count { out[i] = bytes[i] != 0 ? 1 : 0 }
        case .u8:
            let bytes = base.assumingMemoryBound(to: UInt8.self)
            for i in 0..<count { out[i] = Float(bytes[i]) }
        case .i8:
            for i in 0..<count { out[i] = Float(base.loadUnaligned(fromByteOffset: i, as: Int8.self)) }
        case .i16:
            for i in 0..<count { out[i] = Float(base.loadUnaligned(fromByteOffset: i &* 2, as: Int16.self)) }
        case .u16:
            for i in 0..<count { out[i] = Float(base.loadUnaligned(fromByteOffset: i &* 2, as: UInt16.self)) }
        case .i32:
            for i in 0..<count { out[i] = Float(base.loadUnaligned(fromByteOffset: i &* 4, as: Int32.self)) }
        case .u32:
            for i in 0..<count { out[i] = Float(base.loadUnaligned(fromByteOffset: i &* 4, as: UInt32.self)) }
        case .i64:
            for i in 0..<count { out[i] = Float(base.loadUnaligned(fromByteOffset: i &* 8, as: Int64.self)) }
        case .u64:
            for i in 0..<count { out[i] = Float(base.loadUnaligned(fromByteOffset: i &* 8, as: UInt64.self)) }
        case .c64, .f4, .f6e2m3, .f6e3m2:
            preconditionFailure("unreachable: \(dtype) has no Float view")
        }
    }

    /// Encodes `source` as elements of `dtype` into `destination`.
    ///
    /// Floats round to nearest even. Integers round to nearest and clamp to the type's range;
    /// NaN becomes 0. Booleans are `value != 0`.
    /// - Precondition: `destination` holds at least `source.count` elements of `dtype`.
    public static func encode(
        _ source: UnsafeBufferPointer<Float>, as dtype: DType,
        into destination: UnsafeMutableRawBufferPointer
    ) {
        precondition(dtype.isConvertibleToFloat, "\(dtype) has no Float view")
        let count = source.count
        guard count > 0, let out = destination.baseAddress, let src = source.baseAddress else { return }
        precondition(destination.count >= dtype.byteCount(elementCount: count) ?? Int.max)
        func clampedInteger<T: FixedWidthInteger>(_ value: Float, _: T.Type) -> T {
            guard !value.isNaN else { return 0 }
            let rounded = value.rounded(.toNearestOrEven)
            if rounded <= Float(T.min) { return T.min }
            if rounded >= Float(T.max) { return T.max }
            return T(rounded)
        }
        switch dtype {
        case .f32:
            UnsafeMutableRawPointer(out).copyMemory(from: src, byteCount: count * 4)
        case .f16:
            for i in 0..<count { out.storeBytes(of: Float16(src[i]).bitPattern, toByteOffset: i &* 2, as: UInt16.self) }
        case .bf16:
            for i in 0..<count { out.storeBytes(of: bfloat16Bits(from: src[i]), toByteOffset: i &* 2, as: UInt16.self) }
        case .f64:
            for i in 0..<count { out.storeBytes(of: Double(src[i]), toByteOffset: i &* 8, as: Double.self) }
        case .f8e4m3, .f8e5m2, .f8e4m3fnuz, .f8e5m2fnuz, .f8e8m0:
            for i in 0..<count { out.storeBytes(of: float8Code(from: src[i], dtype: dtype), toByteOffset: i, as: UInt8.self) }
        case .bool:
            for i in 0..<count { out.storeBytes(of: src[i] != 0 ? 1 : 0, toByteOffset: i, as: UInt8.self) }
        case .u8:
            for i in 0..<count { out.storeBytes(of: clampedInteger(src[i], UInt8.self), toByteOffset: i, as: UInt8.self) }
        case .i8:
            for i in 0..<count { out.storeBytes(of: clampedInteger(src[i], Int8.self), toByteOffset: i, as: Int8.self) }
        case .i16:
            for i in 0..<count { out.storeBytes(of: clampedInteger(src[i], Int16.self), toByteOffset: i &* 2, as: Int16.self) }
        case .u16:
            for i in 0..<count { out.storeBytes(of: clampedInteger(src[i], UInt16.self), toByteOffset: i &* 2, as: UInt16.self) }
        case .i32:
            for i in 0..<count { out.storeBytes(of: clampedInteger(src[i], Int32.self), toByteOffset: i &* 4, as: Int32.self) }
        case .u32:
            for i in 0..<count { out.storeBytes(of: clampedInteger(src[i], UInt32.self), toByteOffset: i &* 4, as: UInt32.self) }
        case .i64:
            for i in 0..<count { out.storeBytes(of: clampedInteger(src[i], Int64.self), toByteOffset: i &* 8, as: Int64.self) }
        case .u64:
            for i in 0..<count { out.storeBytes(of: clampedInteger(src[i], UInt64.self), toByteOffset: i &* 8, as: UInt64.self) }
        case .c64, .f4, .f6e2m3, .f6e3m2:
            preconditionFailure("unreachable: \(dtype) has no Float view")
        }
    }
}
