/* ops_grad_check: mitten's gradients of each op, and of two decoder blocks with and without LoRA, against the
 * float64 PyTorch references that ops_grad_ref.py writes (see its header for the files of a case).
 *
 * usage: ops_grad_check WORKDIR       (run by ops_grad_ref.py; exit status 0 when every case passes)
 *
 * Every case runs on the calling thread and on a pool of three; MT_CPU=scalar|avx2|avx512 picks the kernels.
 *
 * Each case loads its inputs from WORKDIR/<case>/, runs the graph with the tape on, reduces the output to
 * L = sum(y * R) with ops when it is not a loss already, runs mt_backward and compares every trained input:
 *
 *   | compared         | pass when                                   | why                                      |
 *   |------------------|---------------------------------------------|------------------------------------------|
 *   | grad of an input | max |g - ref| <= 1e-5 max |ref|, per tensor | f32 rounding; seen <= 1e-6, the two      |
 *   |                  | (single ops and decoder chains alike)       | decoder blocks included                  |
 *   | loss (chains)    | |L - ref| <= 1e-5 |ref|                     |                                          |
 *   | frozen inputs    | no gradient at all                          | frozen weights are constants             |
 *
 * Cases: linear (f32 trained; bf16 frozen over 300 rows), embedding, rms_norm, layer_norm, the five activations
 * plain and gated, add / mul / scale, softmax, rope, attention (causal, GQA, q_pos0, bidirectional, segments),
 * gather / scatter / concat / row view, reshape / transpose / head split, dropout, cross-entropy with ignored
 * targets, an adapter with dropout over a frozen bf16 linear, 1100-row norms / activation / softmax /
 * cross-entropy (threaded paths), two decoder blocks with full fine-tuning and with LoRA (alpha / r = 2), the
 * mixture-of-experts ops (gather_cols, row_normalize, pick, scale_rows, index_add_rows with repeated indices) and a
 * whole MoE FFN (router, softmax, top-2 of 6 chosen here from mitten's probabilities and checked against the
 * reference's choice, renormalised weights, gated SiLU experts) against a dense PyTorch formulation, and nn/moe
 * itself with a shared expert and its sigmoid gate (Qwen2-MoE: top-3 of 6, weights not renormalised).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/npy.h"
#include "nn/moe.h"
#include "nn/nn.h"
#include "tensor/autograd.h"

#define TOL 1e-5
#define MAX_BUFS 160

typedef struct refcase {
    const char *root, *name;
    mt_arena arena;
    mt_ctx ctx;
    mt_tape *tape;
    void *bufs[MAX_BUFS]; /* npy data kept alive until the case ends */
    int n_bufs;
    int failures;
} refcase;

static int total_failures;

static void fail(refcase *r, const char *fmt, const char *what, double a, double b) {
    fprintf(stderr, "FAIL %s: ", r->name);
    fprintf(stderr, fmt, what, a, b);
    fputc('\n', stderr);
    r->failures++;
}

static bool load(refcase *r, const char *file, mt_npy *a) {
    char path[1024];
    mt_err err;
    snprintf(path, sizeof path, "%s/%s/%s.npy", r->root, r->name, file);
    if (mt_npy_read(path, a, &err) != MT_OK) {
        fprintf(stderr, "FAIL %s: %s\n", r->name, err.msg);
        r->failures++;
        return false;
    }
    return true;
}

static void *keep(refcase *r, mt_npy *a) {
    if (r->n_bufs == MAX_BUFS) {
        mt_npy_free(a);
        return NULL;
    }
    return r->bufs[r->n_bufs++] = a->data;
}

/* An input as a tensor of its file's shape: f32, or converted to bf16 (the file holds bf16-exact values). */
static mt_tensor in(refcase *r, const char *name, mt_dtype as, bool train) {
    mt_npy a;
    mt_tensor t = {0};
    if (!load(r, name, &a)) return t;
    if (a.dtype != MT_F32 || a.ndim < 1 || a.ndim > 2) {
        fail(r, "%s: expected a 1D or 2D f32 array%.0f%.0f", name, 0, 0);
        mt_npy_free(&a);
        return t;
    }
    int64_t n = (int64_t)(a.nbytes / 4);
    t = mt_tensor_wrap(as, a.ndim, a.shape, NULL);
    if (as == MT_BF16) {
        uint16_t *h = malloc((size_t)n * sizeof *h);
        for (int64_t i = 0; h && i < n; i++) h[i] = mt_f32_to_bf16(((float *)a.data)[i]);
        mt_npy_free(&a);
        a.data = h;
    }
    t.data = keep(r, &a);
    t.requires_grad = train;
    return t;
}

