/* models/internvit_vision: the vision side of InternVL - the InternViT tower (300M: LayerNorm; 6B: RMSNorm and q/k
 * normalisation), the pixel shuffle and the mlp1 projector - in the original layout (InternVLChatModel) and in
 * transformers' (InternVLForConditionalGeneration).
 *
 * Reference: OpenGVLab/InternVL internvl_chat/internvl/model/internvl_chat/modeling_intern_vit.py and
 * modeling_internvl_chat.py (extract_feature, pixel_shuffle); transformers models/internvl/modeling_internvl.py
 * (InternVLVisionModel, InternVLModel.get_image_features) and convert_internvl_weights_to_hf.py for the names.
 *
 * Input: the processor's tiles, pixels [T, 3, S, S] with grid {T, S/p, S/p}. Shapes: T tiles, g = (S/p)^2 patches
 * per tile, E vision width, s = 1 / downsample_ratio, H text hidden.
 *
 *     | step          | what                                                                                      |
 *     |---------------|-------------------------------------------------------------------------------------------|
 *     | patch_embed   | Conv2d(3, E, p, stride p) with bias as a matmul over the cut patches -> [T g, E]          |
 *     | embeddings    | per tile: [CLS, patches] + position embedding [1 + g, E]; the patch part bicubically      |
 *     |               | interpolated (torch, align_corners false, A = -0.75) when S/p differs from the trained G  |
 *     | blocks        | x + ls1 * proj(attn(norm1 x)), x + ls2 * fc2(gelu(fc1(norm2 x))), attention per tile;     |
 *     |               | the 6B also RMSNorms q and k over the whole width; the first select_layer blocks only     |
 *     | pixel shuffle | CLS dropped; each s x s block of patches concatenated (row offset, then column offset,    |
 *     |               | then channel) -> [T g / s^2, E s^2], blocks row-major (ps_version v2 and transformers'),  |
 *     |               | column-major for ps_version v1 (its transposed image)                                     |
 *     | mlp1          | LayerNorm(E s^2, eps 1e-5), Linear, GELU (exact), Linear -> [T g / s^2, H]                |
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "models/config.h"
#include "models/model.h"
#include "nn/vit.h"

#define MAX_BLOCKS 512

/* Tensor names after the vision prefix (tower) and the projector prefix (mlp1) of each layout. */
typedef struct names {
    const char *cls, *pos, *patch, *layers;
    const char *qkv; /* fused (original), or NULL for q, k, v apart (transformers) */
    const char *q, *k, *v, *proj, *q_norm, *k_norm, *ls1, *ls2, *norm1, *norm2, *fc1, *fc2;
    const char *mlp_norm, *mlp_fc1, *mlp_fc2;
} names;

static const names original_names = {
    "embeddings.class_embedding", "embeddings.position_embedding", "embeddings.patch_embedding.", "encoder.layers.",
    "attn.qkv.", NULL, NULL, NULL, "attn.proj.", "attn.q_norm.", "attn.k_norm.", "ls1", "ls2", "norm1.", "norm2.",
    "mlp.fc1.", "mlp.fc2.", "0.", "1.", "3."};
static const names hf_names = {
    "embeddings.cls_token", "embeddings.position_embeddings", "embeddings.patch_embeddings.projection.",
    "encoder.layer.", NULL, "attention.q_proj.", "attention.k_proj.", "attention.v_proj.",
    "attention.projection_layer.", "attention.q_norm.", "attention.k_norm.", "lambda_1", "lambda_2",
    "layernorm_before.", "layernorm_after.", "mlp.fc1.", "mlp.fc2.", "layer_norm.", "linear_1.", "linear_2."};

