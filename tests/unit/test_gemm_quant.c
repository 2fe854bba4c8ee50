/* mt_cpu_linear with block-quantized W (gemm_quant.c) on every kernel path this CPU has (cpu_paths.h), each with the
 * VNNI kernels off and on where the CPU has them (avx2: AVX-VNNI, avx512: AVX-512-VNNI).
 *
 *   | check                                | bound                                                        |
 *   |--------------------------------------|--------------------------------------------------------------|
 *   | scalar path vs f64 A . dequant(W)^T  | M <= 16: 0.03 |a||w|/sqrt(K) (8-bit activations); else 1e-5 |a||w| |
 *   | every SIMD path vs the scalar path   | 1e-5 |a||w| (the same integer sums, f32 accumulated in lanes)  |
 *   | avx512-bf16, M > 16, vs f64 product  | 1e-5 |a||w| of A and W rounded to bf16 (the bf16 GEMM's panels) |
 *   | VNNI on vs off at one level          | bit-identical                                                |
 *   | the path's activation quantizer      | mt_quantize_row_q8_0 / _q8_K's bytes (ggml's), halves included |
 *   | the path's row dequantizer (prefill) | mt_dequantize_row's floats, bit for bit (R8: a group, 8 rows)  |
 *   | its f16 rows (an f16 W's bf16 panels) | tensor/dtype.h's floats, bit for bit, at lengths 0-19         |
 *   | R8 types' bf16 panels in one pass    | the generic dequantize, round and pack's bytes (avx512-bf16)   |
 *   | no memory for any scratch            | the unblocked fallback, 1e-5 |a||w| of the f64 product        |
 *
 * Q4_K_R8 (Q4_K with 8 rows interleaved, as a model loads Q4_K linears) runs every case with N rounded up to a
 * multiple of 8; its scalar decode and its prefill give Q4_K's floats bit for bit from the same blocks, and the
 * repack keeps every byte (test_r8). Q8_0_R8 (Q8_0 so interleaved) runs every case as it is: an N off the groups of 8
 * leaves its last N % 8 rows plain Q8_0, which the kernels take apart (test_q8_0_r8 has the bytes, the -128 codes a
 * file may hold and the errors).
 *
 * Shapes: N = 1, N not a multiple of anything, K = one block, very tall (N = 3000), very wide (K = 16384), row
 * strides past the row (ldw > K, ldc > N), M = 1..16 (the GEMV: decode, 5..16 in L2 slices, past 8 in two
 * passes) and M > 16 (the GEMM of a prefill; 9 blocks: K past the f32 GEMM's KC = 512 with a part block of it left
 * for the K-quants, 40 blocks past the bf16 GEMM's 1024 for Q8_0 and Q4_0 too), with and without bias, accumulate
 * and a thread pool.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_paths.h"
#include "tensor/quant.h"

typedef struct qcase {
    int64_t M, N, K, ldw_extra, ldc_extra;
    bool bias, acc, pool;
} qcase;

static const qcase cases[] = {
    {1, 1, 1, 0, 0, false, false, false},     {1, 7, 1, 0, 0, true, false, true},
    {2, 17, 3, 0, 1, false, true, true},      {3, 33, 8, 1, 0, true, true, false},
    {4, 100, 2, 0, 3, true, false, true},     {5, 19, 4, 0, 0, false, false, true},
    {8, 64, 2, 2, 5, true, true, true},       {7, 3, 1, 0, 0, false, false, false},
    {1, 3000, 1, 0, 0, true, false, true},    {2, 3, 64, 0, 0, false, true, true},
    {9, 21, 2, 1, 2, true, true, true},       {20, 70, 1, 0, 0, false, false, false},
    {33, 130, 4, 0, 7, true, false, true},    {40, 45, 9, 1, 3, true, true, true},
    {12, 45, 9, 1, 3, true, true, true},      {32, 24, 2, 0, 1, true, false, true},
    {40, 9, 40, 0, 2, false, true, true},
};
enum { NCASES = sizeof cases / sizeof cases[0] };
static const mt_dtype types[] = {MT_Q8_0, MT_Q4_0, MT_Q4_K, MT_Q6_K, MT_Q4_K_R8, MT_Q8_0_R8};
enum { NTYPES = 6 };
/* gemm_quant.c: up to this many rows the integer GEMV (8-bit activations), past it the GEMM */
enum { GEMV_ROWS = 16 };

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static float frand(void) {
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((double)(rng >> 40) / (double)(1ull << 23) - 1.0);
}

