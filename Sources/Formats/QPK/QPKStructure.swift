import Foundation
import QPKCore

/// A QPK file whose preamble and header passed the structural rules.
struct QPKParsedFile: Sendable {
    var headerOffset: Int
    var records: [QPKTensorRecord]
    var metadata: [String: String]
    var recipe: [String: QPKJSONValue]
    var provenance: QPKProvenance
}

/// The structural validation rules 1–21, 26–28 and 31 of `spec/qpk-format.md` §8: everything that can be
/// checked from the preamble and the JSON header without reading any blob.
///
/// All arithmetic on untrusted offsets and lengths is overflow-checked before it is used.
enum QPKStructure {
    /// Checks `bytes` (a whole file). Returns the parsed file when the header could be read
    /// (rules 1–10 hold), and every problem found.
    static func check(_ bytes: UnsafeRawBufferPointer, path: String) -> (QPKParsedFile?, [QPKError]) {
        guard bytes.count >= QPKLayout.preambleSize else { return (nil, [.fileTooSmall(path: path, size: bytes.count)]) }
        guard QPKReader.hasQPKMagic(bytes) else { return (nil, [.badMagic(path: path)]) }
        let preamble = QPKPreamble(decoding: bytes)
        guard QPKLayout.supportedVersions.contains(preamble.version) else {
            return (nil, [.unsupportedVersion(path: path, version: preamble.version)])
        }
        let computedPreambleCRC = CRC32.checksum(UnsafeRawBufferPointer(rebasing: bytes[0..<60]))
        guard computedPreambleCRC == preamble.storedCRC else {
            return (nil, [.preambleChecksumMismatch(path: path, stored: preamble.storedCRC, computed: computedPreambleCRC)])
        }
        guard preamble.flags == 0, preamble.reservedIsZero else { return (nil, [.reservedNotZero(path: path)]) }
        let offset = preamble.headerOffset, length = preamble.headerLength
        guard offset >= UInt64(QPKLayout.preambleSize), offset % UInt64(QPKLayout.alignment) == 0,
              length > 0, length <= QPKLayout.maxHeaderLength
        else { return (nil, [.headerMisplaced(path: path, offset: offset, length: length)]) }
        let (end, overflow) = offset.addingReportingOverflow(length)
        guard !overflow, end <= UInt64(bytes.count) else {
            return (nil, [.truncated(path: path, needed: overflow ? .max : end, size: bytes.count)])
        }
        guard end == UInt64(bytes.count) else { return (nil, [.trailingBytes(path: path, expected: end, size: bytes.count)]) }
        let header = UnsafeRawBufferPointer(rebasing: bytes[Int(offset)..<Int(end)])
        let computedHeaderCRC = CRC32.checksum(header)
        guard computedHeaderCRC == preamble.headerCRC else {
            return (nil, [.headerChecksumMismatch(path: path, stored: preamble.headerCRC, computed: computedHeaderCRC)])
        }
        let document: QPKHeaderDocument
        switch decode(header, path: path) {
        case let .success(decoded): document = decoded
        case let .failure(error): return (nil, [error])
        }
        guard document.format == "qpk" else {
            return (nil, [.invalidHeader(path: path, reason: "'format' is '\(document.format)', not 'qpk'")])
        }
        guard document.version == Int(preamble.version) else {
            return (nil, [.invalidHeader(path: path, reason: "header version \(document.version) differs from preamble version \(preamble.version)")])
        }
        return checkTensors(document, headerOffset: Int(offset), version: preamble.version, path: path)
    }

