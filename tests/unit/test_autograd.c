/* Unit tests of the autograd tape (tensor/autograd.h) and of every op's backward (tensor/ops_backward.c) against
 * central finite differences; the PyTorch comparison of the same ops is tests/train/ops_grad_check.c.
 *
 * A case builds a small graph from leaf tensors and reduces its output y to a scalar with a fixed projection,
 * L = sum_i y_i R_i (built from ops: mul, then two linears with ones), or returns a cross-entropy loss. Its
 * analytic gradient (mt_backward) is compared with (L(x + eps) - L(x - eps)) / 2 eps of each leaf element, the
 * forward re-run with the tape off and L summed in double, so the only noise is the forward's f32 rounding.
 *
 *   | quantity | value                         | why                                                          |
 *   |----------|-------------------------------|--------------------------------------------------------------|
 *   | eps      | 4e-3 (inputs in [-1, 1))      | truncation eps^2 f'''/6 ~ 1e-5, f32 rounding 1e-7 |L|/eps     |
 *   | pass     | max|an - fd| <= 3e-3 max|fd|  | per leaf; max|fd| floored at 0.05 for leaves with tiny grads |
 *
 * Shapes are a few rows of width <= 16; every case runs on the scalar level on the calling thread and on the best
 * level with three threads. Frozen bf16 / f16 weights take no gradient but pass it on to the input. Besides the
 * ops: accumulation over two backwards, tied and split weights, leaves that need no gradient, views, the dropout
 * mask, cross-entropy's ignored rows and inv_norm, backward failures, tape reset, gradients independent of the
 * thread count, and an allocation failure at every allocation of a forward + backward. The mixture-of-experts ops
 * also get their forward values, index checks and the in-place index_add (used only where it cannot be observed).
 */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "cpu_paths.h"
#include "nn/nn.h"
#include "tensor/autograd.h"

#define FD_EPS 4e-3f
#define FD_TOL 3e-3
#define MAX_LEAVES 16

static uint64_t rng = 0x2545F4914F6CDD1Dull;
static float frand(void) { /* uniform in [-1, 1) */
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (float)(rng >> 40) / 8388608.0f - 1.0f;
}

/* The projection weight of element i. */
static float proj_r(int64_t i) { return (float)((i * 7919 + 13) % 61) / 30.0f - 1.0f; }

typedef struct leaf {
    mt_tensor own;
    mt_tensor *t; /* the tensor ops see: &own, or a field of an mt_lora / mt_linear of the case */
    void *data;   /* f32, or bf16 / f16 for a frozen weight */
    bool train;
} leaf;

typedef struct fd_case fd_case;
struct fd_case {
    const char *name;
    leaf l[MAX_LEAVES];
    int n;
    mt_tensor *(*fwd)(mt_ctx *ctx, fd_case *c);
    bool is_loss; /* fwd returns the loss itself */
    int act, heads, kv_heads;
    mt_attn_opts attn;
    int64_t cu[4], idx[8], shape[3], route[16];
    int32_t ids[600], tg[600];
    int64_t n_ids;
    float f;
    mt_lora lora;
    mt_linear lin;
};

#define X(i) (c->l[i].t)

/* Adds a leaf of [rows] (cols == 0) or [rows, cols] with values in [-1, 1) (rounded for bf16 / f16). */
static mt_tensor *leaf_add(fd_case *c, mt_dtype dt, bool train, int64_t rows, int64_t cols) {
    leaf *l = &c->l[c->n++];
    int64_t n = rows * (cols ? cols : 1), shape[2] = {rows, cols};
    l->data = calloc((size_t)n, 4);
    for (int64_t i = 0; i < n; i++) {
        float v = frand();
        if (dt == MT_F32) ((float *)l->data)[i] = v;
        else ((uint16_t *)l->data)[i] = dt == MT_BF16 ? mt_f32_to_bf16(v) : mt_f32_to_f16(v);
    }
    l->own = mt_tensor_wrap(dt, cols ? 2 : 1, shape, l->data);
    l->t = &l->own;
    l->train = train;
    return l->t;
}

static mt_tensor *lf(fd_case *c, bool train, int64_t rows, int64_t cols) {
    return leaf_add(c, MT_F32, train, rows, cols);
}

static void case_free(fd_case *c) {
    for (int i = 0; i < c->n; i++) free(c->l[i].data);
    c->n = 0;
}

static mt_tensor *filled(mt_ctx *ctx, int64_t rows, int64_t cols, float (*fn)(int64_t)) {
    mt_tensor *t = mt_tensor_new_2d(ctx, MT_F32, rows, cols);
    for (int64_t i = 0; t && i < rows * cols; i++) mt_f32(t)[i] = fn ? fn(i) : 1.0f;
    return t;
}

/* sum_i y_i R_i as ops, so the tape carries it to a [1, 1] loss */
static mt_tensor *project(mt_ctx *ctx, mt_tensor *y) {
    if (!y) return NULL;
    int64_t T = y->shape[0], C = mt_tensor_numel(y) / T;
    mt_tensor *s = mt_op_linear(ctx, mt_op_mul(ctx, y, filled(ctx, T, C, proj_r)), filled(ctx, 1, C, NULL), NULL);
    s = mt_op_reshape(ctx, s, 2, (int64_t[]){1, T});
    return mt_op_linear(ctx, s, filled(ctx, 1, T, NULL), NULL);
}

static double eval_loss(mt_ctx *ctx, fd_case *c) {
    mt_arena_mark m = mt_arena_save(ctx->arena);
    mt_tensor *y = c->fwd(ctx, c);
    double L = NAN;
    if (y && c->is_loss) L = mt_f32(y)[0];
    if (y && !c->is_loss) {
        L = 0;
        for (int64_t i = 0; i < mt_tensor_numel(y); i++) L += (double)mt_f32(y)[i] * proj_r(i);
    }
    mt_arena_restore(ctx->arena, m);
    return L;
}

static void check_case(fd_case *c, mt_pool *pool, const char *level) {
    mt_arena arena;
    mt_arena_init(&arena, 1 << 16);
    mt_ctx ctx = {.arena = &arena, .pool = pool};
    mt_tape *tape = NULL;
    mt_err err;
    CHECK(mt_tape_new(&tape, &err) == MT_OK);
    ctx.tape = tape;
    for (int i = 0; i < c->n; i++) c->l[i].t->requires_grad = c->l[i].train, c->l[i].t->grad = NULL;
    mt_tensor *loss = c->fwd(&ctx, c);
    if (!c->is_loss) loss = project(&ctx, loss);
    mt_status st = loss ? mt_backward(&ctx, loss) : ctx.status;
    CHECK_MSG(st == MT_OK, "%s (%s): forward/backward failed: %s", c->name, level, ctx.err.msg);
    /* The differences re-run the forward in training mode (a tape is set, so adapter dropout applies as it did
     * above) but record nothing: no leaf requires a gradient any more. */
    mt_tape *probe = NULL;
    CHECK(mt_tape_new(&probe, &err) == MT_OK);
    ctx.tape = probe;
    for (int i = 0; i < c->n; i++) c->l[i].t->requires_grad = false;
    for (int i = 0; i < c->n && st == MT_OK; i++) {
        leaf *l = &c->l[i];
        if (!l->train) {
            CHECK_MSG(!l->t->grad, "%s: frozen leaf %d got a gradient", c->name, i);
            continue;
        }
        CHECK_MSG(l->t->grad, "%s: leaf %d got no gradient", c->name, i);
        if (!l->t->grad) continue;
        const float *an = mt_f32(l->t->grad);
        float *x = l->data;
        double max_fd = 0, max_err = 0;
        int64_t worst = 0, n = mt_tensor_numel(l->t);
        for (int64_t e = 0; e < n; e++) {
            float x0 = x[e], xp = x0 + FD_EPS, xm = x0 - FD_EPS;
            x[e] = xp;
            double lp = eval_loss(&ctx, c);
            x[e] = xm;
            double lm = eval_loss(&ctx, c);
            x[e] = x0;
            double fd = (lp - lm) / ((double)xp - (double)xm), d = fabs(fd - an[e]);
            max_fd = fmax(max_fd, fabs(fd));
            if (!(d <= max_err)) max_err = d, worst = e;
        }
        CHECK_MSG(max_err <= FD_TOL * fmax(max_fd, 0.05), "%s (%s) leaf %d: max |an - fd| = %.3g at %lld (an %g) "
                  "for max |fd| %.3g", c->name, level, i, max_err, (long long)worst, an[worst], max_fd);
    }
    CHECK_MSG(mt_tape_count(probe) == 0, "%s: the difference passes recorded %zu nodes", c->name,
              mt_tape_count(probe));
    mt_tape_free(probe);
    mt_tape_free(tape);
    mt_arena_free(&arena);
}

