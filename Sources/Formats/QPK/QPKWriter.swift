import Foundation
import QPKCore

/// Writes a QPK file (`spec/qpk-format.md`), streaming: version 1, or version 2 when a tensor
/// uses a v2 feature (packed or implicit zero-points, a group index, a codebook, a transform,
/// log-coded scales).
///
/// The initializer reserves the 64-byte preamble; each ``write(_:storage:)`` appends that
/// tensor's blobs at the next 64-byte boundary (in any tensor order) and keeps only their
/// offsets, lengths and CRCs; ``finish()`` appends the JSON header (tensors in the announced
/// order), patches the preamble and renames the file into place. Memory is bounded by the
/// tensor being written. Every tensor is checked against its layout before a byte is written,
/// so the writer never produces a file that breaks a rule of §8.
public final class QPKWriter: CheckpointWriter {
    public let url: URL
    private let announced: [TensorInfo]
    private let announcedByName: [String: TensorInfo]
    private let metadata: [String: String]
    private let recipe: [String: QPKJSONValue]
    private let provenance: QPKProvenance
    private let output: AtomicOutput
    private var written: [String: QPKTensorRecord] = [:]
    private var finished = false
    private let lock = NSLock()

    /// Creates the temporary output file.
    /// - Parameters:
    ///   - tensors: every tensor the file will hold, in header order (names unique).
    ///   - metadata: the source checkpoint's `__metadata__`, carried over.
    ///   - recipe: how the file is made (any JSON object; see §4.5 for `outlier_budget`).
    ///   - overwrite: replace an existing file at `url`.
    public init(
        url: URL, tensors: [TensorInfo], metadata: [String: String], recipe: [String: QPKJSONValue],
        provenance: QPKProvenance, overwrite: Bool
    ) throws {
        var names = Set<String>()
        for tensor in tensors where !names.insert(tensor.name).inserted {
            throw QPKError.duplicateTensor(path: url.path, tensor: tensor.name)
        }
        self.url = url
        announced = tensors
        announcedByName = Dictionary(uniqueKeysWithValues: tensors.map { ($0.name, $0) })
        self.metadata = metadata
        self.recipe = recipe
        self.provenance = provenance
        output = try AtomicOutput(destination: url, overwrite: overwrite)
        try output.append([UInt8](repeating: 0, count: QPKLayout.preambleSize))
    }

    /// Appends one tensor's blobs. `.dense` storage is stored `raw` (its bytes must be exactly
    /// `info.byteCount`); `.quantized` storage is stored `affine` with its outliers and error.
    /// - Throws: ``QPKError`` when the tensor was not announced, was already written, or its
    ///   quantized data does not match its layout; I/O errors from the output.
    public func write(_ info: TensorInfo, storage: TensorStorage) throws {
        lock.lock()
        defer { lock.unlock() }
        let path = url.path
        guard !finished else { throw QPKError.writerFinished(path: path) }
        guard announcedByName[info.name] == info else { throw QPKError.tensorNotAnnounced(path: path, tensor: info.name) }
        guard written[info.name] == nil else { throw QPKError.tensorWrittenTwice(path: path, tensor: info.name) }
        switch storage {
        case let .dense(bytes):
            guard let expected = info.dtype.byteCount(elementCount: info.elementCount), bytes.count == expected else {
                throw QPKError.invalidStorage(path: path, tensor: info.name, reason: "\(bytes.count) dense bytes for shape \(info.shape) of \(info.dtype.rawValue)")
            }
            let data = try bytes.withUnsafeBytes { try appendBlob($0) }
            written[info.name] = QPKTensorRecord(info: info, encoding: .raw, blobs: [.data: data])
        case let .quantized(tensor):
            guard tensor.info == info else { throw QPKError.tensorNotAnnounced(path: path, tensor: tensor.info.name) }
            try check(tensor)
            written[info.name] = try appendQuantized(tensor)
        }
    }

    /// Writes the header and the preamble, and moves the file into place.
    /// - Throws: ``QPKError/tensorsNotWritten(path:tensors:)`` when an announced tensor is missing.
    public func finish() throws {
        lock.lock()
        defer { lock.unlock() }
        guard !finished else { throw QPKError.writerFinished(path: url.path) }
        let missing = announced.filter { written[$0.name] == nil }.map(\.name)
        guard missing.isEmpty else { throw QPKError.tensorsNotWritten(path: url.path, tensors: missing) }
        let records = announced.map { written[$0.name]! }
        var outlierParameters = 0, quantizedParameters = 0
        for record in records where record.encoding == .affine {
            outlierParameters += record.outlierParameterCount
            quantizedParameters += record.info.elementCount
        }
        let version = records.contains { $0.layout?.requiresVersion2 == true } ? QPKLayout.version2 : QPKLayout.version
        let document = QPKHeaderDocument(
            format: "qpk", version: Int(version), tensors: records.map(QPKHeaderDocument.Tensor.init),
            metadata: metadata, recipe: recipe,
            outliers: .init(parameters: outlierParameters, quantizedParameters: quantizedParameters),
            provenance: provenance)
        let header = [UInt8](try QPKHeaderDocument.encoder().encode(document))
        try output.pad(toMultipleOf: QPKLayout.alignment)
        let headerOffset = output.position
        try output.append(header)
        var preamble = QPKPreamble(
            headerOffset: UInt64(headerOffset), headerLength: UInt64(header.count), headerCRC: CRC32.checksum(header))
        preamble.version = version
        try preamble.encoded().withUnsafeBytes { try output.write(at: 0, $0) }
        try output.commit()
        finished = true
    }

