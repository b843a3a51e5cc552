import Formats

/// QPK files describe every tensor's quantization in their header, so `inspect` shows it without
/// reading a single blob.
extension QPKReader: QuantizationInfoProviding {
    public func quantizationSummary(for name: String) -> QuantizationSummary? {
        guard let record = record(for: name), let layout = record.layout, record.encoding == .affine else {
            return nil
        }
        let (rows, columns) = record.info.matrixShape
        return QuantizationSummary(
            bits: layout.bits, groupSize: layout.groupSize, scheme: layout.scheme,
            method: record.method ?? "unknown", outlierKind: record.outliers?.kind,
            outlierCount: record.outliers?.parameterCount(rows: rows, columns: columns) ?? 0,
            bitsPerWeight: record.bitsPerWeight, sqnrDB: record.error?.sqnrDB,
            maxAbsError: record.error?.maxAbsError, storedBytes: record.storedByteCount)
    }
}
