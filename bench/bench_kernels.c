/* bench_kernels: GEMM, GEMV and attention throughput on LLM shapes, each as a share of this machine's measured
 * roofline (peak FMA rate for compute-bound kernels, read bandwidth for memory-bound ones).
 *
 *     bench_kernels [threads] [--quick] [--cpu-time] [--only TEXT]
 *
 * threads defaults to the online CPUs; MT_CPU=avx2 etc. picks a level. --cpu-time times by the process's CPU time
 * instead of the wall clock: with 1 thread on a shared machine, the time other processes held the core is then not
 * counted (their use of the caches and of memory bandwidth still is). --only runs the cases whose name contains TEXT
 * (up to 8 of them: any).
 * --mapped reads the cold cases' weights from a file mapping in $TMPDIR (page cache in 4 KiB pages, as a model's
 * weights are), not from anonymous memory (which the kernel may back with 2 MiB pages).
 *
 * Output: one header block (commit, CPU, level, threads, roofline) and one line per case:
 *
 *   | column   | meaning                                                                |
 *   |----------|------------------------------------------------------------------------|
 *   | case     | kernel and shape (M x N x K; attention T x S, heads, head dim)         |
 *   | ms       | best wall time of the repetitions                                      |
 *   | GFLOP/s  | 2 M N K / time (attention: 4 D H x visible (query, key) pairs / time)   |
 *   | GB/s     | bytes of weights or K/V read / time                                    |
 *   | %peak    | GFLOP/s over the measured f32 or bf16 peak (GB/s over read bandwidth)  |
 *
 * Memory-bound cases (M <= 16, decode attention) rotate through copies of their operands larger than the caches.
 * Shapes follow Qwen2.5-VL-3B (hidden 2048, MLP 11008, 16 heads / 2 kv heads of 128; vision 16 heads of 80).
 * The commit comes from MT_COMMIT in the environment, else `git describe` in MT_SOURCE_DIR (set by CMake).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/file.h"

#include "tensor/cpu/cpu.h"
#include "tensor/cpu/roofline.h"

static double g_min_time = 0.3;
static bool g_cpu_time, g_mapped;
static const char *g_only[8];
static int g_n_only;

static double now(void) {
    if (!g_cpu_time) return mt_time_now();
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static bool selected(const char *name) {
    for (int i = 0; i < g_n_only; i++)
        if (strstr(name, g_only[i])) return true;
    return g_n_only == 0;
}

static float *randf(int64_t n) {
    float *p = mt_malloc_array((size_t)n, sizeof(float));
    if (!p) {
        fprintf(stderr, "bench_kernels: out of memory\n");
        exit(1);
    }
    uint32_t s = 12345;
    for (int64_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        p[i] = (float)(s >> 8) / (float)(1u << 24) - 0.5f;
    }
    return p;
}

/* A fresh copy of x in dtype dt. */
static void *to_dtype(const float *x, int64_t n, mt_dtype dt) {
    void *h = mt_malloc_array((size_t)n, mt_dtype_size(dt));
    if (!h) {
        fprintf(stderr, "bench_kernels: out of memory\n");
        exit(1);
    }
    mt_cpu_from_f32(n, x, h, dt);
    return h;
}

typedef void (*bench_fn)(void *ctx);

/* Best time of repeated runs after a warm-up, repeating for at least g_min_time seconds and 3 runs. */
static double best_time(bench_fn fn, void *ctx) {
    fn(ctx);
    double best = 1e30, start = now();
    for (int rep = 0; rep < 3 || now() - start < g_min_time; rep++) {
        double t0 = now();
        fn(ctx);
        double dt = now() - t0;
        best = dt < best ? dt : best;
    }
    return best;
}

/* Memory-bound cases cycle through copies of their weights (or K/V) that together exceed the last-level cache, so
 * each call reads from DRAM as a model's layers do. */
#define ROTATE_BYTES ((size_t)512 << 20)
enum { MAX_COPIES = 1024 };

