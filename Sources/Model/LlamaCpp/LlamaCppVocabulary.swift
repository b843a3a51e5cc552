import Foundation
import Formats

/// A tokenizer.json as llama.cpp's vocabulary keys describe it (spec/gguf.md §8.3): the token
/// list, one type per token, the merges of a byte-level BPE, and the special tokens.
///
/// Two of llama.cpp's tokenizers are written:
/// - `bert` (WordPiece): llama.cpp marks word starts, not continuations, so each normal token
///   `x` is stored as `▁x` (U+2581) and each continuation `##x` as `x`; control tokens are kept.
/// - `gpt2` (byte-level BPE, GPT-2's byte alphabet): the tokens as the vocabulary spells them,
///   and the merges as `"left right"`. The pre-tokenizer is named by `tokenizer.ggml.pre`:
///   `gpt-2` for `ByteLevel` with its own regex, `llama-bpe` for llama-3's split.
///
/// Token ids without a token (holes, or rows of the embedding beyond the tokenizer) are filled
/// with `[PAD<id>]` of type unused, as llama.cpp requires one token per embedding row.
public struct LlamaCppVocabulary: Sendable {
    /// ggml's token types (`llama_token_type`).
    public enum TokenType: Int32, Sendable {
        case normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6
    }

    /// `tokenizer.ggml.model`: "bert" or "gpt2".
    public let model: String
    /// `tokenizer.ggml.pre`.
    public let pre: String
    public let tokens: [String]
    public let tokenTypes: [TokenType]
    /// BPE merges, `"left right"`, in rank order; empty for WordPiece.
    public let merges: [String]
    /// `tokenizer.ggml.<name>_token_id` pairs, in key order.
    public let specialIDs: [(name: String, id: Int32)]
    /// `tokenizer.ggml.add_<name>_token` pairs.
    public let addFlags: [(name: String, value: Bool)]
    /// WordPiece's BertNormalizer settings (`lowercase`, `strip_accents`), `nil` for BPE.
    public let normalizer: (lowercase: Bool, stripAccents: Bool)?

    static let llama3Pattern = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

    /// Reads the vocabulary of `tokenizer` (parsed from `tokenizerURL`) for an embedding of
    /// `rows` rows; `config` is config.json, consulted for BPE's bos/eos ids when the
    /// post-processor adds none.
    /// - Throws: ``ModelError`` when the tokenizer has more ids than the embedding has rows, when
    ///   two tokens would be stored alike, or when its model or pre-tokenizer has no llama.cpp
    ///   equivalent qpk writes.
    init(tokenizer: Tokenizer, tokenizerURL: URL, configURL: URL, rows: Int) throws {
        let json = try JSONObject.read(tokenizerURL, purpose: "a model folder needs the tokenizer.json written by Hugging Face tokenizers")
        let path = json.path
        let modelJSON = try json.object("model")
        var byID: [Int: String] = [:]
        for (token, value) in try modelJSON.object("vocab").values {
            guard let number = value as? NSNumber, let id = Int(exactly: number.doubleValue), id >= 0 else {
                throw ModelError.invalidField(path, key: "model.vocab[\(token)]", rule: "must be a non-negative integer id")
            }
            byID[id] = token
        }
        var types: [Int: TokenType] = [:]
        var addedByContent: [String: Int32] = [:]
        if json.has("added_tokens") {
            for added in try json.objects("added_tokens") {
                let id = try added.int("id"), content = try added.string("content")
                byID[id] = content
                addedByContent[content] = Int32(id)
                types[id] = try added.bool("special", default: false) ? .control : .userDefined
            }
        }
        let count = (byID.keys.max() ?? -1) + 1
        guard count <= rows else {
            throw ModelError.invalidField(path, key: "model.vocab", rule: "has ids up to \(count - 1), but the token embedding has \(rows) rows; the tokenizer does not belong to this model")
        }
        var tokens: [String] = []
        var tokenTypes: [TokenType] = []
        tokens.reserveCapacity(rows)
        for id in 0..<rows {
            if let token = byID[id] {
                tokens.append(token)
                tokenTypes.append(types[id] ?? .normal)
            } else {
                tokens.append("[PAD\(id)]")
                tokenTypes.append(.unused)
            }
        }
        let prefix = tokenizer.postProcessor.prefix, suffix = tokenizer.postProcessor.suffix
        var specials: [(String, Int32)] = []
        let explicitPad: Int32? = try json.optionalObject("padding").flatMap { $0.has("pad_id") ? Int32(try $0.int("pad_id")) : nil }
            ?? ["[PAD]", "<pad>"].lazy.compactMap { addedByContent[$0] ?? tokenizer.model.id(of: $0) }.first
        switch tokenizer.model {
        case let .wordPiece(wordPiece):
            model = "bert"
            pre = "default"
            merges = []
            for id in tokens.indices where tokenTypes[id] != .control && tokenTypes[id] != .unused {
                let token = tokens[id]
                tokens[id] = token.hasPrefix("##") ? String(token.dropFirst(2)) : "\u{2581}" + token
            }
            if let cls = prefix.first { specials += [("bos", cls), ("cls", cls)] }
            if let sep = suffix.first { specials.append(("seperator", sep)) }
            specials.append(("unknown", wordPiece.unknownID))
            if let pad = explicitPad { specials.append(("padding", pad)) }
            if let mask = addedByContent["[MASK]"] ?? wordPiece.vocabulary["[MASK]"] { specials.append(("mask", mask)) }
            addFlags = [("bos", !prefix.isEmpty), ("eos", false), ("sep", !suffix.isEmpty)]
            normalizer = try Self.bertNormalizer(json)
        case let .bpe(bpe):
            model = "gpt2"
            pre = try Self.bytePairPreTokenizer(json)
            merges = try modelJSON.array("merges").enumerated().map { rank, entry in
                if let line = entry as? String { return line }
                if let pair = entry as? [String], pair.count == 2 {
                    // A space inside a part would split wrongly; GPT-2's alphabet spells it Ġ.
                    return pair.map { $0.replacingOccurrences(of: " ", with: "\u{0120}") }.joined(separator: " ")
                }
                throw ModelError.invalidField(path, key: "model.merges[\(rank)]", rule: "must be \"left right\" or [left, right]")
            }
            let config = try JSONObject.read(configURL, purpose: "a model folder needs config.json")
            func configID(_ key: String) -> Int32? {
                (config.values[key] as? NSNumber).flatMap { Int32(exactly: $0.doubleValue) }
            }
            if let bos = prefix.first ?? configID("bos_token_id") { specials.append(("bos", bos)) }
            if let eos = suffix.last ?? configID("eos_token_id") { specials.append(("eos", eos)) }
            if let unknown = bpe.unknownID { specials.append(("unknown", unknown)) }
            if let pad = explicitPad { specials.append(("padding", pad)) }
            addFlags = [("bos", !prefix.isEmpty), ("eos", !suffix.isEmpty)]
            normalizer = nil
        }
        var seen: [String: Int] = [:]
        for (id, token) in tokens.enumerated() {
            if let other = seen.updateValue(id, forKey: token) {
                throw ModelError.invalidField(path, key: "model.vocab", rule: "ids \(other) and \(id) would both be stored as \"\(token)\" in GGUF, which llama.cpp refuses")
            }
        }
        for (name, id) in specials where id < 0 || Int(id) >= rows {
            throw ModelError.invalidField(path, key: "\(name) token", rule: "has id \(id), outside the \(rows) tokens")
        }
        self.tokens = tokens
        self.tokenTypes = tokenTypes
        specialIDs = specials
    }

