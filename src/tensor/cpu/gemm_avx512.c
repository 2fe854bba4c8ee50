/* tensor/cpu: AVX-512 (F/BW/VL/DQ) GEMM pieces and the AVX-512 kernel table. The same structure as gemm_avx2.c
 * with 16-lane registers; row helpers that are bound by memory reuse the AVX2 versions.
 *
 *   | piece  | registers                                   | per k step                              |
 *   |--------|---------------------------------------------|-----------------------------------------|
 *   | ukr    | 16 zmm accumulators C[8][2x16]              | 2 B loads, 8 broadcasts, 16 FMA         |
 *   | pack_b | W rows k-contiguous: 8x8 ymm transposes     | 8 rows x 8 k per step                   |
 *   | gemv   | MM (1..4) A rows x NW (4 or 2) W rows       | MM*NW FMA per 16 k, W read once         |
 */
#if defined(__x86_64__) || defined(__i386__)
#include "tensor/cpu/simd_avx2.h"

enum { MR = 8, NR = 32 };

double mt_avx512_bf16_loop(int64_t iters, float *out);
void mt_avx512bf16_ukr(int64_t kp, const uint16_t *a, int64_t rsa, const uint16_t *b, float *c, int64_t ldc,
                       bool load_c);
void mt_avx512bf16_pack_b(int64_t kc, int64_t nc, const uint16_t *src, int64_t ld, uint16_t *dst);
void mt_avx512bf16_pack_b_r8(int64_t kc, int64_t nc, const void *w, size_t wrow, mt_dtype wt, uint16_t *dst);
void mt_avx512bf16_round(int64_t n, const float *x, uint16_t *y);
void mt_avx512bf16_pack_rows(int64_t kc, int64_t nc, const void *src, mt_dtype dt, int64_t rs, uint16_t *dst);
void mt_avx512bf16_rows(int64_t m, int64_t n, int64_t k, const uint16_t *a, int64_t lda, const uint16_t *w,
                        int64_t ldw, const float *bias, float *c, int64_t ldc, bool acc);

#define ROW(i)                                     \
    t = _mm512_set1_ps(a##i[k]);                   \
    c##i##0 = _mm512_fmadd_ps(t, b0, c##i##0);     \
    c##i##1 = _mm512_fmadd_ps(t, b1, c##i##1)

#define STORE(i)                                                                          \
    if (load_c) {                                                                         \
        c##i##0 = _mm512_add_ps(c##i##0, _mm512_loadu_ps(c + (i)*ldc));                   \
        c##i##1 = _mm512_add_ps(c##i##1, _mm512_loadu_ps(c + (i)*ldc + 16));              \
    }                                                                                     \
    _mm512_storeu_ps(c + (i)*ldc, c##i##0);                                               \
    _mm512_storeu_ps(c + (i)*ldc + 16, c##i##1)

static void ukr(int64_t kc, const float *a, int64_t rsa, const float *b, float *c, int64_t ldc, bool load_c) {
    __m512 c00 = _mm512_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
    __m512 c40 = c00, c41 = c00, c50 = c00, c51 = c00, c60 = c00, c61 = c00, c70 = c00, c71 = c00;
    const float *a0 = a, *a1 = a + rsa, *a2 = a + 2 * rsa, *a3 = a + 3 * rsa;
    const float *a4 = a + 4 * rsa, *a5 = a + 5 * rsa, *a6 = a + 6 * rsa, *a7 = a + 7 * rsa;
    /* C is read after the k loop; between K blocks the tiles of a task's whole C range pass, which can be more than L2
     * holds, so its lines are asked for now, to arrive while the loop runs */
    if (load_c)
        for (int i = 0; i < MR; i++) {
            _mm_prefetch((const char *)(c + i * ldc), _MM_HINT_T0);
            _mm_prefetch((const char *)(c + i * ldc + 16), _MM_HINT_T0);
        }
    for (int64_t k = 0; k < kc; k++, b += NR) {
        __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16), t;
        ROW(0);
        ROW(1);
        ROW(2);
        ROW(3);
        ROW(4);
        ROW(5);
        ROW(6);
        ROW(7);
    }
    STORE(0);
    STORE(1);
    STORE(2);
    STORE(3);
    STORE(4);
    STORE(5);
    STORE(6);
    STORE(7);
}

MT_INLINE __m512 load16(const void *p, mt_dtype dt, int64_t i) {
    if (dt == MT_BF16) {
        __m256i h = _mm256_loadu_si256((const __m256i *)((const uint16_t *)p + i));
        return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    }
    if (dt == MT_F16) return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)((const uint16_t *)p + i)));
    return _mm512_loadu_ps((const float *)p + i);
}

