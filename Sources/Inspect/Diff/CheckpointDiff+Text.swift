import Foundation
import QPKCore
import Formats
import Quantize

/// The human rendering of ``CheckpointDiff``: structure first (only-in, shape mismatches,
/// metadata), then the table of common tensors that are not byte-identical, largest relative
/// change first, then one summary line.
extension CheckpointDiff {
    public func renderText(colors: Colors = Colors(enabled: false)) -> String {
        var out: [String] = [colors.bold("A: ") + a.file + colors.dim(" (\(a.format))"),
                             colors.bold("B: ") + b.file + colors.dim(" (\(b.format))")]
        if !map.isEmpty {
            out.append(colors.dim("map: " + map.map { "\($0.from):\($0.to)" }.joined(separator: ", ")))
        }
        if !onlyInA.isEmpty {
            out.append("")
            out.append(colors.bold("Only in A (\(onlyInA.count))"))
            out += onlyInA.map { "  " + colors.red("- " + $0) }
        }
        if !onlyInB.isEmpty {
            out.append("")
            out.append(colors.bold("Only in B (\(onlyInB.count))"))
            out += onlyInB.map { "  " + colors.green("+ " + $0) }
        }
        if !shapeMismatches.isEmpty {
            out.append("")
            out.append(colors.bold("Shape mismatches (\(shapeMismatches.count))"))
            for m in shapeMismatches {
                out.append("  \(m.name): \(shapeText(m.shapeA)) → \(shapeText(m.shapeB))")
            }
        }
        if !metadata.isEmpty {
            out.append("")
            out.append(colors.bold("Metadata differences (\(metadata.count))"))
            for change in metadata {
                switch (change.a, change.b) {
                case let (x?, y?): out.append("  \(change.key): \(clip(x)) → \(clip(y))")
                case let (x?, nil): out.append("  \(change.key): \(clip(x)) → (absent)")
                case let (nil, y?): out.append("  \(change.key): (absent) → \(clip(y))")
                case (nil, nil): break
                }
            }
        }
        let listed = tensors.filter { $0.status != .identical }
        if !listed.isEmpty {
            out.append("")
            out.append(valueTable(listed, colors: colors).render())
        }
        if summary.identical > 0 {
            out.append(colors.dim("\(summary.identical) byte-identical tensor\(summary.identical == 1 ? "" : "s") not listed"))
        }
        out.append("")
        out.append(summaryLine(colors: colors))
        return out.joined(separator: "\n")
    }

    func valueTable(_ rows: [TensorComparison], colors: Colors) -> TableRenderer {
        let columns: [TableRenderer.Column] = [
            .init("status"), .init("name"), .init("dtype"), .init("shape"), .init("max abs", .right),
            .init("mean abs", .right), .init("rel l2", .right), .init("cosine", .right), .init("sqnr dB", .right),
            .init("out of tol", .right), .init("worst (a → b)"),
        ]
        var table = TableRenderer(columns: columns, colors: colors)
        for t in rows {
            let status: String = switch t.status {
            case .identical, .equal: colors.green(t.status.rawValue)
            case .close: colors.yellow(t.status.rawValue)
            case .different: colors.red(t.status.rawValue)
            }
            let dtype = t.dtypeChanged ? colors.yellow("\(t.dtypeA)→\(t.dtypeB)") : t.dtypeA
            let worst = t.worst.map { "[\($0.index.map(String.init).joined(separator: ","))] \(HumanUnits.number(Double($0.a))) → \(HumanUnits.number(Double($0.b)))" } ?? ""
            table.append([
                status, t.name, dtype, shapeText(t.shape), HumanUnits.number(t.maxAbs, digits: 3),
                HumanUnits.number(t.meanAbs, digits: 3), HumanUnits.number(t.relativeL2, digits: 3),
                t.cosine.map { fixed($0, 8) } ?? "-", t.sqnrDB.map { fixed($0, 2) } ?? "-",
                "\(t.outOfTolerance)" + (t.nonFiniteMismatches > 0 ? " (\(t.nonFiniteMismatches) nan/inf)" : ""),
                worst + (t.note.map { " " + $0 } ?? ""),
            ])
        }
        return table
    }

    /// One line: the counts, then the verdict.
    public func summaryLine(colors: Colors = Colors(enabled: false)) -> String {
        let s = summary
        var parts = ["\(s.compared) compared: \(s.identical) identical, \(s.equal) equal, \(s.close) close, \(s.different) different"]
        parts.append("\(s.onlyInA) only in A, \(s.onlyInB) only in B, \(s.shapeMismatches) shape mismatch\(s.shapeMismatches == 1 ? "" : "es")")
        parts.append("\(s.dtypeChanges) dtype change\(s.dtypeChanges == 1 ? "" : "s"), \(s.metadataChanges) metadata difference\(s.metadataChanges == 1 ? "" : "s")")
        let tolerance = "rtol \(tolerance.relative), atol \(tolerance.absolute)\(tolerance.equalNaN ? ", equal_nan" : "")"
        let verdict = s.checkpointsEqual ? colors.green("EQUAL") : colors.red("DIFFERENT")
        return parts.joined(separator: "; ") + " → " + colors.bold(verdict) + colors.dim(" (\(tolerance))")
    }

    private func clip(_ text: String) -> String {
        let flat = text.replacingOccurrences(of: "\n", with: " ")
        return flat.count > 80 ? String(flat.prefix(77)) + "..." : flat
    }
}