    /// The BertNormalizer's `lowercase` and `strip_accents` (which follows `lowercase` when
    /// unset), as llama.cpp's WordPiece applies them; none when there is no BertNormalizer.
    private static func bertNormalizer(_ json: JSONObject) throws -> (lowercase: Bool, stripAccents: Bool) {
        guard let normalizer = try json.optionalObject("normalizer"), (try normalizer.string("type")) == "BertNormalizer" else {
            return (false, false)
        }
        let lowercase = try normalizer.bool("lowercase", default: true)
        return (lowercase, try normalizer.bool("strip_accents", default: lowercase))
    }

    /// llama.cpp's name for a byte-level BPE pre-tokenizer.
    private static func bytePairPreTokenizer(_ json: JSONObject) throws -> String {
        let supported = ["ByteLevel (GPT-2 regex): gpt-2", "Sequence[Split(llama-3 regex), ByteLevel(use_regex false)]: llama-bpe"]
        guard let pre = try json.optionalObject("pre_tokenizer") else {
            throw ModelError.unsupportedTokenizerComponent(json.path, component: "pre_tokenizer for GGUF", type: "none (a sentencepiece-style BPE)", supported: supported)
        }
        let type = try pre.string("type")
        if type == "ByteLevel", try pre.bool("use_regex", default: true) { return "gpt-2" }
        if type == "Sequence" {
            let steps = try pre.objects("pretokenizers")
            if steps.count == 2, (try steps[0].string("type")) == "Split",
               let pattern = try steps[0].optionalObject("pattern"), pattern.values["Regex"] as? String == llama3Pattern,
               (try steps[1].string("type")) == "ByteLevel", !(try steps[1].bool("use_regex", default: true)) {
                return "llama-bpe"
            }
        }
        throw ModelError.unsupportedTokenizerComponent(json.path, component: "pre_tokenizer for GGUF", type: type, supported: supported)
    }

    /// The `tokenizer.*` metadata pairs, in the order written.
    public var metadata: [(key: String, value: GGUFValue)] {
        var pairs: [(key: String, value: GGUFValue)] = [
            ("tokenizer.ggml.model", .string(model)),
            ("tokenizer.ggml.pre", .string(pre)),
            ("tokenizer.ggml.tokens", .array(.string, tokens.map { .string($0) })),
            ("tokenizer.ggml.token_type", .array(.int32, tokenTypes.map { .int32($0.rawValue) })),
        ]
        if !merges.isEmpty { pairs.append(("tokenizer.ggml.merges", .array(.string, merges.map { .string($0) }))) }
        for (name, id) in specialIDs { pairs.append(("tokenizer.ggml.\(name)_token_id", .uint32(UInt32(id)))) }
        for (name, value) in addFlags { pairs.append(("tokenizer.ggml.add_\(name)_token", .bool(value))) }
        if let normalizer {
            pairs.append(("tokenizer.ggml.normalizer.lowercase", .bool(normalizer.lowercase)))
            pairs.append(("tokenizer.ggml.normalizer.strip_accents", .bool(normalizer.stripAccents)))
        }
        return pairs
    }
}