typedef struct internvit {
    const names *nm;
    int64_t depth, width, heads, mlp_width, patch, side; /* side: the trained grid G (image_size / patch) */
    int64_t run;                                          /* blocks run: select_layer / vision_feature_layer */
    int64_t shuffle;                                      /* s */
    bool ps_v1, layer_norm, qk_norm, qkv_bias;
    float eps, qk_eps;
    mt_act act, proj_act;
    mt_linear patch_embed; /* [E, 3 p^2] + b */
    mt_tensor cls;         /* [1, E] */
    mt_tensor pos;         /* [1, (G^2 + 1) E], as stored [1, G^2 + 1, E] */
    mt_vit_block *blocks;
    mt_norm mlp_norm;
    mt_linear mlp_fc1, mlp_fc2;
} internvit;

/* An int, or a list of two equal ints ([448, 448]: transformers' image_size / patch_size), else dflt. */
static int64_t square_int(mt_cfg *r, const cJSON *o, const char *key, int64_t dflt) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsArray(v)) return mt_cfg_int_opt(r, o, key, 1, 1 << 16, dflt);
    const cJSON *a = cJSON_GetArrayItem(v, 0), *b = cJSON_GetArrayItem(v, 1);
    if (cJSON_GetArraySize(v) != 2 || !cJSON_IsNumber(a) || !cJSON_IsNumber(b) || a->valuedouble != b->valuedouble ||
        a->valuedouble < 1 || a->valuedouble > (1 << 16) || a->valuedouble != floor(a->valuedouble)) {
        mt_cfg_fail(r, MT_ERR_FORMAT, "field \"%s\" must be an integer or two equal integers (square tiles)", key);
        return dflt;
    }
    return (int64_t)a->valuedouble;
}

/* s from downsample_ratio: int(1 / ratio) as both codes compute it, refused unless ratio is exactly 1 / s. */
static int64_t shuffle_factor(mt_cfg *r, const cJSON *cfg) {
    double ratio = mt_cfg_num_opt(r, cfg, "downsample_ratio", 1.0 / 64, 1.0, 0.5);
    int64_t s = (int64_t)(1.0 / ratio + 1e-9);
    if (!r->st && fabs((double)s * ratio - 1.0) > 1e-9)
        mt_cfg_fail(r, MT_ERR_UNSUPPORTED, "field \"downsample_ratio\" = %g is not 1 / an integer", ratio);
    return s;
}

/* The blocks a feature layer index runs: hidden_states[k] of (embeddings, block 1, ..., block depth), negative k
 * counted from the end (-1: every block). */
static int64_t blocks_run(mt_cfg *r, const cJSON *o, const char *key, int64_t depth) {
    int64_t k = mt_cfg_int_opt(r, o, key, -(depth + 1), depth, -1);
    return k >= 0 ? k : depth + 1 + k;
}

