/* tensor: construction, views and conversions. */
#include "tensor/tensor.h"

#include "tensor/ops_backward.h"

#include <stdio.h>
#include <string.h>

mt_tensor *mt_ctx_fail(mt_ctx *ctx, mt_status code, const char *fmt, ...) {
    if (ctx->status == MT_OK) {
        ctx->status = code;
        ctx->err.code = code;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(ctx->err.msg, sizeof ctx->err.msg, fmt, ap);
        va_end(ap);
    }
    return NULL;
}

mt_tensor *mt_ctx_rewind_keep(mt_ctx *ctx, mt_arena_mark mark, mt_tensor *res, const mt_tensor *x) {
    if (!x || !res) return NULL;
    if (ctx->tape && x->requires_grad) return (mt_tensor *)x; /* its scratch is on the tape */
    if (mt_tensor_numel(x) != mt_tensor_numel(res) || x->dtype != res->dtype || !mt_tensor_is_contiguous(x))
        return mt_ctx_fail(ctx, MT_ERR_INTERNAL, "rewind_keep: the kept tensor does not fit its buffer");
    memcpy(res->data, x->data, (size_t)mt_tensor_numel(x) * mt_dtype_size(x->dtype));
    mt_arena_restore(ctx->arena, mark);
    return res;
}

void *mt_ctx_copy(mt_ctx *ctx, const void *src, size_t bytes) {
    void *d = mt_arena_alloc(ctx->arena, bytes ? bytes : 1);
    if (!d) return mt_ctx_fail(ctx, MT_ERR_NOMEM, "out of memory keeping %zu bytes for backward", bytes);
    if (bytes) memcpy(d, src, bytes);
    return d;
}

static void set_contiguous_strides(mt_tensor *t) {
    int64_t s = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
        t->stride[i] = s;
        s *= t->shape[i];
    }
}

mt_tensor mt_tensor_wrap(mt_dtype dtype, int ndim, const int64_t *shape, const void *data) {
    mt_tensor t = {.dtype = dtype, .ndim = ndim, .data = (void *)data};
    for (int i = 0; i < ndim; i++) t.shape[i] = shape[i];
    set_contiguous_strides(&t);
    return t;
}

mt_tensor *mt_tensor_new(mt_ctx *ctx, mt_dtype dtype, int ndim, const int64_t *shape) {
    if (ndim < 1 || ndim > MT_MAX_DIMS) return mt_ctx_fail(ctx, MT_ERR_INTERNAL, "tensor: %d dims", ndim);
    size_t bytes = mt_dtype_size(dtype);
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0 || !mt_mul_ok(bytes, (size_t)shape[i], &bytes))
            return mt_ctx_fail(ctx, MT_ERR_LIMIT, "tensor: shape too large");
    }
    mt_tensor *t = mt_arena_alloc(ctx->arena, sizeof *t);
    void *data = mt_arena_alloc(ctx->arena, bytes);
    if (!t || !data) return mt_ctx_fail(ctx, MT_ERR_NOMEM, "out of memory for a %zu-byte activation", bytes);
    *t = mt_tensor_wrap(dtype, ndim, shape, data);
    return t;
}

mt_tensor *mt_tensor_zeros(mt_ctx *ctx, mt_dtype dtype, int ndim, const int64_t *shape) {
    mt_tensor *t = mt_tensor_new(ctx, dtype, ndim, shape);
    if (t) memset(t->data, 0, (size_t)mt_tensor_numel(t) * mt_dtype_size(dtype));
    return t;
}

mt_tensor *mt_tensor_new_2d(mt_ctx *ctx, mt_dtype dtype, int64_t rows, int64_t cols) {
    int64_t shape[2] = {rows, cols};
    return mt_tensor_new(ctx, dtype, 2, shape);
}

int64_t mt_tensor_numel(const mt_tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

bool mt_tensor_is_contiguous(const mt_tensor *t) {
    int64_t s = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
        if (t->shape[i] != 1 && t->stride[i] != s) return false;
        s *= t->shape[i];
    }
    return true;
}

