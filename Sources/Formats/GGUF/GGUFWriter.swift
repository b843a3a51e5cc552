import Foundation
import QPKCore

/// One tensor a ``GGUFWriter`` will store: its row-major description and the ggml type of its
/// bytes. For a block type, `info.dtype` is the dtype the values had before encoding (F32
/// usually); the bytes passed to ``GGUFWriter/write(_:storage:)`` are the encoded blocks.
public struct GGUFTensorDeclaration: Sendable, Equatable {
    public var info: TensorInfo
    public var type: GGMLType

    public init(info: TensorInfo, type: GGMLType) {
        self.info = info
        self.type = type
    }
}

/// Writes a GGUF version 3 file, streaming (spec/gguf.md §2–§4).
///
/// Every tensor is announced up front, so the header, metadata, tensor infos and each tensor's
/// aligned offset are known at once: the header is written immediately and each
/// ``write(_:storage:)`` puts the tensor's bytes at its final offset, in any order. Tensors are
/// laid out in announcement order, each starting at a multiple of the alignment (32) and padded
/// with zeros, as `gguf.GGUFWriter` does. The file appears only when ``finish()`` succeeds.
public final class GGUFWriter: CheckpointWriter {
    public let url: URL
    public static let alignment = GGUFHeader.defaultAlignment
    private let declarations: [GGUFTensorDeclaration]
    private let offsets: [Int]
    private let byteCounts: [Int]
    private let dataStart: Int
    private let indexByName: [String: Int]
    private var written: [Bool]
    private var output: AtomicOutput?
    private let lock = NSLock()

    /// Starts writing `url`.
    /// - Parameters:
    ///   - tensors: every tensor, in file order, with its ggml type.
    ///   - metadata: KV pairs in file order (`general.alignment` is not written: the default 32
    ///     is used).
    ///   - overwrite: replace an existing file (`--force`).
    /// - Throws: ``GGUFWriterError`` for duplicate names or rows that are not whole blocks,
    ///   ``FileAccessError`` when the file exists and `overwrite` is false.
    public init(
        url: URL, tensors: [GGUFTensorDeclaration], metadata: [(key: String, value: GGUFValue)], overwrite: Bool
    ) throws {
        self.url = url
        declarations = tensors
        var indexByName: [String: Int] = [:]
        var offsets: [Int] = []
        var byteCounts: [Int] = []
        var position = 0
        for (index, declaration) in tensors.enumerated() {
            let name = declaration.info.name
            guard indexByName.updateValue(index, forKey: name) == nil else {
                throw GGUFWriterError.duplicateTensor(path: url.path, tensor: name)
            }
            guard declaration.info.shape.count <= Int(GGUFHeader.maximumDimensions) else {
                throw GGUFWriterError.tooManyDimensions(path: url.path, tensor: name, dimensions: declaration.info.shape.count)
            }
            guard let bytes = declaration.type.byteCount(elementCount: declaration.info.elementCount),
                  declaration.type.rowByteCount(declaration.info.shape.last ?? 1) != nil else {
                throw GGUFWriterError.rowNotBlockAligned(
                    path: url.path, tensor: name, type: declaration.type.name, rowLength: declaration.info.shape.last ?? 1)
            }
            offsets.append(position)
            byteCounts.append(bytes)
            position += Self.padded(bytes)
        }
        self.indexByName = indexByName
        self.offsets = offsets
        self.byteCounts = byteCounts
        var header = GGUFEncoder()
        header.bytes += GGUFHeader.magic
        header.u32(3)
        header.u64(UInt64(tensors.count))
        let pairs = metadata.filter { $0.key != GGUFHeader.alignmentKey }
        header.u64(UInt64(pairs.count))
        for (key, value) in pairs {
            header.string(key)
            header.u32(value.type.rawValue)
            header.value(value)
        }
        for (index, declaration) in tensors.enumerated() {
            header.string(declaration.info.name)
            let ne = declaration.info.shape.reversed()
            header.u32(UInt32(ne.count))
            for dimension in ne { header.u64(UInt64(dimension)) }
            header.u32(declaration.type.rawValue)
            header.u64(UInt64(offsets[index]))
        }
        let headerSize = header.bytes.count
        header.bytes += [UInt8](repeating: 0, count: Self.padded(headerSize) - headerSize)
        dataStart = header.bytes.count
        written = Array(repeating: false, count: tensors.count)
        let output = try AtomicOutput(destination: url, overwrite: overwrite)
        try output.append(header.bytes)
        // The padding after the last tensor: every tensor's slot is written with its padding.
        self.output = output
    }

