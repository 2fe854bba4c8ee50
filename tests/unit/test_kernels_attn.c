/* tensor/cpu attention at every ISA level, against a naive double-precision softmax(scale q k^T + mask) v written
 * here: causal with q_pos0 (prefill, chunked prefill, decode), GQA/MQA, block-diagonal segments (cu_seqlens), head
 * dims 64/80/128/256, f32 and bf16 K/V, strided (interleaved) layouts, threads 1 and 3. Sliding windows (query at
 * position p sees keys p - window < j <= p) smaller and larger than the 64-key tile, on decode rows (the GEMV path
 * too), prefill, chunks, GQA and segments; a window wider than every row's keys is bit-identical to none.
 *
 * Tolerance: out is a convex combination of v rows, so |out - ref| <= 2e-6 * (1 + sqrt(D)) * max|v| (scores carry
 * f32 dot-product error of order D * 6e-8 * |q||k|, values in [-1, 1)).
 *
 * On the avx512-bf16 path every case runs twice: asking for f32 (mt_attn_args.bf16 off), which must hold the f32
 * bound, and with bf16 products, where Q, K, P and V are rounded to bf16 (2^-9 relative each): V's rounding moves
 * out by up to 2^-9, P's (its weights) by as much again, and the scores' rounding moves the weights themselves: the
 * bound is 1.5 x 2^-8 (5.9e-3; the worst of these cases is 2.8e-3, a causal row with a few keys). A wrong pairing of
 * k halves or a lost lane puts errors of order 0.1-1 there.
 */
#include <math.h>
#include <string.h>

#include "check.h"
#include "cpu_paths.h"

static uint64_t rng = 0x2545f4914f6cdd1dull;

static float frand(void) {
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((double)(rng >> 40) / (double)(1ull << 23) - 1.0);
}

typedef struct acase {
    int64_t n_q, n_kv;
    int H, Hk, D;
    bool causal, bf16, interleave;
    int64_t q_pos0, window;
    const int64_t *cu;
    int64_t n_seg;
} acase;

static double kv_at(const void *p, bool bf16, int64_t i) {
    return bf16 ? mt_bf16_to_f32(((const uint16_t *)p)[i]) : ((const float *)p)[i];
}

static bool fail_scratch;  /* make the kernel's scratch allocation fail: the unblocked fallback runs */
static bool bf16_products; /* mt_attn_args.bf16 */
static double bf16_worst;  /* the largest error seen with bf16 products */

