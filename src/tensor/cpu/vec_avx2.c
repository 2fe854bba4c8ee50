/* tensor/cpu: AVX2 + FMA + F16C row helpers and the AVX2 kernel table.
 *
 * exp follows the Cephes expf scheme: x = n ln2 + r with |r| <= ln2/2, e^r from a degree-7 polynomial, 2^n built in
 * the exponent field. Inputs are clamped to [-87, 88] (n stays a normal exponent); below -87 the result is 0.
 * erf uses Abramowitz & Stegun 7.1.26 (|error| <= 1.5e-7). tanh(u) = 1 - 2 / (1 + e^(2u)).
 *
 *   | function        | error against the scalar reference (libm)            |
 *   |-----------------|-------------------------------------------------------|
 *   | exp, silu,      | a few ulp                                             |
 *   | sigmoid         |                                                       |
 *   | gelu_erf/tanh   | about 2e-7 * |x| absolute                             |
 */
#if defined(__x86_64__) || defined(__i386__)
#include <math.h>

#include "tensor/cpu/simd_avx2.h"

void mt_avx2_ukr(int64_t kc, const float *a, int64_t rsa, const float *b, float *c, int64_t ldc, bool load_c);
void mt_avx2_pack_b(int64_t kc, int64_t nc, const void *src, mt_dtype dt, int64_t rs, int64_t cs, float *dst);
void mt_avx2_gemv(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda, const void *w, mt_dtype wt,
                  int64_t ldw, const float *bias, float *c, int64_t ldc, bool acc);
double mt_avx2_fma_loop(int64_t iters, float *out);

static inline __m256 exp8(__m256 x) {
    __m256 under = _mm256_cmp_ps(x, _mm256_set1_ps(-87.0f), _CMP_LT_OQ);
    x = _mm256_min_ps(_mm256_set1_ps(88.0f), x); /* operand order keeps a NaN in x */
    x = _mm256_max_ps(_mm256_set1_ps(-87.0f), x);
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_andnot_ps(under, _mm256_mul_ps(p, _mm256_castsi256_ps(e)));
}

static inline __m256 sigmoid8(__m256 x) {
    __m256 e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), x));
    return _mm256_div_ps(_mm256_set1_ps(1.0f), _mm256_add_ps(_mm256_set1_ps(1.0f), e));
}

static inline __m256 erf8(__m256 x) {
    __m256 sign = _mm256_and_ps(x, _mm256_set1_ps(-0.0f));
    __m256 ax = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x);
    __m256 t =
        _mm256_div_ps(_mm256_set1_ps(1.0f), _mm256_fmadd_ps(ax, _mm256_set1_ps(0.3275911f), _mm256_set1_ps(1.0f)));
    __m256 p = _mm256_set1_ps(1.061405429f);
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-1.453152027f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(1.421413741f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-0.284496736f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.254829592f));
    p = _mm256_mul_ps(p, t);
    __m256 e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), _mm256_mul_ps(ax, ax)));
    __m256 y = _mm256_fnmadd_ps(p, e, _mm256_set1_ps(1.0f));
    return _mm256_or_ps(y, sign);
}

float mt_avx2_dot(int64_t n, const float *x, const float *y) {
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8), _mm256_loadu_ps(y + i + 8), s1);
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 16), _mm256_loadu_ps(y + i + 16), s2);
        s3 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 24), _mm256_loadu_ps(y + i + 24), s3);
    }
    for (; i < n; i += 8) {
        __m256i m = tail_mask(n - i);
        s0 = _mm256_fmadd_ps(_mm256_maskload_ps(x + i, m), _mm256_maskload_ps(y + i, m), s0);
    }
    return hsum8(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
}

/* Element-wise maps: whole vectors with plain loads and stores, the tail through masks (masked stores are slow on
 * some cores, so only the tail uses them). f is a constant after inlining. */
MT_INLINE void map2(int64_t n, const float *x, const float *u, float *y, __m256 a,
                    __m256 (*f)(__m256, __m256, __m256)) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, f(_mm256_loadu_ps(x + i), _mm256_loadu_ps(u + i), a));
    if (i < n) {
        __m256i m = tail_mask(n - i);
        _mm256_maskstore_ps(y + i, m, f(_mm256_maskload_ps(x + i, m), _mm256_maskload_ps(u + i, m), a));
    }
}