static int n_copies(size_t bytes, bool mem_bound) {
    return mem_bound ? (int)MT_MAX((size_t)1, MT_MIN((size_t)MAX_COPIES, ROTATE_BYTES / bytes + 1)) : 1;
}

typedef struct lin_ctx {
    mt_pool *pool;
    int64_t M, N, K;
    const float *A;
    void *Ws[MAX_COPIES];
    int n_w, next;
    mt_mapping map; /* --mapped: the copies, one after another in a file */
    mt_dtype wt;
    float *C;
    bool transpose_a; /* use mt_cpu_matmul_f32 with A stored [K][M] (a backward-pass shape) */
} lin_ctx;

static void lin_run(void *p) {
    lin_ctx *c = p;
    const void *W = c->Ws[c->next++ % c->n_w];
    if (c->transpose_a)
        mt_cpu_matmul_f32(c->pool, c->M, c->N, c->K, c->A, 1, c->M, W, 1, c->K, c->C, c->N, false);
    else
        mt_cpu_linear(c->pool, c->M, c->N, c->K, c->A, c->K, W, c->wt, c->K, NULL, c->C, c->N, false);
}

static void die(const char *what) {
    fprintf(stderr, "bench_kernels: %s\n", what);
    exit(1);
}

/* c->n_w copies of w written one after another to an unlinked file in $TMPDIR, and mapped */
static void map_copies(lin_ctx *c, const float *wf, int64_t n, size_t w_bytes) {
    const char *dir = getenv("TMPDIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/bench_kernels_w.XXXXXX", dir && *dir ? dir : "/tmp");
    int fd = mkstemp(path);
    if (fd < 0) die("cannot create a file in $TMPDIR for --mapped");
    FILE *f = fdopen(fd, "wb");
    void *w = to_dtype(wf, n, c->wt);
    for (int i = 0; i < c->n_w && f; i++)
        if (fwrite(w, 1, w_bytes, f) != w_bytes) die("cannot write the --mapped file (disk full?)");
    mt_free(w);
    if (!f || fclose(f) != 0) die("cannot write the --mapped file");
    mt_err err;
    mt_status st = mt_file_map(path, &c->map, &err);
    unlink(path);
    if (st != MT_OK) die(err.msg);
    for (int i = 0; i < c->n_w; i++) c->Ws[i] = (void *)(c->map.data + (size_t)i * w_bytes);
}

/* cold: W rotates through copies larger than the caches at any M, as a model's layers come from DRAM one by one
 * (the vision tower and prefill read each layer's weights once per call) */
static void bench_linear_cold(mt_pool *pool, const mt_roofline *rf, int64_t M, int64_t N, int64_t K, mt_dtype wt,
                              bool transpose_a, bool cold) {
    char name[96];
    snprintf(name, sizeof name, "%s M=%lld N=%lld K=%lld W=%s%s", transpose_a ? "matmul A^T.B" : "linear",
             (long long)M, (long long)N, (long long)K, mt_dtype_name(wt), cold && M > 4 ? " cold" : "");
    if (!selected(name)) return;
    float *wf = randf(N * K);
    lin_ctx c = {.pool = pool, .M = M, .N = N, .K = K, .A = randf(M * K), .wt = wt, .C = randf(M * N),
                 .transpose_a = transpose_a};
    /* a cold W must not be found in the last-level cache (260 MB on some Xeons) by any of the reads */
    size_t w_bytes = (size_t)(N * K) * mt_dtype_size(wt);
    c.n_w = cold ? (int)MT_MIN((size_t)MAX_COPIES, 2 * ROTATE_BYTES / w_bytes + 1) : n_copies(w_bytes, M <= 16);
    if (cold && g_mapped) map_copies(&c, wf, N * K, w_bytes);
    else
        for (int i = 0; i < c.n_w; i++) c.Ws[i] = to_dtype(wf, N * K, wt);
    double t = best_time(lin_run, &c);
    double gflops = 2.0 * M * N * K / t / 1e9, gbs = (double)N * K * mt_dtype_size(wt) / t / 1e9;
    bool mem_bound = M <= 16;
    /* past 16 rows bf16 weights multiply on bf16 dot products where they are on (cpu.h): their peak is the bar */
    bool bf16 = !mem_bound && !transpose_a && wt == MT_BF16 && mt_cpu_bf16_dot_on();
    double peak = bf16 ? rf->bf16_gflops : rf->f32_gflops;
    printf("%-44s %9.3f %9.1f %8.1f %6.1f%% of %s\n", name, t * 1e3, gflops, gbs,
           mem_bound ? 100 * gbs / rf->read_gbs : 100 * gflops / peak,
           mem_bound ? "read bw" : bf16 ? "bf16 peak" : "f32 peak");
    if (c.map.data) mt_file_unmap(&c.map);
    else
        for (int i = 0; i < c.n_w; i++) mt_free(c.Ws[i]);
    mt_free(wf), mt_free((void *)c.A), mt_free(c.C);
}

