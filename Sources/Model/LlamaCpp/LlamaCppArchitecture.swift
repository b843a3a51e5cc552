import Foundation
import QPKCore

/// The llama.cpp architecture a Hugging Face model folder becomes in GGUF, and how its tensors are
/// named there (spec/gguf.md §8).
///
/// llama.cpp finds every weight by a fixed name (`token_embd.weight`, `blk.3.attn_q.weight`) and
/// refuses a file whose tensor count differs from what its graph creates, so each Hugging Face
/// tensor is either renamed or dropped, and a tensor with no rule stops the conversion.
public enum LlamaCppArchitecture: String, Sendable, Equatable {
    /// BERT encoders (`model_type` "bert"): post-LayerNorm, absolute positions, token types.
    case bert
    /// llama decoders (`model_type` "llama", "mistral"): pre-RMSNorm, rotary positions, GQA.
    case llama

    /// The architecture of `config`, or `nil` when llama.cpp's `bert`/`llama` graphs do not fit
    /// the model (RoBERTa numbers positions from an offset; qwen2 rotates halves, not pairs).
    public init?(_ config: ModelConfig) {
        switch config.modelType {
        case "bert": self = .bert
        case "llama", "mistral": self = .llama
        default: return nil
        }
    }

    /// The `model_type` values qpk maps, for messages.
    public static let supportedModelTypes = ["bert", "llama", "mistral"]

    /// What becomes of one Hugging Face tensor.
    public enum TensorRule: Sendable, Equatable {
        /// Stored under `name`; with `ropeHeads`, its rows are reordered per head for llama.cpp's
        /// rotary layout (``LlamaCppRopePermutation``) over that many heads.
        case renamed(String, ropeHeads: Int?)
        /// Not stored: llama.cpp's graph has no use for it.
        case dropped
    }

    /// The rule for the Hugging Face tensor `name`, `nil` when there is none.
    public func rule(for name: String, config: ModelConfig) -> TensorRule? {
        switch self {
        case .bert: Self.bertRule(name)
        case .llama: Self.llamaRule(name, config: config)
        }
    }

    /// The llama.cpp name of the Hugging Face tensor `name` under the first architecture that
    /// renames it, without a config (names do not depend on one): how a file that llama.cpp's
    /// tools key by their names, an importance matrix, is matched to a checkpoint's own names.
    public static func llamaCppName(of name: String) -> String? {
        for rule in [bertRule(name), llamaRule(name, config: nil)] {
            if case let .renamed(target, _)? = rule { return target }
        }
        return nil
    }

    /// `name` split as (stem, suffix): `encoder.layer.0.output.dense` and `weight`.
    private static func split(_ name: String) -> (stem: String, suffix: String)? {
        guard let dot = name.lastIndex(of: ".") else { return nil }
        return (String(name[..<dot]), String(name[name.index(after: dot)...]))
    }

    /// `layers.N.rest` → (N, rest) for the given prefix.
    private static func block(_ stem: String, prefix: String) -> (Int, String)? {
        guard stem.hasPrefix(prefix) else { return nil }
        let tail = stem.dropFirst(prefix.count)
        guard let dot = tail.firstIndex(of: "."), let index = Int(tail[..<dot]), index >= 0 else { return nil }
        return (index, String(tail[tail.index(after: dot)...]))
    }

    // MARK: bert

    static let bertEmbeddings = [
        "embeddings.word_embeddings": "token_embd",
        "embeddings.position_embeddings": "position_embd",
        "embeddings.token_type_embeddings": "token_types",
        "embeddings.LayerNorm": "token_embd_norm",
    ]

    static let bertBlock = [
        "attention.self.query": "attn_q",
        "attention.self.key": "attn_k",
        "attention.self.value": "attn_v",
        "attention.output.dense": "attn_output",
        "attention.output.LayerNorm": "attn_output_norm",
        "intermediate.dense": "ffn_up",
        "output.dense": "ffn_down",
        "output.LayerNorm": "layer_output_norm",
    ]