/* ---- forwards of the cases ---- */

static mt_tensor *f_linear(mt_ctx *ctx, fd_case *c) { return mt_op_linear(ctx, X(0), X(1), c->n > 2 ? X(2) : NULL); }
static mt_tensor *f_embedding(mt_ctx *ctx, fd_case *c) { return mt_op_embedding(ctx, X(0), c->ids, c->n_ids); }
static mt_tensor *f_rms(mt_ctx *ctx, fd_case *c) { return mt_op_rms_norm(ctx, X(0), X(1), 1e-5f); }
static mt_tensor *f_ln(mt_ctx *ctx, fd_case *c) { return mt_op_layer_norm(ctx, X(0), X(1), X(2), 1e-5f); }
static mt_tensor *f_act(mt_ctx *ctx, fd_case *c) { return mt_op_act(ctx, X(0), (mt_act)c->act); }
static mt_tensor *f_gated(mt_ctx *ctx, fd_case *c) { return mt_op_gated_act(ctx, X(0), X(1), (mt_act)c->act); }
static mt_tensor *f_add(mt_ctx *ctx, fd_case *c) { return mt_op_add(ctx, X(0), X(1)); }
static mt_tensor *f_mul(mt_ctx *ctx, fd_case *c) { return mt_op_mul(ctx, X(0), X(1)); }
static mt_tensor *f_square(mt_ctx *ctx, fd_case *c) { return mt_op_mul(ctx, X(0), X(0)); }
static mt_tensor *f_scale(mt_ctx *ctx, fd_case *c) { return mt_op_scale(ctx, X(0), c->f); }
static mt_tensor *f_softmax(mt_ctx *ctx, fd_case *c) { return mt_op_softmax(ctx, X(0)); }
static mt_tensor *f_rope(mt_ctx *ctx, fd_case *c) { return mt_op_rope(ctx, X(0), c->heads, X(1), X(2)); }
static mt_tensor *f_attn(mt_ctx *ctx, fd_case *c) {
    return mt_op_attention(ctx, X(0), X(1), X(2), c->heads, c->kv_heads, &c->attn);
}
static mt_tensor *f_attn_kv_same(mt_ctx *ctx, fd_case *c) {
    return mt_op_attention(ctx, X(0), X(1), X(1), c->heads, c->kv_heads, &c->attn);
}
static mt_tensor *f_attn_self(mt_ctx *ctx, fd_case *c) {
    return mt_op_attention(ctx, X(0), X(0), X(0), c->heads, c->kv_heads, &c->attn);
}
static mt_tensor *f_gated_same(mt_ctx *ctx, fd_case *c) { return mt_op_gated_act(ctx, X(0), X(0), MT_ACT_GELU_TANH); }
static mt_tensor *f_gather(mt_ctx *ctx, fd_case *c) { return mt_op_gather_rows(ctx, X(0), c->idx, c->n_ids); }
static mt_tensor *f_scatter(mt_ctx *ctx, fd_case *c) { return mt_op_scatter_rows(ctx, X(0), c->idx, X(1)); }
static mt_tensor *f_concat(mt_ctx *ctx, fd_case *c) { return mt_op_concat_rows(ctx, X(0), X(1)); }
static mt_tensor *f_reshape(mt_ctx *ctx, fd_case *c) {
    return mt_op_softmax(ctx, mt_op_reshape(ctx, X(0), 2, c->shape));
}
static mt_tensor *f_transpose(mt_ctx *ctx, fd_case *c) {
    return mt_op_softmax(ctx, mt_op_contiguous(ctx, mt_op_transpose(ctx, X(0), 0, 1)));
}
/* [T, H*D] -> [T, H, D] -> [H, T, D] -> [H*T, D], the head split attention layouts use */
static mt_tensor *f_heads(mt_ctx *ctx, fd_case *c) {
    int64_t T = X(0)->shape[0], H = c->heads, D = X(0)->shape[1] / H;
    mt_tensor *t = mt_op_transpose(ctx, mt_op_reshape(ctx, X(0), 3, (int64_t[]){T, H, D}), 0, 1);
    return mt_op_softmax(ctx, mt_op_reshape(ctx, mt_op_contiguous(ctx, t), 2, (int64_t[]){H * T, D}));
}
static mt_tensor *f_rows(mt_ctx *ctx, fd_case *c) {
    mt_tensor *a = mt_op_softmax(ctx, mt_tensor_rows(ctx, X(0), 1, 3)), *b = mt_tensor_rows(ctx, X(0), 3, 2);
    return mt_op_concat_rows(ctx, a, mt_op_mul(ctx, b, b));
}
/* InternLM2's grouped qkv split: [T, KV*(g+2)*D] viewed as [T*KV, (g+2)*D], column views made contiguous (T 3, KV 2,
 * g 2, D 2) */
static mt_tensor *f_cols(mt_ctx *ctx, fd_case *c) {
    mt_tensor *r = mt_op_reshape(ctx, X(0), 2, (int64_t[]){6, 8});
    mt_tensor *q = mt_op_reshape(ctx, mt_op_contiguous(ctx, mt_tensor_cols(ctx, r, 0, 4)), 2, (int64_t[]){6, 4});
    mt_tensor *k = mt_op_reshape(ctx, mt_op_contiguous(ctx, mt_tensor_cols(ctx, r, 4, 2)), 2, (int64_t[]){3, 4});
    mt_tensor *v = mt_op_reshape(ctx, mt_op_contiguous(ctx, mt_tensor_cols(ctx, r, 6, 2)), 2, (int64_t[]){3, 4});
    return mt_op_concat_rows(ctx, mt_op_softmax(ctx, q), mt_op_mul(ctx, k, v));
}
static mt_tensor *f_dropout(mt_ctx *ctx, fd_case *c) { return mt_op_dropout(ctx, X(0), c->f, 17); }
static mt_tensor *f_ce(mt_ctx *ctx, fd_case *c) { return mt_op_cross_entropy(ctx, X(0), c->tg, c->f); }
static mt_tensor *f_ce_weighted(mt_ctx *ctx, fd_case *c) {
    static const float w[5] = {0.5f, 3.0f, -1.25f, 2.0f, 7.0f};
    return mt_op_cross_entropy_weighted(ctx, X(0), c->tg, w, NULL);
}
/* two micro-batch losses summed, one scaled: backward must carry d loss != 1 into cross-entropy */
static mt_tensor *f_ce_sum(mt_ctx *ctx, fd_case *c) {
    mt_tensor *a = mt_op_scale(ctx, mt_op_cross_entropy(ctx, X(0), c->tg, c->f), -0.5f);
    return mt_op_add(ctx, a, mt_op_cross_entropy(ctx, mt_op_softmax(ctx, X(0)), c->ids, 1.0f));
}
static mt_tensor *f_lora(mt_ctx *ctx, fd_case *c) { return mt_nn_linear(ctx, X(0), &c->lin); }
/* one table as embedding and as output head */
static mt_tensor *f_tied(mt_ctx *ctx, fd_case *c) {
    mt_tensor *h = mt_op_embedding(ctx, X(0), c->ids, c->n_ids);
    return mt_op_cross_entropy(ctx, mt_op_linear(ctx, mt_op_rms_norm(ctx, h, X(1), 1e-5f), X(0), NULL), c->tg, c->f);
}
/* q, k, v from row views of one fused weight */
static mt_tensor *f_split(mt_ctx *ctx, fd_case *c) {
    int64_t N = X(1)->shape[0] / 3;
    mt_tensor *q = mt_op_linear(ctx, X(0), mt_tensor_rows(ctx, X(1), 0, N), NULL);
    mt_tensor *k = mt_op_linear(ctx, X(0), mt_tensor_rows(ctx, X(1), N, N), NULL);
    mt_tensor *v = mt_op_linear(ctx, X(0), mt_tensor_rows(ctx, X(1), 2 * N, N), NULL);
    return mt_op_add(ctx, mt_op_mul(ctx, q, k), v);
}
/* a decoder block: norm, q/k/v with bias, rope, causal GQA attention, output, residual, gated MLP, head, loss */
static mt_tensor *f_block(mt_ctx *ctx, fd_case *c) {
    mt_tensor *x = mt_op_embedding(ctx, X(0), c->ids, c->n_ids), *h = mt_op_rms_norm(ctx, x, X(1), 1e-6f);
    mt_tensor *q = mt_op_rope(ctx, mt_op_linear(ctx, h, X(2), X(3)), 4, X(12), X(13));
    mt_tensor *k = mt_op_rope(ctx, mt_op_linear(ctx, h, X(4), NULL), 2, X(12), X(13));
    mt_tensor *a = mt_op_attention(ctx, q, k, mt_op_linear(ctx, h, X(5), NULL), 4, 2, &c->attn);
    x = mt_op_add(ctx, x, mt_op_linear(ctx, a, X(6), NULL));
    h = mt_op_rms_norm(ctx, x, X(7), 1e-6f);
    h = mt_op_gated_act(ctx, mt_op_linear(ctx, h, X(8), NULL), mt_op_linear(ctx, h, X(9), NULL), MT_ACT_SILU);
    x = mt_op_add(ctx, x, mt_op_linear(ctx, h, X(10), NULL));
    return mt_op_cross_entropy(ctx, mt_op_linear(ctx, x, X(11), NULL), c->tg, c->f);
}

