/* tensor/ops: the forward ops (f32 activations; weights in any float dtype). Matmul and attention go to the CPU
 * kernels in tensor/cpu; the row-wise ops here are cheap next to them and are written plainly. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "tensor/backend.h"
#include "tensor/cpu/cpu.h"
#include "tensor/ops_backward.h"
#include "tensor/quant.h"

static bool is_float(mt_dtype t) { return t == MT_F32 || t == MT_BF16 || t == MT_F16; }

mt_tensor *mt_need_2d_f32(mt_ctx *ctx, const mt_tensor *x, const char *op) {
    if (!mt_need_host(ctx, x, op)) return NULL;
    if (x->ndim != 2 || x->dtype != MT_F32 || !mt_tensor_is_contiguous(x))
        return mt_ctx_fail(ctx, MT_ERR_INTERNAL, "%s: expects a contiguous 2D f32 input", op);
    return (mt_tensor *)x;
}

/* A vector weight of length n in any float dtype, read as f32. */

/* Row-wise ops split their rows over the pool in chunks of about 16K elements, so small inputs (decode) stay on
 * the calling thread and large ones (prefill, vision) use every core. */
typedef struct row_job {
    void (*row)(const struct row_job *job, int64_t t);
    int64_t rows, per_task;
    const float *x, *x2;
    float *y;
    const mt_tensor *w, *b;
    const float *wf, *bf; /* layer norm: the weight and bias as f32 */
    int64_t C;
    float eps;
    mt_act act;
} row_job;

static void row_task(void *ctx, int64_t task, int thread) {
    const row_job *job = ctx;
    int64_t t1 = MT_MIN(job->rows, (task + 1) * job->per_task);
    for (int64_t t = task * job->per_task; t < t1; t++) job->row(job, t);
}

static void run_rows(mt_ctx *ctx, row_job *job) {
    job->per_task = MT_MAX(1, 16384 / MT_MAX(job->C, 1));
    mt_pool_run(ctx->pool, (job->rows + job->per_task - 1) / job->per_task, row_task, job);
}

mt_tensor *mt_op_linear(mt_ctx *ctx, const mt_tensor *x, const mt_tensor *w, const mt_tensor *b) {
    NEED(x && w);
    NEED(mt_need_2d_f32(ctx, x, "linear"));
    bool transposed = w->ndim == 2 && w->stride[0] == 1 && w->stride[1] != 1;
    bool quant = mt_dtype_is_quant(w->dtype);
    if (w->ndim != 2 || !(is_float(w->dtype) || (quant && !transposed)) || (w->stride[1] != 1 && !transposed))
        return mt_ctx_fail(ctx, MT_ERR_INTERNAL, "linear: weight must be a 2D float matrix, row-major or transposed, "
                           "or a row-major quantized one");
    /* inference only: the input gradient would need a product with the quantized blocks, and they cannot train */
    if (quant && mt_tape_wants(ctx, x, w, b))
        return mt_ctx_fail(ctx, MT_ERR_UNSUPPORTED, "linear: no gradients through a %s weight; train from the "
                           "checkpoint's f32/bf16/f16 weights", mt_dtype_name(w->dtype));
    int64_t T = x->shape[0], K = x->shape[1], N = w->shape[0];
    if (w->shape[1] != K)
        return mt_ctx_fail(ctx, MT_ERR_INTERNAL, "linear: input has %lld features, weight expects %lld",
                           (long long)K, (long long)w->shape[1]);
    if (b && (b->dtype != MT_F32 || mt_tensor_numel(b) != N))
        return mt_ctx_fail(ctx, MT_ERR_INTERNAL, "linear: bias must be f32 with %lld values", (long long)N);
    const mt_backend *be = mt_ctx_backend(ctx);
    NEED(mt_need_device(ctx, w, "linear") && (!b || mt_need_device(ctx, b, "linear")));
    mt_tensor *y = mt_tensor_new_2d(ctx, MT_F32, T, N);
    NEED(y);
    if (transposed) {
        /* a weight stored [K, N] (fused expert stacks): y = x . B with B read in place */
        be->matmul(ctx->pool, T, N, K, mt_f32(x), K, 1, w->data, w->dtype, w->stride[1], 1, mt_f32(y), N, false);
        for (int64_t t = 0; b && t < T; t++) mt_cpu_axpy(N, 1.0f, mt_f32(b), mt_f32(y) + t * N);
    } else {
        be->linear(ctx->pool, T, N, K, mt_f32(x), K, w->data, w->dtype, w->stride[0], b ? mt_f32(b) : NULL,
                   mt_f32(y), N, false);
    }
    RECORD_OR_FAIL(mt_bw_linear, y, x, w, b);
    return y;
}

