/// The bytes a quantized tensor occupies in QPK, the one formula every estimate, cap and summary
/// uses (spec/qpk-format.md §7).
///
/// - codes: `ceil(R·C·bits / 8)` bytes, one LSB-first stream;
/// - scales and zero-points: one fp16 each per group, `R·G` groups;
/// - outliers: one u32 index per row, column or element, plus one f32 value per parameter covered.
public enum QuantizedByteCount {
    /// Bytes of one fp16 scale plus one fp16 zero-point.
    public static let scaleAndZeroBytes = 4
    /// Bytes of one outlier index (u32) and of one outlier value (f32).
    public static let outlierIndexBytes = 4
    public static let outlierValueBytes = 4

    /// Codes, scales and zero-points of a `rows × columns` matrix.
    public static func codesScalesZeros(layout: QuantizationLayout, rows: Int, columns: Int) -> Int {
        layout.packedByteCount(elementCount: rows * columns)
            + rows * layout.groupsPerRow(columns: columns) * scaleAndZeroBytes
    }

    /// The bytes one outlier index of `kind` costs: its index and the values it covers.
    public static func bytesPerOutlier(_ kind: OutlierSet.Kind, rows: Int, columns: Int) -> Int {
        switch kind {
        case .elements: outlierIndexBytes + outlierValueBytes
        case .rows: outlierIndexBytes + outlierValueBytes * columns
        case .columns: outlierIndexBytes + outlierValueBytes * rows
        }
    }

    /// The bytes of `count` outlier indices of `kind` and the values they cover.
    public static func outliers(_ kind: OutlierSet.Kind, count: Int, rows: Int, columns: Int) -> Int {
        count * bytesPerOutlier(kind, rows: rows, columns: columns)
    }
}
