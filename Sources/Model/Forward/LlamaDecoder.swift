import Foundation
import Formats
import QPKCore
import Quantize

/// One pre-norm decoder block of the llama family (Touvron et al. 2023; Mistral, Qwen2 alike):
///
///     h = x + Attention(RMSNorm(x))          queries/keys rotated by RoPE, causal, grouped KV heads
///     y = h + W_down (SiLU(W_gate n) ⊙ W_up n),   n = RMSNorm(h)         (SwiGLU, Shazeer 2020)
public struct LlamaBlock: Sendable {
    public let index: Int
    public var query: Linear
    public var key: Linear
    public var value: Linear
    public var attentionOutput: Linear
    public var gate: Linear
    public var up: Linear
    public var down: Linear
    let inputNorm: [Float]
    let postAttentionNorm: [Float]
    let heads: Int
    let kvHeads: Int
    let rope: RotaryEmbedding
    let epsilon: Float

    /// The block's linear layers, in the order they run.
    public var linears: [Linear] { [query, key, value, attentionOutput, gate, up, down] }

    /// Replaces the weight of the linear layer called `name`.
    /// - Returns: false when the block has no linear layer of that name or the count differs.
    @discardableResult
    public mutating func replaceWeight(of name: String, with weight: [Float]) -> Bool {
        for path in [\LlamaBlock.query, \.key, \.value, \.attentionOutput, \.gate, \.up, \.down] where self[keyPath: path].name == name {
            guard self[keyPath: path].weight.count == weight.count else { return false }
            self[keyPath: path].weight = weight
            return true
        }
        return false
    }

    public func callAsFunction(_ x: Matrix, batch: TokenBatch, observer: (any LinearInputObserver)? = nil) -> Matrix {
        let mask = observer == nil ? [] : batch.rowMask
        var n = x
        Kernels.rmsNorm(&n, gamma: inputNorm, epsilon: epsilon)
        observer?.observe(LinearInput(layers: [query.name, key.name, value.name], block: index, values: n, rowMask: mask))
        var q = query(n)
        var k = key(n)
        rope.apply(&q, heads: heads, length: batch.length)
        rope.apply(&k, heads: kvHeads, length: batch.length)
        observer?.observeAttention(AttentionInput(
            block: index, query: query.name, key: key.name, value: value.name, output: attentionOutput.name,
            input: n, queries: q, keys: k,
            batch: batch, heads: heads, kvHeads: kvHeads, causal: true, rotary: rope))
        let context = Attention.context(query: q, key: k, value: value(n), batch: batch, heads: heads,
                                        kvHeads: kvHeads, causal: true)
        observer?.observe(LinearInput(layers: [attentionOutput.name], block: index, values: context, rowMask: mask))
        var h = attentionOutput(context)
        Kernels.add(&h, x)
        var m = h
        Kernels.rmsNorm(&m, gamma: postAttentionNorm, epsilon: epsilon)
        observer?.observe(LinearInput(layers: [gate.name, up.name], block: index, values: m, rowMask: mask))
        var g = gate(m)
        Kernels.swiGLU(&g, up(m))
        observer?.observe(LinearInput(layers: [down.name], block: index, values: g, rowMask: mask))
        var y = down(g)
        Kernels.add(&y, h)
        return y
    }
}

/// Rotary position embedding (Su et al. 2021) in the Hugging Face layout: within each head of
/// width `d`, element `i < d/2` pairs with `i + d/2` and both turn by `t · θ^(−2i/d)`.
struct RotaryEmbedding: Sendable {
    let headSize: Int
    let theta: Double

    /// `(cos, sin)` of the angle pair `i` (elements `i` and `i + d/2`) turns by at `position`.
    func rotation(at position: Int) -> [(cos: Double, sin: Double)] {
        (0..<(headSize / 2)).map { i in
            let angle = Double(position) * pow(theta, -2 * Double(i) / Double(headSize))
            return (cos(angle), sin(angle))
        }
    }

    func apply(_ x: inout Matrix, heads: Int, length: Int) {
        let d = headSize
        let half = d / 2
        let frequencies = (0..<half).map { pow(theta, -2 * Double($0) / Double(d)) }
        let columns = x.columns
        x.values.withUnsafeMutableBufferPointer { xs in
            let xs = UncheckedSendable(xs)
            Parallel.forEachChunk(rows: x.rows, work: columns * 4) { rows in
                for r in rows {
                    let t = Double(r % length)
                    for i in 0..<half {
                        let angle = t * frequencies[i]
                        let c = Float(cos(angle)), s = Float(sin(angle))
                        for h in 0..<heads {
                            let base = r * columns + h * d
                            let a = xs.value[base + i], b = xs.value[base + i + half]
                            xs.value[base + i] = a * c - b * s
                            xs.value[base + i + half] = b * c + a * s
                        }
                    }
                }
            }
        }
    }
}

