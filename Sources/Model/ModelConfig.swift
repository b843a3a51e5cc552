import Foundation

/// The architecture hyper-parameters of a Hugging Face `config.json`.
public struct ModelConfig: Sendable, Equatable {
    /// The families qpk has a forward pass for.
    public enum Family: String, Sendable {
        /// Post-LayerNorm encoders with absolute position and token-type embeddings and GELU
        /// feed-forward layers (Devlin et al. 2019): BERT, MiniLM, RoBERTa.
        case bert
    }

    /// `model_type` values and their family. RoBERTa-style models (`roberta`, `xlm-roberta`,
    /// `camembert`) number positions from `pad_token_id + 1`.
    public static let supportedModelTypes: [String: Family] = [
        "bert": .bert, "roberta": .bert, "xlm-roberta": .bert, "camembert": .bert,
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

    public var headSize: Int { hiddenSize / headCount }

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
        layerNormEpsilon = Float(try json.double("layer_norm_eps", default: 1e-12))
        maxPositions = try json.int("max_position_embeddings")
        vocabularySize = try json.int("vocab_size")
        typeVocabularySize = try json.int("type_vocab_size", default: 2)
        let roberta = type != "bert"
        positionOffset = roberta ? try json.int("pad_token_id", default: 1) + 1 : 0
        let activation = try json.string("hidden_act", default: "gelu") ?? "gelu"
        guard activation == "gelu" else {
            throw ModelError.invalidField(path, key: "hidden_act", rule: "is \"\(activation)\"; the BERT forward pass implements \"gelu\" (exact erf)")
        }
        let positions = try json.string("position_embedding_type", default: "absolute") ?? "absolute"
        guard positions == "absolute" else {
            throw ModelError.invalidField(path, key: "position_embedding_type", rule: "is \"\(positions)\"; the BERT forward pass implements \"absolute\"")
        }
        guard headCount > 0, hiddenSize > 0, hiddenSize % headCount == 0 else {
            throw ModelError.invalidField(path, key: "num_attention_heads", rule: "must divide hidden_size (\(hiddenSize))")
        }
        for (key, value) in [("num_hidden_layers", layerCount), ("intermediate_size", intermediateSize),
                             ("max_position_embeddings", maxPositions), ("vocab_size", vocabularySize),
                             ("type_vocab_size", typeVocabularySize)] where value <= 0 {
            throw ModelError.invalidField(path, key: key, rule: "must be positive")
        }
    }
}
