/* models/qwen2_vl: Qwen2-VL and Qwen2.5-VL (Qwen2ForCausalLM decoder with M-RoPE, NaViT-style vision tower,
 * 2x2 patch merger).
 *
 * Reference: transformers 4.5x, models/qwen2_5_vl/modeling_qwen2_5_vl.py and models/qwen2_vl/modeling_qwen2_vl.py
 * (Qwen2_5_VisionTransformerPretrainedModel.get_window_index / rot_pos_emb, Qwen2_5_VLModel.get_rope_index).
 *
 * Shapes: N patches of one image (t * h * w in merge-block order), P = 3 * temporal * patch^2 pixel values per
 * patch, E vision width, M = merge^2, T tokens, H text hidden, V vocabulary.
 *
 * The two generations differ only in the vision block:
 *     | part          | Qwen2-VL                     | Qwen2.5-VL                                   |
 *     | block norms   | LayerNorm (w, b), eps 1e-6   | RMSNorm (w), eps 1e-6                        |
 *     | block MLP     | fc1 -> quick_gelu -> fc2     | down(silu(gate) * up), with biases           |
 *     | attention     | full, per image              | windows of window_size pixels, except the    |
 *     |               |                              | fullatt_block_indexes blocks                 |
 *     | merger ln_q   | LayerNorm                    | RMSNorm                                      |
 * Checkpoints name tensors "model.layers.*" / "visual.*" (transformers < 4.52) or "model.language_model.*" /
 * "model.visual.*" (later saves); both are read.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/json.h"
#include "media/qwen_vision_pre.h"
#include "models/model.h"
#include "nn/nn.h"

#define MAX_LAYERS 512

typedef struct vision_block {
    mt_norm norm1, norm2;
    mt_linear qkv;     /* as stored; the forward uses its row ranges q, k, v */
    mt_linear q, k, v, proj;
    mt_linear gate, up, down; /* Qwen2.5-VL */
    mt_linear fc1, fc2;       /* Qwen2-VL */
    bool full_attention;
} vision_block;

typedef struct text_layer {
    mt_norm ln1, ln2;
    mt_linear q, k, v, o, gate, up, down;
} text_layer;

typedef struct qwen2_vl {
    bool v2_5;
    /* vision */
    int64_t depth, width, heads, mlp_width, patch, temporal, merge, in_chans, window, out_hidden;
    mt_act vision_act;
    mt_tensor patch_embed; /* [E, P] */
    vision_block *blocks;
    mt_norm merger_norm;
    mt_linear merger_fc1, merger_fc2;
    /* text */
    int64_t hidden, inter, n_layers, n_heads, n_kv, head_dim, vocab;
    double rope_theta;
    int64_t sections[3];
    float rms_eps;
    mt_tensor embed, lm_head;
    text_layer *layers;
    mt_norm final_norm;
    mt_qwen_preproc_cfg pre;
} qwen2_vl;

/* ---- config ---- */

typedef struct cfg_reader {
    const char *path;
    mt_err *err;
    mt_status st;
} cfg_reader;

static int64_t req_int(cfg_reader *r, const cJSON *o, const char *key, int64_t lo, int64_t hi) {
    int64_t v = 0;
    if (!r->st) r->st = mt_json_int_req(o, key, r->path, lo, hi, &v, r->err);
    return v;
}

static int64_t opt_int(cfg_reader *r, const cJSON *o, const char *key, int64_t lo, int64_t hi, int64_t dflt) {
    int64_t v = dflt;
    if (!r->st) r->st = mt_json_int_opt(o, key, r->path, lo, hi, &v, r->err);
    return v;
}

static double opt_num(cfg_reader *r, const cJSON *o, const char *key, double lo, double hi, double dflt) {
    double v = dflt;
    if (!r->st) r->st = mt_json_num_opt(o, key, r->path, lo, hi, &v, r->err);
    return v;
}

static mt_status read_rope(cfg_reader *r, const cJSON *text, qwen2_vl *q) {
    /* transformers 4.x: rope_theta + rope_scaling{type|rope_type, mrope_section}; 5.x: rope_parameters{...} */
    const cJSON *rp = cJSON_GetObjectItemCaseSensitive(text, "rope_parameters");
    const cJSON *rs = cJSON_GetObjectItemCaseSensitive(text, "rope_scaling");
    q->rope_theta = opt_num(r, text, "rope_theta", 1.0, 1e12, 1000000.0);
    if (cJSON_IsObject(rp)) q->rope_theta = opt_num(r, rp, "rope_theta", 1.0, 1e12, q->rope_theta);
    const cJSON *src = cJSON_IsObject(rp) ? rp : rs;
    if (r->st) return r->st;
    if (!cJSON_IsObject(src))
        return mt_err_set(r->err, MT_ERR_FORMAT, "%s: missing \"rope_scaling\" with \"mrope_section\"", r->path);
    const char *type = NULL;
    if (mt_json_str_opt(src, "rope_type", r->path, &type, r->err) || (!type && mt_json_str_opt(src, "type", r->path, &type, r->err)))
        return r->err->code;
    if (type && strcmp(type, "mrope") != 0 && strcmp(type, "default") != 0)
        return mt_err_set(r->err, MT_ERR_UNSUPPORTED, "%s: rope type \"%s\" is not supported (mrope, default)", r->path,
                          type);
    size_t n = 0;
    mt_status st = mt_json_int_array_opt(src, "mrope_section", r->path, 0, 4096, q->sections, 3, &n, r->err);
    if (st) return st;
    if (n != 3 || q->sections[0] + q->sections[1] + q->sections[2] != q->head_dim / 2)
        return mt_err_set(r->err, MT_ERR_FORMAT,
                          "%s: field \"mrope_section\" must be 3 values summing to head_dim / 2 = %lld", r->path,
                          (long long)(q->head_dim / 2));
    return MT_OK;
}

