import Foundation

/// A text tokenizer read from a Hugging Face `tokenizer.json`, producing the same ids as the
/// `tokenizers` library for single sequences.
///
/// Encoding runs the library's pipeline:
/// 1. **Added tokens** (`added_tokens`) are found in the raw text first, leftmost and longest
///    first, and become their ids directly; the text between them goes through steps 2–4.
/// 2. The **normalizer** rewrites the text (``Normalizer``).
/// 3. The **pre-tokenizer** splits it into words (``PreTokenizer``).
/// 4. The **model** turns each word into ids: WordPiece or byte-pair encoding (``TokenModel``).
/// 5. **Truncation** keeps the first `maxLength − specials` ids (the last, for `direction: Left`).
/// 6. The **post-processor** adds the special tokens (``PostProcessor``).
///
/// Padding is left to the batch (``TokenBatch``). Added tokens are matched in the raw text even
/// when marked `normalized: true`, and their `lstrip`/`rstrip`/`single_word` flags are not
/// applied; the special tokens of BERT, GPT-2, llama-3 and Qwen tokenizers are all
/// `normalized: false` without those flags.
public struct Tokenizer: Sendable {
    /// The file the tokenizer was read from.
    public let path: String
    let normalizer: Normalizer?
    let preTokenizer: PreTokenizer?
    let model: TokenModel
    let postProcessor: PostProcessor
    /// Added tokens as UTF-8 bytes with their ids, longest first.
    let addedTokens: [(bytes: [UInt8], id: Int32)]
    /// `truncation.max_length`, if the file sets one.
    public let maxLength: Int?
    let truncateLeft: Bool
    /// The id padded positions carry: `padding.pad_id`, else the id of `[PAD]`, `<pad>` or
    /// `<|endoftext|>`, else 0.
    public let padID: Int32

    /// Reads `tokenizer.json`.
    /// - Throws: ``ModelError`` naming the file and the key or component it cannot use.
    public init(contentsOf url: URL) throws {
        let json = try JSONObject.read(url, purpose: "a model folder needs the tokenizer.json written by Hugging Face tokenizers")
        path = url.path
        normalizer = try json.optionalObject("normalizer").map(Normalizer.init(json:))
        preTokenizer = try json.optionalObject("pre_tokenizer").map(PreTokenizer.init(json:))
        model = try TokenModel(json: try json.object("model"))
        postProcessor = try json.optionalObject("post_processor").map(PostProcessor.init(json:)) ?? PostProcessor()
        var added: [(bytes: [UInt8], id: Int32)] = []
        var byContent: [String: Int32] = [:]
        if json.has("added_tokens") {
            for token in try json.objects("added_tokens") {
                let content = try token.string("content")
                let id = Int32(try token.int("id"))
                if !content.isEmpty { added.append((Array(content.utf8), id)) }
                byContent[content] = id
            }
        }
        addedTokens = added.sorted { $0.bytes.count > $1.bytes.count }
        if let truncation = try json.optionalObject("truncation") {
            maxLength = try truncation.int("max_length")
            truncateLeft = (try truncation.string("direction", default: "Right")) == "Left"
        } else {
            maxLength = nil
            truncateLeft = false
        }
        let model = self.model
        if let padding = try json.optionalObject("padding"), padding.has("pad_id") {
            padID = Int32(try padding.int("pad_id"))
        } else {
            padID = ["[PAD]", "<pad>", "<|endoftext|>"].lazy.compactMap { byContent[$0] ?? model.id(of: $0) }.first ?? 0
        }
    }

    /// The token ids of `text`.
    /// - Parameters:
    ///   - addSpecialTokens: whether the post-processor's special tokens (`[CLS]`, `[SEP]`, …)
    ///     are added.
    ///   - maxLength: the most ids returned, special tokens included; `nil` uses the file's
    ///     `truncation.max_length` (none if it has none).
    public func encode(_ text: String, addSpecialTokens: Bool = true, maxLength: Int? = nil) -> [Int32] {
        var ids: [Int32] = []
        for segment in splitAddedTokens(text) {
            switch segment {
            case let .added(id):
                ids.append(id)
            case let .text(chunk):
                let normalized = normalizer?.apply(chunk) ?? chunk
                let words = preTokenizer?.apply([normalized]) ?? [normalized]
                for word in words where !word.isEmpty { model.encode(word: word, into: &ids) }
            }
        }
        if let limit = maxLength ?? self.maxLength {
            let room = max(0, limit - (addSpecialTokens ? postProcessor.addedCount : 0))
            if ids.count > room { ids = truncateLeft ? Array(ids.suffix(room)) : Array(ids.prefix(room)) }
        }
        return addSpecialTokens ? postProcessor.prefix + ids + postProcessor.suffix : ids
    }

    /// The special tokens the post-processor puts around one sequence (`[CLS] … [SEP]`: 2).
    public var specialTokenCount: Int { postProcessor.addedCount }

    /// `ids` between the post-processor's special tokens, as ``encode(_:addSpecialTokens:maxLength:)``
    /// puts them.
    public func addingSpecialTokens(_ ids: [Int32]) -> [Int32] {
        postProcessor.prefix + ids + postProcessor.suffix
    }

    /// The ids of the vocabulary's ordinary tokens, in increasing order: every entry of the model's
    /// vocabulary except the added tokens (the specials: `[CLS]`, `[PAD]`, `<|endoftext|>`, …) and
    /// reserved placeholders spelled as one bracketed word, `[…]` or `<…>` (BERT's `[unused7]`
    /// and `[UNK]`, `<unk>`, `<|reserved_special_token_3|>`). Text never tokenizes to the latter
    /// except by accident, so random sequences of them would show a model inputs it never saw.
    public func ordinaryTokenIDs() -> [Int32] {
        let added = Set(addedTokens.map(\.id))
        return model.vocabulary.ids { spelling in
            guard spelling.count >= 3, let first = spelling.first, let last = spelling.last,
                  (first == UInt8(ascii: "[") && last == UInt8(ascii: "]")) || (first == UInt8(ascii: "<") && last == UInt8(ascii: ">")),
                  !spelling.contains(UInt8(ascii: " "))
            else { return true }
            return false
        }.filter { !added.contains($0) }
    }

    private enum Segment { case text(String), added(Int32) }

    /// Splits the raw text at added tokens: at each byte position the longest added token that
    /// starts there wins; text between matches is passed on as text.
    private func splitAddedTokens(_ text: String) -> [Segment] {
        guard !addedTokens.isEmpty else { return [.text(text)] }
        let bytes = Array(text.utf8)
        var segments: [Segment] = []
        var textStart = 0
        var position = 0
        while position < bytes.count {
            var matched: (length: Int, id: Int32)?
            for token in addedTokens where token.bytes.count <= bytes.count - position && token.bytes[0] == bytes[position] {
                if bytes[position..<(position + token.bytes.count)].elementsEqual(token.bytes) {
                    matched = (token.bytes.count, token.id)
                    break
                }
            }
            if let match = matched {
                if textStart < position { segments.append(.text(String(decoding: bytes[textStart..<position], as: UTF8.self))) }
                segments.append(.added(match.id))
                position += match.length
                textStart = position
            } else {
                position += 1
            }
        }
        if textStart < bytes.count { segments.append(.text(String(decoding: bytes[textStart...], as: UTF8.self))) }
        return segments
    }
}
