import Foundation
import Formats
import QPKCore

extension HTMLReport {
    /// The report of `qpk inspect FILE --report`: totals, parameters and bytes per layer, for
    /// quantized files the SQNR and bits per weight of each tensor along the depth, the recipe,
    /// the provenance and the outlier density maps, then a histogram per tensor (log-scaled
    /// counts, ±3σ and ±6σ marked) and the table of every tensor.
    /// - Parameters:
    ///   - report: what `--json` prints; histograms are drawn for tensors whose statistics have one.
    ///   - outlierMaps: report-only data, from ``OutlierMap/maps(of:reader:)``.
    public static func inspect(_ report: InspectReport, outlierMaps: [OutlierMap] = []) throws -> String {
        let name = URL(fileURLWithPath: report.file).lastPathComponent
        var document = HTMLDocument(title: "qpk inspect: \(name)", header: inspectHeader(report))
        if !report.layers.isEmpty {
            document.section("layers", "Parameters and bytes per layer", layerSection(report))
        }
        let quantized = report.tensors.filter { $0.quantization != nil }
        if !quantized.isEmpty {
            document.section("quantization", "Quantization along the depth", quantizationSection(report, quantized))
        }
        if let file = report.quantizedFile {
            document.section("recipe", "Recipe and provenance", recipeSection(file))
        }
        if !outlierMaps.isEmpty {
            document.section("outliers", "Where the outliers are", outlierSection(report, outlierMaps))
        }
        let histograms = report.tensors.filter { $0.stats?.histogram != nil }
        if !histograms.isEmpty {
            document.section("histograms", "Distributions", histogramSection(histograms))
        }
        document.section("tensors", "Tensors", tensorTable(report))
        return document.render(data: try json(InspectData(inspect: report, outlierMaps: outlierMaps)))
    }

    static func inspectHeader(_ report: InspectReport) -> String {
        let s = report.summary
        var cards: [(String, String)] = [
            ("format", report.format), ("tensors", "\(s.tensors)"), ("parameters", HumanUnits.count(s.parameters)),
            ("stored", HumanUnits.bytes(s.bytes)), ("bits per weight", Shown.bits(s.bitsPerWeight)),
        ]
        if s.quantizedTensors > 0 { cards.append(("quantized tensors", "\(s.quantizedTensors)")) }
        if let q = report.quantizedFile {
            cards.append(("outliers", "\(HumanUnits.count(q.outlierParameters)) (\(Shown.percent(q.outlierParameters, of: q.quantizedParameters)))"))
        }
        return "<h1>\(HTML.text(report.file))</h1><p>qpk inspect report</p>" + HTML.cards(cards)
    }

    static func layerSection(_ report: InspectReport) -> String {
        let layers = report.layers
        let chart = BarRowsChart(
            labels: layers.map(\.prefix),
            rowData: layers.map { [("layer", $0.prefix), ("parameters", "\($0.parameters)"), ("bytes", "\($0.bytes)"),
                                   ("bits-per-weight", HTML.exact($0.bitsPerWeight))] },
            series: [
                .init(title: "parameters", cls: "bar1", values: layers.map { Double($0.parameters) }, format: { HumanUnits.count(Int($0)) }),
                .init(title: "bytes stored", cls: "bar2", values: layers.map { Double($0.bytes) }, format: { HumanUnits.bytes(Int($0)) }, binaryUnits: true),
            ])
        let svg = chart.render(
            id: "chart-layers", title: "Parameters and bytes per layer",
            description: "\(layers.count) layers in file order; bars give each layer's parameter count and the bytes the file stores for it.")
        let table = HTML.table(
            caption: "Per-layer totals (layers[] of --json)",
            columns: [("layer", false), ("tensors", true), ("parameters", true), ("bytes", true), ("bits/weight", true), ("min SQNR dB", true), ("absmax", true)],
            rows: layers.map { l in
                [HTML.text(l.prefix), "\(l.tensors)", "\(l.parameters)", "\(l.bytes)", Shown.bits(l.bitsPerWeight),
                 Shown.decibels(l.minSqnrDB), Shown.number(l.absmax)]
            })
        return HTML.figure(svg, caption: "Layers group tensors by name: everything up to the last number in the name (<code>encoder.layer.3.</code>), else the first component.", table: table)
    }

    /// Consecutive runs of the same layer among `names`, as chart bands.
    static func bands(_ names: [String]) -> [(start: Int, end: Int, label: String)] {
        let prefixes = names.map(LayerGrouping.prefix(of:))
        let labels = layerLabels(prefixes)
        var bands: [(start: Int, end: Int, prefix: String)] = []
        for (i, prefix) in prefixes.enumerated() {
            if let last = bands.last, last.prefix == prefix, last.end == i {
                bands[bands.count - 1].end = i + 1
            } else {
                bands.append((i, i + 1, prefix))
            }
        }
        return bands.map { ($0.start, $0.end, labels[$0.prefix]!) }
    }

