import QPKCore
import Formats
import Quantize

/// Renders rows as aligned columns separated by two spaces. Numeric columns are right-aligned;
/// cells may carry ANSI colour (widths count visible characters only). Trailing spaces are trimmed.
public struct TableRenderer: Sendable {
    public enum Alignment: Sendable { case left, right }

    public struct Column: Sendable {
        public var title: String
        public var alignment: Alignment

        public init(_ title: String, _ alignment: Alignment = .left) {
            self.title = title
            self.alignment = alignment
        }
    }

    public var columns: [Column]
    public var rows: [[String]] = []
    /// Rows printed after a rule line under the body (e.g. a total).
    public var footer: [[String]] = []
    public var colors: Colors

    public init(columns: [Column], colors: Colors = Colors(enabled: false)) {
        self.columns = columns
        self.colors = colors
    }

    public mutating func append(_ row: [String]) { rows.append(row) }

    /// The table as lines of text (no trailing newline).
    public func render() -> String {
        let all = [columns.map(\.title)] + rows + footer
        var widths = [Int](repeating: 0, count: columns.count)
        for row in all {
            for (i, cell) in row.prefix(columns.count).enumerated() {
                widths[i] = max(widths[i], Colors.visibleWidth(cell))
            }
        }
        func line(_ row: [String]) -> String {
            var parts: [String] = []
            for (i, column) in columns.enumerated() {
                let cell = i < row.count ? row[i] : ""
                let padding = String(repeating: " ", count: widths[i] - Colors.visibleWidth(cell))
                parts.append(column.alignment == .right ? padding + cell : cell + padding)
            }
            let text = parts.joined(separator: "  ")
            guard let last = text.lastIndex(where: { $0 != " " }) else { return "" }
            return String(text[...last])
        }
        var lines = [colors.bold(line(columns.map(\.title)))]
        lines += rows.map(line)
        if !footer.isEmpty {
            let total = widths.reduce(0, +) + 2 * max(columns.count - 1, 0)
            lines.append(colors.dim(String(repeating: "─", count: total)))
            lines += footer.map { colors.bold(line($0)) }
        }
        return lines.joined(separator: "\n")
    }
}
