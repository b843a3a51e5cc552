import QPKCore

/// A validated safetensors header: the tensors in offset order with their absolute byte ranges.
struct SafetensorsHeader: Sendable {
    /// A tensor and where its bytes are, as absolute file offsets.
    struct Entry: Sendable {
        var info: TensorInfo
        var range: Range<Int>
    }

    /// The largest header the reference accepts.
    static let maximumHeaderLength: UInt64 = 100_000_000

    /// The declared JSON header length (without the 8-byte length prefix).
    var headerLength: Int
    /// Tensors in file (offset) order.
    var entries: [Entry]
    /// The `__metadata__` map (empty when absent or null).
    var metadata: [String: String]

    /// Whether `bytes` begins like a git-lfs pointer file (`version https://git-lfs...`).
    static func isGitLFSPointer(_ bytes: UnsafeRawBufferPointer) -> Bool {
        let signature = Array("version https://git-lfs".utf8)
        return bytes.count >= signature.count && zip(bytes, signature).allSatisfy { $0 == $1 }
    }

    /// Validates a whole file image, running the reference validator's checks in its order.
    /// - Parameters:
    ///   - bytes: the whole file.
    ///   - path: the file's path, for error messages.
    /// - Throws: the ``SafetensorsError`` of the first rule that fails.
    static func validate(_ bytes: UnsafeRawBufferPointer, path: String) throws(SafetensorsError) -> SafetensorsHeader {
        let fileSize = bytes.count
        // Rule 1: the 8-byte length prefix must be present.
        guard fileSize >= 8 else { throw .headerTooSmall(path: path, fileSize: fileSize) }
        var length: UInt64 = 0
        for i in (0..<8).reversed() { length = length << 8 | UInt64(bytes[i]) }
        let lfs = isGitLFSPointer(bytes)
        // Rule 2: the reference caps the header at 100 MB.
        guard length <= maximumHeaderLength else {
            throw .headerTooLarge(path: path, headerLength: length, isGitLFSPointer: lfs)
        }
        let headerLength = Int(length)
        // Rule 3: the header must fit in the file.
        guard headerLength + 8 <= fileSize else {
            throw .invalidHeaderLength(path: path, headerLength: length, fileSize: fileSize, isGitLFSPointer: lfs)
        }
        let headerBytes = UnsafeRawBufferPointer(rebasing: bytes[8..<(8 + headerLength)])
        // Rule 4: UTF-8.
        guard String(validating: headerBytes, as: UTF8.self) != nil else { throw .invalidHeader(path: path) }
        // Rule 5: strict JSON of the expected shape.
        let decoded: DecodedHeader
        do {
            decoded = try DecodedHeader(json: StrictJSONParser.parse(headerBytes))
        } catch let error as JSONSyntaxError {
            throw .invalidHeaderDeserialization(path: path, detail: "invalid JSON: \(error.description)")
        } catch let error as HeaderShapeError {
            throw .invalidHeaderDeserialization(path: path, detail: error.message)
        } catch {
            throw .invalidHeaderDeserialization(path: path, detail: "\(error)")
        }
        // Rules 6-9, per tensor in offset order.
        let sorted = decoded.tensors.sorted { a, b in
            if a.begin != b.begin { return a.begin < b.begin }
            if a.end != b.end { return a.end < b.end }
            return JSONText.utf8Less(a.name, b.name)
        }
        var expectedBegin: UInt64 = 0
        var entries: [Entry] = []
        entries.reserveCapacity(sorted.count)
        for tensor in sorted {
            guard tensor.begin == expectedBegin, tensor.end >= tensor.begin else {
                throw .invalidOffset(path: path, tensor: tensor.name)
            }
            expectedBegin = tensor.end
            // Element and bit counts are computed in `Int`, left to right like the reference's
            // `try_fold(checked_mul)` in `usize`. Dimensions or partial products between Int.max
            // and UInt64.max count as overflow here (`TensorInfo` shapes are `Int`); the reference
            // rejects those too unless a zero dimension later makes the tensor empty.
            var shape: [Int] = []
            shape.reserveCapacity(tensor.shape.count)
            var elements = 1
            for dimension in tensor.shape {
                guard dimension <= UInt64(Int.max) else { throw .validationOverflow(path: path, tensor: tensor.name) }
                let (product, overflow) = elements.multipliedReportingOverflow(by: Int(dimension))
                guard !overflow else { throw .validationOverflow(path: path, tensor: tensor.name) }
                elements = product
                shape.append(Int(dimension))
            }
            let (bits, overflow) = elements.multipliedReportingOverflow(by: tensor.dtype.bitWidth)
            guard !overflow else { throw .validationOverflow(path: path, tensor: tensor.name) }
            guard bits % 8 == 0 else { throw .misalignedSlice(path: path, tensor: tensor.name) }
            guard tensor.end - tensor.begin == UInt64(bits / 8) else {
                throw .tensorInvalidInfo(path: path, tensor: tensor.name)
            }
            entries.append(Entry(
                info: TensorInfo(name: tensor.name, dtype: tensor.dtype, shape: shape),
                range: 0..<0))  // placed below, once the buffer is known to fit the file
        }
        // Rule 10: the buffer must end exactly at the end of the file.
        let (withPrefix, overflowA) = expectedBegin.addingReportingOverflow(8)
        let (expectedSize, overflowB) = withPrefix.addingReportingOverflow(length)
        guard !overflowA, !overflowB, expectedSize == UInt64(fileSize) else {
            throw .metadataIncompleteBuffer(
                path: path, expectedSize: overflowA || overflowB ? UInt64.max : expectedSize,
                fileSize: fileSize, isGitLFSPointer: lfs)
        }
        let bufferStart = 8 + headerLength
        for (i, tensor) in sorted.enumerated() {
            entries[i].range = (bufferStart + Int(tensor.begin))..<(bufferStart + Int(tensor.end))
        }
        return SafetensorsHeader(headerLength: headerLength, entries: entries, metadata: decoded.metadata)
    }
}