static mt_status read_config(mt_model *m, const cJSON *cfg, const char *path, qwen2_vl *q, mt_err *err) {
    cfg_reader r = {path, err, MT_OK};
    const cJSON *tc = cJSON_GetObjectItemCaseSensitive(cfg, "text_config");
    const cJSON *text = cJSON_IsObject(tc) ? tc : cfg;
    const cJSON *vc = cJSON_GetObjectItemCaseSensitive(cfg, "vision_config");
    if (!cJSON_IsObject(vc)) return mt_err_set(err, MT_ERR_FORMAT, "%s: missing object \"vision_config\"", path);

    q->hidden = req_int(&r, text, "hidden_size", 1, 1 << 16);
    q->inter = req_int(&r, text, "intermediate_size", 1, 1 << 20);
    q->n_layers = req_int(&r, text, "num_hidden_layers", 1, MAX_LAYERS);
    q->n_heads = req_int(&r, text, "num_attention_heads", 1, 1024);
    q->n_kv = opt_int(&r, text, "num_key_value_heads", 1, 1024, q->n_heads);
    q->vocab = req_int(&r, text, "vocab_size", 1, 1 << 24);
    q->rms_eps = (float)opt_num(&r, text, "rms_norm_eps", 1e-12, 1e-1, 1e-6);
    if (r.st) return r.st;
    if (q->hidden % q->n_heads || q->n_heads % q->n_kv || (q->hidden / q->n_heads) % 2)
        return mt_err_set(err, MT_ERR_FORMAT, "%s: hidden_size %lld, %lld heads and %lld KV heads do not fit together",
                          path, (long long)q->hidden, (long long)q->n_heads, (long long)q->n_kv);
    q->head_dim = q->hidden / q->n_heads;
    mt_status st = read_rope(&r, text, q);
    if (st) return st;
    bool sliding = false;
    if ((st = mt_json_bool_opt(text, "use_sliding_window", path, &sliding, err))) return st;
    if (sliding) return mt_err_set(err, MT_ERR_UNSUPPORTED, "%s: use_sliding_window = true is not supported", path);

    const char *vpath = path;
    q->depth = req_int(&r, vc, "depth", 1, MAX_LAYERS);
    q->heads = req_int(&r, vc, "num_heads", 1, 1024);
    q->patch = opt_int(&r, vc, "patch_size", 1, 1024, 14);
    q->temporal = opt_int(&r, vc, "temporal_patch_size", 1, 64, 2);
    q->merge = opt_int(&r, vc, "spatial_merge_size", 1, 64, 2);
    q->in_chans = opt_int(&r, vc, "in_chans", 1, 16, opt_int(&r, vc, "in_channels", 1, 16, 3));
    if (q->v2_5) {
        q->width = req_int(&r, vc, "hidden_size", 1, 1 << 16);
        q->mlp_width = req_int(&r, vc, "intermediate_size", 1, 1 << 20);
        q->out_hidden = req_int(&r, vc, "out_hidden_size", 1, 1 << 16);
        q->window = opt_int(&r, vc, "window_size", 1, 1 << 16, 112);
    } else {
        q->width = req_int(&r, vc, "embed_dim", 1, 1 << 16);
        q->mlp_width = q->width * opt_int(&r, vc, "mlp_ratio", 1, 64, 4);
        q->out_hidden = req_int(&r, vc, "hidden_size", 1, 1 << 16);
    }
    if (r.st) return r.st;
    const char *act = NULL;
    if ((st = mt_json_str_opt(vc, "hidden_act", vpath, &act, err))) return st;
    if (!act) act = q->v2_5 ? "silu" : "quick_gelu";
    if (!mt_act_parse(act, &q->vision_act))
        return mt_err_set(err, MT_ERR_UNSUPPORTED, "%s: vision_config.hidden_act \"%s\" is not supported", path, act);
    if (q->width % q->heads || (q->width / q->heads) % 4)
        return mt_err_set(err, MT_ERR_FORMAT, "%s: vision width %lld is not a multiple of 4 * %lld heads", path,
                          (long long)q->width, (long long)q->heads);
    if (q->out_hidden != q->hidden)
        return mt_err_set(err, MT_ERR_FORMAT, "%s: vision out_hidden_size %lld differs from hidden_size %lld", path,
                          (long long)q->out_hidden, (long long)q->hidden);
    if (q->v2_5 && (q->window % (q->merge * q->patch) || q->window < q->merge * q->patch))
        return mt_err_set(err, MT_ERR_FORMAT, "%s: window_size %lld is not a multiple of merge x patch", path,
                          (long long)q->window);

    q->blocks = mt_calloc((size_t)q->depth, sizeof *q->blocks);
    q->layers = mt_calloc((size_t)q->n_layers, sizeof *q->layers);
    if (!q->blocks || !q->layers) return mt_err_set(err, MT_ERR_NOMEM, "out of memory");
    if (q->v2_5) {
        int64_t full[MAX_LAYERS];
        size_t n_full = 0;
        if ((st = mt_json_int_array_opt(vc, "fullatt_block_indexes", path, 0, q->depth - 1, full, MAX_LAYERS, &n_full,
                                        err)))
            return st;
        for (size_t i = 0; i < n_full; i++) q->blocks[full[i]].full_attention = true;
    } else {
        for (int64_t b = 0; b < q->depth; b++) q->blocks[b].full_attention = true;
    }

    mt_model_desc *d = &m->desc;
    d->vocab_size = q->vocab;
    d->hidden_size = q->hidden;
    d->n_layers = q->n_layers;
    d->kv_width = q->n_kv * q->head_dim;
    d->max_positions = opt_int(&r, text, "max_position_embeddings", 1, INT64_C(1) << 32, 32768);
    d->image_token_id = opt_int(&r, cfg, "image_token_id", 0, q->vocab - 1, 151655);
    d->video_token_id = opt_int(&r, cfg, "video_token_id", 0, q->vocab - 1, 151656);
    d->vision_start_id = opt_int(&r, cfg, "vision_start_token_id", 0, q->vocab - 1, 151652);
    d->vision_end_id = opt_int(&r, cfg, "vision_end_token_id", 0, q->vocab - 1, 151653);
    d->bos_id = opt_int(&r, cfg, "bos_token_id", 0, q->vocab - 1, -1);
    int64_t eos = opt_int(&r, cfg, "eos_token_id", 0, q->vocab - 1, -1);
    if (eos >= 0) {
        d->eos_ids[0] = eos;
        d->n_eos = 1;
    }
    d->merge_size = q->merge;
    d->patch_dim = q->in_chans * q->temporal * q->patch * q->patch;
    return r.st;
}

