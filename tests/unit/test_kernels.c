/* tensor/cpu kernels: GEMM (linear, strided matmul) and row helpers on every path this CPU has (cpu_paths.h): scalar,
 * avx2 and avx512 run every check, avx512-bf16 the GEMV it swaps in.
 *
 * References: a naive double-precision loop (and libm in double) that shares no code with the kernels; the scalar
 * level is checked against it, every SIMD level against both. Tolerances, relative to the magnitude of the sum:
 *
 *   | check                    | bound                                                             |
 *   |--------------------------|-------------------------------------------------------------------|
 *   | GEMM entry               | |c - ref| <= 1.2e-7 (K + 4) sum_k |a w| + 1e-7 (|bias| + |c0|)   |
 *   | bf16 dot GEMV            | as GEMM, against a reference with A rounded to bf16               |
 *   | bf16 dot, f16 W, M > 16  | as GEMM, against a reference with A and W rounded to bf16         |
 *   | exp                      | 5e-7 relative                                                     |
 *   | silu, gelu (erf, tanh)   | 5e-7 (1 + |x|) absolute                                           |
 *   | sigmoid                  | 5e-7 relative                                                     |
 *   | softmax, rmsnorm, dot    | 1e-6 relative to the largest term                                 |
 *   | bf16 / f16 conversion    | bit-exact with tensor/dtype.h, NaN stays NaN                      |
 */
#include <math.h>
#include <string.h>

#include "check.h"
#include "cpu_paths.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static float frand(void) { /* uniform in [-1, 1) */
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((double)(rng >> 40) / (double)(1ull << 23) - 1.0);
}

static float *fvec(int64_t n, float scale) {
    float *p = mt_malloc_array((size_t)MT_MAX(n, 1), sizeof(float));
    for (int64_t i = 0; i < n; i++) p[i] = frand() * scale;
    return p;
}

static float wload(const void *w, mt_dtype wt, int64_t i) {
    if (wt == MT_BF16) return mt_bf16_to_f32(((const uint16_t *)w)[i]);
    if (wt == MT_F16) return mt_f16_to_f32(((const uint16_t *)w)[i]);
    return ((const float *)w)[i];
}

/* W [N][ldw] of dtype wt with values in [-1, 1). */
static void *wmake(int64_t N, int64_t ldw, mt_dtype wt) {
    size_t es = mt_dtype_size(wt);
    uint8_t *w = mt_malloc_array((size_t)MT_MAX(N * ldw, 1), es);
    for (int64_t i = 0; i < N * ldw; i++) {
        float v = frand();
        if (wt == MT_F32) ((float *)w)[i] = v;
        else ((uint16_t *)w)[i] = wt == MT_BF16 ? mt_f32_to_bf16(v) : mt_f32_to_f16(v);
    }
    return w;
}

typedef struct gcase {
    int64_t M, N, K, lda, ldw, ldc;
    mt_dtype wt;
    bool bias, acc;
} gcase;

static int gemm_fail_shown;

/* Compares C (after the call) with the double reference computed from A, W, bias and C0 (C before). */
static bool gemm_close(const gcase *g, const float *A, const void *W, const float *bias, const float *C0,
                       const float *C, const char *what) {
    bool ok = true;
    for (int64_t m = 0; m < g->M; m++)
        for (int64_t n = 0; n < g->N; n++) {
            double s = 0, mag = 0;
            for (int64_t k = 0; k < g->K; k++) {
                double p = (double)A[m * g->lda + k] * wload(W, g->wt, n * g->ldw + k);
                s += p;
                mag += fabs(p);
            }
            double extra = 0;
            if (bias) s += bias[n], extra += fabs(bias[n]);
            if (g->acc) s += C0[m * g->ldc + n], extra += fabs(C0[m * g->ldc + n]);
            double tol = 1.2e-7 * (double)(g->K + 4) * mag + 1e-7 * extra + 1e-30;
            double e = fabs(C[m * g->ldc + n] - s);
            if (!(e <= tol)) {
                if (gemm_fail_shown++ < 5)
                    fprintf(stderr, "%s: M=%lld N=%lld K=%lld wt=%s bias=%d acc=%d: C[%lld,%lld] = %.9g, ref %.9g\n",
                            what, (long long)g->M, (long long)g->N, (long long)g->K, mt_dtype_name(g->wt), g->bias,
                            g->acc, (long long)m, (long long)n, C[m * g->ldc + n], s);
                ok = false;
            }
        }
    return ok;
}

