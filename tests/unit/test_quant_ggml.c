/* tensor/quant against ggml itself: libggml-base.so from llama.cpp's prebuilt npm package (@node-llama-cpp/linux-x64,
 * installed by the repository's package.json), loaded with dlopen. A missing library fails the test.
 *
 *   | check                    | how                                                                           |
 *   |--------------------------|-------------------------------------------------------------------------------|
 *   | quantize (Q8_0 .. Q6_K)  | mt_quantize == ggml_quantize_chunk (no imatrix), byte for byte                |
 *   | Q8_K activations         | mt_quantize_row_q8_K == quantize_row_q8_K_ref, byte for byte                   |
 *   | dequantize               | mt_dequantize == dequantize_row_* on ggml's blocks, bit for bit                |
 *   | round trip               | RMS error / RMS of the row under a bound per format (Gaussian rows)            |
 *   | quantized linear         | mt_cpu_linear (M = 1..3 decode, M = 17 prefill) against the f64 product of A    |
 *   |                          | with ggml's dequantized W, within a bound relative to |a| |w| / sqrt(K)         |
 *   | errors                   | a row length off the block, a NaN / infinity: messages name the row and index |
 */
#include <dlfcn.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "tensor/cpu/cpu.h"
#include "tensor/quant.h"

#define GGML_LIB MT_SOURCE_DIR "/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64/libggml-base.so"

/* ggml's type ids (ggml.h, enum ggml_type). */
enum { GGML_Q4_0 = 2, GGML_Q8_0 = 8, GGML_Q4_K = 12, GGML_Q6_K = 14, GGML_Q8_K = 15 };

typedef size_t (*quantize_chunk_fn)(int type, const float *src, void *dst, int64_t start, int64_t nrows,
                                    int64_t n_per_row, const float *imatrix);
typedef void (*row_fn)(const void *x, void *y, int64_t k);

static struct {
    quantize_chunk_fn quantize_chunk;
    row_fn q8_K_ref, deq[MT_DTYPE_COUNT], deq_q8_K;
} gg;

static uint64_t rng = 0x243f6a8885a308d3ull;
static double urand(void) { /* [0, 1) */
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(rng >> 11) / (double)(1ull << 53);
}
static float grand(void) { return (float)(sqrt(-2.0 * log(1.0 - urand())) * cos(6.283185307179586 * urand())); }

static const mt_dtype types[] = {MT_Q8_0, MT_Q4_0, MT_Q4_K, MT_Q6_K};
static int ggml_id(mt_dtype t) {
    return t == MT_Q8_0 ? GGML_Q8_0 : t == MT_Q4_0 ? GGML_Q4_0 : t == MT_Q4_K ? GGML_Q4_K : GGML_Q6_K;
}

enum { NCASES = 13 };
static const char *const case_names[NCASES] = {"gauss 1",     "gauss 1e-3",  "gauss 1e3",   "zeros",
                                               "constant +",  "constant -",  "outliers",    "tiny 1e-8",
                                               "uniform >0",  "one hot",     "mixed scale", "tiny 1e-20",
                                               "exact halves"};

/* Row r of case c, n values. */
static void fill(int c, float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        float g = grand();
        switch (c) {
        case 0: x[i] = g; break;
        case 1: x[i] = g * 1e-3f; break;
        case 2: x[i] = g * 1e3f; break;
        case 3: x[i] = 0.0f; break;
        case 4: x[i] = 0.37f; break;
        case 5: x[i] = -2.5f; break;
        case 6: x[i] = urand() < 0.01 ? g * 100.0f : g; break;
        case 7: x[i] = g * 1e-8f; break;
        case 8: x[i] = (float)urand() + 0.5f; break;
        case 9: x[i] = i % 97 == 5 ? 3.0f : 0.0f; break;
        case 10: x[i] = g * powf(10.0f, (float)((i / 32) % 7) - 3.0f); break;
        case 11: x[i] = g * 1e-20f; break;
        default: x[i] = i % 32 == 0 ? 127.0f : (float)(i % 20) - 9.5f; break; /* Q8_0: x / d lands on halves */
        }
    }
}

static bool load_ggml(void) {
    void *h = dlopen(GGML_LIB, RTLD_NOW | RTLD_LOCAL);
    CHECK_MSG(h != NULL, "cannot load ggml (the reference) from %s: %s - run npm install at the repository root",
              GGML_LIB, dlerror());
    if (!h) return false;
    gg.quantize_chunk = (quantize_chunk_fn)dlsym(h, "ggml_quantize_chunk");
    gg.q8_K_ref = (row_fn)dlsym(h, "quantize_row_q8_K_ref");
    gg.deq[MT_Q8_0] = (row_fn)dlsym(h, "dequantize_row_q8_0");
    gg.deq[MT_Q4_0] = (row_fn)dlsym(h, "dequantize_row_q4_0");
    gg.deq[MT_Q4_K] = (row_fn)dlsym(h, "dequantize_row_q4_K");
    gg.deq[MT_Q6_K] = (row_fn)dlsym(h, "dequantize_row_q6_K");
    gg.deq_q8_K = (row_fn)dlsym(h, "dequantize_row_q8_K");
    bool ok = gg.quantize_chunk && gg.q8_K_ref && gg.deq[MT_Q8_0] && gg.deq[MT_Q4_0] && gg.deq[MT_Q4_K] &&
              gg.deq[MT_Q6_K] && gg.deq_q8_K;
    CHECK_MSG(ok, "%s lacks one of the functions the test calls", GGML_LIB);
    return ok;
}

