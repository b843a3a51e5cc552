import CBLAS
import Foundation
import Formats
import Testing
@testable import Model

private func encoder(_ tiny: TinyBert) throws -> BertEncoder {
    try BertEncoder(config: try ModelConfig(contentsOf: tiny.config), checkpoint: try Checkpoint.open(tiny.weights))
}

private func maxDifference(_ a: ArraySlice<Float>, _ b: ArraySlice<Float>) -> Float {
    zip(a, b).map { abs($0 - $1) }.max() ?? 0
}

@Suite struct ForwardTests {
    @Test func linearIsXTimesWeightTransposedPlusBias() {
        let layer = Linear(name: "l", inFeatures: 3, outFeatures: 2, weight: [1, 2, 3, 4, 5, 6], bias: [0.5, -1])
        let y = layer(Matrix(rows: 2, columns: 3, values: [1, 0, -1, 2, 1, 0]))
        let expected: [Float] = [-1.5, -3, 4.5, 12]  // [1·1 − 3 + 0.5, 4 − 6 − 1, 2 + 2 + 0.5, 8 + 5 − 1]
        #expect(y.values == expected)
    }

    @Test func paddingDoesNotChangeRealTokens() throws {
        let tiny = try TinyBert()
        defer { tiny.remove() }
        let model = try encoder(tiny)
        let short: [Int32] = [2, 7, 9, 3]
        let long: [Int32] = [2, 11, 13, 17, 19, 23, 29, 3]
        let alone = try model.hiddenStates(TokenBatch([short], padID: 0))
        let batch = TokenBatch([long, short], padID: 0)
        let together = try model.hiddenStates(batch)
        for t in 0..<short.count {
            #expect(maxDifference(alone.row(t), together.row(batch.length + t)) < 1e-5)
        }
        let pooledAlone = meanPooled(alone, batch: TokenBatch([short], padID: 0), normalize: true)[0]
        let pooledTogether = meanPooled(together, batch: batch, normalize: true)[1]
        #expect(maxDifference(pooledAlone[...], pooledTogether[...]) < 1e-5)
        #expect(abs(pooledAlone.reduce(0) { $0 + $1 * $1 } - 1) < 1e-5)
    }

    @Test func blockByBlockEqualsTheWholePass() throws {
        let tiny = try TinyBert()
        defer { tiny.remove() }
        let model = try encoder(tiny)
        let batch = TokenBatch([[2, 5, 8, 3], [2, 4, 3]], padID: 0)
        var x = try model.embed(batch)
        for block in model.blocks { x = block(x, batch: batch) }
        #expect(x == (try model.hiddenStates(batch)))
    }

