/* tensor/ops_backward: gradients of the forward ops in tensor/ops.c and ops_train.c.
 *
 * Formulas (y the output, dy its gradient; rows are tokens):
 *
 *   | op          | gradient                                                                          |
 *   |-------------|-----------------------------------------------------------------------------------|
 *   | linear      | dx += dy W;  dW += dy^T x;  db += sum_t dy                                        |
 *   | rms_norm    | r = rsqrt(mean x^2 + eps): dx = r (g - x r^2 mean(g x)), g = dy w;  dw += dy x r  |
 *   | layer_norm  | xh = (x - mean) r: dx = r (g - mean g - xh mean(g xh));  dw += dy xh;  db += dy   |
 *   | softmax     | dx = y (dy - sum(dy y))                                                           |
 *   | rope        | the rotation by -angle                                                            |
 *   | cross-ent.  | dlogits = (softmax - onehot(target)) inv_norm dloss                               |
 *
 * Activation derivatives follow the forward's exact definitions (erf GELU, tanh GELU, quick GELU 1.702, SiLU).
 */
#include "tensor/ops_backward.h"

#include <math.h>
#include <string.h>

#include "tensor/backend.h"
#include "tensor/cpu/cpu.h"

static float *gradp(mt_ctx *ctx, mt_tensor *t) {
    mt_tensor *g = mt_grad_of(ctx, t);
    return g ? mt_f32(g) : NULL;
}

/* A float vector of any dtype as an f32 array in the arena (norm weights are small). */
static float *f32_copy(mt_ctx *ctx, const mt_tensor *w) {
    int64_t n = mt_tensor_numel(w);
    float *f = mt_arena_alloc(ctx->arena, (size_t)n * sizeof(float));
    if (!f) {
        mt_ctx_fail(ctx, MT_ERR_NOMEM, "out of memory in backward");
        return NULL;
    }
    mt_cpu_to_f32(n, w->data, w->dtype, f);
    return f;
}

/* ---- linear ---- */

/* dx += dy W for a weight in any dtype: the GEMM widens bf16 / f16 panels of W as it packs them, so the weight is
 * read in place and no f32 copy is made. */
static void linear_dx(mt_ctx *ctx, const mt_tensor *w, const float *dy, int64_t T, int64_t N, int64_t K, float *dx) {
    mt_ctx_backend(ctx)->matmul(ctx->pool, T, K, N, dy, N, 1, w->data, w->dtype, w->stride[0], w->stride[1], dx, K,
                                true);
}

/* Rows of dy that are all zero add nothing to dx, dW or db: in training the LM head gets one for every token
 * whose label is masked (prompt, image and padding tokens, often half of a multimodal sample or more). Backward
 * runs over the stretches of rows that hold a non-zero, so those tokens cost a scan instead of two GEMMs. Zero
 * rows add exact zeros, so stretches closer than ZERO_GAP rows are merged: fewer, larger products for the same
 * result. */
enum { ZERO_GAP = 32 };

typedef struct live_job {
    const float *dy;
    int64_t N;
    bool *live;
} live_job;

static void live_rows(void *user, int64_t r0, int64_t r1) {
    live_job *j = user;
    for (int64_t t = r0; t < r1; t++) {
        const float *row = j->dy + t * j->N;
        int64_t c = 0;
        while (c < j->N && row[c] == 0.0f) c++;
        j->live[t] = c < j->N;
    }
}

/* Stretches [seg[2i], seg[2i+1]) of rows to run; returns their count, or -1 (failure in ctx). */
static int64_t live_stretches(mt_ctx *ctx, const float *dy, int64_t T, int64_t N, int64_t **seg) {
    live_job j = {.dy = dy, .N = N, .live = mt_arena_alloc(ctx->arena, (size_t)T)};
    *seg = mt_arena_alloc(ctx->arena, (size_t)(2 * T + 2) * sizeof **seg);
    if (!j.live || !*seg) {
        mt_ctx_fail(ctx, MT_ERR_NOMEM, "out of memory in linear backward");
        return -1;
    }
    mt_ctx_parallel_rows(ctx, T, N, live_rows, &j);
    int64_t n = 0;
    for (int64_t t = 0; t < T; t++) {
        if (!j.live[t]) continue;
        if (n > 0 && t - (*seg)[2 * n - 1] <= ZERO_GAP) {
            (*seg)[2 * n - 1] = t + 1;
        } else {
            (*seg)[2 * n] = t;
            (*seg)[2 * n + 1] = t + 1;
            n++;
        }
    }
    return n;
}

