import QPKCore

/// One HDF5 attribute, in the lossless JSON form qpk carries in checkpoint metadata.
///
/// The form (documented in spec/hdf5-mapping.md) records the value *and* everything needed to
/// recreate the exact HDF5 datatype and dataspace:
///
/// ```json
/// {"type": "string", "shape": [2], "value": ["dense", "dense_1"],
///  "charset": "ascii", "length": 7, "padding": "nullpad"}
/// {"type": "string", "shape": [], "value": "tensorflow", "charset": "utf-8", "padding": "nullterm"}
/// {"type": "int64", "shape": [3], "value": [1, 2, 3]}
/// {"type": "float64", "shape": [0], "value": []}
/// ```
///
/// - `type`: `string`, `bool` (h5py's enum), `int8` … `int64`, `uint8` … `uint64`, `float16`,
///   `float32`, `float64`, or `opaque` (values as lower-case hex, one string per element).
/// - `shape`: the dataspace dimensions; `[]` is a scalar and a missing `shape` is a null
///   dataspace (h5py's `Empty`), whose `value` is `null`.
/// - `value`: a scalar for shape `[]`, otherwise the elements flattened in row-major order.
///   Non-finite floats are the strings `"NaN"`, `"Infinity"`, `"-Infinity"`.
/// - strings: `charset` (`ascii` or `utf-8`), `padding` (`nullterm`, `nullpad`, `spacepad`) and
///   `length`, the fixed size in bytes; no `length` means variable-length strings. Fixed-length
///   values are stored without their trailing NUL padding.
/// - `byteOrder: "big"` for big-endian numbers (little-endian is the default and omitted);
///   `tag` and `size` for opaque values.
public struct HDF5Attribute: Codable, Equatable, Sendable {
    public enum Values: Equatable, Sendable {
        case strings([String])
        case integers([Int64])
        case unsignedIntegers([UInt64])
        case floats([Double])
        case bools([Bool])
        case hex([String])

        var count: Int {
            switch self {
            case let .strings(v): v.count
            case let .integers(v): v.count
            case let .unsignedIntegers(v): v.count
            case let .floats(v): v.count
            case let .bools(v): v.count
            case let .hex(v): v.count
            }
        }
    }

    public var type: String
    /// `nil` for a null dataspace.
    public var shape: [Int]?
    public var values: Values
    public var charset: String?
    public var length: Int?
    public var padding: String?
    public var byteOrder: String?
    public var tag: String?
    public var size: Int?

    public init(
        type: String, shape: [Int]?, values: Values, charset: String? = nil, length: Int? = nil,
        padding: String? = nil, byteOrder: String? = nil, tag: String? = nil, size: Int? = nil
    ) {
        self.type = type
        self.shape = shape
        self.values = values
        self.charset = charset
        self.length = length
        self.padding = padding
        self.byteOrder = byteOrder
        self.tag = tag
        self.size = size
    }

    /// A scalar variable-length UTF-8 string, the type h5py gives a Python `str`.
    public static func string(_ value: String) -> HDF5Attribute {
        HDF5Attribute(type: "string", shape: [], values: .strings([value]), charset: "utf-8", padding: "nullterm")
    }

    /// The string elements, whatever the encoding (empty for non-strings).
    public var strings: [String] {
        if case let .strings(v) = values { return v }
        return []
    }

    /// Whether this is a scalar variable-length UTF-8 string (the form plain metadata keys take).
    var isPlainString: Bool {
        type == "string" && shape == [] && length == nil && charset == "utf-8" && padding == "nullterm"
            && byteOrder == nil
    }

    private enum CodingKeys: String, CodingKey {
        case type, shape, value, charset, length, padding, byteOrder, tag, size
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        type = try c.decode(String.self, forKey: .type)
        shape = try c.decodeIfPresent([Int].self, forKey: .shape)
        charset = try c.decodeIfPresent(String.self, forKey: .charset)
        length = try c.decodeIfPresent(Int.self, forKey: .length)
        padding = try c.decodeIfPresent(String.self, forKey: .padding)
        byteOrder = try c.decodeIfPresent(String.self, forKey: .byteOrder)
        tag = try c.decodeIfPresent(String.self, forKey: .tag)
        size = try c.decodeIfPresent(Int.self, forKey: .size)
        let shape = self.shape
        func decodeList<T: Decodable>(_: T.Type) throws -> [T] {
            guard let shape else { return [] }
            return shape.isEmpty ? [try c.decode(T.self, forKey: .value)] : try c.decode([T].self, forKey: .value)
        }
        let type = self.type
        switch type {
        case "string": values = .strings(try decodeList(String.self))
        case "bool": values = .bools(try decodeList(Bool.self))
        case "int8", "int16", "int32", "int64": values = .integers(try decodeList(Int64.self))
        case "uint8", "uint16", "uint32", "uint64": values = .unsignedIntegers(try decodeList(UInt64.self))
        case "float16", "float32", "float64": values = .floats(try decodeList(Double.self))
        case "opaque": values = .hex(try decodeList(String.self))
        default:
            throw DecodingError.dataCorruptedError(forKey: .type, in: c, debugDescription: "unknown attribute type \(type)")
        }
        let expected = shape.map { $0.reduce(1, *) } ?? 0
        guard values.count == expected else {
            throw DecodingError.dataCorruptedError(
                forKey: .value, in: c, debugDescription: "\(values.count) values for shape \(shape ?? [])")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(type, forKey: .type)
        try c.encodeIfPresent(shape, forKey: .shape)
        try c.encodeIfPresent(charset, forKey: .charset)
        try c.encodeIfPresent(length, forKey: .length)
        try c.encodeIfPresent(padding, forKey: .padding)
        try c.encodeIfPresent(byteOrder, forKey: .byteOrder)
        try c.encodeIfPresent(tag, forKey: .tag)
        try c.encodeIfPresent(size, forKey: .size)
        guard let shape else {
            try c.encodeNil(forKey: .value)
            return
        }
        func encodeList<T: Encodable>(_ list: [T]) throws {
            if shape.isEmpty, let first = list.first { try c.encode(first, forKey: .value) }
            else { try c.encode(list, forKey: .value) }
        }
        switch values {
        case let .strings(v): try encodeList(v)
        case let .integers(v): try encodeList(v)
        case let .unsignedIntegers(v): try encodeList(v)
        case let .floats(v): try encodeList(v)
        case let .bools(v): try encodeList(v)
        case let .hex(v): try encodeList(v)
        }
    }
}