typedef struct qdata {
    int64_t M, N, K, ldw, ldc;
    float *A, *Wd, *bias, *C0; /* Wd: the dequantized weights, N x K */
    uint8_t *Wq;
    float *ref[3]; /* the scalar path's result; the f64 reference; the f64 reference of A and W rounded to bf16 */
    double *scale; /* |a_i| |w_j| */
} qdata;

static qdata data[NTYPES][NCASES];

static void make(qdata *d, mt_dtype t, const qcase *c) {
    int64_t blk = mt_dtype_block_elems(t);
    d->M = c->M;
    /* Q4_K_R8 holds rows in groups of 8: each case's N rounded up to one */
    d->N = t == MT_Q4_K_R8 ? (c->N + 7) / 8 * 8 : c->N;
    d->K = c->K * blk;
    d->ldw = d->K + c->ldw_extra * blk;
    d->ldc = d->N + c->ldc_extra;
    size_t rb = mt_dtype_row_bytes(t, d->ldw);
    float *w = malloc(sizeof(float) * (size_t)(d->N * d->ldw));
    for (int64_t i = 0; i < d->N * d->ldw; i++) w[i] = frand() * (1.0f + (float)(i % 7));
    d->Wq = malloc(rb * (size_t)d->N);
    mt_err err;
    CHECK(mt_quantize(t, w, d->N, d->ldw, d->Wq, &err) == MT_OK);
    CHECK(mt_dequantize(t, d->Wq, d->N, d->ldw, w, &err) == MT_OK);
    d->Wd = malloc(sizeof(float) * (size_t)(d->N * d->K));
    for (int64_t j = 0; j < d->N; j++) memcpy(d->Wd + j * d->K, w + j * d->ldw, sizeof(float) * (size_t)d->K);
    free(w);
    d->A = malloc(sizeof(float) * (size_t)(d->M * d->K));
    for (int64_t i = 0; i < d->M * d->K; i++) d->A[i] = frand();
    d->bias = NULL;
    if (c->bias) {
        d->bias = malloc(sizeof(float) * (size_t)d->N);
        for (int64_t j = 0; j < d->N; j++) d->bias[j] = frand();
    }
    d->C0 = malloc(sizeof(float) * (size_t)(d->M * d->ldc));
    for (int64_t i = 0; i < d->M * d->ldc; i++) d->C0[i] = frand();
    d->scale = malloc(sizeof(double) * (size_t)(d->M * d->N));
    for (int r = 1; r < 3; r++) {
        d->ref[r] = malloc(sizeof(float) * (size_t)(d->M * d->ldc));
        memcpy(d->ref[r], d->C0, sizeof(float) * (size_t)(d->M * d->ldc));
    }
    for (int64_t i = 0; i < d->M; i++)
        for (int64_t j = 0; j < d->N; j++) {
            double s = 0, s16 = 0, na = 0, nw = 0;
            for (int64_t k = 0; k < d->K; k++) {
                float a = d->A[i * d->K + k], wk = d->Wd[j * d->K + k];
                s += (double)a * wk;
                s16 += (double)mt_bf16_to_f32(mt_f32_to_bf16(a)) * mt_bf16_to_f32(mt_f32_to_bf16(wk));
                na += (double)a * a;
                nw += (double)wk * wk;
            }
            double b = d->bias ? d->bias[j] : 0;
            for (int r = 1; r < 3; r++) {
                float *o = &d->ref[r][i * d->ldc + j];
                double v = (r == 1 ? s : s16) + b;
                *o = c->acc ? (float)(*o + v) : (float)v;
            }
            d->scale[i * d->N + j] = sqrt(na * nw) + 1e-30;
        }
    d->ref[0] = NULL;
}

static void release(qdata *d) {
    free(d->A);
    free(d->Wd);
    free(d->bias);
    free(d->C0);
    free(d->Wq);
    free(d->ref[0]);
    free(d->ref[1]);
    free(d->ref[2]);
    free(d->scale);
}

/* Runs case c of type t at the current path; the first run (scalar) becomes the reference of the others. Returns the
 * result (owned by the caller). */
