import Foundation
import Formats
import QPKCore

extension HTMLReport {
    /// The report of `qpk diff A B --report`: the verdict, the relative L2 and cosine of each
    /// layer along the depth, the error per layer kind (query, key, value, attention output, FFN),
    /// the tensors ranked by relative change, the worst elements, structural differences and the
    /// table of every tensor that is not byte-identical.
    public static func diff(_ diff: CheckpointDiff) throws -> String {
        let a = URL(fileURLWithPath: diff.a.file).lastPathComponent, b = URL(fileURLWithPath: diff.b.file).lastPathComponent
        var document = HTMLDocument(title: "qpk diff: \(a) vs \(b)", header: diffHeader(diff))
        if diff.layers.contains(where: { $0.changed > 0 }) {
            document.section("depth", "Change along the depth", depthSection(diff))
        }
        if diff.kinds.contains(where: { $0.kind != .other && $0.changed > 0 }) {
            document.section("kinds", "Error per layer kind", kindSection(diff))
        }
        let ranked = diff.tensors.filter { $0.status != .identical && $0.relativeL2 != nil }
        if !ranked.isEmpty {
            document.section("ranking", "Tensors ranked by relative change", rankingSection(ranked))
        }
        if diff.tensors.contains(where: { $0.worst != nil }) {
            document.section("worst", "Worst elements", worstSection(diff))
        }
        if !diff.onlyInA.isEmpty || !diff.onlyInB.isEmpty || !diff.shapeMismatches.isEmpty || !diff.metadata.isEmpty {
            document.section("structure", "Structure and metadata", structureSection(diff))
        }
        document.section("tensors", "Tensors", diffTable(diff))
        return document.render(data: try json(DiffData(diff: diff)))
    }

    static func diffHeader(_ diff: CheckpointDiff) -> String {
        let s = diff.summary
        let verdict = s.checkpointsEqual
            ? "<strong class=\"verdict-equal\" id=\"verdict\">EQUAL</strong>"
            : "<strong class=\"verdict-different\" id=\"verdict\">DIFFERENT</strong>"
        let tolerance = "rtol \(diff.tolerance.relative), atol \(diff.tolerance.absolute)\(diff.tolerance.equalNaN ? ", equal NaN" : "")"
        var out = "<h1>\(HTML.text(diff.a.file)) → \(HTML.text(diff.b.file))</h1>"
        out += "<p>qpk diff report: A is \(HTML.text(diff.a.file)) (\(HTML.text(diff.a.format))), B is \(HTML.text(diff.b.file)) (\(HTML.text(diff.b.format))), the reference of the tolerance. Verdict: \(verdict) (\(tolerance)).</p>"
        var cards: [(String, String)] = [
            ("compared", "\(s.compared)"), ("identical", "\(s.identical)"), ("equal", "\(s.equal)"), ("close", "\(s.close)"),
            ("different", "\(s.different)"),
        ]
        if s.onlyInA + s.onlyInB + s.shapeMismatches > 0 {
            cards += [("only in A", "\(s.onlyInA)"), ("only in B", "\(s.onlyInB)"), ("shape mismatches", "\(s.shapeMismatches)")]
        }
        return out + HTML.cards(cards)
    }

    static func groupData(_ g: GroupChange) -> [(String, String)] {
        var data: [(String, String)] = []
        if let prefix = g.prefix { data.append(("layer", prefix)) }
        if let kind = g.kind { data.append(("kind", kind.rawValue)) }
        return data + [("relative-l2", HTML.exact(g.relativeL2)), ("cosine", HTML.exact(g.cosine)),
                       ("sqnr-db", HTML.exact(g.sqnrDB)), ("changed", "\(g.changed)")]
    }

