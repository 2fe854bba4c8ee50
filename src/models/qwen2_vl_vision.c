/* models/qwen2_vl_vision: the vision tower and patch merger of Qwen2-VL and Qwen2.5-VL (NaViT-style ViT over the
 * processor's patches, 2-D rotary, 2x2 merger MLP).
 *
 * Reference: transformers 4.5x, models/qwen2_5_vl/modeling_qwen2_5_vl.py and models/qwen2_vl/modeling_qwen2_vl.py
 * (Qwen2_5_VisionTransformerPretrainedModel.get_window_index / rot_pos_emb).
 *
 * Shapes: N patches of one image or video (t * h * w in merge-block order), P = 3 * temporal * patch^2 pixel values per
 * patch, E vision width, M = merge^2, H text hidden.
 *
 *     | part          | Qwen2-VL                     | Qwen2.5-VL                                   |
 *     | block norms   | LayerNorm (w, b), eps 1e-6   | RMSNorm (w), eps 1e-6                        |
 *     | block MLP     | fc1 -> quick_gelu -> fc2     | down(silu(gate) * up), with biases           |
 *     | attention     | full, per image              | windows of window_size pixels, except the    |
 *     |               |                              | fullatt_block_indexes blocks                 |
 *     | merger ln_q   | LayerNorm                    | RMSNorm                                      |
 */
#include <math.h>
#include <string.h>

#include "models/config.h"
#include "models/model.h"
#include "nn/rope.h"
#include "nn/vit.h"

#define MAX_BLOCKS 512

typedef struct vision_block {
    mt_vit_block b; /* gated MLP for Qwen2.5-VL, plain for Qwen2-VL */
    bool full_attention;
} vision_block;

typedef struct qwen2_vision {
    bool v2_5;
    int64_t depth, width, heads, mlp_width, patch, temporal, merge, in_chans, window, out_hidden;
    mt_act act;
    mt_tensor patch_embed; /* [E, P] */
    vision_block *blocks;
    mt_norm merger_norm;
    mt_linear merger_fc1, merger_fc2;
} qwen2_vision;

static mt_status read_config(const cJSON *cfg, const char *path, int64_t text_hidden, qwen2_vision *q, mt_err *err) {
    const cJSON *vc = mt_cfg_section(cfg, "vision_config", false);
    if (!vc) return mt_err_set(err, MT_ERR_FORMAT, "%s: missing object \"vision_config\"", path);
    mt_cfg r = {path, "vision_config", err, MT_OK};
    q->depth = mt_cfg_int(&r, vc, "depth", 1, MAX_BLOCKS);
    q->heads = mt_cfg_int(&r, vc, "num_heads", 1, 1024);
    q->patch = mt_cfg_int_opt(&r, vc, "patch_size", 1, 1024, 14);
    q->temporal = mt_cfg_int_opt(&r, vc, "temporal_patch_size", 1, 64, 2);
    q->merge = mt_cfg_int_opt(&r, vc, "spatial_merge_size", 1, 64, 2);
    q->in_chans = mt_cfg_int_either(&r, vc, "in_chans", "in_channels", 1, 16, 3);
    if (q->v2_5) {
        q->width = mt_cfg_int(&r, vc, "hidden_size", 1, 1 << 16);
        q->mlp_width = mt_cfg_int(&r, vc, "intermediate_size", 1, 1 << 20);
        q->out_hidden = mt_cfg_int(&r, vc, "out_hidden_size", 1, 1 << 17);
        q->window = mt_cfg_int_opt(&r, vc, "window_size", 1, 1 << 16, 112);
    } else {
        q->width = mt_cfg_int(&r, vc, "embed_dim", 1, 1 << 16);
        q->mlp_width = q->width * mt_cfg_int_opt(&r, vc, "mlp_ratio", 1, 64, 4);
        q->out_hidden = mt_cfg_int(&r, vc, "hidden_size", 1, 1 << 17);
    }
    q->act = mt_cfg_act(&r, vc, q->v2_5 ? "silu" : "quick_gelu");
    mt_cfg_dtype(&r, vc);
    if (r.st) return r.st;
    if (q->width % q->heads || (q->width / q->heads) % 4)
        return mt_err_set(err, MT_ERR_FORMAT, "%s: vision width %lld is not a multiple of 4 * %lld heads", path,
                          (long long)q->width, (long long)q->heads);
    if (q->out_hidden != text_hidden)
        return mt_err_set(err, MT_ERR_FORMAT, "%s: vision out_hidden_size %lld differs from hidden_size %lld", path,
                          (long long)q->out_hidden, (long long)text_hidden);
    if (q->v2_5 && (q->window % (q->merge * q->patch) || q->window < q->merge * q->patch))
        return mt_err_set(err, MT_ERR_FORMAT, "%s: window_size %lld is not a multiple of merge x patch", path,
                          (long long)q->window);
    q->blocks = mt_calloc((size_t)q->depth, sizeof *q->blocks);
    if (!q->blocks) return mt_err_set(err, MT_ERR_NOMEM, "out of memory");
    if (!q->v2_5) {
        for (int64_t b = 0; b < q->depth; b++) q->blocks[b].full_attention = true;
        return MT_OK;
    }
    int64_t full[MAX_BLOCKS];
    size_t n_full = mt_cfg_int_list(&r, vc, "fullatt_block_indexes", 0, q->depth - 1, full, MAX_BLOCKS);
    for (size_t i = 0; i < n_full; i++) q->blocks[full[i]].full_attention = true;
    return r.st;
}

