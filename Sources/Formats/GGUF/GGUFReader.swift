import Foundation
import QPKCore

/// Reads a GGUF file (llama.cpp's format, versions 2 and 3) through a read-only memory mapping.
///
/// Opening runs every structural rule of spec/gguf.md §7, so a reader that exists describes a
/// valid file. Tensors keep their GGUF names; shapes are row-major (GGUF's `ne` reversed). Plain
/// tensors (F32, F16, BF16, F64, I8–I64) are handed out as zero-copy views in the matching
/// ``DType``; block-quantized tensors are ``DType/f32`` in ``tensors`` and ``storage(of:)``
/// decodes them to F32. ``ggmlType(of:)`` tells which is which. Immutable after `init`, so
/// concurrent ``storage(of:)`` calls are safe.
public final class GGUFReader: CheckpointReader {
    public let url: URL
    public var format: CheckpointFormat { .gguf }
    public let tensors: [TensorInfo]
    /// Every metadata pair as one line of text (``GGUFValue/summary``: long arrays shortened).
    public let metadata: [String: String]
    /// The parsed header: version, typed metadata in file order, tensor infos, alignment.
    public let header: GGUFHeader
    public let file: MappedFile
    private let entries: [String: GGUFTensorEntry]

    /// Maps and validates `url`.
    /// - Throws: ``FileAccessError`` when the file cannot be opened or mapped, ``GGUFError``
    ///   naming the first rule it breaks.
    public init(url: URL) throws {
        self.url = url
        file = try MappedFile(url: url)
        header = try GGUFHeader.parse(file.bytes, path: url.path)
        tensors = header.tensors.map(\.info)
        var metadata: [String: String] = [:]
        for (key, value) in header.keyValues { metadata[key] = value.summary }
        self.metadata = metadata
        entries = Dictionary(header.tensors.map { ($0.info.name, $0) }, uniquingKeysWith: { first, _ in first })
    }

    /// The typed metadata value of `key`.
    public func value(forKey key: String) -> GGUFValue? {
        header.keyValues.first { $0.key == key }?.value
    }

    /// The stored ggml type of the tensor called `name`.
    public func ggmlType(of name: String) -> GGMLType? { entries[name]?.type }

    /// The tensor's entry (type, `ne`, offset, stored size).
    public func entry(named name: String) -> GGUFTensorEntry? { entries[name] }

    /// The tensor's stored bytes, undecoded.
    public func storedBytes(of name: String) throws -> TensorBytes {
        guard let entry = entries[name] else { throw CheckpointError.noSuchTensor(url.path, name) }
        return file.slice(header.range(of: entry))
    }

    /// Plain tensors as zero-copy views; block tensors decoded to F32.
    /// - Throws: ``CheckpointError/noSuchTensor(_:_:)``, or ``GGUFError/undecodableType(path:tensor:type:)``
    ///   for block types qpk cannot decode.
    public func storage(of tensor: TensorInfo) throws -> TensorStorage {
        guard let entry = entries[tensor.name] else { throw CheckpointError.noSuchTensor(url.path, tensor.name) }
        let stored = file.slice(header.range(of: entry))
        guard entry.type.isBlockQuantized else { return .dense(stored) }
        guard entry.type.isDecodable else {
            throw GGUFError.undecodableType(path: url.path, tensor: tensor.name, type: entry.type.name)
        }
        let count = entry.info.elementCount
        let buffer = ByteBuffer(count: count * 4)
        let floats = buffer.mutableBytes.bindMemory(to: Float.self)
        stored.withUnsafeBytes { GGMLBlockDecoder.decode(entry.type, $0, count: count, into: floats) }
        return .dense(TensorBytes(buffer))
    }

    /// Whether a file starting with `prefix` has the GGUF magic.
    public static func hasGGUFMagic(_ prefix: UnsafeRawBufferPointer) -> Bool {
        prefix.count >= 4 && Array(prefix.prefix(4)) == GGUFHeader.magic
    }
}