/// A llama-family decoder (llama, mistral, qwen2) read from a checkpoint, run in fp32; the
/// hidden states are those after the final RMSNorm.
public struct LlamaDecoder: Sendable {
    public let config: ModelConfig
    public var blocks: [LlamaBlock]
    public let prefix: String
    let embeddings: [Float]
    let finalNorm: [Float]
    let source: String

    public init(config: ModelConfig, checkpoint: any CheckpointReader) throws {
        self.config = config
        let source = checkpoint.url.path
        self.source = source
        let anchor = "embed_tokens.weight"
        guard let word = checkpoint.tensors.first(where: { $0.name == anchor || $0.name.hasSuffix("." + anchor) }) else {
            throw ModelError.missingTensor(source, tensor: "model." + anchor)
        }
        let prefix = String(word.name.dropLast(anchor.count))
        self.prefix = prefix
        let h = config.hiddenSize
        let d = config.headSize
        let load = { (name: String, shape: [Int]) throws -> [Float] in
            let full = prefix + name
            guard let info = checkpoint.tensor(named: full) else { throw ModelError.missingTensor(source, tensor: full) }
            guard info.shape == shape else { throw ModelError.shapeMismatch(source, tensor: full, expected: shape, found: info.shape) }
            return try Dequantizer.floats(try checkpoint.storage(of: info), info: info)
        }
        let linear = { (name: String, inputs: Int, outputs: Int, bias: Bool) throws -> Linear in
            Linear(name: prefix + name, inFeatures: inputs, outFeatures: outputs,
                   weight: try load(name + ".weight", [outputs, inputs]), bias: bias ? try load(name + ".bias", [outputs]) : nil)
        }
        embeddings = try load(anchor, [config.vocabularySize, h])
        finalNorm = try load("norm.weight", [h])
        let rope = RotaryEmbedding(headSize: d, theta: config.ropeTheta)
        blocks = try (0..<config.layerCount).map { i in
            let p = "layers.\(i)."
            let bias = config.attentionBias
            return LlamaBlock(
                index: i,
                query: try linear(p + "self_attn.q_proj", h, config.headCount * d, bias),
                key: try linear(p + "self_attn.k_proj", h, config.keyValueHeadCount * d, bias),
                value: try linear(p + "self_attn.v_proj", h, config.keyValueHeadCount * d, bias),
                attentionOutput: try linear(p + "self_attn.o_proj", config.headCount * d, h, false),
                gate: try linear(p + "mlp.gate_proj", h, config.intermediateSize, false),
                up: try linear(p + "mlp.up_proj", h, config.intermediateSize, false),
                down: try linear(p + "mlp.down_proj", config.intermediateSize, h, false),
                inputNorm: try load(p + "input_layernorm.weight", [h]),
                postAttentionNorm: try load(p + "post_attention_layernorm.weight", [h]),
                heads: config.headCount, kvHeads: config.keyValueHeadCount, rope: rope, epsilon: config.layerNormEpsilon)
        }
    }

    /// The token embeddings of `batch` (`count·length` rows).
    public func embed(_ batch: TokenBatch) throws -> Matrix {
        let h = config.hiddenSize
        if batch.length > config.maxPositions {
            throw ModelError.sequenceTooLong(source, length: batch.length, maximum: config.maxPositions)
        }
        if let bad = batch.ids.first(where: { $0 < 0 || Int($0) >= config.vocabularySize }) {
            throw ModelError.tokenOutOfRange(source, id: Int(bad), vocabulary: config.vocabularySize)
        }
        var x = Matrix(rows: batch.count * batch.length, columns: h)
        for row in 0..<x.rows {
            let id = Int(batch.ids[row])
            for j in 0..<h { x.values[row * h + j] = embeddings[id * h + j] }
        }
        return x
    }

    public func hiddenStates(_ batch: TokenBatch, observer: (any LinearInputObserver)? = nil) throws -> Matrix {
        var x = try embed(batch)
        for block in blocks { x = block(x, batch: batch, observer: observer) }
        Kernels.rmsNorm(&x, gamma: finalNorm, epsilon: config.layerNormEpsilon)
        return x
    }
}
