/* tensor/cpu attention backward (attention_backward.c):
 *
 *   | check                                   | reference                            | tolerance                     |
 *   |-----------------------------------------|--------------------------------------|-------------------------------|
 *   | dq, dk, dv of L = sum(dout * out)       | central differences of the forward   | |fd - g| <= 1e-4 + 1e-3 |g|   |
 *   |   causal, q_pos0 > 0, GQA 4 on 2,       | kernel mt_cpu_attention (f32), step  |                               |
 *   |   3 segments, rows that see no key,     | 2^-7, divided by the step the f32    |                               |
 *   |   interleaved QKV, odd head dim,        | inputs really took                   |                               |
 *   |   sliding windows (prefill, decode, GQA)|                                      |                               |
 *   | rows that see no key, layout gaps       | untouched                            | exact                         |
 *   | every ISA level                         | the scalar level                     | 1e-5 * max |g|                |
 *   | 1 thread and 3 threads                  | each other                           | bit for bit                   |
 *   | fallback without scratch                | the tiled kernel                     | 1e-5 * max |g|                |
 *   | bad arguments, bf16 K/V                 | gradients untouched                  | exact                         |
 *
 * The step: L carries f32 rounding of order D * 6e-8 per output row a perturbation moves, so the difference
 * quotient has an error of ~1e-6 / (2 * 2^-7) ~ 6e-5, and the truncation error is h^2 / 6 * |L'''| ~ 1e-5.
 *
 * With a directory argument (tests/train/attn_grad_ref.py writes it) the test instead compares, at every level and
 * with 1 and 3 threads, out and dq, dk, dv against PyTorch autograd in float64 on the same f32 inputs, within
 * 1e-5 * max |ref| per tensor.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "cpu_paths.h"
#include "io/npy.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static float frand(void) {
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((double)(rng >> 40) / (double)(1ull << 23) - 1.0);
}

typedef struct bcase {
    const char *name;
    int64_t n_q, n_kv;
    int H, Hk, D;
    bool causal, interleave;
    int64_t q_pos0, window;
    const int64_t *cu;
    int64_t n_seg;
} bcase;

/* q, k and v live in one buffer x (a fused QKV row when interleaved, three blocks otherwise); the gradients in a
 * buffer of the same layout, so every element of x that is no input is a gap the backward must not touch. */
typedef struct lay {
    int64_t n, q_st, kv_st, q_off, k_off, v_off, o_st;
    bool *is_param;
} lay;

static lay layout(const bcase *c) {
    int64_t HD = (int64_t)c->H * c->D, KD = (int64_t)c->Hk * c->D;
    lay l = {.o_st = HD + 3};
    if (c->interleave) {
        l.q_st = l.kv_st = HD + 2 * KD;
        l.n = MT_MAX(c->n_q, c->n_kv) * l.q_st;
        l.k_off = HD, l.v_off = HD + KD;
    } else {
        l.q_st = HD, l.kv_st = KD;
        l.n = c->n_q * HD + 2 * c->n_kv * KD;
        l.k_off = c->n_q * HD, l.v_off = c->n_q * HD + c->n_kv * KD;
    }
    l.is_param = mt_calloc((size_t)l.n, sizeof(bool));
    for (int64_t t = 0; t < c->n_q; t++)
        for (int64_t i = 0; i < HD; i++) l.is_param[l.q_off + t * l.q_st + i] = true;
    for (int64_t s = 0; s < c->n_kv; s++)
        for (int64_t i = 0; i < KD; i++)
            l.is_param[l.k_off + s * l.kv_st + i] = l.is_param[l.v_off + s * l.kv_st + i] = true;
    return l;
}

static mt_attn_args args(const bcase *c, const lay *l, const float *x, float *out) {
    return (mt_attn_args){.q = x + l->q_off, .q_st = l->q_st, .q_sh = c->D, .k = x + l->k_off, .k_st = l->kv_st,
                          .k_sh = c->D, .v = x + l->v_off, .v_st = l->kv_st, .v_sh = c->D, .kv_dtype = MT_F32,
                          .out = out, .o_st = l->o_st, .o_sh = c->D, .n_q = c->n_q, .n_kv = c->n_kv,
                          .n_heads = c->H, .n_kv_heads = c->Hk, .head_dim = c->D,
                          .scale = 1.0f / sqrtf((float)c->D), .causal = c->causal, .q_pos0 = c->q_pos0,
                          .window = c->window, .cu_seqlens = c->cu, .n_seg = c->n_seg};
}

