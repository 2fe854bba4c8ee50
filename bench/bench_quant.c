/* bench_quant: linear layers with block-quantized weights (Q8_0, Q8_0_R8 and Q4_K_R8 (Q8_0 and Q4_K as a model loads
 * them), Q4_0, Q4_K, Q6_K) on every kernel level this CPU has,
 * VNNI off and on: decode (M = 1, 4, 8) as GB/s of weight bytes against the measured read bandwidth, prefill as
 * GFLOP/s against the f32 peak (the bf16 peak where bf16 dot products are on: cpu.h), with the bf16 GEMV of the same
 * shape as the yardstick.
 *
 *     bench_quant [threads] [--quick] [--hot] [--shapes]
 *
 * --shapes: only the current level (VNNI on), Qwen2.5-VL-3B's decode shapes (q 2048x2048, gate 11008x2048, down
 * 2048x11008, LM head 151936x2048) at M = 1 (and gate at M = 8) in bf16, Q8_0, Q4_K, Q6_K, then prefill of 512 rows
 * of gate.
 * --hot: one thread, W of 768 rows (1-1.6 MB) read again and again from L2: the kernels' own rate, apart from DRAM
 * and from other processes' memory traffic (the figures in docs/VALIDATION.md).
 *
 *   | column | meaning                                                               |
 *   |--------|-----------------------------------------------------------------------|
 *   | case   | level (+vnni), M x N x K, weight type                                 |
 *   | ms     | best wall time of the repetitions                                     |
 *   | GB/s   | weight bytes (blocks with their scales) / time                        |
 *   | %peak  | GB/s over read bandwidth (M <= 8), GFLOP/s over f32 or bf16 peak (M > 8) |
 *
 * Decode cases rotate through copies of W that together exceed the last-level cache, as a model's layers do.
 * Shape: Qwen2.5-VL-3B's MLP, 11008 x 2048.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tensor/cpu/cpu.h"
#include "tensor/cpu/roofline.h"
#include "tensor/quant.h"

static double g_min_time = 0.3;
static bool g_hot;

enum { MAX_COPIES = 64, SRC_ROWS = 2048 };
#define ROTATE_BYTES ((size_t)512 << 20)

typedef struct qctx {
    mt_pool *pool;
    int64_t M, N, K;
    float *A, *C;
    void *Ws[MAX_COPIES];
    int n_w, next;
    mt_dtype wt;
} qctx;

static void run(qctx *c) {
    mt_cpu_linear(c->pool, c->M, c->N, c->K, c->A, c->K, c->Ws[c->next++ % c->n_w], c->wt, c->K, NULL, c->C, c->N,
                  false);
}

static double best_time(qctx *c) {
    run(c);
    double best = 1e30, start = mt_time_now();
    for (int rep = 0; rep < 3 || mt_time_now() - start < g_min_time; rep++) {
        double t0 = mt_time_now();
        run(c);
        double dt = mt_time_now() - t0;
        best = dt < best ? dt : best;
    }
    return best;
}

static void *xmalloc(size_t n) {
    n = MT_MAX(n, (size_t)1);
    void *p = mt_malloc_aligned(n);
    if (!p) {
        fprintf(stderr, "bench_quant: out of memory\n");
        exit(1);
    }
    return p;
}

static void bench(mt_pool *pool, const mt_roofline *rf, const char *level, int64_t M, int64_t N, int64_t K,
                  mt_dtype wt, const float *wf) {
    size_t wbytes = mt_dtype_is_quant(wt) ? mt_dtype_row_bytes(wt, K) * (size_t)N : (size_t)(N * K) * mt_dtype_size(wt);
    qctx c = {.pool = pool, .M = M, .N = N, .K = K, .wt = wt};
    c.A = xmalloc(sizeof(float) * (size_t)(M * K));
    c.C = xmalloc(sizeof(float) * (size_t)(M * N));
    for (int64_t i = 0; i < M * K; i++) c.A[i] = wf[i % (MT_MIN(N, (int64_t)SRC_ROWS) * K)];
    c.n_w = M <= 8 && !g_hot ? (int)MT_MIN((size_t)MAX_COPIES, ROTATE_BYTES / wbytes + 1) : 1;
    c.Ws[0] = xmalloc(wbytes);
    mt_err err;
    /* at most SRC_ROWS rows are converted (the K-quant quantizer is slow), then repeated to N */
    int64_t src_rows = MT_MIN(N, (int64_t)SRC_ROWS);
    size_t src_bytes = wbytes / (size_t)N * (size_t)src_rows;
    if (mt_dtype_is_quant(wt)) {
        if (mt_quantize(wt, wf, src_rows, K, c.Ws[0], &err) != MT_OK) {
            fprintf(stderr, "bench_quant: %s\n", err.msg);
            exit(1);
        }
    } else {
        mt_cpu_from_f32(src_rows * K, wf, c.Ws[0], wt);
    }
    for (size_t off = src_bytes; off < wbytes; off += src_bytes)
        memcpy((char *)c.Ws[0] + off, c.Ws[0], MT_MIN(src_bytes, wbytes - off));
    for (int i = 1; i < c.n_w; i++) memcpy(c.Ws[i] = xmalloc(wbytes), c.Ws[0], wbytes);
    double t = best_time(&c);
    double gbs = (double)wbytes / t / 1e9, gflops = 2.0 * M * N * K / t / 1e9;
    char name[96];
    snprintf(name, sizeof name, "%-12s M=%lld N=%lld K=%lld W=%s", level, (long long)M, (long long)N, (long long)K,
             mt_dtype_name(wt));
    /* the GEMM (prefill) multiplies on bf16 dot products where they are on, so its peak is theirs */
    bool mem = M <= 8, bf16 = !mem && mt_cpu_bf16_dot_on();
    double peak = bf16 ? rf->bf16_gflops : rf->f32_gflops;
    printf("%-46s %8.3f %8.1f %8.1f %6.1f%% of %s\n", name, t * 1e3, gflops, gbs,
           mem ? 100 * gbs / rf->read_gbs : 100 * gflops / peak, mem ? "read bw" : bf16 ? "bf16 peak" : "f32 peak");
    for (int i = 0; i < c.n_w; i++) mt_free(c.Ws[i]);
    mt_free(c.A);
    mt_free(c.C);
}

