/* models/qwen3_vl_vision: the vision tower of Qwen3-VL and Qwen3-VL-MoE - a ViT over the processor's patches with a
 * learned position embedding interpolated to each image's grid, 2-D rotary attention per frame, the 2x2 patch merger,
 * and the DeepStack mergers whose outputs the decoder adds to the image rows of its first layers.
 *
 * Reference: transformers 5.0.0.dev0 (git ccc7d90bcb), models/qwen3_vl/modeling_qwen3_vl.py (Qwen3VLVisionModel:
 * fast_pos_embed_interpolate, Qwen3VLVisionBlock, Qwen3VLVisionPatchMerger with and without use_postshuffle_norm).
 *
 * Shapes: N patches of one image in the processor's merge-block order (frame, block row, block col, then 2 x 2),
 * P = 3 * temporal * patch^2 pixel values per patch, E vision width, M = merge^2, G position-embedding grid side,
 * H text hidden.
 *
 *     | step          | what                                                                                      |
 *     |---------------|-------------------------------------------------------------------------------------------|
 *     | patch_embed   | Conv3d with bias as a matmul [N, P] x [E, P]^T + b                                        |
 *     | pos_embed     | G x G table sampled bilinearly at y = linspace(0, G-1, h), x = linspace(0, G-1, w)         |
 *     | blocks        | x + proj(attn(norm1 x)), x + fc2(gelu_tanh(fc1(norm2 x))); LayerNorm eps 1e-6, per frame  |
 *     | merger        | LayerNorm(E) per patch, M patches concatenated, fc1, exact GELU, fc2 -> [N / M, H]        |
 *     | deepstack j   | after block deepstack_visual_indexes[j]: M patches concatenated, LayerNorm(E M), fc1,   |
 *     |               | GELU, fc2 -> [N / M, H]                                                                   |
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "models/config.h"
#include "models/model.h"
#include "nn/moe.h"
#include "nn/rope.h"
#include "nn/vit.h"

#define MAX_BLOCKS 512


typedef struct merger {
    mt_norm norm;
    mt_linear fc1, fc2;
    bool postshuffle; /* norm over the concatenated M patches (DeepStack) rather than each patch */
} merger;

typedef struct qwen3_vision {
    int64_t depth, width, heads, mlp_width, patch, temporal, merge, in_chans, out_hidden, side;
    mt_act act;
    mt_linear patch_embed; /* [E, P] + bias */
    mt_tensor pos_embed;   /* [G^2, E] */
    mt_vit_block *blocks;
    merger merger;
    int n_deep;
    int64_t deep_at[MT_MAX_DEEPSTACK]; /* block index of each DeepStack level */
    merger deep[MT_MAX_DEEPSTACK];
} qwen3_vision;