/* 300 ops in a row: the tape grows past its first 256 nodes */
static mt_tensor *f_long(mt_ctx *ctx, fd_case *c) {
    mt_tensor *x = X(0);
    for (int i = 0; i < 300; i++) x = mt_op_scale(ctx, x, i % 2 ? 1.01f : 0.99f);
    return mt_op_softmax(ctx, x);
}

/* ---- mixture-of-experts ops ---- */

static mt_tensor *f_gather_cols(mt_ctx *ctx, fd_case *c) { return mt_op_gather_cols(ctx, X(0), c->idx, 2); }
static mt_tensor *f_pick(mt_ctx *ctx, fd_case *c) { return mt_op_pick(ctx, X(0), c->idx, c->n_ids); }
static mt_tensor *f_row_normalize(mt_ctx *ctx, fd_case *c) { return mt_op_row_normalize(ctx, X(0)); }
static mt_tensor *f_scale_rows(mt_ctx *ctx, fd_case *c) { return mt_op_scale_rows(ctx, X(0), X(1)); }
static mt_tensor *f_scale_cols(mt_ctx *ctx, fd_case *c) { return mt_op_scale_cols(ctx, X(0), X(1)); }
static mt_tensor *f_index_add(mt_ctx *ctx, fd_case *c) { return mt_op_index_add_rows(ctx, X(0), c->idx, X(1)); }

enum { MOE_T = 5, MOE_E = 4, MOE_K = 2 };

/* A MoE FFN over a fixed routing c->route [T*k] (top-k is a host choice; holding it fixed keeps the loss smooth
 * under the differences): leaves x [T, C], router [E, C], then gate, up, down of each expert. */
static mt_tensor *f_moe(mt_ctx *ctx, fd_case *c) {
    int64_t T = X(0)->shape[0], C = X(0)->shape[1], tok[MOE_T * MOE_K], flat[MOE_T * MOE_K];
    mt_tensor *probs = mt_op_softmax(ctx, mt_op_linear(ctx, X(0), X(1), NULL));
    mt_tensor *w = mt_op_row_normalize(ctx, mt_op_gather_cols(ctx, probs, c->route, MOE_K));
    mt_tensor *out = mt_tensor_zeros(ctx, MT_F32, 2, (int64_t[]){T, C});
    for (int e = 0; e < MOE_E; e++) {
        int64_t n = 0;
        for (int64_t i = 0; i < T * MOE_K; i++)
            if (c->route[i] == e) tok[n] = i / MOE_K, flat[n] = i, n++;
        mt_tensor *xe = mt_op_gather_rows(ctx, X(0), tok, n);
        mt_tensor *h = mt_op_gated_act(ctx, mt_op_linear(ctx, xe, X(2 + 3 * e), NULL),
                                       mt_op_linear(ctx, xe, X(3 + 3 * e), NULL), MT_ACT_SILU);
        mt_tensor *y = mt_op_scale_rows(ctx, mt_op_linear(ctx, h, X(4 + 3 * e), NULL), mt_op_pick(ctx, w, flat, n));
        out = mt_op_index_add_rows_inplace(ctx, out, tok, y);
    }
    return out;
}

/* cos, sin [T, half] of positions t with inverse frequencies 10000^(-i/half) */
static void rope_leaves(fd_case *c, int64_t T, int64_t half) {
    float *cs = lf(c, false, T, half)->data, *sn = lf(c, false, T, half)->data;
    for (int64_t t = 0; t < T; t++)
        for (int64_t i = 0; i < half; i++) {
            float a = (float)t * powf(10000.0f, -(float)i / (float)half);
            cs[t * half + i] = cosf(a), sn[t * half + i] = sinf(a);
        }
}

typedef void (*case_setup)(fd_case *c);

static void s_linear(fd_case *c) {
    c->fwd = f_linear, lf(c, true, 3, 5), lf(c, true, 4, 5), lf(c, true, 4, 0);
}
static void s_linear_bf16(fd_case *c) {
    c->fwd = f_linear, lf(c, true, 3, 9), leaf_add(c, MT_BF16, false, 5, 9), lf(c, false, 5, 0);
}
static void s_linear_f16(fd_case *c) {
    c->fwd = f_linear, lf(c, true, 2, 7), leaf_add(c, MT_F16, false, 6, 7);
}
static void s_linear_w_only(fd_case *c) {
    c->fwd = f_linear, lf(c, false, 5, 4), lf(c, true, 3, 4), lf(c, true, 3, 0);
}
static void s_embedding(fd_case *c) {
    c->fwd = f_embedding, lf(c, true, 7, 6);
    memcpy(c->ids, (int32_t[]){3, 0, 3, 6, 1}, 5 * sizeof(int32_t)), c->n_ids = 5;
}
static void s_rms(fd_case *c) { c->fwd = f_rms, lf(c, true, 3, 8), lf(c, true, 8, 0); }
static void s_rms_bf16(fd_case *c) { c->fwd = f_rms, lf(c, true, 3, 8), leaf_add(c, MT_BF16, false, 8, 0); }
static void s_ln(fd_case *c) {
    c->fwd = f_ln, lf(c, true, 3, 8), lf(c, true, 8, 0), lf(c, true, 8, 0);
}
static void s_act(fd_case *c) { c->fwd = f_act, lf(c, true, 3, 8); }
static void s_gated(fd_case *c) { c->fwd = f_gated, lf(c, true, 3, 8), lf(c, true, 3, 8); }
static void s_add(fd_case *c) { c->fwd = f_add, lf(c, true, 3, 5), lf(c, true, 3, 5); }
static void s_mul(fd_case *c) { c->fwd = f_mul, lf(c, true, 3, 5), lf(c, true, 3, 5); }
static void s_square(fd_case *c) { c->fwd = f_square, lf(c, true, 3, 5); }
static void s_scale(fd_case *c) { c->fwd = f_scale, c->f = -0.7f, lf(c, true, 3, 5); }
static void s_softmax(fd_case *c) { c->fwd = f_softmax, lf(c, true, 3, 8); }
static void s_rope(fd_case *c) { c->fwd = f_rope, c->heads = 2, lf(c, true, 3, 16), rope_leaves(c, 3, 4); }