/* An integer input (ids, targets: i32; row indices: i64); n is set to its length. */
static const void *ints(refcase *r, const char *name, mt_dtype dt, int64_t *n) {
    mt_npy a;
    if (!load(r, name, &a)) return NULL;
    if (a.dtype != dt || a.ndim != 1) {
        fail(r, "%s: unexpected dtype or shape%.0f%.0f", name, 0, 0);
        mt_npy_free(&a);
        return NULL;
    }
    if (n) *n = a.shape[0];
    return keep(r, &a);
}

static void begin(refcase *r, const char *root, const char *name, mt_pool *pool) {
    memset(r, 0, sizeof *r);
    r->root = root, r->name = name;
    mt_arena_init(&r->arena, 1 << 16);
    r->ctx = (mt_ctx){.arena = &r->arena, .pool = pool};
    mt_err err;
    if (mt_tape_new(&r->tape, &err) != MT_OK) r->failures++;
    r->ctx.tape = r->tape;
}

static void end(refcase *r) {
    for (int i = 0; i < r->n_bufs; i++) free(r->bufs[i]);
    mt_tape_free(r->tape);
    mt_arena_free(&r->arena);
    fprintf(stderr, "%s %s (threads: %d)\n", r->failures ? "FAIL" : "ok  ", r->name,
            r->ctx.pool ? mt_pool_threads(r->ctx.pool) : 1);
    total_failures += r->failures;
}

static mt_tensor *ones(mt_ctx *ctx, int64_t n) {
    mt_tensor *t = mt_tensor_new_2d(ctx, MT_F32, 1, n);
    for (int64_t i = 0; t && i < n; i++) mt_f32(t)[i] = 1.0f;
    return t;
}

/* L = sum(y * R) as ops, then backward; for a loss, backward directly. */
static void backward(refcase *r, mt_tensor *y, bool is_loss) {
    mt_ctx *ctx = &r->ctx;
    if (y && !is_loss) {
        mt_tensor R = in(r, "r", MT_F32, false);
        int64_t T = y->shape[0], C = y->shape[1];
        if (!R.data || R.ndim != 2 || R.shape[0] != T || R.shape[1] != C) {
            fail(r, "%s: r.npy does not match the output%.0f%.0f", "r", 0, 0);
            return;
        }
        y = mt_op_linear(ctx, mt_op_mul(ctx, y, &R), ones(ctx, C), NULL);
        y = mt_op_linear(ctx, mt_op_reshape(ctx, y, 2, (int64_t[]){1, T}), ones(ctx, T), NULL);
    }
    if (!y || mt_backward(ctx, y) != MT_OK) {
        fprintf(stderr, "FAIL %s: forward/backward: %s\n", r->name, ctx->err.msg);
        r->failures++;
    }
}

/* Compares t's gradient with grad_<name>.npy. */
static void cmp(refcase *r, const char *name, const mt_tensor *t) {
    char file[256];
    snprintf(file, sizeof file, "grad_%s", name);
    mt_npy a;
    if (r->ctx.status || !load(r, file, &a)) return;
    int64_t n = mt_tensor_numel(t);
    if (!t->grad || (int64_t)(a.nbytes / 4) != n || a.dtype != MT_F32) {
        fail(r, "%s: no gradient or a gradient of the wrong size%.0f%.0f", name, 0, 0);
        mt_npy_free(&a);
        return;
    }
    const float *g = mt_f32(t->grad), *ref = a.data;
    double err = 0, scale = 0;
    for (int64_t i = 0; i < n; i++) err = fmax(err, fabs((double)g[i] - ref[i])), scale = fmax(scale, fabs(ref[i]));
    if (!(err <= TOL * scale)) fail(r, "%s: max |g - ref| = %.3g, max |ref| = %.3g", name, err, scale);
    if (getenv("MT_GRAD_VERBOSE")) fprintf(stderr, "  %-12s rel err %.2e\n", name, scale > 0 ? err / scale : err);
    mt_npy_free(&a);
}

static void no_grad(refcase *r, const char *name, const mt_tensor *t) {
    if (t->grad) fail(r, "%s: a frozen input got a gradient%.0f%.0f", name, 0, 0);
}

/* ---- cases (the same graphs as ops_grad_ref.py) ---- */