static mt_status read_config(const cJSON *cfg, const char *path, int64_t text_hidden, qwen3_vision *q, mt_err *err) {
    const cJSON *vc = mt_cfg_section(cfg, "vision_config", false);
    if (!vc) return mt_err_set(err, MT_ERR_FORMAT, "%s: missing object \"vision_config\"", path);
    mt_cfg r = {path, "vision_config", err, MT_OK};
    q->depth = mt_cfg_int(&r, vc, "depth", 1, MAX_BLOCKS);
    q->width = mt_cfg_int(&r, vc, "hidden_size", 1, 1 << 16);
    q->mlp_width = mt_cfg_int(&r, vc, "intermediate_size", 1, 1 << 20);
    q->heads = mt_cfg_int(&r, vc, "num_heads", 1, 1024);
    q->patch = mt_cfg_int_opt(&r, vc, "patch_size", 1, 1024, 16);
    q->temporal = mt_cfg_int_opt(&r, vc, "temporal_patch_size", 1, 64, 2);
    q->merge = mt_cfg_int_opt(&r, vc, "spatial_merge_size", 1, 64, 2);
    q->in_chans = mt_cfg_int_either(&r, vc, "in_channels", "in_chans", 1, 16, 3);
    q->out_hidden = mt_cfg_int(&r, vc, "out_hidden_size", 1, 1 << 17);
    int64_t n_pos = mt_cfg_int(&r, vc, "num_position_embeddings", 1, 1 << 24);
    q->act = mt_cfg_act(&r, vc, "gelu_pytorch_tanh");
    mt_cfg_dtype(&r, vc);
    int64_t deep[MT_MAX_DEEPSTACK + 1];
    size_t n_deep = mt_cfg_int_list(&r, vc, "deepstack_visual_indexes", INT64_MIN, INT64_MAX, deep, MT_MAX_DEEPSTACK + 1);
    if (r.st) return r.st;
    if (q->width % q->heads || (q->width / q->heads) % 4)
        return mt_err_set(err, MT_ERR_FORMAT, "%s: vision width %lld is not a multiple of 4 * %lld heads", path,
                          (long long)q->width, (long long)q->heads);
    q->side = (int64_t)llround(sqrt((double)n_pos));
    if (q->side * q->side != n_pos)
        return mt_err_set(err, MT_ERR_FORMAT, "%s: vision_config.num_position_embeddings %lld is not a square", path,
                          (long long)n_pos);
    if (q->out_hidden != text_hidden)
        return mt_err_set(err, MT_ERR_FORMAT, "%s: vision out_hidden_size %lld differs from the text hidden_size %lld",
                          path, (long long)q->out_hidden, (long long)text_hidden);
    if (n_deep > MT_MAX_DEEPSTACK)
        return mt_err_set(err, MT_ERR_LIMIT, "%s: more than %d deepstack_visual_indexes", path, MT_MAX_DEEPSTACK);
    for (size_t j = 0; j < n_deep; j++) {
        if (deep[j] < 0 || deep[j] >= q->depth)
            return mt_err_set(err, MT_ERR_FORMAT, "%s: deepstack_visual_indexes[%zu] = %lld is not a block of the %lld",
                              path, j, (long long)deep[j], (long long)q->depth);
        q->deep_at[j] = deep[j];
    }
    q->n_deep = (int)n_deep;
    q->blocks = mt_calloc((size_t)q->depth, sizeof *q->blocks);
    return q->blocks ? MT_OK : mt_err_set(err, MT_ERR_NOMEM, "out of memory");
}

static void load_merger(mt_loader *l, const qwen3_vision *q, merger *mg, bool postshuffle, const char *prefix) {
    int64_t unit = q->width * q->merge * q->merge;
    mg->postshuffle = postshuffle;
    mt_load_norm(l, &mg->norm, postshuffle ? unit : q->width, true, 1e-6f, "%snorm.", prefix);
    mt_load_linear(l, &mg->fc1, unit, unit, true, "%slinear_fc1.", prefix);
    mt_load_linear(l, &mg->fc2, q->out_hidden, unit, true, "%slinear_fc2.", prefix);
}

static void load_weights(mt_loader *l, qwen3_vision *q, const char *vp) {
    int64_t E = q->width, P = q->in_chans * q->temporal * q->patch * q->patch;
    mt_load_linear(l, &q->patch_embed, E, P, true, "%spatch_embed.proj.", vp);
    mt_load_matrix(l, &q->pos_embed, q->side * q->side, E, "%spos_embed.weight", vp);
    for (int64_t b = 0; b < q->depth && !l->st; b++) {
        mt_vit_block *k = &q->blocks[b];
        long long bi = (long long)b;
        mt_load_norm(l, &k->norm1, E, true, 1e-6f, "%sblocks.%lld.norm1.", vp, bi);
        mt_load_norm(l, &k->norm2, E, true, 1e-6f, "%sblocks.%lld.norm2.", vp, bi);
        mt_load_linear(l, &k->qkv, 3 * E, E, true, "%sblocks.%lld.attn.qkv.", vp, bi);
        mt_load_linear(l, &k->proj, E, E, true, "%sblocks.%lld.attn.proj.", vp, bi);
        mt_load_linear(l, &k->fc1, q->mlp_width, E, true, "%sblocks.%lld.mlp.linear_fc1.", vp, bi);
        mt_load_linear(l, &k->fc2, E, q->mlp_width, true, "%sblocks.%lld.mlp.linear_fc2.", vp, bi);
        mt_load_split(l, &k->qkv, &k->q, 0, E);
        mt_load_split(l, &k->qkv, &k->k, E, E);
        mt_load_split(l, &k->qkv, &k->v, 2 * E, E);
    }
    char p[512];
    snprintf(p, sizeof p, "%smerger.", vp);
    load_merger(l, q, &q->merger, false, p);
    for (int j = 0; j < q->n_deep; j++) {
        snprintf(p, sizeof p, "%sdeepstack_merger_list.%d.", vp, j);
        load_merger(l, q, &q->deep[j], true, p);
    }
}