    private static func decode(_ header: UnsafeRawBufferPointer, path: String) -> Result<QPKHeaderDocument, QPKError> {
        if header.starts(with: [0xEF, 0xBB, 0xBF]) {
            return .failure(.invalidHeader(path: path, reason: "header starts with a byte-order mark"))
        }
        guard String(validating: header, as: UTF8.self) != nil else {
            return .failure(.invalidHeader(path: path, reason: "header is not valid UTF-8"))
        }
        if let key = QPKHeaderDocument.firstDuplicateKey(in: header) {
            return .failure(.duplicateKey(path: path, key: key))
        }
        do {
            return .success(try QPKHeaderDocument.decoder().decode(QPKHeaderDocument.self, from: Data(header)))
        } catch {
            return .failure(.invalidHeader(path: path, reason: describeDecodingError(error)))
        }
    }

    private static func checkTensors(
        _ document: QPKHeaderDocument, headerOffset: Int, version: UInt32, path: String
    ) -> (QPKParsedFile?, [QPKError]) {
        var problems: [QPKError] = []
        var records: [QPKTensorRecord] = []
        var seen = Set<String>()
        for entry in document.tensors {
            guard seen.insert(entry.name).inserted else {
                problems.append(.duplicateTensor(path: path, tensor: entry.name))
                continue
            }
            let before = problems.count
            let record = checkTensor(entry, headerOffset: headerOffset, version: version, path: path, problems: &problems)
            if let record, problems.count == before { records.append(record) }
        }
        problems += overlaps(records, path: path)
        if problems.isEmpty {
            var outlierParameters = 0, quantizedParameters = 0
            for record in records where record.encoding == .affine {
                outlierParameters += record.outlierParameterCount
                quantizedParameters += record.info.elementCount
            }
            let totals = document.outliers
            if totals.parameters != outlierParameters || totals.quantizedParameters != quantizedParameters {
                problems.append(.outlierTotalsMismatch(
                    path: path,
                    reason: "say \(totals.parameters) outlier / \(totals.quantizedParameters) quantized parameters, the tensors have \(outlierParameters) / \(quantizedParameters)"))
            }
        }
        let parsed = QPKParsedFile(
            headerOffset: headerOffset, records: records, metadata: document.metadata, recipe: document.recipe,
            provenance: document.provenance)
        return (parsed, problems)
    }

    /// Rules 12–18, 20–21, 26–28 and 31 for one tensor; returns its record when the header entry is
    /// usable.
    private static func checkTensor(
        _ entry: QPKHeaderDocument.Tensor, headerOffset: Int, version: UInt32, path: String, problems: inout [QPKError]
    ) -> QPKTensorRecord? {
        let name = entry.name
        guard let dtype = DType(rawValue: entry.dtype) else {
            problems.append(.unknownDType(path: path, tensor: name, dtype: entry.dtype))
            return nil
        }
        guard entry.shape.allSatisfy({ $0 >= 0 }) else {
            problems.append(.invalidShape(path: path, tensor: name, reason: "negative dimension in \(entry.shape)"))
            return nil
        }
        guard let elements = checkedProduct(entry.shape), let dataBytes = dtype.byteCount(elementCount: elements) else {
            problems.append(.invalidShape(path: path, tensor: name, reason: "shape \(entry.shape) of \(dtype.rawValue) overflows or is not a whole number of bytes"))
            return nil
        }
        let info = TensorInfo(name: name, dtype: dtype, shape: entry.shape)
        guard let encoding = QPKEncoding(rawValue: entry.encoding) else {
            problems.append(.unknownEncoding(path: path, tensor: name, encoding: entry.encoding))
            return nil
        }
        var expected: [QPKBlobKind: Int] = [:]
        var record = QPKTensorRecord(info: info, encoding: encoding, blobs: [:])
        switch encoding {
        case .raw:
            expected[.data] = dataBytes
        case .affine:
            guard let lengths = checkAffine(
                entry, info: info, version: version, path: path, problems: &problems, record: &record) else {
                return nil
            }
            expected = lengths
        }
        let names = Set(entry.blobs.keys)
        let wanted = Set(expected.keys.map(\.rawValue))
        guard names == wanted else {
            let missing = wanted.subtracting(names).sorted(), extra = names.subtracting(wanted).sorted()
            var parts: [String] = []
            if !missing.isEmpty { parts.append("missing blob(s) \(missing.joined(separator: ", "))") }
            if !extra.isEmpty { parts.append("unexpected blob(s) \(extra.joined(separator: ", "))") }
            problems.append(.blobSetMismatch(path: path, tensor: name, reason: parts.joined(separator: "; ")))
            return nil
        }
        var usable = true
        for kind in expected.keys.sorted() {
            let blob = entry.blobs[kind.rawValue]!
            let blobName = kind.rawValue
            guard blob.offset >= 0, blob.length >= 0 else {
                problems.append(.blobOutOfBounds(path: path, tensor: name, blob: blobName, reason: "has a negative offset or length"))
                usable = false
                continue
            }
            guard blob.offset % QPKLayout.alignment == 0 else {
                problems.append(.blobMisaligned(path: path, tensor: name, blob: blobName, offset: blob.offset))
                usable = false
                continue
            }
            let (end, overflow) = blob.offset.addingReportingOverflow(blob.length)
            guard blob.offset >= QPKLayout.preambleSize, !overflow, end <= headerOffset else {
                problems.append(.blobOutOfBounds(
                    path: path, tensor: name, blob: blobName,
                    reason: "spans [\(blob.offset), \(overflow ? "overflow" : String(end))), outside the blob area [64, \(headerOffset))"))
                usable = false
                continue
            }
            if blob.length != expected[kind]! {
                problems.append(.blobLengthMismatch(path: path, tensor: name, blob: blobName, expected: expected[kind]!, found: blob.length))
                usable = false
                continue
            }
            record.blobs[kind] = QPKBlobReference(offset: blob.offset, length: blob.length, crc32: blob.crc32)
        }
        return usable ? record : nil
    }