static void c_linear(refcase *r) {
    mt_tensor x = in(r, "x", MT_F32, true), w = in(r, "w", MT_F32, true), b = in(r, "b", MT_F32, true);
    backward(r, mt_op_linear(&r->ctx, &x, &w, &b), false);
    cmp(r, "x", &x), cmp(r, "w", &w), cmp(r, "b", &b);
}

static void c_linear_bf16(refcase *r) {
    mt_tensor x = in(r, "x", MT_F32, true), w = in(r, "w", MT_BF16, false);
    backward(r, mt_op_linear(&r->ctx, &x, &w, NULL), false);
    cmp(r, "x", &x), no_grad(r, "w", &w);
}

static void c_embedding(refcase *r) {
    int64_t n = 0;
    mt_tensor table = in(r, "table", MT_F32, true);
    const int32_t *ids = ints(r, "ids", MT_I32, &n);
    if (ids) backward(r, mt_op_embedding(&r->ctx, &table, ids, n), false);
    cmp(r, "table", &table);
}

static void c_rms_norm(refcase *r) {
    mt_tensor x = in(r, "x", MT_F32, true), w = in(r, "w", MT_F32, true);
    backward(r, mt_op_rms_norm(&r->ctx, &x, &w, 1e-6f), false);
    cmp(r, "x", &x), cmp(r, "w", &w);
}

static void c_layer_norm(refcase *r) {
    mt_tensor x = in(r, "x", MT_F32, true), w = in(r, "w", MT_F32, true), b = in(r, "b", MT_F32, true);
    backward(r, mt_op_layer_norm(&r->ctx, &x, &w, &b, 1e-6f), false);
    cmp(r, "x", &x), cmp(r, "w", &w), cmp(r, "b", &b);
}

static void c_act(refcase *r) {
    mt_act act;
    if (!mt_act_parse(strchr(r->name, '_') + 1, &act)) {
        fail(r, "%s: unknown activation%.0f%.0f", r->name, 0, 0);
        return;
    }
    if (strncmp(r->name, "act_", 4) == 0) {
        mt_tensor x = in(r, "x", MT_F32, true);
        backward(r, mt_op_act(&r->ctx, &x, act), false);
        cmp(r, "x", &x);
    } else {
        mt_tensor g = in(r, "gate", MT_F32, true), u = in(r, "up", MT_F32, true);
        backward(r, mt_op_gated_act(&r->ctx, &g, &u, act), false);
        cmp(r, "gate", &g), cmp(r, "up", &u);
    }
}

static void c_add_mul_scale(refcase *r) {
    mt_tensor a = in(r, "a", MT_F32, true), b = in(r, "b", MT_F32, true);
    mt_ctx *ctx = &r->ctx;
    backward(r, mt_op_scale(ctx, mt_op_mul(ctx, mt_op_add(ctx, &a, &b), &a), -0.75f), false);
    cmp(r, "a", &a), cmp(r, "b", &b);
}

static void c_softmax(refcase *r) {
    mt_tensor x = in(r, "x", MT_F32, true);
    backward(r, mt_op_softmax(&r->ctx, &x), false);
    cmp(r, "x", &x);
}

static void c_rows_big(refcase *r) {
    mt_tensor x = in(r, "x", MT_F32, true), w1 = in(r, "w1", MT_F32, true), w2 = in(r, "w2", MT_F32, true),
              b2 = in(r, "b2", MT_F32, true);
    mt_ctx *ctx = &r->ctx;
    mt_tensor *g = mt_op_rms_norm(ctx, &x, &w1, 1e-6f), *up = mt_op_layer_norm(ctx, &x, &w2, &b2, 1e-6f);
    backward(r, mt_op_softmax(ctx, mt_op_gated_act(ctx, g, up, MT_ACT_GELU_TANH)), false);
    cmp(r, "x", &x), cmp(r, "w1", &w1), cmp(r, "w2", &w2), cmp(r, "b2", &b2);
}

static void c_rope(refcase *r) {
    mt_tensor x = in(r, "x", MT_F32, true), c = in(r, "cos", MT_F32, false), s = in(r, "sin", MT_F32, false);
    backward(r, mt_op_rope(&r->ctx, &x, 3, &c, &s), false);
    cmp(r, "x", &x);
}

