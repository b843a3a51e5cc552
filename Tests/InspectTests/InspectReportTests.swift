import Foundation
import Testing
@testable import Inspect
import QPKCore
import Formats
import Quantize

@Suite("InspectReport")
struct InspectReportTests {
    func model() -> MemoryReader {
        MemoryReader(metadata: ["format": "pt"])
            .add("embeddings.word_embeddings.weight", (0..<64).map { Float($0) / 8 }, shape: [16, 4])
            .add("encoder.layer.0.attention.query.weight", [Float](repeating: 0.5, count: 16), shape: [4, 4], dtype: .f16)
            .add("encoder.layer.0.attention.query.bias", [1, .nan, 3, .infinity], dtype: .bf16)
            .add("encoder.layer.1.output.weight", [Float](repeating: -1, count: 8), shape: [2, 4])
    }

    @Test("Without statistics: names, dtypes, shapes, parameters, bytes and totals, no data read")
    func structure() throws {
        let report = try InspectReport.build(reader: model())
        #expect(report.format == "safetensors" && report.metadata == ["format": "pt"])
        #expect(report.tensors.map(\.parameters) == [64, 16, 4, 8])
        #expect(report.tensors.map(\.bytes) == [256, 32, 8, 32])
        #expect(report.tensors[1].dtype == "F16" && report.tensors[1].shape == [4, 4])
        #expect(report.tensors.allSatisfy { $0.stats == nil && $0.quantization == nil })
        #expect(report.summary == .init(tensors: 4, parameters: 92, bytes: 328, bitsPerWeight: 328.0 * 8 / 92, quantizedTensors: 0))
    }

    @Test("Layers group tensors by their last numbered prefix, in order of appearance")
    func layers() throws {
        let report = try InspectReport.build(reader: model())
        #expect(report.layers.map(\.prefix) == ["embeddings.", "encoder.layer.0.", "encoder.layer.1."])
        #expect(report.layers.map(\.tensors) == [1, 2, 1])
        #expect(report.layers.map(\.parameters) == [64, 20, 8])
        #expect(LayerGrouping.prefix(of: "blocks/12/mlp/w1") == "blocks/12/")
        #expect(LayerGrouping.prefix(of: "dense_1/kernel:0") == "dense_1/")
        #expect(LayerGrouping.prefix(of: "bias") == "bias")
        #expect(LayerGrouping.prefix(of: "h.3.mlp.0") == "h.3.")
    }

    @Test("Statistics per tensor come from each dtype's float view; filters select tensors")
    func statisticsAndFilters() throws {
        let options = InspectOptions(statistics: true, histogramBins: 4, tensorFilters: [Glob("*.query.*")])
        let report = try InspectReport.build(reader: model(), options: options)
        #expect(report.tensors.map(\.name) == ["encoder.layer.0.attention.query.weight", "encoder.layer.0.attention.query.bias"])
        let bias = try #require(report.tensors[1].stats)
        #expect(bias.nanCount == 1 && bias.positiveInfinityCount == 1 && bias.mean == 2 && bias.max == 3)
        #expect(bias.histogram?.counts == [1, 0, 0, 1])
        #expect(report.tensors[0].stats?.std == 0)
        #expect(report.summary.tensors == 2 && report.layers.count == 1)
    }

    @Test("Quantized tensors show their quantization and stored bytes, even without a provider")
    func quantizedWithoutProvider() throws {
        let reader = MemoryReader(name: "m.qpk", format: .qpk)
        reader.add(smallQuantized())
        reader.add("norm", [1, 2, 3, 4])
        let report = try InspectReport.build(reader: reader)
        let q = try #require(report.tensors[0].quantization)
        #expect(q.bits == 4 && q.groupSize == 4 && q.scheme == .affine && q.method == "minmax")
        #expect(q.sqnrDB == 21.5 && q.maxAbsError == 0.25 && q.outlierCount == 0 && q.outlierKind == nil)
        // 4 bytes of codes + 2 fp16 scales + 2 fp16 zeros = 12 bytes = 96 bits over 8 weights.
        #expect(q.storedBytes == 12 && q.bitsPerWeight == 12)
        #expect(report.tensors[0].bytes == 12 && report.tensors[1].quantization == nil)
        #expect(report.summary.quantizedTensors == 1 && report.summary.bytes == 28)
    }

