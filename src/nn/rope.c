/* nn/rope: inverse frequencies of each rope variant and the cos/sin tables built from them. */
#include "nn/rope.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

bool mt_rope_type_parse(const char *name, mt_rope_type *out) {
    static const struct {
        const char *name;
        mt_rope_type type;
    } names[] = {{"default", MT_ROPE_DEFAULT}, {"mrope", MT_ROPE_DEFAULT}, {"linear", MT_ROPE_LINEAR},
                 {"dynamic", MT_ROPE_DYNAMIC}, {"yarn", MT_ROPE_YARN},     {"llama3", MT_ROPE_LLAMA3}};
    for (size_t i = 0; i < MT_ARRAY_LEN(names); i++)
        if (strcmp(name, names[i].name) == 0) return *out = names[i].type, true;
    return false;
}

int mt_rope_axes(const mt_rope_cfg *c) { return c->sections[0] + c->sections[1] + c->sections[2] ? 3 : 1; }

bool mt_rope_cfg_check(const mt_rope_cfg *c, char *msg, size_t cap) {
    int64_t s = c->sections[0] + c->sections[1] + c->sections[2];
    if (c->dim < 2 || c->dim % 2 || c->dim > 65536)
        return snprintf(msg, cap, "rotary dim %lld must be even and positive", (long long)c->dim), false;
    if (!(c->theta > 0.0)) return snprintf(msg, cap, "rope_theta must be positive"), false;
    if (c->sections[0] < 0 || c->sections[1] < 0 || c->sections[2] < 0 || (s && s != c->dim / 2))
        return snprintf(msg, cap, "mrope_section [%lld, %lld, %lld] must sum to head_dim / 2 = %lld",
                        (long long)c->sections[0], (long long)c->sections[1], (long long)c->sections[2],
                        (long long)(c->dim / 2)),
               false;
    if (c->type != MT_ROPE_DEFAULT && !(c->factor >= 1.0 && c->factor <= 1e6))
        return snprintf(msg, cap, "rope factor %g must be at least 1", c->factor), false;
    if ((c->type == MT_ROPE_DYNAMIC || c->type == MT_ROPE_YARN || c->type == MT_ROPE_LLAMA3) && c->original_max < 1)
        return snprintf(msg, cap, "rope scaling needs original_max_position_embeddings"), false;
    if (c->type == MT_ROPE_LLAMA3 && !(c->high_freq_factor > c->low_freq_factor && c->low_freq_factor > 0))
        return snprintf(msg, cap, "llama3 rope needs high_freq_factor > low_freq_factor > 0, got %g and %g",
                        c->high_freq_factor, c->low_freq_factor),
               false;
    if (c->type == MT_ROPE_YARN && !(c->beta_fast > 0 && c->beta_slow > 0 && c->beta_fast >= c->beta_slow))
        return snprintf(msg, cap, "yarn rope needs beta_fast >= beta_slow > 0, got %g and %g", c->beta_fast,
                        c->beta_slow),
               false;
    if (c->type == MT_ROPE_YARN && !(c->attention_factor >= 0 && c->mscale >= 0 && c->mscale_all_dim >= 0))
        return snprintf(msg, cap, "yarn attention_factor, mscale and mscale_all_dim must not be negative"), false;
    return true;
}

/* dim at which the rotation count over max_pos positions is num_rot (yarn; Python floats in transformers) */
static double correction_dim(double num_rot, double dim, double base, double max_pos) {
    return dim * log(max_pos / (num_rot * 2.0 * M_PI)) / (2.0 * log(base));
}

/* yarn's get_mscale */
static double yarn_mscale(double scale, double m) { return scale <= 1.0 ? 1.0 : 0.1 * m * log(scale) + 1.0; }

/* llama3: f from the default base, in transformers' f32 tensor steps */
static float llama3_freq(const mt_rope_cfg *c, float f) {
    float factor = (float)c->factor, low = (float)c->low_freq_factor;
    float wl = (1.0f / f) * (float)(2.0 * M_PI);
    if (wl > (float)((double)c->original_max / c->low_freq_factor)) return f / factor;
    if (wl < (float)((double)c->original_max / c->high_freq_factor)) return f;
    float smooth = ((1.0f / wl) * (float)c->original_max - low) / (float)(c->high_freq_factor - c->low_freq_factor);
    return (1.0f - smooth) * f / factor + smooth * f;
}

