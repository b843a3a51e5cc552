import QPKCore
/// One tensor as a GGUF file describes it.
public struct GGUFTensorEntry: Sendable, Equatable {
    /// Name, the qpk dtype of the values (F32 for block types, which decode to float) and the
    /// row-major shape: GGUF's `ne` reversed, so ggml `ne = [in, out]` is `[out, in]`.
    public var info: TensorInfo
    public var type: GGMLType
    /// ggml's dimensions, innermost first, as stored.
    public var ne: [Int]
    /// The byte offset relative to the data section, as stored.
    public var offset: Int
    /// The bytes the tensor's data takes.
    public var byteCount: Int
}

/// The parsed, validated front of a GGUF file: header, metadata and tensor infos
/// (spec/gguf.md §2–§4), with every rule of §7 checked.
public struct GGUFHeader: Sendable {
    public static let magic: [UInt8] = Array("GGUF".utf8)
    /// The alignment when `general.alignment` is absent.
    public static let defaultAlignment = 32
    public static let alignmentKey = "general.alignment"
    /// The longest metadata array qpk reads (2²⁴ elements).
    public static let maximumArrayLength: UInt64 = 1 << 24
    /// ggml's `GGML_MAX_DIMS`.
    public static let maximumDimensions: UInt32 = 4

    public var version: UInt32
    /// Metadata in file order.
    public var keyValues: [(key: String, value: GGUFValue)]
    /// Tensors in file order.
    public var tensors: [GGUFTensorEntry]
    public var alignment: Int
    /// The absolute offset of the data section (the end of the tensor infos, aligned).
    public var dataStart: Int

    /// Parses and validates the front of `bytes` and checks every tensor's data range.
    /// - Throws: ``GGUFError`` naming the first rule broken.
    public static func parse(_ bytes: UnsafeRawBufferPointer, path: String) throws -> GGUFHeader {
        var cursor = Cursor(bytes: bytes, path: path)
        guard bytes.count >= 4, Array(bytes.prefix(4)) == magic else { throw GGUFError.badMagic(path: path) }
        cursor.offset = 4
        let version = try cursor.u32("the header")
        guard version == 2 || version == 3 else { throw GGUFError.unsupportedVersion(path: path, version: version) }
        let tensorCount = try cursor.u64("the header")
        let kvCount = try cursor.u64("the header")
        // Smallest entries: a KV is a key length, a type and a 1-byte value (13 bytes); a tensor
        // info is a name length, a dimension count, a type and an offset (24 bytes).
        let remaining = UInt64(bytes.count - cursor.offset)
        guard kvCount <= remaining / 13 else {
            throw GGUFError.countBeyondFile(path: path, what: "metadata key-value pairs", count: kvCount)
        }
        guard tensorCount <= remaining / 24 else {
            throw GGUFError.countBeyondFile(path: path, what: "tensors", count: tensorCount)
        }
        var keyValues: [(key: String, value: GGUFValue)] = []
        keyValues.reserveCapacity(Int(kvCount))
        var keys = Set<String>()
        for index in 0..<Int(kvCount) {
            let key = try cursor.string("the key of metadata pair \(index)", tensor: nil)
            guard keys.insert(key).inserted else { throw GGUFError.duplicateKey(path: path, key: key) }
            let rawType = try cursor.u32("the value of metadata key '\(key)'")
            guard let type = GGUFValueType(rawValue: rawType) else {
                throw GGUFError.unknownValueType(path: path, key: key, type: rawType)
            }
            keyValues.append((key, try cursor.value(type, key: key)))
        }
        let alignment = try Self.alignment(keyValues, path: path)
        var tensors: [GGUFTensorEntry] = []
        tensors.reserveCapacity(Int(tensorCount))
        var names = Set<String>()
        for index in 0..<Int(tensorCount) {
            tensors.append(try cursor.tensorInfo(index: index, names: &names))
        }
        let (alignedEnd, overflow) = cursor.offset.addingReportingOverflow((alignment - cursor.offset % alignment) % alignment)
        let dataStart = overflow ? Int.max : alignedEnd
        let header = GGUFHeader(
            version: version, keyValues: keyValues, tensors: tensors, alignment: alignment, dataStart: dataStart)
        try header.checkDataRanges(fileSize: bytes.count, path: path)
        return header
    }

