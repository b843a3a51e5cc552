import Foundation
import Formats
import Quantize
import QPKCore

/// What `qpk diff` compares and how.
public struct DiffOptions: Sendable {
    public var tolerance: Tolerance
    public var nameMap: NameMap
    /// Compare only tensors whose (mapped) name matches one of these (empty compares all).
    public var tensorFilters: [Glob]
    /// Called after each compared tensor with (done, total, name), from any thread.
    public var progress: (@Sendable (Int, Int, String) -> Void)?

    public init(
        tolerance: Tolerance = Tolerance(), nameMap: NameMap = NameMap(), tensorFilters: [Glob] = [],
        progress: (@Sendable (Int, Int, String) -> Void)? = nil
    ) {
        self.tolerance = tolerance
        self.nameMap = nameMap
        self.tensorFilters = tensorFilters
        self.progress = progress
    }
}

/// The differences between two checkpoints: structure, metadata and per-tensor values.
///
/// The checkpoints are **equal** (exit status 0) when both hold the same (mapped, filtered) tensor
/// names with the same shapes, and every common tensor is identical, equal or close under the
/// tolerance. Dtype and metadata differences are reported but do not by themselves make the
/// checkpoints different: values decide (so a checkpoint equals itself converted to HDF5).
public struct CheckpointDiff: Sendable, Codable, Equatable {
    public struct Side: Sendable, Codable, Equatable {
        public var file: String
        public var format: String
    }

    public struct ShapeMismatch: Sendable, Codable, Equatable {
        public var name: String
        public var nameA: String
        public var nameB: String
        public var dtypeA: String
        public var dtypeB: String
        public var shapeA: [Int]
        public var shapeB: [Int]

        enum CodingKeys: String, CodingKey {
            case name
            case nameA = "name_a"
            case nameB = "name_b"
            case dtypeA = "dtype_a"
            case dtypeB = "dtype_b"
            case shapeA = "shape_a"
            case shapeB = "shape_b"
        }
    }

