/* tools/bench_rollout: one prompt's G answers batched, then one by one (see bench_rollout.h). */
#include "bench_rollout.h"

#include "engine/session.h"
#include "train/rollout.h"

/* Far from a temperature of 0 so that the answers differ, near enough to 1 to stay the model's own. */
static mt_sampling bench_sampling(void) {
    mt_sampling sm = mt_sampling_default();
    sm.temperature = 1.0f;
    sm.seed = 1234;
    return sm;
}

static bool count_token(void *user, int32_t tok) {
    (void)tok;
    ++*(int64_t *)user;
    return true;
}

mt_status mt_bench_rollout(const mt_model *m, int threads, int group, int64_t L, int64_t max_new,
                           mt_bench_rollout_result *r, mt_err *err) {
    *r = (mt_bench_rollout_result){0};
    int32_t *ids = mt_malloc_array((size_t)L, sizeof *ids);
    mt_completion *c = mt_calloc((size_t)group, sizeof *c);
    mt_status st = ids && c ? MT_OK : mt_err_set(err, MT_ERR_NOMEM, "out of memory");
    uint32_t rnd = 11;
    for (int64_t i = 0; !st && i < L; i++) {
        rnd = rnd * 1664525u + 1013904223u;
        ids[i] = (int32_t)((rnd >> 8) % 256); /* below every special id */
    }
    mt_sampling sm = bench_sampling();
    mt_sched *s = NULL;
    mt_sched_params sp = mt_rollout_sched_params(threads, group, L, max_new);
    if (!st) st = mt_sched_new(m, &sp, &s, err);
    mt_rollout_stats rs = {0};
    mt_rollout_prompt p = {.ids = ids, .n_ids = L};
    if (!st) st = mt_rollout_run(s, &p, 1, &(mt_rollout_opts){.group = group, .max_new = max_new, .sampling = sm},
                                 c, &rs, err);
    mt_sched_free(s);
    r->batch_seconds = rs.seconds;
    for (int g = 0; g < group; g++) r->tokens += c[g].n;
    mt_session *ses = NULL;
    if (!st) st = mt_session_new(m, &(mt_session_params){.n_ctx = L + max_new + 1, .n_threads = threads}, &ses, err);
    double t0 = mt_time_now();
    for (int g = 0; !st && g < group; g++) {
        mt_sampling one = sm;
        one.seed = mt_rollout_seed(sm.seed, 0, g);
        int64_t n = 0;
        mt_gen_stats gs;
        st = mt_session_generate(ses, ids, L, NULL, 0, max_new, &one, count_token, &n, &gs, err);
    }
    r->seq_seconds = mt_time_now() - t0;
    mt_session_free(ses);
    mt_completions_free(c, group);
    mt_free(c);
    mt_free(ids);
    return st;
}