void mt_rope_inv_freq(const mt_rope_cfg *c, int64_t max_pos, float *inv_freq, float *scale) {
    int64_t half = c->dim / 2;
    float base = (float)c->theta;
    *scale = 1.0f;
    if (c->type == MT_ROPE_DYNAMIC && max_pos + 1 > c->original_max) {
        /* _compute_dynamic_ntk_parameters with seq_len an int64 tensor: float32 tensors, the exponent a double */
        float q = (float)c->factor * (float)(max_pos + 1) / (float)c->original_max - (float)(c->factor - 1.0);
        base = (float)c->theta * (float)pow((double)q, (double)c->dim / (double)(c->dim - 2));
    }
    double lo = 0.0, hi = 1.0; /* yarn's ramp between correction dims */
    if (c->type == MT_ROPE_YARN) {
        lo = correction_dim(c->beta_fast, (double)c->dim, c->theta, (double)c->original_max);
        hi = correction_dim(c->beta_slow, (double)c->dim, c->theta, (double)c->original_max);
        if (c->yarn_truncate) {
            lo = floor(lo);
            hi = ceil(hi);
        }
        lo = MT_MAX(lo, 0.0);
        hi = MT_MIN(hi, (double)(c->dim - 1));
        if (lo == hi) hi += 0.001;
        if (c->attention_factor > 0)
            *scale = (float)c->attention_factor;
        else if (c->mscale != 0 && c->mscale_all_dim != 0)
            *scale = (float)(yarn_mscale(c->factor, c->mscale) / yarn_mscale(c->factor, c->mscale_all_dim));
        else
            *scale = (float)yarn_mscale(c->factor, 1.0);
    }
    for (int64_t i = 0; i < half; i++) {
        float p = powf(base, (float)(2 * i) / (float)c->dim), f = 1.0f / p;
        if (c->type == MT_ROPE_LINEAR) f /= (float)c->factor;
        if (c->type == MT_ROPE_LLAMA3) f = llama3_freq(c, f);
        if (c->type == MT_ROPE_YARN) {
            float ramp = ((float)i - (float)lo) / (float)(hi - lo);
            ramp = ramp < 0.0f ? 0.0f : ramp > 1.0f ? 1.0f : ramp;
            float extrap = 1.0f - ramp; /* weight of the unscaled frequency */
            f = (1.0f / ((float)c->factor * p)) * (1.0f - extrap) + f * extrap;
        }
        inv_freq[i] = f;
    }
}

static int axis_of(const mt_rope_cfg *c, int64_t i) {
    const int64_t *s = c->sections;
    if (!(s[0] + s[1] + s[2])) return 0;
    if (c->interleaved) return i % 3 == 1 && i < 3 * s[1] ? 1 : i % 3 == 2 && i < 3 * s[2] ? 2 : 0;
    return i < s[0] ? 0 : i < s[0] + s[1] ? 1 : 2;
}

static mt_status rope_tables(mt_ctx *ctx, int64_t T, int64_t half, mt_tensor **cos, mt_tensor **sin) {
    *cos = mt_tensor_new_2d(ctx, MT_F32, T, half);
    *sin = mt_tensor_new_2d(ctx, MT_F32, T, half);
    return (*cos && *sin) ? MT_OK : ctx->status;
}

mt_status mt_nn_rope(mt_ctx *ctx, const mt_rope_cfg *c, const int64_t *pos, int64_t T, mt_tensor **cos,
                     mt_tensor **sin) {
    int64_t half = c->dim / 2, max_pos = 0;
    int axes = mt_rope_axes(c);
    mt_status st = rope_tables(ctx, T, half, cos, sin);
    float *inv = mt_arena_alloc(ctx->arena, (size_t)half * sizeof(float)), scale;
    if (st) return st;
    if (!inv) {
        mt_ctx_fail(ctx, MT_ERR_NOMEM, "out of memory");
        return ctx->status;
    }
    for (int64_t i = 0; i < (int64_t)axes * T; i++) max_pos = MT_MAX(max_pos, pos[i]);
    mt_rope_inv_freq(c, max_pos, inv, &scale);
    for (int64_t i = 0; i < half; i++) {
        const int64_t *p = pos + (int64_t)axis_of(c, i) * T;
        for (int64_t t = 0; t < T; t++) {
            float angle = (float)p[t] * inv[i];
            mt_f32(*cos)[t * half + i] = cosf(angle) * scale;
            mt_f32(*sin)[t * half + i] = sinf(angle) * scale;
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
        float f = 1.0f / powf((float)theta, (float)(2 * k) / (float)half);
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