/* The first differing byte of two rows of blocks, or -1. */
static int64_t first_diff(const uint8_t *a, const uint8_t *b, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (a[i] != b[i]) return (int64_t)i;
    return -1;
}

static void test_quantize_exact(void) {
    enum { ROWS = 6, N = 1024 };
    static float x[ROWS * N], ym[ROWS * N], yg[ROWS * N];
    for (size_t ti = 0; ti < MT_ARRAY_LEN(types); ti++) {
        mt_dtype t = types[ti];
        size_t rb = mt_dtype_row_bytes(t, N), bb = mt_dtype_block_bytes(t);
        uint8_t *qm = calloc(ROWS, rb), *qg = calloc(ROWS, rb);
        int bad_cases = 0;
        for (int c = 0; c < NCASES; c++) {
            for (int r = 0; r < ROWS; r++) fill(c, x + r * N, N);
            mt_err err;
            CHECK(mt_quantize(t, x, ROWS, N, qm, &err) == MT_OK);
            size_t got = gg.quantize_chunk(ggml_id(t), x, qg, 0, ROWS, N, NULL);
            CHECK(got == ROWS * rb);
            int64_t d = first_diff(qm, qg, ROWS * rb);
            if (d >= 0) bad_cases++;
            CHECK_MSG(d < 0,
                      "%s, %s: byte %lld differs (row %lld, block %lld, byte %lld of the block): mitten %d, ggml %d",
                      mt_dtype_name(t), case_names[c], (long long)d, (long long)(d / (int64_t)rb),
                      (long long)(d % (int64_t)rb / (int64_t)bb), (long long)(d % (int64_t)bb), d >= 0 ? qm[d] : 0,
                      d >= 0 ? qg[d] : 0);
            CHECK(mt_dequantize(t, qg, ROWS, N, ym, &err) == MT_OK);
            for (int r = 0; r < ROWS; r++) gg.deq[t](qg + r * rb, yg + r * N, N);
            CHECK_MSG(memcmp(ym, yg, sizeof ym) == 0, "%s, %s: dequantized values differ from ggml's", mt_dtype_name(t),
                      case_names[c]);
        }
        fprintf(stderr, "%s: %d of %d cases byte-identical to ggml (%d rows of %d each)\n", mt_dtype_name(t),
                NCASES - bad_cases, NCASES, ROWS, N);
        free(qm);
        free(qg);
    }
    /* Q8_K, the activations of the K-quant dot products; ggml leaves bsums unwritten on an all-zero block */
    enum { NK = 4 * MT_QK_K };
    static mt_block_q8_K km[NK / MT_QK_K], kg[NK / MT_QK_K];
    static float xk[NK], dk_m[NK], dk_g[NK];
    for (int c = 0; c < NCASES; c++) {
        fill(c, xk, NK);
        memset(kg, 0, sizeof kg);
        mt_quantize_row_q8_K(xk, km, NK);
        gg.q8_K_ref(xk, kg, NK);
        CHECK_MSG(memcmp(km, kg, sizeof km) == 0, "Q8_K, %s: blocks differ from ggml's", case_names[c]);
        mt_dequantize_row_q8_K(kg, dk_m, NK);
        gg.deq_q8_K(kg, dk_g, NK);
        CHECK_MSG(memcmp(dk_m, dk_g, sizeof dk_m) == 0, "Q8_K, %s: dequantized values differ", case_names[c]);
    }
}

/* RMS error of the round trip over RMS of the values, Gaussian rows; the bounds hold ggml's own blocks too. */
static void test_round_trip(void) {
    enum { N = 8192 };
    static float x[N], y[N];
    static uint8_t q[N * 2];
    const double bound[MT_DTYPE_COUNT] = {[MT_Q8_0] = 0.006, [MT_Q4_0] = 0.11, [MT_Q4_K] = 0.09, [MT_Q6_K] = 0.022};
    fill(0, x, N);
    for (size_t ti = 0; ti < MT_ARRAY_LEN(types); ti++) {
        mt_dtype t = types[ti];
        mt_err err;
        CHECK(mt_quantize(t, x, 1, N, q, &err) == MT_OK);
        CHECK(mt_dequantize(t, q, 1, N, y, &err) == MT_OK);
        double e2 = 0, x2 = 0;
        for (int i = 0; i < N; i++) {
            e2 += (double)(y[i] - x[i]) * (y[i] - x[i]);
            x2 += (double)x[i] * x[i];
        }
        double rel = sqrt(e2 / x2);
        fprintf(stderr, "%s: round-trip RMS error %.4f of RMS (bound %.3f)\n", mt_dtype_name(t), rel, bound[t]);
        CHECK_MSG(rel <= bound[t], "%s: round-trip error %g over %g", mt_dtype_name(t), rel, bound[t]);
    }
}