static void release(void *impl) {
    qwen3_vision *q = impl;
    if (q) mt_free(q->blocks);
    mt_free(q);
}

static mt_status load(mt_model *m, const cJSON *cfg, const char *path, const char *prefix, void **impl, mt_err *err) {
    qwen3_vision *q = mt_calloc(1, sizeof *q);
    if (!q) return mt_err_set(err, MT_ERR_NOMEM, "out of memory");
    mt_loader l = {m, err, read_config(cfg, path, m->desc.hidden_size, q, err)};
    if (!l.st) load_weights(&l, q, prefix);
    if (l.st) {
        release(q);
        return l.st;
    }
    *impl = q;
    return MT_OK;
}

/* torch.linspace(0, end, n) on the CPU: the first half counts up from 0, the second half down from end. */
static float linspace_at(float end, int64_t n, int64_t i) {
    if (n == 1) return 0.0f;
    float step = end / (float)(n - 1);
    return i < n / 2 ? step * (float)i : end - step * (float)(n - 1 - i);
}

/* The position embedding of each patch [N, E]: the table sampled bilinearly at the patch's (row, col), the four
 * corners summed in transformers' order. */
static mt_tensor *position_embedding(const qwen3_vision *q, mt_ctx *ctx, const int64_t *rows, const int64_t *cols,
                                     int64_t N, mt_image_grid g) {
    int64_t G = q->side;
    int32_t *ids = mt_arena_alloc(ctx->arena, (size_t)(4 * N) * sizeof *ids);
    float *wts = mt_arena_alloc(ctx->arena, (size_t)(4 * N) * sizeof *wts);
    if (!ids || !wts) return mt_ctx_fail(ctx, MT_ERR_NOMEM, "out of memory");
    for (int64_t n = 0; n < N; n++) {
        float y = linspace_at((float)(G - 1), g.h, rows[n]), x = linspace_at((float)(G - 1), g.w, cols[n]);
        int64_t y0 = (int64_t)y, x0 = (int64_t)x, y1 = MT_MIN(y0 + 1, G - 1), x1 = MT_MIN(x0 + 1, G - 1);
        float dy = y - (float)y0, dx = x - (float)x0;
        int64_t corner[4] = {y0 * G + x0, y0 * G + x1, y1 * G + x0, y1 * G + x1};
        float w[4] = {(1 - dy) * (1 - dx), (1 - dy) * dx, dy * (1 - dx), dy * dx};
        for (int c = 0; c < 4; c++) {
            ids[c * N + n] = (int32_t)corner[c];
            wts[c * N + n] = w[c];
        }
    }
    mt_tensor *sum = NULL;
    for (int c = 0; c < 4; c++) {
        mt_tensor *wc = mt_tensor_new_2d(ctx, MT_F32, N, 1);
        if (!wc) return NULL;
        memcpy(wc->data, wts + c * N, (size_t)N * sizeof(float));
        mt_tensor *term = mt_op_scale_rows(ctx, mt_op_embedding(ctx, &q->pos_embed, ids + c * N, N), wc);
        sum = sum ? mt_op_add(ctx, sum, term) : term;
    }
    return sum;
}

