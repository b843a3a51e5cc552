import Foundation

/// One `<svg>` image being drawn: a fixed coordinate system (`viewBox`) that scales with the page,
/// a `<title>` and `<desc>` for assistive technology (`role="img"`, `aria-labelledby`).
struct SVGCanvas {
    let width: Double
    let height: Double
    private var body = ""

    init(width: Double, height: Double) {
        self.width = width
        self.height = height
    }

    mutating func add(_ markup: String) { body += markup }

    mutating func line(_ x1: Double, _ y1: Double, _ x2: Double, _ y2: Double, cls: String) {
        body += "<line class=\"\(cls)\" x1=\"\(coordinate(x1))\" y1=\"\(coordinate(y1))\" x2=\"\(coordinate(x2))\" y2=\"\(coordinate(y2))\"/>"
    }

    mutating func text(_ x: Double, _ y: Double, _ text: String, cls: String = "tick", anchor: String = "start", rotate: Double? = nil) {
        let transform = rotate.map { " transform=\"rotate(\(coordinate($0)) \(coordinate(x)) \(coordinate(y)))\"" } ?? ""
        body += "<text class=\"\(cls)\" x=\"\(coordinate(x))\" y=\"\(coordinate(y))\" text-anchor=\"\(anchor)\"\(transform)>\(HTML.text(text))</text>"
    }

    mutating func rect(_ x: Double, _ y: Double, _ w: Double, _ h: Double, cls: String, extra: String = "", title: String? = nil) {
        let open = "<rect class=\"\(cls)\" x=\"\(coordinate(x))\" y=\"\(coordinate(y))\" width=\"\(coordinate(max(w, 0)))\" height=\"\(coordinate(max(h, 0)))\"\(extra)"
        body += title.map { open + "><title>\(HTML.text($0))</title></rect>" } ?? open + "/>"
    }

    /// A horizontal axis at `y` from `scale`'s ticks, with gridlines up to `top` when given.
    mutating func bottomAxis(_ scale: any ChartScale, y: Double, top: Double? = nil, left: Double, right: Double, title: String?) {
        for tick in scale.ticks() {
            let x = scale(tick.value)
            if let top { line(x, top, x, y, cls: "gridline") }
            line(x, y, x, y + 4, cls: "axis")
            text(x, y + 15, tick.label, anchor: "middle")
        }
        line(left, y, right, y, cls: "axis")
        if let title { text((left + right) / 2, y + 30, title, cls: "axis-title", anchor: "middle") }
    }

    /// A vertical axis at `x` from `scale`'s ticks, with gridlines across to `right`.
    mutating func leftAxis(_ scale: any ChartScale, x: Double, right: Double, top: Double, bottom: Double, title: String?) {
        for tick in scale.ticks() {
            let y = scale(tick.value)
            line(x, y, right, y, cls: "gridline")
            text(x - 5, y + 3.5, tick.label, anchor: "end")
        }
        line(x, top, x, bottom, cls: "axis")
        if let title { text(12, (top + bottom) / 2, title, cls: "axis-title", anchor: "middle", rotate: -90) }
    }

    /// The `<svg>` element.
    func render(id: String, title: String, description: String, data: [(String, String)] = [], cls: String = "chart") -> String {
        "<svg class=\"\(cls)\" id=\"\(id)\" role=\"img\" aria-labelledby=\"\(id)-t \(id)-d\" xmlns=\"http://www.w3.org/2000/svg\" width=\"\(coordinate(width))\" height=\"\(coordinate(height))\" viewBox=\"0 0 \(coordinate(width)) \(coordinate(height))\"\(HTML.data(data))><title id=\"\(id)-t\">\(HTML.text(title))</title><desc id=\"\(id)-d\">\(HTML.text(description))</desc>\(body)</svg>"
    }
}

/// Rows of horizontal bars, one row per item and one panel per series (e.g. parameters and
/// bytes per layer): a label on the left, each bar with its value written at its end.
struct BarRowsChart {
    struct Series {
        var title: String
        var cls: String
        var values: [Double?]
        var format: (Double) -> String
        var logScale = false
        /// Ticks at round numbers of KiB, MiB, … rather than of decimal units.
        var binaryUnits = false
        /// How ticks are written, when not as the values (`format`).
        var tickFormat: ((Double) -> String)?
    }

    var labels: [String]
    /// Per-row `data-*` attributes and a per-row CSS class (a kind or status colour), optional.
    var rowData: [[(String, String)]]
    var rowClasses: [String?] = []
    var series: [Series]
    var labelWidth: Double = 170
    var width: Double = 860

