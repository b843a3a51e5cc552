import Convert
import Foundation
import Inspect

/// Prints `convert --dry-run`: one row per output tensor and the expected size.
enum DryRunPrinter {
    static func print(_ plan: ConversionPlan, json: Bool) throws {
        if json {
            try Terminal.printJSON(DryRunJSON(plan))
            return
        }
        var table = TableRenderer(columns: [
            .init("tensor"), .init("action"), .init("dtype"), .init("shape"), .init("bits", .right),
            .init("bytes", .right),
        ], colors: Colors(enabled: Terminal.useColor))
        for entry in plan.tensors {
            table.append([
                entry.output.name, entry.action.name, entry.output.dtype.rawValue, shapeText(entry.output.shape),
                bitsText(entry.action), HumanUnits.bytes(entry.estimatedBytes),
            ])
        }
        table.footer = [["total", "", "", "", "", HumanUnits.bytes(plan.estimatedBytes)]]
        Terminal.printBlock(table.render())
        let counts = Dictionary(grouping: plan.tensors, by: { $0.action.name }).mapValues(\.count)
        let summary = counts.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
        Swift.print("\(plan.tensors.count) tensors (\(summary)); expected output \(HumanUnits.bytes(plan.estimatedBytes)) plus headers: \(plan.destination.path) (\(plan.target.format.rawValue)); nothing written (--dry-run)")
    }

    static func bitsText(_ action: TensorAction) -> String {
        if case let .quantize(recipe) = action { return String(recipe.bits) }
        if case let .ggmlQuantize(type) = action { return type.name }
        return ""
    }
}

func shapeText(_ shape: [Int]) -> String {
    shape.isEmpty ? "scalar" : shape.map(String.init).joined(separator: "×")
}

/// The JSON form of a dry run.
struct DryRunJSON: Encodable {
    struct Entry: Encodable {
        var name: String
        var action: String
        var dtype: String
        var shape: [Int]
        var bits: Int?
        var bytes: Int
    }

    var source: String
    var destination: String
    var format: String
    var tensors: [Entry]
    var estimatedBytes: Int

    enum CodingKeys: String, CodingKey {
        case source, destination, format, tensors
        case estimatedBytes = "estimated_bytes"
    }

    init(_ plan: ConversionPlan) {
        source = plan.source.path
        destination = plan.destination.path
        format = plan.target.format.rawValue
        estimatedBytes = plan.estimatedBytes
        tensors = plan.tensors.map { entry in
            var bits: Int?
            if case let .quantize(recipe) = entry.action { bits = recipe.bits }
            return Entry(name: entry.output.name, action: entry.action.name, dtype: entry.output.dtype.rawValue,
                         shape: entry.output.shape, bits: bits, bytes: entry.estimatedBytes)
        }
    }
}

/// Prints the few lines a conversion ends with.
enum ConvertSummaryPrinter {
    static func print(_ summary: ConversionSummary) {
        let counts = Dictionary(grouping: summary.tensors, by: \.action).mapValues(\.count)
        let actions = counts.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
        Swift.print("wrote \(summary.destination) (\(summary.destinationFormat.rawValue), \(HumanUnits.bytes(summary.outputBytes))) in \(String(format: "%.2f", summary.seconds)) s: \(summary.tensors.count) tensors (\(actions))")
        if let recipe = summary.recipe, summary.quantizedParameters > 0 {
            let bpw = summary.quantizedBitsPerWeight.map { String(format: "%.3f", $0) } ?? "-"
            let sqnr = summary.sqnrDB.map { String(format: "%.2f dB", $0) } ?? "-"
            let share = Double(summary.outlierParameters) / Double(max(summary.quantizedParameters, 1)) * 100
            Swift.print("recipe \(recipe): \(HumanUnits.count(summary.quantizedParameters)) parameters quantized at \(bpw) bits/weight, SQNR \(sqnr), \(HumanUnits.count(summary.outlierParameters)) outliers (\(String(format: "%.2f", share))%) kept at full precision")
        }
    }
}
