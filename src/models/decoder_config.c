/* models/decoder_config: a decoder's config.json section read for its kind (see models/decoder.h for the table). */
#include <stdio.h>
#include <string.h>

#include "models/decoder.h"

#define MAX_LAYERS MT_DECODER_MAX_LAYERS

typedef struct kind_defaults {
    const char *name;
    bool qkv_bias, o_bias, bias_from_config, qk_norm, moe;
    bool fused_experts; /* experts as published by Qwen3-VL-MoE: gate_up_proj [E, H, 2I], down_proj [E, I, H] */
    bool always_norm_topk; /* Qwen3-VL-MoE renormalises whatever norm_topk_prob says */
    const char *qkv_bias_key; /* a config key that overrides the kind's q/k/v bias (Qwen2-MoE's qkv_bias) */
    bool shared_expert;       /* a shared expert of shared_expert_intermediate_size with a sigmoid gate */
    const char *bias_key;     /* a config key for the biases of all four projections, default qkv_bias (InternLM2's
                                 "bias") */
    const mt_decoder_names *names; /* NULL: Qwen's */
} kind_defaults;

static const mt_decoder_names qwen_names = {
    "embed_tokens.", "input_layernorm.", "post_attention_layernorm.", "self_attn.q_proj.", "self_attn.k_proj.",
    "self_attn.v_proj.", NULL, "self_attn.o_proj.", "mlp.gate_proj.", "mlp.up_proj.", "mlp.down_proj.",
    "lm_head.weight"};
/* InternLM2ForCausalLM (modeling_internlm2.py of InternLM and of InternVL 2.5): model.tok_embeddings,
 * layers.N.{attention_norm, attention.wqkv, attention.wo, ffn_norm, feed_forward.w1 / w3 / w2}, model.norm, output */
static const mt_decoder_names internlm2_names = {
    "tok_embeddings.", "attention_norm.", "ffn_norm.", NULL, NULL, NULL, "attention.wqkv.", "attention.wo.",
    "feed_forward.w1.", "feed_forward.w3.", "feed_forward.w2.", "output.weight"};

static const kind_defaults kinds[] = {
    {"qwen2", true, false, false, false, false, false, false, NULL, false, NULL, NULL},
    {"qwen2_vl", true, false, false, false, false, false, false, NULL, false, NULL, NULL},
    {"qwen3", false, false, true, true, false, false, false, NULL, false, NULL, NULL},
    {"qwen3_vl", false, false, true, true, false, false, false, NULL, false, NULL, NULL},
    {"qwen3_moe", false, false, true, true, true, false, false, NULL, false, NULL, NULL},
    {"qwen3_vl_moe", false, false, true, true, true, true, true, NULL, false, NULL, NULL},
    {"qwen2_moe", true, false, false, false, true, false, false, "qkv_bias", true, NULL, NULL},
    /* LlamaConfig: attention_bias on all four projections (default none), head_dim from the config */
    {"llama", false, false, true, false, false, false, false, NULL, false, NULL, NULL},
    /* InternLM2Config: bias defaults to true (InternVL 2.5's configs say false); head_dim is always hidden / heads */
    {"internlm2", true, true, false, false, false, false, false, NULL, false, "bias", &internlm2_names},
};

/* Which layers slide when use_sliding_window is true, as transformers 5.0.0.dev0 (git ccc7d90bcb) decides it:
 * Qwen2Config / Qwen2VLTextConfig / Qwen3Config take layer_types, else mark "sliding_attention" the layers
 * i >= max_window_layers (default 28 in Qwen3Config; Qwen2's 28 and Qwen2-VL's 80 differ, so a qwen2 config must say);
 * Qwen3MoeAttention slides every layer and reads neither field. A kind not listed refuses use_sliding_window. */
typedef enum { SLIDE_LISTED, SLIDE_ALL } slide_rule;
static const struct slide_kind {
    const char *kind;
    slide_rule rule;
    int64_t dflt_full; /* max_window_layers when absent; -1: none (the config must give it) */
} slide_kinds[] = {{"qwen2", SLIDE_LISTED, -1}, {"qwen3", SLIDE_LISTED, 28}, {"qwen3_moe", SLIDE_ALL, 0}};