static float *run(int ti, int ci, mt_pool *pool, const char *path) {
    const qcase *c = &cases[ci];
    qdata *d = &data[ti][ci];
    mt_dtype t = types[ti];
    float *C = malloc(sizeof(float) * (size_t)(d->M * d->ldc));
    memcpy(C, d->C0, sizeof(float) * (size_t)(d->M * d->ldc));
    mt_cpu_linear(c->pool ? pool : NULL, d->M, d->N, d->K, d->A, d->K, d->Wq, t, d->ldw, d->bias, C, d->ldc, c->acc);
    bool pad_ok = true;
    for (int64_t i = 0; i < d->M; i++)
        for (int64_t j = d->N; j < d->ldc; j++) pad_ok &= C[i * d->ldc + j] == d->C0[i * d->ldc + j];
    CHECK_MSG(pad_ok, "%s %s case %d: wrote into the row padding of C", path, mt_dtype_name(t), ci);
    /* bf16 dot products change the GEMM: A and W rounded to bf16, then f32 sums */
    bool bf16 = mt_cpu_bf16_dot_on() && d->M > GEMV_ROWS;
    const float *ref = d->ref[bf16 ? 2 : 1];
    double worst = 0, worst_ref = 0;
    for (int64_t i = 0; i < d->M; i++)
        for (int64_t j = 0; j < d->N; j++) {
            double s = d->scale[i * d->N + j], v = C[i * d->ldc + j];
            if (d->ref[0] && !bf16) worst = fmax(worst, fabs(v - d->ref[0][i * d->ldc + j]) / s);
            double e = fabs(v - ref[i * d->ldc + j]) / s;
            worst_ref = fmax(worst_ref, d->M <= GEMV_ROWS ? e * sqrt((double)d->K) : e);
            if (isnan(v)) worst = worst_ref = INFINITY;
        }
    double bound_ref = d->M <= GEMV_ROWS ? 0.03 : 1e-5;
    CHECK_MSG(worst <= 1e-5, "%s %s case %d (M %lld N %lld K %lld): %g off the scalar path", path, mt_dtype_name(t),
              ci, (long long)d->M, (long long)d->N, (long long)d->K, worst);
    CHECK_MSG(worst_ref <= bound_ref, "%s %s case %d (M %lld N %lld K %lld): %g off the f64 product%s (bound %g)",
              path, mt_dtype_name(t), ci, (long long)d->M, (long long)d->N, (long long)d->K, worst_ref,
              bf16 ? " of A and W rounded to bf16" : "", bound_ref);
    return C;
}

/* The activation quantizer of the path gives mt_quantize_row_q8_0 / _q8_K's bytes (ggml's): rows with exact halves
 * (roundf takes them away from zero, Q8_K's nearest_int to even), a largest magnitude present with both signs (the
 * first sets Q8_K's sign), zeros and Gaussian-like values. */
static void test_quant_act(const char *path) {
    enum { K = 4 * MT_QK_K };
    static float x[K];
    static uint8_t got[K * 2], want[K * 2];
    for (int c = 0; c < 5; c++) {
        for (int i = 0; i < K; i++) {
            int j = i % 32;
            switch (c) {
            case 0: x[i] = frand() * 3.0f; break;
            case 1: x[i] = j == 0 ? 127.0f : (float)(j % 20 - 10) + 0.5f; break;
            case 2: x[i] = j == 3 ? -127.0f : j == 9 ? 127.0f : (float)(j % 9 - 4) - 0.5f; break;
            case 3: x[i] = i < K / 2 ? 0.0f : frand(); break;
            default: x[i] = frand() * (float)(1 + i % 5) * 1e-4f; break;
            }
        }
        const mt_cpu_isa *isa = mt_cpu_isa_get();
        memset(got, 0, sizeof got);
        isa->quant_act(K, x, got, MT_Q4_0);
        mt_quantize_row_q8_0(x, (mt_block_q8_0 *)want, K);
        CHECK_MSG(memcmp(got, want, (size_t)(K / MT_QK8_0) * sizeof(mt_block_q8_0)) == 0,
                  "%s: Q8_0 activations of case %d differ from mt_quantize_row_q8_0", path, c);
        isa->quant_act(K, x, got, MT_Q6_K);
        mt_quantize_row_q8_K(x, (mt_block_q8_K *)want, K);
        CHECK_MSG(memcmp(got, want, (size_t)(K / MT_QK_K) * sizeof(mt_block_q8_K)) == 0,
                  "%s: Q8_K activations of case %d differ from mt_quantize_row_q8_K", path, c);
    }
}

