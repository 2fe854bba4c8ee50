/* tensor/cpu/roofline: peak FMA throughput and memory read bandwidth (see roofline.h). Work is cut into many equal
 * tasks so the pool's dynamic scheduling keeps every thread busy to the end; the figure is total work / wall time. */
#include "tensor/cpu/roofline.h"

#include <string.h>

#include "tensor/cpu/cpu_int.h"

enum { MAX_SINKS = 1024, CHUNK_FLOATS = 1 << 18 };

typedef struct roof_job {
    const mt_cpu_isa *isa;
    double (*loop)(int64_t iters, float *out);
    int64_t iters;
    const float *buf;
    int64_t n;
    float sink[MAX_SINKS];
} roof_job;

static void flop_task(void *ctx, int64_t t, int thread) {
    roof_job *j = ctx;
    float s;
    j->loop(j->iters, &s);
    j->sink[thread % MAX_SINKS] += s;
}

static void read_task(void *ctx, int64_t t, int thread) {
    roof_job *j = ctx;
    int64_t i0 = t * CHUNK_FLOATS;
    float s;
    j->isa->read_sum(MT_MIN((int64_t)CHUNK_FLOATS, j->n - i0), j->buf + i0, &s);
    j->sink[thread % MAX_SINKS] += s;
}

static void fill_task(void *ctx, int64_t t, int thread) {
    roof_job *j = ctx;
    int64_t i0 = t * CHUNK_FLOATS, n = MT_MIN((int64_t)CHUNK_FLOATS, j->n - i0);
    float *p = (float *)j->buf + i0;
    for (int64_t i = 0; i < n; i++) p[i] = (float)(i & 7);
}

/* Best rate over three timed runs of n_tasks tasks, after one warm-up run. */
static double best_rate(mt_pool *pool, roof_job *j, int64_t n_tasks, mt_pool_fn fn, double work) {
    double best = 0.0;
    for (int rep = 0; rep < 4; rep++) {
        double t0 = mt_time_now();
        mt_pool_run(pool, n_tasks, fn, j);
        double dt = mt_time_now() - t0;
        if (rep > 0 && dt > 0 && work / dt > best) best = work / dt;
    }
    return best;
}

static double flops_rate(mt_pool *pool, roof_job *j) {
    float s;
    double per_task = j->loop(j->iters, &s);
    int64_t n_tasks = 8 * (int64_t)mt_pool_threads(pool);
    return best_rate(pool, j, n_tasks, flop_task, per_task * (double)n_tasks) / 1e9;
}

mt_status mt_roofline_measure(mt_pool *pool, size_t buf_bytes, mt_roofline *out, mt_err *err) {
    if (!buf_bytes) buf_bytes = (size_t)256 << 20;
    roof_job *j = mt_calloc(1, sizeof *j);
    float *buf = mt_malloc_aligned(buf_bytes);
    if (!j || !buf) {
        mt_free(j);
        mt_free(buf);
        return mt_err_set(err, MT_ERR_NOMEM, "roofline: cannot allocate a %zu-byte buffer", buf_bytes);
    }
    mt_roofline r = {.threads = mt_pool_threads(pool)};
    j->isa = mt_cpu_isa_get();
    r.isa = j->isa->name;
    j->loop = j->isa->fma_loop;
    j->iters = 1 << 18;
    r.f32_gflops = flops_rate(pool, j);
    r.bf16_gflops = r.f32_gflops;
    if (j->isa->bf16_loop && mt_cpu_has_avx512bf16() && mt_cpu_level_get() == MT_CPU_AVX512) {
        j->loop = j->isa->bf16_loop;
        r.bf16_gflops = flops_rate(pool, j);
        r.bf16_native = true;
    }
    j->buf = buf;
    j->n = (int64_t)(buf_bytes / sizeof(float));
    int64_t chunks = (j->n + CHUNK_FLOATS - 1) / CHUNK_FLOATS;
    mt_pool_run(pool, chunks, fill_task, j);
    r.read_gbs = best_rate(pool, j, chunks, read_task, (double)j->n * sizeof(float)) / 1e9;
    mt_free(buf);
    mt_free(j);
    *out = r;
    return MT_OK;
}