    static func padded(_ size: Int) -> Int { (size + alignment - 1) / alignment * alignment }

    /// Writes one announced tensor's bytes (plain values in its ggml type, or encoded blocks).
    /// - Throws: ``GGUFWriterError`` when the tensor was not announced with this shape, was
    ///   already written, is QPK-quantized or has the wrong number of bytes.
    public func write(_ info: TensorInfo, storage: TensorStorage) throws {
        lock.lock()
        defer { lock.unlock() }
        guard let output else { throw GGUFWriterError.alreadyFinished(path: url.path) }
        guard let index = indexByName[info.name], declarations[index].info.shape == info.shape else {
            throw GGUFWriterError.unannouncedTensor(path: url.path, tensor: info.name)
        }
        guard case let .dense(bytes) = storage else {
            throw GGUFWriterError.quantizedStorage(path: url.path, tensor: info.name)
        }
        guard bytes.count == byteCounts[index] else {
            throw GGUFWriterError.wrongByteCount(
                path: url.path, tensor: info.name, expected: byteCounts[index], actual: bytes.count)
        }
        guard !written[index] else { throw GGUFWriterError.tensorWrittenTwice(path: url.path, tensor: info.name) }
        let padding = Self.padded(bytes.count) - bytes.count
        try bytes.withUnsafeBytes { try output.write(at: dataStart + offsets[index], $0) }
        if padding > 0 {
            try [UInt8](repeating: 0, count: padding).withUnsafeBytes {
                try output.write(at: dataStart + offsets[index] + bytes.count, $0)
            }
        }
        written[index] = true
    }

    /// Checks that every tensor was written, then moves the file into place.
    public func finish() throws {
        lock.lock()
        defer { lock.unlock() }
        guard let output else { throw GGUFWriterError.alreadyFinished(path: url.path) }
        self.output = nil
        let missing = declarations.indices.filter { !written[$0] }.map { declarations[$0].info.name }
        guard missing.isEmpty else { throw GGUFWriterError.missingTensors(path: url.path, tensors: missing) }
        try output.commit()
    }
}

/// Little-endian GGUF serialization of header fields and metadata values.
struct GGUFEncoder {
    var bytes: [UInt8] = []

    mutating func integer<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value.littleEndian) { bytes += $0 }
    }

    mutating func u32(_ value: UInt32) { integer(value) }
    mutating func u64(_ value: UInt64) { integer(value) }

    /// A `gguf_string`: u64 byte length, then the UTF-8 bytes.
    mutating func string(_ text: String) {
        let utf8 = Array(text.utf8)
        u64(UInt64(utf8.count))
        bytes += utf8
    }

    mutating func value(_ value: GGUFValue) {
        switch value {
        case let .uint8(v): integer(v)
        case let .int8(v): integer(v)
        case let .uint16(v): integer(v)
        case let .int16(v): integer(v)
        case let .uint32(v): integer(v)
        case let .int32(v): integer(v)
        case let .uint64(v): integer(v)
        case let .int64(v): integer(v)
        case let .float32(v): integer(v.bitPattern)
        case let .float64(v): integer(v.bitPattern)
        case let .bool(v): integer(UInt8(v ? 1 : 0))
        case let .string(v): string(v)
        case let .array(elementType, values):
            u32(elementType.rawValue)
            u64(UInt64(values.count))
            for element in values { self.value(element) }
        }
    }
}