    func render(id: String, title: String, description: String) -> String {
        let rowHeight = 18.0, top = 26.0, gap = 18.0
        let height = top + rowHeight * Double(labels.count) + 26
        let panelWidth = (width - labelWidth - gap * Double(series.count)) / Double(max(series.count, 1))
        var svg = SVGCanvas(width: width, height: height)
        var scales: [any ChartScale] = []
        for (p, s) in series.enumerated() {
            let x0 = labelWidth + Double(p) * (panelWidth + gap)
            let finite = s.values.compactMap { $0 }.filter { $0.isFinite }
            let maxValue = finite.max() ?? 1
            let textRoom = 58.0
            let scale: any ChartScale = s.logScale
                ? LogScale(max(finite.filter { $0 > 0 }.min() ?? 1, 1e-12) / 2, maxValue, to: x0, x0 + panelWidth - textRoom)
                : LinearScale(0, maxValue > 0 ? maxValue : 1, to: x0, x0 + panelWidth - textRoom, tickCount: 3, nice: false,
                              unit: s.binaryUnits ? pow(1024, (log(max(maxValue, 1)) / log(1024)).rounded(.down)) : 1)
            scales.append(scale)
            svg.text(x0, 14, s.title, cls: "chart-title")
            let bottom = top + rowHeight * Double(labels.count)
            for tick in scale.ticks() {
                let x = scale(tick.value)
                guard x >= x0 - 0.5, x <= x0 + panelWidth - textRoom + 0.5 else { continue }
                svg.line(x, top - 4, x, bottom, cls: "gridline")
                svg.text(x, bottom + 13, s.logScale ? tick.label : (s.tickFormat ?? s.format)(tick.value), anchor: "middle")
            }
            svg.line(x0, top - 4, x0, bottom, cls: "axis")
        }
        for (r, label) in labels.enumerated() {
            let y = top + rowHeight * Double(r)
            let data = r < rowData.count ? rowData[r] : []
            svg.add("<g class=\"row\"\(HTML.data(data))>")
            svg.text(labelWidth - 8, y + 12.5, clipped(label, Int(labelWidth / 6.4)), anchor: "end")
            for (p, s) in series.enumerated() {
                let x0 = labelWidth + Double(p) * (panelWidth + gap)
                guard let value = s.values[r] else {
                    svg.text(x0 + 4, y + 12.5, "–", cls: "tick")
                    continue
                }
                let end = value.isFinite ? scales[p](value) : x0
                let cls = (r < rowClasses.count ? rowClasses[r] : nil) ?? s.cls
                svg.rect(x0, y + 3, max(end - x0, value > 0 ? 1 : 0), rowHeight - 6, cls: cls, title: "\(label): \(s.format(value))")
                svg.text(end + 4, y + 12.5, s.format(value), cls: "tick")
            }
            svg.add("</g>")
        }
        return svg.render(id: id, title: title, description: description)
    }
}

/// Points along an ordered axis (tensors or layers in file order), one or more series, optionally
/// joined by lines, over shaded bands that mark the layers.
struct DepthChart {
    struct Point {
        var x: Int
        var y: Double
        var title: String
        var data: [(String, String)]
    }

    struct Series {
        var name: String
        var cls: String
        var points: [Point]
        var connect: Bool
    }

    /// Number of positions on the x axis.
    var positions: Int
    /// Layer bands: positions `start..<end` share a layer, labelled `label` under the axis.
    var bands: [(start: Int, end: Int, label: String)]
    var series: [Series]
    var xTitle: String
    var yTitle: String
    var logY = false
    var width: Double = 860
    var height: Double = 250
    /// Draw a horizontal reference line at this value (e.g. the recipe's bits per weight).
    var reference: (value: Double, label: String)?
    /// Bounds the y axis never crosses (0 for a relative change, 1 for a cosine).
    var yFloor: Double?
    var yCeiling: Double?

