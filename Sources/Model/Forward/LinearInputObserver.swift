/// The input of one or more linear layers during a forward pass.
///
/// Layers that read the same activations (a block's query, key and value projections) are
/// reported once, with all their names, so a statistic of the input (a GPTQ Hessian) is computed
/// once for all of them.
public struct LinearInput {
    /// The linear layers' names (tensor names without `.weight`), e.g.
    /// `["encoder.layer.0.attention.self.query", "…key", "…value"]`.
    public let layers: [String]
    /// The block (layer index) the linear layers belong to.
    public let block: Int
    /// tokens × in-features: every row of the batch, padding included.
    public let values: Matrix
    /// One entry per row: 1 for a real token, 0 for padding (which a statistic must skip).
    public let rowMask: [Float]
}

/// Receives each linear layer's input while the forward pass runs: the hook calibration
/// statistics (GPTQ/BoA Hessians, llama.cpp's importance matrix) are gathered through.
///
/// The input is valid only during the call; an observer that keeps it must copy it.
public protocol LinearInputObserver: AnyObject {
    func observe(_ input: LinearInput)
}