static void c_attention(refcase *r) {
    static const struct {
        const char *name;
        int H, Hk;
        mt_attn_opts o;
        int64_t cu[4];
    } cfg[] = {
        {"attention_causal", 2, 2, {.causal = true}, {0}},
        {"attention_gqa", 6, 2, {.causal = true}, {0}},
        {"attention_q_pos0", 4, 2, {.causal = true, .q_pos0 = 5}, {0}},
        {"attention_full", 2, 1, {.causal = false}, {0}},
        {"attention_segments", 4, 2, {.n_seg = 3}, {0, 3, 4, 9}},
    };
    for (size_t i = 0; i < MT_ARRAY_LEN(cfg); i++) {
        if (strcmp(cfg[i].name, r->name) != 0) continue;
        mt_tensor q = in(r, "q", MT_F32, true), k = in(r, "k", MT_F32, true), v = in(r, "v", MT_F32, true);
        mt_attn_opts o = cfg[i].o;
        if (o.n_seg) o.cu_seqlens = cfg[i].cu;
        o.scale = 1.0f / sqrtf((float)(q.shape[1] / cfg[i].H));
        backward(r, mt_op_attention(&r->ctx, &q, &k, &v, cfg[i].H, cfg[i].Hk, &o), false);
        cmp(r, "q", &q), cmp(r, "k", &k), cmp(r, "v", &v);
    }
}

static void c_rows_ops(refcase *r) {
    mt_tensor x = in(r, "x", MT_F32, true), base = in(r, "base", MT_F32, true), src = in(r, "src", MT_F32, true);
    int64_t n = 0;
    const int64_t *idx = ints(r, "idx", MT_I64, &n), *sidx = ints(r, "sidx", MT_I64, NULL);
    if (!idx || !sidx) return;
    mt_ctx *ctx = &r->ctx;
    mt_tensor *g = mt_op_softmax(ctx, mt_op_gather_rows(ctx, &x, idx, n));
    mt_tensor *s = mt_op_scatter_rows(ctx, &base, sidx, &src);
    backward(r, mt_op_concat_rows(ctx, mt_op_concat_rows(ctx, g, mt_op_mul(ctx, s, s)), mt_tensor_rows(ctx, &x, 2, 3)),
             false);
    cmp(r, "x", &x), cmp(r, "base", &base), cmp(r, "src", &src);
}

static void c_views(refcase *r) {
    mt_tensor x = in(r, "x", MT_F32, true);
    mt_ctx *ctx = &r->ctx;
    mt_tensor *a = mt_op_softmax(ctx, mt_op_reshape(ctx, &x, 2, (int64_t[]){4, 9}));
    mt_tensor *b = mt_op_softmax(ctx, mt_op_contiguous(ctx, mt_op_transpose(ctx, &x, 0, 1)));
    mt_tensor *h = mt_op_transpose(ctx, mt_op_reshape(ctx, &x, 3, (int64_t[]){6, 3, 2}), 0, 1);
    mt_tensor *c = mt_op_softmax(ctx, mt_op_reshape(ctx, mt_op_contiguous(ctx, h), 2, (int64_t[]){18, 2}));
    mt_tensor *ab = mt_op_concat_rows(ctx, mt_op_reshape(ctx, a, 2, (int64_t[]){6, 6}), b);
    backward(r, mt_op_concat_rows(ctx, ab, mt_op_reshape(ctx, c, 2, (int64_t[]){6, 6})), false);
    cmp(r, "x", &x);
}

static void c_dropout(refcase *r) {
    mt_tensor x = in(r, "x", MT_F32, true);
    backward(r, mt_op_dropout(&r->ctx, &x, 0.4f, 1234), false);
    cmp(r, "x", &x);
}

static void c_cross_entropy(refcase *r) {
    mt_tensor l = in(r, "logits", MT_F32, true);
    const int32_t *tg = ints(r, "targets", MT_I32, NULL);
    float inv = strcmp(r->name, "cross_entropy_big") == 0 ? 1.0f / 943.0f : 1.0f / 3.0f;
    if (tg) backward(r, mt_op_cross_entropy(&r->ctx, &l, tg, inv), true);
    cmp(r, "logits", &l);
}

static void c_lora_dropout(refcase *r) {
    mt_tensor x = in(r, "x", MT_F32, true);
    mt_lora lo = {.a = in(r, "la", MT_F32, true), .b = in(r, "lb", MT_F32, true), .scale = 2.5f, .dropout = 0.2f,
                  .seed = 77};
    mt_linear lin = {.w = in(r, "w", MT_BF16, false), .b = in(r, "b", MT_F32, false), .lora = &lo};
    backward(r, mt_nn_linear(&r->ctx, &x, &lin), false);
    cmp(r, "x", &x), cmp(r, "la", &lo.a), cmp(r, "lb", &lo.b);
    no_grad(r, "w", &lin.w), no_grad(r, "b", &lin.b);
}

