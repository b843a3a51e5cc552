import Foundation
import QPKCore
import Formats
import Quantize

/// The human rendering of ``InspectReport``: a heading, the metadata, the tensor table with a
/// total line, the distribution table (with statistics), the per-layer summary and histograms.
extension InspectReport {
    public func renderText(colors: Colors = Colors(enabled: false)) -> String {
        var out: [String] = []
        out.append(colors.bold(file) + "  " + colors.dim(
            "\(format), \(summary.tensors) tensors, \(HumanUnits.count(summary.parameters)) params, \(HumanUnits.bytes(summary.bytes))"))
        if !metadata.isEmpty {
            out.append("")
            out.append(colors.bold("Metadata"))
            for key in metadata.keys.sorted() {
                out.append("  \(colors.cyan(key)): \(oneLine(metadata[key] ?? ""))")
            }
        }
        out.append("")
        out.append(tensorTable(colors: colors).render())
        if let quantized = quantizedFile {
            out.append("")
            out.append(contentsOf: quantizedFileLines(quantized, colors: colors))
        }
        if hasStats {
            out.append("")
            out.append(colors.bold("Distribution"))
            out.append(distributionTable(colors: colors).render())
        }
        if layers.count > 1 {
            out.append("")
            out.append(colors.bold("Layers"))
            out.append(layerTable(colors: colors).render())
        }
        let histograms = tensors.compactMap { entry in entry.stats?.histogram.map { (entry.name, $0) } }
        for (name, histogram) in histograms {
            out.append("")
            out.append(colors.bold("Histogram of \(name)") + "  " + BarChart.sparkline(histogram.counts))
            out += BarChart.bars(histogram).map { "  " + $0 }
        }
        return out.joined(separator: "\n")
    }

    // Each is one scan of the tensors: evaluate once per table, never per row (a per-row
    // evaluation made `inspect` quadratic in the tensor count).
    private var isQuantized: Bool { tensors.contains { $0.quantization != nil } }
    private var hasStats: Bool { tensors.contains { $0.stats != nil } }

    /// The QPK recipe, provenance and outlier records, one fact a line.
    func quantizedFileLines(_ q: QuantizedFileSummary, colors: Colors) -> [String] {
        var lines = [colors.bold("Quantization")]
        let recipe = q.recipe.keys.sorted().map { "\($0)=\(q.recipe[$0]!.displayText)" }.joined(separator: " ")
        lines.append("  recipe: \(recipe)")
        let share = q.quantizedParameters == 0 ? 0 : Double(q.outlierParameters) / Double(q.quantizedParameters) * 100
        lines.append("  outliers: \(HumanUnits.count(q.outlierParameters)) of \(HumanUnits.count(q.quantizedParameters)) quantized parameters (\(fixed(share, 3))%) kept at full precision")
        for source in q.sources {
            lines.append("  source: \(source.name) (\(HumanUnits.bytes(source.size)), header sha256 \(source.headerSHA256))")
        }
        lines.append("  written by: qpk \(q.qpkVersion): \(q.createdBy)")
        if let tuned = q.tunedOutliersFrom {
            lines.append("  tuned: outlier values replaced from \(tuned.name) (\(HumanUnits.bytes(tuned.size)), sha256 \(tuned.sha256)): \(tuned.changed) of \(tuned.values) changed")
        }
        for entry in tensors {
            guard let t = entry.quantization, t.outlierCount > 0, let kind = t.outlierKind else { continue }
            var line = "  \(entry.name): \(t.outlierCount) outlier parameters (\(kind.rawValue))"
            if let statistic = t.outlierStatistic {
                line += ", selected by \(statistic)"
                if let threshold = t.outlierThreshold { line += " ≥ \(HumanUnits.number(threshold))" }
            }
            lines.append(line)
        }
        return lines
    }

    /// The outlier parameters and their shape: `24 elements`, `128 (2 rows)`, `0`.
    func outlierText(_ q: QuantizationSummary) -> String {
        guard let kind = q.outlierKind, q.outlierCount > 0 else { return "0" }
        return kind == .elements ? "\(q.outlierCount) elements" : "\(q.outlierCount) (\(kind.rawValue))"
    }

