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
    /// Receives an attention layer's queries, keys and value input (a default ignores them).
    func observeAttention(_ input: AttentionInput)
}

/// What one attention layer computed during a forward pass: the queries and keys that enter the
/// scores (after RoPE, where the model has it) and the input of the value projection. BoA's
/// attention-aware Hessians are gathered from it (``AttentionStatistics``).
///
/// Valid only during the call, like ``LinearInput``.
public struct AttentionInput {
    /// The block (layer index).
    public let block: Int
    /// The names of the query, key, value and output projections (tensor names without `.weight`).
    public let query: String
    public let key: String
    public let value: String
    public let output: String
    /// The projections' shared input `X` (tokens × hidden, padding rows included).
    public let input: Matrix
    /// Queries (tokens × heads·d) and keys (tokens × kvHeads·d) as the scores use them.
    public let queries: Matrix
    public let keys: Matrix
    public let batch: TokenBatch
    public let heads: Int
    public let kvHeads: Int
    /// Whether a query sees only the keys at or before it.
    public let causal: Bool
    /// The rotary embedding applied to the queries and keys, if any.
    let rotary: RotaryEmbedding?
}

extension LinearInputObserver {
    /// Receives each attention layer's queries, keys and value input; observers that need no
    /// attention statistics ignore it.
    public func observeAttention(_ input: AttentionInput) {}
}