    private static func bertRule(_ original: String) -> TensorRule? {
        var name = original.hasPrefix("bert.") ? String(original.dropFirst(5)) : original
        // Old TensorFlow-converted checkpoints call the LayerNorm parameters gamma and beta.
        if name.hasSuffix(".gamma") { name = String(name.dropLast(6)) + ".weight" }
        if name.hasSuffix(".beta") { name = String(name.dropLast(5)) + ".bias" }
        if name == "embeddings.position_ids" || name.hasPrefix("pooler.") || name.hasPrefix("cls.") { return .dropped }
        guard let (stem, suffix) = split(name), suffix == "weight" || suffix == "bias" else { return nil }
        if let target = bertEmbeddings[stem] { return .renamed("\(target).\(suffix)", ropeHeads: nil) }
        if let (index, rest) = block(stem, prefix: "encoder.layer."), let target = bertBlock[rest] {
            return .renamed("blk.\(index).\(target).\(suffix)", ropeHeads: nil)
        }
        return nil
    }

    // MARK: llama

    static let llamaBlock = [
        "input_layernorm": "attn_norm",
        "self_attn.q_proj": "attn_q",
        "self_attn.k_proj": "attn_k",
        "self_attn.v_proj": "attn_v",
        "self_attn.o_proj": "attn_output",
        "post_attention_layernorm": "ffn_norm",
        "mlp.gate_proj": "ffn_gate",
        "mlp.up_proj": "ffn_up",
        "mlp.down_proj": "ffn_down",
    ]

    private static func llamaRule(_ original: String, config: ModelConfig?) -> TensorRule? {
        if original.hasSuffix("rotary_emb.inv_freq") { return .dropped }
        guard let (stem, suffix) = split(original), suffix == "weight" || suffix == "bias" else { return nil }
        switch stem {
        case "model.embed_tokens": return .renamed("token_embd.\(suffix)", ropeHeads: nil)
        case "model.norm": return .renamed("output_norm.\(suffix)", ropeHeads: nil)
        case "lm_head": return .renamed("output.\(suffix)", ropeHeads: nil)
        default: break
        }
        guard let (index, rest) = block(stem, prefix: "model.layers."), let target = llamaBlock[rest] else { return nil }
        let heads: Int? = switch target {
        case "attn_q": config?.headCount
        case "attn_k": config?.keyValueHeadCount
        default: nil
        }
        return .renamed("blk.\(index).\(target).\(suffix)", ropeHeads: heads)
    }
}

/// The row order llama.cpp's `llama` graph expects of the query and key projections.
///
/// Hugging Face's llama rotates each head's two halves against each other (`rotate_half`:
/// dimension i pairs with i + d/2), while llama.cpp's normal RoPE rotates adjacent pairs
/// (2i with 2i + 1). The same attention results when each head's output rows are interleaved:
/// row `h·d + 2i + j` of the GGUF tensor is row `h·d + j·d/2 + i` of the Hugging Face tensor
/// (i < d/2, j ∈ {0, 1}); biases are reordered alike. llama.cpp's own converter applies the
/// same reordering (its `permute` of q_proj over the query heads, of k_proj over the key/value
/// heads).
public enum LlamaCppRopePermutation {
    /// The source row of each destination row, for `rows` rows in `heads` heads.
    /// - Returns: `nil` when the rows are not `heads` heads of an even width.
    public static func sourceRows(rows: Int, heads: Int) -> [Int]? {
        guard heads > 0, rows % heads == 0, (rows / heads) % 2 == 0 else { return nil }
        let width = rows / heads, half = width / 2
        var order = [Int](repeating: 0, count: rows)
        for head in 0..<heads {
            for i in 0..<half {
                for j in 0..<2 { order[head * width + 2 * i + j] = head * width + j * half + i }
            }
        }
        return order
    }

    /// `bytes` (a tensor of `rows` rows of equal byte length) with its rows reordered.
    public static func apply(_ bytes: UnsafeRawBufferPointer, rows: Int, heads: Int) -> TensorBytes? {
        guard rows > 0, bytes.count % rows == 0, let order = sourceRows(rows: rows, heads: heads) else { return nil }
        let rowBytes = bytes.count / rows
        let buffer = ByteBuffer(count: bytes.count)
        for (destination, source) in order.enumerated() {
            let target = UnsafeMutableRawBufferPointer(rebasing: buffer.mutableBytes[(destination * rowBytes)..<((destination + 1) * rowBytes)])
            target.copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[(source * rowBytes)..<((source + 1) * rowBytes)]))
        }
        return TensorBytes(buffer)
    }
}