/* load16 of the lanes in m only (the others zero and not read). */
MT_INLINE __m512 load16_masked(const void *p, mt_dtype dt, int64_t i, __mmask16 m) {
    if (dt == MT_BF16) {
        __m256i h = _mm256_maskz_loadu_epi16(m, (const uint16_t *)p + i);
        return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    }
    if (dt == MT_F16) return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, (const uint16_t *)p + i));
    return _mm512_maskz_loadu_ps(m, (const float *)p + i);
}

static void pack_b(int64_t kc, int64_t nc, const void *src, mt_dtype dt, int64_t rs, int64_t cs, float *dst) {
    size_t es = mt_dtype_size(dt);
    for (int64_t p = 0; p * NR < nc; p++) {
        int64_t n0 = p * NR, w = MT_MIN((int64_t)NR, nc - n0);
        const void *s = (const char *)src + (size_t)(n0 * cs) * es;
        float *d = dst + p * kc * NR;
        if (w == NR && rs == 1) {
            if (dt == MT_BF16) pack_panel_t8(4, NR, kc, s, MT_BF16, cs, d);
            else if (dt == MT_F16) pack_panel_t8(4, NR, kc, s, MT_F16, cs, d);
            else pack_panel_t8(4, NR, kc, s, MT_F32, cs, d);
        } else if (cs == 1) { /* rows of B contiguous (attention's V): lanes past w stay zero */
            __mmask16 m0 = mt_lanes16(w), m1 = mt_lanes16(w - 16);
            for (int64_t k = 0; k < kc; k++) {
                _mm512_store_ps(d + k * NR, load16_masked(s, dt, k * rs, m0));
                _mm512_store_ps(d + k * NR + 16, load16_masked(s, dt, k * rs + 16, m1));
            }
        } else {
            mt_cpu_pack_b_generic(NR, kc, w, s, dt, rs, cs, d);
        }
    }
}

/* Prefetch ahead of the W stream: the hardware prefetchers stop at 4 KiB pages (file-mapped weights), and a tile's
 * rows are as many streams. A tile up to PF_TILE_BYTES prefetches the next tile at the same offset, one tile ahead;
 * a larger one (K = 11008 rows are 22 KB) would fetch lines so far ahead that L1 drops them before use, so it
 * prefetches each row PF_ROW_BYTES ahead instead (past a row's end, that is the next row: W rows are adjacent).
 *
 * Two or more rows of f32 A are more than L1 holds once K passes A_L1_BYTES / (4 MM) (64 KB at M = 8, K = 2048;
 * 176 KB at M = 4, K = 11008), and every step would reload them from L2. Those run in K blocks of KB: the A block
 * stays in L1 while every tile of an L2-sized slice of W (SLICE_BYTES) takes its partial sums, added into C block
 * after block. One row (44 KB at K = 11008) measured 10% slower blocked: it streams W rows whole instead. */
enum { PF_TILE_BYTES = 16 << 10, PF_ROW_BYTES = 2048, A_L1_BYTES = 32 << 10, KB = 1024, SLICE_BYTES = 256 << 10 };