static mt_attn_grad grads(const lay *l, const float *dout, float *gbuf) {
    return (mt_attn_grad){.dout = dout, .dq = gbuf + l->q_off, .dk = gbuf + l->k_off, .dv = gbuf + l->v_off};
}

static double loss(const bcase *c, const lay *l, const float *x, float *out, const float *dout) {
    mt_attn_args a = args(c, l, x, out);
    mt_cpu_attention(NULL, &a);
    double s = 0;
    for (int64_t t = 0; t < c->n_q; t++)
        for (int64_t i = 0; i < (int64_t)c->H * c->D; i++) s += (double)dout[t * l->o_st + i] * out[t * l->o_st + i];
    return s;
}

/* Whether query t sees any key, as the forward decides. */
static bool sees_keys(const bcase *c, int64_t t) {
    int64_t lo = 0, hi = c->n_kv;
    if (c->cu) {
        hi = 0;
        for (int64_t s = 0; s < c->n_seg; s++)
            if (c->cu[s] <= t && t < c->cu[s + 1]) lo = c->cu[s], hi = c->cu[s + 1];
    }
    if (c->causal) hi = MT_MIN(hi, c->q_pos0 + t + 1);
    if (c->causal && c->window > 0) lo = MT_MAX(lo, c->q_pos0 + t - c->window + 1);
    return hi > lo;
}

static const float GBASE = 0.5f; /* the gradient buffers start here: the kernel adds */

static void fd_case(const bcase *c, mt_pool *pool, const char *level) {
    lay l = layout(c);
    float *x = mt_malloc_array((size_t)l.n, sizeof(float)), *g = mt_malloc_array((size_t)l.n, sizeof(float));
    float *out = mt_malloc_array((size_t)(c->n_q * l.o_st), sizeof(float));
    float *dout = mt_malloc_array((size_t)(c->n_q * l.o_st), sizeof(float));
    for (int64_t i = 0; i < l.n; i++) x[i] = frand(), g[i] = GBASE;
    for (int64_t i = 0; i < c->n_q * l.o_st; i++) dout[i] = frand();
    mt_attn_args a = args(c, &l, x, out);
    mt_attn_grad gr = grads(&l, dout, g);
    mt_cpu_attention(NULL, &a);
    mt_cpu_attention_backward(pool, &a, &gr);
    const float h = 1.0f / 128;
    double worst = 0, worst_g = 0;
    bool ok = true, gaps = true;
    for (int64_t i = 0; i < l.n; i++) {
        if (!l.is_param[i]) {
            gaps &= g[i] == GBASE;
            continue;
        }
        float x0 = x[i], xp = x0 + h, xm = x0 - h;
        x[i] = xp;
        double lp = loss(c, &l, x, out, dout);
        x[i] = xm;
        double lm = loss(c, &l, x, out, dout);
        x[i] = x0;
        double fd = (lp - lm) / ((double)xp - (double)xm), an = (double)g[i] - GBASE, e = fabs(fd - an);
        ok &= e <= 1e-4 + 1e-3 * fabs(an);
        worst = MT_MAX(worst, e);
        worst_g = MT_MAX(worst_g, fabs(an));
    }
    bool blind = true; /* rows that see no key: dq exactly untouched */
    for (int64_t t = 0; t < c->n_q; t++)
        if (!sees_keys(c, t))
            for (int64_t i = 0; i < (int64_t)c->H * c->D; i++) blind &= g[l.q_off + t * l.q_st + i] == GBASE;
    CHECK_MSG(ok, "%s at %s: finite differences: max err %.3g (max |grad| %.3g)", c->name, level, worst, worst_g);
    CHECK_MSG(gaps, "%s at %s: the backward wrote outside dq, dk, dv", c->name, level);
    CHECK_MSG(blind, "%s at %s: a query that sees no key got a gradient", c->name, level);
    fprintf(stderr, "  %-22s fd max err %.2e, max |grad| %.2f\n", c->name, worst, worst_g);
    mt_free(x), mt_free(g), mt_free(out), mt_free(dout), mt_free(l.is_param);
}