static void bench_linear(mt_pool *pool, const mt_roofline *rf, int64_t M, int64_t N, int64_t K, mt_dtype wt,
                         bool transpose_a) {
    bench_linear_cold(pool, rf, M, N, K, wt, transpose_a, false);
}

typedef struct attn_ctx {
    mt_pool *pool;
    mt_attn_args a;
    void *ks[MAX_COPIES], *vs[MAX_COPIES];
    int n_kv, next;
} attn_ctx;

static void attn_run(void *p) {
    attn_ctx *c = p;
    int i = c->next++ % c->n_kv;
    c->a.k = c->ks[i];
    c->a.v = c->vs[i];
    mt_cpu_attention(c->pool, &c->a);
}

static void bench_attention_window(mt_pool *pool, const mt_roofline *rf, const char *label, int64_t T, int64_t S,
                                   int H, int Hk, int D, bool causal, int64_t seg, mt_dtype kvt, int64_t window) {
    char name[96];
    snprintf(name, sizeof name, "attn %s T=%lld S=%lld H=%d/%d D=%d %s", label, (long long)T, (long long)S, H, Hk, D,
             mt_dtype_name(kvt));
    if (window) snprintf(name + strlen(name), sizeof name - strlen(name), " w=%lld", (long long)window);
    if (!selected(name)) return;
    float *q = randf(T * H * D), *kf = randf(S * Hk * D), *vf = randf(S * Hk * D), *out = randf(T * H * D);
    int64_t n_seg = seg ? (T + seg - 1) / seg : 0;
    int64_t *cu = mt_malloc_array((size_t)n_seg + 1, sizeof(int64_t));
    for (int64_t s = 0; s <= n_seg; s++) cu[s] = MT_MIN(s * seg, T);
    /* vision towers ask for bf16 products (mt_nn_vit_block); they run where the linears' do */
    bool products = strncmp(label, "vision", 6) == 0, bf16 = products && mt_cpu_bf16_dot_on();
    attn_ctx c = {.pool = pool,
                  .a = {.q = q, .q_st = H * D, .q_sh = D, .k_st = Hk * D, .k_sh = D, .v_st = Hk * D,
                        .v_sh = D, .kv_dtype = kvt, .out = out, .o_st = H * D, .o_sh = D, .n_q = T, .n_kv = S,
                        .n_heads = H, .n_kv_heads = Hk, .head_dim = D, .scale = 0.088f, .causal = causal,
                        .q_pos0 = S - T, .window = window, .cu_seqlens = seg ? cu : NULL, .n_seg = n_seg,
                        .bf16 = products}};
    c.n_kv = n_copies(2 * (size_t)(S * Hk * D) * mt_dtype_size(kvt), T == 1);
    for (int i = 0; i < c.n_kv; i++) c.ks[i] = to_dtype(kf, S * Hk * D, kvt), c.vs[i] = to_dtype(vf, S * Hk * D, kvt);
    double pairs = 0;
    for (int64_t t = 0; t < T; t++) {
        int64_t lo = 0, hi = S;
        if (seg) lo = t / seg * seg, hi = MT_MIN(lo + seg, S);
        if (causal) hi = MT_MIN(hi, S - T + t + 1);
        if (causal && window) lo = MT_MAX(lo, S - T + t - window + 1);
        pairs += (double)(hi - lo);
    }
    double t = best_time(attn_run, &c);
    double gflops = 4.0 * D * H * pairs / t / 1e9, gbs = 2.0 * S * Hk * D * mt_dtype_size(kvt) / t / 1e9;
    bool mem_bound = T == 1;
    printf("%-44s %9.3f %9.1f %8.1f %6.1f%% of %s\n", name, t * 1e3, gflops, gbs,
           mem_bound ? 100 * gbs / rf->read_gbs : 100 * gflops / (bf16 ? rf->bf16_gflops : rf->f32_gflops),
           mem_bound ? "read bw" : bf16 ? "bf16 peak" : "f32 peak");
    for (int i = 0; i < c.n_kv; i++) mt_free(c.ks[i]), mt_free(c.vs[i]);
    mt_free(q), mt_free(kf), mt_free(vf), mt_free(out), mt_free(cu);
}

