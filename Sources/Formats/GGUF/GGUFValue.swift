import QPKCore
/// The value types of GGUF metadata, numbered as in the GGUF spec (`gguf_type`).
public enum GGUFValueType: UInt32, Sendable, CaseIterable {
    case uint8 = 0, int8 = 1, uint16 = 2, int16 = 3, uint32 = 4, int32 = 5, float32 = 6, bool = 7
    case string = 8, array = 9, uint64 = 10, int64 = 11, float64 = 12

    /// The size of one value in bytes, `nil` for strings and arrays (length-prefixed).
    public var fixedSize: Int? {
        switch self {
        case .uint8, .int8, .bool: 1
        case .uint16, .int16: 2
        case .uint32, .int32, .float32: 4
        case .uint64, .int64, .float64: 8
        case .string, .array: nil
        }
    }

    /// The fewest bytes one value can take (a string's or array's length prefix included).
    var minimumSize: Int {
        switch self {
        case .string: 8
        case .array: 12
        default: fixedSize ?? 1
        }
    }
}

/// One typed GGUF metadata value.
public enum GGUFValue: Sendable, Equatable {
    case uint8(UInt8), int8(Int8), uint16(UInt16), int16(Int16), uint32(UInt32), int32(Int32)
    case float32(Float), bool(Bool), string(String), uint64(UInt64), int64(Int64), float64(Double)
    /// An array: the element type and the elements (all of that type).
    indirect case array(GGUFValueType, [GGUFValue])

    public var type: GGUFValueType {
        switch self {
        case .uint8: .uint8
        case .int8: .int8
        case .uint16: .uint16
        case .int16: .int16
        case .uint32: .uint32
        case .int32: .int32
        case .float32: .float32
        case .bool: .bool
        case .string: .string
        case .uint64: .uint64
        case .int64: .int64
        case .float64: .float64
        case .array: .array
        }
    }

    /// The value as an unsigned integer, if it is a non-negative integer of any width.
    public var unsignedValue: UInt64? {
        switch self {
        case let .uint8(v): UInt64(v)
        case let .uint16(v): UInt64(v)
        case let .uint32(v): UInt64(v)
        case let .uint64(v): v
        case let .int8(v): v >= 0 ? UInt64(v) : nil
        case let .int16(v): v >= 0 ? UInt64(v) : nil
        case let .int32(v): v >= 0 ? UInt64(v) : nil
        case let .int64(v): v >= 0 ? UInt64(v) : nil
        default: nil
        }
    }

    /// How `qpk inspect` shows the value on one line: scalars as text, short arrays in full,
    /// long arrays as their length and element type plus the first few elements.
    public var summary: String {
        switch self {
        case let .uint8(v): String(v)
        case let .int8(v): String(v)
        case let .uint16(v): String(v)
        case let .int16(v): String(v)
        case let .uint32(v): String(v)
        case let .int32(v): String(v)
        case let .uint64(v): String(v)
        case let .int64(v): String(v)
        case let .float32(v): String(v)
        case let .float64(v): String(v)
        case let .bool(v): String(v)
        case let .string(v): v
        case let .array(elementType, values):
            Self.arraySummary(elementType, values)
        }
    }

    private static let shownElements = 8

    private static func arraySummary(_ elementType: GGUFValueType, _ values: [GGUFValue]) -> String {
        func element(_ value: GGUFValue) -> String {
            if case let .string(text) = value { return "\"\(text)\"" }
            return value.summary
        }
        if values.count <= shownElements {
            return "[" + values.map(element).joined(separator: ", ") + "]"
        }
        let head = values.prefix(shownElements).map(element).joined(separator: ", ")
        return "[\(values.count) × \(elementType): \(head), …]"
    }
}