    // MARK: - Blobs

    /// Pads to the next 64-byte boundary and appends `bytes` as one blob.
    private func appendBlob(_ bytes: UnsafeRawBufferPointer) throws -> QPKBlobReference {
        try output.pad(toMultipleOf: QPKLayout.alignment)
        let offset = output.position
        try output.append(bytes)
        return QPKBlobReference(offset: offset, length: bytes.count, crc32: CRC32.checksum(bytes))
    }

    private func appendBlob(_ bytes: [UInt8]) throws -> QPKBlobReference {
        try bytes.withUnsafeBytes { try appendBlob($0) }
    }

    private func appendQuantized(_ tensor: QuantizedTensor) throws -> QPKTensorRecord {
        var blobs: [QPKBlobKind: QPKBlobReference] = [:]
        blobs[.codes] = try appendBlob(tensor.codes)
        if let coding = tensor.layout.scaleCodes, let codes = tensor.scaleCodes {
            blobs[.scales] = try appendBlob(QPKBitStream.pack(codes, bits: coding.bits))
        } else {
            blobs[.scales] = try appendBlob(Self.littleEndianBytes(tensor.scales.map(\.bitPattern)))
        }
        switch tensor.layout.zeroPoints {
        case .float16: blobs[.zeros] = try appendBlob(Self.littleEndianBytes(tensor.zeros.map(\.bitPattern)))
        case .packed: blobs[.zeros] = try appendBlob(QPKBitStream.pack(tensor.zeros.map { UInt8(Float($0)) }, bits: tensor.layout.bits))
        case .implicit: break
        }
        if let groupIndex = tensor.groupIndex {
            let groups = tensor.layout.groupsPerRow(columns: tensor.matrixShape.columns)
            blobs[.groupIndex] = try appendBlob(QPKBitStream.pack(groupIndex, bits: QuantizedByteCount.groupIndexBits(groupsPerRow: groups)))
        }
        if let codebook = tensor.codebook { blobs[.codebook] = try appendBlob(Self.littleEndianBytes(codebook.map(\.bitPattern))) }
        if let signs = tensor.transformSigns { blobs[.transformSigns] = try appendBlob(signs) }
        if let rowScales = tensor.rowScales { blobs[.rowScales] = try appendBlob(Self.littleEndianBytes(rowScales.map(\.bitPattern))) }
        var outlierRecord: QPKOutlierRecord?
        if let outliers = tensor.outliers {
            blobs[.outlierIndices] = try appendBlob(Self.littleEndianBytes(outliers.indices.map { UInt32($0) }))
            blobs[.outlierValues] = try appendBlob(Self.littleEndianBytes(outliers.values.map(\.bitPattern)))
            outlierRecord = QPKOutlierRecord(
                kind: outliers.kind, count: outliers.indices.count, statistic: outliers.statistic, threshold: outliers.threshold)
        }
        return QPKTensorRecord(
            info: tensor.info, encoding: .affine, layout: tensor.layout, method: tensor.method,
            decision: tensor.decision, outliers: outlierRecord, error: tensor.error, blobs: blobs)
    }