/* ---- weights ---- */

typedef struct loader {
    mt_model *m;
    mt_err *err;
    mt_status st;
    char name[256];
} loader;

static const char *wname(loader *l, const char *prefix, const char *fmt, int64_t i) {
    int n = snprintf(l->name, sizeof l->name, "%s", prefix);
    snprintf(l->name + n, sizeof l->name - (size_t)n, fmt, (long long)i);
    return l->name;
}

static void load_matrix(loader *l, mt_tensor *out, const char *name, int64_t rows, int64_t cols) {
    if (!l->st) l->st = mt_weight_matrix(l->m, name, rows, cols, out, l->err);
}

static void load_vector(loader *l, mt_tensor *out, const char *name, int64_t n, bool optional) {
    if (!l->st) l->st = mt_weight_vector(l->m, name, n, optional, out, l->err);
}

/* prefix + "weight" / "bias" */
static void load_linear(loader *l, mt_linear *lin, const char *prefix, int64_t out, int64_t in, bool bias) {
    char base[256];
    snprintf(base, sizeof base, "%s", prefix);
    load_matrix(l, &lin->w, wname(l, base, "weight", 0), out, in);
    if (bias) load_vector(l, &lin->b, wname(l, base, "bias", 0), out, false);
    if (!l->st) mt_weight_set_linear(l->m, &lin->w, lin);
}

/* dst reads rows [r0, r0 + n) of src, registered so training finds both in the weight table */
static void split_linear(loader *l, const mt_linear *src, mt_linear *dst, int64_t r0, int64_t n) {
    if (l->st) return;
    *dst = mt_linear_rows(src, r0, n);
    l->st = mt_weight_alias(l->m, &src->w, &dst->w, r0, l->err);
    if (!l->st && src->b.data) l->st = mt_weight_alias(l->m, &src->b, &dst->b, r0, l->err);
}

static void load_norm(loader *l, mt_norm *n, const char *prefix, int64_t width, bool layer_norm, float eps) {
    char base[256];
    snprintf(base, sizeof base, "%s", prefix);
    load_vector(l, &n->w, wname(l, base, "weight", 0), width, false);
    if (layer_norm) load_vector(l, &n->b, wname(l, base, "bias", 0), width, false);
    n->eps = eps;
}

