import Foundation
import Formats
import Testing
@testable import Model

@Suite struct LlamaTests {
    private func decoder(_ tiny: TinyLlama) throws -> LlamaDecoder {
        try LlamaDecoder(config: try ModelConfig(contentsOf: tiny.config), checkpoint: try Checkpoint.open(tiny.weights))
    }

    @Test func laterTokensDoNotChangeEarlierOnes() throws {
        // Causal attention: a prefix's hidden states are the same whatever follows it.
        let tiny = try TinyLlama()
        defer { tiny.remove() }
        let model = try decoder(tiny)
        let prefix = try model.hiddenStates(TokenBatch([[1, 5, 9]], padID: 0))
        let longer = try model.hiddenStates(TokenBatch([[1, 5, 9, 30, 2, 7]], padID: 0))
        for t in 0..<3 {
            #expect(zip(prefix.row(t), longer.row(t)).allSatisfy { abs($0 - $1) < 1e-5 })
        }
        #expect(zip(prefix.row(2), longer.row(3)).contains { abs($0 - $1) > 1e-3 })
    }

    @Test func observerGroupsGateAndUpAndSizesGroupedHeads() throws {
        final class Recorder: LinearInputObserver {
            var seen: [([String], Int)] = []
            func observe(_ input: LinearInput) { seen.append((input.layers, input.values.columns)) }
        }
        let tiny = try TinyLlama()
        defer { tiny.remove() }
        let model = try decoder(tiny)
        #expect(model.blocks[0].key.outFeatures == tiny.kvHeads * tiny.hidden / tiny.heads)
        let recorder = Recorder()
        _ = try model.hiddenStates(TokenBatch([[1, 2, 3]], padID: 0), observer: recorder)
        #expect(recorder.seen.count == 4 * tiny.layers)
        #expect(recorder.seen[2].0 == ["model.layers.0.mlp.gate_proj", "model.layers.0.mlp.up_proj"])
        #expect(recorder.seen[3].0 == ["model.layers.0.mlp.down_proj"] && recorder.seen[3].1 == tiny.intermediate)
    }

    @Test func ropeScalingIsRefusedByName() throws {
        let tiny = try TinyLlama(extraConfig: ["rope_scaling": ["rope_type": "llama3", "factor": 8.0]])
        defer { tiny.remove() }
        do {
            _ = try ModelConfig(contentsOf: tiny.config)
            Issue.record("rope_scaling accepted")
        } catch {
            #expect("\(error)".hasPrefix("\(tiny.config.path): key \"rope_scaling\""))
        }
    }
}