static mt_status read_config(const cJSON *cfg, const char *path, bool hf, internvit *v, mt_err *err) {
    const cJSON *vc = mt_cfg_section(cfg, "vision_config", false);
    if (!vc) return mt_err_set(err, MT_ERR_FORMAT, "%s: missing object \"vision_config\"", path);
    mt_cfg r = {path, "vision_config", err, MT_OK};
    v->nm = hf ? &hf_names : &original_names;
    v->depth = mt_cfg_int(&r, vc, "num_hidden_layers", 1, MAX_BLOCKS);
    v->width = mt_cfg_int(&r, vc, "hidden_size", 1, 1 << 16);
    v->heads = mt_cfg_int(&r, vc, "num_attention_heads", 1, 1024);
    v->mlp_width = mt_cfg_int(&r, vc, "intermediate_size", 1, 1 << 20);
    v->patch = square_int(&r, vc, "patch_size", 14);
    int64_t image = square_int(&r, vc, "image_size", hf ? 448 : 224);
    mt_cfg_int_opt(&r, vc, "num_channels", 3, 3, 3);
    /* InternVisionConfig's defaults are the 6B's (qkv_bias false, qk_normalization true, rms_norm);
     * InternVLVisionConfig's the 300M's except attention_bias (false) */
    v->qkv_bias = mt_cfg_bool_opt(&r, vc, hf ? "attention_bias" : "qkv_bias", false);
    v->qk_norm = mt_cfg_bool_opt(&r, vc, hf ? "use_qk_norm" : "qk_normalization", !hf);
    const char *norm = mt_cfg_str_opt(&r, vc, "norm_type", hf ? "layer_norm" : "rms_norm");
    v->eps = (float)mt_cfg_num_opt(&r, vc, "layer_norm_eps", 1e-12, 1e-1, 1e-6);
    /* the 6B's q/k RMSNorm: layer_norm_eps in the original, InternVLVisionRMSNorm's default in transformers */
    v->qk_eps = hf ? 1e-6f : v->eps;
    v->act = mt_cfg_act(&r, vc, "gelu");
    mt_cfg_dtype(&r, vc);
    if (hf && !mt_cfg_bool_opt(&r, vc, "use_absolute_position_embeddings", true))
        mt_cfg_fail(&r, MT_ERR_UNSUPPORTED, "use_absolute_position_embeddings = false is not supported");
    if (hf && !mt_cfg_bool_opt(&r, vc, "use_mean_pooling", true))
        mt_cfg_fail(&r, MT_ERR_UNSUPPORTED, "use_mean_pooling = false (a final layernorm) is not supported");
    if (!r.st && strcmp(norm, "layer_norm") != 0 && strcmp(norm, "rms_norm") != 0)
        mt_cfg_fail(&r, MT_ERR_UNSUPPORTED, "field \"norm_type\" = \"%.40s\" is not supported (layer_norm, rms_norm)",
                    norm);
    if (r.st) return r.st;
    v->layer_norm = strcmp(norm, "layer_norm") == 0;
    if (v->width % v->heads)
        return mt_err_set(err, MT_ERR_FORMAT, "%s: vision_config: hidden_size %lld is not a multiple of %lld heads",
                          path, (long long)v->width, (long long)v->heads);
    if (image % v->patch)
        return mt_err_set(err, MT_ERR_FORMAT, "%s: vision_config: image_size %lld is not a multiple of patch_size %lld",
                          path, (long long)image, (long long)v->patch);
    v->side = image / v->patch;

    mt_cfg root = {path, "", err, MT_OK};
    v->shuffle = shuffle_factor(&root, cfg);
    int64_t tile = image;
    if (hf) {
        v->run = blocks_run(&root, cfg, "vision_feature_layer", v->depth);
        const char *sel = mt_cfg_str_opt(&root, cfg, "vision_feature_select_strategy", "default");
        if (!root.st && strcmp(sel, "default") != 0)
            mt_cfg_fail(&root, MT_ERR_UNSUPPORTED, "field \"vision_feature_select_strategy\" = \"%.40s\" is not "
                        "supported (default: the CLS token dropped)", sel);
        const char *act = mt_cfg_str_opt(&root, cfg, "projector_hidden_act", "gelu");
        if (!root.st && !mt_act_parse(act, &v->proj_act))
            mt_cfg_fail(&root, MT_ERR_UNSUPPORTED, "field \"projector_hidden_act\" = \"%.40s\" is not supported", act);
    } else {
        v->run = blocks_run(&root, cfg, "select_layer", v->depth);
        const char *ps = mt_cfg_str_opt(&root, cfg, "ps_version", "v1");
        if (!root.st && strcmp(ps, "v1") != 0 && strcmp(ps, "v2") != 0)
            mt_cfg_fail(&root, MT_ERR_UNSUPPORTED, "field \"ps_version\" = \"%.40s\" is not supported (v1, v2)", ps);
        v->ps_v1 = !root.st && strcmp(ps, "v1") == 0;
        v->proj_act = MT_ACT_GELU_ERF;
        tile = mt_cfg_int_opt(&root, cfg, "force_image_size", 1, 1 << 16, image);
    }
    if (root.st) return root.st;
    if (tile % v->patch || (tile / v->patch) % v->shuffle)
        return mt_err_set(err, MT_ERR_FORMAT, "%s: downsample_ratio 1/%lld does not divide the %lldx%lld patch grid of "
                          "%lld-pixel tiles (patch_size %lld)", path, (long long)v->shuffle,
                          (long long)(tile / v->patch), (long long)(tile / v->patch), (long long)tile,
                          (long long)v->patch);
    v->blocks = mt_calloc((size_t)v->depth, sizeof *v->blocks);
    return v->blocks ? MT_OK : mt_err_set(err, MT_ERR_NOMEM, "out of memory");
}