MT_INLINE __m256 f_axpy(__m256 x, __m256 y, __m256 a) { return _mm256_fmadd_ps(a, x, y); }
MT_INLINE __m256 f_scale(__m256 x, __m256 u, __m256 a) { return _mm256_mul_ps(a, x); }
MT_INLINE __m256 f_silu(__m256 x, __m256 u, __m256 a) { return _mm256_mul_ps(x, sigmoid8(x)); }
MT_INLINE __m256 f_sigmoid(__m256 x, __m256 u, __m256 a) { return sigmoid8(x); }
MT_INLINE __m256 f_swiglu(__m256 g, __m256 u, __m256 a) { return _mm256_mul_ps(_mm256_mul_ps(g, sigmoid8(g)), u); }

MT_INLINE __m256 f_gelu_erf(__m256 x, __m256 u, __m256 a) {
    __m256 e = erf8(_mm256_mul_ps(x, _mm256_set1_ps(0.70710678118654752f)));
    return _mm256_mul_ps(_mm256_mul_ps(x, _mm256_set1_ps(0.5f)), _mm256_add_ps(e, _mm256_set1_ps(1.0f)));
}

MT_INLINE __m256 f_gelu_tanh(__m256 x, __m256 u, __m256 a) {
    __m256 v = _mm256_mul_ps(_mm256_set1_ps(0.7978845608028654f),
                             _mm256_fmadd_ps(_mm256_mul_ps(_mm256_set1_ps(0.044715f), x), _mm256_mul_ps(x, x), x));
    __m256 e = exp8(_mm256_add_ps(v, v));
    __m256 t = _mm256_sub_ps(_mm256_set1_ps(1.0f),
                             _mm256_div_ps(_mm256_set1_ps(2.0f), _mm256_add_ps(e, _mm256_set1_ps(1.0f))));
    return _mm256_mul_ps(_mm256_mul_ps(x, _mm256_set1_ps(0.5f)), _mm256_add_ps(t, _mm256_set1_ps(1.0f)));
}

void mt_avx2_axpy(int64_t n, float a, const float *x, float *y) { map2(n, x, y, y, _mm256_set1_ps(a), f_axpy); }
void mt_avx2_scale(int64_t n, float a, float *x) { map2(n, x, x, x, _mm256_set1_ps(a), f_scale); }
void mt_avx2_silu(int64_t n, const float *x, float *y) { map2(n, x, x, y, _mm256_setzero_ps(), f_silu); }
void mt_avx2_sigmoid(int64_t n, const float *x, float *y) { map2(n, x, x, y, _mm256_setzero_ps(), f_sigmoid); }
void mt_avx2_swiglu(int64_t n, const float *g, const float *u, float *y) {
    map2(n, g, u, y, _mm256_setzero_ps(), f_swiglu);
}
void mt_avx2_gelu_erf(int64_t n, const float *x, float *y) { map2(n, x, x, y, _mm256_setzero_ps(), f_gelu_erf); }
void mt_avx2_gelu_tanh(int64_t n, const float *x, float *y) { map2(n, x, x, y, _mm256_setzero_ps(), f_gelu_tanh); }

static float vmax(int64_t n, const float *x) {
    __m256 m0 = _mm256_set1_ps(-INFINITY), m1 = m0;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        m0 = _mm256_max_ps(m0, _mm256_loadu_ps(x + i));
        m1 = _mm256_max_ps(m1, _mm256_loadu_ps(x + i + 8));
    }
    m0 = _mm256_max_ps(m0, m1);
    float t[8], r = -INFINITY;
    _mm256_storeu_ps(t, m0);
    for (int j = 0; j < 8; j++) r = t[j] > r ? t[j] : r;
    for (; i < n; i++) r = x[i] > r ? x[i] : r;
    return r;
}

static float exp_sum(int64_t n, const float *x, float shift, float *y) {
    __m256 vs = _mm256_set1_ps(shift), s = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), vs));
        _mm256_storeu_ps(y + i, e);
        s = _mm256_add_ps(s, e);
    }
    if (i < n) {
        __m256i m = tail_mask(n - i);
        __m256 e = _mm256_and_ps(exp8(_mm256_sub_ps(_mm256_maskload_ps(x + i, m), vs)), _mm256_castsi256_ps(m));
        _mm256_maskstore_ps(y + i, m, e);
        s = _mm256_add_ps(s, e);
    }
    return hsum8(s);
}

