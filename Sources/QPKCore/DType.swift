/// An element type of a checkpoint tensor.
///
/// The raw values are the dtype names used by safetensors (crate 0.8), which qpk uses as its own
/// dtype vocabulary in every format (see `../shared/DESIGN.md` §2).
public enum DType: String, CaseIterable, Sendable, Codable, Hashable {
    case bool = "BOOL"
    case f4 = "F4"
    case f6e2m3 = "F6_E2M3"
    case f6e3m2 = "F6_E3M2"
    case u8 = "U8"
    case i8 = "I8"
    case f8e5m2 = "F8_E5M2"
    case f8e4m3 = "F8_E4M3"
    case f8e8m0 = "F8_E8M0"
    case f8e4m3fnuz = "F8_E4M3FNUZ"
    case f8e5m2fnuz = "F8_E5M2FNUZ"
    case i16 = "I16"
    case u16 = "U16"
    case f16 = "F16"
    case bf16 = "BF16"
    case i32 = "I32"
    case u32 = "U32"
    case f32 = "F32"
    case c64 = "C64"
    case f64 = "F64"
    case i64 = "I64"
    case u64 = "U64"

    /// The number of bits one element occupies.
    public var bitWidth: Int {
        switch self {
        case .f4: 4
        case .f6e2m3, .f6e3m2: 6
        case .bool, .u8, .i8, .f8e5m2, .f8e4m3, .f8e8m0, .f8e4m3fnuz, .f8e5m2fnuz: 8
        case .i16, .u16, .f16, .bf16: 16
        case .i32, .u32, .f32: 32
        case .c64, .f64, .i64, .u64: 64
        }
    }

    /// The alignment, in bytes, that the safetensors writer orders tensors by (largest first).
    public var alignment: Int { max(1, bitWidth / 8) }

    /// Whether the elements are real floating-point numbers (the candidates for quantization).
    public var isFloatingPoint: Bool {
        switch self {
        case .f4, .f6e2m3, .f6e3m2, .f8e5m2, .f8e4m3, .f8e8m0, .f8e4m3fnuz, .f8e5m2fnuz,
             .f16, .bf16, .f32, .f64:
            true
        default:
            false
        }
    }

    /// Whether `FloatCodec` can decode elements of this type to `Float` (and encode them back).
    ///
    /// Complex numbers and the sub-byte float formats have no single `Float` value per element.
    public var isConvertibleToFloat: Bool {
        switch self {
        case .c64, .f4, .f6e2m3, .f6e3m2: false
        default: true
        }
    }

    /// The number of bytes `elementCount` elements occupy, or `nil` when a sub-byte type does not
    /// fill a whole number of bytes (safetensors' `MisalignedSlice`) or the count overflows.
    public func byteCount(elementCount: Int) -> Int? {
        let (bits, overflow) = elementCount.multipliedReportingOverflow(by: bitWidth)
        guard !overflow, bits % 8 == 0 else { return nil }
        return bits / 8
    }

    /// The lower-case name used in human output and in numpy (`float32`, `bfloat16`, …).
    public var displayName: String {
        switch self {
        case .bool: "bool"
        case .f4: "float4_e2m1"
        case .f6e2m3: "float6_e2m3"
        case .f6e3m2: "float6_e3m2"
        case .u8: "uint8"
        case .i8: "int8"
        case .f8e5m2: "float8_e5m2"
        case .f8e4m3: "float8_e4m3"
        case .f8e8m0: "float8_e8m0"
        case .f8e4m3fnuz: "float8_e4m3fnuz"
        case .f8e5m2fnuz: "float8_e5m2fnuz"
        case .i16: "int16"
        case .u16: "uint16"
        case .f16: "float16"
        case .bf16: "bfloat16"
        case .i32: "int32"
        case .u32: "uint32"
        case .f32: "float32"
        case .c64: "complex64"
        case .f64: "float64"
        case .i64: "int64"
        case .u64: "uint64"
        }
    }

    /// Parses a user-facing dtype name: `f32`, `float32`, `F32`, `bf16`, `bfloat16`, `f16`, ….
    public init?(userName: String) {
        let lowered = userName.lowercased()
        if let exact = DType(rawValue: userName.uppercased()) {
            self = exact
            return
        }
        if let match = DType.allCases.first(where: { $0.displayName == lowered }) {
            self = match
            return
        }
        switch lowered {
        case "half": self = .f16
        case "float", "single": self = .f32
        case "double": self = .f64
        default: return nil
        }
    }
}
