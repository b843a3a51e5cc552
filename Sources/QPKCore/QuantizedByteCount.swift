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

    /// Bytes of one fp16 scale.
    public static let scaleBytes = 2
    /// Bytes of one codebook entry (fp16).
    public static let codebookEntryBytes = 2

    /// Codes, scales and zero-points of a `rows × columns` matrix, with the v2 side tables its
    /// layout uses (spec/qpk-format.md §7): zero-points `2·R·G` (f16), `ceil(R·G·bits/8)`
    /// (packed) or 0 (none); a group index `ceil(C·w/8)` (``groupIndexBits(groups:)``); a codebook `2·2^bits`; transform signs
    /// `ceil(C/8)`; log-coded scales `ceil(R·G·K/8) + 2·R` instead of `2·R·G` (§5.8).
    public static func codesScalesZeros(layout: QuantizationLayout, rows: Int, columns: Int) -> Int {
        let groups = rows * layout.groupsPerRow(columns: columns)
        return layout.packedByteCount(elementCount: rows * columns)
            + scales(layout: layout, groups: groups) + rowScales(layout: layout, rows: rows)
            + zeroPoints(layout: layout, groups: groups)
            + (layout.hasGroupIndex ? groupIndex(columns: columns, groupsPerRow: layout.groupsPerRow(columns: columns)) : 0)
            + (layout.hasCodebook ? (1 << layout.bits) * codebookEntryBytes : 0)
            + (layout.transform != nil ? transformSigns(columns: columns) : 0)
    }

    /// The `scales` blob of `groups` group scales: fp16, or `K`-bit codes packed (§5.8).
    public static func scales(layout: QuantizationLayout, groups: Int) -> Int {
        guard let codes = layout.scaleCodes else { return groups * scaleBytes }
        return (groups * codes.bits + 7) / 8
    }

    /// The `row_scales` blob: one fp16 per row with log-coded scales, else nothing (§5.8).
    public static func rowScales(layout: QuantizationLayout, rows: Int) -> Int {
        layout.scaleCodes == nil ? 0 : rows * scaleBytes
    }

    /// The width of one group-index entry for `groupsPerRow` groups: the bit length of
    /// `groupsPerRow − 1`, at least 1 (spec/qpk-format.md §5.5).
    public static func groupIndexBits(groupsPerRow: Int) -> Int {
        max(1, Int.bitWidth - max(0, groupsPerRow - 1).leadingZeroBitCount)
    }

    /// The `group_index` blob: `columns` entries of ``groupIndexBits(groupsPerRow:)`` bits, packed.
    public static func groupIndex(columns: Int, groupsPerRow: Int) -> Int {
        (columns * groupIndexBits(groupsPerRow: groupsPerRow) + 7) / 8
    }

    /// The `zeros` blob of `groups` zero-points stored as `layout` says.
    public static func zeroPoints(layout: QuantizationLayout, groups: Int) -> Int {
        switch layout.zeroPoints {
        case .float16: groups * (scaleAndZeroBytes - scaleBytes)
        case .packed: layout.packedByteCount(elementCount: groups)
        case .implicit: 0
        }
    }

    /// The `transform_signs` blob of a matrix with `columns` columns: one bit per column.
    public static func transformSigns(columns: Int) -> Int { (columns + 7) / 8 }

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
