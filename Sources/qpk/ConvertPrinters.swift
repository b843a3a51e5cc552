import Convert
import Foundation
import Inspect
import QPKCore
import Formats
import Quantize

/// Prints `convert --dry-run`: one row per output tensor and the expected size.
enum DryRunPrinter {
    static func print(_ summary: ConversionSummary, json: Bool) throws {
        if json {
            try Terminal.printJSON(summary)
            return
        }
        var table = TableRenderer(columns: [
            .init("tensor"), .init("action"), .init("dtype"), .init("shape"), .init("bits", .right),
            .init("axis"), .init("bytes", .right),
        ], colors: Colors(enabled: Terminal.useColor))
        for entry in summary.tensors {
            table.append([
                entry.name, entry.action, entry.dtype.rawValue, shapeText(entry.shape),
                entry.decision.map { String($0.bits) } ?? entry.ggmlType ?? "", entry.decision?.axis.name ?? "",
                HumanUnits.bytes(entry.estimatedBytes),
            ])
        }
        table.footer = [["total", "", "", "", "", "", HumanUnits.bytes(summary.estimatedBytes)]]
        Terminal.printBlock(table.render())
        Swift.print("\(summary.tensors.count) tensors (\(actionCounts(summary))); expected output \(HumanUnits.bytes(summary.estimatedBytes)) plus headers: \(summary.destination) (\(summary.destinationFormat.rawValue)); nothing written (--dry-run)")
    }
}

func shapeText(_ shape: [Int]) -> String {
    shape.isEmpty ? "scalar" : shape.map(String.init).joined(separator: "×")
}

/// `"37 copy, 10 quantize"`: how many tensors each action took.
func actionCounts(_ summary: ConversionSummary) -> String {
    let counts = Dictionary(grouping: summary.tensors, by: \.action).mapValues(\.count)
    return counts.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
}

/// Prints the few lines a conversion ends with.
enum ConvertSummaryPrinter {
    static func print(_ summary: ConversionSummary) {
        let seconds = String(format: "%.2f", summary.seconds ?? 0)
        Swift.print("wrote \(summary.destination) (\(summary.destinationFormat.rawValue), \(HumanUnits.bytes(summary.outputBytes ?? 0))) in \(seconds) s: \(summary.tensors.count) tensors (\(actionCounts(summary)))")
        if let recipe = summary.recipe, summary.quantizedParameters > 0 {
            let bpw = summary.quantizedBitsPerWeight.map { String(format: "%.3f", $0) } ?? "-"
            let sqnr = summary.sqnrDB.map { String(format: "%.2f dB", $0) } ?? "-"
            let outliers = summary.outlierParameters ?? 0
            let share = Double(outliers) / Double(max(summary.quantizedParameters, 1)) * 100
            Swift.print("recipe \(recipe)\(summary.allocate ? " --allocate" : ""): \(HumanUnits.count(summary.quantizedParameters)) parameters quantized at \(bpw) bits/weight, SQNR \(sqnr), \(HumanUnits.count(outliers)) outliers (\(String(format: "%.2f", share))%) kept at full precision")
            if summary.allocate {
                let widths = Dictionary(grouping: summary.tensors.compactMap(\.decision), by: \.bits).mapValues(\.count)
                Swift.print("allocation: " + widths.sorted { $0.key < $1.key }.map { "\($0.value) tensors at \($0.key) bits" }.joined(separator: ", "))
            }
        }
    }
}