/// A header whose JSON has the wrong shape (rule 5).
struct HeaderShapeError: Error {
    var message: String
}

/// The header JSON mapped onto safetensors' schema, as serde does in the reference
/// (`HashMetadata`): an object whose `__metadata__` member is null or a string → string object and
/// whose other members are `{dtype, shape, data_offsets}` objects. Unknown fields inside a tensor
/// entry are ignored, as serde does; duplicate keys anywhere are rejected by the parser (see
/// ``StrictJSONParser`` for the one place this is stricter than the reference).
struct DecodedHeader {
    struct Tensor {
        var name: String
        var dtype: DType
        var shape: [UInt64]
        var begin: UInt64
        var end: UInt64
    }

    var tensors: [Tensor] = []
    var metadata: [String: String] = [:]

    init(json: JSONValue) throws(HeaderShapeError) {
        guard case let .object(members) = json else {
            throw HeaderShapeError(message: "the header is \(json.kindName), not a JSON object")
        }
        for (key, value) in members {
            if key == "__metadata__" {
                metadata = try Self.metadata(value)
            } else {
                tensors.append(try Self.tensor(named: key, value))
            }
        }
    }

    private static func metadata(_ value: JSONValue) throws(HeaderShapeError) -> [String: String] {
        switch value {
        case .null:
            return [:]
        case let .object(members):
            var map: [String: String] = [:]
            for (key, item) in members {
                guard case let .string(text) = item else {
                    throw HeaderShapeError(message: "__metadata__ value for key '\(key)' is \(item.kindName), not a string")
                }
                map[key] = text
            }
            return map
        default:
            throw HeaderShapeError(message: "__metadata__ is \(value.kindName), not an object of strings")
        }
    }

    private static func tensor(named name: String, _ value: JSONValue) throws(HeaderShapeError) -> Tensor {
        guard case let .object(fields) = value else {
            throw HeaderShapeError(message: "tensor '\(name)': entry is \(value.kindName), not an object")
        }
        var dtype: DType?
        var shape: [UInt64]?
        var offsets: [UInt64]?
        for (field, item) in fields {
            switch field {
            case "dtype":
                guard case let .string(text) = item else {
                    throw HeaderShapeError(message: "tensor '\(name)': dtype is \(item.kindName), not a string")
                }
                guard let known = DType(rawValue: text) else {
                    throw HeaderShapeError(message: "tensor '\(name)': unknown dtype \"\(text)\"")
                }
                dtype = known
            case "shape":
                shape = try unsignedArray(item, field: "shape", tensor: name)
            case "data_offsets":
                let pair = try unsignedArray(item, field: "data_offsets", tensor: name)
                guard pair.count == 2 else {
                    throw HeaderShapeError(message: "tensor '\(name)': data_offsets has \(pair.count) elements, expected 2")
                }
                offsets = pair
            default:
                continue
            }
        }
        guard let dtype else { throw HeaderShapeError(message: "tensor '\(name)': missing field `dtype`") }
        guard let shape else { throw HeaderShapeError(message: "tensor '\(name)': missing field `shape`") }
        guard let offsets else { throw HeaderShapeError(message: "tensor '\(name)': missing field `data_offsets`") }
        return Tensor(name: name, dtype: dtype, shape: shape, begin: offsets[0], end: offsets[1])
    }

    private static func unsignedArray(_ value: JSONValue, field: String, tensor: String) throws(HeaderShapeError) -> [UInt64] {
        guard case let .array(items) = value else {
            throw HeaderShapeError(message: "tensor '\(tensor)': \(field) is \(value.kindName), not an array")
        }
        var result: [UInt64] = []
        result.reserveCapacity(items.count)
        for item in items {
            guard case let .number(text, unsigned) = item, let unsigned else {
                let shown = if case let .number(text, _) = item { text } else { item.kindName }
                throw HeaderShapeError(message: "tensor '\(tensor)': \(field) element \(shown) is not a non-negative 64-bit integer")
            }
            _ = text
            result.append(unsigned)
        }
        return result
    }
}