float mt_avx2_sumsq(int64_t n, const float *x) {
    __m256 s0 = _mm256_setzero_ps(), s1 = s0;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256 a = _mm256_loadu_ps(x + i), b = _mm256_loadu_ps(x + i + 8);
        s0 = _mm256_fmadd_ps(a, a, s0);
        s1 = _mm256_fmadd_ps(b, b, s1);
    }
    for (; i < n; i += 8) {
        __m256 a = _mm256_maskload_ps(x + i, tail_mask(n - i));
        s0 = _mm256_fmadd_ps(a, a, s0);
    }
    return hsum8(_mm256_add_ps(s0, s1));
}

void mt_avx2_mul_w(int64_t n, const float *x, float s, const void *w, mt_dtype wt, float *y) {
    __m256 vs = _mm256_set1_ps(s);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), vs), load8(w, wt, i)));
    for (; i < n; i++) y[i] = x[i] * s * mt_cpu_load(w, wt, i);
}

void mt_avx2_to_f32(int64_t n, const void *x, mt_dtype xt, float *y) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, load8(x, xt, i));
    for (; i < n; i++) y[i] = mt_cpu_load(x, xt, i);
}

static inline __m128i to_bf16_8(__m256 v) {
    __m256i u = _mm256_castps_si256(v);
    __m256i absu = _mm256_and_si256(u, _mm256_set1_epi32(0x7fffffff));
    __m256i nan = _mm256_cmpgt_epi32(absu, _mm256_set1_epi32(0x7f800000));
    __m256i odd = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
    __m256i r = _mm256_srli_epi32(_mm256_add_epi32(u, _mm256_add_epi32(_mm256_set1_epi32(0x7fff), odd)), 16);
    __m256i q = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(0x40));
    r = _mm256_blendv_epi8(r, q, nan);
    return _mm_packus_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1));
}

void mt_avx2_from_f32(int64_t n, const float *x, void *y, mt_dtype yt) {
    int64_t i = 0;
    uint16_t *h = y;
    if (yt == MT_BF16)
        for (; i + 8 <= n; i += 8) _mm_storeu_si128((__m128i *)(h + i), to_bf16_8(_mm256_loadu_ps(x + i)));
    else if (yt == MT_F16)
        for (; i + 8 <= n; i += 8)
            _mm_storeu_si128((__m128i *)(h + i), _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) {
        if (yt == MT_BF16) h[i] = mt_f32_to_bf16(x[i]);
        else if (yt == MT_F16) h[i] = mt_f32_to_f16(x[i]);
        else ((float *)y)[i] = x[i];
    }
}

const mt_cpu_isa mt_cpu_isa_avx2 = {
    .name = "avx2",
    .mr = 6,
    .nr = 16,
    .gemv_m = 4,
    .pair_lanes = 8,
    .pack_pairs = mt_avx2_pack_pairs,
    .gemv_pairs = mt_avx2_gemv_pairs,
    .ukr = mt_avx2_ukr,
    .pack_b = mt_avx2_pack_b,
    .gemv = mt_avx2_gemv,
    .gemv_q = mt_avx2_gemv_q,
    .quant_act = mt_avx2_quant_act,
    .dequant = mt_avx2_dequant,
    .gemv_q_vnni = mt_avxvnni_gemv_q,
    .dot = mt_avx2_dot,
    .axpy = mt_avx2_axpy,
    .scale = mt_avx2_scale,
    .max = vmax,
    .exp_sum = exp_sum,
    .sumsq = mt_avx2_sumsq,
    .mul_w = mt_avx2_mul_w,
    .silu = mt_avx2_silu,
    .sigmoid = mt_avx2_sigmoid,
    .swiglu = mt_avx2_swiglu,
    .gelu_erf = mt_avx2_gelu_erf,
    .gelu_tanh = mt_avx2_gelu_tanh,
    .to_f32 = mt_avx2_to_f32,
    .from_f32 = mt_avx2_from_f32,
    .fma_loop = mt_avx2_fma_loop,
    .bf16_loop = NULL,
    .read_sum = mt_avx2_read_sum,
};
#endif
