import Foundation

/// WordPiece (Schuster & Nakajima 2012; as used by BERT, Devlin et al. 2019): each word is
/// covered greedily by the longest vocabulary entry starting at the current position; every piece
/// after the first is looked up with the `continuing_subword_prefix` (`##`). A word longer than
/// `max_input_chars_per_word` scalars, or one that cannot be covered, becomes the unknown token.
struct WordPiece: Sendable {
    let vocabulary: Vocabulary
    let unknownID: Int32
    let prefix: [UInt8]
    let maxCharacters: Int

    init(json: JSONObject) throws {
        vocabulary = try Vocabulary(json: json, key: "vocab")
        let unknown = try json.string("unk_token", default: "[UNK]") ?? "[UNK]"
        guard let id = vocabulary[unknown] else {
            throw ModelError.invalidField(json.path, key: "model.unk_token", rule: "names \(unknown), which is not in the vocabulary")
        }
        unknownID = id
        prefix = Array((try json.string("continuing_subword_prefix", default: "##") ?? "##").utf8)
        maxCharacters = try json.int("max_input_chars_per_word", default: 100)
    }

    func encode(word: String, into ids: inout [Int32]) {
        let scalars = Array(word.unicodeScalars)
        if scalars.count > maxCharacters { ids.append(unknownID); return }
        // UTF-8 offset of each scalar boundary, so candidate pieces are byte slices.
        let bytes = Array(word.utf8)
        var boundaries = [0]
        for scalar in scalars { boundaries.append(boundaries.last! + UTF8.width(scalar)) }
        var pieces: [Int32] = []
        var start = 0
        while start < scalars.count {
            var end = scalars.count
            var found: Int32?
            while start < end {
                var candidate = start > 0 ? prefix : []
                candidate.append(contentsOf: bytes[boundaries[start]..<boundaries[end]])
                if let id = vocabulary[candidate] { found = id; break }
                end -= 1
            }
            guard let id = found else { ids.append(unknownID); return }
            pieces.append(id)
            start = end
        }
        ids.append(contentsOf: pieces)
    }
}
