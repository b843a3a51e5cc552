import Foundation

/// The architecture hyper-parameters of a Hugging Face `config.json`.
public struct ModelConfig: Sendable, Equatable {
    /// The families qpk has a forward pass for.
    public enum Family: String, Sendable {
        /// Post-LayerNorm encoders with absolute position and token-type embeddings and GELU
        /// feed-forward layers (Devlin et al. 2019): BERT, MiniLM, RoBERTa.
        case bert
        /// Pre-RMSNorm decoders with rotary positions, grouped-query attention and SwiGLU
        /// feed-forward layers (Touvron et al. 2023): llama, mistral, qwen2.
        case llama
    }

    /// `model_type` values and their family. RoBERTa-style models (`roberta`, `xlm-roberta`,
    /// `camembert`) number positions from `pad_token_id + 1`.
    public static let supportedModelTypes: [String: Family] = [
        "bert": .bert, "roberta": .bert, "xlm-roberta": .bert, "camembert": .bert,
        "llama": .llama, "mistral": .llama, "qwen2": .llama,
    ]

    public var modelType: String
    public var family: Family
    public var hiddenSize: Int
    public var layerCount: Int
    public var headCount: Int
    public var intermediateSize: Int
    public var layerNormEpsilon: Float
    public var maxPositions: Int
    public var vocabularySize: Int
    public var typeVocabularySize: Int
    /// The position id of the first token: 0 for BERT, `pad_token_id + 1` for RoBERTa.
    public var positionOffset: Int

    /// Width of one attention head (`head_dim`, else hidden / heads).
    public var headSize: Int
    /// Key/value heads (`num_key_value_heads`; equal to the query heads without GQA).
    public var keyValueHeadCount: Int
    /// RoPE base θ (`rope_theta`, default 10000); llama family only.
    public var ropeTheta: Double
    /// Whether the q/k/v projections have biases (qwen2).
    public var attentionBias: Bool

    /// Reads `config.json`.
    /// - Throws: ``ModelError/unsupportedArchitecture(_:modelType:supported:)`` for a `model_type`
    ///   qpk cannot run, ``ModelError/invalidField(_:key:rule:)`` for a missing or inconsistent
    ///   hyper-parameter.
    public init(contentsOf url: URL) throws {
        let json = try JSONObject.read(url, purpose: "a model folder needs the config.json written by Hugging Face transformers")
        let path = url.path
        let type = try json.string("model_type")
        guard let family = Self.supportedModelTypes[type] else {
            throw ModelError.unsupportedArchitecture(path, modelType: type, supported: Self.supportedModelTypes.keys.sorted())
        }
        modelType = type
        self.family = family
        hiddenSize = try json.int("hidden_size")
        layerCount = try json.int("num_hidden_layers")
        headCount = try json.int("num_attention_heads")
        intermediateSize = try json.int("intermediate_size")
        maxPositions = try json.int("max_position_embeddings")
        vocabularySize = try json.int("vocab_size")
        guard headCount > 0, hiddenSize > 0 else {
            throw ModelError.invalidField(path, key: "num_attention_heads", rule: "must be positive")
        }
        headSize = try json.int("head_dim", default: hiddenSize / headCount)
        switch family {
        case .bert:
            layerNormEpsilon = Float(try json.double("layer_norm_eps", default: 1e-12))
            typeVocabularySize = try json.int("type_vocab_size", default: 2)
            positionOffset = type != "bert" ? try json.int("pad_token_id", default: 1) + 1 : 0
            keyValueHeadCount = headCount
            ropeTheta = 0
            attentionBias = true
            let activation = try json.string("hidden_act", default: "gelu") ?? "gelu"
            guard activation == "gelu" else {
                throw ModelError.invalidField(path, key: "hidden_act", rule: "is \"\(activation)\"; the BERT forward pass implements \"gelu\" (exact erf)")
            }
            let positions = try json.string("position_embedding_type", default: "absolute") ?? "absolute"
            guard positions == "absolute" else {
                throw ModelError.invalidField(path, key: "position_embedding_type", rule: "is \"\(positions)\"; the BERT forward pass implements \"absolute\"")
            }
            guard hiddenSize % headCount == 0, headSize * headCount == hiddenSize else {
                throw ModelError.invalidField(path, key: "num_attention_heads", rule: "must divide hidden_size (\(hiddenSize))")
            }
        case .llama:
            layerNormEpsilon = Float(try json.double("rms_norm_eps", default: 1e-6))
            typeVocabularySize = 0
            positionOffset = 0
            keyValueHeadCount = try json.int("num_key_value_heads", default: headCount)
            ropeTheta = try json.double("rope_theta", default: 10000)
            attentionBias = type == "qwen2" ? true : try json.bool("attention_bias", default: false)
            let activation = try json.string("hidden_act", default: "silu") ?? "silu"
            guard activation == "silu" else {
                throw ModelError.invalidField(path, key: "hidden_act", rule: "is \"\(activation)\"; the llama forward pass implements \"silu\" (SwiGLU)")
            }
            if json.has("rope_scaling") {
                throw ModelError.invalidField(path, key: "rope_scaling", rule: "is set; qpk implements plain RoPE only (remove it only if the model was trained without scaling)")
            }
            guard keyValueHeadCount > 0, headCount % keyValueHeadCount == 0, headSize % 2 == 0 else {
                throw ModelError.invalidField(path, key: "num_key_value_heads", rule: "must divide num_attention_heads (\(headCount)), and head_dim must be even")
            }
        }
        for (key, value) in [("num_hidden_layers", layerCount), ("intermediate_size", intermediateSize),
                             ("max_position_embeddings", maxPositions), ("vocab_size", vocabularySize)] where value <= 0 {
            throw ModelError.invalidField(path, key: key, rule: "must be positive")
        }
    }
}