    /// Rules 15, 21, 26–28 and 31 for an affine tensor; fills the record's layout, method, outliers
    /// and error, and returns the blob lengths §5–§6 require.
    private static func checkAffine(
        _ entry: QPKHeaderDocument.Tensor, info: TensorInfo, version: UInt32, path: String, problems: inout [QPKError],
        record: inout QPKTensorRecord
    ) -> [QPKBlobKind: Int]? {
        let name = info.name
        func invalid(_ reason: String) -> [QPKBlobKind: Int]? {
            problems.append(.invalidQuantization(path: path, tensor: name, reason: reason))
            return nil
        }
        guard let quantization = entry.quantization else { return invalid("affine tensor without 'quantization'") }
        guard let scheme = QuantizationScheme(rawValue: quantization.scheme) else {
            return invalid("unknown scheme '\(quantization.scheme)'")
        }
        guard [2, 3, 4, 8].contains(quantization.bits) else { return invalid("bits \(quantization.bits)") }
        guard quantization.groupSize >= 1 else { return invalid("group_size \(quantization.groupSize)") }
        guard let axis = QuantizationAxis(rawValue: quantization.axis) else { return invalid("axis \(quantization.axis)") }
        guard info.dtype.isFloatingPoint else { return invalid("dtype \(info.dtype.rawValue) is not floating point") }
        var layout = QuantizationLayout(scheme: scheme, bits: quantization.bits, groupSize: quantization.groupSize, axis: axis)
        let (rows, columns) = layout.matrixShape(of: info)
        let elements = info.elementCount
        let groups = layout.groupsPerRow(columns: columns)
        // v2 features (§5.3, §5.5–§5.8): rules 27, 28 and 31, then rule 26.
        switch quantization.zeroPoints {
        case nil, "f16"?: layout.zeroPoints = .float16
        case "packed"?: layout.zeroPoints = .packed
        case "none"?:
            guard scheme == .symmetric else {
                problems.append(.invalidZeroPoints(path: path, tensor: name, reason: "zero_points 'none' with scheme '\(scheme.rawValue)', not 'symmetric'"))
                return nil
            }
            layout.zeroPoints = .implicit
        case let other?:
            problems.append(.invalidZeroPoints(path: path, tensor: name, reason: "unknown zero_points '\(other)'"))
            return nil
        }
        if let transform = quantization.transform {
            guard let kind = WeightTransform.Kind(rawValue: transform.kind) else {
                problems.append(.invalidTransform(path: path, tensor: name, reason: "unknown transform kind '\(transform.kind)'"))
                return nil
            }
            guard WeightTransform.isValidBlock(transform.blockSize, columns: columns) else {
                problems.append(.invalidTransform(
                    path: path, tensor: name,
                    reason: "block_size \(transform.blockSize) is not a power of two ≥ 2 dividing the \(columns) columns"))
                return nil
            }
            layout.transform = WeightTransform(kind: kind, blockSize: transform.blockSize)
        }
        if let value = quantization.scaleCodes {
            switch QPKHeaderDocument.scaleCodes(value) {
            case let .success(codes): layout.scaleCodes = codes
            case let .failure(problem):
                problems.append(.invalidScaleCodes(path: path, tensor: name, reason: problem.reason))
                return nil
            }
        }
        layout.hasGroupIndex = quantization.groupIndex == true
        layout.hasCodebook = quantization.codebook == true
        if version < QPKLayout.version2, layout.requiresVersion2 {
            let feature = layout.zeroPoints != .float16 ? "zero_points '\(layout.zeroPoints.rawValue)'"
                : layout.transform != nil ? "a transform" : layout.scaleCodes != nil ? "scale_codes"
                : layout.hasGroupIndex ? "a group index" : "a codebook"
            problems.append(.featureNeedsVersion2(path: path, tensor: name, feature: feature))
            return nil
        }
        guard let codeBits = checkedProduct([elements, layout.bits]), let groupCount = checkedProduct([rows, groups]),
              let zeroBits = checkedProduct([groupCount, layout.bits]),
              let scaleBits = checkedProduct([groupCount, layout.scaleCodes?.bits ?? 16]), scaleBits <= Int.max - 7,
              checkedProduct([columns, QuantizedByteCount.groupIndexBits(groupsPerRow: groups)]) != nil
        else {
            problems.append(.invalidShape(path: path, tensor: name, reason: "shape \(info.shape) overflows"))
            return nil
        }
        var lengths: [QPKBlobKind: Int] = [
            .codes: codeBits / 8 + (codeBits % 8 == 0 ? 0 : 1),
            .scales: QuantizedByteCount.scales(layout: layout, groups: groupCount),
        ]
        if layout.scaleCodes != nil { lengths[.rowScales] = QuantizedByteCount.rowScales(layout: layout, rows: rows) }
        switch layout.zeroPoints {
        case .float16: lengths[.zeros] = groupCount * 2
        case .packed: lengths[.zeros] = zeroBits / 8 + (zeroBits % 8 == 0 ? 0 : 1)
        case .implicit: break
        }
        if layout.hasGroupIndex { lengths[.groupIndex] = QuantizedByteCount.groupIndex(columns: columns, groupsPerRow: groups) }
        if layout.hasCodebook { lengths[.codebook] = QuantizedByteCount.codebookEntryBytes << layout.bits }
        if layout.transform != nil { lengths[.transformSigns] = QuantizedByteCount.transformSigns(columns: columns) }
        record.layout = layout
        record.method = quantization.method
        record.decision = Self.decision(quantization, layout: layout, columns: columns)
        record.error = entry.error.map { QuantizationErrorStats(sqnrDB: $0.sqnrDB, maxAbsError: $0.maxAbsError) }
        if let outliers = entry.outliers {
            func bad(_ reason: String) -> [QPKBlobKind: Int]? {
                problems.append(.invalidOutlierRecord(path: path, tensor: name, reason: reason))
                return nil
            }
            guard let kind = OutlierSet.Kind(rawValue: outliers.kind) else { return bad("unknown kind '\(outliers.kind)'") }
            guard outliers.count >= 0 else { return bad("negative count \(outliers.count)") }
            let bound = switch kind {
            case .rows: rows
            case .columns: columns
            case .elements: elements
            }
            guard outliers.count <= bound else { return bad("\(outliers.count) \(kind.rawValue) in a \(rows)×\(columns) tensor") }
            guard Int64(bound) - 1 <= QPKLayout.maxOutlierIndex else { return bad("\(kind.rawValue) indices up to \(bound - 1) do not fit in u32") }
            let record6 = QPKOutlierRecord(kind: kind, count: outliers.count, statistic: outliers.statistic, threshold: outliers.threshold)
            let covered = switch kind {
            case .rows: checkedProduct([outliers.count, columns, 4])
            case .columns: checkedProduct([outliers.count, rows, 4])
            case .elements: checkedProduct([outliers.count, 4])
            }
            guard let valueBytes = covered else { return bad("outlier value count overflows") }
            lengths[.outlierIndices] = outliers.count * 4
            lengths[.outlierValues] = valueBytes
            record.outliers = record6
        }
        return lengths
    }