    func render(id: String, title: String, description: String) -> String {
        let left = 56.0, right = width - 14, top = 12.0, bottom = height - 42
        let values = series.flatMap(\.points).map(\.y).filter(\.isFinite) + (reference.map { [$0.value] } ?? [])
        let lo = values.min() ?? 0, hi = values.max() ?? 1
        let scale: any ChartScale = logY
            ? LogScale(values.filter { $0 > 0 }.min() ?? 1e-6, max(hi, 1e-6), to: bottom, top)
            : LinearScale(
                max(lo == hi ? lo - 1 : lo - (hi - lo) * 0.06, min(yFloor ?? -.infinity, lo)),
                min(lo == hi ? hi + 1 : hi + (hi - lo) * 0.06, max(yCeiling ?? .infinity, hi)),
                to: bottom, top, tickCount: 5)
        var svg = SVGCanvas(width: width, height: height)
        let step = (right - left) / Double(max(positions, 1))
        let x = { (i: Int) in left + step * (Double(i) + 0.5) }
        // A band's label is drawn centred under it when it does not run into the previous label.
        var labelEnd = -Double.infinity
        for (i, band) in bands.enumerated() {
            let x0 = left + step * Double(band.start), x1 = left + step * Double(band.end)
            if i % 2 == 0 { svg.rect(x0, top, x1 - x0, bottom - top, cls: "band") }
            let half = 3.3 * Double(band.label.count), center = min(max((x0 + x1) / 2, left + half), right - half)
            if center - half >= labelEnd + 6 {
                svg.text(center, bottom + 14, band.label, anchor: "middle")
                labelEnd = center + half
            }
        }
        svg.leftAxis(scale, x: left, right: right, top: top, bottom: bottom, title: yTitle)
        svg.line(left, bottom, right, bottom, cls: "axis")
        svg.text((left + right) / 2, bottom + 32, xTitle, cls: "axis-title", anchor: "middle")
        if let reference {
            let y = scale(reference.value)
            svg.line(left, y, right, y, cls: "mark3")
            svg.text(right - 2, y - 4, reference.label, cls: "mark3-label", anchor: "end")
        }
        for s in series {
            svg.add("<g class=\"series\" data-series=\"\(HTML.text(s.name))\">")
            let drawn = s.points.filter(\.y.isFinite)
            if s.connect, drawn.count > 1 {
                // A line joins neighbouring positions only: a gap (a layer without the series) breaks it.
                let path = drawn.enumerated().map { i, p in
                    let move = i == 0 || p.x - drawn[i - 1].x > 1
                    return "\(move ? "M" : "L")\(coordinate(x(p.x))) \(coordinate(scale(p.y)))"
                }.joined()
                svg.add("<path class=\"line \(s.cls)\" d=\"\(path)\"/>")
            }
            for p in s.points {
                // A non-finite value (an exact tensor's SQNR) is kept as data but not drawn.
                let visible = p.y.isFinite
                let cy = visible ? scale(p.y) : top
                svg.add("<circle class=\"point \(s.cls)\" cx=\"\(coordinate(x(p.x)))\" cy=\"\(coordinate(cy))\" r=\"\(visible ? (positions > 150 ? 2.2 : 3.2) : 0)\"\(HTML.data(p.data))><title>\(HTML.text(p.title))</title></circle>")
            }
            svg.add("</g>")
        }
        return svg.render(id: id, title: title, description: description)
    }
}

/// A histogram with a log-scaled count axis, and the mean, ±3σ and ±6σ marked when they fall in
/// the range.
struct HistogramChart {
    var name: String
    var histogram: TensorStatistics.Histogram
    var mean: Double?
    var std: Double?
    var width: Double = 500
    var height: Double = 190

    func render(id: String, data: [(String, String)]) -> String {
        let left = 44.0, right = width - 10, top = 18.0, bottom = height - 34
        let counts = histogram.counts
        let maxCount = Double(counts.max() ?? 1)
        let y = LogScale(0.5, max(maxCount, 1), to: bottom, top, nice: false)
        let x = LinearScale(histogram.lower, histogram.upper, to: left, right, tickCount: 4, nice: false)
        var svg = SVGCanvas(width: width, height: height)
        for tick in y.ticks() where tick.value >= 1 {
            let ty = y(tick.value)
            svg.line(left, ty, right, ty, cls: "gridline")
            svg.text(left - 4, ty + 3.5, tick.label, anchor: "end")
        }
        // One path for all bars keeps a 100-bin histogram to a few hundred bytes.
        let w = (right - left) / Double(max(counts.count, 1))
        var path = ""
        for (i, c) in counts.enumerated() where c > 0 {
            let top = y(Double(c))
            path += "M\(coordinate(left + w * Double(i))) \(coordinate(bottom))V\(coordinate(top))h\(coordinate(max(w - 0.4, 0.4)))V\(coordinate(bottom))Z"
        }
        svg.add("<path class=\"hist\" d=\"\(path)\"/>")
        for tick in x.ticks() {
            let tx = x(tick.value)
            guard tx >= left - 0.5, tx <= right + 0.5 else { continue }
            svg.line(tx, bottom, tx, bottom + 3, cls: "axis")
            svg.text(tx, bottom + 14, tick.label, anchor: "middle")
        }
        svg.line(left, bottom, right, bottom, cls: "axis")
        svg.line(left, top, left, bottom, cls: "axis")
        svg.text((left + right) / 2, bottom + 28, "value (count on a log scale)", cls: "axis-title", anchor: "middle")
        if let mean, let std, std > 0 {
            let inside = { (v: Double) in v >= histogram.lower && v <= histogram.upper }
            if inside(mean) { svg.line(x(mean), top, x(mean), bottom, cls: "mean") }
            for k in [3.0, 6.0] {
                for sign in [-1.0, 1.0] {
                    let v = mean + sign * k * std
                    guard inside(v) else { continue }
                    let cls = k == 3 ? "mark3" : "mark6"
                    svg.line(x(v), top, x(v), bottom, cls: cls)
                    svg.text(x(v), top - 4, "\(sign < 0 ? "−" : "+")\(Int(k))σ", cls: cls + "-label", anchor: "middle")
                }
            }
        }
        let description = "\(counts.count) equal-width bins from \(HumanUnits.number(histogram.lower)) to \(HumanUnits.number(histogram.upper)); largest bin \(Int(maxCount)) values."
        return svg.render(id: id, title: "Histogram of \(name)", description: description, data: data, cls: "chart histogram")
    }
}