    /// The kinds present among `names`, in ``LayerKind`` order, as a legend.
    static func legend(_ kinds: [LayerKind]) -> String {
        "<ul class=\"legend\" aria-label=\"Colours\">" + kinds.map { "<li class=\"k-\($0.rawValue)\">\($0.label)</li>" }.joined() + "</ul>"
    }

    static func quantizationSection(_ report: InspectReport, _ quantized: [InspectReport.TensorEntry]) -> String {
        let kinds = quantized.map { LayerKind.of($0.name) }
        let present = Array(Set(kinds)).sorted()
        let layerBands = bands(quantized.map(\.name))
        func series(_ value: (QuantizationSummary) -> Double?, _ text: (InspectReport.TensorEntry, Double) -> String) -> [DepthChart.Series] {
            present.map { kind in
                let points = quantized.indices.filter { kinds[$0] == kind }.compactMap { i -> DepthChart.Point? in
                    let entry = quantized[i], q = entry.quantization!
                    guard let y = value(q) else { return nil }
                    return DepthChart.Point(
                        x: i, y: y, title: text(entry, y),
                        data: [("tensor", entry.name), ("kind", kind.rawValue), ("sqnr-db", HTML.exact(q.sqnrDB)),
                               ("bits-per-weight", HTML.exact(q.bitsPerWeight))])
                }
                return DepthChart.Series(name: kind.rawValue, cls: "k-\(kind.rawValue)", points: points, connect: false)
            }
        }
        var out = legend(present)
        let withSQNR = quantized.filter { $0.quantization?.sqnrDB != nil }
        if !withSQNR.isEmpty {
            let chart = DepthChart(
                positions: quantized.count, bands: layerBands,
                series: series({ $0.sqnrDB }, { "\($0.name): SQNR \(Shown.decibels($1)) dB" }),
                xTitle: "quantized tensors in file order, by layer", yTitle: "SQNR (dB)", yFloor: 0)
            let infinite = withSQNR.filter { $0.quantization!.sqnrDB!.isInfinite }.count
            out += HTML.figure(
                chart.render(id: "chart-sqnr", title: "SQNR of each quantized tensor along the depth",
                             description: "\(withSQNR.count) tensors; higher is better. Points are coloured by what the tensor does (query, key, value, FFN, …)."),
                caption: "Weight SQNR recorded at write time, 10·log10(Σx²/Σ(x−x̂)²): each point is one tensor; shaded bands are layers."
                    + (infinite > 0 ? " \(infinite) exact tensor(s) (SQNR ∞) are not drawn." : ""))
        }
        let chart = DepthChart(
            positions: quantized.count, bands: layerBands,
            series: series({ $0.bitsPerWeight }, { "\($0.name): \(Shown.bits($1)) bits per weight" }),
            xTitle: "quantized tensors in file order, by layer", yTitle: "bits per weight",
            height: 200, yFloor: 0)
        out += HTML.figure(
            chart.render(id: "chart-bpw", title: "Bits per weight of each quantized tensor along the depth",
                         description: "Codes, scales, zero-points and outliers, in bits, over each tensor's parameters."),
            caption: "Everything stored for a tensor (codes, fp16 scales and zero-points, outliers) in bits per parameter.")
        return out
    }

    static func recipeSection(_ file: QuantizedFileSummary) -> String {
        var facts = "<dl class=\"facts\" id=\"recipe-facts\">"
        for key in file.recipe.keys.sorted() {
            facts += "<dt>\(HTML.text(key))</dt><dd\(HTML.data([("recipe-key", key)]))>\(HTML.text(file.recipe[key]!.displayText))</dd>"
        }
        facts += "</dl><h3>Provenance</h3><dl class=\"facts\" id=\"provenance\">"
        for source in file.sources {
            facts += "<dt>source</dt><dd>\(HTML.text(source.name)) (\(HumanUnits.bytes(source.size)), header sha256 <code>\(HTML.text(source.headerSHA256))</code>)</dd>"
        }
        facts += "<dt>written by</dt><dd>qpk \(HTML.text(file.qpkVersion)): <code>\(HTML.text(file.createdBy))</code></dd>"
        if let tuned = file.tunedOutliersFrom {
            facts += "<dt>tuned outliers</dt><dd>values replaced from \(HTML.text(tuned.name)) (\(HumanUnits.bytes(tuned.size)), sha256 <code>\(HTML.text(tuned.sha256))</code>): \(tuned.changed) of \(tuned.values) changed</dd>"
        }
        facts += "<dt>outliers</dt><dd>\(file.outlierParameters) of \(file.quantizedParameters) quantized parameters (\(Shown.percent(file.outlierParameters, of: file.quantizedParameters))) kept at full precision</dd></dl>"
        return facts
    }