void mt_bw_linear(mt_ctx *ctx, const mt_tape_node *n) {
    const mt_tensor *x = &n->in[0], *w = &n->in[1];
    const float *dy = mt_f32(n->out->grad);
    int64_t T = x->shape[0], K = x->shape[1], N = w->shape[0];
    if (n->src[1] && (w->dtype != MT_F32 || w->stride[1] != 1)) {
        mt_ctx_fail(ctx, MT_ERR_INTERNAL, "linear backward: a trained weight must be f32 and row-major");
        return;
    }
    int64_t *seg;
    int64_t n_seg = live_stretches(ctx, dy, T, N, &seg);
    if (n_seg <= 0) return; /* failed, or dy is all zero: nothing to add */
    float *dx = NULL, *dw = NULL, *db = NULL;
    if (n->src[0] && !(dx = gradp(ctx, n->src[0]))) return;
    if (n->src[1] && !(dw = gradp(ctx, n->src[1]))) return;
    if (n->src[2] && !(db = gradp(ctx, n->src[2]))) return;
    for (int64_t s = 0; s < n_seg; s++) {
        int64_t t0 = seg[2 * s], rows = seg[2 * s + 1] - t0;
        const float *dys = dy + t0 * N;
        if (dx) linear_dx(ctx, w, dys, rows, N, K, dx + t0 * K);
        if (dw) mt_cpu_matmul_f32(ctx->pool, N, K, rows, dys, 1, N, mt_f32(x) + t0 * K, K, 1, dw, K, true);
        if (db)
            for (int64_t t = 0; t < rows; t++) mt_cpu_axpy(N, 1.0f, dys + t * N, db);
    }
}

void mt_bw_embedding(mt_ctx *ctx, const mt_tape_node *n) {
    const int32_t *ids = n->aux;
    int64_t C = n->in[0].shape[1];
    float *dt = gradp(ctx, n->src[0]);
    if (!dt) return;
    const float *dy = mt_f32(n->out->grad);
    for (int64_t t = 0; t < n->i[0]; t++) mt_cpu_axpy(C, 1.0f, dy + t * C, dt + (int64_t)ids[t] * C);
}

/* ---- norms ---- */

typedef struct norm_bw {
    const float *x, *dy, *w, *b;
    float *dx, *dw, *db, *stat; /* stat: per row r, and mean for layer norm */
    int64_t T, C;
    float eps;
    bool layer;
} norm_bw;

static void norm_rows(void *user, int64_t r0, int64_t r1) {
    norm_bw *j = user;
    int64_t C = j->C;
    for (int64_t t = r0; t < r1; t++) {
        const float *x = j->x + t * C, *dy = j->dy + t * C;
        double mean = 0, ss = 0;
        if (j->layer) {
            for (int64_t c = 0; c < C; c++) mean += x[c];
            mean /= (double)C;
        }
        for (int64_t c = 0; c < C; c++) ss += ((double)x[c] - mean) * ((double)x[c] - mean);
        float r = 1.0f / sqrtf((float)(ss / (double)C) + j->eps);
        j->stat[2 * t] = r;
        j->stat[2 * t + 1] = (float)mean;
        if (!j->dx) continue;
        /* g = dy w; with xh = (x - mean) r: dx = r (g - mean(g) [layer only] - xh mean(g xh)) */
        double sg = 0, sgx = 0;
        for (int64_t c = 0; c < C; c++) {
            double g = (double)dy[c] * j->w[c], xh = ((double)x[c] - mean) * r;
            sg += g;
            sgx += g * xh;
        }
        sg = j->layer ? sg / (double)C : 0.0;
        sgx /= (double)C;
        float *dx = j->dx + t * C;
        for (int64_t c = 0; c < C; c++) {
            double g = (double)dy[c] * j->w[c], xh = ((double)x[c] - mean) * r;
            dx[c] += (float)(r * (g - sg - xh * sgx));
        }
    }
}