/* The gradients of one random case at the current level (g starts at GBASE). */
static void run_grads(const bcase *c, const lay *l, mt_pool *pool, bool no_scratch, float *g) {
    uint64_t seed = rng;
    float *x = mt_malloc_array((size_t)l->n, sizeof(float));
    float *out = mt_malloc_array((size_t)(c->n_q * l->o_st), sizeof(float));
    float *dout = mt_malloc_array((size_t)(c->n_q * l->o_st), sizeof(float));
    for (int64_t i = 0; i < l->n; i++) x[i] = 2 * frand(), g[i] = GBASE;
    for (int64_t i = 0; i < c->n_q * l->o_st; i++) dout[i] = frand();
    rng = seed;
    mt_attn_args a = args(c, l, x, out);
    mt_attn_grad gr = grads(l, dout, g);
    mt_cpu_attention(NULL, &a);
    if (no_scratch) {
        mt_cpu_scratch_release();
        mt_alloc_fail_after(1);
    }
    mt_cpu_attention_backward(pool, &a, &gr);
    mt_alloc_fail_after(0);
    mt_free(x), mt_free(out), mt_free(dout);
}

static double rel_err(int64_t n, const float *a, const float *b) {
    double e = 0, m = 0;
    for (int64_t i = 0; i < n; i++) {
        e = MT_MAX(e, fabs((double)a[i] - b[i]));
        m = MT_MAX(m, fabs((double)b[i] - GBASE));
    }
    return m > 0 ? e / m : e;
}

/* Every level against the scalar one, 1 against 3 threads, and the no-scratch fallback. */
static void agree_case(const bcase *c, mt_pool *pool3) {
    lay l = layout(c);
    float *ref = mt_malloc_array((size_t)l.n, sizeof(float)), *g1 = mt_malloc_array((size_t)l.n, sizeof(float));
    float *g3 = mt_malloc_array((size_t)l.n, sizeof(float));
    mt_cpu_set_level(MT_CPU_SCALAR);
    run_grads(c, &l, NULL, false, ref);
    for (int p = 0; p < CPU_PATHS; p++) {
        if (!cpu_path_enter(p, CPU_PATHS_NO_BF16)) continue;
        const char *name = cpu_path_names[p];
        run_grads(c, &l, NULL, false, g1);
        run_grads(c, &l, pool3, false, g3);
        double e = rel_err(l.n, g1, ref);
        CHECK_MSG(e <= 1e-5, "%s: %s against scalar: %.3g of max |grad|", c->name, name, e);
        CHECK_MSG(memcmp(g1, g3, (size_t)l.n * sizeof(float)) == 0, "%s at %s: 1 and 3 threads differ", c->name, name);
        fprintf(stderr, "  %-22s %-6s vs scalar %.2e of max |grad|\n", c->name, name, e);
    }
    run_grads(c, &l, NULL, true, g1);
    double e = rel_err(l.n, g1, g3);
    CHECK_MSG(e <= 1e-5, "%s: fallback without scratch: %.3g of max |grad|", c->name, e);
    mt_free(ref), mt_free(g1), mt_free(g3), mt_free(l.is_param);
}