/* The path's row dequantizer (what the prefill GEMM packs) gives mt_dequantize_row's floats, bit for bit. */
static void test_dequant(const char *path) {
    enum { K = 4 * MT_QK_K };
    static float x[K], got[K], want[K];
    static uint8_t q[K * 2];
    for (int c = 0; c < 3; c++) {
        for (int i = 0; i < K; i++)
            x[i] = c == 0 ? frand() : c == 1 ? frand() * (float)(1 + i % 13) * 1e-3f : frand() + 0.7f;
        for (int ti = 0; ti < NTYPES; ti++) {
            if (types[ti] == MT_Q4_K_R8 || types[ti] == MT_Q8_0_R8) continue; /* no row alone: test_r8 */
            mt_err err;
            CHECK(mt_quantize(types[ti], x, 1, K, q, &err) == MT_OK);
            mt_cpu_isa_get()->dequant(K, q, got, types[ti]);
            mt_dequantize_row(types[ti], q, want, K);
            CHECK_MSG(memcmp(got, want, sizeof got) == 0, "%s: %s rows of case %d differ from mt_dequantize_row", path,
                      mt_dtype_name(types[ti]), c);
        }
    }
    /* f16 rows (the bf16 GEMM's panels of an f16 W) widen exactly, at every length (a tail off 8 values) */
    static uint16_t h[K];
    for (int n = 0; n <= 19; n++) {
        for (int i = 0; i < K; i++) h[i] = mt_f32_to_f16(frand() * (float)(1 + i % 7)), got[i] = -1.0f;
        h[3] = 0x7C00, h[4] = 0xFC01, h[5] = 0x0001; /* inf, NaN, the smallest subnormal */
        mt_cpu_isa_get()->dequant(n, h, got, MT_F16);
        bool ok = got[n] == -1.0f;
        for (int i = 0; i < n; i++) ok &= i == 4 ? isnan(got[i]) : got[i] == mt_f16_to_f32(h[i]);
        CHECK_MSG(ok, "%s: f16 rows of %d values do not widen to tensor/dtype.h's floats, or ran past them", path, n);
    }
    /* the interleaved types a group at a time (8 rows, k apart): the floats of the type they were made from */
    static float x8[8 * K], got8[8 * K], want8[8 * K];
    static uint8_t q8[8 * K * 2], r8[8 * K * 2];
    for (int i = 0; i < 8 * K; i++) x8[i] = frand() * (float)(1 + i % 11);
    const mt_dtype plain[2] = {MT_Q4_K, MT_Q8_0}, inter[2] = {MT_Q4_K_R8, MT_Q8_0_R8};
    for (int t = 0; t < 2; t++) {
        mt_err err;
        CHECK(mt_quantize(plain[t], x8, 8, K, q8, &err) == MT_OK);
        CHECK(mt_dequantize(plain[t], q8, 8, K, want8, &err) == MT_OK);
        CHECK((t == 0 ? mt_repack_q4_K_r8 : mt_repack_q8_0_r8)(q8, 8, K, r8, &err) == MT_OK);
        memset(got8, 0, sizeof got8);
        mt_cpu_isa_get()->dequant(K, r8, got8, inter[t]);
        CHECK_MSG(memcmp(got8, want8, sizeof got8) == 0, "%s: a %s group differs from its %s rows", path,
                  mt_dtype_name(inter[t]), mt_dtype_name(plain[t]));
    }
}

/* The bf16 GEMM's panels of a Q4_K_R8 or Q8_0_R8 W made in one pass (isa->pack_b_r8_bf16) are the bytes the
 * generic steps (dequantize, round, pack) make: panels of 40 and 72 columns (a last panel of 1 or 2 groups, zero past
 * them), K blocks past the first, values that round up and down; Q8_0_R8 of 83 rows also with columns from its
 * plain tail rows (those take the generic steps). */