    static func groupTable(_ groups: [GroupChange], caption: String, first: String, label: (GroupChange) -> String) -> String {
        HTML.table(
            caption: caption,
            columns: [(first, false), ("tensors", true), ("changed", true), ("elements", true), ("relative L2", true),
                      ("cosine", true), ("SQNR dB", true), ("max |a−b|", true)],
            rows: groups.map { g in
                [HTML.text(label(g)), "\(g.tensors)", "\(g.changed)", "\(g.elements)", Shown.number(g.relativeL2),
                 g.cosine.map { fixed($0, 8) } ?? "–", Shown.decibels(g.sqnrDB), Shown.number(g.maxAbs)]
            })
    }

    /// Whether values spread over more than two decades (then a log axis reads better).
    static func spreads(_ values: [Double]) -> Bool {
        let positive = values.filter { $0 > 0 && $0.isFinite }
        guard let lo = positive.min(), let hi = positive.max() else { return false }
        return hi / lo > 100
    }

    /// One band per layer, labelled by ``layerLabels(_:)``.
    static func layerBands(_ diff: CheckpointDiff) -> [(start: Int, end: Int, label: String)] {
        let labels = layerLabels(diff.layers.map { $0.prefix ?? "" })
        return diff.layers.enumerated().map { (start: $0.offset, end: $0.offset + 1, label: labels[$0.element.prefix ?? ""]!) }
    }

    static func depthSection(_ diff: CheckpointDiff) -> String {
        let layers = diff.layers
        let bands = layerBands(diff)
        func points(_ value: (GroupChange) -> Double?, _ unit: String) -> [DepthChart.Point] {
            layers.enumerated().compactMap { i, g in
                guard let y = value(g) else { return nil }
                return DepthChart.Point(x: i, y: y, title: "\(g.prefix ?? ""): \(unit) \(HumanUnits.number(y, digits: 6))", data: groupData(g))
            }
        }
        let l2 = points(\.relativeL2, "relative L2")
        let l2Chart = DepthChart(
            positions: layers.count, bands: bands,
            series: [.init(name: "relative_l2", cls: "k-query", points: l2, connect: true)],
            xTitle: "layer", yTitle: "relative L2", logY: spreads(l2.map(\.y)), height: 230, yFloor: 0)
        let cosChart = DepthChart(
            positions: layers.count, bands: bands,
            series: [.init(name: "cosine", cls: "k-ffn_down", points: points(\.cosine, "cosine"), connect: true)],
            xTitle: "layer", yTitle: "cosine", height: 210, yCeiling: 1)
        var out = HTML.figure(
            l2Chart.render(id: "chart-layer-l2", title: "Relative L2 change per layer",
                           description: "‖A−B‖/‖A‖ pooled over each layer's changed tensors, layers in file order; lower is closer."),
            caption: "‖A − B‖ / ‖A‖ pooled over the tensors of each layer that are not byte-identical (layers[] of --json).")
        out += HTML.figure(
            cosChart.render(id: "chart-layer-cosine", title: "Cosine similarity per layer",
                            description: "ΣAB/(‖A‖‖B‖) pooled over each layer's changed tensors; 1 is identical direction."),
            caption: "Cosine similarity of A and B per layer, pooled the same way.",
            table: groupTable(layers, caption: "Per-layer change (layers[] of --json)", first: "layer", label: { $0.prefix ?? "" }))
        return out
    }