mt_tensor *mt_op_embedding(mt_ctx *ctx, const mt_tensor *table, const int32_t *ids, int64_t n) {
    NEED(table);
    int64_t V = table->shape[0], C = table->shape[1];
    mt_tensor *y = mt_tensor_new_2d(ctx, MT_F32, n, C);
    NEED(y);
    for (int64_t t = 0; t < n; t++) {
        if (ids[t] < 0 || ids[t] >= V)
            return mt_ctx_fail(ctx, MT_ERR_INVALID_ARG, "token id %d at position %lld is outside the vocabulary [0, %lld)",
                               ids[t], (long long)t, (long long)V);
        float *dst = mt_f32(y) + t * C;
        int64_t row = (int64_t)ids[t] * table->stride[0];
        if (mt_dtype_is_quant(table->dtype)) {
            const char *blocks = (const char *)table->data + (size_t)ids[t] * mt_dtype_row_bytes(table->dtype, table->stride[0]);
            mt_dequantize_row(table->dtype, blocks, dst, C);
        } else if (table->dtype == MT_F32) {
            memcpy(dst, (const float *)table->data + row, (size_t)C * sizeof(float));
        } else if (table->dtype == MT_BF16) {
            const uint16_t *src = (const uint16_t *)table->data + row;
            for (int64_t c = 0; c < C; c++) dst[c] = mt_bf16_to_f32(src[c]);
        } else {
            const uint16_t *src = (const uint16_t *)table->data + row;
            for (int64_t c = 0; c < C; c++) dst[c] = mt_f16_to_f32(src[c]);
        }
    }
    if (mt_tape_wants(ctx, table, NULL, NULL)) {
        if (mt_dtype_is_quant(table->dtype))
            return mt_ctx_fail(ctx, MT_ERR_UNSUPPORTED, "embedding: no gradients into a %s table",
                               mt_dtype_name(table->dtype));
        mt_tape_node *node = mt_tape_record(ctx, mt_bw_embedding, y, table, NULL, NULL);
        if (!node || !(node->aux = mt_ctx_copy(ctx, ids, (size_t)n * sizeof *ids))) return NULL;
        node->i[0] = n;
    }
    return y;
}

static mt_tensor *record_norm(mt_ctx *ctx, mt_backward_fn fn, mt_tensor *y, const mt_tensor *x, const mt_tensor *w,
                              const mt_tensor *b, float eps) {
    if (!mt_tape_wants(ctx, x, w, b)) return y;
    mt_tape_node *node = mt_tape_record(ctx, fn, y, x, w, b);
    if (!node) return NULL;
    node->f[0] = eps;
    return y;
}

static void rms_norm_row(const row_job *j, int64_t t) {
    mt_cpu_rmsnorm(j->C, j->x + t * j->C, j->w->data, j->w->dtype, j->eps, j->y + t * j->C);
}

mt_tensor *mt_op_rms_norm(mt_ctx *ctx, const mt_tensor *x, const mt_tensor *w, float eps) {
    NEED(x && w);
    NEED(mt_need_2d_f32(ctx, x, "rms_norm"));
    int64_t T = x->shape[0], C = x->shape[1];
    if (mt_tensor_numel(w) != C || (w->dtype != MT_F32 && w->dtype != MT_BF16))
        return mt_ctx_fail(ctx, MT_ERR_INTERNAL, "rms_norm: weight must be f32 or bf16 of the row width");
    mt_tensor *y = mt_tensor_new_2d(ctx, MT_F32, T, C);
    NEED(y);
    row_job job = {.row = rms_norm_row, .rows = T, .x = mt_f32(x), .y = mt_f32(y), .w = w, .C = C, .eps = eps};
    run_rows(ctx, &job);
    return record_norm(ctx, mt_bw_rms_norm, y, x, w, NULL, eps);
}