static void load_vision(loader *l, qwen2_vl *q, const char *vp) {
    char p[256];
    int64_t E = q->width, P = q->in_chans * q->temporal * q->patch * q->patch;
    snprintf(p, sizeof p, "%spatch_embed.proj.weight", vp);
    load_matrix(l, &q->patch_embed, p, E, P);
    for (int64_t b = 0; b < q->depth; b++) {
        vision_block *vb = &q->blocks[b];
#define VP(suffix) (snprintf(p, sizeof p, "%sblocks.%lld." suffix, vp, (long long)b), p)
        load_norm(l, &vb->norm1, VP("norm1."), E, !q->v2_5, 1e-6f);
        load_norm(l, &vb->norm2, VP("norm2."), E, !q->v2_5, 1e-6f);
        load_linear(l, &vb->qkv, VP("attn.qkv."), 3 * E, E, true);
        load_linear(l, &vb->proj, VP("attn.proj."), E, E, true);
        if (q->v2_5) {
            load_linear(l, &vb->gate, VP("mlp.gate_proj."), q->mlp_width, E, true);
            load_linear(l, &vb->up, VP("mlp.up_proj."), q->mlp_width, E, true);
            load_linear(l, &vb->down, VP("mlp.down_proj."), E, q->mlp_width, true);
        } else {
            load_linear(l, &vb->fc1, VP("mlp.fc1."), q->mlp_width, E, true);
            load_linear(l, &vb->fc2, VP("mlp.fc2."), E, q->mlp_width, true);
        }
#undef VP
        split_linear(l, &vb->qkv, &vb->q, 0, E);
        split_linear(l, &vb->qkv, &vb->k, E, E);
        split_linear(l, &vb->qkv, &vb->v, 2 * E, E);
        if (l->st) return;
    }
    int64_t merged = E * q->merge * q->merge;
    snprintf(p, sizeof p, "%smerger.ln_q.", vp);
    load_norm(l, &q->merger_norm, p, E, !q->v2_5, 1e-6f);
    snprintf(p, sizeof p, "%smerger.mlp.0.", vp);
    load_linear(l, &q->merger_fc1, p, merged, merged, true);
    snprintf(p, sizeof p, "%smerger.mlp.2.", vp);
    load_linear(l, &q->merger_fc2, p, q->out_hidden, merged, true);
}

static void load_text(loader *l, qwen2_vl *q, const char *tp) {
    char p[256];
    int64_t H = q->hidden, kvw = q->n_kv * q->head_dim;
    snprintf(p, sizeof p, "%sembed_tokens.weight", tp);
    load_matrix(l, &q->embed, p, q->vocab, H);
    for (int64_t i = 0; i < q->n_layers; i++) {
        text_layer *tl = &q->layers[i];
#define TP(suffix) (snprintf(p, sizeof p, "%slayers.%lld." suffix, tp, (long long)i), p)
        load_norm(l, &tl->ln1, TP("input_layernorm."), H, false, q->rms_eps);
        load_norm(l, &tl->ln2, TP("post_attention_layernorm."), H, false, q->rms_eps);
        load_linear(l, &tl->q, TP("self_attn.q_proj."), H, H, true);
        load_linear(l, &tl->k, TP("self_attn.k_proj."), kvw, H, true);
        load_linear(l, &tl->v, TP("self_attn.v_proj."), kvw, H, true);
        load_linear(l, &tl->o, TP("self_attn.o_proj."), H, H, false);
        load_linear(l, &tl->gate, TP("mlp.gate_proj."), q->inter, H, false);
        load_linear(l, &tl->up, TP("mlp.up_proj."), q->inter, H, false);
        load_linear(l, &tl->down, TP("mlp.down_proj."), H, q->inter, false);
#undef TP
    }
    snprintf(p, sizeof p, "%snorm.", tp);
    load_norm(l, &q->final_norm, p, H, false, q->rms_eps);
    if (!l->st && mt_safetensors_find(l->m->st, "lm_head.weight"))
        load_matrix(l, &q->lm_head, "lm_head.weight", q->vocab, H);
    else if (!l->st) {
        q->lm_head = q->embed; /* tied embeddings: checkpoints omit lm_head.weight */
        l->st = mt_weight_alias(l->m, &q->embed, &q->lm_head, 0, l->err);
    }
}

static size_t count_params(const mt_model *m, const char *prefix) {
    size_t n = 0, len = strlen(prefix);
    for (size_t i = 0; i < mt_safetensors_count(m->st); i++) {
        const mt_st_tensor *t = mt_safetensors_at(m->st, i);
        if (strncmp(t->name, prefix, len) != 0) continue;
        size_t k = 1;
        for (int d = 0; d < t->ndim; d++) k *= (size_t)t->shape[d];
        n += k;
    }
    return n;
}

static void release(mt_model *m) {
    qwen2_vl *q = m->impl;
    mt_free(q->blocks);
    mt_free(q->layers);
    mt_free(q);
    m->impl = NULL;
}