/* Runs the case; the output [n_q][o_st] is returned (mt_free it) through keep when that is not NULL. */
static void run_case_keep(const acase *c, mt_pool *pool, const char *level, float **keep) {
    int64_t D = c->D, HD = (int64_t)c->H * D, KD = (int64_t)c->Hk * D;
    /* interleave: q, k, v rows live in one fused [T][H*D + 2*Hk*D] buffer as a fused QKV projection leaves them */
    int64_t q_st = c->interleave ? HD + 2 * KD : HD, kv_st = c->interleave ? HD + 2 * KD : KD;
    int64_t nq_alloc = c->n_q * q_st, nkv_alloc = c->n_kv * kv_st + 2 * KD;
    float *q = mt_malloc_array((size_t)nq_alloc, sizeof(float));
    for (int64_t i = 0; i < nq_alloc; i++) q[i] = frand();
    size_t es = c->bf16 ? 2 : 4;
    uint8_t *kbuf = mt_malloc_array((size_t)nkv_alloc, es), *vbuf = mt_malloc_array((size_t)nkv_alloc, es);
    for (int64_t i = 0; i < nkv_alloc; i++) {
        float a = frand(), b = frand();
        if (c->bf16) ((uint16_t *)kbuf)[i] = mt_f32_to_bf16(a), ((uint16_t *)vbuf)[i] = mt_f32_to_bf16(b);
        else ((float *)kbuf)[i] = a, ((float *)vbuf)[i] = b;
    }
    const void *k = kbuf + (c->interleave ? HD * es : 0), *v = vbuf + (c->interleave ? (HD + KD) * es : 0);
    int64_t o_st = HD + 5;
    float *out = mt_malloc_array((size_t)(c->n_q * o_st), sizeof(float));
    for (int64_t i = 0; i < c->n_q * o_st; i++) out[i] = 1234.0f;
    float scale = 1.0f / sqrtf((float)D);
    mt_attn_args a = {.q = q, .q_st = q_st, .q_sh = D, .k = k, .k_st = kv_st, .k_sh = D, .v = v, .v_st = kv_st,
                      .v_sh = D, .kv_dtype = c->bf16 ? MT_BF16 : MT_F32, .out = out, .o_st = o_st, .o_sh = D,
                      .n_q = c->n_q, .n_kv = c->n_kv, .n_heads = c->H, .n_kv_heads = c->Hk, .head_dim = c->D,
                      .scale = scale, .causal = c->causal, .q_pos0 = c->q_pos0, .window = c->window,
                      .cu_seqlens = c->cu,
                      .n_seg = c->n_seg,
                      .bf16 = bf16_products};
    if (fail_scratch) {
        mt_cpu_scratch_release();
        mt_alloc_fail_after(1);
    }
    mt_cpu_attention(pool, &a);
    mt_alloc_fail_after(0);
    double tol = bf16_products ? 1.5 * 0x1p-8 : 2e-6 * (1 + sqrt((double)D)), worst = 0;
    double *s = mt_malloc_array((size_t)MT_MAX(c->n_kv, 1), sizeof(double));
    bool ok = true;
    for (int64_t t = 0; t < c->n_q; t++)
        for (int h = 0; h < c->H; h++) {
            int hk = h / (c->H / c->Hk);
            int64_t lo = 0, hi = c->n_kv;
            if (c->cu) {
                for (int64_t g = 0; g < c->n_seg; g++)
                    if (c->cu[g] <= t && t < c->cu[g + 1]) lo = c->cu[g], hi = c->cu[g + 1];
            }
            if (c->causal && c->q_pos0 + t + 1 < hi) hi = c->q_pos0 + t + 1;
            if (c->causal && c->window > 0 && c->q_pos0 + t - c->window + 1 > lo) lo = c->q_pos0 + t - c->window + 1;
            double mx = -INFINITY, sum = 0;
            for (int64_t j = lo; j < hi; j++) {
                double d = 0;
                for (int64_t x = 0; x < D; x++)
                    d += (double)q[t * q_st + h * D + x] * kv_at(k, c->bf16, j * kv_st + hk * D + x);
                s[j] = d * scale;
                mx = s[j] > mx ? s[j] : mx;
            }
            for (int64_t j = lo; j < hi; j++) sum += (s[j] = exp(s[j] - mx));
            for (int64_t x = 0; x < D; x++) {
                double r = 0;
                for (int64_t j = lo; j < hi; j++) r += s[j] * kv_at(v, c->bf16, j * kv_st + hk * D + x);
                r = hi > lo ? r / sum : 0.0;
                double e = fabs(out[t * o_st + h * D + x] - r);
                worst = e > worst ? e : worst;
                ok &= e <= tol;
            }
            for (int64_t x = HD; x < o_st; x++) ok &= out[t * o_st + x] == 1234.0f;
        }
    CHECK_MSG(ok,
              "attention at %s: T=%lld S=%lld H=%d Hk=%d D=%d causal=%d q_pos0=%lld window=%lld seg=%lld bf16=%d "
              "products=%s: max err %g",
              level, (long long)c->n_q, (long long)c->n_kv, c->H, c->Hk, c->D, c->causal, (long long)c->q_pos0,
              (long long)c->window, (long long)c->n_seg, c->bf16, bf16_products ? "bf16" : "f32", worst);
    if (bf16_products) bf16_worst = MT_MAX(bf16_worst, worst);
    if (c->window) fprintf(stderr, "  window %-4lld T=%-3lld S=%-3lld H=%-2d Hk=%d D=%-3d max err %.2e\n",
                           (long long)c->window, (long long)c->n_q, (long long)c->n_kv, c->H, c->Hk, c->D, worst);
    if (keep) *keep = out;
    else mt_free(out);
    mt_free(q), mt_free(kbuf), mt_free(vbuf), mt_free(s);
}