/* Row sums in 16 independent lanes, so the loops vectorise. The mean sums in double: rows far from zero (a
 * residual stream of 1e2..1e3) would lose digits in float; the squares are of deviations from that mean, so float
 * holds them. */
static double lane_mean(const float *x, int64_t n) {
    double acc[16] = {0}, s = 0;
    int64_t c = 0;
    for (; c + 16 <= n; c += 16)
        for (int k = 0; k < 16; k++) acc[k] += (double)x[c + k];
    for (; c < n; c++) s += (double)x[c];
    for (int k = 0; k < 16; k++) s += acc[k];
    return s / (double)n;
}

static float lane_var(const float *x, int64_t n, float mean) {
    float acc[16] = {0}, s = 0;
    int64_t c = 0;
    for (; c + 16 <= n; c += 16)
        for (int k = 0; k < 16; k++) acc[k] += (x[c + k] - mean) * (x[c + k] - mean);
    for (; c < n; c++) s += (x[c] - mean) * (x[c] - mean);
    for (int k = 0; k < 16; k++) s += acc[k];
    return s / (float)n;
}

static void layer_norm_row(const row_job *j, int64_t t) {
    const float *xr = j->x + t * j->C, *w = j->wf, *b = j->bf;
    float *yr = j->y + t * j->C;
    float mean = (float)lane_mean(xr, j->C), r = 1.0f / sqrtf(lane_var(xr, j->C, mean) + j->eps);
    for (int64_t c = 0; c < j->C; c++) yr[c] = (xr[c] - mean) * r * w[c] + b[c];
}

/* t as a contiguous f32 vector: its own data, else a converted copy in the arena. */
static const float *f32_vector(mt_ctx *ctx, const mt_tensor *t, int64_t n) {
    if (t->dtype == MT_F32 && mt_tensor_is_contiguous(t)) return mt_f32(t);
    float *v = mt_arena_alloc(ctx->arena, (size_t)n * sizeof *v);
    if (!v) {
        mt_ctx_fail(ctx, MT_ERR_NOMEM, "out of memory");
        return NULL;
    }
    for (int64_t i = 0; i < n; i++) v[i] = mt_tensor_get_f32(t, i);
    return v;
}

mt_tensor *mt_op_layer_norm(mt_ctx *ctx, const mt_tensor *x, const mt_tensor *w, const mt_tensor *b, float eps) {
    NEED(x && w && b);
    NEED(mt_need_2d_f32(ctx, x, "layer_norm"));
    int64_t T = x->shape[0], C = x->shape[1];
    if (mt_tensor_numel(w) != C || mt_tensor_numel(b) != C)
        return mt_ctx_fail(ctx, MT_ERR_INTERNAL, "layer_norm: weight size mismatch");
    mt_tensor *y = mt_tensor_new_2d(ctx, MT_F32, T, C);
    NEED(y);
    const float *wf = f32_vector(ctx, w, C), *bf = f32_vector(ctx, b, C);
    NEED(wf && bf);
    row_job job = {.row = layer_norm_row, .rows = T, .x = mt_f32(x), .y = mt_f32(y), .wf = wf, .bf = bf, .C = C,
                   .eps = eps};
    run_rows(ctx, &job);
    return record_norm(ctx, mt_bw_layer_norm, y, x, w, b, eps);
}

static const struct {
    const char *name;
    mt_act act;
} act_names[] = {{"silu", MT_ACT_SILU},          {"swish", MT_ACT_SILU},
                 {"gelu", MT_ACT_GELU_ERF},      {"gelu_pytorch_tanh", MT_ACT_GELU_TANH},
                 {"gelu_new", MT_ACT_GELU_TANH}, {"quick_gelu", MT_ACT_QUICK_GELU},
                 {"sigmoid", MT_ACT_SIGMOID}};

bool mt_act_parse(const char *name, mt_act *out) {
    for (size_t i = 0; i < MT_ARRAY_LEN(act_names); i++) {
        if (strcmp(name, act_names[i].name) == 0) {
            *out = act_names[i].act;
            return true;
        }
    }
    return false;
}