static mt_tensor *merge(mt_ctx *ctx, const qwen3_vision *q, const merger *mg, const mt_tensor *x, int64_t units) {
    int64_t unit = q->width * q->merge * q->merge;
    mt_tensor *y;
    if (mg->postshuffle) y = mt_nn_norm(ctx, mt_op_reshape(ctx, x, 2, (int64_t[]){units, unit}), &mg->norm);
    else y = mt_op_reshape(ctx, mt_nn_norm(ctx, x, &mg->norm), 2, (int64_t[]){units, unit});
    return mt_nn_linear(ctx, mt_op_act(ctx, mt_nn_linear(ctx, y, &mg->fc1), MT_ACT_GELU_ERF), &mg->fc2);
}

/* The tower over frames of one image or video: pixels [t h w, P] of grid g (checked by encode). */
static mt_tensor *encode_frames(const qwen3_vision *q, mt_ctx *ctx, const float *pixels, mt_image_grid g,
                                mt_tensor **deepstack, const mt_dump *dump) {
    int64_t M = q->merge, E = q->width, N = g.t * g.h * g.w, P = q->in_chans * q->temporal * q->patch * q->patch;
    int64_t *rows = mt_arena_alloc(ctx->arena, (size_t)N * 2 * sizeof(int64_t)), *cols = rows + N;
    int64_t *cu = mt_arena_alloc(ctx->arena, (size_t)(g.t + 1) * sizeof(int64_t));
    if (!rows || !cu) return mt_ctx_fail(ctx, MT_ERR_NOMEM, "out of memory");
    mt_nn_merge_block_coords(g.t, g.h, g.w, M, rows, cols);
    for (int64_t f = 0; f <= g.t; f++) cu[f] = f * g.h * g.w;

    mt_tensor pv = mt_tensor_wrap(MT_F32, 2, (int64_t[]){N, P}, (float *)pixels);
    mt_tensor *x = mt_nn_linear(ctx, &pv, &q->patch_embed);
    mt_dump_tensor(dump, x, "patch_embed");
    x = mt_op_add(ctx, x, position_embedding(q, ctx, rows, cols, N, g));
    mt_dump_tensor(dump, x, "pos_embed");
    mt_tensor *cos, *sin;
    if (!x || mt_nn_rope_2d(ctx, rows, cols, N, E / q->heads, 10000.0, &cos, &sin)) return NULL;
    int heads = (int)q->heads, units = (int)(N / (M * M));
    mt_attn_opts ao = {.scale = 1.0f / sqrtf((float)(E / q->heads)), .cu_seqlens = cu, .n_seg = g.t};
    /* the DeepStack features are kept; everything else of a block is scratch */
    for (int j = 0; j < q->n_deep; j++) deepstack[j] = NULL;
    mt_tensor *res = mt_tensor_new_2d(ctx, MT_F32, N, E);
    x = mt_ctx_rewind_keep(ctx, mt_arena_save(ctx->arena), res, x);
    for (int64_t b = 0; b < q->depth; b++) {
        mt_arena_mark mark = mt_arena_save(ctx->arena);
        x = mt_nn_vit_block(ctx, &q->blocks[b], x, heads, cos, sin, &ao, q->act);
        mt_dump_tensor(dump, x, "vision_block_%lld", (long long)b);
        bool deep_here = false;
        for (int j = 0; j < q->n_deep; j++) deep_here |= q->deep_at[j] == b;
        if (deep_here) {
            /* computed now, before the rewind, and kept: the mark moves past them */
            x = mt_ctx_rewind_keep(ctx, mark, res, x);
            for (int j = 0; j < q->n_deep; j++)
                if (q->deep_at[j] == b) deepstack[j] = merge(ctx, q, &q->deep[j], x, units);
            continue;
        }
        x = mt_ctx_rewind_keep(ctx, mark, res, x);
    }
    mt_tensor *y = merge(ctx, q, &q->merger, x, units);
    mt_dump_tensor(dump, y, "merger");
    for (int j = 0; j < q->n_deep; j++) {
        if (!deepstack[j]) return NULL;
        mt_dump_tensor(dump, deepstack[j], "deepstack_%d", j);
    }
    return y;
}

