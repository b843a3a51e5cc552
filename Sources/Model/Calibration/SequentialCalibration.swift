/// A transformer block that calibration can run on its own and whose weights it can replace.
public protocol TransformerBlock: Sendable {
    /// The block's position in the model.
    var index: Int { get }
    /// The block's linear layers, in the order they run.
    var linears: [Linear] { get }
    /// Replaces the weight of the linear layer called `name`; false when there is none of that
    /// name or the element count differs.
    mutating func replaceWeight(of name: String, with weight: [Float]) -> Bool
    /// Runs the block, reporting each linear input to `observer`.
    func callAsFunction(_ hidden: Matrix, batch: TokenBatch, observer: (any LinearInputObserver)?) -> Matrix
}

/// A model that runs as an embedding layer followed by a stack of blocks.
public protocol BlockwiseModel: SequenceModel {
    associatedtype Block: TransformerBlock
    var blocks: [Block] { get set }
    /// The input of the first block.
    func embed(_ batch: TokenBatch) throws -> Matrix
}

extension BertBlock: TransformerBlock {}
extension LlamaBlock: TransformerBlock {}
extension BertEncoder: BlockwiseModel {}
extension LlamaDecoder: BlockwiseModel {}

/// Sequential calibration, as the GPTQ reference runs it (Frantar et al. 2023): block by block,
/// the Hessians of a block's linear inputs are gathered over every calibration batch, the caller
/// quantizes the block (replacing its weights), and the *quantized* block's outputs become the
/// next block's inputs, so each block is calibrated on what it will see at inference.
///
/// Memory: the activations of one block for all batches (`tokens × hidden` floats) plus one
/// ``HessianObserver`` (`d²` doubles per distinct linear input of the block).
public enum SequentialCalibration {
    /// - Parameters:
    ///   - model: the model; its blocks' weights are replaced by what `quantize` sets.
    ///   - batches: the calibration token batches.
    ///   - quantize: called once per block, in order, with the block (to change through
    ///     ``TransformerBlock/replaceWeight(of:with:)``) and the statistics of its inputs.
    ///   - attention: whether the observer also collects each block's ``AttentionStatistics`` (BoA).
    public static func run<M: BlockwiseModel>(
        _ model: inout M, batches: [TokenBatch], attention: Bool = false,
        quantize: (inout M.Block, HessianObserver) throws -> Void
    ) throws {
        var inputs = try batches.map { try model.embed($0) }
        for b in model.blocks.indices {
            let observer = HessianObserver(blocks: [model.blocks[b].index], collectsAttention: attention)
            for (batch, input) in zip(batches, inputs) {
                _ = model.blocks[b](input, batch: batch, observer: observer)
            }
            try quantize(&model.blocks[b], observer)
            let block = model.blocks[b]
            inputs = zip(batches, inputs).map { batch, input in block(input, batch: batch, observer: nil) }
        }
    }
}
