import Formats
import QPKCore
import Quantize

/// Where a quantized tensor's outliers sit: the outlier parameters counted on a coarse grid over
/// its matrix view (rows × columns, the view the quantizer used, spec/qpk-format.md §5.1).
///
/// Report-only data (spec/report.md §3): `qpk inspect --report` draws one density map per
/// tensor with outliers, from the indices the QPK file records. Every outlier parameter is
/// counted: a whole outlier row adds each of its columns to its cells, and likewise a column.
public struct OutlierMap: Sendable, Codable, Equatable {
    public var name: String
    public var kind: OutlierSet.Kind
    /// The matrix view's size.
    public var rows: Int
    public var columns: Int
    /// Outlier parameters in the tensor (the sum of ``cells``).
    public var parameters: Int
    /// The grid: `min(rows, maxGrid)` × `min(columns, maxGrid)` cells; grid row `i` covers the
    /// matrix rows `r` with `⌊r·gridRows/rows⌋ = i` (columns likewise).
    public var gridRows: Int
    public var gridColumns: Int
    /// Outlier parameters per cell, row-major (`gridRows × gridColumns` counts).
    public var cells: [Int]

    /// The largest grid side.
    public static let maxGrid = 32
    /// The most maps a report draws (the tensors with the most outlier parameters, in file order).
    public static let maxMaps = 48

    enum CodingKeys: String, CodingKey {
        case name, kind, rows, columns, parameters, cells
        case gridRows = "grid_rows"
        case gridColumns = "grid_columns"
    }

    /// The map of `outliers` in a `rows × columns` matrix.
    public init(name: String, outliers: OutlierSet, rows: Int, columns: Int) {
        self.name = name
        kind = outliers.kind
        self.rows = rows
        self.columns = columns
        let gridRows = Swift.max(1, Swift.min(rows, Self.maxGrid))
        let gridColumns = Swift.max(1, Swift.min(columns, Self.maxGrid))
        self.gridRows = gridRows
        self.gridColumns = gridColumns
        var cells = [Int](repeating: 0, count: gridRows * gridColumns)
        let rowBin = { (r: Int) in r * gridRows / Swift.max(rows, 1) }
        let columnBin = { (c: Int) in c * gridColumns / Swift.max(columns, 1) }
        // Matrix rows (columns) per grid row (column): what a whole outlier column (row) adds.
        var rowsPerBin = [Int](repeating: 0, count: gridRows)
        for r in 0..<rows { rowsPerBin[rowBin(r)] += 1 }
        var columnsPerBin = [Int](repeating: 0, count: gridColumns)
        for c in 0..<columns { columnsPerBin[columnBin(c)] += 1 }
        for index in outliers.indices.map(Int.init) {
            switch kind {
            case .elements:
                guard columns > 0 else { continue }
                cells[rowBin(index / columns) * gridColumns + columnBin(index % columns)] += 1
            case .rows:
                let i = rowBin(index)
                for j in 0..<gridColumns { cells[i * gridColumns + j] += columnsPerBin[j] }
            case .columns:
                let j = columnBin(index)
                for i in 0..<gridRows { cells[i * gridColumns + j] += rowsPerBin[i] }
            }
        }
        self.cells = cells
        parameters = cells.reduce(0, +)
    }

    /// The outlier parameters per grid row and per grid column (the map's margins).
    public var rowTotals: [Int] {
        (0..<gridRows).map { i in cells[(i * gridColumns)..<((i + 1) * gridColumns)].reduce(0, +) }
    }

    public var columnTotals: [Int] {
        (0..<gridColumns).map { j in stride(from: j, to: cells.count, by: gridColumns).reduce(0) { $0 + cells[$1] } }
    }

    /// The maps of the tensors of `report` that have outliers, read from `reader` (at most
    /// ``maxMaps``: those with the most outlier parameters, listed in file order).
    /// - Throws: the reader's error when a tensor cannot be read.
    public static func maps(of report: InspectReport, reader: any CheckpointReader) throws -> [OutlierMap] {
        let candidates = report.tensors.enumerated().filter { ($0.element.quantization?.outlierCount ?? 0) > 0 }
        let chosen = candidates
            .sorted { ($0.element.quantization!.outlierCount, $1.offset) > ($1.element.quantization!.outlierCount, $0.offset) }
            .prefix(maxMaps).map(\.offset).sorted()
        let infos = Dictionary(reader.tensors.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        return try chosen.compactMap { index in
            guard let info = infos[report.tensors[index].name],
                  case let .quantized(tensor) = try reader.storage(of: info), let outliers = tensor.outliers else { return nil }
            let (rows, columns) = tensor.matrixShape
            return OutlierMap(name: info.name, outliers: outliers, rows: rows, columns: columns)
        }
    }
}