    static func kindSection(_ diff: CheckpointDiff) -> String {
        let kinds = diff.kinds.filter { $0.changed > 0 }
        var out = "<p class=\"note\">Tensors are classified by name (BERT, llama, GPT-2, GGUF and Keras conventions): query, key, value, attention output, FFN up, gate and down. For a quantized model against its original this shows which kind of layer carries the error.</p>"
        let bars = BarRowsChart(
            labels: kinds.map { $0.kind!.label },
            rowData: kinds.map(groupData),
            rowClasses: kinds.map { "k-\($0.kind!.rawValue)" },
            series: [
                .init(title: "relative L2", cls: "bar1", values: kinds.map(\.relativeL2), format: { HumanUnits.number($0) }),
                .init(title: "SQNR (dB)", cls: "bar2", values: kinds.map { $0.sqnrDB.map { $0.isFinite ? $0 : 0 } }, format: { Shown.decibels($0) },
                      tickFormat: { HumanUnits.number($0) }),
            ],
            labelWidth: 130)
        out += HTML.figure(
            bars.render(id: "chart-kinds", title: "Change per layer kind",
                        description: "Relative L2 and SQNR pooled over all changed tensors of each kind."),
            caption: "Pooled over every changed tensor of the kind, all layers together (kinds[] of --json).",
            table: groupTable(kinds, caption: "Per-kind change (kinds[] of --json)", first: "kind", label: { $0.kind!.label }))
        // Each kind along the depth.
        let layerIndex = Dictionary(diff.layers.enumerated().map { ($0.element.prefix ?? "", $0.offset) }, uniquingKeysWith: { a, _ in a })
        let present = kinds.map { $0.kind! }.filter { $0 != .other && $0 != .norm }
        let series = present.map { kind in
            DepthChart.Series(
                name: kind.rawValue, cls: "k-\(kind.rawValue)",
                points: diff.layerKinds.filter { $0.kind == kind && $0.changed > 0 }.compactMap { g in
                    guard let x = layerIndex[g.prefix ?? ""], let y = g.relativeL2 else { return nil }
                    return DepthChart.Point(x: x, y: y, title: "\(g.prefix ?? "") \(kind.label): relative L2 \(HumanUnits.number(y, digits: 6))", data: groupData(g))
                },
                connect: true)
        }
        if series.contains(where: { $0.points.count > 1 }) {
            let chart = DepthChart(
                positions: diff.layers.count,
                bands: layerBands(diff),
                series: series, xTitle: "layer", yTitle: "relative L2",
                logY: spreads(series.flatMap(\.points).map(\.y)), height: 260, yFloor: 0)
            out += legend(present) + HTML.figure(
                chart.render(id: "chart-layer-kinds", title: "Relative L2 per layer kind along the depth",
                             description: "One line per kind: the relative L2 of that kind's tensors in each layer."),
                caption: "One line per kind, one point per layer (layer_kinds[] of --json).")
        }
        return out
    }

    static func rankingSection(_ ranked: [TensorComparison]) -> String {
        let shown = Array(ranked.prefix(maxRankedTensors))
        let chart = BarRowsChart(
            labels: shown.map(\.name),
            rowData: shown.map { [("tensor", $0.name), ("relative-l2", HTML.exact($0.relativeL2)), ("cosine", HTML.exact($0.cosine)),
                                  ("sqnr-db", HTML.exact($0.sqnrDB)), ("max-abs", HTML.exact($0.maxAbs)), ("status", $0.status.rawValue)] },
            rowClasses: shown.map { "status-\($0.status.rawValue)" },
            series: [
                .init(title: "relative L2", cls: "bar1", values: shown.map(\.relativeL2), format: { HumanUnits.number($0) }),
                .init(title: "max |a − b|", cls: "bar2", values: shown.map(\.maxAbs), format: { HumanUnits.number($0) }),
            ],
            labelWidth: 300)
        var caption = "‖A − B‖ / ‖A‖ per tensor, largest first; colour is the status (red different, amber close, green equal)."
        if ranked.count > shown.count { caption += " The first \(shown.count) of \(ranked.count) are drawn; the table below lists all." }
        return HTML.figure(
            chart.render(id: "chart-ranking", title: "Tensors ranked by relative change",
                         description: "The \(shown.count) tensors with the largest relative L2 change, with their largest absolute difference."),
            caption: caption)
    }

