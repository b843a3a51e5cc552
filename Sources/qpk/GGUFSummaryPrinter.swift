import ArgumentParser
import Convert
import Foundation
import Inspect
import QPKCore
import Formats
import Quantize

extension GGMLType: ExpressibleByArgument {
    public init?(argument: String) {
        guard let type = GGMLType(name: argument), GGUFPlanning.writableTypes.contains(type) else { return nil }
        self = type
    }

    public static var allValueStrings: [String] { GGUFPlanning.writableTypes.map(\.name) }
}

/// The lines a GGUF conversion adds: what the block type cost, and which tensors kept a plain
/// type and why (1-D, too small, row length not a whole number of blocks, excluded, …).
enum GGUFSummaryPrinter {
    static func print(_ summary: ConversionSummary, plan: ConversionPlan, options: ConversionOptions) {
        if summary.sourceFormat == .qpk {
            Swift.print("note: the QPK source's quantized tensors were dequantized and then encoded for GGUF (GGUF cannot hold QPK's groups and outliers)")
        }
        guard let type = options.ggufType else { return }
        let fallback = GGUFPlanning.fallback(for: type)
        let fallbackNames = plan.tensors.filter { $0.action == .ggmlQuantize(fallback ?? type) && fallback != nil }.map(\.output.name)
        if type.isBlockQuantized, summary.quantizedParameters > 0 {
            let bpw = summary.quantizedBitsPerWeight.map { String(format: "%.3f", $0) } ?? "-"
            let sqnr = summary.sqnrDB.map { String(format: "%.2f dB", $0) } ?? "-"
            let types = fallbackNames.isEmpty ? type.name : "\(type.name) and \(fallback!.name)"
            Swift.print("\(types): \(HumanUnits.count(summary.quantizedParameters)) parameters in ggml blocks at \(bpw) bits/weight, weight SQNR \(sqnr)")
            if let fallback, !fallbackNames.isEmpty {
                let shown = fallbackNames.prefix(3).joined(separator: ", ") + (fallbackNames.count > 3 ? ", …" : "")
                Swift.print("stored \(fallbackNames.count) tensor(s) as \(fallback.name) (rows not whole \(type.blockSize)-value super-blocks; llama.cpp's fallback for \(type.name)): \(shown)")
            }
        } else if type.isBlockQuantized {
            Swift.print("\(type.name): no tensor qualified (the reasons follow); nothing was block-quantized")
        }
        var kept: [String: [String]] = [:]
        for entry in plan.tensors {
            if case .ggmlQuantize = entry.action { continue }
            if entry.output.dtype == type.plainDType { continue }
            let reason = GGUFPlanning.reasonKept(entry.source, type: type, options: options) ?? "kept"
            kept["\(entry.output.dtype.rawValue) (\(reason))", default: []].append(entry.output.name)
        }
        for key in kept.keys.sorted() {
            let names = kept[key]!
            let shown = names.prefix(3).joined(separator: ", ") + (names.count > 3 ? ", …" : "")
            Swift.print("kept \(names.count) tensor(s) as \(key): \(shown)")
        }
    }
}
