/* train/rollout: a batch of prompts' G answers through the scheduler (rollout.h). The calling thread submits and
 * waits; the answers arrive on the scheduler's thread through the callbacks below. */
#include <pthread.h>
#include <string.h>

#include "train/rollout.h"
#include "train/rng.h"

typedef struct batch batch;

typedef struct answer {
    batch *b;
    mt_completion *out;
    int64_t cap;
} answer;

struct batch {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int pending;  /* submitted, not done */
    mt_status st; /* the first failure */
    mt_err err;
    int64_t tokens;
};

uint64_t mt_rollout_seed(uint64_t seed, int64_t p, int64_t g) {
    return mt_rng_mix64(mt_rng_mix64(seed ^ 0x726f6c6c6f7574ull) + (uint64_t)p * 0x9e3779b97f4a7c15ull + (uint64_t)g);
}

mt_sched_params mt_rollout_sched_params(int threads, int64_t answers, int64_t max_prompt, int64_t max_new) {
    return (mt_sched_params){.n_threads = threads, .max_active = (int)MT_MIN(answers + 1, 4096),
                             .n_ctx = max_prompt + max_new + 1, .step_rows = MT_MAX(max_prompt, 64),
                             .step_ms = 3600 * 1000};
}

static bool push(answer *a, int32_t tok) {
    mt_completion *c = a->out;
    if (c->n == a->cap) {
        size_t cap = (size_t)a->cap;
        if (!mt_grow((void **)&c->ids, &cap, (size_t)c->n + 1, sizeof *c->ids)) return false;
        a->cap = (int64_t)cap;
    }
    c->ids[c->n++] = tok;
    return true;
}

static bool on_token(void *user, int32_t tok) {
    answer *a = user;
    if (!a->out) return true; /* a prompt's warm-up: its token is not kept */
    if (push(a, tok)) return true;
    pthread_mutex_lock(&a->b->mu);
    if (!a->b->st) a->b->st = mt_err_set(&a->b->err, MT_ERR_NOMEM, "rollout: out of memory for an answer");
    pthread_mutex_unlock(&a->b->mu);
    return false;
}

static void on_done(void *user, mt_status st, const mt_err *err, const mt_gen_stats *stats) {
    answer *a = user;
    batch *b = a->b;
    bool kept = true;
    if (!st && a->out) {
        a->out->stop = stats->stop;
        if (stats->stop == MT_STOP_EOS) kept = push(a, stats->eos_token);
    }
    pthread_mutex_lock(&b->mu);
    if (st && !b->st) {
        b->st = st;
        b->err = *err;
    } else if (!kept && !b->st) {
        b->st = mt_err_set(&b->err, MT_ERR_NOMEM, "rollout: out of memory for an answer");
    }
    if (a->out) b->tokens += a->out->n;
    b->pending--;
    pthread_cond_signal(&b->cv);
    pthread_mutex_unlock(&b->mu);
}

/* Copies of a prompt's pixels for one request (the scheduler frees them once encoded). */
static mt_status copy_pixels(const mt_rollout_prompt *p, float **px, mt_err *err) {
    for (int i = 0; i < p->n_images; i++) {
        const mt_image_input *im = &p->images[i];
        size_t n;
        if (!mt_mul_ok((size_t)im->n_patches, (size_t)im->patch_dim, &n) ||
            !(px[i] = mt_malloc_array(n, sizeof(float)))) {
            for (int k = 0; k < i; k++) mt_free(px[k]);
            return mt_err_set(err, MT_ERR_NOMEM, "rollout: out of memory for a copy of an image");
        }
        memcpy(px[i], im->pixels, n * sizeof(float));
    }
    return MT_OK;
}