static void test_pack_r8_bf16(void) {
    const mt_cpu_isa *isa = mt_cpu_isa_get();
    CHECK(isa->pack_b_r8_bf16 != NULL);
    if (!isa->pack_b_r8_bf16) return;
    mt_cpu_isa generic = *isa;
    generic.pack_b_r8_bf16 = NULL;
    enum { N = 83, K = 3 * MT_QK_K, KC = 2 * MT_QK_K };
    static float x[N * K];
    static uint8_t q[N * K * 2], r8[N * K * 2]; /* Q8_0: 34 bytes per 32 values */
    static uint16_t got[3 * KC * 32], want[3 * KC * 32];
    for (int i = 0; i < N * K; i++) x[i] = frand() * (float)(1 + i % 9);
    const mt_dtype plain[2] = {MT_Q4_K, MT_Q8_0}, inter[2] = {MT_Q4_K_R8, MT_Q8_0_R8};
    for (int t = 0; t < 2; t++) {
        int64_t rows = t == 0 ? 80 : N; /* Q4_K_R8: whole groups only */
        mt_err err;
        CHECK(mt_quantize(plain[t], x, rows, K, q, &err) == MT_OK);
        CHECK((t == 0 ? mt_repack_q4_K_r8 : mt_repack_q8_0_r8)(q, rows, K, r8, &err) == MT_OK);
        const int64_t shapes[][3] = {{72, 0, 0}, {40, 8, MT_QK_K}, {32, 48, 2 * MT_QK_K}, {40, 40, 32}, {35, 48, 32}};
        for (size_t i = 0; i < MT_ARRAY_LEN(shapes) - 2 * (t == 0); i++) { /* nc, n0, k0; Q8_0's blocks last */
            int64_t nc = shapes[i][0], n0 = shapes[i][1], k0 = shapes[i][2], kc = MT_MIN((int64_t)KC, K - k0);
            memset(got, 0xAB, sizeof got);
            memset(want, 0xCD, sizeof want);
            mt_cpu_pack_b_quant(isa, kc, nc, r8, inter[t], K, rows, k0, n0, true, got);
            mt_cpu_pack_b_quant(&generic, kc, nc, r8, inter[t], K, rows, k0, n0, true, want);
            size_t bytes = sizeof(uint16_t) * (size_t)(MT_ROUND_UP(nc, 32) * kc);
            CHECK_MSG(memcmp(got, want, bytes) == 0, "%s bf16 panels, %lld columns from row %lld, k %lld..: not the "
                      "dequantized, rounded and packed values", mt_dtype_name(inter[t]), (long long)nc, (long long)n0,
                      (long long)k0);
        }
    }
}

static void run_all(mt_pool *pool, const char *path, float **out) {
    for (int ti = 0; ti < NTYPES; ti++)
        for (int ci = 0; ci < NCASES; ci++) out[ti * NCASES + ci] = run(ti, ci, pool, path);
}

/* Without memory (no scratch for the activations or the GEMM): decode and prefill fall back to the unblocked loop, and
 * still match the f64 product. */
static void test_no_memory(void) {
    for (int ti = 0; ti < NTYPES; ti++) {
        const int cases_used[] = {3, 11};
        for (int u = 0; u < 2; u++) {
            const qdata *d = &data[ti][cases_used[u]];
            const qcase *c = &cases[cases_used[u]];
            float *C = malloc(sizeof(float) * (size_t)(d->M * d->ldc));
            memcpy(C, d->C0, sizeof(float) * (size_t)(d->M * d->ldc));
            mt_cpu_scratch_release();
            mt_alloc_fail_after(1);
            mt_cpu_linear(NULL, d->M, d->N, d->K, d->A, d->K, d->Wq, types[ti], d->ldw, d->bias, C, d->ldc, c->acc);
            mt_alloc_fail_after(0);
            double worst = 0;
            for (int64_t i = 0; i < d->M; i++)
                for (int64_t j = 0; j < d->N; j++)
                    worst = fmax(worst, fabs(C[i * d->ldc + j] - d->ref[1][i * d->ldc + j]) / d->scale[i * d->N + j]);
            CHECK_MSG(worst <= 1e-5, "%s case %d without memory: %g off the f64 product", mt_dtype_name(types[ti]),
                      cases_used[u], worst);
            free(C);
        }
    }
}

/* Q4_K_R8 against the Q4_K blocks it is made from: the repack keeps every byte (mt_q4_K_r8_get gives each block
 * back), the scalar decode and the prefill (M > 16, dequantized panels) give Q4_K's floats bit for bit, and a bad shape
 * is an error naming the value. */
