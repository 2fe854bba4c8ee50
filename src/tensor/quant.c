/* tensor/quant: quantize and dequantize rows of ggml's block formats (layouts in tensor/quant.h), giving the bytes
 * ggml's reference quantizers give (ggml-quants.c, quantize_row_*_ref: what llama.cpp's quantize tool writes without
 * an importance matrix). The test against libggml-base (tests/unit/test_quant_ggml.c) compares every byte.
 *
 * Bit-exactness rests on doing the same float operations in the same order: each expression below keeps ggml's
 * association (a*b*c is (a*b)*c), integers become floats where ggml's do, and this file is compiled without FMA
 * (the baseline x86-64 flags), as libggml-base is, so no multiply-add is fused.
 *
 *   | type | scale search                                                                         |
 *   |------|--------------------------------------------------------------------------------------|
 *   | Q8_0 | d = amax / 127, q = round(x / d)                                                     |
 *   | Q4_0 | d = -(signed value of largest magnitude) / 8, q = min(15, trunc(x / d + 8.5))        |
 *   | Q4_K | per 32: weighted least squares of scale and min over 21 trial grids (qkx2_quants),   |
 *   |      | then the 8 scales and mins to 6 bits against the largest, and x requantized          |
 *   | Q6_K | per 16: weighted (x^2) least squares of the scale over 19 trial grids (qx_quants),   |
 *   |      | the 16 scales to int8 against the largest, and x requantized                         |
 *   | Q8_K | d = max / -127 (f32), q = min(127, round(x / d)), bsums per 16                       |
 */
#include "tensor/quant.h"

#include <math.h>
#include <string.h>

#define GROUP_MAX_EPS 1e-15f

/* Round to nearest, ties to even, by adding 1.5 * 2^23: the integer lands in the low mantissa bits. Exact for
 * |v| < 2^22; ggml rounds this way in the K-quants, so this is not lrintf (which would agree only in range). */
static inline int round_magic(float v) {
    float t = v + 12582912.f;
    int32_t i;
    memcpy(&i, &t, sizeof i);
    return (i & 0x007fffff) - 0x00400000;
}

static inline int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

/* roundf (halves away from zero) without the libm call, for |v| < 2^31; beyond that it converts as (int)roundf
 * would on x86 (the conversion ggml's Q8_0 makes, only reached when a block's scale underflows). */
static inline int round_away(float v) {
    if (!(fabsf(v) < 2147483520.f)) return (int)roundf(v);
    int i = (int)v;
    float f = v - (float)i;
    return i + (f >= 0.5f) - (f <= -0.5f);
}

void mt_quantize_row_q8_0(const float *x, mt_block_q8_0 *y, int64_t n) {
    for (int64_t b = 0; b < n / MT_QK8_0; b++, x += MT_QK8_0) {
        float amax = 0.0f;
        for (int j = 0; j < MT_QK8_0; j++) amax = amax > fabsf(x[j]) ? amax : fabsf(x[j]);
        float d = amax / 127;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[b].d = mt_f32_to_f16(d);
        for (int j = 0; j < MT_QK8_0; j++) y[b].qs[j] = (int8_t)round_away(x[j] * id);
    }
}

void mt_quantize_row_q4_0(const float *x, mt_block_q4_0 *y, int64_t n) {
    for (int64_t b = 0; b < n / MT_QK4_0; b++, x += MT_QK4_0) {
        float amax = 0.0f, vmax = 0.0f; /* the first value of largest magnitude, with its sign */
        for (int j = 0; j < MT_QK4_0; j++)
            if (fabsf(x[j]) > amax) {
                amax = fabsf(x[j]);
                vmax = x[j];
            }
        float d = vmax / -8;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[b].d = mt_f32_to_f16(d);
        for (int j = 0; j < MT_QK4_0 / 2; j++) {
            int8_t lo = (int8_t)(x[j] * id + 8.5f), hi = (int8_t)(x[j + MT_QK4_0 / 2] * id + 8.5f);
            y[b].qs[j] = (uint8_t)(MT_MIN(15, lo) | (MT_MIN(15, hi) << 4));
        }
    }
}

