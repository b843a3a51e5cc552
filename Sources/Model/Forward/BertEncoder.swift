import Foundation
import Formats
import QPKCore
import Quantize

/// One post-LayerNorm transformer encoder block (Vaswani et al. 2017; BERT, Devlin et al. 2019):
///
///     a = MultiHead(h Wqᵀ + bq, h Wkᵀ + bk, h Wvᵀ + bv)
///     h = LayerNorm(h + a Woᵀ + bo)
///     h = LayerNorm(h + GELU(h W₁ᵀ + b₁) W₂ᵀ + b₂)
public struct BertBlock: Sendable {
    public let index: Int
    public var query: Linear
    public var key: Linear
    public var value: Linear
    public var attentionOutput: Linear
    public var intermediate: Linear
    public var output: Linear
    var attentionNorm: (gamma: [Float], beta: [Float])
    var outputNorm: (gamma: [Float], beta: [Float])
    let heads: Int
    let epsilon: Float

    /// The block's linear layers, in the order they run.
    public var linears: [Linear] { [query, key, value, attentionOutput, intermediate, output] }

    /// Replaces the weight of the linear layer called `name` (e.g. with its quantized values), so
    /// that later forward passes run with it.
    /// - Returns: false when the block has no linear layer of that name or the count differs.
    @discardableResult
    public mutating func replaceWeight(of name: String, with weight: [Float]) -> Bool {
        for path in [\BertBlock.query, \.key, \.value, \.attentionOutput, \.intermediate, \.output] where self[keyPath: path].name == name {
            guard self[keyPath: path].weight.count == weight.count else { return false }
            self[keyPath: path].weight = weight
            return true
        }
        return false
    }

    /// Runs the block on `hidden` (`batch.count·batch.length` rows), reporting each linear
    /// layer's input to `observer`.
    public func callAsFunction(_ hidden: Matrix, batch: TokenBatch, observer: (any LinearInputObserver)? = nil) -> Matrix {
        let mask = observer == nil ? [] : batch.rowMask
        observer?.observe(LinearInput(layers: [query.name, key.name, value.name], block: index, values: hidden, rowMask: mask))
        let (q, k) = (query(hidden), key(hidden))
        observer?.observeAttention(AttentionInput(
            block: index, query: query.name, key: key.name, value: value.name, output: attentionOutput.name,
            input: hidden, queries: q, keys: k,
            batch: batch, heads: heads, kvHeads: heads, causal: false, rotary: nil))
        let context = Attention.context(query: q, key: k, value: value(hidden), batch: batch, heads: heads)
        observer?.observe(LinearInput(layers: [attentionOutput.name], block: index, values: context, rowMask: mask))
        var h = attentionOutput(context)
        Kernels.addLayerNorm(&h, residual: hidden, gamma: attentionNorm.gamma, beta: attentionNorm.beta, epsilon: epsilon)
        observer?.observe(LinearInput(layers: [intermediate.name], block: index, values: h, rowMask: mask))
        var up = intermediate(h)
        Kernels.gelu(&up)
        observer?.observe(LinearInput(layers: [output.name], block: index, values: up, rowMask: mask))
        var out = output(up)
        Kernels.addLayerNorm(&out, residual: h, gamma: outputNorm.gamma, beta: outputNorm.beta, epsilon: epsilon)
        return out
    }
}

/// A BERT-family encoder (BERT, MiniLM, RoBERTa) read from a checkpoint, run in fp32.
///
/// The embedding layer sums the word, position and token-type (type 0) embeddings and applies
/// LayerNorm; the blocks follow (``BertBlock``). For calibration the pass can run block by
/// block: ``embed(_:)``, then each of ``blocks`` in turn, with an observer and with weights
/// replaced between blocks.
public struct BertEncoder: Sendable {
    public let config: ModelConfig
    public var blocks: [BertBlock]
    /// The prefix of every tensor name in the checkpoint: "" or e.g. `bert.`/`roberta.`.
    public let prefix: String
    let wordEmbeddings: [Float]
    let positionEmbeddings: [Float]
    let typeEmbeddings: [Float]
    let embeddingNorm: (gamma: [Float], beta: [Float])
    let source: String