    /// The tensor's decision when the header records all of it (§4.3); `nil` for older files or
    /// unknown values (which are informative, not structural).
    private static func decision(
        _ q: QPKHeaderDocument.Quantization, layout: QuantizationLayout, columns: Int
    ) -> QuantizationDecision? {
        guard let search = q.scaleSearch.flatMap(ScaleSearch.init(rawValue:)),
              let kind = q.outlierKind.flatMap(OutlierSet.Kind.init(rawValue:)),
              let budget = q.outlierBudget,
              let importance = q.importance.flatMap(ImportanceSource.init(rawValue:)),
              let method = q.method.split(separator: "+").first.flatMap({ QuantizationMethod(rawValue: String($0)) })
        else { return nil }
        var decision = QuantizationDecision(
            method: method, scheme: layout.scheme, bits: layout.bits,
            groupSize: layout.groupSize == columns ? nil : layout.groupSize, axis: layout.axis,
            scaleSearch: search, outlierKind: kind, outlierBudget: budget,
            maxBitsPerWeight: q.maxBitsPerWeight, importance: importance)
        decision.zeroPoints = ZeroPointDomain(storage: layout.zeroPoints)
        decision.transform = layout.transform
        decision.scaleCodes = layout.scaleCodes
        decision.codebook = layout.hasCodebook ? q.codebookKind.flatMap(CodebookKind.init(rawValue:)) : nil
        return decision
    }

