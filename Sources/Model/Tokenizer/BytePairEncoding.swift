import Foundation

/// Byte-pair encoding (Sennrich et al. 2016) with ranked merges, as GPT-2 applies it to the
/// byte-level spelling of each word: start from one symbol per character, then repeatedly merge the
/// adjacent pair whose merge rule comes first in `merges` (the leftmost such pair on ties) until no
/// adjacent pair has a rule. With `ignore_merges` (llama-3), a word that is itself in the
/// vocabulary is emitted whole.
struct BytePairEncoding: Sendable {
    let vocabulary: Vocabulary
    /// (left id, right id) → (rank, merged id).
    private let merges: [UInt64: (rank: Int32, id: Int32)]
    let unknownID: Int32?
    let ignoreMerges: Bool
    let byteFallback: Bool
    let fuseUnknown: Bool
    private let byteTokens: [Int32?]

    init(json: JSONObject) throws {
        vocabulary = try Vocabulary(json: json, key: "vocab")
        if let prefix = try json.string("continuing_subword_prefix", default: nil), !prefix.isEmpty {
            throw ModelError.unsupportedTokenizerComponent(json.path, component: "model", type: "BPE with continuing_subword_prefix", supported: TokenModel.supported)
        }
        if let suffix = try json.string("end_of_word_suffix", default: nil), !suffix.isEmpty {
            throw ModelError.unsupportedTokenizerComponent(json.path, component: "model", type: "BPE with end_of_word_suffix", supported: TokenModel.supported)
        }
        if let unknown = try json.string("unk_token", default: nil) {
            guard let id = vocabulary[unknown] else {
                throw ModelError.invalidField(json.path, key: "model.unk_token", rule: "names \(unknown), which is not in the vocabulary")
            }
            unknownID = id
        } else {
            unknownID = nil
        }
        ignoreMerges = try json.bool("ignore_merges", default: false)
        byteFallback = try json.bool("byte_fallback", default: false)
        fuseUnknown = try json.bool("fuse_unk", default: false)
        let vocabulary = self.vocabulary
        byteTokens = (0..<256).map { vocabulary[String(format: "<0x%02X>", $0)] }
        var table: [UInt64: (rank: Int32, id: Int32)] = [:]
        for (rank, entry) in try json.array("merges").enumerated() {
            let pair: [String]
            if let line = entry as? String {
                pair = line.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            } else if let parts = entry as? [String] {
                pair = parts
            } else {
                pair = []
            }
            guard pair.count == 2 else {
                throw ModelError.invalidField(json.path, key: "model.merges[\(rank)]", rule: "must be \"left right\" or [left, right]")
            }
            guard let left = vocabulary[pair[0]], let right = vocabulary[pair[1]], let merged = vocabulary[pair[0] + pair[1]] else {
                throw ModelError.invalidField(json.path, key: "model.merges[\(rank)]", rule: "merges \(pair[0]) and \(pair[1]), which are not all in the vocabulary")
            }
            let key = UInt64(UInt32(left)) << 32 | UInt64(UInt32(right))
            if table[key] == nil { table[key] = (Int32(rank), merged) }
        }
        merges = table
    }

    func encode(word: String, into ids: inout [Int32]) {
        if ignoreMerges, let id = vocabulary[word] { ids.append(id); return }
        // Initial symbols: one per character; unknown characters fall back to bytes or `unk`.
        var symbols: [Int32] = []
        var lastWasUnknown = false
        for scalar in word.unicodeScalars {
            if let id = vocabulary[String(scalar)] {
                symbols.append(id); lastWasUnknown = false
            } else if byteFallback, String(scalar).utf8.allSatisfy({ byteTokens[Int($0)] != nil }) {
                symbols.append(contentsOf: String(scalar).utf8.map { byteTokens[Int($0)]! }); lastWasUnknown = false
            } else if let unknown = unknownID {
                if !(fuseUnknown && lastWasUnknown) { symbols.append(unknown) }
                lastWasUnknown = true
            }
        }
        // Merge the best-ranked adjacent pair, leftmost first, until none has a rule.
        while symbols.count > 1 {
            var best: (rank: Int32, index: Int, id: Int32)?
            for i in 0..<(symbols.count - 1) {
                let key = UInt64(UInt32(symbols[i])) << 32 | UInt64(UInt32(symbols[i + 1]))
                if let rule = merges[key], best == nil || rule.rank < best!.rank {
                    best = (rule.rank, i, rule.id)
                }
            }
            guard let merge = best else { break }
            symbols[merge.index] = merge.id
            symbols.remove(at: merge.index + 1)
        }
        ids.append(contentsOf: symbols)
    }
}