static void attn_heads(fd_case *c, int H, int Hk, int64_t D) {
    c->fwd = f_attn, c->heads = H, c->kv_heads = Hk, c->attn.scale = 1.0f / sqrtf((float)D);
}
static void attn_leaves(fd_case *c, int64_t Tq, int64_t Tk, int H, int Hk, int64_t D) {
    attn_heads(c, H, Hk, D), lf(c, true, Tq, H * D), lf(c, true, Tk, Hk * D), lf(c, true, Tk, Hk * D);
}
static void s_attn_causal(fd_case *c) { attn_leaves(c, 5, 5, 2, 2, 4), c->attn.causal = true; }
static void s_attn_gqa(fd_case *c) { attn_leaves(c, 5, 5, 4, 2, 4), c->attn.causal = true; }
static void s_attn_pos0(fd_case *c) { attn_leaves(c, 3, 6, 4, 1, 4), c->attn.causal = true, c->attn.q_pos0 = 3; }
static void s_attn_full(fd_case *c) { attn_leaves(c, 4, 6, 2, 1, 8); }
static void s_attn_blind(fd_case *c) { attn_leaves(c, 4, 4, 2, 2, 4), c->attn.causal = true, c->attn.q_pos0 = -2; }
/* sliding windows: each query sees its last `window` keys; queries 5..7 of the second see keys from 3 on only */
static void s_attn_window(fd_case *c) { attn_leaves(c, 6, 6, 2, 2, 4), c->attn.causal = true, c->attn.window = 2; }
static void s_attn_window_gqa(fd_case *c) {
    attn_leaves(c, 3, 8, 4, 2, 4), c->attn.causal = true, c->attn.q_pos0 = 5, c->attn.window = 3;
}
static void s_attn_seg(fd_case *c) {
    attn_leaves(c, 7, 7, 4, 2, 4);
    memcpy(c->cu, (int64_t[]){0, 2, 5, 7}, sizeof c->cu), c->attn.cu_seqlens = c->cu, c->attn.n_seg = 3;
}
static void s_attn_q_only(fd_case *c) {
    attn_leaves(c, 5, 5, 4, 2, 4), c->attn.causal = true, c->l[1].train = c->l[2].train = false;
}
static void s_attn_kv_same(fd_case *c) {
    attn_heads(c, 4, 2, 4), c->fwd = f_attn_kv_same, lf(c, true, 5, 16), lf(c, true, 5, 8);
}
static void s_attn_self(fd_case *c) {
    attn_heads(c, 2, 2, 4), c->fwd = f_attn_self, c->attn.causal = true, lf(c, true, 5, 8);
}
static void s_long(fd_case *c) { c->fwd = f_long, lf(c, true, 2, 5); }
static void s_gated_same(fd_case *c) { c->fwd = f_gated_same, lf(c, true, 3, 8); }
static void s_gather(fd_case *c) {
    c->fwd = f_gather, lf(c, true, 5, 4);
    memcpy(c->idx, (int64_t[]){3, 0, 3, 4}, 4 * sizeof(int64_t)), c->n_ids = 4;
}
static void s_scatter(fd_case *c) {
    c->fwd = f_scatter, lf(c, true, 5, 4), lf(c, true, 2, 4);
    memcpy(c->idx, (int64_t[]){4, 1}, 2 * sizeof(int64_t));
}
static void s_concat(fd_case *c) { c->fwd = f_concat, lf(c, true, 2, 4), lf(c, true, 3, 4); }
static void s_reshape(fd_case *c) {
    c->fwd = f_reshape, lf(c, true, 4, 6), memcpy(c->shape, (int64_t[]){2, 12}, 2 * sizeof(int64_t));
}
static void s_transpose(fd_case *c) { c->fwd = f_transpose, lf(c, true, 3, 5); }
static void s_heads(fd_case *c) { c->fwd = f_heads, c->heads = 2, lf(c, true, 4, 6); }
static void s_rows(fd_case *c) { c->fwd = f_rows, lf(c, true, 6, 4); }
static void s_cols(fd_case *c) { c->fwd = f_cols, lf(c, true, 3, 16); }
static void s_dropout(fd_case *c) { c->fwd = f_dropout, c->f = 0.3f, lf(c, true, 4, 8); }
static void s_ce(fd_case *c) {
    c->fwd = f_ce, c->is_loss = true, c->f = 1.0f / 3.0f, lf(c, true, 5, 7);
    memcpy(c->tg, (int32_t[]){2, -100, 6, 0, -1}, 5 * sizeof(int32_t));
}
static void s_ce_weighted(fd_case *c) { s_ce(c), c->fwd = f_ce_weighted; }
static void s_ce_sum(fd_case *c) {
    s_ce(c), c->fwd = f_ce_sum;
    memcpy(c->ids, (int32_t[]){-100, 1, 1, 6, 3}, 5 * sizeof(int32_t));
}
static void lora_setup(fd_case *c, float dropout) {
    c->fwd = f_lora;
    lf(c, true, 3, 8), leaf_add(c, MT_BF16, false, 5, 8), lf(c, false, 5, 0);
    lf(c, true, 2, 8), lf(c, true, 5, 2);
    c->lora = (mt_lora){.a = c->l[3].own, .b = c->l[4].own, .scale = 16.0f / 2, .dropout = dropout, .seed = 99};
    c->lin = (mt_linear){.w = c->l[1].own, .b = c->l[2].own, .lora = &c->lora};
    c->l[1].t = &c->lin.w, c->l[2].t = &c->lin.b, c->l[3].t = &c->lora.a, c->l[4].t = &c->lora.b;
}
static void s_lora(fd_case *c) { lora_setup(c, 0.0f); }
static void s_lora_dropout(fd_case *c) { lora_setup(c, 0.25f); }
static void s_tied(fd_case *c) {
    c->fwd = f_tied, c->is_loss = true, c->f = 0.25f, lf(c, true, 9, 6), lf(c, true, 6, 0);
    memcpy(c->ids, (int32_t[]){1, 4, 4, 8, 0}, 5 * sizeof(int32_t)), c->n_ids = 5;
    memcpy(c->tg, (int32_t[]){4, 4, 8, -100, 2}, 5 * sizeof(int32_t));
}
static void s_split(fd_case *c) { c->fwd = f_split, lf(c, true, 3, 6), lf(c, true, 12, 6); }
/* T tokens of width C: 4 query heads and 2 kv heads of C / 2, an MLP of 3C / 2, a vocabulary of V */
static void block_setup(fd_case *c, int64_t T, int64_t C, int64_t V) {
    c->fwd = f_block, c->is_loss = true, c->f = 0.2f, c->n_ids = T;
    c->attn = (mt_attn_opts){.scale = 1.0f / sqrtf((float)C / 2), .causal = true};
    for (int64_t t = 0; t < T; t++)
        c->ids[t] = (int32_t)((t * 5 + 1) % V), c->tg[t] = t % 4 == 2 ? -100 : (int32_t)((t * 3) % V);
    int64_t F = 3 * C / 2, shapes[12][2] = {{V, C}, {C, 0}, {2 * C, C}, {2 * C, 0}, {C, C}, {C, C},
                                            {C, 2 * C}, {C, 0}, {F, C}, {F, C}, {C, F}, {V, C}};
    for (int i = 0; i < 12; i++) lf(c, true, shapes[i][0], shapes[i][1]);
    rope_leaves(c, T, C / 4);
}
static void s_block(fd_case *c) { block_setup(c, 6, 8, 11); }
static void s_block_window(fd_case *c) { block_setup(c, 6, 8, 11), c->attn.window = 3; }
static void s_gather_cols(fd_case *c) {
    c->fwd = f_gather_cols, lf(c, true, 3, 5);
    memcpy(c->idx, (int64_t[]){4, 1, 2, 2, 0, 3}, 6 * sizeof(int64_t)); /* row 1 takes column 2 twice */
}
static void s_pick(fd_case *c) {
    c->fwd = f_pick, lf(c, true, 3, 4), c->n_ids = 5;
    memcpy(c->idx, (int64_t[]){11, 0, 5, 11, 7}, 5 * sizeof(int64_t));
}
/* positive entries in [0.5, 2): a row sum far from zero, as top-k probabilities have */
static void s_row_normalize(fd_case *c) {
    float *x = lf(c, true, 3, 4)->data;
    for (int i = 0; i < 12; i++) x[i] = 1.25f + 0.75f * x[i];
    c->fwd = f_row_normalize;
}
static void s_scale_rows(fd_case *c) { c->fwd = f_scale_rows, lf(c, true, 4, 5), lf(c, true, 4, 0); }
static void s_scale_rows_col(fd_case *c) { c->fwd = f_scale_rows, lf(c, true, 4, 5), lf(c, true, 4, 1); }
static void s_scale_cols(fd_case *c) { c->fwd = f_scale_cols, lf(c, true, 4, 5), lf(c, true, 5, 0); }
static void s_index_add(fd_case *c) {
    c->fwd = f_index_add, lf(c, true, 5, 4), lf(c, true, 4, 4);
    memcpy(c->idx, (int64_t[]){4, 1, 4, 0}, 4 * sizeof(int64_t)); /* row 4 gets two source rows */
}
static void s_index_add_const(fd_case *c) { s_index_add(c), c->l[0].train = false; }
/* 5 tokens of width 6, 4 experts of hidden 3, top-2; every expert gets a token */
static void s_moe(fd_case *c) {
    c->fwd = f_moe, lf(c, true, MOE_T, 6), lf(c, true, MOE_E, 6);
    for (int e = 0; e < MOE_E; e++) lf(c, true, 3, 6), lf(c, true, 3, 6), lf(c, true, 6, 3);
    memcpy(c->route, (int64_t[]){0, 2, 1, 3, 2, 0, 3, 1, 1, 0}, MOE_T * MOE_K * sizeof(int64_t));
}