void mt_act_list(char *out, size_t cap) {
    size_t n = 0;
    if (cap) out[0] = '\0';
    for (size_t i = 0; i < MT_ARRAY_LEN(act_names) && n < cap; i++)
        n += (size_t)snprintf(out + n, cap - n, "%s%s", i ? ", " : "", act_names[i].name);
}

static inline float act_apply(float v, mt_act act) {
    switch (act) {
    case MT_ACT_SILU: return v / (1.0f + expf(-v));
    case MT_ACT_GELU_ERF: return 0.5f * v * (1.0f + erff(v * 0.70710678118654752f));
    case MT_ACT_GELU_TANH:
        return 0.5f * v * (1.0f + tanhf(0.79788456080286536f * (v + 0.044715f * v * v * v)));
    case MT_ACT_QUICK_GELU: return v / (1.0f + expf(-1.702f * v));
    case MT_ACT_SIGMOID: return 1.0f / (1.0f + expf(-v));
    }
    return v;
}

/* act(x) of one row into y, times u when u is given (the gated MLP's middle); y may be x or u */
static void act_into(mt_act act, int64_t n, const float *x, const float *u, float *y) {
    if (act == MT_ACT_SILU && u) {
        mt_cpu_swiglu(n, x, u, y);
        return;
    }
    /* y == u would lose u under act(x): act goes to x's own row first (the fused epilogue's gate block) */
    float *a = u && y == u ? (float *)x : y;
    switch (act) {
    case MT_ACT_SILU: mt_cpu_silu(n, x, a); break;
    case MT_ACT_SIGMOID: mt_cpu_sigmoid(n, x, a); break;
    case MT_ACT_GELU_ERF: mt_cpu_gelu_erf(n, x, a); break;
    case MT_ACT_GELU_TANH: mt_cpu_gelu_tanh(n, x, a); break;
    default:
        for (int64_t c = 0; c < n; c++) a[c] = act_apply(x[c], act);
    }
    if (u)
        for (int64_t c = 0; c < n; c++) y[c] = a[c] * u[c];
}

static void act_row(const row_job *j, int64_t t) {
    act_into(j->act, j->C, j->x + t * j->C, j->x2 ? j->x2 + t * j->C : NULL, j->y + t * j->C);
}

static mt_tensor *record_act(mt_ctx *ctx, mt_tensor *y, const mt_tensor *x, const mt_tensor *up, mt_act act) {
    if (!mt_tape_wants(ctx, x, up, NULL)) return y;
    mt_tape_node *node = mt_tape_record(ctx, mt_bw_act, y, x, up, NULL);
    if (!node) return NULL;
    node->i[0] = act;
    return y;
}

mt_tensor *mt_op_act(mt_ctx *ctx, const mt_tensor *x, mt_act act) {
    NEED(x);
    NEED(mt_need_2d_f32(ctx, x, "act"));
    mt_tensor *y = mt_tensor_new_2d(ctx, MT_F32, x->shape[0], x->shape[1]);
    NEED(y);
    row_job job = {.row = act_row, .rows = x->shape[0], .x = mt_f32(x), .y = mt_f32(y), .C = x->shape[1], .act = act};
    run_rows(ctx, &job);
    return record_act(ctx, y, x, NULL, act);
}

static bool same_shape(const mt_tensor *a, const mt_tensor *b) {
    if (a->ndim != b->ndim) return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return false;
    return true;
}

mt_tensor *mt_op_gated_act(mt_ctx *ctx, const mt_tensor *gate, const mt_tensor *up, mt_act act) {
    NEED(gate && up);
    NEED(mt_need_2d_f32(ctx, gate, "gated_act") && mt_need_2d_f32(ctx, up, "gated_act"));
    if (!same_shape(gate, up)) return mt_ctx_fail(ctx, MT_ERR_INTERNAL, "gated_act: shape mismatch");
    mt_tensor *y = mt_tensor_new_2d(ctx, MT_F32, gate->shape[0], gate->shape[1]);
    NEED(y);
    row_job job = {.row = act_row, .rows = gate->shape[0], .x = mt_f32(gate), .x2 = mt_f32(up), .y = mt_f32(y),
                   .C = gate->shape[1], .act = act};
    run_rows(ctx, &job);
    return record_act(ctx, y, gate, up, act);
}

