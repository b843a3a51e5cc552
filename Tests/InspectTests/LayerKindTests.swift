import Foundation
import Testing
@testable import Inspect

@Suite("LayerKind: what a tensor does, from its name")
struct LayerKindTests {
    @Test("BERT (Hugging Face) names", arguments: [
        ("encoder.layer.0.attention.self.query.weight", LayerKind.query),
        ("encoder.layer.0.attention.self.key.bias", .key),
        ("encoder.layer.11.attention.self.value.weight", .value),
        ("encoder.layer.0.attention.output.dense.weight", .attentionOutput),
        ("encoder.layer.0.attention.output.LayerNorm.weight", .norm),
        ("encoder.layer.0.intermediate.dense.weight", .ffnUp),
        ("encoder.layer.0.output.dense.weight", .ffnDown),
        ("encoder.layer.0.output.LayerNorm.bias", .norm),
        ("embeddings.word_embeddings.weight", .embedding),
        ("embeddings.LayerNorm.weight", .norm),
        ("pooler.dense.weight", .other),
    ])
    func bert(name: String, kind: LayerKind) {
        #expect(LayerKind.of(name) == kind)
    }

    @Test("llama, GPT-2 and GGUF names", arguments: [
        ("model.layers.3.self_attn.q_proj.weight", LayerKind.query),
        ("model.layers.3.self_attn.k_proj.weight", .key),
        ("model.layers.3.self_attn.v_proj.weight", .value),
        ("model.layers.3.self_attn.o_proj.weight", .attentionOutput),
        ("model.layers.3.mlp.gate_proj.weight", .ffnGate),
        ("model.layers.3.mlp.up_proj.weight", .ffnUp),
        ("model.layers.3.mlp.down_proj.weight", .ffnDown),
        ("model.layers.3.input_layernorm.weight", .norm),
        ("model.embed_tokens.weight", .embedding),
        ("layers.0.attention.wq.weight", .query),
        ("layers.0.feed_forward.w1.weight", .ffnGate),
        ("layers.0.feed_forward.w2.weight", .ffnDown),
        ("layers.0.feed_forward.w3.weight", .ffnUp),
        ("h.0.attn.c_attn.weight", .qkv),
        ("h.0.attn.c_proj.weight", .attentionOutput),
        ("h.0.mlp.c_fc.weight", .ffnUp),
        ("h.0.mlp.c_proj.weight", .ffnDown),
        ("h.0.ln_1.weight", .norm),
        ("blk.0.attn_q.weight", .query),
        ("blk.0.ffn_down.weight", .ffnDown),
        ("lm_head.weight", .other),
    ])
    func llama(name: String, kind: LayerKind) {
        #expect(LayerKind.of(name) == kind)
    }

    @Test("Keras names (MultiHeadAttention, keras-nlp, Keras 3 paths)", arguments: [
        ("model_weights/mha/mha/query/kernel:0", LayerKind.query),
        ("model_weights/mha/mha/attention_output/kernel:0", .attentionOutput),
        ("layers/transformer_encoder/_self_attention_layer/_key_dense/vars/0", .key),
        ("layers/transformer_encoder/_self_attention_layer/_output_dense/vars/0", .attentionOutput),
        ("layers/transformer_encoder/_feedforward_intermediate_dense/vars/0", .ffnUp),
        ("layers/transformer_encoder/_feedforward_output_dense/vars/0", .ffnDown),
        ("layers/transformer_encoder/_feedforward_layer_norm/vars/0", .norm),
        ("model_weights/dense_1/dense_1/kernel:0", .other),
        ("model_weights/conv2d/conv2d/kernel:0", .other),
    ])
    func keras(name: String, kind: LayerKind) {
        #expect(LayerKind.of(name) == kind)
    }
}
