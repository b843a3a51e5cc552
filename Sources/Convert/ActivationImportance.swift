import Formats
import Quantize
import QPKCore

/// Data-free estimates of the second moment `E[x_j²]` of each input feature of a linear layer,
/// read from the model's own normalisation layers (spec/quantization.md §10).
///
/// For `y = W·x` with `x = LayerNorm(h) = γ ⊙ ẑ + β` and `ẑ` normalised (zero mean, unit variance
/// per feature on average), `E[x_j²] ≈ γ_j² + β_j²`; for RMSNorm, `E[x_j²] ≈ γ_j²`. Layers that
/// read another layer's output propagate the estimate, assuming independent inputs:
/// - attention output projection: its input is a convex mixture of value vectors, so
///   `E[c_j²] ≲ Σ_k Wv[j,k]² E[x_k²] + bv_j²` (the bound of a single attended token);
/// - BERT FFN down projection: its input is `GELU(u_i)` with `u_i ~ N(b1_i, Σ_k W1[i,k]² E[x_k²])`,
///   whose second moment is integrated numerically (``GaussianMoments``);
/// - LLaMA FFN down projection: `SiLU(g_i)·u_i` with independent Gaussian `g_i`, `u_i`:
///   `E[SiLU(g_i)²]·E[u_i²]`.
///
/// The rule table (by tensor name; any prefix before the first rule component is kept):
///
/// | weight | reads |
/// |---|---|
/// | `encoder.layer.N.attention.self.{query,key,value}` | `encoder.layer.(N−1).output.LayerNorm` (N = 0: `embeddings.LayerNorm`) |
/// | `encoder.layer.N.intermediate.dense` | `encoder.layer.N.attention.output.LayerNorm` |
/// | `encoder.layer.N.attention.output.dense` | value projection of layer N over its LayerNorm |
/// | `encoder.layer.N.output.dense` | GELU of `intermediate.dense` over `attention.output.LayerNorm` |
/// | `layers.N.self_attn.{q,k,v}_proj` | `layers.N.input_layernorm` (RMSNorm) |
/// | `layers.N.mlp.{gate,up}_proj` | `layers.N.post_attention_layernorm` (RMSNorm) |
/// | `layers.N.self_attn.o_proj` | `v_proj` over `input_layernorm` (only when `o_proj` has as many columns as `v_proj` rows: no grouped-query attention) |
/// | `layers.N.mlp.down_proj` | `SiLU(gate_proj)·up_proj` over `post_attention_layernorm` |
///
/// Any other tensor, a missing or mis-shaped source tensor, or one that cannot be read gives
/// `nil`: that weight is quantized unweighted, exactly as without importance.
public enum ActivationImportance {
    /// Where a weight's input comes from.
    public indirect enum Source: Equatable, Sendable {
        /// A LayerNorm/RMSNorm output: `γ² + β²` (β when present).
        case norm(String)
        /// The attention context over a value projection (`value` weight name, reading `input`).
        case attentionContext(value: String, input: Source)
        /// `GELU(W1·x + b1)` of the FFN up projection `up` reading `input`.
        case gelu(up: String, input: Source)
        /// `SiLU(gate·x)·(up·x)` of a gated FFN reading `input`.
        case swiGLU(gate: String, up: String, input: Source)
    }

    /// The source of the input of the weight `name` (a `….weight` tensor), or `nil` when no rule
    /// applies.
    public static func source(of name: String) -> Source? {
        guard name.hasSuffix(".weight") else { return nil }
        let base = String(name.dropLast(".weight".count))
        let parts = base.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        // BERT: <prefix>encoder.layer.N.<rest>
        if let i = indexOf(["encoder", "layer"], in: parts), i + 2 < parts.count, let n = Int(parts[i + 2]), n >= 0 {
            let prefix = parts[..<i].map { $0 + "." }.joined()
            let layer = "\(prefix)encoder.layer.\(n)"
            let rest = parts[(i + 3)...].joined(separator: ".")
            let preAttention = n == 0 ? "\(prefix)embeddings.LayerNorm" : "\(prefix)encoder.layer.\(n - 1).output.LayerNorm"
            let preFFN = "\(layer).attention.output.LayerNorm"
            switch rest {
            case "attention.self.query", "attention.self.key", "attention.self.value":
                return .norm(preAttention)
            case "intermediate.dense":
                return .norm(preFFN)
            case "attention.output.dense":
                return .attentionContext(value: "\(layer).attention.self.value", input: .norm(preAttention))
            case "output.dense":
                return .gelu(up: "\(layer).intermediate.dense", input: .norm(preFFN))
            default:
                return nil
            }
        }
        // LLaMA: <prefix>layers.N.<rest>
        if let i = parts.firstIndex(of: "layers"), i + 1 < parts.count, let n = Int(parts[i + 1]), n >= 0 {
            let layer = (parts[...i].joined(separator: ".")) + ".\(n)"
            let rest = parts[(i + 2)...].joined(separator: ".")
            let preAttention = "\(layer).input_layernorm"
            let preFFN = "\(layer).post_attention_layernorm"
            switch rest {
            case "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj":
                return .norm(preAttention)
            case "mlp.gate_proj", "mlp.up_proj":
                return .norm(preFFN)
            case "self_attn.o_proj":
                return .attentionContext(value: "\(layer).self_attn.v_proj", input: .norm(preAttention))
            case "mlp.down_proj":
                return .swiGLU(gate: "\(layer).mlp.gate_proj", up: "\(layer).mlp.up_proj", input: .norm(preFFN))
            default:
                return nil
            }
        }
        return nil
    }