/* ---- mixture-of-experts ops ---- */

static void c_gather_cols(refcase *r) {
    mt_tensor x = in(r, "x", MT_F32, true);
    const int64_t *idx = ints(r, "idx", MT_I64, NULL);
    if (idx) backward(r, mt_op_gather_cols(&r->ctx, &x, idx, 3), false);
    cmp(r, "x", &x);
}

static void c_row_normalize(refcase *r) {
    mt_tensor x = in(r, "x", MT_F32, true);
    backward(r, mt_op_row_normalize(&r->ctx, &x), false);
    cmp(r, "x", &x);
}

static void c_pick(refcase *r) {
    int64_t n = 0;
    mt_tensor x = in(r, "x", MT_F32, true);
    const int64_t *flat = ints(r, "flat", MT_I64, &n);
    if (flat) backward(r, mt_op_pick(&r->ctx, &x, flat, n), false);
    cmp(r, "x", &x);
}

static void c_scale_cols(refcase *r) {
    mt_tensor x = in(r, "x", MT_F32, true), g = in(r, "g", MT_F32, true);
    backward(r, mt_op_scale_cols(&r->ctx, &x, &g), false);
    cmp(r, "x", &x), cmp(r, "g", &g);
}

static void c_scale_rows(refcase *r) {
    mt_tensor x = in(r, "x", MT_F32, true), w = in(r, "w", MT_F32, true), w2 = in(r, "w2", MT_F32, true);
    mt_ctx *ctx = &r->ctx;
    backward(r, mt_op_concat_rows(ctx, mt_op_scale_rows(ctx, &x, &w), mt_op_scale_rows(ctx, &x, &w2)), false);
    cmp(r, "x", &x), cmp(r, "w", &w), cmp(r, "w2", &w2);
}

static void c_index_add_rows(refcase *r) {
    mt_tensor base = in(r, "base", MT_F32, true), src = in(r, "src", MT_F32, true), cb = in(r, "cbase", MT_F32, false);
    const int64_t *idx = ints(r, "idx", MT_I64, NULL);
    if (!idx) return;
    mt_ctx *ctx = &r->ctx;
    mt_tensor *a = mt_op_index_add_rows(ctx, &base, idx, &src);
    backward(r, mt_op_concat_rows(ctx, a, mt_op_index_add_rows(ctx, &cb, idx, mt_op_mul(ctx, &src, &src))), false);
    cmp(r, "base", &base), cmp(r, "src", &src), no_grad(r, "cbase", &cb);
}

/* ---- a MoE FFN as a model writes it (the reference computes it densely, every expert on every token) ---- */

enum { MOE_T = 7, MOE_E = 6, MOE_K = 2 };

/* Each row's k largest probabilities, largest first (ties to the lower expert): the host's routing choice. */
static void top_k(const float *p, int64_t T, int64_t E, int64_t k, int64_t *idx) {
    for (int64_t t = 0; t < T; t++) {
        for (int64_t j = 0; j < k; j++) {
            int64_t best = -1;
            for (int64_t e = 0; e < E; e++) {
                bool taken = false;
                for (int64_t i = 0; i < j; i++) taken |= idx[t * k + i] == e;
                if (!taken && (best < 0 || p[t * E + e] > p[t * E + best])) best = e;
            }
            idx[t * k + j] = best;
        }
    }
}