static const struct {
    const char *name;
    case_setup setup;
    int act;
} fd_cases[] = {
    {"linear", s_linear, 0},        {"linear bf16 frozen", s_linear_bf16, 0}, {"linear f16 frozen", s_linear_f16, 0},
    {"linear weight only", s_linear_w_only, 0}, {"embedding", s_embedding, 0}, {"rms_norm", s_rms, 0},
    {"rms_norm bf16 frozen", s_rms_bf16, 0},  {"layer_norm", s_ln, 0},
    {"silu", s_act, MT_ACT_SILU},   {"gelu erf", s_act, MT_ACT_GELU_ERF}, {"gelu tanh", s_act, MT_ACT_GELU_TANH},
    {"quick gelu", s_act, MT_ACT_QUICK_GELU}, {"gated silu", s_gated, MT_ACT_SILU},
    {"gated gelu erf", s_gated, MT_ACT_GELU_ERF}, {"gated gelu tanh", s_gated, MT_ACT_GELU_TANH},
    {"gated quick gelu", s_gated, MT_ACT_QUICK_GELU}, {"sigmoid", s_act, MT_ACT_SIGMOID},
    {"gated sigmoid", s_gated, MT_ACT_SIGMOID}, {"add", s_add, 0}, {"mul", s_mul, 0},
    {"mul a*a", s_square, 0}, {"scale", s_scale, 0}, {"softmax", s_softmax, 0}, {"rope", s_rope, 0},
    {"attention causal", s_attn_causal, 0}, {"attention gqa causal", s_attn_gqa, 0},
    {"attention q_pos0", s_attn_pos0, 0}, {"attention full", s_attn_full, 0},
    {"attention rows with no key", s_attn_blind, 0}, {"attention segments", s_attn_seg, 0},
    {"attention window 2", s_attn_window, 0}, {"attention window 3 gqa q_pos0", s_attn_window_gqa, 0},
    {"decoder block window 3", s_block_window, 0},
    {"attention q only", s_attn_q_only, 0}, {"attention k = v", s_attn_kv_same, 0},
    {"attention q = k = v", s_attn_self, 0}, {"gated act(x) * x", s_gated_same, 0}, {"two losses", s_ce_sum, 0},
    {"gather_rows", s_gather, 0}, {"scatter_rows", s_scatter, 0}, {"concat_rows", s_concat, 0},
    {"reshape", s_reshape, 0}, {"transpose", s_transpose, 0}, {"head split 3d", s_heads, 0},
    {"rows views", s_rows, 0}, {"column views", s_cols, 0}, {"dropout", s_dropout, 0}, {"cross_entropy", s_ce, 0}, {"cross_entropy weighted", s_ce_weighted, 0},
    {"lora", s_lora, 0},
    {"lora dropout", s_lora_dropout, 0}, {"300 ops", s_long, 0}, {"tied embedding", s_tied, 0}, {"split qkv rows", s_split, 0},
    {"decoder block", s_block, 0}, {"gather_cols", s_gather_cols, 0}, {"pick", s_pick, 0},
    {"row_normalize", s_row_normalize, 0}, {"scale_rows [n]", s_scale_rows, 0},
    {"scale_rows [n, 1]", s_scale_rows_col, 0}, {"scale_cols (layer scale)", s_scale_cols, 0}, {"index_add_rows", s_index_add, 0},
    {"index_add_rows constant base", s_index_add_const, 0}, {"moe ffn", s_moe, 0},
};

static void test_finite_differences(mt_pool *pool, const char *level) {
    for (size_t i = 0; i < MT_ARRAY_LEN(fd_cases); i++) {
        fd_case c = {.name = fd_cases[i].name, .act = fd_cases[i].act};
        fd_cases[i].setup(&c);
        check_case(&c, pool, level);
        case_free(&c);
    }
}

/* ---- the tape itself ---- */

typedef struct env {
    mt_arena arena;
    mt_ctx ctx;
    mt_tape *tape;
} env;

static void env_open(env *e, mt_pool *pool) {
    mt_err err;
    mt_arena_init(&e->arena, 1 << 16);
    e->ctx = (mt_ctx){.arena = &e->arena, .pool = pool};
    CHECK(mt_tape_new(&e->tape, &err) == MT_OK);
    e->ctx.tape = e->tape;
}

/* ready for the next step: tape and arena emptied, the sticky failure cleared */
static void env_next(env *e) {
    mt_tape_reset(e->tape);
    mt_arena_reset(&e->arena);
    e->ctx.status = MT_OK;
    e->ctx.tape = e->tape;
}

static void env_close(env *e) {
    mt_tape_free(e->tape);
    mt_arena_free(&e->arena);
}

static bool all_equal(const float *a, const float *b, int64_t n, float s) {
    for (int64_t i = 0; i < n; i++)
        if (a[i] != s * b[i]) return false;
    return true;
}

/* Parameters with caller-owned gradients add up over backwards; arena gradients start from zero each step. */
static void test_accumulate(void) {
    fd_case cs = {.name = "accumulate"}, *c = &cs;
    s_linear(c);
    float gw[20] = {0}, gb[4] = {0}, gw1[20], gx1[15];
    mt_tensor tgw = mt_tensor_wrap(MT_F32, 2, (int64_t[]){4, 5}, gw);
    mt_tensor tgb = mt_tensor_wrap(MT_F32, 1, (int64_t[]){4}, gb);
    env e;
    env_open(&e, NULL);
    for (int rep = 0; rep < 3; rep++) {
        X(0)->requires_grad = X(1)->requires_grad = X(2)->requires_grad = true;
        X(0)->grad = NULL, X(1)->grad = &tgw, X(2)->grad = &tgb;
        CHECK(mt_backward(&e.ctx, project(&e.ctx, f_linear(&e.ctx, c))) == MT_OK);
        CHECK(X(1)->grad == &tgw && X(0)->grad);
        if (!X(0)->grad) break;
        if (rep == 0) {
            memcpy(gw1, gw, sizeof gw), memcpy(gx1, mt_f32(X(0)->grad), sizeof gx1);
        } else {
            CHECK_MSG(all_equal(gw, gw1, 20, (float)(rep + 1)), "weight gradient after %d backwards", rep + 1);
            CHECK(all_equal(mt_f32(X(0)->grad), gx1, 15, 1.0f));
        }
        env_next(&e);
    }
    env_close(&e);
    case_free(c);
}

/* Ops on tensors that need no gradient record nothing; a leaf that needs none gets none; a branch that does not
 * reach the loss changes nothing. */
static void test_no_grad(void) {
    fd_case cs = {.name = "no grad"}, *c = &cs;
    s_linear(c);
    env e;
    env_open(&e, NULL);
    mt_tensor *y = f_linear(&e.ctx, c);
    CHECK(y && !y->requires_grad && mt_tape_count(e.tape) == 0);
    CHECK(mt_backward(&e.ctx, project(&e.ctx, y)) != MT_OK && e.ctx.status != MT_OK);
    env_next(&e);

    float gx_ref[15];
    for (int dead = 0; dead < 2; dead++) {
        X(0)->requires_grad = true, X(1)->requires_grad = false, X(2)->requires_grad = true;
        X(0)->grad = X(1)->grad = X(2)->grad = NULL;
        if (dead) mt_op_softmax(&e.ctx, mt_op_scale(&e.ctx, X(0), 3.0f));
        y = f_linear(&e.ctx, c);
        CHECK(y && y->requires_grad && mt_tape_count(e.tape) == (size_t)(1 + 2 * dead));
        CHECK(mt_backward(&e.ctx, project(&e.ctx, y)) == MT_OK);
        CHECK(X(0)->grad && !X(1)->grad && X(2)->grad);
        if (!X(0)->grad) break;
        if (!dead) memcpy(gx_ref, mt_f32(X(0)->grad), sizeof gx_ref);
        else CHECK(all_equal(mt_f32(X(0)->grad), gx_ref, 15, 1.0f));
        env_next(&e);
    }
    env_close(&e);
    case_free(c);
}