static void bad_args(void) {
    float z[8] = {0}, o[8] = {0}, dq[8], dk[8], dv[8];
    for (int i = 0; i < 8; i++) dq[i] = dk[i] = dv[i] = 7.0f, z[i] = 0.1f * (float)i;
    mt_attn_args a = {.q = z, .k = z, .v = z, .out = o, .n_q = 2, .n_kv = 2, .n_heads = 2, .n_kv_heads = 1,
                      .head_dim = 2, .q_st = 4, .q_sh = 2, .k_st = 2, .v_st = 2, .o_st = 4, .o_sh = 2,
                      .scale = 1.0f, .kv_dtype = MT_F32};
    mt_attn_grad g = {.dout = z, .dq = dq, .dk = dk, .dv = dv};
    mt_attn_args bad[5] = {a, a, a, a, a};
    bad[0].n_kv_heads = 3;        /* heads do not divide */
    bad[1].kv_dtype = MT_BF16;    /* backward is f32 only */
    bad[2].n_kv = 0;              /* no keys: nothing to add */
    bad[3].cu_seqlens = (int64_t[]){0, 2};
    bad[3].n_seg = 0;             /* segments without a count */
    bad[4].head_dim = 0;
    for (int i = 0; i < 5; i++) mt_cpu_attention_backward(NULL, &bad[i], &g);
    mt_attn_grad no_dout = {.dq = dq, .dk = dk, .dv = dv};
    mt_cpu_attention_backward(NULL, &a, &no_dout);
    mt_cpu_attention_backward(NULL, &a, NULL);
    mt_cpu_attention_backward(NULL, NULL, &g);
    bool same = true;
    for (int i = 0; i < 8; i++) same &= dq[i] == 7.0f && dk[i] == 7.0f && dv[i] == 7.0f;
    CHECK_MSG(same, "bad arguments changed a gradient");
    /* NULL gradients are skipped; the others are as when all three are asked for */
    float dk2[8], dv2[8];
    for (int i = 0; i < 8; i++) dk2[i] = dv2[i] = 7.0f;
    mt_attn_grad only_k = {.dout = z, .dk = dk2}, only_v = {.dout = z, .dv = dv2};
    mt_cpu_attention(NULL, &a);
    mt_cpu_attention_backward(NULL, &a, &g);
    mt_cpu_attention_backward(NULL, &a, &only_k);
    mt_cpu_attention_backward(NULL, &a, &only_v);
    CHECK(memcmp(dk, dk2, sizeof dk) == 0 && memcmp(dv, dv2, sizeof dv) == 0);
}

/* ---- against PyTorch (fixtures from tests/train/attn_grad_ref.py) ---- */

static bool load(const char *dir, int i, const char *what, mt_npy *a) {
    char path[1024];
    mt_err err;
    snprintf(path, sizeof path, "%s/case%d_%s.npy", dir, i, what);
    if (mt_npy_read(path, a, &err) == MT_OK) return true;
    return false;
}

static double max_rel(int64_t n, const float *x, const float *ref) {
    double e = 0, m = 0;
    for (int64_t i = 0; i < n; i++) {
        e = MT_MAX(e, fabs((double)x[i] - ref[i]));
        m = MT_MAX(m, fabs((double)ref[i]));
    }
    return m > 0 ? e / m : e;
}

