import Foundation
import QPKCore

/// Writes a single `.safetensors` file, streaming.
///
/// All tensors are announced up front, so the layout (reference order, see ``SafetensorsLayout``)
/// and the padded header are known immediately: the header is written at once and each
/// ``write(_:storage:)`` puts the tensor's bytes at its final offset, in whatever order the calls
/// arrive. Nothing but the header is ever held in memory. The file appears at `url` only when
/// ``finish()`` succeeds; a writer dropped earlier, or one that failed, leaves nothing behind.
public final class SafetensorsWriter: CheckpointWriter {
    /// The destination.
    public let url: URL
    private let layout: SafetensorsLayout
    private let indexByName: [String: Int]
    private var written: [Bool]
    private var output: AtomicOutput?
    private let lock = NSLock()

    /// Starts writing `url`.
    /// - Parameters:
    ///   - url: the file to create.
    ///   - tensors: every tensor the file will hold (any order; they are laid out in reference order).
    ///   - metadata: the `__metadata__` map (omitted from the header when empty).
    ///   - overwrite: replace an existing file (`--force`).
    /// - Throws: ``FileAccessError/alreadyExists(_:)`` when `url` exists and `overwrite` is false,
    ///   ``SafetensorsWriterError`` for duplicate names or unrepresentable shapes.
    public init(url: URL, tensors: [TensorInfo], metadata: [String: String], overwrite: Bool) throws {
        self.url = url
        layout = try SafetensorsLayout(tensors: tensors, metadata: metadata, path: url.path)
        var indexByName: [String: Int] = [:]
        for (i, placement) in layout.placements.enumerated() { indexByName[placement.info.name] = i }
        self.indexByName = indexByName
        written = Array(repeating: false, count: layout.placements.count)
        let output = try AtomicOutput(destination: url, overwrite: overwrite)
        var prefix = [UInt8](repeating: 0, count: 8)
        var length = UInt64(layout.header.count)
        for i in 0..<8 {
            prefix[i] = UInt8(truncatingIfNeeded: length)
            length >>= 8
        }
        try output.append(prefix)
        try output.append(layout.header)
        self.output = output
    }

    /// The tensors in the order they are laid out in the file.
    public var layoutOrder: [TensorInfo] { layout.placements.map(\.info) }

    /// Writes one announced tensor's bytes at its offset.
    /// - Throws: ``SafetensorsWriterError`` when the tensor was not announced (or with another dtype
    ///   or shape), was already written, is quantized or has the wrong number of bytes.
    public func write(_ info: TensorInfo, storage: TensorStorage) throws {
        lock.lock()
        defer { lock.unlock() }
        guard let output else { throw SafetensorsWriterError.alreadyFinished(path: url.path) }
        guard let index = indexByName[info.name], layout.placements[index].info.dtype == info.dtype,
              layout.placements[index].info.shape == info.shape else {
            throw SafetensorsWriterError.unannouncedTensor(path: url.path, tensor: info.name)
        }
        let placement = layout.placements[index]
        guard case let .dense(bytes) = storage else {
            throw SafetensorsWriterError.quantizedStorage(path: url.path, tensor: info.name)
        }
        guard bytes.count == placement.byteCount else {
            throw SafetensorsWriterError.wrongByteCount(
                path: url.path, tensor: info.name, expected: placement.byteCount, actual: bytes.count)
        }
        guard !written[index] else { throw SafetensorsWriterError.tensorWrittenTwice(path: url.path, tensor: info.name) }
        if placement.byteCount > 0 {
            try bytes.withUnsafeBytes { try output.write(at: layout.dataStart + placement.begin, $0) }
        }
        written[index] = true
    }

    /// The announced tensors not written yet, in layout order.
    var unwrittenTensors: [String] {
        lock.lock()
        defer { lock.unlock() }
        return layout.placements.indices.filter { !written[$0] }.map { layout.placements[$0].info.name }
    }

    /// Checks that every tensor was written, then moves the file into place.
    /// - Throws: ``SafetensorsWriterError/missingTensors(path:tensors:)`` naming the unwritten
    ///   tensors (the temporary file is then removed), or a ``FileAccessError``.
    public func finish() throws {
        lock.lock()
        defer { lock.unlock() }
        guard let output else { throw SafetensorsWriterError.alreadyFinished(path: url.path) }
        self.output = nil
        let missing = layout.placements.indices.filter { !written[$0] }.map { layout.placements[$0].info.name }
        guard missing.isEmpty else {
            throw SafetensorsWriterError.missingTensors(path: url.path, tensors: missing)
        }
        try output.commit()
    }
}
