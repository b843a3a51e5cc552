import Foundation
import QPKCore
import Formats

/// A Hugging Face model folder as llama.cpp reads it from GGUF: its tensors under llama.cpp's
/// names (query/key rows reordered for llama.cpp's RoPE), and the architecture and tokenizer
/// metadata llama.cpp needs (spec/gguf.md §8).
///
/// A ``CheckpointReader`` over the folder's weights, so the conversion pipeline plans, quantizes
/// and writes it like any checkpoint; the GGUF writer takes ``ggufMetadata`` as the file's
/// metadata.
public final class LlamaCppCheckpoint: CheckpointReader {
    public let url: URL
    public let architecture: LlamaCppArchitecture
    public let config: ModelConfig
    public let vocabulary: LlamaCppVocabulary
    /// The metadata pairs: `general.*`, the architecture's hyper-parameters, `tokenizer.*`.
    public let ggufMetadata: [(key: String, value: GGUFValue)]
    /// Source tensors llama.cpp has no use for, in source order.
    public let droppedTensors: [String]
    /// `tensors` (llama.cpp names) with their source tensor and RoPE head count.
    private let sources: [String: (info: TensorInfo, ropeHeads: Int?)]
    private let weights: any CheckpointReader
    public let tensors: [TensorInfo]

    public var format: CheckpointFormat { weights.format }
    public var metadata: [String: String] { [:] }

    /// The folder's weights named for llama.cpp.
    /// - Parameters:
    ///   - folder: config.json, tokenizer.json and the weights.
    ///   - weights: the folder's weights, opened.
    /// - Throws: ``ModelError`` for an architecture llama.cpp's `bert`/`llama` graphs do not fit,
    ///   a tensor with no llama.cpp name, a tokenizer llama.cpp cannot be told about.
    public init(folder: ModelFolder, weights: any CheckpointReader) throws {
        url = folder.url
        config = folder.config
        self.weights = weights
        let configPath = folder.url.appendingPathComponent("config.json").path
        guard let architecture = LlamaCppArchitecture(config) else {
            throw ModelError.unsupportedArchitecture(
                configPath + " (GGUF for llama.cpp; pass the .safetensors file to keep the tensor names)",
                modelType: config.modelType, supported: LlamaCppArchitecture.supportedModelTypes)
        }
        self.architecture = architecture
        var sources: [String: (info: TensorInfo, ropeHeads: Int?)] = [:]
        var tensors: [TensorInfo] = []
        var dropped: [String] = []
        for info in weights.tensors {
            switch architecture.rule(for: info.name, config: config) {
            case .dropped:
                dropped.append(info.name)
            case let .renamed(name, heads):
                if let heads, LlamaCppRopePermutation.sourceRows(rows: info.shape.first ?? 0, heads: heads) == nil {
                    throw ModelError.shapeMismatch(weights.url.path, tensor: info.name, expected: [heads * config.headSize] + info.shape.dropFirst(), found: info.shape)
                }
                var renamed = info
                renamed.name = name
                sources[name] = (info, heads)
                tensors.append(renamed)
            case nil:
                throw ModelError.noLlamaCppTensor(weights.url.path, tensor: info.name, architecture: architecture.rawValue)
            }
        }
        self.sources = sources
        self.tensors = tensors
        droppedTensors = dropped
        let rows = tensors.first { $0.name == "token_embd.weight" }?.shape.first ?? config.vocabularySize
        vocabulary = try LlamaCppVocabulary(
            tokenizer: folder.tokenizer, tokenizerURL: folder.url.appendingPathComponent("tokenizer.json"),
            configURL: folder.url.appendingPathComponent("config.json"), rows: rows)
        ggufMetadata = Self.generalMetadata(folder: folder, architecture: architecture)
            + Self.hyperParameters(config, architecture: architecture, folder: folder.url, vocabularySize: rows)
            + vocabulary.metadata
    }

    public func storage(of tensor: TensorInfo) throws -> TensorStorage {
        guard let source = sources[tensor.name] else { throw CheckpointError.noSuchTensor(url.path, tensor.name) }
        let stored = try weights.storage(of: source.info)
        guard let heads = source.ropeHeads else { return stored }
        guard case let .dense(bytes) = stored else { throw CheckpointError.quantizedTensor(weights.url.path, source.info.name) }
        let rows = source.info.shape.first ?? 0
        guard let permuted = bytes.withUnsafeBytes({ LlamaCppRopePermutation.apply($0, rows: rows, heads: heads) }) else {
            throw ModelError.shapeMismatch(weights.url.path, tensor: source.info.name, expected: [heads * config.headSize], found: source.info.shape)
        }
        return .dense(permuted)
    }

