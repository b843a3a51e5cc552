import Foundation
import QPKCore

/// Reads a QPK file, version 1 or 2 (`spec/qpk-format.md`), memory-mapped.
///
/// Opening checks the structural rules 1–21, 26–28 and 31 (preamble, header CRC, every offset and length);
/// ``storage(of:)`` verifies the CRC-32 of the tensor's blobs before decoding them, and
/// ``validate()`` checks every rule and every blob. ``record(for:)`` describes a tensor's
/// quantization without touching its blobs.
public final class QPKReader: CheckpointReader {
    public let url: URL
    public var format: CheckpointFormat { .qpk }
    public let tensors: [TensorInfo]
    /// The source checkpoint's metadata (`__metadata__`), carried over.
    public let metadata: [String: String]
    /// The recipe the file was made with.
    public let recipe: [String: QPKJSONValue]
    public let provenance: QPKProvenance
    /// Every tensor's header record, in file order.
    public let records: [QPKTensorRecord]
    private let file: MappedFile
    private let headerOffset: Int
    private let indexByName: [String: Int]

    /// Maps the file at `url` and checks its structure.
    /// - Throws: ``FileAccessError`` when it cannot be mapped, or the first ``QPKError`` found.
    public convenience init(url: URL) throws {
        let file = try MappedFile(url: url)
        let (parsed, problems) = QPKStructure.check(file.bytes, path: url.path)
        if let first = problems.first { throw first }
        guard let parsed else { throw QPKError.invalidHeader(path: url.path, reason: "unreadable header") }
        self.init(url: url, file: file, parsed: parsed)
    }

    private init(url: URL, file: MappedFile, parsed: QPKParsedFile) {
        self.url = url
        self.file = file
        records = parsed.records
        tensors = parsed.records.map(\.info)
        metadata = parsed.metadata
        recipe = parsed.recipe
        provenance = parsed.provenance
        headerOffset = parsed.headerOffset
        indexByName = Dictionary(parsed.records.enumerated().map { ($1.info.name, $0) }, uniquingKeysWith: { first, _ in first })
    }

    /// Whether `prefix` starts with the QPK magic (at least its first 4 bytes `89 51 50 4B`
    /// when fewer than 8 are given).
    public static func hasQPKMagic(_ prefix: UnsafeRawBufferPointer) -> Bool {
        let needed = min(prefix.count, QPKLayout.magic.count)
        guard needed >= 4 else { return false }
        return zip(prefix.prefix(needed), QPKLayout.magic).allSatisfy { $0 == $1 }
    }

    /// The parameters kept at full precision, over all quantized tensors (`spec` §4.6).
    public var outlierParameterCount: Int {
        records.reduce(0) { $0 + ($1.encoding == .affine ? $1.outlierParameterCount : 0) }
    }

    /// The parameters of all quantized (`affine`) tensors.
    public var quantizedParameterCount: Int {
        records.reduce(0) { $0 + ($1.encoding == .affine ? $1.info.elementCount : 0) }
    }

    /// The recipe's `outlier_budget` (a fraction of each tensor's parameters), when recorded.
    public var outlierBudget: Double? {
        switch recipe["outlier_budget"] {
        case let .number(value)?: value
        case let .integer(value)?: Double(value)
        default: nil
        }
    }

    /// The tensor called `name`, if any (O(1)).
    public func tensor(named name: String) -> TensorInfo? {
        indexByName[name].map { tensors[$0] }
    }

    /// The header record of the tensor called `name`: encoding, bits, group size, outliers, error
    /// and stored bytes, without loading any blob.
    public func record(for name: String) -> QPKTensorRecord? {
        indexByName[name].map { records[$0] }
    }

    /// The tensor's data after verifying its blobs' CRC-32s: `.dense` (a view into the mapping)
    /// for `raw` tensors, `.quantized` for `affine` ones.
    /// - Throws: ``CheckpointError/noSuchTensor(_:_:)``, or a ``QPKError`` naming the tensor and blob.
    public func storage(of tensor: TensorInfo) throws -> TensorStorage {
        guard let index = indexByName[tensor.name] else { throw CheckpointError.noSuchTensor(url.path, tensor.name) }
        let record = records[index]
        if let problem = checksumProblems(record).first { throw problem }
        switch record.encoding {
        case .raw:
            let blob = record.blobs[.data]!
            return .dense(file.slice(blob.offset..<(blob.offset + blob.length)))
        case .affine:
            return .quantized(try quantized(record))
        }
    }

    /// Checks every rule of `spec/qpk-format.md` §8 that opening did not, and every blob CRC:
    /// one ``QPKProblem`` per problem, each naming its tensor. Empty when the file is valid.
    public func validate() -> [QPKProblem] {
        var problems: [QPKError] = []
        for record in records {
            let checksums = checksumProblems(record)
            problems += checksums
            guard checksums.isEmpty, record.encoding == .affine else { continue }
            if let outliers = record.outliers {
                let indices = withExtendedLifetime(file) { Self.u32s(bytes(of: record.blobs[.outlierIndices]!)) }
                do { try checkOutlierIndices(indices, record: record, kind: outliers.kind) } catch let error as QPKError {
                    problems.append(error)
                } catch {}
            }
            problems += symmetricZeroProblems(record)
            problems += sideTableProblems(record)
        }
        problems += paddingProblems()
        return problems.map(QPKProblem.init)
    }

