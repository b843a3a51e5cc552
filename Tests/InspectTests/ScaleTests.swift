import Foundation
import Formats
import Testing
@testable import Inspect
import QPKCore
import Quantize

/// Every command must be linear in the tensor count (issue 11 §6): 100,000 tensors in seconds.
/// A quadratic step (a per-row scan of all tensors) takes minutes at 20,000 tensors in a debug
/// build, so the generous time limit below catches it without timing anything finely.
@Suite("metadata scale: inspect and diff are linear in the tensor count")
struct ScaleTests {
    static let count = 20_000

    static func reader() -> MemoryReader {
        let reader = MemoryReader(name: "many.safetensors")
        for i in 0..<count { reader.add("blocks.\(i).norm.weight", [Float(i), 1]) }
        return reader
    }

    @Test("inspect of 20,000 tiny tensors builds and renders one row per tensor", .timeLimit(.minutes(1)))
    func inspectManyTensors() throws {
        let report = try InspectReport.build(reader: Self.reader())
        #expect(report.tensors.count == Self.count)
        #expect(report.layers.count == Self.count)
        let text = report.renderText()
        // Heading, blank, table header, rows, rule, total; blank, "Layers", header, rows.
        #expect(text.split(separator: "\n", omittingEmptySubsequences: false).count == 2 * Self.count + 8)
    }

    @Test("the statistics tables render 20,000 rows in linear time", .timeLimit(.minutes(1)))
    func renderManyStatistics() throws {
        // Statistics of one tensor, copied to every row: this checks the rendering, not the
        // (linear, but per-tensor costly in a debug build) statistics pass.
        let one = try InspectReport.build(
            reader: MemoryReader().add("t", [1, 2, 3, 4]), options: InspectOptions(statistics: true))
        var report = try InspectReport.build(reader: Self.reader())
        for i in report.tensors.indices { report.tensors[i].stats = one.tensors[0].stats }
        let text = report.renderText()
        #expect(text.contains("Distribution"))
        #expect(text.contains("blocks.19999.norm.weight"))
    }

    @Test("diff of two 20,000-tensor checkpoints compares every pair", .timeLimit(.minutes(1)))
    func diffManyTensors() throws {
        let diff = try CheckpointDiff.compare(Self.reader(), Self.reader())
        #expect(diff.summary.identical == Self.count)
        #expect(diff.summary.checkpointsEqual)
        #expect(!diff.renderText().isEmpty)
    }
}