    /// Reads the weights named by `config` from `checkpoint` (any format qpk reads; quantized
    /// tensors are dequantized).
    /// - Throws: ``ModelError/missingTensor(_:tensor:)`` or ``ModelError/shapeMismatch(_:tensor:expected:found:)``.
    public init(config: ModelConfig, checkpoint: any CheckpointReader) throws {
        self.config = config
        source = checkpoint.url.path
        let anchor = "embeddings.word_embeddings.weight"
        guard let word = checkpoint.tensors.first(where: { $0.name == anchor || $0.name.hasSuffix("." + anchor) }) else {
            throw ModelError.missingTensor(source, tensor: anchor)
        }
        let prefix = String(word.name.dropLast(anchor.count))
        let source = checkpoint.url.path
        self.prefix = prefix
        let h = config.hiddenSize
        let load = { (name: String, shape: [Int]) throws -> [Float] in
            let full = prefix + name
            guard let info = checkpoint.tensor(named: full) else { throw ModelError.missingTensor(source, tensor: full) }
            guard info.shape == shape else {
                throw ModelError.shapeMismatch(source, tensor: full, expected: shape, found: info.shape)
            }
            return try Dequantizer.floats(try checkpoint.storage(of: info), info: info)
        }
        wordEmbeddings = try load(anchor, [config.vocabularySize, h])
        positionEmbeddings = try load("embeddings.position_embeddings.weight", [config.maxPositions, h])
        typeEmbeddings = try load("embeddings.token_type_embeddings.weight", [config.typeVocabularySize, h])
        embeddingNorm = (try load("embeddings.LayerNorm.weight", [h]), try load("embeddings.LayerNorm.bias", [h]))
        let linear = { (name: String, inputs: Int, outputs: Int) throws -> Linear in
            Linear(name: prefix + name, inFeatures: inputs, outFeatures: outputs,
                   weight: try load(name + ".weight", [outputs, inputs]), bias: try load(name + ".bias", [outputs]))
        }
        blocks = try (0..<config.layerCount).map { i in
            let p = "encoder.layer.\(i)."
            return BertBlock(
                index: i,
                query: try linear(p + "attention.self.query", h, h),
                key: try linear(p + "attention.self.key", h, h),
                value: try linear(p + "attention.self.value", h, h),
                attentionOutput: try linear(p + "attention.output.dense", h, h),
                intermediate: try linear(p + "intermediate.dense", h, config.intermediateSize),
                output: try linear(p + "output.dense", config.intermediateSize, h),
                attentionNorm: (try load(p + "attention.output.LayerNorm.weight", [h]), try load(p + "attention.output.LayerNorm.bias", [h])),
                outputNorm: (try load(p + "output.LayerNorm.weight", [h]), try load(p + "output.LayerNorm.bias", [h])),
                heads: config.headCount, epsilon: config.layerNormEpsilon)
        }
    }

    /// The embedding layer's output: `LayerNorm(word[id] + position[offset + t] + type[0])`
    /// for every position of every sequence (`count·length` rows).
    /// - Throws: ``ModelError/sequenceTooLong(_:length:maximum:)`` or
    ///   ``ModelError/tokenOutOfRange(_:id:vocabulary:)``.
    public func embed(_ batch: TokenBatch) throws -> Matrix {
        let h = config.hiddenSize
        if batch.length + config.positionOffset > config.maxPositions {
            throw ModelError.sequenceTooLong(source, length: batch.length, maximum: config.maxPositions - config.positionOffset)
        }
        if let bad = batch.ids.first(where: { $0 < 0 || Int($0) >= config.vocabularySize }) {
            throw ModelError.tokenOutOfRange(source, id: Int(bad), vocabulary: config.vocabularySize)
        }
        var x = Matrix(rows: batch.count * batch.length, columns: h)
        for row in 0..<x.rows {
            let id = Int(batch.ids[row])
            let position = config.positionOffset + row % max(batch.length, 1)
            for j in 0..<h {
                x.values[row * h + j] = wordEmbeddings[id * h + j] + positionEmbeddings[position * h + j] + typeEmbeddings[j]
            }
        }
        Kernels.addLayerNorm(&x, residual: nil, gamma: embeddingNorm.gamma, beta: embeddingNorm.beta, epsilon: config.layerNormEpsilon)
        return x
    }

    /// The last hidden states of `batch` (`count·length × hidden`; rows of padding are computed
    /// but meaningless).
    public func hiddenStates(_ batch: TokenBatch, observer: (any LinearInputObserver)? = nil) throws -> Matrix {
        var x = try embed(batch)
        for block in blocks { x = block(x, batch: batch, observer: observer) }
        return x
    }
}

/// Mean pooling over real tokens (the sentence-transformers head of MiniLM: `Pooling` with
/// `pooling_mode_mean_tokens`), optionally followed by L2 normalisation (its `Normalize` module).
public func meanPooled(_ hidden: Matrix, batch: TokenBatch, normalize: Bool) -> [[Float]] {
    (0..<batch.count).map { s in
        var sum = [Double](repeating: 0, count: hidden.columns)
        for t in 0..<batch.lengths[s] {
            let row = (s * batch.length + t) * hidden.columns
            for j in 0..<hidden.columns { sum[j] += Double(hidden.values[row + j]) }
        }
        var mean = sum.map { $0 / Double(max(batch.lengths[s], 1)) }
        if normalize {
            let norm = mean.reduce(0) { $0 + $1 * $1 }.squareRoot()
            mean = mean.map { $0 / max(norm, 1e-12) }
        }
        return mean.map(Float.init)
    }
}