static void load_weights(mt_loader *l, qwen2_vision *q, const char *vp) {
    int64_t E = q->width, P = q->in_chans * q->temporal * q->patch * q->patch;
    mt_load_matrix(l, &q->patch_embed, E, P, "%spatch_embed.proj.weight", vp);
    for (int64_t b = 0; b < q->depth && !l->st; b++) {
        mt_vit_block *vb = &q->blocks[b].b;
        long long bi = (long long)b;
        mt_load_norm(l, &vb->norm1, E, !q->v2_5, 1e-6f, "%sblocks.%lld.norm1.", vp, bi);
        mt_load_norm(l, &vb->norm2, E, !q->v2_5, 1e-6f, "%sblocks.%lld.norm2.", vp, bi);
        mt_load_linear(l, &vb->qkv, 3 * E, E, true, "%sblocks.%lld.attn.qkv.", vp, bi);
        mt_load_linear(l, &vb->proj, E, E, true, "%sblocks.%lld.attn.proj.", vp, bi);
        if (q->v2_5) {
            mt_load_linear(l, &vb->gate, q->mlp_width, E, true, "%sblocks.%lld.mlp.gate_proj.", vp, bi);
            mt_load_linear(l, &vb->up, q->mlp_width, E, true, "%sblocks.%lld.mlp.up_proj.", vp, bi);
            mt_load_linear(l, &vb->down, E, q->mlp_width, true, "%sblocks.%lld.mlp.down_proj.", vp, bi);
        } else {
            mt_load_linear(l, &vb->fc1, q->mlp_width, E, true, "%sblocks.%lld.mlp.fc1.", vp, bi);
            mt_load_linear(l, &vb->fc2, E, q->mlp_width, true, "%sblocks.%lld.mlp.fc2.", vp, bi);
        }
        mt_load_split(l, &vb->qkv, &vb->q, 0, E);
        mt_load_split(l, &vb->qkv, &vb->k, E, E);
        mt_load_split(l, &vb->qkv, &vb->v, 2 * E, E);
    }
    int64_t merged = E * q->merge * q->merge;
    mt_load_norm(l, &q->merger_norm, E, !q->v2_5, 1e-6f, "%smerger.ln_q.", vp);
    mt_load_linear(l, &q->merger_fc1, merged, merged, true, "%smerger.mlp.0.", vp);
    mt_load_linear(l, &q->merger_fc2, q->out_hidden, merged, true, "%smerger.mlp.2.", vp);
}

static void release(void *impl) {
    qwen2_vision *q = impl;
    if (q) mt_free(q->blocks);
    mt_free(q);
}

static mt_status load(mt_model *m, const cJSON *cfg, const char *path, const char *prefix, bool v2_5, void **impl,
                      mt_err *err) {
    qwen2_vision *q = mt_calloc(1, sizeof *q);
    if (!q) return mt_err_set(err, MT_ERR_NOMEM, "out of memory");
    q->v2_5 = v2_5;
    mt_status st = read_config(cfg, path, m->desc.hidden_size, q, err);
    mt_loader l = {m, err, st};
    if (!st) load_weights(&l, q, prefix);
    if (l.st) {
        release(q);
        return l.st;
    }
    *impl = q;
    return MT_OK;
}

static mt_status load_v2(mt_model *m, const cJSON *cfg, const char *path, const char *prefix, void **impl,
                         mt_err *err) {
    return load(m, cfg, path, prefix, false, impl, err);
}

static mt_status load_v2_5(mt_model *m, const cJSON *cfg, const char *path, const char *prefix, void **impl,
                           mt_err *err) {
    return load(m, cfg, path, prefix, true, impl, err);
}

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

/* The frames of grid g (pixels [N, P], N = t * h * w) through the tower and the merger: [N / M, H] in the
 * processor's merge-unit order. */