static void bench_attention(mt_pool *pool, const mt_roofline *rf, const char *label, int64_t T, int64_t S, int H,
                            int Hk, int D, bool causal, int64_t seg, mt_dtype kvt) {
    bench_attention_window(pool, rf, label, T, S, H, Hk, D, causal, seg, kvt, 0);
}

static void print_commit(void) {
    const char *env = getenv("MT_COMMIT");
    char line[128] = "unknown";
    if (env) {
        snprintf(line, sizeof line, "%s", env);
    } else {
#ifdef MT_SOURCE_DIR
        FILE *p = popen("git -C \"" MT_SOURCE_DIR "\" describe --always --dirty 2>/dev/null", "r");
        if (p) {
            if (fgets(line, sizeof line, p)) line[strcspn(line, "\n")] = 0;
            else snprintf(line, sizeof line, "unknown");
            pclose(p);
        }
#endif
    }
    printf("commit   %s\n", line);
}

static void print_cpu(void) {
    char line[256], model[200] = "unknown";
    FILE *f = fopen("/proc/cpuinfo", "r");
    while (f && fgets(line, sizeof line, f)) {
        char *c = strchr(line, ':');
        if (strncmp(line, "model name", 10) == 0 && c) {
            snprintf(model, sizeof model, "%s", c + 2);
            model[strcspn(model, "\n")] = 0;
            break;
        }
    }
    if (f) fclose(f);
    printf("cpu      %s (level %s, bf16 dot %s)\n", model, mt_cpu_level_name(mt_cpu_level_get()),
           mt_cpu_has_avx512bf16() ? "available" : "absent");
}