static void run_linear_case(const gcase *g, mt_pool *pool, const char *level) {
    float *A = fvec(g->M * g->lda, 1.0f);
    void *W = wmake(g->N, g->ldw, g->wt);
    float *bias = g->bias ? fvec(g->N, 1.0f) : NULL;
    float *C0 = fvec(g->M * g->ldc, 1.0f);
    float *C = mt_malloc_array((size_t)MT_MAX(g->M * g->ldc, 1), sizeof(float));
    memcpy(C, C0, sizeof(float) * (size_t)(g->M * g->ldc));
    mt_cpu_linear(pool, g->M, g->N, g->K, A, g->lda, W, g->wt, g->ldw, bias, C, g->ldc, g->acc);
    CHECK_MSG(gemm_close(g, A, W, bias, C0, C, level), "linear at %s", level);
    /* padding between rows of C stays untouched */
    bool pad_ok = true;
    for (int64_t m = 0; m < g->M; m++)
        for (int64_t n = g->N; n < g->ldc; n++) pad_ok &= C[m * g->ldc + n] == C0[m * g->ldc + n];
    CHECK_MSG(pad_ok, "linear at %s wrote into the row padding of C", level);
    mt_free(A), mt_free(W), mt_free(bias), mt_free(C0), mt_free(C);
}

