import Foundation

/// A randomly initialised BERT folder (config.json + model.safetensors) written by hand, for the
/// forward-pass tests. Weights are drawn from a seeded generator so every run sees the same model.
struct TinyBert {
    let directory: URL
    let hidden = 16, heads = 4, layers = 2, intermediate = 24, vocabulary = 50, positions = 20

    init(modelType: String = "bert", prefix: String = "", omit: String? = nil) throws {
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
        var state: UInt64 = 0x9E3779B97F4A7C15
        var header: [String: Any] = [:]
        var payload = Data()
        for (name, shape) in tensors {
            let count = shape.reduce(1, *)
            var values = [Float](repeating: 0, count: count)
            for k in 0..<count {
                state = state &* 6364136223846793005 &+ 1442695040888963407
                let uniform = Float(state >> 40) / Float(1 << 24) - 0.5
                values[k] = name.hasSuffix("LayerNorm.weight") ? 1 + 0.2 * uniform : 0.8 * uniform
            }
            let begin = payload.count
            values.withUnsafeBytes { payload.append(contentsOf: $0) }
            header[prefix + name] = ["dtype": "F32", "shape": shape, "data_offsets": [begin, payload.count]]
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while json.count % 8 != 0 { json.append(0x20) }
        var file = Data()
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { file.append(contentsOf: $0) }
        file.append(json)
        file.append(payload)
        try file.write(to: directory.appendingPathComponent("model.safetensors"))
    }

    var weights: URL { directory.appendingPathComponent("model.safetensors") }
    var config: URL { directory.appendingPathComponent("config.json") }

    func remove() { try? FileManager.default.removeItem(at: directory) }
}