/* Patches per encode_frames call: enough frames for full-width matrix products, few enough that a long video's
 * tower scratch stays that of a few frames. */
#define CHUNK_PATCHES 4096

/* Attention stays within a frame (a temporal group), and the position embedding and 2-D rotary restart each frame:
 * a video runs through the tower a few frames at a time with the same result, each chunk's scratch freed once its
 * merged rows and DeepStack rows are copied out. In training all activations stay on the tape anyway: one call. */
static mt_tensor *encode(const mt_model *m, const void *impl, mt_ctx *ctx, const mt_image_input *img,
                         mt_tensor **deepstack, int *n_deep, const mt_dump *dump) {
    const qwen3_vision *q = impl;
    (void)m;
    mt_image_grid g = img->grid;
    int64_t M = q->merge, N = img->n_patches, P = q->in_chans * q->temporal * q->patch * q->patch;
    const char *what = img->video ? "video" : "image";
    *n_deep = q->n_deep;
    if (g.t < 1 || g.h < 1 || g.w < 1 || g.h % M || g.w % M || g.t > 4096 || g.h > 65536 || g.w > 65536 ||
        g.t * g.h * g.w != N)
        return mt_ctx_fail(ctx, MT_ERR_INVALID_ARG, "%s grid %lldx%lldx%lld does not fit %lld patches (merge %lld)",
                           what, (long long)g.t, (long long)g.h, (long long)g.w, (long long)N, (long long)M);
    if (img->patch_dim && img->patch_dim != P)
        return mt_ctx_fail(ctx, MT_ERR_INVALID_ARG, "%s patches have %lld values, the tower takes %lld", what,
                           (long long)img->patch_dim, (long long)P);
    int64_t frame = g.h * g.w, per = MT_MAX(1, CHUNK_PATCHES / frame);
    if (ctx->tape || per >= g.t) return encode_frames(q, ctx, img->pixels, g, deepstack, dump);
    int64_t frame_units = frame / (M * M), H = q->out_hidden;
    mt_tensor *out = mt_tensor_new_2d(ctx, MT_F32, g.t * frame_units, H);
    for (int j = 0; j < q->n_deep; j++) deepstack[j] = mt_tensor_new_2d(ctx, MT_F32, g.t * frame_units, H);
    for (int j = 0; j < q->n_deep; j++)
        if (!deepstack[j]) return NULL;
    if (!out) return NULL;
    for (int64_t f = 0; f < g.t; f += per) {
        mt_image_grid part = {MT_MIN(per, g.t - f), g.h, g.w};
        size_t at = (size_t)(f * frame_units * H), bytes = (size_t)(part.t * frame_units * H) * sizeof(float);
        mt_arena_mark mark = mt_arena_save(ctx->arena);
        mt_tensor *ds[MT_MAX_DEEPSTACK];
        mt_tensor *y = encode_frames(q, ctx, img->pixels + f * frame * P, part, ds, dump);
        if (!y) return NULL;
        memcpy(mt_f32(out) + at, mt_f32(y), bytes);
        for (int j = 0; j < q->n_deep; j++) memcpy(mt_f32(deepstack[j]) + at, mt_f32(ds[j]), bytes);
        if (!dump || !dump->fn) mt_arena_restore(ctx->arena, mark);
    }
    return out;
}

static int deepstack_levels(const void *impl) { return ((const qwen3_vision *)impl)->n_deep; }

static bool is_projector(const char *name) {
    return strncmp(name, "merger.", 7) == 0 || strncmp(name, "deepstack_merger_list.", 22) == 0;
}

const mt_vision_part mt_vision_qwen3_vl = {"qwen3-vl vision", load, release, encode, deepstack_levels, is_projector,
                                           NULL};