static void test_linear(mt_pool *pool3, const char *level) {
    static const int64_t Ms[] = {1, 2, 3, 4, 5, 6, 7, 8, 17, 65, 129};
    static const int64_t Ns[] = {1, 3, 17, 65, 129};
    static const int64_t Ks[] = {1, 3, 17, 65, 129, 300};
    int idx = 0;
    for (size_t a = 0; a < MT_ARRAY_LEN(Ms); a++)
        for (size_t b = 0; b < MT_ARRAY_LEN(Ns); b++)
            for (size_t c = 0; c < MT_ARRAY_LEN(Ks); c++, idx++) {
                if (Ms[a] * Ns[b] * Ks[c] > 129 * 129 * 65 && idx % 3) continue; /* keep the run short */
                gcase g = {.M = Ms[a], .N = Ns[b], .K = Ks[c], .wt = (mt_dtype)(idx % 3), .bias = idx % 2,
                           .acc = (idx / 2) % 2};
                g.lda = g.K + (idx % 5 == 0 ? 3 : 0);
                g.ldw = g.K + (idx % 7 == 0 ? 5 : 0);
                g.ldc = g.N + (idx % 4 == 1 ? 2 : 0);
                run_linear_case(&g, (idx / 4) % 2 ? pool3 : NULL, level);
            }
    /* 5 to 8 rows (a batch of decoding sequences) over a W of several L2 slices: the GEMV path in slices */
    for (int f = 0; f < 6; f++) {
        gcase g = {.M = 5 + f % 4, .N = 300 + 37 * f, .K = 2500 - 300 * f, .wt = (mt_dtype)(f % 3), .bias = f % 2,
                   .acc = f / 3};
        g.lda = g.K + f % 2, g.ldw = g.K + 1, g.ldc = g.N + 2;
        run_linear_case(&g, f % 2 ? pool3 : NULL, level);
    }
    /* 2 to 4 rows whose A is larger than L1 (the AVX-512 GEMV then runs in K blocks), K not a multiple of 16 */
    for (int f = 0; f < 3; f++) {
        gcase g = {.M = 2 + f, .N = 37 + 10 * f, .K = 4500 - 800 * f + 3, .wt = (mt_dtype)(f % 3), .bias = f != 1,
                   .acc = f == 1};
        g.lda = g.K + 2, g.ldw = g.K + f, g.ldc = g.N + 1;
        run_linear_case(&g, f % 2 ? NULL : pool3, level);
    }
    /* 2 to 16 rows (batched decode): bf16 W takes the pairs kernel where the level has one (A packed in blocks of
     * 32 or 16 k: K off the block, below one block, and long enough for K blocks; N off every tile width; 9-16 rows
     * in two passes over slices of W), f32 and f16 W the plain GEMV in slices */
    static const int64_t bKs[] = {1, 31, 33, 100, 2049, 4500};
    for (int64_t M = 2; M <= 16; M++)
        for (size_t c = 0; c < MT_ARRAY_LEN(bKs); c++) {
            int f = (int)(M * 7 + (int64_t)c);
            gcase g = {.M = M, .N = bKs[c] > 2000 ? 37 + 5 * (M % 4) : 131 + M, .K = bKs[c],
                       .wt = f % 5 == 0 ? (mt_dtype)(f % 2 ? MT_F32 : MT_F16) : MT_BF16, .bias = f % 2,
                       .acc = (f / 2) % 2};
            g.lda = g.K + (f % 3 == 0 ? 3 : 0), g.ldw = g.K + (f % 4 == 0 ? 5 : 0), g.ldc = g.N + (f % 3 == 1);
            run_linear_case(&g, f % 2 ? pool3 : NULL, level);
        }
    for (int f = 0; f < 4; f++) { /* 16 rows over a W of several L2 slices */
        gcase g = {.M = 13 + f, .N = 300 + 41 * f, .K = 2500 - 500 * f, .wt = MT_BF16, .bias = f % 2, .acc = f / 2};
        g.lda = g.K + f % 2, g.ldw = g.K + 1, g.ldc = g.N + 2;
        run_linear_case(&g, f % 2 ? pool3 : NULL, level);
    }
    /* every flag combination on two shapes (GEMV and GEMM path) */
    for (int f = 0; f < 24; f++) {
        gcase g = {.M = f < 12 ? 3 : 70, .N = 45, .K = 270, .wt = (mt_dtype)(f % 3), .bias = (f / 3) % 2,
                   .acc = (f / 6) % 2};
        g.lda = g.K + 1, g.ldw = g.K + 2, g.ldc = g.N + 3;
        run_linear_case(&g, f % 2 ? pool3 : NULL, level);
    }
    /* K = 0 leaves bias (or C) */
    float C[6] = {1, 2, 3, 4, 5, 6}, bias[3] = {10, 20, 30};
    mt_cpu_linear(NULL, 2, 3, 0, NULL, 0, NULL, MT_F32, 0, bias, C, 3, true);
    CHECK(C[0] == 11 && C[5] == 36);
    mt_cpu_linear(NULL, 2, 3, 0, NULL, 0, NULL, MT_F32, 0, NULL, C, 3, false);
    CHECK(C[0] == 0 && C[5] == 0);
}

/* C = op(A) . op(B) through arbitrary strides, against the double loop. */
static void test_matmul(mt_pool *pool3, const char *level) {
    static const int64_t shapes[][3] = {{1, 17, 33},   {4, 9, 300}, {5, 1, 7},
                                        {17, 65, 129}, {65, 40, 3}, {130, 33, 257}};
    for (size_t s = 0; s < MT_ARRAY_LEN(shapes); s++)
        for (int form = 0; form < 4; form++) {
            int64_t M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
            bool ta = form & 1, tb = form & 2;
            float *A = fvec(M * K * 2, 1.0f), *B = fvec(K * N * 2, 1.0f);
            /* A: [M][K] row-major or stored as [K][M]; B: [K][N] row-major, or [N][K] with a column stride of 2 */
            int64_t rsa = ta ? 1 : K, csa = ta ? M : 1;
            int64_t rsb = tb ? 2 : N, csb = tb ? 2 * K : 1;
            int64_t ldc = N + 1;
            float *C = fvec(M * ldc, 1.0f), *C0 = mt_malloc_array((size_t)(M * ldc), sizeof(float));
            memcpy(C0, C, sizeof(float) * (size_t)(M * ldc));
            bool acc = s % 2;
            mt_cpu_matmul_f32(form % 2 ? pool3 : NULL, M, N, K, A, rsa, csa, B, rsb, csb, C, ldc, acc);
            bool ok = true;
            for (int64_t m = 0; m < M; m++)
                for (int64_t n = 0; n < N; n++) {
                    double r = acc ? C0[m * ldc + n] : 0, mag = fabs(r);
                    for (int64_t k = 0; k < K; k++) {
                        double p = (double)A[m * rsa + k * csa] * B[k * rsb + n * csb];
                        r += p, mag += fabs(p);
                    }
                    ok &= fabs(C[m * ldc + n] - r) <= 1.2e-7 * (double)(K + 4) * mag + 1e-30;
                }
            CHECK_MSG(ok, "matmul %lldx%lldx%lld form %d at %s", (long long)M, (long long)N, (long long)K, form, level);
            mt_free(A), mt_free(B), mt_free(C), mt_free(C0);
        }
}