int main(int argc, char **argv) {
    int threads = 0;
    bool quick = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) quick = true;
        else if (strcmp(argv[i], "--cpu-time") == 0) g_cpu_time = true;
        else if (strcmp(argv[i], "--mapped") == 0) g_mapped = true;
        else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc && g_n_only < 8) g_only[g_n_only++] = argv[++i];
        else threads = atoi(argv[i]);
    }
    if (quick) g_min_time = 0.05;
    mt_err err;
    mt_pool *pool = NULL;
    if (mt_pool_new(threads, &pool, &err) != MT_OK) {
        fprintf(stderr, "bench_kernels: %s\n", err.msg);
        return 1;
    }
    print_commit();
    print_cpu();
    mt_roofline rf;
    if (mt_roofline_measure(pool, quick ? (size_t)64 << 20 : 0, &rf, &err) != MT_OK) {
        fprintf(stderr, "bench_kernels: %s\n", err.msg);
        return 1;
    }
    printf("threads  %d\n", rf.threads);
    printf("roofline f32 %.1f GFLOP/s, bf16 %.1f GFLOP/s%s, read %.1f GB/s\n\n", rf.f32_gflops, rf.bf16_gflops,
           rf.bf16_native ? "" : " (no bf16 dot: the f32 figure)", rf.read_gbs);
    printf("%-44s %9s %9s %8s %7s\n", "case", "ms", "GFLOP/s", "GB/s", "%peak");
    bench_linear(pool, &rf, 1, 2048, 2048, MT_BF16, false);
    bench_linear(pool, &rf, 1, 11008, 2048, MT_BF16, false);
    bench_linear(pool, &rf, 1, 2048, 11008, MT_BF16, false);
    bench_linear(pool, &rf, 1, 2048, 2048, MT_F32, false);
    /* batched decode: M sequences against weights read once (the GEMV path up to 16 rows) */
    static const int64_t small_m[] = {1, 2, 4, 8, 16}, small_nk[][2] = {{2048, 2048}, {11008, 2048}, {2048, 11008},
                                                                         {151936, 2048}};
    for (size_t s = 0; s < sizeof small_nk / sizeof small_nk[0]; s++)
        for (size_t m = 0; m < sizeof small_m / sizeof small_m[0]; m++)
            if (small_m[m] > 1 || small_nk[s][0] == 151936)
                bench_linear(pool, &rf, small_m[m], small_nk[s][0], small_nk[s][1], MT_BF16, false);
    int64_t P = quick ? 128 : 512;
    bench_linear(pool, &rf, P, 2048, 2048, MT_F32, false);
    bench_linear(pool, &rf, P, 2048, 2048, MT_BF16, false);
    bench_linear(pool, &rf, P, 11008, 2048, MT_BF16, false);
    bench_linear(pool, &rf, P, 2048, 11008, MT_BF16, false);
    bench_linear(pool, &rf, P, 2048, 2048, MT_F16, false);
    bench_linear(pool, &rf, P, 2048, 512, MT_F32, true);
    int64_t V = quick ? 256 : 1024; /* a 448x448 picture's patches, through Qwen2.5-VL's vision proj and MLP down */
    bench_linear(pool, &rf, V, 1280, 1280, MT_BF16, false);
    bench_linear_cold(pool, &rf, V, 1280, 1280, MT_BF16, false, true);
    bench_linear_cold(pool, &rf, V, 1280, 3420, MT_BF16, false, true);
    bench_linear_cold(pool, &rf, P, 11008, 2048, MT_BF16, false, true);
    bench_attention(pool, &rf, "prefill", P, P, 16, 2, 128, true, 0, MT_F32);
    bench_attention(pool, &rf, "prefill", P, P, 16, 2, 128, true, 0, MT_BF16);
    bench_attention(pool, &rf, "decode", 1, quick ? 1024 : 4096, 16, 2, 128, true, 0, MT_BF16);
    bench_attention(pool, &rf, "vision", quick ? 256 : 1024, quick ? 256 : 1024, 16, 16, 80, false, 64, MT_F32);
    bench_attention(pool, &rf, "vision-full", quick ? 256 : 1024, quick ? 256 : 1024, 16, 16, 80, false, 0, MT_F32);
    /* sliding windows: the ms column against the same shapes without one (key tiles below the window skipped) */
    int64_t L = quick ? 1024 : 4096, W = quick ? 128 : 512;
    bench_attention(pool, &rf, "prefill", L, L, 16, 2, 128, true, 0, MT_BF16);
    bench_attention_window(pool, &rf, "prefill", L, L, 16, 2, 128, true, 0, MT_BF16, W);
    bench_attention_window(pool, &rf, "decode", 1, quick ? 1024 : 4096, 16, 2, 128, true, 0, MT_BF16, W);
    mt_pool_free(pool);
    return 0;
}
