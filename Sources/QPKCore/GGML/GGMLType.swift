/// A ggml tensor element type, as stored in a GGUF tensor info (`ggml_type`, numbered as in
/// ggml.h and the `gguf` Python package's `GGMLQuantizationType`).
///
/// Plain types store one element per value; block types store `blockSize` consecutive values of
/// a row in `typeSize` bytes (spec/gguf.md §5). ``layout`` is the one table of those sizes.
public enum GGMLType: UInt32, CaseIterable, Sendable, Codable {
    case f32 = 0
    case f16 = 1
    case q4_0 = 2
    case q4_1 = 3
    case q5_0 = 6
    case q5_1 = 7
    case q8_0 = 8
    case q8_1 = 9
    case q2_K = 10
    case q3_K = 11
    case q4_K = 12
    case q5_K = 13
    case q6_K = 14
    case q8_K = 15
    case iq2_XXS = 16
    case iq2_XS = 17
    case iq3_XXS = 18
    case iq1_S = 19
    case iq4_NL = 20
    case iq3_S = 21
    case iq2_S = 22
    case iq4_XS = 23
    case i8 = 24
    case i16 = 25
    case i32 = 26
    case i64 = 27
    case f64 = 28
    case iq1_M = 29
    case bf16 = 30
    case tq1_0 = 34
    case tq2_0 = 35
    case mxfp4 = 39
    case nvfp4 = 40
    case q1_0 = 41

    /// Values per block and bytes per block (1 value for plain types). K-quants use 256-value
    /// super-blocks (`QK_K`).
    public var layout: (blockSize: Int, typeSize: Int) {
        switch self {
        case .f32: (1, 4)
        case .f16, .bf16: (1, 2)
        case .q4_0: (32, 18)
        case .q4_1: (32, 20)
        case .q5_0: (32, 22)
        case .q5_1: (32, 24)
        case .q8_0: (32, 34)
        case .q8_1: (32, 40)
        case .q2_K: (256, 84)
        case .q3_K: (256, 110)
        case .q4_K: (256, 144)
        case .q5_K: (256, 176)
        case .q6_K: (256, 210)
        case .q8_K: (256, 292)
        case .iq2_XXS: (256, 66)
        case .iq2_XS: (256, 74)
        case .iq3_XXS: (256, 98)
        case .iq1_S: (256, 50)
        case .iq4_NL: (32, 18)
        case .iq3_S: (256, 110)
        case .iq2_S: (256, 82)
        case .iq4_XS: (256, 136)
        case .i8: (1, 1)
        case .i16: (1, 2)
        case .i32: (1, 4)
        case .i64, .f64: (1, 8)
        case .iq1_M: (256, 56)
        case .tq1_0: (256, 54)
        case .tq2_0: (256, 66)
        case .mxfp4: (32, 17)
        case .nvfp4: (64, 36)
        case .q1_0: (128, 18)
        }
    }

    public var blockSize: Int { layout.blockSize }
    public var typeSize: Int { layout.typeSize }

    /// The name ggml and llama.cpp print (`F32`, `Q4_0`, `Q4_K`, `IQ4_NL`, …).
    public var name: String {
        switch self {
        case .q2_K: "Q2_K"
        case .q3_K: "Q3_K"
        case .q4_K: "Q4_K"
        case .q5_K: "Q5_K"
        case .q6_K: "Q6_K"
        case .q8_K: "Q8_K"
        case .iq2_XXS: "IQ2_XXS"
        case .iq2_XS: "IQ2_XS"
        case .iq3_XXS: "IQ3_XXS"
        case .iq1_S: "IQ1_S"
        case .iq4_NL: "IQ4_NL"
        case .iq3_S: "IQ3_S"
        case .iq2_S: "IQ2_S"
        case .iq4_XS: "IQ4_XS"
        case .iq1_M: "IQ1_M"
        default: String(describing: self).uppercased()
        }
    }

    /// Parses a type name, case-insensitively (`q4_0`, `Q4_K`, `iq4_nl`, `f16`).
    public init?(name: String) {
        guard let match = GGMLType.allCases.first(where: { $0.name.lowercased() == name.lowercased() }) else {
            return nil
        }
        self = match
    }

    /// The qpk dtype of a plain type (one element per value), `nil` for block types.
    public var plainDType: DType? {
        switch self {
        case .f32: .f32
        case .f16: .f16
        case .bf16: .bf16
        case .f64: .f64
        case .i8: .i8
        case .i16: .i16
        case .i32: .i32
        case .i64: .i64
        default: nil
        }
    }

    /// The ggml type that stores `dtype` unchanged, if GGUF has one.
    public init?(plain dtype: DType) {
        guard let match = GGMLType.allCases.first(where: { $0.plainDType == dtype }) else { return nil }
        self = match
    }

    /// Whether values are stored in blocks of several values with shared parameters.
    public var isBlockQuantized: Bool { plainDType == nil }

    /// Whether qpk can turn the stored blocks into floats (``GGMLBlockDecoder``). Other block
    /// types are listed by inspect and validate but their values cannot be read.
    public var isDecodable: Bool {
        switch self {
        case .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K, .iq4_NL, .iq4_XS:
            true
        default:
            !isBlockQuantized
        }
    }

    /// The nominal bits of one code of a block type (4 for Q4_0 and Q4_K, 6 for Q6_K, …).
    public var codeBits: Int {
        switch self {
        case .q1_0: 1
        case .q2_K, .iq2_XXS, .iq2_XS, .iq2_S, .tq2_0, .iq1_S, .iq1_M, .tq1_0: 2
        case .q3_K, .iq3_XXS, .iq3_S: 3
        case .q4_0, .q4_1, .q4_K, .iq4_NL, .iq4_XS, .mxfp4, .nvfp4: 4
        case .q5_0, .q5_1, .q5_K: 5
        case .q6_K: 6
        case .q8_0, .q8_1, .q8_K: 8
        default: plainDType?.bitWidth ?? 0
        }
    }

    /// Whether a block also stores a minimum (value = d·q + m), as opposed to a symmetric scale.
    public var hasMinimum: Bool {
        switch self {
        case .q4_1, .q5_1, .q2_K, .q4_K, .q5_K: true
        default: false
        }
    }

    /// The bytes that `rowLength` values of a row take, or `nil` when the row is not a whole
    /// number of blocks or the size overflows.
    public func rowByteCount(_ rowLength: Int) -> Int? {
        let (blockSize, typeSize) = layout
        guard rowLength >= 0, rowLength % blockSize == 0 else { return nil }
        let (bytes, overflow) = (rowLength / blockSize).multipliedReportingOverflow(by: typeSize)
        return overflow ? nil : bytes
    }

    /// The bytes a tensor of `elementCount` values takes (rows must be whole blocks).
    public func byteCount(elementCount: Int) -> Int? {
        rowByteCount(elementCount)
    }
}
