import QPKCore
import Formats
import Quantize

/// Histograms as one-line bar charts of Unicode block elements (▁▂▃▄▅▆▇█), one character per bin,
/// heights proportional to the count (a non-empty bin shows at least ▁; an empty one a space).
public enum BarChart {
    static let levels: [Character] = ["▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"]

    /// The sparkline of `counts`.
    public static func sparkline(_ counts: [Int]) -> String {
        guard let peak = counts.max(), peak > 0 else { return String(repeating: " ", count: counts.count) }
        return String(counts.map { count -> Character in
            guard count > 0 else { return " " }
            let level = Int((Double(count) / Double(peak) * Double(levels.count)).rounded(.up)) - 1
            return levels[min(max(level, 0), levels.count - 1)]
        })
    }

    /// Horizontal bars, one line per bin: `[lower, upper)  count  ████▌`, `width` cells at the peak.
    public static func bars(_ histogram: TensorStatistics.Histogram, width: Int = 40) -> [String] {
        let peak = histogram.counts.max() ?? 0
        let bins = histogram.counts.count
        let eighths: [String] = ["", "▏", "▎", "▍", "▌", "▋", "▊", "▉"]
        var rows: [[String]] = []
        for (i, count) in histogram.counts.enumerated() {
            let lo = histogram.lower + (histogram.upper - histogram.lower) * Double(i) / Double(bins)
            let hi = histogram.lower + (histogram.upper - histogram.lower) * Double(i + 1) / Double(bins)
            let cells = peak == 0 ? 0 : Int((Double(count) / Double(peak) * Double(width * 8)).rounded())
            var bar = String(repeating: "█", count: cells / 8) + eighths[cells % 8]
            if count > 0 && bar.isEmpty { bar = "▏" }
            let close = i == bins - 1 ? "]" : ")"
            rows.append(["[\(HumanUnits.number(lo)), \(HumanUnits.number(hi))\(close)", "\(count)", bar])
        }
        var table = TableRenderer(columns: [.init(""), .init("", .right), .init("")])
        table.rows = rows
        return table.render().split(separator: "\n", omittingEmptySubsequences: false).dropFirst().map(String.init)
    }
}