static void load_block(mt_loader *l, const internvit *v, mt_vit_block *b, const char *p) {
    const names *nm = v->nm;
    int64_t E = v->width;
    mt_load_norm(l, &b->norm1, E, v->layer_norm, v->eps, "%s%s", p, nm->norm1);
    mt_load_norm(l, &b->norm2, E, v->layer_norm, v->eps, "%s%s", p, nm->norm2);
    if (nm->qkv) {
        mt_load_linear(l, &b->qkv, 3 * E, E, v->qkv_bias, "%s%s", p, nm->qkv);
        mt_load_split(l, &b->qkv, &b->q, 0, E);
        mt_load_split(l, &b->qkv, &b->k, E, E);
        mt_load_split(l, &b->qkv, &b->v, 2 * E, E);
    } else {
        mt_load_linear(l, &b->q, E, E, v->qkv_bias, "%s%s", p, nm->q);
        mt_load_linear(l, &b->k, E, E, v->qkv_bias, "%s%s", p, nm->k);
        mt_load_linear(l, &b->v, E, E, v->qkv_bias, "%s%s", p, nm->v);
    }
    mt_load_linear(l, &b->proj, E, E, true, "%s%s", p, nm->proj);
    if (v->qk_norm) {
        mt_load_norm(l, &b->q_norm, E, false, v->qk_eps, "%s%s", p, nm->q_norm);
        mt_load_norm(l, &b->k_norm, E, false, v->qk_eps, "%s%s", p, nm->k_norm);
    }
    mt_load_vector(l, &b->ls1, E, false, "%s%s", p, nm->ls1);
    mt_load_vector(l, &b->ls2, E, false, "%s%s", p, nm->ls2);
    mt_load_linear(l, &b->fc1, v->mlp_width, E, true, "%s%s", p, nm->fc1);
    mt_load_linear(l, &b->fc2, E, v->mlp_width, true, "%s%s", p, nm->fc2);
}

static void load_weights(mt_loader *l, internvit *v, const char *vp, const char *pp, int64_t text_hidden) {
    const names *nm = v->nm;
    int64_t E = v->width, s2 = v->shuffle * v->shuffle;
    mt_load_linear(l, &v->patch_embed, E, 3 * v->patch * v->patch, true, "%s%s", vp, nm->patch);
    mt_load_matrix(l, &v->cls, 1, E, "%s%s", vp, nm->cls);
    mt_load_matrix(l, &v->pos, 1, (v->side * v->side + 1) * E, "%s%s", vp, nm->pos);
    for (int64_t b = 0; b < v->depth && !l->st; b++) {
        char p[512];
        snprintf(p, sizeof p, "%s%s%lld.", vp, nm->layers, (long long)b);
        load_block(l, v, &v->blocks[b], p);
    }
    mt_load_norm(l, &v->mlp_norm, E * s2, true, 1e-5f, "%s%s", pp, nm->mlp_norm);
    mt_load_linear(l, &v->mlp_fc1, text_hidden, E * s2, true, "%s%s", pp, nm->mlp_fc1);
    mt_load_linear(l, &v->mlp_fc2, text_hidden, text_hidden, true, "%s%s", pp, nm->mlp_fc2);
}

static void release(void *impl) {
    internvit *v = impl;
    if (v) mt_free(v->blocks);
    mt_free(v);
}

static mt_status load(mt_model *m, const cJSON *cfg, const char *path, const char *prefix, bool hf, void **impl,
                      mt_err *err) {
    internvit *v = mt_calloc(1, sizeof *v);
    if (!v) return mt_err_set(err, MT_ERR_NOMEM, "out of memory");
    mt_loader l = {m, err, read_config(cfg, path, hf, v, err)};
    if (!l.st && !m->projector_prefix)
        l.st = mt_err_set(err, MT_ERR_INTERNAL, "%s: the composition names no projector prefix", m->comp->name);
    if (!l.st) load_weights(&l, v, prefix, m->projector_prefix, m->desc.hidden_size);
    if (l.st) {
        release(v);
        return l.st;
    }
    *impl = v;
    return MT_OK;
}

