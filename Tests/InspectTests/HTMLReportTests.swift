import Foundation
import Testing
@testable import Inspect
import QPKCore
import Formats
import Quantize

/// The HTML report draws what `--json` prints: these tests read the page back (the embedded data
/// block and the `data-*` attributes of the charts' marks) and compare it with the report values.
@Suite("HTMLReport")
struct HTMLReportTests {
    /// A small BERT-like checkpoint: two layers of query/key/value/FFN weights, one quantized
    /// tensor with outlier elements, one with an outlier row.
    func model() -> MemoryReader {
        let reader = MemoryReader(name: "m.qpk", format: .qpk)
        reader.add("embeddings.word_embeddings.weight", (0..<64).map { Float($0) / 8 - 4 }, shape: [16, 4])
        for layer in 0..<2 {
            let p = "encoder.layer.\(layer)."
            reader.add(smallQuantized(name: p + "attention.self.query.weight",
                                      outliers: OutlierSet(kind: .elements, indices: [1, 6], values: [9, 9], statistic: "range_shrink_gain", threshold: 0.5)))
            reader.add(smallQuantized(name: p + "attention.self.key.weight",
                                      outliers: OutlierSet(kind: .rows, indices: [1], values: [1, 2, 3, 4], statistic: "row_kurtosis", threshold: 2)))
            reader.add(p + "intermediate.dense.weight", (0..<32).map { sin(Float($0)) }, shape: [8, 4])
            reader.add(p + "output.LayerNorm.weight", [1, 1, 1, 1])
        }
        return reader
    }

    func inspectReport() throws -> (InspectReport, [OutlierMap], String) {
        let reader = model()
        let report = try InspectReport.build(reader: reader, options: InspectOptions(statistics: true, histogramBins: 16))
        let maps = try OutlierMap.maps(of: report, reader: reader)
        return (report, maps, try HTMLReport.inspect(report, outlierMaps: maps))
    }

    @Test("The embedded data block is the inspect JSON, whole, plus the outlier maps")
    func inspectDataBlock() throws {
        let (report, maps, html) = try inspectReport()
        let block = try Page(html).dataBlock()
        #expect(block["report"] as? String == "inspect" && block["version"] as? Int == 1)
        let expected = try JSONSerialization.jsonObject(with: report.jsonData()) as? NSDictionary
        #expect((block["inspect"] as? NSDictionary) == expected)
        let decoded = try ReportJSON.decoder().decode([OutlierMap].self, from: JSONSerialization.data(withJSONObject: block["outlier_maps"]!))
        #expect(decoded == maps && maps.count == 4)
    }

    @Test("Layer bars, SQNR points, histograms and outlier maps carry the report's numbers")
    func inspectMarks() throws {
        let (report, maps, html) = try inspectReport()
        let page = Page(html)
        let rows = page.elements("g").filter { $0["data-layer"] != nil }
        #expect(rows.map { $0["data-layer"]! } == report.layers.map(\.prefix))
        #expect(rows.map { Int($0["data-parameters"]!)! } == report.layers.map(\.parameters))
        #expect(rows.map { Int($0["data-bytes"]!)! } == report.layers.map(\.bytes))

        let points = page.elements("circle").filter { $0["data-sqnr-db"] != nil }
        let quantized = report.tensors.filter { $0.quantization != nil }
        // Two charts (SQNR, bits per weight), one point per quantized tensor in each.
        #expect(points.count == 2 * quantized.count)
        for entry in quantized {
            let mine = points.filter { $0["data-tensor"] == entry.name }
            #expect(mine.count == 2)
            #expect(mine.allSatisfy { Double($0["data-sqnr-db"]!) == entry.quantization!.sqnrDB })
            #expect(mine.allSatisfy { Double($0["data-bits-per-weight"]!) == entry.quantization!.bitsPerWeight })
        }

        let histograms = page.elements("svg").filter { $0["class"] == "chart histogram" }
        #expect(histograms.count == report.tensors.count)
        for (svg, entry) in zip(histograms, report.tensors) {
            let h = try #require(entry.stats?.histogram)
            #expect(svg["data-tensor"] == entry.name)
            #expect(svg["data-counts"]!.split(separator: " ").map { Int($0)! } == h.counts)
            #expect(Double(svg["data-lower"]!) == h.lower && Double(svg["data-upper"]!) == h.upper)
            #expect(Int(svg["data-beyond-3sigma"]!) == entry.stats!.beyond3Sigma)
        }

        let densities = page.elements("svg").filter { $0["class"] == "chart density" }
        #expect(densities.map { $0["data-tensor"]! } == maps.map(\.name))
        #expect(densities.map { $0["data-cells"]!.split(separator: " ").map { Int($0)! } } == maps.map(\.cells))
    }