mt_tensor *mt_tensor_rows(mt_ctx *ctx, const mt_tensor *t, int64_t r0, int64_t n) {
    if (!t) return NULL;
    if (r0 < 0 || n < 0 || r0 + n > t->shape[0])
        return mt_ctx_fail(ctx, MT_ERR_INTERNAL, "rows [%lld, +%lld) outside %lld rows", (long long)r0,
                           (long long)n, (long long)t->shape[0]);
    mt_tensor *v = mt_arena_alloc(ctx->arena, sizeof *v);
    if (!v) return mt_ctx_fail(ctx, MT_ERR_NOMEM, "out of memory");
    *v = *t;
    v->shape[0] = n;
    v->data = (char *)t->data + (size_t)(r0 * t->stride[0]) * mt_dtype_size(t->dtype);
    v->grad = NULL;
    v->requires_grad = false;
    if (mt_tape_wants(ctx, t, NULL, NULL) && !mt_tape_record(ctx, mt_bw_view, v, t, NULL, NULL)) return NULL;
    return v;
}

mt_tensor *mt_tensor_cols(mt_ctx *ctx, const mt_tensor *t, int64_t c0, int64_t n) {
    if (!t) return NULL;
    if (t->ndim != 2 || c0 < 0 || n < 0 || c0 + n > t->shape[1])
        return mt_ctx_fail(ctx, MT_ERR_INTERNAL, "columns [%lld, +%lld) outside a %dD tensor of %lld columns",
                           (long long)c0, (long long)n, t->ndim, (long long)t->shape[t->ndim > 1 ? 1 : 0]);
    mt_tensor *v = mt_arena_alloc(ctx->arena, sizeof *v);
    if (!v) return mt_ctx_fail(ctx, MT_ERR_NOMEM, "out of memory");
    *v = *t;
    v->shape[1] = n;
    v->data = (char *)t->data + (size_t)(c0 * t->stride[1]) * mt_dtype_size(t->dtype);
    v->grad = NULL;
    v->requires_grad = false;
    if (mt_tape_wants(ctx, t, NULL, NULL) && !mt_tape_record(ctx, mt_bw_view, v, t, NULL, NULL)) return NULL;
    return v;
}

typedef struct rows_job {
    void (*fn)(void *user, int64_t r0, int64_t r1);
    void *user;
    int64_t rows, per_task;
} rows_job;

static void rows_task(void *ctx, int64_t task, int thread) {
    (void)thread;
    const rows_job *j = ctx;
    int64_t r0 = task * j->per_task;
    j->fn(j->user, r0, MT_MIN(j->rows, r0 + j->per_task));
}

void mt_ctx_parallel_rows(mt_ctx *ctx, int64_t rows, int64_t C, void (*fn)(void *user, int64_t r0, int64_t r1),
                          void *user) {
    if (rows <= 0) return;
    rows_job j = {fn, user, rows, MT_MAX(1, 16384 / MT_MAX(C, 1))};
    mt_pool_run(ctx->pool, (rows + j.per_task - 1) / j.per_task, rows_task, &j);
}

float mt_tensor_get_f32(const mt_tensor *t, int64_t i) {
    switch (t->dtype) {
    case MT_F32: return ((const float *)t->data)[i];
    case MT_BF16: return mt_bf16_to_f32(((const uint16_t *)t->data)[i]);
    case MT_F16: return mt_f16_to_f32(((const uint16_t *)t->data)[i]);
    case MT_I32: return (float)((const int32_t *)t->data)[i];
    case MT_I64: return (float)((const int64_t *)t->data)[i];
    case MT_U8: return (float)((const uint8_t *)t->data)[i];
    default: return 0.0f;
    }
}

mt_status mt_tensor_to_f32_alloc(const mt_tensor *t, float **out, mt_err *err) {
    int64_t n = mt_tensor_numel(t);
    float *f = mt_malloc_array((size_t)n, sizeof(float));
    if (!f) return mt_err_set(err, MT_ERR_NOMEM, "out of memory converting %lld values", (long long)n);
    for (int64_t i = 0; i < n; i++) f[i] = mt_tensor_get_f32(t, i);
    *out = f;
    return MT_OK;
}