static mt_status load_original(mt_model *m, const cJSON *cfg, const char *path, const char *prefix, void **impl,
                               mt_err *err) {
    return load(m, cfg, path, prefix, false, impl, err);
}

static mt_status load_hf(mt_model *m, const cJSON *cfg, const char *path, const char *prefix, void **impl,
                         mt_err *err) {
    return load(m, cfg, path, prefix, true, impl, err);
}

/* torch's cubic convolution weights (A = -0.75) of the four taps around a source position with fraction t */
static void cubic_weights(float t, float w[4]) {
    const float A = -0.75f;
    float x = t + 1.0f;
    w[0] = ((A * x - 5.0f * A) * x + 8.0f * A) * x - 4.0f * A;
    w[1] = ((A + 2.0f) * t - (A + 3.0f)) * t * t + 1.0f;
    x = 1.0f - t;
    w[2] = ((A + 2.0f) * x - (A + 3.0f)) * x * x + 1.0f;
    x += 1.0f;
    w[3] = ((A * x - 5.0f * A) * x + 8.0f * A) * x - 4.0f * A;
}

/* F.interpolate(mode="bicubic", align_corners=False) from G to n samples along one axis: the first tap's index
 * (before clamping) and the four weights of each output index. */
static void cubic_axis(int64_t G, int64_t n, int64_t *first, float *w) {
    float scale = (float)G / (float)n;
    for (int64_t o = 0; o < n; o++) {
        float src = scale * ((float)o + 0.5f) - 0.5f, f = floorf(src);
        first[o] = (int64_t)f - 1;
        cubic_weights(src - f, w + 4 * o);
    }
}

/* The patch part of the position embedding for an h x w grid: the G x G table (rows 1.. of tab) interpolated
 * bicubically, as 16 weighted row gathers so gradients reach the table. [h w, E]. */
static mt_tensor *pos_interpolated(mt_ctx *ctx, const mt_tensor *tab, int64_t G, int64_t h, int64_t w) {
    int64_t n = h * w;
    int64_t *fy = mt_arena_alloc(ctx->arena, (size_t)(h + w) * sizeof *fy), *fx = fy + h;
    float *wy = mt_arena_alloc(ctx->arena, (size_t)(h + w) * 4 * sizeof *wy), *wx = wy + 4 * h;
    int32_t *ids = mt_arena_alloc(ctx->arena, (size_t)n * sizeof *ids);
    if (!fy || !wy || !ids) return mt_ctx_fail(ctx, MT_ERR_NOMEM, "out of memory");
    cubic_axis(G, h, fy, wy);
    cubic_axis(G, w, fx, wx);
    mt_tensor *sum = NULL;
    for (int i = 0; i < 4; i++) {
        for (int j = 0; j < 4; j++) {
            mt_tensor *wt = mt_tensor_new_2d(ctx, MT_F32, n, 1);
            if (!wt) return NULL;
            for (int64_t y = 0; y < h; y++) {
                int64_t sy = MT_MIN(MT_MAX(fy[y] + i, 0), G - 1);
                for (int64_t x = 0; x < w; x++) {
                    int64_t sx = MT_MIN(MT_MAX(fx[x] + j, 0), G - 1);
                    ids[y * w + x] = (int32_t)(1 + sy * G + sx);
                    mt_f32(wt)[y * w + x] = wy[4 * y + i] * wx[4 * x + j];
                }
            }
            mt_tensor *term = mt_op_scale_rows(ctx, mt_op_embedding(ctx, tab, ids, n), wt);
            sum = sum ? mt_op_add(ctx, sum, term) : term;
        }
    }
    return sum;
}