    /// The v2 features of `tensor` agree with its layout and break no rule of §8 (26–32).
    private func checkVersion2(_ tensor: QuantizedTensor, rows: Int, columns: Int, invalid: (String) -> QPKError) throws {
        let layout = tensor.layout
        let top = Float((1 << layout.bits) - 1)
        switch layout.zeroPoints {
        case .float16: break
        case .packed:
            guard tensor.zeros.allSatisfy({ z in let f = Float(z); return f >= 0 && f <= top && f == f.rounded() }) else {
                throw invalid("packed zero-points must be integers in [0, \(Int(top))]")
            }
        case .implicit:
            guard layout.scheme == .symmetric else { throw invalid("zero-points 'none' need the symmetric scheme") }
        }
        guard layout.hasGroupIndex == (tensor.groupIndex != nil), layout.hasCodebook == (tensor.codebook != nil),
              (layout.transform != nil) == (tensor.transformSigns != nil)
        else { throw invalid("the layout's group index / codebook / transform disagree with the data given") }
        if let groupIndex = tensor.groupIndex {
            guard groupIndex.count == columns else { throw invalid("\(groupIndex.count) group-index entries for \(columns) columns") }
            if let reason = QPKReader.groupIndexProblem(groupIndex, layout: layout, columns: columns) { throw invalid(reason) }
        }
        if let codebook = tensor.codebook {
            guard codebook.count == 1 << layout.bits else { throw invalid("\(codebook.count) codebook entries, \(layout.bits)-bit codes need \(1 << layout.bits)") }
            guard codebook.allSatisfy(\.isFinite) else { throw invalid("codebook entries must be finite") }
        }
        if let coding = layout.scaleCodes {
            guard coding.isValid else {
                throw invalid("scale codes of \(coding.bits) bits over \(coding.octaves) octaves: bits must be 2 … 8, octaves 1 … 32")
            }
            guard let rowScales = tensor.rowScales, rowScales.count == rows else {
                throw invalid("\(tensor.rowScales?.count ?? 0) row scales for \(rows) rows")
            }
            guard rowScales.allSatisfy(\.isFinite) else { throw invalid("row scales must be finite") }
            guard tensor.scaleCodes?.allSatisfy({ Int($0) < 1 << coding.bits }) == true else {
                throw invalid("scale codes must be given, each below 2^\(coding.bits)")
            }
        } else {
            guard tensor.scaleCodes == nil, tensor.rowScales == nil else {
                throw invalid("scale codes / row scales given for a layout without scale_codes")
            }
        }
        if let transform = layout.transform, let signs = tensor.transformSigns {
            guard WeightTransform.isValidBlock(transform.blockSize, columns: columns) else {
                throw invalid("transform block \(transform.blockSize) is not a power of two ≥ 2 dividing \(columns) columns")
            }
            guard signs.count == QuantizedByteCount.transformSigns(columns: columns) else {
                throw invalid("\(signs.count) transform sign bytes for \(columns) columns")
            }
        }
    }

    private static func littleEndianBytes<T: FixedWidthInteger>(_ values: [T]) -> [UInt8] {
        let little = values.map(\.littleEndian)
        return little.withUnsafeBytes { [UInt8]($0) }
    }

    /// Rejects quantized data that would break a rule of `spec/qpk-format.md` §8.
    private func check(_ tensor: QuantizedTensor) throws {
        let name = tensor.info.name
        func invalid(_ reason: String) -> QPKError { .invalidStorage(path: url.path, tensor: name, reason: reason) }
        let layout = tensor.layout
        guard tensor.info.dtype.isFloatingPoint else { throw invalid("dtype \(tensor.info.dtype.rawValue) cannot be quantized") }
        guard [2, 3, 4, 8].contains(layout.bits), layout.groupSize >= 1 else {
            throw invalid("bits \(layout.bits) / group size \(layout.groupSize)")
        }
        let (rows, columns) = tensor.matrixShape
        guard let elements = QPKStructure.checkedProduct(tensor.info.shape),
              let codeBits = QPKStructure.checkedProduct([elements, layout.bits]),
              let groups = QPKStructure.checkedProduct([rows, layout.groupsPerRow(columns: columns)])
        else { throw invalid("shape \(tensor.info.shape) overflows") }
        let codeBytes = codeBits / 8 + (codeBits % 8 == 0 ? 0 : 1)
        guard tensor.codes.count == codeBytes else { throw invalid("\(tensor.codes.count) code bytes, expected \(codeBytes)") }
        // With log-coded scales (§5.8) the group scales are the codes and `scales` is empty.
        let scaleCount = layout.scaleCodes == nil ? tensor.scales.count : tensor.scaleCodes?.count ?? 0
        guard scaleCount == groups, tensor.zeros.count == groups else {
            throw invalid("\(scaleCount) scales and \(tensor.zeros.count) zero-points for \(groups) groups")
        }
        guard layout.scaleCodes == nil || tensor.scales.isEmpty else {
            throw invalid("\(tensor.scales.count) fp16 scales given with scale codes, which replace them")
        }
        if layout.scheme == .symmetric {
            let expected = Float16(Float(1 << (layout.bits - 1)))
            // Compared as bit patterns: a Float16 `==` is a library conversion per value on CPUs
            // without F16C, and the expected zero has a single pattern (it is not ±0 or NaN).
            guard tensor.zeros.allSatisfy({ $0.bitPattern == expected.bitPattern }) else {
                throw invalid("symmetric zero-points must all be \(expected)")
            }
        }
        try checkVersion2(tensor, rows: rows, columns: columns, invalid: invalid)
        guard let outliers = tensor.outliers else { return }
        let bound: Int = switch outliers.kind {
        case .rows: rows
        case .columns: columns
        case .elements: elements
        }
        guard Int64(bound) - 1 <= QPKLayout.maxOutlierIndex else { throw invalid("outlier indices up to \(bound - 1) do not fit in u32") }
        var previous: Int64 = -1
        for index in outliers.indices {
            guard index > previous, index < Int64(bound) else {
                throw invalid("outlier \(outliers.kind.rawValue) index \(index) is out of range or not strictly increasing")
            }
            previous = index
        }
        let covered = outliers.parameterCount(rows: rows, columns: columns)
        guard outliers.values.count == covered else {
            throw invalid("\(outliers.values.count) outlier values for \(covered) covered parameters")
        }
    }
}
