import Foundation

/// Runs a ``ConversionPlan``: reads each tensor, transforms it and streams it to the writer.
///
/// Tensors are processed by `options.workers` threads at once (largest first, so the big ones
/// overlap), and each worker holds one tensor's float view at a time, so peak memory is bounded
/// by a few of the largest tensors, never by the model. The writer is fed under a lock, always in
/// the same order (``processingOrder(_:)``, through ``OrderedDelivery``), so the output is the
/// same bytes whatever the thread count. If anything fails, the writer is dropped unfinished and
/// its temporary output is deleted: a failed run leaves nothing behind.
public struct Converter: Sendable {
    /// Called after each tensor is written, with its name (from any thread).
    public typealias Progress = @Sendable (String) -> Void

    public var plan: ConversionPlan
    public var options: ConversionOptions

    public init(plan: ConversionPlan, options: ConversionOptions) {
        self.plan = plan
        self.options = options
    }

    /// Converts, writes the output atomically and reports what was done.
    public func run(reader: any CheckpointReader, progress: Progress? = nil) throws -> ConversionSummary {
        let started = Date()
        let writer = try WriterFactory.makeWriter(plan: plan, reader: reader, options: options)
        let results = try process(reader: reader, writer: writer, progress: progress)
        try writer.finish()
        // A shard folder may hold other files (config.json, …): count only what was written.
        let outputBytes = (writer as? ShardedSafetensorsWriter).map { sharded in
            (sharded.shardFileNames + [ShardedSafetensorsWriter.indexFileName]).reduce(0) {
                $0 + Self.sizeOnDisk(plan.destination.appendingPathComponent($1))
            }
        } ?? Self.sizeOnDisk(plan.destination)
        return ConversionSummary(
            plan: plan, results: results, outputBytes: outputBytes,
            seconds: Date().timeIntervalSince(started), recipe: plan.target.format == .qpk ? options.recipe : nil)
    }

    private func process(
        reader: any CheckpointReader, writer: any CheckpointWriter, progress: Progress?
    ) throws -> [TensorResult] {
        let entries = plan.tensors
        let order = Self.processingOrder(entries)
        let results = ResultSlots<TensorResult>(count: entries.count)
        let output = LockedWriter(writer)
        // The writer receives tensors in `order` whatever the thread count and timing, so the
        // output bytes are reproducible (QPK blob order, HDF5 data addresses).
        let delivery = OrderedDelivery<(Int, TensorStorage)>(capacity: 2 * options.workers)
        let positions = Dictionary(uniqueKeysWithValues: order.enumerated().map { ($1, $0) })
        try ParallelWork.run(order, workers: options.workers) { index in
            do {
                let entry = entries[index]
                let (storage, result) = try Self.transform(entry, reader: reader)
                results.store(result, at: index)
                try delivery.submit((index, storage), at: positions[index]!) { item in
                    try output.write(entries[item.0].output, storage: item.1)
                    progress?(entries[item.0].output.name)
                }
            } catch {
                delivery.cancel(because: error)
                throw error
            }
        }
        return results.values
    }

    /// The order tensors are processed and written in: largest first (so the big ones overlap),
    /// ties in plan order. It depends only on the plan.
    static func processingOrder(_ entries: [PlannedTensor]) -> [Int] {
        entries.indices.sorted {
            let a = entries[$0].source.byteCount, b = entries[$1].source.byteCount
            return a != b ? a > b : $0 < $1
        }
    }

    /// Produces the output storage of one planned tensor.
    static func transform(_ entry: PlannedTensor, reader: any CheckpointReader) throws -> (TensorStorage, TensorResult) {
        let source = entry.source
        let stored = try reader.storage(of: source)
        var result = TensorResult(name: entry.output.name, action: entry.action.name, dtype: entry.output.dtype,
                                  shape: entry.output.shape, bytes: entry.estimatedBytes)
        switch entry.action {
        case .copy:
            if case let .quantized(q) = stored {
                result.bytes = q.storedByteCount
                result.bits = q.layout.bits
                result.sqnrDB = q.error?.sqnrDB
            }
            return (stored, result)
        case let .cast(dtype), let .dequantize(dtype):
            let floats = try Dequantizer.floats(stored, info: source)
            let buffer = ByteBuffer(count: entry.output.byteCount)
            floats.withUnsafeBufferPointer { FloatCodec.encode($0, as: dtype, into: buffer.mutableBytes) }
            return (.dense(TensorBytes(buffer)), result)
        case let .quantize(recipe):
            let floats = try Dequantizer.floats(stored, info: source)
            // Data-free per-column error weights (spec/quantization.md §10); nil = unweighted.
            let importance = recipe.importance == .norm
                ? ActivationImportance.columnWeights(for: source, reader: reader) : nil
            let quantized = floats.withUnsafeBufferPointer {
                TensorQuantizer.quantize($0, info: source, recipe: recipe, columnImportance: importance)
            }
            result.bytes = quantized.storedByteCount
            result.bits = quantized.layout.bits
            result.groupSize = quantized.layout.groupSize
            result.outliers = quantized.outliers.map { $0.parameterCount(rows: source.matrixShape.rows, columns: source.matrixShape.columns) } ?? 0
            result.sqnrDB = quantized.error?.sqnrDB
            result.signalEnergy = floats.reduce(0.0) { $0 + Double($1) * Double($1) }
            return (.quantized(quantized), result)
        case .outlierMask:
            let buffer = ByteBuffer(count: entry.output.byteCount)
            buffer.mutableBytes.initializeMemory(as: UInt8.self, repeating: 0)
            if case let .quantized(q) = stored, let outliers = q.outliers {
                markOutliers(outliers, shape: source.matrixShape, into: buffer.mutableBytes)
                result.outliers = outliers.parameterCount(rows: source.matrixShape.rows, columns: source.matrixShape.columns)
            }
            return (.dense(TensorBytes(buffer)), result)
        }
    }

    /// Sets the mask byte of every parameter covered by `outliers` to 1.
    static func markOutliers(
        _ outliers: OutlierSet, shape: (rows: Int, columns: Int), into mask: UnsafeMutableRawBufferPointer
    ) {
        let (rows, columns) = shape
        let count = rows * columns
        switch outliers.kind {
        case .elements:
            for index in outliers.indices where index >= 0 && Int(index) < count { mask[Int(index)] = 1 }
        case .rows:
            for row in outliers.indices where row >= 0 && Int(row) < rows {
                for c in 0..<columns { mask[Int(row) * columns + c] = 1 }
            }
        case .columns:
            for column in outliers.indices where column >= 0 && Int(column) < columns {
                for r in 0..<rows { mask[r * columns + Int(column)] = 1 }
            }
        }
    }

    static func sizeOnDisk(_ url: URL) -> Int {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else { return 0 }
        if !isDirectory.boolValue {
            return (try? FileManager.default.attributesOfItem(atPath: url.path)[.size] as? Int) ?? 0
        }
        let files = (try? FileManager.default.contentsOfDirectory(at: url, includingPropertiesForKeys: [.fileSizeKey])) ?? []
        return files.reduce(0) { $0 + ((try? $1.resourceValues(forKeys: [.fileSizeKey]).fileSize) ?? 0) }
    }
}

/// Serializes writes: writers accept tensors in any order, one call at a time.
private final class LockedWriter: @unchecked Sendable {
    private let lock = NSLock()
    private let writer: any CheckpointWriter

    init(_ writer: any CheckpointWriter) { self.writer = writer }

    func write(_ info: TensorInfo, storage: TensorStorage) throws {
        lock.lock()
        defer { lock.unlock() }
        try writer.write(info, storage: storage)
    }
}
