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
    /// The result is bit-identical to the element-by-element definition, `referenceDecode`:
    /// 16-bit floats go through branch-free bit kernels (`FloatKernels`) that the compiler
    /// vectorizes, 8-bit floats through their 256-entry tables, integers through plain converting
    /// loops; `f32`, `f64` and the 64-bit/unsigned 32-bit integers use the reference loop.
    /// - Precondition: `dtype.isConvertibleToFloat`, `source` holds at least `count` elements and
    ///   `destination.count >= count`.
    public static func decode(
        _ source: UnsafeRawBufferPointer, dtype: DType, count: Int,
        into destination: UnsafeMutableBufferPointer<Float>
    ) {
        precondition(dtype.isConvertibleToFloat, "\(dtype) has no Float view")
        precondition(destination.count >= count)
        guard count > 0, let base = source.baseAddress, let out = destination.baseAddress else { return }
        let width = dtype.bitWidth / 8
        precondition(source.count / width >= count, "source holds fewer than \(count) \(dtype) elements")
        let handled = switch dtype {
        case .f16: decodeElements(base, out, count) { FloatKernels.float32Bits(fromFloat16Bits: $0) }
        case .bf16: decodeElements(base, out, count) { (bits: UInt16) in UInt32(bits) &<< 16 }
        case .u8: decodeElements(base, out, count) { (value: UInt8) in Float(value).bitPattern }
        case .i8: decodeElements(base, out, count) { (value: Int8) in Float(value).bitPattern }
        case .u16: decodeElements(base, out, count) { (value: UInt16) in Float(value).bitPattern }
        case .i16: decodeElements(base, out, count) { (value: Int16) in Float(value).bitPattern }
        case .i32: decodeElements(base, out, count) { (value: Int32) in Float(value).bitPattern }
        case .bool: decodeElements(base, out, count) { (value: UInt8) in value != 0 ? Float(1).bitPattern : 0 }
        case .f8e4m3: decodeByTable(base, out, count, e4m3Table)
        case .f8e5m2: decodeByTable(base, out, count, e5m2Table)
        case .f8e4m3fnuz: decodeByTable(base, out, count, e4m3fnuzTable)
        case .f8e5m2fnuz: decodeByTable(base, out, count, e5m2fnuzTable)
        case .f8e8m0: decodeByTable(base, out, count, e8m0Table)
        default: false
        }
        if !handled { referenceDecode(source, dtype: dtype, count: count, into: destination) }
    }

    /// Encodes `source` as elements of `dtype` into `destination`.
    ///
    /// Floats round to nearest even. Integers round to nearest and clamp to the type's range;
    /// NaN becomes 0. Booleans are `value != 0`. `destination` may be unaligned.
    /// The result is bit-identical to the element-by-element definition, `referenceEncode`: every
    /// type but `f32` and `f64` goes through a branch-free bit kernel (`FloatKernels`) applied in
    /// a loop the compiler vectorizes; `f32` is a copy and `f64` uses the reference loop.
    /// - Precondition: `destination` holds at least `source.count` elements of `dtype`.
    public static func encode(
        _ source: UnsafeBufferPointer<Float>, as dtype: DType,
        into destination: UnsafeMutableRawBufferPointer
    ) {
        precondition(dtype.isConvertibleToFloat, "\(dtype) has no Float view")
        let count = source.count
        guard count > 0, let out = destination.baseAddress, let src = source.baseAddress else { return }
        precondition(destination.count >= dtype.byteCount(elementCount: count) ?? Int.max)
        typealias K = FloatKernels
        let handled = switch dtype {
        case .f16: encodeElements(src, out, count) { K.float16Bits(fromFloat32Bits: $0) }
        case .bf16: encodeElements(src, out, count) { K.bfloat16Bits(fromFloat32Bits: $0) }
        case .f8e4m3: encodeElements(src, out, count) { K.minifloatCode($0, mantissaBits: 3, bias: 7, maxFiniteMagnitude: 0x7E, hasInfinity: false, isFNUZ: false) }
        case .f8e5m2: encodeElements(src, out, count) { K.minifloatCode($0, mantissaBits: 2, bias: 15, maxFiniteMagnitude: 0x7B, hasInfinity: true, isFNUZ: false) }
        case .f8e4m3fnuz: encodeElements(src, out, count) { K.minifloatCode($0, mantissaBits: 3, bias: 8, maxFiniteMagnitude: 0x7F, hasInfinity: false, isFNUZ: true) }
        case .f8e5m2fnuz: encodeElements(src, out, count) { K.minifloatCode($0, mantissaBits: 2, bias: 16, maxFiniteMagnitude: 0x7F, hasInfinity: false, isFNUZ: true) }
        case .f8e8m0: encodeElements(src, out, count) { K.e8m0Code(fromFloat32Bits: $0) }
        case .u8: encodeElements(src, out, count) { UInt8(truncatingIfNeeded: K.roundedInteger($0, lowerBound: 0, upperBound: 255)) }
        case .i8: encodeElements(src, out, count) { Int8(truncatingIfNeeded: K.roundedInteger($0, lowerBound: -128, upperBound: 127)) }
        case .u16: encodeElements(src, out, count) { UInt16(truncatingIfNeeded: K.roundedInteger($0, lowerBound: 0, upperBound: 65535)) }
        case .i16: encodeElements(src, out, count) { Int16(truncatingIfNeeded: K.roundedInteger($0, lowerBound: -32768, upperBound: 32767)) }
        case .bool: encodeElements(src, out, count) { (bits: UInt32) -> UInt8 in bits & 0x7FFF_FFFF != 0 ? 1 : 0 }
        case .i32: encodeElements(src, out, count) { K.wideInteger($0, Int32.self, lowerBound: -0x1p31, upperBound: 0x1p31) }
        case .u32: encodeElements(src, out, count) { K.wideInteger($0, UInt32.self, lowerBound: 0, upperBound: 0x1p32) }
        case .i64: encodeElements(src, out, count) { K.wideInteger($0, Int64.self, lowerBound: -0x1p63, upperBound: 0x1p63) }
        case .u64: encodeElements(src, out, count) { K.wideInteger($0, UInt64.self, lowerBound: 0, upperBound: 0x1p64) }
        default: false
        }
        if !handled { referenceEncode(source, as: dtype, into: destination) }
    }

    /// Applies `kernel` to each of `count` raw elements at `source` (any alignment) and stores
    /// the `Float` bit patterns it returns. Returns `true` (it handles every element).
    ///
    /// The loop is branch-free when `kernel` is, so the compiler vectorizes it; unaligned vector
    /// loads cost the same as aligned ones on x86-64 and arm64, so one loop serves every offset.
    @inline(__always)
    static func decodeElements<Element: FixedWidthInteger & BitwiseCopyable>(
        _ source: UnsafeRawPointer, _ destination: UnsafeMutablePointer<Float>, _ count: Int,
        _ kernel: (Element) -> UInt32
    ) -> Bool {
        let out = UnsafeMutableRawPointer(destination)
        let stride = MemoryLayout<Element>.size
        for index in 0..<count {
            let element = source.loadUnaligned(fromByteOffset: index &* stride, as: Element.self)
            out.storeBytes(of: kernel(element), toByteOffset: index &* 4, as: UInt32.self)
        }
        return true
    }

    /// Applies `kernel` to the bit pattern of each of the `count` floats at `source` and stores
    /// the elements it returns at `destination` (any alignment). Returns `true`.
    @inline(__always)
    static func encodeElements<Encoded: FixedWidthInteger & BitwiseCopyable>(
        _ source: UnsafePointer<Float>, _ destination: UnsafeMutableRawPointer, _ count: Int,
        _ kernel: (UInt32) -> Encoded
    ) -> Bool {
        let input = UnsafeRawPointer(source)
        let stride = MemoryLayout<Encoded>.size
        for index in 0..<count {
            let bits = input.loadUnaligned(fromByteOffset: index &* 4, as: UInt32.self)
            destination.storeBytes(of: kernel(bits), toByteOffset: index &* stride, as: Encoded.self)
        }
        return true
    }

    /// Decodes one-byte codes through a 256-entry table. Returns `true`.
    @inline(__always)
    static func decodeByTable(
        _ source: UnsafeRawPointer, _ destination: UnsafeMutablePointer<Float>, _ count: Int,
        _ table: [Float]
    ) -> Bool {
        let codes = source.assumingMemoryBound(to: UInt8.self)
        table.withUnsafeBufferPointer { lookup in
            let entries = lookup.baseAddress!
            for index in 0..<count { destination[index] = entries[Int(codes[index])] }
        }
        return true
    }

    // MARK: Scalar reference

    /// The element-by-element definition of `decode(_:dtype:count:into:)`: the fast kernels must
    /// match it bit for bit (the tests compare them on every 16-bit pattern and millions of
    /// `Float` patterns), and it converts the types without a kernel.
    ///
    /// `source` may be unaligned. Integers convert to the nearest `Float`; booleans to 0 or 1.
    /// - Precondition: `dtype.isConvertibleToFloat`, `source` holds at least `count` elements and
    ///   `destination.count >= count`.
    static func referenceDecode(
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
            for i in 0..<count { out[i] = float(fromFloat16: base.loadUnaligned(fromByteOffset: i &* 2, as: UInt16.self)) }
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

    /// The element-by-element definition of `encode(_:as:into:)`, which the fast kernels must
    /// match bit for bit; it also encodes their tails and the types without a kernel.
    ///
    /// Floats round to nearest even. Integers round to nearest and clamp to the type's range;
    /// NaN becomes 0. Booleans are `value != 0`.
    /// - Precondition: `destination` holds at least `source.count` elements of `dtype`.
    static func referenceEncode(
        _ source: UnsafeBufferPointer<Float>, as dtype: DType,
        into destination: UnsafeMutableRawBufferPointer
    ) {
        precondition(dtype.isConvertibleToFloat, "\(dtype) has no Float view")
        let count = source.count
        guard count > 0, let out = destination.baseAddress, let src = source.baseAddress else { return }
        precondition(destination.count >= dtype.byteCount(elementCount: count) ?? Int.max)
        switch dtype {
        case .f32:
            UnsafeMutableRawPointer(out).copyMemory(from: src, byteCount: count * 4)
        case .f16:
            for i in 0..<count { out.storeBytes(of: float16Bits(from: src[i]), toByteOffset: i &* 2, as: UInt16.self) }
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

    /// Rounds `value` to nearest even and clamps it to `T`'s range; NaN becomes 0.
    @inline(__always)
    static func clampedInteger<T: FixedWidthInteger>(_ value: Float, _: T.Type) -> T {
        guard !value.isNaN else { return 0 }
        let rounded = value.rounded(.toNearestOrEven)
        if rounded <= Float(T.min) { return T.min }
        if rounded >= Float(T.max) { return T.max }
        return T(rounded)
    }

    /// The IEEE binary16 bit pattern nearest to `value` (the platform's `Float16` conversion).
    static func float16Bits(from value: Float) -> UInt16 { Float16(value).bitPattern }

    /// The `Float` value of the IEEE binary16 bit pattern `bits` (the platform's conversion).
    static func float(fromFloat16 bits: UInt16) -> Float { Float(Float16(bitPattern: bits)) }
}

/// Branch-free bit-pattern kernels behind `FloatCodec.decode` and `FloatCodec.encode`.
///
/// Each kernel maps one element's bits with integer arithmetic and selects, using a float add
/// only where IEEE round-to-nearest-even does exactly the rounding wanted, so it equals the
/// scalar reference bit for bit (NaN payloads, subnormals and ties included). Having no
/// branches, the loops that apply them are vectorized by the compiler (four to eight lanes).
/// Narrowing uses the classic rebias-and-round scheme (F. Giesen, "half to float done quic",
/// 2012): rebias the exponent, add half an ulp of the target minus one plus the lowest kept
/// bit (ties to even), shift; a target's subnormals come from adding a power of two whose ulp
/// is the target's subnormal quantum, so the FPU rounds.
enum FloatKernels {
    /// binary16 → binary32 bits. Normal numbers rebias the exponent (+112); Inf/NaN keep an
    /// all-ones exponent and the payload, and NaNs come out quiet, as in the platform's
    /// conversion; subnormals are `m × 2^-24`, computed exactly as `2^-14 · (1 + m/1024) − 2^-14`.
    @inline(__always)
    static func float32Bits(fromFloat16Bits half: UInt16) -> UInt32 {
        let bits = UInt32(half)
        let sign = (bits & 0x8000) &<< 16
        let magnitude = (bits & 0x7FFF) &<< 13
        let exponent = magnitude & 0x0F80_0000
        let rebiased = magnitude &+ 0x3800_0000
        // Inf/NaN: all-ones exponent; a NaN is quieted (top mantissa bit set), as the platform does.
        let quiet: UInt32 = magnitude & 0x007F_FFFF != 0 ? 0x0040_0000 : 0
        let special = exponent == 0x0F80_0000 ? (rebiased &+ 0x3800_0000) | quiet : rebiased
        let subnormal = (Float(bitPattern: magnitude &+ 0x3880_0000) - Float(bitPattern: 0x3880_0000)).bitPattern
        return (exponent == 0 ? subnormal : special) | sign
    }

    /// binary32 → binary16 bits, rounding to nearest even. Overflow (≥ 65520) and Inf give Inf;
    /// NaN gives a quiet NaN keeping the top nine payload bits.
    @inline(__always)
    static func float16Bits(fromFloat32Bits bits: UInt32) -> UInt16 {
        let sign = (bits &>> 16) & 0x8000
        let magnitude = bits & 0x7FFF_FFFF
        let rebiased = magnitude &- 0x3800_0000
        let normal = (rebiased &+ 0x0FFF &+ ((rebiased &>> 13) & 1)) &>> 13
        // Below 2^-14 the target is subnormal: in x + 0.5 the ulp is 2^-24.
        let subnormal = (Float(bitPattern: magnitude) + 0.5).bitPattern &- 0x3F00_0000
        var result = magnitude < 0x3880_0000 ? subnormal : normal
        result = magnitude >= 0x4780_0000 ? 0x7C00 : result
        result = magnitude > 0x7F80_0000 ? 0x7E00 | ((magnitude &>> 13) & 0x01FF) : result
        return UInt16(truncatingIfNeeded: result | sign)
    }

    /// binary32 → bfloat16 bits, exactly `FloatCodec.bfloat16Bits(from:)` without its branch.
    @inline(__always)
    static func bfloat16Bits(fromFloat32Bits bits: UInt32) -> UInt16 {
        let rounded = (bits &+ 0x7FFF &+ ((bits &>> 16) & 1)) &>> 16
        let quietNaN = (bits &>> 16) | 0x0040
        return UInt16(truncatingIfNeeded: bits & 0x7FFF_FFFF > 0x7F80_0000 ? quietNaN : rounded)
    }

    /// Rounds to nearest even and clamps to `lowerBound...upperBound` (integers of magnitude
    /// below 2^22), as two's-complement bits; NaN gives 0. Clamping first is exact because both
    /// bounds are integers; the rounding is the FPU's, in 1.5 × 2^23 + x whose ulp is 1.
    @inline(__always)
    static func roundedInteger(_ bits: UInt32, lowerBound: Float, upperBound: Float) -> UInt32 {
        let value = Float(bitPattern: bits)
        var clamped = value < lowerBound ? lowerBound : value
        clamped = clamped > upperBound ? upperBound : clamped
        let rounded = (clamped + 12_582_912).bitPattern &- 0x4B40_0000
        return bits & 0x7FFF_FFFF > 0x7F80_0000 ? 0 : rounded
    }

    /// `value` rounded to the nearest integer, ties to even, keeping its sign: below 2^23 in
    /// magnitude the FPU rounds `|value| + 2^23` (whose ulp is 1); above, every `Float` is an
    /// integer already, and NaN stays NaN.
    @inline(__always)
    static func roundedToNearestEven(_ value: Float) -> Float {
        let magnitude = value.magnitude
        let rounded = magnitude < 8_388_608 ? (magnitude + 8_388_608) - 8_388_608 : magnitude
        return Float(bitPattern: rounded.bitPattern | (value.bitPattern & 0x8000_0000))
    }

    /// The 32- or 64-bit integer nearest to the float with `bits` (ties to even), clamped to
    /// `T`'s range, whose bounds as `Float` are `lowerBound` and `upperBound`; NaN gives 0.
    @inline(__always)
    static func wideInteger<T: FixedWidthInteger>(
        _ bits: UInt32, _: T.Type, lowerBound: Float, upperBound: Float
    ) -> T {
        let value = Float(bitPattern: bits)
        if value.isNaN { return 0 }
        let rounded = roundedToNearestEven(value)
        if rounded <= lowerBound { return T.min }
        if rounded >= upperBound { return T.max }
        return T.isSigned ? T(truncatingIfNeeded: Int64(rounded)) : T(truncatingIfNeeded: UInt64(rounded))
    }

    /// binary32 → 8-bit float code, exactly `FloatCodec.MinifloatFormat.encode` for the format
    /// with `mantissaBits` and `bias` (pass constants: the branches on them fold away).
    ///
    /// Normal targets rebias and round at bit 23 − `mantissaBits`; targets below the smallest
    /// normal add 2^(24 − bias − mantissaBits), whose ulp is the target's subnormal quantum.
    /// Codes past `maxFiniteMagnitude` become ±Inf or the NaN code (non-saturating), zeros
    /// lose their sign in FNUZ formats, and NaN maps to the format's NaN.
    @inline(__always)
    static func minifloatCode(
        _ bits: UInt32, mantissaBits: UInt32, bias: UInt32, maxFiniteMagnitude: UInt32,
        hasInfinity: Bool, isFNUZ: Bool
    ) -> UInt8 {
        let magnitude = bits & 0x7FFF_FFFF
        let signBit = (bits &>> 24) & 0x80
        let shift = 23 &- mantissaBits
        let rebiased = magnitude &- ((127 &- bias) &<< 23)
        let normal = (rebiased &+ ((1 &<< (shift &- 1)) &- 1) &+ ((rebiased &>> shift) & 1)) &>> shift
        let magic = Float(bitPattern: (127 &+ 24 &- bias &- mantissaBits) &<< 23)  // 2^(24 − bias − m)
        let subnormal = (Float(bitPattern: magnitude) + magic).bitPattern &- magic.bitPattern
        let code = magnitude < (128 &- bias) &<< 23 ? subnormal : normal
        var result = signBit | code
        if isFNUZ { result = code == 0 ? 0 : result }
        let infinityCode: UInt32 = (0x7F &>> mantissaBits) &<< mantissaBits
        let overflow: UInt32 = hasInfinity ? signBit | infinityCode : (isFNUZ ? 0x80 : 0x7F)
        result = code > maxFiniteMagnitude ? overflow : result
        let nan: UInt32 = isFNUZ ? 0x80 : signBit | 0x7F
        return UInt8(truncatingIfNeeded: magnitude > 0x7F80_0000 ? nan : result)
    }

    /// binary32 → E8M0 code, exactly `FloatCodec.encodeE8M0`: the exponent field, plus one when
    /// the significand is at least √2 (the first `Float` significand above √2 has mantissa bits
    /// 0x3504F4), at most 254; float subnormals give 0, or 1 from √2 × 2^-127 (mantissa
    /// 0x5A827A) up; zero, negatives, Inf and NaN give 0xFF.
    @inline(__always)
    static func e8m0Code(fromFloat32Bits bits: UInt32) -> UInt8 {
        let magnitude = bits & 0x7FFF_FFFF
        let mantissa = magnitude & 0x007F_FFFF
        let exponent = magnitude &>> 23
        var result = exponent &+ (mantissa >= 0x3504F4 ? 1 : 0)
        result = result > 254 ? 254 : result
        result = exponent == 0 ? (mantissa >= 0x5A827A ? 1 : 0) : result
        // Zero wraps to 0xFFFF_FFFF; negatives, Inf and NaN are at least 0x7F80_0000 already.
        return UInt8(truncatingIfNeeded: bits &- 1 >= 0x7F7F_FFFF ? 0xFF : result)
    }
}