    func tensorTable(colors: Colors) -> TableRenderer {
        let isQuantized = isQuantized, hasStats = hasStats
        var columns: [TableRenderer.Column] = [
            .init("name"), .init("dtype"), .init("shape"), .init("params", .right), .init("bytes", .right),
        ]
        if isQuantized {
            columns += [.init("bits", .right), .init("group", .right), .init("scheme"), .init("outliers", .right),
                        .init("bpw", .right), .init("sqnr dB", .right), .init("max err", .right)]
        }
        if hasStats {
            columns += ["min", "max", "mean", "std", "absmax", "nan", "inf", "zeros"].map { .init($0, .right) }
        }
        var table = TableRenderer(columns: columns, colors: colors)
        for entry in tensors {
            var row = [entry.name, entry.dtype, shapeText(entry.shape), HumanUnits.count(entry.parameters),
                       HumanUnits.bytes(entry.bytes)]
            if isQuantized {
                if let q = entry.quantization {
                    row += ["\(q.bits)", "\(q.groupSize)", ([q.scheme.rawValue] + q.featureTags).joined(separator: " "), outlierText(q),
                            fixed(q.bitsPerWeight, 2), q.sqnrDB.map { fixed($0, 2) } ?? "-",
                            HumanUnits.number(q.maxAbsError)]
                } else {
                    row += ["-", "-", colors.dim("raw"), "-", entry.bitsPerWeight.map { fixed($0, 2) } ?? "-", "-", "-"]
                }
            }
            if hasStats {
                if let s = entry.stats {
                    let inf = s.positiveInfinityCount + s.negativeInfinityCount
                    row += [s.min, s.max, s.mean, s.std, s.absmax].map { HumanUnits.number($0) }
                    row += [warn(s.nanCount, colors), warn(inf, colors), "\(s.zeroCount)"]
                } else {
                    row += Array(repeating: "-", count: 8)
                }
            }
            table.append(row)
        }
        var total = ["total (\(summary.tensors) tensors)", "", "", HumanUnits.count(summary.parameters),
                     HumanUnits.bytes(summary.bytes)]
        if isQuantized {
            total += ["", "", "", "", summary.bitsPerWeight.map { fixed($0, 2) } ?? "-", "", ""]
        }
        table.footer = [total]
        return table
    }

    func distributionTable(colors: Colors) -> TableRenderer {
        let titles = ["l2 norm", "kurtosis", "p1", "p50", "p99", ">3σ", ">6σ", "subnormal"]
        var table = TableRenderer(columns: [.init("name")] + titles.map { .init($0, .right) }, colors: colors)
        for entry in tensors {
            guard let s = entry.stats else { continue }
            table.append([entry.name] + [s.l2Norm, s.kurtosis, s.p1, s.p50, s.p99].map { HumanUnits.number($0) }
                + ["\(s.beyond3Sigma)", s.beyond6Sigma > 0 ? colors.yellow("\(s.beyond6Sigma)") : "0", "\(s.subnormalCount)"])
        }
        return table
    }

    func layerTable(colors: Colors) -> TableRenderer {
        let isQuantized = isQuantized, hasStats = hasStats
        var columns: [TableRenderer.Column] = [.init("layer"), .init("tensors", .right), .init("params", .right),
                                               .init("bytes", .right), .init("bpw", .right)]
        if isQuantized { columns.append(.init("min sqnr dB", .right)) }
        if hasStats { columns.append(.init("absmax", .right)) }
        var table = TableRenderer(columns: columns, colors: colors)
        for layer in layers {
            var row = [layer.prefix, "\(layer.tensors)", HumanUnits.count(layer.parameters), HumanUnits.bytes(layer.bytes),
                       layer.bitsPerWeight.map { fixed($0, 2) } ?? "-"]
            if isQuantized { row.append(layer.minSqnrDB.map { fixed($0, 2) } ?? "-") }
            if hasStats { row.append(HumanUnits.number(layer.absmax)) }
            table.append(row)
        }
        return table
    }

    private func warn(_ count: Int, _ colors: Colors) -> String {
        count > 0 ? colors.red("\(count)") : "0"
    }

    private func oneLine(_ text: String) -> String {
        let flat = text.replacingOccurrences(of: "\n", with: " ")
        return flat.count > 200 ? String(flat.prefix(197)) + "..." : flat
    }
}

/// `[384, 1536]` → `384×1536`; a scalar is `()`.
func shapeText(_ shape: [Int]) -> String {
    shape.isEmpty ? "()" : shape.map(String.init).joined(separator: "×")
}

/// A fixed-point rendering; infinities as `inf`.
func fixed(_ value: Double, _ decimals: Int) -> String {
    if value.isNaN { return "nan" }
    if value.isInfinite { return value > 0 ? "inf" : "-inf" }
    return HumanUnits.fixed(value, decimals: decimals)
}
