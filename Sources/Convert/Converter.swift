import Foundation
import QPKCore
import Formats
import Quantize

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
            plan: plan, options: options, results: results, dryRun: false, outputBytes: outputBytes,
            seconds: Date().timeIntervalSince(started))
    }

    private func process(
        reader: any CheckpointReader, writer: any CheckpointWriter, progress: Progress?
    ) throws -> [TensorResult] {
        let entries = plan.tensors
        let order = Self.processingOrder(entries)
        let output = LockedWriter(writer)
        // The writer receives tensors in `order` whatever the thread count and timing, so the
        // output bytes are reproducible (QPK blob order, HDF5 data addresses). The writes run on
        // their own thread (``BackgroundWriter``), so the workers never wait for the disk; both
        // queues are bounded, so finished tensors cannot pile up in memory.
        let delivery = OrderedDelivery<(Int, TensorStorage)>(capacity: 2 * options.workers)
        let writes = BackgroundWriter(capacity: options.workers)
        let positions = Dictionary(uniqueKeysWithValues: order.enumerated().map { ($1, $0) })
        let results: [TensorResult]
        do {
            results = try Parallel.map(order, count: entries.count, workers: options.workers) { index in
                do {
                    let entry = entries[index]
                    let (storage, result) = try Self.transform(entry, reader: reader, importanceMatrix: options.importanceMatrix)
                    try delivery.submit((index, storage), at: positions[index]!) { item in
                        let box = UncheckedSendable(item)
                        try writes.enqueue {
                            let (index, storage) = box.value
                            try output.write(entries[index].output, storage: storage)
                            Self.releaseSource(of: entries[index], reader: reader)
                            progress?(entries[index].output.name)
                        }
                    }
                    return result
                } catch {
                    delivery.cancel(because: error)
                    throw error
                }
            }
        } catch {
            writes.cancel()
            throw error
        }
        try writes.drain()
        return results
    }

    /// Gives back the resident pages of a tensor's source bytes once it is done with (a mapped
    /// input file), so that memory stays flat over the model (issue 12 §3).
    static func releaseSource(of entry: PlannedTensor, reader: any CheckpointReader) {
        if case let .dense(bytes)? = try? reader.storage(of: entry.source) { bytes.releaseResidentPages() }
    }

    /// The order tensors are processed and written in: largest first (so the big ones overlap),
    /// ties in plan order. It depends only on the plan.
    static func processingOrder(_ entries: [PlannedTensor]) -> [Int] {
        entries.indices.sorted {
            let a = entries[$0].source.byteCount, b = entries[$1].source.byteCount
            return a != b ? a > b : $0 < $1
        }
    }

    /// Produces the output storage of one planned tensor; `importanceMatrix` weights the tensors
    /// whose decision's importance is `calibration` (`--imatrix`).
    static func transform(
        _ entry: PlannedTensor, reader: any CheckpointReader, importanceMatrix: ImportanceMatrix? = nil
    ) throws -> (TensorStorage, TensorResult) {
        let source = entry.source
        var result = TensorResult(planned: entry)
        result.bytes = entry.estimatedBytes
        switch entry.action {
        case .copy:
            let stored = try reader.storage(of: source)
            if case let .quantized(q) = stored {
                let (rows, columns) = q.matrixShape
                result.bytes = q.storedByteCount
                result.outliers = q.outliers.map { $0.parameterCount(rows: rows, columns: columns) } ?? 0
                result.sqnrDB = q.error?.sqnrDB
            }
            return (stored, result)
        case let .cast(dtype), let .dequantize(dtype):
            let stored = try reader.storage(of: source)
            let buffer = ByteBuffer(count: entry.output.byteCount)
            try Dequantizer.withFloats(stored, info: source) { FloatCodec.encode($0, as: dtype, into: buffer.mutableBytes) }
            releaseSource(of: entry, reader: reader)
            return (.dense(TensorBytes(buffer)), result)
        case let .quantize(decision):
            // Per-column error weights (spec/quantization.md §10); nil = unweighted.
            let importance = ImportanceWeights.columnWeights(
                for: source, decision: decision, reader: reader, matrix: importanceMatrix)
            // F32 sources are quantized straight from the mapped file (no copy of the tensor),
            // its pages mapped in one call first.
            let storage = try reader.storage(of: source)
            if case let .dense(bytes) = storage { bytes.populateResidentPages() }
            let (quantized, energy) = try Dequantizer.withFloats(storage, info: source) { floats in
                (TensorQuantizer.quantize(floats, info: source, decision: decision, columnImportance: importance),
                 ErrorEnergy.signal(floats))
            }
            releaseSource(of: entry, reader: reader)
            let (rows, columns) = quantized.matrixShape
            result.bytes = quantized.storedByteCount
            result.outliers = quantized.outliers.map { $0.parameterCount(rows: rows, columns: columns) } ?? 0
            result.sqnrDB = quantized.error?.sqnrDB
            result.signalEnergy = energy
            return (.quantized(quantized), result)
        case let .ggmlQuantize(type):
            // GGUF blocks read their source themselves: a block type qpk cannot decode is copied.
            return try GGUFPlanning.encode(entry, type: type, reader: reader)
        case .outlierMask:
            let buffer = ByteBuffer(count: entry.output.byteCount)
            buffer.mutableBytes.initializeMemory(as: UInt8.self, repeating: 0)
            if case let .quantized(q) = try reader.storage(of: source), let outliers = q.outliers {
                markOutliers(outliers, layout: q.layout, shape: source.shape, into: buffer.mutableBytes)
                let (rows, columns) = q.matrixShape
                result.outliers = outliers.parameterCount(rows: rows, columns: columns)
            }
            return (.dense(TensorBytes(buffer)), result)
        }
    }

    /// Sets the mask byte of every parameter covered by `outliers` to 1. Outlier indices refer to
    /// the layout's matrix view; the mask is in the tensor's own row-major order.
    static func markOutliers(
        _ outliers: OutlierSet, layout: QuantizationLayout, shape: [Int], into mask: UnsafeMutableRawBufferPointer
    ) {
        let (rows, columns) = layout.axis.matrixShape(of: shape)
        let transposed = layout.axis.transposes(shape)
        let count = rows * columns
        // Element (r, c) of the matrix view is flat element r·C + c, or c·R + r when transposed.
        func mark(_ r: Int, _ c: Int) { mask[transposed ? c * rows + r : r * columns + c] = 1 }
        switch outliers.kind {
        case .elements:
            for index in outliers.indices where index >= 0 && Int(index) < count {
                mark(Int(index) / columns, Int(index) % columns)
            }
        case .rows:
            for row in outliers.indices where row >= 0 && Int(row) < rows {
                for c in 0..<columns { mark(Int(row), c) }
            }
        case .columns:
            for column in outliers.indices where column >= 0 && Int(column) < columns {
                for r in 0..<rows { mark(r, Int(column)) }
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