static void c_moe(refcase *r) {
    mt_ctx *ctx = &r->ctx;
    mt_tensor x = in(r, "x", MT_F32, true), router = in(r, "router", MT_F32, true);
    mt_linear ex[MOE_E][3];
    memset(ex, 0, sizeof ex);
    char name[32];
    for (int e = 0; e < MOE_E; e++)
        for (int m = 0; m < 3; m++)
            snprintf(name, sizeof name, "e%d.%c", e, "gud"[m]), ex[e][m].w = in(r, name, MT_F32, true);
    const int64_t *want = ints(r, "topk", MT_I64, NULL);
    if (!want || r->failures) return;
    int64_t T = x.shape[0], C = x.shape[1], idx[MOE_T * MOE_K], tok[MOE_T * MOE_K], flat[MOE_T * MOE_K];
    mt_tensor *probs = mt_op_softmax(ctx, mt_op_linear(ctx, &x, &router, NULL));
    if (!probs) {
        backward(r, NULL, false);
        return;
    }
    top_k(mt_f32(probs), T, MOE_E, MOE_K, idx);
    for (int64_t t = 0; t < T; t++) {
        int64_t a = idx[t * MOE_K], b = idx[t * MOE_K + 1], ra = want[t * MOE_K], rb = want[t * MOE_K + 1];
        if (!((a == ra && b == rb) || (a == rb && b == ra)))
            fail(r, "%s: mitten routes to other experts than the reference at token %.0f (expert %.0f)", "top-k",
                 (double)t, (double)a);
    }
    mt_tensor *w = mt_op_row_normalize(ctx, mt_op_gather_cols(ctx, probs, idx, MOE_K));
    mt_tensor *out = mt_tensor_zeros(ctx, MT_F32, 2, (int64_t[]){T, C});
    for (int e = 0; e < MOE_E; e++) {
        int64_t n = 0;
        for (int64_t i = 0; i < T * MOE_K; i++)
            if (idx[i] == e) tok[n] = i / MOE_K, flat[n] = i, n++;
        if (n == 0) continue;
        mt_tensor *y = mt_nn_gated_mlp(ctx, mt_op_gather_rows(ctx, &x, tok, n), &ex[e][0], &ex[e][1], &ex[e][2],
                                       MT_ACT_SILU);
        out = mt_op_index_add_rows_inplace(ctx, out, tok, mt_op_scale_rows(ctx, y, mt_op_pick(ctx, w, flat, n)));
    }
    backward(r, out, false);
    cmp(r, "x", &x), cmp(r, "router", &router);
    for (int e = 0; e < MOE_E; e++)
        for (int m = 0; m < 3; m++) snprintf(name, sizeof name, "e%d.%c", e, "gud"[m]), cmp(r, name, &ex[e][m].w);
}

/* nn/moe itself as Qwen2-MoE configures it: top-3 of the 6 experts, weights not renormalised, a shared expert over
 * every token scaled by sigmoid(x . sgate); its chosen experts must be the reference's, in the same order. */
enum { MOE_SK = 3 };
static void c_moe_shared(refcase *r) {
    mt_tensor x = in(r, "x", MT_F32, true);
    mt_moe_expert ex[MOE_E];
    mt_moe moe = {.router = {.w = in(r, "router", MT_F32, true)}, .experts = ex, .n_experts = MOE_E, .top_k = MOE_SK,
                  .act = MT_ACT_SILU, .has_shared = true, .has_shared_gate = true};
    memset(ex, 0, sizeof ex);
    char name[32];
    for (int e = 0; e < MOE_E; e++) {
        mt_linear *l[3] = {&ex[e].gate, &ex[e].up, &ex[e].down};
        for (int m = 0; m < 3; m++)
            snprintf(name, sizeof name, "e%d.%c", e, "gud"[m]), l[m]->w = in(r, name, MT_F32, true);
    }
    moe.shared.gate.w = in(r, "s.g", MT_F32, true), moe.shared.up.w = in(r, "s.u", MT_F32, true);
    moe.shared.down.w = in(r, "s.d", MT_F32, true), moe.shared_gate.w = in(r, "sgate", MT_F32, true);
    const int64_t *want = ints(r, "topk", MT_I64, NULL);
    if (!want || r->failures) return;
    int64_t chosen[MOE_T * MOE_SK];
    mt_tensor *y = mt_nn_moe(&r->ctx, &moe, &x, chosen);
    for (int i = 0; y && i < MOE_T * MOE_SK; i++)
        if (chosen[i] != want[i])
            fail(r, "%s: mitten chose expert %.0f where the reference chose %.0f", "top-k", (double)chosen[i],
                 (double)want[i]);
    backward(r, y, false);
    cmp(r, "x", &x), cmp(r, "router", &moe.router.w);
    for (int e = 0; e < MOE_E; e++) {
        const mt_linear *l[3] = {&ex[e].gate, &ex[e].up, &ex[e].down};
        for (int m = 0; m < 3; m++) snprintf(name, sizeof name, "e%d.%c", e, "gud"[m]), cmp(r, name, &l[m]->w);
    }
    cmp(r, "s.g", &moe.shared.gate.w), cmp(r, "s.u", &moe.shared.up.w), cmp(r, "s.d", &moe.shared.down.w);
    cmp(r, "sgate", &moe.shared_gate.w);
}