/* Q4_K's sub-block fit: codes l in [0, nmax] with x ~ scale * l - min (min >= 0 is returned in *neg_min), weighted.
 * A first grid from the range, then nstep + 1 grids with nmax stretched by rmin + rdelta * is; each grid's codes
 * get the closed-form least-squares scale and min, kept when its weighted squared error is lower. */
static float fit_scale_min(int n, int nmax, const float *x, const float *w, uint8_t *L, float *neg_min, float rmin,
                           float rdelta, int nstep) {
    float lo = x[0], hi = x[0], sum_w = w[0], sum_x = sum_w * x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < lo) lo = x[i];
        if (x[i] > hi) hi = x[i];
        sum_w += w[i];
        sum_x += w[i] * x[i];
    }
    if (lo > 0) lo = 0;
    if (hi == lo) {
        memset(L, 0, (size_t)n);
        *neg_min = -lo;
        return 0.0f;
    }
    float iscale = nmax / (hi - lo), scale = 1 / iscale, best = 0;
    for (int i = 0; i < n; i++) {
        L[i] = (uint8_t)clampi(round_magic(iscale * (x[i] - lo)), 0, nmax);
        float e = scale * L[i] + lo - x[i];
        best += w[i] * (e * e);
    }
    uint8_t trial[32];
    for (int is = 0; is <= nstep; is++) {
        iscale = (rmin + rdelta * is + nmax) / (hi - lo);
        float sl = 0, sl2 = 0, sxl = 0;
        for (int i = 0; i < n; i++) {
            int l = clampi(round_magic(iscale * (x[i] - lo)), 0, nmax);
            trial[i] = (uint8_t)l;
            sl += w[i] * l;
            sl2 += w[i] * l * l;
            sxl += w[i] * l * x[i];
        }
        float det = sum_w * sl2 - sl * sl;
        if (!(det > 0)) continue;
        float s = (sum_w * sxl - sum_x * sl) / det, m = (sl2 * sum_x - sl * sxl) / det;
        if (m > 0) {
            m = 0;
            s = sxl / sl2;
        }
        float err = 0;
        for (int i = 0; i < n; i++) {
            float e = s * trial[i] + m - x[i];
            err += w[i] * (e * e);
        }
        if (err < best) {
            memcpy(L, trial, (size_t)n);
            best = err;
            scale = s;
            lo = m;
        }
    }
    *neg_min = -lo;
    return scale;
}

void mt_quantize_row_q4_K(const float *x, mt_block_q4_K *y, int64_t n) {
    uint8_t L[MT_QK_K];
    float w[32], scales[8], mins[8];
    for (int64_t b = 0; b < n / MT_QK_K; b++, x += MT_QK_K) {
        mt_block_q4_K *q = &y[b];
        float max_scale = 0, max_min = 0;
        for (int j = 0; j < 8; j++) {
            const float *xs = x + 32 * j;
            float sum_x2 = 0;
            for (int l = 0; l < 32; l++) sum_x2 += xs[l] * xs[l];
            float av_x = sqrtf(sum_x2 / 32);
            for (int l = 0; l < 32; l++) w[l] = av_x + fabsf(xs[l]);
            scales[j] = fit_scale_min(32, 15, xs, w, L + 32 * j, &mins[j], -1.f, 0.1f, 20);
            if (scales[j] > max_scale) max_scale = scales[j];
            if (mins[j] > max_min) max_min = mins[j];
        }
        float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f, inv_min = max_min > 0 ? 63.f / max_min : 0.f;
        memset(q->scales, 0, sizeof q->scales);
        for (int j = 0; j < 8; j++) {
            /* ggml stores the rounded value in a uint8_t before the clamp: a negative one wraps to above 63 */
            uint8_t ls = (uint8_t)round_magic(inv_scale * scales[j]), lm = (uint8_t)round_magic(inv_min * mins[j]);
            ls = MT_MIN(63, ls);
            lm = MT_MIN(63, lm);
            if (j < 4) {
                q->scales[j] = ls;
                q->scales[j + 4] = lm;
            } else {
                q->scales[j + 4] = (uint8_t)((ls & 0xF) | ((lm & 0xF) << 4));
                q->scales[j - 4] |= (uint8_t)((ls >> 4) << 6);
                q->scales[j] |= (uint8_t)((lm >> 4) << 6);
            }
        }
        q->d = mt_f32_to_f16(max_scale / 63.f);
        q->dmin = mt_f32_to_f16(max_min / 63.f);
        for (int j = 0; j < 8; j++) {
            uint8_t sc, m;
            mt_q4_K_scale_min(j, q->scales, &sc, &m);
            float d = mt_f16_to_f32(q->d) * sc;
            if (d == 0.0f) continue;
            float dm = mt_f16_to_f32(q->dmin) * m;
            for (int i = 0; i < 32; i++) L[32 * j + i] = (uint8_t)clampi(round_magic((x[32 * j + i] + dm) / d), 0, 15);
        }
        for (int j = 0; j < MT_QK_K / 64; j++)
            for (int l = 0; l < 32; l++) q->qs[32 * j + l] = (uint8_t)(L[64 * j + l] | (L[64 * j + l + 32] << 4));
    }
}