static mt_status load(mt_model *m, const cJSON *cfg, const char *path, mt_err *err) {
    qwen2_vl *q = mt_calloc(1, sizeof *q);
    if (!q) return mt_err_set(err, MT_ERR_NOMEM, "out of memory");
    m->impl = q;
    const cJSON *arch = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(cfg, "architectures"), 0);
    q->v2_5 = strcmp(arch->valuestring, "Qwen2VLForConditionalGeneration") != 0;
    mt_status st = read_config(m, cfg, path, q, err);
    if (!st) st = mt_qwen_preproc_cfg_load(m->dir, &q->pre, err);
    if (st) return st;
    if (q->pre.patch_size != q->patch || q->pre.temporal_patch_size != q->temporal || q->pre.merge_size != q->merge)
        return mt_err_set(err, MT_ERR_FORMAT, "%s/preprocessor_config.json: patch %lld / temporal %lld / merge %lld "
                          "differ from config.json's %lld / %lld / %lld", m->dir, (long long)q->pre.patch_size,
                          (long long)q->pre.temporal_patch_size, (long long)q->pre.merge_size, (long long)q->patch,
                          (long long)q->temporal, (long long)q->merge);
    bool new_names = mt_safetensors_find(m->st, "model.language_model.embed_tokens.weight") != NULL;
    const char *tp = new_names ? "model.language_model." : "model.";
    const char *vp = new_names ? "model.visual." : "visual.";
    loader l = {m, err, MT_OK, {0}};
    load_vision(&l, q, vp);
    load_text(&l, q, tp);
    if (l.st) return l.st;
    m->desc.weight_dtype = q->embed.dtype;
    m->desc.params_vision = count_params(m, vp) - (size_t)mt_tensor_numel(&q->merger_fc1.w) -
                            (size_t)mt_tensor_numel(&q->merger_fc2.w);
    m->desc.params_projector = (size_t)mt_tensor_numel(&q->merger_fc1.w) + (size_t)mt_tensor_numel(&q->merger_fc2.w);
    m->desc.params_language = count_params(m, tp) + (q->lm_head.data != q->embed.data ? (size_t)(q->vocab * q->hidden) : 0);
    return MT_OK;
}

/* ---- vision tower ---- */

/* Qwen2.5-VL groups merge units into windows of ws x ws units. order[] lists merge units window by window (row-major
 * inside each window; windows row-major; frames in turn); cu[] gets the window bounds in patches, empty windows
 * dropped as transformers' unique_consecutive does. Returns the number of bounds. */
static int64_t window_order(int64_t t, int64_t lh, int64_t lw, int64_t ws, int64_t m2, int64_t *order, int64_t *cu) {
    int64_t nwh = (lh + ws - lh % ws) / ws, nww = (lw + ws - lw % ws) / ws;
    int64_t n = 0, n_cu = 1;
    cu[0] = 0;
    for (int64_t f = 0; f < t; f++) {
        for (int64_t wh = 0; wh < nwh; wh++) {
            for (int64_t ww = 0; ww < nww; ww++) {
                int64_t start = n;
                for (int64_t r = wh * ws; r < MT_MIN(lh, wh * ws + ws); r++)
                    for (int64_t c = ww * ws; c < MT_MIN(lw, ww * ws + ws); c++) order[n++] = f * lh * lw + r * lw + c;
                if (n > start) cu[n_cu++] = n * m2;
            }
        }
    }
    return n_cu;
}