/* mt_cpu_linear on ggml-quantized W against A . dequant(W)^T in f64. The decode path quantizes A to 8 bits, so it
 * is within a bound relative to |a| |w_j| / sqrt(K) (for Gaussian values the 8-bit rounding gives about 0.01 of it);
 * the prefill path works on dequantized W in f32 and is within 1e-5 of |a| |w_j|. */
static void test_linear_vs_ggml(mt_pool *pool) {
    enum { N = 37, K = 1024, MMAX = 17 };
    static float w[N * K], wd[N * K], a[MMAX * K], c[MMAX * N];
    fill(0, w, N * K);
    fill(0, a, MMAX * K);
    for (size_t ti = 0; ti < MT_ARRAY_LEN(types); ti++) {
        mt_dtype t = types[ti];
        size_t rb = mt_dtype_row_bytes(t, K);
        uint8_t *q = malloc(N * rb);
        gg.quantize_chunk(ggml_id(t), w, q, 0, N, K, NULL);
        for (int j = 0; j < N; j++) gg.deq[t](q + j * rb, wd + j * K, K);
        const int ms[] = {1, 2, 3, MMAX};
        for (size_t mi = 0; mi < MT_ARRAY_LEN(ms); mi++) {
            int M = ms[mi];
            mt_cpu_linear(pool, M, N, K, a, K, q, t, K, NULL, c, N, false);
            double worst = 0;
            for (int i = 0; i < M; i++)
                for (int j = 0; j < N; j++) {
                    double ref = 0, na = 0, nw = 0;
                    for (int k = 0; k < K; k++) {
                        ref += (double)a[i * K + k] * wd[j * K + k];
                        na += (double)a[i * K + k] * a[i * K + k];
                        nw += (double)wd[j * K + k] * wd[j * K + k];
                    }
                    double scale = sqrt(na * nw), r = fabs(c[i * N + j] - ref) / scale;
                    if (M <= 16) r *= sqrt((double)K);
                    if (r > worst) worst = r;
                }
            double bound = M <= 16 ? 0.03 : 1e-5;
            fprintf(stderr, "%s, M = %d (%s): worst error %.3g (bound %g)\n", mt_dtype_name(t), M,
                    M <= 16 ? "8-bit activations, x sqrt(K) / |a||w|" : "f32 GEMM, / |a||w|", worst, bound);
            CHECK_MSG(worst <= bound, "%s, M = %d: error %g over %g", mt_dtype_name(t), M, worst, bound);
        }
        free(q);
    }
}

static void test_errors(void) {
    float x[512] = {0};
    uint8_t q[1024];
    mt_err err;
    CHECK(mt_quantize(MT_Q4_K, x, 1, 300, q, &err) == MT_ERR_INVALID_ARG);
    CHECK_MSG(strstr(err.msg, "300") && strstr(err.msg, "256"), "message: %s", err.msg);
    CHECK(mt_quantize(MT_Q8_0, x, 1, 0, q, &err) == MT_ERR_INVALID_ARG);
    CHECK(mt_dequantize(MT_Q6_K, q, 1, 100, x, &err) == MT_ERR_INVALID_ARG);
    CHECK(mt_quantize(MT_F32, x, 1, 32, q, &err) == MT_ERR_INVALID_ARG);
    CHECK_MSG(strstr(err.msg, "not a block-quantized"), "message: %s", err.msg);
    x[64 + 7] = NAN;
    CHECK(mt_quantize(MT_Q8_0, x, 2, 64, q, &err) == MT_ERR_INVALID_ARG);
    CHECK_MSG(strstr(err.msg, "row 1, index 7"), "message: %s", err.msg);
    x[64 + 7] = 0;
    x[3] = -INFINITY;
    CHECK(mt_quantize(MT_Q6_K, x, 2, 256, q, &err) == MT_ERR_INVALID_ARG);
    CHECK_MSG(strstr(err.msg, "row 0, index 3") && strstr(err.msg, "inf"), "message: %s", err.msg);
}

int main(void) {
    /* the 17-row bounds are for the GEMM on f32 products (test_gemm_quant checks the bf16 ones): fixed here, as
     * ctest fixes MT_BF16_DOT=0, so that a run by hand on a CPU with bf16 dot products checks the same */
    mt_cpu_set_bf16_dot(false);
    test_errors();
    if (load_ggml()) {
        mt_err err;
        mt_pool *pool = NULL;
        CHECK(mt_pool_new(2, &pool, &err) == MT_OK);
        test_quantize_exact();
        test_round_trip();
        test_linear_vs_ggml(pool);
        mt_pool_free(pool);
    }
    return check_report();
}
