import Foundation

/// Token string → id, compared byte for byte.
///
/// Swift's `String` equality is canonical equivalence (`"é"` equals `"e\u{301}"`), but a
/// vocabulary may hold both spellings under different ids, so keys are the UTF-8 bytes.
struct Vocabulary: Sendable {
    private var ids: [[UInt8]: Int32] = [:]
    private(set) var count = 0

    init(json: JSONObject, key: String) throws {
        let vocab = try json.object(key)
        ids.reserveCapacity(vocab.values.count)
        for (token, value) in vocab.values {
            guard let number = value as? NSNumber, let id = Int32(exactly: number.doubleValue), id >= 0 else {
                throw ModelError.invalidField(json.path, key: "model.vocab[\(token)]", rule: "must be a non-negative integer id")
            }
            ids[Array(token.utf8)] = id
        }
        count = ids.count
    }

    subscript(token: String) -> Int32? { ids[Array(token.utf8)] }
    subscript(bytes: [UInt8]) -> Int32? { ids[bytes] }

    /// The ids of the entries whose UTF-8 spelling satisfies `isIncluded`, in increasing order.
    func ids(where isIncluded: ([UInt8]) -> Bool) -> [Int32] {
        ids.compactMap { isIncluded($0.key) ? $0.value : nil }.sorted()
    }
}