/* On the scalar path an interleaved type gives its file type's floats bit for bit, at M = 1 and M = m_max (the
 * decode GEMV, then the prefill GEMM's packing). c and cr: m_max x n floats each. */
static void check_r8_scalar(mt_pool *pool, int m_max, int n, int k, const float *a, const void *w, mt_dtype wt,
                            const void *wr, mt_dtype rt, float *c, float *cr) {
    mt_cpu_set_level(MT_CPU_SCALAR);
    for (int m = 1; m <= m_max; m += m_max - 1) {
        mt_cpu_linear(pool, m, n, k, a, k, w, wt, k, NULL, c, n, false);
        mt_cpu_linear(pool, m, n, k, a, k, wr, rt, k, NULL, cr, n, false);
        CHECK_MSG(memcmp(c, cr, sizeof(float) * (size_t)(m * n)) == 0, "%s scalar M=%d: not %s's floats",
                  mt_dtype_name(rt), m, mt_dtype_name(wt));
    }
    mt_cpu_set_level(mt_cpu_detect());
}

static void test_r8(mt_pool *pool) {
    enum { N = 24, K = 3 * MT_QK_K, M = GEMV_ROWS + 4 };
    size_t rb = mt_dtype_row_bytes(MT_Q4_K, K);
    static float w[N * K], a[M * K], c4[M * N], c8[M * N];
    static uint8_t q4[N * 3 * 144], q8[N * 3 * 144];
    for (int i = 0; i < N * K; i++) w[i] = frand() * (float)(1 + i % 5);
    for (int i = 0; i < M * K; i++) a[i] = frand();
    mt_err err;
    CHECK(mt_quantize(MT_Q4_K, w, N, K, q4, &err) == MT_OK);
    CHECK(mt_repack_q4_K_r8(q4, N, K, q8, &err) == MT_OK);
    bool same = true;
    for (int j = 0; j < N; j++)
        for (int b = 0; b < K / MT_QK_K; b++) {
            mt_block_q4_K x;
            mt_q4_K_r8_get(q8, rb, j, b, &x);
            same &= memcmp(&x, q4 + (size_t)j * rb + (size_t)b * sizeof x, sizeof x) == 0;
        }
    CHECK_MSG(same, "Q4_K_R8: a block taken back differs from the Q4_K block it was made from");
    static uint8_t q8b[N * 3 * 144];
    CHECK(mt_quantize(MT_Q4_K_R8, w, N, K, q8b, &err) == MT_OK);
    CHECK_MSG(memcmp(q8, q8b, sizeof q8) == 0, "Q4_K_R8: mt_quantize differs from Q4_K then mt_repack_q4_K_r8");
    check_r8_scalar(pool, M, N, K, a, q4, MT_Q4_K, q8, MT_Q4_K_R8, c4, c8);
    mt_cpu_linear(pool, M, N, K, a, K, q4, MT_Q4_K, K, NULL, c4, N, false);
    mt_cpu_linear(pool, M, N, K, a, K, q8, MT_Q4_K_R8, K, NULL, c8, N, false);
    CHECK_MSG(memcmp(c4, c8, sizeof c4) == 0, "Q4_K_R8 prefill (%s): not Q4_K's floats", mt_cpu_isa_get()->name);
    CHECK(mt_repack_q4_K_r8(q4, 7, K, q8, &err) == MT_ERR_INVALID_ARG && strstr(err.msg, "7 rows"));
    CHECK(mt_repack_q4_K_r8(q4, 8, 100, q8, &err) == MT_ERR_INVALID_ARG && strstr(err.msg, "100"));
    CHECK(mt_quantize(MT_Q4_K_R8, w, 9, K, q8, &err) == MT_ERR_INVALID_ARG && strstr(err.msg, "9 rows"));
    CHECK(mt_dequantize(MT_Q4_K_R8, q8, 4, K, w, &err) == MT_ERR_INVALID_ARG && strstr(err.msg, "4 rows"));
    /* a call with N off the groups of 8 (the loader never makes one) gives NaN, not a read past the matrix */
    float c[9];
    mt_cpu_linear(NULL, 1, 9, K, a, K, q8, MT_Q4_K_R8, K, NULL, c, 9, false);
    CHECK(isnan(c[0]) && isnan(c[8]));
}