/* weight and bias gradients: a pass over column ranges so threads never share an output */
static void norm_cols(void *user, int64_t c0, int64_t c1) {
    norm_bw *j = user;
    for (int64_t c = c0; c < c1; c++) {
        double sw = 0, sb = 0;
        for (int64_t t = 0; t < j->T; t++) {
            float dy = j->dy[t * j->C + c];
            sw += (double)dy * ((double)j->x[t * j->C + c] - j->stat[2 * t + 1]) * j->stat[2 * t];
            sb += dy;
        }
        if (j->dw) j->dw[c] += (float)sw;
        if (j->db) j->db[c] += (float)sb;
    }
}

static void norm_backward(mt_ctx *ctx, const mt_tape_node *n, bool layer) {
    const mt_tensor *x = &n->in[0];
    norm_bw j = {.x = mt_f32(x), .dy = mt_f32(n->out->grad), .T = x->shape[0], .C = x->shape[1], .eps = n->f[0],
                 .layer = layer};
    j.w = f32_copy(ctx, &n->in[1]);
    j.stat = mt_arena_alloc(ctx->arena, (size_t)(2 * j.T) * sizeof(float));
    if (!j.w || !j.stat) {
        mt_ctx_fail(ctx, MT_ERR_NOMEM, "out of memory in norm backward");
        return;
    }
    if (n->src[0] && !(j.dx = gradp(ctx, n->src[0]))) return;
    if (n->src[1] && !(j.dw = gradp(ctx, n->src[1]))) return;
    if (layer && n->src[2] && !(j.db = gradp(ctx, n->src[2]))) return;
    mt_ctx_parallel_rows(ctx, j.T, j.C, norm_rows, &j);
    if (j.dw || j.db) mt_ctx_parallel_rows(ctx, j.C, j.T, norm_cols, &j);
}

void mt_bw_rms_norm(mt_ctx *ctx, const mt_tape_node *n) { norm_backward(ctx, n, false); }
void mt_bw_layer_norm(mt_ctx *ctx, const mt_tape_node *n) { norm_backward(ctx, n, true); }

/* ---- elementwise ---- */

static inline float sigmoidf(float v) { return 1.0f / (1.0f + expf(-v)); }

/* act(v) and its derivative */
static inline float act_grad(float v, mt_act act, float *value) {
    switch (act) {
    case MT_ACT_SILU: {
        float s = sigmoidf(v);
        *value = v * s;
        return s * (1.0f + v * (1.0f - s));
    }
    case MT_ACT_GELU_ERF: {
        float cdf = 0.5f * (1.0f + erff(v * 0.70710678118654752f));
        *value = v * cdf;
        return cdf + v * 0.39894228040143268f * expf(-0.5f * v * v);
    }
    case MT_ACT_GELU_TANH: {
        const float k = 0.79788456080286536f, a = 0.044715f;
        float th = tanhf(k * (v + a * v * v * v));
        *value = 0.5f * v * (1.0f + th);
        return 0.5f * (1.0f + th) + 0.5f * v * (1.0f - th * th) * k * (1.0f + 3.0f * a * v * v);
    }
    case MT_ACT_QUICK_GELU: {
        float s = sigmoidf(1.702f * v);
        *value = v * s;
        return s * (1.0f + 1.702f * v * (1.0f - s));
    }
    case MT_ACT_SIGMOID: {
        float s = sigmoidf(v);
        *value = s;
        return s * (1.0f - s);
    }
    }
    *value = v;
    return 1.0f;
}

typedef struct elem_bw {
    const float *x, *u, *dy;
    float *dx, *du;
    int64_t C;
    mt_act act;
} elem_bw;

static void act_rows(void *user, int64_t r0, int64_t r1) {
    elem_bw *j = user;
    for (int64_t i = r0 * j->C; i < r1 * j->C; i++) {
        float a, d = act_grad(j->x[i], j->act, &a);
        float up = j->u ? j->u[i] : 1.0f;
        if (j->dx) j->dx[i] += j->dy[i] * up * d;
        if (j->du) j->du[i] += j->dy[i] * a;
    }
}

