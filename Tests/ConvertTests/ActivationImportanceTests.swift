import Foundation
import Testing

@testable import Convert
import QPKCore
import Formats
import Quantize

@Suite("Data-free activation importance")
struct ActivationImportanceTests {
    typealias Source = ActivationImportance.Source

    @Test("BERT weights read the LayerNorm in front of them", arguments: [
        ("encoder.layer.0.attention.self.query.weight", Source.norm("embeddings.LayerNorm")),
        ("encoder.layer.3.attention.self.key.weight", .norm("encoder.layer.2.output.LayerNorm")),
        ("bert.encoder.layer.1.attention.self.value.weight", .norm("bert.encoder.layer.0.output.LayerNorm")),
        ("encoder.layer.2.intermediate.dense.weight", .norm("encoder.layer.2.attention.output.LayerNorm")),
        ("encoder.layer.0.attention.output.dense.weight",
         .attentionContext(value: "encoder.layer.0.attention.self.value", input: .norm("embeddings.LayerNorm"))),
        ("encoder.layer.4.output.dense.weight",
         .gelu(up: "encoder.layer.4.intermediate.dense", input: .norm("encoder.layer.4.attention.output.LayerNorm"))),
    ])
    func bertRules(name: String, expected: Source) {
        #expect(ActivationImportance.source(of: name) == expected)
    }

    @Test("LLaMA weights read input_layernorm and post_attention_layernorm", arguments: [
        ("model.layers.0.self_attn.q_proj.weight", Source.norm("model.layers.0.input_layernorm")),
        ("model.layers.7.self_attn.v_proj.weight", .norm("model.layers.7.input_layernorm")),
        ("model.layers.7.mlp.gate_proj.weight", .norm("model.layers.7.post_attention_layernorm")),
        ("model.layers.7.mlp.up_proj.weight", .norm("model.layers.7.post_attention_layernorm")),
        ("model.layers.2.self_attn.o_proj.weight",
         .attentionContext(value: "model.layers.2.self_attn.v_proj", input: .norm("model.layers.2.input_layernorm"))),
        ("model.layers.2.mlp.down_proj.weight",
         .swiGLU(gate: "model.layers.2.mlp.gate_proj", up: "model.layers.2.mlp.up_proj",
                 input: .norm("model.layers.2.post_attention_layernorm"))),
    ])
    func llamaRules(name: String, expected: Source) {
        #expect(ActivationImportance.source(of: name) == expected)
    }

    @Test("Tensors without a rule get no source", arguments: [
        "embeddings.word_embeddings.weight", "encoder.layer.0.attention.output.LayerNorm.weight",
        "encoder.layer.0.attention.self.query.bias", "lm_head.weight", "encoder.layer.x.intermediate.dense.weight",
    ])
    func noRule(name: String) {
        #expect(ActivationImportance.source(of: name) == nil)
    }