static void gate_epilogue(const void *arg, int64_t n, float *gate, float *up_y) {
    act_into(*(const mt_act *)arg, n, gate, up_y, up_y);
}

/* A bias the fused kernel can add: none, or N f32 values on the backend's device. */
static bool plain_bias(mt_ctx *ctx, const mt_tensor *b, int64_t N) {
    return !b || (b->dtype == MT_F32 && mt_tensor_numel(b) == N && mt_tensor_is_contiguous(b) &&
                  mt_need_device(ctx, b, "gated_linear"));
}

mt_tensor *mt_op_gated_linear(mt_ctx *ctx, const mt_tensor *x, const mt_tensor *gate_w, const mt_tensor *gate_b,
                              const mt_tensor *up_w, const mt_tensor *up_b, mt_act act) {
    NEED(x && gate_w && up_w);
    NEED(mt_need_2d_f32(ctx, x, "gated_linear"));
    const mt_backend *be = mt_ctx_backend(ctx);
    bool fuse = be->gated_linear && !mt_tape_wants(ctx, x, gate_w, up_w) && !mt_tape_wants(ctx, gate_b, up_b, NULL) &&
                gate_w->ndim == 2 && up_w->ndim == 2 &&
                gate_w->dtype == up_w->dtype && is_float(gate_w->dtype) && gate_w->stride[1] == 1 &&
                up_w->stride[1] == 1 && gate_w->stride[0] == up_w->stride[0] && gate_w->shape[0] == up_w->shape[0] &&
                gate_w->shape[1] == x->shape[1] && up_w->shape[1] == x->shape[1] &&
                mt_need_device(ctx, gate_w, "gated_linear") && mt_need_device(ctx, up_w, "gated_linear") &&
                plain_bias(ctx, gate_b, gate_w->shape[0]) && plain_bias(ctx, up_b, gate_w->shape[0]);
    if (fuse) {
        int64_t T = x->shape[0], K = x->shape[1], N = gate_w->shape[0];
        mt_arena_mark mark = mt_arena_save(ctx->arena);
        mt_tensor *y = mt_tensor_new_2d(ctx, MT_F32, T, N);
        NEED(y);
        if (be->gated_linear(ctx->pool, T, N, K, mt_f32(x), K, gate_w->data, up_w->data, gate_w->dtype,
                             gate_w->stride[0], gate_b ? mt_f32(gate_b) : NULL, up_b ? mt_f32(up_b) : NULL,
                             gate_epilogue, &act, mt_f32(y), N))
            return y;
        mt_arena_restore(ctx->arena, mark);
    }
    return mt_op_gated_act(ctx, mt_op_linear(ctx, x, gate_w, gate_b), mt_op_linear(ctx, x, up_w, up_b), act);
}

static mt_tensor *binary(mt_ctx *ctx, const mt_tensor *a, const mt_tensor *b, bool mul) {
    NEED(a && b);
    NEED(mt_need_2d_f32(ctx, a, "binary") && mt_need_2d_f32(ctx, b, "binary"));
    if (!same_shape(a, b)) return mt_ctx_fail(ctx, MT_ERR_INTERNAL, "add/mul: shape mismatch");
    mt_tensor *y = mt_tensor_new_2d(ctx, MT_F32, a->shape[0], a->shape[1]);
    NEED(y);
    int64_t n = mt_tensor_numel(a);
    const float *pa = mt_f32(a), *pb = mt_f32(b);
    float *py = mt_f32(y);
    if (mul) {
        for (int64_t i = 0; i < n; i++) py[i] = pa[i] * pb[i];
    } else {
        for (int64_t i = 0; i < n; i++) py[i] = pa[i] + pb[i];
    }
    RECORD_OR_FAIL(mul ? mt_bw_mul : mt_bw_add, y, a, b, NULL);
    return y;
}

mt_tensor *mt_op_add(mt_ctx *ctx, const mt_tensor *a, const mt_tensor *b) { return binary(ctx, a, b, false); }
mt_tensor *mt_op_mul(mt_ctx *ctx, const mt_tensor *a, const mt_tensor *b) { return binary(ctx, a, b, true); }