/* C[i, r] (+)= A_i[k0:k1] . W_r[k0:k1] for MM rows of A and NW rows of W; a and w point at column 0. */
MT_INLINE void gemv_tile(int MM, int NW, mt_dtype wt, int64_t k0, int64_t k1, bool pf_next, const float *a,
                         int64_t lda, const void *w, int64_t ldw, const float *bias, float *c, int64_t ldc, bool acc) {
    __m512 s[8][4];
    #pragma GCC unroll 32
    for (int i = 0; i < MM; i++)
        #pragma GCC unroll 32
        for (int r = 0; r < NW; r++) s[i][r] = _mm512_setzero_ps();
    size_t es = mt_dtype_size(wt);
    uintptr_t pf = pf_next ? (uintptr_t)w + (uintptr_t)(NW * ldw) * es : (uintptr_t)w + PF_ROW_BYTES;
    int64_t x = k0;
    for (; x + 16 <= k1; x += 16) {
        if ((x * (int64_t)es) % 64 == 0) {
            #pragma GCC unroll 32
            for (int r = 0; r < NW; r++)
                _mm_prefetch((const char *)(pf + (uintptr_t)(r * ldw + x) * es), _MM_HINT_T0);
        }
        /* each W vector is loaded (and widened) once, each A vector once per step */
        __m512 wv[4];
        #pragma GCC unroll 32
        for (int r = 0; r < NW; r++) wv[r] = load16(w, wt, r * ldw + x);
        #pragma GCC unroll 32
        for (int i = 0; i < MM; i++) {
            __m512 av = _mm512_loadu_ps(a + i * lda + x);
            #pragma GCC unroll 32
            for (int r = 0; r < NW; r++) s[i][r] = _mm512_fmadd_ps(av, wv[r], s[i][r]);
        }
    }
    #pragma GCC unroll 32
    for (int i = 0; i < MM; i++)
        #pragma GCC unroll 32
        for (int r = 0; r < NW; r++) {
            float t = _mm512_reduce_add_ps(s[i][r]);
            for (int64_t y = x; y < k1; y++) t += a[i * lda + y] * mt_cpu_load(w, wt, r * ldw + y);
            if (bias) t += bias[r];
            c[i * ldc + r] = acc ? c[i * ldc + r] + t : t;
        }
}

/* W rows [0, n) over columns [k0, k1), NW at a time. */
MT_INLINE void gemv_span(int MM, int NW, mt_dtype wt, int64_t n, int64_t k0, int64_t k1, bool pf_next,
                         const float *a, int64_t lda, const void *w, int64_t ldw, const float *bias, float *c,
                         int64_t ldc, bool acc) {
    size_t es = mt_dtype_size(wt);
    int64_t j = 0;
    for (; j + NW <= n; j += NW)
        gemv_tile(MM, NW, wt, k0, k1, pf_next, a, lda, (const char *)w + (size_t)(j * ldw) * es, ldw,
                  bias ? bias + j : NULL, c + j, ldc, acc);
    for (; j < n; j++)
        gemv_tile(MM, 1, wt, k0, k1, pf_next, a, lda, (const char *)w + (size_t)(j * ldw) * es, ldw,
                  bias ? bias + j : NULL, c + j, ldc, acc);
}

/* W rows per tile: MM x NW accumulators, NW widened W vectors and one A vector fit the 32 zmm registers. */
MT_INLINE void gemv_rows(int MM, mt_dtype wt, int64_t n, int64_t k, const float *a, int64_t lda, const void *w,
                         int64_t ldw, const float *bias, float *c, int64_t ldc, bool acc) {
    const int NW = MM <= 2 ? 4 : MM <= 4 ? 2 : MM <= 6 ? 4 : 3;
    size_t es = mt_dtype_size(wt);
    if (MM == 1 || (size_t)(MM * k) * sizeof(float) <= A_L1_BYTES) {
        gemv_span(MM, NW, wt, n, 0, k, (size_t)(NW * ldw) * es <= PF_TILE_BYTES, a, lda, w, ldw, bias, c, ldc, acc);
        return;
    }
    /* blocked: the next tile is read right after this one, at the same columns */
    int64_t slice = MT_MAX((int64_t)NW, (int64_t)(SLICE_BYTES / ((size_t)k * es)) / NW * NW);
    for (int64_t s0 = 0; s0 < n; s0 += slice) {
        int64_t ns = MT_MIN(slice, n - s0);
        const char *ws = (const char *)w + (size_t)(s0 * ldw) * es;
        for (int64_t k0 = 0; k0 < k; k0 += KB)
            gemv_span(MM, NW, wt, ns, k0, MT_MIN(k, k0 + KB), true, a, lda, ws, ldw,
                      bias && k0 == 0 ? bias + s0 : NULL, c + s0, ldc, acc || k0 > 0);
    }
}

