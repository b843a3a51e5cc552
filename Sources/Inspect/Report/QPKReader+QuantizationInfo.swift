import Formats
import QPKCore
import Quantize

/// QPK files describe every tensor's quantization in their header, so `inspect` shows it without
/// reading a single blob.
extension QPKReader: QuantizationInfoProviding {
    public func quantizationSummary(for name: String) -> QuantizationSummary? {
        guard let record = record(for: name), let layout = record.layout, record.encoding == .affine else {
            return nil
        }
        let (rows, columns) = record.matrixShape
        var summary = QuantizationSummary(
            bits: layout.bits, groupSize: layout.groupSize, scheme: layout.scheme,
            method: record.method ?? "unknown", outlierKind: record.outliers?.kind,
            outlierCount: record.outliers?.parameterCount(rows: rows, columns: columns) ?? 0,
            bitsPerWeight: record.bitsPerWeight, sqnrDB: record.error?.sqnrDB,
            maxAbsError: record.error?.maxAbsError, storedBytes: record.storedByteCount,
            outlierStatistic: record.outliers?.statistic, outlierThreshold: record.outliers?.threshold)
        summary.axis = layout.axis
        summary.decision = record.decision
        summary.setFeatures(layout)
        return summary
    }

    public func quantizedFileSummary() -> QuantizedFileSummary? {
        QuantizedFileSummary(
            recipe: recipe,
            sources: provenance.sources,
            qpkVersion: provenance.qpkVersion, createdBy: provenance.createdBy,
            outlierParameters: outlierParameterCount, quantizedParameters: quantizedParameterCount,
            tunedOutliersFrom: provenance.tunedOutliersFrom)
    }
}

extension QPKJSONValue {
    /// The value as a user reads it: strings bare, numbers and everything else as JSON.
    public var displayText: String {
        switch self {
        case let .string(text): text
        case let .integer(value): String(value)
        case let .number(value): String(value)
        case let .bool(value): String(value)
        case .null: "null"
        case let .array(values): "[" + values.map(\.displayText).joined(separator: ", ") + "]"
        case let .object(entries): "{" + entries.keys.sorted().map { "\($0): \(entries[$0]!.displayText)" }.joined(separator: ", ") + "}"
        }
    }
}