static mt_tensor *encode_image(const mt_model *m, mt_ctx *ctx, const float *pixels, int64_t n_patches,
                               mt_image_grid g, const mt_dump *dump) {
    const qwen2_vl *q = m->impl;
    int64_t M = q->merge, m2 = M * M, E = q->width, P = m->desc.patch_dim, N = n_patches;
    if (g.t < 1 || g.h < 1 || g.w < 1 || g.h % M || g.w % M || g.t * g.h * g.w != N)
        return mt_ctx_fail(ctx, MT_ERR_INVALID_ARG, "image grid %lldx%lldx%lld does not fit %lld patches (merge %lld)",
                           (long long)g.t, (long long)g.h, (long long)g.w, (long long)N, (long long)M);
    int64_t lh = g.h / M, lw = g.w / M, units = N / m2;

    /* Patch rows and columns in the processor's merge-block order: frame, block row, block col, then M x M. */
    int64_t *rows = mt_arena_alloc(ctx->arena, (size_t)N * sizeof(int64_t) * 4);
    int64_t *cols = rows + N, *perm = rows + 2 * N, *inverse = rows + 3 * N;
    int64_t *unit_order = mt_arena_alloc(ctx->arena, (size_t)units * sizeof(int64_t));
    int64_t *cu_win = mt_arena_alloc(ctx->arena, (size_t)(units + 2) * sizeof(int64_t));
    int64_t *cu_full = mt_arena_alloc(ctx->arena, (size_t)(g.t + 1) * sizeof(int64_t));
    if (!rows || !unit_order || !cu_win || !cu_full) return mt_ctx_fail(ctx, MT_ERR_NOMEM, "out of memory");
    int64_t n = 0;
    for (int64_t f = 0; f < g.t; f++)
        for (int64_t bh = 0; bh < lh; bh++)
            for (int64_t bw = 0; bw < lw; bw++)
                for (int64_t i = 0; i < M; i++)
                    for (int64_t j = 0; j < M; j++, n++) {
                        rows[n] = bh * M + i;
                        cols[n] = bw * M + j;
                    }
    for (int64_t f = 0; f <= g.t; f++) cu_full[f] = f * g.h * g.w;
    int64_t n_cu_win = 0;
    if (q->v2_5) {
        n_cu_win = window_order(g.t, lh, lw, q->window / M / q->patch, m2, unit_order, cu_win);
    } else {
        for (int64_t u = 0; u < units; u++) unit_order[u] = u;
    }
    for (int64_t u = 0; u < units; u++)
        for (int64_t k = 0; k < m2; k++) perm[u * m2 + k] = unit_order[u] * m2 + k;
    for (int64_t i = 0; i < N; i++) inverse[perm[i]] = i;

    mt_tensor pv = mt_tensor_wrap(MT_F32, 2, (int64_t[]){N, P}, pixels);
    mt_tensor *x = mt_op_linear(ctx, &pv, &q->patch_embed, NULL);
    mt_dump_tensor(dump, x, "patch_embed");
    x = mt_op_gather_rows(ctx, x, perm, N);
    int64_t *prow = mt_arena_alloc(ctx->arena, (size_t)N * 2 * sizeof(int64_t));
    if (!x || !prow) return mt_ctx_fail(ctx, MT_ERR_NOMEM, "out of memory");
    for (int64_t i = 0; i < N; i++) {
        prow[i] = rows[perm[i]];
        prow[N + i] = cols[perm[i]];
    }
    mt_tensor *cos, *sin;
    if (mt_nn_rope_2d(ctx, prow, prow + N, N, E / q->heads, 10000.0, &cos, &sin)) return NULL;
    int heads = (int)q->heads;
    float scale = 1.0f / sqrtf((float)(E / q->heads));
    mt_tensor *res = mt_tensor_new_2d(ctx, MT_F32, N, E);
    x = mt_ctx_rewind_keep(ctx, mt_arena_save(ctx->arena), res, x);
    for (int64_t b = 0; b < q->depth; b++) {
        const vision_block *vb = &q->blocks[b];
        mt_arena_mark mark = mt_arena_save(ctx->arena);
        mt_attn_opts ao = {.scale = scale};
        ao.cu_seqlens = vb->full_attention ? cu_full : cu_win;
        ao.n_seg = vb->full_attention ? g.t : n_cu_win - 1;
        mt_tensor *h = mt_nn_norm(ctx, x, &vb->norm1);
        mt_tensor *qq = mt_op_rope(ctx, mt_nn_linear(ctx, h, &vb->q), heads, cos, sin);
        mt_tensor *kk = mt_op_rope(ctx, mt_nn_linear(ctx, h, &vb->k), heads, cos, sin);
        mt_tensor *a = mt_op_attention(ctx, qq, kk, mt_nn_linear(ctx, h, &vb->v), heads, heads, &ao);
        x = mt_op_add(ctx, x, mt_nn_linear(ctx, a, &vb->proj));
        h = mt_nn_norm(ctx, x, &vb->norm2);
        h = q->v2_5 ? mt_nn_gated_mlp(ctx, h, &vb->gate, &vb->up, &vb->down, q->vision_act)
                    : mt_nn_mlp(ctx, h, &vb->fc1, &vb->fc2, q->vision_act);
        x = mt_op_add(ctx, x, h);
        if (dump && dump->fn) mt_dump_tensor(dump, mt_op_gather_rows(ctx, x, inverse, N), "vision_block_%lld", (long long)b);
        x = mt_ctx_rewind_keep(ctx, mark, res, x);
    }
    mt_tensor *y = mt_nn_norm(ctx, x, &q->merger_norm);
    y = mt_op_reshape(ctx, y, 2, (int64_t[]){units, E * m2});
    y = mt_nn_linear(ctx, mt_op_act(ctx, mt_nn_linear(ctx, y, &q->merger_fc1), MT_ACT_GELU_ERF), &q->merger_fc2);
    int64_t *unit_inverse = mt_arena_alloc(ctx->arena, (size_t)units * sizeof(int64_t));
    if (!unit_inverse) return mt_ctx_fail(ctx, MT_ERR_NOMEM, "out of memory");
    for (int64_t u = 0; u < units; u++) unit_inverse[unit_order[u]] = u;
    y = mt_op_gather_rows(ctx, y, unit_inverse, units);
    mt_dump_tensor(dump, y, "merger");
    return y;
}

/* ---- positions (get_rope_index) ---- */