/* Fast-path results equal the unblocked fallback taken when scratch cannot be allocated. */
static void test_no_scratch(void) {
    gcase g = {.M = 37, .N = 29, .K = 300, .lda = 300, .ldw = 300, .ldc = 29, .wt = MT_BF16, .bias = true};
    float *A = fvec(g.M * g.K, 1.0f), *bias = fvec(g.N, 1.0f), *C = fvec(g.M * g.N, 1.0f);
    void *W = wmake(g.N, g.K, g.wt);
    mt_cpu_scratch_release();
    mt_alloc_fail_after(1);
    mt_cpu_linear(NULL, g.M, g.N, g.K, A, g.lda, W, g.wt, g.ldw, bias, C, g.ldc, false);
    mt_alloc_fail_after(0);
    CHECK(gemm_close(&g, A, W, bias, NULL, C, "linear without scratch"));
    mt_free(A), mt_free(bias), mt_free(C), mt_free(W);
}

/* The vdpbf16ps path (entered by the caller): the GEMM (M > 16) against a reference with A rounded to bf16, and that
 * the instruction ran: on rows of A that bf16 cannot hold, the result differs from the f32 path's. The GEMV (decode,
 * M <= 16) stays on f32 FMAs (gemm.c says why): its sums are the f32 path's. */