/* [CLS, patches] of every tile plus the position embedding: [T (1 + g), E]. */
static mt_tensor *embeddings(const internvit *v, mt_ctx *ctx, const mt_tensor *patches, int64_t T, int64_t gh,
                             int64_t gw, const mt_dump *dump) {
    int64_t g = gh * gw, seq = g + 1, E = v->width, G = v->side;
    int64_t *idx = mt_arena_alloc(ctx->arena, (size_t)(T * seq) * 2 * sizeof *idx), *pidx = idx + T * seq;
    int32_t *ids = mt_arena_alloc(ctx->arena, (size_t)seq * sizeof *ids);
    if (!idx || !ids) return mt_ctx_fail(ctx, MT_ERR_NOMEM, "out of memory");
    for (int64_t t = 0; t < T; t++) {
        idx[t * seq] = T * g; /* the CLS row, appended after the patches */
        for (int64_t k = 0; k < g; k++) idx[t * seq + 1 + k] = t * g + k;
        for (int64_t k = 0; k < seq; k++) pidx[t * seq + k] = k;
    }
    for (int64_t k = 0; k < seq; k++) ids[k] = (int32_t)k;
    mt_tensor *x = mt_op_gather_rows(ctx, mt_op_concat_rows(ctx, patches, mt_op_embedding(ctx, &v->cls, ids, 1)), idx,
                                     T * seq);
    mt_tensor *tab = mt_op_reshape(ctx, &v->pos, 2, (int64_t[]){G * G + 1, E});
    mt_tensor *pos = gh == G && gw == G ? mt_op_embedding(ctx, tab, ids, seq)
                                        : mt_op_concat_rows(ctx, mt_op_embedding(ctx, tab, ids, 1),
                                                            pos_interpolated(ctx, tab, G, gh, gw));
    x = mt_op_add(ctx, x, mt_op_gather_rows(ctx, pos, pidx, T * seq));
    mt_dump_tensor(dump, x, "vision_embeddings");
    return x;
}