static mt_status positions(const mt_model *m, const int32_t *ids, int64_t L, const mt_image_grid *grids,
                           int n_images, int64_t *pos, int64_t *delta, mt_err *err) {
    const mt_model_desc *d = &m->desc;
    int64_t M = d->merge_size, next = 0, max_pos = -1;
    int img = 0;
    for (int64_t i = 0; i < L;) {
        if (ids[i] != d->image_token_id) {
            for (int a = 0; a < 3; a++) pos[a * L + i] = next;
            max_pos = next++;
            i++;
            continue;
        }
        if (img >= n_images)
            return mt_err_set(err, MT_ERR_INVALID_ARG, "prompt has more image tokens than the %d image(s) given",
                              n_images);
        mt_image_grid g = grids[img++];
        int64_t gh = g.h / M, gw = g.w / M, count = g.t * gh * gw;
        if (i + count > L)
            return mt_err_set(err, MT_ERR_INVALID_ARG, "image %d needs %lld image tokens, the prompt has fewer", img,
                              (long long)count);
        for (int64_t k = 0; k < count; k++) {
            if (ids[i + k] != d->image_token_id)
                return mt_err_set(err, MT_ERR_INVALID_ARG, "image %d needs %lld image tokens, the prompt has %lld",
                                  img, (long long)count, (long long)k);
            int64_t hw = k % (gh * gw);
            /* images have no time axis: transformers scales the frame index by 0 seconds per grid step */
            pos[0 * L + i + k] = next;
            pos[1 * L + i + k] = next + hw / gw;
            pos[2 * L + i + k] = next + hw % gw;
        }
        max_pos = next + MT_MAX(gh, gw) - 1;
        next = max_pos + 1;
        i += count;
    }
    if (img != n_images)
        return mt_err_set(err, MT_ERR_INVALID_ARG, "%d image(s) given, the prompt has image tokens for %d", n_images,
                          img);
    *delta = max_pos + 1 - L;
    return MT_OK;
}

/* ---- language model ---- */

static mt_tensor *embed(const mt_model *m, mt_ctx *ctx, const int32_t *ids, int64_t n) {
    const qwen2_vl *q = m->impl;
    return mt_op_embedding(ctx, &q->embed, ids, n);
}

static mt_tensor *hidden(const mt_model *m, mt_ctx *ctx, mt_kv_cache *cache, const mt_tensor *embeds,
                         const int64_t *pos, const mt_dump *dump) {
    const qwen2_vl *q = m->impl;
    if (!embeds) return NULL;
    int64_t T = embeds->shape[0], past = cache ? cache->n_past : 0, kvw = q->n_kv * q->head_dim;
    if (cache && past + T > cache->capacity)
        return mt_ctx_fail(ctx, MT_ERR_LIMIT, "context full: %lld + %lld tokens, the KV cache holds %lld",
                           (long long)past, (long long)T, (long long)cache->capacity);
    mt_tensor *cos, *sin;
    if (mt_nn_rope_mrope(ctx, pos, T, q->head_dim, q->rope_theta, q->sections, &cos, &sin)) return NULL;
    int nh = (int)q->n_heads, nkv = (int)q->n_kv;
    mt_attn_opts ao = {.scale = 1.0f / sqrtf((float)q->head_dim), .causal = true, .q_pos0 = past};
    mt_tensor *res = mt_tensor_new_2d(ctx, MT_F32, T, q->hidden);
    mt_tensor *x = mt_ctx_rewind_keep(ctx, mt_arena_save(ctx->arena), res, embeds);
    for (int64_t l = 0; l < q->n_layers; l++) {
        const text_layer *tl = &q->layers[l];
        mt_arena_mark mark = mt_arena_save(ctx->arena);
        mt_tensor *h = mt_nn_norm(ctx, x, &tl->ln1);
        mt_tensor *qq = mt_op_rope(ctx, mt_nn_linear(ctx, h, &tl->q), nh, cos, sin);
        mt_tensor *kk = mt_op_rope(ctx, mt_nn_linear(ctx, h, &tl->k), nkv, cos, sin);
        mt_tensor *vv = mt_nn_linear(ctx, h, &tl->v);
        if (!qq || !kk || !vv) return NULL;
        mt_tensor *a;
        if (cache) {
            memcpy(cache->k[l] + past * kvw, kk->data, (size_t)(T * kvw) * sizeof(float));
            memcpy(cache->v[l] + past * kvw, vv->data, (size_t)(T * kvw) * sizeof(float));
            int64_t shape[2] = {past + T, kvw};
            mt_tensor ck = mt_tensor_wrap(MT_F32, 2, shape, cache->k[l]);
            mt_tensor cv = mt_tensor_wrap(MT_F32, 2, shape, cache->v[l]);
            a = mt_op_attention(ctx, qq, &ck, &cv, nh, nkv, &ao);
        } else {
            a = mt_op_attention(ctx, qq, kk, vv, nh, nkv, &ao);
        }
        x = mt_op_add(ctx, x, mt_nn_linear(ctx, a, &tl->o));
        h = mt_nn_norm(ctx, x, &tl->ln2);
        x = mt_op_add(ctx, x, mt_nn_gated_mlp(ctx, h, &tl->gate, &tl->up, &tl->down, MT_ACT_SILU));
        mt_dump_tensor(dump, x, "decoder_layer_%lld", (long long)l);
        x = mt_ctx_rewind_keep(ctx, mark, res, x);
    }
    x = mt_nn_norm(ctx, x, &q->final_norm);
    mt_dump_tensor(dump, x, "final_norm");
    if (x && cache) cache->n_past = past + T;
    return x;
}

