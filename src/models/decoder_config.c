/* models/decoder_config: a decoder's config.json section read for its kind (see models/decoder.h for the table). */
#include <stdio.h>
#include <string.h>

#include "models/decoder.h"

#define MAX_LAYERS 1024

typedef struct kind_defaults {
    const char *name;
    bool qkv_bias, o_bias, bias_from_config, qk_norm, moe;
    bool fused_experts; /* experts as published by Qwen3-VL-MoE: gate_up_proj [E, H, 2I], down_proj [E, I, H] */
    bool always_norm_topk; /* Qwen3-VL-MoE renormalises whatever norm_topk_prob says */
    const char *qkv_bias_key; /* a config key that overrides the kind's q/k/v bias (Qwen2-MoE's qkv_bias) */
    bool shared_expert;       /* a shared expert of shared_expert_intermediate_size with a sigmoid gate */
} kind_defaults;

static const kind_defaults kinds[] = {
    {"qwen2", true, false, false, false, false, false, false, NULL, false},
    {"qwen3", false, false, true, true, false, false, false, NULL, false},
    {"qwen3_moe", false, false, true, true, true, false, false, NULL, false},
    {"qwen3_vl_moe", false, false, true, true, true, true, true, NULL, false},
    {"qwen2_moe", true, false, false, false, true, false, false, "qkv_bias", true},
};

/* A key of the text section, else of the root (4.x configs of VL models keep some text keys at the top). */
static const cJSON *either(const cJSON *root, const cJSON *text, const char *key) {
    return cJSON_GetObjectItemCaseSensitive(text, key) ? text : root;
}

/* The defaults are Qwen3MoeConfig's and Qwen2MoeConfig's (norm_topk_prob false, decoder_sparse_step 1, no
 * mlp_only_layers); sizes must be given. */
static void read_moe(mt_cfg *r, const cJSON *text, bool shared, mt_decoder_cfg *c) {
    c->n_experts = mt_cfg_int(r, text, "num_experts", 1, 1 << 16);
    c->top_k = mt_cfg_int(r, text, "num_experts_per_tok", 1, 1 << 16);
    c->moe_inter = mt_cfg_int(r, text, "moe_intermediate_size", 1, 1 << 20);
    if (shared) c->shared_inter = mt_cfg_int(r, text, "shared_expert_intermediate_size", 1, 1 << 20);
    c->sparse_step = mt_cfg_int_opt(r, text, "decoder_sparse_step", 1, MAX_LAYERS, 1);
    c->norm_topk = mt_cfg_bool_opt(r, text, "norm_topk_prob", false);
    int64_t only[MAX_LAYERS];
    size_t n = mt_cfg_int_list(r, text, "mlp_only_layers", 0, INT64_MAX, only, MAX_LAYERS);
    if (r->st) return;
    if (c->top_k > c->n_experts) {
        mt_cfg_fail(r, MT_ERR_FORMAT, "num_experts_per_tok %lld is more than num_experts %lld", (long long)c->top_k,
                    (long long)c->n_experts);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (only[i] >= c->n_layers) {
            mt_cfg_fail(r, MT_ERR_FORMAT, "mlp_only_layers names layer %lld of %lld", (long long)only[i],
                        (long long)c->n_layers);
            return;
        }
        c->dense_layer[only[i]] = 1;
    }
    for (int64_t l = 0; l < c->n_layers; l++)
        if ((l + 1) % c->sparse_step) c->dense_layer[l] = 1;
}