    @Test func observerSeesEachDistinctLinearInputOnce() throws {
        final class Recorder: LinearInputObserver {
            var seen: [[String]] = []
            func observe(_ input: LinearInput) { seen.append(input.layers) }
        }
        let tiny = try TinyBert()
        defer { tiny.remove() }
        let model = try encoder(tiny)
        let recorder = Recorder()
        _ = try model.hiddenStates(TokenBatch([[2, 5, 3]], padID: 0), observer: recorder)
        #expect(recorder.seen.count == 4 * tiny.layers)
        #expect(recorder.seen[0] == ["encoder.layer.0.attention.self.query", "encoder.layer.0.attention.self.key",
                                     "encoder.layer.0.attention.self.value"])
        #expect(recorder.seen[3] == ["encoder.layer.0.output.dense"])
        #expect(Set(recorder.seen.flatMap { $0 }) == Set(model.blocks.flatMap { $0.linears.map(\.name) }))
    }

    @Test func hessianIsTwiceTheMeanOuterProductOfRealRows() throws {
        let tiny = try TinyBert()
        defer { tiny.remove() }
        let model = try encoder(tiny)
        let batch = TokenBatch([[2, 5, 8, 3], [2, 4, 3]], padID: 0)
        let observer = HessianObserver(blocks: [0])
        _ = try model.hiddenStates(batch, observer: observer)
        // The query projection of block 0 reads the embedding output; padding rows are skipped.
        let x = try model.embed(batch)
        let stats = try #require(observer.statistics(of: "encoder.layer.0.attention.self.key"))
        #expect(stats.count == 7)
        let d = tiny.hidden
        let rows = (0..<x.rows).filter { batch.rowMask[$0] == 1 }
        let h = stats.hessian
        for i in 0..<d {
            for j in 0..<d {
                let direct = rows.reduce(0.0) { $0 + Double(x.values[$1 * d + i]) * Double(x.values[$1 * d + j]) } * 2 / 7
                #expect(abs(h[i * d + j] - direct) < 1e-9)
            }
            #expect(abs(stats.meanSquares[i] - h[i * d + i] / 2) < 1e-9)
        }
        #expect(observer.statistics(of: "encoder.layer.1.output.dense") == nil)
        #expect(observer.statistics(of: "encoder.layer.0.output.dense")?.dimension == tiny.intermediate)
    }

    @Test func hessianAccumulatesAcrossBatchesLikeOneBatch() {
        var split = HessianAccumulator(dimension: 3)
        var whole = HessianAccumulator(dimension: 3)
        let a = Matrix(rows: 2, columns: 3, values: [1, 2, 3, -1, 0, 2])
        let b = Matrix(rows: 1, columns: 3, values: [0.5, -2, 1])
        split.add(a, rowMask: [])
        split.add(b, rowMask: [])
        whole.add(Matrix(rows: 3, columns: 3, values: a.values + b.values), rowMask: [1, 1, 1])
        #expect(split.count == 3)
        #expect(zip(split.hessian, whole.hessian).allSatisfy { abs($0 - $1) < 1e-12 })
        #expect(abs(split.hessian[0] - 2.0 / 3 * (1 + 1 + 0.25)) < 1e-12)
    }

    @Test func hessianOverManyPanelsAndChunksEqualsTheDirectSum() {
        // d = 150 spans three column panels, 1100 rows three conversion chunks.
        let d = 150, n = 1100
        var state: UInt32 = 12345
        let values = (0..<(n * d)).map { _ -> Float in
            state = state &* 1664525 &+ 1013904223
            return Float(state >> 8) / Float(1 << 24) - 0.5
        }
        var mask = [Float](repeating: 1, count: n)
        mask[7] = 0
        var accumulator = HessianAccumulator(dimension: d)
        accumulator.add(Matrix(rows: n, columns: d, values: values), rowMask: mask)
        #expect(accumulator.count == n - 1)
        let h = accumulator.hessian
        var worst = 0.0
        for (i, j) in [(0, 0), (3, 149), (64, 65), (127, 128), (149, 149), (100, 20), (70, 140)] {
            var direct = 0.0
            for r in 0..<n where r != 7 { direct += Double(values[r * d + i]) * Double(values[r * d + j]) }
            worst = max(worst, abs(h[i * d + j] - 2 * direct / Double(n - 1)))
        }
        #expect(worst < 1e-12)
    }

    @Test func replacedWeightsChangeTheOutput() throws {
        let tiny = try TinyBert()
        defer { tiny.remove() }
        var model = try encoder(tiny)
        let batch = TokenBatch([[2, 5, 8, 3]], padID: 0)
        let before = try model.hiddenStates(batch)
        let name = "encoder.layer.1.intermediate.dense"
        let wrongCount = model.blocks[1].replaceWeight(of: name, with: [0])
        let wrongName = model.blocks[1].replaceWeight(of: "nope", with: [])
        let replaced = model.blocks[1].replaceWeight(of: name, with: [Float](repeating: 0, count: tiny.hidden * tiny.intermediate))
        #expect(!wrongCount && !wrongName && replaced)
        #expect(try model.hiddenStates(batch) != before)
    }

    @Test func prefixedCheckpointsAreFound() throws {
        let tiny = try TinyBert(prefix: "bert.")
        defer { tiny.remove() }
        let model = try encoder(tiny)
        #expect(model.prefix == "bert.")
        #expect(model.blocks[0].query.name == "bert.encoder.layer.0.attention.self.query")
    }

    @Test func errorsNameTheFileAndTheRule() throws {
        let missing = try TinyBert(omit: "encoder.layer.1.output.dense.bias")
        defer { missing.remove() }
        #expect(throws: ModelError.missingTensor(missing.weights.path, tensor: "encoder.layer.1.output.dense.bias")) {
            try encoder(missing)
        }
        let gpt2 = try TinyBert(modelType: "gpt2")
        defer { gpt2.remove() }
        do {
            _ = try ModelConfig(contentsOf: gpt2.config)
            Issue.record("gpt2 config accepted")
        } catch {
            #expect("\(error)" == "\(gpt2.config.path): model_type \"gpt2\" is not supported; supported: bert, camembert, llama, mistral, qwen2, roberta, xlm-roberta")
        }
        let tiny = try TinyBert()
        defer { tiny.remove() }
        let model = try encoder(tiny)
        #expect(throws: ModelError.sequenceTooLong(tiny.weights.path, length: 21, maximum: 20)) {
            try model.embed(TokenBatch([[Int32](repeating: 1, count: 21)], padID: 0))
        }
        #expect(throws: ModelError.tokenOutOfRange(tiny.weights.path, id: 50, vocabulary: 50)) {
            try model.embed(TokenBatch([[2, 50]], padID: 0))
        }
    }
}
