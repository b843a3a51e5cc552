import Foundation
import QPKCore

/// Reads a single `.safetensors` file through a read-only memory mapping.
///
/// Opening the file runs every check of the reference validator, in its order, so a reader that
/// exists describes a valid file; ``storage(of:)`` then hands out zero-copy views of the mapping.
/// The reader is immutable after `init`, so concurrent ``storage(of:)`` calls are safe.
public final class SafetensorsReader: CheckpointReader {
    public let url: URL
    public var format: CheckpointFormat { .safetensors }
    /// Every tensor in file (data offset) order.
    public let tensors: [TensorInfo]
    /// The header's `__metadata__` (empty when absent).
    public let metadata: [String: String]
    /// The length of the JSON header in bytes, without the 8-byte length prefix.
    public let headerLength: Int
    /// The whole mapped file.
    public let file: MappedFile
    private let ranges: [String: Range<Int>]
    private let indexByName: [String: Int]

    /// Maps and validates `url`.
    /// - Throws: ``FileAccessError`` when the file cannot be opened or mapped, and
    ///   ``SafetensorsError`` naming the first validation rule it breaks.
    public init(url: URL) throws {
        self.url = url
        file = try MappedFile(url: url)
        let header = try SafetensorsHeader.validate(file.bytes, path: url.path)
        headerLength = header.headerLength
        tensors = header.entries.map(\.info)
        metadata = header.metadata
        var ranges: [String: Range<Int>] = [:]
        ranges.reserveCapacity(header.entries.count)
        var indexByName: [String: Int] = [:]
        indexByName.reserveCapacity(header.entries.count)
        for (i, entry) in header.entries.enumerated() {
            ranges[entry.info.name] = entry.range
            indexByName[entry.info.name] = i
        }
        self.ranges = ranges
        self.indexByName = indexByName
    }

    /// The tensor called `name`, if any (O(1)).
    public func tensor(named name: String) -> TensorInfo? {
        indexByName[name].map { tensors[$0] }
    }

    /// The absolute byte range of the tensor called `name` in the file.
    public func byteRange(of name: String) -> Range<Int>? {
        ranges[name]
    }

    /// A zero-copy view of the tensor's bytes (which keeps the mapping alive).
    /// - Throws: ``CheckpointError/noSuchTensor(_:_:)`` when the file has no tensor of that name.
    public func storage(of tensor: TensorInfo) throws -> TensorStorage {
        guard let range = ranges[tensor.name] else { throw CheckpointError.noSuchTensor(url.path, tensor.name) }
        return .dense(file.slice(range))
    }

    /// Whether a file starting with `prefix` looks like safetensors: an 8-byte little-endian
    /// header length that is plausible for a file of `fileSize` bytes, followed by `{` after
    /// optional JSON whitespace. Used for format detection by magic bytes; a `true` here does not
    /// mean the file is valid.
    /// - Parameters:
    ///   - prefix: the first bytes of the file (at least 9 are needed; 64 or more recommended).
    ///   - fileSize: the size of the whole file.
    public static func looksLikeSafetensors(_ prefix: UnsafeRawBufferPointer, fileSize: Int) -> Bool {
        guard prefix.count >= 9 else { return false }
        var length: UInt64 = 0
        for i in (0..<8).reversed() { length = length << 8 | UInt64(prefix[i]) }
        guard length >= 1, length <= SafetensorsHeader.maximumHeaderLength,
              Int(length) + 8 <= fileSize else { return false }
        let headerEnd = min(prefix.count, 8 + Int(length))
        for i in 8..<headerEnd {
            switch prefix[i] {
            case 0x20, 0x09, 0x0A, 0x0D: continue
            case UInt8(ascii: "{"): return true
            default: return false
            }
        }
        return false
    }
}