void mt_bw_act(mt_ctx *ctx, const mt_tape_node *n) {
    const mt_tensor *x = &n->in[0];
    bool gated = n->in[1].data != NULL;
    elem_bw j = {.x = mt_f32(x), .u = gated ? mt_f32(&n->in[1]) : NULL, .dy = mt_f32(n->out->grad),
                 .C = x->shape[1], .act = (mt_act)n->i[0]};
    if (n->src[0] && !(j.dx = gradp(ctx, n->src[0]))) return;
    if (n->src[1] && !(j.du = gradp(ctx, n->src[1]))) return;
    mt_ctx_parallel_rows(ctx, x->shape[0], j.C, act_rows, &j);
}

static void add_into(mt_ctx *ctx, mt_tensor *dst, const float *dy, float s) {
    float *d = gradp(ctx, dst);
    if (d) mt_cpu_axpy(mt_tensor_numel(dst), s, dy, d);
}

void mt_bw_add(mt_ctx *ctx, const mt_tape_node *n) {
    const float *dy = mt_f32(n->out->grad);
    if (n->src[0]) add_into(ctx, n->src[0], dy, 1.0f);
    if (n->src[1]) add_into(ctx, n->src[1], dy, 1.0f);
}

void mt_bw_scale(mt_ctx *ctx, const mt_tape_node *n) {
    if (n->src[0]) add_into(ctx, n->src[0], mt_f32(n->out->grad), n->f[0]);
}

void mt_bw_copy(mt_ctx *ctx, const mt_tape_node *n) {
    if (n->src[0]) add_into(ctx, n->src[0], mt_f32(n->out->grad), 1.0f);
}

void mt_bw_mul(mt_ctx *ctx, const mt_tape_node *n) {
    const float *dy = mt_f32(n->out->grad), *a = mt_f32(&n->in[0]), *b = mt_f32(&n->in[1]);
    int64_t count = mt_tensor_numel(n->out);
    for (int k = 0; k < 2; k++) {
        if (!n->src[k]) continue;
        float *d = gradp(ctx, n->src[k]);
        if (!d) return;
        const float *other = k == 0 ? b : a;
        for (int64_t i = 0; i < count; i++) d[i] += dy[i] * other[i];
    }
}

void mt_bw_scale_cols(mt_ctx *ctx, const mt_tape_node *n) {
    const float *dy = mt_f32(n->out->grad), *x = mt_f32(&n->in[0]), *g = mt_f32(&n->in[1]);
    int64_t T = n->out->shape[0], C = n->out->shape[1];
    float *dx = n->src[0] ? gradp(ctx, n->src[0]) : NULL, *dg = n->src[1] ? gradp(ctx, n->src[1]) : NULL;
    if ((n->src[0] && !dx) || (n->src[1] && !dg)) return;
    for (int64_t t = 0; t < T; t++)
        for (int64_t c = 0; c < C; c++) {
            if (dx) dx[t * C + c] += dy[t * C + c] * g[c];
            if (dg) dg[c] += dy[t * C + c] * x[t * C + c];
        }
}

void mt_bw_dropout(mt_ctx *ctx, const mt_tape_node *n) {
    if (!n->src[0]) return;
    float *dx = gradp(ctx, n->src[0]);
    if (!dx) return;
    const float *dy = mt_f32(n->out->grad);
    float p = n->f[0], keep_scale = 1.0f / (1.0f - p);
    int64_t count = mt_tensor_numel(n->out);
    for (int64_t i = 0; i < count; i++)
        if (mt_dropout_keep((uint64_t)n->i[0], i, p)) dx[i] += dy[i] * keep_scale;
}

/* ---- softmax, rope ---- */

typedef struct row_bw {
    const float *y, *dy, *cos, *sin;
    float *dx;
    int64_t C, D;
    int heads;
} row_bw;

static void softmax_rows(void *user, int64_t r0, int64_t r1) {
    row_bw *j = user;
    for (int64_t t = r0; t < r1; t++) {
        const float *y = j->y + t * j->C, *dy = j->dy + t * j->C;
        float dot = mt_cpu_dot(j->C, y, dy), *dx = j->dx + t * j->C;
        for (int64_t c = 0; c < j->C; c++) dx[c] += y[c] * (dy[c] - dot);
    }
}