    /// Validates the file at `url`: a problem for whatever prevents opening it, or else every
    /// problem ``validate()`` finds. Structural problems in several tensors are all reported.
    public static func validate(url: URL) -> [QPKProblem] {
        let file: MappedFile
        do { file = try MappedFile(url: url) } catch {
            let reason = (error as? FileAccessError)?.description ?? "\(error)"
            return [QPKProblem(.invalidHeader(path: url.path, reason: "cannot read the file (\(reason))"))]
        }
        let (parsed, problems) = QPKStructure.check(file.bytes, path: url.path)
        guard problems.isEmpty, let parsed else { return problems.map(QPKProblem.init) }
        return QPKReader(url: url, file: file, parsed: parsed).validate()
    }

    // MARK: - Blob decoding

    private func bytes(of blob: QPKBlobReference) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: file.bytes[blob.offset..<(blob.offset + blob.length)])
    }

    /// Rule 22 for every blob of `record`.
    private func checksumProblems(_ record: QPKTensorRecord) -> [QPKError] {
        record.blobs.keys.sorted().compactMap { kind in
            let blob = record.blobs[kind]!
            let computed = withExtendedLifetime(file) { CRC32.checksum(bytes(of: blob)) }
            return computed == blob.crc32 ? nil : .blobChecksumMismatch(
                path: url.path, tensor: record.info.name, blob: kind.rawValue, stored: blob.crc32, computed: computed)
        }
    }

    /// The zero-points of an affine tensor as fp16, whatever their storage (§5.3).
    private func zeroPoints(_ record: QPKTensorRecord) -> [Float16] {
        let layout = record.layout!
        let (rows, columns) = record.matrixShape
        let groups = rows * layout.groupsPerRow(columns: columns)
        return withExtendedLifetime(file) {
            switch layout.zeroPoints {
            case .float16:
                return Self.float16s(bytes(of: record.blobs[.zeros]!))
            case .packed:
                return QPKBitStream.unpack(bytes(of: record.blobs[.zeros]!), bits: layout.bits, count: groups)
                    .map { Float16(Float($0)) }
            case .implicit:
                return [Float16](repeating: Float16(Float(1 << (layout.bits - 1))), count: groups)
            }
        }
    }

    /// Rules 29, 30 and 32: the group index, codebook and row scales of `record`, when it has them.
    private func sideTableProblems(_ record: QPKTensorRecord) -> [QPKError] {
        guard let layout = record.layout else { return [] }
        var problems: [QPKError] = []
        withExtendedLifetime(file) {
            if layout.hasGroupIndex {
                let index = Self.groupIndex(bytes(of: record.blobs[.groupIndex]!), layout: layout, columns: record.matrixShape.columns)
                if let reason = Self.groupIndexProblem(index, layout: layout, columns: record.matrixShape.columns) {
                    problems.append(.groupIndexInvalid(path: url.path, tensor: record.info.name, reason: reason))
                }
            }
            if layout.hasCodebook {
                let table = Self.float16s(bytes(of: record.blobs[.codebook]!))
                if let bad = table.firstIndex(where: { !$0.isFinite }) {
                    problems.append(.codebookNotFinite(path: url.path, tensor: record.info.name, entry: bad))
                }
            }
            if layout.scaleCodes != nil {
                let rowScales = Self.float16s(bytes(of: record.blobs[.rowScales]!))
                if let bad = rowScales.firstIndex(where: { !$0.isFinite }) {
                    problems.append(.rowScaleNotFinite(path: url.path, tensor: record.info.name, row: bad))
                }
            }
        }
        return problems
    }

    /// What is wrong with a group index (rule 29), or `nil`: every entry `< G`, and no group
    /// with more than `group_size` columns.
    static func groupIndexProblem(_ index: [UInt32], layout: QuantizationLayout, columns: Int) -> String? {
        let groups = layout.groupsPerRow(columns: columns)
        var members = [Int](repeating: 0, count: groups)
        for (c, g) in index.enumerated() {
            guard Int(g) < groups else { return "column \(c) is in group \(g), the row has \(groups) groups" }
            members[Int(g)] += 1
            if members[Int(g)] > layout.groupSize {
                return "group \(g) has more than group_size \(layout.groupSize) columns"
            }
        }
        return nil
    }

    /// Decodes an affine tensor's blobs; checks rules 23, 29, 30 and 32.
    private func quantized(_ record: QPKTensorRecord) throws -> QuantizedTensor {
        let layout = record.layout!
        if let problem = sideTableProblems(record).first { throw problem }
        let zeros = zeroPoints(record)
        return try withExtendedLifetime(file) {
            let codes = [UInt8](bytes(of: record.blobs[.codes]!))
            // §5.8: with log-coded scales the `scales` blob holds K-bit codes and `scales` stays empty.
            let (rows, columns) = record.matrixShape
            let scaleCodes = layout.scaleCodes.map {
                QPKBitStream.unpack(bytes(of: record.blobs[.scales]!), bits: $0.bits, count: rows * layout.groupsPerRow(columns: columns))
            }
            let scales = scaleCodes == nil ? Self.float16s(bytes(of: record.blobs[.scales]!)) : []
            var outliers: OutlierSet?
            if let outlierRecord = record.outliers {
                let indices = Self.u32s(bytes(of: record.blobs[.outlierIndices]!))
                try checkOutlierIndices(indices, record: record, kind: outlierRecord.kind)
                outliers = OutlierSet(
                    kind: outlierRecord.kind, indices: indices, values: Self.float32s(bytes(of: record.blobs[.outlierValues]!)),
                    statistic: outlierRecord.statistic, threshold: outlierRecord.threshold)
            }
            return QuantizedTensor(
                info: record.info, layout: layout, codes: codes, scales: scales, zeros: zeros, outliers: outliers,
                error: record.error, method: record.method ?? "", decision: record.decision,
                groupIndex: layout.hasGroupIndex
                    ? Self.groupIndex(bytes(of: record.blobs[.groupIndex]!), layout: layout, columns: record.matrixShape.columns) : nil,
                codebook: layout.hasCodebook ? Self.float16s(bytes(of: record.blobs[.codebook]!)) : nil,
                transformSigns: layout.transform != nil ? [UInt8](bytes(of: record.blobs[.transformSigns]!)) : nil,
                scaleCodes: scaleCodes,
                rowScales: scaleCodes != nil ? Self.float16s(bytes(of: record.blobs[.rowScales]!)) : nil)
        }
    }

    private func checkOutlierIndices(_ indices: [Int64], record: QPKTensorRecord, kind: OutlierSet.Kind) throws {
        let (rows, columns) = record.matrixShape
        let bound: Int64 = switch kind {
        case .rows: Int64(rows)
        case .columns: Int64(columns)
        case .elements: Int64(record.info.elementCount)
        }
        var previous: Int64 = -1
        for (position, index) in indices.enumerated() {
            guard index > previous else {
                throw QPKError.outlierIndicesInvalid(
                    path: url.path, tensor: record.info.name, reason: "index \(index) at position \(position) does not increase")
            }
            guard index < bound else {
                throw QPKError.outlierIndicesInvalid(
                    path: url.path, tensor: record.info.name, reason: "index \(index) at position \(position) is ≥ \(bound)")
            }
            previous = index
        }
    }

    /// Rule 24: a symmetric tensor's zero-points are all 2^(bits−1) (f16 or packed; `none`
    /// stores none).
    private func symmetricZeroProblems(_ record: QPKTensorRecord) -> [QPKError] {
        guard let layout = record.layout, layout.scheme == .symmetric, layout.zeroPoints != .implicit else { return [] }
        let expected = Float16(Float(1 << (layout.bits - 1)))
        let zeros = zeroPoints(record)
        guard let bad = zeros.first(where: { $0 != expected }) else { return [] }
        return [.symmetricZeroPoint(path: url.path, tensor: record.info.name, found: Double(bad), expected: Double(expected))]
    }

    /// Rule 25: every byte between blobs, in [64, header offset), is zero.
    private func paddingProblems() -> [QPKError] {
        var spans = records.flatMap { $0.blobs.values.filter { $0.length > 0 }.map { ($0.offset, $0.offset + $0.length) } }
        spans.sort { $0 < $1 }
        var cursor = QPKLayout.preambleSize
        var problems: [QPKError] = []
        withExtendedLifetime(file) {
            func scan(_ end: Int) {
                guard cursor < end else { return }
                if let bad = file.bytes[cursor..<end].firstIndex(where: { $0 != 0 }) {
                    problems.append(.nonZeroPadding(path: url.path, offset: bad))
                }
            }
            for (start, end) in spans {
                scan(start)
                cursor = max(cursor, end)
            }
            scan(headerOffset)
        }
        return problems
    }

    static func float16s(_ bytes: UnsafeRawBufferPointer) -> [Float16] {
        (0..<(bytes.count / 2)).map { Float16(bitPattern: bytes.loadLittleEndian(UInt16.self, at: $0 * 2)) }
    }

    static func float32s(_ bytes: UnsafeRawBufferPointer) -> [Float] {
        (0..<(bytes.count / 4)).map { Float(bitPattern: bytes.loadLittleEndian(UInt32.self, at: $0 * 4)) }
    }

    /// The `columns` entries of a packed `group_index` blob (§5.5).
    static func groupIndex(_ bytes: UnsafeRawBufferPointer, layout: QuantizationLayout, columns: Int) -> [UInt32] {
        let bits = QuantizedByteCount.groupIndexBits(groupsPerRow: layout.groupsPerRow(columns: columns))
        return QPKBitStream.unpack(bytes, bits: bits, count: columns, as: UInt32.self)
    }

    static func u32s(_ bytes: UnsafeRawBufferPointer) -> [Int64] {
        (0..<(bytes.count / 4)).map { Int64(bytes.loadLittleEndian(UInt32.self, at: $0 * 4)) }
    }
}