    @Test("Outlier maps count every outlier parameter in its cell")
    func outlierMaps() {
        // 4×6 matrix on a 4×6 grid: elements at (0,1) and (3,5).
        let elements = OutlierMap(name: "e", outliers: OutlierSet(kind: .elements, indices: [1, 23], values: [0, 0], statistic: "", threshold: 0), rows: 4, columns: 6)
        #expect(elements.parameters == 2 && elements.cells[1] == 1 && elements.cells[23] == 1)
        // 100 rows on a 32-row grid: row 99 is in grid row ⌊99·32/100⌋ = 31, adding each of the 6 columns once.
        let rows = OutlierMap(name: "r", outliers: OutlierSet(kind: .rows, indices: [99], values: [], statistic: "", threshold: 0), rows: 100, columns: 6)
        #expect(rows.gridRows == 32 && rows.gridColumns == 6 && rows.parameters == 6)
        #expect(rows.rowTotals[31] == 6 && rows.columnTotals == [1, 1, 1, 1, 1, 1])
        // A column of 100 rows: every one of its 100 parameters counted, spread over the 32 grid rows.
        let columns = OutlierMap(name: "c", outliers: OutlierSet(kind: .columns, indices: [2], values: [], statistic: "", threshold: 0), rows: 100, columns: 6)
        #expect(columns.parameters == 100 && columns.columnTotals[2] == 100 && columns.rowTotals.reduce(0, +) == 100)
    }

    @Test("The page is self-contained: no URL but the SVG namespace, no script but the data, names escaped")
    func selfContained() throws {
        let reader = MemoryReader(name: "hostile.safetensors")
        reader.add("</script><img src=x onerror=alert(1)>.weight", [1, 2, 3, 4], shape: [2, 2])
        let report = try InspectReport.build(reader: reader, options: InspectOptions(statistics: true, histogramBins: 4))
        let html = try HTMLReport.inspect(report)
        let page = Page(html)
        #expect(!html.contains("<img"))
        #expect(html.components(separatedBy: "<script").count == 2)  // the data block only
        #expect(page.elements("script").allSatisfy { $0["type"] == "application/json" })
        #expect(html.ranges(of: "://").count == html.ranges(of: "http://www.w3.org/2000/svg").count)
        // Every link stays in the page (`#section`) or is inline data (the empty favicon).
        let links = ["a", "link", "img", "script", "use", "image"].flatMap { page.elements($0) }.flatMap { [$0["href"], $0["src"]] }.compactMap { $0 }
        #expect(!links.isEmpty && links.allSatisfy { $0.hasPrefix("#") || $0.hasPrefix("data:") })
        // `url(#id)` names a mask inside the page; nothing else uses url().
        #expect(html.ranges(of: "url(").count == html.ranges(of: "url(#").count && !html.contains("@import"))
        #expect(html.contains("prefers-color-scheme: dark"))
        // The name survives the round trip through the data block.
        let block = try page.dataBlock()
        let tensors = (block["inspect"] as? [String: Any])?["tensors"] as? [[String: Any]]
        #expect(tensors?.first?["name"] as? String == "</script><img src=x onerror=alert(1)>.weight")
    }

    @Test("Layer labels are short and never ambiguous")
    func labels() {
        let bert = layerLabels(["embeddings.", "encoder.layer.0.", "encoder.layer.11.", "pooler."])
        #expect(bert == ["embeddings.": "embeddings", "encoder.layer.0.": "layer.0", "encoder.layer.11.": "layer.11", "pooler.": "pooler"])
        // Two prefixes ending in `blocks.0` keep their whole names.
        let clash = layerLabels(["a.blocks.0.", "b.blocks.0.", "b.blocks.1."])
        #expect(clash == ["a.blocks.0.": "a.blocks.0", "b.blocks.0.": "b.blocks.0", "b.blocks.1.": "blocks.1"])
    }

    @Test("Charts are labelled for assistive technology")
    func accessible() throws {
        let (_, _, html) = try inspectReport()
        let svgs = Page(html).elements("svg")
        #expect(!svgs.isEmpty)
        #expect(svgs.allSatisfy { $0["role"] == "img" && $0["aria-labelledby"] != nil })
        #expect(html.components(separatedBy: "<figure>").count - 1 == svgs.count)
    }