static void softmax_row(const row_job *j, int64_t t) { mt_cpu_softmax(j->C, j->x + t * j->C, j->y + t * j->C); }

mt_tensor *mt_op_softmax(mt_ctx *ctx, const mt_tensor *x) {
    NEED(x);
    NEED(mt_need_2d_f32(ctx, x, "softmax"));
    mt_tensor *y = mt_tensor_new_2d(ctx, MT_F32, x->shape[0], x->shape[1]);
    NEED(y);
    row_job job = {.row = softmax_row, .rows = x->shape[0], .x = mt_f32(x), .y = mt_f32(y), .C = x->shape[1]};
    run_rows(ctx, &job);
    RECORD_OR_FAIL(mt_bw_softmax, y, x, NULL, NULL);
    return y;
}

/* rope over the rows of x [T, H*D]: base.C is the row width */
typedef struct rope_job {
    row_job base;
    int n_heads;
    int64_t D;
    const float *cos, *sin;
} rope_job;

static void rope_row(const row_job *j, int64_t t) {
    const rope_job *r = (const rope_job *)j;
    int64_t half = r->D / 2;
    const float *c = r->cos + t * half, *s = r->sin + t * half;
    for (int h = 0; h < r->n_heads; h++) {
        const float *xr = j->x + t * j->C + h * r->D;
        float *yr = j->y + t * j->C + h * r->D;
        for (int64_t i = 0; i < half; i++) {
            float x1 = xr[i], x2 = xr[i + half];
            yr[i] = x1 * c[i] - x2 * s[i];
            yr[i + half] = x2 * c[i] + x1 * s[i];
        }
    }
}

mt_tensor *mt_op_rope(mt_ctx *ctx, const mt_tensor *x, int n_heads, const mt_tensor *cos, const mt_tensor *sin) {
    NEED(x && cos && sin);
    NEED(mt_need_2d_f32(ctx, x, "rope"));
    int64_t T = x->shape[0], HD = x->shape[1];
    if (n_heads <= 0 || HD % n_heads) return mt_ctx_fail(ctx, MT_ERR_INTERNAL, "rope: heads do not divide width");
    int64_t D = HD / n_heads, half = D / 2;
    if (D % 2 || cos->shape[0] != T || cos->shape[1] != half || sin->shape[0] != T || sin->shape[1] != half)
        return mt_ctx_fail(ctx, MT_ERR_INTERNAL, "rope: cos/sin must be [%lld, %lld]", (long long)T, (long long)half);
    mt_tensor *y = mt_tensor_new_2d(ctx, MT_F32, T, HD);
    NEED(y);
    rope_job job = {{.row = rope_row, .rows = T, .x = mt_f32(x), .y = mt_f32(y), .C = HD}, n_heads, D, mt_f32(cos),
                    mt_f32(sin)};
    run_rows(ctx, &job.base);
    if (mt_tape_wants(ctx, x, NULL, NULL)) {
        mt_tape_node *node = mt_tape_record(ctx, mt_bw_rope, y, x, cos, sin);
        if (!node) return NULL;
        node->i[0] = n_heads;
    }
    return y;
}

