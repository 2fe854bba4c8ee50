/* tensor/cpu: AVX2 + FMA GEMM pieces - the 6x16 micro-kernel, B-panel packing with bf16/f16 -> f32 conversion, the
 * small-M GEMV that streams W once, and the roofline loops. Layouts as in cpu_int.h.
 *
 *   | piece  | registers                                   | per k step                              |
 *   |--------|---------------------------------------------|-----------------------------------------|
 *   | ukr    | 12 ymm accumulators C[6][2x8]               | 2 B loads, 6 broadcasts, 12 FMA         |
 *   | pack_b | W rows k-contiguous: 8x8 transposes         | 8 rows x 8 k per step                   |
 *   | gemv   | MM (1..4) A rows x NW (4 or 2) W rows       | MM*NW FMA per 8 k, W read once          |
 */
#if defined(__x86_64__) || defined(__i386__)
#include "tensor/cpu/simd_avx2.h"

enum { MR = 6, NR = 16 };

void mt_avx2_ukr(int64_t kc, const float *a, int64_t rsa, const float *b, float *c, int64_t ldc, bool load_c);
void mt_avx2_pack_b(int64_t kc, int64_t nc, const void *src, mt_dtype dt, int64_t rs, int64_t cs, float *dst);
void mt_avx2_gemv(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda, const void *w, mt_dtype wt,
                  int64_t ldw, const float *bias, float *c, int64_t ldc, bool acc);
double mt_avx2_fma_loop(int64_t iters, float *out);

void mt_avx2_ukr(int64_t kc, const float *a, int64_t rsa, const float *b, float *c, int64_t ldc, bool load_c) {
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    const float *a0 = a, *a1 = a + rsa, *a2 = a + 2 * rsa, *a3 = a + 3 * rsa, *a4 = a + 4 * rsa, *a5 = a + 5 * rsa;
    for (int64_t k = 0; k < kc; k++, b += NR) {
        __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8), t;
        t = _mm256_broadcast_ss(a0 + k);
        c00 = _mm256_fmadd_ps(t, b0, c00);
        c01 = _mm256_fmadd_ps(t, b1, c01);
        t = _mm256_broadcast_ss(a1 + k);
        c10 = _mm256_fmadd_ps(t, b0, c10);
        c11 = _mm256_fmadd_ps(t, b1, c11);
        t = _mm256_broadcast_ss(a2 + k);
        c20 = _mm256_fmadd_ps(t, b0, c20);
        c21 = _mm256_fmadd_ps(t, b1, c21);
        t = _mm256_broadcast_ss(a3 + k);
        c30 = _mm256_fmadd_ps(t, b0, c30);
        c31 = _mm256_fmadd_ps(t, b1, c31);
        t = _mm256_broadcast_ss(a4 + k);
        c40 = _mm256_fmadd_ps(t, b0, c40);
        c41 = _mm256_fmadd_ps(t, b1, c41);
        t = _mm256_broadcast_ss(a5 + k);
        c50 = _mm256_fmadd_ps(t, b0, c50);
        c51 = _mm256_fmadd_ps(t, b1, c51);
    }
    __m256 r[MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
    for (int i = 0; i < MR; i++) {
        float *ci = c + i * ldc;
        if (load_c) {
            r[i][0] = _mm256_add_ps(r[i][0], _mm256_loadu_ps(ci));
            r[i][1] = _mm256_add_ps(r[i][1], _mm256_loadu_ps(ci + 8));
        }
        _mm256_storeu_ps(ci, r[i][0]);
        _mm256_storeu_ps(ci + 8, r[i][1]);
    }
}

void mt_avx2_pack_b(int64_t kc, int64_t nc, const void *src, mt_dtype dt, int64_t rs, int64_t cs, float *dst) {
    size_t es = mt_dtype_size(dt);
    for (int64_t p = 0; p * NR < nc; p++) {
        int64_t n0 = p * NR, w = MT_MIN((int64_t)NR, nc - n0);
        const void *s = (const char *)src + (size_t)(n0 * cs) * es;
        float *d = dst + p * kc * NR;
        if (w == NR && rs == 1) {
            if (dt == MT_BF16) pack_panel_t8(2, NR, kc, s, MT_BF16, cs, d);
            else if (dt == MT_F16) pack_panel_t8(2, NR, kc, s, MT_F16, cs, d);
            else pack_panel_t8(2, NR, kc, s, MT_F32, cs, d);
        } else if (w == NR && cs == 1) {
            for (int64_t k = 0; k < kc; k++) {
                _mm256_store_ps(d + k * NR, load8(s, dt, k * rs));
                _mm256_store_ps(d + k * NR + 8, load8(s, dt, k * rs + 8));
            }
        } else {
            mt_cpu_pack_b_generic(NR, kc, w, s, dt, rs, cs, d);
        }
    }
}