    @Test("The diff report draws layers, kinds, ranking and worst elements from the diff JSON")
    func diffReport() throws {
        let a = model()
        let b = MemoryReader(name: "b.safetensors")
        for info in a.tensors {
            let values = try FloatValues(storage: a.storage(of: info), info: info)
            var floats = [Float](repeating: 0, count: values.count)
            values.withChunk(0..<values.count) { chunk in for i in chunk.indices { floats[i] = chunk[i] } }
            // Perturb the FFN weights of layer 1 only.
            if info.name.hasPrefix("encoder.layer.1.intermediate") { floats = floats.map { $0 * 1.1 } }
            b.add(info.name, floats, shape: info.shape)
        }
        let diff = try CheckpointDiff.compare(a, b)
        let html = try HTMLReport.diff(diff)
        let page = Page(html)
        let block = try page.dataBlock()
        let expected = try JSONSerialization.jsonObject(with: diff.jsonData()) as? NSDictionary
        #expect(block["report"] as? String == "diff" && (block["diff"] as? NSDictionary) == expected)

        let layerPoints = page.elements("circle").filter { $0["data-layer"] != nil && $0["data-kind"] == nil }
        // Relative L2 and cosine charts: one point per layer with a figure in each.
        #expect(layerPoints.count == diff.layers.filter { $0.relativeL2 != nil }.count + diff.layers.filter { $0.cosine != nil }.count)
        for g in diff.layers {
            for point in layerPoints where point["data-layer"] == g.prefix {
                #expect(Double(point["data-relative-l2"]!) == g.relativeL2)
                #expect(Double(point["data-cosine"]!) == g.cosine)
            }
        }
        let kindRows = page.elements("g").filter { $0["data-kind"] != nil && $0["data-layer"] == nil }
        #expect(kindRows.map { $0["data-kind"]! } == diff.kinds.filter { $0.changed > 0 }.map { $0.kind!.rawValue })
        let ranked = page.elements("g").filter { $0["data-status"] != nil }
        #expect(ranked.map { $0["data-tensor"]! } == diff.tensors.filter { $0.status != .identical }.map(\.name))
        let worst = page.elements("span").filter { $0["class"] == "worst" }
        #expect(worst.count == diff.tensors.filter { $0.worst != nil }.count)
        for w in worst {
            let t = try #require(diff.tensors.first { $0.name == w["data-tensor"] })
            #expect(Float(w["data-a"]!) == t.worst?.a && Float(w["data-b"]!) == t.worst?.b)
        }
        #expect(html.contains("id=\"verdict\">DIFFERENT<"))
    }

    @Test("Layer and kind groups pool the sums of their changed tensors")
    func groupChanges() throws {
        let a = MemoryReader()
            .add("l.0.attention.self.query.weight", [1, 2, 3, 4])
            .add("l.0.output.dense.weight", [2, 2, 2, 2])
            .add("l.0.output.LayerNorm.weight", [1, 1])
        let b = MemoryReader()
            .add("l.0.attention.self.query.weight", [1, 2, 3, 5])
            .add("l.0.output.dense.weight", [2, 2, 2, 1])
            .add("l.0.output.LayerNorm.weight", [1, 1])
        let diff = try CheckpointDiff.compare(a, b)
        let layer = try #require(diff.layers.first)
        #expect(diff.layers.count == 1 && layer.prefix == "l.0." && layer.kind == nil)
        #expect(layer.tensors == 3 && layer.changed == 2 && layer.elements == 8)
        // Σa² = 30 + 16, Σ(a−b)² = 1 + 1, Σab = 34 + 14, Σb² = 39 + 13.
        #expect(isClose(layer.relativeL2, (2.0 / 46).squareRoot(), relative: 1e-12))
        #expect(isClose(layer.cosine, 48 / (46.0 * 52).squareRoot(), relative: 1e-12))
        #expect(isClose(layer.sqnrDB, 10 * log10(46.0 / 2), relative: 1e-12))
        #expect(diff.kinds.map(\.kind) == [.query, .ffnDown, .norm])
        let norm = try #require(diff.kinds.last)
        #expect(norm.changed == 0 && norm.relativeL2 == 0 && norm.cosine == 1 && norm.sqnrDB == .infinity)
        #expect(diff.layerKinds.map(\.prefix) == ["l.0.", "l.0.", "l.0."])
        #expect(isClose(diff.kinds[0].relativeL2, (1.0 / 30).squareRoot(), relative: 1e-12))
    }
}

/// Just enough HTML reading for the tests: start tags with their attributes, and the data block.
struct Page {
    let html: String

    init(_ html: String) { self.html = html }

    /// Start tags named `tag`, as attribute dictionaries (entities decoded).
    func elements(_ tag: String) -> [[String: String]] {
        let tagPattern = try! NSRegularExpression(pattern: "<\(tag)\\b([^>]*)>")
        let attributePattern = try! NSRegularExpression(pattern: "([a-zA-Z0-9-]+)=\"([^\"]*)\"")
        let ns = html as NSString
        return tagPattern.matches(in: html, range: NSRange(location: 0, length: ns.length)).map { match in
            let attributes = ns.substring(with: match.range(at: 1))
            let a = attributes as NSString
            var out: [String: String] = [:]
            for m in attributePattern.matches(in: attributes, range: NSRange(location: 0, length: a.length)) {
                out[a.substring(with: m.range(at: 1))] = Self.decode(a.substring(with: m.range(at: 2)))
            }
            return out
        }
    }

    func dataBlock() throws -> [String: Any] {
        let open = "<script type=\"application/json\" id=\"qpk-report-data\">"
        let start = try #require(html.range(of: open))
        let end = try #require(html.range(of: "</script>", range: start.upperBound..<html.endIndex))
        let json = Data(html[start.upperBound..<end.lowerBound].utf8)
        return try #require(try JSONSerialization.jsonObject(with: json) as? [String: Any])
    }

    static func decode(_ text: String) -> String {
        text.replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
            .replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&#39;", with: "'")
            .replacingOccurrences(of: "&amp;", with: "&")
    }
}