    public func tensor(named name: String) -> TensorInfo? {
        sources[name].map { var info = $0.info; info.name = name; return info }
    }

    /// The Hugging Face name of the llama.cpp tensor `name`.
    public func sourceName(of name: String) -> String? { sources[name]?.info.name }

    static func generalMetadata(folder: ModelFolder, architecture: LlamaCppArchitecture) -> [(key: String, value: GGUFValue)] {
        [("general.architecture", .string(architecture.rawValue)),
         ("general.name", .string(folder.url.standardizedFileURL.lastPathComponent))]
    }

    /// The architecture's `<arch>.*` keys from config.json (and, for BERT, the
    /// sentence-transformers pooling of the folder).
    static func hyperParameters(
        _ config: ModelConfig, architecture: LlamaCppArchitecture, folder: URL, vocabularySize: Int
    ) -> [(key: String, value: GGUFValue)] {
        let a = architecture.rawValue
        var pairs: [(key: String, value: GGUFValue)] = [
            ("\(a).context_length", .uint32(UInt32(config.maxPositions))),
            ("\(a).embedding_length", .uint32(UInt32(config.hiddenSize))),
            ("\(a).block_count", .uint32(UInt32(config.layerCount))),
            ("\(a).feed_forward_length", .uint32(UInt32(config.intermediateSize))),
            ("\(a).attention.head_count", .uint32(UInt32(config.headCount))),
        ]
        switch architecture {
        case .bert:
            pairs.append(("\(a).attention.layer_norm_epsilon", .float32(config.layerNormEpsilon)))
            pairs.append(("\(a).attention.causal", .bool(false)))
            if let pooling = SentenceTransformersPooling(folder: folder) {
                pairs.append(("\(a).pooling_type", .uint32(pooling.rawValue)))
            }
            pairs.append(("tokenizer.ggml.token_type_count", .uint32(UInt32(config.typeVocabularySize))))
        case .llama:
            pairs.append(("\(a).attention.head_count_kv", .uint32(UInt32(config.keyValueHeadCount))))
            pairs.append(("\(a).attention.layer_norm_rms_epsilon", .float32(config.layerNormEpsilon)))
            pairs.append(("\(a).rope.freq_base", .float32(Float(config.ropeTheta))))
            pairs.append(("\(a).rope.dimension_count", .uint32(UInt32(config.headSize))))
            pairs.append(("\(a).vocab_size", .uint32(UInt32(vocabularySize))))
            if config.headSize * config.headCount != config.hiddenSize {
                pairs.append(("\(a).attention.key_length", .uint32(UInt32(config.headSize))))
                pairs.append(("\(a).attention.value_length", .uint32(UInt32(config.headSize))))
            }
        }
        return pairs
    }
}

/// The pooling a sentence-transformers folder applies (`modules.json` → the Pooling module's
/// `config.json`), as llama.cpp's `pooling_type` numbers it.
public enum SentenceTransformersPooling: UInt32, Sendable {
    case mean = 1, cls = 2, last = 3

    /// The folder's pooling, `nil` when it has no sentence-transformers Pooling module or one
    /// llama.cpp has no type for (max, mean-sqrt-len).
    public init?(folder: URL) {
        guard let modules = FileManager.default.contents(atPath: folder.appendingPathComponent("modules.json").path),
              let list = try? JSONSerialization.jsonObject(with: modules) as? [[String: Any]],
              let pooling = list.first(where: { ($0["type"] as? String)?.hasSuffix("Pooling") == true }),
              let path = pooling["path"] as? String,
              let data = FileManager.default.contents(atPath: folder.appendingPathComponent(path).appendingPathComponent("config.json").path),
              let settings = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        else { return nil }
        if settings["pooling_mode_mean_tokens"] as? Bool == true { self = .mean }
        else if settings["pooling_mode_cls_token"] as? Bool == true { self = .cls }
        else if settings["pooling_mode_lasttoken"] as? Bool == true { self = .last }
        else {
            switch settings["pooling_mode"] as? String {
            case "mean": self = .mean
            case "cls": self = .cls
            case "lasttoken": self = .last
            default: return nil
            }
        }
    }
}