/* Q8_0_R8 against the Q8_0 blocks it is made from, N = 8 * 3 + 5 (a tail of plain rows): every block taken back
 * (groups and tail), mt_quantize = Q8_0 then mt_repack_q8_0_r8, the scalar decode and the prefill give Q8_0's floats
 * bit for bit; with codes of -128 (in range for a file, never made by the quantizer) every path of this CPU, VNNI
 * off and on, M = 1..8, stays within 1e-5 |a||w| of Q8_0's; bad shapes are errors naming the value. */
static void test_q8_0_r8(mt_pool *pool) {
    enum { N = 29, K = 5 * MT_QK8_0, M = GEMV_ROWS + 4 };
    size_t rb = mt_dtype_row_bytes(MT_Q8_0, K);
    static float w[N * K], a[M * K], c0[M * N], c8[M * N];
    static uint8_t q0[N * 5 * 34], q8[N * 5 * 34], q8b[N * 5 * 34];
    for (int i = 0; i < N * K; i++) w[i] = frand() * (float)(1 + i % 5);
    for (int i = 0; i < M * K; i++) a[i] = frand();
    mt_err err;
    CHECK(mt_quantize(MT_Q8_0, w, N, K, q0, &err) == MT_OK);
    for (int j = 0; j < N; j += 3) ((mt_block_q8_0 *)(q0 + (size_t)j * rb))[j % 5].qs[j % 32] = -128;
    CHECK(mt_repack_q8_0_r8(q0, N, K, q8, &err) == MT_OK);
    bool same = true;
    for (int j = 0; j < N; j++)
        for (int b = 0; b < K / MT_QK8_0; b++) {
            mt_block_q8_0 x;
            mt_q8_0_r8_get(q8, rb, N, j, b, &x);
            same &= memcmp(&x, q0 + (size_t)j * rb + (size_t)b * sizeof x, sizeof x) == 0;
        }
    CHECK_MSG(same, "Q8_0_R8: a block taken back differs from the Q8_0 block it was made from");
    static uint8_t qa[N * 5 * 34];
    CHECK(mt_quantize(MT_Q8_0, w, N, K, qa, &err) == MT_OK);
    CHECK(mt_repack_q8_0_r8(qa, N, K, q8b, &err) == MT_OK);
    CHECK(mt_quantize(MT_Q8_0_R8, w, N, K, qa, &err) == MT_OK);
    CHECK_MSG(memcmp(qa, q8b, sizeof qa) == 0, "Q8_0_R8: mt_quantize differs from Q8_0 then mt_repack_q8_0_r8");
    check_r8_scalar(pool, M, N, K, a, q0, MT_Q8_0, q8, MT_Q8_0_R8, c0, c8);
    for (int p = 0; p < CPU_PATH_AVX512_BF16; p++) {
        if (!cpu_path_enter(p, CPU_PATHS_NO_BF16)) continue;
        for (int v = 0; v < 2; v++) {
            if (mt_cpu_set_vnni(v == 1) != (v == 1)) continue;
            for (int m = 1; m <= 8; m++) {
                mt_cpu_linear(pool, m, N, K, a, K, q0, MT_Q8_0, K, NULL, c0, N, false);
                mt_cpu_linear(pool, m, N, K, a, K, q8, MT_Q8_0_R8, K, NULL, c8, N, false);
                double worst = 0;
                for (int i = 0; i < m; i++)
                    for (int j = 0; j < N; j++) {
                        double na = 0, nw = 0;
                        for (int k = 0; k < K; k++) {
                            na += (double)a[i * K + k] * a[i * K + k];
                            nw += (double)w[j * K + k] * w[j * K + k];
                        }
                        worst = fmax(worst, fabs(c0[i * N + j] - c8[i * N + j]) / sqrt(na * nw));
                    }
                CHECK_MSG(worst <= 1e-5, "Q8_0_R8 %s%s M=%d with -128 codes: %g off Q8_0", cpu_path_names[p],
                          v ? "-vnni" : "", m, worst);
            }
        }
    }
    cpu_path_leave();
    mt_cpu_set_vnni(true);
    mt_cpu_linear(pool, M, N, K, a, K, q0, MT_Q8_0, K, NULL, c0, N, false);
    mt_cpu_linear(pool, M, N, K, a, K, q8, MT_Q8_0_R8, K, NULL, c8, N, false);
    CHECK_MSG(memcmp(c0, c8, sizeof c0) == 0, "Q8_0_R8 prefill (%s): not Q8_0's floats", mt_cpu_isa_get()->name);
    CHECK(mt_repack_q8_0_r8(q0, 0, K, q8, &err) == MT_ERR_INVALID_ARG && strstr(err.msg, "0 rows"));
    CHECK(mt_repack_q8_0_r8(q0, 8, 100, q8, &err) == MT_ERR_INVALID_ARG && strstr(err.msg, "100"));
    CHECK(mt_dequantize(MT_Q8_0_R8, q8, 4, 100, w, &err) == MT_ERR_INVALID_ARG && strstr(err.msg, "100"));
}

