/// Token sequences padded on the right to a common length, with their attention mask.
public struct TokenBatch: Sendable, Equatable {
    /// Sequences in the batch.
    public let count: Int
    /// Positions per sequence (the longest sequence's length).
    public let length: Int
    /// `count × length` ids, padded with the pad id.
    public let ids: [Int32]
    /// The unpadded length of each sequence.
    public let lengths: [Int]

    /// Pads `sequences` to the longest with `padID`.
    public init(_ sequences: [[Int32]], padID: Int32) {
        count = sequences.count
        length = sequences.map(\.count).max() ?? 0
        lengths = sequences.map(\.count)
        var ids = [Int32](repeating: padID, count: count * length)
        for (row, sequence) in sequences.enumerated() {
            for (t, id) in sequence.enumerated() { ids[row * length + t] = id }
        }
        self.ids = ids
    }

    /// Whether token `position` of sequence `sequence` is real (not padding).
    public func isReal(sequence: Int, position: Int) -> Bool { position < lengths[sequence] }

    /// 1 for real tokens and 0 for padding, one entry per row of the batch's activations
    /// (`count × length` rows, sequence-major).
    public var rowMask: [Float] {
        var mask = [Float](repeating: 0, count: count * length)
        for s in 0..<count { for t in 0..<lengths[s] { mask[s * length + t] = 1 } }
        return mask
    }

    /// The number of real tokens.
    public var tokenCount: Int { lengths.reduce(0, +) }
}