    public struct MetadataChange: Sendable, Codable, Equatable {
        public var key: String
        /// The value in A (`nil`: only in B).
        public var a: String?
        /// The value in B (`nil`: only in A).
        public var b: String?

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(key, forKey: .key)
            try c.encode(a, forKey: .a)
            try c.encode(b, forKey: .b)
        }
    }

    public struct Summary: Sendable, Codable, Equatable {
        public var compared: Int
        public var identical: Int
        public var equal: Int
        public var close: Int
        public var different: Int
        public var onlyInA: Int
        public var onlyInB: Int
        public var shapeMismatches: Int
        public var dtypeChanges: Int
        public var metadataChanges: Int
        /// The verdict: see ``CheckpointDiff``.
        public var checkpointsEqual: Bool

        enum CodingKeys: String, CodingKey {
            case compared, identical, equal, close, different
            case onlyInA = "only_in_a"
            case onlyInB = "only_in_b"
            case shapeMismatches = "shape_mismatches"
            case dtypeChanges = "dtype_changes"
            case metadataChanges = "metadata_changes"
            case checkpointsEqual = "checkpoints_equal"
        }
    }

    public var a: Side
    public var b: Side
    public var tolerance: Tolerance
    public var map: [NameMap.Rule]
    /// Original names of tensors with no partner, in file order.
    public var onlyInA: [String]
    public var onlyInB: [String]
    public var shapeMismatches: [ShapeMismatch]
    public var metadata: [MetadataChange]
    /// Common tensors, the largest relative change first.
    public var tensors: [TensorComparison]
    /// The change per layer, in order of first appearance in A (``GroupChange``).
    public var layers: [GroupChange]
    /// The change per ``LayerKind`` (query, key, value, FFN up, …), in data-flow order.
    public var kinds: [GroupChange]
    /// The change per kind within each layer, layer by layer.
    public var layerKinds: [GroupChange]
    public var summary: Summary

    enum CodingKeys: String, CodingKey {
        case a, b, tolerance, map, metadata, tensors, summary, layers, kinds
        case layerKinds = "layer_kinds"
        case onlyInA = "only_in_a"
        case onlyInB = "only_in_b"
        case shapeMismatches = "shape_mismatches"
    }

    /// 0 when the checkpoints are equal, 1 otherwise (the CLI uses 2 for errors).
    public var exitStatus: Int32 { summary.checkpointsEqual ? 0 : 1 }

    /// Compares `a` with `b` (`b` is the reference of the tolerance rule).
    ///
    /// Tensors are compared two at a time, each in parallel chunks of 1 Mi elements decoded on the
    /// fly (quantized tensors are dequantized once), so memory stays within a few tensors.
    /// - Throws: ``DiffError`` for a bad name mapping; ``UsageError`` for a negative or NaN
    ///   tolerance or a tensor filter that matches no tensor of either file; a reader's error when
    ///   a tensor cannot be read.
    public static func compare(
        _ a: any CheckpointReader, _ b: any CheckpointReader, options: DiffOptions = DiffOptions()
    ) throws -> CheckpointDiff {
        try options.tolerance.validate()
        if !options.tensorFilters.isEmpty {
            let all = (a.tensors + b.tensors).map { options.nameMap.apply(to: $0.name) }
            try UsageError.requireMatches(
                options.tensorFilters, in: all, option: "--tensor",
                source: "\(a.url.lastPathComponent) or \(b.url.lastPathComponent)")
        }
        let namesA = try mapped(a, options)
        let namesB = try mapped(b, options)
        let indexB = Dictionary(uniqueKeysWithValues: namesB.map { ($0.mapped, $0.info) })
        let mappedA = Set(namesA.map(\.mapped))

        var pairs: [(name: String, a: TensorInfo, b: TensorInfo)] = []
        var shapeMismatches: [ShapeMismatch] = []
        var onlyInA: [String] = []
        for (name, info) in namesA {
            guard let other = indexB[name] else {
                onlyInA.append(info.name)
                continue
            }
            if info.shape == other.shape {
                pairs.append((name, info, other))
            } else {
                shapeMismatches.append(ShapeMismatch(
                    name: name, nameA: info.name, nameB: other.name, dtypeA: info.dtype.rawValue,
                    dtypeB: other.dtype.rawValue, shapeA: info.shape, shapeB: other.shape))
            }
        }
        let onlyInB = namesB.filter { !mappedA.contains($0.mapped) }.map(\.info.name)

        let counter = Counter()
        let tolerance = options.tolerance
        let frozenPairs = pairs
        let results = try Parallel.map(count: frozenPairs.count, workers: 2) { index -> (TensorComparison, PairSums?) in
            let pair = frozenPairs[index]
            let result = try compareTensor(name: pair.name, pair.a, in: a, pair.b, in: b, tolerance: tolerance)
            options.progress?(counter.increment(), frozenPairs.count, pair.name)
            return result
        }
        let groups = GroupChange.groups(of: results.map {
            GroupChange.Member(name: $0.0.name, identical: $0.0.status == .identical, sums: $0.1)
        })
        var comparisons = results.map(\.0)
        comparisons.sort { x, y in
            let rx = x.relativeL2 ?? 0, ry = y.relativeL2 ?? 0
            if rx != ry { return rx > ry }
            if x.status != y.status { return x.status > y.status }
            return x.name < y.name
        }

        var metadata: [MetadataChange] = []
        for key in Set(a.metadata.keys).union(b.metadata.keys).sorted() where a.metadata[key] != b.metadata[key] {
            metadata.append(MetadataChange(key: key, a: a.metadata[key], b: b.metadata[key]))
        }
        let count = { (status: TensorComparison.Status) in comparisons.count { $0.status == status } }
        let different = count(.different)
        let summary = Summary(
            compared: comparisons.count, identical: count(.identical), equal: count(.equal),
            close: count(.close), different: different, onlyInA: onlyInA.count, onlyInB: onlyInB.count,
            shapeMismatches: shapeMismatches.count, dtypeChanges: comparisons.count(where: \.dtypeChanged),
            metadataChanges: metadata.count,
            checkpointsEqual: different == 0 && onlyInA.isEmpty && onlyInB.isEmpty && shapeMismatches.isEmpty)
        return CheckpointDiff(
            a: Side(file: a.url.relativePath, format: a.format.rawValue), b: Side(file: b.url.relativePath, format: b.format.rawValue),
            tolerance: tolerance, map: options.nameMap.rules, onlyInA: onlyInA, onlyInB: onlyInB,
            shapeMismatches: shapeMismatches, metadata: metadata, tensors: comparisons,
            layers: groups.layers, kinds: groups.kinds, layerKinds: groups.layerKinds, summary: summary)
    }

    /// The reader's selected tensors with their mapped names; two names mapping to one is an error.
    private static func mapped(_ reader: any CheckpointReader, _ options: DiffOptions) throws -> [(mapped: String, info: TensorInfo)] {
        var seen: [String: String] = [:]
        var result: [(mapped: String, info: TensorInfo)] = []
        for info in reader.tensors {
            let name = options.nameMap.apply(to: info.name)
            guard options.tensorFilters.isEmpty || options.tensorFilters.contains(where: { $0.matches(name) }) else { continue }
            if let first = seen[name] { throw DiffError.ambiguousMapping(reader.url.path, first, info.name, name) }
            seen[name] = info.name
            result.append((name, info))
        }
        return result
    }

    /// Compares one pair of same-shaped tensors; the sums are `nil` unless it was compared value
    /// by value.
    static func compareTensor(
        name: String, _ infoA: TensorInfo, in readerA: any CheckpointReader,
        _ infoB: TensorInfo, in readerB: any CheckpointReader, tolerance: Tolerance
    ) throws -> (TensorComparison, PairSums?) {
        let storageA = try readerA.storage(of: infoA)
        let storageB = try readerB.storage(of: infoB)
        var result = TensorComparison(
            name: name, nameA: infoA.name, nameB: infoB.name, dtypeA: infoA.dtype.rawValue,
            dtypeB: infoB.dtype.rawValue, shape: infoA.shape, elements: infoA.elementCount, status: .different,
            outOfTolerance: 0, nonFiniteMismatches: 0)
        // Fast path: same dtype, both dense, same bytes.
        if infoA.dtype == infoB.dtype, case let .dense(x) = storageA, case let .dense(y) = storageB {
            let length = infoA.byteCount
            if x.count >= length, y.count >= length,
               x.withUnsafeBytes({ p in y.withUnsafeBytes { q in length == 0 || memcmp(p.baseAddress!, q.baseAddress!, length) == 0 } }) {
                result.status = .identical
                (result.maxAbs, result.meanAbs, result.relativeL2, result.sqnrDB) = (0, 0, 0, .infinity)
                result.cosine = 1
                return (result, nil)
            }
            if !infoA.dtype.isConvertibleToFloat {
                result.note = "compared by bytes only: \(infoA.dtype.rawValue) has no float view"
                return (result, nil)
            }
        }
        guard infoA.dtype.isConvertibleToFloat || isQuantized(storageA),
              infoB.dtype.isConvertibleToFloat || isQuantized(storageB) else {
            result.note = "not compared: \(infoA.dtype.rawValue) vs \(infoB.dtype.rawValue) have no common float view"
            return (result, nil)
        }
        let valuesA = try InspectError.naming(readerA.url.path, infoA.name) { try FloatValues(storage: storageA, info: infoA) }
        let valuesB = try InspectError.naming(readerB.url.path, infoB.name) { try FloatValues(storage: storageB, info: infoB) }
        let partials = try Parallel.mapChunks(count: valuesA.count) { range in
            valuesA.withChunk(range) { a in
                valuesB.withChunk(range) { b in
                    PairAccumulator.sums(a, b, offset: range.lowerBound, tolerance: tolerance)
                }
            }
        }
        var acc = PairAccumulator()
        for p in partials { acc.merge(p) }
        // Done with both tensors: mapped input pages leave the process (they stay in the page
        // cache), so resident memory does not grow with the checkpoints (issue 12 §3).
        for storage in [storageA, storageB] {
            if case let .dense(bytes) = storage { bytes.releaseResidentPages() }
        }
        result.outOfTolerance = acc.outOfTolerance
        result.nonFiniteMismatches = acc.nonFiniteMismatches
        result.status = acc.outOfTolerance > 0 ? .different : (acc.allEqual ? .equal : .close)
        if acc.finitePairs > 0 {
            result.maxAbs = acc.maxAbs
            result.meanAbs = acc.sumAbs / Double(acc.finitePairs)
            result.relativeL2 = acc.sumD2 == 0 ? 0 : (acc.sumA2 == 0 ? .infinity : (acc.sumD2 / acc.sumA2).squareRoot())
            result.cosine = acc.sumA2 > 0 && acc.sumB2 > 0 ? acc.sumAB / (acc.sumA2 * acc.sumB2).squareRoot() : nil
            result.sqnrDB = acc.sumD2 == 0 ? .infinity : 10 * log10(acc.sumA2 / acc.sumD2)
        }
        if let w = acc.worst {
            result.worst = .init(index: multiIndex(w.index, shape: infoA.shape), flatIndex: w.index, a: w.a, b: w.b)
        }
        return (result, PairSums(acc))
    }

    private static func isQuantized(_ storage: TensorStorage) -> Bool {
        if case .quantized = storage { return true }
        return false
    }

    /// The row-major multi-dimensional index of flat index `flat` in `shape`.
    static func multiIndex(_ flat: Int, shape: [Int]) -> [Int] {
        var rest = flat
        var index = [Int](repeating: 0, count: shape.count)
        for axis in shape.indices.reversed() where shape[axis] > 0 {
            index[axis] = rest % shape[axis]
            rest /= shape[axis]
        }
        return index
    }

    /// The diff as JSON (``ReportJSON`` conventions).
    public func jsonData() throws -> Data { try ReportJSON.data(self) }
}
