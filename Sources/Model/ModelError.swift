import Foundation

/// What can go wrong when reading a model folder, its tokenizer or its weights.
///
/// Each case names the file (and the tensor or JSON key) and renders as one line that says what to
/// do about it.
public enum ModelError: Error, Equatable, CustomStringConvertible {
    /// A file the model folder must contain is missing.
    case missingFile(String, purpose: String)
    /// The file is not valid JSON, or not the JSON object expected.
    case invalidJSON(String, String)
    /// A required key of a JSON file is missing or has the wrong type.
    case invalidField(String, key: String, rule: String)
    /// `config.json` names an architecture this forward pass does not implement.
    case unsupportedArchitecture(String, modelType: String, supported: [String])
    /// A tokenizer.json component (normalizer, pre-tokenizer, model, post-processor) of a type
    /// qpk does not implement.
    case unsupportedTokenizerComponent(String, component: String, type: String, supported: [String])
    /// A tensor the architecture needs is absent from the checkpoint.
    case missingTensor(String, tensor: String)
    /// A tensor has a shape other than the config implies.
    case shapeMismatch(String, tensor: String, expected: [Int], found: [Int])
    /// A token sequence is longer than the model's position table.
    case sequenceTooLong(String, length: Int, maximum: Int)
    /// A token id outside the embedding table.
    case tokenOutOfRange(String, id: Int, vocabulary: Int)
    /// A tensor of a model folder that llama.cpp's graph for the architecture has no name for.
    case noLlamaCppTensor(String, tensor: String, architecture: String)

    public var description: String {
        switch self {
        case let .missingFile(path, purpose):
            return "\(path): not found; \(purpose)"
        case let .invalidJSON(path, reason):
            return "\(path): not valid JSON (\(reason)); pass the file as written by Hugging Face"
        case let .invalidField(path, key, rule):
            return "\(path): key \"\(key)\" \(rule)"
        case let .unsupportedArchitecture(path, modelType, supported):
            return "\(path): model_type \"\(modelType)\" is not supported; supported: \(supported.joined(separator: ", "))"
        case let .unsupportedTokenizerComponent(path, component, type, supported):
            return "\(path): \(component) of type \"\(type)\" is not supported; supported: \(supported.joined(separator: ", "))"
        case let .missingTensor(path, tensor):
            return "\(path): tensor \(tensor) is missing; the checkpoint does not match its config.json"
        case let .shapeMismatch(path, tensor, expected, found):
            let e = expected.map(String.init).joined(separator: "×")
            let f = found.map(String.init).joined(separator: "×")
            return "\(path): tensor \(tensor) has shape \(f), config.json implies \(e)"
        case let .sequenceTooLong(path, length, maximum):
            return "\(path): a sequence of \(length) tokens exceeds the model's \(maximum) positions; truncate the input"
        case let .tokenOutOfRange(path, id, vocabulary):
            return "\(path): token id \(id) is outside the embedding table of \(vocabulary) rows; the tokenizer does not belong to this model"
        case let .noLlamaCppTensor(path, tensor, architecture):
            return "\(path): tensor \(tensor) has no name in llama.cpp's \(architecture) graph (which refuses files with extra tensors); pass the .safetensors file instead to keep the names as they are"
        }
    }
}