mt_tensor *mt_op_attention(mt_ctx *ctx, const mt_tensor *q, const mt_tensor *k, const mt_tensor *v, int n_heads,
                           int n_kv_heads, const mt_attn_opts *opts) {
    NEED(q && k && v);
    NEED(mt_need_2d_f32(ctx, q, "attention"));
    int64_t Tq = q->shape[0], Tk = k->shape[0];
    if (n_heads <= 0 || n_kv_heads <= 0 || n_heads % n_kv_heads || q->shape[1] % n_heads)
        return mt_ctx_fail(ctx, MT_ERR_INTERNAL, "attention: bad head counts %d / %d", n_heads, n_kv_heads);
    int64_t D = q->shape[1] / n_heads;
    if (k->shape[1] != D * n_kv_heads || v->shape[1] != D * n_kv_heads || v->shape[0] != Tk || k->dtype != v->dtype)
        return mt_ctx_fail(ctx, MT_ERR_INTERNAL, "attention: k/v shapes do not match q");
    if (opts->cu_seqlens && (Tq != Tk || opts->causal))
        return mt_ctx_fail(ctx, MT_ERR_INTERNAL, "attention: segments need Tq == Tk and no causal mask");
    if (opts->window < 0 || (opts->window && !opts->causal))
        return mt_ctx_fail(ctx, MT_ERR_INTERNAL, "attention: a sliding window (%lld) must be causal and positive",
                           (long long)opts->window);
    mt_tensor *y = mt_tensor_new_2d(ctx, MT_F32, Tq, q->shape[1]);
    NEED(y);
    bool recorded = mt_tape_wants(ctx, q, k, v);
    mt_attn_args a = {
        .q = mt_f32(q), .q_st = q->stride[0], .q_sh = D,
        .k = k->data, .k_st = k->stride[0], .k_sh = D,
        .v = v->data, .v_st = v->stride[0], .v_sh = D, .kv_dtype = k->dtype,
        .out = mt_f32(y), .o_st = q->shape[1], .o_sh = D,
        .n_q = Tq, .n_kv = Tk, .n_heads = n_heads, .n_kv_heads = n_kv_heads, .head_dim = (int)D,
        .scale = opts->scale, .causal = opts->causal, .q_pos0 = opts->q_pos0, .window = opts->window,
        .cu_seqlens = opts->cu_seqlens, .n_seg = opts->n_seg, .bf16 = opts->bf16_products && !recorded,
    };
    NEED(mt_need_device(ctx, k, "attention") && mt_need_device(ctx, v, "attention"));
    mt_ctx_backend(ctx)->attention(ctx->pool, &a);
    if (recorded) {
        if (k->dtype != MT_F32 || v->dtype != MT_F32 || !mt_tensor_is_contiguous(k) || !mt_tensor_is_contiguous(v))
            return mt_ctx_fail(ctx, MT_ERR_INTERNAL, "attention: training needs contiguous f32 keys and values");
        mt_tape_node *node = mt_tape_record(ctx, mt_bw_attention, y, q, k, v);
        mt_attn_opts *saved = mt_ctx_copy(ctx, opts, sizeof *opts);
        if (!node || !saved) return NULL;
        if (opts->cu_seqlens &&
            !(saved->cu_seqlens = mt_ctx_copy(ctx, opts->cu_seqlens, (size_t)(opts->n_seg + 1) * sizeof(int64_t))))
            return NULL;
        node->aux = saved;
        node->i[0] = n_heads;
        node->i[1] = n_kv_heads;
    }
    return y;
}

mt_tensor *mt_op_gather_rows(mt_ctx *ctx, const mt_tensor *x, const int64_t *idx, int64_t n) {
    NEED(x);
    NEED(mt_need_2d_f32(ctx, x, "gather_rows"));
    int64_t T = x->shape[0], C = x->shape[1];
    mt_tensor *y = mt_tensor_new_2d(ctx, MT_F32, n, C);
    NEED(y);
    for (int64_t i = 0; i < n; i++) {
        if (idx[i] < 0 || idx[i] >= T)
            return mt_ctx_fail(ctx, MT_ERR_INTERNAL, "gather_rows: index %lld outside %lld rows", (long long)idx[i],
                               (long long)T);
        memcpy(mt_f32(y) + i * C, mt_f32(x) + idx[i] * C, (size_t)C * sizeof(float));
    }
    if (mt_tape_wants(ctx, x, NULL, NULL)) {
        mt_tape_node *node = mt_tape_record(ctx, mt_bw_gather_rows, y, x, NULL, NULL);
        if (!node || !(node->aux = mt_ctx_copy(ctx, idx, (size_t)n * sizeof *idx))) return NULL;
        node->i[0] = n;
    }
    return y;
}

