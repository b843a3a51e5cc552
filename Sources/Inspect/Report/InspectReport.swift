import Foundation
import Formats
import QPKCore
import Quantize

/// What `qpk inspect` should compute.
public struct InspectOptions: Sendable {
    /// Compute ``TensorStatistics`` per tensor (reads every selected tensor).
    public var statistics: Bool
    /// Histogram bins per tensor (0 = none). Implies statistics.
    public var histogramBins: Int
    /// Keep only tensors matching at least one of these patterns (empty keeps all).
    public var tensorFilters: [Glob]
    /// Called after each tensor with (tensors done, tensors to do, name), from any thread.
    public var progress: (@Sendable (Int, Int, String) -> Void)?

    public init(
        statistics: Bool = false, histogramBins: Int = 0, tensorFilters: [Glob] = [],
        progress: (@Sendable (Int, Int, String) -> Void)? = nil
    ) {
        self.statistics = statistics
        self.histogramBins = max(0, histogramBins)
        self.tensorFilters = tensorFilters
        self.progress = progress
    }

    /// Whether `name` passes the filters.
    public func selects(_ name: String) -> Bool {
        tensorFilters.isEmpty || tensorFilters.contains { $0.matches(name) }
    }
}

/// The result of `qpk inspect`: the stable JSON schema of `spec/json-schemas.md` (section "inspect").
public struct InspectReport: Sendable, Codable, Equatable {
    /// `safetensors`, `hdf5` or `qpk`.
    public var format: String
    public var file: String
    /// File-level metadata (safetensors `__metadata__`, HDF5 attributes, QPK provenance).
    public var metadata: [String: String]
    public var tensors: [TensorEntry]
    public var layers: [LayerSummary]
    public var summary: Summary
    /// QPK files: the recipe, the provenance and the outlier totals (`nil` for other formats).
    public var quantizedFile: QuantizedFileSummary?

    enum CodingKeys: String, CodingKey {
        case format, file, metadata, tensors, layers, summary
        case quantizedFile = "quantized_file"
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(format, forKey: .format)
        try c.encode(file, forKey: .file)
        try c.encode(metadata, forKey: .metadata)
        try c.encode(tensors, forKey: .tensors)
        try c.encode(layers, forKey: .layers)
        try c.encode(summary, forKey: .summary)
        try c.encode(quantizedFile, forKey: .quantizedFile)
    }

    /// One tensor.
    public struct TensorEntry: Sendable, Codable, Equatable {
        public var name: String
        /// The (original) dtype, safetensors spelling (`F32`, `BF16`, …).
        public var dtype: String
        public var shape: [Int]
        public var parameters: Int
        /// Bytes stored in the file (for quantized tensors: codes + scales + zeros + outliers).
        public var bytes: Int
        /// bytes·8 / parameters (`nil` for empty tensors).
        public var bitsPerWeight: Double?
        public var stats: TensorStatistics?
        public var quantization: QuantizationSummary?

        enum CodingKeys: String, CodingKey {
            case name, dtype, shape, parameters, bytes, stats, quantization
            case bitsPerWeight = "bits_per_weight"
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(name, forKey: .name)
            try c.encode(dtype, forKey: .dtype)
            try c.encode(shape, forKey: .shape)
            try c.encode(parameters, forKey: .parameters)
            try c.encode(bytes, forKey: .bytes)
            try c.encode(bitsPerWeight, forKey: .bitsPerWeight)
            try c.encode(stats, forKey: .stats)
            try c.encode(quantization, forKey: .quantization)
        }
    }

    /// The tensors sharing a ``LayerGrouping`` prefix.
    public struct LayerSummary: Sendable, Codable, Equatable {
        public var prefix: String
        public var tensors: Int
        public var parameters: Int
        public var bytes: Int
        public var bitsPerWeight: Double?
        /// The lowest recorded SQNR among the layer's quantized tensors.
        public var minSqnrDB: Double?
        /// The largest `absmax` among the layer's tensors (with statistics).
        public var absmax: Double?

        enum CodingKeys: String, CodingKey {
            case prefix, tensors, parameters, bytes, absmax
            case bitsPerWeight = "bits_per_weight"
            case minSqnrDB = "min_sqnr_db"
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(prefix, forKey: .prefix)
            try c.encode(tensors, forKey: .tensors)
            try c.encode(parameters, forKey: .parameters)
            try c.encode(bytes, forKey: .bytes)
            try c.encode(bitsPerWeight, forKey: .bitsPerWeight)
            try c.encode(minSqnrDB, forKey: .minSqnrDB)
            try c.encode(absmax, forKey: .absmax)
        }
    }

    /// Totals over the selected tensors.
    public struct Summary: Sendable, Codable, Equatable {
        public var tensors: Int
        public var parameters: Int
        public var bytes: Int
        public var bitsPerWeight: Double?
        public var quantizedTensors: Int

        enum CodingKeys: String, CodingKey {
            case tensors, parameters, bytes
            case bitsPerWeight = "bits_per_weight"
            case quantizedTensors = "quantized_tensors"
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(tensors, forKey: .tensors)
            try c.encode(parameters, forKey: .parameters)
            try c.encode(bytes, forKey: .bytes)
            try c.encode(bitsPerWeight, forKey: .bitsPerWeight)
            try c.encode(quantizedTensors, forKey: .quantizedTensors)
        }
    }