/* Submits one request, waiting for room in the scheduler's queue when it is full. */
static mt_status submit(mt_sched *s, batch *b, const mt_rollout_prompt *p, int64_t max_new, const mt_sampling *sm,
                        bool share, answer *a, mt_err *err) {
    float **px = mt_calloc((size_t)p->n_images + 1, sizeof *px);
    mt_image_input *im = mt_calloc((size_t)p->n_images + 1, sizeof *im);
    mt_status st = px && im ? copy_pixels(p, px, err) : mt_err_set(err, MT_ERR_NOMEM, "rollout: out of memory");
    for (int i = 0; !st && i < p->n_images; i++) {
        im[i] = p->images[i];
        im[i].pixels = px[i];
    }
    mt_sched_request r = {.ids = p->ids, .n_ids = p->n_ids, .images = im, .pixels = px, .n_images = p->n_images,
                          .max_new = max_new, .sampling = *sm, .on_token = on_token, .on_done = on_done, .user = a,
                          .share_prefix = share};
    pthread_mutex_lock(&b->mu);
    b->pending++;
    pthread_mutex_unlock(&b->mu);
    uint64_t id;
    while (!st && (st = mt_sched_submit(s, &r, &id, err)) == MT_ERR_LIMIT) {
        pthread_mutex_lock(&b->mu);
        int before = b->pending;
        while (b->pending == before && b->pending > 1) pthread_cond_wait(&b->cv, &b->mu);
        pthread_mutex_unlock(&b->mu);
        st = MT_OK;
    }
    if (st) {
        for (int i = 0; px && i < p->n_images; i++) mt_free(px[i]);
        pthread_mutex_lock(&b->mu);
        b->pending--;
        pthread_mutex_unlock(&b->mu);
    }
    mt_free(px);
    mt_free(im);
    return st;
}

static mt_status wait_all(batch *b, mt_err *err) {
    pthread_mutex_lock(&b->mu);
    while (b->pending > 0) pthread_cond_wait(&b->cv, &b->mu);
    mt_status st = b->st;
    if (st && err) *err = b->err;
    pthread_mutex_unlock(&b->mu);
    return st;
}

mt_status mt_rollout_run(mt_sched *s, const mt_rollout_prompt *prompts, int n, const mt_rollout_opts *o,
                         mt_completion *out, mt_rollout_stats *stats, mt_err *err) {
    if (o->group < 1 || o->max_new < 1)
        return mt_err_set(err, MT_ERR_INVALID_ARG, "rollout: the group (%d) and max tokens (%ld) must be >= 1",
                          o->group, (long)o->max_new);
    int64_t total = (int64_t)n * o->group;
    answer *a = mt_calloc((size_t)(total + n) + 1, sizeof *a);
    if (!a) return mt_err_set(err, MT_ERR_NOMEM, "rollout: out of memory");
    batch b = {.st = MT_OK};
    pthread_mutex_init(&b.mu, NULL);
    pthread_cond_init(&b.cv, NULL);
    double t0 = mt_time_now();
    mt_sampling greedy = mt_sampling_default();
    mt_status st = MT_OK;
    /* The prompts alone first, so that each group finds its prompt cached. */
    for (int p = 0; !st && p < n; p++) {
        a[total + p] = (answer){.b = &b};
        st = submit(s, &b, &prompts[p], 1, &greedy, false, &a[total + p], err);
    }
    mt_status waited = wait_all(&b, st ? NULL : err);
    st = st ? st : waited;
    for (int64_t k = 0; !st && k < total; k++) {
        int64_t p = k / o->group, g = k % o->group;
        mt_sampling sm = o->sampling;
        sm.seed = mt_rollout_seed(o->sampling.seed, o->prompt_index ? o->prompt_index[p] : p, g);
        out[k] = (mt_completion){0};
        a[k] = (answer){.b = &b, .out = &out[k]};
        st = submit(s, &b, &prompts[p], o->max_new, &sm, true, &a[k], err);
    }
    waited = wait_all(&b, st ? NULL : err);
    st = st ? st : waited;
    if (stats) *stats = (mt_rollout_stats){.tokens = b.tokens, .seconds = mt_time_now() - t0};
    pthread_cond_destroy(&b.cv);
    pthread_mutex_destroy(&b.mu);
    mt_free(a);
    return st;
}

void mt_completions_free(mt_completion *c, int64_t n) {
    for (int64_t i = 0; c && i < n; i++) {
        mt_free(c[i].ids);
        c[i] = (mt_completion){0};
    }
}