int main(int argc, char **argv) {
    int threads = 0;
    bool quick = false, shapes = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) quick = true;
        else if (strcmp(argv[i], "--shapes") == 0) shapes = true;
        else if (strcmp(argv[i], "--hot") == 0) g_hot = true;
        else threads = atoi(argv[i]);
    }
    if (quick) g_min_time = 0.05;
    if (g_hot) threads = 1;
    mt_err err;
    mt_pool *pool = NULL;
    mt_roofline rf;
    if (mt_pool_new(threads, &pool, &err) != MT_OK || mt_roofline_measure(pool, 0, &rf, &err) != MT_OK) {
        fprintf(stderr, "bench_quant: %s\n", err.msg);
        return 1;
    }
    char paths[160];
    printf("threads  %d\nroofline f32 %.1f GFLOP/s, bf16 %.1f GFLOP/s, read %.1f GB/s\npaths    %s\n\n", rf.threads,
           rf.f32_gflops, rf.bf16_gflops, rf.read_gbs, mt_cpu_paths(paths, sizeof paths));
    printf("%-46s %8s %8s %8s %7s\n", "case", "ms", "GFLOP/s", "GB/s", "%peak");
    const int64_t N = g_hot ? 768 : 11008, K = 2048, KMAX = 11008;
    float *wf = xmalloc(sizeof(float) * (size_t)(SRC_ROWS * KMAX));
    uint32_t s = 12345;
    for (int64_t i = 0; i < SRC_ROWS * KMAX; i++) {
        s = s * 1664525u + 1013904223u;
        wf[i] = (float)(s >> 8) / (float)(1u << 24) - 0.5f;
    }
    const mt_dtype types[] = {MT_Q8_0, MT_Q8_0_R8, MT_Q4_0, MT_Q4_K, MT_Q4_K_R8, MT_Q6_K};
    if (shapes) {
        const int64_t shape[4][2] = {{2048, 2048}, {11008, 2048}, {2048, 11008}, {151936, 2048}};
        const mt_dtype st[] = {MT_BF16, MT_Q8_0, MT_Q8_0_R8, MT_Q4_K, MT_Q4_K_R8, MT_Q6_K};
        const char *lv = mt_cpu_level_name(mt_cpu_detect());
        for (int m = 1; m <= 8; m += 7)
            for (int sh = 0; sh < 4; sh++)
                for (size_t t = 0; t < MT_ARRAY_LEN(st); t++)
                    if (m == 1 || sh == 1) bench(pool, &rf, lv, m, shape[sh][0], shape[sh][1], st[t], wf);
        int64_t P = quick ? 64 : 512;
        bench(pool, &rf, "prefill", P, N, K, MT_BF16, wf);
        for (size_t t = 0; t < MT_ARRAY_LEN(st); t++)
            if (st[t] != MT_BF16) bench(pool, &rf, "prefill", P, N, K, st[t], wf);
        mt_free(wf);
        mt_pool_free(pool);
        return 0;
    }
    for (int lv = MT_CPU_SCALAR; lv <= (int)mt_cpu_detect(); lv++) {
        mt_cpu_set_level((mt_cpu_level)lv);
        for (int vnni = 0; vnni < 2; vnni++) {
            if (mt_cpu_set_vnni(vnni) != (bool)vnni) continue;
            char level[24];
            snprintf(level, sizeof level, "%s%s", mt_cpu_level_name((mt_cpu_level)lv), vnni ? "+vnni" : "");
            if (lv == MT_CPU_SCALAR && quick) continue;
            bench(pool, &rf, level, 1, N, K, MT_BF16, wf);
            for (size_t t = 0; t < MT_ARRAY_LEN(types); t++) {
                bench(pool, &rf, level, 1, N, K, types[t], wf);
                if (lv == (int)mt_cpu_detect()) {
                    bench(pool, &rf, level, 4, N, K, types[t], wf);
                    bench(pool, &rf, level, 8, N, K, types[t], wf);
                }
            }
        }
    }
    mt_cpu_set_level(mt_cpu_detect());
    mt_cpu_set_vnni(true);
    if (g_hot) {
        mt_free(wf);
        mt_pool_free(pool);
        return 0;
    }
    int64_t P = quick ? 64 : 256;
    bench(pool, &rf, "prefill", P, N, K, MT_F32, wf);
    for (size_t t = 0; t < MT_ARRAY_LEN(types); t++) bench(pool, &rf, "prefill", P, N, K, types[t], wf);
    mt_free(wf);
    mt_pool_free(pool);
    return 0;
}