    static func outlierSection(_ report: InspectReport, _ maps: [OutlierMap]) -> String {
        let entries = Dictionary(report.tensors.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        let withOutliers = report.tensors.count { ($0.quantization?.outlierCount ?? 0) > 0 }
        var out = "<p class=\"note\">Each map counts a tensor's outlier parameters (kept at full precision) on a grid over its matrix view, rows × columns as quantized (columns are the inputs the groups run along). Darker cells hold more; the bars on the right and below total each grid row and column."
        if withOutliers > maps.count { out += " The \(maps.count) tensors with the most outliers of \(withOutliers) are shown." }
        out += "</p><div class=\"grid\">"
        for (i, map) in maps.enumerated() {
            let q = entries[map.name]?.quantization
            var caption = "<code>\(HTML.text(map.name))</code>: \(map.parameters) \(map.kind.rawValue == "elements" ? "elements" : "parameters (\(map.kind.rawValue))") in \(map.rows)×\(map.columns)"
            if let statistic = q?.outlierStatistic {
                caption += ", selected by \(HTML.text(statistic))"
                if let threshold = q?.outlierThreshold { caption += " ≥ \(HumanUnits.number(threshold))" }
            }
            out += HTML.figure(DensityMapChart(map: map).render(id: "outliers-\(i)"), caption: caption)
        }
        return out + "</div>"
    }

    static func histogramSection(_ entries: [InspectReport.TensorEntry]) -> String {
        var shown = entries
        var out = "<p class=\"note\">Counts are on a log scale, so the tails show. Dashed lines mark the mean ±3σ and ±6σ where they fall inside the range; the caption counts the values beyond them.</p>"
        if entries.count > maxHistograms {
            let keep = Set(entries.indices.sorted { (entries[$0].parameters, $1) > (entries[$1].parameters, $0) }.prefix(maxHistograms))
            shown = entries.indices.filter(keep.contains).map { entries[$0] }
            out += "<p class=\"note\">The \(maxHistograms) largest of \(entries.count) tensors are drawn; the table below lists all.</p>"
        }
        out += "<div class=\"grid\">"
        for (i, entry) in shown.enumerated() {
            let s = entry.stats!, h = s.histogram!
            let chart = HistogramChart(name: entry.name, histogram: h, mean: s.mean, std: s.std)
            let data: [(String, String)] = [
                ("tensor", entry.name), ("lower", HTML.exact(h.lower)), ("upper", HTML.exact(h.upper)),
                ("counts", h.counts.map(String.init).joined(separator: " ")), ("mean", HTML.exact(s.mean)),
                ("std", HTML.exact(s.std)), ("beyond-3sigma", "\(s.beyond3Sigma)"), ("beyond-6sigma", "\(s.beyond6Sigma)"),
            ]
            let finite = s.finiteCount
            let caption = "<code>\(HTML.text(entry.name))</code> \(shapeText(entry.shape)): mean \(Shown.number(s.mean)), σ \(Shown.number(s.std)), kurtosis \(Shown.number(s.kurtosis)); beyond 3σ \(s.beyond3Sigma) (\(Shown.percent(s.beyond3Sigma, of: finite))), beyond 6σ \(s.beyond6Sigma)"
            out += HTML.figure(chart.render(id: "hist-\(i)", data: data), caption: caption)
        }
        return out + "</div>"
    }

    static func tensorTable(_ report: InspectReport) -> String {
        let quantized = report.tensors.contains { $0.quantization != nil }
        let stats = report.tensors.contains { $0.stats != nil }
        var columns: [(String, numeric: Bool)] = [("name", false), ("kind", false), ("dtype", false), ("shape", false),
                                                 ("parameters", true), ("bytes", true), ("bits/weight", true)]
        if quantized { columns += [("bits", true), ("group", true), ("outliers", true), ("SQNR dB", true)] }
        if stats { columns += [("std", true), ("absmax", true), ("kurtosis", true), (">3σ", true), (">6σ", true)] }
        let rows = report.tensors.map { t -> [String] in
            var row = [HTML.text(t.name), LayerKind.of(t.name).label, t.dtype, shapeText(t.shape), "\(t.parameters)", "\(t.bytes)", Shown.bits(t.bitsPerWeight)]
            if quantized {
                if let q = t.quantization {
                    row += ["\(q.bits)", "\(q.groupSize)", "\(q.outlierCount)", Shown.decibels(q.sqnrDB)]
                } else {
                    row += ["–", "–", "–", "–"]
                }
            }
            if stats {
                if let s = t.stats {
                    row += [Shown.number(s.std), Shown.number(s.absmax), Shown.number(s.kurtosis), "\(s.beyond3Sigma)", "\(s.beyond6Sigma)"]
                } else {
                    row += Array(repeating: "–", count: 5)
                }
            }
            return row
        }
        return HTML.table(caption: "Every tensor (tensors[] of --json), in file order", columns: columns, rows: rows, id: "tensor-table")
    }
}