mt_status mt_decoder_config(const char *kind, const cJSON *root, const cJSON *text, const char *path, const char *what,
                            mt_decoder_cfg *c, mt_err *err) {
    const kind_defaults *k = NULL;
    for (size_t i = 0; i < MT_ARRAY_LEN(kinds); i++)
        if (strcmp(kinds[i].name, kind) == 0) k = &kinds[i];
    if (!k) return mt_err_set(err, MT_ERR_INTERNAL, "decoder kind \"%s\" is unknown", kind);
    mt_cfg r = {path, what, err, MT_OK};
    *c = (mt_decoder_cfg){0};
    c->hidden = mt_cfg_int(&r, text, "hidden_size", 1, 1 << 17);
    c->inter = mt_cfg_int_opt(&r, text, "intermediate_size", 1, 1 << 20, k->moe ? 1 : 0);
    c->n_layers = mt_cfg_int(&r, text, "num_hidden_layers", 1, MAX_LAYERS);
    c->n_heads = mt_cfg_int(&r, text, "num_attention_heads", 1, 1024);
    c->n_kv = mt_cfg_int_opt(&r, text, "num_key_value_heads", 1, 1024, c->n_heads);
    c->vocab = mt_cfg_int(&r, text, "vocab_size", 1, 1 << 24);
    c->rms_eps = (float)mt_cfg_num_opt(&r, text, "rms_norm_eps", 1e-12, 1e-1, 1e-6);
    c->max_positions = mt_cfg_int_opt(&r, text, "max_position_embeddings", 1, INT64_C(1) << 32, 32768);
    if (r.st) return r.st;
    if (c->inter == 0) return mt_err_set(err, MT_ERR_FORMAT, "%s: missing field \"intermediate_size\"", path);
    if (c->n_heads % c->n_kv)
        return mt_err_set(err, MT_ERR_FORMAT, "%s: %lld attention heads are not a multiple of %lld KV heads", path,
                          (long long)c->n_heads, (long long)c->n_kv);
    int64_t dflt_hd = c->hidden % c->n_heads ? 0 : c->hidden / c->n_heads;
    const cJSON *hd = cJSON_GetObjectItemCaseSensitive(text, "head_dim");
    c->head_dim = cJSON_IsNull(hd) ? dflt_hd : mt_cfg_int_opt(&r, text, "head_dim", 2, 4096, dflt_hd);
    if (!r.st && (c->head_dim < 2 || c->head_dim % 2))
        return mt_err_set(err, MT_ERR_FORMAT, "%s: head_dim %lld (hidden_size %lld / %lld heads) must be even", path,
                          (long long)c->head_dim, (long long)c->hidden, (long long)c->n_heads);
    const char *act = mt_cfg_str_opt(&r, text, "hidden_act", "silu");
    if (!r.st && !mt_act_parse(act, &c->act))
        return mt_err_set(err, MT_ERR_UNSUPPORTED, "%s: hidden_act \"%s\" is not supported", path, act);
    c->qkv_bias = k->qkv_bias;
    if (k->qkv_bias_key) c->qkv_bias = mt_cfg_bool_opt(&r, text, k->qkv_bias_key, k->qkv_bias);
    c->o_bias = k->o_bias;
    if (k->bias_from_config) c->qkv_bias = c->o_bias = mt_cfg_bool_opt(&r, text, "attention_bias", false);
    if (mt_cfg_bool_opt(&r, text, "mlp_bias", false))
        mt_cfg_fail(&r, MT_ERR_UNSUPPORTED, "mlp_bias = true is not supported");
    if (mt_cfg_bool_opt(&r, text, "use_sliding_window", false))
        mt_cfg_fail(&r, MT_ERR_UNSUPPORTED, "use_sliding_window = true is not supported");
    c->qk_norm = k->qk_norm;
    c->tied = mt_cfg_bool_opt(&r, either(root, text, "tie_word_embeddings"), "tie_word_embeddings", false);
    const cJSON *rope_src = text;
    if (!cJSON_GetObjectItemCaseSensitive(text, "rope_theta") && !cJSON_GetObjectItemCaseSensitive(text, "rope_scaling") &&
        !cJSON_GetObjectItemCaseSensitive(text, "rope_parameters"))
        rope_src = root;
    mt_cfg_rope(&r, rope_src, c->head_dim, c->max_positions, &c->rope);
    if (k->moe) {
        c->dense_layer = mt_calloc((size_t)c->n_layers, 1);
        if (!c->dense_layer) return mt_err_set(err, MT_ERR_NOMEM, "out of memory");
        read_moe(&r, text, k->shared_expert, c);
        c->fused_experts = k->fused_experts;
        if (k->always_norm_topk) c->norm_topk = true;
    }
    if (r.st) {
        mt_free(c->dense_layer);
        c->dense_layer = NULL;
    }
    return r.st;
}