int main(void) {
    mt_err err;
    mt_pool *pool = NULL;
    CHECK(mt_pool_new(3, &pool, &err) == MT_OK);
    for (int ti = 0; ti < NTYPES; ti++)
        for (int ci = 0; ci < NCASES; ci++) make(&data[ti][ci], types[ti], &cases[ci]);
    static float *res[2][NTYPES * NCASES];
    bool vnni_ran[CPU_PATHS] = {false};
    for (int p = 0; p < CPU_PATHS; p++) {
        if (!cpu_path_enter(p, CPU_PATHS_ALL)) continue;
        mt_cpu_set_vnni(false);
        test_quant_act(cpu_path_names[p]);
        test_dequant(cpu_path_names[p]);
        if (p == CPU_PATH_AVX512_BF16) test_pack_r8_bf16();
        run_all(pool, cpu_path_names[p], res[0]);
        if (p == CPU_PATH_SCALAR)
            for (int ti = 0; ti < NTYPES; ti++)
                for (int ci = 0; ci < NCASES; ci++) data[ti][ci].ref[0] = res[0][ti * NCASES + ci];
        if (mt_cpu_set_vnni(true)) {
            char name[32];
            snprintf(name, sizeof name, "%s-vnni", cpu_path_names[p]);
            fprintf(stderr, "path %s\n", name);
            vnni_ran[p] = true;
            run_all(pool, name, res[1]);
            for (int i = 0; i < NTYPES * NCASES; i++) {
                const qdata *d = &data[i / NCASES][i % NCASES];
                CHECK_MSG(memcmp(res[0][i], res[1][i], sizeof(float) * (size_t)(d->M * d->ldc)) == 0,
                          "%s %s case %d: VNNI and maddubs results differ", name, mt_dtype_name(types[i / NCASES]),
                          i % NCASES);
                free(res[1][i]);
            }
        }
        if (p != CPU_PATH_SCALAR)
            for (int i = 0; i < NTYPES * NCASES; i++) free(res[0][i]);
    }
    cpu_path_leave();
    mt_cpu_set_vnni(true);
    test_no_memory();
    test_r8(pool);
    test_q8_0_r8(pool);
    /* a K that is not a multiple of the block gives NaN, not a read past the row */
    float c[2] = {0};
    mt_cpu_linear(NULL, 1, 2, 40, data[0][0].A, 40, data[0][0].Wq, MT_Q8_0, 40, NULL, c, 2, false);
    CHECK(isnan(c[0]) && isnan(c[1]));
    for (int ti = 0; ti < NTYPES; ti++)
        for (int ci = 0; ci < NCASES; ci++) release(&data[ti][ci]);
    mt_pool_free(pool);
    mt_cpu_scratch_release();
    bool avx2_vnni = cpu_path_on_cpu(CPU_PATH_AVX2) && mt_cpu_has_avxvnni();
    bool avx512_vnni = cpu_path_on_cpu(CPU_PATH_AVX512) && mt_cpu_has_avx512vnni();
    fprintf(stderr, "test_gemm_quant: vnni paths run:%s%s; not on this CPU:%s%s\n",
            vnni_ran[CPU_PATH_AVX2] ? " avx2-vnni" : "", vnni_ran[CPU_PATH_AVX512] ? " avx512-vnni" : "",
            avx2_vnni ? "" : " avx2-vnni", avx512_vnni ? "" : " avx512-vnni");
    CHECK(vnni_ran[CPU_PATH_AVX2] == avx2_vnni && vnni_ran[CPU_PATH_AVX512] == avx512_vnni);
    cpu_paths_report("test_gemm_quant", CPU_PATHS_ALL);
    return check_report();
}