    static func worstSection(_ diff: CheckpointDiff) -> String {
        let worst = diff.tensors.compactMap { t in t.worst.map { (t, $0) } }
            .sorted { x, y in
                let dx = abs(Double(x.1.a) - Double(x.1.b)), dy = abs(Double(y.1.a) - Double(y.1.b))
                let sx = dx.isNaN ? Double.infinity : dx, sy = dy.isNaN ? Double.infinity : dy
                return sx != sy ? sx > sy : x.0.name < y.0.name
            }
            .prefix(maxWorstElements)
        let rows = worst.map { t, w -> [String] in
            let index = "[" + w.index.map(String.init).joined(separator: ", ") + "]"
            let cell = "<span class=\"worst\"\(HTML.data([("tensor", t.name), ("flat-index", "\(w.flatIndex)"), ("a", HTML.exact(w.a)), ("b", HTML.exact(w.b))]))>\(HTML.text(t.name))</span>"
            return [cell, index, HumanUnits.number(Double(w.a), digits: 6), HumanUnits.number(Double(w.b), digits: 6),
                    HumanUnits.number(abs(Double(w.a) - Double(w.b)), digits: 4), Shown.number(t.meanAbs)]
        }
        return "<p class=\"note\">The element of each tensor where A and B differ most (a NaN/Inf mismatch first), the largest \(rows.count) over all tensors.</p>"
            + HTML.table(caption: "Worst elements (tensors[].worst of --json)",
                         columns: [("tensor", false), ("index", false), ("A", true), ("B", true), ("|A − B|", true), ("tensor mean |A − B|", true)],
                         rows: rows, id: "worst-table")
    }

    static func structureSection(_ diff: CheckpointDiff) -> String {
        var out = ""
        if !diff.onlyInA.isEmpty {
            out += "<h3>Only in A (\(diff.onlyInA.count))</h3><ul>" + diff.onlyInA.map { "<li><code>\(HTML.text($0))</code></li>" }.joined() + "</ul>"
        }
        if !diff.onlyInB.isEmpty {
            out += "<h3>Only in B (\(diff.onlyInB.count))</h3><ul>" + diff.onlyInB.map { "<li><code>\(HTML.text($0))</code></li>" }.joined() + "</ul>"
        }
        if !diff.shapeMismatches.isEmpty {
            out += HTML.table(caption: "Shape mismatches", columns: [("name", false), ("A", false), ("B", false)],
                              rows: diff.shapeMismatches.map { [HTML.text($0.name), shapeText($0.shapeA), shapeText($0.shapeB)] })
        }
        if !diff.metadata.isEmpty {
            out += HTML.table(caption: "Metadata differences", columns: [("key", false), ("A", false), ("B", false)],
                              rows: diff.metadata.map { [HTML.text($0.key), HTML.text(clipped($0.a ?? "(absent)", 120)), HTML.text(clipped($0.b ?? "(absent)", 120))] })
        }
        return out
    }

    static func diffTable(_ diff: CheckpointDiff) -> String {
        let listed = diff.tensors.filter { $0.status != .identical }
        let rows = listed.map { t -> [String] in
            [t.status.rawValue, HTML.text(t.name), LayerKind.of(t.name).label, t.dtypeChanged ? "\(t.dtypeA)→\(t.dtypeB)" : t.dtypeA,
             shapeText(t.shape), Shown.number(t.maxAbs), Shown.number(t.meanAbs), Shown.number(t.relativeL2),
             t.cosine.map { fixed($0, 8) } ?? "–", Shown.decibels(t.sqnrDB), "\(t.outOfTolerance)"]
        }
        var out = HTML.table(
            caption: "Tensors that are not byte-identical (tensors[] of --json), largest relative change first",
            columns: [("status", false), ("name", false), ("kind", false), ("dtype", false), ("shape", false), ("max |a−b|", true),
                      ("mean |a−b|", true), ("relative L2", true), ("cosine", true), ("SQNR dB", true), ("out of tolerance", true)],
            rows: rows, id: "tensor-table")
        if diff.summary.identical > 0 {
            out += "<p class=\"note\">\(diff.summary.identical) byte-identical tensor\(diff.summary.identical == 1 ? "" : "s") not listed.</p>"
        }
        return out
    }
}
