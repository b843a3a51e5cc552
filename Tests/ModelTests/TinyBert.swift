import Foundation

/// A randomly initialised BERT folder (config.json + model.safetensors) written by hand, for the
/// forward-pass tests. Weights are drawn from a seeded generator so every run sees the same model.
struct TinyBert {
    let directory: URL
    let hidden = 16, heads = 4, layers = 2, intermediate = 24, positions = 20
    let vocabulary: Int

    init(modelType: String = "bert", prefix: String = "", omit: String? = nil, vocabulary: Int = 50) throws {
        self.vocabulary = vocabulary
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("qpk-tinybert-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let config: [String: Any] = [
            "model_type": modelType, "hidden_size": hidden, "num_hidden_layers": layers,
            "num_attention_heads": heads, "intermediate_size": intermediate, "layer_norm_eps": 1e-12,
            "max_position_embeddings": positions, "vocab_size": vocabulary, "type_vocab_size": 2,
            "hidden_act": "gelu", "pad_token_id": 0,
        ]
        try JSONSerialization.data(withJSONObject: config).write(to: directory.appendingPathComponent("config.json"))
        var tensors: [(String, [Int])] = [
            ("embeddings.word_embeddings.weight", [vocabulary, hidden]),
            ("embeddings.position_embeddings.weight", [positions, hidden]),
            ("embeddings.token_type_embeddings.weight", [2, hidden]),
            ("embeddings.LayerNorm.weight", [hidden]), ("embeddings.LayerNorm.bias", [hidden]),
        ]
        for i in 0..<layers {
            let p = "encoder.layer.\(i)."
            for (name, out, inp) in [("attention.self.query", hidden, hidden), ("attention.self.key", hidden, hidden),
                                     ("attention.self.value", hidden, hidden), ("attention.output.dense", hidden, hidden),
                                     ("intermediate.dense", intermediate, hidden), ("output.dense", hidden, intermediate)] {
                tensors += [(p + name + ".weight", [out, inp]), (p + name + ".bias", [out])]
            }
            for norm in ["attention.output.LayerNorm", "output.LayerNorm"] {
                tensors += [(p + norm + ".weight", [hidden]), (p + norm + ".bias", [hidden])]
            }
        }
        tensors.removeAll { $0.0 == omit }
        try writeRandomSafetensors(tensors.map { (prefix + $0.0, $0.1) }, to: directory.appendingPathComponent("model.safetensors"))
    }

    var weights: URL { directory.appendingPathComponent("model.safetensors") }
    var config: URL { directory.appendingPathComponent("config.json") }

    func remove() { try? FileManager.default.removeItem(at: directory) }
}

/// Writes `tensors` as F32 safetensors with seeded pseudo-random values (norm weights near 1).
func writeRandomSafetensors(_ tensors: [(String, [Int])], to url: URL) throws {
    var state: UInt64 = 0x9E3779B97F4A7C15
    var header: [String: Any] = [:]
    var payload = Data()
    for (name, shape) in tensors {
        let count = shape.reduce(1, *)
        var values = [Float](repeating: 0, count: count)
        for k in 0..<count {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            let uniform = Float(state >> 40) / Float(1 << 24) - 0.5
            values[k] = name.hasSuffix("LayerNorm.weight") || name.hasSuffix("norm.weight") ? 1 + 0.2 * uniform : 0.8 * uniform
        }
        let begin = payload.count
        values.withUnsafeBytes { payload.append(contentsOf: $0) }
        header[name] = ["dtype": "F32", "shape": shape, "data_offsets": [begin, payload.count]]
    }
    var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
    while json.count % 8 != 0 { json.append(0x20) }
    var file = Data()
    withUnsafeBytes(of: UInt64(json.count).littleEndian) { file.append(contentsOf: $0) }
    file.append(json)
    file.append(payload)
    try file.write(to: url)
}

/// A randomly initialised llama folder: 2 blocks, hidden 16, 4 query heads over 2 key/value heads.
struct TinyLlama {
    let directory: URL
    let hidden = 16, heads = 4, kvHeads = 2, layers = 2, intermediate = 24
    let vocabulary: Int

    init(extraConfig: [String: Any] = [:], vocabulary: Int = 40) throws {
        self.vocabulary = vocabulary
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("qpk-tinyllama-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var config: [String: Any] = [
            "model_type": "llama", "hidden_size": hidden, "num_hidden_layers": layers, "num_attention_heads": heads,
            "num_key_value_heads": kvHeads, "intermediate_size": intermediate, "rms_norm_eps": 1e-6,
            "max_position_embeddings": 32, "vocab_size": vocabulary, "hidden_act": "silu",
        ]
        config.merge(extraConfig) { $1 }
        try JSONSerialization.data(withJSONObject: config).write(to: directory.appendingPathComponent("config.json"))
        let d = hidden / heads
        var tensors: [(String, [Int])] = [("model.embed_tokens.weight", [vocabulary, hidden]), ("model.norm.weight", [hidden])]
        for i in 0..<layers {
            let p = "model.layers.\(i)."
            tensors += [(p + "self_attn.q_proj.weight", [heads * d, hidden]), (p + "self_attn.k_proj.weight", [kvHeads * d, hidden]),
                        (p + "self_attn.v_proj.weight", [kvHeads * d, hidden]), (p + "self_attn.o_proj.weight", [hidden, heads * d]),
                        (p + "mlp.gate_proj.weight", [intermediate, hidden]), (p + "mlp.up_proj.weight", [intermediate, hidden]),
                        (p + "mlp.down_proj.weight", [hidden, intermediate]),
                        (p + "input_layernorm.weight", [hidden]), (p + "post_attention_layernorm.weight", [hidden])]
        }
        try writeRandomSafetensors(tensors, to: directory.appendingPathComponent("model.safetensors"))
    }

    var weights: URL { directory.appendingPathComponent("model.safetensors") }
    var config: URL { directory.appendingPathComponent("config.json") }

    func remove() { try? FileManager.default.removeItem(at: directory) }
}