    public init(
        format: String, file: String, metadata: [String: String], tensors: [TensorEntry],
        layers: [LayerSummary], summary: Summary, quantizedFile: QuantizedFileSummary? = nil
    ) {
        self.format = format
        self.file = file
        self.metadata = metadata
        self.tensors = tensors
        self.layers = layers
        self.summary = summary
        self.quantizedFile = quantizedFile
    }

    /// Inspects `reader`.
    ///
    /// Tensors are examined two at a time (each statistics pass is itself parallel), so memory
    /// stays within about twice the largest tensor. Quantization details come from
    /// ``QuantizationInfoProviding`` when the reader offers it, otherwise from the decoded
    /// tensor (QPK files, or whenever statistics are requested).
    /// - Throws: ``UsageError`` when a tensor filter matches no tensor; the reader's error for a
    ///   tensor that cannot be read.
    public static func build(reader: any CheckpointReader, options: InspectOptions = .init()) throws -> InspectReport {
        try UsageError.requireMatches(
            options.tensorFilters, in: reader.tensors.map(\.name), option: "--tensor", source: reader.url.lastPathComponent)
        let selected = reader.tensors.filter { options.selects($0.name) }
        let provider = reader as? QuantizationInfoProviding
        let wantsStats = options.statistics || options.histogramBins > 0
        let needsStorage = wantsStats || (provider == nil && reader.format == .qpk)
        let counter = Counter()
        let entries = try Parallel.map(count: selected.count, workers: 2) { index -> TensorEntry in
            let info = selected[index]
            var quantization = provider?.quantizationSummary(for: info.name)
            var stats: TensorStatistics?
            if needsStorage {
                let storage = try reader.storage(of: info)
                if case let .quantized(tensor) = storage, quantization == nil {
                    quantization = QuantizationSummary(tensor)
                }
                if wantsStats {
                    stats = try InspectError.naming(reader.url.path, info.name) {
                        try TensorStatistics.compute(
                            FloatValues(storage: storage, info: info), dtype: info.dtype,
                            histogramBins: options.histogramBins)
                    }
                }
            }
            let bytes = quantization?.storedBytes ?? reader.quantizedByteCount(of: info) ?? info.byteCount
            let parameters = info.elementCount
            let entry = TensorEntry(
                name: info.name, dtype: provider?.storedTypeName(for: info.name) ?? info.dtype.rawValue,
                shape: info.shape, parameters: parameters,
                bytes: bytes, bitsPerWeight: bitsPerWeight(bytes: bytes, parameters: parameters),
                stats: stats, quantization: quantization)
            options.progress?(counter.increment(), selected.count, info.name)
            return entry
        }
        return InspectReport(
            format: reader.format.rawValue, file: reader.url.relativePath, metadata: reader.metadata,
            tensors: entries, layers: layers(of: entries), summary: summary(of: entries),
            quantizedFile: provider?.quantizedFileSummary() ?? nil)
    }

    static func bitsPerWeight(bytes: Int, parameters: Int) -> Double? {
        parameters == 0 ? nil : Double(bytes) * 8 / Double(parameters)
    }

    /// Layers in order of first appearance.
    static func layers(of entries: [TensorEntry]) -> [LayerSummary] {
        var order: [String] = []
        var layers: [String: LayerSummary] = [:]
        for entry in entries {
            let prefix = LayerGrouping.prefix(of: entry.name)
            var layer = layers[prefix] ?? {
                order.append(prefix)
                return LayerSummary(prefix: prefix, tensors: 0, parameters: 0, bytes: 0)
            }()
            layer.tensors += 1
            layer.parameters += entry.parameters
            layer.bytes += entry.bytes
            if let sqnr = entry.quantization?.sqnrDB { layer.minSqnrDB = min(layer.minSqnrDB ?? sqnr, sqnr) }
            if let absmax = entry.stats?.absmax { layer.absmax = max(layer.absmax ?? absmax, absmax) }
            layers[prefix] = layer
        }
        return order.map { prefix in
            var layer = layers[prefix]!
            layer.bitsPerWeight = bitsPerWeight(bytes: layer.bytes, parameters: layer.parameters)
            return layer
        }
    }

    static func summary(of entries: [TensorEntry]) -> Summary {
        let parameters = entries.reduce(0) { $0 + $1.parameters }
        let bytes = entries.reduce(0) { $0 + $1.bytes }
        return Summary(
            tensors: entries.count, parameters: parameters, bytes: bytes,
            bitsPerWeight: bitsPerWeight(bytes: bytes, parameters: parameters),
            quantizedTensors: entries.count { $0.quantization != nil })
    }

    /// The report as JSON (``ReportJSON`` conventions).
    public func jsonData() throws -> Data { try ReportJSON.data(self) }
}

extension InspectReport.LayerSummary {
    init(prefix: String, tensors: Int, parameters: Int, bytes: Int) {
        self.init(prefix: prefix, tensors: tensors, parameters: parameters, bytes: bytes, bitsPerWeight: nil, minSqnrDB: nil, absmax: nil)
    }
}

/// A thread-safe counter for progress reports.
final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0

    func increment() -> Int {
        lock.lock()
        defer { lock.unlock() }
        value += 1
        return value
    }
}
