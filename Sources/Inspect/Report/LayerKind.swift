import QPKCore

/// What a tensor does in a transformer block, told from its name: the query, key and value
/// projections, the attention output, the feed-forward up, gate and down projections, embeddings
/// and norms.
///
/// The names of the three checkpoint families qpk meets are recognised (spec/report.md §4):
/// - BERT (Hugging Face): `attention.self.query`, `attention.output.dense` (attention output),
///   `intermediate.dense` (FFN up), `output.dense` (FFN down), `LayerNorm`, `embeddings`;
/// - llama (Hugging Face and Meta): `self_attn.q_proj`/`wq`, `o_proj`/`wo`, `mlp.gate_proj`/`w1`,
///   `up_proj`/`w3`, `down_proj`/`w2`, `input_layernorm`, `embed_tokens`; GPT-2's `attn.c_attn`
///   (fused QKV), `attn.c_proj`, `mlp.c_fc`, `mlp.c_proj`; GGUF's `attn_q`, `ffn_up`, …;
/// - Keras (`MultiHeadAttention` and keras-nlp): `query/kernel`, `_query_dense`,
///   `attention_output`, `_output_dense`, `_feedforward_intermediate_dense`,
///   `_feedforward_output_dense`.
///
/// Anything else is ``other``. The rules look at the name's components (split at `.` and `/`,
/// lower-cased, a Keras `:0` suffix dropped); norms are recognised first, so
/// `attention.output.LayerNorm.weight` is a norm, not the attention output.
public enum LayerKind: String, Sendable, Codable, CaseIterable, Comparable {
    case embedding
    case query
    case key
    case value
    /// A fused query-key-value projection (GPT-2 `c_attn`, `query_key_value`, `qkv_proj`).
    case qkv
    case attentionOutput = "attention_output"
    case ffnGate = "ffn_gate"
    case ffnUp = "ffn_up"
    case ffnDown = "ffn_down"
    case norm
    case other

    /// The order of a block's data flow, used to list kinds.
    public static func < (a: LayerKind, b: LayerKind) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }

    /// A short human label: `query`, `attention output`, `FFN up`.
    public var label: String {
        switch self {
        case .embedding: "embedding"
        case .query: "query"
        case .key: "key"
        case .value: "value"
        case .qkv: "fused QKV"
        case .attentionOutput: "attention output"
        case .ffnGate: "FFN gate"
        case .ffnUp: "FFN up"
        case .ffnDown: "FFN down"
        case .norm: "norm"
        case .other: "other"
        }
    }

    /// The kind of the tensor called `name`.
    public static func of(_ name: String) -> LayerKind {
        let parts = components(of: name)
        let set = Set(parts)
        func has(_ candidates: Set<String>) -> Bool { !set.isDisjoint(with: candidates) }
        func contains(_ fragment: String) -> Bool { parts.contains { $0.contains(fragment) } }
        /// Whether `part` appears right after any of `parents`.
        func follows(_ part: String, _ parents: Set<String>) -> Bool {
            zip(parts, parts.dropFirst()).contains { parents.contains($0.0) && $0.1 == part }
        }

        if contains("norm") || has(["ln_1", "ln_2", "ln_f", "ln", "ln_attn", "ln_mlp"]) { return .norm }
        if contains("embed") || has(["wte", "wpe", "token_embd", "tok_embeddings"]) { return .embedding }
        if has(["query", "q_proj", "wq", "_query_dense", "query_dense", "attn_q"]) { return .query }
        if has(["key", "k_proj", "wk", "_key_dense", "key_dense", "attn_k"]) { return .key }
        if has(["value", "v_proj", "wv", "_value_dense", "value_dense", "attn_v"]) { return .value }
        if has(["c_attn", "qkv", "qkv_proj", "query_key_value", "wqkv", "attn_qkv", "in_proj_weight", "in_proj_bias"]) { return .qkv }
        // Bare `down`/`up`/`gate` name FFN projections inside a feed-forward block.
        let inFFN = contains("ffn") || contains("mlp") || contains("feed_forward") || contains("feedforward")
        if contains("feedforward_output") || contains("ffn_output") || has(["down_proj", "fc2", "ffn_down", "w2", "dense_4h_to_h", "lin2"])
            || (inFFN && has(["down", "down_proj"])) {
            return .ffnDown
        }
        if contains("feedforward_gate") || has(["gate_proj", "ffn_gate", "w1", "wi_0"]) || (inFFN && has(["gate"])) { return .ffnGate }
        if contains("intermediate") || has(["up_proj", "fc1", "c_fc", "ffn_up", "w3", "dense_h_to_4h", "lin1", "wi", "wi_1"])
            || (inFFN && has(["up"])) {
            return .ffnUp
        }
        let inAttention = contains("attn") || contains("attention")
        if has(["o_proj", "wo", "attention_output", "attn_output", "_output_dense", "output_dense"]) || (inAttention && has(["out_proj"]))
            || follows("output", ["attention", "self_attention", "attn"]) || follows("c_proj", ["attn"]) {
            return .attentionOutput
        }
        if follows("c_proj", ["mlp"]) || parts.contains("output") { return .ffnDown }
        return .other
    }

    /// The lower-cased components of `name`, split at `.` and `/`, without a Keras `:N` suffix.
    static func components(of name: String) -> [String] {
        name.lowercased().split(whereSeparator: { $0 == "." || $0 == "/" }).map { (part: Substring) -> String in
            let pieces = part.split(separator: ":", omittingEmptySubsequences: false)
            if pieces.count > 1, let suffix = pieces.last, suffix.allSatisfy(\.isASCIIDigit) {
                return pieces.dropLast().joined(separator: ":")
            }
            return String(part)
        }
    }
}