    /// Rule 19: no two non-empty blobs share a byte.
    private static func overlaps(_ records: [QPKTensorRecord], path: String) -> [QPKError] {
        var spans: [(start: Int, end: Int, tensor: String, blob: QPKBlobKind)] = []
        for record in records {
            for (kind, blob) in record.blobs where blob.length > 0 {
                spans.append((blob.offset, blob.offset + blob.length, record.info.name, kind))
            }
        }
        spans.sort { ($0.start, $0.end) < ($1.start, $1.end) }
        var problems: [QPKError] = []
        var furthest: (end: Int, tensor: String, blob: QPKBlobKind)? = nil
        for span in spans {
            if let last = furthest, span.start < last.end {
                problems.append(.blobOverlap(
                    path: path, tensor: span.tensor, blob: span.blob.rawValue, otherTensor: last.tensor, otherBlob: last.blob.rawValue))
            }
            if furthest == nil || span.end > furthest!.end { furthest = (span.end, span.tensor, span.blob) }
        }
        return problems
    }

    /// The product of `factors`, or `nil` on overflow (an empty product is 1).
    static func checkedProduct(_ factors: [Int]) -> Int? {
        var product = 1
        for factor in factors {
            let (next, overflow) = product.multipliedReportingOverflow(by: factor)
            if overflow { return nil }
            product = next
        }
        return product
    }
}