static void run_case(const acase *c, mt_pool *pool, const char *level) { run_case_keep(c, pool, level, NULL); }

/* The same inputs with window 0 and with a window wider than any row's keys: the same bits. */
static void wide_window_is_none(const acase *c, mt_pool *pool, const char *level) {
    acase w = *c;
    w.window = c->n_kv + (c->q_pos0 > 0 ? c->q_pos0 : 0) + 1;
    uint64_t seed = rng;
    float *a = NULL, *b = NULL;
    run_case_keep(c, pool, level, &a);
    rng = seed;
    run_case_keep(&w, pool, level, &b);
    CHECK_MSG(a && b && memcmp(a, b, (size_t)(c->n_q * ((int64_t)c->H * c->D + 5)) * sizeof(float)) == 0,
              "attention at %s: window %lld and no window differ", level, (long long)w.window);
    mt_free(a), mt_free(b);
}

int main(void) {
    mt_err err;
    mt_pool *pool3 = NULL;
    CHECK(mt_pool_new(3, &pool3, &err) == MT_OK);
    static const int64_t cu1[] = {0, 40, 41, 100, 150};
    static const int64_t cu2[] = {0, 64, 128, 192, 256};
    const acase cases[] = {
        {.n_q = 70, .n_kv = 70, .H = 4, .Hk = 4, .D = 64, .causal = true},                  /* prefill */
        {.n_q = 130, .n_kv = 130, .H = 8, .Hk = 2, .D = 128, .causal = true, .bf16 = true}, /* GQA, bf16 KV */
        {.n_q = 37, .n_kv = 100, .H = 6, .Hk = 3, .D = 80, .causal = true, .q_pos0 = 63},   /* chunked prefill */
        {.n_q = 1, .n_kv = 300, .H = 16, .Hk = 2, .D = 128, .causal = true, .q_pos0 = 299}, /* decode */
        {.n_q = 1, .n_kv = 77, .H = 4, .Hk = 1, .D = 64, .causal = true, .q_pos0 = 76, .bf16 = true}, /* MQA */
        {.n_q = 3, .n_kv = 200, .H = 2, .Hk = 2, .D = 256, .causal = true, .q_pos0 = 197},
        {.n_q = 150, .n_kv = 150, .H = 4, .Hk = 4, .D = 80, .cu = cu1, .n_seg = 4},          /* vision windows */
        {.n_q = 256, .n_kv = 256, .H = 2, .Hk = 2, .D = 64, .cu = cu2, .n_seg = 4, .interleave = true},
        {.n_q = 50, .n_kv = 90, .H = 3, .Hk = 1, .D = 17},                                  /* bidirectional, odd D */
        {.n_q = 65, .n_kv = 65, .H = 2, .Hk = 1, .D = 128, .causal = true, .interleave = true, .bf16 = true},
        {.n_q = 5, .n_kv = 0, .H = 2, .Hk = 2, .D = 64},                                    /* no keys: zeros */
        /* sliding windows: decode rows past the window (GEMV path: 1 query x 4 heads), smaller and larger than
         * the 64-key tile */
        {.n_q = 1, .n_kv = 300, .H = 4, .Hk = 1, .D = 64, .causal = true, .q_pos0 = 299, .window = 7},
        {.n_q = 1, .n_kv = 300, .H = 16, .Hk = 2, .D = 128, .causal = true, .q_pos0 = 299, .window = 100,
         .bf16 = true},
        {.n_q = 3, .n_kv = 200, .H = 2, .Hk = 2, .D = 80, .causal = true, .q_pos0 = 197, .window = 64},
        /* prefill, GQA: a window inside one tile, one across tiles, one of a single key */
        {.n_q = 200, .n_kv = 200, .H = 8, .Hk = 2, .D = 64, .causal = true, .window = 5},
        {.n_q = 300, .n_kv = 300, .H = 4, .Hk = 4, .D = 128, .causal = true, .window = 130, .bf16 = true},
        {.n_q = 70, .n_kv = 70, .H = 2, .Hk = 1, .D = 64, .causal = true, .window = 1, .interleave = true},
        /* a chunk after a prefix, rows that see no key, a window inside causal segments */
        {.n_q = 37, .n_kv = 100, .H = 6, .Hk = 3, .D = 80, .causal = true, .q_pos0 = 63, .window = 20},
        {.n_q = 50, .n_kv = 50, .H = 2, .Hk = 1, .D = 17, .causal = true, .q_pos0 = -3, .window = 9},
        {.n_q = 150, .n_kv = 150, .H = 4, .Hk = 2, .D = 64, .causal = true, .cu = cu1, .n_seg = 4, .window = 30},
        /* decode on a long KV, the keys split into ranges merged after: ranges below the window and past the
         * causal limit see no key */
        {.n_q = 1, .n_kv = 2000, .H = 16, .Hk = 2, .D = 128, .causal = true, .q_pos0 = 1999},
        {.n_q = 1, .n_kv = 1500, .H = 4, .Hk = 1, .D = 64, .causal = true, .q_pos0 = 1499, .window = 600, .bf16 = true},
        {.n_q = 2, .n_kv = 1100, .H = 8, .Hk = 2, .D = 80, .causal = true, .q_pos0 = 500},
    };
    for (int p = 0; p < CPU_PATHS; p++) {
        if (!cpu_path_enter(p, CPU_PATHS_ALL)) continue;
        const char *name = cpu_path_names[p];
        for (int products = 0; products <= (p == CPU_PATH_AVX512_BF16); products++) {
            bf16_products = products;
            for (size_t i = 0; i < MT_ARRAY_LEN(cases); i++) run_case(&cases[i], i % 2 ? pool3 : NULL, name);
            for (size_t i = 0; i < 4; i++) run_case(&cases[i], i % 2 ? NULL : pool3, name);
            for (size_t i = 11; i < MT_ARRAY_LEN(cases); i++) run_case(&cases[i], i % 2 ? NULL : pool3, name);
            for (size_t i = 0; i < 6; i++) wide_window_is_none(&cases[i], i % 2 ? pool3 : NULL, name);
        }
    }
    bf16_products = false;
    if (cpu_path_ran[CPU_PATH_AVX512_BF16]) fprintf(stderr, "bf16 products: worst error %.2e\n", bf16_worst);
    /* the fallback without scratch gives the same answers */
    fail_scratch = true;
    run_case(&cases[2], NULL, "no scratch");
    run_case(&cases[6], NULL, "no scratch");
    run_case(&cases[12], NULL, "no scratch");
    run_case(&cases[17], NULL, "no scratch");
    run_case(&cases[19], NULL, "no scratch");
    fail_scratch = false;
    /* bad head counts leave out untouched */
    float o[4] = {7, 7, 7, 7}, z[4] = {0};
    mt_attn_args bad = {.q = z, .k = z, .v = z, .out = o, .n_q = 1, .n_kv = 1, .n_heads = 3, .n_kv_heads = 2,
                        .head_dim = 1, .q_st = 1, .k_st = 1, .v_st = 1, .o_st = 1};
    mt_cpu_attention(NULL, &bad);
    CHECK(o[0] == 7);
    mt_pool_free(pool3);
    mt_cpu_scratch_release();
    cpu_paths_report("test_kernels_attn", CPU_PATHS_ALL);
    return check_report();
}