void mt_bw_softmax(mt_ctx *ctx, const mt_tape_node *n) {
    if (!n->src[0]) return;
    row_bw j = {.y = mt_f32(n->out), .dy = mt_f32(n->out->grad), .C = n->out->shape[1]};
    if (!(j.dx = gradp(ctx, n->src[0]))) return;
    mt_ctx_parallel_rows(ctx, n->out->shape[0], j.C, softmax_rows, &j);
}

static void rope_rows(void *user, int64_t r0, int64_t r1) {
    row_bw *j = user;
    int64_t half = j->D / 2;
    for (int64_t t = r0; t < r1; t++) {
        const float *c = j->cos + t * half, *s = j->sin + t * half;
        for (int h = 0; h < j->heads; h++) {
            const float *dy = j->dy + t * j->C + h * j->D;
            float *dx = j->dx + t * j->C + h * j->D;
            for (int64_t i = 0; i < half; i++) {
                dx[i] += dy[i] * c[i] + dy[i + half] * s[i];
                dx[i + half] += dy[i + half] * c[i] - dy[i] * s[i];
            }
        }
    }
}

void mt_bw_rope(mt_ctx *ctx, const mt_tape_node *n) {
    if (!n->src[0]) return;
    int64_t C = n->out->shape[1];
    row_bw j = {.dy = mt_f32(n->out->grad), .cos = mt_f32(&n->in[1]), .sin = mt_f32(&n->in[2]), .C = C,
                .D = C / n->i[0], .heads = (int)n->i[0]};
    if (!(j.dx = gradp(ctx, n->src[0]))) return;
    mt_ctx_parallel_rows(ctx, n->out->shape[0], C, rope_rows, &j);
}

/* ---- attention ---- */

void mt_bw_attention(mt_ctx *ctx, const mt_tape_node *n) {
    const mt_tensor *q = &n->in[0], *k = &n->in[1], *v = &n->in[2];
    const mt_attn_opts *o = n->aux;
    int64_t D = q->shape[1] / n->i[0];
    /* the kernel skips a NULL gradient; each one it writes uses its input's strides, and the forward made sure q,
     * k and v are contiguous like their gradients */
    float *dq = NULL, *dk = NULL, *dv = NULL;
    if (n->src[0] && !(dq = gradp(ctx, n->src[0]))) return;
    if (n->src[1] && !(dk = gradp(ctx, n->src[1]))) return;
    if (n->src[2] && !(dv = gradp(ctx, n->src[2]))) return;
    mt_attn_args a = {
        .q = mt_f32(q), .q_st = q->stride[0], .q_sh = D,
        .k = k->data, .k_st = k->stride[0], .k_sh = D,
        .v = v->data, .v_st = v->stride[0], .v_sh = D, .kv_dtype = MT_F32,
        .out = mt_f32(n->out), .o_st = q->shape[1], .o_sh = D,
        .n_q = q->shape[0], .n_kv = k->shape[0], .n_heads = (int)n->i[0], .n_kv_heads = (int)n->i[1],
        .head_dim = (int)D, .scale = o->scale, .causal = o->causal, .q_pos0 = o->q_pos0, .window = o->window,
        .cu_seqlens = o->cu_seqlens, .n_seg = o->n_seg,
    };
    mt_attn_grad g = {.dout = mt_f32(n->out->grad), .dq = dq, .dk = dk, .dv = dv};
    mt_ctx_backend(ctx)->attention_backward(ctx->pool, &a, &g);
}

/* ---- rows: gather, scatter, concat, views ---- */

void mt_bw_gather_rows(mt_ctx *ctx, const mt_tape_node *n) {
    if (!n->src[0]) return;
    float *dx = gradp(ctx, n->src[0]);
    if (!dx) return;
    const int64_t *idx = n->aux;
    int64_t C = n->out->shape[1];
    const float *dy = mt_f32(n->out->grad);
    for (int64_t i = 0; i < n->i[0]; i++) mt_cpu_axpy(C, 1.0f, dy + i * C, dx + idx[i] * C);
}

