import Foundation
import Formats

/// A Hugging Face model folder: `config.json`, `tokenizer.json` and the weights
/// (`model.safetensors`, or the shards named by `model.safetensors.index.json`).
public struct ModelFolder: Sendable {
    public let url: URL
    public let config: ModelConfig
    public let tokenizer: Tokenizer

    /// Reads the folder's config and tokenizer (the weights are read by ``loadEncoder()``).
    public init(_ url: URL) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw ModelError.missingFile(url.path, purpose: "pass a model folder holding config.json, tokenizer.json and model.safetensors")
        }
        self.url = url
        config = try ModelConfig(contentsOf: url.appendingPathComponent("config.json"))
        tokenizer = try Tokenizer(contentsOf: url.appendingPathComponent("tokenizer.json"))
    }

    /// The weights file: the sharded index if there is one, else `model.safetensors`.
    public var weightsURL: URL {
        get throws {
            for name in ["model.safetensors.index.json", "model.safetensors"] {
                let candidate = url.appendingPathComponent(name)
                if FileManager.default.fileExists(atPath: candidate.path) { return candidate }
            }
            throw ModelError.missingFile(url.appendingPathComponent("model.safetensors").path,
                                         purpose: "the model folder needs its weights as model.safetensors (or a sharded index)")
        }
    }

    /// The encoder with the folder's weights (BERT family).
    public func loadEncoder() throws -> BertEncoder {
        try BertEncoder(config: config, checkpoint: try Checkpoint.open(try weightsURL))
    }

    /// The forward pass of the folder's architecture, with its weights.
    public func loadModel() throws -> any SequenceModel {
        let checkpoint = try Checkpoint.open(try weightsURL)
        switch config.family {
        case .bert: return try BertEncoder(config: config, checkpoint: checkpoint)
        case .llama: return try LlamaDecoder(config: config, checkpoint: checkpoint)
        }
    }
}