/* MM rows of A against NW rows of W; everything constant-folds per instantiation. */
MT_INLINE void gemv_tile(int MM, int NW, mt_dtype wt, int64_t k, const float *a, int64_t lda, const void *w,
                         int64_t ldw, const float *bias, float *c, int64_t ldc, bool acc) {
    __m256 s[4][4];
    #pragma GCC unroll 24
    for (int i = 0; i < MM; i++)
        #pragma GCC unroll 24
        for (int r = 0; r < NW; r++) s[i][r] = _mm256_setzero_ps();
    /* The next tile's rows are fetched alongside this one's: weights mapped from a file sit in 4 KiB pages, where
     * the hardware prefetcher stops at every page boundary, so streaming ahead in software keeps DRAM busy. */
    size_t es = mt_dtype_size(wt);
    uintptr_t next = (uintptr_t)w + (uintptr_t)(NW * ldw) * es;
    int64_t x = 0;
    for (; x + 8 <= k; x += 8) {
        if ((x * (int64_t)es) % 64 == 0) {
            #pragma GCC unroll 24
            for (int r = 0; r < NW; r++)
                _mm_prefetch((const char *)(next + (uintptr_t)(r * ldw + x) * es), _MM_HINT_T0);
        }
        __m256 av[4];
        #pragma GCC unroll 24
        for (int i = 0; i < MM; i++) av[i] = _mm256_loadu_ps(a + i * lda + x);
        #pragma GCC unroll 24
        for (int r = 0; r < NW; r++) {
            __m256 wv = load8(w, wt, r * ldw + x);
            #pragma GCC unroll 24
            for (int i = 0; i < MM; i++) s[i][r] = _mm256_fmadd_ps(av[i], wv, s[i][r]);
        }
    }
    #pragma GCC unroll 24
    for (int i = 0; i < MM; i++)
        #pragma GCC unroll 24
        for (int r = 0; r < NW; r++) {
            float t = hsum8(s[i][r]);
            for (int64_t y = x; y < k; y++) t += a[i * lda + y] * mt_cpu_load(w, wt, r * ldw + y);
            if (bias) t += bias[r];
            c[i * ldc + r] = acc ? c[i * ldc + r] + t : t;
        }
}

MT_INLINE void gemv_rows(int MM, mt_dtype wt, int64_t n, int64_t k, const float *a, int64_t lda, const void *w,
                         int64_t ldw, const float *bias, float *c, int64_t ldc, bool acc) {
    const int NW = MM <= 2 ? 4 : 2;
    size_t es = mt_dtype_size(wt);
    int64_t j = 0;
    for (; j + NW <= n; j += NW)
        gemv_tile(MM, NW, wt, k, a, lda, (const char *)w + (size_t)(j * ldw) * es, ldw, bias ? bias + j : NULL, c + j,
                  ldc, acc);
    for (; j < n; j++)
        gemv_tile(MM, 1, wt, k, a, lda, (const char *)w + (size_t)(j * ldw) * es, ldw, bias ? bias + j : NULL, c + j,
                  ldc, acc);
}

#define GEMV_WT(MM)                                                                      \
    do {                                                                                 \
        if (wt == MT_BF16) gemv_rows(MM, MT_BF16, n, k, a, lda, w, ldw, bias, c, ldc, acc); \
        else if (wt == MT_F16) gemv_rows(MM, MT_F16, n, k, a, lda, w, ldw, bias, c, ldc, acc); \
        else gemv_rows(MM, MT_F32, n, k, a, lda, w, ldw, bias, c, ldc, acc);            \
    } while (0)

void mt_avx2_gemv(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda, const void *w, mt_dtype wt,
                  int64_t ldw, const float *bias, float *c, int64_t ldc, bool acc) {
    switch (m) {
    case 1: GEMV_WT(1); break;
    case 2: GEMV_WT(2); break;
    case 3: GEMV_WT(3); break;
    case 4: GEMV_WT(4); break;
    default: mt_cpu_gemv_generic(m, n, k, a, lda, w, wt, ldw, bias, c, ldc, acc);
    }
}

/* 12 independent FMA chains: enough to cover 4-cycle latency on two FMA ports. */
double mt_avx2_fma_loop(int64_t iters, float *out) {
    __m256 v[12];
    #pragma GCC unroll 24
    for (int j = 0; j < 12; j++) v[j] = _mm256_set1_ps((float)j);
    __m256 m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
    for (int64_t it = 0; it < iters; it++)
        #pragma GCC unroll 24
        for (int j = 0; j < 12; j++) v[j] = _mm256_fmadd_ps(v[j], m, c);
    __m256 s = v[0];
    #pragma GCC unroll 24
    for (int j = 1; j < 12; j++) s = _mm256_add_ps(s, v[j]);
    *out = hsum8(s);
    return 12.0 * 8 * 2 * (double)iters;
}

double mt_avx2_read_sum(int64_t n, const float *x, float *out) {
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm256_add_ps(s0, _mm256_loadu_ps(x + i));
        s1 = _mm256_add_ps(s1, _mm256_loadu_ps(x + i + 8));
        s2 = _mm256_add_ps(s2, _mm256_loadu_ps(x + i + 16));
        s3 = _mm256_add_ps(s3, _mm256_loadu_ps(x + i + 24));
    }
    float t = hsum8(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    for (; i < n; i++) t += x[i];
    *out = t;
    return 4.0 * (double)n;
}
#endif