/* ---- two decoder blocks: embedding, then per block rms_norm, q/k/v (with bias), rope, causal GQA attention, o,
 * residual, rms_norm, gated SiLU MLP, residual; then rms_norm, head and cross-entropy with ignored targets ---- */

enum { CH_T = 9, CH_H = 4, CH_HK = 2, CH_LAYERS = 2, CH_LIN = 7 };
static const char *const lin_names[CH_LIN] = {"q", "k", "v", "o", "g", "u", "d"};

typedef struct chain_layer {
    mt_tensor n1, n2;
    mt_linear lin[CH_LIN];
    mt_lora lora[CH_LIN];
} chain_layer;

typedef struct chain {
    mt_tensor emb, norm, head, cos, sin;
    const int32_t *ids, *targets;
    chain_layer l[CH_LAYERS];
} chain;

/* Full fine-tuning trains every tensor; LoRA trains only the adapters, over frozen bf16 matrices. */
static void chain_load(refcase *r, chain *m, bool lora) {
    char name[64];
    bool full = !lora;
    mt_dtype wt = lora ? MT_BF16 : MT_F32;
    m->emb = in(r, "emb", MT_F32, full), m->norm = in(r, "norm", MT_F32, full), m->head = in(r, "head", wt, full);
    m->cos = in(r, "cos", MT_F32, false), m->sin = in(r, "sin", MT_F32, false);
    m->ids = ints(r, "ids", MT_I32, NULL), m->targets = ints(r, "targets", MT_I32, NULL);
    for (int i = 0; i < CH_LAYERS; i++) {
        chain_layer *L = &m->l[i];
        snprintf(name, sizeof name, "l%d.n1", i), L->n1 = in(r, name, MT_F32, full);
        snprintf(name, sizeof name, "l%d.n2", i), L->n2 = in(r, name, MT_F32, full);
        for (int j = 0; j < CH_LIN; j++) {
            snprintf(name, sizeof name, "l%d.%s.w", i, lin_names[j]), L->lin[j].w = in(r, name, wt, full);
            if (j < 3)
                snprintf(name, sizeof name, "l%d.%s.b", i, lin_names[j]), L->lin[j].b = in(r, name, MT_F32, full);
            if (!lora) continue;
            L->lora[j].scale = 8.0f / 4.0f;
            snprintf(name, sizeof name, "l%d.%s.la", i, lin_names[j]), L->lora[j].a = in(r, name, MT_F32, true);
            snprintf(name, sizeof name, "l%d.%s.lb", i, lin_names[j]), L->lora[j].b = in(r, name, MT_F32, true);
            L->lin[j].lora = &L->lora[j];
        }
    }
}

static mt_tensor *chain_forward(mt_ctx *ctx, chain *m) {
    mt_attn_opts o = {.scale = 0.5f, .causal = true};
    mt_tensor *x = mt_op_embedding(ctx, &m->emb, m->ids, CH_T);
    for (int i = 0; i < CH_LAYERS; i++) {
        chain_layer *L = &m->l[i];
        mt_tensor *h = mt_op_rms_norm(ctx, x, &L->n1, 1e-6f);
        mt_tensor *q = mt_op_rope(ctx, mt_nn_linear(ctx, h, &L->lin[0]), CH_H, &m->cos, &m->sin);
        mt_tensor *k = mt_op_rope(ctx, mt_nn_linear(ctx, h, &L->lin[1]), CH_HK, &m->cos, &m->sin);
        mt_tensor *a = mt_op_attention(ctx, q, k, mt_nn_linear(ctx, h, &L->lin[2]), CH_H, CH_HK, &o);
        x = mt_op_add(ctx, x, mt_nn_linear(ctx, a, &L->lin[3]));
        h = mt_op_rms_norm(ctx, x, &L->n2, 1e-6f);
        x = mt_op_add(ctx, x, mt_nn_gated_mlp(ctx, h, &L->lin[4], &L->lin[5], &L->lin[6], MT_ACT_SILU));
    }
    mt_tensor *logits = mt_op_linear(ctx, mt_op_rms_norm(ctx, x, &m->norm, 1e-6f), &m->head, NULL);
    return mt_op_cross_entropy(ctx, logits, m->targets, 1.0f / 6.0f);
}