static int torch_cases(const char *dir, mt_pool *pool3) {
    int n_cases = 0;
    for (int i = 0;; i++) {
        enum { META, SCALE, Q, K, V, DOUT, OUT, DQ, DK, DV, CU, N_ARR };
        static const char *names[] = {"meta", "scale", "q", "k", "v", "dout", "out", "dq", "dk", "dv", "cu"};
        mt_npy arr[N_ARR] = {0};
        if (!load(dir, i, "meta", &arr[META])) break;
        bool ok = arr[META].dtype == MT_I64 && arr[META].shape[0] == 9;
        for (int f = SCALE; f < CU && ok; f++) {
            ok = load(dir, i, names[f], &arr[f]) && arr[f].dtype == MT_F32;
            CHECK_MSG(ok, "case %d: %s/case%d_%s.npy missing or not f32", i, dir, i, names[f]);
        }
        const int64_t *m = ok ? arr[META].data : NULL;
        if (ok && m[7] > 0) ok = load(dir, i, "cu", &arr[CU]) && arr[CU].dtype == MT_I64;
        if (ok) {
            int64_t T = m[0], S = m[1], H = m[2], Hk = m[3], D = m[4];
            ok = arr[Q].nbytes == (size_t)(T * H * D) * 4 && arr[K].nbytes == (size_t)(S * Hk * D) * 4 &&
                 arr[V].nbytes == arr[K].nbytes && arr[DOUT].nbytes == arr[Q].nbytes;
            CHECK_MSG(ok, "case %d: array sizes do not match the meta", i);
        }
        if (ok) {
            n_cases++;
            int64_t T = m[0], S = m[1], H = m[2], Hk = m[3], D = m[4], nq = T * H * D, nk = S * Hk * D;
            float *out = mt_malloc_array((size_t)nq, sizeof(float)), *dq = mt_malloc_array((size_t)nq, sizeof(float));
            float *dk = mt_malloc_array((size_t)nk, sizeof(float)), *dv = mt_malloc_array((size_t)nk, sizeof(float));
            mt_attn_args a = {.q = arr[Q].data, .q_st = H * D, .q_sh = D, .k = arr[K].data, .k_st = Hk * D,
                              .k_sh = D, .v = arr[V].data, .v_st = Hk * D, .v_sh = D, .kv_dtype = MT_F32,
                              .out = out, .o_st = H * D, .o_sh = D, .n_q = T, .n_kv = S, .n_heads = (int)H,
                              .n_kv_heads = (int)Hk, .head_dim = (int)D, .scale = *(float *)arr[SCALE].data,
                              .causal = m[5] != 0, .q_pos0 = m[6], .cu_seqlens = m[7] > 0 ? arr[CU].data : NULL,
                              .n_seg = m[7], .window = m[8]};
            mt_attn_grad g = {.dout = arr[DOUT].data, .dq = dq, .dk = dk, .dv = dv};
            for (int p = 0; p < CPU_PATHS; p++) {
                if (!cpu_path_enter(p, CPU_PATHS_NO_BF16)) continue;
                const char *name = cpu_path_names[p];
                for (int th = 0; th < 2; th++) {
                    memset(dq, 0, (size_t)nq * 4), memset(dk, 0, (size_t)nk * 4), memset(dv, 0, (size_t)nk * 4);
                    mt_cpu_attention(th ? pool3 : NULL, &a);
                    mt_cpu_attention_backward(th ? pool3 : NULL, &a, &g);
                    double eo = max_rel(nq, out, arr[OUT].data), eq = max_rel(nq, dq, arr[DQ].data);
                    double ek = max_rel(nk, dk, arr[DK].data), ev = max_rel(nk, dv, arr[DV].data);
                    CHECK_MSG(eo <= 1e-5 && eq <= 1e-5 && ek <= 1e-5 && ev <= 1e-5,
                              "case %d at %s, %d threads: out %.3g dq %.3g dk %.3g dv %.3g of max |ref|", i, name,
                              th ? 3 : 1, eo, eq, ek, ev);
                    fprintf(stderr,
                            "case %d T=%lld S=%lld H=%lld Hk=%lld D=%lld causal=%d q_pos0=%lld seg=%lld "
                            "window=%lld %s %dt: err/max|ref| out %.1e dq %.1e dk %.1e dv %.1e\n",
                            i, (long long)T, (long long)S, (long long)H, (long long)Hk, (long long)D, (int)m[5],
                            (long long)m[6], (long long)m[7], (long long)m[8], name, th ? 3 : 1, eo, eq, ek, ev);
                }
            }
            mt_free(out), mt_free(dq), mt_free(dk), mt_free(dv);
        }
        for (int f = 0; f < N_ARR; f++) mt_npy_free(&arr[f]);
    }
    CHECK_MSG(n_cases > 0, "no cases in %s", dir);
    return n_cases;
}