static void test_bf16_dot(mt_pool *pool3) {
    enum { ROWS = 17 };
    float a[ROWS * 64], c16[ROWS * 5], c32[ROWS * 5], g16[2 * 5];
    uint16_t w[5 * 64];
    for (int i = 0; i < ROWS * 64; i++) a[i] = 1.0f + (float)(1 + i % 3) / 1024.0f; /* bf16 rounds each to 1 */
    for (int i = 0; i < 5 * 64; i++) w[i] = mt_f32_to_bf16(1.0f);
    mt_cpu_linear(pool3, ROWS, 5, 64, a, 64, w, MT_BF16, 64, NULL, c16, 5, false);
    mt_cpu_linear(NULL, 2, 5, 64, a, 64, w, MT_BF16, 64, NULL, g16, 5, false);
    CHECK(mt_cpu_set_bf16_dot(false) == false);
    mt_cpu_linear(pool3, ROWS, 5, 64, a, 64, w, MT_BF16, 64, NULL, c32, 5, false);
    CHECK(mt_cpu_set_bf16_dot(true));
    CHECK_MSG(c16[0] == 64.0f && c16[ROWS * 5 - 1] == 64.0f && c32[0] > 64.1f,
              "bf16 GEMM: %g (wanted 64, the sum of A rounded to bf16), f32 path %g", c16[0], c32[0]);
    CHECK_MSG(g16[0] == c32[0] && g16[9] == c32[9], "GEMV with bf16 dot on: %g, wanted the f32 path's %g", g16[0],
              c32[0]);
    /* the rounding of A for the micro-kernel: mt_f32_to_bf16's bits (ties to even, inf, NaN stays NaN) at every
     * length about the 32- and 16-wide steps, but subnormal inputs, which become (signed) zero */
    const mt_cpu_isa *isa = mt_cpu_isa_get();
    CHECK(isa->round_bf16 != NULL);
    for (int64_t n = 0; isa->round_bf16 && n <= 70; n++) {
        float x[70];
        uint16_t y[71];
        for (int64_t i = 0; i < n; i++) x[i] = (float)((i * 37) % 23 - 11) * (i % 4 ? 0.3712f : 1e-3f);
        if (n > 9) x[1] = NAN, x[2] = -INFINITY, x[3] = 1.00390625f, x[4] = 1.01171875f, x[5] = 1e-39f, x[6] = -0.0f;
        y[n] = 0xBEEF;
        isa->round_bf16(n, x, y);
        bool ok = y[n] == 0xBEEF;
        for (int64_t i = 0; i < n; i++) {
            uint16_t want = fabsf(x[i]) < 0x1p-126f ? (uint16_t)(signbit(x[i]) ? 0x8000 : 0) : mt_f32_to_bf16(x[i]);
            ok &= isnan(x[i]) ? isnan(mt_bf16_to_f32(y[i])) : y[i] == want;
        }
        CHECK_MSG(ok, "round_bf16 n=%lld: not mt_f32_to_bf16's bits, or wrote past n", (long long)n);
    }
    /* past M = 16 the GEMM's bf16 micro-kernel: odd K (a zero-padded last pair), K past one KC block (4096 bf16
     * values: C accumulated across blocks), M and N off the 8 x 32 tile; up to 16 the f32 GEMV; 17-32 rows up to
     * K = 4096 the rows kernel (W read in place: M off its 4-row groups, N off its 6-row tiles, K off 32). Every
     * other case takes f16 W, whose panels past 16 rows are rounded to bf16 (the reference rounds them too: at small
     * K a path that kept them f16 is off by more than the tolerance); 150 rows on one thread take 3 panels a task */
    static const int64_t Ms[] = {1, 2, 5, 8, 16, 17, 23, 32, 33, 150},
                         Ks[] = {1, 38, 75, 112, 149, 186, 257, 600, 1101, 4096, 4100};
    for (size_t mi = 0; mi < MT_ARRAY_LEN(Ms); mi++)
        for (size_t ki = 0; ki < MT_ARRAY_LEN(Ks); ki++) {
            int64_t M = Ms[mi], K = Ks[ki];
            if (M <= 16 && K > 200) continue;
            gcase g = {.M = M, .N = M == 150 ? 300 : M > 16 ? 97 : 67, .K = K, .lda = K + 1, .ldw = K + (M > 16),
                       .ldc = 304, .wt = (ki + mi) % 2 ? MT_F16 : MT_BF16, .bias = true, .acc = M % 2};
            float *A = fvec(M * g.lda, 1.0f), *Ar = mt_malloc_array((size_t)(M * g.lda), sizeof(float));
            for (int64_t i = 0; i < M * g.lda; i++) Ar[i] = M > 16 ? mt_bf16_to_f32(mt_f32_to_bf16(A[i])) : A[i];
            void *W = wmake(g.N, g.ldw, g.wt);
            gcase gr = g; /* the reference: W as the path multiplies it */
            uint16_t *Wr = mt_malloc_array((size_t)(g.N * g.ldw), sizeof(uint16_t));
            for (int64_t i = 0; i < g.N * g.ldw && g.wt == MT_F16 && M > 16; i++)
                Wr[i] = mt_f32_to_bf16(wload(W, MT_F16, i)), gr.wt = MT_BF16;
            float *bias = fvec(g.N, 1.0f), *C0 = fvec(M * g.ldc, 1.0f), *C = mt_malloc_array((size_t)(M * g.ldc), 4);
            memcpy(C, C0, sizeof(float) * (size_t)(M * g.ldc));
            mt_cpu_linear(M == 150 ? NULL : pool3, M, g.N, K, A, g.lda, W, g.wt, g.ldw, bias, C, g.ldc, g.acc);
            bool same_w = gr.wt == g.wt;
            CHECK(gemm_close(&gr, Ar, same_w ? W : Wr, bias, C0, C, same_w ? "bf16 dot" : "bf16 dot, f16 W"));
            mt_free(A), mt_free(Ar), mt_free(W), mt_free(Wr), mt_free(bias), mt_free(C0), mt_free(C);
        }
}

