import Foundation

/// The `model` of a tokenizer.json: one word in, token ids out.
enum TokenModel: Sendable {
    case wordPiece(WordPiece)
    case bpe(BytePairEncoding)

    static let supported = ["WordPiece", "BPE"]

    init(json: JSONObject) throws {
        let type = try json.string("type", default: nil) ?? (json.has("merges") ? "BPE" : "WordPiece")
        switch type {
        case "WordPiece": self = .wordPiece(try WordPiece(json: json))
        case "BPE": self = .bpe(try BytePairEncoding(json: json))
        default:
            throw ModelError.unsupportedTokenizerComponent(json.path, component: "model", type: type, supported: Self.supported)
        }
    }

    func encode(word: String, into ids: inout [Int32]) {
        switch self {
        case let .wordPiece(model): model.encode(word: word, into: &ids)
        case let .bpe(model): model.encode(word: word, into: &ids)
        }
    }

    func id(of token: String) -> Int32? { vocabulary[token] }

    /// The model's token → id table.
    var vocabulary: Vocabulary {
        switch self {
        case let .wordPiece(model): model.vocabulary
        case let .bpe(model): model.vocabulary
        }
    }
}
