import Foundation
import Formats
import QPKCore

/// Self-contained HTML reports of `qpk inspect` and `qpk diff` (spec/report.md): inline SVG
/// charts drawn from the same ``InspectReport`` and ``CheckpointDiff`` values that `--json`
/// prints, which the page embeds whole, so a test (or a reader) can check every figure.
public enum HTMLReport {
    /// The version of the embedded data block's layout (spec/report.md §2).
    public static let dataVersion = 1

    /// The most histograms an inspect report draws: the tensors with the most parameters, in
    /// file order (the tensor table lists them all).
    public static let maxHistograms = 120
    /// The most tensors the diff report's ranking draws, and the most worst elements it lists.
    public static let maxRankedTensors = 40
    public static let maxWorstElements = 25

    /// The embedded data of an inspect report.
    struct InspectData: Encodable {
        var report = "inspect"
        var version = HTMLReport.dataVersion
        var inspect: InspectReport
        var outlierMaps: [OutlierMap]

        enum CodingKeys: String, CodingKey {
            case report, version, inspect
            case outlierMaps = "outlier_maps"
        }
    }

    /// The embedded data of a diff report.
    struct DiffData: Encodable {
        var report = "diff"
        var version = HTMLReport.dataVersion
        var diff: CheckpointDiff
    }

    /// The data block's JSON: ``ReportJSON`` conventions, compact (no indentation).
    static func json<T: Encodable>(_ value: T) throws -> String {
        let encoder = ReportJSON.encoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return HTML.scriptSafe(try encoder.encode(value))
    }
}

/// Numbers as the report's text shows them.
enum Shown {
    static func number(_ value: Double?) -> String { HumanUnits.number(value) }
    static func decibels(_ value: Double?) -> String {
        guard let value else { return "–" }
        return value.isInfinite ? (value > 0 ? "∞" : "−∞") : fixed(value, 2)
    }
    static func bits(_ value: Double?) -> String { value.map { fixed($0, 2) } ?? "–" }
    static func percent(_ part: Int, of whole: Int) -> String {
        whole == 0 || part == 0 ? "0%" : HumanUnits.number(Double(part) / Double(whole) * 100, digits: 3) + "%"
    }
}