/* All tiles of img in one pass (the checks, then every tile's rows). */
static mt_tensor *encode_tiles(const internvit *v, mt_ctx *ctx, const mt_image_input *img, const mt_dump *dump) {
    mt_image_grid gr = img->grid;
    int64_t p = v->patch, P = 3 * p * p, E = v->width, s = v->shuffle;
    if (gr.t < 1 || gr.h < 1 || gr.h != gr.w || gr.h % s || gr.t * gr.h * gr.w != img->n_patches ||
        (img->patch_dim && img->patch_dim != P))
        return mt_ctx_fail(ctx, MT_ERR_INVALID_ARG, "InternViT takes square tiles of a patch grid divisible by %lld: "
                           "got grid %lldx%lldx%lld for %lld patches of %lld values (%lld expected)", (long long)s,
                           (long long)gr.t, (long long)gr.h, (long long)gr.w, (long long)img->n_patches,
                           (long long)img->patch_dim, (long long)P);
    int64_t T = gr.t, gh = gr.h, gw = gr.w, g = gh * gw, seq = g + 1, S = gh * p;

    /* the tiles [T, 3, S, S] cut into patch rows (channel, y, x), the Conv2d kernel's order */
    float *cut = mt_arena_alloc(ctx->arena, (size_t)(T * g * P) * sizeof *cut);
    if (!cut) return mt_ctx_fail(ctx, MT_ERR_NOMEM, "out of memory");
    for (int64_t t = 0; t < T; t++)
        for (int64_t py = 0; py < gh; py++)
            for (int64_t px = 0; px < gw; px++) {
                float *row = cut + ((t * gh + py) * gw + px) * P;
                for (int64_t c = 0; c < 3; c++)
                    for (int64_t dy = 0; dy < p; dy++)
                        memcpy(row + (c * p + dy) * p, img->pixels + ((t * 3 + c) * S + py * p + dy) * S + px * p,
                               (size_t)p * sizeof(float));
            }
    mt_tensor pv = mt_tensor_wrap(MT_F32, 2, (int64_t[]){T * g, P}, cut);
    mt_tensor *x = mt_nn_linear(ctx, &pv, &v->patch_embed);
    mt_dump_tensor(dump, x, "patch_embed");
    x = embeddings(v, ctx, x, T, gh, gw, dump);

    /* Tiles attend only within themselves, so outside training the blocks run one tile at a time: a block's
     * activations are one tile's (1025 rows, ~20 MB at the widest) and stay in cache, where all tiles at once
     * stream ~120 MB per block for 7 tiles through memory. With a tape the graph needs one tensor: all at once. */
    int64_t step = ctx->tape ? T : 1;
    int64_t *cu = mt_arena_alloc(ctx->arena, (size_t)(step + 1) * sizeof *cu);
    if (!x || !cu) return mt_ctx_fail(ctx, MT_ERR_NOMEM, "out of memory");
    for (int64_t t = 0; t <= step; t++) cu[t] = t * seq;
    mt_attn_opts ao = {.scale = 1.0f / sqrtf((float)(E / v->heads)), .cu_seqlens = cu, .n_seg = step};
    mt_tensor *all = mt_tensor_new_2d(ctx, MT_F32, T * seq, E), *res = mt_tensor_new_2d(ctx, MT_F32, step * seq, E);
    /* a dump wants each block's output over all tiles: gathered here when the tiles run apart */
    mt_tensor **seen = dump && step < T ? mt_arena_alloc(ctx->arena, (size_t)v->run * sizeof *seen) : NULL;
    for (int64_t b = 0; seen && b < v->run; b++)
        if (!(seen[b] = mt_tensor_new_2d(ctx, MT_F32, T * seq, E))) return NULL;
    if ((dump && step < T && !seen) || !all || !res) return mt_ctx_fail(ctx, MT_ERR_NOMEM, "out of memory");
    x = mt_ctx_rewind_keep(ctx, mt_arena_save(ctx->arena), all, x);
    size_t tile_bytes = (size_t)(step * seq * E) * sizeof(float);
    for (int64_t t0 = 0; t0 < T && x; t0 += step) {
        mt_tensor view = mt_tensor_wrap(MT_F32, 2, (int64_t[]){step * seq, E}, mt_f32(x) + t0 * seq * E);
        mt_tensor *h = step == T ? x : &view;
        for (int64_t b = 0; b < v->run; b++) {
            mt_arena_mark mark = mt_arena_save(ctx->arena);
            h = mt_nn_vit_block(ctx, &v->blocks[b], h, (int)v->heads, NULL, NULL, &ao, v->act);
            if (h && seen) memcpy(mt_f32(seen[b]) + t0 * seq * E, h->data, tile_bytes);
            else if (!seen) mt_dump_tensor(dump, h, "vision_block_%lld", (long long)b);
            h = mt_ctx_rewind_keep(ctx, mark, res, h);
        }
        if (step == T) x = h;
        else if (h) memcpy(mt_f32(x) + t0 * seq * E, h->data, tile_bytes);
        else x = NULL;
    }
    for (int64_t b = 0; seen && b < v->run; b++) mt_dump_tensor(dump, seen[b], "vision_block_%lld", (long long)b);
    if (!x) return NULL;

    /* pixel shuffle: rows of each s x s block, in (row offset, column offset) order, become one row */
    int64_t hs = gh / s, ws = gw / s, units = T * hs * ws;
    int64_t *idx = mt_arena_alloc(ctx->arena, (size_t)(units * s * s) * sizeof *idx);
    if (!idx) return mt_ctx_fail(ctx, MT_ERR_NOMEM, "out of memory");
    int64_t k = 0;
    for (int64_t t = 0; t < T; t++)
        for (int64_t o = 0; o < hs * ws; o++) {
            int64_t a = v->ps_v1 ? o % hs : o / ws, c = v->ps_v1 ? o / hs : o % ws;
            for (int64_t di = 0; di < s; di++)
                for (int64_t dj = 0; dj < s; dj++) idx[k++] = t * seq + 1 + (a * s + di) * gw + c * s + dj;
        }
    mt_tensor *y = mt_op_reshape(ctx, mt_op_gather_rows(ctx, x, idx, k), 2, (int64_t[]){units, E * s * s});
    mt_dump_tensor(dump, y, "pixel_shuffle");
    y = mt_nn_mlp(ctx, mt_nn_norm(ctx, y, &v->mlp_norm), &v->mlp_fc1, &v->mlp_fc2, v->proj_act);
    mt_dump_tensor(dump, y, "merger");
    return y;
}