/* One layer_types entry: 1 sliding, 0 full, -1 refused (recorded in r). */
static int layer_slides(mt_cfg *r, const cJSON *e, int64_t i) {
    if (cJSON_IsString(e) && strcmp(e->valuestring, "full_attention") == 0) return 0;
    if (cJSON_IsString(e) && strcmp(e->valuestring, "sliding_attention") == 0) return 1;
    if (cJSON_IsString(e))
        mt_cfg_fail(r, MT_ERR_UNSUPPORTED, "layer_types[%lld] = \"%.60s\": only \"full_attention\" and "
                    "\"sliding_attention\" are supported", (long long)i, e->valuestring);
    else
        mt_cfg_fail(r, MT_ERR_FORMAT, "layer_types[%lld] must be a string", (long long)i);
    return -1;
}

/* use_sliding_window, sliding_window, max_window_layers and layer_types into c->window and c->window_layer. The
 * window is sliding_window (default 4096) when use_sliding_window is true, none when it is false or sliding_window
 * is null (transformers then attends fully); layer_types must then mark no layer "sliding_attention" (transformers
 * fails on it). A layer_types that contradicts max_window_layers while the window is on is refused: transformers
 * before layer_types (4.52 and older; git 163138a911 added it) reads one, later versions the other. */
static void read_window(mt_cfg *r, const char *kind, const cJSON *text, mt_decoder_cfg *c) {
    const struct slide_kind *s = NULL;
    for (size_t i = 0; i < MT_ARRAY_LEN(slide_kinds); i++)
        if (strcmp(slide_kinds[i].kind, kind) == 0) s = &slide_kinds[i];
    bool use = mt_cfg_bool_opt(r, text, "use_sliding_window", false);
    if (r->st) return;
    if (use && !s) {
        mt_cfg_fail(r, MT_ERR_UNSUPPORTED, "use_sliding_window = true is not supported");
        return;
    }
    if (!s) return;
    const cJSON *sw = cJSON_GetObjectItemCaseSensitive(text, "sliding_window");
    int64_t w = use && !cJSON_IsNull(sw) ? mt_cfg_int_opt(r, text, "sliding_window", 1, INT64_C(1) << 40, 4096) : 0;
    if (r->st) return;
    c->window = w;
    if (s->rule == SLIDE_ALL) {
        for (int64_t l = 0; l < c->n_layers; l++) c->window_layer[l] = w > 0;
        return;
    }
    const cJSON *mwl = cJSON_GetObjectItemCaseSensitive(text, "max_window_layers");
    bool have_full = mwl && !cJSON_IsNull(mwl);
    int64_t full = w ? mt_cfg_int_opt(r, text, "max_window_layers", 0, INT64_C(1) << 40, s->dflt_full) : 0;
    const cJSON *lt = cJSON_GetObjectItemCaseSensitive(text, "layer_types");
    if (r->st) return;
    if (lt && !cJSON_IsNull(lt)) {
        if (!cJSON_IsArray(lt) || cJSON_GetArraySize(lt) != c->n_layers) {
            mt_cfg_fail(r, MT_ERR_FORMAT, "field \"layer_types\" must be a list of num_hidden_layers = %lld entries",
                        (long long)c->n_layers);
            return;
        }
        int64_t i = 0;
        const cJSON *e;
        cJSON_ArrayForEach(e, lt) {
            int slide = layer_slides(r, e, i);
            if (slide < 0) return;
            if (slide && !w) {
                mt_cfg_fail(r, MT_ERR_FORMAT, "layer_types[%lld] is \"sliding_attention\" but %s", (long long)i,
                            use ? "sliding_window is null" : "use_sliding_window is false");
                return;
            }
            if (w && have_full && slide != (i >= full)) {
                mt_cfg_fail(r, MT_ERR_FORMAT, "layer_types[%lld] contradicts max_window_layers = %lld (layers from "
                            "max_window_layers on slide)", (long long)i, (long long)full);
                return;
            }
            c->window_layer[i++] = (uint8_t)slide;
        }
        return;
    }
    if (w && full < 0) {
        mt_cfg_fail(r, MT_ERR_FORMAT, "use_sliding_window is true but neither \"layer_types\" nor "
                    "\"max_window_layers\" says which layers slide");
        return;
    }
    for (int64_t l = 0; l < c->n_layers; l++) c->window_layer[l] = w > 0 && l >= full;
}

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