/* Q6_K's sub-block fit: signed codes l in [-nmax, nmax) with x ~ scale * l, weights x^2. The grid through the value
 * of largest magnitude, then 18 grids with nmax moved by 0.1 * is; kept when it raises sum(wxl)^2 / sum(wl^2).
 * L receives l + nmax. */
static float fit_scale(int n, int nmax, const float *x, int8_t *L) {
    float amax = 0, vmax = 0;
    for (int i = 0; i < n; i++)
        if (fabsf(x[i]) > amax) {
            amax = fabsf(x[i]);
            vmax = x[i];
        }
    if (amax < GROUP_MAX_EPS) {
        memset(L, 0, (size_t)n);
        return 0.f;
    }
    float iscale = -nmax / vmax, slx = 0, sl2 = 0;
    for (int i = 0; i < n; i++) {
        int l = clampi(round_magic(iscale * x[i]), -nmax, nmax - 1);
        L[i] = (int8_t)(l + nmax);
        float w = x[i] * x[i];
        slx += w * x[i] * l;
        sl2 += w * l * l;
    }
    float scale = sl2 != 0 ? slx / sl2 : 0.0f, best = scale * slx;
    for (int is = -9; is <= 9; is++) {
        if (is == 0) continue;
        iscale = -(nmax + 0.1f * is) / vmax;
        slx = sl2 = 0;
        for (int i = 0; i < n; i++) {
            int l = clampi(round_magic(iscale * x[i]), -nmax, nmax - 1);
            float w = x[i] * x[i];
            slx += w * x[i] * l;
            sl2 += w * l * l;
        }
        if (sl2 > 0 && slx * slx > best * sl2) {
            for (int i = 0; i < n; i++) L[i] = (int8_t)(nmax + clampi(round_magic(iscale * x[i]), -nmax, nmax - 1));
            scale = slx / sl2;
            best = scale * slx;
        }
    }
    return scale;
}