    @Test("A reader providing quantization summaries is asked instead of decoding")
    func provider() throws {
        final class Provided: CheckpointReader, QuantizationInfoProviding, @unchecked Sendable {
            let inner = MemoryReader(name: "p.qpk", format: .qpk).add("w", [Float](repeating: 1, count: 64), shape: [8, 8])
            var url: URL { inner.url }
            var format: CheckpointFormat { .qpk }
            var tensors: [TensorInfo] { inner.tensors }
            var metadata: [String: String] { ["qpk_version": "1"] }
            func storage(of tensor: TensorInfo) throws -> TensorStorage { Issue.record("data read"); return try inner.storage(of: tensor) }
            func quantizationSummary(for name: String) -> QuantizationSummary? {
                .init(bits: 2, groupSize: 32, scheme: .symmetric, method: "mse", outlierKind: .elements, outlierCount: 3,
                      bitsPerWeight: 3.25, sqnrDB: 9.5, maxAbsError: 0.4, storedBytes: 26)
            }
        }
        let report = try InspectReport.build(reader: Provided())
        #expect(report.tensors[0].quantization?.outlierKind == .elements && report.tensors[0].bytes == 26)
        #expect(report.layers[0].minSqnrDB == 9.5 && report.metadata["qpk_version"] == "1")
    }

    @Test("Outliers are counted in parameters covered (whole rows count every column)")
    func outliers() {
        let rows = OutlierSet(kind: .rows, indices: [1], values: [9, 9, 9, 9], statistic: "row_kurtosis", threshold: 3)
        let summary = QuantizationSummary(smallQuantized(outliers: rows))
        #expect(summary.outlierKind == .rows && summary.outlierCount == 4)
        #expect(summary.storedBytes == 12 + 4 + 16)
    }

    @Test("Log-coded group scales (QPK v2 §5.8) are tagged, counted and in the JSON, from memory and from a QPK file")
    func scaleCodes() throws {
        let coding = ScaleCodes(bits: 8, octaves: 8)
        var tensor = smallQuantized()
        tensor.layout.scaleCodes = coding
        tensor.scaleCodes = [0, 0x81]
        tensor.rowScales = [0.5, 0.25]
        tensor.scales = []
        let reader = MemoryReader(name: "m.qpk", format: .qpk)
        reader.add(tensor)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("inspect-scale-codes-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("m.qpk")
        let writer = try QPKWriter(
            url: url, tensors: [tensor.info], metadata: [:], recipe: [:],
            provenance: QPKProvenance(sources: [], qpkVersion: "test", createdBy: "test"), overwrite: false)
        try writer.write(tensor.info, storage: .quantized(tensor))
        try writer.finish()
        for report in [try InspectReport.build(reader: reader), try InspectReport.build(reader: try QPKReader(url: url))] {
            let q = try #require(report.tensors[0].quantization)
            #expect(q.scaleCodes == coding)
            #expect(q.featureTags == ["log-scales/8b8o"])
            // 4 bytes of codes + 2 one-byte scale codes + 2 fp16 row scales + 2 fp16 zeros = 14 bytes.
            #expect(q.storedBytes == 14 && q.bitsPerWeight == 14)
            let json = try JSONSerialization.jsonObject(with: report.jsonData()) as! [String: Any]
            let entry = (json["tensors"] as! [[String: Any]])[0]["quantization"] as! [String: Any]
            let codes = try #require(entry["scale_codes"] as? [String: Any])
            #expect((codes["bits"] as? NSNumber)?.intValue == 8 && (codes["octaves"] as? NSNumber)?.intValue == 8)
            #expect(try ReportJSON.decoder().decode(InspectReport.self, from: report.jsonData()) == report)
            let row = try #require(report.renderText().split(separator: "\n").first { $0.hasPrefix("q.weight") })
            #expect(row.contains("affine log-scales/8b8o"))
        }
    }

    @Test("Text: metadata, an aligned table with a total line, layers and histograms")
    func text() throws {
        let report = try InspectReport.build(reader: model(), options: InspectOptions(histogramBins: 4))
        let text = report.renderText()
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(lines[0].hasPrefix("/tmp/memory.safetensors  safetensors, 4 tensors, 92 params, 328 B"))
        #expect(lines.contains("  format: pt"))
        let header = try #require(lines.first { $0.hasPrefix("name") })
        let row = try #require(lines.first { $0.hasPrefix("encoder.layer.1.output.weight") })
        // Right-aligned numeric columns end at the same place as their titles.
        #expect(row.range(of: "256 B") == nil)
        let bytesEnd = header.range(of: "bytes")!.upperBound.utf16Offset(in: header)
        let rowBytes = row.range(of: "32 B")!.upperBound.utf16Offset(in: row)
        #expect(bytesEnd == rowBytes)
        #expect(lines.contains { $0.hasPrefix("total (4 tensors)") && $0.contains("92") && $0.contains("328 B") })
        #expect(text.contains("Layers") && text.contains("encoder.layer.0."))
        #expect(text.contains("Histogram of embeddings.word_embeddings.weight  ████"))
        #expect(!text.contains("\u{1B}["))
        #expect(report.renderText(colors: Colors(enabled: true)).contains("\u{1B}[1m"))
    }
}
