/* models/gguf_names: the one map between checkpoint (Hugging Face) names and llama.cpp's GGUF names, read both ways:
 * gguf_export.c writes by it and gguf_source.c reads by it, so a file mitten writes is a file mitten reads. */
#include "models/gguf_export_int.h"

const mt_gguf_name mt_gguf_text_layer[] = {
    {"attn_norm", "input_layernorm", false},     {"attn_q", "self_attn.q_proj", false},
    {"attn_k", "self_attn.k_proj", false},       {"attn_v", "self_attn.v_proj", false},
    {"attn_output", "self_attn.o_proj", false},  {"attn_q_norm", "self_attn.q_norm", true},
    {"attn_k_norm", "self_attn.k_norm", true},   {"ffn_norm", "post_attention_layernorm", false},
    {"ffn_gate", "mlp.gate_proj", false},        {"ffn_up", "mlp.up_proj", false},
    {"ffn_down", "mlp.down_proj", false},
};
const size_t mt_gguf_n_text_layer = MT_ARRAY_LEN(mt_gguf_text_layer);

/* InternLM2ForCausalLM's names for the same modules; its packed attention.wqkv is split into attn_q / attn_k / attn_v */
const mt_gguf_name mt_gguf_internlm2_layer[] = {
    {"attn_norm", "attention_norm", false},     {"attn_output", "attention.wo", false},
    {"ffn_norm", "ffn_norm", false},            {"ffn_gate", "feed_forward.w1", false},
    {"ffn_up", "feed_forward.w3", false},       {"ffn_down", "feed_forward.w2", false},
};
const size_t mt_gguf_n_internlm2_layer = MT_ARRAY_LEN(mt_gguf_internlm2_layer);

static const mt_gguf_name qwen2_5_block[] = {{"attn_out", "attn.proj", false}, {"ln1", "norm1", false},
                                             {"ln2", "norm2", false},          {"ffn_gate", "mlp.gate_proj", false},
                                             {"ffn_up", "mlp.up_proj", false}, {"ffn_down", "mlp.down_proj", false}};
static const mt_gguf_name qwen2_block[] = {{"attn_out", "attn.proj", false}, {"ln1", "norm1", false},
                                           {"ln2", "norm2", false},          {"ffn_up", "mlp.fc1", false},
                                           {"ffn_down", "mlp.fc2", false}};

const mt_gguf_name *mt_gguf_vision_block(bool qwen2_5, size_t *n) {
    *n = qwen2_5 ? MT_ARRAY_LEN(qwen2_5_block) : MT_ARRAY_LEN(qwen2_block);
    return qwen2_5 ? qwen2_5_block : qwen2_block;
}

const mt_gguf_name mt_gguf_merger[] = {
    {"v.post_ln", "merger.ln_q", false}, {"mm.0", "merger.mlp.0", false}, {"mm.2", "merger.mlp.2", false}};
const size_t mt_gguf_n_merger = MT_ARRAY_LEN(mt_gguf_merger);

/* Qwen3-VL's vision block (its qkv kept fused, as attn_qkv), merger, and DeepStack mergers (v.deepstack.L. with L the
 * block the level is taken after, deepstack_merger_list.K. in the checkpoint) */
const mt_gguf_name mt_gguf_qwen3vl_block[] = {
    {"attn_qkv", "attn.qkv", false}, {"attn_out", "attn.proj", false},         {"ln1", "norm1", false},
    {"ln2", "norm2", false},         {"ffn_up", "mlp.linear_fc1", false},      {"ffn_down", "mlp.linear_fc2", false}};
const size_t mt_gguf_n_qwen3vl_block = MT_ARRAY_LEN(mt_gguf_qwen3vl_block);
const mt_gguf_name mt_gguf_qwen3vl_merger[] = {
    {"v.post_ln", "merger.norm", false}, {"mm.0", "merger.linear_fc1", false}, {"mm.2", "merger.linear_fc2", false}};
const mt_gguf_name mt_gguf_qwen3vl_deepstack[] = {
    {"norm", "norm", false}, {"fc1", "linear_fc1", false}, {"fc2", "linear_fc2", false}};
const size_t mt_gguf_n_qwen3vl_merger = MT_ARRAY_LEN(mt_gguf_qwen3vl_merger);

/* InternViT's block in InternVL's original layout (vision_model.encoder.layers.N.) and transformers' (encoder.layer.N.):
 * the original's fused attn.qkv is split apart of this table; ls1 / ls2 are bare vectors, ".weight" in GGUF */
static const mt_gguf_name internvit_block[] = {
    {"attn_out", "attn.proj", false},    {"attn_q_norm", "attn.q_norm", true}, {"attn_k_norm", "attn.k_norm", true},
    {"ln1", "norm1", false},             {"ln2", "norm2", false},              {"ffn_up", "mlp.fc1", false},
    {"ffn_down", "mlp.fc2", false}};
static const mt_gguf_name internvit_hf_block[] = {
    {"attn_q", "attention.q_proj", false},  {"attn_k", "attention.k_proj", false},
    {"attn_v", "attention.v_proj", false},  {"attn_out", "attention.projection_layer", false},
    {"attn_q_norm", "attention.q_norm", true}, {"attn_k_norm", "attention.k_norm", true},
    {"ln1", "layernorm_before", false},     {"ln2", "layernorm_after", false},
    {"ffn_up", "mlp.fc1", false},           {"ffn_down", "mlp.fc2", false}};
static const mt_gguf_name internvl_proj[] = {
    {"mm.model.mlp.0", "0", false}, {"mm.model.mlp.1", "1", false}, {"mm.model.mlp.3", "3", false}};
static const mt_gguf_name internvl_hf_proj[] = {
    {"mm.model.mlp.0", "layer_norm", false}, {"mm.model.mlp.1", "linear_1", false}, {"mm.model.mlp.3", "linear_2", false}};

static const mt_gguf_internvit internvit_names[2] = {
    {"encoder.layers.", "embeddings.patch_embedding.", "embeddings.class_embedding", "embeddings.position_embedding",
     "ls1", "ls2", internvit_block, MT_ARRAY_LEN(internvit_block), internvl_proj, MT_ARRAY_LEN(internvl_proj)},
    {"encoder.layer.", "embeddings.patch_embeddings.projection.", "embeddings.cls_token",
     "embeddings.position_embeddings", "lambda_1", "lambda_2", internvit_hf_block, MT_ARRAY_LEN(internvit_hf_block),
     internvl_hf_proj, MT_ARRAY_LEN(internvl_hf_proj)},
};

const mt_gguf_internvit *mt_gguf_internvit_names(bool hf) { return &internvit_names[hf]; }

const mt_gguf_pre mt_gguf_pre_tokenizers[] = {
    {"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|"
     "\\s+(?!\\S)|\\s+",
     "qwen2"},
    {"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|"
     "\\s+(?!\\S)|\\s+",
     "llama-bpe"},
};
const size_t mt_gguf_n_pre_tokenizers = MT_ARRAY_LEN(mt_gguf_pre_tokenizers);