static void test_vec(const char *level) {
    static const int64_t lens[] = {1, 7, 8, 9, 31, 100, 1000};
    for (size_t li = 0; li < MT_ARRAY_LEN(lens); li++) {
        int64_t n = lens[li];
        float *x = fvec(n, 10.0f), *u = fvec(n, 1.0f), *y = fvec(n, 1.0f), *y0 = mt_malloc_array((size_t)n, 4);
        memcpy(y0, y, sizeof(float) * (size_t)n);
        double d = 0, mag = 0, ss = 0, mx = -INFINITY;
        for (int64_t i = 0; i < n; i++)
            d += (double)x[i] * u[i], mag += fabs((double)x[i] * u[i]), ss += (double)x[i] * x[i];
        for (int64_t i = 0; i < n; i++) mx = x[i] > mx ? x[i] : mx;
        CHECK_MSG(fabs(mt_cpu_dot(n, x, u) - d) <= 1e-6 * mag, "dot n=%lld at %s", (long long)n, level);
        CHECK_MSG(mt_cpu_max(n, x) == (float)mx, "max n=%lld at %s", (long long)n, level);
        bool ok = true;
        mt_cpu_axpy(n, 0.5f, x, y);
        for (int64_t i = 0; i < n; i++) ok &= fabs(y[i] - (y0[i] + 0.5 * x[i])) <= 1e-6 * (1 + fabs(x[i]));
        CHECK_MSG(ok, "axpy n=%lld at %s", (long long)n, level);
        memcpy(y, x, sizeof(float) * (size_t)n);
        mt_cpu_scale(n, 0.25f, y);
        ok = true;
        for (int64_t i = 0; i < n; i++) ok &= y[i] == x[i] * 0.25f;
        CHECK_MSG(ok, "scale n=%lld at %s", (long long)n, level);
        mt_cpu_exp(n, x, y);
        ok = true;
        for (int64_t i = 0; i < n; i++) ok &= fabs(y[i] - exp(x[i])) <= 5e-7 * exp(x[i]);
        CHECK_MSG(ok, "exp n=%lld at %s", (long long)n, level);
        double se = 0;
        for (int64_t i = 0; i < n; i++) se += exp(x[i] - mx);
        mt_cpu_softmax(n, x, y);
        ok = true;
        for (int64_t i = 0; i < n; i++) ok &= fabs(y[i] - exp(x[i] - mx) / se) <= 1e-6;
        CHECK_MSG(ok, "softmax n=%lld at %s", (long long)n, level);
        for (int wt = 0; wt < 2; wt++) {
            void *w = wmake(n, 1, wt ? MT_BF16 : MT_F32);
            mt_cpu_rmsnorm(n, x, w, wt ? MT_BF16 : MT_F32, 1e-6f, y);
            double r = 1.0 / sqrt(ss / (double)n + 1e-6);
            ok = true;
            for (int64_t i = 0; i < n; i++) {
                double ref = x[i] * r * wload(w, wt ? MT_BF16 : MT_F32, i);
                ok &= fabs(y[i] - ref) <= 1e-6 * (1 + fabs(x[i] * r));
            }
            CHECK_MSG(ok, "rmsnorm n=%lld wt=%d at %s", (long long)n, wt, level);
            mt_free(w);
        }
        mt_cpu_silu(n, x, y);
        ok = true;
        for (int64_t i = 0; i < n; i++) ok &= fabs(y[i] - x[i] / (1 + exp(-(double)x[i]))) <= 5e-7 * (1 + fabs(x[i]));
        CHECK_MSG(ok, "silu n=%lld at %s", (long long)n, level);
        mt_cpu_sigmoid(n, x, y);
        ok = true;
        for (int64_t i = 0; i < n; i++) {
            double ref = 1 / (1 + exp(-(double)x[i]));
            ok &= fabs(y[i] - ref) <= 5e-7 * ref;
        }
        CHECK_MSG(ok, "sigmoid n=%lld at %s", (long long)n, level);
        mt_cpu_swiglu(n, x, u, y);
        ok = true;
        for (int64_t i = 0; i < n; i++)
            ok &= fabs(y[i] - x[i] / (1 + exp(-(double)x[i])) * u[i]) <= 5e-7 * (1 + fabs(x[i]));
        CHECK_MSG(ok, "swiglu n=%lld at %s", (long long)n, level);
        mt_cpu_gelu_erf(n, x, y);
        ok = true;
        for (int64_t i = 0; i < n; i++)
            ok &= fabs(y[i] - 0.5 * x[i] * (1 + erf(x[i] / sqrt(2.0)))) <= 5e-7 * (1 + fabs(x[i]));
        CHECK_MSG(ok, "gelu_erf n=%lld at %s", (long long)n, level);
        mt_cpu_gelu_tanh(n, x, y);
        ok = true;
        for (int64_t i = 0; i < n; i++) {
            double v = x[i], ref = 0.5 * v * (1 + tanh(sqrt(2 / M_PI) * (v + 0.044715 * v * v * v)));
            ok &= fabs(y[i] - ref) <= 5e-7 * (1 + fabs(v));
        }
        CHECK_MSG(ok, "gelu_tanh n=%lld at %s", (long long)n, level);
        /* conversions: bit-exact with dtype.h, including subnormals and rounding ties */
        for (int dt = 1; dt <= 2; dt++) {
            uint16_t *h = mt_malloc_array((size_t)n, 2);
            float *z = mt_malloc_array((size_t)n, 4);
            for (int64_t i = 0; i < n; i++) z[i] = x[i] * (i % 3 == 0 ? 1e-6f : 1.0f);
            if (n > 8) z[3] = NAN, z[4] = INFINITY, z[5] = 1.00048828125f, z[6] = 6e-8f;
            mt_cpu_from_f32(n, z, h, (mt_dtype)dt);
            ok = true;
            for (int64_t i = 0; i < n; i++) {
                uint16_t r = dt == MT_BF16 ? mt_f32_to_bf16(z[i]) : mt_f32_to_f16(z[i]);
                ok &= isnan(z[i]) ? isnan(wload(h, (mt_dtype)dt, i)) : h[i] == r;
            }
            CHECK_MSG(ok, "from_f32 %s n=%lld at %s", mt_dtype_name((mt_dtype)dt), (long long)n, level);
            mt_cpu_to_f32(n, h, (mt_dtype)dt, y);
            ok = true;
            for (int64_t i = 0; i < n; i++) ok &= isnan(z[i]) ? isnan(y[i]) : y[i] == wload(h, (mt_dtype)dt, i);
            CHECK_MSG(ok, "to_f32 %s n=%lld at %s", mt_dtype_name((mt_dtype)dt), (long long)n, level);
            mt_free(h), mt_free(z);
        }
        mt_free(x), mt_free(u), mt_free(y), mt_free(y0);
    }
    /* edge values: exp under/overflow, a softmax row masked to -inf */
    float e[4] = {-200.0f, -INFINITY, 0.0f, 80.0f}, ye[4];
    mt_cpu_exp(4, e, ye);
    CHECK(ye[0] == 0.0f && ye[1] == 0.0f && ye[2] == 1.0f && fabs(ye[3] - expf(80.0f)) <= 1e-6 * expf(80.0f));
    float sm[3] = {-INFINITY, 1.0f, -INFINITY}, ys[3];
    mt_cpu_softmax(3, sm, ys);
    CHECK(ys[0] == 0.0f && ys[1] == 1.0f && ys[2] == 0.0f);
    float allm[2] = {-INFINITY, -INFINITY};
    mt_cpu_softmax(2, allm, ys);
    CHECK(ys[0] == 0.0f && ys[1] == 0.0f);
}