/* Outside training, at most this many tiles go through the tower at once: a video of hundreds of frames then holds
 * its merged rows and one pass's activations (8 tiles of 448: ~35 MB of block input at width 1024), not every
 * frame's. Tiles never attend to each other, so the passes give the rows one pass would. */
#define MAX_TILES_PER_PASS 8

static mt_tensor *encode(const mt_model *m, const void *impl, mt_ctx *ctx, const mt_image_input *img,
                         mt_tensor **deepstack, int *n_deep, const mt_dump *dump) {
    const internvit *v = impl;
    (void)m;
    (void)deepstack;
    *n_deep = 0;
    mt_image_grid gr = img->grid;
    int64_t s = v->shuffle, T = gr.t;
    /* a dump wants each intermediate over all tiles; a bad grid gets encode_tiles' message */
    if (ctx->tape || (dump && dump->fn) || T <= MAX_TILES_PER_PASS || gr.h != gr.w || gr.h < s || gr.h % s ||
        gr.t * gr.h * gr.w != img->n_patches)
        return encode_tiles(v, ctx, img, dump);
    int64_t per = (gr.h / s) * (gr.w / s), H = v->mlp_fc2.w.shape[0], S = gr.h * v->patch;
    mt_tensor *out = mt_tensor_new_2d(ctx, MT_F32, T * per, H);
    if (!out) return mt_ctx_fail(ctx, MT_ERR_NOMEM, "out of memory for %lld tiles' features", (long long)T);
    for (int64_t t0 = 0; t0 < T; t0 += MAX_TILES_PER_PASS) {
        int64_t n = MT_MIN(MAX_TILES_PER_PASS, T - t0);
        mt_image_input part = *img;
        part.pixels = img->pixels + t0 * 3 * S * S;
        part.grid.t = n;
        part.n_patches = n * gr.h * gr.w;
        mt_arena_mark mark = mt_arena_save(ctx->arena);
        mt_tensor *y = encode_tiles(v, ctx, &part, NULL);
        if (!y) return NULL;
        memcpy(mt_f32(out) + t0 * per * H, y->data, (size_t)(n * per * H) * sizeof(float));
        mt_arena_restore(ctx->arena, mark);
    }
    return out;
}

/* pixel_values [T, 3, S, S] as the processor makes them: T tiles of (S / p)^2 patches. */
static mt_status tiles_input(const void *impl, const int64_t shape[4], const float *pixels, mt_image_input *out,
                             mt_err *err) {
    const internvit *v = impl;
    int64_t p = v->patch;
    if (shape[0] < 1 || shape[1] != 3 || shape[2] != shape[3] || shape[2] < p || shape[2] % p)
        return mt_err_set(err, MT_ERR_INVALID_ARG, "pixel values [%lld, %lld, %lld, %lld]: InternViT takes [tiles, 3, "
                          "S, S] with S a multiple of the patch size %lld", (long long)shape[0], (long long)shape[1],
                          (long long)shape[2], (long long)shape[3], (long long)p);
    int64_t side = shape[2] / p;
    *out = (mt_image_input){.pixels = pixels, .n_patches = shape[0] * side * side, .grid = {shape[0], side, side},
                            .patch_dim = 3 * p * p};
    return MT_OK;
}

const mt_vision_part mt_vision_internvit = {"internvit", load_original, release, encode, NULL, NULL, tiles_input};
const mt_vision_part mt_vision_internvit_hf = {"internvit (transformers layout)", load_hf, release, encode, NULL, NULL,
                                               tiles_input};