static mt_tensor *encode_frames(const qwen2_vision *q, mt_ctx *ctx, const float *pixels, mt_image_grid g,
                                const mt_dump *dump) {
    int64_t M = q->merge, m2 = M * M, E = q->width, P = q->in_chans * q->temporal * q->patch * q->patch;
    int64_t N = g.t * g.h * g.w;
    int64_t lh = g.h / M, lw = g.w / M, units = N / m2;

    /* Patch rows and columns in the processor's merge-block order: frame, block row, block col, then M x M. */
    int64_t *rows = mt_arena_alloc(ctx->arena, (size_t)N * sizeof(int64_t) * 4);
    int64_t *cols = rows + N, *perm = rows + 2 * N, *inverse = rows + 3 * N;
    int64_t *unit_order = mt_arena_alloc(ctx->arena, (size_t)units * sizeof(int64_t));
    int64_t *cu_win = mt_arena_alloc(ctx->arena, (size_t)(units + 2) * sizeof(int64_t));
    int64_t *cu_full = mt_arena_alloc(ctx->arena, (size_t)(g.t + 1) * sizeof(int64_t));
    if (!rows || !unit_order || !cu_win || !cu_full) return mt_ctx_fail(ctx, MT_ERR_NOMEM, "out of memory");
    mt_nn_merge_block_coords(g.t, g.h, g.w, M, rows, cols);
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
        x = mt_nn_vit_block(ctx, &vb->b, x, heads, cos, sin, &ao, q->act);
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

/* Patches per encode_frames call: enough frames for full-width matrix products, few enough that a long video's
 * tower scratch stays that of a few frames. */
#define CHUNK_PATCHES 4096

/* Both towers attend only within a frame (a temporal group): full attention over the frame, or windows inside it,
 * and the 2-D rotary restarts each frame. So a video runs through the tower a few frames at a time with the same
 * result, each chunk's scratch freed once its merged rows are copied out. In training all activations stay on the
 * tape anyway: one call. */
static mt_tensor *encode(const mt_model *m, const void *impl, mt_ctx *ctx, const mt_image_input *img,
                         mt_tensor **deepstack, int *n_deep, const mt_dump *dump) {
    const qwen2_vision *q = impl;
    mt_image_grid g = img->grid;
    int64_t M = q->merge, P = q->in_chans * q->temporal * q->patch * q->patch, N = img->n_patches;
    *n_deep = 0;
    (void)deepstack;
    (void)m;
    if (g.t < 1 || g.h < 1 || g.w < 1 || g.h % M || g.w % M || g.t > 4096 || g.h > 65536 || g.w > 65536 ||
        g.t * g.h * g.w != N)
        return mt_ctx_fail(ctx, MT_ERR_INVALID_ARG, "%s grid %lldx%lldx%lld does not fit %lld patches (merge %lld)",
                           img->video ? "video" : "image", (long long)g.t, (long long)g.h, (long long)g.w,
                           (long long)N, (long long)M);
    if (img->patch_dim > 0 && img->patch_dim != P)
        return mt_ctx_fail(ctx, MT_ERR_INVALID_ARG, "%s patch rows have %lld values, the tower takes %lld",
                           img->video ? "video" : "image", (long long)img->patch_dim, (long long)P);
    int64_t frame = g.h * g.w, per = MT_MAX(1, CHUNK_PATCHES / frame);
    if (ctx->tape || per >= g.t) return encode_frames(q, ctx, img->pixels, g, dump);
    int64_t frame_units = frame / (M * M), H = q->out_hidden;
    mt_tensor *out = mt_tensor_new_2d(ctx, MT_F32, g.t * frame_units, H);
    if (!out) return NULL;
    for (int64_t f = 0; f < g.t; f += per) {
        mt_image_grid part = {MT_MIN(per, g.t - f), g.h, g.w};
        mt_arena_mark mark = mt_arena_save(ctx->arena);
        mt_tensor *y = encode_frames(q, ctx, img->pixels + f * frame * P, part, dump);
        if (!y) return NULL;
        memcpy(mt_f32(out) + f * frame_units * H, mt_f32(y), (size_t)(part.t * frame_units * H) * sizeof(float));
        if (!dump || !dump->fn) mt_arena_restore(ctx->arena, mark);
    }
    return out;
}

static bool is_projector(const char *name) { return strncmp(name, "merger.", 7) == 0; }

const mt_vision_part mt_vision_qwen2_vl = {"qwen2-vl vision", load_v2, release, encode, NULL, is_projector, NULL};
const mt_vision_part mt_vision_qwen2_5_vl = {"qwen2.5-vl vision", load_v2_5, release, encode, NULL, is_projector, NULL};