/* The avx512 softmax helpers (vec_avx512.c) claim the AVX2 helper's bits lane for lane: inputs across exp's whole
 * range and its clamps, row lengths on both sides of 16 and 32. */
static void test_exp_levels(void) {
    static const int64_t lens[] = {1, 15, 16, 17, 32, 33, 100};
    float x[100], y2[100], y5[100];
    for (int i = 0; i < 100; i++) x[i] = -120.0f + 2.1f * (float)i + 0.37f * (float)(i % 7);
    x[3] = -INFINITY, x[5] = NAN, x[8] = 88.5f, x[13] = -87.0f, x[21] = 0.0f;
    for (size_t li = 0; li < MT_ARRAY_LEN(lens); li++) {
        int64_t n = lens[li];
        float s2 = mt_cpu_isa_avx2.exp_sum(n, x, 1.5f, y2), s5 = mt_cpu_isa_avx512.exp_sum(n, x, 1.5f, y5);
        bool same = true;
        for (int64_t i = 0; i < n; i++) same &= isnan(y2[i]) ? isnan(y5[i]) : memcmp(&y2[i], &y5[i], 4) == 0;
        CHECK_MSG(same, "avx512 exp_sum differs from avx2 in a lane, n=%lld", (long long)n);
        CHECK_MSG(isnan(s2) ? isnan(s5) : fabs(s5 - s2) <= 1e-6 * fabs(s2), "exp_sum sums n=%lld: %g %g",
                  (long long)n, s2, s5);
        float xm[100];
        for (int64_t i = 0; i < n; i++) xm[i] = isnan(x[i]) ? 0.0f : x[i];
        CHECK_MSG(mt_cpu_isa_avx512.max(n, xm) == mt_cpu_isa_avx2.max(n, xm), "max n=%lld", (long long)n);
    }
}