    @Test("Norm moments are γ² + β², propagated through the value projection and GELU")
    func momentsFromTensors() throws {
        let gamma: [Float] = [1, 2, 0.5]
        let beta: [Float] = [0, 1, 0]
        let value: [Float] = [1, 0, 0, 0, 1, 0]  // 2×3: picks inputs 0 and 1
        let valueBias: [Float] = [0.5, 0]
        let up: [Float] = [0, 0, 0, 0, 0, 0]  // 2×3 zero weights: GELU of the bias alone
        let upBias: [Float] = [1, -1]
        let reader = MemoryReader([
            ("embeddings.LayerNorm.weight", [3], gamma), ("embeddings.LayerNorm.bias", [3], beta),
            ("encoder.layer.0.attention.self.value.weight", [2, 3], value),
            ("encoder.layer.0.attention.self.value.bias", [2], valueBias),
            ("encoder.layer.0.attention.output.dense.weight", [3, 2], [Float](repeating: 0.1, count: 6)),
            ("encoder.layer.0.attention.output.LayerNorm.weight", [3], gamma),
            ("encoder.layer.0.attention.output.LayerNorm.bias", [3], beta),
            ("encoder.layer.0.intermediate.dense.weight", [2, 3], up),
            ("encoder.layer.0.intermediate.dense.bias", [2], upBias),
            ("encoder.layer.0.output.dense.weight", [3, 2], [Float](repeating: 0.1, count: 6)),
        ])
        let q = try #require(ActivationImportance.secondMoments(
            of: "encoder.layer.0.attention.self.query.weight", columns: 3, reader: reader))
        #expect(q == [1, 5, 0.25])
        let context = try #require(ActivationImportance.secondMoments(
            of: "encoder.layer.0.attention.output.dense.weight", columns: 2, reader: reader))
        #expect(abs(context[0] - 1.25) < 1e-9 && abs(context[1] - 5) < 1e-9)
        let ffn = try #require(ActivationImportance.secondMoments(
            of: "encoder.layer.0.output.dense.weight", columns: 2, reader: reader))
        // Zero variance: exactly GELU(b)², GELU(1) = 0.8413…, GELU(−1) = −0.1587…
        #expect(abs(ffn[0] - 0.841_344_7 * 0.841_344_7) < 1e-6)
        #expect(abs(ffn[1] - 0.158_655_3 * 0.158_655_3) < 1e-6)
        // Mis-shaped or missing sources give nil (unweighted), never a crash.
        #expect(ActivationImportance.secondMoments(
            of: "encoder.layer.0.attention.self.query.weight", columns: 4, reader: reader) == nil)
        #expect(ActivationImportance.secondMoments(
            of: "encoder.layer.1.attention.self.query.weight", columns: 3, reader: reader) == nil)
    }

    @Test("The Gaussian GELU second moment matches the closed form of ReLU-like limits")
    func geluQuadrature() {
        // For u ~ N(0, σ²) with large σ, GELU ≈ ReLU: E[ReLU(u)²] = σ²/2.
        let m = GaussianMoments.secondMoment(of: GaussianMoments.gelu, mean: 0, variance: 10_000)
        #expect(abs(m / 5_000 - 1) < 0.01)
        // SiLU of N(0, 1): a positive value below E[u²] = 1.
        let s = GaussianMoments.secondMoment(of: GaussianMoments.silu, mean: 0, variance: 1)
        #expect(s > 0.2 && s < 1)
    }

    @Test("RMSNorm (no bias) and the LLaMA down projection are estimated")
    func llamaMoments() throws {
        let reader = MemoryReader([
            ("model.layers.0.post_attention_layernorm.weight", [2], [1, 3]),
            ("model.layers.0.mlp.gate_proj.weight", [3, 2], [1, 0, 0, 1, 0, 0]),
            ("model.layers.0.mlp.up_proj.weight", [3, 2], [1, 0, 0, 1, 1, 1]),
            ("model.layers.0.mlp.down_proj.weight", [2, 3], [Float](repeating: 0.1, count: 6)),
        ])
        let up = try #require(ActivationImportance.secondMoments(
            of: "model.layers.0.mlp.up_proj.weight", columns: 2, reader: reader))
        #expect(up == [1, 9])
        let down = try #require(ActivationImportance.secondMoments(
            of: "model.layers.0.mlp.down_proj.weight", columns: 3, reader: reader))
        #expect(down.count == 3)
        #expect(down[2] == 0)  // the gate row is all zero: SiLU(0) = 0
        #expect(down[1] > down[0])  // larger gate variance and larger up moment
    }

    @Test("Column weights of a query projection single out the LayerNorm channels with large γ")
    func columnWeightsFromReader() throws {
        var items: [(String, [Int], [Float])] = [
            ("embeddings.LayerNorm.weight", [64], (0..<64).map { $0 % 8 == 0 ? 6 : 0.5 }),
            ("embeddings.LayerNorm.bias", [64], [Float](repeating: 0, count: 64)),
        ]
        let weight = gaussianLike(32 * 64, seed: 5, scale: 0.05)
        items.append(("encoder.layer.0.attention.self.query.weight", [32, 64], weight))
        let reader = MemoryReader(items)
        let info = try #require(reader.tensor(named: "encoder.layer.0.attention.self.query.weight"))
        let weights = try #require(ActivationImportance.columnWeights(for: info, reader: reader))
        #expect(weights.count == 64)
        #expect(weights[0] > weights[1] * 50)
    }
}