void mt_quantize_row_q6_K(const float *x, mt_block_q6_K *y, int64_t n) {
    int8_t L[MT_QK_K];
    float scales[16];
    for (int64_t b = 0; b < n / MT_QK_K; b++, x += MT_QK_K) {
        mt_block_q6_K *q = &y[b];
        float max_scale = 0, max_abs = 0;
        for (int j = 0; j < 16; j++) {
            scales[j] = fit_scale(16, 32, x + 16 * j, L + 16 * j);
            if (fabsf(scales[j]) > max_abs) {
                max_abs = fabsf(scales[j]);
                max_scale = scales[j];
            }
        }
        if (max_abs < GROUP_MAX_EPS) {
            memset(q, 0, sizeof *q);
            continue;
        }
        float iscale = -128.f / max_scale;
        q->d = mt_f32_to_f16(1 / iscale);
        for (int j = 0; j < 16; j++) q->scales[j] = (int8_t)MT_MIN(127, round_magic(iscale * scales[j]));
        for (int j = 0; j < 16; j++) {
            float d = mt_f16_to_f32(q->d) * q->scales[j];
            if (d == 0.0f) continue;
            for (int i = 0; i < 16; i++) L[16 * j + i] = (int8_t)(clampi(round_magic(x[16 * j + i] / d), -32, 31) + 32);
        }
        /* 128 values per half: ql holds the low 4 bits (l and l+64 share a byte, as l+32 and l+96), qh the top 2 */
        for (int h = 0; h < 2; h++) {
            const int8_t *Lh = L + 128 * h;
            uint8_t *ql = q->ql + 64 * h, *qh = q->qh + 32 * h;
            for (int l = 0; l < 32; l++) {
                ql[l] = (uint8_t)((Lh[l] & 0xF) | ((Lh[l + 64] & 0xF) << 4));
                ql[l + 32] = (uint8_t)((Lh[l + 32] & 0xF) | ((Lh[l + 96] & 0xF) << 4));
                qh[l] = (uint8_t)((Lh[l] >> 4) | ((Lh[l + 32] >> 4) << 2) | ((Lh[l + 64] >> 4) << 4) |
                                  ((Lh[l + 96] >> 4) << 6));
            }
        }
    }
}

void mt_quantize_row_q8_K(const float *x, mt_block_q8_K *y, int64_t n) {
    for (int64_t b = 0; b < n / MT_QK_K; b++, x += MT_QK_K) {
        mt_block_q8_K *q = &y[b];
        float amax = 0, vmax = 0;
        for (int j = 0; j < MT_QK_K; j++)
            if (fabsf(x[j]) > amax) {
                amax = fabsf(x[j]);
                vmax = x[j];
            }
        if (amax == 0.0f) {
            memset(q, 0, sizeof *q);
            continue;
        }
        float iscale = -127.f / vmax;
        for (int j = 0; j < MT_QK_K; j++) q->qs[j] = (int8_t)MT_MIN(127, round_magic(iscale * x[j]));
        for (int j = 0; j < MT_QK_K / 16; j++) {
            int s = 0;
            for (int i = 0; i < 16; i++) s += q->qs[16 * j + i];
            q->bsums[j] = (int16_t)s;
        }
        q->d = 1 / iscale;
    }
}

void mt_dequantize_row_q8_0(const mt_block_q8_0 *x, float *y, int64_t n) {
    for (int64_t b = 0; b < n / MT_QK8_0; b++, y += MT_QK8_0) {
        float d = mt_f16_to_f32(x[b].d);
        for (int j = 0; j < MT_QK8_0; j++) y[j] = x[b].qs[j] * d;
    }
}

void mt_dequantize_row_q4_0(const mt_block_q4_0 *x, float *y, int64_t n) {
    for (int64_t b = 0; b < n / MT_QK4_0; b++, y += MT_QK4_0) {
        float d = mt_f16_to_f32(x[b].d);
        for (int j = 0; j < MT_QK4_0 / 2; j++) {
            y[j] = ((x[b].qs[j] & 0xF) - 8) * d;
            y[j + MT_QK4_0 / 2] = ((x[b].qs[j] >> 4) - 8) * d;
        }
    }
}

void mt_dequantize_row_q4_K(const mt_block_q4_K *x, float *y, int64_t n) {
    for (int64_t b = 0; b < n / MT_QK_K; b++) {
        float d = mt_f16_to_f32(x[b].d), dmin = mt_f16_to_f32(x[b].dmin);
        for (int p = 0; p < 4; p++) {
            const uint8_t *q = x[b].qs + 32 * p;
            uint8_t sc, m;
            mt_q4_K_scale_min(2 * p, x[b].scales, &sc, &m);
            float d1 = d * sc, m1 = dmin * m;
            mt_q4_K_scale_min(2 * p + 1, x[b].scales, &sc, &m);
            float d2 = d * sc, m2 = dmin * m;
            for (int l = 0; l < 32; l++) *y++ = d1 * (q[l] & 0xF) - m1;
            for (int l = 0; l < 32; l++) *y++ = d2 * (q[l] >> 4) - m2;
        }
    }
}

