/// A forward pass qpk can run: token batch in, last hidden states out, block by block.
public protocol SequenceModel: Sendable {
    var config: ModelConfig { get }
    /// The last hidden states (`count·length × hidden`; rows of padding are meaningless).
    func hiddenStates(_ batch: TokenBatch, observer: (any LinearInputObserver)?) throws -> Matrix
}

extension BertEncoder: SequenceModel {}
extension LlamaDecoder: SequenceModel {}