static const mt_tensor *lm_head(const mt_model *m) { return &((const qwen2_vl *)m->impl)->lm_head; }

static mt_tensor *forward(const mt_model *m, mt_ctx *ctx, mt_kv_cache *cache, const mt_tensor *embeds,
                          const int64_t *pos, bool all_logits, const mt_dump *dump) {
    mt_tensor *x = hidden(m, ctx, cache, embeds, pos, dump);
    if (x && !all_logits) x = mt_tensor_rows(ctx, x, x->shape[0] - 1, 1);
    return mt_op_linear(ctx, x, lm_head(m), NULL);
}

static mt_status preprocess_image(const mt_model *m, const mt_image *img, float **pixels, int64_t *n_patches,
                                  mt_image_grid *grid, mt_err *err) {
    const qwen2_vl *q = m->impl;
    int64_t thw[3];
    mt_status st = mt_qwen_preprocess(img, &q->pre, pixels, n_patches, thw, err);
    if (!st) *grid = (mt_image_grid){thw[0], thw[1], thw[2]};
    return st;
}

/* The chat template of the Qwen2-VL / Qwen2.5-VL checkpoints (ChatML with vision placeholders, a default system
 * message), used when a folder ships none of its own. Images and videos become <|vision_start|><|image_pad|>
 * <|vision_end|> (or <|video_pad|>) where their part stands in the message. */
static const char default_chat_template[] =
    "{%- set image_count = namespace(value=0) -%}\n"
    "{%- set video_count = namespace(value=0) -%}\n"
    "{%- for message in messages -%}\n"
    "    {%- if loop.first and message['role'] != 'system' %}\n"
    "<|im_start|>system\n"
    "You are a helpful assistant.<|im_end|>\n"
    "    {% endif -%}\n"
    "<|im_start|>{{ message['role'] }}\n"
    "    {% if message['content'] is string -%}\n"
    "        {{ message['content'] }}<|im_end|>\n"
    "    {%- else -%}\n"
    "        {%- for content in message['content'] -%}\n"
    "            {%- if content['type'] == 'image' or 'image' in content or 'image_url' in content -%}\n"
    "                {%- set image_count.value = image_count.value + 1 -%}\n"
    "                {%- if add_vision_id %}Picture {{ image_count.value }}: {% endif -%}\n"
    "<|vision_start|><|image_pad|><|vision_end|>\n"
    "            {%- elif content['type'] == 'video' or 'video' in content -%}\n"
    "                {%- set video_count.value = video_count.value + 1 -%}\n"
    "                {%- if add_vision_id %}Video {{ video_count.value }}: {% endif -%}\n"
    "<|vision_start|><|video_pad|><|vision_end|>\n"
    "            {%- elif 'text' in content -%}\n"
    "                {{ content['text'] }}\n"
    "            {%- endif -%}\n"
    "        {%- endfor -%}<|im_end|>\n"
    "    {%- endif %}\n"
    "\n"
    "{% endfor -%}\n"
    "{%- if add_generation_prompt -%}\n"
    "<|im_start|>assistant\n"
    "{% endif -%}\n";

static mt_model_part part_of(const char *name) {
    if (!strstr(name, "visual.")) return MT_PART_LANGUAGE;
    return strstr(name, "merger.") ? MT_PART_PROJECTOR : MT_PART_VISION;
}

/* transformers 4.52 moved the language model under model.language_model and the vision tower under model.visual;
 * published Qwen2-VL / Qwen2.5-VL checkpoints keep the old names, which it maps on load */
static const char *const module_renames[] = {"model.layers.", "model.language_model.layers.",
                                             "model.embed_tokens", "model.language_model.embed_tokens",
                                             "model.norm", "model.language_model.norm",
                                             "visual.", "model.visual.", NULL};

static const char *const architectures[] = {"Qwen2_5_VLForConditionalGeneration", "Qwen2VLForConditionalGeneration",
                                            NULL};

const mt_family mt_family_qwen2_vl = {
    .name = "qwen2-vl",
    .architectures = architectures,
    .load = load,
    .release = release,
    .encode_image = encode_image,
    .positions = positions,
    .forward = forward,
    .hidden = hidden,
    .lm_head = lm_head,
    .embed = embed,
    .preprocess_image = preprocess_image,
    .default_chat_template = default_chat_template,
    .part_of = part_of,
    .module_renames = module_renames,
};
