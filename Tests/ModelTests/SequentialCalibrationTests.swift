import Foundation
import Formats
import Testing
@testable import Model

@Suite struct SequentialCalibrationTests {
    @Test func laterBlocksSeeTheOutputsOfQuantizedEarlierBlocks() throws {
        let tiny = try TinyBert()
        defer { tiny.remove() }
        var model = try BertEncoder(config: try ModelConfig(contentsOf: tiny.config), checkpoint: try Checkpoint.open(tiny.weights))
        let batches = [TokenBatch([[2, 5, 8, 3], [2, 4, 3]], padID: 0), TokenBatch([[2, 9, 10, 11, 3]], padID: 0)]
        var seen: [Int: HessianAccumulator] = [:]
        try SequentialCalibration.run(&model, batches: batches) { block, statistics in
            seen[block.index] = statistics.statistics(of: block.query.name)
            // "Quantize": halve the FFN output weights, as a stand-in for a real quantizer.
            let down = block.output
            let replaced = block.replaceWeight(of: down.name, with: down.weight.map { $0 / 2 })
            #expect(replaced)
        }
        #expect(seen.keys.sorted() == [0, 1])
        #expect(seen[0]?.count == 12)
        // Block 1's statistics are those of the *modified* block 0's outputs.
        var direct = HessianAccumulator(dimension: tiny.hidden)
        for batch in batches {
            direct.add(model.blocks[0](try model.embed(batch), batch: batch, observer: nil), rowMask: batch.rowMask)
        }
        let gathered = try #require(seen[1])
        #expect(zip(gathered.hessian, direct.hessian).allSatisfy { abs($0 - $1) < 1e-9 })
        let original = try BertEncoder(config: model.config, checkpoint: try Checkpoint.open(tiny.weights))
        #expect(original.blocks[1].output.weight.map { $0 / 2 } == model.blocks[1].output.weight)
    }
}