mt_tensor *mt_op_concat_rows(mt_ctx *ctx, const mt_tensor *a, const mt_tensor *b) {
    NEED(a && b);
    NEED(mt_need_2d_f32(ctx, a, "concat_rows") && mt_need_2d_f32(ctx, b, "concat_rows"));
    if (a->shape[1] != b->shape[1]) return mt_ctx_fail(ctx, MT_ERR_INTERNAL, "concat_rows: width mismatch");
    mt_tensor *y = mt_tensor_new_2d(ctx, MT_F32, a->shape[0] + b->shape[0], a->shape[1]);
    NEED(y);
    size_t na = (size_t)mt_tensor_numel(a), nb = (size_t)mt_tensor_numel(b);
    memcpy(y->data, a->data, na * sizeof(float));
    memcpy(mt_f32(y) + na, b->data, nb * sizeof(float));
    RECORD_OR_FAIL(mt_bw_concat_rows, y, a, b, NULL);
    return y;
}

mt_tensor *mt_op_reshape(mt_ctx *ctx, const mt_tensor *x, int ndim, const int64_t *shape) {
    NEED(x);
    if (!mt_tensor_is_contiguous(x) || ndim < 1 || ndim > MT_MAX_DIMS)
        return mt_ctx_fail(ctx, MT_ERR_INTERNAL, "reshape: needs a contiguous input");
    mt_tensor *v = mt_arena_alloc(ctx->arena, sizeof *v);
    if (!v) return mt_ctx_fail(ctx, MT_ERR_NOMEM, "out of memory");
    *v = mt_tensor_wrap(x->dtype, ndim, shape, x->data);
    if (mt_tensor_numel(v) != mt_tensor_numel(x)) return mt_ctx_fail(ctx, MT_ERR_INTERNAL, "reshape: size mismatch");
    RECORD_OR_FAIL(mt_bw_view, v, x, NULL, NULL);
    return v;
}

mt_tensor *mt_op_transpose(mt_ctx *ctx, const mt_tensor *x, int d0, int d1) {
    NEED(x);
    if (d0 < 0 || d1 < 0 || d0 >= x->ndim || d1 >= x->ndim)
        return mt_ctx_fail(ctx, MT_ERR_INTERNAL, "transpose: bad dims");
    mt_tensor *v = mt_arena_alloc(ctx->arena, sizeof *v);
    if (!v) return mt_ctx_fail(ctx, MT_ERR_NOMEM, "out of memory");
    *v = *x;
    v->shape[d0] = x->shape[d1];
    v->shape[d1] = x->shape[d0];
    v->stride[d0] = x->stride[d1];
    v->stride[d1] = x->stride[d0];
    v->grad = NULL;
    v->requires_grad = false;
    RECORD_OR_FAIL(mt_bw_view, v, x, NULL, NULL);
    return v;
}

mt_tensor *mt_op_contiguous(mt_ctx *ctx, const mt_tensor *x) {
    NEED(x);
    if (!is_float(x->dtype)) return mt_ctx_fail(ctx, MT_ERR_INTERNAL, "contiguous: float tensors only");
    mt_tensor *y = mt_tensor_new(ctx, MT_F32, x->ndim, x->shape);
    NEED(y);
    int64_t n = mt_tensor_numel(x), idx[MT_MAX_DIMS] = {0};
    int last = x->ndim - 1;
    if (x->dtype == MT_F32 && x->stride[last] == 1 && n > 0) {
        /* rows of unit stride (column views such as InternLM2's grouped qkv split, run on every layer's whole
         * prefill) copy whole instead of element by element through the generic index walk below */
        int64_t w = x->shape[last];
        for (int64_t r = 0; r < n / w; r++) {
            int64_t off = 0, rem = r;
            for (int d = last - 1; d >= 0; d--) {
                off += rem % x->shape[d] * x->stride[d];
                rem /= x->shape[d];
            }
            memcpy(mt_f32(y) + r * w, mt_f32(x) + off, (size_t)w * sizeof(float));
        }
        RECORD_OR_FAIL(mt_bw_copy, y, x, NULL, NULL);
        return y;
    }
    for (int64_t i = 0; i < n; i++) {
        int64_t off = 0;
        for (int d = 0; d < x->ndim; d++) off += idx[d] * x->stride[d];
        mt_f32(y)[i] = mt_tensor_get_f32(x, off);
        for (int d = x->ndim - 1; d >= 0; d--) {
            if (++idx[d] < x->shape[d]) break;
            idx[d] = 0;
        }
    }
    RECORD_OR_FAIL(mt_bw_copy, y, x, NULL, NULL);
    return y;
}
