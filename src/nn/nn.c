/* nn: linear, norm, MLP blocks and rotary tables. */
#include "nn/nn.h"

#include <math.h>

mt_linear mt_linear_rows(const mt_linear *l, int64_t r0, int64_t n) {
    mt_linear s = *l;
    s.lora = NULL;
    s.w.shape[0] = n;
    s.w.data = (char *)l->w.data + (size_t)(r0 * l->w.stride[0]) * mt_dtype_size(l->w.dtype);
    if (l->b.data) {
        s.b.shape[0] = n;
        s.b.data = (float *)l->b.data + r0;
    }
    return s;
}

mt_tensor *mt_nn_linear(mt_ctx *ctx, const mt_tensor *x, const mt_linear *l) {
    mt_tensor *y = mt_op_linear(ctx, x, &l->w, l->b.data ? &l->b : NULL);
    const mt_lora *a = l->lora;
    if (!a) return y;
    /* dropout only while training: evaluation and generation use the whole adapter */
    const mt_tensor *in = a->dropout > 0.0f && ctx->tape ? mt_op_dropout(ctx, x, a->dropout, a->seed) : x;
    mt_tensor *low = mt_op_linear(ctx, mt_op_linear(ctx, in, &a->a, NULL), &a->b, NULL);
    return mt_op_add(ctx, y, mt_op_scale(ctx, low, a->scale));
}

mt_tensor *mt_nn_norm(mt_ctx *ctx, const mt_tensor *x, const mt_norm *n) {
    if (n->b.data) return mt_op_layer_norm(ctx, x, &n->w, &n->b, n->eps);
    return mt_op_rms_norm(ctx, x, &n->w, n->eps);
}

mt_tensor *mt_nn_gated_mlp(mt_ctx *ctx, const mt_tensor *x, const mt_linear *gate, const mt_linear *up,
                           const mt_linear *down, mt_act act) {
    mt_tensor *h = mt_op_gated_act(ctx, mt_nn_linear(ctx, x, gate), mt_nn_linear(ctx, x, up), act);
    return mt_nn_linear(ctx, h, down);
}

mt_tensor *mt_nn_mlp(mt_ctx *ctx, const mt_tensor *x, const mt_linear *fc1, const mt_linear *fc2, mt_act act) {
    return mt_nn_linear(ctx, mt_op_act(ctx, mt_nn_linear(ctx, x, fc1), act), fc2);
}

static mt_status rope_tables(mt_ctx *ctx, int64_t T, int64_t half, mt_tensor **cos, mt_tensor **sin) {
    *cos = mt_tensor_new_2d(ctx, MT_F32, T, half);
    *sin = mt_tensor_new_2d(ctx, MT_F32, T, half);
    return (*cos && *sin) ? MT_OK : ctx->status;
}

/* theta^(-2i/dim) for i < dim/2, in f32 as torch computes 1 / theta ** (arange(0, dim, 2).float() / dim). */
static float inv_freq(double theta, int64_t i, int64_t dim) {
    float expo = (float)(2 * i) / (float)dim;
    return 1.0f / powf((float)theta, expo);
}

mt_status mt_nn_rope_mrope(mt_ctx *ctx, const int64_t *pos, int64_t T, int64_t head_dim, double theta,
                           const int64_t sections[3], mt_tensor **cos, mt_tensor **sin) {
    int64_t half = head_dim / 2;
    mt_status st = rope_tables(ctx, T, half, cos, sin);
    if (st) return st;
    for (int64_t i = 0; i < half; i++) {
        int axis = i < sections[0] ? 0 : i < sections[0] + sections[1] ? 1 : 2;
        float f = inv_freq(theta, i, head_dim);
        for (int64_t t = 0; t < T; t++) {
            float angle = (float)pos[axis * T + t] * f;
            mt_f32(*cos)[t * half + i] = cosf(angle);
            mt_f32(*sin)[t * half + i] = sinf(angle);
        }
    }
    return MT_OK;
}

mt_status mt_nn_rope_2d(mt_ctx *ctx, const int64_t *rows, const int64_t *cols, int64_t N, int64_t head_dim,
                        double theta, mt_tensor **cos, mt_tensor **sin) {
    int64_t half = head_dim / 2, quarter = head_dim / 4;
    mt_status st = rope_tables(ctx, N, half, cos, sin);
    if (st) return st;
    for (int64_t k = 0; k < quarter; k++) {
        float f = inv_freq(theta, k, half);
        for (int64_t n = 0; n < N; n++) {
            float a_row = (float)rows[n] * f, a_col = (float)cols[n] * f;
            mt_f32(*cos)[n * half + k] = cosf(a_row);
            mt_f32(*sin)[n * half + k] = sinf(a_row);
            mt_f32(*cos)[n * half + quarter + k] = cosf(a_col);
            mt_f32(*sin)[n * half + quarter + k] = sinf(a_col);
        }
    }
    return MT_OK;
}