    /// The absolute byte range of `entry`'s data.
    public func range(of entry: GGUFTensorEntry) -> Range<Int> {
        (dataStart + entry.offset)..<(dataStart + entry.offset + entry.byteCount)
    }

    static func alignment(_ keyValues: [(key: String, value: GGUFValue)], path: String) throws -> Int {
        guard let value = keyValues.first(where: { $0.key == alignmentKey })?.value else { return defaultAlignment }
        guard case let .uint32(alignment) = value else {
            throw GGUFError.invalidAlignment(path: path, detail: "has type \(value.type), not uint32")
        }
        guard alignment > 0, alignment & (alignment - 1) == 0 else {
            throw GGUFError.invalidAlignment(path: path, detail: "is \(alignment), not a power of two")
        }
        return Int(alignment)
    }

    /// Offsets aligned, data inside the file, no two tensors overlapping. A file with tensors
    /// must reach the (aligned) start of its data section, even when every tensor is empty.
    func checkDataRanges(fileSize: Int, path: String) throws {
        if !tensors.isEmpty, dataStart > fileSize {
            throw GGUFError.truncated(
                path: path, tensor: nil, what: "the padding before the data section (it starts at byte \(dataStart))")
        }
        let dataSize = dataStart <= fileSize ? fileSize - dataStart : 0
        for entry in tensors {
            guard entry.offset % alignment == 0 else {
                throw GGUFError.tensorDataMisaligned(
                    path: path, tensor: entry.info.name, offset: UInt64(entry.offset), alignment: alignment)
            }
            let (end, overflow) = entry.offset.addingReportingOverflow(entry.byteCount)
            guard !overflow, end <= dataSize else {
                throw GGUFError.tensorDataOutOfBounds(
                    path: path, tensor: entry.info.name,
                    end: overflow ? UInt64.max : UInt64(end), dataSize: dataSize)
            }
        }
        let sorted = tensors.filter { $0.byteCount > 0 }.sorted { ($0.offset, $0.byteCount) < ($1.offset, $1.byteCount) }
        for (previous, next) in zip(sorted, sorted.dropFirst()) where next.offset < previous.offset + previous.byteCount {
            throw GGUFError.tensorDataOverlap(path: path, tensor: next.info.name, other: previous.info.name)
        }
    }
}

/// A bounds-checked little-endian reader over the mapped file.
private struct Cursor {
    let bytes: UnsafeRawBufferPointer
    let path: String
    var offset = 0

    init(bytes: UnsafeRawBufferPointer, path: String) {
        self.bytes = bytes
        self.path = path
    }