/* Backward refuses what it cannot do, touches no gradient and leaves the context usable after a reset. */
static void test_backward_errors(void) {
    fd_case cs = {.name = "errors"}, *c = &cs;
    s_linear(c);
    float gw[20] = {0};
    mt_tensor tgw = mt_tensor_wrap(MT_F32, 2, (int64_t[]){4, 5}, gw);
    env e;
    env_open(&e, NULL);
    X(1)->requires_grad = true, X(1)->grad = &tgw;
    mt_tensor *y = f_linear(&e.ctx, c);
    CHECK(mt_backward(&e.ctx, y) != MT_OK && e.ctx.err.msg[0]);
    CHECK(all_equal(gw, gw, 20, 0.0f) && gw[0] == 0.0f && gw[19] == 0.0f);
    env_next(&e);
    CHECK(mt_backward(&e.ctx, NULL) != MT_OK);
    env_next(&e);
    mt_tensor *loss = project(&e.ctx, f_linear(&e.ctx, c));
    e.ctx.tape = NULL;
    CHECK(mt_backward(&e.ctx, loss) != MT_OK);
    env_next(&e);
    CHECK(mt_backward(&e.ctx, project(&e.ctx, f_linear(&e.ctx, c))) == MT_OK && gw[0] != 0.0f);
    env_next(&e);

    /* a trained weight must be f32 */
    fd_case b = {.name = "bf16 trained"};
    s_linear_bf16(&b);
    b.l[1].t->requires_grad = true, b.l[1].t->grad = NULL;
    mt_status st = mt_backward(&e.ctx, project(&e.ctx, mt_op_linear(&e.ctx, b.l[0].t, b.l[1].t, NULL)));
    CHECK_MSG(st == MT_ERR_INTERNAL, "bf16 trained weight: status %d", st);
    env_next(&e);
    /* training attention needs f32 keys and values */
    mt_tensor *q = b.l[0].t, *kv = b.l[1].t;
    q->requires_grad = true;
    kv->requires_grad = false;
    mt_tensor *kv2 = mt_tensor_rows(&e.ctx, kv, 0, 3);
    CHECK(!mt_op_attention(&e.ctx, mt_tensor_rows(&e.ctx, q, 0, 3), kv2, kv2, 1, 1, &(mt_attn_opts){.scale = 1}) &&
          e.ctx.status != MT_OK);
    env_close(&e);
    case_free(&b);
    case_free(c);
}