static void c_chain(refcase *r) {
    bool lora = strcmp(r->name, "chain_lora") == 0;
    chain m;
    memset(&m, 0, sizeof m);
    chain_load(r, &m, lora);
    if (!m.ids || !m.targets || r->failures) return;
    mt_tensor *loss = chain_forward(&r->ctx, &m);
    mt_npy ref;
    if (loss && load(r, "loss", &ref)) {
        float want = ((float *)ref.data)[0], got = mt_f32(loss)[0];
        if (!(fabs(got - want) <= TOL * fabs(want))) fail(r, "%s: loss %.8g, reference %.8g", "loss", got, want);
        mt_npy_free(&ref);
    }
    backward(r, loss, true);
    char name[64];
    if (!lora) cmp(r, "emb", &m.emb), cmp(r, "norm", &m.norm), cmp(r, "head", &m.head);
    else no_grad(r, "emb", &m.emb), no_grad(r, "head", &m.head);
    for (int i = 0; i < CH_LAYERS; i++) {
        chain_layer *L = &m.l[i];
        if (!lora) {
            snprintf(name, sizeof name, "l%d.n1", i), cmp(r, name, &L->n1);
            snprintf(name, sizeof name, "l%d.n2", i), cmp(r, name, &L->n2);
        }
        for (int j = 0; j < CH_LIN; j++) {
            if (lora) {
                snprintf(name, sizeof name, "l%d.%s.la", i, lin_names[j]), cmp(r, name, &L->lora[j].a);
                snprintf(name, sizeof name, "l%d.%s.lb", i, lin_names[j]), cmp(r, name, &L->lora[j].b);
                no_grad(r, "a frozen matrix", &L->lin[j].w);
                continue;
            }
            snprintf(name, sizeof name, "l%d.%s.w", i, lin_names[j]), cmp(r, name, &L->lin[j].w);
            if (j < 3) snprintf(name, sizeof name, "l%d.%s.b", i, lin_names[j]), cmp(r, name, &L->lin[j].b);
        }
    }
}

static const struct {
    const char *name;
    void (*run)(refcase *r);
} cases[] = {
    {"linear", c_linear},           {"linear_bf16", c_linear_bf16},   {"embedding", c_embedding},
    {"rms_norm_op", c_rms_norm},    {"layer_norm", c_layer_norm},     {"act_silu", c_act},
    {"act_gelu", c_act},            {"act_gelu_pytorch_tanh", c_act}, {"act_quick_gelu", c_act},
    {"gated_silu", c_act},          {"gated_gelu", c_act},            {"gated_gelu_pytorch_tanh", c_act},
    {"gated_quick_gelu", c_act},    {"act_sigmoid", c_act},           {"gated_sigmoid", c_act},
    {"add_mul_scale", c_add_mul_scale}, {"softmax", c_softmax},
    {"rope_op", c_rope},            {"attention_causal", c_attention}, {"attention_gqa", c_attention},
    {"attention_q_pos0", c_attention}, {"attention_full", c_attention}, {"attention_segments", c_attention},
    {"rows_ops", c_rows_ops},       {"views", c_views},               {"dropout", c_dropout},
    {"cross_entropy_op", c_cross_entropy}, {"cross_entropy_big", c_cross_entropy}, {"rows_big", c_rows_big}, {"lora_dropout", c_lora_dropout}, {"chain_full", c_chain},
    {"chain_lora", c_chain},        {"gather_cols", c_gather_cols},   {"row_normalize", c_row_normalize},
    {"pick", c_pick},               {"scale_rows", c_scale_rows},     {"scale_cols", c_scale_cols},     {"index_add_rows", c_index_add_rows},
    {"moe_ffn", c_moe},             {"moe_shared", c_moe_shared},
};

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: ops_grad_check WORKDIR (written by ops_grad_ref.py)\n");
        return 2;
    }
    mt_pool *pool3 = NULL;
    mt_err err;
    if (mt_pool_new(3, &pool3, &err) != MT_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    for (int th = 0; th < 2; th++) {
        for (size_t i = 0; i < MT_ARRAY_LEN(cases); i++) {
            refcase r;
            begin(&r, argv[1], cases[i].name, th ? pool3 : NULL);
            cases[i].run(&r);
            end(&r);
        }
    }
    mt_pool_free(pool3);
    fprintf(stderr, "%zu cases on 1 and 3 threads, %d failures\n", MT_ARRAY_LEN(cases), total_failures);
    return total_failures ? 1 : 0;
}