    mutating func take(_ count: Int, _ what: @autoclosure () -> String, tensor: String? = nil) throws -> UnsafeRawBufferPointer {
        guard count >= 0, count <= bytes.count - offset else {
            throw GGUFError.truncated(path: path, tensor: tensor, what: what())
        }
        defer { offset += count }
        return UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + count)])
    }

    mutating func integer<T: FixedWidthInteger>(_: T.Type, _ what: @autoclosure () -> String, tensor: String? = nil) throws -> T {
        let raw = try take(MemoryLayout<T>.size, what(), tensor: tensor)
        return T(littleEndian: raw.loadUnaligned(as: T.self))
    }

    mutating func u32(_ what: @autoclosure () -> String, tensor: String? = nil) throws -> UInt32 {
        try integer(UInt32.self, what(), tensor: tensor)
    }

    mutating func u64(_ what: @autoclosure () -> String, tensor: String? = nil) throws -> UInt64 {
        try integer(UInt64.self, what(), tensor: tensor)
    }

    /// A `gguf_string`: u64 length, then that many UTF-8 bytes (no terminator).
    mutating func string(_ what: @autoclosure () -> String, tensor: String?) throws -> String {
        let length = try u64(what(), tensor: tensor)
        guard length <= UInt64(bytes.count - offset) else {
            throw GGUFError.truncated(path: path, tensor: tensor, what: what())
        }
        let raw = try take(Int(length), what(), tensor: tensor)
        guard let text = String(validating: raw, as: UTF8.self) else {
            throw GGUFError.invalidUTF8(path: path, tensor: tensor, what: what())
        }
        return text
    }

    mutating func value(_ type: GGUFValueType, key: String, depth: Int = 0) throws -> GGUFValue {
        let what = "the value of metadata key '\(key)'"
        switch type {
        case .uint8: return .uint8(try integer(UInt8.self, what))
        case .int8: return .int8(try integer(Int8.self, what))
        case .uint16: return .uint16(try integer(UInt16.self, what))
        case .int16: return .int16(try integer(Int16.self, what))
        case .uint32: return .uint32(try integer(UInt32.self, what))
        case .int32: return .int32(try integer(Int32.self, what))
        case .uint64: return .uint64(try integer(UInt64.self, what))
        case .int64: return .int64(try integer(Int64.self, what))
        case .float32: return .float32(Float(bitPattern: try integer(UInt32.self, what)))
        case .float64: return .float64(Double(bitPattern: try integer(UInt64.self, what)))
        case .bool: return .bool(try integer(UInt8.self, what) != 0)
        case .string: return .string(try string(what, tensor: nil))
        case .array:
            let rawType = try u32("the array type of metadata key '\(key)'")
            guard let elementType = GGUFValueType(rawValue: rawType) else {
                throw GGUFError.unknownValueType(path: path, key: key, type: rawType)
            }
            let count = try u64("the array length of metadata key '\(key)'")
            // Each element takes at least its minimum size: a count the rest of the file cannot
            // hold is a truncation, caught before anything is allocated.
            guard count <= UInt64(bytes.count - offset) / UInt64(elementType.minimumSize), depth < 16 else {
                throw GGUFError.truncated(path: path, tensor: nil, what: "the \(count)-element array of metadata key '\(key)'")
            }
            guard count <= GGUFHeader.maximumArrayLength else {
                throw GGUFError.arrayTooLong(path: path, key: key, count: count)
            }
            var values: [GGUFValue] = []
            values.reserveCapacity(Int(count))
            for _ in 0..<Int(count) { values.append(try value(elementType, key: key, depth: depth + 1)) }
            return .array(elementType, values)
        }
    }

    /// A tensor info: name, dimension count, `ne` (u64 each), ggml type, data offset.
    mutating func tensorInfo(index: Int, names: inout Set<String>) throws -> GGUFTensorEntry {
        let name = try string("the name of tensor \(index)", tensor: nil)
        guard names.insert(name).inserted else { throw GGUFError.duplicateTensorName(path: path, tensor: name) }
        let what = "the tensor info"
        let dimensions = try u32(what, tensor: name)
        guard dimensions <= GGUFHeader.maximumDimensions else {
            throw GGUFError.tooManyDimensions(path: path, tensor: name, dimensions: dimensions)
        }
        var ne: [Int] = []
        var count = 1
        var overflow = false
        for _ in 0..<Int(dimensions) {
            let raw = try u64(what, tensor: name)
            guard raw <= UInt64(Int64.max) else {
                overflow = true
                ne.append(0)
                continue
            }
            ne.append(Int(raw))
            let (product, over) = count.multipliedReportingOverflow(by: Int(raw))
            overflow = overflow || over
            count = product
        }
        let rawType = try u32(what, tensor: name)
        let rawOffset = try u64(what, tensor: name)
        guard !overflow else { throw GGUFError.dimensionOverflow(path: path, tensor: name) }
        guard let type = GGMLType(rawValue: rawType) else {
            throw GGUFError.unknownTensorType(path: path, tensor: name, type: rawType)
        }
        let rowLength = ne.first ?? 1
        guard rowLength % type.blockSize == 0 else {
            throw GGUFError.rowNotBlockAligned(
                path: path, tensor: name, type: type.name, rowLength: rowLength, blockSize: type.blockSize)
        }
        guard let byteCount = type.byteCount(elementCount: count) else {
            throw GGUFError.dimensionOverflow(path: path, tensor: name)
        }
        guard rawOffset <= UInt64(Int.max) else {
            throw GGUFError.tensorDataOutOfBounds(path: path, tensor: name, end: rawOffset, dataSize: 0)
        }
        let info = TensorInfo(name: name, dtype: type.plainDType ?? .f32, shape: ne.reversed())
        return GGUFTensorEntry(info: info, type: type, ne: ne, offset: Int(rawOffset), byteCount: byteCount)
    }
}