#define GEMV_WT(MM)                                                                         \
    do {                                                                                    \
        if (wt == MT_BF16) gemv_rows(MM, MT_BF16, n, k, a, lda, w, ldw, bias, c, ldc, acc); \
        else if (wt == MT_F16) gemv_rows(MM, MT_F16, n, k, a, lda, w, ldw, bias, c, ldc, acc); \
        else gemv_rows(MM, MT_F32, n, k, a, lda, w, ldw, bias, c, ldc, acc);               \
    } while (0)

static void gemv(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda, const void *w, mt_dtype wt,
                 int64_t ldw, const float *bias, float *c, int64_t ldc, bool acc) {
    switch (m) {
    case 1: GEMV_WT(1); break;
    case 2: GEMV_WT(2); break;
    case 3: GEMV_WT(3); break;
    case 4: GEMV_WT(4); break;
    case 5: GEMV_WT(5); break;
    case 6: GEMV_WT(6); break;
    case 7: GEMV_WT(7); break;
    case 8: GEMV_WT(8); break;
    default: mt_cpu_gemv_generic(m, n, k, a, lda, w, wt, ldw, bias, c, ldc, acc);
    }
}

/* 24 independent FMA chains of 16 lanes. */
static double fma_loop(int64_t iters, float *out) {
    __m512 v[24];
    #pragma GCC unroll 24
    for (int j = 0; j < 24; j++) v[j] = _mm512_set1_ps((float)j);
    __m512 m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
    for (int64_t it = 0; it < iters; it++)
        #pragma GCC unroll 24
        for (int j = 0; j < 24; j++) v[j] = _mm512_fmadd_ps(v[j], m, c);
    __m512 s = v[0];
    #pragma GCC unroll 24
    for (int j = 1; j < 24; j++) s = _mm512_add_ps(s, v[j]);
    *out = _mm512_reduce_add_ps(s);
    return 24.0 * 16 * 2 * (double)iters;
}

static double read_sum(int64_t n, const float *x, float *out) {
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        s0 = _mm512_add_ps(s0, _mm512_loadu_ps(x + i));
        s1 = _mm512_add_ps(s1, _mm512_loadu_ps(x + i + 16));
        s2 = _mm512_add_ps(s2, _mm512_loadu_ps(x + i + 32));
        s3 = _mm512_add_ps(s3, _mm512_loadu_ps(x + i + 48));
    }
    float t = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
    for (; i < n; i++) t += x[i];
    *out = t;
    return 4.0 * (double)n;
}

const mt_cpu_isa mt_cpu_isa_avx512 = {
    .name = "avx512", .mr = MR, .nr = NR, .ukr = ukr, .pack_b = pack_b, .gemv = gemv, .gemv_m = 8,
    .pair_lanes = 16, .pack_pairs = mt_avx512_pack_pairs, .gemv_pairs = mt_avx512_gemv_pairs,
    .ukr_bf16 = mt_avx512bf16_ukr, .pack_b_bf16 = mt_avx512bf16_pack_b,
    .pack_b_r8_bf16 = mt_avx512bf16_pack_b_r8, .round_bf16 = mt_avx512bf16_round,
    .pack_rows_bf16 = mt_avx512bf16_pack_rows, .rows_bf16 = mt_avx512bf16_rows,
    .gemv_q = mt_avx512_gemv_q, .quant_act = mt_avx512_quant_act, .dequant = mt_avx512_dequant, .gemv_q_vnni = mt_avx512vnni_gemv_q, .dot = mt_avx2_dot, .axpy = mt_avx2_axpy,
    .scale = mt_avx2_scale,
    .max = mt_avx512_max, .exp_sum = mt_avx512_exp_sum, .sumsq = mt_avx2_sumsq, .mul_w = mt_avx2_mul_w,
    .silu = mt_avx2_silu, .sigmoid = mt_avx2_sigmoid, .swiglu = mt_avx2_swiglu, .gelu_erf = mt_avx2_gelu_erf,
    .gelu_tanh = mt_avx2_gelu_tanh, .to_f32 = mt_avx2_to_f32, .from_f32 = mt_avx2_from_f32, .fma_loop = fma_loop,
    .bf16_loop = mt_avx512_bf16_loop, .read_sum = read_sum,
};
#endif
