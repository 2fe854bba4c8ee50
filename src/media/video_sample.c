/* media/video_sample: sampled frames read in runs on several threads (see video_sample.h). */
#include "media/video_sample.h"

#include <stdatomic.h>
#include <unistd.h>

#include "base/pool.h"

/* At most this many runs: past a few, runs are shorter than the distance between keyframes and decode frames twice. */
#define MAX_RUNS 64

/* A sample's own handling (to RGB, resize, patchify) weighed in decoded frames: on 720p H.264 a frame decodes in
 * about 2.7 ms and a sample takes about 6 ms more. */
#define SAMPLE_COST_FRAMES 2

static int64_t run_cost(const int64_t *indices, const int64_t *key, int64_t a, int64_t b) {
    return indices[b - 1] - key[a] + 1 + SAMPLE_COST_FRAMES * (b - a);
}

/* Cuts [0, n) greedily into runs costing at most cap (a lone sample may cost more); returns how many it took,
 * max_runs + 1 when that is more than max_runs. Writes starts when not NULL. */
static int cut(const int64_t *indices, const int64_t *key, int64_t n, int64_t cap, int max_runs, int64_t *starts) {
    int runs = 0;
    for (int64_t a = 0; a < n; runs++) {
        if (runs == max_runs) return max_runs + 1;
        if (starts) starts[runs] = a;
        int64_t b = a + 1;
        while (b < n && run_cost(indices, key, a, b + 1) <= cap) b++;
        a = b;
    }
    return runs;
}

void mt_video_plan_runs(const mt_video *v, const int64_t *indices, int64_t n, int parts, int64_t *starts,
                        int *n_runs) {
    *n_runs = n > 0;
    if (n > 0) starts[0] = 0;
    parts = (int)MT_MIN((int64_t)MT_MIN(parts, MAX_RUNS), n);
    if (parts < 2) return;
    for (int64_t k = 1; k < n; k++)
        if (indices[k] < indices[k - 1]) return;
    int64_t *key = mt_malloc_array((size_t)n, sizeof *key);
    if (!key) return; /* in order on one decoder: slower, the same frames */
    /* without an index, runs are cut as if every frame were a keyframe: each then seeks to wherever its own is */
    for (int64_t k = 0; k < n; k++) {
        key[k] = mt_video_keyframe_before(v, indices[k]);
        if (key[k] < 0) key[k] = indices[k];
    }
    int64_t lo = 1, hi = run_cost(indices, key, 0, n);
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (cut(indices, key, n, mid, parts, NULL) <= parts) hi = mid;
        else lo = mid + 1;
    }
    *n_runs = cut(indices, key, n, hi, parts, starts);
    mt_free(key);
}

typedef struct sampler {
    const mt_video *v;
    const int64_t *indices, *starts;
    int64_t n;
    int n_runs, decoder_threads;
    mt_video_take_fn take;
    void *user;
    _Atomic int64_t failed; /* the smallest k that failed; INT64_MAX while none has */
    mt_status st[MAX_RUNS];
    int64_t failed_at[MAX_RUNS];
    mt_err err[MAX_RUNS];
} sampler;

/* Samples [a, b) from v in order; *at is the k that failed. Stops early once a smaller k failed elsewhere. */
static mt_status read_run(mt_video *v, const int64_t *indices, int64_t a, int64_t b, mt_video_take_fn take, void *user,
                          _Atomic int64_t *failed, int64_t *at, mt_err *err) {
    for (int64_t k = a; k < b; k++) {
        if (failed && atomic_load(failed) < k) return MT_OK;
        mt_image frame = {0};
        mt_video_hint_next(v, k + 1 < b ? indices[k + 1] : -1);
        mt_status st = mt_video_read_frame(v, indices[k], &frame, err);
        if (!st) st = take(user, k, &frame, err);
        if (st) {
            *at = k;
            return st;
        }
    }
    return MT_OK;
}

static void run_body(void *ctx, int64_t r, int thread) {
    (void)thread;
    sampler *s = ctx;
    int64_t a = s->starts[r], b = r + 1 < s->n_runs ? s->starts[r + 1] : s->n, at = a;
    mt_video *v;
    mt_status st = mt_video_reopen(s->v, s->decoder_threads, &v, &s->err[r]);
    if (!st) {
        st = read_run(v, s->indices, a, b, s->take, s->user, &s->failed, &at, &s->err[r]);
        mt_video_close(v);
    }
    if (!st) return;
    s->st[r] = st;
    s->failed_at[r] = at;
    int64_t seen = atomic_load(&s->failed);
    while (at < seen && !atomic_compare_exchange_weak(&s->failed, &seen, at)) {
    }
}

mt_status mt_video_sample(mt_video *v, const int64_t *indices, int64_t n, int threads, mt_video_take_fn take,
                          void *user, mt_err *err) {
    if (!v || !take || n < 0 || (n > 0 && !indices) || threads < 0)
        return mt_err_set(err, MT_ERR_INVALID_ARG, "video sample: missing video, indices or callback, or threads < 0");
    if (threads == 0) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        threads = cpus > 0 ? (int)MT_MIN(cpus, 1024) : 1;
    }
    int64_t starts[MAX_RUNS], at;
    int n_runs;
    mt_video_plan_runs(v, indices, n, threads, starts, &n_runs);
    if (n_runs <= 1) return read_run(v, indices, 0, n, take, user, NULL, &at, err);
    sampler *s = mt_malloc(sizeof *s);
    if (!s) return mt_err_set(err, MT_ERR_NOMEM, "video sample: out of memory");
    mt_pool *pool;
    mt_status st = mt_pool_new(n_runs, &pool, err);
    if (st) {
        mt_free(s);
        return st;
    }
    *s = (sampler){.v = v, .indices = indices, .starts = starts, .n = n, .n_runs = n_runs,
                   .decoder_threads = (int)MT_MAX(1, threads / n_runs), .take = take, .user = user};
    atomic_init(&s->failed, INT64_MAX);
    mt_pool_run(pool, n_runs, run_body, s);
    mt_pool_free(pool);
    int worst = -1;
    for (int r = 0; r < n_runs; r++)
        if (s->st[r] && (worst < 0 || s->failed_at[r] < s->failed_at[worst])) worst = r;
    if (worst >= 0) {
        st = s->st[worst];
        if (err) *err = s->err[worst];
    }
    mt_free(s);
    return st;
}
