import Foundation
import Testing
import Formats
import QPKCore
@testable import Model

private let tokenizerFixtures = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("fixtures/tokenizers")

/// A model folder seen as llama.cpp names it (spec/gguf.md §8).
@Suite struct LlamaCppExportTests {
    private func folder(_ directory: URL, tokenizer: String) throws -> ModelFolder {
        try FileManager.default.copyItem(
            at: tokenizerFixtures.appendingPathComponent("\(tokenizer).json"), to: directory.appendingPathComponent("tokenizer.json"))
        return try ModelFolder(directory)
    }

    private func value(_ key: String, in checkpoint: LlamaCppCheckpoint) -> GGUFValue? {
        checkpoint.ggufMetadata.first { $0.key == key }?.value
    }

    @Test func bertNamesFollowLlamaCppAndUnusedTensorsAreDropped() throws {
        let config = try ModelConfig(contentsOf: try TinyBert().config)
        let bert = LlamaCppArchitecture.bert
        #expect(bert.rule(for: "embeddings.word_embeddings.weight", config: config) == .renamed("token_embd.weight", ropeHeads: nil))
        #expect(bert.rule(for: "bert.encoder.layer.11.attention.output.LayerNorm.gamma", config: config)
                == .renamed("blk.11.attn_output_norm.weight", ropeHeads: nil))
        #expect(bert.rule(for: "encoder.layer.0.output.dense.bias", config: config) == .renamed("blk.0.ffn_down.bias", ropeHeads: nil))
        #expect(bert.rule(for: "encoder.layer.0.intermediate.dense.weight", config: config) == .renamed("blk.0.ffn_up.weight", ropeHeads: nil))
        #expect(bert.rule(for: "pooler.dense.weight", config: config) == .dropped)
        #expect(bert.rule(for: "embeddings.position_ids", config: config) == .dropped)
        #expect(bert.rule(for: "encoder.layer.0.attention.self.rotary.weight", config: config) == nil)
    }

    @Test func llamaQueryAndKeyCarryTheirHeadCountsForTheRopeOrder() throws {
        let tiny = try TinyLlama()
        defer { try? FileManager.default.removeItem(at: tiny.directory) }
        let config = try ModelConfig(contentsOf: tiny.directory.appendingPathComponent("config.json"))
        let llama = LlamaCppArchitecture.llama
        #expect(llama.rule(for: "model.layers.3.self_attn.q_proj.weight", config: config) == .renamed("blk.3.attn_q.weight", ropeHeads: 4))
        #expect(llama.rule(for: "model.layers.3.self_attn.k_proj.weight", config: config) == .renamed("blk.3.attn_k.weight", ropeHeads: 2))
        #expect(llama.rule(for: "model.layers.3.self_attn.v_proj.weight", config: config) == .renamed("blk.3.attn_v.weight", ropeHeads: nil))
        #expect(llama.rule(for: "lm_head.weight", config: config) == .renamed("output.weight", ropeHeads: nil))
        #expect(llama.rule(for: "model.norm.weight", config: config) == .renamed("output_norm.weight", ropeHeads: nil))
        #expect(llama.rule(for: "model.layers.0.self_attn.rotary_emb.inv_freq", config: config) == .dropped)
    }

    @Test func ropeOrderInterleavesEachHeadsHalves() {
        // Two heads of width 4: rows (0, 2) and (1, 3) become adjacent pairs, per head.
        #expect(LlamaCppRopePermutation.sourceRows(rows: 8, heads: 2) == [0, 2, 1, 3, 4, 6, 5, 7])
        #expect(LlamaCppRopePermutation.sourceRows(rows: 6, heads: 2) == nil)  // odd head width
        let rows: [UInt16] = [10, 11, 12, 13, 20, 21, 22, 23]
        let permuted = rows.withUnsafeBytes { LlamaCppRopePermutation.apply($0, rows: 4, heads: 1) }
        let values = permuted.map { bytes in bytes.withUnsafeBytes { Array($0.bindMemory(to: UInt16.self)) } }
        #expect(values == [10, 11, 20, 21, 12, 13, 22, 23])
    }

    @Test func llamaFolderHasLlamaCppNamesMetadataAndReorderedQueries() throws {
        let tiny = try TinyLlama(vocabulary: 700)
        defer { try? FileManager.default.removeItem(at: tiny.directory) }
        let model = try folder(tiny.directory, tokenizer: "bpe-llama3")
        let weights = try Checkpoint.open(tiny.directory.appendingPathComponent("model.safetensors"))
        let checkpoint = try LlamaCppCheckpoint(folder: model, weights: weights)
        #expect(checkpoint.tensors.count == weights.tensors.count)
        #expect(checkpoint.tensors.contains { $0.name == "blk.1.ffn_gate.weight" })
        #expect(value("general.architecture", in: checkpoint) == .string("llama"))
        #expect(value("llama.attention.head_count_kv", in: checkpoint) == .uint32(2))
        #expect(value("llama.rope.dimension_count", in: checkpoint) == .uint32(4))
        #expect(value("tokenizer.ggml.model", in: checkpoint) == .string("gpt2"))
        #expect(value("tokenizer.ggml.pre", in: checkpoint) == .string("llama-bpe"))
        #expect(checkpoint.vocabulary.tokens.count == 700)
        #expect(!checkpoint.vocabulary.merges.isEmpty)

        let query = try #require(checkpoint.tensor(named: "blk.0.attn_q.weight"))
        let source = try #require(weights.tensor(named: "model.layers.0.self_attn.q_proj.weight"))
        let original = try weights.denseBytes(of: source).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        guard case let .dense(stored) = try checkpoint.storage(of: query) else { Issue.record("not dense"); return }
        let reordered = stored.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        let order = try #require(LlamaCppRopePermutation.sourceRows(rows: 16, heads: 4))
        for (row, from) in order.enumerated() {
            #expect(Array(reordered[(row * 16)..<(row * 16 + 16)]) == Array(original[(from * 16)..<(from * 16 + 16)]))
        }
    }

    @Test func bertFolderStoresWordPieceWithPhantomSpaces() throws {
        let tiny = try TinyBert(vocabulary: 700)
        defer { tiny.remove() }
        let checkpoint = try LlamaCppCheckpoint(folder: try folder(tiny.directory, tokenizer: "wordpiece-bert"), weights: try Checkpoint.open(tiny.weights))
        let vocabulary = checkpoint.vocabulary
        #expect(vocabulary.model == "bert")
        #expect(vocabulary.tokens[2] == "[CLS]" && vocabulary.tokenTypes[2] == .control)
        #expect(vocabulary.tokens.allSatisfy { $0.hasPrefix("[") || !$0.hasPrefix("##") })
        #expect(vocabulary.tokens.filter { $0.hasPrefix("\u{2581}") }.count > 100)
        #expect(value("bert.attention.causal", in: checkpoint) == .bool(false))
        #expect(value("tokenizer.ggml.seperator_token_id", in: checkpoint) == .uint32(3))
    }

    @Test func aTokenizerLargerThanTheEmbeddingIsRefused() throws {
        let tiny = try TinyBert()  // 50 embedding rows, a 700-token tokenizer
        defer { tiny.remove() }
        let model = try folder(tiny.directory, tokenizer: "wordpiece-bert")
        #expect(throws: ModelError.self) { try LlamaCppCheckpoint(folder: model, weights: try Checkpoint.open(tiny.weights)) }
    }

    @Test func aTensorWithoutALlamaCppNameStopsTheExport() throws {
        let tiny = try TinyBert(vocabulary: 700)
        defer { tiny.remove() }
        try writeRandomSafetensors([("embeddings.word_embeddings.weight", [700, 16]), ("adapter.weight", [4, 4])], to: tiny.weights)
        let model = try folder(tiny.directory, tokenizer: "wordpiece-bert")
        #expect(throws: ModelError.noLlamaCppTensor(tiny.weights.path, tensor: "adapter.weight", architecture: "bert")) {
            try LlamaCppCheckpoint(folder: model, weights: try Checkpoint.open(tiny.weights))
        }
    }
}