    /// The estimated `E[x_j²]` of the `columns` inputs of the weight `name`, or `nil` (no rule, or
    /// a source tensor missing, unreadable or of the wrong shape).
    public static func secondMoments(of name: String, columns: Int, reader: any CheckpointReader) -> [Double]? {
        guard let source = source(of: name) else { return nil }
        let loader = ImportanceLoader(reader: reader)
        guard let moments = try? loader.moments(source), moments.count == columns else { return nil }
        return moments
    }

    /// The per-column error weights of the weight `info` (``ColumnImportance/weights(secondMoments:exponent:)``),
    /// or `nil` when nothing can be estimated.
    public static func columnWeights(
        for info: TensorInfo, reader: any CheckpointReader, exponent: Double = ColumnImportance.defaultExponent
    ) -> [Float]? {
        columnWeights(for: info, axis: .last, reader: reader, exponent: exponent)
    }

    /// The per-column error weights a tensor gets under `decision`: `nil` unless its importance is
    /// `.norm` and something can be estimated. Columns are those of the decision's matrix view.
    public static func columnWeights(
        for info: TensorInfo, decision: QuantizationDecision, reader: any CheckpointReader
    ) -> [Float]? {
        guard decision.importance == .norm else { return nil }
        return columnWeights(for: info, axis: decision.axis, reader: reader, exponent: ColumnImportance.defaultExponent)
    }

    static func columnWeights(
        for info: TensorInfo, axis: QuantizationAxis, reader: any CheckpointReader, exponent: Double
    ) -> [Float]? {
        guard info.shape.count >= 2 else { return nil }
        let columns = axis.matrixShape(of: info.shape).columns
        guard let moments = secondMoments(of: info.name, columns: columns, reader: reader) else { return nil }
        return ColumnImportance.weights(secondMoments: moments, exponent: exponent)
    }

    static func indexOf(_ needle: [String], in parts: [String]) -> Int? {
        guard parts.count >= needle.count else { return nil }
        for i in 0...(parts.count - needle.count) where Array(parts[i..<(i + needle.count)]) == needle {
            return i
        }
        return nil
    }
}

/// Reads the tensors a ``ActivationImportance/Source`` needs and evaluates it.
struct ImportanceLoader {
    let reader: any CheckpointReader

    struct Missing: Error {}

    /// The floats of `name` (trying `alternatives` in order), checked to have `count` elements.
    func vector(_ names: [String], count: Int? = nil) throws -> [Float] {
        for name in names {
            guard let info = reader.tensor(named: name) else { continue }
            let values = try Dequantizer.floats(try reader.storage(of: info), info: info)
            if let count, values.count != count { throw Missing() }
            return values
        }
        throw Missing()
    }

    /// A weight matrix `[rows, columns]` with `columns == inputs`.
    func matrix(_ name: String, inputs: Int) throws -> (values: [Float], rows: Int) {
        guard let info = reader.tensor(named: name), info.shape.count == 2, info.shape[1] == inputs, inputs > 0 else {
            throw Missing()
        }
        let values = try Dequantizer.floats(try reader.storage(of: info), info: info)
        guard values.count == info.shape[0] * inputs else { throw Missing() }
        return (values, info.shape[0])
    }

    /// `Σ_k W[i,k]² m_k` for every row `i`, plus `bias_i²` when a bias is given.
    func projectedMoments(_ name: String, input: [Double], bias: [Float]?) throws -> [Double] {
        let (w, rows) = try matrix(name + ".weight", inputs: input.count)
        if let bias, bias.count != rows { throw Missing() }
        let n = input.count
        var out = [Double](repeating: 0, count: rows)
        w.withUnsafeBufferPointer { wb in
            for i in 0..<rows {
                var s = 0.0
                let base = i * n
                for k in 0..<n {
                    let x = Double(wb[base + k])
                    s += x * x * input[k]
                }
                if let bias { s += Double(bias[i]) * Double(bias[i]) }
                out[i] = s
            }
        }
        return out
    }

    /// The optional bias of the layer `name` (`name.bias`).
    func bias(_ name: String) -> [Float]? {
        try? vector([name + ".bias"])
    }

    func moments(_ source: ActivationImportance.Source) throws -> [Double] {
        switch source {
        case let .norm(prefix):
            let gamma = try vector([prefix + ".weight", prefix + ".gamma"])
            let beta = try? vector([prefix + ".bias", prefix + ".beta"], count: gamma.count)
            return gamma.indices.map { j in
                let g = Double(gamma[j]), b = Double(beta?[j] ?? 0)
                return g * g + b * b
            }
        case let .attentionContext(value, input):
            let x = try moments(input)
            return try projectedMoments(value, input: x, bias: bias(value))
        case let .gelu(up, input):
            let x = try moments(input)
            let b = bias(up)
            // Variance from the weights alone; the bias is the mean.
            let variance = try projectedMoments(up, input: x, bias: nil)
            return variance.indices.map { i in
                GaussianMoments.secondMoment(
                    of: GaussianMoments.gelu, mean: Double(b?[i] ?? 0), variance: variance[i])
            }
        case let .swiGLU(gate, up, input):
            let x = try moments(input)
            let gateVariance = try projectedMoments(gate, input: x, bias: nil)
            let gateBias = bias(gate)
            let upMoments = try projectedMoments(up, input: x, bias: bias(up))
            guard upMoments.count == gateVariance.count else { throw Missing() }
            return gateVariance.indices.map { i in
                GaussianMoments.secondMoment(
                    of: GaussianMoments.silu, mean: Double(gateBias?[i] ?? 0), variance: gateVariance[i]) * upMoments[i]
            }
        }
    }
}