mt_status mt_decoder_kind(const mt_composition *c, const cJSON *text, const char *path, const char *what,
                          const char **kind, mt_err *err) {
    *kind = c->decoder_kind;
    if (!c->decoder_kinds) return MT_OK;
    const char *key = c->decoder_kind_key;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(text, key);
    if (cJSON_IsArray(v)) v = cJSON_GetArrayItem(v, 0);
    if (!v || cJSON_IsNull(v)) {
        if (*kind) return MT_OK;
        return mt_err_set(err, MT_ERR_FORMAT, "%s: %s: missing field \"%s\" (which language model %s uses)", path,
                          what, key, c->name);
    }
    if (!cJSON_IsString(v))
        return mt_err_set(err, MT_ERR_FORMAT, "%s: %s: field \"%s\" must be a string%s", path, what, key,
                          strcmp(key, "architectures") == 0 ? " list" : "");
    char known[256] = "";
    size_t len = 0;
    for (const char *const *p = c->decoder_kinds; p[0] && p[1]; p += 2) {
        if (strcmp(p[0], v->valuestring) == 0) {
            *kind = p[1];
            return MT_OK;
        }
        if (len < sizeof known) len += (size_t)snprintf(known + len, sizeof known - len, "%s%s", len ? ", " : "", p[0]);
    }
    return mt_err_set(err, MT_ERR_UNSUPPORTED, "%s: %s: %s \"%.80s\" is not a language model %s runs (accepted: %s)",
                      path, what, key, v->valuestring, c->name, known);
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
    const cJSON *hd = k->names ? NULL : cJSON_GetObjectItemCaseSensitive(text, "head_dim");
    c->head_dim = cJSON_IsNull(hd) || !hd ? dflt_hd : mt_cfg_int_opt(&r, text, "head_dim", 2, 4096, dflt_hd);
    if (!r.st && (c->head_dim < 2 || c->head_dim % 2))
        return mt_err_set(err, MT_ERR_FORMAT, "%s: head_dim %lld (hidden_size %lld / %lld heads) must be even", path,
                          (long long)c->head_dim, (long long)c->hidden, (long long)c->n_heads);
    c->act = mt_cfg_act(&r, text, "silu");
    c->attn_dropout = mt_cfg_num_opt(&r, text, "attention_dropout", 0.0, 1.0, 0.0);
    mt_cfg_dtype(&r, text);
    if (root != text) { /* a nested config's root has its own dtype; its messages name no section */
        mt_cfg r_root = {path, "", err, r.st};
        mt_cfg_dtype(&r_root, root);
        r.st = r_root.st;
    }
    c->qkv_bias = k->qkv_bias;
    if (k->qkv_bias_key) c->qkv_bias = mt_cfg_bool_opt(&r, text, k->qkv_bias_key, k->qkv_bias);
    c->o_bias = k->o_bias;
    if (k->bias_from_config) c->qkv_bias = c->o_bias = mt_cfg_bool_opt(&r, text, "attention_bias", false);
    if (k->bias_key) c->qkv_bias = c->o_bias = mt_cfg_bool_opt(&r, text, k->bias_key, k->qkv_bias);
    c->names = k->names ? k->names : &qwen_names;
    /* InternVL's own InternLM2 code has a V2PE position scheme mitten does not implement */
    const char *pos_ver = k->names ? mt_cfg_str_opt(&r, text, "rope_pos_id_version", "default") : "default";
    if (!r.st && strcmp(pos_ver, "default") != 0)
        mt_cfg_fail(&r, MT_ERR_UNSUPPORTED, "rope_pos_id_version \"%.40s\" is not supported (only \"default\")",
                    pos_ver);
    if (mt_cfg_bool_opt(&r, text, "mlp_bias", false))
        mt_cfg_fail(&r, MT_ERR_UNSUPPORTED, "mlp_bias = true is not supported");
    read_window(&r, kind, text, c);
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