int main(int argc, char **argv) {
    mt_err err;
    mt_pool *pool3 = NULL;
    CHECK(mt_pool_new(3, &pool3, &err) == MT_OK);
    if (argc > 1) {
        torch_cases(argv[1], pool3);
    } else {
        static const int64_t cu3[] = {0, 3, 4, 10};
        static const int64_t cu_big[] = {0, 37, 38, 130, 200};
        const bcase fd[] = {
            {.name = "causal", .n_q = 9, .n_kv = 9, .H = 2, .Hk = 2, .D = 8, .causal = true},
            {.name = "causal q_pos0=5", .n_q = 6, .n_kv = 11, .H = 2, .Hk = 1, .D = 8, .causal = true, .q_pos0 = 5},
            {.name = "GQA 4 on 2", .n_q = 10, .n_kv = 10, .H = 4, .Hk = 2, .D = 8, .causal = true, .interleave = true},
            {.name = "3 segments", .n_q = 10, .n_kv = 10, .H = 2, .Hk = 2, .D = 8, .cu = cu3, .n_seg = 3},
            {.name = "3 segments causal", .n_q = 10, .n_kv = 10, .H = 4, .Hk = 2, .D = 6, .causal = true, .cu = cu3,
             .n_seg = 3, .interleave = true},
            {.name = "rows see no key", .n_q = 7, .n_kv = 7, .H = 2, .Hk = 1, .D = 8, .causal = true, .q_pos0 = -2},
            {.name = "bidirectional D=5", .n_q = 5, .n_kv = 12, .H = 3, .Hk = 1, .D = 5},
            {.name = "window 3", .n_q = 9, .n_kv = 9, .H = 2, .Hk = 2, .D = 8, .causal = true, .window = 3},
            {.name = "window 4 GQA q_pos0=5", .n_q = 6, .n_kv = 11, .H = 4, .Hk = 2, .D = 8, .causal = true,
             .q_pos0 = 5, .window = 4, .interleave = true},
            {.name = "window 5 decode", .n_q = 1, .n_kv = 12, .H = 4, .Hk = 1, .D = 8, .causal = true, .q_pos0 = 11,
             .window = 5},
            {.name = "window 1", .n_q = 5, .n_kv = 5, .H = 2, .Hk = 1, .D = 6, .causal = true, .window = 1},
            {.name = "window 3 segments", .n_q = 10, .n_kv = 10, .H = 2, .Hk = 2, .D = 8, .causal = true, .cu = cu3,
             .n_seg = 3, .window = 3},
            {.name = "window 2 blind rows", .n_q = 7, .n_kv = 7, .H = 2, .Hk = 1, .D = 8, .causal = true,
             .q_pos0 = -2, .window = 2},
        };
        const bcase big[] = {
            {.name = "GQA causal T=150", .n_q = 150, .n_kv = 150, .H = 8, .Hk = 2, .D = 64, .causal = true,
             .interleave = true},
            {.name = "segments causal D=80", .n_q = 200, .n_kv = 200, .H = 4, .Hk = 4, .D = 80, .causal = true,
             .cu = cu_big, .n_seg = 4},
            {.name = "chunk q_pos0=90 D=17", .n_q = 40, .n_kv = 130, .H = 6, .Hk = 3, .D = 17, .causal = true,
             .q_pos0 = 90},
            {.name = "bidirectional D=128", .n_q = 70, .n_kv = 70, .H = 2, .Hk = 1, .D = 128},
            {.name = "window 5 GQA T=150", .n_q = 150, .n_kv = 150, .H = 8, .Hk = 2, .D = 64, .causal = true,
             .window = 5, .interleave = true},
            {.name = "window 100 T=260", .n_q = 260, .n_kv = 260, .H = 4, .Hk = 2, .D = 80, .causal = true,
             .window = 100},
            {.name = "window 70 chunk q_pos0=90", .n_q = 40, .n_kv = 130, .H = 6, .Hk = 3, .D = 17, .causal = true,
             .q_pos0 = 90, .window = 70},
            {.name = "window 30 decode", .n_q = 1, .n_kv = 200, .H = 8, .Hk = 2, .D = 64, .causal = true,
             .q_pos0 = 199, .window = 30},
        };
        for (int p = 0; p < CPU_PATHS; p++) {
            if (!cpu_path_enter(p, CPU_PATHS_NO_BF16)) continue;
            for (size_t i = 0; i < MT_ARRAY_LEN(fd); i++) fd_case(&fd[i], i % 2 ? pool3 : NULL, cpu_path_names[p]);
        }
        for (size_t i = 0; i < MT_ARRAY_LEN(big); i++) agree_case(&big[i], pool3);
        bad_args();
    }
    mt_pool_free(pool3);
    mt_cpu_scratch_release();
    cpu_paths_report("test_kernels_attn_backward", CPU_PATHS_NO_BF16);
    return check_report();
}