/* A sliding window needs a causal mask and is never negative; window 0 is none. */
static void test_attn_window_args(void) {
    env e;
    env_open(&e, NULL);
    float x[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    mt_tensor t = mt_tensor_wrap(MT_F32, 2, (int64_t[]){4, 2}, x);
    mt_attn_opts bad[] = {{.scale = 1, .window = 2}, {.scale = 1, .causal = true, .window = -1}};
    for (size_t i = 0; i < MT_ARRAY_LEN(bad); i++) {
        CHECK(!mt_op_attention(&e.ctx, &t, &t, &t, 1, 1, &bad[i]) && e.ctx.status == MT_ERR_INTERNAL);
        env_next(&e);
    }
    mt_attn_opts o = {.scale = 1, .causal = true};
    mt_tensor *none = mt_op_attention(&e.ctx, &t, &t, &t, 1, 1, &o);
    o.window = 4; /* every key of every row: the same bits */
    mt_tensor *wide = mt_op_attention(&e.ctx, &t, &t, &t, 1, 1, &o);
    o.window = 1; /* each row sees only itself: out = v */
    mt_tensor *one = mt_op_attention(&e.ctx, &t, &t, &t, 1, 1, &o);
    CHECK(none && wide && one && memcmp(none->data, wide->data, sizeof x) == 0 && memcmp(one->data, x, sizeof x) == 0);
    env_close(&e);
}

static void test_tape_reset(void) {
    fd_case cs = {.name = "reset"}, *c = &cs;
    s_linear(c);
    float gw[20] = {0}, gw1[20];
    mt_tensor tgw = mt_tensor_wrap(MT_F32, 2, (int64_t[]){4, 5}, gw);
    env e;
    env_open(&e, NULL);
    for (int rep = 0; rep < 2; rep++) {
        X(0)->requires_grad = false, X(1)->requires_grad = true, X(1)->grad = &tgw;
        CHECK(mt_backward(&e.ctx, project(&e.ctx, f_linear(&e.ctx, c))) == MT_OK);
        CHECK(mt_tape_count(e.tape) == 5); /* linear, mul, linear, reshape, linear */
        if (rep == 0) memcpy(gw1, gw, sizeof gw);
        else CHECK(all_equal(gw, gw1, 20, 1.0f));
        mt_tape_reset(e.tape);
        CHECK(mt_tape_count(e.tape) == 0);
        memset(gw, 0, sizeof gw);
        env_next(&e);
    }
    env_close(&e);
    case_free(c);
}

/* The mask is a function of (seed, index): the same in forward and backward, on any number of threads. */
static void test_dropout(mt_pool *pool3) {
    enum { R = 64, C = 64, N = R * C };
    fd_case cs = {.name = "dropout"}, *c = &cs;
    float *x = lf(c, true, R, C)->data, *y[2], *dx[2];
    for (int64_t i = 0; i < N; i++) x[i] = 0.5f + (float)(i % 7);
    const float p = 0.25f, keep = 1.0f / (1.0f - p);
    env e;
    for (int th = 0; th < 2; th++) {
        env_open(&e, th ? pool3 : NULL);
        X(0)->requires_grad = true, X(0)->grad = NULL;
        mt_tensor *out = mt_op_dropout(&e.ctx, X(0), p, 5);
        CHECK(mt_backward(&e.ctx, project(&e.ctx, out)) == MT_OK && X(0)->grad);
        y[th] = malloc(N * sizeof(float)), dx[th] = malloc(N * sizeof(float));
        memcpy(y[th], out->data, N * sizeof(float)), memcpy(dx[th], X(0)->grad->data, N * sizeof(float));
        env_close(&e);
    }
    CHECK(memcmp(y[0], y[1], N * sizeof(float)) == 0 && memcmp(dx[0], dx[1], N * sizeof(float)) == 0);
    int64_t dropped = 0, bad = 0;
    for (int64_t i = 0; i < N; i++) {
        bool kept = y[0][i] != 0.0f;
        dropped += !kept;
        bad += kept ? (y[0][i] != x[i] * keep || fabsf(dx[0][i] - proj_r(i) * keep) > 1e-6f) : dx[0][i] != 0.0f;
    }
    CHECK_MSG(bad == 0, "dropout: %lld elements where the output and the gradient disagree", (long long)bad);
    CHECK_MSG(fabs((double)dropped / N - p) < 0.03, "dropout dropped %lld of %d at p = %g", (long long)dropped, N, p);
    env_open(&e, NULL);
    mt_tensor *other = mt_op_dropout(&e.ctx, X(0), p, 6), *none = mt_op_dropout(&e.ctx, X(0), 0.0f, 5);
    CHECK(other && memcmp(other->data, y[0], N * sizeof(float)) != 0);
    CHECK(none && memcmp(none->data, x, N * sizeof(float)) == 0);
    CHECK(!mt_op_dropout(&e.ctx, X(0), 1.0f, 5) && e.ctx.status == MT_ERR_INVALID_ARG);
    env_close(&e);
    for (int th = 0; th < 2; th++) free(y[th]), free(dx[th]);
    case_free(c);
}

/* Cross-entropy: ignored rows add no loss and get no gradient; inv_norm scales both. */
static void test_cross_entropy(void) {
    enum { T = 4, V = 6 };
    fd_case cs = {.name = "ce"}, *c = &cs;
    const float *l = lf(c, true, T, V)->data;
    const int32_t tg[T] = {1, -100, 5, -7}, none[T] = {-1, -1, -100, -2};
    double ref = 0;
    for (int t = 0; t < T; t += 2) {
        double s = 0;
        for (int v = 0; v < V; v++) s += exp(l[t * V + v]);
        ref += log(s) - l[t * V + tg[t]];
    }
    float loss[2], g[2][T * V];
    env e;
    env_open(&e, NULL);
    for (int k = 0; k < 2; k++) {
        X(0)->requires_grad = true, X(0)->grad = NULL;
        mt_tensor *y = mt_op_cross_entropy(&e.ctx, X(0), tg, k ? 0.25f : 1.0f);
        CHECK(y && mt_backward(&e.ctx, y) == MT_OK && X(0)->grad);
        if (!X(0)->grad) return;
        loss[k] = mt_f32(y)[0];
        memcpy(g[k], X(0)->grad->data, sizeof g[k]);
        env_next(&e);
    }
    CHECK_NEAR(loss[0], ref, 1e-5);
    CHECK(loss[1] == 0.25f * loss[0] && all_equal(g[0], g[1], T * V, 4.0f));
    for (int v = 0; v < V; v++) CHECK(g[0][V + v] == 0.0f && g[0][3 * V + v] == 0.0f);

    X(0)->grad = NULL;
    mt_tensor *y = mt_op_cross_entropy(&e.ctx, X(0), none, 1.0f);
    CHECK(y && mt_f32(y)[0] == 0.0f && mt_backward(&e.ctx, y) == MT_OK && X(0)->grad);
    for (int i = 0; X(0)->grad && i < T * V; i++) CHECK(mt_f32(X(0)->grad)[i] == 0.0f);
    env_next(&e);
    CHECK(!mt_op_cross_entropy(&e.ctx, X(0), (int32_t[]){0, V, 0, 0}, 1.0f) && e.ctx.status == MT_ERR_INVALID_ARG);
    env_next(&e);

    /* Weighted: each row's loss and gradient times its weight, the rows' losses given back. */
    const float w[T] = {2.0f, 9.0f, -0.5f, 4.0f};
    float nll[T] = {-1, -1, -1, -1};
    X(0)->grad = NULL;
    y = mt_op_cross_entropy_weighted(&e.ctx, X(0), tg, w, nll);
    CHECK(y && mt_backward(&e.ctx, y) == MT_OK && X(0)->grad);
    if (!X(0)->grad) return;
    double want = 0;
    for (int t = 0; t < T; t += 2) {
        double s = 0;
        for (int v = 0; v < V; v++) s += exp(l[t * V + v]);
        CHECK_NEAR(nll[t], log(s) - l[t * V + tg[t]], 1e-5);
        want += w[t] * (log(s) - l[t * V + tg[t]]);
        for (int v = 0; v < V; v++) CHECK_NEAR(mt_f32(X(0)->grad)[t * V + v], w[t] * g[0][t * V + v], 1e-6);
    }
    CHECK(nll[1] == 0.0f && nll[3] == 0.0f);
    CHECK_NEAR(mt_f32(y)[0], want, 1e-5);
    env_close(&e);
    case_free(c);
}

/* q, k, v weights as the trainer keeps them: tensors over row ranges of one fused weight whose gradients are the
 * same row ranges of one gradient buffer. They must match the row views on the tape (checked against finite
 * differences above). */
static void test_split_alias(void) {
    fd_case cs = {.name = "alias"}, *c = &cs;
    s_split(c);
    float gview[72], gx[18], galias[72] = {0};
    env e;
    env_open(&e, NULL);
    X(0)->requires_grad = X(1)->requires_grad = true, X(0)->grad = X(1)->grad = NULL;
    CHECK(mt_backward(&e.ctx, project(&e.ctx, f_split(&e.ctx, c))) == MT_OK && X(1)->grad && X(0)->grad);
    if (!X(1)->grad || !X(0)->grad) return;
    memcpy(gview, X(1)->grad->data, sizeof gview), memcpy(gx, X(0)->grad->data, sizeof gx);
    env_next(&e);
    mt_tensor part[3], gpart[3], *y[3];
    for (int r = 0; r < 3; r++) {
        part[r] = mt_tensor_wrap(MT_F32, 2, (int64_t[]){4, 6}, mt_f32(X(1)) + 24 * r);
        gpart[r] = mt_tensor_wrap(MT_F32, 2, (int64_t[]){4, 6}, galias + 24 * r);
        part[r].requires_grad = true, part[r].grad = &gpart[r];
        y[r] = mt_op_linear(&e.ctx, X(0), &part[r], NULL);
    }
    X(0)->grad = NULL;
    CHECK(mt_backward(&e.ctx, project(&e.ctx, mt_op_add(&e.ctx, mt_op_mul(&e.ctx, y[0], y[1]), y[2]))) == MT_OK);
    for (int i = 0; i < 72; i++) CHECK_NEAR(galias[i], gview[i], 1e-6);
    for (int i = 0; X(0)->grad && i < 18; i++) CHECK_NEAR(mt_f32(X(0)->grad)[i], gx[i], 1e-6);
    env_close(&e);
    case_free(c);
}

/* The gradients of a decoder block of 520 tokens (large enough to split rows, GEMM tiles and attention blocks over
 * threads) are the same bit for bit on one thread and on three: a resumed run may use another thread count. */
static void test_thread_invariance(mt_pool *pool3) {
    fd_case cs = {.name = "threads"}, *c = &cs;
    block_setup(c, 520, 32, 40);
    float *g[MAX_LEAVES] = {0};
    for (int th = 0; th < 2; th++) {
        env e;
        env_open(&e, th ? pool3 : NULL);
        for (int i = 0; i < c->n; i++) X(i)->requires_grad = c->l[i].train, X(i)->grad = NULL;
        CHECK(mt_backward(&e.ctx, f_block(&e.ctx, c)) == MT_OK);
        for (int i = 0; i < c->n && e.ctx.status == MT_OK; i++) {
            if (!c->l[i].train) continue;
            size_t bytes = (size_t)mt_tensor_numel(X(i)) * sizeof(float);
            if (!th) g[i] = malloc(bytes), memcpy(g[i], X(i)->grad->data, bytes);
            else CHECK_MSG(memcmp(g[i], X(i)->grad->data, bytes) == 0, "leaf %d differs on 3 threads", i);
        }
        env_close(&e);
    }
    for (int i = 0; i < MAX_LEAVES; i++) free(g[i]);
    case_free(c);
}

/* Makes the k-th allocation of a forward + backward fail for every k: the status is MT_ERR_NOMEM or the run
 * succeeds with the same gradients; nothing crashes or leaks (the ASan build runs this). */
static void alloc_failures(case_setup setup, const char *name) {
    fd_case c = {.name = name};
    setup(&c);
    float *ref[MAX_LEAVES] = {0};
    for (size_t k = 0; k < 100000; k++) {
        mt_cpu_scratch_release();
        mt_arena arena;
        mt_arena_init(&arena, 256);
        mt_ctx ctx = {.arena = &arena};
        mt_tape *tape = NULL;
        mt_err err;
        mt_alloc_fail_after(k);
        mt_status st = mt_tape_new(&tape, &err);
        if (st == MT_OK) {
            ctx.tape = tape;
            for (int i = 0; i < c.n; i++) c.l[i].t->requires_grad = c.l[i].train, c.l[i].t->grad = NULL;
            mt_tensor *loss = c.fwd(&ctx, &c);
            if (!c.is_loss) loss = project(&ctx, loss);
            st = loss ? mt_backward(&ctx, loss) : ctx.status;
        }
        size_t used = mt_alloc_fail_after(0);
        CHECK_MSG(st == MT_OK || st == MT_ERR_NOMEM, "%s: allocation %zu failing gives status %d", name, k, st);
        for (int i = 0; i < c.n && st == MT_OK; i++) {
            if (!c.l[i].train) continue;
            int64_t n = mt_tensor_numel(c.l[i].t);
            const float *g = mt_f32(c.l[i].t->grad);
            if (!ref[i]) {
                ref[i] = malloc((size_t)n * sizeof(float));
                memcpy(ref[i], g, (size_t)n * sizeof(float));
                continue;
            }
            double err_max = 0, scale = 1e-6;
            for (int64_t j = 0; j < n; j++)
                err_max = fmax(err_max, fabs(g[j] - ref[i][j])), scale = fmax(scale, fabs(ref[i][j]));
            CHECK_MSG(err_max <= 1e-5 * scale, "%s: allocation %zu failing changes leaf %d's gradient by %g", name, k,
                      i, err_max);
        }
        mt_tape_free(tape);
        mt_arena_free(&arena);
        if (k > 0 && used < k) break; /* the k-th allocation was never reached: every one has failed once */
    }
    for (int i = 0; i < MAX_LEAVES; i++) free(ref[i]);
    case_free(&c);
}

static bool failed_with(env *e, const mt_tensor *y, const char *what) {
    bool ok = !y && e->ctx.status == MT_ERR_INTERNAL && strstr(e->ctx.err.msg, what);
    if (!ok) fprintf(stderr, "expected a failure naming '%s', got '%s'\n", what, e->ctx.err.msg);
    env_next(e);
    return ok;
}

static bool equal_to(const mt_tensor *y, const float *want, int64_t n) {
    if (!y || mt_tensor_numel(y) != n) return false;
    return memcmp(y->data, want, (size_t)n * sizeof(float)) == 0;
}

/* Forward values, every index check and when index_add_rows_inplace may write into its base. */
static void test_moe_ops(void) {
    float xv[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, bv[8] = {1, 1, 1, 1, 2, 2, 2, 2};
    mt_tensor x = mt_tensor_wrap(MT_F32, 2, (int64_t[]){3, 4}, xv); /* [3, 4] */
    env e;
    env_open(&e, NULL);
    mt_ctx *ctx = &e.ctx;
    mt_tensor *y = mt_op_gather_cols(ctx, &x, (int64_t[]){3, 0, 1, 1, 2, 3}, 2);
    CHECK(equal_to(y, (float[]){4, 1, 6, 6, 11, 12}, 6) && y->shape[0] == 3 && y->shape[1] == 2);
    y = mt_op_pick(ctx, &x, (int64_t[]){11, 0, 11}, 3);
    CHECK(equal_to(y, (float[]){12, 1, 12}, 3) && y->shape[0] == 3 && y->shape[1] == 1);
    y = mt_op_row_normalize(ctx, mt_tensor_rows(ctx, &x, 0, 1));
    CHECK(equal_to(y, (float[]){0.1f, 0.2f, 0.3f, 0.4f}, 4));
    mt_tensor w = mt_tensor_wrap(MT_F32, 1, (int64_t[]){3}, (float[]){2, 0, -1});
    y = mt_op_scale_rows(ctx, &x, &w);
    CHECK(equal_to(y, (float[]){2, 4, 6, 8, 0, 0, 0, 0, -9, -10, -11, -12}, 12));
    mt_tensor base = mt_tensor_wrap(MT_F32, 2, (int64_t[]){2, 4}, bv);
    int64_t twice[3] = {1, 0, 1};
    y = mt_op_index_add_rows(ctx, &base, twice, &x);
    CHECK(equal_to(y, (float[]){6, 7, 8, 9, 12, 14, 16, 18}, 8) && bv[0] == 1 && bv[4] == 2);
    CHECK(mt_tape_count(e.tape) == 0);

    CHECK(failed_with(&e, mt_op_gather_cols(ctx, &x, (int64_t[]){0, 4}, 2), "gather_cols: index 4 (row 0, slot 1)"));
    CHECK(failed_with(&e, mt_op_gather_cols(ctx, &x, (int64_t[]){0, 1, -1, 0}, 2), "index -1 (row 1, slot 0)"));
    CHECK(failed_with(&e, mt_op_pick(ctx, &x, (int64_t[]){0, 12}, 2), "pick: index 12 (entry 1)"));
    CHECK(failed_with(&e, mt_op_pick(ctx, &x, (int64_t[]){-3}, 1), "pick: index -3"));
    float zv[4] = {1, 0.5f, 0.5f, -0.5f};
    mt_tensor zero = mt_tensor_wrap(MT_F32, 2, (int64_t[]){2, 2}, zv);
    CHECK(failed_with(&e, mt_op_row_normalize(ctx, &zero), "row 1 sums to zero"));
    mt_tensor w4 = mt_tensor_wrap(MT_F32, 1, (int64_t[]){4}, xv);
    CHECK(failed_with(&e, mt_op_scale_rows(ctx, &x, &w4), "scale_rows: weights must be [3]"));
    CHECK(failed_with(&e, mt_op_index_add_rows(ctx, &base, (int64_t[]){0, 2, 0}, &x), "index 2 (source row 1)"));
    CHECK(failed_with(&e, mt_op_index_add_rows(ctx, &zero, twice, &x), "rows of 4 added to rows of 2"));

    /* in place: only with no tape, a base that needs no gradient and a source outside it; failures write nothing */
    float sum[8] = {6, 7, 8, 9, 12, 14, 16, 18};
    e.ctx.tape = NULL;
    CHECK(!mt_op_index_add_rows_inplace(ctx, &base, (int64_t[]){0, 0, 9}, &x) && bv[0] == 1 && bv[4] == 2);
    env_next(&e);
    e.ctx.tape = NULL;
    base.requires_grad = true;
    y = mt_op_index_add_rows_inplace(ctx, &base, twice, &x);
    CHECK(y != &base && equal_to(y, sum, 8) && bv[0] == 1);
    base.requires_grad = false;
    e.ctx.tape = e.tape;
    y = mt_op_index_add_rows_inplace(ctx, &base, twice, &x);
    CHECK(y != &base && equal_to(y, sum, 8) && bv[0] == 1);
    e.ctx.tape = NULL;
    y = mt_op_index_add_rows_inplace(ctx, &base, (int64_t[]){1}, mt_tensor_rows(ctx, &base, 0, 1));
    CHECK(y != &base && equal_to(y, (float[]){1, 1, 1, 1, 3, 3, 3, 3}, 8) && bv[4] == 2);
    y = mt_op_index_add_rows_inplace(ctx, &base, twice, &x);
    CHECK(y == &base && equal_to(&base, sum, 8));
    env_close(&e);

    /* a MoE FFN in inference (in place) and in training (copies) gives the same output bit for bit */
    fd_case cs = {.name = "moe inplace"}, *c = &cs;
    s_moe(c);
    env_open(&e, NULL);
    e.ctx.tape = NULL;
    mt_tensor *inf = f_moe(&e.ctx, c);
    e.ctx.tape = e.tape;
    for (int i = 0; i < c->n; i++) X(i)->requires_grad = true, X(i)->grad = NULL;
    mt_tensor *train = f_moe(&e.ctx, c);
    CHECK(inf && train && train->requires_grad && equal_to(train, mt_f32(inf), MOE_T * 6));
    env_close(&e);
    case_free(c);
}

int main(void) {
    mt_err err;
    mt_pool *pool3 = NULL;
    CHECK(mt_pool_new(3, &pool3, &err) == MT_OK);
    /* every kernel path this CPU has, whatever MT_CPU / MT_BF16_DOT say; not the bf16 dot, whose rounding of the
     * activations makes a forward that finite differences cannot follow (test_kernels and test_linear_transposed
     * check it) */
    for (int p = 0; p < CPU_PATHS; p++) {
        if (!cpu_path_enter(p, CPU_PATHS_NO_BF16)) continue;
        char label[64];
        snprintf(label, sizeof label, "%s, 1 thread", cpu_path_names[p]);
        test_finite_differences(NULL, label);
        snprintf(label, sizeof label, "%s, 3 threads", cpu_path_names[p]);
        test_finite_differences(pool3, label);
    }
    cpu_path_leave();
    test_accumulate();
    test_no_grad();
    test_backward_errors();
    test_attn_window_args();
    test_tape_reset();
    test_dropout(pool3);
    test_cross_entropy();
    test_split_alias();
    test_thread_invariance(pool3);
    test_moe_ops();
    alloc_failures(s_block, "decoder block");
    alloc_failures(s_lora_dropout, "lora dropout");
    alloc_failures(s_long, "300 ops");
    alloc_failures(s_moe, "moe ffn");
    mt_pool_free(pool3);
    mt_cpu_scratch_release();
    cpu_paths_report("test_autograd", CPU_PATHS_NO_BF16);
    return check_report();
}