void mt_bw_scatter_rows(mt_ctx *ctx, const mt_tape_node *n) {
    const int64_t *idx = n->aux;
    int64_t T = n->out->shape[0], C = n->out->shape[1], count = n->in[1].shape[0];
    const float *dy = mt_f32(n->out->grad);
    if (n->src[0]) {
        float *db = gradp(ctx, n->src[0]);
        bool *replaced = mt_arena_alloc(ctx->arena, (size_t)T);
        if (!db || !replaced) {
            mt_ctx_fail(ctx, MT_ERR_NOMEM, "out of memory in scatter_rows backward");
            return;
        }
        memset(replaced, 0, (size_t)T);
        for (int64_t i = 0; i < count; i++) replaced[idx[i]] = true;
        for (int64_t t = 0; t < T; t++)
            if (!replaced[t]) mt_cpu_axpy(C, 1.0f, dy + t * C, db + t * C);
    }
    if (n->src[1]) {
        float *ds = gradp(ctx, n->src[1]);
        if (!ds) return;
        for (int64_t i = 0; i < count; i++) mt_cpu_axpy(C, 1.0f, dy + idx[i] * C, ds + i * C);
    }
}

void mt_bw_concat_rows(mt_ctx *ctx, const mt_tape_node *n) {
    const float *dy = mt_f32(n->out->grad);
    int64_t na = mt_tensor_numel(&n->in[0]);
    if (n->src[0]) add_into(ctx, n->src[0], dy, 1.0f);
    if (n->src[1]) add_into(ctx, n->src[1], dy + na, 1.0f);
}

/* out views x's storage at an element offset with its own shape and strides; x is contiguous, so its gradient
 * (contiguous in x's shape) has the same layout and the view's elements land at the same offsets there. */
void mt_bw_view(mt_ctx *ctx, const mt_tape_node *n) {
    if (!n->src[0]) return;
    const mt_tensor *x = &n->in[0], *y = n->out;
    if (!mt_tensor_is_contiguous(x)) {
        mt_ctx_fail(ctx, MT_ERR_INTERNAL, "backward: a view of a non-contiguous tensor");
        return;
    }
    float *dx = gradp(ctx, n->src[0]);
    if (!dx) return;
    int64_t off = ((const char *)y->data - (const char *)x->data) / (int64_t)mt_dtype_size(x->dtype);
    int64_t count = mt_tensor_numel(y), idx[MT_MAX_DIMS] = {0};
    const float *dy = mt_f32(y->grad);
    for (int64_t i = 0; i < count; i++) {
        int64_t at = off;
        for (int d = 0; d < y->ndim; d++) at += idx[d] * y->stride[d];
        dx[at] += dy[i];
        for (int d = y->ndim - 1; d >= 0; d--) {
            if (++idx[d] < y->shape[d]) break;
            idx[d] = 0;
        }
    }
}

/* ---- loss ---- */

enum { CE_BLOCK = 1024 };

typedef struct ce_bw {
    const float *logits, *lse;
    const int32_t *targets;
    const float *weights;
    float *dl;
    int64_t V;
    float scale;
} ce_bw;

/* softmax(l) = e^(l - lse), a block of the vocabulary at a time through the vector exp, then added in */
static void ce_rows(void *user, int64_t r0, int64_t r1) {
    ce_bw *j = user;
    float e[CE_BLOCK];
    for (int64_t t = r0; t < r1; t++) {
        if (j->targets[t] < 0) continue;
        const float *l = j->logits + t * j->V;
        float *d = j->dl + t * j->V, scale = j->weights ? j->scale * j->weights[t] : j->scale;
        for (int64_t c = 0; c < j->V; c += CE_BLOCK) {
            int64_t nc = MT_MIN((int64_t)CE_BLOCK, j->V - c);
            mt_cpu_exp_sum(nc, l + c, j->lse[t], e);
            mt_cpu_axpy(nc, scale, e, d + c);
        }
        d[j->targets[t]] -= scale;
    }
}

void mt_bw_cross_entropy(mt_ctx *ctx, const mt_tape_node *n) {
    if (!n->src[0]) return;
    const mt_ce_saved *s = n->aux;
    ce_bw j = {.logits = mt_f32(&n->in[0]), .lse = s->lse, .targets = s->targets, .weights = s->weights,
               .V = n->in[0].shape[1],
               .scale = n->f[0] * mt_f32(n->out->grad)[0]};
    if (!(j.dl = gradp(ctx, n->src[0]))) return;
    mt_ctx_parallel_rows(ctx, n->in[0].shape[0], j.V, ce_rows, &j);
}