int main(void) {
    mt_err err;
    mt_pool *pool3 = NULL;
    CHECK(mt_pool_new(3, &pool3, &err) == MT_OK);
    mt_cpu_level best = mt_cpu_detect();
    CHECK(mt_cpu_set_level(MT_CPU_AVX512) == best);
    CHECK(strcmp(mt_cpu_level_name(MT_CPU_AVX2), "avx2") == 0);
    for (int p = 0; p < CPU_PATHS; p++) {
        if (!cpu_path_enter(p, CPU_PATHS_ALL)) continue;
        if (p == CPU_PATH_AVX512_BF16) { /* it changes only linears of bf16 weights: the rest ran at avx512 */
            test_bf16_dot(pool3);
            continue;
        }
        test_linear(pool3, cpu_path_names[p]);
        test_matmul(pool3, cpu_path_names[p]);
        test_vec(cpu_path_names[p]);
    }
    cpu_path_leave();
    if (mt_cpu_detect() >= MT_CPU_AVX512) test_exp_levels();
    /* without the instructions, asking for the bf16 dot leaves it off */
    CHECK(mt_cpu_set_bf16_dot(true) == cpu_path_on_cpu(CPU_PATH_AVX512_BF16));
    /* auto: on exactly where the measured vdpbf16ps rate pays */
    mt_cpu_set_bf16_dot_mode(MT_BF16_DOT_AUTO);
    double ratio = mt_cpu_bf16_dot_ratio();
    bool has = cpu_path_on_cpu(CPU_PATH_AVX512_BF16);
    CHECK_MSG(has ? ratio > 0.05 && ratio < 20 : ratio == 0, "vdpbf16ps / FMA rate %g", ratio);
    CHECK(mt_cpu_bf16_dot_on() == (has && ratio >= MT_BF16_DOT_PAYS));
    fprintf(stderr, "bf16 dot products by default: %s (vdpbf16ps at %.2fx the f32 FMA rate)\n",
            mt_cpu_bf16_dot_on() ? "on" : "off", ratio);
    mt_cpu_set_bf16_dot(false);
    test_no_scratch();
    mt_pool_free(pool3);
    mt_cpu_scratch_release();
    cpu_paths_report("test_kernels", CPU_PATHS_ALL);
    return check_report();
}