/// Where outliers sit in a matrix: a heat map of ``OutlierMap`` cells, with the row totals on the
/// right and the column totals below.
struct DensityMapChart {
    var map: OutlierMap
    var width: Double = 360
    var height: Double = 250

    func render(id: String) -> String {
        let left = 46.0, top = 8.0, side = 170.0, margin = 36.0
        let plotW = side * 1.15, plotH = side
        var svg = SVGCanvas(width: width, height: height)
        let cw = plotW / Double(map.gridColumns), ch = plotH / Double(map.gridRows)
        let maxCell = Double(map.cells.max() ?? 1)
        // The cells are one grayscale image, a luminance mask over a rectangle of the heat colour
        // (so the colour follows the scheme). √ scale: a single outlier stays visible next to a
        // dense cell; an empty cell is black, fully masked.
        let pixels = map.cells.map { c -> UInt8 in
            c == 0 ? 0 : UInt8((255 * (0.15 + 0.85 * (Double(c) / max(maxCell, 1)).squareRoot())).rounded())
        }
        let png = PNGImage.dataURL(PNGImage.grayscale(width: map.gridColumns, height: map.gridRows, pixels: pixels))
        let box = "x=\"\(coordinate(left))\" y=\"\(coordinate(top))\" width=\"\(coordinate(plotW))\" height=\"\(coordinate(plotH))\""
        svg.add("<mask id=\"\(id)-mask\" maskUnits=\"userSpaceOnUse\" \(box)><image \(box) preserveAspectRatio=\"none\" style=\"image-rendering:pixelated\" href=\"\(png)\"/></mask>")
        svg.add("<rect class=\"heat\" \(box) mask=\"url(#\(id)-mask)\"/>")
        svg.rect(left, top, plotW, plotH, cls: "frame")
        let rows = map.rowTotals, columns = map.columnTotals
        let maxRow = Double(rows.max() ?? 1), maxColumn = Double(columns.max() ?? 1)
        for (i, r) in rows.enumerated() where r > 0 {
            svg.rect(left + plotW + 4, top + ch * Double(i), margin * Double(r) / maxRow, ch + 0.05, cls: "heat")
        }
        for (j, c) in columns.enumerated() where c > 0 {
            svg.rect(left + cw * Double(j), top + plotH + 4, cw + 0.05, margin * Double(c) / maxColumn, cls: "heat")
        }
        svg.text(left - 4, top + 9, "0", anchor: "end")
        svg.text(left - 4, top + plotH, "\(map.rows - 1)", anchor: "end")
        svg.text(left - 30, top + plotH / 2, "row", cls: "axis-title", anchor: "middle", rotate: -90)
        svg.text(left, top + plotH + margin + 16, "0", anchor: "start")
        svg.text(left + plotW, top + plotH + margin + 16, "\(map.columns - 1)", anchor: "end")
        svg.text(left + plotW / 2, top + plotH + margin + 16, "column", cls: "axis-title", anchor: "middle")
        let description = "\(map.parameters) outlier parameters (\(map.kind.rawValue)) in a \(map.rows)×\(map.columns) matrix, counted on a \(map.gridRows)×\(map.gridColumns) grid; bars on the right and below are the row and column totals."
        let data: [(String, String)] = [
            ("tensor", map.name), ("kind", map.kind.rawValue), ("rows", "\(map.rows)"), ("columns", "\(map.columns)"),
            ("parameters", "\(map.parameters)"), ("grid-rows", "\(map.gridRows)"), ("grid-columns", "\(map.gridColumns)"),
            ("cells", map.cells.map(String.init).joined(separator: " ")),
        ]
        return svg.render(id: id, title: "Outliers of \(map.name)", description: description, data: data, cls: "chart density")
    }
}

/// `text` cut to `limit` characters with a leading ellipsis (names differ at their ends).
func clipped(_ text: String, _ limit: Int) -> String {
    text.count <= limit ? text : "…" + text.suffix(limit - 1)
}