void mt_dequantize_row_q6_K(const mt_block_q6_K *x, float *y, int64_t n) {
    for (int64_t b = 0; b < n / MT_QK_K; b++) {
        float d = mt_f16_to_f32(x[b].d);
        for (int h = 0; h < 2; h++, y += 128) {
            const uint8_t *ql = x[b].ql + 64 * h, *qh = x[b].qh + 32 * h;
            const int8_t *sc = x[b].scales + 8 * h;
            for (int l = 0; l < 32; l++) {
                int s = l / 16;
                int8_t q1 = (int8_t)((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                int8_t q2 = (int8_t)((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                int8_t q3 = (int8_t)((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                int8_t q4 = (int8_t)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                y[l] = d * sc[s] * q1;
                y[l + 32] = d * sc[s + 2] * q2;
                y[l + 64] = d * sc[s + 4] * q3;
                y[l + 96] = d * sc[s + 6] * q4;
            }
        }
    }
}

void mt_dequantize_row_q8_K(const mt_block_q8_K *x, float *y, int64_t n) {
    for (int64_t b = 0; b < n / MT_QK_K; b++, y += MT_QK_K)
        for (int j = 0; j < MT_QK_K; j++) y[j] = x[b].d * x[b].qs[j];
}

void mt_quantize_row(mt_dtype t, const float *x, void *y, int64_t n) {
    switch (t) {
    case MT_Q8_0: mt_quantize_row_q8_0(x, y, n); break;
    case MT_Q4_0: mt_quantize_row_q4_0(x, y, n); break;
    case MT_Q4_K: mt_quantize_row_q4_K(x, y, n); break;
    case MT_Q6_K: mt_quantize_row_q6_K(x, y, n); break;
    default: break;
    }
}

void mt_dequantize_row(mt_dtype t, const void *x, float *y, int64_t n) {
    switch (t) {
    case MT_Q8_0: mt_dequantize_row_q8_0(x, y, n); break;
    case MT_Q4_0: mt_dequantize_row_q4_0(x, y, n); break;
    case MT_Q4_K: mt_dequantize_row_q4_K(x, y, n); break;
    case MT_Q6_K: mt_dequantize_row_q6_K(x, y, n); break;
    default: break;
    }
}

static mt_status check_shape(const char *what, mt_dtype t, int64_t rows, int64_t n, size_t *row_bytes, mt_err *err) {
    if (t < 0 || t >= MT_DTYPE_COUNT || !mt_dtype_is_quant(t))
        return mt_err_set(err, MT_ERR_INVALID_ARG, "%s: dtype %d is not a block-quantized type", what, (int)t);
    int64_t blk = mt_dtype_block_elems(t);
    if (n <= 0 || n % blk != 0)
        return mt_err_set(err, MT_ERR_INVALID_ARG, "%s %s: row length %lld is not a positive multiple of %lld", what,
                          mt_dtype_name(t), (long long)n, (long long)blk);
    size_t total;
    *row_bytes = mt_dtype_row_bytes(t, n);
    if (rows < 0 || !mt_mul_ok(*row_bytes, (size_t)rows, &total) || !mt_mul_ok((size_t)n, (size_t)rows, &total) ||
        !mt_mul_ok(total, sizeof(float), &total))
        return mt_err_set(err, MT_ERR_INVALID_ARG, "%s %s: %lld rows of %lld do not fit in memory sizes", what,
                          mt_dtype_name(t), (long long)rows, (long long)n);
    return MT_OK;
}

/* One group of 8 Q4_K rows (rows rb bytes apart) to its Q4_K_R8 blocks. */
static void repack_group(const char *src, size_t rb, int64_t nb, mt_block_q4_K_r8 *dst) {
    for (int64_t b = 0; b < nb; b++)
        for (int r = 0; r < 8; r++) {
            const mt_block_q4_K *x = (const mt_block_q4_K *)(src + (size_t)r * rb) + b;
            dst[b].d[r] = x->d;
            dst[b].dmin[r] = x->dmin;
            for (int k = 0; k < 3; k++) memcpy(&dst[b].scales[k][r], x->scales + 4 * k, 4);
            for (int v = 0; v < 32; v++) memcpy(&dst[b].qs[v][r], x->qs + 4 * v, 4);
        }
}

mt_status mt_repack_q4_K_r8(const void *src, int64_t rows, int64_t n, void *dst, mt_err *err) {
    if (rows <= 0 || rows % 8 != 0)
        return mt_err_set(err, MT_ERR_INVALID_ARG, "repack Q4_K_R8: %lld rows, not a positive multiple of 8",
                          (long long)rows);
    if (n <= 0 || n % MT_QK_K != 0)
        return mt_err_set(err, MT_ERR_INVALID_ARG, "repack Q4_K_R8: row length %lld is not a positive multiple of %d",
                          (long long)n, MT_QK_K);
    size_t rb = mt_dtype_row_bytes(MT_Q4_K, n);
    for (int64_t g = 0; g < rows / 8; g++)
        repack_group((const char *)src + (size_t)g * 8 * rb, rb, n / MT_QK_K, (mt_block_q4_K_r8 *)((char *)dst + (size_t)g * 8 * rb));
    return MT_OK;
}

/* One group of 8 Q8_0 rows (rows rb bytes apart) to its Q8_0_R8 blocks. */
static void repack_group_q8_0(const char *src, size_t rb, int64_t nb, mt_block_q8_0_r8 *dst) {
    for (int64_t b = 0; b < nb; b++)
        for (int r = 0; r < 8; r++) {
            const mt_block_q8_0 *x = (const mt_block_q8_0 *)(src + (size_t)r * rb) + b;
            dst[b].d[r] = x->d;
            for (int c = 0; c < 8; c++)
                for (int j = 0; j < 4; j++) dst[b].qs[c][r][j] = (uint8_t)x->qs[4 * c + j] ^ 0x80;
        }
}

mt_status mt_repack_q8_0_r8(const void *src, int64_t rows, int64_t n, void *dst, mt_err *err) {
    if (rows <= 0)
        return mt_err_set(err, MT_ERR_INVALID_ARG, "repack Q8_0_R8: %lld rows, not positive", (long long)rows);
    if (n <= 0 || n % MT_QK8_0 != 0)
        return mt_err_set(err, MT_ERR_INVALID_ARG, "repack Q8_0_R8: row length %lld is not a positive multiple of %d",
                          (long long)n, MT_QK8_0);
    size_t rb = mt_dtype_row_bytes(MT_Q8_0, n);
    int64_t full = rows / 8 * 8;
    for (int64_t g = 0; g < rows / 8; g++)
        repack_group_q8_0((const char *)src + (size_t)g * 8 * rb, rb, n / MT_QK8_0,
                          (mt_block_q8_0_r8 *)((char *)dst + (size_t)g * 8 * rb));
    memcpy((char *)dst + (size_t)full * rb, (const char *)src + (size_t)full * rb, (size_t)(rows - full) * rb);
    return MT_OK;
}

mt_dtype mt_repack_type(mt_dtype t, int64_t rows, int64_t n) {
    if (t == MT_Q4_K && rows > 0 && rows % 8 == 0 && n > 0 && n % MT_QK_K == 0) return MT_Q4_K_R8;
    if (t == MT_Q8_0 && rows >= 8 && n > 0 && n % MT_QK8_0 == 0) return MT_Q8_0_R8;
    return t;
}

mt_status mt_repack(mt_dtype t, const void *src, int64_t rows, int64_t n, void *dst, mt_err *err) {
    switch (mt_repack_type(t, rows, n)) {
    case MT_Q4_K_R8: return mt_repack_q4_K_r8(src, rows, n, dst, err);
    case MT_Q8_0_R8: return mt_repack_q8_0_r8(src, rows, n, dst, err);
    default:
        return mt_err_set(err, MT_ERR_INVALID_ARG, "repack: %s %lld x %lld has no interleaved layout", mt_dtype_name(t),
                          (long long)rows, (long long)n);
    }
}

static mt_status check_finite(mt_dtype t, const float *xr, int64_t r, int64_t n, mt_err *err) {
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(xr[i]))
            return mt_err_set(err, MT_ERR_INVALID_ARG, "quantize %s: row %lld, index %lld is %g (not finite)",
                              mt_dtype_name(t), (long long)r, (long long)i, (double)xr[i]);
    return MT_OK;
}

mt_status mt_quantize(mt_dtype t, const float *x, int64_t rows, int64_t n, void *dst, mt_err *err) {
    size_t rb;
    mt_status st = check_shape("quantize", t, rows, n, &rb, err);
    if (st != MT_OK) return st;
    if (t == MT_Q4_K_R8) {
        if (rows % 8 != 0)
            return mt_err_set(err, MT_ERR_INVALID_ARG, "quantize Q4_K_R8: %lld rows, not a multiple of 8",
                              (long long)rows);
        char *tmp = mt_malloc(8 * rb);
        if (!tmp) return mt_err_set(err, MT_ERR_NOMEM, "quantize Q4_K_R8: out of memory for 8 rows of %lld", (long long)n);
        for (int64_t g = 0; g < rows / 8 && st == MT_OK; g++) {
            for (int64_t r = 0; r < 8 && st == MT_OK; r++) {
                const float *xr = x + (8 * g + r) * n;
                if ((st = check_finite(t, xr, 8 * g + r, n, err)) == MT_OK)
                    mt_quantize_row_q4_K(xr, (mt_block_q4_K *)(tmp + (size_t)r * rb), n);
            }
            if (st == MT_OK) repack_group(tmp, rb, n / MT_QK_K, (mt_block_q4_K_r8 *)((char *)dst + (size_t)g * 8 * rb));
        }
        mt_free(tmp);
        return st;
    }
    mt_dtype rt = t == MT_Q8_0_R8 ? MT_Q8_0 : t;
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * n;
        if ((st = check_finite(t, xr, r, n, err)) != MT_OK) return st;
        mt_quantize_row(rt, xr, (char *)dst + (size_t)r * rb, n);
    }
    if (t != MT_Q8_0_R8) return MT_OK;
    /* Q8_0 rows in place, then each group through a copy of its 8 rows */
    char *tmp = rows >= 8 ? mt_malloc(8 * rb) : NULL;
    if (rows >= 8 && !tmp)
        return mt_err_set(err, MT_ERR_NOMEM, "quantize Q8_0_R8: out of memory for 8 rows of %lld", (long long)n);
    for (int64_t g = 0; g < rows / 8; g++) {
        char *grp = (char *)dst + (size_t)g * 8 * rb;
        memcpy(tmp, grp, 8 * rb);
        repack_group_q8_0(tmp, rb, n / MT_QK8_0, (mt_block_q8_0_r8 *)grp);
    }
    mt_free(tmp);
    return MT_OK;
}

mt_status mt_dequantize(mt_dtype t, const void *src, int64_t rows, int64_t n, float *y, mt_err *err) {
    size_t rb;
    mt_status st = check_shape("dequantize", t, rows, n, &rb, err);
    if (st != MT_OK) return st;
    if (t == MT_Q4_K_R8) {
        if (rows % 8 != 0)
            return mt_err_set(err, MT_ERR_INVALID_ARG, "dequantize Q4_K_R8: %lld rows, not a multiple of 8",
                              (long long)rows);
        for (int64_t r = 0; r < rows; r++)
            for (int64_t b = 0; b < n / MT_QK_K; b++) {
                mt_block_q4_K blk;
                mt_q4_K_r8_get(src, rb, r, b, &blk);
                mt_dequantize_row_q4_K(&blk, y + r * n + b * MT_QK_K, MT_QK_K);
            }
        return MT_OK;
    }
    if (t == MT_Q8_0_R8) {
        for (int64_t r = 0; r < rows; r++)
            for (int64_t b = 0; b < n / MT_QK8_0; b++) {
                mt_block_q8_0 blk;
                mt_q8_0_r8_get(src, rb, rows, r, b, &blk);
                mt_dequantize_row_q8_0(&blk, y + r * n + b * MT_QK8_0, MT_QK8_0);
            }
        return MT_OK;
    }
    for (int64_t r = 0; r < rows; r++) mt_dequantize_row(t, (const char *)src + (size_t)r * rb, y + r * n, n);
    return MT_OK;
}
